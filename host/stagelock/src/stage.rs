//! Staging areas: containers/storage's two staging patterns as one API, correct by construction.
//!
//! The lock is always taken **before** the resource exists and released only **after** the
//! resource is gone or committed, so recovery (which only touches stages whose lock it holds)
//! can never remove a live stage or a committed result.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;
use std::num::NonZeroUsize;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};

use cap_primitives::fs::DirOptions;
use cap_std::AmbientAuthority;
use cap_std::fs::Dir;
use cap_std::io_lifetimes::AsFilelike;

use crate::commit::{self, CommitOptions, Durability, Moved, Placed, Places};
use crate::error::{Error, ErrorKind, Op};
use crate::lock::{LockDir, SharedDir, StagingLock};
use crate::retry::retry;
use crate::sys;

/// How many fresh stage directories [`StagingArea::stage`] tries (per-directory layout) before
/// giving up when recoverers keep taking them first.
const STAGE_ATTEMPTS: u32 = 1000;

/// How stages are laid out in the area's root directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Layout {
    /// `lock-ID` beside `temp-dir-ID`: the lock is made with create-and-lock, the resource
    /// directory's name derives from it. containers/storage's deferred-deletion temp dirs.
    Pairs,
    /// `<N>/staging.lock` and the resource `<N>/dir` inside a fresh directory per stage.
    /// containers/storage's overlay staging directories.
    PerDirectory,
}

const LOCK_PREFIX: &str = "lock-";
const RESOURCE_PREFIX: &str = "temp-dir-";
const STAGE_LOCK: &str = "staging.lock";
const STAGE_RESOURCE: &str = "dir";

/// Where each part of stage `id` lives, relative to the area's root: the one place that knows
/// the two layouts' names.
impl Layout {
    /// The stage's lock file, relative to the area's root: `lock-ID`, or `<N>/staging.lock`
    /// (for reports such as [`Recovered`] and [`Skipped`], which name stages by ID).
    pub fn lock_path(self, id: &str) -> PathBuf {
        match self {
            Layout::Pairs => PathBuf::from(format!("{LOCK_PREFIX}{id}")),
            Layout::PerDirectory => Path::new(id).join(STAGE_LOCK),
        }
    }

    /// The stage's resource directory, relative to the area's root: `temp-dir-ID`, or
    /// `<N>/dir`.
    pub fn resource_path(self, id: &str) -> PathBuf {
        match self {
            Layout::Pairs => PathBuf::from(format!("{RESOURCE_PREFIX}{id}")),
            Layout::PerDirectory => Path::new(id).join(STAGE_RESOURCE),
        }
    }

    /// The directory holding the stage's lock and resource, if it has one of its own (`<N>`).
    fn stage_dir(self, id: &str) -> Option<&Path> {
        match self {
            Layout::Pairs => None,
            Layout::PerDirectory => Some(Path::new(id)),
        }
    }
}

/// A directory in which resources are built under staging locks, committed into place, and
/// recovered when their builders die.
///
/// Cloning it is cheap: clones share the directory handle.
///
/// # Examples
///
/// ```
/// use stagelock::StagingArea;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let tmp = tempfile::tempdir()?;
/// # let root = cap_std::fs::Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority())?;
/// root.create_dir("staging")?;
/// root.create_dir("layers")?;
/// let area = StagingArea::new(&root.open_dir("staging")?)?;
///
/// let stage = area.stage()?;              // lock first, then the resource directory
/// stage.dir().write("data", b"layer contents")?;
/// stage.commit(&root, "layers/abc")?;     // renamed into place while still locked
/// assert_eq!(root.read("layers/abc/data")?, b"layer contents");
///
/// let report = area.recover_stale()?;     // at start-up: clean up after dead builders
/// assert!(report.removed.is_empty());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct StagingArea {
    root: SharedDir,
    layout: Layout,
}

impl StagingArea {
    /// A staging area in `root` with the [`Layout::Pairs`] layout (`lock-ID` + `temp-dir-ID`).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::LimitReached`] if `root` cannot be duplicated (out of descriptors).
    pub fn new(root: &Dir) -> Result<Self, Error> {
        Self::with_layout(root, Layout::Pairs)
    }

    /// A staging area in `root` with the given layout.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::LimitReached`] if `root` cannot be duplicated (out of descriptors).
    pub fn with_layout(root: &Dir, layout: Layout) -> Result<Self, Error> {
        let dup = root.try_clone().map_err(|e| Error::io(Op::Stage, ".", e))?;
        Ok(Self::from_shared(
            SharedDir::new(Arc::new(dup.into_std_file())),
            layout,
        ))
    }

    /// A staging area in the directory at the ambient path `root`.
    ///
    /// # Ambient Authority
    ///
    /// Opens `root` with the process's ambient authority; everything after is beneath it.
    pub fn open_ambient_dir(
        root: impl AsRef<Path>,
        layout: Layout,
        ambient: AmbientAuthority,
    ) -> Result<Self, Error> {
        let root = root.as_ref();
        let dir =
            Dir::open_ambient_dir(root, ambient).map_err(|e| Error::io(Op::Stage, root, e))?;
        Ok(Self::from_shared(
            SharedDir::new(Arc::new(dir.into_std_file())),
            layout,
        ))
    }

    /// A staging area in the directory of `root`, sharing its handle (no duplicate is made).
    ///
    /// For hosts that already keep a directory handle, for example a WASI descriptor's.
    pub fn in_lock_dir(root: &LockDir, layout: Layout) -> Self {
        Self::from_shared(root.shared().clone(), layout)
    }

    fn from_shared(root: SharedDir, layout: Layout) -> Self {
        StagingArea { root, layout }
    }

    /// The area's layout.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Starts a stage: takes a fresh lock, then creates the resource directory guarded by it.
    ///
    /// Build into [`Stage::dir`], then [`commit`](Stage::commit) or
    /// [`abort`](Stage::abort) (dropping the stage aborts it).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::PermissionDenied`] for a read-only root; [`ErrorKind::LimitReached`] when out
    /// of descriptors; [`ErrorKind::Other`] for I/O errors or when recoverers kept taking every
    /// new stage first.
    pub fn stage(&self) -> Result<Stage, Error> {
        match self.layout {
            Layout::Pairs => self.stage_pair(),
            Layout::PerDirectory => self.stage_per_directory(),
        }
    }

    fn stage_pair(&self) -> Result<Stage, Error> {
        let (lock, name) = StagingLock::create_and_lock_shared(&self.root, LOCK_PREFIX)?;
        let id = name[LOCK_PREFIX.len()..].to_owned();
        let mut stage = Stage::new(self, id, lock);
        let resource = stage.path();
        // A resource left with this ID by a dead owner whose lock file is gone is ours now.
        remove_all(&self.root, &resource).map_err(|e| Error::io(Op::Stage, &resource, e))?;
        stage.open_resource()?;
        Ok(stage)
    }

    fn stage_per_directory(&self) -> Result<Stage, Error> {
        let mut id = String::new();
        let stage = retry(STAGE_ATTEMPTS, || {
            id = fastrand::u32(..).to_string();
            match cap_primitives::fs::create_dir(&self.root, Path::new(&id), &DirOptions::new()) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(None),
                Err(e) => return Err(Error::io(Op::Stage, &id, e)),
            }
            match StagingLock::try_lock_path_shared(&self.root, &self.layout.lock_path(&id)) {
                Ok(lock) => {
                    let mut stage = Stage::new(self, id.clone(), lock);
                    stage.open_resource()?;
                    Ok(Some(stage))
                }
                // A recoverer took the new directory for a dead one and is removing it.
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::NotFound) => {
                    Ok(None)
                }
                Err(e) => {
                    let _ = cap_primitives::fs::remove_dir(&self.root, Path::new(&id));
                    Err(e)
                }
            }
        })?;
        stage.ok_or_else(|| {
            Error::new(
                ErrorKind::Other,
                Op::Stage,
                id,
                format!(
                    "gave up after {STAGE_ATTEMPTS} new stage directories were all taken first"
                ),
            )
        })
    }

    /// Removes every stage whose builder is gone: for each stage whose lock is free, removes its
    /// resource while holding the lock, then unlock-and-deletes. Held stages are skipped.
    ///
    /// Orphans are handled too: a resource without a lock file is locked (creating the file)
    /// and removed the same way; a lock file without a resource is just unlock-and-deleted.
    /// Only entries named like stages are looked at (`lock-<N>` / `temp-dir-<N>`, or a
    /// directory `<N>`, with `<N>` the decimal of a `u32`): anything else in the root is left
    /// alone. Running it again finds nothing to do. It never blocks and never removes a live
    /// stage, including one being created or committed concurrently.
    ///
    /// # Only stages are removed
    ///
    /// An entry named like a stage is removed only if it holds nothing a stage never holds:
    /// per-directory, `<N>` may contain `staging.lock` (a regular file) and `dir` (a
    /// directory), nothing else; with pairs, `lock-<N>` must be a regular file and
    /// `temp-dir-<N>` a directory. Anything else (`staging/1/notes.txt`, made by hand) is
    /// skipped with [`SkipReason::NotAStage`] and left exactly as it was: no lock file is
    /// created in it. The check is made before locking, and again while holding the lock,
    /// before anything is removed; only the resource and the lock file are then removed, and
    /// the stage directory with a non-recursive `rmdir`, so a file put there after the second
    /// check stays too.
    ///
    /// This is stricter than containers/storage's overlay driver, whose clean-up of
    /// `staging/<N>` removes the whole directory once it can lock `staging.lock`. There the
    /// staging directory is private to the storage driver; a stagelock area is often a
    /// directory people and scripts also use (the README's `stagelock lock` example makes
    /// `staging/1` by hand), and a lock that is free proves only that no builder holds it, not
    /// that what sits beside it is a builder's leftovers.
    ///
    /// # Errors
    ///
    /// Only if the root cannot be listed; failures on single stages are reported in
    /// [`Report::skipped`].
    pub fn recover_stale(&self) -> Result<Report, Error> {
        self.recover_stale_with(RecoverOptions::new())
    }

    /// What [`recover_stale`](Self::recover_stale) would do, without changing anything: locks
    /// are only tried on existing lock files, and released without deleting.
    pub fn recover_stale_dry_run(&self) -> Result<Report, Error> {
        self.recover_stale_with(RecoverOptions::new().dry_run(true))
    }

    /// [`recover_stale`](Self::recover_stale) (or its dry run) with `options`: how many threads
    /// work on the stages ([`RecoverOptions::jobs`], by default four per core).
    ///
    /// The area is listed once; then each stage is handled by exactly one thread, in the same
    /// way and with the same guarantees as with one thread: a stage is only removed by the
    /// thread holding its lock, and entries that are not stages are left alone. The report
    /// lists stages in the same order whatever the number of threads.
    ///
    /// # Errors
    ///
    /// As [`recover_stale`](Self::recover_stale): only if the root cannot be listed. If no
    /// thread can be started, the calling thread does all the work.
    ///
    /// # Examples
    ///
    /// ```
    /// use stagelock::{RecoverOptions, StagingArea};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let tmp = tempfile::tempdir()?;
    /// # let root = cap_std::fs::Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority())?;
    /// let area = StagingArea::new(&root)?;
    /// let report = area.recover_stale_with(RecoverOptions::new().jobs(4))?;
    /// assert!(report.removed.is_empty());
    /// # Ok(()) }
    /// ```
    pub fn recover_stale_with(&self, options: RecoverOptions) -> Result<Report, Error> {
        let listed: Vec<(String, Found)> = self
            .list()
            .map_err(|e| Error::io(Op::Recover, ".", e))?
            .into_iter()
            .collect();
        let dry_run = options.dry_run;
        let jobs = options.jobs_or_default().min(listed.len()).max(1);
        let outcomes = if jobs == 1 {
            // One thread: the stages in order, on the calling thread, no thread started.
            listed
                .iter()
                .map(|(id, found)| self.recover_one(id, *found, dry_run))
                .collect()
        } else {
            self.recover_parallel(&listed, jobs, dry_run)
        };
        let mut report = Report {
            dry_run,
            removed: Vec::new(),
            skipped: Vec::new(),
        };
        for ((id, found), outcome) in listed.into_iter().zip(outcomes) {
            match outcome {
                Ok(had_resource) => report.removed.push(Recovered {
                    id,
                    had_lock: found.lock,
                    had_resource,
                }),
                Err(reason) => report.skipped.push(Skipped { id, reason }),
            }
        }
        Ok(report)
    }

    /// Recovers `listed` on `jobs` threads (the calling one among them); the outcomes in the
    /// order of `listed`. Threads take the next few stages from a shared counter, so a slow
    /// stage (a big resource) does not hold up the others' share.
    fn recover_parallel(
        &self,
        listed: &[(String, Found)],
        jobs: usize,
        dry_run: bool,
    ) -> Vec<Result<bool, SkipReason>> {
        // Small enough to balance, big enough that the counter is not contended.
        const BATCH: usize = 8;
        let next = AtomicUsize::new(0);
        let work = || {
            let mut done = Vec::new();
            loop {
                let start = next.fetch_add(BATCH, AtomicOrdering::Relaxed);
                if start >= listed.len() {
                    return done;
                }
                for (i, (id, found)) in listed.iter().enumerate().skip(start).take(BATCH) {
                    done.push((i, self.recover_one(id, *found, dry_run)));
                }
            }
        };
        let mut outcomes: Vec<Option<Result<bool, SkipReason>>> =
            std::iter::repeat_with(|| None).take(listed.len()).collect();
        std::thread::scope(|scope| {
            // A thread that cannot be started (out of threads or memory) just leaves its share
            // to the others; the calling thread always works.
            let helpers: Vec<_> = (1..jobs)
                .filter_map(|_| {
                    std::thread::Builder::new()
                        .name("stagelock-recover".into())
                        .spawn_scoped(scope, work)
                        .ok()
                })
                .collect();
            let mut all = work();
            for helper in helpers {
                match helper.join() {
                    Ok(done) => all.extend(done),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            for (i, outcome) in all {
                outcomes[i] = Some(outcome);
            }
        });
        outcomes
            .into_iter()
            .map(|o| o.expect("every listed stage is handled by one thread"))
            .collect()
    }

    /// Recovers one listed stage: `Ok(had_resource)` if it was removed (or, in a dry run, would
    /// be), else why it was left alone.
    fn recover_one(&self, id: &str, found: Found, dry_run: bool) -> Result<bool, SkipReason> {
        // Entries named like stages that hold anything a stage never does are left exactly as
        // they are: no lock file is created in them, nothing is removed.
        self.check_stage(id)?;
        let lock_path = self.layout.lock_path(id);
        // A lock file that was listed is only locked if it still exists: if it is gone, its
        // builder finished. Without one (an orphan resource, or a directory whose creator died
        // before locking), the lock file is created to take the stage over.
        let taken = match (found.lock, dry_run) {
            (true, _) => StagingLock::try_lock_existing_shared(&self.root, &lock_path),
            (false, true) => return Ok(found.resource), // it would be locked and removed
            (false, false) => StagingLock::try_lock_path_shared(&self.root, &lock_path),
        };
        let lock = taken.map_err(|e| match e.kind() {
            ErrorKind::WouldBlock => SkipReason::Held,
            ErrorKind::NotFound => SkipReason::Vanished,
            _ => SkipReason::Failed(e),
        })?;
        if dry_run {
            drop(lock); // released, file untouched
            return Ok(found.resource);
        }
        match self.remove_stage(id, lock, found.lock) {
            // A pair with neither file left: its builder finished between our listing and our
            // lock (we only made and removed a lock file).
            Ok(false) if !found.lock && self.layout == Layout::Pairs => Err(SkipReason::Vanished),
            other => other,
        }
    }

    /// Removes a stage whose lock we hold: checks again, under the lock, that it holds only
    /// what a stage holds; then removes its resource, then the lock file, then (per-directory)
    /// the emptied directory. Returns whether the resource existed (under the lock, that means
    /// its builder was dead).
    ///
    /// If the stage changed since [`check_stage`](Self::check_stage) looked (someone put a file
    /// in it), nothing is removed but a lock file this recovery created (`had_lock_file`
    /// false), so the entry is left as it was found.
    fn remove_stage(
        &self,
        id: &str,
        lock: StagingLock,
        had_lock_file: bool,
    ) -> Result<bool, SkipReason> {
        if let Err(reason) = self.check_stage(id) {
            if had_lock_file {
                drop(lock); // released, file kept
            } else {
                let _ = lock.unlock_and_delete(); // the file we made to take it over
            }
            return Err(reason);
        }
        let resource = self.layout.resource_path(id);
        let had_resource = exists(&self.root, &resource);
        // Only the resource, and only as a directory: should it have become anything else
        // since the check, the removal fails and the stage stays. On failure the lock is
        // dropped: released, file kept, still stale for next time.
        remove_dir_tree(&self.root, &resource)
            .map_err(|e| SkipReason::Failed(Error::io(Op::Recover, &resource, e)))?;
        lock.unlock_and_delete().map_err(SkipReason::Failed)?;
        if let Some(stage_dir) = self.layout.stage_dir(id) {
            // Not recursive: anything put there since the check stays, and so does the
            // directory.
            remove_empty_dir(&self.root, stage_dir);
        }
        Ok(had_resource)
    }

    /// Whether stage `id` holds only what a stage holds: its lock file (a regular file) and its
    /// resource (a directory), each possibly missing, and nothing else. Symbolic links are not
    /// followed, so a link is never what a stage holds.
    fn check_stage(&self, id: &str) -> Result<(), SkipReason> {
        let failed = |path: &Path, e: io::Error| {
            if e.kind() == io::ErrorKind::NotFound {
                SkipReason::Vanished
            } else {
                SkipReason::Failed(Error::io(Op::Recover, path, e))
            }
        };
        let is = |path: &Path, want: fn(&cap_primitives::fs::Metadata) -> bool| {
            match cap_primitives::fs::stat(&self.root, path, cap_primitives::fs::FollowSymlinks::No)
            {
                Ok(meta) => Ok(want(&meta)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true), // missing is fine
                Err(e) => Err(failed(path, e)),
            }
        };
        let lock_ok = || is(&self.layout.lock_path(id), |m| m.is_file());
        let resource_ok = || is(&self.layout.resource_path(id), |m| m.is_dir());
        let only_stage_entries = match self.layout.stage_dir(id) {
            None => lock_ok()? && resource_ok()?,
            Some(stage_dir) => {
                let entries = cap_primitives::fs::read_dir(&self.root, stage_dir)
                    .map_err(|e| failed(stage_dir, e))?;
                let mut only = true;
                for entry in entries {
                    let name = entry.map_err(|e| failed(stage_dir, e))?.file_name();
                    only = match name.to_str() {
                        Some(STAGE_LOCK) => lock_ok()?,
                        Some(STAGE_RESOURCE) => resource_ok()?,
                        _ => false,
                    };
                    if !only {
                        break;
                    }
                }
                only
            }
        };
        if only_stage_entries {
            Ok(())
        } else {
            Err(SkipReason::NotAStage)
        }
    }

    /// The stage IDs present in the root, with what was found of each.
    fn list(&self) -> io::Result<BTreeMap<String, Found>> {
        let mut ids = BTreeMap::<String, Found>::new();
        for entry in cap_primitives::fs::read_base_dir(&self.root)? {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else {
                continue; // not a name this crate makes
            };
            match self.layout {
                Layout::Pairs => {
                    if let Some(id) = name.strip_prefix(LOCK_PREFIX).filter(|id| decimal(id)) {
                        ids.entry(id.to_owned()).or_default().lock = true;
                    } else if let Some(id) =
                        name.strip_prefix(RESOURCE_PREFIX).filter(|id| decimal(id))
                    {
                        ids.entry(id.to_owned()).or_default().resource = true;
                    }
                }
                Layout::PerDirectory => {
                    // Stage directories have decimal names (ours, and Go's MkdirTemp(dir, "")):
                    // anything else in the root is not a stage and is never touched. A no-follow
                    // stat (not d_type, which some filesystems leave unknown) says "directory".
                    let is_stage_dir = decimal(&name)
                        && cap_primitives::fs::stat(
                            &self.root,
                            Path::new(&name),
                            cap_primitives::fs::FollowSymlinks::No,
                        )
                        .is_ok_and(|meta| meta.is_dir());
                    if !is_stage_dir {
                        continue;
                    }
                    let found = Found {
                        lock: exists(&self.root, &self.layout.lock_path(&name)),
                        resource: exists(&self.root, &self.layout.resource_path(&name)),
                    };
                    ids.insert(name, found);
                }
            }
        }
        Ok(ids)
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Found {
    lock: bool,
    resource: bool,
}

/// A resource being built under a held staging lock.
///
/// End it with [`commit`](Self::commit) or [`abort`](Self::abort). Dropping it aborts (errors
/// are ignored; the lock is released either way).
#[derive(Debug)]
pub struct Stage {
    root: SharedDir,
    layout: Layout,
    id: String,
    lock: Option<StagingLock>,
    dir: Option<Dir>,
}

// A failed commit hands the stage back by value (as tempfile's `PersistError` hands back the
// file): the error is large on purpose.
#[allow(clippy::result_large_err)]
impl Stage {
    fn new(area: &StagingArea, id: String, lock: StagingLock) -> Self {
        Stage {
            root: area.root.clone(),
            layout: area.layout,
            id,
            lock: Some(lock),
            dir: None,
        }
    }

    /// Creates the resource directory and opens it (on failure the stage aborts as it drops).
    fn open_resource(&mut self) -> Result<(), Error> {
        let resource = self.path();
        let err = |e| Error::io(Op::Stage, &resource, e);
        cap_primitives::fs::create_dir(&self.root, &resource, &DirOptions::new()).map_err(err)?;
        let dir = cap_primitives::fs::open_dir(&self.root, &resource).map_err(err)?;
        self.dir = Some(Dir::from_std_file(dir));
        Ok(())
    }

    /// The stage's ID: `temp-dir-ID` / `lock-ID`, or the `<N>` directory.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The resource directory to build in.
    pub fn dir(&self) -> &Dir {
        self.dir.as_ref().expect("open until commit or abort")
    }

    /// The stage's lock, for example to let a child process inherit it
    /// ([`StagingLock::set_inheritable`]) while it builds in the stage.
    pub fn lock(&self) -> &StagingLock {
        self.lock.as_ref().expect("held until commit or abort")
    }

    /// The resource directory's path relative to the area's root.
    pub fn path(&self) -> PathBuf {
        self.layout.resource_path(&self.id)
    }

    /// Moves the resource to `dest` beneath `dest_dir` while still holding the lock, durably
    /// ([`Durability::Full`]), then unlock-and-deletes. Refuses to overwrite an existing `dest`.
    ///
    /// The same as [`commit_with`](Self::commit_with) with the default [`CommitOptions`].
    ///
    /// # Errors
    ///
    /// On failure the stage is handed back in the [`CommitError`], still locked, to retry or
    /// abort, except for [`ErrorKind::LockLost`]. [`ErrorKind::AlreadyExists`] if `dest` exists; [`ErrorKind::NotFound`] if its
    /// parent does not; [`ErrorKind::PermissionDenied`] if `dest` escapes `dest_dir`;
    /// [`ErrorKind::InvalidInput`] if `dest` has no final name; [`ErrorKind::Other`] if it is
    /// on another filesystem (`EXDEV`), or if syncing failed (see
    /// [`commit_with`](Self::commit_with)).
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
        self,
        dest_dir: &Dir,
        dest: impl AsRef<Path>,
        options: CommitOptions,
    ) -> Result<(), CommitError> {
        self.commit_at(
            &dest_dir.as_filelike_view::<fs::File>(),
            dest.as_ref(),
            options,
        )
    }

    /// [`commit_with`](Self::commit_with) into a raw directory handle.
    pub(crate) fn commit_at(
        mut self,
        dest_dir: &fs::File,
        dest: &Path,
        options: CommitOptions,
    ) -> Result<(), CommitError> {
        match self.move_into_place(dest_dir, dest, options) {
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
        dest_dir: &fs::File,
        dest: &Path,
        options: CommitOptions,
    ) -> Result<(), Moved> {
        let err = |e| Moved::No(Error::io(Op::Commit, dest, e));
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
                opened_parent = cap_primitives::fs::open_dir(dest_dir, parent).map_err(err)?;
                &opened_parent
            }
            None => dest_dir,
        };
        let opened_src;
        let (src_parent, src_name): (&fs::File, PathBuf) = match self.layout.stage_dir(&self.id) {
            None => (&self.root, self.path()),
            Some(stage_dir) => {
                opened_src = cap_primitives::fs::open_dir(&self.root, stage_dir).map_err(err)?;
                (&opened_src, PathBuf::from(STAGE_RESOURCE))
            }
        };
        let durable = options.durability_level() == Durability::Full;
        if durable {
            let resource = self.dir().as_filelike_view::<fs::File>();
            sys::sync_tree(&resource).map_err(|e| {
                let kind = ErrorKind::of_io(&e);
                Moved::No(Error::new(
                    kind,
                    Op::Commit,
                    dest,
                    format!("syncing the stage failed: {e}"),
                ))
            })?;
        }
        // The last moment the stage can still be left alone: is the lock still ours?
        self.lock()
            .verify()
            .map_err(|e| Moved::LockLost(lost_at_commit(dest, e)))?;
        let places = Places {
            src_parent,
            src_name: &src_name,
            dest_parent,
            name,
            dest,
            id: &self.id,
        };
        let placed = match commit::place(&places, options.replaces()) {
            Err(Moved::No(e))
                if e.io_error().and_then(io::Error::raw_os_error) == Some(libc::EXDEV) =>
            {
                return Err(Moved::No(Error::new(
                    ErrorKind::Other,
                    Op::Commit,
                    dest,
                    "destination is on another filesystem than the staging area",
                )));
            }
            other => other?,
        };
        self.dir = None;
        let synced = if durable {
            commit::sync_parents(&places)
        } else {
            Ok(())
        };
        if placed == Placed::Replaced {
            // The old destination now sits where the resource was; we still hold the lock.
            let old = self.path();
            remove_all(&self.root, &old)
                .map_err(|e| Moved::ButOldRemains(Error::io(Op::Commit, &old, e)))?;
        }
        synced.map_err(Moved::ButNotSynced)
    }

    /// Removes the resource while holding the lock, then unlock-and-deletes.
    ///
    /// # Errors
    ///
    /// If the resource cannot be removed, the lock is released and its file kept, so the stage
    /// is left stale for [`StagingArea::recover_stale`]; or if unlock-and-delete fails.
    pub fn abort(mut self) -> Result<(), Error> {
        self.abort_inner()
    }

    fn abort_inner(&mut self) -> Result<(), Error> {
        self.dir = None;
        let resource = self.path();
        if let Err(e) = remove_all(&self.root, &resource) {
            self.lock = None; // released, file kept: stale, for recovery
            return Err(Error::io(Op::Abort, resource, e));
        }
        self.release()
    }

    /// Unlock-and-delete, then (per-directory) remove the emptied stage directory.
    fn release(&mut self) -> Result<(), Error> {
        let lock = self.lock.take().expect("released once");
        lock.unlock_and_delete()?;
        if let Some(stage_dir) = self.layout.stage_dir(&self.id) {
            remove_empty_dir(&self.root, stage_dir);
        }
        Ok(())
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        if self.lock.is_some() {
            let _ = self.abort_inner();
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

/// How [`StagingArea::recover_stale_with`] recovers.
///
/// # Examples
///
/// ```
/// use stagelock::RecoverOptions;
/// let one_thread = RecoverOptions::new().jobs(1);
/// let look_only = RecoverOptions::new().dry_run(true);
/// # let _ = (one_thread, look_only);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoverOptions {
    jobs: Option<NonZeroUsize>,
    dry_run: bool,
}

impl RecoverOptions {
    /// The defaults: four threads per core ([`std::thread::available_parallelism`], one core if
    /// it cannot tell), at most 64; not a dry run. Recovery mostly waits on the disk
    /// (`unlinkat`, `rmdir`), so threads beyond the cores overlap those waits: on 2 cores and
    /// ext4, 10,000 stale stages took 0.61x the time of one thread with 2 threads, 0.50x
    /// with 4 and 0.42x with 8 (BENCHMARKS.md).
    pub fn new() -> Self {
        Self::default()
    }

    /// Works on at most `jobs` stages at a time, each on its own thread (the calling thread is
    /// one of them). `1` recovers on the calling thread alone, one stage after the other;
    /// `0` is taken as `1`. More threads than stages are never started.
    #[must_use]
    pub fn jobs(mut self, jobs: usize) -> Self {
        self.jobs = Some(NonZeroUsize::new(jobs).unwrap_or(NonZeroUsize::MIN));
        self
    }

    /// Only says what would be done, as [`StagingArea::recover_stale_dry_run`].
    #[must_use]
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// How many stages recovery works on at a time, at most: the number given to
    /// [`jobs`](Self::jobs), or the default (four per core, at most 64).
    pub fn jobs_or_default(self) -> usize {
        /// Recovery waits on the disk more than it computes.
        const THREADS_PER_CORE: usize = 4;
        const MOST: usize = 64;
        self.jobs.map_or_else(
            || {
                let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
                (cores * THREADS_PER_CORE).min(MOST)
            },
            NonZeroUsize::get,
        )
    }
}

/// What [`StagingArea::recover_stale`] did.
#[derive(Debug)]
#[non_exhaustive]
pub struct Report {
    /// Whether this was a dry run (then `removed` lists what would be removed).
    pub dry_run: bool,
    /// Stages removed (their builders were gone).
    pub removed: Vec<Recovered>,
    /// Stages left alone, and why.
    pub skipped: Vec<Skipped>,
}

/// A stage that recovery removed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recovered {
    /// The stage's ID.
    pub id: String,
    /// Whether it had a lock file (false: an orphan resource).
    pub had_lock: bool,
    /// Whether it had a resource (false: an orphan lock file).
    pub had_resource: bool,
}

/// A stage that recovery left alone.
#[derive(Debug)]
#[non_exhaustive]
pub struct Skipped {
    /// The stage's ID.
    pub id: String,
    /// Why it was left alone.
    pub reason: SkipReason,
}

/// Why recovery left a stage alone.
#[derive(Debug)]
#[non_exhaustive]
pub enum SkipReason {
    /// Its lock is held: the builder is alive.
    Held,
    /// It disappeared while recovery looked at it (its builder finished).
    Vanished,
    /// Removing it failed; it stays stale for the next run.
    Failed(Error),
    /// It is named like a stage but holds something a stage never does, so it is left
    /// untouched: per-directory, `<N>` holds entries other than `staging.lock` (a regular file)
    /// and `dir` (a directory); with pairs, `lock-ID` is not a regular file or `temp-dir-ID`
    /// not a directory.
    NotAStage,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Held => f.write_str("held by a live builder"),
            SkipReason::Vanished => f.write_str("finished by its builder meanwhile"),
            SkipReason::Failed(e) => write!(f, "failed: {e}"),
            SkipReason::NotAStage => {
                f.write_str("not a stage (it holds more than a lock file and a resource directory)")
            }
        }
    }
}

/// Removes `path` beneath `root` whatever it is (a directory tree or a file); gone is fine.
fn remove_all(root: &fs::File, path: &Path) -> io::Result<()> {
    let result = match cap_primitives::fs::stat(root, path, cap_primitives::fs::FollowSymlinks::No)
    {
        Ok(meta) if meta.is_dir() => cap_primitives::fs::remove_dir_all(root, path),
        Ok(_) => cap_primitives::fs::remove_file(root, path),
        Err(e) => Err(e),
    };
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Whether `id` is a stage ID: the decimal number of a random `u32`, as this crate and
/// containers/storage (Go's `CreateTemp` / `MkdirTemp`) make them: digits only, no leading
/// zero (but `0` itself), at most `4294967295`.
fn decimal(id: &str) -> bool {
    id.bytes().all(|b| b.is_ascii_digit())
        && (id == "0" || !id.starts_with('0'))
        && id.parse::<u32>().is_ok()
}

/// Removes the directory tree `path` beneath `root`; gone is fine, anything but a directory
/// (a file, a symbolic link) is an error and stays.
fn remove_dir_tree(root: &fs::File, path: &Path) -> io::Result<()> {
    match cap_primitives::fs::remove_dir_all(root, path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Whether `path` beneath `root` names anything (not following a final symlink).
fn exists(root: &fs::File, path: &Path) -> bool {
    cap_primitives::fs::stat(root, path, cap_primitives::fs::FollowSymlinks::No).is_ok()
}

/// Removes an emptied stage directory; one that is gone or in use again is left as it is.
fn remove_empty_dir(root: &fs::File, path: &Path) {
    let _ = cap_primitives::fs::remove_dir(root, path);
}

#[cfg(test)]
mod tests {
    //! Recovery's second look, made deterministic: between the first check and the lock (the
    //! lock module's test hook), someone puts a file into what looked like an orphan stage.
    use super::*;
    use crate::lock::hooks;

    #[test]
    fn a_file_put_in_a_stage_between_check_and_lock_keeps_everything_in_place() {
        let tmp = tempfile::tempdir().unwrap();
        let at = |rel: &str| tmp.path().join(rel);
        // Looks like a stage whose creator died before locking: just `5/dir`.
        std::fs::create_dir_all(at("5/dir")).unwrap();
        std::fs::write(at("5/dir/data"), "mine").unwrap();
        let area = StagingArea::open_ambient_dir(
            tmp.path(),
            Layout::PerDirectory,
            cap_std::ambient_authority(),
        )
        .unwrap();
        let notes = at("5/notes.txt");
        let _guard = hooks::set_before_lock(move |_, _| {
            std::fs::write(&notes, "important").unwrap();
        });
        let report = area.recover_stale().unwrap();
        assert!(report.removed.is_empty(), "{report:?}");
        assert!(
            matches!(report.skipped.as_slice(), [Skipped { id, reason: SkipReason::NotAStage }] if id == "5"),
            "{report:?}"
        );
        assert_eq!(std::fs::read_to_string(at("5/dir/data")).unwrap(), "mine");
        assert_eq!(
            std::fs::read_to_string(at("5/notes.txt")).unwrap(),
            "important"
        );
        assert!(
            !at("5/staging.lock").exists(),
            "the lock file recovery made is gone again"
        );
    }

    #[test]
    fn stage_ids_are_canonical_u32_decimals() {
        for id in ["0", "1", "42", "4294967295"] {
            assert!(decimal(id), "{id}");
        }
        for id in [
            "",
            "01",
            "007",
            "4294967296",
            "99999999999",
            "+1",
            "-1",
            "1a",
            " 1",
        ] {
            assert!(!decimal(id), "{id}");
        }
    }
}
