//! Staging areas: containers/storage's two staging patterns as one API, correct by construction.
//!
//! The lock is always taken **before** the resource exists and released only **after** the
//! resource is gone or committed, so recovery (which only touches stages whose lock it holds)
//! can never remove a live stage or a committed result. This file makes stages and ends them
//! by aborting; committing them is `commit.rs`, recovering dead ones `recover.rs`.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cap_primitives::fs::DirOptions;
use cap_std::AmbientAuthority;
use cap_std::fs::Dir;

use crate::dir::{self, SharedDir};
use crate::error::{Error, ErrorKind, Op};
use crate::lock::StagingLock;
use crate::lock_dir::LockDir;
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

pub(crate) const LOCK_PREFIX: &str = "lock-";
pub(crate) const RESOURCE_PREFIX: &str = "temp-dir-";
pub(crate) const STAGE_LOCK: &str = "staging.lock";
pub(crate) const STAGE_RESOURCE: &str = "dir";

/// Where each part of stage `id` lives, relative to the area's root: the one place that knows
/// the two layouts' names.
impl Layout {
    /// The stage's lock file, relative to the area's root: `lock-ID`, or `<N>/staging.lock`
    /// (for reports such as [`Recovered`](crate::Recovered) and [`Skipped`](crate::Skipped),
    /// which name stages by ID).
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
    pub(crate) fn stage_dir(self, id: &str) -> Option<&Path> {
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
    pub(crate) root: LockDir,
    pub(crate) layout: Layout,
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
        let root = dir::share(root, Op::Stage, Path::new("."))?;
        Ok(Self::from_shared(LockDir::from_shared(root), layout))
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
        let dir = dir::open_ambient(root, Op::Stage, root, ambient)?;
        Ok(Self::from_shared(LockDir::from_shared(dir), layout))
    }

    /// A staging area in the directory of `root`, sharing its handle (no duplicate is made).
    ///
    /// For hosts that already keep a directory handle, for example a WASI descriptor's.
    pub fn in_lock_dir(root: &LockDir, layout: Layout) -> Self {
        Self::from_shared(root.clone(), layout)
    }

    fn from_shared(root: LockDir, layout: Layout) -> Self {
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
        let (lock, name) = self.root.create_and_lock(LOCK_PREFIX)?;
        let id = name[LOCK_PREFIX.len()..].to_owned();
        let mut stage = Stage::new(self, id, lock);
        let resource = stage.path();
        // A resource left with this ID by a dead owner whose lock file is gone is ours now.
        sys::remove_all(self.root.handle(), &resource)
            .map_err(|e| Error::io(Op::Stage, &resource, e))?;
        stage.open_resource()?;
        Ok(stage)
    }

    fn stage_per_directory(&self) -> Result<Stage, Error> {
        let mut id = String::new();
        let stage = retry(STAGE_ATTEMPTS, || {
            id = fastrand::u32(..).to_string();
            match cap_primitives::fs::create_dir(
                self.root.handle(),
                Path::new(&id),
                &DirOptions::new(),
            ) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(None),
                Err(e) => return Err(Error::io(Op::Stage, &id, e)),
            }
            match self.root.try_lock_path(self.layout.lock_path(&id)) {
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
                    let _ = sys::remove_empty_dir(self.root.handle(), Path::new(&id));
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
}

/// A resource being built under a held staging lock.
///
/// End it with [`commit`](Self::commit) or [`abort`](Self::abort). Dropping it aborts (errors
/// are ignored; the lock is released either way).
#[derive(Debug)]
pub struct Stage {
    pub(crate) root: SharedDir,
    pub(crate) layout: Layout,
    pub(crate) id: String,
    pub(crate) lock: Option<StagingLock>,
    pub(crate) dir: Option<Dir>,
}

impl Stage {
    fn new(area: &StagingArea, id: String, lock: StagingLock) -> Self {
        Stage {
            root: Arc::clone(area.root.handle()),
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
        sys::again_if_escaped(&self.root, &resource, |d, p| {
            cap_primitives::fs::create_dir(d, p, &DirOptions::new())
        })
        .map_err(err)?;
        let dir = sys::again_if_escaped(&self.root, &resource, cap_primitives::fs::open_dir)
            .map_err(err)?;
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
        if let Err(e) = sys::remove_all(&self.root, &resource) {
            self.lock = None; // released, file kept: stale, for recovery
            return Err(Error::io(Op::Abort, resource, e));
        }
        self.release()
    }

    /// Unlock-and-delete, then (per-directory) remove the emptied stage directory.
    pub(crate) fn release(&mut self) -> Result<(), Error> {
        let lock = self.lock.take().expect("released once");
        lock.unlock_and_delete()?;
        if let Some(stage_dir) = self.layout.stage_dir(&self.id) {
            sys::remove_emptied_dir(&self.root, stage_dir);
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
