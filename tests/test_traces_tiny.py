"""Traces of a real model run: `python -m cobra_lit.benchmark run` with the tiny random-weight Cobra on two COCO
images (CPU, about 20 s per decoder on a busy 2-core machine), then the trace checks, the per-sample table and the static viewer on its Result JSON.

Random weights write no sensible stages, so this checks that real decoder output, whatever it holds, is loaded,
flagged and shown rather than crashing anything.
"""
import json, os, subprocess, sys

import pytest

from cobra_lit.traces import load_results, trace_frame, html_viewer


@pytest.mark.parametrize('decoder', ['stages', 'scratchpad'])
def test_tiny_model_traces(decoder, tmp_path, data):
    out = tmp_path/f'tiny_{decoder}.txt'
    env = dict(os.environ, HF_HUB_OFFLINE='1', TOKENIZERS_PARALLELISM='false', OMP_NUM_THREADS='2')
    cmd = [sys.executable, '-m', 'cobra_lit.benchmark', 'run', '--checkpoint', 'none', '--model.type', 'cobra-tiny',
           '--decoder', decoder, '--limit', '2', '--batch_size', '2', '--max_new_tokens', '8', '--stage_max_new_tokens', '8',
           '--scratchpad_max_new_tokens', '8', '--device', 'cpu',
           '--no-semsim', '--n_boot', '0', '--variant', f'tiny+{decoder}', '--output', str(out),
           '--annotations', str(data/'coco/annotations/captions_val2017_images.json'), '--images', str(data/'coco/images/val2017')]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    traces = load_results(out.with_suffix('.json'))
    assert len(traces) == 2 and {t.variant for t in traces} == {f'tiny+{decoder}'}
    assert not [p for t in traces for p in t.problems if p.startswith(('missing field', 'bad ', 'unreadable'))], [t.problems for t in traces]
    assert all(t.references for t in traces)
    assert all(t.has_trace for t in traces)  # both decoders write a trace: the stages or the scratchpad
    if decoder == 'stages':  # the decoder forces the four tags and takes the caption from the CONCLUSION
        assert all(list(t.stages) == ['SUMMARY', 'CAPTION', 'REASONING', 'CONCLUSION'] for t in traces), [t.stages for t in traces]
        assert not [p for t in traces for p in t.problems if p.startswith(('missing', 'caption not in'))], [t.problems for t in traces]
    else:  # the first pass is kept; free text is flagged once, tagged text is parsed
        assert all(t.scratchpad and (t.stages or 'no stage tags' in t.problems) for t in traces), [t.problems for t in traces]
    df = trace_frame(traces)
    assert len(df) == 2 and df.caption_len.notna().all()
    page = html_viewer(traces, image_root=data/'coco/images/val2017')
    data = json.loads(page.split('type="application/json">')[1].split('</script>')[0])
    assert len(data['traces']) == 2 and len(data['images']) == 2
