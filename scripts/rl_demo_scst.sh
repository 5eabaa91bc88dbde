#!/usr/bin/env bash
# The RL demo's SCST, part D (nbs/30c_rl_demo.ipynb): B's SCST with its rollouts ended at the rewarded stage.
#
#   bash scripts/rl_demo_scst.sh                   # D; after scripts/rl_demo.sh (its start, more-sft, B's evaluation)
#   BASELINE=greedy bash scripts/rl_demo_scst.sh   # E: D with Rennie's self-critical (greedy caption) baseline
#   LONG=1 bash scripts/rl_demo_scst.sh            # F: D from a longer supervised run (trained here first)
#
# D: from B's start, GRPO with the CIDEr-D caption reward on the training caption split, rollouts at top_p 0.9 that
# end at '</CAPTION>' (`--stop`: the reward reads nothing after it, so the later stages cost decode and update time
# and carry the caption's advantage as noise), GRPO's constant learning rate 1e-4 (B ran with 5% warmup and cosine
# decay), D_STEPS steps (fixed before the runs: 95: 5.5 s a step in a 6-step timing run, so 9 minutes), SEEDS seeds.
# Held-out: the 200 test images' captions (CIDEr-D, greedy), against B's start, more supervised training from it
# (more-sft) and the minimum-Bayes-risk choice among 8 samples; curves over each run's checkpoints (first CURVE_N).
# E is D with --baseline greedy (the same steps: 5.65 s a step in a 5-step timing run).
# F (LONG=1) is D from a longer supervised run (Rennie et al. start SCST where cross-entropy training has stopped
# improving; B's and C's starts had not): sft-long, 2800 more supervised steps from more-sft2 (5600 past B's start),
# against 1400 more supervised steps from there (sft-long-more), chosen before any of them was evaluated, and RFT from
# there (the best of 8 samples of each training caption image, 900 supervised steps). F also writes table-ab: A's rows
# (scripts/rl_demo.sh) with F's as B.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -n "${VIRTUAL_ENV:-}" ] || . .venv/bin/activate
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=${THREADS:-2}
KIND=${COMPOSED:-warm-yn}; N_SFT=${COMPOSED_SFT:-4}; TAG=${KIND%-yn}-c$N_SFT
ROOT=data/demo-rl-$TAG; R=runs/rl-demo-$TAG; OUT=results/rl-demo-$TAG; ART=${ART:-nbs/artifacts/rl}
START=runs/demo-rl-$TAG+cobra-tiny+stage-full-finetune+x7
BASELINE=${BASELINE:-group}; T=$([ "$BASELINE" = group ] && echo D || echo E); LONG=${LONG:-0}
SEEDS=${SEEDS:-"1 2 3"}; D_STEPS=${D_STEPS:-95}; SAVE=${SAVE:-19}; CURVE_N=${CURVE_N:-100}
FROM=$START; S0=B-start; MORE=more-sft; MORE_EV=B-more-sft
B=(--captions "$ROOT/captions_test.json" --image_root "$ROOT/images")
ev() { [ -f "$OUT/$1.json" ] || python -m cobra_lit.rldemo eval --checkpoint "${@:2}" --out "$OUT/$1.json"; }
if [ "$LONG" = 1 ]; then  # F: the longer supervised start and its matched baseline, the demo recipe (rl_demo.sh's sft)
  T=F; FROM=$R/sft-long; S0=F-start; MORE=sft-long-more; MORE_EV=F-more-sft
  [ -f "$R/more-sft2/summary.json" ] || { echo "missing $R/more-sft2: run scripts/rl_demo.sh first" >&2; exit 1; }
  sft() {  # sft RUN_ID STEPS FROM [ANNOTATION]
    [ -f "$R/$1/summary.json" ] || python -m cobra_lit.train --pretrained_checkpoint "$R/$3" \
    --dataset.dataset_root "$ROOT" --dataset.rl_splits true --dataset.composed "$KIND" --dataset.composed_sft "$N_SFT" \
    --dataset.annotation "${4:-llava_cot_100k.json}" --eval_demo false --model.finetune_learning_rate 1e-3 \
    --optim.max_steps "$2" --save_interval "$((($2 + 3) / 4))" --run_id "$1" --run_root_dir "$R" > "$R/log-$1.txt" 2>&1; }
  sft sft-long 2800 more-sft2; sft sft-long-more 1400 sft-long
  # RFT (rl_demo.sh's, for captions): each of the 400 training caption images' best of 8 samples by CIDEr-D against
  # its references, then 900 supervised steps on them (A's RFT_STEPS); the sampling seconds count in its wall-clock
  if [ ! -f "$ROOT/rft_F.json" ]; then
    t0=$SECONDS
    python -m cobra_lit.rldemo rft --checkpoint "$FROM" --captions "$ROOT/captions_train.json" \
      --image_root "$ROOT/images" --k 8 --limit 400 --seed 1 --out "$ROOT/rft_F.json"
    echo $((SECONDS - t0)) > "$R/rft_F_sampling_s"
  fi
  sft F-rft 900 sft-long rft_F.json
  ev F-start "$FROM" "${B[@]}" --k 8 --train_captions "$ROOT/captions_train.json"; ev F-more-sft "$R/$MORE" "${B[@]}" --k 0
  ev F-rft "$R/F-rft" "${B[@]}" --k 0
  ev curve-F-start "$FROM" "${B[@]}" --k 0 --limit "$CURVE_N"
  ev curve-F-rft $(ls "$R/F-rft"/checkpoints/checkpoint-0*.pt) "${B[@]}" --k 0 --limit "$CURVE_N"
fi
t=${T,,}
for f in "$FROM/checkpoints/checkpoint-latest.pt" "$R/$MORE/summary.json" "$OUT/$S0.json" "$OUT/$MORE_EV.json"; do
  [ -f "$f" ] || { echo "missing $f: run scripts/rl_demo.sh first" >&2; exit 1; }; done
for s in $SEEDS; do
  [ -f "$R/$T-scst-x$s/summary.json" ] || python -m cobra_lit.grpo --pretrained_checkpoint "$FROM" \
    --dataset.type coco-captions --dataset.dataset_root "$ROOT" --dataset.annotations captions_train.json \
    --rewards cobra_lit.grpo:caption_reward,cobra_lit.grpo:length_penalty --stop '</CAPTION>' --top_p 0.9 \
    --baseline "$BASELINE" \
    --eval_demo false --max_steps "$D_STEPS" --save_interval "$SAVE" --seed "$s" --run_id "$T-scst-x$s" \
    --run_root_dir "$R" > "$R/log-$t-scst-$s.txt" 2>&1
done
for s in $SEEDS; do
  ev $T-scst-x$s "$R/$T-scst-x$s" "${B[@]}" --k 0
  ev curve-$T-scst-x$s $(ls "$R/$T-scst-x$s"/checkpoints/checkpoint-0*.pt) "${B[@]}" --k 0 --limit "$CURVE_N"
done
ev curve-$MORE_EV $(ls "$R/$MORE"/checkpoints/checkpoint-0*.pt) "${B[@]}" --k 0 --limit "$CURVE_N"  # the same for more-sft
python - "$R" "$OUT" "$ART" "$SEEDS" "$T" "$S0" "$MORE" "$MORE_EV" <<'PY'
import json, sys
from pathlib import Path
from cobra_lit.rldemo import checkpoint_wall_clock, main
R, OUT, ART, seeds, T = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4].split(), sys.argv[5]
S0, MORE, MORE_EV = sys.argv[6:9]
t = T.lower()
wall = lambda run: max(checkpoint_wall_clock(R/run).values())
arms = [dict(task=T, arm='start', metric='greedy', eval=f'{S0}.json', wall_s=0.0),
        *[dict(task=T, arm='rl', seed=int(s), metric='greedy', eval=f'{T}-scst-x{s}.json', wall_s=wall(f'{T}-scst-x{s}'))
          for s in seeds],
        dict(task=T, arm='more-sft', metric='greedy', eval=f'{MORE_EV}.json', wall_s=wall(MORE)),
        dict(task=T, arm='mbr-of-8', metric='mbr8', eval=f'{S0}.json', wall_s=0.0)]
rft_s = float((R/f'rft_{T}_sampling_s').read_text()) if (OUT/f'{T}-rft.json').is_file() else 0.0
if rft_s: arms.insert(-1, dict(task=T, arm='rft', metric='greedy', eval=f'{T}-rft.json', wall_s=wall(f'{T}-rft') + rft_s))
(OUT/f'manifest-{t}.json').write_text(json.dumps(arms, indent=1))
main(['table', str(OUT/f'manifest-{t}.json'), '--out', str(ART/f'table-{t}')])
if T == 'F' and (ART/'table.json').is_file():  # one table: A's rows (scripts/rl_demo.sh's table) and F's as B
    from cobra_lit.rldemo import table_markdown
    rows = [r for r in json.loads((ART/'table.json').read_text()) if r['task'] == 'A']
    rows += [dict(r, task='B (F)') for r in json.loads((ART/f'table-{t}.json').read_text())]
    (ART/'table-ab.json').write_text(json.dumps(rows, indent=1))
    (ART/'table-ab.md').write_text(table_markdown(rows) + '\n')
s0 = json.loads((OUT/f'curve-{S0}.json').read_text())
mean = lambda v: sum(v) / len(v)
def curve(name, offset=0.0):  # an arm's held-out points against wall-clock, from the start's point
    pts = json.loads((OUT/f'curve-{name}.json').read_text()); pts = pts if isinstance(pts, list) else [pts]
    return [(0.0, mean(s0['greedy']))] + [(p['wall_s'] + offset, mean(p['greedy'])) for p in pts]
curves = {f'{T}/rl-x{s}': curve(f'{T}-scst-x{s}') for s in seeds}
curves[f'{T}/more-sft'] = curve(MORE_EV)
if rft_s: curves[f'{T}/rft'] = curve(f'{T}-rft', rft_s)
(ART/f'curves-{t}.json').write_text(json.dumps(curves, indent=1))
import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(5.5, 3.6))
for k, xy in curves.items(): ax.plot(*zip(*xy), marker='o', ms=3, label=k.split('/')[1])
ax.set_xlabel('training wall-clock (s, 2 CPU cores)'); ax.set_ylabel(f'CIDEr-D, first {len(s0["greedy"])} test images')
ax.set_title(f'{T}: held-out CIDEr-D (greedy)', fontsize=10); ax.legend(fontsize=8); fig.tight_layout()
fig.savefig(ART/f'curves-{t}.png', dpi=110)
print((ART/f'table-{t}.md').read_text())
PY
