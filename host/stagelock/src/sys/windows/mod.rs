//! The Windows family: `LockFileEx` locks, handle-relative opens through cap-std, deletes and
//! renames by handle; the table in the parent module lists the files.
//!
//! What differs from Unix, and why it is safe:
//! - Lock files are opened sharing read, write *and delete*, so a holder can delete its file
//!   while it holds the lock, as on Unix (but not with the right to delete: see
//!   `fs::open_beneath`, for containers/storage's sake). Unlock-and-delete deletes the file only
//!   if the path still names the file locked (never someone else's), with POSIX semantics
//!   where Windows has them (the name goes at once; asked with the read-only attribute
//!   ignored, as `unlink` does, Windows 10 1809+), else the classic way
//!   (the name stays until the last handle closes, and opening it meanwhile is refused as
//!   access denied, which a taker treats like a file deleted under its open and tries again).
//! - A file's identity is its volume serial number and 128-bit file ID (`FILE_ID_INFO`; the
//!   64-bit file index where a filesystem does not give one), and a file whose delete is
//!   pending counts as having no name: the "path still names the locked file" check works as
//!   with inodes.
//! - Paths are checked for what Windows makes of them (`names.rs`) before any is opened:
//!   drive, UNC, device and NT-namespace paths are escapes, streams, reserved device names and
//!   names ending in a dot or space are invalid.
//! - Who holds a lock cannot be asked: a look at a lock takes a shared lock for an instant
//!   (which a taker at that very instant sees as busy), and a lock is never reported as lost
//!   by another holder (only the path check can find a lost lock).

mod console;
mod errno;
mod fs;
mod lock;
mod mounts;
mod names;
mod rename;
mod sync;

pub use console::{InterruptsIgnored, ignore_interrupts};
pub(crate) use errno::{already_exists, denial, in_use, kind_of, not_a_file, raced_open};
/// For the test switch that turns the escape check off (`Protection::EscapeCheck`): Windows's
/// opens have no unchecked form here, so it is `open_beneath` itself.
#[cfg(any(test, feature = "faults"))]
pub(crate) use fs::open_beneath as open_following;
pub(crate) use fs::{
    again_if_escaped, delete_held, is_local_filesystem, on_local_filesystem, open_beneath,
    open_beneath_to_look, remove_all, remove_beneath, remove_dir_tree, remove_emptied_dir,
    remove_empty_dir, single_name, stat_at, stat_fd,
};
pub(crate) use lock::{
    LockedFile, cmdline, held_here, holders, lock_table_id, locked_by_other, probe,
    set_inheritable, try_lock,
};
pub(crate) use mounts::mount_of;
pub(crate) use names::{HAS_HOST_FORMS, SEPARATORS, host_form};
pub(crate) use rename::{
    kind_mismatch, link_exclusive, not_empty, rename, rename_flags_unsupported, rename_plain,
    reserve_dir,
};
pub(crate) use sync::{fsync_dir, sync_tree};

use std::io;

/// `Ok(())` if a Win32 call returned nonzero, else the thread's last error.
fn check(ok: windows_sys::core::BOOL) -> io::Result<()> {
    if ok != 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
