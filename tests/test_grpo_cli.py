"""`python -m cobra_lit.grpo` end to end on CPU with the real tiny model: 2 gloo ranks with FSDP2 against one
process for the same global batch (with `--top_entropy_quantile`, whose threshold spans the ranks), SIGKILL + resume
against an uninterrupted run, a failing reward function."""
import json, os, signal, subprocess, sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).parent
ENV = {**os.environ, 'HF_HUB_OFFLINE': '1', 'TOKENIZERS_PARALLELISM': 'false', 'OMP_NUM_THREADS': '1',
       'PYTHONUNBUFFERED': '1', 'PYTHONPATH': os.pathsep.join([str(HERE), os.environ.get('PYTHONPATH', '')])}
GRPO = [sys.executable, '-m', 'cobra_lit.grpo']
TORCHRUN = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nnodes', '1', '--nproc-per-node', '2',
            '-m', 'cobra_lit.grpo']


@pytest.fixture(scope='module')
def work(tmp_path_factory):
    "A folder with a tiny demo dataset and a random cobra-tiny saved as the 'supervised' checkpoint."
    d = tmp_path_factory.mktemp('grpo')
    from cobra_lit.model import build_vlm, save_cobra_checkpoint
    from cobra_lit.train import DemoDatasetConfig
    DemoDatasetConfig(dataset_root=d/'demo', n_train=16, n_test=4).prepare()
    torch.manual_seed(0); save_cobra_checkpoint(build_vlm('cobra-tiny'), d/'sft.pt')
    return d


def args(work, run_id, steps=3, *extra):
    return ['--pretrained_checkpoint', str(work/'sft.pt'), '--run_id', run_id, '--run_root_dir', str(work/'runs'),
            '--dataset.dataset_root', str(work/'demo'), '--dataset.n_train', '16', '--dataset.n_test', '4',
            '--eval_demo', 'false', '--max_steps', str(steps), '--prompts_per_step', '2', '--num_generations', '3',
            '--max_completion_length', '10', '--rewards', 'grpo_rewards:vowel_share', '--reward_weights', '1',
            '--learning_rate', '1e-2', '--top_entropy_quantile', '0.5', *extra]  # the global entropy threshold too


def run(cmd, work, check=True, env=None):
    p = subprocess.run(cmd, cwd=work, env=env or ENV, capture_output=True, text=True, timeout=300)
    if check and p.returncode: raise AssertionError(f'{cmd} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-6000:]}')
    return p


def rows(run_dir): return [json.loads(l) for l in (run_dir/'logs'/'train.jsonl').read_text().splitlines()]
def weights(run_dir): return torch.load(run_dir/'checkpoints'/'checkpoint-latest.pt', weights_only=True)['model']
def flat(block): return {f'{m}.{k}': v for m, sd in block.items() for k, v in sd.items()}


@pytest.fixture(scope='module')
def single(work):
    run(GRPO + args(work, 'one', 3, '--save_interval', '1'), work)
    return work/'runs'/'one'


def test_it_learns_something(single, work):
    r = rows(single)
    assert [x['step'] for x in r] == [1, 2, 3]
    assert all(x['grad_norm'] > 0 and x['logp_gap'] < 1e-4 for x in r), r
    start = flat(torch.load(work/'sft.pt', weights_only=True)['model'])
    end = flat(weights(single))
    assert any(not torch.equal(start[k], end[k]) for k in start if k in end)


def test_two_ranks_match_one_process(single, work):
    run(TORCHRUN + args(work, 'two', 3, '--save_interval', '1'), work)
    one, two = rows(single), rows(work/'runs'/'two')
    for a, b in zip(one, two):
        for k in ('reward_mean', 'reward_std', 'completion_len_mean', 'loss', 'grad_norm'):
            assert a[k] == pytest.approx(b[k], rel=1e-4, abs=1e-6), (k, a, b)
    wa, wb = flat(weights(single)), flat(weights(work/'runs'/'two'))
    assert wa.keys() == wb.keys()
    # Adam divides by sqrt(v): a near-zero gradient that differs in its last bits (a different reduction order) moves a
    # weight by a visible fraction of one step (lr 1e-2): compare against a small fraction of the step size
    for k in wa: torch.testing.assert_close(wb[k], wa[k], rtol=1e-3, atol=2e-4, msg=lambda m: f'{k}: {m}')


def test_sigkill_then_resume_matches_uninterrupted(single, work):
    # the run kills itself with SIGKILL right after step 2's update, before its checkpoint (the last is step 1's)
    p = run(GRPO + args(work, 'killed', 3, '--save_interval', '1'), work, check=False,
            env={**ENV, 'COBRA_LIT_KILL_AT_STEP': '2'})
    assert p.returncode == -signal.SIGKILL, p.stderr[-3000:]
    killed = work/'runs'/'killed'
    assert torch.load(killed/'checkpoints'/'checkpoint-latest.pt', weights_only=True)['train_state']['step'] == 1
    run(GRPO + args(work, 'killed', 3, '--save_interval', '1', '--resume', 'true'), work)
    a, b = rows(single), rows(killed)
    assert [x['step'] for x in b] == [1, 2, 3]
    for x, y in zip(a, b):  # the same rollouts (sampling is seeded per sample) and the same updates
        for k in ('reward_mean', 'completion_len_mean', 'loss', 'grad_norm'): assert x[k] == pytest.approx(y[k], rel=1e-6), (k, x, y)
    wa, wb = flat(weights(single)), flat(weights(killed))
    for k in wa: torch.testing.assert_close(wb[k], wa[k], rtol=1e-6, atol=1e-7, msg=lambda m: f'{k}: {m}')


def test_failing_reward_names_function_and_sample(work):
    p = run(GRPO + args(work, 'broken', 1) + ['--rewards', 'grpo_rewards:broken'], work, check=False)
    assert p.returncode == 2, p.stderr[-3000:]
    assert 'grpo_rewards:broken raised KeyError' in p.stderr and "(id 'demo-train-" in p.stderr, p.stderr[-3000:]
    assert 'Traceback' not in p.stderr


def test_help_and_missing_checkpoint(work):
    assert '--num_generations' in run(GRPO + ['--help'], work).stdout
    p = run(GRPO, work, check=False)
    assert p.returncode == 2 and '--pretrained_checkpoint is required' in p.stderr
