//! What a Windows error code means for the crate: the [`OsErrorKind`] it is, and the few
//! questions the crate asks of an OS error.

use std::io;

use windows_sys::Win32::Foundation::{
    ERROR_ACCESS_DENIED, ERROR_ALREADY_EXISTS, ERROR_FILE_NOT_FOUND, ERROR_FILENAME_EXCED_RANGE,
    ERROR_INVALID_NAME, ERROR_LOCK_VIOLATION, ERROR_NOT_SAME_DEVICE, ERROR_PRIVILEGE_NOT_HELD,
    ERROR_SHARING_VIOLATION, ERROR_TOO_MANY_OPEN_FILES, ERROR_WRITE_PROTECT,
};

use crate::sys::types::{OsDenial, OsErrorKind};

/// "An operation is not supported on a directory": what the crate says when a lock path, or a
/// file to delete, is a directory. (Not `ERROR_DIRECTORY`, which Windows uses for "not a
/// directory".)
pub(super) const ERROR_DIRECTORY_NOT_SUPPORTED: i32 = 336;

/// "The name of the file cannot be resolved by the system": what the crate says when a lock
/// path is a reparse point (a symbolic link or junction, not followed) or a device.
pub(super) const ERROR_CANT_RESOLVE_FILENAME: i32 = 1921;

/// The kind an OS error is, where its code decides more than [`io::ErrorKind`] does.
pub(crate) fn kind_of(err: &io::Error) -> Option<OsErrorKind> {
    let code = u32::try_from(err.raw_os_error()?).ok()?;
    Some(match code {
        c if c as i32 == ERROR_DIRECTORY_NOT_SUPPORTED => OsErrorKind::NotAFile,
        c if c as i32 == ERROR_CANT_RESOLVE_FILENAME => OsErrorKind::NotAFile,
        ERROR_TOO_MANY_OPEN_FILES => OsErrorKind::LimitReached,
        ERROR_WRITE_PROTECT | ERROR_PRIVILEGE_NOT_HELD => OsErrorKind::PermissionDenied,
        ERROR_FILENAME_EXCED_RANGE | ERROR_INVALID_NAME => OsErrorKind::InvalidInput,
        ERROR_NOT_SAME_DEVICE => OsErrorKind::CrossDevice,
        // Someone has the file open in a way that excludes ours, or locked a range we touched:
        // busy for now, as a held lock is.
        ERROR_SHARING_VIOLATION | ERROR_LOCK_VIOLATION => OsErrorKind::WouldBlock,
        _ => return None,
    })
}

/// What an error that is [`OsErrorKind::NotAFile`] says the path is, in our words.
pub(crate) fn not_a_file(err: &io::Error) -> Option<&'static str> {
    match err.raw_os_error()? {
        ERROR_DIRECTORY_NOT_SUPPORTED => Some("is a directory, not a regular file"),
        ERROR_CANT_RESOLVE_FILENAME => {
            Some("is a symbolic link or junction (not followed), or a device")
        }
        _ => None,
    }
}

/// Why the OS denied access, for an error that is [`OsErrorKind::PermissionDenied`].
pub(crate) fn denial(err: &io::Error) -> Option<OsDenial> {
    match u32::try_from(err.raw_os_error()?).ok()? {
        ERROR_ACCESS_DENIED => Some(OsDenial::Access),
        ERROR_WRITE_PROTECT => Some(OsDenial::ReadOnly),
        ERROR_PRIVILEGE_NOT_HELD => Some(OsDenial::NotPermitted),
        _ => None,
    }
}

/// Whether an `open` of a lock path (creating it if `create`) may have failed only because the
/// file was being deleted: a file whose delete is pending (deleted the classic way, the name
/// lingering until its last handle closes) refuses every open as access denied.
pub(crate) fn raced_open(err: &io::Error, create: bool) -> bool {
    match err.raw_os_error().and_then(|c| u32::try_from(c).ok()) {
        Some(ERROR_ACCESS_DENIED) => true,
        Some(ERROR_FILE_NOT_FOUND) => create,
        _ => false,
    }
}

/// The error a rename that would overwrite its destination gives.
pub(crate) fn already_exists() -> io::Error {
    io::Error::from_raw_os_error(ERROR_ALREADY_EXISTS as i32)
}

/// Whether someone has the file or directory open in a way that excludes ours (a sharing
/// violation), or has a range of it locked (a lock violation), for now.
pub(crate) fn in_use(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error().and_then(|c| u32::try_from(c).ok()),
        Some(ERROR_SHARING_VIOLATION | ERROR_LOCK_VIOLATION)
    )
}
