"""LoRA through the trainer's command line, on CPU with cobra-tiny: 2 gloo ranks with FSDP2 (the adapters are
parametrisations of the sharded Mamba blocks' weights) against one process, the checkpoint's merged weights against
W + (alpha/r) B A of its resume state, and a SIGKILL + resume of the sharded run against the uninterrupted one."""
import subprocess, sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from test_train_cli import (ENV, TORCHRUN, TRAIN, args, assert_same_training, log_rows, run,  # noqa: E402
                            weights, work)  # work: the demo dataset fixture, one per module

LORA = ['--stage', 'finetune', '--lora.enabled', 'true', '--lora.r', '4', '--lora.alpha', '8']


def latest(run_dir): return torch.load(run_dir/'checkpoints'/'checkpoint-latest.pt', map_location='cpu', weights_only=True)


def test_lora_two_ranks_fsdp_match_one_process_and_resume(work):
    run(TRAIN + args(work, 'lora1', 3, *LORA), work)
    cmd = TORCHRUN + ['--standalone', '--nnodes', '1', '--nproc-per-node', '2', '-m', 'cobra_lit.train'] + \
        args(work, 'lora2', 3, *LORA, '--save_interval', '2')
    run(cmd, work)
    one, two = work/'runs'/'lora1', work/'runs'/'lora2'
    assert log_rows(one)[0]['loss'] != log_rows(one)[-1]['loss']  # it trains
    assert_same_training(one, two)

    # resume state: the adapters (trained: B moved off zero) and the projector, by parameter name
    ck = latest(two); trainable = ck['train_state']['trainable']
    lora_b = [k for k in trainable if k.endswith('lora_B')]
    assert len(lora_b) == 2 * 3 and all(trainable[k].abs().sum() > 0 for k in lora_b)  # 2 blocks x 3 projections
    assert all(k.endswith(('lora_A', 'lora_B')) or k.startswith('projector.') for k in trainable)
    # the Cobra block holds plain merged weights under the base key names: W + (alpha/r) B A
    block = ck['model']['llm_backbone']
    assert not any('parametrizations' in k or 'lora' in k for k in block)
    from cobra_lit.strategy import cobra_model_block, merge_lora_state_dict
    from cobra_lit.train import build_model, parse_train_config
    cfg = parse_train_config(args(work, 'lora2', 3, *LORA))
    model = build_model(cfg); model.load_state_dict(trainable, strict=False)  # the trainer's restore_weights
    merged = cobra_model_block(merge_lora_state_dict(model.state_dict(), cfg.lora), ['llm_backbone'])['llm_backbone']
    k = 'layers.1.mixer.out_proj.weight'
    pre = 'llm_backbone.llm.backbone.' + k.replace('.weight', '.parametrizations.weight')
    w, a, b = (model.state_dict()[f'{pre}.{s}'] for s in ('original', '0.lora_A', '0.lora_B'))
    torch.testing.assert_close(block['llm.backbone.' + k], w + 2 * b @ a)
    assert block.keys() == merged.keys()
    for name, v in block.items(): torch.testing.assert_close(v, merged[name], msg=name)

    # a crash right after step 3 (the last checkpoint is step 2's): the sharded resume redoes step 3 exactly
    crash = cmd[:cmd.index('--run_id') + 1] + ['lora2k'] + cmd[cmd.index('--run_id') + 2:]
    p = subprocess.run(crash, cwd=work, env={**ENV, 'COBRA_LIT_KILL_AT_STEP': '3'}, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode != 0
    killed = work/'runs'/'lora2k'
    assert latest(killed)['train_state']['step'] == 2
    run(crash + ['--resume', 'true'], work)
    same = lambda r, n: dict(r, tokens_per_s=n['tokens_per_s'], step_time_s=n['step_time_s'], peak_mem_mb=n['peak_mem_mb'])
    assert log_rows(killed) == [same(r, n) for r, n in zip(log_rows(two), log_rows(killed))]
    for k, v in weights(killed).items(): assert torch.equal(v, weights(two)[k]), k
