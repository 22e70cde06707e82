//! Recovery: finding the stages whose builders are gone and removing them, never anything
//! else. A stage is removed only by whoever holds its lock, and only if it holds nothing a
//! stage never holds ([`SkipReason::NotAStage`]).

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};

use cap_primitives::fs::FollowSymlinks;

use crate::area::{LOCK_PREFIX, Layout, RESOURCE_PREFIX, STAGE_LOCK, STAGE_RESOURCE, StagingArea};
use crate::error::{Error, ErrorKind, Op};
use crate::faults::Protection;
use crate::lock::StagingLock;
use crate::lock::gone;
use crate::sys;

impl StagingArea {
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
    /// directory people and scripts also use (docs/command-line.md's `stagelock lock` example makes
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
            (true, _) => self.root.try_lock_existing(&lock_path),
            (false, true) => return Ok(found.resource), // it would be locked and removed
            (false, false) => self.root.try_lock_path(&lock_path),
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
    ///
    /// On Windows, something in the stage that another process has open without sharing
    /// delete (a sharing violation) makes it [`SkipReason::Held`] at whichever step meets it,
    /// the stage then left for next time: that is a live stager's open handle as often as a
    /// dead one's, and never a reason to stop.
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
        let root = self.root.handle();
        let resource = self.layout.resource_path(id);
        let had_resource = sys::exists(root, &resource);
        // Only the resource, and only as a directory: should it have become anything else
        // since the check, the removal fails and the stage stays. On failure the lock is
        // dropped: released, file kept, still stale for next time.
        sys::remove_dir_tree(root, &resource).map_err(|e| {
            if sys::in_use(&e) {
                SkipReason::Held
            } else {
                SkipReason::Failed(Error::io(Op::Recover, &resource, e))
            }
        })?;
        lock.unlock_and_delete().map_err(|e| {
            if e.io_error().is_some_and(sys::in_use) {
                SkipReason::Held
            } else {
                SkipReason::Failed(e)
            }
        })?;
        if let Some(stage_dir) = self.layout.stage_dir(id) {
            // Not recursive: anything put there since the check stays, and so does the
            // directory.
            sys::remove_emptied_dir(root, stage_dir);
        }
        Ok(had_resource)
    }

    /// Whether stage `id` holds only what a stage holds: its lock file (a regular file) and its
    /// resource (a directory), each possibly missing, and nothing else. Symbolic links are not
    /// followed, so a link is never what a stage holds.
    fn check_stage(&self, id: &str) -> Result<(), SkipReason> {
        if !Protection::NotAStageCheck.on() {
            return Ok(());
        }
        let root = self.root.handle();
        let failed = |path: &Path, e: io::Error| {
            if gone(&e) {
                SkipReason::Vanished
            } else if sys::in_use(&e) {
                // Windows: someone has it open in a way that excludes us (a stager removing
                // it, say), for the moment.
                SkipReason::Held
            } else {
                SkipReason::Failed(Error::io(Op::Recover, path, e))
            }
        };
        // What is at `path` if it is not what a stage has there (`expected`); missing is fine.
        let unexpected = |path: PathBuf,
                          want: fn(&cap_primitives::fs::Metadata) -> bool,
                          expected: &'static str| {
            match sys::again_if_escaped(root, &path, |d, p| {
                cap_primitives::fs::stat(d, p, FollowSymlinks::No)
            }) {
                Ok(meta) if want(&meta) => Ok(None),
                Ok(meta) => Ok(Some(Foreign {
                    found: kind_name(&meta),
                    path,
                    expected,
                })),
                Err(e) if gone(&e) => Ok(None),
                Err(e) => Err(failed(&path, e)),
            }
        };
        let lock = || unexpected(self.layout.lock_path(id), |m| m.is_file(), "a regular file");
        let resource = || unexpected(self.layout.resource_path(id), |m| m.is_dir(), "a directory");
        let foreign = match self.layout.stage_dir(id) {
            None => match lock()? {
                Some(foreign) => Some(foreign),
                None => resource()?,
            },
            Some(stage_dir) => {
                let entries = sys::again_if_escaped(root, stage_dir, cap_primitives::fs::read_dir)
                    .map_err(|e| failed(stage_dir, e))?;
                let mut foreign = None;
                for entry in entries {
                    let entry = entry.map_err(|e| failed(stage_dir, e))?;
                    let name = entry.file_name();
                    foreign = match name.to_str() {
                        Some(STAGE_LOCK) => lock()?,
                        Some(STAGE_RESOURCE) => resource()?,
                        _ => {
                            let path = stage_dir.join(&name);
                            let meta = sys::again_if_escaped(root, &path, |d, p| {
                                cap_primitives::fs::stat(d, p, FollowSymlinks::No)
                            })
                            .map_err(|e| failed(&path, e))?;
                            Some(Foreign {
                                found: kind_name(&meta),
                                path,
                                expected: "nothing but staging.lock and dir",
                            })
                        }
                    };
                    if foreign.is_some() {
                        break;
                    }
                }
                foreign
            }
        };
        match foreign {
            None => Ok(()),
            Some(foreign) => Err(SkipReason::NotAStage(foreign)),
        }
    }

    /// The stage IDs present in the root, with what was found of each.
    fn list(&self) -> io::Result<BTreeMap<String, Found>> {
        let mut ids = BTreeMap::<String, Found>::new();
        let root = self.root.handle();
        for entry in cap_primitives::fs::read_base_dir(root)? {
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
                        && cap_primitives::fs::stat(root, Path::new(&name), FollowSymlinks::No)
                            .is_ok_and(|meta| meta.is_dir());
                    if !is_stage_dir {
                        continue;
                    }
                    let found = Found {
                        lock: sys::exists(root, &self.layout.lock_path(&name)),
                        resource: sys::exists(root, &self.layout.resource_path(&name)),
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
    /// (`unlinkat`, `rmdir`), so threads beyond the cores overlap those waits (BENCHMARKS.md
    /// has the measurements behind this default).
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

/// What [`StagingArea::recover_stale`] did. Its `Display` prints one line per stage, then the
/// count, as `stagelock recover` does; with the feature `serde` it (and each of its parts) is
/// `serde::Serialize`, every reason both as data (`kind`) and in those words (`text`).
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

/// One line per stage (removed ones first, then skipped ones, each in the report's order), then
/// the count, as `stagelock recover` prints it; a dry run says "would remove" for "removed".
/// Stages are named by ID; [`Layout::lock_path`](crate::Layout::lock_path) and
/// [`Layout::resource_path`](crate::Layout::resource_path) give their paths.
///
/// # Examples
///
/// ```
/// use stagelock::{Layout, StagingArea};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let tmp = tempfile::tempdir()?;
/// # let root = cap_std::fs::Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority())?;
/// let area = StagingArea::with_layout(&root, Layout::Pairs)?;
/// root.create_dir("temp-dir-7")?; // left by a builder that died before taking its lock
/// let live = area.stage()?; // a builder still at work
/// let report = area.recover_stale()?;
/// assert_eq!(
///     report.to_string(),
///     format!(
///         "removed 7: an orphan resource without a lock file\n\
///          skipped {}: held by a live builder\n\
///          1 removed, 1 skipped",
///         live.id()
///     )
/// );
/// # live.abort()?;
/// # Ok(()) }
/// ```
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.dry_run {
            "would remove"
        } else {
            "removed"
        };
        for r in &self.removed {
            writeln!(f, "{verb} {}: {}", r.id, r.reason())?;
        }
        for k in &self.skipped {
            writeln!(f, "skipped {}: {}", k.id, k.reason)?;
        }
        write!(
            f,
            "{} {verb}, {} skipped",
            self.removed.len(),
            self.skipped.len()
        )
    }
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

impl Recovered {
    /// Why it was removed, in words (as [`Report`]'s `Display` and `stagelock recover` say
    /// it): `its builder is gone`, `an orphan resource without a lock file`, `an orphan lock
    /// file without a resource`, `an empty stage`.
    pub fn reason(&self) -> &'static str {
        match (self.had_lock, self.had_resource) {
            (true, true) => "its builder is gone",
            (false, true) => "an orphan resource without a lock file",
            (true, false) => "an orphan lock file without a resource",
            (false, false) => "an empty stage",
        }
    }
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
    /// Its lock is held: the builder is alive. On Windows also when something in the stage (its
    /// lock file, its resource or anything in it, its directory) is open in another process
    /// without sharing delete, at any step of recovery: that is a live builder's handle, but
    /// also a virus scanner's, an indexer's or Explorer's, so a stage can be skipped as held
    /// for as long as such a process keeps it open.
    Held,
    /// It disappeared while recovery looked at it (its builder finished).
    Vanished,
    /// Removing it failed; it stays stale for the next run.
    Failed(Error),
    /// It is named like a stage but holds something a stage never does, so it is left
    /// untouched: per-directory, `<N>` holds entries other than `staging.lock` (a regular file)
    /// and `dir` (a directory); with pairs, `lock-ID` is not a regular file or `temp-dir-ID`
    /// not a directory.
    NotAStage(Foreign),
}

/// What made recovery take an entry named like a stage for something else: an entry a stage
/// never has, or one of a stage's names holding the wrong kind of file.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Foreign {
    /// The entry, relative to the area's root (`temp-dir-7`, `5/notes.txt`).
    pub path: PathBuf,
    /// What it is: `a symbolic link`, `a regular file`, `a directory`, `a special file`.
    pub found: &'static str,
    /// What a stage has there, in its layout's terms (`a directory`, or, for a name that
    /// is not a stage's, `nothing but staging.lock and dir`).
    pub expected: &'static str,
}

/// The kind of file `meta` describes, for messages.
fn kind_name(meta: &cap_primitives::fs::Metadata) -> &'static str {
    let kind = meta.file_type();
    if kind.is_symlink() {
        "a symbolic link"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_file() {
        "a regular file"
    } else {
        "a special file"
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Held => f.write_str("held by a live builder"),
            SkipReason::Vanished => f.write_str("finished by its builder meanwhile"),
            SkipReason::Failed(e) => write!(f, "failed: {e}"),
            SkipReason::NotAStage(Foreign {
                path,
                found,
                expected,
            }) => write!(
                f,
                "not a stage: {} is {found}, where a stage has {expected}",
                path.display()
            ),
        }
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

#[cfg(feature = "serde")]
mod serialize;
#[cfg(test)]
mod tests;
