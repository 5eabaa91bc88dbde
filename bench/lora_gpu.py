"""GPU check: LoRA trains through the fused Mamba path (mamba_ssm's `mamba_inner_fn`).

transformers' Mamba mixer, in training mode with the mamba_ssm kernels, passes `x_proj.weight` and `out_proj.weight`
to the fused `mamba_inner_fn` as tensors. cobra_lit's LoRA is a parametrisation of those weights (`LoraWeight`), so
the kernel reads W + (alpha/r) B A and its backward reaches A and B. This script builds `cobra-3b` with random
weights in bf16 on the GPU, puts LoRA on in_proj / x_proj / out_proj of every Mamba block, freezes everything else
(the projector too, so every change of the loss is the adapters'), and runs two optimizer steps with the trainer's
`supervised_step` on one 1 x 512-token batch (plus the image patches). It prints the device, how many `mamba_inner_fn`
calls returned the fused output, the loss before / after one / after two steps, and per projection the norm of the
change of A and of B; it exits 1 if the fused path was not taken, if any adapter kind did not move, or if a frozen
base weight moved.

    python bench/lora_gpu.py                       # one GPU with mamba_ssm + causal_conv1d
    python bench/lora_gpu.py --cpu                 # script check only: cobra-tiny on CPU, no fused kernel
"""
import argparse, json, sys, time

import torch


def count_fused_calls():
    "Wrap transformers' `mamba_inner_fn` to count its calls and how many returned the fused kernel's output."
    import transformers.models.mamba.modeling_mamba as mm
    calls, inner = {'calls': 0, 'fused': 0}, mm.mamba_inner_fn
    def counted(*a, **kw):
        out = inner(*a, **kw); calls['calls'] += 1; calls['fused'] += out is not None
        return out
    mm.mamba_inner_fn = counted
    return calls


def adapters(model) -> dict:
    "{(projection, 'A'|'B'): [tensors of every block]} of the LoRA parametrisations."
    out = {}
    for n, p in model.named_parameters():
        if n.endswith(('lora_A', 'lora_B')):
            proj = n.split('.parametrizations.')[0].rsplit('.', 1)[-1]
            out.setdefault((proj, n[-1]), []).append(p)
    return out


def batch_of(model, text_len: int, device) -> dict:
    "One sample: random text (all but a short human turn labelled) and one random image."
    import numpy as np
    from PIL import Image
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(2, 50000, (1, text_len), generator=g); labels = ids.clone(); labels[:, :8] = -100
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    pv = model.image_transform(img)
    pv = {k: v[None] for k, v in pv.items()} if isinstance(pv, dict) else pv[None]
    b = {'input_ids': ids, 'labels': labels, 'attention_mask': torch.ones_like(ids, dtype=torch.bool),
         'pixel_values': pv, 'has_image': torch.ones(1, dtype=torch.bool)}
    from cobra_lit.strategy import to_device
    return to_device(b, device)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--model', default=None, help='registry id (default cobra-3b; cobra-tiny with --cpu)')
    ap.add_argument('--text_len', type=int, default=512)
    ap.add_argument('--r', type=int, default=16)
    ap.add_argument('--lr', type=float, default=1e-3)
    ap.add_argument('--cpu', action='store_true', help='check the script on CPU with cobra-tiny (no fused kernel)')
    a = ap.parse_args(argv)
    if not a.cpu and not torch.cuda.is_available():
        sys.exit('bench/lora_gpu.py needs a CUDA GPU with mamba_ssm + causal_conv1d, and none is visible here; '
                 'it checks the fused mamba_inner_fn path, which exists only there (--cpu checks the script alone)')
    from cobra_lit.model import HAS_MAMBA_KERNELS, build_vlm
    from cobra_lit.strategy import DistEnv, LoraConfig, apply_lora, make_scheduler, param_groups, supervised_step
    if not a.cpu and not HAS_MAMBA_KERNELS:
        sys.exit('bench/lora_gpu.py: mamba_ssm / causal_conv1d are not importable, so training would not take the '
                 'fused mamba_inner_fn path this script checks')
    calls = count_fused_calls()
    dev = torch.device('cpu' if a.cpu else 'cuda')
    model_id = a.model or ('cobra-tiny' if a.cpu else 'cobra-3b')
    torch.manual_seed(0); t0 = time.perf_counter()
    with torch.device(dev): model = build_vlm(model_id)  # random weights, initialised on the device
    if not a.cpu: model.to(torch.bfloat16)
    model.freeze_for_stage('finetune'); model.projector.requires_grad_(False)
    apply_lora(model, LoraConfig(enabled=True, r=a.r, alpha=2 * a.r))
    model.train(); build_s = time.perf_counter() - t0
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if n.endswith('.original')}
    ad0 = {k: [p.detach().clone() for p in v] for k, v in adapters(model).items()}
    b = batch_of(model, a.text_len, dev)
    opt = torch.optim.AdamW(param_groups(model, 0.0), lr=a.lr); sch = make_scheduler(opt, 'constant', 1, 0.0)
    env, losses, times = DistEnv(device=dev), [], []
    for _ in range(2):
        if dev.type == 'cuda': torch.cuda.synchronize()
        t = time.perf_counter(); losses.append(supervised_step(model, [b], opt, sch, env, 1.0)['loss'])
        if dev.type == 'cuda': torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    with torch.no_grad():
        out = model(input_ids=b['input_ids'], pixel_values=b['pixel_values'], labels=b['labels'],
                    has_image=b['has_image'], return_logits=False)
    losses.append(float(out.loss))
    change = {f'{proj}.lora_{ab}': float(sum((p.detach().float() - q.float()).norm() ** 2
                                             for p, q in zip(adapters(model)[(proj, ab)], ad0[(proj, ab)])) ** 0.5)
              for proj, ab in sorted(ad0)}
    base_moved = [n for n, p in model.named_parameters() if n in frozen and not torch.equal(p, frozen[n])]
    res = {'device': torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'CPU (script check, no fused kernel)',
           'model': model_id, 'dtype': str(next(model.parameters()).dtype), 'mamba_kernels': HAS_MAMBA_KERNELS,
           'text_len': a.text_len, 'image_patches': model.vision_backbone.num_patches, 'lora_r': a.r, 'lr': a.lr,
           'mamba_inner_fn_calls': calls['calls'], 'mamba_inner_fn_fused_outputs': calls['fused'],
           'loss_before': losses[0], 'loss_after_1_step': losses[1], 'loss_after_2_steps': losses[2],
           'adapter_change_norm': change, 'base_weights_moved': len(base_moved),
           'step_times_s': [round(x, 3) for x in times], 'build_s': round(build_s, 1),
           'peak_mem_gb': torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == 'cuda' else None}
    print(json.dumps(res, indent=1))
    problems = [f'{k} did not change' for k, v in change.items() if not v > 0]
    if base_moved: problems.append(f'{len(base_moved)} frozen base weights moved, e.g. {base_moved[0]}')
    if not a.cpu and calls['fused'] == 0: problems.append('no mamba_inner_fn call returned the fused output')
    print('FAIL: ' + '; '.join(problems) if problems else
          'OK: every adapter kind (in_proj, x_proj, out_proj; A and B) trained' +
          (' through the fused mamba_inner_fn' if not a.cpu else ' (CPU script check: reference path, not the kernel)'))
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
