#!/usr/bin/env bash
# Runs every test of the workspace (unit, integration, cross-process, CLI, doc tests).
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cargo test --workspace --locked "$@"
