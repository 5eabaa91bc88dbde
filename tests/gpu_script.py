"""What the GPU check files (`test_model_gpu.py`, `test_grpo_gpu.py`) share: the skip mark, the random cobra-tiny they
test on, and running their tests as a plain script (bench/gpu_check.sh does; the GPU machine may lack pytest)."""
import os, sys

import torch

try:
    import pytest
    needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
except ImportError:  # plain-script mode
    needs_gpu = lambda f: f


def tiny_vlm(device: str = 'cuda'):
    "A random cobra-tiny in eval mode on `device`, its mixers made louder so that its outputs depend on the context."
    from cobra_lit.model import build_vlm
    torch.manual_seed(0)
    m = build_vlm('cobra-tiny').to(device).eval()
    with torch.no_grad():  # random tied weights just echo the last token; louder mixers make outputs context-dependent
        for blk in m.llm_backbone.layers: blk.mixer.out_proj.weight.mul_(10)
    return m


def run_tests(namespace: dict, device: str = 'cuda'):
    "Run every `test_*` function in `namespace` (a module's globals), print PASS / FAIL each, exit 1 if any failed."
    os.environ.setdefault('HF_HUB_OFFLINE', '1')
    if device == 'cuda' and not torch.cuda.is_available(): sys.exit('no CUDA device: nothing to check')
    fails = 0
    for name, f in list(namespace.items()):
        if name.startswith('test_') and callable(f):
            try: f(); print(f'PASS {name}', flush=True)
            except Exception as ex:
                fails += 1; print(f'FAIL {name}: {type(ex).__name__}: {ex}', flush=True)
    sys.exit(1 if fails else 0)
