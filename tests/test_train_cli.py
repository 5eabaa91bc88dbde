"""The trainer's command line end to end, on CPU with the real tiny model: 2 gloo ranks with FSDP2 against one
process, SIGKILL + resume against an uninterrupted run, and two single-process "nodes" meeting through a c10d
rendezvous on localhost. Each case runs a few optimizer steps of `cobra-tiny` on a small demo dataset."""
import json, os, signal, socket, subprocess, sys
from pathlib import Path

import pytest
import torch

ENV = {**os.environ, 'HF_HUB_OFFLINE': '1', 'TOKENIZERS_PARALLELISM': 'false', 'OMP_NUM_THREADS': '1',
       'PYTHONUNBUFFERED': '1'}
TRAIN = [sys.executable, '-m', 'cobra_lit.train']
TORCHRUN = [sys.executable, '-m', 'torch.distributed.run']


@pytest.fixture(scope='module')
def work(tmp_path_factory):
    "A folder with the demo dataset (made once) and room for runs."
    d = tmp_path_factory.mktemp('train')
    from cobra_lit.train import DemoDatasetConfig
    DemoDatasetConfig(dataset_root=d/'demo', n_train=24, n_test=4).prepare()
    return d


def args(work, run_id, steps=3, *extra):
    return ['--run_id', run_id, '--run_root_dir', str(work/'runs'), '--dataset.dataset_root', str(work/'demo'),
            '--dataset.n_train', '24', '--dataset.n_test', '4', '--eval_demo', 'false', '--num_workers', '0',
            '--model.finetune_global_batch_size', '2', '--model.finetune_per_device_batch_size', '1',
            '--model.finetune_max_steps', str(steps), *extra]


def run(cmd, work, timeout=120, check=True):
    p = subprocess.run(cmd, cwd=work, env=ENV, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode: raise AssertionError(f'{cmd} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-6000:]}')
    return p


def log_rows(run_dir): return [json.loads(l) for l in (run_dir/'logs'/'train.jsonl').read_text().splitlines()]


def weights(run_dir):
    ck = torch.load(run_dir/'checkpoints'/'checkpoint-latest.pt', map_location='cpu', weights_only=True)
    return {f'{m}.{k}': v for m, sd in ck['model'].items() for k, v in sd.items()}


def free_port():
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


@pytest.fixture(scope='module')
def single(work):
    "One plain process (no process group): global batch 2 = 1 per device x 2 accumulation."
    run(TRAIN + args(work, 'single'), work)
    return work/'runs'/'single'


def assert_same_training(a, b, rtol=1e-5):
    ra, rb = log_rows(a), log_rows(b)
    assert [r['step'] for r in ra] == [r['step'] for r in rb] == [1, 2, 3]
    for x, y in zip(ra, rb):
        assert x['loss'] == pytest.approx(y['loss'], rel=rtol), (x, y)
        assert x['grad_norm'] == pytest.approx(y['grad_norm'], rel=1e-4), (x, y)
        assert x['lr'] == pytest.approx(y['lr'], rel=1e-9)
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys() and len(wa) > 10
    for k in wa: torch.testing.assert_close(wa[k], wb[k], rtol=1e-4, atol=1e-5, msg=lambda m: f'{k}: {m}')


def test_two_ranks_fsdp_match_one_process(work, single):
    cmd = TORCHRUN + ['--standalone', '--nnodes', '1', '--nproc-per-node', '2', '-m', 'cobra_lit.train'] + args(work, 'fsdp2', 3, '--save_interval', '2')
    run(cmd, work)
    two = work/'runs'/'fsdp2'
    cfg1, cfg2 = (json.loads((d/'config.json').read_text()) for d in (single, two))
    assert (cfg1['world_size'], cfg1['grad_accumulation']) == (1, 2)
    assert (cfg2['world_size'], cfg2['grad_accumulation']) == (2, 1)
    assert log_rows(single)[0]['loss'] != log_rows(single)[-1]['loss']  # it trains
    assert_same_training(single, two)
    # a crash right after step 3 (kill hook, both ranks; the last checkpoint is step 2's): resuming the sharded run
    # (optimizer broadcast from rank 0) redoes step 3 exactly
    crash = cmd[:cmd.index('--run_id') + 1] + ['fsdp2k'] + cmd[cmd.index('--run_id') + 2:]
    p = subprocess.run(crash, cwd=work, env={**ENV, 'COBRA_LIT_KILL_AT_STEP': '3'}, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode != 0
    killed = work/'runs'/'fsdp2k'
    assert torch.load(killed/'checkpoints'/'checkpoint-latest.pt', weights_only=True)['train_state']['step'] == 2
    run(crash + ['--resume', 'true'], work)
    same = lambda r, n: dict(r, tokens_per_s=n['tokens_per_s'], step_time_s=n['step_time_s'], peak_mem_mb=n['peak_mem_mb'])
    assert log_rows(killed) == [same(r, n) for r, n in zip(log_rows(two), log_rows(killed))]
    for k, v in weights(killed).items(): assert torch.equal(v, weights(two)[k]), k


def test_two_nodes_c10d_rendezvous(work, single):
    port = free_port()
    cmd = TORCHRUN + ['--nnodes', '2', '--nproc-per-node', '1', '--rdzv-backend', 'c10d', '--rdzv-endpoint',
                      f'127.0.0.1:{port}', '--rdzv-id', 'cobra-lit-test', '-m', 'cobra_lit.train'] + args(work, 'nodes')
    procs = [subprocess.Popen(cmd, cwd=work, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=150) for p in procs]
    for p, (o, e) in zip(procs, outs): assert p.returncode == 0, e[-4000:]
    nodes = work/'runs'/'nodes'
    assert json.loads((nodes/'config.json').read_text())['world_size'] == 2
    assert_same_training(single, nodes)


def test_sigkill_then_resume_matches_uninterrupted(work):
    steps = ['5', '--save_interval', '2']
    run(TRAIN + args(work, 'whole', *steps), work)
    killed = work/'runs'/'killed'
    # the run kills itself with SIGKILL right after step 3 (a fault-injection hook): no race with a polling timer
    p = subprocess.run(TRAIN + args(work, 'killed', *steps), cwd=work, env={**ENV, 'COBRA_LIT_KILL_AT_STEP': '3'},
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == -signal.SIGKILL, p.stderr[-3000:]
    assert [r['step'] for r in log_rows(killed)] == [1, 2, 3]
    ck = killed/'checkpoints'
    assert (ck/'checkpoint-000002.pt').is_file() and not (ck/'checkpoint-000005.pt').exists()
    assert torch.load(ck/'checkpoint-latest.pt', weights_only=True)['train_state']['step'] == 2
    # (refusals of a changed config / a missing --resume are tested in nbs/20_train.ipynb)
    run(TRAIN + args(work, 'killed', *steps, '--resume', 'true'), work)
    whole = work/'runs'/'whole'
    rw, rk = log_rows(whole), log_rows(killed)
    assert [r['step'] for r in rk] == [1, 2, 3, 4, 5]
    assert [r['loss'] for r in rk] == pytest.approx([r['loss'] for r in rw], rel=1e-6)
    ww, wk = weights(whole), weights(killed)
    assert ww.keys() == wk.keys()
    for k in ww: torch.testing.assert_close(wk[k], ww[k], rtol=1e-6, atol=1e-7, msg=lambda m: f'{k}: {m}')


def wandb_records(path):
    "Records of a W&B transaction log (.wandb: a LevelDB-style log of protobuf `Record`s in 32 KiB blocks)."
    from wandb.proto import wandb_internal_pb2 as pb
    data = Path(path).read_bytes()
    assert data[:4] == b':W&B', path
    pos, buf, out = 7, b'', []
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        if left < 7: pos += left; continue
        n, kind = int.from_bytes(data[pos + 4:pos + 6], 'little'), data[pos + 6]
        if kind == 0: pos += left; continue  # zero padding to the end of the block
        buf += data[pos + 7:pos + 7 + n]; pos += 7 + n
        if kind in (1, 4):  # a whole record, or the last piece of one
            r = pb.Record(); r.ParseFromString(buf); out.append(r); buf = b''
    return out


def test_wandb_offline_run_holds_config_and_metrics(work):
    pytest.importorskip('wandb', reason='wandb is a dev dependency (settings.ini dev_requirements)')
    run(TRAIN + args(work, 'wb', 2, '--trackers', 'jsonl', 'wandb', '--wandb_mode', 'offline'), work)
    files = list((work/'runs'/'wb'/'wandb').glob('offline-run-*/run-wb.wandb'))
    assert len(files) == 1, files
    recs = wandb_records(files[0])
    cfg = {}
    for r in recs:
        k = r.WhichOneof('record_type')
        if k in ('run', 'config'):
            cfg.update({i.key: json.loads(i.value_json) for i in (r.run.config if k == 'run' else r.config).update})
    assert cfg['seed'] == 7 and cfg['model']['model_id'] == 'cobra-tiny' and cfg['stage'] == 'full-finetune'
    hist = [{(i.key or '/'.join(i.nested_key)): json.loads(i.value_json) for i in r.history.item}
            for r in recs if r.WhichOneof('record_type') == 'history']
    logged = log_rows(work/'runs'/'wb')
    assert [h['_step'] for h in hist] == [r['step'] for r in logged] == [1, 2]
    for h, r in zip(hist, logged): assert h['loss'] == pytest.approx(r['loss']) and h['lr'] == pytest.approx(r['lr'])
