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

/// What [`probe`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Probe {
    /// No conflicting lock.
    Free,
    /// A lock of this very process that the OS cannot show (the fallback's registry); never
    /// seen with OFD locks, whose holders in this process are reported like any other.
    #[allow(dead_code)]
    HeldHere,
    /// Another holder's lock, with the `l_pid` the OS reported (`-1` for an OFD lock).
    Held(i32),
}

/// Looks at the locks on `file` (opened only to look) and closes it. Takes no lock.
pub(crate) fn probe(file: File) -> io::Result<Probe> {
    Ok(match super::conflicting_lock(&file)? {
        None => Probe::Free,
        Some(pid) => Probe::Held(pid),
    })
}

/// Whether this process holds the lock on `path` beneath `dir` through the fallback's registry:
/// never with OFD locks (a waiter simply tries again).
#[inline]
pub(crate) fn held_here(_dir: &File, _path: &std::path::Path) -> bool {
    false
}
