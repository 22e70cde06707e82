//! The `locks` interface, for WIT 1.0.0, 0.2.0 and 0.1.0: each body checks its handles and
//! calls the native core; the older versions call the 1.0.0 bodies and convert what they
//! return.

use std::path::Path;
use std::time::Duration;

use stagelock::{Op, StagingLock, Wait};
use wasmtime::component::Resource;
use wasmtime_wasi::filesystem::Descriptor;
use wasmtime_wasi::p2::DynPollable;

use crate::bindings::{locks, v0_2};
use crate::convert::{guest_error, legacy_error};
use crate::ctx::StagingLockCtxView;
use crate::error::HostError;
use crate::request::LockRequest;

impl locks::Host for StagingLockCtxView<'_> {
    fn create_and_lock(
        &mut self,
        dir: Resource<Descriptor>,
        pattern: String,
    ) -> Result<(Resource<StagingLock>, String), HostError> {
        let op = Op::CreateAndLock;
        self.check_limit(op, Path::new(&pattern))?;
        let dir = self.lock_dir(&dir, op, Path::new(&pattern))?;
        let (lock, name) = dir.create_and_lock(&pattern)?;
        Ok((self.hold(lock)?, name))
    }

    fn try_lock_path(
        &mut self,
        dir: Resource<Descriptor>,
        path: String,
    ) -> Result<Resource<StagingLock>, HostError> {
        let (op, path) = (Op::TryLockPath, Path::new(&path));
        self.check_limit(op, path)?;
        let lock = self.lock_dir(&dir, op, path)?.try_lock_path(path)?;
        Ok(self.hold(lock)?)
    }

    fn request_lock(
        &mut self,
        dir: Resource<Descriptor>,
        path: String,
        timeout: Option<u64>,
    ) -> Result<Resource<LockRequest>, HostError> {
        let (op, path) = (Op::LockPath, Path::new(&path));
        self.check_limit(op, path)?;
        let dir = self.lock_dir(&dir, op, path)?;
        let wait = timeout.map_or(Wait::Forever, |ns| Wait::For(Duration::from_nanos(ns)));
        // Counted as held from now: it may hold the lock before the guest takes it.
        Ok(self.hold(LockRequest::start(dir.start_wait(path, wait)))?)
    }

    fn convert_error_code(&mut self, err: HostError) -> wasmtime::Result<locks::ErrorCode> {
        guest_error(err)
    }
}

impl StagingLockCtxView<'_> {
    /// The outcome of `request`, once: `None` while still waiting; an outcome already taken is
    /// [`HostError::outcome_taken`].
    fn take_outcome(
        &mut self,
        request: &Resource<LockRequest>,
    ) -> wasmtime::Result<Option<Result<Resource<StagingLock>, HostError>>> {
        Ok(Some(match self.table.get_mut(request)?.take() {
            None => return Ok(None),
            // The request's place under the cap passes to the lock.
            Some(Ok(lock)) => Ok(self.table.push(lock)?),
            Some(Err(Some(e))) => Err(e.into()),
            Some(Err(None)) => Err(HostError::outcome_taken()),
        }))
    }
}

impl locks::HostLockRequest for StagingLockCtxView<'_> {
    fn subscribe(
        &mut self,
        request: Resource<LockRequest>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        wasmtime_wasi::p2::subscribe(self.table, request)
    }

    /// `none` while waiting, `some(err)` when already taken, else the outcome, as wasi:http's
    /// `future-incoming-response.get` shapes it.
    #[allow(clippy::type_complexity)] // the WIT type, as bindgen spells it
    fn get(
        &mut self,
        request: Resource<LockRequest>,
    ) -> wasmtime::Result<Option<Result<Result<Resource<StagingLock>, locks::ErrorCode>, ()>>> {
        Ok(match self.take_outcome(&request)? {
            None => None,
            Some(Ok(lock)) => Some(Ok(Ok(lock))),
            Some(Err(e)) if e.is_outcome_taken() => Some(Err(())),
            Some(Err(e)) => Some(Ok(Err(guest_error(e)?))),
        })
    }

    fn drop(&mut self, request: Resource<LockRequest>) -> wasmtime::Result<()> {
        let request = self.table.delete(request)?;
        if request.counts() {
            self.ctx.held -= 1;
        }
        Ok(()) // a lock taken but not fetched is released, its file kept
    }
}

impl locks::HostStagingLock for StagingLockCtxView<'_> {
    fn path(&mut self, lock: Resource<StagingLock>) -> wasmtime::Result<String> {
        Ok(self.table.get(&lock)?.path().to_string_lossy().into_owned())
    }

    fn unlock_and_delete(&mut self, lock: Resource<StagingLock>) -> Result<(), HostError> {
        Ok(self.unhold(lock)?.unlock_and_delete()?)
    }

    fn drop(&mut self, lock: Resource<StagingLock>) -> wasmtime::Result<()> {
        drop(self.unhold(lock)?); // releases the lock, keeps the file
        Ok(())
    }
}

// The older versions: the same functions, with their own error records.

/// `locks` of an older version (`$m`), whose errors are records: the 1.0.0 bodies, each
/// error converted with `$error`; `$more` are the version's further functions.
macro_rules! legacy_locks {
    ($m:path, $error:expr, { $($more:tt)* }) => {
        const _: () = {
            use $m as m;

            impl m::Host for StagingLockCtxView<'_> {
                fn create_and_lock(
                    &mut self,
                    dir: Resource<Descriptor>,
                    pattern: String,
                ) -> Result<(Resource<StagingLock>, String), HostError> {
                    locks::Host::create_and_lock(self, dir, pattern)
                }

                fn try_lock_path(
                    &mut self,
                    dir: Resource<Descriptor>,
                    path: String,
                ) -> Result<Resource<StagingLock>, HostError> {
                    locks::Host::try_lock_path(self, dir, path)
                }

                $($more)*

                fn convert_error(&mut self, err: HostError) -> wasmtime::Result<m::Error> {
                    #[allow(clippy::useless_conversion)] // 0.2.0's record is the legacy one
                    Ok($error(err)?.into())
                }
            }

            impl m::HostStagingLock for StagingLockCtxView<'_> {
                fn path(&mut self, lock: Resource<StagingLock>) -> wasmtime::Result<String> {
                    locks::HostStagingLock::path(self, lock)
                }

                fn unlock_and_delete(
                    &mut self,
                    lock: Resource<StagingLock>,
                ) -> Result<(), HostError> {
                    locks::HostStagingLock::unlock_and_delete(self, lock)
                }

                fn drop(&mut self, lock: Resource<StagingLock>) -> wasmtime::Result<()> {
                    locks::HostStagingLock::drop(self, lock)
                }
            }
        };
    };
}

legacy_locks!(crate::bindings::v0_2::locks, legacy_error, {
    fn request_lock(
        &mut self,
        dir: Resource<Descriptor>,
        path: String,
        timeout: Option<u64>,
    ) -> Result<Resource<LockRequest>, HostError> {
        locks::Host::request_lock(self, dir, path, timeout)
    }
});
// 0.1.0 has no `request-lock`.
legacy_locks!(crate::bindings::v0_1::locks, legacy_error, {});

/// 0.2.0's `lock-request`: `get` hands out an already taken outcome as an `invalid-input`
/// error.
impl v0_2::locks::HostLockRequest for StagingLockCtxView<'_> {
    fn subscribe(
        &mut self,
        request: Resource<LockRequest>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        locks::HostLockRequest::subscribe(self, request)
    }

    fn get(
        &mut self,
        request: Resource<LockRequest>,
    ) -> wasmtime::Result<Option<Result<Resource<StagingLock>, v0_2::locks::Error>>> {
        Ok(match self.take_outcome(&request)? {
            None => None,
            Some(Ok(lock)) => Some(Ok(lock)),
            Some(Err(e)) => Some(Err(legacy_error(e)?)),
        })
    }

    fn drop(&mut self, request: Resource<LockRequest>) -> wasmtime::Result<()> {
        locks::HostLockRequest::drop(self, request)
    }
}
