#!/usr/bin/env bash
# experiments/bf16_decay.sh: bf16 and weight decay at a constant high learning rate, where small
# models become unstable (Wortsman et al. 2023): the loss, the parameter norms, the largest output
# logit and the largest attention logit (log.csv's columns at each evaluation).
#   {fp32, bf16 with an fp32 master copy, bf16 without (stochastic rounding)} x lambda {0, 0.1} x
#   lr {1e-2, 3e-2} constant (no warmup, no decay) x seeds 1 2 3: 36 runs of 1000 steps of the default
#   model (4 layers, 128 wide, B 16 x T 64), clipping at the default 1.0, evaluated every 250 steps.
#   Our bf16 is llm.c's: bf16 weights, activations and gradients (not autocast over fp32 weights).
# Command: experiments/bf16_decay.sh
# Writes: experiments/runs/bf16_decay/<precision>_wd<lambda>_lr<lr>_s<seed>/, docs/experiments/
#   bf16_decay.csv (final norms, max_logit, max_attn_logit), bf16_decay_groups.csv,
#   bf16_decay_lr<lr>.svg (val loss against step, seed 1, each precision and lambda).
source "$(dirname "$0")/lib.sh"
setup

N=$(steps 1000)
for lr in 1e-2 3e-2; do
    for precision in fp32 bf16 bf16nomaster; do
        case "$precision" in
            fp32) flags="--dtype fp32" ;;
            bf16) flags="--dtype bf16" ;;
            bf16nomaster) flags="--dtype bf16 --no-master-weights" ;;
        esac
        for wd in 0 0.1; do
            for seed in $(seeds); do
                job "${precision}_wd${wd}_lr${lr}_s$seed" "${precision}_wd$wd" "$seed" -i "$DATA" $flags --weight-decay "$wd" \
                    --lr "$lr" --schedule constant --steps "$N" --eval-every 250 $(eval_flags)
            done
        done
    done
done
run_jobs

summarize bf16_decay.csv
for lr in 1e-2 3e-2; do chart "bf16_decay_lr$lr.svg" "*_lr${lr}_s1" --plot-loss val; done
