//! Committing a stage: moving the finished resource into place while its lock is held, how
//! durably ([`Durability`]), and how, on filesystems that have `renameat2`'s flags and on those
//! that do not. A failed commit says how far it got ([`CommitError`]).
//!
//! With the flags (Linux on ext4, xfs, btrfs, tmpfs, ...), a commit is one
//! `renameat2(RENAME_NOREPLACE)`, and a replacing commit one `renameat2(RENAME_EXCHANGE)`.
//! Without them (`EINVAL` from FUSE filesystems such as bindfs and LazyFS, `ENOSYS` or
//! `EOPNOTSUPP` elsewhere, and every Unix but Linux), the same guarantees come from plain
//! `rename(2)` steps, ordered so that a crash between any two of them loses nothing: see
//! [`Stage::commit_replacing`](crate::Stage::commit_replacing) for each crash state.

use std::fmt;
use std::fs::File;
use std::io;
use std::path::{Component, Path, PathBuf};

mod place;

use place::{Moved, Placed, Places, place, sync_parents};

use cap_primitives::fs::FollowSymlinks;
use cap_std::fs::Dir;
use cap_std::io_lifetimes::AsFilelike;

use crate::area::{STAGE_RESOURCE, Stage};
use crate::error::{Error, ErrorKind, Op};
use crate::faults::Protection;
use crate::sys;
#[cfg(doc)]
use crate::{area::StagingArea, lock::StagingLock};

/// Whether a commit waits until the result is on disk.
///
/// The default, [`Full`](Self::Full), is what a staging area is for: after a commit returns, the
/// result survives a power cut or a kernel crash. [`None`](Self::None) is for results that are
/// cheap to rebuild.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Durability {
    /// Before the rename, `fsync` every regular file and every directory of the resource; after
    /// it, `fsync` the directories the resource left and entered. A power cut after the commit
    /// returns finds every committed byte.
    ///
    /// # Cost
    ///
    /// One `fsync` per file and directory (after starting every file's writeback at once on
    /// Linux), each waiting for the disk: milliseconds where a bare rename takes microseconds
    /// (BENCHMARKS.md has the figures). `syncfs` would be cheaper on a local disk and is not
    /// used: it does not reach FUSE filesystems (on LazyFS every trial lost its data) and it
    /// waits for every other writer of the filesystem.
    #[default]
    Full,
    /// Rename only. The result is in place at once for every reader, but after a power cut
    /// its files may be empty or missing (on ext4 with `data=ordered`, often fine; on LazyFS or
    /// with delayed allocation, data written just before is lost).
    None,
}

/// How [`Stage::commit_with`](crate::Stage::commit_with) commits.
///
/// The default: do not replace an existing destination, [`Durability::Full`].
///
/// # Examples
///
/// ```
/// use stagelock::{CommitOptions, Durability};
/// let fast_replace = CommitOptions::new().replace(true).durability(Durability::None);
/// assert!(fast_replace.replaces());
/// assert_eq!(CommitOptions::default().durability_level(), Durability::Full);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct CommitOptions {
    replace: bool,
    durability: Durability,
}

impl CommitOptions {
    /// The defaults: no replacing, [`Durability::Full`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether an existing destination is replaced (as
    /// [`Stage::commit_replacing`](crate::Stage::commit_replacing)) instead of refused.
    pub fn replace(mut self, replace: bool) -> Self {
        self.replace = replace;
        self
    }

    /// How durable the commit is.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Whether these options replace an existing destination.
    pub fn replaces(&self) -> bool {
        self.replace
    }

    /// The durability these options ask for.
    pub fn durability_level(&self) -> Durability {
        self.durability
    }
}

// A failed commit hands the stage back by value (as tempfile's `PersistError` hands back the
// file): the error is large on purpose.
#[allow(clippy::result_large_err)]
impl Stage {
    /// Moves the resource to `dest` beneath `dest_dir` while still holding the lock, durably
    /// ([`Durability::Full`]), then unlock-and-deletes. Refuses to overwrite an existing `dest`.
    ///
    /// The same as [`commit_with`](Self::commit_with) with the default [`CommitOptions`].
    ///
    /// # Errors
    ///
    /// On failure the stage is handed back in the [`CommitError`], still locked, to retry or
    /// abort, except for [`ErrorKind::LockLost`]. [`ErrorKind::AlreadyExists`] if `dest`
    /// exists; [`ErrorKind::NotFound`] if its parent does not; [`ErrorKind::PermissionDenied`]
    /// if `dest` escapes `dest_dir`; [`ErrorKind::InvalidInput`] if `dest` has no final name;
    /// [`ErrorKind::CrossDevice`] if it is on another filesystem (`EXDEV`);
    /// [`ErrorKind::Other`] if syncing failed (see [`commit_with`](Self::commit_with));
    /// on Windows [`ErrorKind::WouldBlock`] if something in the stage is still open (Windows
    /// can refuse to rename a directory then: close what you opened in it first).
    ///
    /// What is committed is the directory at the stage's [`path`](Self::path) when the commit
    /// begins: one its owner made anew there (`rm -rf "$DIR" && mkdir "$DIR"`) is committed
    /// like the first. If the owner removed it or put something else there, nothing moves and
    /// the stage is handed back, for [`abort`](Self::abort) to clean up:
    /// [`ErrorKind::NotFound`] if it is gone, [`ErrorKind::NotAFile`] for a file, a special
    /// file or a symbolic link (never followed), [`ErrorKind::PermissionDenied`] for a
    /// symbolic link leading out of the staging area.
    ///
    /// [`ErrorKind::LockLost`] if, right before the rename, [`StagingLock::verify`] finds the
    /// stage's lock is no longer ours (someone deleted its file, or locked a new file at its
    /// path): nothing is moved, no stage is handed back, the lock is released with its file
    /// kept and the resource is left in place for [`StagingArea::recover_stale`]. (A failure
    /// of the check itself is treated the same way, with its own kind.)
    pub fn commit(self, dest_dir: &Dir, dest: impl AsRef<Path>) -> Result<(), CommitError> {
        self.commit_with(dest_dir, dest, CommitOptions::new())
    }

    /// Like [`commit`](Self::commit), but replaces an existing `dest`: the old one is removed
    /// while the lock is held, once the result is in its place.
    ///
    /// The same as [`commit_with`](Self::commit_with) with
    /// [`CommitOptions::replace`]`(true)`.
    ///
    /// # Errors
    ///
    /// As [`commit`](Self::commit). If the old destination cannot be removed after the swap,
    /// the result is in place and no stage is handed back: the lock is released with its file
    /// kept, so [`StagingArea::recover_stale`] removes the old one later.
    ///
    /// # Crash safety
    ///
    /// Where the filesystem has `renameat2(RENAME_EXCHANGE)` (Linux on ext4, xfs, btrfs,
    /// tmpfs, ...) the new result and the old destination swap names in one step; a crash
    /// after it leaves the old one in the stage, where recovery removes it.
    ///
    /// Elsewhere (FUSE filesystems such as bindfs and LazyFS give `EINVAL`; other Unix systems
    /// have no such call) it takes four renames, so that the old destination and the new
    /// result always have a name outside the staging area until the new one is at `dest`.
    /// `NAME` is `dest`'s final name, `ID` the stage's [`id`](Self::id); the aside names are
    /// reserved by an exclusive `mkdir` and never overwrite anything. A crash:
    ///
    /// | after | what is where | what recovery does, what you do |
    /// |---|---|---|
    /// | 0. reserving an aside name (`mkdir`) | an empty directory `.NAME.stagelock-ID.new` beside `dest`; `dest` and the stage unchanged | recovery removes the stage (it was not committed); remove the empty directory |
    /// | 1. the new result went aside | the complete result at `.NAME.stagelock-ID.new`; old `dest` unchanged; the stage has no resource | recovery removes only the stage's lock file; rename `.new` to `dest` (after moving `dest` away) or remove it |
    /// | 2. the old `dest` went aside (an empty `.old` directory if the crash came between its `mkdir` and rename) | `dest` absent; the result at `.NAME.stagelock-ID.new`, the old one at `.NAME.stagelock-ID.old` | recovery removes only the lock file; rename `.new` to `dest` and remove `.old` (or rename `.old` back) |
    /// | 3. the new result is at `dest` | done, but the old one is still at `.NAME.stagelock-ID.old` | recovery removes only the lock file; remove `.old` |
    /// | 4. the old one is in the stage | done; the old one in the stage | recovery removes it |
    ///
    /// Recovery never touches the aside names (they are not in the staging area), so it never
    /// removes the old destination or a result that left the stage.
    ///
    /// # Platform Notes
    ///
    /// On every Unix; the single-step swap needs Linux and a filesystem with
    /// `RENAME_EXCHANGE`.
    pub fn commit_replacing(
        self,
        dest_dir: &Dir,
        dest: impl AsRef<Path>,
    ) -> Result<(), CommitError> {
        self.commit_with(dest_dir, dest, CommitOptions::new().replace(true))
    }

    /// Commits as `options` say: whether to replace an existing `dest`
    /// ([`CommitOptions::replace`]), and how durably ([`CommitOptions::durability`]).
    ///
    /// With [`Durability::Full`] (the default), every regular file and directory of the
    /// resource is `fsync`ed before the rename, and the directories it left and entered after
    /// it: once this returns `Ok`, a power cut loses nothing of the result. Symbolic links are
    /// never followed; FIFOs, sockets and devices are not opened.
    ///
    /// Where the filesystem has no `renameat2` flags (`EINVAL`, `ENOSYS`, `EOPNOTSUPP`: FUSE
    /// filesystems, network filesystems, Unix systems other than Linux), a non-replacing commit
    /// reserves `dest` with an exclusive `mkdir` and renames the resource over that empty
    /// placeholder, which POSIX `rename` replaces atomically; nothing existing is ever
    /// overwritten. A crash between the two leaves an **empty directory at `dest`** and the
    /// uncommitted stage, which recovery removes: remove the empty directory before committing
    /// again. Replacing commits: see [`commit_replacing`](Self::commit_replacing).
    ///
    /// # Errors
    ///
    /// As [`commit`](Self::commit). With [`Durability::Full`], a failed sync before the rename
    /// hands the stage back; a failed sync of the directories after it gives
    /// [`ErrorKind::Other`] ("committed, but syncing ... failed") with no stage: the result is
    /// in place but maybe not on disk. A replacing fallback that fails midway and cannot put
    /// the result back gives no stage and says in its message where the result is.
    ///
    /// # Examples
    ///
    /// ```
    /// use stagelock::{CommitOptions, Durability, StagingArea};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let tmp = tempfile::tempdir()?;
    /// # let root = cap_std::fs::Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority())?;
    /// root.create_dir("staging")?;
    /// let area = StagingArea::new(&root.open_dir("staging")?)?;
    /// let stage = area.stage()?;
    /// stage.dir().write("cache.bin", b"cheap to rebuild")?;
    /// let fast = CommitOptions::new().durability(Durability::None);
    /// stage.commit_with(&root, "cache", fast)?;
    /// assert_eq!(root.read("cache/cache.bin")?, b"cheap to rebuild");
    /// # Ok(()) }
    /// ```
    pub fn commit_with(
        mut self,
        dest_dir: &Dir,
        dest: impl AsRef<Path>,
        options: CommitOptions,
    ) -> Result<(), CommitError> {
        let dest = dest.as_ref();
        let dest_dir = dest_dir.as_filelike_view::<File>();
        match self.move_into_place(&dest_dir, dest, options) {
            Ok(()) => self
                .release()
                .map_err(|error| CommitError { error, stage: None }),
            Err(Moved::No(error)) => Err(CommitError {
                error,
                stage: Some(self),
            }),
            Err(Moved::LockLost(error)) => {
                // Nothing moved, and the stage may no longer be ours. Release the lock keeping
                // its file (the file at that path may be someone else's now) and leave the
                // resource where it is: recovery removes it once no one holds its lock.
                self.dir = None;
                self.lock = None;
                Err(CommitError { error, stage: None })
            }
            Err(Moved::ButNotSynced(error)) => {
                // In place and the stage is empty; only the sync failed.
                let _ = self.release();
                Err(CommitError { error, stage: None })
            }
            Err(Moved::ButOldRemains(error) | Moved::Aside(error)) => {
                // The result left the stage; what is still there (the replaced destination) is
                // removed by recovery. Release the lock, keeping its file.
                self.dir = None;
                self.lock = None;
                Err(CommitError { error, stage: None })
            }
            #[cfg(test)]
            Err(Moved::Crashed) => {
                // As a dead process: the lock released with its file kept, nothing else done.
                self.dir = None;
                self.lock = None;
                Err(CommitError {
                    error: Error::new(ErrorKind::Other, Op::Commit, dest, "simulated crash"),
                    stage: None,
                })
            }
        }
    }

    fn move_into_place(
        &mut self,
        dest_dir: &File,
        dest: &Path,
        options: CommitOptions,
    ) -> Result<(), Moved> {
        let err = |e| Moved::No(Error::io(Op::Commit, dest, e));
        // Every component, not only the final name the rename checks: on Windows a drive,
        // UNC or device prefix, a stream or a reserved name anywhere in DEST is refused here.
        crate::dir::check_path(dest, Op::Commit).map_err(Moved::No)?;
        let Some(Component::Normal(name)) = dest.components().next_back() else {
            return Err(Moved::No(Error::new(
                ErrorKind::InvalidInput,
                Op::Commit,
                dest,
                "destination has no final name",
            )));
        };
        let name = Path::new(name);
        let opened_parent;
        let dest_parent = match dest.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(parent) => {
                opened_parent =
                    sys::again_if_escaped(dest_dir, parent, cap_primitives::fs::open_dir)
                        .map_err(err)?;
                &opened_parent
            }
            None => dest_dir,
        };
        let opened_src;
        let (src_parent, src_name): (&File, PathBuf) = match self.layout.stage_dir(&self.id) {
            None => (&self.root, self.path()),
            Some(stage_dir) => {
                opened_src = self.open_stage_dir(stage_dir, dest)?;
                (&opened_src, PathBuf::from(STAGE_RESOURCE))
            }
        };
        // What moves is what is at the resource's path now, which the owner may have removed or
        // replaced since the stage began: it must be a directory, opened again here so that the
        // sync reaches what is committed. On failure the stage keeps its handle, to hand back.
        self.dir = Some(self.resource_to_commit(src_parent, &src_name, dest)?);
        let durable = options.durability_level() == Durability::Full;
        if durable && Protection::SyncTree.on() {
            let resource = self.dir().as_filelike_view::<File>();
            sys::sync_tree(&resource).map_err(|e| {
                self.lost_or(
                    dest,
                    Error::new(
                        ErrorKind::of_io(&e),
                        Op::Commit,
                        dest,
                        format!("syncing the stage failed: {e}"),
                    ),
                )
            })?;
        }
        // The last moment the stage can still be left alone: is the lock still ours?
        if Protection::VerifyBeforeCommit.on() {
            self.lock()
                .verify()
                .map_err(|e| Moved::LockLost(lost_at_commit(dest, e)))?;
        }
        let places = Places {
            src_parent,
            src_name: &src_name,
            dest_parent,
            name,
            dest,
            id: &self.id,
        };
        // Where an open handle keeps a directory from being renamed (Windows, whose cap-std
        // handles do not share delete), the stage's own is closed for the rename and opened
        // again if nothing moved; elsewhere it stays open, so a stage that moved nothing is
        // always handed back, even if its resource vanished meanwhile.
        if sys::RENAME_NEEDS_DIR_CLOSED {
            self.dir = None;
        }
        let placed = match place(&places, options.replaces()) {
            Err(Moved::No(e)) if e.kind() == ErrorKind::CrossDevice => {
                return Err(self.reopened(Moved::No(Error::new(
                    ErrorKind::CrossDevice,
                    Op::Commit,
                    dest,
                    "destination is on another filesystem than the staging area",
                ))));
            }
            Err(no @ Moved::No(_)) => return Err(self.reopened(no)),
            other => other?,
        };
        let synced = if durable {
            sync_parents(&places)
        } else {
            Ok(())
        };
        if placed == Placed::Replaced {
            // The old destination now sits where the resource was; we still hold the lock.
            let old = self.path();
            sys::remove_all(&self.root, &old)
                .map_err(|e| Moved::ButOldRemains(Error::io(Op::Commit, &old, e)))?;
        }
        synced.map_err(Moved::ButNotSynced)
    }
}

impl Stage {
    /// Opens the directory the commit is about to move: `name` beneath `parent`, the
    /// resource's path. Its owner may have removed it, or put something else in its place;
    /// anything but a directory is refused before anything moves (putting a file or a symbolic
    /// link in place is not committing a stage), the stage handed back to abort:
    /// [`ErrorKind::NotFound`] if it is gone, [`ErrorKind::NotAFile`] for a file, a special
    /// file or a symbolic link (never followed), [`ErrorKind::PermissionDenied`] (an escape)
    /// for a symbolic link leading out of the staging area. Another directory made at the path
    /// (`rm -rf "$DIR" && mkdir "$DIR"`) is the resource now, and what is committed.
    fn resource_to_commit(&self, parent: &File, name: &Path, dest: &Path) -> Result<Dir, Moved> {
        let refused = |kind, why: String| {
            self.lost_or(
                dest,
                Error::new(
                    kind,
                    Op::Commit,
                    dest,
                    format!("the stage's resource {why}"),
                ),
            )
        };
        let meta = match cap_primitives::fs::stat(parent, name, FollowSymlinks::No) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(refused(ErrorKind::NotFound, format!("is gone: {e}")));
            }
            Err(e) => {
                return Err(refused(
                    ErrorKind::of_io(&e),
                    format!("cannot be looked at: {e}"),
                ));
            }
        };
        let kind = meta.file_type();
        if kind.is_symlink() {
            return Err(if self.leads_out() {
                refused(
                    ErrorKind::PermissionDenied,
                    "is a symbolic link leading out of the staging area".into(),
                )
            } else {
                refused(
                    ErrorKind::NotAFile,
                    "is a symbolic link (not followed), not a directory".into(),
                )
            });
        }
        if !kind.is_dir() {
            let what = if kind.is_file() {
                "regular file"
            } else {
                "special file"
            };
            return Err(refused(
                ErrorKind::NotAFile,
                format!("is a {what}, not a directory"),
            ));
        }
        match cap_primitives::fs::open_dir_nofollow(parent, name) {
            Ok(dir) => Ok(Dir::from_std_file(dir)),
            Err(e) => Err(refused(
                ErrorKind::of_io(&e),
                format!("cannot be opened: {e}"),
            )),
        }
    }

    /// Whether the symbolic link at the resource's path leads out of the staging area (cap-std
    /// refuses to follow it there, with no OS error behind the refusal).
    fn leads_out(&self) -> bool {
        match sys::again_if_escaped(&self.root, &self.path(), |d, p| {
            cap_primitives::fs::stat(d, p, FollowSymlinks::Yes)
        }) {
            Err(e) => e.kind() == io::ErrorKind::PermissionDenied && e.raw_os_error().is_none(),
            Ok(_) => false,
        }
    }

    /// A commit that moved nothing hands the stage back with its resource handle: still open,
    /// or (where it was closed for the rename) opened again. Should that fail (something other
    /// than a directory was put at its path during the rename), the stage cannot be handed
    /// back: it is left for recovery as with a lost lock (released, its lock file kept).
    fn reopened(&mut self, failed: Moved) -> Moved {
        let Moved::No(error) = failed else {
            return failed;
        };
        if self.dir.is_some() {
            return Moved::No(error);
        }
        match sys::again_if_escaped(
            &self.root,
            &self.path(),
            cap_primitives::fs::open_dir_nofollow,
        ) {
            Ok(dir) => {
                self.dir = Some(Dir::from_std_file(dir));
                Moved::No(error)
            }
            Err(e) => Moved::LockLost(Error::new(
                error.kind(),
                Op::Commit,
                error.path().to_path_buf(),
                format!(
                    "{}; reopening the stage to hand it back failed ({e}): it is left for \
                     recovery",
                    error.why()
                ),
            )),
        }
    }

    /// Opens the per-directory stage's own directory to move its resource out of.
    fn open_stage_dir(&self, stage_dir: &Path, dest: &Path) -> Result<File, Moved> {
        sys::again_if_escaped(&self.root, stage_dir, cap_primitives::fs::open_dir).map_err(|e| {
            self.lost_or(
                dest,
                Error::new(
                    ErrorKind::of_io(&e),
                    Op::Commit,
                    dest,
                    format!("opening the stage directory {}: {e}", stage_dir.display()),
                ),
            )
        })
    }

    /// The error of a commit step that failed before anything moved. A lost lock is the
    /// likelier cause, and the one reported, if the lock is lost: when someone deleted the lock
    /// file and recovery then removed the stage, its files are gone, and opening or syncing
    /// them fails (`ENOENT`; `ESTALE` on FUSE) before the check right before the rename would
    /// have said so.
    #[cold]
    fn lost_or(&self, dest: &Path, failed: Error) -> Moved {
        match self.lock().verify() {
            Err(lost) => Moved::LockLost(lost_at_commit(dest, lost)),
            Ok(()) => Moved::No(failed),
        }
    }
}

/// The commit error for a lock that [`StagingLock::verify`] could not confirm.
#[cold]
fn lost_at_commit(dest: &Path, e: Error) -> Error {
    Error::new(
        e.kind(),
        Op::Commit,
        dest,
        format!("{e}; nothing was moved, the stage is left for recovery"),
    )
}

/// A failed [`Stage::commit`]: the error, and the stage (still locked) unless the failure came
/// after the resource was already in place.
#[derive(Debug)]
pub struct CommitError {
    /// What went wrong.
    pub error: Error,
    /// The stage, handed back to retry or abort; dropping it aborts.
    pub stage: Option<Stage>,
}

impl fmt::Display for CommitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for CommitError {}

impl From<CommitError> for Error {
    fn from(e: CommitError) -> Self {
        e.error
    }
}

#[cfg(test)]
mod tests;
