# Sourced by the other scripts: installs what building stagelock needs on a fresh machine.
# The toolchain and the wasm32-wasip2 target come from rust-toolchain.toml; with
# RUSTUP_AUTO_INSTALL=0 rustup will not fetch them by itself, so ask it to.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rustup toolchain install >/dev/null 2>&1 || rustup toolchain install
# A test that fails with an error (anyhow) prints its message, not a backtrace that pushes the
# message out of the tail of a CI log; panics keep RUST_BACKTRACE's backtrace.
export RUST_LIB_BACKTRACE=${RUST_LIB_BACKTRACE:-0}
command -v python3 >/dev/null || {
    echo "setup: python3 is needed by the tests (it plays the POSIX fcntl lock holder)" >&2
    exit 1
}
# The FUSE tests (tests/native/bindfs.rs, tests/components/power_loss.rs) need bindfs and
# fusermount3. Installed only when missing and running as root (as CI does); elsewhere those
# tests say they skip.
missing=()
command -v bindfs >/dev/null || missing+=(bindfs)
command -v fusermount3 >/dev/null || missing+=(fuse3)
if [ "${#missing[@]}" -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing ${missing[*]} for the FUSE tests" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
unset missing

# The packages of the test command's main step (`cargo test "${suite[@]}"`). Every script that
# runs a test binary selects the same packages, so cargo unifies the same features and reuses
# that step's build: with `-p stagelock-tests` or `-p stagelock` instead, it built wasmtime and
# every test binary a second time (gigabytes of disk; a CI machine once ran out).
suite=(--workspace --exclude stagelock-test-guests --exclude stagelock-demo)

# Prints "$1: P passed, F failed", adding up every `test result:` line of the cargo test output
# in the file $2.
sum_results() {
    awk -v name="$1" '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) } }
        END { printf "%s: %d passed, %d failed\n", name, p, f }' "$2"
}
