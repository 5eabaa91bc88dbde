"""GPU checks of cobra_lit.model / cobra_lit.generate with the mamba-ssm + causal-conv1d kernels.

Skipped without CUDA. Also runs without pytest: `python tests/test_model_gpu.py` (bench/gpu_check.sh does).
1. Cobra-format LLM weights give the same logits in mamba_ssm's own `MambaLMHeadModel` and in cobra_lit.
2. `feed` continuation == full prefill with the kernels (scan kernel vs step kernels).
3. The CUDA-graph decode step == the eager step; batched == per-row generation.
"""
import tempfile
from pathlib import Path

import torch

from gpu_script import needs_gpu, run_tests, tiny_vlm as _tiny


@needs_gpu
def test_mamba_ssm_parity():
    "Cobra-format checkpoint -> mamba_ssm MambaLMHeadModel and cobra_lit give the same logits."
    from mamba_ssm.models.config_mamba import MambaConfig as SSMConfig
    from mamba_ssm.models.mixer_seq_simple import MambaLMHeadModel
    from cobra_lit.model import save_cobra_checkpoint, read_cobra_checkpoint
    m = _tiny(); c = m.llm_backbone.config
    path = Path(tempfile.mkdtemp()) / 'tiny.pt'
    save_cobra_checkpoint(m, path)
    sd = read_cobra_checkpoint(path)['llm_backbone']
    ssm = MambaLMHeadModel(SSMConfig(d_model=c.hidden_size, n_layer=c.num_hidden_layers, vocab_size=c.vocab_size,
                                     ssm_cfg={'layer': 'Mamba1'}, rms_norm=True, residual_in_fp32=True,
                                     fused_add_norm=True, pad_vocab_size_multiple=8, tie_embeddings=True),
                           device='cuda', dtype=torch.float32).eval()
    ssm.load_state_dict({k[len('llm.'):]: v for k, v in sd.items()})
    ids = torch.randint(2, 50000, (2, 41), device='cuda')
    with torch.no_grad():
        a, b = ssm(ids).logits.float(), m.llm_backbone.llm(ids).logits.float()
    err = (a - b).abs().max().item()
    print(f'mamba_ssm vs cobra_lit logits: max abs diff {err:.2e} (logit scale {a.abs().max().item():.1f})')
    assert err < 1e-3 * max(1.0, a.abs().max().item()), err


@needs_gpu
def test_feed_equals_prefill_with_kernels():
    from cobra_lit.generate import prefill, feed
    m = _tiny()
    a, b = list(range(100, 130)), list(range(500, 517))
    full, cont = prefill(m, [a + b]), feed(m, prefill(m, [a]), [b])
    err = (full.logits - cont.logits).abs().max().item()
    print(f'feed vs prefill logits: max abs diff {err:.2e}')
    assert err < 2e-3 * max(1.0, full.logits.abs().max().item()), err


@needs_gpu
def test_graph_equals_eager_and_batched_equals_single():
    from cobra_lit.data import format_prompt
    from cobra_lit.generate import generate
    from PIL import Image
    m = _tiny()
    img = Image.new('RGB', (80, 60), (200, 30, 30))
    prompts = [format_prompt('What is this?') + 'It', format_prompt('Describe the image in detail please.'), 'Hi']
    ims = [img, img.transpose(Image.FLIP_LEFT_RIGHT), None]
    g = generate(m, ims, prompts, max_new_tokens=16, eos_token_id=None, cuda_graph=True)
    e = generate(m, ims, prompts, max_new_tokens=16, eos_token_id=None, cuda_graph=False)
    assert g.token_ids == e.token_ids, (g.token_ids, e.token_ids)
    single = [generate(m, [i], [p], max_new_tokens=16, eos_token_id=None).token_ids[0] for i, p in zip(ims, prompts)]
    assert g.token_ids == single, (g.token_ids, single)
    print('graph == eager == per-row:', g.token_ids[0][:8])


if __name__ == '__main__': run_tests(globals())
