//! Trait impls of the `staging` interface: each body checks its handles and calls the native
//! staging-area code.

use std::path::Path;

use cap_std::io_lifetimes::AsFilelike;
use wasmtime::component::Resource;
use wasmtime_wasi::filesystem::{Descriptor, Dir as WasiDir};
use wasmtime_wasi::{FsPerms, OpenMode};

use super::StagingLockCtxView;
use super::bindings::staging::{self, CommitError as GuestCommitError};
use super::locks::{GuestResult, to_guest};
use stagelock::{CommitError, Layout, LockDir, Op, SkipReason, Stage, StagingArea};

impl staging::Host for StagingLockCtxView<'_> {}

impl staging::HostStagingArea for StagingLockCtxView<'_> {
    fn open(
        &mut self,
        root: Resource<Descriptor>,
        layout: staging::Layout,
    ) -> GuestResult<Resource<StagingArea>> {
        let root = match self.writable_dir(&root, Op::Stage, Path::new("."))? {
            Ok(root) => root,
            Err(e) => return Ok(Err(e)),
        };
        let layout = match layout {
            staging::Layout::Pairs => Layout::Pairs,
            staging::Layout::PerDirectory => Layout::PerDirectory,
        };
        Ok(Ok(self.table.push(StagingArea::in_lock_dir(
            &LockDir::from_shared(root),
            layout,
        ))?))
    }

    fn stage(&mut self, area: Resource<StagingArea>) -> GuestResult<Resource<Stage>> {
        if let Err(e) = self.check_limit(Op::Stage, Path::new(".")) {
            return Ok(Err(e));
        }
        match self.table.get(&area)?.stage() {
            Ok(stage) => Ok(Ok(self.hold(stage)?)),
            Err(e) => Ok(Err(to_guest(&e))),
        }
    }

    fn recover_stale(
        &mut self,
        area: Resource<StagingArea>,
        dry_run: bool,
    ) -> GuestResult<staging::Report> {
        let area = self.table.get(&area)?;
        let report = if dry_run {
            area.recover_stale_dry_run()
        } else {
            area.recover_stale()
        };
        let report = match report {
            Ok(report) => report,
            Err(e) => return Ok(Err(to_guest(&e))),
        };
        let removed = report.removed.into_iter().map(|r| staging::Recovered {
            id: r.id,
            had_lock: r.had_lock,
            had_resource: r.had_resource,
        });
        let skipped = report.skipped.into_iter().map(|k| staging::Skipped {
            message: k.reason.to_string(),
            reason: match k.reason {
                SkipReason::Held => staging::SkipReason::Held,
                SkipReason::Vanished => staging::SkipReason::Vanished,
                _ => staging::SkipReason::Failed,
            },
            id: k.id,
        });
        Ok(Ok(staging::Report {
            dry_run: report.dry_run,
            removed: removed.collect(),
            skipped: skipped.collect(),
        }))
    }

    fn drop(&mut self, area: Resource<StagingArea>) -> wasmtime::Result<()> {
        self.table.delete(area)?;
        Ok(())
    }
}

impl staging::HostStage for StagingLockCtxView<'_> {
    fn id(&mut self, stage: Resource<Stage>) -> wasmtime::Result<String> {
        Ok(self.table.get(&stage)?.id().to_owned())
    }

    fn path(&mut self, stage: Resource<Stage>) -> wasmtime::Result<String> {
        Ok(self
            .table
            .get(&stage)?
            .path()
            .to_string_lossy()
            .into_owned())
    }

    fn dir(&mut self, stage: Resource<Stage>) -> GuestResult<Resource<Descriptor>> {
        let stage = self.table.get(&stage)?;
        let dup = match stage.dir().try_clone() {
            Ok(dup) => dup,
            Err(e) => {
                return Ok(Err(to_guest(&stagelock::Error::io(
                    Op::Stage,
                    stage.path(),
                    e,
                ))));
            }
        };
        // The stage lives beneath a writable grant (areas refuse read-only roots).
        let dir = WasiDir::new(
            dup.into_std_file(),
            FsPerms::ReadWrite,
            OpenMode::READ | OpenMode::WRITE,
            false,
        );
        Ok(Ok(self.table.push(Descriptor::Dir(dir))?))
    }

    fn commit(
        &mut self,
        stage: Resource<Stage>,
        dest_dir: Resource<Descriptor>,
        dest: String,
        replace: bool,
    ) -> wasmtime::Result<Result<(), GuestCommitError>> {
        let dest = Path::new(&dest);
        let dest_dir = match self.writable_dir(&dest_dir, Op::Commit, dest)? {
            Ok(dir) => dir,
            Err(error) => {
                let stage = Some(stage); // untouched: still the guest's
                return Ok(Err(GuestCommitError { error, stage }));
            }
        };
        let stage = self.unhold(stage)?;
        let dest_dir = dest_dir.as_filelike_view::<cap_std::fs::Dir>();
        let committed = if replace {
            stage.commit_replacing(&dest_dir, dest)
        } else {
            stage.commit(&dest_dir, dest)
        };
        match committed {
            Ok(()) => Ok(Ok(())),
            Err(CommitError { error, stage }) => {
                let stage = stage.map(|s| self.hold(s)).transpose()?;
                let error = to_guest(&error);
                Ok(Err(GuestCommitError { error, stage }))
            }
        }
    }

    fn abort(&mut self, stage: Resource<Stage>) -> GuestResult<()> {
        let stage = self.unhold(stage)?;
        Ok(stage.abort().map_err(|e| to_guest(&e)))
    }

    fn drop(&mut self, stage: Resource<Stage>) -> wasmtime::Result<()> {
        drop(self.unhold(stage)?); // aborts the stage
        Ok(())
    }
}
