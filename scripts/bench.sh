#!/usr/bin/env bash
# Runs the benchmarks and prints their Markdown tables (see BENCHMARKS.md): once with locks on
# the system temp dir's filesystem, once on tmpfs (/dev/shm), where syscalls are cheapest and
# stagelock's own overhead shows most. Takes a few minutes (plus a release build).
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
echo "## Locks in ${TMPDIR:-/tmp} ($(df -T "${TMPDIR:-/tmp}" | awk 'NR==2 {print $2}'))"
cargo bench --locked -p stagelock-tests --bench stagelock
if [ -d /dev/shm ]; then
    echo
    echo "## Locks in /dev/shm (tmpfs): lock operations only"
    STAGELOCK_BENCH_DIR=/dev/shm STAGELOCK_BENCH_ONLY=native,threads,guest \
        cargo bench --locked -p stagelock-tests --bench stagelock
fi
