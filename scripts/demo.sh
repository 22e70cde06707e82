#!/usr/bin/env bash
# Builds stagelock and runs the bundled example: staging locks from the command line.
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cargo build --release --locked -p stagelock --bin stagelock
PATH="$PWD/target/release:$PATH" bash examples/cli-demo.sh
