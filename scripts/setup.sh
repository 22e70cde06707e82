# Sourced by the other scripts: installs what building stagelock needs on a fresh machine.
# The toolchain and the wasm32-wasip2 target come from rust-toolchain.toml; with
# RUSTUP_AUTO_INSTALL=0 rustup will not fetch them by itself, so ask it to.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rustup toolchain install >/dev/null 2>&1 || rustup toolchain install
command -v python3 >/dev/null || {
    echo "setup: python3 is needed by the tests (it plays the POSIX fcntl lock holder)" >&2
    exit 1
}
