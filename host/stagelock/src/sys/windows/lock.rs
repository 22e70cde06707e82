//! The lock backend of Windows: `LockFileEx` over every byte, exclusive and failing at once
//! when held, the way containers/storage takes its lock files there
//! (`internal/rawfilelock/rawfilelock_windows.go`), so each excludes the other.

use std::fs::File;
use std::io;
use std::os::windows::io::AsRawHandle;
use std::path::Path;

use windows_sys::Win32::Foundation::{
    ERROR_LOCK_VIOLATION, HANDLE, HANDLE_FLAG_INHERIT, SetHandleInformation,
};
use windows_sys::Win32::Storage::FileSystem::{
    LOCK_FILE_FLAGS, LOCKFILE_EXCLUSIVE_LOCK, LOCKFILE_FAIL_IMMEDIATELY, LockFileEx, UnlockFileEx,
};
use windows_sys::Win32::System::IO::OVERLAPPED;

use super::check;
use crate::sys::types::{FileId, Probe, ProcHolder};

/// An open file holding an exclusive lock on all its bytes. Dropping it unlocks (as
/// containers/storage does: Windows frees the locks of a closed handle only "when resources
/// allow") and closes the handle.
#[derive(Debug)]
pub(crate) struct LockedFile(File);

impl LockedFile {
    pub(crate) fn file(&self) -> &File {
        &self.0
    }
}

impl Drop for LockedFile {
    fn drop(&mut self) {
        let _ = unlock(&self.0);
    }
}

fn handle(file: &File) -> HANDLE {
    file.as_raw_handle() as HANDLE
}

/// `LockFileEx(file, flags, 0, MAX, MAX, offset 0)`: every byte there is or will be.
/// `Ok(false)` when another handle holds a conflicting lock.
fn lock_all(file: &File, flags: LOCK_FILE_FLAGS) -> io::Result<bool> {
    // SAFETY: all-zero is a valid OVERLAPPED (offset 0, no event).
    let mut at: OVERLAPPED = unsafe { std::mem::zeroed() };
    // SAFETY: a valid handle borrowed from `file`, opened for synchronous I/O, so the call
    // completes before it returns and `at` outlives it.
    let ok = unsafe { LockFileEx(handle(file), flags, 0, u32::MAX, u32::MAX, &mut at) };
    match check(ok) {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(ERROR_LOCK_VIOLATION as i32) => Ok(false),
        Err(e) => Err(e),
    }
}

/// `UnlockFileEx` of the range [`lock_all`] locks.
fn unlock(file: &File) -> io::Result<()> {
    // SAFETY: as in `lock_all`.
    let mut at: OVERLAPPED = unsafe { std::mem::zeroed() };
    // SAFETY: as in `lock_all`.
    check(unsafe { UnlockFileEx(handle(file), 0, u32::MAX, u32::MAX, &mut at) })
}

/// Tries to lock `file` without waiting; `Ok(None)` when another holder has it (`file` is closed).
pub(crate) fn try_lock(file: File) -> io::Result<Option<LockedFile>> {
    let flags = LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY;
    Ok(lock_all(&file, flags)?.then_some(LockedFile(file)))
}

/// Looks at the locks on `file` (opened only to look) and closes it. Windows has no way to ask,
/// so this takes a *shared* lock for an instant and releases it at once: `HeldByHandle` (no
/// process is known) if an exclusive lock is in the way.
pub(crate) fn probe(file: File) -> io::Result<Probe> {
    if lock_all(&file, LOCKFILE_FAIL_IMMEDIATELY)? {
        unlock(&file)?;
        Ok(Probe::Free)
    } else {
        Ok(Probe::HeldByHandle)
    }
}

/// Whether another handle holds a lock on `file` that conflicts with ours: Windows cannot say,
/// and while our handle is open no other can take one, so never.
pub(crate) fn locked_by_other(_file: &File) -> io::Result<bool> {
    Ok(false)
}

/// Whether this process holds the lock on `path` through the fallback's registry: never on
/// Windows, whose locks belong to handles (a waiter simply tries again).
#[inline]
pub(crate) fn held_here(_dir: &File, _path: &Path) -> bool {
    false
}

/// Whether `file`'s handle is inherited by processes this one starts
/// (`SetHandleInformation(HANDLE_FLAG_INHERIT)`). The lock stays this process's: a child that
/// inherits the handle can read it, but the lock is released when this process releases it.
pub(crate) fn set_inheritable(file: &File, inherit: bool) -> io::Result<()> {
    let flags = if inherit { HANDLE_FLAG_INHERIT } else { 0 };
    // SAFETY: a valid handle borrowed from `file`; the call takes plain integers.
    check(unsafe { SetHandleInformation(handle(file), HANDLE_FLAG_INHERIT, flags) })
}

/// The file as a lock table would name it: Windows has no such table.
pub(crate) fn lock_table_id(_file: &File, id: FileId) -> FileId {
    id
}

/// Who holds locks on the file `id`: Windows does not say.
pub(crate) fn holders(_id: FileId) -> Option<Vec<ProcHolder>> {
    None
}

/// A holder's command line: unknown (no holder is ever known).
pub(crate) fn cmdline(_pid: u32) -> Option<Vec<String>> {
    None
}
