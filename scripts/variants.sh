#!/usr/bin/env bash
# The caption benchmark of the embedded tiny Cobra, end to end on CPU, and the report artifacts in nbs/artifacts/:
# baseline, baseline+scratchpad, finetuned, finetuned+scratchpad, finetuned+grpo, finetuned+grpo+scratchpad
# (and, on the demo caption split, finetuned+scst).
#
#   bash scripts/variants.sh [RUN_DIR]
#
# RUN_DIR: a finished training run (default: the no-argument `torchrun -m cobra_lit.train` run, trained first if
# absent). The baseline is cobra-tiny at its initialisation (`--checkpoint none`, same seed as the training run).
# finetuned+grpo is `torchrun -m cobra_lit.grpo --pretrained_checkpoint RUN_DIR` with its defaults (answer rewards on
# the demo questions; run first if absent). finetuned+scst is GRPO with the CIDEr-D caption reward (self-critical
# training) on the demo caption split; it is scored on that same split, so its demo row is not held out.
# Scored on the 40 real COCO val2017 images of the shared data folder (main table, nbs/artifacts/*.json) and on the
# demo data's held-out caption split (nbs/artifacts/demo/). Budgets are small so it runs in minutes on 2 cores.
# The shared data folder is $COBRA_LIT_DATA when set, else shared/data in this folder or one above it
# (`cobra_lit.data.shared_data_dir`; the script stops, saying so, when there is none). Every benchmark and traces
# command below is given its input files explicitly. Last, `scripts/rl_demo.sh` and `scripts/rl_demo_scst.sh` (D, E, F;
# skip all with RL_DEMO=0) make the RL demo's tables and curves (nbs/artifacts/rl/): the composed skill from reward,
# and SCST, against matched baselines.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -n "${VIRTUAL_ENV:-}" ] || . .venv/bin/activate
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} TOKENIZERS_PARALLELISM=false
RUN=${1:-runs/demo+cobra-tiny+stage-full-finetune+x7}
if [ ! -f "$RUN/checkpoints/checkpoint-latest.pt" ]; then torchrun -m cobra_lit.train --run_id "$(basename "$RUN")"; fi
DEMO=$(python -c "import json,sys; print(json.load(open('$RUN/config.json'))['dataset']['dataset_root'])")
GRPO=runs/$(basename "$RUN")+grpo+x7
if [ ! -f "$GRPO/summary.json" ]; then
  torchrun -m cobra_lit.grpo --pretrained_checkpoint "$RUN" --dataset.dataset_root "$DEMO" --run_id "$(basename "$GRPO")"
fi
SCST=runs/$(basename "$RUN")+scst+x7
if [ ! -f "$SCST/summary.json" ]; then
  torchrun -m cobra_lit.grpo --pretrained_checkpoint "$RUN" --dataset.type coco-captions --dataset.dataset_root "$DEMO" \
    --rewards cobra_lit.grpo:caption_reward,cobra_lit.grpo:length_penalty --reward_weights 1,1 --max_steps "${SCST_STEPS:-40}" \
    --run_id "$(basename "$SCST")"
fi
SHARED=$(python -c 'import os; from cobra_lit.data import shared_data_dir; print(os.path.relpath(shared_data_dir()))')  # relative: the Result JSONs record it
echo "shared data folder: $SHARED"
OUTDIR=results/variants; mkdir -p "$OUTDIR/coco" "$OUTDIR/demo"
LIMIT=${LIMIT:-40}
COMMON=(--limit "$LIMIT" --batch_size 8 --max_new_tokens 32 --scratchpad_max_new_tokens 64 --n_boot 200 --no-pretrained_vision --overwrite)
bench() {  # bench DATASET_NAME ANNOTATIONS IMAGES
  local name=$1 ann=$2 img=$3 o=$OUTDIR/$1
  python -m cobra_lit.benchmark --checkpoint none --model.type cobra-tiny --annotations "$ann" --images "$img" \
    --variant baseline --output "$o/1_baseline.txt" "${COMMON[@]}"
  python -m cobra_lit.benchmark --checkpoint none --model.type cobra-tiny --annotations "$ann" --images "$img" \
    --scratchpad --variant baseline+scratchpad --output "$o/2_baseline+scratchpad.txt" "${COMMON[@]}"
  python -m cobra_lit.benchmark --checkpoint "$RUN" --annotations "$ann" --images "$img" \
    --variant finetuned --output "$o/3_finetuned.txt" "${COMMON[@]}"
  python -m cobra_lit.benchmark --checkpoint "$RUN" --annotations "$ann" --images "$img" \
    --scratchpad --variant finetuned+scratchpad --output "$o/4_finetuned+scratchpad.txt" "${COMMON[@]}"
  python -m cobra_lit.benchmark --checkpoint "$GRPO" --annotations "$ann" --images "$img" \
    --variant finetuned+grpo --output "$o/5_finetuned+grpo.txt" "${COMMON[@]}"
  python -m cobra_lit.benchmark --checkpoint "$GRPO" --annotations "$ann" --images "$img" \
    --scratchpad --variant finetuned+grpo+scratchpad --output "$o/6_finetuned+grpo+scratchpad.txt" "${COMMON[@]}"
  python -m cobra_lit.benchmark --checkpoint "$SCST" --annotations "$ann" --images "$img" \
    --variant finetuned+scst --output "$o/7_finetuned+scst.txt" "${COMMON[@]}"
  python -m cobra_lit.benchmark compare "$o"/[1-7]_*.json --output "$o/compare" --n_boot 200
}
bench coco "$SHARED/coco/annotations/captions_val2017_images.json" "$SHARED/coco/images/val2017"
bench demo "$DEMO/captions_test.json" "$DEMO/images"
# artifacts the report page renders
mkdir -p nbs/artifacts/demo
cp "$OUTDIR"/coco/[1-7]_*.json nbs/artifacts/
cp "$OUTDIR"/coco/compare/compare.{md,csv,png} nbs/artifacts/
cp "$OUTDIR"/demo/[1-7]_*.json "$OUTDIR"/demo/compare/compare.{md,csv,png} nbs/artifacts/demo/
python - "$RUN" <<'PY'  # the run's summary plus its loss curve and where it ran (20_train prints them)
import json, os, sys, torch
run = sys.argv[1]; s = json.load(open(f'{run}/summary.json'))
losses = [json.loads(l)['loss'] for l in open(f'{run}/logs/train.jsonl')]
s['loss_every_50_steps'] = [round(x, 4) for x in losses[::50] + ([losses[-1]] if (len(losses) - 1) % 50 else [])]
s['command'] = 'torchrun -m cobra_lit.train (run by scripts/variants.sh)'
s['machine'] = f'{os.cpu_count()} CPU cores, torch {torch.__version__.split("+")[0]}, no GPU'
json.dump(s, open('nbs/artifacts/train_demo_summary.json', 'w'), indent=1)
PY
mkdir -p nbs/artifacts/grpo
cp "$GRPO/summary.json" nbs/artifacts/grpo/summary.json; cp "$GRPO/logs/train.jsonl" nbs/artifacts/grpo/train.jsonl
cp "$SCST/logs/train.jsonl" nbs/artifacts/grpo/scst_train.jsonl
python -m cobra_lit.traces nbs/artifacts/[1-7]_*.json --llava-cot "$SHARED/llava_cot/samples.json" \
  --image-root "$SHARED/coco/images/val2017" --html nbs/artifacts/traces_viewer.html --limit 40 --thumb 128
cat "$OUTDIR"/coco/compare/compare.md
[ "${RL_DEMO:-1}" = 0 ] || { bash scripts/rl_demo.sh && bash scripts/rl_demo_scst.sh \
  && BASELINE=greedy bash scripts/rl_demo_scst.sh && LONG=1 bash scripts/rl_demo_scst.sh; }
