#!/usr/bin/env bash
# A guest in JavaScript: installs componentize-js with npm (pinned by tests/js/package-lock.json;
# npm's cache under target/js-guest, so a rerun downloads nothing), checks that the TypeScript
# declarations in tests/js/types are what jco generates from wit/ now, builds tests/js/app.js
# into a component (again only when it, the build script, the lock file or wit/ changed) and
# runs tests/components/js_guest.rs with it. Extra arguments go to `cargo test`.
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    # The supported machines have them; elsewhere, as root with apt, take Debian's.
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "js-guest: installing Node.js and npm" >&2
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
    else
        echo "js-guest: needs Node.js and npm (Debian: apt-get install nodejs npm)" >&2
        exit 1
    fi
fi
out=$PWD/target/js-guest
js=tests/js
export npm_config_cache=$out/npm-cache
mkdir -p "$out"
started=$SECONDS
if ! cmp -s "$js/package-lock.json" "$out/installed-lock.json" || [ ! -d "$js/node_modules" ]; then
    echo "js-guest: installing componentize-js (npm ci)"
    (cd "$js" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$js/package-lock.json" "$out/installed-lock.json"
fi
installed=$SECONDS
rm -rf "$out/types"
node "$js/build.mjs" --types "$out/types"
if ! diff -r "$js/types" "$out/types" >/dev/null; then
    echo "js-guest: tests/js/types differs from what jco generates from wit/:" \
        "run node tests/js/build.mjs --types tests/js/types" >&2
    exit 1
fi
stamp=$(cat "$js/app.js" "$js/build.mjs" "$js/package-lock.json" wit/*.wit | sha256sum)
if [ ! -f "$out/app.wasm" ] || [ "$(cat "$out/app.stamp" 2>/dev/null)" != "$stamp" ]; then
    node "$js/build.mjs" "$out/app.wasm"
    echo "$stamp" >"$out/app.stamp"
fi
built=$SECONDS
echo "js-guest: install $((installed - started)) s, types and build $((built - installed)) s," \
    "component $(stat -c %s "$out/app.wasm") bytes"
STAGELOCK_JS_GUEST=$out/app.wasm \
    cargo test --locked "${suite[@]}" --test components "$@" -- --nocapture js_guest::
