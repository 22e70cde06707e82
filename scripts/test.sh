#!/usr/bin/env bash
# Runs every test of the workspace (unit, integration, cross-process, CLI, component, doc tests),
# checks that the benchmarks compile (scripts/bench.sh runs them), and ends with one line that
# adds up every test binary's results.
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked "$@" 2>&1 | tee "$log"
cargo bench --workspace --locked --no-run
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) } }
     END { printf "all tests: %d passed, %d failed\n", p, f }' "$log"
