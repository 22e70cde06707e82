//! The directories locks are taken beneath: sharing one handle between many locks, opening one
//! from an ambient path, and refusing paths that can never name a lock file.
//!
//! Every lock keeps the handle of the directory it was taken in (for its unlock-and-delete),
//! so handles are shared: a [`LockDir`](crate::LockDir) and all the locks taken through it hold
//! one [`SharedDir`] between them.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use cap_std::AmbientAuthority;
use cap_std::fs::Dir;

use crate::error::{Error, ErrorKind, Op};
use crate::pattern::Pattern;
use crate::sys;

/// A directory handle shared by a [`LockDir`](crate::LockDir) and the locks taken in it; one
/// pointer wide, since every held lock carries one, and cloned by a reference count.
pub(crate) type SharedDir = Arc<File>;

/// A handle of its own to `dir` (one `dup`), for `op` on `path` (named if it fails).
pub(crate) fn share(dir: &Dir, op: Op, path: &Path) -> Result<SharedDir, Error> {
    let dup = dir.try_clone().map_err(|e| Error::io(op, path, e))?;
    Ok(Arc::new(dup.into_std_file()))
}

/// Opens the ambient directory `dir` for `op` on `shown` (the path errors name).
pub(crate) fn open_ambient(
    dir: &Path,
    op: Op,
    shown: &Path,
    ambient: AmbientAuthority,
) -> Result<SharedDir, Error> {
    let handle = Dir::open_ambient_dir(dir, ambient).map_err(|e| Error::io(op, shown, e))?;
    Ok(Arc::new(handle.into_std_file()))
}

/// Opens the parent directory of the ambient path `path` for `op`; returns it, the last
/// component (to lock beneath it) and the parent as given (to prefix error paths with).
///
/// # Errors
///
/// [`ErrorKind::InvalidInput`] when `path` has no last component (`/`, or ends in `..`); else
/// what opening the parent gives.
pub(crate) fn open_ambient_parent(
    path: &Path,
    op: Op,
    ambient: AmbientAuthority,
) -> Result<(SharedDir, &Path, &Path), Error> {
    let Some(name) = path.file_name() else {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            op,
            path,
            "path has no file name to lock",
        ));
    };
    let parent = path.parent().unwrap_or(Path::new(""));
    let opened = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    let handle = open_ambient(opened, op, path, ambient)?;
    Ok((handle, Path::new(name), parent))
}

/// Refuses paths that can never name a lock file, before touching the filesystem: empty, or
/// with a NUL byte ([`ErrorKind::InvalidInput`]); and what the host's OS makes into something
/// other than names beneath the directory (on Windows: a drive, UNC, device or NT-namespace
/// path is an escape, [`ErrorKind::PermissionDenied`]; an alternate data stream, a reserved
/// device name or a name ending in a dot or space is [`ErrorKind::InvalidInput`]; on Unix
/// these are ordinary names). Other escapes are refused later, by the sandboxed resolution
/// every path goes through.
pub(crate) fn check_path(path: &Path, op: Op) -> Result<(), Error> {
    let refuse = |why| Err(Error::new(ErrorKind::InvalidInput, op, path, why));
    let bytes = path.as_os_str().as_encoded_bytes();
    if bytes.is_empty() {
        return refuse("path is empty");
    }
    if bytes.contains(&0) {
        return refuse("path contains a NUL byte");
    }
    match sys::host_form(path) {
        None => Ok(()),
        Some(form) => Err(refusal(form, op, path)),
    }
}

/// Refuses a create-and-lock pattern any of whose names the host's OS would make into
/// something else, as [`check_path`] does paths (on Windows `CON*` can make `CON1`, whose stem
/// is not reserved, but `COM*` makes `COM1`, a serial port). The names differ only in the
/// decimal between prefix and suffix, and a reserved name has at most one digit: the names of
/// `0` to `9` stand for all of them. `shown` is the pattern as given, for the message.
pub(crate) fn check_pattern(pattern: Pattern<'_>, shown: &str, op: Op) -> Result<(), Error> {
    if !sys::HAS_HOST_FORMS {
        return Ok(());
    }
    if shown.contains(sys::SEPARATORS) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            op,
            shown,
            "pattern contains a path separator",
        ));
    }
    let mut name = String::with_capacity(shown.len() + 1);
    for n in 0..10 {
        pattern.write_name(n, &mut name);
        if let Some(form) = sys::host_form(Path::new(&name)) {
            return Err(refusal(form, op, Path::new(shown)));
        }
    }
    Ok(())
}

#[cold]
fn refusal(form: sys::HostForm, op: Op, path: &Path) -> Error {
    match form {
        sys::HostForm::Escape(what) => Error::new(
            ErrorKind::PermissionDenied,
            op,
            path,
            format!("path escapes the directory it is resolved in: {what}"),
        ),
        sys::HostForm::Invalid(what) => Error::new(ErrorKind::InvalidInput, op, path, what),
    }
}
