//! The `locks` interface, for WIT 0.2.0 and 0.1.0: each body checks its handles and calls the
//! native core.

use std::path::Path;
use std::time::Duration;

use stagelock::{Op, StagingLock, Wait};
use wasmtime::component::Resource;
use wasmtime_wasi::filesystem::Descriptor;
use wasmtime_wasi::p2::DynPollable;

use crate::bindings::{locks, v0_1};
use crate::convert::guest_error;
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

    fn convert_error(&mut self, err: HostError) -> wasmtime::Result<locks::Error> {
        guest_error(err)
    }
}

impl locks::HostLockRequest for StagingLockCtxView<'_> {
    fn subscribe(
        &mut self,
        request: Resource<LockRequest>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        wasmtime_wasi::p2::subscribe(self.table, request)
    }

    fn get(
        &mut self,
        request: Resource<LockRequest>,
    ) -> wasmtime::Result<Option<Result<Resource<StagingLock>, locks::Error>>> {
        let outcome = match self.table.get_mut(&request)?.take() {
            None => return Ok(None),
            // The request's place under the cap passes to the lock.
            Some(Ok(lock)) => Ok(self.table.push(lock)?),
            Some(Err(Some(e))) => Err(guest_error(e.into())?),
            Some(Err(None)) => Err(guest_error(HostError::outcome_taken())?),
        };
        Ok(Some(outcome))
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

// WIT 0.1.0: the same functions, with its own error record.

impl v0_1::locks::Host for StagingLockCtxView<'_> {
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

    fn convert_error(&mut self, err: HostError) -> wasmtime::Result<v0_1::locks::Error> {
        Ok(guest_error(err)?.into())
    }
}

impl v0_1::locks::HostStagingLock for StagingLockCtxView<'_> {
    fn path(&mut self, lock: Resource<StagingLock>) -> wasmtime::Result<String> {
        locks::HostStagingLock::path(self, lock)
    }

    fn unlock_and_delete(&mut self, lock: Resource<StagingLock>) -> Result<(), HostError> {
        locks::HostStagingLock::unlock_and_delete(self, lock)
    }

    fn drop(&mut self, lock: Resource<StagingLock>) -> wasmtime::Result<()> {
        locks::HostStagingLock::drop(self, lock)
    }
}
