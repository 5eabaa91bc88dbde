"""Pass 2 of the two-pass scratchpad decoder: continuing pass 1's recurrent state vs re-reading, in one run.

Pass 1 writes a scratchpad of exactly --scratchpad-tokens tokens (EOS disabled, greedy); pass 2 then adds the
caption turn (`<|endoftext|>` closing the scratchpad + `\\n<|user|>\\n{prompt}<|endoftext|>\\n<|assistant|>\\n`)
and writes exactly --caption-tokens greedy tokens. Timed, median of --repeats interleaved rounds after a warm-up (CUDA graph
capture, kernel autotune), all from the same pass-1 output:

  reuse        feed the turn's tokens into pass 1's final state (exact, one token at a time; CUDA graph on CUDA),
               then decode the caption: what `decode_captions(..., 'scratchpad', ...)` does by default
  reuse-chunk  the same with `feed_chunk` (the turn in one pass per layer, recurrence from the state;
               `DecodeConfig(feed='chunk')`)
  re-read      prefill image + pass-1 prompt + scratchpad + turn from scratch, then decode the caption
  alone        decode --caption-tokens new tokens from a ready state (nothing to read first)
  alone+turn   decode as many tokens as reuse processes (turn + caption) from a ready state: reuse's own tokens

It also checks that reuse (both ways) == re-read (same greedy tokens, max |logit| difference where pass 2 starts) and prints
whether reuse costs no more than its own new tokens (reuse <= 1.10 x alone+turn). Weights are random unless
--checkpoint is given (speed does not depend on them).

  python bench/scratchpad_reuse.py --model cobra-tiny --device cpu --scratchpad-tokens 64 --caption-tokens 16
  python bench/scratchpad_reuse.py --model cobra-3b --device cuda --dtype bfloat16 --scratchpad-tokens 256 --caption-tokens 32
"""
import argparse, dataclasses, json, platform, statistics, time
from pathlib import Path

import torch
from PIL import Image

from cobra_lit.data import load_tokenizer, shared_data_dir
from cobra_lit.generate import continue_from
from cobra_lit.model import HAS_MAMBA_KERNELS, build_vlm, load_cobra_checkpoint
from cobra_lit.scratchpad import DecodeConfig, pass2_state, pass2_tokens, scratchpad_pass1, scratchpad_pass2


def device_name(dev):
    if dev.type == 'cuda': return f'{torch.cuda.get_device_name(dev)} (CUDA {torch.version.cuda})'
    return f'CPU {platform.processor() or platform.machine()} x {torch.get_num_threads()} threads'


def timed(fns, dev, repeats):
    "{name: (median seconds, last result)} of each `fns[name]()`: one warm-up each, then `repeats` interleaved rounds."
    for fn in fns.values(): fn()
    secs, outs = {k: [] for k in fns}, {}
    for _ in range(repeats):  # round-robin, so load from other processes hits every mode alike
        for k, fn in fns.items():
            if dev.type == 'cuda': torch.cuda.synchronize()
            t = time.perf_counter(); outs[k] = fn()
            if dev.type == 'cuda': torch.cuda.synchronize()
            secs[k].append(time.perf_counter() - t)
    return {k: (statistics.median(secs[k]), outs[k]) for k in fns}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--model', default='cobra-tiny', help='ModelConfig id (cobra-tiny, cobra-3b, ...)')
    ap.add_argument('--checkpoint', default=None, help='optional Cobra checkpoint to load (default: random weights)')
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu', help='cpu or cuda')
    ap.add_argument('--dtype', default=None, help='float32 / bfloat16 (default: bfloat16 on cuda, float32 on cpu)')
    ap.add_argument('--batch-size', type=int, default=1, help='images decoded together')
    ap.add_argument('--scratchpad-tokens', type=int, default=256, help='pass-1 scratchpad length (tokens)')
    ap.add_argument('--caption-tokens', type=int, default=32, help='pass-2 caption length (tokens)')
    ap.add_argument('--repeats', type=int, default=5, help='timed runs per mode (median reported)')
    ap.add_argument('--json', default=None, help='also write the results to this JSON file')
    a = ap.parse_args(argv)
    dev = torch.device(a.device)
    dtype = getattr(torch, a.dtype or ('bfloat16' if dev.type == 'cuda' else 'float32'))
    torch.manual_seed(0)
    with torch.device(dev): model = build_vlm(a.model)
    if a.checkpoint: load_cobra_checkpoint(model, a.checkpoint)
    model = model.to(dev, dtype).eval()
    tok = load_tokenizer()
    d = shared_data_dir(Path(__file__).resolve().parent)
    paths = sorted((d / 'coco/images/val2017').glob('*.jpg')) if d else []
    images = [Image.open(paths[i % len(paths)]).convert('RGB') if paths else Image.new('RGB', (640, 480), (120, 90, 60))
              for i in range(a.batch_size)]
    cfg = DecodeConfig(scratchpad_max_new_tokens=a.scratchpad_tokens, max_new_tokens=a.caption_tokens)
    K = a.caption_tokens
    cfg_chunk = dataclasses.replace(cfg, feed='chunk')
    with torch.inference_mode():
        p1 = scratchpad_pass1(model, tok, images, cfg, eos_token_id=None)
        turn = len(pass2_tokens(tok, p1, cfg)[0])
        modes = {
            'reuse': lambda: scratchpad_pass2(model, tok, images, p1, cfg, reuse=True, eos_token_id=None),
            'reuse-chunk': lambda: scratchpad_pass2(model, tok, images, p1, cfg_chunk, reuse=True, eos_token_id=None),
            're-read': lambda: scratchpad_pass2(model, tok, images, p1, cfg, reuse=False, eos_token_id=None),
            'alone': lambda: continue_from(model, tok, p1.states, K, eos_token_id=None),
            'alone+turn': lambda: continue_from(model, tok, p1.states, K + turn, eos_token_id=None),
        }
        res = {}
        for name, (s, out) in timed(modes, dev, a.repeats).items():
            n = out[1][0] if isinstance(out, tuple) else len(out.token_ids[0])
            res[name] = dict(seconds=s, tokens_processed_per_row=n, out=out)
        s_rd = pass2_state(model, tok, images, p1, cfg, False)[0]
        checks = {}
        for name, c in (('reuse', cfg), ('reuse-chunk', cfg_chunk)):
            s = pass2_state(model, tok, images, p1, c, True)[0]
            same = sum(x == y for r, q in zip(res[name]['out'][0].token_ids, res['re-read']['out'][0].token_ids)
                       for x, y in zip(r, q))
            checks[name] = dict(same_greedy_tokens=f'{same}/{K * a.batch_size}',
                                max_abs_logit_diff_at_pass2_start=(s.logits - s_rd.logits).abs().max().item())
    info = dict(model=a.model, device=device_name(dev), dtype=str(dtype), mamba_kernels=HAS_MAMBA_KERNELS,
                batch_size=a.batch_size, patches=model.vision_backbone.num_patches, scratchpad_tokens=a.scratchpad_tokens,
                turn_tokens=turn, caption_tokens=K, repeats=a.repeats, vs_reread=checks)
    print(json.dumps(info, indent=1))
    alone = res['alone']['seconds']
    print(f"\npass 2 of the scratchpad decoder: {a.model} on {info['device']}, {dtype}, batch {a.batch_size}, "
          f"scratchpad {a.scratchpad_tokens} tokens, caption turn {turn} tokens, caption {K} tokens")
    print(f"{'mode':12s} {'tokens/row':>11s} {'seconds':>9s} {'x alone':>8s}")
    for name, r in res.items():
        print(f"{name:12s} {r['tokens_processed_per_row']:11d} {r['seconds']:9.4f} {r['seconds'] / alone:8.2f}")
    ok = res['reuse']['seconds'] <= 1.10 * res['alone+turn']['seconds']
    print()
    for name, ch in checks.items():
        print(f"{name} vs re-read: {res['re-read']['seconds'] / res[name]['seconds']:.2f}x the speed, "
              f"{res['re-read']['tokens_processed_per_row'] - res[name]['tokens_processed_per_row']} fewer tokens per row; "
              f"same greedy tokens {ch['same_greedy_tokens']}, max |logit diff| at pass-2 start "
              f"{ch['max_abs_logit_diff_at_pass2_start']:.2e}")
    print(f"reuse costs no more than its own new tokens (reuse <= 1.10 x alone+turn): {'YES' if ok else 'NO'} "
          f"({res['reuse']['seconds']:.4f} s vs {res['alone+turn']['seconds']:.4f} s); reuse-chunk: "
          f"{res['reuse-chunk']['seconds']:.4f} s, {res['reuse-chunk']['seconds'] / alone:.2f}x decoding the caption alone")
    if a.json:
        Path(a.json).write_text(json.dumps(dict(info, results={k: {kk: vv for kk, vv in v.items() if kk != 'out'}
                                                              for k, v in res.items()}, reuse_within_own_tokens=ok), indent=1))
    return info, res


if __name__ == '__main__': main()
