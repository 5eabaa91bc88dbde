"""The data command run as users run it, in a subprocess: `python -m cobra_lit.llava_cot prepare ...` and the installed
console script `cobra-lit-prepare`."""
import json, os, shutil, subprocess, sys
from pathlib import Path

import pytest

from cobra_lit.data import shared_data_dir

ENV = {**os.environ, 'HF_HUB_OFFLINE': '1', 'TOKENIZERS_PARALLELISM': 'false'}


def run(*args, cwd, cmd=(sys.executable, '-m', 'cobra_lit.llava_cot')):
    return subprocess.run([*cmd, *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300)


def check_help(r):
    assert r.returncode == 0, r.stderr
    for opt in ['--dataset_root', '--download_dataset', '--validate_format', '--demo', '--strict', '--path_map',
                '--image_roots', '--link_images']:
        assert opt in r.stdout, opt
    assert 'download Xkev/LLaVA-CoT-100k' in r.stdout  # the options carry help text


def test_help(tmp_path):
    check_help(run('prepare', '--help', cwd=tmp_path))


def test_console_script_help(tmp_path):
    "`pip install -e .` (scripts/setup.sh) installs the console scripts declared in settings.ini."
    exe = Path(sys.executable).parent/'cobra-lit-prepare'
    exe = str(exe) if exe.exists() else shutil.which('cobra-lit-prepare')
    assert exe, 'cobra-lit-prepare is not installed: run scripts/setup.sh (pip install -e .) to install it'
    check_help(run('--help', cwd=tmp_path, cmd=(exe,)))


def test_data_module_has_no_command_and_no_cycle(tmp_path):
    "`cobra_lit.data` never imports `cobra_lit.llava_cot`; run as a script it names the command to use."
    code = 'import sys, cobra_lit.data; print("cobra_lit.llava_cot" in sys.modules)'
    r = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == 'False', (r.stdout, r.stderr)
    r = run('prepare', '--help', cwd=tmp_path, cmd=(sys.executable, '-m', 'cobra_lit.data'))
    assert r.returncode == 1 and 'cobra-lit-prepare' in r.stderr and 'Traceback' not in r.stderr, r.stderr


def test_offline_download_says_what_to_place(tmp_path):
    r = run('prepare', '--dataset_root', 'data', '--download_dataset', 'true', '--validate_format', cwd=tmp_path)
    assert r.returncode == 2
    assert 'Traceback' not in r.stderr, r.stderr
    assert 'could not download Xkev/LLaVA-CoT-100k' in r.stderr
    assert 'data/download/llava-cot-100k/llava_cot_100k.json' in r.stderr and 'image.zip.part-aa' in r.stderr


def test_unknown_command(tmp_path):
    r = run('fetch', cwd=tmp_path)
    assert r.returncode == 2 and 'unknown command' in r.stderr and 'Traceback' not in r.stderr


def test_demo(tmp_path):
    r = run('prepare', '--demo', 'true', '--dataset_root', 'data', '--n_train', '24', '--n_test', '8', '--seed', '5',
            cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    demo = tmp_path/'data'/'demo'
    train = json.loads((demo/'llava_cot_100k.json').read_text())
    assert len(train) == 24 and all((demo/'images'/t['image']).is_file() for t in train)
    coco = json.loads((demo/'captions_test.json').read_text())
    assert len(coco['images']) == 8 and len(coco['annotations']) >= 24
    rep = json.loads((tmp_path/'data'/'reports'/'demo'/'llava_cot_100k.validation.json').read_text())
    assert (rep['n_records'], rep['n_kept'], rep['by_source']) == (24, 24, {'shapes': 24})
    assert (rep['problems'], rep['warnings']) == ([], [])  # the demo data validates clean


@pytest.fixture
def shared():
    "The shared data folder; the test is skipped, with the reason, where there is none."
    try: return shared_data_dir()
    except FileNotFoundError as e: pytest.skip(str(e))


def test_validate_shared_samples(tmp_path, shared):
    "The real LLaVA-CoT samples, strictly: the text-only sample is kept and listed; a short max length fails."
    args = ('prepare', '--dataset_root', 'data', '--annotations', str(shared/'llava_cot'/'samples.json'),
            '--image_roots', f'[{shared/"llava_cot"}]', '--strict', 'true')
    r = run(*args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert 'by source: images 2, (no image) 1' in r.stdout and 'srpo_chartqa_two_col_100466' in r.stdout
    r = run(*args, '--max_length', '150', cwd=tmp_path)
    assert r.returncode == 1 and 'strict validation failed' in r.stderr and 'Traceback' not in r.stderr



def bad_data_corpus(d: Path) -> Path:
    "One record of each kind of bad data, and good ones (as in `00a_llava_cot`), with the image `src/ok.png`."
    from PIL import Image
    (d/'src').mkdir(parents=True, exist_ok=True); Image.new('RGB', (8, 8), 'red').save(d/'src'/'ok.png')
    ans = '<SUMMARY>s</SUMMARY>\n\n<CAPTION>c</CAPTION>\n\n<REASONING>r</REASONING>\n\n<CONCLUSION>a</CONCLUSION>'
    h, g = lambda v: {'from': 'human', 'value': v}, lambda v: {'from': 'gpt', 'value': v}
    rec = lambda i, *turns, img='src/ok.png': {'id': i, 'image': img, 'conversations': list(turns)}
    recs = [rec('good', h('Q?'), g(ans)),
            rec('answer_empty', h('Q?'), g('')), rec('answer_blank', h('Q?'), g(' \n\t')),
            rec('answer_image', h('Q?'), g('<image>')),
            rec('answer_tags', h('Q?'), g('<SUMMARY> </SUMMARY><CONCLUSION></CONCLUSION>')),
            rec('question_blank_text_only', h('  '), g(ans), img=None),
            rec('question_later_image', h('Q?'), g(ans), h('<image>'), g(ans)),
            rec('ends_on_human', h('Q?'), g(ans), h('And?')), rec('value_number', h('Q?'), g(42)),
            rec('path_up', h('Q?'), g(ans), img='../src/ok.png'),
            rec('image_only_question', h('<image>'), g(ans)), rec('image_in_answer', h('Q?'), g('<image>\n' + ans)),
            rec('no_stage_tags', h('Q?'), g('A red square.'))]
    (d/'corpus.json').write_text(json.dumps(recs)); return d/'corpus.json'


DROPPED = {'answer_empty': 'empty_answer', 'answer_blank': 'empty_answer', 'answer_image': 'empty_answer',
           'answer_tags': 'empty_answer', 'question_blank_text_only': 'empty_question',
           'question_later_image': 'empty_question', 'ends_on_human': 'roles', 'value_number': 'fields',
           'path_up': 'unsafe_path'}
KEPT = {'good': None, 'image_only_question': 'image_only_question', 'image_in_answer': 'image_in_answer',
        'no_stage_tags': 'stages'}


def test_validate_bad_data(tmp_path):
    "Bad training data, as a user validates it: each kind reported with its reason and dropped; strict mode fails."
    corpus = bad_data_corpus(tmp_path/'corpus')
    args = ('prepare', '--dataset_root', 'data', '--annotations', str(corpus), '--validate_format')
    r = run(*args, '--clean_output', 'clean.json', cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    for sid, cat in {**DROPPED, **{k: v for k, v in KEPT.items() if v}}.items():
        assert f'  {sid}: [{cat}] ' in r.stdout, (sid, cat, r.stdout)
    assert 'turn 1 (gpt): empty answer (blank, only <image> or only stage tags): it would train the model to answer' \
           ' nothing' in r.stdout
    rep = json.loads((tmp_path/'data'/'reports'/'llava-cot-100k'/'corpus.validation.json').read_text())
    assert (rep['n_records'], rep['n_kept'], rep['n_dropped']) == (13, 4, 9)
    assert {p['id']: p['category'] for p in rep['problems']} == DROPPED
    assert {p['id'] for p in rep['warnings']} == {k for k, v in KEPT.items() if v}
    assert [x['id'] for x in json.loads((tmp_path/'clean.json').read_text())] == list(KEPT)
    r = run(*args, '--strict', cwd=tmp_path)
    assert r.returncode == 1 and 'Traceback' not in r.stderr, r.stderr
    assert 'strict validation failed: 9 problem(s) in ' in r.stderr and 'empty_answer 4' in r.stderr, r.stderr
