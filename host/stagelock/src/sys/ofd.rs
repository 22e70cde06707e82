//! Linux: open-file-description locks.

use std::fs::File;
use std::io;

/// `fcntl` command that asks for a conflicting lock held through another open file description.
pub(crate) const GETLK: libc::c_int = libc::F_OFD_GETLK;
/// `fcntl` command that sets (or clears) our lock.
#[cfg(test)]
pub(crate) const SETLK: libc::c_int = libc::F_OFD_SETLK;

/// An open file holding an exclusive OFD lock; dropping it closes the file, which releases the
/// lock (the lock belongs to this open file description only, so no other descriptor matters).
#[derive(Debug)]
pub(crate) struct LockedFile(File);

impl LockedFile {
    pub(crate) fn file(&self) -> &File {
        &self.0
    }
}

/// Tries to lock `file` without waiting; `Ok(None)` when another holder has it (`file` is closed).
pub(crate) fn try_lock(file: File) -> io::Result<Option<LockedFile>> {
    Ok(super::fcntl_try_lock(&file, libc::F_OFD_SETLK)?.then_some(LockedFile(file)))
}
