"""Patch a mamba-ssm / causal-conv1d `setup.py` to compile for one GPU architecture only (default sm_90).

Their setup.py hard-codes -gencode flags for ~9 architectures (TORCH_CUDA_ARCH_LIST does not limit them), which
makes the build ~9x slower than needed on one H100/H200. Usage: python bench/sm90_only.py path/to/setup.py [90]
"""
import re, sys
from pathlib import Path

PAIR = re.compile(r'(\n[ \t]*)cc_flag\.append\("-gencode"\)\s*\n\s*cc_flag\.append\("arch=compute_(\d+)a?,code=sm_\d+a?"\)')


def patch(text: str, keep: str = '90') -> str:
    "The setup.py text with every -gencode pair removed except `keep` (removed pairs become `pass`)."
    out = PAIR.sub(lambda m: m.group(0) if m.group(2) == keep else m.group(1) + 'pass', text)
    kept = PAIR.findall(out)
    if [k for _, k in kept] != [keep]: raise SystemExit(f'unexpected gencode layout; kept {kept}')
    return out


if __name__ == '__main__':
    if len(sys.argv) < 2 or sys.argv[1] in ('-h', '--help'): sys.exit(__doc__)
    p = Path(sys.argv[1]); keep = sys.argv[2] if len(sys.argv) > 2 else '90'
    p.write_text(patch(p.read_text(), keep))
    compile(p.read_text(), str(p), 'exec')
    print(f'{p}: -gencode sm_{keep} only')
