#!/usr/bin/env bash
# The RL demo (nbs/30c_rl_demo.ipynb): where RL gains on principle, against matched baselines, on the embedded demo.
#
#   bash scripts/rl_demo.sh            # everything missing, then the table in nbs/artifacts/rl/
#
# 1. start: the supervised run on the demo with its RL splits (taught yes/no questions, the warmth fact, captions; the
#    composed kind COMPOSED, default warm-yn "Is the large shape a warm colour?", only COMPOSED_SFT times),
#    `torchrun -m cobra_lit.train --dataset.rl_splits true`.
# 2. A: GRPO on the composed prompts (training images) with the answer and format rewards, SEEDS seeds,
#    A_STEPS steps each (fixed here, before the runs). B: SCST, GRPO with the CIDEr-D caption reward on the training
#    caption split, B_STEPS steps, rollouts at top_p B_TOP_P (0.9), SEEDS seeds; and once with Rennie's greedy
#    baseline (--baseline greedy).
# 3. Baselines given at least the RL runs' training wall-clock (the curves show them at every checkpoint): more
#    supervised training on the same mix (SFT_STEPS, one run for A and B); rejection-sampling fine-tuning (RFT: 8
#    samples of RFT_PROMPTS prompts, the right ones kept, then RFT_STEPS supervised steps); for B also the
#    minimum-Bayes-risk choice among 8 samples of the start model.
#    C: B again from the longer supervised run (more-sft: Rennie et al. start SCST where supervised training has
#    stopped improving), SEEDS seeds, against SFT_STEPS more supervised steps from there (more-sft2).
# 4. Held-out: the 400 composed questions on test images (greedy, pass@1 and pass@8 at T = 1) and the 200 test images'
#    captions (CIDEr-D, B and C); curves over each run's checkpoints (first CURVE_N questions, greedy); the table.
# Each run is one process on THREADS threads (default 2), JOBS at a time (default 1: alone, so the wall-clocks compare).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -n "${VIRTUAL_ENV:-}" ] || . .venv/bin/activate
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=${THREADS:-2}
KIND=${COMPOSED:-warm-yn}  # the composed kind held out of supervised training (data.COMPOSED_KINDS)
N_SFT=${COMPOSED_SFT:-4}  # records of it in the supervised data (the model's edge: see 30c)
TAG=${KIND%-yn}-c$N_SFT; ROOT=data/demo-rl-$TAG; R=runs/rl-demo-$TAG; OUT=results/rl-demo-$TAG; ART=${ART:-nbs/artifacts/rl}
START=runs/demo-rl-$TAG+cobra-tiny+stage-full-finetune+x7
SEEDS=${SEEDS:-"1 2 3"}; A_STEPS=${A_STEPS:-60}; B_STEPS=${B_STEPS:-50}; SAVE=${SAVE:-10}
SFT_STEPS=${SFT_STEPS:-1400}; RFT_PROMPTS=${RFT_PROMPTS:-400}; RFT_STEPS=${RFT_STEPS:-900}; CURVE_N=${CURVE_N:-100}
JOBS=${JOBS:-1}; A_LR=${A_LR:-3e-4}; B_LR=${B_LR:-1e-4}; SFT_LR=${SFT_LR:-1e-3}
B_TOP_P=${B_TOP_P:-0.9}  # B's rollouts: nucleus sampling (at 1.0, 7% of the start's samples leave the format; see 30c)
# the schedule A, B and C were measured with: 5% warmup, then cosine decay (the finetune stage's, which GRPO took
# whenever --optim.learning_rate was given, before GRPO_OPTIM held; GRPO's own is constant: scripts/rl_demo_scst.sh)
SCHED=(--optim.lr_scheduler_type linear-warmup+cosine-decay --optim.warmup_ratio 0.05)
mkdir -p "$R" "$OUT" "$ART"
DEMO=(--dataset.dataset_root "$ROOT" --dataset.rl_splits true --dataset.composed "$KIND" --dataset.composed_sft "$N_SFT")
[ -f "$START/checkpoints/checkpoint-latest.pt" ] || OMP_NUM_THREADS= torchrun -m cobra_lit.train "${DEMO[@]}" --run_id "$(basename "$START")"
A=(--answers "$ROOT/composed_test.json" --image_root "$ROOT/images")
B=(--captions "$ROOT/captions_test.json" --image_root "$ROOT/images")
done_run() { [ -f "$1/summary.json" ]; }
grpo_a() { done_run "$R/A-rl-x$1" || python -m cobra_lit.grpo --pretrained_checkpoint "$START" "${DEMO[@]}" \
  --dataset.annotation composed_train.json --dataset.test_json composed_test.json --eval_demo false \
  --optim.learning_rate "$A_LR" "${SCHED[@]}" --max_steps "$A_STEPS" --save_interval "$SAVE" --seed "$1" --run_id A-rl-x$1 --run_root_dir "$R"; }
grpo_b() {  # grpo_b SEED NAME BASELINE [FROM [TASK]]: SCST from FROM (default the start), run TASK-NAME-xSEED
  local id=${5:-B}-$2-x$1; done_run "$R/$id" || python -m cobra_lit.grpo --pretrained_checkpoint "${4:-$START}" --dataset.type coco-captions \
  --dataset.dataset_root "$ROOT" --dataset.annotations captions_train.json \
  --rewards cobra_lit.grpo:caption_reward,cobra_lit.grpo:length_penalty --baseline "$3" --eval_demo false \
  --optim.learning_rate "$B_LR" "${SCHED[@]}" --top_p "$B_TOP_P" --max_steps "$B_STEPS" --save_interval "$SAVE" --seed "$1" --run_id "$id" --run_root_dir "$R"; }
sft() {  # sft RUN_ID ANNOTATION STEPS [FROM]: more supervised training from FROM (default the start; the demo recipe at SFT_LR)
  done_run "$R/$1" || python -m cobra_lit.train --pretrained_checkpoint "${4:-$START}" "${DEMO[@]}" --dataset.annotation "$2" \
    --eval_demo false --model.finetune_learning_rate "$SFT_LR" --optim.max_steps "$3" --save_interval "$((($3 + 3) / 4))" \
    --run_id "$1" --run_root_dir "$R"; }
rft() {  # rft TASK --answers|--captions FILE: sample, keep, fine-tune; the sampling seconds are logged for the table
  local t=$1; shift
  if [ ! -f "$ROOT/rft_$t.json" ]; then
    local t0=$SECONDS
    python -m cobra_lit.rldemo rft --checkpoint "$START" "$@" --image_root "$ROOT/images" --k 8 --limit "$RFT_PROMPTS" \
      --seed 1 --out "$ROOT/rft_$t.json"
    echo $((SECONDS - t0)) > "$R/rft_${t}_sampling_s"
  fi
  sft "$t-rft" "rft_$t.json" "$RFT_STEPS"; }
# the runs, JOBS at a time (1: each run alone on the machine, so the wall-clocks compare)
tasks=()
for s in $SEEDS; do tasks+=("grpo_a $s" "grpo_b $s scst group"); done
tasks+=("sft more-sft llava_cot_100k.json $SFT_STEPS" "rft A --answers $ROOT/composed_train.json"
        "grpo_b 1 scst-greedy greedy")
export -f grpo_a grpo_b sft rft done_run; export KIND ROOT R START A_STEPS B_STEPS SAVE A_LR B_LR B_TOP_P SFT_LR RFT_PROMPTS RFT_STEPS
export DEMO_ARGS="${DEMO[*]}" SCHED_ARGS="${SCHED[*]}"
run_all() { printf '%s\n' "$@" | xargs -P "$JOBS" -I{} bash -c 'DEMO=($DEMO_ARGS); SCHED=($SCHED_ARGS); {} > "$R/log-$(echo {} | tr " /" "__").txt" 2>&1'; }
run_all "${tasks[@]}"
tasks=("sft more-sft2 llava_cot_100k.json $SFT_STEPS $R/more-sft")  # C: from more-sft, once it is there
for s in $SEEDS; do tasks+=("grpo_b $s scst group $R/more-sft C"); done
run_all "${tasks[@]}"
# held-out evaluation of the final checkpoints (fixed step counts), then the curves over each run's checkpoints
ev() { [ -f "$OUT/$1.json" ] || python -m cobra_lit.rldemo eval --checkpoint "${@:2}" --out "$OUT/$1.json"; }
ev A-start "$START" "${A[@]}" --k 8
ev A-parts "$START" --answers "$ROOT/taught_test.json" --image_root "$ROOT/images" --k 0  # the parts: taught yes/no kinds
ev B-start "$START" "${B[@]}" --k 8 --train_captions "$ROOT/captions_train.json"
for s in $SEEDS; do ev A-rl-x$s "$R/A-rl-x$s" "${A[@]}" --k 8; ev B-scst-x$s "$R/B-scst-x$s" "${B[@]}" --k 0; done
ev A-more-sft "$R/more-sft" "${A[@]}" --k 8; ev B-more-sft "$R/more-sft" "${B[@]}" --k 0
ev A-rft "$R/A-rft" "${A[@]}" --k 8
[ ! -f "$R/B-scst-greedy-x1/summary.json" ] || ev B-scst-greedy-x1 "$R/B-scst-greedy-x1" "${B[@]}" --k 0
ev C-start "$R/more-sft" "${B[@]}" --k 8 --train_captions "$ROOT/captions_train.json"
for s in $SEEDS; do ev C-scst-x$s "$R/C-scst-x$s" "${B[@]}" --k 0; done; ev C-more-sft2 "$R/more-sft2" "${B[@]}" --k 0
curve() { [ -f "$OUT/curve-$1.json" ] || ev "curve-$1" $(ls "$R/$2"/checkpoints/checkpoint-0*.pt) "${@:3}" --k 0 --limit "$CURVE_N"; }
for s in $SEEDS; do curve A-rl-x$s A-rl-x$s "${A[@]}"; curve B-scst-x$s B-scst-x$s "${B[@]}"; done
curve A-more-sft more-sft "${A[@]}"; curve B-more-sft more-sft "${B[@]}"; curve A-rft A-rft "${A[@]}"
for s in $SEEDS; do curve C-scst-x$s C-scst-x$s "${B[@]}"; done; curve C-more-sft2 more-sft2 "${B[@]}"
ev curve-A-start "$START" "${A[@]}" --k 0 --limit "$CURVE_N"; ev curve-B-start "$START" "${B[@]}" --k 0 --limit "$CURVE_N"
ev curve-C-start "$R/more-sft" "${B[@]}" --k 0 --limit "$CURVE_N"
python - "$R" "$OUT" "$ART" "$SEEDS" <<'PY'
import json, os, sys
from pathlib import Path
from cobra_lit.rldemo import checkpoint_wall_clock, main
R, OUT, ART, seeds = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4].split()
wall = lambda run: max(checkpoint_wall_clock(R/run).values())
rft_s = float((R/'rft_A_sampling_s').read_text())
arms = [dict(task='A', arm='start', metric='greedy', eval='A-start.json', wall_s=0.0),
        *[dict(task='A', arm='rl', seed=int(s), metric='greedy', eval=f'A-rl-x{s}.json', wall_s=wall(f'A-rl-x{s}')) for s in seeds],
        dict(task='A', arm='more-sft', metric='greedy', eval='A-more-sft.json', wall_s=wall('more-sft')),
        dict(task='A', arm='rft', metric='greedy', eval='A-rft.json', wall_s=wall('A-rft') + rft_s),
        dict(task='B', arm='start', metric='greedy', eval='B-start.json', wall_s=0.0),
        *[dict(task='B', arm='rl', seed=int(s), metric='greedy', eval=f'B-scst-x{s}.json', wall_s=wall(f'B-scst-x{s}')) for s in seeds],
        dict(task='B', arm='more-sft', metric='greedy', eval='B-more-sft.json', wall_s=wall('more-sft')),
        dict(task='B', arm='mbr-of-8', metric='mbr8', eval='B-start.json', wall_s=0.0),
        dict(task='C', arm='start', metric='greedy', eval='C-start.json', wall_s=0.0),
        *[dict(task='C', arm='rl', seed=int(s), metric='greedy', eval=f'C-scst-x{s}.json', wall_s=wall(f'C-scst-x{s}')) for s in seeds],
        dict(task='C', arm='more-sft', metric='greedy', eval='C-more-sft2.json', wall_s=wall('more-sft2')),
        dict(task='C', arm='mbr-of-8', metric='mbr8', eval='C-start.json', wall_s=0.0)]
if (OUT/'B-scst-greedy-x1.json').is_file():
    at = next(i for i, a in enumerate(arms) if a['task'] == 'B' and a['arm'] == 'more-sft')
    arms.insert(at, dict(task='B', arm='scst greedy baseline', seed=1, metric='greedy', eval='B-scst-greedy-x1.json',
                         wall_s=wall('B-scst-greedy-x1')))
(OUT/'manifest.json').write_text(json.dumps(arms, indent=1))
main(['table', str(OUT/'manifest.json'), '--out', str(ART/'table')])
# held-out curves against training wall-clock (RFT's sampling seconds included), each arm from the start's point
import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt, numpy as np
curves, (fig, axes) = {}, plt.subplots(1, 3, figsize=(15, 3.8))
for ax, task, label in zip(axes, 'ABC', [f'composed {os.environ["KIND"]} held-out accuracy (greedy)',
                                         'held-out CIDEr-D (greedy)', 'held-out CIDEr-D, from more-sft (greedy)']):
    s0 = json.loads((OUT/f'curve-{task}-start.json').read_text())
    for f in sorted(OUT.glob(f'curve-{task}-*.json')):
        if f.stem.endswith('-start'): continue
        pts, arm = json.loads(f.read_text()), f.stem[len(f'curve-{task}-'):]
        pts = pts if isinstance(pts, list) else [pts]
        off = rft_s if arm == 'rft' else 0.0
        xy = [(0.0, float(np.mean(s0['greedy'])))] + [(p['wall_s'] + off, float(np.mean(p['greedy']))) for p in pts]
        curves[f'{task}/{arm}'] = xy
        ax.plot(*zip(*xy), marker='o', ms=3, label=arm)
    ax.set_xlabel('training wall-clock (s, 2 CPU cores)'); ax.set_title(f'{task}: {label}', fontsize=10); ax.legend(fontsize=8)
fig.tight_layout(); fig.savefig(ART/'curves.png', dpi=110)
(ART/'curves.json').write_text(json.dumps(curves, indent=1))
print((ART/'table.md').read_text())
PY
