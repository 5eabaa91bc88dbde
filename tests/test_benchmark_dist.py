"""`torchrun -m cobra_lit.benchmark run` on 2 CPU ranks (gloo) writes the Result JSON one process writes; a crash resumes."""
import json
import os
import subprocess
import sys

import pytest


# 5 images in batches of 2: rank 0 decodes [0, 1], rank 1 [2, 3] and [4], the batches one process decodes
FAST = ['--checkpoint', 'none', '--model.type', 'cobra-tiny', '--limit', 5, '--batch_size', 2, '--max_new_tokens', 4,
        '--n_boot', 20, '--no-semsim', '--save_every', 1]


def bench(data, out, *args, nproc=1, env=None):
    "`run` on the shared COCO subset: one process, or `nproc` ranks under torch.distributed.run (gloo)."
    coco = data / 'coco'
    inputs = ['--annotations', coco / 'annotations/captions_val2017_images.json', '--images', coco / 'images/val2017']
    launch = ['-m', 'torch.distributed.run', '--standalone', '--nproc-per-node', str(nproc)] if nproc > 1 else []
    cmd = [sys.executable, *launch, '-m', 'cobra_lit.benchmark', 'run', *map(str, [*FAST, *args, *inputs]),
           '--output', str(out)]
    e = {**os.environ, 'HF_HUB_OFFLINE': '1', 'OMP_NUM_THREADS': '1', **(env or {})}
    e = {k: v for k, v in e.items() if k not in ('WORLD_SIZE', 'RANK', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT')}
    return subprocess.run(cmd, capture_output=True, text=True, env=e, timeout=600)


@pytest.fixture(scope='module')
def one(data, tmp_path_factory) -> dict:
    "The Result JSON of one process."
    out = tmp_path_factory.mktemp('one') / 'tiny.txt'
    p = bench(data, out)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(out.with_suffix('.json').read_text())


def same_result(res, ref):
    "Same config, samples (same order) and metrics as the one-process run."
    for k in ('config', 'complete', 'metrics', 'samples'): assert res[k] == ref[k], k
    assert [s['image_id'] for s in res['samples']] == [s['image_id'] for s in ref['samples']]


def test_two_ranks_write_what_one_process_writes(tmp_path, data, one):
    out = tmp_path / 'tiny.txt'
    p = bench(data, out, nproc=2)
    assert p.returncode == 0, p.stderr[-3000:]
    res = json.loads(out.with_suffix('.json').read_text())
    same_result(res, one)
    assert len(res['samples']) == 5 and len({s['caption'] for s in res['samples']}) > 1  # not one degenerate caption
    t = res['timing']
    assert (t['images_decoded'], t['world_size']) == (5, 2) and t['images_per_s'] > 0, t
    assert 'x 2 ranks' in p.stdout and p.stdout.count('wrote ') == 1  # rank 0 alone prints the report
    assert sorted(f.name for f in tmp_path.iterdir()) == ['tiny.json', 'tiny.txt']  # the rank files are gone


def test_crashed_ranks_resume(tmp_path, data, one):
    """Both ranks SIGKILL themselves after their first save; the rerun decodes only what no rank file holds."""
    out = tmp_path / 'tiny.txt'
    p = bench(data, out, nproc=2, env={'COBRA_LIT_KILL_AFTER_IMAGES': '1'})
    assert p.returncode != 0 and not out.with_suffix('.json').exists(), p.stderr[-3000:]
    parts = [json.loads(f.read_text()) for f in sorted(tmp_path.glob('tiny.rank*.json'))]
    saved = {s['image_id'] for part in parts for s in part['samples']}
    assert parts and not any(part['complete'] for part in parts) and 2 <= len(saved) <= 4, saved
    p = bench(data, out, nproc=2)
    assert p.returncode == 0, p.stderr[-3000:]
    res = json.loads(out.with_suffix('.json').read_text())
    same_result(res, one)
    assert res['timing']['images_decoded'] == 5 - len(saved)
    assert not list(tmp_path.glob('tiny.rank*.json'))
