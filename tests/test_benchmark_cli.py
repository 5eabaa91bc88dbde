"""`python -m cobra_lit.benchmark` as a user runs it: subprocesses, real shared COCO files, no model."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1].parent / 'shared' / 'data'
COCO = DATA / 'coco'
ANN = COCO / 'annotations' / 'captions_val2017_images.json'
EXTRA = COCO / 'annotations' / 'captions_val2017_extra.json'
pytestmark = pytest.mark.skipif(not COCO.is_dir(), reason='needs ../shared/data')


def cli(*args, cwd=None):
    env = {**os.environ, 'HF_HUB_OFFLINE': '1'}
    return subprocess.run([sys.executable, '-m', 'cobra_lit.benchmark', *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


def test_help_lists_every_subcommand_and_option():
    top = cli('--help')
    assert top.returncode == 0 and all(s in top.stdout for s in ('run', 'score', 'compare'))
    run = cli('run', '--help').stdout
    for opt in ('--checkpoint', '--output', '--annotations', '--images', '--limit', '--batch_size', '--decoder',
                '--scratchpad', '--model.type', '--prompt', '--variant'):
        assert opt in run, opt
    assert '--results' in cli('score', '--help').stdout
    assert '--output' in cli('compare', '--help').stdout


def test_score_then_compare(tmp_path):
    """score a results file, reword its caption, compare the two Result JSONs."""
    p = cli('score', '--results', COCO / 'results/clipcap_readme_results.json', '--annotations', ANN,
            '--n_boot', 50, '--output', tmp_path / 'clipcap.txt')
    assert p.returncode == 0, p.stderr
    res = json.loads((tmp_path / 'clipcap.json').read_text())
    assert res['metrics']['n'] == 1 and abs(res['metrics']['bleu4'] - 0.5911602601850922) < 1e-9
    assert (tmp_path / 'clipcap.txt').read_text().startswith('cobra_lit benchmark: clipcap_readme_results')
    # a second variant on the same image: the caption reworded
    res['config']['variant'] = 'reworded'
    res['samples'][0]['caption'] = 'Two people next to a large elephant.'
    (tmp_path / 'reworded.json').write_text(json.dumps(res))
    p = cli('compare', tmp_path / 'clipcap.json', tmp_path / 'reworded.json', '--output', tmp_path / 'cmp', '--n_boot', 50)
    assert p.returncode == 0, p.stderr
    rows = (tmp_path / 'cmp/compare.csv').read_text().splitlines()
    assert rows[0].startswith('variant,metric,value,ci_lo,ci_hi') and len(rows) == 1 + 2 * 10
    assert (tmp_path / 'cmp/compare.png').stat().st_size > 5000
    assert '| reworded | 1 |' in (tmp_path / 'cmp/compare.md').read_text()


def test_score_java_tokenizer_matches_python(tmp_path):
    if subprocess.run(['which', 'java'], capture_output=True).returncode: pytest.skip('no java')
    outs = {}
    for tok in ('ptb', 'ptb-java'):
        p = cli('score', '--results', COCO / 'results/fakecap_results_val2017_subset.json', '--annotations', ANN, EXTRA,
                '--tokenize', tok, '--no-semsim', '--n_boot', 20, '--output', tmp_path / f'{tok}.txt')
        assert p.returncode == 0, p.stderr
        outs[tok] = json.loads((tmp_path / f'{tok}.json').read_text())['metrics']
    for k in ('bleu1', 'bleu2', 'bleu3', 'bleu4', 'cider', 'rougeL'):
        assert outs['ptb'][k] == pytest.approx(outs['ptb-java'][k], abs=1e-12), k


@pytest.mark.parametrize('args,message', [
    (['--checkpoint', 'none', '--annotations', COCO / 'results/fakecap_results_val2017_subset.json'], 'is this a results file?'),
    (['--checkpoint', 'none', '--annotations', DATA / 'nope.json'], 'annotation file not found'),
    (['--checkpoint', 'none', '--images', DATA / 'llava_cot'], 'image file(s) missing'),
    (['--checkpoint', 'runs/missing/step-1.pt'], 'checkpoint not found'),
])
def test_run_input_errors_come_first(tmp_path, args, message):
    p = cli('--output', tmp_path / 'r.txt', *args)
    assert p.returncode == 2 and message in p.stderr, (p.stdout, p.stderr)
    assert not (tmp_path / 'r.json').exists()


def test_score_rejects_unknown_image_ids(tmp_path):
    (tmp_path / 'res.json').write_text(json.dumps([{'image_id': 1, 'caption': 'a cat'}]))
    p = cli('score', '--results', tmp_path / 'res.json', '--annotations', ANN)
    assert p.returncode == 2 and 'no reference captions' in p.stderr
