#!/usr/bin/env bash
# Packages every crate as `cargo publish` would (building each from its .crate), then builds the
# packaged stagelock-guest alone, outside this workspace, for wasm32-wasip2, as a user who
# `cargo add`s it would.
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
# cargo verifies each crate against the others through a temporary local registry, and takes
# registry crates for immutable: on a second run it reuses what it extracted and built from
# the last .crate of the same version. Drop those (our crates rebuild in a minute or two).
rm -rf target/package "${CARGO_HOME:-$HOME/.cargo}"/registry/src/-*/stagelock-* \
    target/debug/.fingerprint/stagelock-*
# The tests and their guests are not packages anyone gets (publish = false): the guests read the
# frozen WIT versions from the host crate, outside their own directory, and the tests' support
# library names the guests tests/build.rs finds beside it.
cargo package --workspace --exclude stagelock-test-guests --exclude stagelock-tests --locked \
    --allow-dirty
# The guest crate has a version of its own (the WIT 1.x it speaks).
version=$(sed -n 's/^version = "\(.*\)"/\1/p' guest/Cargo.toml | head -n 1)
alone=$(mktemp -d)
trap 'rm -rf "$alone"' EXIT
tar -xzf "target/package/stagelock-guest-$version.crate" -C "$alone"
cp rust-toolchain.toml "$alone/stagelock-guest-$version/"
target_dir="$PWD/target/guest-alone"
(cd "$alone/stagelock-guest-$version" &&
    cargo build --locked --target wasm32-wasip2 --target-dir "$target_dir" 2>&1 | tail -n 1)
echo "the packaged stagelock-guest builds alone for wasm32-wasip2"
