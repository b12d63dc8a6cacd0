# experiments/lib.sh: what every experiment script shares (sourced, not run). Each script lists its
# runs with `job`, then calls `run_jobs`, draws its charts with `chart` and writes its summary with
# `summarize`. Environment (all optional):
#   JOBS=N       ./train processes at once (default 1)
#   THREADS=N    threads per run (default 2 / JOBS, at least 1)
#   DATA=FILE    tinyshakespeare (default ../shared/data/tinyshakespeare.txt beside the repository)
#   RUNS=DIR     where the run folders go (default experiments/runs/<experiment>)
#   DOCS=DIR     where the charts and summaries go (default docs/experiments)
#   STEPS=N      every run's steps (a smoke test); SCALE=X multiplies them instead (e.g. 0.01)
#   SEEDS="1 2"  the seeds (default: each script's, usually 1 2 3)
#   DRAW_ONLY=1  run nothing: redraw the charts and summaries from the run folders that exist
# A run folder whose log.csv reaches its last step (or that diverged) is kept; others are run again.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EXPERIMENT="$(basename "$0" .sh)"
JOBS="${JOBS:-1}"
[[ "$JOBS" =~ ^[1-9][0-9]*$ ]] || { echo "error: JOBS must be a count of processes, 1 or more, got '$JOBS'" >&2; exit 1; }
THREADS="${THREADS:-$(( 2 / JOBS > 0 ? 2 / JOBS : 1 ))}"
RUNS="${RUNS:-$ROOT/experiments/runs/$EXPERIMENT}"
DOCS="${DOCS:-$ROOT/docs/experiments}"
DRAW_ONLY="${DRAW_ONLY:-0}"
TRAIN="$ROOT/train"
SMOKE=0
[[ -n "${STEPS:-}" || -n "${SCALE:-}" ]] && SMOKE=1

die() { echo "error: $*" >&2; exit 1; }

# An absolute path: relative ones are taken from the directory the script was started in.
absolute() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }

setup() {
    [[ "$THREADS" =~ ^[1-9][0-9]*$ ]] || die "THREADS must be a count of threads, 1 or more, got '$THREADS'"
    DATA="$(absolute "${DATA:-$ROOT/../shared/data/tinyshakespeare.txt}")"
    if [[ "$DRAW_ONLY" != 1 ]]; then
        [[ -f "$DATA" ]] || die "no data at '$DATA' (set DATA=path/to/tinyshakespeare.txt)"
        [[ -x "$TRAIN" ]] || make -C "$ROOT" -j2 train >/dev/null || die "could not build ./train (run make)"
    else
        [[ -x "$TRAIN" ]] || make -C "$ROOT" -j2 train >/dev/null || die "could not build ./train (run make)"
        [[ -d "$RUNS" ]] || die "DRAW_ONLY=1, but there are no runs in '$RUNS'"
    fi
    mkdir -p "$RUNS" "$DOCS"
    JOB_LIST=()
    FAILED=0
}

# The steps of a run of N steps at this scale (at least 2).
steps() {
    local n="$1"
    if [[ -n "${STEPS:-}" ]]; then n="$STEPS"
    elif [[ -n "${SCALE:-}" ]]; then n="$(awk -v n="$n" -v s="$SCALE" 'BEGIN { m = int(n * s); print m < 2 ? 2 : m }')"
    fi
    echo "$n"
}

# Evaluation flags: the whole validation split at full size, 4 batches in a smoke test.
eval_flags() { [[ "$SMOKE" == 1 ]] && echo "--eval-batches 4" || echo "--eval-batches 0"; }

seeds() { echo "${SEEDS:-${1:-1 2 3}}"; }

# job NAME GROUP SEED ARGS...: one run of ./train into $RUNS/NAME. GROUP names its line in charts
# and its row in the summary (the runs of one GROUP differ only in SEED).
job() {
    local name="$1" group="$2" seed="$3"; shift 3
    JOB_LIST+=("$name"$'\t'"$group"$'\t'"$seed"$'\t'"$*")
}

# Whether a run folder holds a finished run: its log reaches its last step, or it diverged.
finished() {
    local dir="$1"
    [[ -f "$dir/status" ]] || return 1
    local status; status="$(cat "$dir/status")"
    [[ "$status" == done || "$status" == diverged ]]
}

# Runs one job line (tab-separated, as job() stores it), unless its folder is finished.
run_one() {
    local name group seed args
    IFS=$'\t' read -r name group seed args <<<"$1"
    local dir="$RUNS/$name"
    if finished "$dir"; then return 0; fi
    rm -rf "$dir"
    mkdir -p "$dir"
    printf 'group=%s\nseed=%s\nargs=%s\n' "$group" "$seed" "$args" > "$dir/meta"
    # shellcheck disable=SC2086  # args are flags, split on blanks on purpose
    if "$TRAIN" $args --seed "$seed" --threads "$THREADS" --sample-every 0 --sample-len 64 --out "$dir" \
        > "$dir/train.txt" 2>&1; then
        echo done > "$dir/status"
    elif grep -q "non-finite loss or gradient; stopping" "$dir/train.txt"; then
        echo diverged > "$dir/status"   # a result, not a failure
    else
        echo "failed: $name: $(tail -1 "$dir/train.txt")" >&2
        return 1
    fi
    echo "$(date +%H:%M:%S) $EXPERIMENT/$name: $(cat "$dir/status")"
}

# Runs every job, JOBS at a time. A failed run (not a diverged one) fails the script at the end.
run_jobs() {
    [[ "$DRAW_ONLY" == 1 ]] && return 0
    echo "$EXPERIMENT: ${#JOB_LIST[@]} runs, $JOBS at a time, $THREADS threads each, into $RUNS"
    local running=0 line
    for line in "${JOB_LIST[@]}"; do
        if (( running >= JOBS )); then
            wait -n || FAILED=1
            running=$((running - 1))
        fi
        run_one "$line" &
        running=$((running + 1))
    done
    while (( running > 0 )); do
        wait -n || FAILED=1
        running=$((running - 1))
    done
    (( FAILED == 0 )) || die "some runs of $EXPERIMENT failed (see their train.txt)"
}

# The folders (comma-separated) and labels of the jobs whose names match a pattern (a bash glob),
# that exist: sets DIRS and LABELS; and with a flag name, XS: each run's value of that flag, from the
# job's arguments (a run that diverged at once has no checkpoint to read it from).
select_runs() {
    local pattern="$1" flag="${2:-}" line name group seed args
    DIRS="" LABELS="" XS=""
    for line in "${JOB_LIST[@]}"; do
        IFS=$'\t' read -r name group seed args <<<"$line"
        # shellcheck disable=SC2053  # a glob on purpose
        [[ "$name" == $pattern && -f "$RUNS/$name/log.csv" ]] || continue
        DIRS+="${DIRS:+,}$RUNS/$name"
        LABELS+="${LABELS:+,}$group"
        if [[ -n "$flag" ]]; then XS+="${XS:+,}$(sed -n "s/.*--$flag \([^ ]*\).*/\1/p" <<<"$args")"; fi
    done
}

# chart OUT.svg PATTERN [FLAGS...]: the matching runs on one chart (./train --plot), named by group;
# with --plot-x NAME among the flags, the x values come from the jobs' --NAME.
chart() {
    local out="$1" pattern="$2" flag="" previous=""; shift 2
    for a in "$@"; do [[ "$previous" == --plot-x ]] && flag="$a"; previous="$a"; done
    select_runs "$pattern" "$flag"
    [[ -n "$DIRS" ]] || { echo "$EXPERIMENT: no runs match '$pattern' for $out, not drawn" >&2; return 0; }
    local xs=()
    if [[ -n "$flag" ]]; then xs=(--x-values "$XS"); fi
    "$TRAIN" --plot "$DIRS" --labels "$LABELS" "$@" "${xs[@]}" -o "$DOCS/$out" >/dev/null
    echo "wrote $DOCS/$out"
}

# A value of a run's meta file.
meta() { sed -n "s/^$2=//p" "$RUNS/$1/meta"; }

# summarize OUT.csv: one row per run: its group and seed, parameters, steps done, final train and val
# loss, best val loss, diverged (as ./train --plot says: a loss not finite, or a last train loss
# above the first), spikes marked, non-finite steps, the share of steps that clipping
# acted on (gradient norm above the run's --grad-clip, default 1; 0 when it was off), the last
# evaluation's parameter norms and logit measurements, and the sum of the learning rates over the run
# (weight decay shrinks a weight by exp(-lambda * sum_lr) when its gradient is zero). Then one row per
# group: the mean and spread over its seeds.
summarize() {
    local out="$1" line name group seed args
    local tmp="$DOCS/$out.tmp"
    echo "run,group,seed,params,steps,final_train_loss,final_val_loss,best_val_loss,diverged,spikes,nonfinite_steps,clipped_frac,decay_norm,no_decay_norm,max_logit,mean_lse,max_attn_logit,sum_lr" > "$tmp"
    for line in "${JOB_LIST[@]}"; do
        IFS=$'\t' read -r name group seed args <<<"$line"
        local dir="$RUNS/$name"
        [[ -f "$dir/log.csv" ]] || continue
        local params status clip
        clip="$(sed -n 's/.*--grad-clip \([^ ]*\).*/\1/p' <<<"$args")"
        clip="${clip:-1}"
        params="$(sed -n 's/^ *| *parameters *| *\([0-9,]*\).*/\1/p' "$dir/train.txt" 2>/dev/null | head -1 | tr -d ,)"
        status="$(cat "$dir/status" 2>/dev/null || echo unfinished)"
        awk -F, -v run="$name" -v group="$group" -v seed="$seed" -v params="${params:-}" -v status="$status" \
            -v clip="$clip" '
            NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
            {
                steps = $1; n++; sum_lr += $4
                if ($col["event"] == "not-finite") nonfinite++
                else { train = $2; if (first == "") first = $2; if ($5 + 0 > clip + 0) clipped++ }
                if ($col["event"] ~ /^spike/) spikes++
                if ($3 != "") {
                    val = $3; if (best == "" || $3 + 0 < best + 0) best = $3
                    dn = $col["decay_norm"]; ndn = $col["no_decay_norm"]; ml = $col["max_logit"]
                    lse = $col["mean_lse"]; mal = $col["max_attn_logit"]
                }
            }
            END {
                # as ./train --plot marks it: not finite, or ending above where it started
                diverged = (status == "diverged" || val == "inf" || val == "nan" || train + 0 > first + 0) ? "yes" : "no"
                frac = (clip + 0 > 0 && n > 0) ? clipped / n : 0
                printf "%s,%s,%s,%s,%d,%s,%s,%s,%s,%d,%d,%.4f,%s,%s,%s,%s,%s,%.4g\n", run, group, seed, params, steps,
                       train, val, best, diverged, spikes, nonfinite, frac, dn, ndn, ml, lse,
                       mal, sum_lr
            }' "$dir/log.csv" >> "$tmp"
    done
    mv "$tmp" "$DOCS/$out"
    echo "wrote $DOCS/$out"
    group_means "$out" "${out%.csv}_groups.csv"
}

# The mean, standard deviation (over seeds) and count of final_val_loss per configuration of a
# summary: the runs whose names differ only in their _s<seed> ending.
group_means() {
    awk -F, 'NR == 1 { next }
        {
            k = $1; sub(/_s[0-9]+$/, "", k)
            if (!(k in n)) order[++groups] = k
            n[k]++
            if ($9 == "yes" || $7 == "") div[k]++
            else { s[k] += $7; ss[k] += $7 * $7; ok[k]++ }
        }
        END {
            print "config,runs,diverged,mean_final_val_loss,std_final_val_loss"
            for (g = 1; g <= groups; g++) {
                k = order[g]; m = ok[k] ? s[k] / ok[k] : 0
                sd = ok[k] > 1 ? sqrt((ss[k] - ok[k] * m * m) / (ok[k] - 1)) : 0
                if (sd != sd) sd = 0
                printf "%s,%d,%d,%s,%.4f\n", k, n[k], div[k] + 0, ok[k] ? sprintf("%.4f", m) : "", sd
            }
        }' "$DOCS/$1" > "$DOCS/$2.tmp"
    mv "$DOCS/$2.tmp" "$DOCS/$2"
    echo "wrote $DOCS/$2"
}
