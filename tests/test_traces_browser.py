"""The static trace viewer in a real headless Chromium (Debian's `/usr/bin/chromium`), driven by Playwright.

It loads the page written by `cobra_lit.traces.write_html_viewer` from the real LLaVA-CoT samples plus a malformed
result file, checks the first sample is shown, that filters, stepping and the side-by-side view change what is shown,
that text from data stays text, and that the page makes no network request. A screenshot is kept as evidence. A
second test writes the page the README's way, `python -m cobra_lit.traces nbs/artifacts/[0-9]_*.json --html F` with
no `--image-root`, and checks its images are real (the folder each Result JSON records).
Skips, saying why, when Chromium (`apt-get install -y chromium`) or Playwright (`pip install playwright`) is missing
or there is no shared data folder; with `COBRA_LIT_REQUIRE_BROWSER=1` (CI) a missing browser fails instead.
"""
import json, os, subprocess, sys
from pathlib import Path

import pytest

from cobra_lit.data import load_llava_cot
from cobra_lit.traces import llava_cot_result, load_results, traces_from_result, write_html_viewer

REPO = Path(__file__).resolve().parents[1]
XSS = '<img src=x onerror="window.__pwned=1"></script><script>window.__pwned=2</script>'


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
    return write_html_viewer(traces, tmp_path/'viewer.html', image_root=data, title='viewer <test>'), traces


def open_page(chromium, url):
    "A new page at `url` (1300 x 1000), once the viewer has rendered; the requests it makes and its script errors."
    page = chromium.new_page(viewport={'width': 1300, 'height': 1000})
    requests, errors = [], []
    page.on('request', lambda r: requests.append(r.url))
    page.on('pageerror', lambda e: errors.append(e))
    page.goto(url)
    page.wait_for_function('document.body && document.body.dataset.shown', timeout=30_000)
    return page, requests, errors


def test_viewer_in_chromium(chromium, viewer, tmp_path):
    path, traces = viewer
    page, requests, errors = open_page(chromium, path.as_uri())
    js, h2 = page.evaluate, "document.querySelector('#panel-a h2').textContent"
    # the first sample: its image decoded, its four stages, its caption, no problems
    first = traces[0]
    assert js(h2) == f'{first.variant} · {first.key}'
    assert js("document.getElementById('pos').textContent.trim()") == f'1 / {len(traces)}'
    assert js("document.querySelectorAll('#panel-a details.stage summary').length") == 4
    assert js("document.querySelector('#panel-a img').naturalWidth") > 0
    assert js("document.querySelector('#panel-a .caption').textContent") == first.caption
    assert js("document.querySelector('#panel-b').hidden") is True
    # a filter changes what is shown: the malformed file's first sample, flagged, its text inert
    page.select_option('#f-variant', 'broken')
    assert js(h2) == 'broken · llava_cot_readme_reasoning'
    assert js("document.getElementById('pos').textContent.trim()") == '1 / 4'
    probs = js("[...document.querySelectorAll('#panel-a .problems li')].map(li => li.textContent)")
    assert {'missing CAPTION', 'missing REASONING', 'unclosed CONCLUSION', 'repeated text'} <= set(probs), probs
    assert js("document.querySelector('#panel-a .caption').textContent") == XSS
    assert js('window.__pwned') is None
    assert js("document.querySelectorAll('img[src=\"x\"], #panel-a script').length") == 0
    page.screenshot()  # flush a frame: an onerror handler would have run by now
    assert js('window.__pwned') is None
    # stepping (the button, then the arrow key), a sample without an image and one whose image path leaves the root
    page.click('#next')
    assert js(h2) == 'broken · 7'
    assert 'missing field: prompt' in js("document.querySelector('#panel-a .problems').textContent")
    page.keyboard.press('ArrowRight')
    assert js("document.getElementById('pos').textContent.trim()") == '3 / 4'
    assert js("document.querySelector('#panel-a img')") is None  # its image path leaves the root: not embedded
    page.click('#next')  # a free-form scratchpad: shown as one foldable section, flagged
    assert js("[...document.querySelectorAll('#panel-a details summary')].map(s => s.textContent)") == ['scratchpad']
    assert 'no stage tags' in js("document.querySelector('#panel-a .problems').textContent")
    # score range: only the sample scored 0.9 is left; a problem filter; the side-by-side view
    page.select_option('#f-score', 'semsim_mean')
    page.fill('#f-min', '0.5')
    page.dispatch_event('#f-min', 'change')
    assert js('document.body.dataset.shown') == 'broken/7'
    for sel, value in (('#f-score', ''), ('#f-variant', ''), ('#f-problem', 'repeated text')):
        page.select_option(sel, value)
    assert js('document.body.dataset.shown') == 'broken/llava_cot_readme_reasoning'
    for sel, value in (('#f-problem', ''), ('#f-variant', 'llava-cot'), ('#f-compare', 'twin')):
        page.select_option(sel, value)
    assert js("document.querySelector('#panel-b').hidden") is False
    assert js("document.querySelector('#panel-b h2').textContent") == f'twin · {first.key}'
    assert js("document.querySelector('#panel-b .caption').textContent") == first.caption + ' (twin)'
    shot = page.screenshot(path=tmp_path/'trace_viewer.png')
    assert shot[:8] == b'\x89PNG\r\n\x1a\n' and len(shot) > 10_000
    print(f'screenshot: {tmp_path/"trace_viewer.png"}')
    # nothing but the file itself (and its data: URIs) was requested; no script error was raised
    assert requests and all(u.startswith(('file:', 'data:')) for u in requests), requests
    assert not errors, errors
    page.close()


def test_readme_command_shows_images(chromium, data, tmp_path):
    "`python -m cobra_lit.traces nbs/artifacts/[0-9]_*.json --html F`, no --image-root: every sample's image shown."
    results = sorted(map(str, (REPO/'nbs/artifacts').glob('[0-9]_*.json')))
    if not results: pytest.skip('no Result JSON in nbs/artifacts')
    recorded = {json.loads(Path(f).read_text())['config']['images'] for f in results}
    out = tmp_path/'t.html'
    subprocess.run([sys.executable, '-m', 'cobra_lit.traces', *results, '--html', str(out), '--limit', '3'], cwd=REPO,
                   check=True, env={**os.environ, 'PYTHONPATH': str(REPO)})
    traces = load_results(*results)
    if any(t.image_root is None for t in traces):
        pytest.skip(f'the image folder the Result JSONs record ({recorded}) is not on this machine')
    page, requests, errors = open_page(chromium, out.as_uri())
    js = page.evaluate
    assert js("document.getElementById('pos').textContent.trim()") == f'1 / {3 * len(results)}'
    for _ in range(3 * len(results)):
        assert js("document.querySelector('#panel-a img') && document.querySelector('#panel-a img').naturalWidth") > 0
        assert 'image not available' not in js("document.getElementById('panel-a').textContent")
        page.click('#next')
    assert all(u.startswith(('file:', 'data:')) for u in requests) and not errors, (requests, errors)
    page.close()
