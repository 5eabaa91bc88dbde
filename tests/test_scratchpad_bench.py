"""bench/scratchpad_reuse.py end to end on the tiny model (CPU): help text, one tiny run, its JSON."""
import json, os, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / 'bench' / 'scratchpad_reuse.py'
ENV = {**os.environ, 'HF_HUB_OFFLINE': '1', 'PYTHONPATH': str(ROOT), 'CUDA_VISIBLE_DEVICES': ''}


def run(*args, timeout=240):
    return subprocess.run([sys.executable, str(BENCH), *map(str, args)], capture_output=True, text=True, env=ENV,
                          cwd=ROOT, timeout=timeout)


def test_help():
    r = run('--help')
    assert r.returncode == 0, r.stderr
    for opt in ('--scratchpad-tokens', '--caption-tokens', '--repeats', '--device', '--checkpoint'): assert opt in r.stdout
    assert 're-read' in r.stdout


def test_tiny_run(tmp_path):
    out = tmp_path / 'reuse.json'
    r = run('--model', 'cobra-tiny', '--device', 'cpu', '--scratchpad-tokens', 8, '--caption-tokens', 4,
            '--batch-size', 2, '--repeats', 1, '--json', out)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'on CPU' in r.stdout and 'reuse costs no more than its own new tokens' in r.stdout, r.stdout
    res = json.loads(out.read_text())
    assert res['device'].startswith('CPU') and res['batch_size'] == 2
    for mode in ('reuse', 'reuse-chunk'):  # == re-read, both rows
        assert res['vs_reread'][mode]['same_greedy_tokens'] == '8/8', res['vs_reread']
        assert res['vs_reread'][mode]['max_abs_logit_diff_at_pass2_start'] < 1e-4, res['vs_reread']
    rs = res['results']
    assert set(rs) == {'reuse', 'reuse-chunk', 're-read', 'alone', 'alone+turn'}
    turn = res['turn_tokens']
    assert rs['reuse']['tokens_processed_per_row'] == turn + 4 == rs['alone+turn']['tokens_processed_per_row']
    assert rs['reuse-chunk']['tokens_processed_per_row'] == turn + 4
    # re-read processes the patches, the pass-1 prompt, the scratchpad and the turn again
    assert rs['re-read']['tokens_processed_per_row'] > res['patches'] + 8 + turn + 4
    assert all(v['seconds'] > 0 for v in rs.values())
    assert isinstance(res['reuse_within_own_tokens'], bool)
