#!/usr/bin/env bash
# experiments/norm.sh: LayerNorm placement (post, pre, sandwich) across learning rates, with and
# without warmup, in a deep and narrow model (8 layers, 64 wide, 4 heads) with clipping off.
#   norm {post, pre, sandwich} x lr {1e-3, 3e-3, 1e-2, 3e-2} x warmup {0, 200} x seeds 1 2 3:
#   72 runs of 1000 steps, B 16 x T 64, cosine schedule, --grad-clip 0.
# Command: experiments/norm.sh
# Writes: experiments/runs/norm/<norm>_lr<lr>_w<warmup>_s<seed>/, docs/experiments/norm.csv,
#   norm_groups.csv, norm_warmup0.svg and norm_warmup200.svg (final val loss against lr, a line per
#   placement through the seeds' mean, crosses for diverged runs), norm_curves_lr1e-2.svg (train
#   loss against step at lr 1e-2, seed 1, with and without warmup).
source "$(dirname "$0")/lib.sh"
setup

N=$(steps 1000)
WARMUP_STEPS=$(( $(steps 200) < N ? $(steps 200) : N / 2 ))
for warmup in 0 "$WARMUP_STEPS"; do
    for norm in post pre sandwich; do
        for lr in 1e-3 3e-3 1e-2 3e-2; do
            for seed in $(seeds); do
                w=$([[ "$warmup" == 0 ]] && echo 0 || echo 200)
                job "${norm}_lr${lr}_w${w}_s$seed" "$norm (warmup $w)" "$seed" -i "$DATA" --n-layer 8 --n-embd 64 --n-head 4 \
                    --norm "$norm" --lr "$lr" --warmup "$warmup" --grad-clip 0 --steps "$N" --eval-every 500 $(eval_flags)
            done
        done
    done
done
run_jobs

summarize norm.csv
for w in 0 200; do
    chart "norm_warmup$w.svg" "*_w${w}_s*" --plot-loss val --plot-x lr --log-x
done
chart norm_curves_lr1e-2.svg "*_lr1e-2_w*_s1"
