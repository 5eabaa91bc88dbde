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

