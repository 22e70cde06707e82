//! Linux: open-file-description locks (`F_OFD_SETLK`), the backend of Linux and Android.

use std::fs::File;
use std::io;
use std::path::Path;

use super::fcntl;
use crate::sys::types::Probe;

/// An open file holding an exclusive OFD lock; dropping it closes the file, which releases the
/// lock (the lock belongs to this open file description only, so no other descriptor matters).
#[derive(Debug)]
pub(crate) struct LockedFile(File);

impl LockedFile {
    pub(crate) fn file(&self) -> &File {
        &self.0
    }
}

/// The lock of `file`, whose open file description [`try_lock_keeping`] locked.
pub(crate) fn kept_locked(file: File) -> io::Result<LockedFile> {
    Ok(LockedFile(file))
}

/// Tries to lock `file` without waiting; `Ok(None)` when another holder has it (`file` is closed).
pub(crate) fn try_lock(file: File) -> io::Result<Option<LockedFile>> {
    Ok(fcntl::try_write_lock(&file, libc::F_OFD_SETLK)?.then_some(LockedFile(file)))
}

/// Looks at the locks on `file` (opened only to look) and closes it. Takes no lock.
pub(crate) fn probe(file: File) -> io::Result<Probe> {
    Ok(match fcntl::conflicting_lock(&file, libc::F_OFD_GETLK)? {
        None => Probe::Free,
        Some(pid) => Probe::Held(pid),
    })
}

/// Whether some *other* open file description has a lock on `file` that conflicts with ours.
///
/// While we hold our lock no one else can; a conflicting holder therefore means our lock was
/// lost (expired by a network filesystem, say).
pub(crate) fn locked_by_other(file: &File) -> io::Result<bool> {
    Ok(fcntl::conflicting_lock(file, libc::F_OFD_GETLK)?.is_some())
}

/// Whether this process holds the lock on `path` beneath `dir` through the fallback's registry:
/// never with OFD locks (a waiter simply tries again).
#[inline]
pub(crate) fn held_here(_dir: &File, _path: &Path) -> bool {
    false
}

/// Releases our lock on `file` without closing it, as a lost lock would be (tests only).
#[cfg(test)]
pub(crate) fn drop_lock_keeping_file(file: &File) -> io::Result<()> {
    fcntl::unlock(file, libc::F_OFD_SETLK)
}

/// Tries to lock `file` without waiting, handing it back when another holder has it: the first
/// try of a wait, which keeps the file it found busy (see [`try_lock_keeping`]).
pub(crate) fn try_lock_or_keep(file: File) -> io::Result<Result<LockedFile, File>> {
    Ok(if fcntl::try_write_lock(&file, libc::F_OFD_SETLK)? {
        Ok(LockedFile(file))
    } else {
        Err(file)
    })
}

/// Tries to lock `file` without waiting, keeping it open either way: whether it is locked now.
/// For a wait that keeps its descriptor between attempts (so that it makes no close events of
/// its own, which would wake the other waiters); locked, [`kept_locked`] makes the lock of
/// it.
pub(crate) fn try_lock_keeping(file: &File) -> io::Result<bool> {
    fcntl::try_write_lock(file, libc::F_OFD_SETLK)
}
