#!/usr/bin/env bash
# Staging locks across hosts on the second engine: one GlusterFS volume (a single brick in a
# local directory, glusterd and the brick on 127.0.0.1 only), mounted twice by two independent
# glusterfs clients, plays two hosts sharing a filesystem. Runs the core's race test and
# tests/multihost/main.rs across the two mounts (as scripts/multihost.sh does on JuiceFS), and
# tears everything down on exit, failure or Ctrl-C.
#
#   scripts/glusterfs.sh [TEST_FILTER...]    extra arguments go to tests/multihost/main.rs's binary
#   GLUSTERFS_BENCH=1 scripts/glusterfs.sh   also benchmarks GlusterFS against the local disk,
#                                            with its caches off and on (not in CI)
#
# Installs what it needs: glusterfs-server and glusterfs-client (apt, only when missing).
# glusterd keeps its state under target/glusterfs/run, not /var/lib/glusterd. Needs root.
#
# The mounts are made as docs/filesystems.md ("Across hosts") recommends for staging areas: the FUSE
# client's caches off (--attribute-timeout=0 --entry-timeout=0 --negative-timeout=0) and the
# volume's metadata cache off (performance.stat-prefetch off): with either left on, a commit
# that replaces DEST on one host reads back the old content on the other (the suite checks).
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
started=$SECONDS
work=$PWD/target/glusterfs
run=$work/run
suite_log=$work/suite.log
volume=stagelock
glusterd_pid=

say() { printf '== glusterfs: %s (at %ss)\n' "$*" "$((SECONDS - started))"; }

# --- what it needs ------------------------------------------------------------------------
missing=()
command -v glusterd >/dev/null || missing+=(glusterfs-server)
command -v glusterfs >/dev/null || missing+=(glusterfs-client)
command -v fusermount3 >/dev/null || missing+=(fuse3)
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
[ -e /dev/fuse ] || { echo "glusterfs: /dev/fuse is missing: FUSE is not available here" >&2; exit 1; }
host=$(hostname)
case "$(getent ahostsv4 "$host" | awk '{ print $1; exit }')" in
127.*) ;;
*) echo "glusterfs: $host must resolve to a loopback address (the brick's host)" >&2; exit 1 ;;
esac

# --- teardown -----------------------------------------------------------------------------
# Processes of this run (clients, brick, glusterd, and whatever the suite left on the mounts)
# carry $run in their command lines.
ours() { pgrep -f -- "$run" || true; }
mounted() { awk -v r="$run/" 'index($2, r) == 1 { print $2 }' /proc/mounts; }
gone() { # waits up to $1 tenths of a second until `$2` lists nothing
    for _ in $(seq "$1"); do [ -z "$($2)" ] && return 0; sleep 0.1; done
    [ -z "$($2)" ]
}
teardown() {
    local rc=$? pids m
    trap - EXIT INT TERM
    set +e
    pids=$(ours)
    [ -n "$pids" ] && kill -CONT $pids 2>/dev/null
    for m in $(mounted); do
        umount "$m" 2>/dev/null || umount -l "$m"
    done
    if [ -n "$glusterd_pid" ] && kill -0 "$glusterd_pid" 2>/dev/null; then
        gluster --mode=script volume stop "$volume" force >/dev/null 2>&1
        gluster --mode=script volume delete "$volume" >/dev/null 2>&1
    fi
    pids=$(ours)
    [ -n "$pids" ] && kill $pids 2>/dev/null
    if ! gone 50 ours; then
        pids=$(ours)
        [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
        gone 50 ours
    fi
    if [ -n "$(ours)" ] || [ -n "$(mounted)" ]; then
        echo "glusterfs: teardown left processes [$(ours | xargs)] or mounts [$(mounted | xargs)]" >&2
        rc=1
    else
        rm -rf "$run"
        say "torn down: no mount, client, brick or glusterd left"
    fi
    if grep -q '^test result:' "$suite_log" 2>/dev/null; then
        sum_results glusterfs "$suite_log"
    fi
    exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- glusterd, the volume, two mounts -----------------------------------------------------
for m in $(mounted); do umount -l "$m"; done
leftover=$(ours)
[ -n "$leftover" ] && kill -KILL $leftover
if pgrep -x glusterd >/dev/null; then
    echo "glusterfs: a glusterd not of this run is running (port 24007 is taken): stop it first" >&2
    exit 1
fi
rm -rf "$run" "$suite_log"
mkdir -p "$run/glusterd" "$run/brick" "$run/a" "$run/b"
# glusterd's own configuration: its state in $run, listening on loopback only (it passes the
# address on to the brick it starts).
cat >"$run/glusterd.vol" <<EOF
volume management
    type mgmt/glusterd
    option working-directory $run/glusterd
    option transport-type socket
    option transport.socket.bind-address 127.0.0.1
    option transport.socket.listen-port 24007
    option ping-timeout 0
    option event-threads 1
end-volume
EOF
glusterd --no-daemon -f "$run/glusterd.vol" -l "$run/glusterd.log" -p "$run/glusterd.pid" &
glusterd_pid=$!
for _ in $(seq 100); do
    gluster --mode=script volume list >/dev/null 2>&1 && break
    sleep 0.1
done
gluster --mode=script volume create "$volume" "$host:$run/brick" force >/dev/null
gluster --mode=script volume set "$volume" performance.stat-prefetch off >/dev/null
gluster --mode=script volume start "$volume" >/dev/null
say "glusterd and the brick of volume $volume on 127.0.0.1"

# The command that (re)mounts a mount point: the suite runs it again after killing client A.
# The log file names the client (the suite finds A's by it).
mount_cmd() {
    printf '%q ' umount -l "$run/$1"
    printf '2>/dev/null; '
    printf '%q ' glusterfs --volfile-server=127.0.0.1 --volfile-id="$volume" \
        --attribute-timeout=0 --entry-timeout=0 --negative-timeout=0 \
        --log-file="$run/client-$1.log" "$run/$1"
}
for name in a b; do
    bash -c "$(mount_cmd "$name")" || { cat "$run/client-$name.log" >&2; exit 1; }
done
for _ in $(seq 100); do
    mountpoint -q "$run/a" && mountpoint -q "$run/b" && ls "$run/a" "$run/b" >/dev/null 2>&1 && break
    sleep 0.1
done
say "GlusterFS mounted twice: $run/a and $run/b"
listening=$(ss -Hltnp | awk '/gluster/ && $4 !~ /^127\./ { print $4 }')
[ -z "$listening" ] || { echo "glusterfs: listening beyond loopback: $listening" >&2; exit 1; }

# --- the suite ----------------------------------------------------------------------------
export STAGELOCK_MULTIHOST_ENGINE=glusterfs
export STAGELOCK_MULTIHOST_A=$run/a STAGELOCK_MULTIHOST_B=$run/b
export STAGELOCK_MULTIHOST_REMOUNT_A="$(mount_cmd a)"
export STAGELOCK_MULTIHOST_CLIENT_A="--log-file=$run/client-a.log"
suite_started=$SECONDS
cargo test --locked "${suite[@]}" --lib multihost -- --nocapture 2>&1 | tee "$suite_log"
cargo test --locked "${suite[@]}" --test multihost -- --test-threads=1 --nocapture "$@" 2>&1 |
    tee -a "$suite_log"
say "suite took $((SECONDS - suite_started))s"

if [ "${GLUSTERFS_BENCH:-0}" != 0 ]; then
    # By hand (not in CI): a lock cycle and a stage-commit on mount A against the local disk,
    # with the caches off as recommended, then on a third mount with the FUSE client's and
    # the volume's metadata caches on (their defaults): what turning them off costs.
    bench() {
        STAGELOCK_BENCH_MULTIHOST_DIR=$1 STAGELOCK_BENCH_LOCAL_DIR=$work \
            STAGELOCK_BENCH_MULTIHOST_ENGINE="GlusterFS ($2)" \
            cargo bench --locked -p stagelock-tests --no-default-features --bench multihost
    }
    bench "$run/a" "caches off"
    mkdir -p "$run/c"
    glusterfs --volfile-server=127.0.0.1 --volfile-id="$volume" --log-file="$run/client-c.log" "$run/c"
    gluster --mode=script volume set "$volume" performance.stat-prefetch on >/dev/null
    bench "$run/c" "caches on"
    gluster --mode=script volume set "$volume" performance.stat-prefetch off >/dev/null
fi
say "done"
