//! What an `errno` means for the crate: the [`OsErrorKind`] it is, and the few questions the
//! crate asks of an OS error (was the open racing a delete, why was access denied).

use std::io;

use crate::sys::types::{OsDenial, OsErrorKind};

/// The kind an OS error is, where its errno decides more than [`io::ErrorKind`] does.
pub(crate) fn kind_of(err: &io::Error) -> Option<OsErrorKind> {
    Some(match err.raw_os_error()? {
        libc::ELOOP | libc::EISDIR | libc::ENXIO | libc::ENODEV => OsErrorKind::NotAFile,
        libc::EMFILE | libc::ENFILE => OsErrorKind::LimitReached,
        libc::EROFS | libc::EPERM => OsErrorKind::PermissionDenied,
        libc::ENAMETOOLONG => OsErrorKind::InvalidInput,
        libc::EXDEV => OsErrorKind::CrossDevice,
        // Deleted through another client of a network filesystem (GlusterFS, NFS) while this
        // one still had it, or a directory on its path, looked up.
        libc::ESTALE => OsErrorKind::NotFound,
        _ => return None,
    })
}

/// What an error that is [`OsErrorKind::NotAFile`] says the path is, in our words, where the
/// OS's own (`Too many levels of symbolic links`) would mislead.
pub(crate) fn not_a_file(err: &io::Error) -> Option<&'static str> {
    match err.raw_os_error()? {
        libc::ELOOP => Some("is a symbolic link (not followed), or symbolic links loop"),
        libc::EISDIR => Some("is a directory, not a regular file"),
        _ => None,
    }
}

/// Why the OS denied access, for an error that is [`OsErrorKind::PermissionDenied`].
pub(crate) fn denial(err: &io::Error) -> Option<OsDenial> {
    match err.raw_os_error()? {
        libc::EACCES => Some(OsDenial::Access),
        libc::EROFS => Some(OsDenial::ReadOnly),
        libc::EPERM => Some(OsDenial::NotPermitted),
        _ => None,
    }
}

/// Whether an `open` of a lock path (creating it if `create`) may have failed only because the
/// file was deleted during the open (asked on filesystems that are not local): JuiceFS says
/// `EPERM` (the file is in its trash), or `ENOENT` without a trash, even to `O_CREAT`;
/// GlusterFS says `ESTALE` (the file it looked up is gone from the brick), and `EEXIST` to an
/// `O_CREAT` without `O_EXCL` when another client made the file between its lookup and its
/// create.
pub(crate) fn raced_open(err: &io::Error, create: bool) -> bool {
    match err.raw_os_error() {
        Some(libc::EPERM | libc::ESTALE) => true,
        Some(libc::ENOENT | libc::EEXIST) => create,
        _ => false,
    }
}

/// The error a rename that would overwrite its destination gives (`EEXIST`).
pub(crate) fn already_exists() -> io::Error {
    io::Error::from_raw_os_error(libc::EEXIST)
}

/// Whether someone has the file open in a way that excludes ours, for now: Windows' sharing
/// violations, which Unix does not have.
#[inline]
pub(crate) fn in_use(_err: &io::Error) -> bool {
    false
}
