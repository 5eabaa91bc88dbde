"""The report page (nbs/report.ipynb) on artifact folders like the ones the benchmark will commit.

It runs the page the way `nbdev_test` does (cwd nbs/, `#| eval: false` cells skipped) with `COBRA_LIT_ARTIFACTS`
pointing at a temporary folder, and checks what the page shows: two variants scored from the real COCO "fakecap"
captions, a file that is not JSON, a CSV and a PNG; and an empty folder.
"""
import json
from dataclasses import asdict
from pathlib import Path

from execnb.shell import CaptureShell
from fastcore.xtras import working_directory
from nbdev.frontmatter import FrontmatterProc
from nbdev.process import NBProcessor
from PIL import Image

from cobra_lit.benchmark import ResultSample
from cobra_lit.metrics import sample_scores, score_captions

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT/'nbs'/'report.ipynb'


def run_report(artifacts, monkeypatch) -> str:
    "Run the report on `artifacts`; return the text of all its outputs."
    monkeypatch.setenv('COBRA_LIT_ARTIFACTS', str(artifacts))
    monkeypatch.setenv('MPLBACKEND', 'Agg')
    nb = NBProcessor(REPORT, procs=FrontmatterProc, process=True).nb
    skip = lambda c: c.cell_type != 'code' or (getattr(c, 'directives_', {}) or {}).get('eval:', [''])[0].lower() == 'false'
    with working_directory(REPORT.parent): CaptureShell(REPORT).run_all(nb, exc_stop=True, preproc=skip)
    out = []
    for c in nb.cells:
        for o in c.get('outputs', []):
            out += [o.get('text', '')] + [v if isinstance(v, str) else ''.join(v) for k, v in o.get('data', {}).items() if k.startswith('text/')]
    return '\n'.join(''.join(x) if isinstance(x, list) else x for x in out)


def result(variant, caps, refs, raw=lambda i, c: c):
    "A Result JSON of `caps` (samples as `cobra_lit.benchmark.ResultSample`), scored against `refs` with cobra_lit.metrics."
    m, st = score_captions(caps, refs, semsim=False, n_boot=100)
    scores = dict(zip(st.ids, sample_scores(st)))
    samples = [asdict(ResultSample(image_id=k, image=f'{k:012d}.jpg', prompt='Describe the image.', raw_output=raw(i, c),
                                   caption=c, references=refs[k], scores=scores[k])) for i, (k, c) in enumerate(caps.items())]
    return {'config': {'variant': variant}, 'metrics': m, 'samples': samples}


def test_report_on_result_artifacts(tmp_path, monkeypatch, data):
    coco = data/'coco'
    refs = {}
    for f in ('captions_val2017_images.json', 'captions_val2017_extra.json'):
        for a in json.loads((coco/'annotations'/f).read_text())['annotations']: refs.setdefault(a['image_id'], []).append(a['caption'])
    caps = {r['image_id']: r['caption'] for r in json.loads((coco/'results/fakecap_results_val2017_subset.json').read_text())}
    short = {k: ' '.join(c.split()[:4]) for k, c in caps.items()}
    trace = lambda i, c: (f'<SUMMARY> Describe it. </SUMMARY><CAPTION> {c}. </CAPTION><REASONING> What is seen. </REASONING>'
                          f'<CONCLUSION> {c}' + ('' if i % 10 == 0 else ' </CONCLUSION>'))  # every tenth left unclosed
    (tmp_path/'1_baseline.json').write_text(json.dumps(result('baseline', caps, refs)))
    (tmp_path/'2_reasoning.json').write_text(json.dumps(result('reasoning', short, refs, trace)))
    (tmp_path/'3_cut.json').write_text('{"config": {"variant": "cut"}, "samples": [')
    partial = result('partial', dict(list(caps.items())[:5]), refs)  # a run still going: no metrics, samples not scored yet
    partial |= {'metrics': None, 'complete': False, 'samples': [{k: v for k, v in s.items() if k != 'scores'} for s in partial['samples']]}
    (tmp_path/'4_partial.json').write_text(json.dumps(partial))
    (tmp_path/'extra.csv').write_text('variant,note\nbaseline,hello\n')
    Image.new('RGB', (8, 8), 'red').save(tmp_path/'extra.png')
    out = run_report(tmp_path, monkeypatch)
    assert 'holds 6 files: 2 result files with metrics, 1 with traces only' in out
    assert 'missing field' not in out and 'partial' in out
    assert 'unreadable JSON (JSONDecodeError)' in out
    assert 'reasoning' in out and 'baseline' in out
    assert 'As reported by each run (`metrics` block of 2 result files)' in out
    assert 'No result file with metrics' not in out
    assert '![extra](' in out and 'hello' in out
    assert 'unclosed CONCLUSION' in out  # the problem counts of the reasoning variant
    assert 'Paired bootstrap differences against **baseline**' in out, out[:3000]


def test_report_on_empty_artifacts(tmp_path, monkeypatch):
    out = run_report(tmp_path, monkeypatch)
    assert 'holds 0 files' in out and 'No result file with metrics is committed' in out and 'No traces in the artifacts yet' in out
    assert '**missing**' in out
