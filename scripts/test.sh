#!/usr/bin/env bash
# Runs every check and test of the workspace, as CI does (.ci/run runs this):
#   format, the dependency check (scripts/deps.sh check), clippy (warnings are errors; it
#   checks that the benchmarks compile, which scripts/bench.sh runs), every test (unit,
#   integration, cross-process, CLI, component, doc tests), the escape suites again with paths
#   resolved by hand, the classic-fcntl fallback's tests, a check of the core for macOS, Windows
#   under wine (scripts/windows.sh), the docs (warnings are errors), packaging of every crate, a
#   build of the packaged guest crate on its own, guests in Python (scripts/python-guest.sh),
#   JavaScript (scripts/js-guest.sh) and C (scripts/c-guest.sh), the filesystem matrix
#   (scripts/filesystems.sh), and the suite across two mounts of JuiceFS (scripts/multihost.sh)
#   and of GlusterFS (scripts/glusterfs.sh).
# Ends with one line adding up every test binary's results. Extra arguments go to `cargo test`.
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
started=$SECONDS
step() { printf '\n== %s (at %ss) ==\n' "$1" "$((SECONDS - started))"; }

echo "test: $(df -h --output=avail . | tail -n 1 | tr -d ' ') free on the disk of target/ (a cold run writes about 11 GB to target/)"
step "format"
cargo fmt --all --check
step "dependencies (scripts/deps.sh check: licenses, sources, one version of the sandbox's crates)"
bash scripts/deps.sh check
step "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "tests"
# The guest crates are components: their bins are built for wasm32-wasip2 by tests/build.rs.
cargo test "${suite[@]}" --locked "$@" 2>&1 |
    tee "$log"
step "paths resolved by hand (STAGELOCK_FAULTS_BY_HAND=1: the escape fallback forced on)"
# What Linux reports as an escape for a path of plain names is resolved again by hand
# (host/stagelock/src/sys/unix/beneath.rs). Forced on for every such path, the hostile suite,
# the native escape tests and the model test show that the by-hand walk refuses every real
# escape (`..`, absolute paths, symbolic links out) as the kernel's does.
STAGELOCK_FAULTS_BY_HAND=1 cargo test --locked "${suite[@]}" --test components \
    -- hostile:: 2>&1 | tee -a "$log"
STAGELOCK_FAULTS_BY_HAND=1 cargo test --locked "${suite[@]}" --test native \
    -- native:: staging:: 2>&1 | tee -a "$log"
STAGELOCK_FAULTS_BY_HAND=1 cargo test --locked "${suite[@]}" --test model \
    -- sequences_keep_every_promise --exact 2>&1 | tee -a "$log"
step "tests of the classic fcntl fallback (everything built with --cfg stagelock_posix_fallback)"
# The core's own tests, then the native, staging and cross-process suites, which need no
# wasmtime (the tests crate without its `components` feature): of its `native` binary only
# those three suites, by their test-name filters. `fallback` puts its flags right after
# `cargo test`, before any `-- FILTER...`.
fallback() {
    local cargo=$1 command=$2
    shift 2
    RUSTFLAGS="--cfg stagelock_posix_fallback" \
        "$cargo" "$command" --locked --target-dir target/posix-fallback "$@"
}
fallback cargo test -p stagelock 2>&1 | tee -a "$log"
fallback cargo test -p stagelock-tests --no-default-features \
    --test native -- native:: staging:: cross_process:: 2>&1 | tee -a "$log"
step "the core on macOS (cargo check --target aarch64-apple-darwin)"
rustup target add aarch64-apple-darwin >/dev/null 2>&1 || rustup target add aarch64-apple-darwin
cargo check -p stagelock --target aarch64-apple-darwin --locked
step "Windows, under wine (scripts/windows.sh installs mingw-w64 and wine)"
bash scripts/windows.sh 2>&1 | tee -a "$log"
step "docs"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked \
    --exclude stagelock-tests --exclude stagelock-test-guests --exclude stagelock-demo
step "packaging"
bash scripts/package-check.sh
step "a guest in Python (scripts/python-guest.sh installs componentize-py)"
bash scripts/python-guest.sh 2>&1 | tee -a "$log"
step "a guest in JavaScript (scripts/js-guest.sh installs componentize-js with npm)"
bash scripts/js-guest.sh 2>&1 | tee -a "$log"
step "a guest in C (scripts/c-guest.sh installs clang, wasi-libc, wit-bindgen-cli)"
bash scripts/c-guest.sh 2>&1 | tee -a "$log"
step "filesystems: ext4, XFS, Btrfs, tmpfs, overlayfs (scripts/filesystems.sh makes and removes the mounts)"
bash scripts/filesystems.sh 2>&1 | tee -a "$log"
step "across hosts: two JuiceFS mounts (scripts/multihost.sh installs, mounts, tears down)"
# Its benchmark is for scripts/multihost.sh by hand (and scripts/bench.sh), not for CI.
MULTIHOST_BENCH=0 bash scripts/multihost.sh 2>&1 | tee -a "$log"
step "across hosts: two GlusterFS mounts (scripts/glusterfs.sh installs, mounts, tears down)"
# Without the recovery race: GlusterFS 10.3's brick fails a stager's mkdir with EEXIST in about
# 1 run of 8 under it (docs/filesystems.md, "Across hosts"); `scripts/glusterfs.sh recovery_racing` runs it.
bash scripts/glusterfs.sh --skip recovery_racing 2>&1 | tee -a "$log"
step "done"
echo "target/ holds $(du -sh target | cut -f1); $(df -h --output=avail . | tail -n 1 | tr -d ' ') free on its disk"
sum_results "all tests" "$log"
