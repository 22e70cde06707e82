//! The platform layer: the only code with `unsafe` and OS-specific branches. One backend per OS
//! family, each a directory with one file per concern; the rest of the crate calls what is
//! re-exported here and never a system call itself.
//!
//! | file | what lives there |
//! |---|---|
//! | `types.rs` | what both families hand the crate: file identities and kinds, `Create`, `Probe`, `RenameMode` |
//! | `portable.rs` | what both families do alike, through cap-std's sandboxed resolution: whether a path names anything |
//! | `unix/ofd.rs` | the lock backend of Linux and Android: open-file-description locks |
//! | `unix/posix.rs` | the lock backend of other Unix systems: classic `fcntl` locks plus an in-process registry, as in the Go original |
//! | `unix/fcntl.rs` | the `fcntl(2)` calls both Unix backends make (set a lock, ask for a conflicting one, close-on-exec) |
//! | `unix/fs.rs` | files beneath a directory handle: open, stat (identity, kind, links, local or not), remove |
//! | `unix/mounts.rs` | which mount a file lives on, its type and options (`/proc/self/mountinfo`) |
//! | `unix/rename.rs` | renames for commits: `renameat2` flags, and the plain steps of the portable fallback |
//! | `unix/sync.rs` | durability: `fsync` of a tree and of directories |
//! | `unix/errno.rs` | what an `errno` means for the crate |
//! | `unix/proc.rs` | who holds a lock (`/proc/locks`, `/proc/PID/fdinfo`) and their command lines |
//! | `unix/events.rs` | what wakes a waiting lock on Linux: one inotify instance and its reading thread, watches through `/proc/self/fd/N` |
//! | `no_events.rs` | the same names where waits get no events (classic locks, other Unix, Windows): every call refuses |
//! | `unix/signals.rs` | ignoring `SIGINT`/`SIGQUIT` while a child runs |
//! | `windows/lock.rs` | the lock backend of Windows: `LockFileEx` on the whole file |
//! | `windows/mounts.rs` | which mount a file lives on: not known on Windows |
//! | `windows/fs.rs` | files beneath a directory handle: open (sharing delete), identity by 128-bit file ID, deletes and tree removals through handles |
//! | `windows/names.rs` | what Windows makes of a path before any handle is asked: drives, UNC and device paths, streams, reserved device names, trailing dots |
//! | `windows/rename.rs` | renames by handle (`NtSetInformationFile`, `FILE_RENAME_INFORMATION`), never replacing |
//! | `windows/sync.rs` | durability: `FlushFileBuffers` of a tree and of directories |
//! | `windows/errno.rs` | what a Windows error code means for the crate |
//! | `windows/console.rs` | ignoring Ctrl-C while a child runs |
//!
//! Each backend gives the crate one type, `LockedFile`: an open file that holds an exclusive,
//! non-blocking, whole-file lock for as long as it lives, and releases it when dropped.
//!
//! - Linux and Android (`unix/ofd.rs`): open-file-description locks (`F_OFD_SETLK`, `F_WRLCK`,
//!   whole file). They conflict with classic POSIX `fcntl` locks of other processes
//!   (containers/storage uses those), with OFD locks taken through any other open of the file
//!   (other threads, other guests), and are not dropped when the process closes some other
//!   descriptor of the same file.
//! - Other Unix (`unix/posix.rs`): classic `fcntl` (`F_SETLK`) locks plus an in-process
//!   registry, the design of the Go original (see that file for its limits).
//! - Windows (`windows/lock.rs`): `LockFileEx` with `LOCKFILE_EXCLUSIVE_LOCK |
//!   LOCKFILE_FAIL_IMMEDIATELY` over every byte, as containers/storage takes its lock files
//!   there. Windows locks belong to a handle, like OFD locks: they exclude other handles of
//!   this process (threads, guests) and of other processes.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix as os;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as os;

#[cfg(not(any(unix, windows)))]
compile_error!("stagelock supports Unix (Linux first) and Windows targets");

mod portable;
mod types;

/// Whether this build's waits get events: Linux and Android with OFD locks.
macro_rules! with_events {
    ($($item:item)*) => {$(
        #[cfg(all(
            any(target_os = "linux", target_os = "android"),
            not(stagelock_posix_fallback)
        ))]
        $item
    )*};
}
/// The opposite of `with_events!`.
macro_rules! without_events {
    ($($item:item)*) => {$(
        #[cfg(not(all(
            any(target_os = "linux", target_os = "android"),
            not(stagelock_posix_fallback)
        )))]
        $item
    )*};
}
with_events! {
    pub(crate) use os::events::{HAS_EVENTS, Watch, events_working, set_sweeping};
    pub(crate) use os::{kept_locked, try_lock_keeping, try_lock_or_keep};
}
without_events! {
    mod no_events;
    pub(crate) use no_events::{
        HAS_EVENTS, Watch, events_working, kept_locked, set_sweeping, try_lock_keeping,
        try_lock_or_keep,
    };
}

#[cfg(all(test, unix))]
pub(crate) use os::drop_lock_keeping_file;
#[cfg(any(test, feature = "faults"))]
pub(crate) use os::open_following;
pub(crate) use os::{
    HAS_HOST_FORMS, LockedFile, SEPARATORS, again_if_escaped, already_exists, cmdline, delete_held,
    denial, fsync_dir, held_here, holders, host_form, in_use, is_local_filesystem, kind_mismatch,
    kind_of, link_exclusive, lock_table_id, locked_by_other, mount_of, not_a_file, not_empty,
    on_local_filesystem, open_beneath, open_beneath_to_look, probe, raced_open, remove_all,
    remove_beneath, remove_dir_tree, remove_emptied_dir, remove_empty_dir, rename,
    rename_flags_unsupported, rename_plain, reserve_dir, set_inheritable, single_name, stat_at,
    stat_fd, sync_tree, try_lock,
};
pub use os::{InterruptsIgnored, ignore_interrupts};
pub(crate) use portable::exists;

/// Whether our own open handle of a directory keeps it from being renamed: on Windows, where
/// cap-std's handles do not share delete; on Unix an open directory is renamed like any other.
pub(crate) const RENAME_NEEDS_DIR_CLOSED: bool = cfg!(windows);
pub(crate) use types::{
    Create, FileKind, FileStat, HostForm, OsDenial, OsErrorKind, Probe, RenameMode,
};
