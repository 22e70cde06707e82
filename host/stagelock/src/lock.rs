//! [`StagingLock`]: create-and-lock, try-lock-path and unlock-and-delete beneath a directory.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cap_std::AmbientAuthority;
use cap_std::fs::Dir;

use crate::error::{Error, ErrorKind, Op};
use crate::pattern::Pattern;
use crate::retry::retry;
use crate::status::LockStatus;
use crate::sys::{self, LockedFile};
use crate::wait::{Attempt, LockWait, Wait};

/// How many fresh files create-and-lock makes before giving up when someone else keeps locking
/// them first (the Go original's limit).
const LOCK_ATTEMPTS: u32 = 1000;

/// How many times try-lock-path opens a path again after an `EPERM` (or, when creating, an
/// `ENOENT`) on a network filesystem, where that can mean the file was deleted during the open.
const RACED_OPEN_ATTEMPTS: u32 = 16;

/// How many random names create-and-lock tries per file before giving up on collisions
/// (Go's `os.CreateTemp` limit).
const NAME_ATTEMPTS: u32 = 10_000;

/// The directory a lock lives beneath. Shared, so that locks in one directory (for example all
/// those of one sandboxed guest) cost no descriptor beyond their own file.
///
/// One pointer wide, since every held lock carries one; cloning it is a reference count.
#[derive(Clone, Debug)]
pub(crate) struct SharedDir(Arc<DirHandle>);

#[derive(Debug)]
struct DirHandle {
    file: Arc<fs::File>,
    /// Whether the directory is on a local filesystem ([`sys::is_local_filesystem`]): then one
    /// link proves a lock file opened by a plain name still has that name (see
    /// [`still_names`]), and an `EPERM` from `open` is never a race with another host.
    local: bool,
}

impl SharedDir {
    /// Shares `file` and asks once (`fstatfs`) whether it is on a local filesystem.
    pub(crate) fn new(file: Arc<fs::File>) -> Self {
        let local = sys::is_local_filesystem(&file);
        SharedDir(Arc::new(DirHandle { file, local }))
    }

    fn local(&self) -> bool {
        self.0.local
    }
}

impl std::ops::Deref for SharedDir {
    type Target = fs::File;

    fn deref(&self) -> &fs::File {
        &self.0.file
    }
}

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
/// Btrfs, tmpfs and a few more), one `fstat` decides it: a file with one link still has its
/// name. Elsewhere that is not trusted, because a deleted file may keep its link (JuiceFS moves
/// it into its trash), and the path is looked up again: one `fstatat` more per lock. That lookup, and [`verify`](Self::verify), see another host's change only when the
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
    /// Creates a new file in `dir`, named from `pattern`, and locks it; returns the lock and the
    /// file's base name.
    ///
    /// The name follows Go's `os.CreateTemp`: a random decimal number replaces the **last** `*` of
    /// `pattern`, or is appended if there is none (`"lock-"` gives `lock-3141592653`). The file is
    /// created exclusively (`O_EXCL`) with mode `0600`; a name collision retries with a new name.
    /// If another holder locks the new file first, it is left to them and a new file is made, up
    /// to 1000 times.
    ///
    /// Unlike the Go original, the lock is only returned once the name is checked to still point
    /// at the locked file, so a concurrent recoverer that deleted the file between its creation
    /// and the lock cannot leave us holding a lock on a deleted file. (On a local filesystem
    /// the check is one `fstat` after locking: lock files are never renamed, so one link means
    /// the name is still ours and none means deleted. Anywhere else, and for a hard-linked
    /// file, the path is compared by device and inode; see the notes on network filesystems.)
    ///
    /// This corresponds to containers/storage's `CreateAndLock`, but only creates files directly
    /// in `dir`. It never blocks. The lock keeps a duplicate of `dir`'s handle (for the delete);
    /// to take many locks in one directory, [`LockDir`] shares one handle between them.
    ///
    /// # Errors
    ///
    /// - [`ErrorKind::InvalidInput`]: `pattern` contains `/` or a NUL byte, or the name is too
    ///   long.
    /// - [`ErrorKind::PermissionDenied`]: the directory is not writable.
    /// - [`ErrorKind::LimitReached`]: out of file descriptors.
    /// - [`ErrorKind::Other`]: 1000 fresh files were all locked by someone else first, or
    ///   10,000 random names all existed, or another OS error.
    ///
    /// # Examples
    ///
    /// ```
    /// use stagelock::StagingLock;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let tmp = tempfile::tempdir()?;
    /// let dir = cap_std::fs::Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority())?;
    /// let (lock, name) = StagingLock::create_and_lock(&dir, "lock-")?;
    /// assert!(name.starts_with("lock-"));
    /// // ... create and use the resource "temp-dir-<ID>" that `name` guards ...
    /// lock.unlock_and_delete()?;
    /// assert!(!dir.exists(&name));
    /// # Ok(()) }
    /// ```
    pub fn create_and_lock(dir: &Dir, pattern: &str) -> Result<(StagingLock, String), Error> {
        let dir = share(dir, Op::CreateAndLock, Path::new(pattern))?;
        Self::create_and_lock_shared(&dir, pattern)
    }

    /// Locks the file at `path` beneath `dir`, creating it (mode `0644` less the umask) if it is
    /// missing. Parent directories are never created.
    ///
    /// `path` is relative to `dir` and may have several components. It is resolved beneath `dir`
    /// like every `cap_std` path: `..` that climbs out, absolute paths and symlinks leading out
    /// are refused. A final symlink is never followed.
    ///
    /// This corresponds to containers/storage's `TryLockPath`. It never blocks.
    ///
    /// # Errors
    ///
    /// - [`ErrorKind::WouldBlock`]: held by someone else: another process, another thread or
    ///   another `StagingLock` of this process.
    /// - [`ErrorKind::NotFound`]: a parent directory is missing.
    /// - [`ErrorKind::PermissionDenied`]: `path` escapes `dir`, or the OS refused access.
    /// - [`ErrorKind::NotAFile`]: `path` names a directory, FIFO, socket, device or symlink
    ///   (FIFOs are opened non-blocking, so this never hangs).
    /// - [`ErrorKind::InvalidInput`]: `path` is empty, contains a NUL byte or is too long.
    /// - [`ErrorKind::LimitReached`]: out of file descriptors.
    ///
    /// # Examples
    ///
    /// ```
    /// use stagelock::{ErrorKind, StagingLock};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let tmp = tempfile::tempdir()?;
    /// let dir = cap_std::fs::Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority())?;
    /// dir.create_dir_all("staging/1")?;
    /// let lock = StagingLock::try_lock_path(&dir, "staging/1/staging.lock")?;
    /// let busy = StagingLock::try_lock_path(&dir, "staging/1/staging.lock").unwrap_err();
    /// assert_eq!(busy.kind(), ErrorKind::WouldBlock);
    /// lock.unlock_and_delete()?;
    /// # Ok(()) }
    /// ```
    pub fn try_lock_path(dir: &Dir, path: impl AsRef<Path>) -> Result<StagingLock, Error> {
        let path = path.as_ref();
        let dir = share(dir, Op::TryLockPath, path)?;
        Self::try_lock_path_shared(&dir, path)
    }

    /// [`create_and_lock`](Self::create_and_lock) in the directory at the ambient path `dir`.
    ///
    /// The returned lock's [`path`](Self::path) is the base name; error messages name the full
    /// path.
    ///
    /// # Ambient Authority
    ///
    /// Opens `dir` with the process's ambient authority; everything after is beneath it.
    pub fn create_and_lock_in_ambient_dir(
        dir: impl AsRef<Path>,
        pattern: &str,
        ambient: AmbientAuthority,
    ) -> Result<(StagingLock, String), Error> {
        let dir = dir.as_ref();
        let handle = open_ambient_dir(dir, Op::CreateAndLock, dir, ambient)?;
        Self::create_and_lock_shared(&handle, pattern).map_err(|e| e.in_dir(dir))
    }

    /// [`try_lock_path`](Self::try_lock_path) on the ambient path `path`: its parent directory is
    /// opened with ambient authority and its last component is locked beneath it.
    ///
    /// The returned lock's [`path`](Self::path) is the last component; error messages name the
    /// full path.
    ///
    /// # Errors
    ///
    /// As [`try_lock_path`](Self::try_lock_path), plus [`ErrorKind::InvalidInput`] when `path`
    /// has no last component to lock (`/`, or ends in `..`).
    ///
    /// # Ambient Authority
    ///
    /// Opens the parent of `path` with the process's ambient authority.
    pub fn try_lock_ambient_path(
        path: impl AsRef<Path>,
        ambient: AmbientAuthority,
    ) -> Result<StagingLock, Error> {
        let path = path.as_ref();
        let (handle, name, parent) = open_ambient_parent(path, Op::TryLockPath, ambient)?;
        Self::try_lock_path_shared(&handle, name).map_err(|e| e.in_dir(parent))
    }

    /// Locks the file at `path` beneath `dir` like [`try_lock_path`](Self::try_lock_path)
    /// (creating it if missing), but if someone else holds it, waits as `wait` says for them to
    /// release it: [`Wait::No`], [`Wait::For`] a duration, or [`Wait::Forever`].
    ///
    /// Every kind of release is noticed: an unlock-and-delete (the path then names a new file,
    /// which is opened and locked afresh), a holder that exits or crashes, and a holder that
    /// unlocks and keeps the file (containers/storage's `Unlock`, Python's `fcntl.lockf`
    /// `LOCK_UN`).
    ///
    /// The wait is a retry with exponential backoff (from 0.5 ms up to 10 ms between attempts,
    /// sleeping in between, never spinning): a release is noticed about 5 ms later on average,
    /// and a waiter costs about a hundred failed attempts a second (well under 1% of a core;
    /// see BENCHMARKS.md). Waiters are not served in any order: after a release, whoever
    /// retries first wins. The calling thread sleeps; for many waits at once, or to wait
    /// without a thread, poll [`try_lock_path`](Self::try_lock_path) from your own scheduler.
    ///
    /// # Errors
    ///
    /// - [`ErrorKind::WouldBlock`]: still held by someone else when the wait ran out (at once
    ///   for [`Wait::No`]); the message says how long it waited.
    /// - Everything else [`try_lock_path`](Self::try_lock_path) returns, at once, without
    ///   waiting: [`ErrorKind::NotFound`] for a missing parent directory,
    ///   [`ErrorKind::PermissionDenied`], [`ErrorKind::NotAFile`], [`ErrorKind::InvalidInput`],
    ///   [`ErrorKind::LimitReached`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use stagelock::{ErrorKind, StagingLock, Wait};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let tmp = tempfile::tempdir()?;
    /// let dir = cap_std::fs::Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority())?;
    /// let held = StagingLock::try_lock_path(&dir, "x.lock")?;
    /// let waited = Wait::For(Duration::from_millis(20));
    /// let busy = StagingLock::lock_path(&dir, "x.lock", waited).unwrap_err();
    /// assert_eq!(busy.kind(), ErrorKind::WouldBlock);
    /// std::thread::scope(|s| -> Result<(), stagelock::Error> {
    ///     s.spawn(move || {
    ///         std::thread::sleep(Duration::from_millis(50));
    ///         held.unlock_and_delete()
    ///     });
    ///     let lock = StagingLock::lock_path(&dir, "x.lock", Wait::Forever)?;
    ///     lock.unlock_and_delete()
    /// })?;
    /// # Ok(()) }
    /// ```
    pub fn lock_path(dir: &Dir, path: impl AsRef<Path>, wait: Wait) -> Result<StagingLock, Error> {
        let path = path.as_ref();
        let dir = share(dir, Op::LockPath, path)?;
        Self::lock_path_shared(&dir, path, wait)
    }

    /// [`lock_path`](Self::lock_path) on the ambient path `path`, as
    /// [`try_lock_ambient_path`](Self::try_lock_ambient_path) opens it.
    ///
    /// # Errors
    ///
    /// As [`lock_path`](Self::lock_path), plus [`ErrorKind::InvalidInput`] when `path` has no
    /// last component to lock.
    ///
    /// # Ambient Authority
    ///
    /// Opens the parent of `path` with the process's ambient authority.
    pub fn lock_ambient_path(
        path: impl AsRef<Path>,
        wait: Wait,
        ambient: AmbientAuthority,
    ) -> Result<StagingLock, Error> {
        let path = path.as_ref();
        let (handle, name, parent) = open_ambient_parent(path, Op::LockPath, ambient)?;
        Self::lock_path_shared(&handle, name, wait).map_err(|e| e.in_dir(parent))
    }

    /// Whether the file at `path` beneath `dir` is locked, and by whom where the OS can tell,
    /// without disturbing a holder: the file is opened read-only (never created) and asked
    /// with `fcntl(F_OFD_GETLK)`, which takes no lock; then closed.
    ///
    /// Holders are found as [`LockStatus`] explains: classic POSIX holders by process ID, OFD
    /// holders (stagelock's own, on Linux) through `/proc/locks` and `/proc/PID/fdinfo`. What
    /// the OS does not show (another user's processes without privilege) is an unknown holder.
    /// The answer is a snapshot: the lock may be taken or released right after.
    ///
    /// # Errors
    ///
    /// - [`ErrorKind::NotFound`]: a parent directory is missing (a missing file itself is
    ///   [`LockStatus::Missing`]).
    /// - [`ErrorKind::PermissionDenied`]: `path` escapes `dir`, or the file cannot be read.
    /// - [`ErrorKind::NotAFile`]: `path` names a directory, FIFO, socket, device or symlink.
    /// - [`ErrorKind::InvalidInput`]: `path` is empty, contains a NUL byte or is too long.
    ///
    /// # Examples
    ///
    /// ```
    /// use stagelock::{LockStatus, StagingLock};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let tmp = tempfile::tempdir()?;
    /// let dir = cap_std::fs::Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority())?;
    /// assert_eq!(StagingLock::status(&dir, "x.lock")?, LockStatus::Missing);
    /// let lock = StagingLock::try_lock_path(&dir, "x.lock")?;
    /// match StagingLock::status(&dir, "x.lock")? {
    ///     LockStatus::Held(holders) => {
    ///         # #[cfg(target_os = "linux")]
    ///         assert_eq!(holders[0].pid, Some(std::process::id()));
    ///     }
    ///     other => panic!("{other:?}"),
    /// }
    /// drop(lock); // leaves the file, unlocked
    /// assert_eq!(StagingLock::status(&dir, "x.lock")?, LockStatus::Free);
    /// # Ok(()) }
    /// ```
    pub fn status(dir: &Dir, path: impl AsRef<Path>) -> Result<LockStatus, Error> {
        let path = path.as_ref();
        crate::status::status_at(&*share(dir, Op::Status, path)?, path)
    }

    /// [`status`](Self::status) of the ambient path `path`.
    ///
    /// # Errors
    ///
    /// As [`status`](Self::status), plus [`ErrorKind::InvalidInput`] when `path` has no last
    /// component.
    ///
    /// # Ambient Authority
    ///
    /// Opens the parent of `path` with the process's ambient authority.
    pub fn status_ambient_path(
        path: impl AsRef<Path>,
        ambient: AmbientAuthority,
    ) -> Result<LockStatus, Error> {
        let path = path.as_ref();
        let (handle, name, parent) = open_ambient_parent(path, Op::Status, ambient)?;
        crate::status::status_at(&handle, name).map_err(|e| e.in_dir(parent))
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
    /// The file is deleted by its path. Cooperating holders only delete lock files they hold,
    /// so the path still names our file; code that renames lock files behind their holders'
    /// backs can make this delete the file now at that path.
    pub fn unlock_and_delete(self) -> Result<(), Error> {
        let StagingLock { file, dir, path } = self;
        let removed = sys::remove_beneath(&dir, &path);
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
    /// descriptor but not the lock, which ends with this process.
    pub fn set_inheritable(&self, inherit: bool) -> Result<(), Error> {
        sys::set_inheritable(self.file.file(), inherit)
            .map_err(|e| Error::io_as(ErrorKind::Other, Op::SetInheritable, &self.path, e))
    }

    /// [`create_and_lock`](Self::create_and_lock) in a directory handle shared with other locks.
    pub(crate) fn create_and_lock_shared(
        dir: &SharedDir,
        pattern: &str,
    ) -> Result<(StagingLock, String), Error> {
        let pat = Pattern::parse(pattern).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                Op::CreateAndLock,
                pattern,
                e.message(),
            )
        })?;
        let mut name = String::with_capacity(pattern.len() + 10);
        let held = retry(LOCK_ATTEMPTS, || {
            let file = create_new(dir, pat, &mut name)?;
            Ok(
                match lock_verified(dir, Path::new(&name), file, Op::CreateAndLock)? {
                    Verified::Held(file) => Some(file),
                    // Someone locked our new file first: it is theirs now. Or a recoverer
                    // deleted it between our create and our lock (released): make another.
                    Verified::Busy | Verified::Replaced => None,
                },
            )
        })?;
        match held {
            Some(file) => {
                let lock = StagingLock {
                    file,
                    dir: dir.clone(),
                    path: PathBuf::from(&name),
                };
                Ok((lock, name))
            }
            None => Err(Error::new(
                ErrorKind::Other,
                Op::CreateAndLock,
                name,
                format!(
                    "gave up after {LOCK_ATTEMPTS} attempts: each new file was locked by someone \
                     else first (the path is the last file tried)"
                ),
            )),
        }
    }

    /// [`try_lock_path`](Self::try_lock_path) in a directory handle shared with other locks.
    pub(crate) fn try_lock_path_shared(dir: &SharedDir, path: &Path) -> Result<StagingLock, Error> {
        Self::try_lock_at(dir, path, true, Op::TryLockPath)
    }

    /// [`lock_path`](Self::lock_path) in a directory handle shared with other locks.
    pub(crate) fn lock_path_shared(
        dir: &SharedDir,
        path: &Path,
        wait: Wait,
    ) -> Result<StagingLock, Error> {
        let mut waiting = LockWait::new(dir.clone(), path, wait);
        loop {
            match waiting.attempt()? {
                Attempt::Locked(lock) => return Ok(lock),
                Attempt::Retry(pause) => std::thread::sleep(pause),
            }
        }
    }

    /// Like [`try_lock_path_shared`](Self::try_lock_path_shared), but never creates the file: a
    /// missing one is [`ErrorKind::NotFound`]. For looking without touching (dry runs).
    pub(crate) fn try_lock_existing_shared(
        dir: &SharedDir,
        path: &Path,
    ) -> Result<StagingLock, Error> {
        Self::try_lock_at(dir, path, false, Op::TryLockPath)
    }

    pub(crate) fn try_lock_at(
        dir: &SharedDir,
        path: &Path,
        create: bool,
        op: Op,
    ) -> Result<StagingLock, Error> {
        check_path(path, op)?;
        let err = |e| Error::io(op, path, e);
        let how = if create {
            sys::Create::IfMissing
        } else {
            sys::Create::No
        };
        let mut raced_opens = 0;
        let held = retry(LOCK_ATTEMPTS, || {
            let file = match sys::open_beneath(dir, path, how, 0o644) {
                Ok(file) => file,
                // On a network filesystem the file may be deleted between the kernel's lookup
                // and its open: JuiceFS then says EPERM (the file is in its trash), or ENOENT
                // without a trash, even to O_CREAT. Open the path again; a lasting error (an
                // immutable file, a missing parent) is reported after a few tries.
                Err(e)
                    if raced_open(&e, create)
                        && !dir.local()
                        && raced_opens < RACED_OPEN_ATTEMPTS =>
                {
                    raced_opens += 1;
                    return Ok(None);
                }
                Err(e) => return Err(err(e)),
            };
            match lock_verified(dir, path, file, op)? {
                Verified::Held(file) => Ok(Some(file)),
                Verified::Busy => Err(Error::new(
                    ErrorKind::WouldBlock,
                    op,
                    path,
                    "held by another lock holder",
                )),
                // Its holder deleted the file after our open and released it before our lock:
                // open the path again (creating a fresh file).
                Verified::Replaced => Ok(None),
            }
        })?;
        match held {
            Some(file) => Ok(StagingLock {
                file,
                dir: dir.clone(),
                path: path.to_path_buf(),
            }),
            None => Err(Error::new(
                ErrorKind::Other,
                op,
                path,
                format!("gave up after {LOCK_ATTEMPTS} attempts: the file kept being replaced"),
            )),
        }
    }
}

/// A directory to take many staging locks in, through one shared handle.
///
/// [`StagingLock::create_and_lock`] and [`StagingLock::try_lock_path`] duplicate the directory
/// handle they are given, so each lock costs two descriptors. Locks taken through a `LockDir`
/// share its handle instead: one descriptor per held lock, and one syscall less per operation.
/// Cloning a `LockDir` is cheap (a reference count).
///
/// # Examples
///
/// ```
/// use stagelock::LockDir;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let tmp = tempfile::tempdir()?;
/// let locks = LockDir::open_ambient_dir(tmp.path(), cap_std::ambient_authority())?;
/// let held: Vec<_> = (0..100)
///     .map(|_| locks.create_and_lock("lock-").map(|(lock, _name)| lock))
///     .collect::<Result<_, _>>()?;
/// for lock in held {
///     lock.unlock_and_delete()?;
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct LockDir {
    dir: SharedDir,
}

impl LockDir {
    /// Takes `dir` over (no duplicate is made).
    ///
    /// Asks once (`fstatfs`) whether `dir` is on a local filesystem; see [`StagingLock`]'s
    /// notes on network filesystems. Make one `LockDir` and keep it, rather
    /// than one per lock.
    pub fn new(dir: Dir) -> Self {
        LockDir::from_shared(Arc::new(dir.into_std_file()))
    }

    /// Shares an open directory handle that others keep too (no duplicate is made); for hosts
    /// that already hold one, such as a WASI directory descriptor's `Arc<File>`.
    ///
    /// Paths are resolved beneath `dir` exactly as beneath a [`Dir`]. A handle that is not a
    /// directory is not refused here: every operation on it then fails with
    /// [`ErrorKind::NotFound`]. Like [`new`](Self::new), it asks the filesystem once.
    pub fn from_shared(dir: Arc<fs::File>) -> Self {
        LockDir {
            dir: SharedDir::new(dir),
        }
    }

    /// The shared handle.
    pub(crate) fn shared(&self) -> &SharedDir {
        &self.dir
    }

    /// Opens the directory at the ambient path `dir`.
    ///
    /// # Errors
    ///
    /// As [`Dir::open_ambient_dir`], classified into an [`ErrorKind`].
    ///
    /// # Ambient Authority
    ///
    /// Opens `dir` with the process's ambient authority; everything after is beneath it.
    pub fn open_ambient_dir(
        dir: impl AsRef<Path>,
        ambient: AmbientAuthority,
    ) -> Result<Self, Error> {
        let dir = dir.as_ref();
        Ok(LockDir {
            dir: open_ambient_dir(dir, Op::CreateAndLock, dir, ambient)?,
        })
    }

    /// [`StagingLock::create_and_lock`] in this directory, sharing its handle.
    pub fn create_and_lock(&self, pattern: &str) -> Result<(StagingLock, String), Error> {
        StagingLock::create_and_lock_shared(&self.dir, pattern)
    }

    /// [`StagingLock::try_lock_path`] beneath this directory, sharing its handle.
    pub fn try_lock_path(&self, path: impl AsRef<Path>) -> Result<StagingLock, Error> {
        StagingLock::try_lock_path_shared(&self.dir, path.as_ref())
    }

    /// [`StagingLock::lock_path`] beneath this directory, sharing its handle: waits as `wait`
    /// says for a lock someone else holds.
    ///
    /// # Errors
    ///
    /// As [`StagingLock::lock_path`]: [`ErrorKind::WouldBlock`] when the wait ran out.
    pub fn lock_path(&self, path: impl AsRef<Path>, wait: Wait) -> Result<StagingLock, Error> {
        StagingLock::lock_path_shared(&self.dir, path.as_ref(), wait)
    }

    /// Starts waiting for the lock on `path` beneath this directory, for a caller that does its
    /// own pausing between attempts (an async runtime, an event loop); see [`LockWait`]. Nothing
    /// is tried yet; a [`Wait::For`] limit counts from now.
    pub fn start_wait(&self, path: impl AsRef<Path>, wait: Wait) -> LockWait {
        LockWait::new(self.dir.clone(), path.as_ref(), wait)
    }

    /// [`StagingLock::status`] beneath this directory: whether `path` is locked, and by whom.
    ///
    /// # Errors
    ///
    /// As [`StagingLock::status`].
    pub fn status(&self, path: impl AsRef<Path>) -> Result<LockStatus, Error> {
        crate::status::status_at(&self.dir, path.as_ref())
    }
}

/// A shared handle to `dir` (one `dup`).
fn share(dir: &Dir, op: Op, path: &Path) -> Result<SharedDir, Error> {
    let dup = dir.try_clone().map_err(|e| Error::io(op, path, e))?;
    Ok(SharedDir::new(Arc::new(dup.into_std_file())))
}

/// Opens the ambient directory `dir` for `op` on `shown` (the path errors name).
fn open_ambient_dir(
    dir: &Path,
    op: Op,
    shown: &Path,
    ambient: AmbientAuthority,
) -> Result<SharedDir, Error> {
    let handle = Dir::open_ambient_dir(dir, ambient).map_err(|e| Error::io(op, shown, e))?;
    Ok(SharedDir::new(Arc::new(handle.into_std_file())))
}

/// Opens the parent directory of the ambient path `path` for `op`; returns it, the last
/// component (to lock beneath it) and the parent as given (to prefix error paths with).
fn open_ambient_parent(
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
    let handle = open_ambient_dir(opened, op, path, ambient)?;
    Ok((handle, Path::new(name), parent))
}

/// Creates a file with a fresh name from `pattern` (left in `name`), retrying on collisions.
fn create_new(dir: &fs::File, pattern: Pattern<'_>, name: &mut String) -> Result<fs::File, Error> {
    let created = retry(NAME_ATTEMPTS, || {
        pattern.write_name(fastrand::u32(..), name);
        match sys::open_beneath(dir, Path::new(name.as_str()), sys::Create::New, 0o600) {
            Ok(file) => Ok(Some(file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(Error::io(Op::CreateAndLock, name.as_str(), e)),
        }
    })?;
    created.ok_or_else(|| {
        Error::new(
            ErrorKind::Other,
            Op::CreateAndLock,
            name.as_str(),
            format!(
                "gave up after {NAME_ATTEMPTS} names that all existed (the path is the last one)"
            ),
        )
    })
}

/// What [`lock_verified`] came to.
enum Verified {
    /// Locked, and the path still names the locked file.
    Held(LockedFile),
    /// Another holder has the lock (the file is closed, or parked by the fallback's registry).
    Busy,
    /// Locked, but the path no longer names the file: it was deleted (and maybe made anew)
    /// between our open and our lock. The lock is already released.
    Replaced,
}

/// The one lock-then-verify routine of create-and-lock and try-lock-path: locks `file`, just
/// opened at `path` beneath `dir`, refuses it if it is not a regular file, and checks that
/// `path` still names it.
///
/// Lock first, look after: a busy path then costs no more than open + fcntl + close. (A FIFO or
/// device is locked for an instant before being refused; locks are advisory and it is never
/// read or written.)
fn lock_verified(dir: &SharedDir, path: &Path, file: fs::File, op: Op) -> Result<Verified, Error> {
    let err = |e| Error::io(op, path, e);
    #[cfg(test)]
    hooks::before_lock(dir, path);
    // A file we hold open that is "not found" was deleted: some network filesystems (JuiceFS
    // without its trash) forget a file another client deleted, open or not.
    let locked = match sys::try_lock(file) {
        Ok(Some(locked)) => locked,
        Ok(None) => return Ok(Verified::Busy),
        Err(e) if gone(&e) => return Ok(Verified::Replaced),
        Err(e) => return Err(err(e)),
    };
    let stat = match sys::stat_fd(locked.file()) {
        Ok(stat) => stat,
        Err(e) if gone(&e) => return Ok(Verified::Replaced),
        Err(e) => return Err(err(e)),
    };
    if stat.kind != sys::FileKind::Regular {
        return Err(Error::new(
            ErrorKind::NotAFile,
            op,
            path,
            format!("is a {}, not a regular file", stat.kind.name()),
        ));
    }
    Ok(if still_names(dir, path, &stat).map_err(err)? {
        Verified::Held(locked)
    } else {
        Verified::Replaced
    })
}

/// Whether an `open` of a lock path (creating it if `create`) may have failed only because the
/// file was deleted during the open, on a filesystem that is not local.
fn raced_open(e: &io::Error, create: bool) -> bool {
    match e.raw_os_error() {
        Some(libc::EPERM) => true,
        Some(libc::ENOENT) => create,
        _ => false,
    }
}

/// Whether an error about a file we hold open says that the file no longer exists.
fn gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
}

/// Refuses paths that can never name a lock file, before touching the filesystem.
pub(crate) fn check_path(path: &Path, op: Op) -> Result<(), Error> {
    let refuse = |why| Err(Error::new(ErrorKind::InvalidInput, op, path, why));
    let bytes = path.as_os_str().as_encoded_bytes();
    if bytes.is_empty() {
        return refuse("path is empty");
    }
    if bytes.contains(&0) {
        return refuse("path contains a NUL byte");
    }
    Ok(())
}

/// Whether `path` beneath `dir` still names the locked file described by `stat`, that is, it
/// was not deleted (and maybe re-created) between our open and our lock.
///
/// Lock files are created, locked and deleted, never renamed or linked, so a file with no name
/// was deleted, and, where link counts are current (local filesystems), a file with exactly one
/// name, opened by a plain name in `dir`, still has that name: the common case costs no syscall
/// beyond the `fstat` after locking. Anything else gets the full check: the path is looked up
/// again and compared by device and inode. That covers a hard-linked file, a path through
/// subdirectories (which could have been renamed), and every file on a network or FUSE
/// filesystem, where a deleted file may keep its link (JuiceFS's trash).
fn still_names(dir: &SharedDir, path: &Path, stat: &sys::FileStat) -> io::Result<bool> {
    match stat.nlink {
        0 => Ok(false),
        1 if dir.local() && sys::single_name(path) => Ok(true),
        _ => match sys::stat_at(dir, path) {
            Ok(id) => Ok(id == stat.id),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        },
    }
}

/// Test-only interleaving points, to make races deterministic.
#[cfg(test)]
pub(crate) mod hooks {
    use std::cell::RefCell;
    use std::fs;
    use std::path::Path;

    type Hook = Box<dyn FnMut(&fs::File, &Path)>;

    thread_local! {
        static BEFORE_LOCK: RefCell<Option<Hook>> = const { RefCell::new(None) };
    }

    /// Runs `hook` on this thread between every open and lock until the guard is dropped.
    pub(crate) fn set_before_lock(hook: impl FnMut(&fs::File, &Path) + 'static) -> Guard {
        BEFORE_LOCK.with(|h| *h.borrow_mut() = Some(Box::new(hook)));
        Guard
    }

    pub(crate) struct Guard;

    impl Drop for Guard {
        fn drop(&mut self) {
            BEFORE_LOCK.with(|h| *h.borrow_mut() = None);
        }
    }

    pub(super) fn before_lock(dir: &fs::File, path: &Path) {
        // Taken out while it runs, so a hook may itself take locks.
        if let Some(mut hook) = BEFORE_LOCK.with(|h| h.borrow_mut().take()) {
            hook(dir, path);
            BEFORE_LOCK.with(|h| {
                h.borrow_mut().get_or_insert(hook);
            });
        }
    }
}

#[cfg(test)]
mod tests {
    //! The create/unlink race of the Go original, made deterministic: between our open and our
    //! lock, a "recoverer" (another open file description, as another process would have) locks
    //! the file, deletes it and releases it.
    use super::*;
    use cap_primitives::fs::{OpenOptions, OpenOptionsExt as _};
    use std::cell::Cell;
    use std::os::unix::fs::MetadataExt;
    use std::rc::Rc;

    /// What a recoverer does to a lock file it finds unlocked: lock, delete, release.
    fn recover(dir: &fs::File, path: &Path) {
        let mut options = OpenOptions::new();
        options.read(true).write(true);
        let file = cap_primitives::fs::open(dir, path, &options).unwrap();
        let locked = sys::try_lock(file)
            .unwrap()
            .expect("the new file is not locked yet");
        cap_primitives::fs::remove_file(dir, path).unwrap();
        drop(locked);
    }

    fn scratch() -> (tempfile::TempDir, SharedDir) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).unwrap();
        (tmp, SharedDir::new(Arc::new(dir.into_std_file())))
    }

    /// Runs `recover` at the first open-to-lock window only; counts the windows seen.
    fn recover_once() -> (Rc<Cell<u32>>, hooks::Guard) {
        let windows = Rc::new(Cell::new(0));
        let seen = Rc::clone(&windows);
        let guard = hooks::set_before_lock(move |dir, path| {
            seen.set(seen.get() + 1);
            if seen.get() == 1 {
                recover(dir, path);
            }
        });
        (windows, guard)
    }

    #[test]
    fn create_and_lock_retries_when_the_new_file_was_deleted_before_the_lock() {
        let (tmp, dir) = scratch();
        let (windows, _guard) = recover_once();
        let (lock, name) = StagingLock::create_and_lock_shared(&dir, "lock-").unwrap();
        assert_eq!(windows.get(), 2, "a second file was made");
        // What we hold is the file the name points to, not a deleted inode.
        let on_disk = std::fs::metadata(tmp.path().join(&name)).unwrap();
        let held = lock.file.file().metadata().unwrap();
        assert_eq!((on_disk.dev(), on_disk.ino()), (held.dev(), held.ino()));
        assert!(held.nlink() > 0);
        lock.unlock_and_delete().unwrap();
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn try_lock_path_reopens_when_the_file_was_deleted_before_the_lock() {
        let (tmp, dir) = scratch();
        let (windows, _guard) = recover_once();
        let lock = StagingLock::try_lock_path_shared(&dir, Path::new("p.lock")).unwrap();
        assert_eq!(windows.get(), 2, "the path was opened again");
        let on_disk = std::fs::metadata(tmp.path().join("p.lock")).unwrap();
        let held = lock.file.file().metadata().unwrap();
        assert_eq!((on_disk.dev(), on_disk.ino()), (held.dev(), held.ino()));
        lock.unlock_and_delete().unwrap();
    }

    #[test]
    fn without_the_check_the_race_would_hand_out_a_lock_on_a_deleted_file() {
        // Guards the test above against passing vacuously: the interleaving really does leave
        // the first lock on an unlinked inode.
        let (_tmp, dir) = scratch();
        let mut options = OpenOptions::new();
        options.read(true).write(true).create_new(true).mode(0o600);
        let file = cap_primitives::fs::open(&dir, Path::new("x"), &options).unwrap();
        recover(&dir, Path::new("x"));
        let locked = sys::try_lock(file)
            .unwrap()
            .expect("lock on the deleted inode succeeds");
        assert_eq!(locked.file().metadata().unwrap().nlink(), 0);
        let stat = sys::stat_fd(locked.file()).unwrap();
        assert!(!still_names(&dir, Path::new("x"), &stat).unwrap());
    }

    /// The race across two hosts, on the two JuiceFS mounts of `scripts/multihost.sh` (skipped
    /// without them): B opens the lock file; through A, the file is deleted, made anew and
    /// locked; B locks the old file. JuiceFS keeps the deleted file in its trash with one link,
    /// so only looking the path up again shows that B holds a deleted file: B must be refused,
    /// not handed a second lock on a path A holds.
    #[test]
    fn multihost_a_file_deleted_through_another_mount_is_not_held() {
        let var = |name| std::env::var_os(name).map(std::path::PathBuf::from);
        let (Some(a), Some(b)) = (var("STAGELOCK_MULTIHOST_A"), var("STAGELOCK_MULTIHOST_B"))
        else {
            println!("skipped: run scripts/multihost.sh");
            return;
        };
        let rel = format!("unit-race-{}", std::process::id());
        std::fs::create_dir(a.join(&rel)).unwrap();
        let open = |mount: &Path| {
            let dir = Dir::open_ambient_dir(mount.join(&rel), cap_std::ambient_authority());
            SharedDir::new(Arc::new(dir.unwrap().into_std_file()))
        };
        let (dir_a, dir_b) = (open(&a), open(&b));
        assert!(
            !dir_b.local(),
            "a FUSE mount must not count as a local filesystem"
        );
        // The premise: a file deleted through A keeps one link in JuiceFS's trash, seen
        // through B too; without a trash (`STAGELOCK_MULTIHOST_TRASH=0`), B cannot even `fstat`
        // it any more.
        let (on_a, on_b) = (a.join(&rel).join("premise"), b.join(&rel).join("premise"));
        std::fs::write(&on_a, "").unwrap();
        let opened_on_b = std::fs::File::open(&on_b).unwrap();
        std::fs::remove_file(&on_a).unwrap();
        assert!(!on_b.exists(), "B still sees the deleted file's name");
        let seen = opened_on_b
            .metadata()
            .map(|m| m.nlink())
            .map_err(|e| e.kind());
        if std::env::var_os("STAGELOCK_MULTIHOST_TRASH").is_some_and(|t| t == "0") {
            assert_eq!(seen, Err(io::ErrorKind::NotFound), "without a trash");
        } else {
            assert_eq!(
                seen,
                Ok(1),
                "a deleted file lost its link: is JuiceFS's trash off?"
            );
        }
        drop(opened_on_b);

        let path = Path::new("x.lock");
        std::fs::write(a.join(&rel).join(path), "").unwrap();
        let held_by_a = Rc::new(Cell::new(None));
        let (held, on_a) = (Rc::clone(&held_by_a), dir_a.clone());
        let windows = Rc::new(Cell::new(0));
        let seen = Rc::clone(&windows);
        let guard = hooks::set_before_lock(move |_dir, path| {
            seen.set(seen.get() + 1);
            if seen.get() == 1 {
                cap_primitives::fs::remove_file(&on_a, path).unwrap();
                held.set(Some(
                    StagingLock::try_lock_path_shared(&on_a, path).unwrap(),
                ));
            }
        });
        let got = StagingLock::try_lock_path_shared(&dir_b, path);
        drop(guard);
        let lock_a = held_by_a.take().expect("A took the new file");
        let err = got.expect_err("B was handed a lock on x.lock while A holds it");
        assert_eq!(err.kind(), ErrorKind::WouldBlock, "{err}");
        assert_eq!(windows.get(), 2, "B opened the path again");
        lock_a.unlock_and_delete().unwrap();
        std::fs::remove_dir(a.join(&rel)).unwrap();
    }

    #[test]
    fn verify_sees_another_holder_of_a_lock_we_lost_in_place() {
        // A lock lost without its file changing (a close elsewhere under classic locks, a
        // network filesystem expiring it) is seen through F_OFD_GETLK / F_GETLK, here with a
        // POSIX `fcntl` lock taken by another process (Python's `lockf`).
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};
        let (tmp, dir) = scratch();
        let lock = StagingLock::try_lock_path_shared(&dir, Path::new("x.lock")).unwrap();
        lock.verify().unwrap();
        sys::drop_lock_keeping_file(lock.file.file()).unwrap();
        lock.verify().unwrap(); // lost, but no one else holds it: nothing to see yet
        let mut other = Command::new("python3")
            .args([
                "-c",
                "import fcntl, sys\n\
                 f = open(sys.argv[1], 'a')\n\
                 fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\n\
                 print('held', flush=True)\n\
                 sys.stdin.read()",
            ])
            .arg(tmp.path().join("x.lock"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(other.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(
            line, "held\n",
            "our lock is gone, so another process gets it"
        );
        let err = lock.verify().unwrap_err();
        drop(other.stdin.take());
        other.wait().unwrap();
        assert_eq!(err.kind(), ErrorKind::LockLost, "{err}");
        assert_eq!(
            err.to_string(),
            "verify \"x.lock\": lock lost: another holder has a lock on the file"
        );
    }

    #[test]
    fn a_hard_linked_lock_file_gets_the_full_path_check() {
        let (tmp, dir) = scratch();
        let at = |name: &str| tmp.path().join(name);
        std::fs::write(at("x"), "").unwrap();
        std::fs::hard_link(at("x"), at("y")).unwrap();
        let opened = std::fs::File::open(at("x")).unwrap();
        let stat = sys::stat_fd(&opened).unwrap();
        assert_eq!(stat.nlink, 2);
        assert!(
            still_names(&dir, Path::new("x"), &stat).unwrap(),
            "x still names it"
        );
        // x is deleted and made anew while our file lives on under y.
        std::fs::remove_file(at("x")).unwrap();
        std::fs::hard_link(at("y"), at("z")).unwrap();
        std::fs::write(at("x"), "").unwrap();
        let stat = sys::stat_fd(&opened).unwrap();
        assert_eq!(stat.nlink, 2);
        assert!(
            !still_names(&dir, Path::new("x"), &stat).unwrap(),
            "x names another file"
        );
    }
}
