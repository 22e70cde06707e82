//! [`StagingLock`], a held lock: unlock-and-delete it, verify it is still ours, let a child
//! inherit it. Locks are taken through a [`LockDir`](crate::LockDir) (`lock_dir.rs`), or
//! through the entry points on a `&Dir` or an ambient path that wrap one (`entry.rs`).

use std::io;
use std::path::{Path, PathBuf};

use crate::dir::SharedDir;
use crate::error::{Error, ErrorKind, Op};
use crate::sys::{self, LockedFile};

/// An exclusive advisory lock on a file beneath a directory, compatible with containers/storage's
/// staging lock files.
///
/// Get one with [`create_and_lock`](Self::create_and_lock) (a fresh file from a name pattern) or
/// [`try_lock_path`](Self::try_lock_path) (a given path). End it with
/// [`unlock_and_delete`](Self::unlock_and_delete), which deletes the file while still holding the
/// lock and then releases it.
///
/// Dropping a `StagingLock` instead releases the lock and **leaves the file**, exactly as if the
/// holder had crashed: an unlocked lock file is the "stale" signal recovery code looks for.
///
/// # Platform Notes
///
/// ## Linux
///
/// An open-file-description lock (`F_OFD_SETLK`, write lock, whole file). It excludes other
/// threads and handles of this process, and other processes holding classic POSIX `fcntl` locks
/// (containers/storage, Python's `fcntl.lockf`), and closing some other descriptor of the file
/// does not release it. It does not see `flock(2)` locks.
///
/// ## Other Unix
///
/// Classic POSIX `fcntl` locks plus an in-process registry, as in the Go original: code in this
/// process that opens and closes a locked file behind stagelock's back drops the lock.
///
/// ## Network and FUSE filesystems
///
/// A lock is taken on an open file, and the file's holder may have deleted it in the meantime,
/// so every new lock is checked against the path. On Linux, on local filesystems (ext4, XFS,
/// Btrfs, tmpfs and a few more), the `statx` made after locking decides it: a file with one
/// link still has its name. (Whether a mount is local is asked once per mount and process,
/// with `fstatfs`.) Elsewhere that is not trusted, because a deleted file may keep its link
/// (JuiceFS moves it into its trash), and the path is looked up again: one `fstatat` more per
/// lock. That lookup, and [`verify`](Self::verify), see another host's change only when the
/// mount caches no metadata (for JuiceFS: `--attr-cache 0 --entry-cache 0
/// --dir-entry-cache 0`). There, too, an `EPERM` from opening the path can mean that the file
/// was deleted during the open (JuiceFS refuses to open a trashed file for writing; without a
/// trash it says `ENOENT`, even to a create), and the path is opened again, up to 16 times. A
/// held file that the filesystem no longer knows at all counts as deleted.
///
/// # Non-guarantees
///
/// The lock is advisory: it binds only code that takes it. Network filesystems may not implement
/// it faithfully (NFS before v4 in particular).
#[derive(Debug)]
pub struct StagingLock {
    file: LockedFile,
    dir: SharedDir,
    path: PathBuf,
}

impl StagingLock {
    /// A lock on `file`, locked and checked to be at `path` beneath `dir`.
    pub(crate) fn new(file: LockedFile, dir: SharedDir, path: PathBuf) -> Self {
        StagingLock { file, dir, path }
    }

    /// Deletes the lock file while still holding the lock, then releases the lock.
    ///
    /// A file that is already gone is not an error. The lock is released whatever happens: the
    /// handle is consumed, so it cannot be used twice.
    ///
    /// This corresponds to containers/storage's `UnlockAndDelete`. Where the Go original panics
    /// on a second call, here a second call does not compile:
    ///
    /// ```compile_fail
    /// # fn f(dir: &cap_std::fs::Dir) -> Result<(), stagelock::Error> {
    /// let lock = stagelock::StagingLock::try_lock_path(dir, "x.lock")?;
    /// lock.unlock_and_delete()?;
    /// lock.unlock_and_delete()?; // error[E0382]: use of moved value: `lock`
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// Any error deleting the file other than "not found" (the lock is released anyway):
    /// [`ErrorKind::PermissionDenied`] for a read-only directory, [`ErrorKind::Other`] for I/O.
    ///
    /// # Security
    ///
    /// On Unix the file is deleted by its path. Cooperating holders only delete lock files they
    /// hold, so the path still names our file; code that renames lock files behind their
    /// holders' backs can make this delete the file now at that path. On Windows the path is
    /// opened and deleted only if it still names the file we locked.
    pub fn unlock_and_delete(self) -> Result<(), Error> {
        let StagingLock { file, dir, path } = self;
        let removed = sys::delete_held(&file, &dir, &path);
        drop(file); // releases the lock, after the delete
        match removed {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(Op::UnlockAndDelete, path, e)),
        }
    }

    /// Checks that the lock is still ours: the path still names the file we locked (it has not
    /// been deleted, or deleted and made anew), and no other holder has a lock on that file.
    ///
    /// A lock is only lost through someone who does not follow the protocol: a process that
    /// deletes lock files it does not hold (containers/storage's own Go code can, through its
    /// create/delete race), a person cleaning up by hand, a network filesystem that expires
    /// locks, or (with the classic `fcntl` locks of the fallback for other Unix systems) code
    /// in this process closing another descriptor of the file. Call it right before an action
    /// that is only safe under the lock; [`Stage::commit`](crate::Stage::commit) does, right
    /// before its rename.
    ///
    /// The check is a snapshot: it cannot stop someone from deleting the file a moment later.
    /// It costs an `fstat`, an `fstatat` (or cap-std's resolution for longer paths) and an
    /// `fcntl(F_OFD_GETLK)`.
    ///
    /// # Errors
    ///
    /// - [`ErrorKind::LockLost`]: the file has no name left, the path names another file or
    ///   nothing, or another holder has a lock on the file. The lock is still held on the old
    ///   file, which no one else can find any more; drop it (do **not** unlock-and-delete: the
    ///   file now at the path may be someone else's).
    /// - [`ErrorKind::PermissionDenied`], [`ErrorKind::Other`]: the check itself failed.
    ///
    /// # Examples
    ///
    /// ```
    /// use stagelock::{ErrorKind, StagingLock};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let tmp = tempfile::tempdir()?;
    /// let dir = cap_std::fs::Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority())?;
    /// let lock = StagingLock::try_lock_path(&dir, "x.lock")?;
    /// lock.verify()?;
    /// dir.remove_file("x.lock")?; // someone deletes a lock file they do not hold
    /// assert_eq!(lock.verify().unwrap_err().kind(), ErrorKind::LockLost);
    /// drop(lock); // not unlock_and_delete: the path is no longer ours
    /// # Ok(()) }
    /// ```
    pub fn verify(&self) -> Result<(), Error> {
        let err = |e| Error::io(Op::Verify, &self.path, e);
        let lost =
            |why: &'static str| Err(Error::new(ErrorKind::LockLost, Op::Verify, &self.path, why));
        let held = match sys::stat_fd(self.file.file()) {
            Ok(held) if held.nlink > 0 => held,
            // No links, or (on a network filesystem) the file is no longer known at all.
            Ok(_) => return lost("lock lost: the locked file was deleted"),
            Err(e) if gone(&e) => return lost("lock lost: the locked file was deleted"),
            Err(e) => return Err(err(e)),
        };
        match sys::stat_at(&self.dir, &self.path) {
            Ok(id) if id == held.id => {}
            Ok(_) => return lost("lock lost: the path names another file now"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return lost("lock lost: the locked file is no longer at this path");
            }
            Err(e) => return Err(err(e)),
        }
        if sys::locked_by_other(self.file.file()).map_err(err)? {
            return lost("lock lost: another holder has a lock on the file");
        }
        Ok(())
    }

    /// The lock file's path, relative to the directory it was locked in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether programs this process starts from now on inherit the lock (default: no).
    ///
    /// An inherited lock is shared with the child: it stays held until both this handle and the
    /// child's copy of the descriptor are gone, so a child that outlives a killed parent keeps
    /// the staged resource protected, as `flock(1)` does.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Other`] if the descriptor flags cannot be changed (not expected).
    ///
    /// # Platform Notes
    ///
    /// This clears `FD_CLOEXEC`: children spawned concurrently by *other threads* inherit it
    /// too, until it is set again.
    ///
    /// Only Linux's open-file-description locks are shared with a child this way. With the
    /// classic `fcntl` locks of the fallback for other Unix systems, a child inherits the
    /// descriptor but not the lock, which ends with this process; on Windows a child inherits
    /// the handle (`HANDLE_FLAG_INHERIT`), and the lock stays this process's.
    pub fn set_inheritable(&self, inherit: bool) -> Result<(), Error> {
        sys::set_inheritable(self.file.file(), inherit)
            .map_err(|e| Error::io_as(ErrorKind::Other, Op::SetInheritable, &self.path, e))
    }

    /// The locked file, to look at (tests; a filesystem probe asks where its lock landed).
    pub(crate) fn file(&self) -> &std::fs::File {
        self.file.file()
    }
}

/// Whether an error about a file we hold open says that the file no longer exists: some
/// network filesystems forget a file another client deleted, open or not (JuiceFS without its
/// trash says "not found", GlusterFS "stale file handle").
pub(crate) fn gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::StaleNetworkFileHandle
    )
}
