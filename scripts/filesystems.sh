#!/usr/bin/env bash
# The filesystem matrix: the core's suites that matter per filesystem, run with their scratch
# directories (TMPDIR) on each of ext4, XFS and Btrfs (loop images made and removed here),
# tmpfs and overlayfs (upper layer on tmpfs, with lock files that already exist in the lower
# layer), plus `stagelock doctor` on each. The FUSE filesystems (bindfs, LazyFS) and JuiceFS
# have suites of their own (tests/native/bindfs.rs, the power-loss and model tests,
# scripts/multihost.sh).
#   bash scripts/filesystems.sh [FS...]     FS: ext4 xfs btrfs tmpfs overlay rclone (default: all)
# rclone (a FUSE mount of a local directory, a network filesystem by type) is where locks stay on
# this host: detection (`doctor` exit 4), the commands' warning and refusal
# (STAGELOCK_LOCAL_ONLY), and the wasmtime host's refusal are checked there.
# Needs root (mount, loop devices); installs xfsprogs and btrfs-progs when missing. A
# filesystem that cannot be set up is reported as SKIPPED with its reason, never passed.
# Ends with one line per filesystem and suite: passed, failed or skipped.
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
all=(ext4 xfs btrfs tmpfs overlay)
only=("$@")
if [ "$#" -gt 0 ]; then
    all=()
    for fs in "$@"; do [ "$fs" = rclone ] || all+=("$fs"); done
fi
# The suites, by the native binary's test-name filters: the API and escapes, staging (commit,
# replace, durable commit, recovery), exclusion across processes both ways with a
# containers/storage-style holder, and the command line (status, stage, recover, waits).
filters=(native:: staging:: cross_process:: cli::)

work=$(mktemp -d /tmp/stagelock-fs.XXXXXX)
mounts=()
cleanup() {
    for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
        umount "${mounts[i]}" 2>/dev/null || umount -l "${mounts[i]}" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
results=()
fail=0
skip() { results+=("$1: SKIPPED ($2)"); echo "filesystems: $1: SKIPPED: $2" >&2; }

if [ "$(id -u)" != 0 ]; then
    for fs in "${all[@]}"; do skip "$fs" "needs root to mount"; done
    printf '%s\n' "${results[@]}"
    exit 0
fi
missing=()
command -v mkfs.xfs >/dev/null || missing+=(xfsprogs)
command -v mkfs.btrfs >/dev/null || missing+=(btrfs-progs)
if [ "${#missing[@]}" -gt 0 ] && command -v apt-get >/dev/null; then
    echo "filesystems: installing ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null || true
fi

# The binaries, built once: the native test binary (as the test command's main step builds it)
# and the CLI it runs (as the tests' own `stagelock_bin` builds it).
cargo build -p stagelock-cli --locked
native=$(cargo test "${suite[@]}" --test native --no-run --locked --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "native":
        print(m["executable"])')
[ -x "$native" ] || { echo "filesystems: the native test binary was not built" >&2; exit 1; }
stagelock=$PWD/target/debug/stagelock

# mount_fs FS DIR: mounts a fresh FS at DIR, or says why not (and returns 1).
mount_fs() {
    local fs=$1 dir=$2 img
    mkdir -p "$dir"
    case $fs in
    ext4 | xfs | btrfs)
        img=$work/$fs.img
        # XFS refuses images under 300 MB; Btrfs under 114 MB.
        truncate -s 320M "$img" || return 1
        case $fs in
        ext4) mkfs.ext4 -q -F "$img" ;;
        xfs) mkfs.xfs -q -f "$img" ;;
        btrfs) mkfs.btrfs -q -f "$img" ;;
        esac >"$work/mkfs.log" 2>&1 || { why="mkfs.$fs failed: $(tail -1 "$work/mkfs.log")"; return 1; }
        mount -o loop "$img" "$dir" 2>"$work/mount.log" || { why="mount -o loop failed: $(tail -1 "$work/mount.log")"; return 1; }
        ;;
    tmpfs)
        mount -t tmpfs -o size=300m tmpfs "$dir" 2>"$work/mount.log" || { why="mount -t tmpfs failed: $(tail -1 "$work/mount.log")"; return 1; }
        ;;
    overlay)
        local base=$work/overlay-base
        mkdir -p "$base"
        mount -t tmpfs -o size=300m tmpfs "$base" || { why="mount -t tmpfs failed"; return 1; }
        mounts+=("$base")
        mkdir -p "$base/lower/existing" "$base/upper" "$base/work"
        # Lock files that already exist in the lower layer (checked below).
        : >"$base/lower/existing/lower.lock"
        mount -t overlay overlay -o "lowerdir=$base/lower,upperdir=$base/upper,workdir=$base/work" "$dir" \
            2>"$work/mount.log" || { why="mount -t overlay failed: $(tail -1 "$work/mount.log")"; return 1; }
        ;;
    *) why="unknown filesystem $fs"; return 1 ;;
    esac
    mounts+=("$dir")
}

# A lock file from the lower layer: a holder (a containers/storage-style POSIX lock, which
# copies the file up) and `stagelock status` / `try` before and after the copy-up agree.
overlay_lower_layer_check() {
    local f=$1/existing/lower.lock
    "$stagelock" status "$f" >/dev/null || { echo "status of an untouched lower-layer lock file: not free"; return 1; }
    python3 -c 'import fcntl, sys, time
f = open(sys.argv[1], "r+"); fcntl.lockf(f, fcntl.LOCK_EX); print("held", flush=True); time.sleep(30)' "$f" >"$work/holder.out" &
    local holder=$!
    for _ in $(seq 100); do grep -q held "$work/holder.out" 2>/dev/null && break; sleep 0.1; done
    local st=0 tr=0
    "$stagelock" status "$f" >/dev/null || st=$?
    "$stagelock" try "$f" >/dev/null 2>&1 || tr=$?
    kill "$holder"; wait "$holder" 2>/dev/null || true
    [ "$st" = 75 ] || { echo "status of a lower-layer lock file held after its copy-up: exit $st, not 75 (held)"; return 1; }
    [ "$tr" = 75 ] || { echo "try of a lower-layer lock file held after its copy-up: exit $tr, not 75 (held)"; return 1; }
    "$stagelock" try "$f" >/dev/null || { echo "try after the holder exited: not free"; return 1; }
}

# A mount whose locks stay on this host while other hosts reach its storage: rclone over FUSE
# (a network filesystem by type; its daemon implements no locks, so the kernel takes them here
# only). `doctor` must say local-only (exit 4) from its probe lock; the commands warn, refuse
# with STAGELOCK_LOCAL_ONLY=refuse, and say nothing with =allow; the wasmtime host refuses it
# with `not-permitted` when told to. Any check that fails prints why.
local_only_checks() {
    local mnt=$1 out rc
    rc=0; out=$("$stagelock" doctor "$mnt" 2>&1) || rc=$?
    [ "$rc" = 4 ] && grep -q "local-only" <<<"$out" ||
        { echo "doctor: exit $rc, not 4 (local-only): $out"; return 1; }
    rc=0; out=$("$stagelock" try "$mnt/x.lock" 2>&1) || rc=$?
    [ "$rc" = 0 ] && grep -q "^stagelock: warning: try .*this host" <<<"$out" ||
        { echo "try: exit $rc, and no warning: $out"; return 1; }
    rc=0; out=$(STAGELOCK_LOCAL_ONLY=refuse "$stagelock" stage "$mnt" --into "$mnt/out" -- true 2>&1) || rc=$?
    [ "$rc" = 1 ] && grep -q "refused (STAGELOCK_LOCAL_ONLY=refuse)" <<<"$out" && [ ! -e "$mnt/out" ] ||
        { echo "stage with refuse: exit $rc: $out"; return 1; }
    rc=0; out=$(STAGELOCK_LOCAL_ONLY=allow "$stagelock" create "$mnt" lock- -- true 2>&1 >/dev/null) || rc=$?
    [ "$rc" = 0 ] && [ -z "$out" ] || { echo "create with allow: exit $rc: $out"; return 1; }
    rc=0; out=$(STAGELOCK_LOCAL_ONLY=sometimes "$stagelock" try "$mnt/x.lock" 2>&1) || rc=$?
    [ "$rc" = 1 ] && grep -q "STAGELOCK_LOCAL_ONLY=\"sometimes\": use warn" <<<"$out" ||
        { echo "try with a bad policy: exit $rc: $out"; return 1; }
    [ -z "$(ls -A "$mnt")" ] || { echo "left in the mount: $(ls -A "$mnt")"; return 1; }
    STAGELOCK_LOCAL_ONLY_DIR=$mnt cargo test -q --locked "${suite[@]}" --lib local_only \
        -- --nocapture >"$work/local-only-host.log" 2>&1 &&
        grep -q "test result: ok. 2 passed" "$work/local-only-host.log" &&
        ! grep -q "skipped" "$work/local-only-host.log" ||
        { echo "the wasmtime host: $(grep -E 'panicked|test result' "$work/local-only-host.log")"; return 1; }
}

started=$SECONDS
if [ "${#only[@]}" = 0 ] || [[ " ${only[*]} " == *" rclone "* ]]; then
    if ! command -v rclone >/dev/null && command -v apt-get >/dev/null; then
        echo "filesystems: installing rclone" >&2
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rclone >/dev/null || true
    fi
    mnt=$work/mnt-rclone
    mkdir -p "$work/rclone-src" "$mnt"
    if ! command -v rclone >/dev/null; then
        skip "rclone (local-only)" "rclone cannot be installed"
    elif ! rclone mount --vfs-cache-mode writes --cache-dir "$work/rclone-cache" \
        "$work/rclone-src" "$mnt" --daemon >"$work/rclone.log" 2>&1; then
        skip "rclone (local-only)" "rclone mount failed: $(tail -1 "$work/rclone.log")"
    else
        mounts+=("$mnt")
        echo "== rclone (fuse.rclone: locks stay on this host) =="
        "$stagelock" doctor "$mnt" || echo "(doctor exit status $?)"
        if out=$(local_only_checks "$mnt"); then
            results+=("rclone (local-only) detection, warning, refusal: passed")
        else
            results+=("rclone (local-only) detection, warning, refusal: FAILED ($out)")
            fail=1
        fi
    fi
fi
for fs in "${all[@]}"; do
    dir=$work/mnt-$fs
    why=
    if ! mount_fs "$fs" "$dir"; then
        skip "$fs" "${why:-cannot be set up}"
        continue
    fi
    echo "== $fs =="
    "$stagelock" doctor "$dir" || echo "(doctor exit status $?)"
    if [ "$fs" = overlay ]; then
        if out=$(overlay_lower_layer_check "$dir"); then
            results+=("$fs lower-layer lock files: passed")
        else
            results+=("$fs lower-layer lock files: FAILED ($out)")
            fail=1
        fi
    fi
    mkdir -p "$dir/tmp"
    for filter in "${filters[@]}"; do
        log=$work/$fs-${filter%::}.log
        if TMPDIR=$dir/tmp STAGELOCK_BIN=$stagelock "$native" "$filter" >"$log" 2>&1; then
            results+=("$fs ${filter%::}: $(grep '^test result:' "$log" | tail -1)")
        else
            results+=("$fs ${filter%::}: FAILED")
            fail=1
            grep -E '^(---- |thread .* panicked|test .* FAILED)' "$log" | head -20 >&2
        fi
    done
done
echo
echo "== the filesystem matrix ($((SECONDS - started)) s) =="
printf '%s\n' "${results[@]}"
exit "$fail"
