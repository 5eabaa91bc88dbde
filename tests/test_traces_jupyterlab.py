"""`nbs/40_traces.ipynb` where users open it: a real JupyterLab server, the notebook run from its menu, the
`TraceViewer` widget used in headless Chromium (Debian's `/usr/bin/chromium`, driven by Playwright).

The server listens on 127.0.0.1 on a free port with token auth on and `--no-browser`; its root is a temp folder laid
out like the checkout: `nbs/40_traces.ipynb` and `nbs/artifacts/` copied, `shared/data` a link to the shared data
folder. Its `python3` kernel is this venv's python (a kernelspec written into the temp folder, first on
`JUPYTER_PATH`), importing this checkout's `cobra_lit`; settings, workspaces and runtime files stay in the temp
folder. The test runs all cells (Run > Run All Cells), waits until every code cell ran, then checks the viewer of the
four variants' Result JSON files shows the first sample (heading, caption, and its image, from the folder the Result
JSON records) and that stepping (next / previous), the variant, problem and `beside` dropdowns and the score range
slider change what is shown. A screenshot is kept under the pytest tmp dir; with `COBRA_LIT_UPDATE_SCREENSHOT=1` it
is also copied to `nbs/artifacts/traces_jupyterlab.png` (the committed evidence).
Skips, saying why, when Chromium, Playwright or the shared data folder is missing; with
`COBRA_LIT_REQUIRE_BROWSER=1` (CI) a missing browser fails instead.
"""
import json, os, re, secrets, shutil, socket, subprocess, sys, time, urllib.error, urllib.request
from pathlib import Path

import pytest

from cobra_lit.data import shared_data_dir
from cobra_lit.traces import load_results

REPO = Path(__file__).resolve().parents[1]
RESULTS = 'artifacts/[0-9]_*.json'  # what the notebook's viewer browses (relative to nbs/)
SETTINGS = {  # JupyterLab user settings: render every cell (no windowing), no news or update checks
    '@jupyterlab/notebook-extension/tracker.jupyterlab-settings': {'windowingMode': 'none'},
    '@jupyterlab/apputils-extension/notification.jupyterlab-settings': {'fetchNews': 'false', 'checkForUpdates': False},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def api(base, path, token=None, method='GET', timeout=5):
    "(status, JSON body or None) of a Jupyter REST call."
    headers = {'Authorization': f'token {token}'} if token else {}
    req = urllib.request.Request(base + path, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r: return r.status, json.loads(r.read() or 'null')
    except urllib.error.HTTPError as e: return e.code, None
    except OSError: return None, None  # not listening (yet)


def lab_root(tmp: Path) -> Path:
    "A temp folder laid out like the checkout, with this venv's python as the `python3` kernel and fresh settings."
    try: data = shared_data_dir()
    except FileNotFoundError as e: pytest.skip(f'needs the shared data folder: {e}')
    root = tmp/'lab'
    (root/'nbs').mkdir(parents=True)
    shutil.copy(REPO/'nbs/40_traces.ipynb', root/'nbs')
    shutil.copytree(REPO/'nbs/artifacts', root/'nbs/artifacts')
    (root/'shared').mkdir()
    os.symlink(data, root/'shared/data')  # where `shared_data_dir` and the recorded `../shared/data/...` look
    spec = tmp/'jupyter/kernels/python3'
    spec.mkdir(parents=True)
    (spec/'kernel.json').write_text(json.dumps({
        'argv': [sys.executable, '-m', 'ipykernel_launcher', '-f', '{connection_file}'],
        'display_name': 'Python 3 (cobra_lit venv)', 'language': 'python'}))
    for name, value in SETTINGS.items():
        (tmp/'settings'/name).parent.mkdir(parents=True, exist_ok=True)
        (tmp/'settings'/name).write_text(json.dumps(value))
    return root


@pytest.fixture
def lab(tmp_path):
    "A JupyterLab server on 127.0.0.1:<free port> with a random token; yields (base URL, token, root, log file)."
    root, port, token = lab_root(tmp_path), free_port(), secrets.token_hex(16)
    env = {**os.environ, 'PYTHONPATH': str(REPO), 'HF_HUB_OFFLINE': '1', 'TOKENIZERS_PARALLELISM': 'false',
           'JUPYTER_PATH': str(tmp_path/'jupyter'), 'JUPYTER_CONFIG_DIR': str(tmp_path/'config'),
           'JUPYTER_DATA_DIR': str(tmp_path/'data'), 'JUPYTER_RUNTIME_DIR': str(tmp_path/'runtime'),
           'IPYTHONDIR': str(tmp_path/'ipython'), 'MPLBACKEND': 'module://matplotlib_inline.backend_inline'}
    cmd = [sys.executable, '-m', 'jupyter', 'lab', '--no-browser', '--ServerApp.ip=127.0.0.1',
           f'--ServerApp.port={port}', '--ServerApp.port_retries=0', f'--ServerApp.root_dir={root}',
           f'--IdentityProvider.token={token}', f'--LabApp.user_settings_dir={tmp_path/"settings"}',
           f'--LabApp.workspaces_dir={tmp_path/"workspaces"}',
           '--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate']
    cmd += ['--allow-root'] * (os.geteuid() == 0)  # CI machines run as root
    log = tmp_path/'jupyterlab.log'
    with open(log, 'wb') as out:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f'http://127.0.0.1:{port}'
    try:
        t0 = time.time()
        while api(base, '/api/status', token)[0] != 200:
            assert proc.poll() is None, f'jupyter lab exited: {log.read_text()[-3000:]}'
            assert time.time() - t0 < 120, f'jupyter lab did not answer: {log.read_text()[-3000:]}'
            time.sleep(0.5)
        yield base, token, root, log
    finally:
        if proc.poll() is None:
            api(base, '/api/shutdown', token, method='POST')  # shuts its kernels down too
            try: proc.wait(30)
            except subprocess.TimeoutExpired: proc.terminate(); proc.wait(10)


def test_trace_viewer_in_jupyterlab(chromium, lab, tmp_path):
    from playwright.sync_api import expect
    base, token, root, log = lab
    # token auth is on, and the kernel is this venv's python
    assert api(base, '/api/contents')[0] == 403 and api(base, '/api/contents', 'wrong-token')[0] == 403
    specs = api(base, '/api/kernelspecs', token)[1]
    assert specs['kernelspecs']['python3']['spec']['argv'][0] == sys.executable, specs
    traces = load_results(*sorted((root/'nbs/artifacts').glob('[0-9]_*.json')))
    if any(t.image_root is None for t in traces):
        pytest.skip('the image folder the Result JSONs record is not under the shared data folder')
    page = chromium.new_page(viewport={'width': 1400, 'height': 1000})
    errors = []
    page.on('pageerror', lambda e: errors.append(str(e)))
    page.goto(f'{base}/lab/tree/nbs/40_traces.ipynb?token={token}')
    page.wait_for_selector('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=120_000)
    # Run > Run All Cells, as a user does (once the notebook has the focus)
    page.locator('.jp-Notebook .jp-Cell').first.click()
    page.locator('.lm-MenuBar-item', has_text=re.compile(r'^Run$')).click()
    page.locator('.lm-Menu-item[data-command="runmenu:run-all"]', has_text='Run All Cells').click()
    t0 = time.time()
    prompts = page.locator('.jp-Notebook .jp-CodeCell .jp-InputPrompt')
    n_code = sum(c['cell_type'] == 'code' for c in json.loads((root/'nbs/40_traces.ipynb').read_text())['cells'])
    while True:  # every code cell got its execution count: Run All stops at the first error
        texts = [s.strip() for s in prompts.all_inner_texts()]
        if len(texts) == n_code and all(re.fullmatch(r'\[\d+\]:', s) for s in texts): break
        errs = page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]').all_inner_texts()
        assert not [e for e in errs if 'Traceback' in e or 'Error' in e], errs
        if time.time() - t0 > 300 or time.time() - t0 > 30 and set(texts) == {'[ ]:'}:
            page.screenshot(path=tmp_path/'failed.png')
            pytest.fail(f'cells not all run after {time.time() - t0:.0f} s: {texts} (see {tmp_path/"failed.png"})')
        time.sleep(1)
    run_s = time.time() - t0
    v = page.locator('.cobra-trace-viewer')
    v.wait_for(timeout=60_000)
    v.scroll_into_view_if_needed()

    def shown(pos: int, n: int, t, twin=None):
        "The viewer shows `t` as the `pos`-th of `n` traces passing the filters (and `twin` beside it)."
        expect(v.get_by_text(re.compile(rf'^{pos} / {n}$'))).to_be_visible()
        heads = [f'{t.variant} · {t.key}'] + ([f'{twin.variant} · {twin.key}'] if twin else [])
        expect(v.locator('h3')).to_have_text(heads)
        flat = lambda x: ' '.join(x.split())
        assert f'caption: {flat(t.caption)}' in flat(v.inner_text())
        img = v.locator('img').first
        page.wait_for_function('el => el.complete && el.naturalWidth > 0', arg=img.element_handle(), timeout=10_000)
        assert 'image not available' not in v.inner_text()

    shown(1, len(traces), traces[0])
    v.get_by_role('button', name='▶').click()
    shown(2, len(traces), traces[1])
    v.get_by_role('button', name='▶').click()
    shown(3, len(traces), traces[2])
    v.get_by_role('button', name='◀').click()
    shown(2, len(traces), traces[1])
    dropdown = lambda name: v.locator('.widget-dropdown', has_text=name).locator('select')
    last = traces[-1].variant  # the variant dropdown: only that variant's traces
    dropdown('variant').select_option(last)
    mine = [t for t in traces if t.variant == last]
    shown(1, len(mine), mine[0])
    dropdown('beside').select_option(traces[0].variant)  # the same image's trace of another variant, beside it
    twin = next(t for t in traces if t.variant == traces[0].variant and t.key == mine[0].key)
    shown(1, len(mine), mine[0], twin)
    assert v.locator('img').count() == 2
    dropdown('problem').select_option('(with problems)')
    flagged = [t for t in mine if t.problems]
    shown(1, len(flagged), flagged[0], next(t for t in traces if t.variant == twin.variant and t.key == flagged[0].key))
    dropdown('problem').select_option('(any)')
    dropdown('beside').select_option('(none)')
    shown(1, len(mine), mine[0])
    # the score range slider: drag its lower handle to the middle; fewer traces pass
    slider = v.locator('.widget-hslider, .widget-slider').locator('.noUi-target, .slider').first
    handle = v.locator('.noUi-handle').first
    box, hb = slider.bounding_box(), handle.bounding_box()
    page.mouse.move(hb['x'] + hb['width'] / 2, hb['y'] + hb['height'] / 2)
    page.mouse.down()
    page.mouse.move(box['x'] + box['width'] / 2, hb['y'] + hb['height'] / 2, steps=10)
    page.mouse.up()
    scores = [t.scores['semsim_mean'] for t in traces]
    n = lambda lo, hi, eps: sum(lo - eps <= t.scores['semsim_mean'] <= hi + eps for t in mine)
    t0 = time.time()
    while True:  # the kernel answers each move of the drag: wait until the count shown agrees with the range shown
        label = re.search(r'(\d+) / (\d+)', v.inner_text())
        lo, hi = (float(x) for x in re.findall(r'-?\d+\.\d+', v.locator('.widget-readout').first.inner_text())[:2])
        if n(lo, hi, -0.005) <= int(label[2]) <= n(lo, hi, 0.005) < len(mine): break  # the readout: 2 decimals
        assert time.time() - t0 < 15, (label[0], lo, hi, len(mine))
        time.sleep(0.5)
    assert min(scores) + 0.01 < lo < hi and hi == pytest.approx(max(scores), abs=0.005), (lo, hi)
    dropdown('beside').select_option(traces[0].variant)  # the evidence: two variants side by side, from the top
    expect(v.locator('h3')).to_have_count(2)
    v.evaluate('el => el.scrollIntoView()')
    page.wait_for_function('els => els.every(e => e.complete && e.naturalWidth > 0)',
                           arg=v.locator('img').element_handles())
    shot = tmp_path/'traces_jupyterlab.png'
    page.screenshot(path=shot)
    assert shot.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and shot.stat().st_size > 20_000
    if os.environ.get('COBRA_LIT_UPDATE_SCREENSHOT') == '1':
        shutil.copy(shot, REPO/'nbs/artifacts/traces_jupyterlab.png')
    print(f'screenshot: {shot}; Run All Cells took {run_s:.1f} s')
    assert not errors, errors
    page.close()
