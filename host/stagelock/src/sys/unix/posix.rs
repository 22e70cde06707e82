//! Fallback for Unix systems without open-file-description locks: classic POSIX `fcntl` locks plus
//! an in-process registry, as in the Go original.
//!
//! Classic locks belong to the *process*: a second lock from the same process on the same file
//! would succeed, and closing *any* descriptor of a locked file drops the lock. So:
//! - a registry keyed by (device, inode) refuses a second holder inside this process;
//! - descriptors of a file that another holder of this process has locked are parked in the
//!   registry instead of being closed, and closed only when that holder releases.
//!
//! Limits (documented in the crate docs): code in this process that opens and closes a locked
//! file behind stagelock's back still drops the lock. Prefer Linux, where OFD locks have none of
//! this.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, OnceLock};

use super::fcntl;
use super::fs::stat_at;
use crate::sys::types::Probe;

type Key = (u64, u64);

/// Held locks of this process: for each locked file, the descriptors parked until it is released.
fn registry() -> MutexGuard<'static, HashMap<Key, Vec<File>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<Key, Vec<File>>>> = OnceLock::new();
    REGISTRY
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An open file holding an exclusive classic POSIX lock, registered as held by this process.
#[derive(Debug)]
pub(crate) struct LockedFile {
    file: Option<File>,
    key: Key,
}

impl LockedFile {
    pub(crate) fn file(&self) -> &File {
        self.file.as_ref().expect("present until drop")
    }
}

impl Drop for LockedFile {
    fn drop(&mut self) {
        let mut held = registry();
        // Closing our descriptor releases the process's lock; the parked ones go with it.
        drop(self.file.take());
        drop(held.remove(&self.key));
    }
}

/// Tries to lock `file` without waiting; `Ok(None)` when another holder has it. On `None` the
/// file is consumed: closed, or parked until this process's holder releases (closing it now would
/// drop that holder's lock).
pub(crate) fn try_lock(file: File) -> io::Result<Option<LockedFile>> {
    let meta = file.metadata()?;
    let key = (meta.dev(), meta.ino());
    let mut held = registry();
    if let Some(parked) = held.get_mut(&key) {
        parked.push(file);
        return Ok(None);
    }
    if fcntl::try_write_lock(&file, libc::F_SETLK)? {
        held.insert(key, Vec::new());
        Ok(Some(LockedFile {
            file: Some(file),
            key,
        }))
    } else {
        Ok(None)
    }
}

/// Looks at the locks on `file` (opened only to look) and closes it, without dropping a lock of
/// this process: if this process holds the file ([`Probe::HeldHere`]: `F_GETLK` cannot show our
/// own locks), the descriptor is parked until it releases (closing it would drop the lock). The registry stays locked throughout, so no thread of this
/// process can lock the file between the look and the close.
pub(crate) fn probe(file: File) -> io::Result<Probe> {
    let meta = file.metadata()?;
    let key = (meta.dev(), meta.ino());
    let mut held = registry();
    if let Some(parked) = held.get_mut(&key) {
        parked.push(file);
        return Ok(Probe::HeldHere);
    }
    let seen = fcntl::conflicting_lock(&file, libc::F_GETLK)?;
    drop(file);
    drop(held);
    Ok(match seen {
        None => Probe::Free,
        Some(pid) => Probe::Held(pid),
    })
}

/// Whether this process holds the lock on `path` beneath `dir` (it is in the registry): a
/// waiter then waits without opening the file, since every refused open would be parked.
pub(crate) fn held_here(dir: &File, path: &Path) -> bool {
    match stat_at(dir, path) {
        Ok(id) => registry().contains_key(&(id.dev, id.ino)),
        Err(_) => false,
    }
}

/// Whether another process has a lock on `file` that conflicts with ours.
///
/// While we hold our lock no other process can; a conflicting holder therefore means our lock
/// was lost (dropped by a close elsewhere in this process, or expired by a network
/// filesystem).
pub(crate) fn locked_by_other(file: &File) -> io::Result<bool> {
    Ok(fcntl::conflicting_lock(file, libc::F_GETLK)?.is_some())
}

/// Releases our lock on `file` without closing it, as a lost lock would be (tests only).
#[cfg(test)]
pub(crate) fn drop_lock_keeping_file(file: &File) -> io::Result<()> {
    fcntl::unlock(file, libc::F_SETLK)
}
