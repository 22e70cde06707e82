//! The platform layer: the only code with `unsafe` and `cfg(target_os)` branches. One file per
//! concern; the rest of the crate calls what is re-exported here and never a syscall itself.
//!
//! | file | what lives there |
//! |---|---|
//! | `ofd.rs` | the lock backend of Linux and Android: open-file-description locks |
//! | `posix.rs` | the lock backend of other Unix systems: classic `fcntl` locks plus an in-process registry, as in the Go original |
//! | `fcntl.rs` | the `fcntl(2)` calls both backends make (set a lock, ask for a conflicting one, close-on-exec) |
//! | `fs.rs` | files beneath a directory handle: open, stat (identity, kind, links, local or not), remove |
//! | `rename.rs` | renames for commits: `renameat2` flags, and the plain steps of the portable fallback |
//! | `sync.rs` | durability: `fsync` of a tree and of directories |
//! | `proc.rs` | who holds a lock (`/proc/locks`, `/proc/PID/fdinfo`) and their command lines |
//! | `signals.rs` | ignoring `SIGINT`/`SIGQUIT` while a child runs |
//!
//! Each backend gives the crate one type, `LockedFile`: an open file that holds an exclusive,
//! non-blocking, whole-file advisory lock for as long as it lives, and releases it when dropped.
//!
//! - Linux and Android (`ofd.rs`): open-file-description locks (`F_OFD_SETLK`, `F_WRLCK`,
//!   whole file). They conflict with classic POSIX `fcntl` locks of other processes
//!   (containers/storage uses those), with OFD locks taken through any other open of the file
//!   (other threads, other guests), and are not dropped when the process closes some other
//!   descriptor of the same file.
//! - Other Unix (`posix.rs`): classic `fcntl` (`F_SETLK`) locks plus an in-process registry,
//!   the design of the Go original (see that file for its limits).

#[cfg(all(
    any(target_os = "linux", target_os = "android"),
    not(stagelock_posix_fallback)
))]
#[path = "ofd.rs"]
mod backend;

#[cfg(all(
    unix,
    any(
        not(any(target_os = "linux", target_os = "android")),
        stagelock_posix_fallback
    )
))]
#[path = "posix.rs"]
mod backend;

#[cfg(not(unix))]
compile_error!("stagelock supports Unix targets only (Linux with open-file-description locks)");

mod fcntl;
mod fs;
mod proc;
mod rename;
mod signals;
mod sync;

#[cfg(test)]
pub(crate) use backend::drop_lock_keeping_file;
pub(crate) use backend::{LockedFile, held_here, locked_by_other, probe, try_lock};
pub(crate) use fcntl::{Probe, set_inheritable};
pub(crate) use fs::{
    Create, FileKind, FileStat, exists, is_local_filesystem, on_local_filesystem, open_beneath,
    open_beneath_to_look, remove_all, remove_beneath, remove_dir_tree, remove_emptied_dir,
    remove_empty_dir, single_name, stat_at, stat_fd,
};
pub(crate) use proc::{cmdline, holders};
pub(crate) use rename::{
    RenameMode, kind_mismatch, link_exclusive, not_empty, rename, rename_flags_unsupported,
    rename_plain, reserve_dir,
};
pub use signals::{InterruptsIgnored, ignore_interrupts};
pub(crate) use sync::{fsync_dir, sync_tree};
