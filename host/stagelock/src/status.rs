//! [`LockStatus`]: whether a lock file is locked, and by whom, without disturbing its holder.

use std::fs;
use std::io;
use std::path::Path;

use crate::dir::check_path;
use crate::error::{Error, Op};
use crate::lock_dir::LockDir;
use crate::sys;

/// What [`StagingLock::status`](crate::StagingLock::status) found at a path.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LockStatus {
    /// No file at the path: nothing holds it (a staging lock's holder deletes it when done).
    Missing,
    /// The file exists and no one holds a lock on it: its last holder is gone, or it was
    /// unlocked and kept (containers/storage's `Unlock`).
    Free,
    /// Someone holds a lock on the file. At least one [`Holder`]; one whose
    /// [`pid`](Holder::pid) is `None` when the OS would not say who.
    Held(Vec<Holder>),
}

impl LockStatus {
    /// Whether someone holds the lock.
    pub fn is_held(&self) -> bool {
        matches!(self, LockStatus::Held(_))
    }
}

/// The kind of lock a [`Holder`] has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LockKind {
    /// An open-file-description lock (`F_OFD_SETLK`), as stagelock takes on Linux. It belongs
    /// to an open file, which several processes may share (a child inheriting the descriptor);
    /// the OS shows its pid as `-1`, so its holders are found in `/proc/PID/fdinfo`.
    Ofd,
    /// A classic POSIX `fcntl` lock (containers/storage, Python's `fcntl.lockf`, stagelock on
    /// other Unix systems): `F_GETLK` names its process.
    Posix,
    /// A Windows `LockFileEx` lock (stagelock's and containers/storage's there): it belongs to
    /// a handle, and Windows does not say whose, so its holder has no process.
    Handle,
}

/// A holder of a lock, as far as the OS tells.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Holder {
    /// The kind of lock.
    pub kind: LockKind,
    /// The holding process, in this process's PID namespace; `None` when unknown (an OFD lock
    /// held through another user's process, unreadable without privilege, or no `/proc`).
    pub pid: Option<u32>,
    /// Its command line (`/proc/PID/cmdline`, lossily as UTF-8); `None` when unknown.
    pub command: Option<Vec<String>>,
}

impl Holder {
    fn new(kind: LockKind, pid: Option<u32>) -> Self {
        let command = pid.and_then(sys::cmdline);
        Holder { kind, pid, command }
    }
}

impl LockDir {
    /// [`StagingLock::status`](crate::StagingLock::status) beneath this directory: whether
    /// `path` is locked, and by whom.
    ///
    /// # Errors
    ///
    /// As [`StagingLock::status`](crate::StagingLock::status).
    pub fn status(&self, path: impl AsRef<Path>) -> Result<LockStatus, Error> {
        status_at(self.handle(), path.as_ref())
    }
}

/// [`StagingLock::status`](crate::StagingLock::status) beneath `dir`.
pub(crate) fn status_at(dir: &fs::File, path: &Path) -> Result<LockStatus, Error> {
    check_path(path, Op::Status)?;
    let err = |e| Error::io(Op::Status, path, e);
    let file = match sys::open_beneath_to_look(dir, path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound && parent_exists(dir, path) => {
            return Ok(LockStatus::Missing);
        }
        Err(e) => return Err(err(e)),
    };
    let stat = sys::stat_fd(&file).map_err(err)?;
    if stat.kind != sys::FileKind::Regular {
        return Err(Error::not_regular(Op::Status, path, stat.kind));
    }
    // Asked before the probe, which takes the file: the lock table's name for it.
    let table_id = sys::lock_table_id(&file, stat.id);
    let l_pid = match sys::probe(file).map_err(err)? {
        sys::Probe::Free => return Ok(LockStatus::Free),
        sys::Probe::HeldHere => {
            let me = Holder::new(LockKind::Posix, Some(std::process::id()));
            return Ok(LockStatus::Held(vec![me]));
        }
        sys::Probe::Held(l_pid) => l_pid,
        sys::Probe::HeldByHandle => {
            return Ok(LockStatus::Held(vec![Holder::new(LockKind::Handle, None)]));
        }
    };
    let mut holders: Vec<Holder> = sys::holders(table_id)
        .unwrap_or_default()
        .into_iter()
        .map(|h| {
            let kind = if h.ofd {
                LockKind::Ofd
            } else {
                LockKind::Posix
            };
            Holder::new(kind, h.pid)
        })
        .collect();
    if holders.is_empty() {
        // Not in the lock table we could read: what fcntl said is all we know.
        holders.push(match u32::try_from(l_pid) {
            Ok(pid) if pid > 0 => Holder::new(LockKind::Posix, Some(pid)),
            _ => Holder::new(LockKind::Ofd, None),
        });
    }
    Ok(LockStatus::Held(holders))
}

/// Whether the directory `path` would be in exists, to tell a missing lock file from a missing
/// parent ([`ErrorKind::NotFound`]).
fn parent_exists(dir: &fs::File, path: &Path) -> bool {
    match path.parent() {
        None => true,
        Some(p) if p.as_os_str().is_empty() => true,
        Some(p) => sys::again_if_escaped(dir, p, |d, p| {
            cap_primitives::fs::stat(d, p, cap_primitives::fs::FollowSymlinks::Yes)
        })
        .is_ok_and(|m| m.is_dir()),
    }
}
