//! The `locks` interface (each body checks its handles and calls the native core), and the
//! handle checks the `staging` interface shares.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use stagelock::{LockDir, Op, StagingLock, Wait};
use wasmtime::component::Resource;
use wasmtime_wasi::filesystem::Descriptor;
use wasmtime_wasi::p2::DynPollable;

use crate::bindings::locks::{self, ErrorCode};
use crate::bindings::v0_1;
use crate::{HostError, LockRequest, StagingLockCtxView};

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
        err.into_guest()
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
            Some(Err(Some(e))) => Err(HostError::from(e).into_guest()?),
            Some(Err(None)) => Err(locks::Error {
                code: ErrorCode::InvalidInput,
                message: "lock-request.get: the outcome was already taken".to_owned(),
            }),
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
        Ok(err.into_guest()?.into())
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

impl StagingLockCtxView<'_> {
    /// Refuses a new lock when the store already holds its cap.
    pub(crate) fn check_limit(&self, op: Op, path: &Path) -> Result<(), HostError> {
        if self.ctx.held < self.ctx.max_held {
            return Ok(());
        }
        let why = format!(
            "this instance already holds {} locks, the host's limit",
            self.ctx.held
        );
        Err(HostError::guest(ErrorCode::LimitReached, op, path, &why))
    }

    /// The directory behind a guest's descriptor, if the guest may change things beneath it
    /// (the rule wasi:filesystem applies to its own mutations: a read-write grant). A bad
    /// handle traps.
    pub(crate) fn writable_dir(
        &self,
        dir: &Resource<Descriptor>,
        op: Op,
        path: &Path,
    ) -> Result<Arc<File>, HostError> {
        match self.table.get(dir)? {
            Descriptor::Dir(dir) if dir.perms.write_not_permitted() => Err(HostError::guest(
                ErrorCode::AccessDenied,
                op,
                path,
                "the directory was granted read-only",
            )),
            Descriptor::Dir(dir) => Ok(Arc::clone(&dir.dir)),
            Descriptor::File(_) => Err(HostError::guest(
                ErrorCode::NotADirectory,
                op,
                path,
                "the descriptor is a file, not a directory",
            )),
        }
    }

    /// [`writable_dir`](Self::writable_dir) as a [`LockDir`]. The last one is kept, so a guest
    /// locking in one directory pays for making it (an `fstatfs`) once.
    fn lock_dir(
        &mut self,
        dir: &Resource<Descriptor>,
        op: Op,
        path: &Path,
    ) -> Result<LockDir, HostError> {
        let file = self.writable_dir(dir, op, path)?;
        // The cache holds the handle, so its allocation cannot be reused by another one.
        if let Some((last, locks)) = &self.ctx.last_dir
            && Arc::ptr_eq(last, &file)
        {
            return Ok(locks.clone());
        }
        let locks = LockDir::from_shared(Arc::clone(&file));
        self.ctx.last_dir = Some((file, locks.clone()));
        Ok(locks)
    }

    /// Moves something that holds a lock (a lock, a stage) into the table and counts it.
    pub(crate) fn hold<T: Send + 'static>(&mut self, holder: T) -> wasmtime::Result<Resource<T>> {
        let handle = self.table.push(holder)?;
        self.ctx.held += 1;
        Ok(handle)
    }

    /// Takes something that holds a lock out of the table and uncounts it.
    pub(crate) fn unhold<T: 'static>(&mut self, handle: Resource<T>) -> wasmtime::Result<T> {
        let holder = self.table.delete(handle)?;
        self.ctx.held -= 1;
        Ok(holder)
    }
}
