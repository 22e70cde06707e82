#!/usr/bin/env bash
# Runs every test of the workspace (unit, integration, cross-process, CLI, component, doc tests),
# then checks that the benchmarks compile (scripts/bench.sh runs them).
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cargo test --workspace --locked "$@"
cargo bench --workspace --locked --no-run
