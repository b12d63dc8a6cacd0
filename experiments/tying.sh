#!/usr/bin/env bash
# experiments/tying.sh: the output layer tied to the token embedding, or not, at vocabularies of 256
# (bytes), 1024 and 4096 (BPE learned on the training split), compared in bits per byte.
#   {bytes, bpe1024, bpe4096} x {tied, untied} x seeds 1 2 3: 18 runs of 1500 steps of the default
#   model (4 layers, 128 wide, B 16 x T 64). A BPE token covers several bytes, so the runs see
#   different amounts of text: compare tied with untied at one vocabulary, not across them.
# Command: experiments/tying.sh
# Writes: experiments/runs/tying/<vocab>_<tie>_s<seed>/, docs/experiments/tying.csv (with params),
#   tying_groups.csv, tying_bpb.csv (run, group, seed, params, val tokens, val bytes, final val loss in
#   nats per token, bits per byte), tying_val.svg (val loss against step, seed 1).
source "$(dirname "$0")/lib.sh"
setup

N=$(steps 1500)
for vocab in bytes bpe1024 bpe4096; do
    case "$vocab" in
        bytes) tok="--tokenizer bytes" ;;
        bpe*) tok="--tokenizer bpe --vocab-size ${vocab#bpe}" ;;
    esac
    for tie in tied untied; do
        flag=$([[ "$tie" == tied ]] && echo --tie || echo --no-tie)
        for seed in $(seeds); do
            job "${vocab}_${tie}_s$seed" "${vocab}_$tie" "$seed" -i "$DATA" $tok $flag --steps "$N" --eval-every 500 $(eval_flags)
        done
    done
done
run_jobs

summarize tying.csv
chart tying_val.svg "*_s1" --plot-loss val

# Bits per byte: loss (nats per token) x tokens / bytes of the validation split / ln 2. Every run
# validates on the same last 10% of the file; its size in bytes is the byte-level runs' token count,
# and each run's token count is in its table (the "tokens" row of train.txt).
val_tokens() { sed -n 's/^| tokens *| train [0-9,]*, val \([0-9,]*\) .*/\1/p' "$RUNS/$1/train.txt" 2>/dev/null | head -1 | tr -d ,; }
VAL_BYTES=""
for line in "${JOB_LIST[@]}"; do
    name="${line%%$'\t'*}"
    [[ "$name" == bytes_* && -z "$VAL_BYTES" ]] && VAL_BYTES="$(val_tokens "$name")"
done
{
    echo "run,group,seed,params,val_tokens,val_bytes,final_val_loss,bits_per_byte"
    awk -F, 'NR > 1 { print $1 "," $2 "," $3 "," $4 "," $7 }' "$DOCS/tying.csv" | while IFS=, read -r run group seed params val; do
        tokens="$(val_tokens "$run")"
        bpb=$(awk -v l="$val" -v t="$tokens" -v b="$VAL_BYTES" 'BEGIN { if (l == "" || t == "" || b == "") print ""; else printf "%.4f", l * t / b / log(2) }')
        echo "$run,$group,$seed,$params,$tokens,$VAL_BYTES,$val,$bpb"
    done
} > "$DOCS/tying_bpb.csv.tmp"
mv "$DOCS/tying_bpb.csv.tmp" "$DOCS/tying_bpb.csv"
echo "wrote $DOCS/tying_bpb.csv"
