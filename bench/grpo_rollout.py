"""GRPO rollout throughput: G completions per prompt from ONE prefill (cobra_lit.grpo.rollout) against G separate
prefills of the same prompt (what a model without a copyable state must do), in one run, same weights, same tokens.

Both sides sample the same G completions with the same seeded uniforms, so they decode the same number of tokens
(a random model rarely emits EOS: nearly every row runs to --new-tokens). Rates count completion tokens only; times
include the prefill(s) and the image encoding. Weights are random (speed does not depend on them).

  python bench/grpo_rollout.py --model cobra-tiny --device cpu --prompt-tokens 128 --new-tokens 64
  python bench/grpo_rollout.py --model cobra-3b --device cuda --dtype bfloat16 --prompt-tokens 768 --new-tokens 256

`--prompts P` (default 8) also times GRPO's `--rollout_prompts`: P prompts x G (the largest of --groups) decoded as
one batch (0, the default) against one prompt's group at a time (1: the same tokens on any rank layout).
"""
import argparse, json, platform, time
from pathlib import Path

import torch
from PIL import Image

from cobra_lit.data import format_prompt, load_tokenizer
from cobra_lit.grpo import concat_rollouts, rollout, sample_uniforms
from cobra_lit.model import build_vlm


def device_name(dev):
    if dev.type == 'cuda': return f'{torch.cuda.get_device_name(dev)} (CUDA {torch.version.cuda})'
    return f'CPU {platform.processor() or platform.machine()} x {torch.get_num_threads()} threads'


def make_prompt(tok, n_text):
    "A real-text prompt of about `n_text` tokens, in Cobra's chat format."
    filler = 'Look at the picture carefully and count the shapes, then name their colours and positions. ' * 64
    head = tok(format_prompt(''))['input_ids']
    return format_prompt(tok.decode(tok(filler)['input_ids'][:max(1, n_text - len(head))]).strip())


def timed(fn, dev, repeats):
    best = float('inf')
    for _ in range(repeats):
        if dev.type == 'cuda': torch.cuda.synchronize()
        t = time.perf_counter(); out = fn()
        if dev.type == 'cuda': torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return best, out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--model', default='cobra-tiny')
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--dtype', default='float32', choices=('float32', 'bfloat16'))
    ap.add_argument('--prompt-tokens', type=int, default=128)
    ap.add_argument('--new-tokens', type=int, default=64)
    ap.add_argument('--groups', default='1,4,8,16')
    ap.add_argument('--repeats', type=int, default=2)
    ap.add_argument('--prompts', type=int, default=8, help='prompts for the --rollout_prompts 0 vs 1 timing (0: skip)')
    ap.add_argument('--out', default=None, help='also write the results as JSON here')
    a = ap.parse_args()
    dev, dt = torch.device(a.device), getattr(torch, a.dtype)
    torch.manual_seed(0)
    model = build_vlm(a.model).to(dev, dt).eval()
    tok = load_tokenizer()
    image, prompt = Image.new('RGB', (640, 480), (120, 90, 60)), make_prompt(tok, a.prompt_tokens)
    rows = []
    for G in [int(g) for g in a.groups.split(',')]:
        u = sample_uniforms(0, 0, range(G), a.new_tokens)
        one = lambda: rollout(model, tok, [image], [prompt], G, u, a.new_tokens)
        # G separate prefills: the same prompt G times as G prompts of group size 1, decoded together
        sep = lambda: rollout(model, tok, [image] * G, [prompt] * G, 1, u, a.new_tokens)
        rollout(model, tok, [image], [prompt], G, u, 4)  # warm-up (CUDA graph capture, allocator)
        t1, r1 = timed(one, dev, a.repeats)
        t2, r2 = timed(sep, dev, a.repeats)
        same = torch.equal(r1.completion_ids, r2.completion_ids)
        n1, n2 = int(r1.mask.sum()), int(r2.mask.sum())
        rows.append({'G': G, 'one_prefill_tok_s': n1 / t1, 'separate_prefills_tok_s': n2 / t2, 'speedup': t2 / t1,
                     'prefill_rows': (r1.prefill_rows, r2.prefill_rows), 'same_tokens': same, 'tokens': n1})
        print(f"G={G:3d}  one prefill {n1 / t1:9.1f} tok/s   G prefills {n2 / t2:9.1f} tok/s   x{t2 / t1:.2f}   "
              f"prefill rows {r1.prefill_rows} vs {r2.prefill_rows}   same tokens {same}", flush=True)
    base = rows[0]['one_prefill_tok_s']
    for r in rows: r['vs_G1'] = r['one_prefill_tok_s'] / base
    print('aggregate tok/s relative to G=1:', ', '.join(f"G={r['G']}: x{r['vs_G1']:.2f}" for r in rows))
    res = {'device': device_name(dev), 'model': a.model, 'dtype': a.dtype, 'prompt_tokens': a.prompt_tokens,
           'new_tokens': a.new_tokens, 'torch': torch.__version__, 'rows': rows}
    if a.prompts:  # --rollout_prompts 0 (all P prompts' P x G rows in one decode) against 1 (P decodes of G rows)
        P, G = a.prompts, rows[-1]['G']
        u = sample_uniforms(0, 0, range(P * G), a.new_tokens)
        whole = lambda: rollout(model, tok, [image] * P, [prompt] * P, G, u, a.new_tokens)
        each = lambda: concat_rollouts([rollout(model, tok, [image], [prompt], G, u[i * G:(i + 1) * G], a.new_tokens)
                                        for i in range(P)])
        t0, r0 = timed(whole, dev, a.repeats)
        t1, r1 = timed(each, dev, a.repeats)
        n0, n1 = int(r0.mask.sum()), int(r1.mask.sum())
        res['rollout_prompts'] = {'P': P, 'G': G, 'all_tok_s': n0 / t0, 'one_tok_s': n1 / t1, 'slowdown': t1 / t0}
        print(f"--rollout_prompts, {P} prompts x G={G}: 0 (one batch) {n0 / t0:9.1f} tok/s   1 (per prompt) "
              f"{n1 / t1:9.1f} tok/s   x{t1 / t0:.2f} the time", flush=True)
    print(f"device: {res['device']}, model {a.model}, {a.dtype}, prompt ~{a.prompt_tokens} tokens + image, "
          f"{a.new_tokens} new tokens")
    if a.out: Path(a.out).write_text(json.dumps(res, indent=1))


if __name__ == '__main__':
    main()
