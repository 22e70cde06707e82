#!/usr/bin/env bash
# A staging step as shell users write it, guarded by stagelock. Needs `stagelock` on PATH.
set -uo pipefail
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/staging/1"
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

say "stagelock lock staging/1/staging.lock -- <fill the staging dir>"
stagelock lock "$root/staging/1/staging.lock" -- sh -c '
    echo "  holding the lock; filling staging/1/dir"
    mkdir "$0/staging/1/dir" && echo layer > "$0/staging/1/dir/data"
    echo "  meanwhile, a second writer tries the same lock:"
    stagelock try "$0/staging/1/staging.lock"
    echo "  -> exit $? (75 = held by someone else)"' "$root"
echo "exit $?; lock file afterwards: $(ls "$root/staging/1" | tr '\n' ' ')(staging.lock deleted)"

say "stagelock create . lock- -- <use temp-dir-\$ID>"
(cd "$root" && stagelock create . lock- -- sh -c '
    id=${STAGELOCK_NAME#lock-}
    mkdir "temp-dir-$id"
    echo "  holding $STAGELOCK_NAME, which guards temp-dir-$id"
    rm -r "temp-dir-$id"')
echo "exit $?; left in the root: $(cd "$root" && ls | tr '\n' ' ')"

say "a holder that dies leaves its lock file unlocked (the stale signal)"
sh -c 'stagelock lock --no-inherit "$1" -- sh -c "kill -KILL \$PPID; sleep 0.1" 2>/dev/null; true' _ "$root/stale.lock" 2>/dev/null
sleep 0.3
echo "stagelock was killed while holding; stale.lock still there: $(ls "$root" | grep -c stale.lock)"
stagelock try "$root/stale.lock" && echo "stagelock try: free (exit 0), and cleaned up: $(ls "$root" | grep -c stale.lock) left"

say "stagelock stage staging --into layers/abc -- <build>   (commit on success)"
mkdir -p "$root/area" "$root/layers"
stagelock stage "$root/area" --into "$root/layers/abc" -- sh -c 'echo "  building in $STAGELOCK_STAGE_DIR"; echo data > "$STAGELOCK_STAGE_DIR/file"'
echo "exit $?; layers/abc holds: $(ls "$root/layers/abc")"
sh -c 'stagelock stage "$1/area" --into "$1/layers/dead" -- sh -c "kill -KILL \$PPID; echo half > \"\$STAGELOCK_STAGE_DIR/file\"" 2>/dev/null; true' _ "$root" 2>/dev/null
sleep 0.3
echo "a builder was killed mid-stage; area holds: $(ls "$root/area" | tr '\n' ' ')"
say "stagelock recover staging"
stagelock recover "$root/area"

say "errors name the operation and the path"
stagelock try "$root/no/such/dir/x.lock"; echo "exit $?"
stagelock create "$root" 'a/b*' -- true; echo "exit $?"
