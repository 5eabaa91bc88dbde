"""Training throughput of cobra_lit's trainer step: tokens/s and model FLOPs utilisation, plus the data loader alone.

CPU (default): cobra-tiny, synthetic batches, fp32; the peak is a measured fp32 matmul rate on this machine.
GPU (`--gpu`): the cobra-3b shape with random weights, bf16 autocast, activation checkpointing, finetune stage
(vision frozen), against the H100/H200 bf16 dense peak; the SPEC anchor (Mamba-2.8B LLM alone, batch 4 x 2048,
708 ms/step with the mamba_ssm kernels, ~24% MFU on one H100) is printed beside it.

    python bench/train_throughput.py                 # CPU, tiny
    python bench/train_throughput.py --gpu           # one GPU, cobra-3b shape
    torchrun --nproc-per-node 8 bench/train_throughput.py --gpu   # FSDP2 across 8 GPUs (per-device numbers)

Baseline in the same run (single process): the same step with the loss computed through the full (B, T, vocab)
logits, as `CobraVLM.forward` did before it ran the LM head on the labelled positions only.

MFU = model FLOPs / step time / peak, with model FLOPs = 6 * N_trained * T + 2 * N_frozen * T' per sample: N_trained
the trained parameters (projector + LLM) over all T sequence positions (image patches + text), N_frozen the frozen
vision tower over its own patches T' (forward only). The loader figure is samples/s of the real DataLoader
(workers decoding + transforming images, collating) with no model attached.
"""
import argparse, json, math, os, sys, time
from pathlib import Path

import torch


def measured_cpu_peak(n: int = 1024, reps: int = 5) -> float:
    "Best fp32 matmul FLOP/s of this process (the CPU 'peak' MFU is measured against)."
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b; best = 0.0
    for _ in range(reps):
        t = time.perf_counter(); a @ b; best = max(best, 2 * n ** 3 / (time.perf_counter() - t))
    return best


GPU_PEAK_BF16 = {'H100': 989.4e12, 'H200': 989.4e12, 'A100': 312e12, 'L40S': 362e12, 'A10': 125e12}


def gpu_peak(name: str):
    return next((v for k, v in GPU_PEAK_BF16.items() if k in name), None)


def synthetic_batch(model, batch: int, text_len: int, device):
    "Random text (all tokens labelled) and random images in the model's input format."
    ids = torch.randint(2, 50000, (batch, text_len))
    labels = ids.clone(); labels[:, :8] = -100  # a short human turn
    from PIL import Image
    import numpy as np
    img = Image.fromarray(np.random.randint(0, 255, (64, 64, 3), dtype=np.uint8))
    pv = model.image_transform(img)
    pv = {k: v[None].repeat(batch, 1, 1, 1) for k, v in pv.items()} if isinstance(pv, dict) else pv[None].repeat(batch, 1, 1, 1)
    return {'input_ids': ids, 'labels': labels, 'attention_mask': torch.ones_like(ids, dtype=torch.bool),
            'pixel_values': pv, 'has_image': torch.ones(batch, dtype=torch.bool)}


def loader_rate(model, cfg, env, batches: int, num_workers: int, per_device: int) -> float:
    "Samples/s of the training DataLoader alone (demo data unless --dataset points elsewhere)."
    from cobra_lit.strategy import make_loader
    from cobra_lit.train import load_dataset
    ds = load_dataset(cfg, model)
    n = min(batches, len(ds) // per_device)
    dl = make_loader(ds, env, per_device, 1, 0, 0, 0, num_workers)
    it = iter(dl); next(it)  # worker start-up is not throughput
    t = time.perf_counter()
    for _ in range(n - 1): next(it)
    return (n - 1) * per_device / (time.perf_counter() - t)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--gpu', action='store_true', help='cobra-3b shape, bf16, on CUDA')
    ap.add_argument('--model', default=None, help='registry id (default: cobra-tiny on CPU, cobra-3b with --gpu)')
    ap.add_argument('--stage', default=None, help='align | finetune | full-finetune (default: full-finetune on CPU, finetune on GPU)')
    ap.add_argument('--batch', type=int, default=None, help='per-device batch (default 4)')
    ap.add_argument('--text_len', type=int, default=None, help='text tokens per sample (default 128 CPU; 2048 - patches GPU)')
    ap.add_argument('--steps', type=int, default=None, help='timed optimizer steps after 1 warm-up (default 5 CPU, 4 GPU)')
    ap.add_argument('--loader_batches', type=int, default=30, help='batches for the loader-only rate (0: skip)')
    ap.add_argument('--num_workers', type=int, default=2)
    ap.add_argument('--dataset_root', default='data/demo-bench', help='demo dataset folder for the loader rate (made if absent)')
    a = ap.parse_args(argv)
    os.environ.setdefault('HF_HUB_OFFLINE', '1'); os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')
    from cobra_lit.model import build_vlm
    from cobra_lit.strategy import OptimConfig, apply_fsdp, init_distributed, stage_preset, supervised_step
    from cobra_lit.train import parse_train_config
    model_id = a.model or ('cobra-3b' if a.gpu else 'cobra-tiny')
    stage = a.stage or ('finetune' if a.gpu else 'full-finetune')
    cfg = parse_train_config(['--model.type', model_id, '--stage', stage, '--device', 'cuda' if a.gpu else 'cpu',
                              '--dataset.dataset_root', a.dataset_root, '--dataset.n_train', '256', '--dataset.n_test', '8'])
    env = init_distributed(cfg.device)
    torch.manual_seed(0)
    t_build = time.perf_counter()
    with torch.device(env.device):  # random weights, initialised where they will live (fast for 3B on a GPU)
        model = build_vlm(cfg.model)
    model.freeze_for_stage(stage)
    build_s = time.perf_counter() - t_build
    P = model.vision_backbone.num_patches
    batch = a.batch or 4
    text_len = a.text_len or ((2048 - P) if a.gpu else 128)
    steps = a.steps or (4 if a.gpu else 5)
    n_trained = sum(p.numel() for n, p in model.named_parameters() if p.requires_grad)
    n_frozen_vision = sum(p.numel() for p in model.vision_backbone.parameters() if not p.requires_grad)
    n_trained_vision = sum(p.numel() for p in model.vision_backbone.parameters() if p.requires_grad)
    mixed = a.gpu and cfg.model.enable_mixed_precision_training
    if not env.distributed: model.to(env.device)
    apply_fsdp(model, env, mixed_precision=mixed, activation_checkpointing=a.gpu or cfg.model.enable_gradient_checkpointing)
    hp = OptimConfig(learning_rate=1e-5, lr_scheduler_type='constant', warmup_ratio=0.0).resolve(stage_preset(cfg.model, stage))
    opt, sch = hp.build(model, 2 * (steps + 1))  # timed run + same-run baseline
    b = synthetic_batch(model, batch, text_len, env.device)
    autocast = torch.bfloat16 if mixed and not env.distributed else None
    times = []
    for i in range(steps + 1):
        if env.device.type == 'cuda': torch.cuda.synchronize()
        t = time.perf_counter()
        m = supervised_step(model, [b], opt, sch, env, 1.0, autocast)
        if env.device.type == 'cuda': torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    step_s = sorted(times[1:])[len(times[1:]) // 2]  # median after the warm-up step
    base_s = None
    if not env.distributed:  # baseline in the same run: the loss through the full (B, T, vocab) logits, as before
        class FullLogits(torch.nn.Module):  # no `return_logits` in its signature: supervised_step keeps the logits
            def __init__(self, m): super().__init__(); self.m = m
            def forward(self, **kw): return self.m(**kw)
        base = []
        for i in range(steps + 1):
            if env.device.type == 'cuda': torch.cuda.synchronize()
            t = time.perf_counter(); supervised_step(FullLogits(model), [b], opt, sch, env, 1.0, autocast)
            if env.device.type == 'cuda': torch.cuda.synchronize()
            base.append(time.perf_counter() - t)
        base_s = sorted(base[1:])[len(base[1:]) // 2]
    T = P + text_len
    # vision: trained parameters count 6x over patches (they sit in n_trained at LLM-token rate otherwise: correct)
    flops = batch * (6 * (n_trained - n_trained_vision) * T + 6 * n_trained_vision * P + 2 * n_frozen_vision * P)
    if env.device.type == 'cuda':
        name = torch.cuda.get_device_name(env.device); peak = gpu_peak(name); peak_note = 'bf16 dense spec sheet'
        mem = torch.cuda.max_memory_allocated(env.device) / 2**30
    else:
        name = f'CPU ({os.cpu_count()} cores, {torch.get_num_threads()} threads)'; peak = measured_cpu_peak(); peak_note = 'measured fp32 matmul'
        import resource; mem = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    res = {'device': name, 'world_size': env.world_size, 'model': model_id, 'stage': stage,
           'params_trained': n_trained, 'params_frozen_vision': n_frozen_vision, 'batch_per_device': batch,
           'seq_positions': T, 'image_patches': P, 'step_time_s': step_s, 'step_times_s': [round(x, 4) for x in times],
           'tokens_per_s': batch * T / step_s, 'text_tokens_per_s': batch * text_len / step_s,
           'model_tflops_per_step': flops / 1e12, 'achieved_tflops': flops / step_s / 1e12,
           'peak_tflops': peak / 1e12 if peak else None, 'peak_source': peak_note,
           'mfu': flops / step_s / peak if peak else None, 'peak_mem_gb': mem, 'loss': m['loss'], 'build_s': build_s,
           'mixed_precision_bf16': mixed,
           'baseline_full_logits_step_time_s': base_s, 'speedup_vs_full_logits': base_s / step_s if base_s else None}
    if a.gpu:
        res['baseline'] = 'SPEC anchor: Mamba-2.8B LLM alone, 4 x 2048 tokens, 708 ms/step with mamba_ssm kernels, ~24% MFU (one H100)'
        try:
            import mamba_ssm  # noqa: F401
            res['mamba_kernels'] = True
        except Exception: res['mamba_kernels'] = False
    if a.loader_batches and env.is_main:
        res['loader_samples_per_s'] = loader_rate(model, cfg, env, a.loader_batches, a.num_workers, batch)
        res['loader_num_workers'] = a.num_workers
        res['train_samples_per_s'] = batch * env.world_size / step_s
    if env.is_main:
        print(json.dumps(res, indent=1))
        mfu = f"{100 * res['mfu']:.1f}% of {res['peak_tflops']:.3g} TFLOP/s ({peak_note})" if res['mfu'] else 'n/a (unknown peak)'
        print(f"{name}: {res['tokens_per_s']:.0f} tokens/s ({batch} x {T} positions in {step_s * 1000:.0f} ms/step), MFU {mfu}; "
              f"loader {res.get('loader_samples_per_s', float('nan')):.1f} samples/s vs train {res.get('train_samples_per_s', float('nan')):.1f} samples/s")
        if base_s: print(f"baseline, same run: loss through the full logits {base_s * 1000:.0f} ms/step "
                         f"({step_s * 1000:.0f} ms with the LM head on labelled positions only: {base_s / step_s:.2f}x)")
    if env.distributed: torch.distributed.destroy_process_group()


if __name__ == '__main__':
    main()
