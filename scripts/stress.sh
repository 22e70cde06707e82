#!/usr/bin/env bash
# The contention stress at scale: `scripts/stress.sh [SCALE] [DIR]`. SCALE multiplies the CI
# run's per-worker counts (default 530: about a million acquisitions); DIR is where the locks
# live (default: the temp dir). Prints the number of acquisitions, the time, and "no overlap".
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
export STAGELOCK_STRESS_SCALE="${1:-530}"
if [ -n "${2:-}" ]; then export STAGELOCK_STRESS_DIR="$2"; fi
cargo test --release --locked -p stagelock-tests --test components -- --nocapture contention::
