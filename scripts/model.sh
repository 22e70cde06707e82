#!/usr/bin/env bash
# The model-checked test (tests/model) beyond its CI budget.
#   scripts/model.sh [--minutes N]   runs the local-disk sequences for about N minutes (default
#                                    5), in rounds of 500 with a fresh seed each, then once each
#                                    on bindfs and LazyFS; stops at the first failure, which
#                                    prints its shrunk sequence and the seed that replays it.
#   scripts/model.sh --protections   switches each protection of the core off in turn
#                                    (STAGELOCK_FAULTS_OFF) and shows that the test then fails,
#                                    printing each shrunk sequence; fails if one passes.
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
model() { cargo test -q --locked "${suite[@]}" --test model -- --nocapture "$@"; }
case "${1:-}" in
--protections)
    cargo test -q --locked "${suite[@]}" --no-run
    status=0
    for p in still-names verify-before-commit not-a-stage-check escape-check sync-tree wait-sweep; do
        echo "== with $p switched off"
        # Each within its CI budget; sync-tree only matters across a power cut: the LazyFS run.
        if [ "$p" = sync-tree ]; then filter=(sequences_survive_power_cuts --exact)
        else filter=(sequences_keep_every_promise --exact); fi
        out=$(mktemp)
        if STAGELOCK_FAULTS_OFF=$p model "${filter[@]}" >"$out" 2>&1; then
            echo "!! the model test passed with $p switched off"
            status=1
        fi
        grep -E '^(model|layout|   [ 0-9]|failed)' "$out" || true
        rm -f "$out"
    done
    exit "$status"
    ;;
--minutes | "")
    minutes=${2:-5}
    end=$((SECONDS + minutes * 60))
    while [ "$SECONDS" -lt "$end" ]; do
        STAGELOCK_MODEL_CASES=500 model sequences_keep_every_promise --exact
    done
    STAGELOCK_MODEL_CASES=200 model bindfs
    STAGELOCK_MODEL_CASES=200 model power_cuts
    ;;
*)
    echo "usage: scripts/model.sh [--minutes N | --protections]" >&2
    exit 2
    ;;
esac
