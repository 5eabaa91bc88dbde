"""The static trace viewer in a real headless Chromium, driven over the Chrome DevTools protocol.

It loads the page written by `cobra_lit.traces.write_html_viewer` from the real LLaVA-CoT samples plus a malformed
result file, checks the first sample is shown, that filters, stepping and the side-by-side view change what is shown,
that text from data stays text, and that the page makes no network request. A screenshot is kept as evidence.
Skips only when no Chromium is installed (`apt-get install -y chromium`) or there is no shared data folder.
"""
import base64, itertools, json, shutil, subprocess, time, urllib.request
from pathlib import Path

import pytest
import websocket  # websocket-client, already in the environment (jupyter depends on it)

from cobra_lit.data import load_llava_cot, shared_data_dir
from cobra_lit.traces import llava_cot_result, load_results, traces_from_result, write_html_viewer

CHROMIUM = next(filter(None, map(shutil.which, ['chromium', 'chromium-browser'])), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason='chromium not installed (apt-get install -y chromium)')
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
         '--no-first-run', '--remote-debugging-port=0', '--window-size=1300,1000']
XSS = '<img src=x onerror="window.__pwned=1"></script><script>window.__pwned=2</script>'


@pytest.fixture(scope='module')
def data() -> Path:
    "The shared data folder (`shared_data_dir`); a test that needs it is skipped, with the reason, when there is none."
    try: return shared_data_dir()
    except FileNotFoundError as e: pytest.skip(f'needs the shared data folder: {e}')


class Chromium:
    "A headless Chromium with a fresh profile, driven over one DevTools websocket."
    def __init__(self, profile: Path, timeout=60):
        self.proc = subprocess.Popen([CHROMIUM, *FLAGS, f'--user-data-dir={profile}', 'about:blank'],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        port_file, t0 = profile/'DevToolsActivePort', time.time()
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.proc.poll() is not None: raise RuntimeError(f'chromium exited: {self.proc.stderr.read()[-2000:]!r}')
            if time.time() - t0 > timeout: raise TimeoutError('chromium did not open its DevTools port')
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        pages = json.load(urllib.request.urlopen(f'http://127.0.0.1:{port}/json/list', timeout=timeout))
        url = next(p['webSocketDebuggerUrl'] for p in pages if p['type'] == 'page')
        self.ws = websocket.create_connection(url, timeout=timeout, suppress_origin=True)
        self.ids, self.events = itertools.count(1), []

    def send(self, method, **params):
        "Call a DevTools method and return its result (events met on the way are kept in `.events`)."
        i = next(self.ids)
        self.ws.send(json.dumps({'id': i, 'method': method, 'params': params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get('id') == i:
                if 'error' in msg: raise RuntimeError(f'{method}: {msg["error"]}')
                return msg['result']
            self.events.append(msg)

    def js(self, expr):
        "Evaluate `expr` in the page and return its value."
        r = self.send('Runtime.evaluate', expression=expr, returnByValue=True, awaitPromise=True)
        if 'exceptionDetails' in r: raise RuntimeError(f'{expr}: {r["exceptionDetails"]}')
        return r['result'].get('value')

    def close(self):
        self.ws.close()
        self.proc.terminate()
        try: self.proc.wait(10)
        except subprocess.TimeoutExpired: self.proc.kill(); self.proc.wait()


@pytest.fixture
def viewer(tmp_path, data):
    "The HTML viewer of the real LLaVA-CoT samples, a second variant of the same images, and a malformed file."
    result = llava_cot_result(load_llava_cot(data/'llava_cot/samples.json'), image_prefix='llava_cot')
    twin = json.loads(json.dumps(result))
    twin['config']['variant'] = 'twin'
    for s in twin['samples']: s['caption'] = s['caption'] + ' (twin)'
    bad = {'config': {'variant': 'broken'}, 'samples': [
        {'image_id': 'llava_cot_readme_reasoning', 'image': 'llava_cot/images/llava_cot_readme_reasoning.png',
         'prompt': 'Describe. ' + XSS, 'raw_output': '<SUMMARY> s </SUMMARY><CONCLUSION> ' + 'a red cube a red cube ' * 4,
         'caption': XSS, 'references': ['a cube'], 'scores': {'semsim_mean': 0.2}},
        {'image_id': 7, 'caption': 'no image here', 'scores': {'semsim_mean': 0.9}},
        {'image': '../../etc/passwd', 'caption': 'a path outside the root'},
        {'image_id': 8, 'image': None, 'prompt': 'Describe.', 'raw_output': 'a cube', 'scratchpad': 'A red cube on a floor.',
         'caption': 'a cube', 'references': ['a cube']}]}
    (tmp_path/'broken.json').write_text(json.dumps(bad))
    traces = traces_from_result(result, 'llava.json') + traces_from_result(twin, 'twin.json') + load_results(tmp_path/'broken.json')
    page = write_html_viewer(traces, tmp_path/'viewer.html', image_root=data, title='viewer <test>')
    browser = Chromium(tmp_path/'profile')
    yield browser, page, traces
    browser.close()


def test_viewer_in_chromium(viewer, tmp_path):
    b, page, traces = viewer
    b.send('Network.enable'); b.send('Page.enable'); b.send('Runtime.enable')
    b.send('Page.navigate', url=page.as_uri())
    t0 = time.time()
    while b.js('document.readyState') != 'complete' or not b.js("document.body && document.body.dataset.shown"):
        assert time.time() - t0 < 30, 'viewer did not render'
        time.sleep(0.1)
    h2 = "document.querySelector('#panel-a h2').textContent"
    # the first sample: its image decoded, its four stages, its caption, no problems
    first = traces[0]
    assert b.js(h2) == f'{first.variant} · {first.key}'
    assert b.js("document.getElementById('pos').textContent.trim()") == f'1 / {len(traces)}'
    assert b.js("document.querySelectorAll('#panel-a details.stage summary').length") == 4
    assert b.js("document.querySelector('#panel-a img').naturalWidth") > 0
    assert b.js("document.querySelector('#panel-a .caption').textContent") == first.caption
    assert b.js("document.querySelector('#panel-b').hidden") is True

    def choose(select, value):
        b.js(f"(() => {{ const s = document.getElementById({json.dumps(select)}); s.value = {json.dumps(value)};"
             " s.dispatchEvent(new Event('change')); })()")

    # a filter changes what is shown: the malformed file's first sample, flagged, its text inert
    choose('f-variant', 'broken')
    assert b.js(h2) == 'broken · llava_cot_readme_reasoning'
    assert b.js("document.getElementById('pos').textContent.trim()") == '1 / 4'
    probs = b.js("[...document.querySelectorAll('#panel-a .problems li')].map(li => li.textContent)")
    assert {'missing CAPTION', 'missing REASONING', 'unclosed CONCLUSION', 'repeated text'} <= set(probs), probs
    assert b.js("document.querySelector('#panel-a .caption').textContent") == XSS
    assert b.js('window.__pwned') is None
    assert b.js("document.querySelectorAll('img[src=\"x\"], #panel-a script').length") == 0
    b.send('Page.captureScreenshot', format='png')  # flush a frame: an onerror handler would have run by now
    assert b.js('window.__pwned') is None
    # stepping, then a sample without an image and one whose image path leaves the root
    b.js("document.getElementById('next').click()")
    assert b.js(h2) == 'broken · 7'
    assert 'missing field: prompt' in b.js("document.querySelector('#panel-a .problems').textContent")
    b.send('Input.dispatchKeyEvent', type='keyDown', key='ArrowRight', code='ArrowRight', windowsVirtualKeyCode=39)
    assert b.js("document.getElementById('pos').textContent.trim()") == '3 / 4'  # the arrow key stepped on
    assert b.js("document.querySelector('#panel-a img')") is None  # its image path leaves the root: not embedded
    b.js("document.getElementById('next').click()")  # a free-form scratchpad: shown as one foldable section, flagged
    assert b.js("[...document.querySelectorAll('#panel-a details summary')].map(s => s.textContent)") == ['scratchpad']
    assert 'no stage tags' in b.js("document.querySelector('#panel-a .problems').textContent")
    # score range: only the sample scored 0.9 is left; a problem filter; the side-by-side view
    choose('f-score', 'semsim_mean')
    b.js("document.getElementById('f-min').value = '0.5'")
    choose('f-min', '0.5')
    assert b.js("document.body.dataset.shown") == 'broken/7'
    choose('f-score', ''); choose('f-variant', ''); choose('f-problem', 'repeated text')
    assert b.js("document.body.dataset.shown") == 'broken/llava_cot_readme_reasoning'
    choose('f-problem', ''); choose('f-variant', 'llava-cot'); choose('f-compare', 'twin')
    assert b.js("document.querySelector('#panel-b').hidden") is False
    assert b.js("document.querySelector('#panel-b h2').textContent") == f'twin · {first.key}'
    assert b.js("document.querySelector('#panel-b .caption').textContent") == first.caption + ' (twin)'
    shot = tmp_path/'trace_viewer.png'
    shot.write_bytes(base64.b64decode(b.send('Page.captureScreenshot', format='png')['data']))
    assert shot.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and shot.stat().st_size > 10_000
    print(f'screenshot: {shot}')
    # nothing but the file itself (and its data: URIs) was requested; no script error was raised
    urls = [e['params']['request']['url'] for e in b.events if e.get('method') == 'Network.requestWillBeSent']
    assert urls and all(u.startswith(('file:', 'data:')) for u in urls), urls
    assert not [e for e in b.events if e.get('method') == 'Runtime.exceptionThrown']
