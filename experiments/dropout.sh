#!/usr/bin/env bash
# experiments/dropout.sh: dropout sites in a regime that overfits: the default model (4 layers, 128
# wide) on the first 100 kB of tinyshakespeare for about 30 epochs, validated on the last 10%.
#   none, all four sites at 0.2, and each site alone at 0.2 (emb, attn, resid, mlp) x seeds 1 2 3:
#   18 runs of 3000 steps, B 16 x T 64 (1024 tokens a step: 100 kB is 98 steps), evaluated every 250.
# Command: experiments/dropout.sh (RATE=0.1 for Vaswani's rate)
# Writes: experiments/runs/dropout/<site>_s<seed>/ and data/ (the two splits), docs/experiments/
#   dropout.csv (best_val_loss against final_val_loss shows the overfitting), dropout_groups.csv,
#   dropout_val.svg (val loss against step, seed 1), dropout_train.svg (train loss, seed 1).
source "$(dirname "$0")/lib.sh"
setup
RATE="${RATE:-0.2}"

SPLITS="$RUNS/data"
if [[ "$DRAW_ONLY" != 1 ]]; then
    mkdir -p "$SPLITS"
    total=$(wc -c < "$DATA")
    head -c 100000 "$DATA" > "$SPLITS/train_100k.txt"
    tail -c $(( total / 10 )) "$DATA" > "$SPLITS/val.txt"   # the split every other experiment validates on
fi

N=$(steps 3000)
for site in none all emb attn resid mlp; do
    case "$site" in
        none) flags="--dropout 0" ;;
        all) flags="--dropout $RATE" ;;
        *) flags="--$site-dropout $RATE" ;;
    esac
    for seed in $(seeds); do
        job "${site}_s$seed" "$site" "$seed" -i "$SPLITS/train_100k.txt" --val "$SPLITS/val.txt" $flags \
            --steps "$N" --eval-every 250 $(eval_flags)
    done
done
run_jobs

summarize dropout.csv
chart dropout_val.svg "*_s1" --plot-loss val
chart dropout_train.svg "*_s1"
