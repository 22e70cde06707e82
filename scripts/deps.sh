#!/usr/bin/env bash
# The dependencies, kept:
#   bash scripts/deps.sh check      what the test command runs (offline, a second or two):
#                                   every crate's license is in the allow-list below, every
#                                   crate comes from crates.io (or is one of ours, by path),
#                                   and the crates the sandbox rests on are there in one
#                                   version only.
#   bash scripts/deps.sh            (or `outdated`) for a maintainer: the same check, then
#                                   every dependency with a newer semver-compatible release
#                                   (from the registry), then the advisories where
#                                   `cargo audit` and its database are at hand.
# How to keep up (docs/maintaining.md): follow wasmtime 48's LTS patch
# releases, run this, `cargo update`, raise the minimums in Cargo.toml, run the test command.
#
# Why not cargo-deny: it does all of the check, but builds for about 10 minutes on 2 cores
# and needs its advisory database from the network, which CI here cannot fetch; the
# check below reads `cargo metadata` only, so it costs nothing cold.
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
mode=${1:-outdated}
case $mode in check | outdated) ;; *)
    echo "deps.sh: unknown mode \"$mode\" (check or outdated)" >&2
    exit 2
    ;;
esac

mkdir -p target
cargo metadata --format-version 1 --locked --all-features >target/deps-metadata.json
python3 - target/deps-metadata.json <<'EOF'
import json, re, sys
from collections import defaultdict

# Licenses that may be linked into a crate distributed as `Apache-2.0 OR MIT`: permissive
# ones only (no copyleft). Apache-2.0 WITH LLVM-exception is wasmtime's and cranelift's.
ALLOWED = {
    "MIT", "Apache-2.0", "Apache-2.0 WITH LLVM-exception", "BSD-2-Clause", "BSD-3-Clause",
    "ISC", "Zlib", "Unicode-3.0", "Unlicense", "CC0-1.0",
}
# The crates the sandbox and the locks rest on: two versions of one of them would mean one
# of the two missed its security fixes (or two lock registries in one process).
SINGLE = {
    "wasmtime", "wasmtime-wasi", "wasmtime-wasi-io", "cranelift-codegen", "cap-std",
    "cap-primitives", "cap-fs-ext", "rustix", "tokio", "libc",
}

def satisfiable(expr):
    """Whether an SPDX expression can be taken under allowed licenses only."""
    tokens = re.findall(r"\(|\)|[^\s()]+", expr.replace("/", " OR "))
    pos = 0

    def atom():
        nonlocal pos
        if tokens[pos] == "(":
            pos += 1
            ok = disjunction()
            pos += 1  # ")"
            return ok
        name = tokens[pos]
        pos += 1
        if pos < len(tokens) and tokens[pos] == "WITH":
            name += " WITH " + tokens[pos + 1]
            pos += 2
        return name in ALLOWED

    def conjunction():
        nonlocal pos
        ok = atom()
        while pos < len(tokens) and tokens[pos] == "AND":
            pos += 1
            ok = atom() and ok
        return ok

    def disjunction():
        nonlocal pos
        ok = conjunction()
        while pos < len(tokens) and tokens[pos] == "OR":
            pos += 1
            ok = conjunction() or ok
        return ok

    return disjunction() and pos == len(tokens)

meta = json.load(open(sys.argv[1]))
problems, versions = [], defaultdict(set)
for p in meta["packages"]:
    who = f'{p["name"]} {p["version"]}'
    versions[p["name"]].add(p["version"])
    source = p.get("source")
    if source is not None and source != "registry+https://github.com/rust-lang/crates.io-index":
        problems.append(f"{who}: comes from {source}, not crates.io")
    lic = p.get("license")
    if not lic:
        problems.append(f"{who}: no SPDX license expression")
    elif not satisfiable(lic):
        problems.append(f'{who}: license "{lic}" is not in the allow-list (scripts/deps.sh)')
for name in sorted(SINGLE):
    if len(versions.get(name, ())) > 1:
        problems.append(f"{name}: {len(versions[name])} versions ({', '.join(sorted(versions[name]))}); the sandbox's crates must resolve to one")
for problem in problems:
    print(f"deps: {problem}", file=sys.stderr)
print(f"deps: {len(meta['packages'])} crates: licenses allowed, sources crates.io, "
      f"{len(SINGLE)} sandbox crates in one version each" if not problems
      else f"deps: {len(problems)} problem(s)")
sys.exit(1 if problems else 0)
EOF
[ "$mode" = check ] && exit 0

echo
echo "== dependencies with newer semver-compatible releases (cargo update --dry-run) =="
# "Updating a vX -> vY" lines are what `cargo update` would take; "(available: vZ)" is a newer
# release the resolver could not take (another crate pins it, or it needs a newer rustc).
cargo update --dry-run --verbose 2>&1 | grep -E 'Updating|Adding|available' || echo "(none)"
echo
echo "== advisories =="
if cargo audit --version >/dev/null 2>&1; then
    cargo audit || true
else
    echo "cargo audit is not installed (cargo install cargo-audit --locked), or its advisory"
    echo "database cannot be fetched here: read the release notes of wasmtime 48's patch"
    echo "releases (https://github.com/bytecodealliance/wasmtime/releases) and the"
    echo "RustSec database (https://rustsec.org/advisories/) instead."
fi
