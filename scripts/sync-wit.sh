#!/usr/bin/env bash
# Copies wit/, the one source of the WIT package, into the crates that generate bindings from it
# and must carry it in their published .crate (tests/native/wit.rs fails when a copy differs).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
for copy in host/stagelock-wasmtime/wit guest/wit; do
    rm -rf "$copy"
    cp -r wit "$copy"
done
echo "synced wit/ into host/stagelock-wasmtime/wit and guest/wit"
