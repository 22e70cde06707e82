//! [`StagingLock`]'s entry points on a borrowed [`Dir`] or an ambient path: each makes a
//! [`LockDir`] of its own (one `dup` of the `&Dir`, or the opened parent directory) and calls
//! the same operation on it, so there is one implementation of each, in `lock_dir.rs`.

use std::fs;
use std::path::Path;

use cap_std::AmbientAuthority;
use cap_std::fs::Dir;
use cap_std::io_lifetimes::AsFilelike;

use crate::dir;
#[cfg(doc)]
use crate::error::ErrorKind;
use crate::error::{Error, Op};
use crate::lock::StagingLock;
use crate::lock_dir::LockDir;
use crate::status::{LockStatus, status_at};
use crate::wait::Wait;

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
    /// the check is one `statx` after locking: lock files are never renamed, so one link means
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
    ///   long; on Windows also `\`, a `:` (a stream), or a pattern any of whose names would be
    ///   a reserved device (`COM*` makes `COM1`) or end in a dot or space.
    /// - [`ErrorKind::PermissionDenied`]: the directory is not writable; on Windows also a
    ///   drive-prefixed pattern (`C:x-*`), an escape.
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
        on_dup(dir, Op::CreateAndLock, Path::new(pattern))?.create_and_lock(pattern)
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
    /// # Platform Notes
    ///
    /// Path forms are host-dependent. On Windows, before anything is opened, a drive
    /// (`C:x.lock`, `C:\x.lock`), a rooted, UNC, device or NT-namespace path (`\\?\C:\x`,
    /// `\\server\share\x`, `\??\C:\x`) is refused as an escape ([`ErrorKind::PermissionDenied`]);
    /// a `:` elsewhere (an alternate data stream, `x.lock:stream`), a reserved device name in
    /// any component (`CON`, `NUL.lock`, `COM1`, `LPT1`, any case) and a name ending in a dot
    /// or space (`x.lock.`) as [`ErrorKind::InvalidInput`]. On Unix every one of these is an
    /// ordinary name beneath `dir`.
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
        on_dup(dir, Op::TryLockPath, path)?.try_lock_path(path)
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
        let handle = dir::open_ambient(dir, Op::CreateAndLock, dir, ambient)?;
        LockDir::from_shared(handle)
            .create_and_lock(pattern)
            .map_err(|e| e.in_dir(dir))
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
        let (handle, name, parent) = dir::open_ambient_parent(path, Op::TryLockPath, ambient)?;
        LockDir::from_shared(handle)
            .try_lock_path(name)
            .map_err(|e| e.in_dir(parent))
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
        on_dup(dir, Op::LockPath, path)?.lock_path(path, wait)
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
        let (handle, name, parent) = dir::open_ambient_parent(path, Op::LockPath, ambient)?;
        LockDir::from_shared(handle)
            .lock_path(name, wait)
            .map_err(|e| e.in_dir(parent))
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
        status_at(&dir.as_filelike_view::<fs::File>(), path)
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
        let (handle, name, parent) = dir::open_ambient_parent(path, Op::Status, ambient)?;
        status_at(&handle, name).map_err(|e| e.in_dir(parent))
    }
}

/// A [`LockDir`] on a handle of its own to `dir` (one `dup`), so that the lock can outlive the
/// borrow; for `op` on `path` (named if it fails).
fn on_dup(dir: &Dir, op: Op, path: &Path) -> Result<LockDir, Error> {
    Ok(LockDir::from_shared(dir::share(dir, op, path)?))
}
