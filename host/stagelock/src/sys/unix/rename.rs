//! Renames for commits: `renameat2` with its flags where the system has it, and the plain
//! renames, exclusive reservations and hard links that the portable fallback is made of.
//!
//! Every name here is a single component looked up in a directory handle (`*at` calls), and
//! nothing follows a final symbolic link.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::Path;

use rustix::fs::{AtFlags, Mode};

use crate::sys::types::RenameMode;

/// `renameat2(old_dir, old, new_dir, new, mode)`.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn rename(
    old_dir: &File,
    old: &Path,
    new_dir: &File,
    new: &Path,
    mode: RenameMode,
) -> io::Result<()> {
    use rustix::fs::RenameFlags;
    let flags = match mode {
        RenameMode::NoReplace => RenameFlags::NOREPLACE,
        RenameMode::Exchange => RenameFlags::EXCHANGE,
    };
    Ok(rustix::fs::renameat_with(
        old_dir, old, new_dir, new, flags,
    )?)
}

/// Without `renameat2`: always `ENOSYS`, so the caller takes its portable fallback (an exclusive
/// `mkdir` reservation, then a plain `rename`; see the crate's `commit` module).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn rename(
    _old_dir: &File,
    _old: &Path,
    _new_dir: &File,
    _new: &Path,
    _mode: RenameMode,
) -> io::Result<()> {
    Err(io::Error::from_raw_os_error(libc::ENOSYS))
}

/// Whether a failed `renameat2` with flags means "this filesystem does not do these flags" (not
/// "the rename itself is wrong"): `EINVAL` from FUSE (bindfs, LazyFS) and filesystems that
/// implement no flags, `ENOSYS` from kernels without the call (and our non-Linux `rename`),
/// `EOPNOTSUPP` from some network filesystems.
pub(crate) fn rename_flags_unsupported(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP)
    )
}

/// Whether `err` says a directory was not empty (`ENOTEMPTY`, or `EEXIST`, which POSIX allows
/// for the same case).
pub(crate) fn not_empty(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::ENOTEMPTY | libc::EEXIST))
}

/// Whether `err` says a directory and a non-directory were mixed up in a rename (`ENOTDIR`,
/// `EISDIR`).
pub(crate) fn kind_mismatch(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::ENOTDIR | libc::EISDIR))
}

/// `renameat(old_dir, old, new_dir, new)` without flags: replaces `new` if it is an empty
/// directory (and `old` a directory) or a non-directory (and `old` one too), atomically.
pub(crate) fn rename_plain(
    old_dir: impl AsFd,
    old: &Path,
    new_dir: impl AsFd,
    new: &Path,
) -> io::Result<()> {
    Ok(rustix::fs::renameat(old_dir, old, new_dir, new)?)
}

/// `mkdirat(dir, name, 0700)`: reserves `name` exclusively (`EEXIST` if anything has it).
pub(crate) fn reserve_dir(dir: impl AsFd, name: &Path) -> io::Result<()> {
    Ok(rustix::fs::mkdirat(dir, name, Mode::RWXU)?)
}

/// `linkat(dir, old, dir, new, 0)`: a second name for a non-directory (a symbolic link itself,
/// not its target), exclusively (`EEXIST` if `new` exists).
pub(crate) fn link_exclusive(dir: impl AsFd, old: &Path, new: &Path) -> io::Result<()> {
    let dir = dir.as_fd();
    Ok(rustix::fs::linkat(dir, old, dir, new, AtFlags::empty())?)
}
