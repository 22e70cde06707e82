//! Staging areas as a component has them: [`StagingArea`], [`Stage`], how a commit is made
//! ([`CommitOptions`], [`Durability`]) and how it fails ([`CommitError`]).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::bindings::stagelock::staging::staging;
use crate::error::{Detail, Op};
use crate::{Descriptor, Error, ErrorKind, Report, filesystem, preopened_dirs};

/// Whether a commit waits until the result is on the host's disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Durability {
    /// Every file and directory of the result is synced before the rename, the directories
    /// involved after it: a power cut after the commit returns loses nothing.
    #[default]
    Full,
    /// Rename only: faster, but a power cut soon after may leave the result's files empty.
    None,
}

/// How [`Stage::commit_with`] commits: by default, no replacing and [`Durability::Full`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CommitOptions {
    replace: bool,
    durability: Durability,
}

impl CommitOptions {
    /// The defaults: no replacing, [`Durability::Full`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether an existing destination is replaced instead of refused.
    pub fn replace(mut self, replace: bool) -> Self {
        self.replace = replace;
        self
    }

    /// How durable the commit is.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }
}

/// How stages are laid out in a [`StagingArea`]'s root.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layout {
    /// `lock-ID` beside `temp-dir-ID`.
    Pairs,
    /// `<N>/staging.lock` and the resource `<N>/dir`.
    PerDirectory,
}

/// A directory in which resources are built under staging locks, committed into place, and
/// recovered when their builders die.
///
/// # Examples
///
/// ```no_run
/// use stagelock_guest::{preopened_dir, Layout, StagingArea};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let work = preopened_dir("/work").ok_or("no /work")?;
/// let area = StagingArea::open(&work, Layout::Pairs)?;
/// let report = area.recover_stale()?; // at start-up
/// let stage = area.stage()?;
/// // Build in it with wasi:filesystem, or with std::fs at /work/<path> (the area is the grant
/// // itself here; for an area beneath it, see the crate docs, "Building into a stage").
/// let dir = stage.dir()?;
/// # drop(dir);
/// stage.commit(&work, "result").map_err(|failed| failed.error)?;
/// # let _ = report; Ok(()) }
/// ```
#[derive(Debug)]
pub struct StagingArea {
    area: staging::StagingArea,
    /// The area's path in the component, when opened by it ([`StagingArea::open_path`]).
    path: Option<Arc<str>>,
}

impl StagingArea {
    /// Opens the staging area rooted at `root`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::ReadOnly`] for a read-only grant, [`ErrorKind::NotADirectory`] for a file
    /// descriptor.
    pub fn open(root: &Descriptor, layout: Layout) -> Result<StagingArea, Error> {
        let layout = match layout {
            Layout::Pairs => staging::Layout::Pairs,
            Layout::PerDirectory => staging::Layout::PerDirectory,
        };
        let area = staging::StagingArea::open(root, layout).map_err(Error::of(Op::Stage, "."))?;
        Ok(StagingArea { area, path: None })
    }

    /// Opens the staging area at `path` in the component's filesystem (`/work/builds/staging`):
    /// the directory beneath the granted directory that holds it, opened so that locks can be
    /// taken in it. Its stages then know their own paths in the component too
    /// ([`Stage::local_path`]), for `std::fs`. (The native `StagingArea::new` takes a `&Dir`:
    /// a component's paths are only meaningful beneath its grants.)
    ///
    /// ```no_run
    /// use stagelock_guest::{Layout, StagingArea};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let area = StagingArea::open_path("/work/builds/staging", Layout::Pairs)?;
    /// let stage = area.stage()?;
    /// let resource = stage.local_path().expect("opened by path");
    /// std::fs::write(resource.join("data"), "built")?; // /work/builds/staging/temp-dir-ID/data
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotPermitted`] if no granted directory holds `path` (or it is not
    /// absolute); [`ErrorKind::NotFound`] if it does not exist, [`ErrorKind::NotADirectory`]
    /// if it is not a directory, [`ErrorKind::ReadOnly`] if its grant is read-only; each
    /// message names `open-area` and `path`.
    pub fn open_path(path: &str, layout: Layout) -> Result<StagingArea, Error> {
        let path = path.trim_end_matches('/');
        let path = if path.is_empty() { "/" } else { path };
        let (grant, beneath) = granted_beneath(path).ok_or(Error {
            kind: ErrorKind::NotPermitted,
            op: Op::OpenArea,
            path: path.to_owned(),
            detail: Detail::Text("no directory granted to this component holds it"),
        })?;
        let root = grant
            .open_at(
                filesystem::PathFlags::empty(),
                beneath,
                filesystem::OpenFlags::DIRECTORY,
                filesystem::DescriptorFlags::MUTATE_DIRECTORY,
            )
            .map_err(|code| Error::of_filesystem(code, Op::OpenArea, path))?;
        let mut area = StagingArea::open(&root, layout).map_err(|mut e| {
            (e.op, e.path) = (Op::OpenArea, path.to_owned());
            e
        })?;
        area.path = Some(path.into());
        Ok(area)
    }

    /// The area's path in the component, if it was opened by one
    /// ([`open_path`](Self::open_path)); `None` if opened from a descriptor.
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// Starts a stage: takes a fresh lock, then creates the resource directory it guards.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::LimitReached`] past the host's cap on held locks; I/O errors.
    pub fn stage(&self) -> Result<Stage, Error> {
        let stage = self.area.stage().map_err(Error::of(Op::Stage, "."))?;
        Ok(Stage {
            stage,
            area_path: self.path.clone(),
        })
    }

    /// Removes every stage whose builder is gone (and orphans); skips held ones.
    pub fn recover_stale(&self) -> Result<Report, Error> {
        let report = self.area.recover_stale(false);
        Ok(report.map_err(Error::of(Op::Recover, "."))?.into())
    }

    /// What [`recover_stale`](Self::recover_stale) would do, changing nothing.
    pub fn recover_stale_dry_run(&self) -> Result<Report, Error> {
        let report = self.area.recover_stale(true);
        Ok(report.map_err(Error::of(Op::Recover, "."))?.into())
    }
}

/// A resource being built under a held staging lock. Dropping it aborts the stage.
#[derive(Debug)]
pub struct Stage {
    stage: staging::Stage,
    /// Its area's path in the component, if the area was opened by path.
    area_path: Option<Arc<str>>,
}

impl Stage {
    /// The stage's ID. (The native `Stage::id` lends a `&str`; here the ID lives in the host and
    /// each call copies it into the component.)
    pub fn id(&self) -> String {
        self.stage.id()
    }

    /// The resource directory's path relative to the area's root (`temp-dir-ID`, `N/dir`), not
    /// to the grant: for `std::fs`, join it to the area's own path in the component. (A
    /// `String`, where the native `Stage::path` gives a `PathBuf`: WASI paths are UTF-8.)
    /// [`local_path`](Self::local_path) gives it joined to the area's path.
    pub fn path(&self) -> String {
        self.stage.path()
    }

    /// The resource directory's path in the component's filesystem, for `std::fs`
    /// (`/work/builds/staging/temp-dir-ID`): the area's path joined to [`path`](Self::path),
    /// if the area was opened by path ([`StagingArea::open_path`]); `None` if it was opened
    /// from a descriptor, whose path the component alone knows.
    pub fn local_path(&self) -> Option<PathBuf> {
        let area = self.area_path.as_deref()?;
        Some(Path::new(area).join(self.stage.path()))
    }

    /// A new descriptor for the resource directory, to build in; each call asks the host for a
    /// new one, which the component owns (the native `Stage::dir` lends the stage's `&Dir`).
    ///
    /// # Errors
    ///
    /// If the host cannot duplicate its handle of the directory (out of descriptors, for
    /// example); a bad handle traps.
    pub fn dir(&self) -> Result<Descriptor, Error> {
        self.stage.dir().map_err(Error::of(Op::Stage, &self.path()))
    }

    /// Moves the resource to `dest` beneath `dest_dir` (atomically) under the lock, then
    /// unlock-and-deletes. Refuses to overwrite an existing `dest`.
    ///
    /// # Errors
    ///
    /// A [`CommitError`] with the stage handed back (still held) to retry or abort:
    /// [`ErrorKind::AlreadyExists`], [`ErrorKind::NotFound`] for a missing parent,
    /// [`ErrorKind::NotPermitted`] for an escape, [`ErrorKind::ReadOnly`] for a read-only
    /// grant, [`ErrorKind::CrossDevice`] for another filesystem than the staging area's.
    ///
    /// The commit is durable ([`Durability::Full`]): once it returns, a power cut on the host
    /// loses nothing of the result.
    pub fn commit(self, dest_dir: &Descriptor, dest: &str) -> Result<(), CommitError> {
        self.commit_with(dest_dir, dest, CommitOptions::new())
    }

    /// Like [`commit`](Self::commit), but replaces an existing `dest`.
    pub fn commit_replacing(self, dest_dir: &Descriptor, dest: &str) -> Result<(), CommitError> {
        self.commit_with(dest_dir, dest, CommitOptions::new().replace(true))
    }

    /// [`commit`](Self::commit) with `options`: whether to replace an existing `dest`, and how
    /// durable the commit is.
    ///
    /// # Errors
    ///
    /// As [`commit`](Self::commit); [`ErrorKind::LockLost`] if the stage's lock was lost
    /// (nothing is moved, and no stage is handed back).
    pub fn commit_with(
        self,
        dest_dir: &Descriptor,
        dest: &str,
        options: CommitOptions,
    ) -> Result<(), CommitError> {
        let options = staging::CommitOptions {
            replace: options.replace,
            durability: match options.durability {
                Durability::Full => staging::Durability::Full,
                Durability::None => staging::Durability::None,
            },
        };
        let area_path = self.area_path;
        staging::Stage::commit_with(self.stage, dest_dir, dest, options).map_err(|e| CommitError {
            error: Error::new(e.code, Op::Commit, dest),
            stage: e.stage.map(|stage| Stage { stage, area_path }),
        })
    }

    /// Removes the resource under the lock, then unlock-and-deletes.
    pub fn abort(self) -> Result<(), Error> {
        let path = self.stage.path();
        staging::Stage::abort(self.stage).map_err(Error::of(Op::Abort, &path))
    }
}

/// A failed [`Stage::commit`]: the error, and the stage handed back.
#[derive(Debug)]
pub struct CommitError {
    /// What went wrong.
    pub error: Error,
    /// The stage, still held (absent if the resource was already in place).
    pub stage: Option<Stage>,
}

impl fmt::Display for CommitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for CommitError {}

/// The granted directory that holds `path` (the longest guest path that is `path` or one of
/// its parents), and `path` relative to it (`.` for the grant itself).
fn granted_beneath(path: &str) -> Option<(Descriptor, &str)> {
    preopened_dirs()
        .into_iter()
        .filter_map(|(dir, grant)| {
            let grant = grant.trim_end_matches('/'); // `/` itself becomes ``
            let rest = path.strip_prefix(grant)?;
            // `/workshop` is not beneath `/work`.
            let rest = if rest.is_empty() {
                rest
            } else {
                rest.strip_prefix('/')?
            };
            Some((grant.len(), dir, if rest.is_empty() { "." } else { rest }))
        })
        .max_by_key(|(len, _, _)| *len)
        .map(|(_, dir, rest)| (dir, rest))
}
