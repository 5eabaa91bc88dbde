#!/usr/bin/env bash
# GPU checks of cobra_lit.scratchpad and the decode plumbing it uses (run after bench/gpu_check.sh has built the mamba
# kernels; works without them too).
#
#   OUT=/path/to/out bash bench/scratchpad_gpu.sh        (~3-6 min; everything goes to $OUT/)
#
# 1. nbs/30a_scratchpad.ipynb and nbs/10b_generate.ipynb with their `#| gpu` cells (generate: CUDA-graph
#    feed/scoring == eager, feed_chunk == stepping; scratchpad: stage-beam on CUDA; the other cells run on CUDA too);
# 2. bench/scratchpad_reuse.py on the cobra-3b shape (random weights, bf16, batch 1 and 8): pass-2 time with state
#    reuse (stepping / chunked) vs re-reading image + scratchpad vs decoding the same new tokens alone.
set -x
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/scratchpad_gpu_out}; mkdir -p "$OUT"
exec > >(tee -a "$OUT/scratchpad_gpu.log") 2>&1
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi -L; python -c "from cobra_lit.model import HAS_MAMBA_KERNELS; print('HAS_MAMBA_KERNELS', HAS_MAMBA_KERNELS)"
timeout 300 env COBRA_LIT_TEST_FLAGS=gpu python -m pytest -q -x tests/test_notebooks.py -k "30a_scratchpad or 10b_generate"; echo "notebook_gpu rc=$?"
for B in 1 8; do
  timeout 240 python bench/scratchpad_reuse.py --model cobra-3b --device cuda --dtype bfloat16 --batch-size $B \
      --scratchpad-tokens 256 --caption-tokens 32 --repeats 3 --json "$OUT/scratchpad_reuse_cobra3b_b$B.json"
  echo "bench_b$B rc=$?"
done
