#!/usr/bin/env bash
# Runs each Catch2 test binary given as an argument, then prints one line:
#   tests: N passed, M failed
# counting Catch2 test cases over all binaries. A binary that dies before its summary counts as one
# failed test. Exits non-zero if anything failed.
set -u
passed=0
failed=0
for bin in "$@"; do
    echo "== $bin"
    log=$(mktemp)
    "$bin" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    all=$(sed -n 's/^All tests passed (.* in \([0-9]*\) test cases\{0,1\})$/\1/p' "$log")
    row=$(grep '^test cases:' "$log")
    if [ -n "$all" ]; then
        passed=$((passed + all))
    elif [ -n "$row" ]; then
        p=$(echo "$row" | sed -n 's/.*| *\([0-9]*\) passed.*/\1/p')
        f=$(echo "$row" | sed -n 's/.*| *\([0-9]*\) failed.*/\1/p')
        passed=$((passed + ${p:-0}))
        failed=$((failed + ${f:-0}))
    fi
    if [ "$rc" -ne 0 ] && [ -z "$row" ]; then
        echo "$bin exited with status $rc before reporting its results"
        failed=$((failed + 1))
    fi
    if [ -z "$all" ] && [ -z "$row" ] && [ "$rc" -eq 0 ]; then
        echo "$bin ran no tests"
        failed=$((failed + 1))
    fi
    rm -f "$log"
done
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
