"""bench/decode.py runs end to end on cobra-tiny (CPU) and reports both generators on the same model."""
import json, os, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_decode_bench_tiny(tmp_path):
    out = tmp_path / 'decode.json'
    env = dict(os.environ, HF_HUB_OFFLINE='1', TOKENIZERS_PARALLELISM='false')
    r = subprocess.run([sys.executable, 'bench/decode.py', '--model', 'cobra-tiny', '--device', 'cpu', '--new-tokens', '6',
                        '--prompt-tokens', '30', '--json', str(out)], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res['device'].startswith('CPU') and res['new_tokens'] == 6
    names = [x['name'] for x in res['results']]
    assert names == ['cobra_lit generate', 'transformers generate']
    assert all(x['tok_s'] > 0 for x in res['results'])
    # same weights, same prompt, greedy: transformers must produce cobra_lit's tokens
    assert res['results'][1]['same_tokens_as_first'] == 6
    assert 'tok/s' in r.stdout


def test_decode_bench_help():
    r = subprocess.run([sys.executable, 'bench/decode.py', '--help'], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and '--new-tokens' in r.stdout
