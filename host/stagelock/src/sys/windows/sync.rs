//! Durability on Windows: `FlushFileBuffers` of every file of a committed tree and of the
//! directories that hold its names.

use std::fs::File;
use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::path::Path;

use cap_fs_ext::OpenOptionsFollowExt as _;
use cap_primitives::fs::{FollowSymlinks, OpenOptions, OpenOptionsExt as _};
use windows_sys::Win32::Foundation::{
    ERROR_ACCESS_DENIED, ERROR_INVALID_FUNCTION, GENERIC_WRITE, HANDLE, INVALID_HANDLE_VALUE,
};
use windows_sys::Win32::Storage::FileSystem::{
    FILE_FLAG_BACKUP_SEMANTICS, FILE_FLAG_OPEN_REPARSE_POINT, FILE_READ_ATTRIBUTES,
    FILE_SHARE_DELETE, FILE_SHARE_READ, FILE_SHARE_WRITE, FlushFileBuffers, ReOpenFile,
};

use super::check;
use super::fs::{names_in, stat_fd};
use crate::sys::types::FileKind;

const SHARE_ALL: u32 = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;

fn flush(handle: HANDLE) -> io::Result<()> {
    // SAFETY: a valid handle, opened with write access, borrowed for the call.
    check(unsafe { FlushFileBuffers(handle) })
}

/// Flushes the directory `dir`, so the names in it reach the disk: its handle is opened again
/// with write access (`ReOpenFile`), which `FlushFileBuffers` needs. A filesystem that does not
/// flush directories this way (it says "access denied" or "invalid function") journals their
/// entries itself (NTFS): that is taken as done.
pub(crate) fn fsync_dir(dir: &File) -> io::Result<()> {
    // SAFETY: a valid handle borrowed from `dir`; the call returns a new handle or
    // INVALID_HANDLE_VALUE, taking plain integers otherwise.
    let again = unsafe {
        ReOpenFile(
            dir.as_raw_handle() as HANDLE,
            GENERIC_WRITE,
            SHARE_ALL,
            FILE_FLAG_BACKUP_SEMANTICS,
        )
    };
    let flushed = if again == INVALID_HANDLE_VALUE {
        Err(io::Error::last_os_error())
    } else {
        // SAFETY: `again` is a fresh handle we own; OwnedHandle closes it.
        let again = unsafe { OwnedHandle::from_raw_handle(again as _) };
        flush(again.as_raw_handle() as HANDLE)
    };
    match flushed {
        Err(e)
            if matches!(e.raw_os_error(), Some(c)
                if c == ERROR_ACCESS_DENIED as i32 || c == ERROR_INVALID_FUNCTION as i32) =>
        {
            Ok(())
        }
        other => other,
    }
}

/// Flushes every regular file and every directory of the tree under `top`, and `top` itself.
/// Each entry is opened relative to its directory's handle, itself (a reparse point is not
/// followed, and only its entry is flushed, with its directory). Entries that vanish meanwhile
/// are skipped. A file that cannot be opened for writing (read-only) is an error: its data
/// could not be flushed.
pub(crate) fn sync_tree(top: &File) -> io::Result<()> {
    let mut entries = OpenOptions::new();
    entries
        .access_mode(GENERIC_WRITE | FILE_READ_ATTRIBUTES)
        .share_mode(SHARE_ALL)
        .custom_flags(FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT);
    entries.follow(FollowSymlinks::No);
    walk(top, &entries)
}

fn walk(dir: &File, entries: &OpenOptions) -> io::Result<()> {
    for name in names_in(dir)? {
        let opened = cap_primitives::fs::open(dir, Path::new(&name), entries);
        let Some(entry) = skip_vanished(opened)? else {
            continue;
        };
        match stat_fd(&entry)?.kind {
            FileKind::Directory => walk(&entry, entries)?,
            FileKind::Regular => flush(entry.as_raw_handle() as HANDLE)?,
            _ => {} // its entry is flushed with the directory
        }
    }
    fsync_dir(dir)
}

/// `Ok(None)` for an entry that vanished, the result otherwise.
fn skip_vanished<T>(result: io::Result<T>) -> io::Result<Option<T>> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}
