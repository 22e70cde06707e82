#!/usr/bin/env bash
# Windows hosts, under wine: cross-builds for x86_64-pc-windows-gnu and runs there
#   - the core's own tests (its LockFileEx backend, renames and deletes by handle);
#   - the native suite (tests/native): the API, staging areas and recovery, exclusion across
#     real processes (release on kill, containers/storage's LockFileEx holder both ways), and
#     the `stagelock` command the Windows way (tests/native/windows.rs);
#   - guest components taking, refused and releasing locks, against each other, native and
#     containers/storage's holders, and escaping (tests/components/component.rs), and
#     `stagelock.exe run` (tests/components/run_cli.rs).
# Tests of what wine does not model are marked ignored with their reason (real Windows only).
# Installs what it needs when missing (as root, with apt): mingw-w64 and wine; the rustup
# target; builds the stand-in bcryptprimitives.dll wine 8.0 lacks (tests/windows/). Runs in
# its own WINEPREFIX under target/windows and stops its wineserver at the end. Extra arguments
# go to every `cargo test`.
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
target=x86_64-pc-windows-gnu
started=$SECONDS
say() { printf '== windows: %s (at %ss)\n' "$1" "$((SECONDS - started))"; }

rustup target add "$target" >/dev/null 2>&1 || rustup target add "$target"
missing=()
command -v x86_64-w64-mingw32-gcc >/dev/null || missing+=(gcc-mingw-w64-x86-64)
command -v wine >/dev/null || missing+=(wine)
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        echo "windows: needs ${missing[*]} (apt), and installs them only as root" >&2
        exit 1
    fi
    say "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# wine 8.0 has no ProcessPrng, which Rust's std imports from bcryptprimitives.dll.
dll=$PWD/target/windows/dll
mkdir -p "$dll"
x86_64-w64-mingw32-gcc -O2 -shared -o "$dll/bcryptprimitives.dll" \
    tests/windows/bcryptprimitives.c -ladvapi32

export WINEPREFIX=$PWD/target/windows/prefix WINEDEBUG=-all
export WINEDLLOVERRIDES="bcryptprimitives=n,b" WINEPATH="Z:${dll//\//\\}"
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine
trap 'wineserver -k 2>/dev/null || true' EXIT
if [ ! -f "$WINEPREFIX/system.reg" ]; then
    say "making the wine prefix"
    boot=$(mktemp)
    if ! wineboot -i >"$boot" 2>&1; then
        cat "$boot" >&2
        exit 1
    fi
    rm -f "$boot"
fi

say "clippy of the core for Windows, and building (warnings are errors for our crates)"
cargo clippy --locked --target "$target" -p stagelock --all-targets -- -D warnings
built=$(mktemp)
cargo build --locked --target "$target" -p stagelock-cli 2>&1 | tee "$built"
cargo test --locked --target "$target" --no-run -p stagelock -p stagelock-cli 2>&1 |
    tee -a "$built"
cargo test --locked --target "$target" --no-run -p stagelock-tests --no-default-features \
    --test native 2>&1 | tee -a "$built"
cargo test --locked --target "$target" --no-run -p stagelock-tests --test components 2>&1 |
    tee -a "$built"
if grep -q '^warning' "$built"; then
    echo "windows: the build warned (above)" >&2
    exit 1
fi
rm -f "$built"
# The tests' `stagelock` (tests/support.rs' stagelock_bin): this cargo cannot build for wine.
export STAGELOCK_BIN="Z:${PWD//\//\\}\\target\\$target\\debug\\stagelock.exe"

say "the core's and the command's own tests"
# Not the doc tests: examples, run on Linux; one deletes a lock file another handle holds,
# whose name wine keeps.
cargo test --locked --target "$target" -p stagelock -p stagelock-cli --lib --bins "$@"
say "the native suite"
cargo test --locked --target "$target" -p stagelock-tests --no-default-features --test native "$@"
say "guest components, in the wasmtime host and under stagelock.exe run"
cargo test --locked --target "$target" -p stagelock-tests --test components "$@" -- \
    component::component_two_stores_exclude component::component_native_exclusion \
    component::component_posix_holder component::component_escapes run_cli::
say "done"
