"""`python -m cobra_lit.benchmark run` end to end on an untrained cobra-tiny: from a run folder, `--scratchpad`, errors."""
import json
import os
import subprocess
import sys



FAST = ['--limit', 2, '--batch_size', 2, '--max_new_tokens', 4, '--n_boot', 20, '--no-semsim']


def cli(data, *args):
    "The CLI in a subprocess on the shared 40-image COCO subset, given explicitly."
    env = {**os.environ, 'HF_HUB_OFFLINE': '1', 'OMP_NUM_THREADS': '2'}
    coco = data / 'coco'
    inputs = ['--annotations', coco / 'annotations/captions_val2017_images.json', '--images', coco / 'images/val2017']
    return subprocess.run([sys.executable, '-m', 'cobra_lit.benchmark', *map(str, args), *map(str, inputs)],
                          capture_output=True, text=True, env=env, timeout=600)


def test_scratchpad_run_from_a_run_folder(tmp_path, data):
    """`--scratchpad` from a cobra-tiny run folder (`checkpoints/latest-checkpoint.pt`, as the trainer writes it)."""
    import torch
    from cobra_lit.model import build_vlm, save_cobra_checkpoint
    torch.manual_seed(0)
    run = tmp_path / 'run'
    save_cobra_checkpoint(build_vlm('cobra-tiny'), run / 'checkpoints' / 'latest-checkpoint.pt')
    (run / 'config.json').write_text(json.dumps({'model': {'type': 'cobra-tiny'}}))
    p = cli(data, '--checkpoint', run, '--scratchpad', '--scratchpad_max_new_tokens', 6, '--no-pretrained_vision',
            '--variant', 'tiny+scratchpad', '--output', tmp_path / 'results' / 'baseline_bleu.txt', *FAST)
    assert p.returncode == 0, p.stderr[-3000:]
    assert 'img/s' in p.stderr  # the tqdm bar
    res = json.loads((tmp_path / 'results' / 'baseline_bleu.json').read_text())
    cfg = res['config']
    assert (cfg['decoder'], cfg['model_id'], cfg['variant']) == ('scratchpad', 'cobra-tiny', 'tiny+scratchpad')
    assert cfg['model_type'] is None  # not given: the run folder's config.json names the model
    assert cfg['checkpoint_file'] == str(run / 'checkpoints' / 'latest-checkpoint.pt')
    assert res['complete'] and res['metrics']['n'] == 2 and set(res['metrics']['ci95']) >= {'bleu4', 'cider'}
    for s in res['samples']:
        assert isinstance(s['scratchpad'], str) and isinstance(s['caption'], str) and len(s['references']) >= 5
    assert 'BLEU-4 (COCO, PTB tok.)' in (tmp_path / 'results' / 'baseline_bleu.txt').read_text()


def test_checkpoint_that_does_not_load(tmp_path, data):
    import torch
    torch.save({'model': {'projector': {'projector.0.weight': torch.zeros(2, 2)}}}, tmp_path / 'wrong.pt')
    p = cli(data, '--checkpoint', tmp_path / 'wrong.pt', '--output', tmp_path / 'r.txt', *FAST)
    assert p.returncode == 2 and 'does not load into cobra-tiny' in p.stderr, p.stderr[-2000:]
    assert not (tmp_path / 'r.json').exists()
