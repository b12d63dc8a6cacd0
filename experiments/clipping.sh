#!/usr/bin/env bash
# experiments/clipping.sh: global gradient-norm clipping off, at 1.0 (GPT-3's and nanoGPT's) and at
# 0.25, at high learning rates without warmup, in pre-LN and post-LN models; how many steps the spike
# detector marks (default window 128, z 5) and how often clipping acts.
#   clip {0, 1, 0.25} x lr {1e-2, 3e-2} x norm {pre, post} x seeds 1 2 3: 36 runs of 1000 steps of the
#   default model (4 layers, 128 wide, B 16 x T 64), --warmup 0, cosine to lr / 10.
# Command: experiments/clipping.sh
# Writes: experiments/runs/clipping/<norm>_clip<c>_lr<lr>_s<seed>/, docs/experiments/clipping.csv
#   (spikes, clipped_frac: the share of steps whose norm was above the clip), clipping_groups.csv,
#   clipping_pre.svg and clipping_post.svg (final val loss against lr, a line per clip setting),
#   clipping_curves_lr3e-2.svg (train loss against step at lr 3e-2, seed 1).
source "$(dirname "$0")/lib.sh"
setup

N=$(steps 1000)
for norm in pre post; do
    for clip in 0 1 0.25; do
        for lr in 1e-2 3e-2; do
            for seed in $(seeds); do
                job "${norm}_clip${clip}_lr${lr}_s$seed" "${norm}_clip$clip" "$seed" -i "$DATA" --norm "$norm" \
                    --grad-clip "$clip" --lr "$lr" --warmup 0 --steps "$N" --eval-every 500 $(eval_flags)
            done
        done
    done
done
run_jobs

summarize clipping.csv
for norm in pre post; do chart "clipping_$norm.svg" "${norm}_*" --plot-loss val --plot-x lr --log-x; done
chart clipping_curves_lr3e-2.svg "*_lr3e-2_s1"
