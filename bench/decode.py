"""Decode throughput of cobra_lit's `generate` against transformers' `generate` on the same model, in one run.

Both decode greedily from the same prompt (image patches + text) with EOS disabled, so every run makes exactly
`--new-tokens` tokens. cobra_lit: one prefill, then the recurrent step (a CUDA graph on CUDA; also timed
without the graph). transformers: `MambaForCausalLM.generate(inputs_embeds=...)` of the same LLM weights.
Times include the prefill (and, for cobra_lit, the image transform + vision encoding); decode-only rates
are printed too. Weights are random (speed does not depend on them).

  python bench/decode.py --model cobra-tiny --device cpu --new-tokens 64
  python bench/decode.py --model cobra-3b --device cuda --dtype bfloat16 --new-tokens 256 --prompt-tokens 768
"""
import argparse, json, os, platform, sys, time
from pathlib import Path

import torch
import transformers
from PIL import Image

from cobra_lit.data import format_prompt, load_tokenizer, shared_data_dir
from cobra_lit.generate import generate
from cobra_lit.model import HAS_MAMBA_KERNELS, build_vlm, param_counts


def sync(dev):
    if dev.type == 'cuda': torch.cuda.synchronize()


def device_name(dev):
    if dev.type == 'cuda': return f'{torch.cuda.get_device_name(dev)} (CUDA {torch.version.cuda})'
    return f'CPU {platform.processor() or platform.machine()} x {torch.get_num_threads()} threads'


def make_prompt(tok, n_text):
    "A real-text prompt of about `n_text` tokens, in Cobra's chat format."
    filler = ('Look at the picture carefully and describe every object, its colour, its position and what it is '
              'doing, then explain the scene. ') * 64
    head = tok(format_prompt(''))['input_ids']
    body = tok(filler)['input_ids'][:max(1, n_text - len(head))]
    return format_prompt(tok.decode(body).strip())


def bench_cobra(model, img, prompt, n, graph, tok):
    out = generate(model, [img], [prompt], max_new_tokens=n, eos_token_id=None, cuda_graph=graph, tokenizer=tok)
    return out.token_ids[0], out.timings['prefill'], out.timings['decode']


def bench_hf(model, img, prompt, n, tok, dev):
    "transformers' generate on the same LLM from the same embedded prompt; vision + embedding time added."
    t0 = time.perf_counter()
    with torch.no_grad():
        pv = model.image_transform(img)
        pv = {k: v[None].to(dev) for k, v in pv.items()} if isinstance(pv, dict) else pv[None].to(dev)
        ids = torch.tensor([tok(prompt)['input_ids']], device=dev)
        emb, _ = model.embed(ids, pv)
        sync(dev); t1 = time.perf_counter()
        llm = model.llm_backbone.llm
        model.llm_backbone.scan_for(emb.dtype)  # transformers' mambapy scan only works in fp32
        mask = torch.ones(emb.shape[:2], dtype=torch.long, device=dev)
        seq = llm.generate(inputs_embeds=emb, attention_mask=mask, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                           use_cache=True, pad_token_id=1, eos_token_id=0)
        sync(dev); t2 = time.perf_counter()
        llm(inputs_embeds=emb, use_cache=True)  # prefill alone, to split the time
        sync(dev); t3 = time.perf_counter()
    return seq[0, -n:].tolist(), emb.shape[1], (t1 - t0) + (t3 - t2), (t2 - t1) - (t3 - t2)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--model', default='cobra-tiny', help='ModelConfig id (cobra-tiny, cobra-3b, ...)')
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu', help='cpu or cuda')
    ap.add_argument('--dtype', default=None, help='float32 / bfloat16 (default: bfloat16 on cuda, float32 on cpu)')
    ap.add_argument('--new-tokens', type=int, default=64, help='tokens to generate per run')
    ap.add_argument('--prompt-tokens', type=int, default=48, help='prompt length including the image patches')
    ap.add_argument('--skip-hf', action='store_true', help="do not time transformers' generate")
    ap.add_argument('--json', default=None, help='also write the results to this JSON file')
    a = ap.parse_args(argv)
    dev = torch.device(a.device)
    dtype = getattr(torch, a.dtype or ('bfloat16' if dev.type == 'cuda' else 'float32'))
    torch.manual_seed(0)
    t = time.perf_counter()
    with torch.device(dev): model = build_vlm(a.model)
    model = model.to(dtype).eval()
    build_s = time.perf_counter() - t
    tok = load_tokenizer()
    coco = shared_data_dir(Path(__file__).resolve().parent)
    imgs = sorted((coco / 'coco/images/val2017').glob('*.jpg')) if coco else []
    img = Image.open(imgs[0]).convert('RGB') if imgs else Image.new('RGB', (640, 480), (120, 90, 60))
    prompt = make_prompt(tok, a.prompt_tokens - model.vision_backbone.num_patches)
    n_prompt = model.vision_backbone.num_patches + len(tok(prompt)['input_ids'])
    counts = param_counts(model)
    info = dict(model=a.model, device=device_name(dev), dtype=str(dtype), torch=torch.__version__,
                transformers=transformers.__version__, mamba_kernels=HAS_MAMBA_KERNELS, new_tokens=a.new_tokens,
                prompt_tokens=n_prompt, params={k: v for k, v in counts.items()}, build_s=round(build_s, 1))
    print(json.dumps(info, indent=1), flush=True)
    runs = [('cobra_lit generate (CUDA graph)', dict(graph=True)), ('cobra_lit generate (eager step)', dict(graph=False))]
    if dev.type != 'cuda': runs = [('cobra_lit generate', dict(graph=False))]
    res, ref = [], None
    for name, kw in runs:
        bench_cobra(model, img, prompt, 4, kw['graph'], tok)  # warm-up: graph capture, kernel autotune
        ids, pre, dec = bench_cobra(model, img, prompt, a.new_tokens, kw['graph'], tok)
        ref = ref or ids
        res.append(dict(name=name, prefill_s=pre, decode_s=dec, tok_s=a.new_tokens / (pre + dec),
                        decode_tok_s=a.new_tokens / dec, same_tokens_as_first=sum(1 for _ in _prefix(ids, ref))))
        print(json.dumps(res[-1]), flush=True)
    if not a.skip_hf:
        bench_hf(model, img, prompt, 4, tok, dev)
        ids, n_emb, pre, dec = bench_hf(model, img, prompt, a.new_tokens, tok, dev)
        assert n_emb == n_prompt, (n_emb, n_prompt)
        res.append(dict(name='transformers generate', prefill_s=pre, decode_s=dec, tok_s=a.new_tokens / (pre + dec),
                        decode_tok_s=a.new_tokens / dec, same_tokens_as_first=sum(1 for _ in _prefix(ids, ref))))
        print(json.dumps(res[-1]), flush=True)
    print(f"\n{a.model} on {info['device']}, {dtype}, batch 1, prompt {n_prompt} tokens (incl. "
          f"{model.vision_backbone.num_patches} patches), {a.new_tokens} new tokens, mamba kernels: {HAS_MAMBA_KERNELS}")
    print(f"{'':34s} {'tok/s':>8s} {'decode tok/s':>13s} {'prefill s':>10s} {'same greedy tokens':>19s}")
    for r in res:
        print(f"{r['name']:34s} {r['tok_s']:8.1f} {r['decode_tok_s']:13.1f} {r['prefill_s']:10.3f} "
              f"{r['same_tokens_as_first']:>12d}/{a.new_tokens}")
    if a.json: Path(a.json).write_text(json.dumps(dict(info, results=res), indent=1))
    return res


def _prefix(a, b):
    "Leading positions where the two token lists agree."
    for x, y in zip(a, b):
        if x != y: return
        yield x


if __name__ == '__main__': main()
