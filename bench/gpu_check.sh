#!/usr/bin/env bash
# One-shot GPU check of cobra_lit's model + generation (H100/H200, no internet). Everything goes to $OUT/.
#
#   OUT=/path/to/out bash bench/gpu_check.sh        (run from anywhere; ~7-9 min, most of it the CUDA build)
#   BUDGET=540 (seconds, default): steps 4-6 shrink their timeouts, or are skipped, to end within it.
#
# 1. prints versions; 2. installs ninja/einops from .whl/ (no index); 3. builds causal-conv1d and mamba-ssm
# from the sdists in .whl/ (both at once; bench/sm90_only.py trims their -gencode list to sm_90) while the
# other .whl/ wheels install and a PyTorch-path smoke/bench runs on the GPU;
# 4. tests/test_model_gpu.py (mamba_ssm MambaLMHeadModel parity, feed == prefill, CUDA graph == eager) and
#    tests/test_grpo_gpu.py (CUDA-graph rollout == eager, bf16 rollout vs training log-probs, 2 GRPO steps on the GPU);
# 5. bench/decode.py on the cobra-3b shape (random weights, bf16, batch 1, 768-token prompt, 256 new tokens);
# 6. the notebooks 10_model/10a/10b with their `#| gpu` cells (COBRA_LIT_TEST_FLAGS=gpu).
# No `set -e`: every part runs even if an earlier one fails; a summary ends $OUT/gpu_check.log.
set -x
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu_check_out}; mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu_check.log") 2>&1
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PIP_DISABLE_PIP_VERSION_CHECK=1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
T0=$(date +%s); BUDGET=${BUDGET:-540}
SUMMARY=()
left() { echo $(( BUDGET - ($(date +%s) - T0) )); }
cap() { local l; l=$(left); [ "$l" -lt 10 ] && l=10; [ "$l" -lt "$1" ] && echo "$l" || echo "$1"; }  # min(limit, time left)
run() {  # run NAME TIMEOUT_S CMD...: time it, keep going on failure
  local name=$1 limit=$2; shift 2; local t=$(date +%s)
  timeout "$limit" "$@"; local rc=$?
  SUMMARY+=("$name: rc=$rc in $(( $(date +%s) - t ))s"); return 0
}

# 1. versions
nvidia-smi; nvcc --version; nproc; free -g; python --version; pip --version
python -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else ''); print('transformers', transformers.__version__)"
python -c "import timm, draccus; print('timm', timm.__version__)" || echo "WARNING: timm/draccus missing"

# 2. build tools first (ninja: parallel nvcc; einops: mamba_ssm imports it), from .whl/ when carried
for w in .whl/ninja-*.whl .whl/einops-*.whl; do [ -f "$w" ] && python -m pip install -q --no-index --no-deps "$w"; done
python -c "import einops" || echo "WARNING: einops missing: mamba_ssm cannot import without it (carry an einops wheel)"
command -v ninja || echo "WARNING: ninja missing: the CUDA build falls back to a slow serial build"

# 3. build the kernels (in the background) ...
build() {  # build SDIST_GLOB LOG MAX_JOBS: unpack, limit the -gencode list to sm_90, python -m pip install the folder
  local sd dir src; sd=$(ls .whl/$1 2>/dev/null | head -1)
  if [ -z "$sd" ]; then echo "no sdist .whl/$1" > "$OUT/$2"; return 2; fi
  dir=$(mktemp -d); tar xzf "$sd" -C "$dir"; src=$(ls -d "$dir"/*/ | head -1)
  python bench/sm90_only.py "$src/setup.py" > "$OUT/$2" 2>&1 \
    || echo "WARNING: setup.py layout unknown, building for all its architectures (slow)" >> "$OUT/$2"
  ( cd "$src" && MAMBA_FORCE_BUILD=TRUE CAUSAL_CONV1D_FORCE_BUILD=TRUE TORCH_CUDA_ARCH_LIST=9.0 MAX_JOBS=$3 \
      timeout 480 python -m pip install -v --no-build-isolation --no-deps --no-index . ) >> "$OUT/$2" 2>&1
}
TB=$(date +%s)
build 'causal_conv1d-*.tar.gz' build_causal_conv1d.log 8 & P1=$!
build 'mamba_ssm-*.tar.gz' build_mamba_ssm.log 16 & P2=$!
# ... meanwhile the other carried wheels (the preinstalled transformers is kept when it imports; cobra_lit works
# with transformers 5.17 and 5.24) and the PyTorch path on the GPU (no kernels yet): tiny + short cobra-3b runs
ls -la .whl 2>/dev/null
WHEELS=$(ls .whl/*.whl 2>/dev/null | grep -v -e '/transformers-' -e '/ninja-' -e '/einops-')
python -c "import transformers" 2>/dev/null || WHEELS="$WHEELS $(ls .whl/transformers-*.whl 2>/dev/null)"
if [ -n "$WHEELS" ]; then
  run wheels 300 python -m pip install -q --no-index --no-deps $WHEELS \
    || true
  python -c "import draccus, timm, mambapy" || for w in $WHEELS; do python -m pip install -q --no-index --no-deps "$w" || echo "WARNING: $w failed"; done
fi
python -c "import torch, transformers, timm; print('torch', torch.__version__, 'transformers', transformers.__version__, 'timm', timm.__version__)"
run smoke_torch_path_tiny 120 python bench/decode.py --model cobra-tiny --device cuda --dtype float32 --new-tokens 32 \
    --json "$OUT/decode_tiny_torch_path.json"
run bench_3b_torch_path_64tok 200 python bench/decode.py --model cobra-3b --device cuda --dtype bfloat16 --new-tokens 64 \
    --prompt-tokens 768 --json "$OUT/decode_cobra3b_torch_path_64tok.json"
wait $P1; R1=$?; wait $P2; R2=$?
SUMMARY+=("build causal_conv1d rc=$R1, mamba_ssm rc=$R2 ($(( $(date +%s) - TB ))s wall)")
tail -n 5 "$OUT/build_causal_conv1d.log" "$OUT/build_mamba_ssm.log"
python -c "import mamba_ssm, causal_conv1d; from mamba_ssm.ops.triton.selective_state_update import selective_state_update; from causal_conv1d import causal_conv1d_update; print('kernels OK', mamba_ssm.__version__, causal_conv1d.__version__)" \
  && SUMMARY+=("kernels import: OK") || SUMMARY+=("kernels import: FAILED (later steps use the PyTorch path)")
python -c "from cobra_lit.model import HAS_MAMBA_KERNELS; print('HAS_MAMBA_KERNELS', HAS_MAMBA_KERNELS)"

# 4. GPU tests (plain script, no pytest needed)
run test_model_gpu "$(cap 150)" python tests/test_model_gpu.py
run test_grpo_gpu "$(cap 150)" python tests/test_grpo_gpu.py

# 5. the benchmark: cobra-3b shape, bf16, batch 1, ~768-token prompt incl. 729 patches, 256 new tokens
run bench_3b "$(cap 240)" python bench/decode.py --model cobra-3b --device cuda --dtype bfloat16 --new-tokens 256 \
    --prompt-tokens 768 --json "$OUT/decode_cobra3b.json"

# 5b. the trainer step: cobra-3b shape, finetune stage, bf16, activation checkpointing, batch 4 x 2048 positions
run train_3b "$(cap 150)" python bench/train_throughput.py --gpu --steps 3 --loader_batches 20

# 6. the notebooks with their #| gpu cells
# (they use the shared data folder, $COBRA_LIT_DATA or shared/data above the repo: COCO images, the Mamba-2.8B config;
# tests/test_model_gpu.py above covers the same GPU checks)
if ! python -c "import nbdev, pytest, fastcore" 2>/dev/null; then SUMMARY+=("notebooks_gpu: skipped (nbdev/pytest/fastcore missing)")
elif ! python -c "from cobra_lit.data import shared_data_dir; assert shared_data_dir()" 2>/dev/null; then
  SUMMARY+=("notebooks_gpu: skipped (no shared data folder: set COBRA_LIT_DATA)")
elif [ "$(left)" -lt 60 ]; then SUMMARY+=("notebooks_gpu: skipped (budget spent)")
else run notebooks_gpu "$(cap 300)" env COBRA_LIT_TEST_FLAGS=gpu python -m pytest -q -x tests/test_notebooks.py -k "10_model or 10a or 10b or 30_eval"; fi

set +x
echo "================ cobra_lit gpu_check summary ($(( $(date +%s) - T0 ))s total) ================"
printf '%s\n' "${SUMMARY[@]}"
grep -h "MFU\|tokens/s\|samples/s\|tok/s\|^cobra_lit\|^transformers\|^cobra-" "$OUT"/gpu_check.log | grep -v '^+' | tail -20
