//! The `staging` interface, twice: for async stores (blocking filesystem work runs on a
//! blocking thread, off the executor) and for sync stores (inline), each for WIT 1.0.0, 0.2.0
//! and 0.1.0. All call the same steps:
//! take what is needed out of the table, do the filesystem work on owned values, put results
//! back.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use cap_std::io_lifetimes::AsFilelike;
use stagelock::{CommitOptions, LockDir, Op, Stage, StagingArea};
use wasmtime::component::Resource;
use wasmtime_wasi::filesystem::{Descriptor, Dir as WasiDir};
use wasmtime_wasi::runtime::spawn_blocking;
use wasmtime_wasi::{FsPerms, OpenMode};

use crate::bindings::staging;
use crate::ctx::StagingLockCtxView;
use crate::error::{CommitFailure, HostError};

/// The steps both bindings share.
impl StagingLockCtxView<'_> {
    fn open_area(
        &mut self,
        root: Resource<Descriptor>,
        layout: staging::Layout,
    ) -> Result<Resource<StagingArea>, HostError> {
        let root = self.writable_dir(&root, Op::Stage, Path::new("."))?;
        let area = StagingArea::in_lock_dir(&LockDir::from_shared(root), layout.into());
        Ok(self.table.push(area)?)
    }

    /// The area, to start a stage in, if the store may hold one more lock.
    fn area_for_stage(&self, area: &Resource<StagingArea>) -> Result<StagingArea, HostError> {
        self.check_limit(Op::Stage, Path::new("."))?;
        Ok(self.table.get(area)?.clone())
    }

    fn area(&self, area: &Resource<StagingArea>) -> Result<StagingArea, HostError> {
        Ok(self.table.get(area)?.clone())
    }

    fn stage_id(&self, stage: &Resource<Stage>) -> wasmtime::Result<String> {
        Ok(self.table.get(stage)?.id().to_owned())
    }

    fn stage_path(&self, stage: &Resource<Stage>) -> wasmtime::Result<String> {
        let path = self.table.get(stage)?.path();
        Ok(path.to_string_lossy().into_owned())
    }

    /// A new descriptor for the stage's resource directory (a read-write grant: areas refuse
    /// read-only roots).
    fn stage_dir(&mut self, stage: &Resource<Stage>) -> Result<Resource<Descriptor>, HostError> {
        let stage = self.table.get(stage)?;
        let dup = stage
            .dir()
            .try_clone()
            .map_err(|e| stagelock::Error::io(Op::Stage, stage.path(), e))?;
        let dir = WasiDir::new(
            dup.into_std_file(),
            FsPerms::ReadWrite,
            OpenMode::READ | OpenMode::WRITE,
            false,
        );
        Ok(self.table.push(Descriptor::Dir(dir))?)
    }

    /// Takes the stage out of the table, with the directory to commit it into.
    fn commit_begin(
        &mut self,
        stage: Resource<Stage>,
        dest_dir: &Resource<Descriptor>,
        dest: &str,
    ) -> Result<(Stage, Arc<File>), CommitFailure> {
        let stage = self.unhold(stage).map_err(HostError::from)?;
        match self.writable_dir(dest_dir, Op::Commit, Path::new(dest)) {
            Ok(dir) => Ok((stage, dir)),
            Err(error) => Err(CommitFailure {
                error,
                stage: Some(Box::new(stage)), // untouched: still the guest's
            }),
        }
    }
}

/// Commits `stage` to `dest` beneath `dest_dir` (blocking: it syncs the result).
fn commit(
    stage: Stage,
    dest_dir: Arc<File>,
    dest: String,
    options: CommitOptions,
) -> Result<(), CommitFailure> {
    let dest_dir = dest_dir.as_filelike_view::<cap_std::fs::Dir>();
    stage
        .commit_with(&dest_dir, &dest, options)
        .map_err(CommitFailure::from)
}

/// Recovers `area` (blocking) and reports it as the guest sees it.
fn recover(area: StagingArea, dry_run: bool) -> Result<staging::Report, HostError> {
    let report = if dry_run {
        area.recover_stale_dry_run()?
    } else {
        area.recover_stale()?
    };
    Ok(report.into())
}

// The impls are written once per kind of store and generated for each WIT version: their
// records convert into and from the 1.0.0 async bindings' ones (`.into()` is the identity there;
// the conversions are in `convert.rs`).

/// `staging` for the bindings at `$m`: what both kinds of store share, plus the methods that
/// differ (`$area` for `staging-area`, `$stage` for `stage`); `$commit_error` is the view's
/// method that makes the version's commit error (or the record it converts from).
macro_rules! staging {
    ($m:path, $commit_error:ident, area: { $($area:tt)* }, stage: { $($stage:tt)* }) => {
        #[allow(clippy::useless_conversion)]
        const _: () = {
            use $m as m;

            impl m::Host for StagingLockCtxView<'_> {
                fn convert_commit_error(
                    &mut self,
                    err: CommitFailure,
                ) -> wasmtime::Result<m::CommitError> {
                    Ok(self.$commit_error(err)?.into())
                }
            }

            impl m::HostStagingArea for StagingLockCtxView<'_> {
                fn open(
                    &mut self,
                    root: Resource<Descriptor>,
                    layout: m::Layout,
                ) -> Result<Resource<StagingArea>, HostError> {
                    self.open_area(root, layout.into())
                }

                fn drop(&mut self, area: Resource<StagingArea>) -> wasmtime::Result<()> {
                    self.table.delete(area)?;
                    Ok(())
                }

                $($area)*
            }

            impl m::HostStage for StagingLockCtxView<'_> {
                fn id(&mut self, stage: Resource<Stage>) -> wasmtime::Result<String> {
                    self.stage_id(&stage)
                }

                fn path(&mut self, stage: Resource<Stage>) -> wasmtime::Result<String> {
                    self.stage_path(&stage)
                }

                fn dir(&mut self, stage: Resource<Stage>) -> Result<Resource<Descriptor>, HostError> {
                    self.stage_dir(&stage)
                }

                $($stage)*
            }
        };
    };
}

/// `staging` for async stores: blocking work on a blocking thread.
macro_rules! staging_async {
    ($m:path, $commit_error:ident) => {
        staging!($m, $commit_error, area: {
            async fn stage(
                &mut self,
                area: Resource<StagingArea>,
            ) -> Result<Resource<Stage>, HostError> {
                let area = self.area_for_stage(&area)?;
                let stage = spawn_blocking(move || area.stage()).await?;
                Ok(self.hold(stage)?)
            }

            async fn recover_stale(
                &mut self,
                area: Resource<StagingArea>,
                dry_run: bool,
            ) -> Result<m::Report, HostError> {
                let area = self.area(&area)?;
                Ok(spawn_blocking(move || recover(area, dry_run)).await?.into())
            }
        }, stage: {
            async fn commit(
                &mut self,
                stage: Resource<Stage>,
                dest_dir: Resource<Descriptor>,
                dest: String,
                replace: bool,
            ) -> Result<(), CommitFailure> {
                let (stage, dir) = self.commit_begin(stage, &dest_dir, &dest)?;
                let options = CommitOptions::new().replace(replace);
                spawn_blocking(move || commit(stage, dir, dest, options)).await
            }

            async fn commit_with(
                &mut self,
                stage: Resource<Stage>,
                dest_dir: Resource<Descriptor>,
                dest: String,
                with: m::CommitOptions,
            ) -> Result<(), CommitFailure> {
                let (stage, dir) = self.commit_begin(stage, &dest_dir, &dest)?;
                let options = CommitOptions::from(staging::CommitOptions::from(with));
                spawn_blocking(move || commit(stage, dir, dest, options)).await
            }

            async fn abort(&mut self, stage: Resource<Stage>) -> Result<(), HostError> {
                let stage = self.unhold(stage)?;
                Ok(spawn_blocking(move || stage.abort()).await?)
            }

            async fn drop(&mut self, stage: Resource<Stage>) -> wasmtime::Result<()> {
                let stage = self.unhold(stage)?;
                spawn_blocking(move || drop(stage)).await; // aborts the stage
                Ok(())
            }
        });
    };
}

/// `staging` for sync stores: inline.
macro_rules! staging_sync {
    ($m:path, $commit_error:ident) => {
        staging!($m, $commit_error, area: {
            fn stage(&mut self, area: Resource<StagingArea>) -> Result<Resource<Stage>, HostError> {
                let stage = self.area_for_stage(&area)?.stage()?;
                Ok(self.hold(stage)?)
            }

            fn recover_stale(
                &mut self,
                area: Resource<StagingArea>,
                dry_run: bool,
            ) -> Result<m::Report, HostError> {
                Ok(recover(self.area(&area)?, dry_run)?.into())
            }
        }, stage: {
            fn commit(
                &mut self,
                stage: Resource<Stage>,
                dest_dir: Resource<Descriptor>,
                dest: String,
                replace: bool,
            ) -> Result<(), CommitFailure> {
                let (stage, dir) = self.commit_begin(stage, &dest_dir, &dest)?;
                commit(stage, dir, dest, CommitOptions::new().replace(replace))
            }

            fn commit_with(
                &mut self,
                stage: Resource<Stage>,
                dest_dir: Resource<Descriptor>,
                dest: String,
                with: m::CommitOptions,
            ) -> Result<(), CommitFailure> {
                let (stage, dir) = self.commit_begin(stage, &dest_dir, &dest)?;
                let options = CommitOptions::from(staging::CommitOptions::from(with));
                commit(stage, dir, dest, options)
            }

            fn abort(&mut self, stage: Resource<Stage>) -> Result<(), HostError> {
                Ok(self.unhold(stage)?.abort()?)
            }

            fn drop(&mut self, stage: Resource<Stage>) -> wasmtime::Result<()> {
                drop(self.unhold(stage)?); // aborts the stage
                Ok(())
            }
        });
    };
}

staging_async!(crate::bindings::staging, commit_error);
staging_async!(crate::bindings::v0_2::staging, legacy_commit_error);
staging_async!(crate::bindings::v0_1::staging, legacy_commit_error);
staging_sync!(crate::bindings::sync::staging, commit_error);
staging_sync!(crate::bindings::v0_2::sync::staging, legacy_commit_error);
staging_sync!(crate::bindings::v0_1::sync::staging, legacy_commit_error);
