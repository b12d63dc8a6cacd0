#!/bin/sh
# fuzz/run.sh SECONDS TRAIN TARGET...: the body of `make fuzz` (see the Makefile's header).
# Seeds each target's corpus (build-fuzz/corpus/<target>/) with fuzz/seeds/<target>/ and with the files
# a short ./train run writes, runs the targets one after another for SECONDS each, prints one line per
# target and a last one, and exits non-zero if any found something (kept in build-fuzz/findings/).
seconds=$1 train=$2
shift 2
gen=build-fuzz/gen
rm -rf "$gen" && mkdir -p "$gen" build-fuzz/findings || exit 1
# A tiny run makes a valid checkpoint (with optimizer and loader state), tokenizer.bpe, log.csv, an
# llm.c model file and llm.c token files.
for f in fuzz/seeds/fuzz_text/*; do cat "$f"; done > "$gen/input.txt"
small="--input $gen/input.txt --n-layer 1 --n-head 1 --n-embd 4 --seq-len 8 --batch-size 2 --threads 1"
"$train" $small --tokenizer bpe --vocab-size 260 --steps 2 --loader sequential --out "$gen/bpe" >/dev/null &&
"$train" $small --steps 2 --out "$gen/bytes" --export-llmc "$gen/model.bin" >/dev/null &&
"$train" $small --write-tokens "$gen/tokens" >/dev/null ||
  { echo "error: $train could not make the fuzz seeds"; exit 1; }
found=0
for t in "$@"; do
  corpus=build-fuzz/corpus/$t
  mkdir -p "$corpus"
  [ -d "fuzz/seeds/$t" ] && cp fuzz/seeds/"$t"/* "$corpus"/ 2>/dev/null
  case $t in
    fuzz_checkpoint)     cp "$gen/bpe/model.ckpt" "$corpus/gen-bpe.ckpt"; cp "$gen/bytes/model.ckpt" "$corpus/gen-bytes.ckpt" ;;
    fuzz_bpe)            cp "$gen/bpe/tokenizer.bpe" "$corpus/gen.bpe" ;;
    fuzz_log)            cp "$gen/bytes/log.csv" "$corpus/gen.csv" ;;
    fuzz_llmc_model)     cp "$gen/model.bin" "$corpus/gen.bin" ;;
    fuzz_llmc_tokens)    cp "$gen/tokens_train.bin" "$gen/tokens_val.bin" "$corpus"/ ;;
  esac
  log=build-fuzz/$t.log
  build-fuzz/$t "$corpus" -max_total_time="$seconds" -rss_limit_mb=512 -malloc_limit_mb=512 -timeout=5 \
    -artifact_prefix="build-fuzz/findings/$t-" -print_final_stats=1 >"$log" 2>&1
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
  if [ $rc -eq 0 ]; then
    echo "$t: ${runs:-?} inputs in ${seconds}s, ${cov:-cov: ?}, no findings"
  else
    found=$((found + 1))
    echo "$t: FINDING (exit $rc): $(grep -m1 -E 'ERROR|runtime error|==[0-9]+==|terminate|uncaught' "$log") -- input in build-fuzz/findings/, log in $log"
  fi
done
echo "fuzz: $# targets, $found with findings"
[ $found -eq 0 ]
