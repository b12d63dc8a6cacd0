#!/usr/bin/env bash
# experiments/decay.sh: AdamW's weight decay from 0 to 30 times the usual 0.1, on the 2-D parameters
# (the default rule) and on all of them (--decay-all).
#   2-D: lambda {0, 0.03, 0.1, 0.3, 1, 3}; all parameters: lambda {0.1, 1}; x seeds 1 2 3: 24 runs of
#   1500 steps of the default model (4 layers, 128 wide, B 16 x T 64, lr 4e-3 cosine to 4e-4).
#   With that schedule the learning rates sum to about 3.3 (summary column sum_lr), so lambda 0.1
#   shrinks a weight without gradient by exp(-0.33), about 28%, over the run: hence the decade above.
# Command: experiments/decay.sh
# Writes: experiments/runs/decay/<2d|all>_wd<lambda>_s<seed>/, docs/experiments/decay.csv (with the
#   final decayed and not-decayed parameter norms), decay_groups.csv, decay_sweep.svg (final val loss
#   against lambda, a line for 2-D and one for all), decay_val.svg (val loss against step, seed 1).
source "$(dirname "$0")/lib.sh"
setup

N=$(steps 1500)
for which in 2d all; do
    lambdas=$([[ "$which" == 2d ]] && echo "0 0.03 0.1 0.3 1 3" || echo "0.1 1")
    extra=$([[ "$which" == all ]] && echo --decay-all || echo "")
    for wd in $lambdas; do
        for seed in $(seeds); do
            job "${which}_wd${wd}_s$seed" "$which" "$seed" -i "$DATA" --weight-decay "$wd" $extra --steps "$N" \
                --eval-every 250 $(eval_flags)
        done
    done
done
run_jobs

summarize decay.csv
chart decay_sweep.svg "*" --plot-loss val --plot-x weight-decay
chart decay_val.svg "2d_*_s1" --plot-loss val
