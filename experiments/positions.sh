#!/usr/bin/env bash
# experiments/positions.sh: the position schemes, trained at T = 64 and evaluated at 64, 128, 256 and
# 512 tokens, with the validation loss at each position of a 512-token window.
#   learned, sinusoidal, relative, rope, alibi, none  x  seeds 1 2 3: 18 runs of 2000 steps of the
#   default model (4 layers, 128 wide, B 16 x T 64), every one with --max-seq-len 512 so that the
#   learned table has rows past 64 (never trained: what a learned table has there). Then
#   ./train --eval-only --eval-seq-len L for each run and length.
# Command (see experiments/README.md for the environment): experiments/positions.sh
# Writes: experiments/runs/positions/<scheme>_s<seed>/ (each with eval_<L>.txt and position_loss_512.csv),
#   docs/experiments/positions.csv, positions_groups.csv, positions_lengths.csv (run, group, seed,
#   length, val loss), positions_val.svg (val loss against step, seed 1), positions_lengths.svg (mean
#   val loss against evaluation length), positions_per_position.svg (mean loss at each position, at 512).
source "$(dirname "$0")/lib.sh"
setup

SCHEMES="learned sinusoidal relative rope alibi none"
LENGTHS="64 128 256 512"
N=$(steps 2000)
for pos in $SCHEMES; do
    for seed in $(seeds); do
        job "${pos}_s$seed" "$pos" "$seed" -i "$DATA" --pos "$pos" --max-seq-len 512 --seq-len 64 --batch-size 16 \
            --steps "$N" --eval-every 500 $(eval_flags)
    done
done
run_jobs

# The evaluations at other lengths, JOBS at a time like the runs (kept where they exist).
evaluate_run() {
    local dir="$RUNS/$1" len
    [[ -f "$dir/status" && "$(cat "$dir/status")" == done ]] || return 0
    for len in $LENGTHS; do
        local flags=""
        [[ "$len" == 512 ]] && flags="--position-loss $dir/position_loss_512.csv"
        [[ -f "$dir/eval_$len.txt" && ( "$len" != 512 || -f "$dir/position_loss_512.csv" ) ]] && continue
        # shellcheck disable=SC2086
        "$TRAIN" --eval-only --eval-seq-len "$len" --threads "$THREADS" $(eval_flags) $flags --out "$dir" \
            > "$dir/eval_$len.tmp" 2>&1 || { echo "failed: eval of $1 at $len: $(tail -1 "$dir/eval_$len.tmp")" >&2; return 1; }
        mv "$dir/eval_$len.tmp" "$dir/eval_$len.txt"
    done
}
if [[ "$DRAW_ONLY" != 1 ]]; then
    running=0
    for line in "${JOB_LIST[@]}"; do
        if (( running >= JOBS )); then wait -n || FAILED=1; running=$((running - 1)); fi
        evaluate_run "${line%%$'\t'*}" &
        running=$((running + 1))
    done
    while (( running > 0 )); do wait -n || FAILED=1; running=$((running - 1)); done
    (( FAILED == 0 )) || die "some evaluations failed"
fi

summarize positions.csv
chart positions_val.svg "*_s1" --plot-loss val

# The lengths: one row per run and length, then per scheme the mean over seeds as a table to draw.
TABLES="$RUNS/tables"
mkdir -p "$TABLES"
{
    echo "run,group,seed,length,val_loss"
    for line in "${JOB_LIST[@]}"; do
        IFS=$'\t' read -r name group seed _ <<<"$line"
        for len in $LENGTHS; do
            f="$RUNS/$name/eval_$len.txt"
            if [[ -f "$f" ]]; then echo "$name,$group,$seed,$len,$(sed -n 's/^val loss \([0-9.eE+-]*\).*/\1/p' "$f" | head -1)"; fi
        done
    done
} > "$DOCS/positions_lengths.csv"
echo "wrote $DOCS/positions_lengths.csv"
LEN_TABLES="" POS_TABLES=""
for pos in $SCHEMES; do
    awk -F, -v g="$pos" 'NR > 1 && $2 == g && $5 != "" { s[$4] += $5; n[$4]++ }
        END { print "eval length,val loss"; for (l in s) print l "," s[l] / n[l] }' "$DOCS/positions_lengths.csv" |
        { read -r header; echo "$header"; sort -t, -k1,1n; } > "$TABLES/$pos.csv"
    if [[ $(wc -l < "$TABLES/$pos.csv") -gt 1 ]]; then LEN_TABLES+="${LEN_TABLES:+,}$TABLES/$pos.csv"; fi
    files=$(ls "$RUNS"/"${pos}"_s*/position_loss_512.csv 2>/dev/null || true)
    if [[ -n "$files" ]]; then
        # shellcheck disable=SC2086
        awk -F, 'FNR > 1 { s[$1] += $2; n[$1]++ } END { print "position,loss"; for (t in s) print t "," s[t] / n[t] }' $files |
            { read -r header; echo "$header"; sort -t, -k1,1n; } > "$TABLES/positions_$pos.csv"
        POS_TABLES+="${POS_TABLES:+,}$TABLES/positions_$pos.csv"
    fi
done
if [[ -n "$LEN_TABLES" ]]; then
    "$TRAIN" --plot "$LEN_TABLES" --labels "$(basename -a ${LEN_TABLES//,/ } | sed 's/\.csv$//' | paste -sd,)" \
        --log-x -o "$DOCS/positions_lengths.svg" >/dev/null && echo "wrote $DOCS/positions_lengths.svg"
fi
if [[ -n "$POS_TABLES" ]]; then
    "$TRAIN" --plot "$POS_TABLES" --labels "$(basename -a ${POS_TABLES//,/ } | sed 's/^positions_//; s/\.csv$//' | paste -sd,)" \
        -o "$DOCS/positions_per_position.svg" >/dev/null && echo "wrote $DOCS/positions_per_position.svg"
fi
