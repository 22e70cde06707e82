#!/usr/bin/env bash
# The main job: builds stagelock and the demo component, then runs two sandboxed instances of a
# build step over a copy of examples/workspace. The first stages its output under a staging
# lock; the second, started alongside, is refused that lock. Then the command-line demo.
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cargo build --release --locked -p stagelock-cli --bin stagelock
CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=true \
    cargo build --release --locked -p stagelock-demo --target wasm32-wasip2
stagelock=target/release/stagelock
demo=target/wasm32-wasip2/release/stagelock-demo.wasm

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r examples/workspace/. "$work"

echo
echo "== Two sandboxed instances of a build step, each granted only $work as /work =="
echo "\$ stagelock run --dir $work::/work $demo build   (and, alongside, ... $demo second)"
"$stagelock" run --dir "$work::/work" "$demo" build &
builder=$!
second=0
"$stagelock" run --dir "$work::/work" "$demo" second || second=$?
built=0
wait "$builder" || built=$?
echo "build exited $built, second exited $second; out/ now holds:"
for f in "$work"/out/*; do printf '  out/%s: %s\n' "$(basename "$f")" "$(cat "$f")"; done
echo "staging/ holds: $(ls -A "$work/staging" | wc -l) entries (lock and temp dir are gone)"

echo
echo "== The same locks from the shell (examples/cli-demo.sh) =="
PATH="$PWD/target/release:$PATH" bash examples/cli-demo.sh
exit $(( built || second ))
