//! What a wait does with the lock file it keeps open between tries (events on Linux only):
//! tries it again ([`LockDir::relock_kept`]), makes the lock of it, or moves to the file now at
//! its path by looking before trying ([`LockDir::open_if_held`]).

use std::fs;
use std::path::Path;
use std::sync::Arc;

use super::{LockDir, open_lock_file, still_names};
use crate::dir::check_path;
use crate::error::{Error, Op};
use crate::faults::Protection;
use crate::lock::{StagingLock, gone};
use crate::sys;

impl LockDir {
    /// For a wait moving to the file now at `path` (the one it kept was deleted): opens it
    /// (creating it if missing) and returns it if someone holds it, having only asked
    /// (`F_OFD_GETLK`), not tried; `None` if it is free or not a regular file, for
    /// [`acquire_or_keep`](Self::acquire_or_keep) to try (and report what is wrong).
    pub(crate) fn open_if_held(&self, path: &Path, op: Op) -> Result<Option<fs::File>, Error> {
        check_path(path, op)?;
        let err = |e| Error::io(op, path, e);
        let file = match open_lock_file(&self.dir, path, sys::Create::IfMissing, 0o644) {
            Ok(file) => file,
            Err(_) => return Ok(None),
        };
        let regular = sys::stat_fd(&file).is_ok_and(|s| s.kind == sys::FileKind::Regular);
        Ok((regular && sys::locked_by_other(&file).map_err(err)?).then_some(file))
    }

    /// Tries the lock again on `file`, kept open at `path` by an earlier
    /// [`acquire_or_keep`](Self::acquire_or_keep) of a wait (events on Linux only). Locked, the
    /// path must still name the file; busy, too, or the wait would keep watching a file that
    /// was deleted (and maybe made anew) while someone still held it: [`Kept::Replaced`] then
    /// says to open the path again.
    pub(crate) fn relock_kept(&self, path: &Path, file: &fs::File, op: Op) -> Result<Kept, Error> {
        let err = |e| Error::io(op, path, e);
        // Deleted since it was kept (unlock-and-delete): no lock to try on it.
        match sys::stat_fd(file) {
            Ok(stat) if stat.nlink == 0 => return Ok(Kept::Deleted),
            Ok(_) => {}
            Err(e) if gone(&e) => return Ok(Kept::Deleted),
            Err(e) => return Err(err(e)),
        }
        let tried = match sys::try_lock_keeping(file) {
            Ok(tried) => tried,
            Err(e) if gone(&e) => return Ok(Kept::Replaced),
            Err(e) => return Err(err(e)),
        };
        let stat = match sys::stat_fd(file) {
            Ok(stat) => stat,
            Err(e) if gone(&e) => return Ok(Kept::Replaced),
            Err(e) => return Err(err(e)),
        };
        if stat.kind != sys::FileKind::Regular {
            return Err(Error::not_regular(op, path, stat.kind));
        }
        if Protection::StillNames.on() && !still_names(&self.dir, path, file, &stat).map_err(err)? {
            // Ours or not, it has no name: closing it (which the caller does) releases it.
            return Ok(Kept::Replaced);
        }
        Ok(if tried { Kept::Locked } else { Kept::Busy })
    }

    /// Whether `file`, kept open at `path`, has lost its name there (deleted, or replaced by a
    /// rename) as far as one look can tell: for a wait that has just set its watch, since such
    /// a change made its event before the watch could see it. A failed look says yes: the
    /// caller tries at once, and [`relock_kept`](Self::relock_kept) reports what is wrong.
    pub(crate) fn kept_has_no_name(&self, path: &Path, file: &fs::File) -> bool {
        match sys::stat_fd(file) {
            Ok(stat) if stat.nlink > 0 => {
                Protection::StillNames.on()
                    && !still_names(&self.dir, path, file, &stat).unwrap_or(false)
            }
            _ => true,
        }
    }

    /// The lock of `file`, kept open at `path` and locked by [`relock_kept`](Self::relock_kept).
    pub(crate) fn kept_lock(
        &self,
        path: &Path,
        file: fs::File,
        op: Op,
    ) -> Result<StagingLock, Error> {
        let locked = sys::kept_locked(file).map_err(|e| Error::io(op, path, e))?;
        Ok(StagingLock::new(
            locked,
            Arc::clone(&self.dir),
            path.to_path_buf(),
        ))
    }
}

/// What [`LockDir::relock_kept`] came to.
pub(crate) enum Kept {
    /// The lock is ours, on the kept file: [`LockDir::kept_lock`] makes it a `StagingLock`.
    Locked,
    /// Still held by someone else: keep the file for the next try.
    Busy,
    /// The path no longer names the kept file: close it and open the path again.
    Replaced,
    /// The kept file was deleted: as [`Kept::Replaced`], but found before trying the lock.
    Deleted,
}
