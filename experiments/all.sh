#!/usr/bin/env bash
# experiments/all.sh: every experiment, one after another, with the same environment (JOBS, THREADS,
# DATA, STEPS or SCALE, SEEDS, DRAW_ONLY: see experiments/README.md).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
for name in positions norm dropout tying decay bf16_decay clipping; do
    echo "== $name ($(date +%H:%M:%S))"
    "$here/$name.sh"
done
echo "== all done ($(date +%H:%M:%S))"
