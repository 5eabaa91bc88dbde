"""`python -m cobra_lit.benchmark` as a user runs it: subprocesses, real shared COCO files, no model."""
import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fastcore.docments import docments

from cobra_lit.data import DATA_ENV
from cobra_lit.metrics import caption_stats, corpus_metrics, tokenize_captions
from cobra_lit.scratchpad import DecodeConfig

ANN = 'coco/annotations/captions_val2017_images.json'  # inside the shared data folder
EXTRA = 'coco/annotations/captions_val2017_extra.json'
IMAGES = 'coco/images/val2017'
needs_java = pytest.mark.skipif(shutil.which('java') is None,
                                reason='needs java: pycocoevalcap\'s PTBTokenizer runs Stanford CoreNLP')


def cli(*args, cwd=None, data_env=None):
    "Run the CLI in a subprocess; `COBRA_LIT_DATA` is set only when `data_env` is given."
    env = {k: v for k, v in os.environ.items() if k != DATA_ENV} | {'HF_HUB_OFFLINE': '1'}
    if data_env is not None: env[DATA_ENV] = str(data_env)
    return subprocess.run([sys.executable, '-m', 'cobra_lit.benchmark', *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


def test_help_lists_every_subcommand_and_option(tmp_path):
    """`--help` works anywhere: outside the checkout, with no shared data folder and no COBRA_LIT_DATA."""
    top = cli('--help', cwd=tmp_path)
    assert top.returncode == 0 and all(s in top.stdout for s in ('run', 'score', 'compare')), top.stderr
    run = cli('run', '--help', cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    for opt in ('--checkpoint', '--output', '--annotations', '--images', '--limit', '--batch_size', '--decoder',
                '--scratchpad', '--model.type', '--prompt', '--max_new_tokens', '--scratchpad_max_new_tokens',
                '--stage_max_new_tokens', '--judge', '--decode.seed', '--variant'):
        assert opt in run.stdout, opt
    helps = ' '.join(run.stdout.split())
    for f in dataclasses.fields(DecodeConfig):  # one option per field, its comment the help
        h = docments(DecodeConfig)[f.name]
        assert h and h in helps, f.name
    assert f'required unless {DATA_ENV} is set' in ' '.join(run.stdout.split())
    assert '--results' in cli('score', '--help', cwd=tmp_path).stdout
    assert '--output' in cli('compare', '--help', cwd=tmp_path).stdout


def test_run_inputs_are_explicit(tmp_path, data):
    """Without COBRA_LIT_DATA `--annotations`/`--images` are required, even in the checkout; with it, its subset."""
    p = cli('--checkpoint', 'none', '--output', tmp_path / 'r.txt')
    assert p.returncode == 2 and 'required: --annotations, --images' in p.stderr, p.stderr
    p = cli('--checkpoint', tmp_path / 'missing.pt', '--output', tmp_path / 'r.txt', data_env=data, cwd=tmp_path)
    assert p.returncode == 2 and 'checkpoint not found' in p.stderr, p.stderr  # the inputs were found and checked first
    assert not (tmp_path / 'r.json').exists()


def test_score_then_compare(tmp_path, data):
    """score a results file, reword its caption, compare the two Result JSONs."""
    p = cli('score', '--results', data / 'coco/results/clipcap_readme_results.json', '--annotations', data / ANN,
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


@needs_java
def test_score_java_tokenizer_matches_python(tmp_path, data):
    outs = {}
    for tok in ('ptb', 'ptb-java'):
        p = cli('score', '--results', data / 'coco/results/fakecap_results_val2017_subset.json',
                '--annotations', data / ANN, data / EXTRA,
                '--tokenize', tok, '--no-semsim', '--n_boot', 20, '--output', tmp_path / f'{tok}.txt')
        assert p.returncode == 0, p.stderr
        outs[tok] = json.loads((tmp_path / f'{tok}.json').read_text())['metrics']
    for k in ('bleu1', 'bleu2', 'bleu3', 'bleu4', 'cider', 'rougeL'):
        assert outs['ptb'][k] == pytest.approx(outs['ptb-java'][k], abs=1e-12), k


@pytest.mark.parametrize('args,message', [  # --annotations / --images: paths inside the shared data folder
    ({'--annotations': 'coco/results/fakecap_results_val2017_subset.json'}, 'is this a results file?'),
    ({'--annotations': 'nope.json'}, 'annotation file not found'),
    ({'--images': 'llava_cot'}, 'image file(s) missing'),
    ({'--checkpoint': 'runs/missing/step-1.pt'}, 'checkpoint not found'),
    ({'--model.type': 'cobra-huge'}, "invalid choice: 'cobra-huge'"),
    ({'--batch_size': 0}, 'bad decode option: DecodeConfig.batch_size must be a positive integer'),
    ({'--judge': 'gpt4'}, 'bad decode option: DecodeConfig.judge must be one of'),
])
def test_run_input_errors_come_first(tmp_path, data, args, message):
    opts = {'--checkpoint': 'none', '--annotations': ANN, '--images': IMAGES} | args
    for k in ('--annotations', '--images'): opts[k] = data / opts[k]
    p = cli('--output', tmp_path / 'r.txt', *(a for kv in opts.items() for a in kv))
    assert p.returncode == 2 and message in p.stderr, (p.stdout, p.stderr)
    assert not (tmp_path / 'r.json').exists()


def test_score_rejects_unknown_image_ids(tmp_path, data):
    (tmp_path / 'res.json').write_text(json.dumps([{'image_id': 1, 'caption': 'a cat'}]))
    p = cli('score', '--results', tmp_path / 'res.json', '--annotations', data / ANN)
    assert p.returncode == 2 and 'no reference captions' in p.stderr


def shared_captions(data: Path) -> list:
    "Every distinct caption of the shared COCO annotation and results files and of the CLIPScore example."
    caps, COCO = [], data / 'coco'
    for f in sorted((COCO / 'annotations').glob('*.json')): caps += [a['caption'] for a in json.loads(f.read_text())['annotations']]
    for f in sorted((COCO / 'results').glob('*results*.json')): caps += [a['caption'] for a in json.loads(f.read_text())]
    for f in ('refs.json', 'good_captions.json', 'bad_captions.json'):
        for v in json.loads((data / 'bleu_oracle/clipscore_example' / f).read_text()).values():
            caps += v if isinstance(v, list) else [v]
    return list(dict.fromkeys(caps))


HARD = ["Don't stop (now)!", "It's the man's dog's bone.", "He said 'hi' to me.", "and/or 3.5 $5 1,000 U.S. Mr. Smith",
        "A t-shirt -- nice... yes; no: maybe?", "can't won't gonna", "cafe\u2019s \u201cquote\u201d",
        "a [in] {b} #1 @home 50% *star*", "e-mail x.y etc. St. Louis", "condiments..", "5'10\" tall",
        "The '90s rock 'n' roll", "Hello!!! What?!", "#hashtag", "grade A.", "a|b", "emoji \U0001F600 ok", "a \u2013 b \u2014 c"]


@needs_java
def test_ptb_tokenize_matches_the_java_tokenizer(data):
    """cobra_lit.metrics' Python PTB tokenisation gives the Java tokenizer's tokens on every shared caption."""
    caps = shared_captions(data) + HARD
    assert len(caps) > 1000
    py, jv = (tokenize_captions({i: [c] for i, c in enumerate(caps)}, how) for how in ('ptb', 'ptb-java'))
    assert [(caps[i], py[i], jv[i]) for i in py if py[i] != jv[i]] == []


@needs_java
@pytest.mark.parametrize('captions', ['good_captions.json', 'bad_captions.json'])
def test_clipscore_example_with_the_java_tokenizer(captions, data):
    """The CLIPScore example's published BLEU-1..4, ROUGE-L and CIDEr, PTB-tokenised by Java."""
    ex = data / 'bleu_oracle/clipscore_example'
    published = json.loads((ex / 'expected_scores.json').read_text())[captions]['published']
    m = corpus_metrics(caption_stats(json.loads((ex / captions).read_text()), json.loads((ex / 'refs.json').read_text()),
                                     tokenize='ptb-java', semsim=False))
    names = {'bleu1': 'BLEU-1', 'bleu2': 'BLEU-2', 'bleu3': 'BLEU-3', 'bleu4': 'BLEU-4', 'rougeL': 'ROUGE', 'cider': 'CIDER'}
    for k, name in names.items(): assert m[k] == pytest.approx(published[name], abs=5e-5), k
