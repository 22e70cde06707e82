//! Trait impls of the `locks` interface (each body checks its handles and calls the native
//! core), and the checks and conversions the `staging` impls share.

use std::path::Path;
use std::sync::Arc;

use wasmtime::component::Resource;
use wasmtime_wasi::filesystem::Descriptor;

use super::StagingLockCtxView;
use super::bindings::locks::{self, ErrorCode};
use stagelock::{Error as CoreError, ErrorKind, LockDir, Op, StagingLock};

pub(super) type GuestResult<T> = wasmtime::Result<Result<T, locks::Error>>;

impl locks::Host for StagingLockCtxView<'_> {
    fn create_and_lock(
        &mut self,
        dir: Resource<Descriptor>,
        pattern: String,
    ) -> GuestResult<(Resource<StagingLock>, String)> {
        let op = Op::CreateAndLock;
        let dir = match self.lockable_dir(&dir, op, Path::new(&pattern))? {
            Ok(dir) => dir,
            Err(e) => return Ok(Err(e)),
        };
        match dir.create_and_lock(&pattern) {
            Ok((lock, name)) => Ok(Ok((self.hold(lock)?, name))),
            Err(e) => Ok(Err(to_guest(&e))),
        }
    }

    fn try_lock_path(
        &mut self,
        dir: Resource<Descriptor>,
        path: String,
    ) -> GuestResult<Resource<StagingLock>> {
        let op = Op::TryLockPath;
        let path = Path::new(&path);
        let dir = match self.lockable_dir(&dir, op, path)? {
            Ok(dir) => dir,
            Err(e) => return Ok(Err(e)),
        };
        match dir.try_lock_path(path) {
            Ok(lock) => Ok(Ok(self.hold(lock)?)),
            Err(e) => Ok(Err(to_guest(&e))),
        }
    }
}

impl locks::HostStagingLock for StagingLockCtxView<'_> {
    fn path(&mut self, lock: Resource<StagingLock>) -> wasmtime::Result<String> {
        Ok(self.table.get(&lock)?.path().to_string_lossy().into_owned())
    }

    fn unlock_and_delete(&mut self, lock: Resource<StagingLock>) -> GuestResult<()> {
        let lock = self.unhold(lock)?;
        Ok(lock.unlock_and_delete().map_err(|e| to_guest(&e)))
    }

    fn drop(&mut self, lock: Resource<StagingLock>) -> wasmtime::Result<()> {
        drop(self.unhold(lock)?); // releases the lock, keeps the file
        Ok(())
    }
}

impl StagingLockCtxView<'_> {
    /// The directory behind a guest's descriptor, if a new lock may be taken in it.
    fn lockable_dir(
        &self,
        dir: &Resource<Descriptor>,
        op: Op,
        path: &Path,
    ) -> wasmtime::Result<Result<LockDir, locks::Error>> {
        match self.check_limit(op, path) {
            Ok(()) => Ok(self.writable_dir(dir, op, path)?.map(LockDir::from_shared)),
            Err(e) => Ok(Err(e)),
        }
    }

    /// Refuses a new lock when the store already holds its cap.
    pub(super) fn check_limit(&self, op: Op, path: &Path) -> Result<(), locks::Error> {
        if self.ctx.held < self.ctx.max_held {
            return Ok(());
        }
        let why = format!(
            "this instance already holds {} locks, the host's limit",
            self.ctx.held
        );
        Err(guest_error(ErrorCode::LimitReached, op, path, &why))
    }

    /// The directory behind a guest's descriptor, if the guest may change things beneath it.
    /// A bad handle traps.
    pub(super) fn writable_dir(
        &self,
        dir: &Resource<Descriptor>,
        op: Op,
        path: &Path,
    ) -> wasmtime::Result<Result<Arc<std::fs::File>, locks::Error>> {
        let refuse = |code, why: &str| Ok(Err(guest_error(code, op, path, why)));
        let dir = match self.table.get(dir)? {
            Descriptor::Dir(dir) => dir,
            Descriptor::File(_) => {
                return refuse(
                    ErrorCode::NotADirectory,
                    "the descriptor is a file, not a directory",
                );
            }
        };
        // The same rule wasi:filesystem applies to mutations beneath a directory: its grant.
        if dir.perms.write_not_permitted() {
            return refuse(
                ErrorCode::AccessDenied,
                "the directory was granted read-only",
            );
        }
        Ok(Ok(Arc::clone(&dir.dir)))
    }

    /// Moves something that holds a lock (a lock, a stage) into the table and counts it.
    pub(super) fn hold<T: Send + 'static>(&mut self, holder: T) -> wasmtime::Result<Resource<T>> {
        let handle = self.table.push(holder)?;
        self.ctx.held += 1;
        Ok(handle)
    }

    /// Takes something that holds a lock out of the table and uncounts it.
    pub(super) fn unhold<T: 'static>(&mut self, handle: Resource<T>) -> wasmtime::Result<T> {
        let holder = self.table.delete(handle)?;
        self.ctx.held -= 1;
        Ok(holder)
    }
}

pub(super) fn guest_error(code: ErrorCode, op: Op, path: &Path, why: &str) -> locks::Error {
    locks::Error {
        code,
        message: format!("{op} {path:?}: {why}"),
    }
}

/// The one conversion from the core's error to the guest's.
pub(super) fn to_guest(err: &CoreError) -> locks::Error {
    let code = match err.kind() {
        ErrorKind::WouldBlock => ErrorCode::WouldBlock,
        ErrorKind::NotFound => ErrorCode::NotFound,
        ErrorKind::InvalidInput => ErrorCode::InvalidInput,
        ErrorKind::PermissionDenied => ErrorCode::AccessDenied,
        ErrorKind::NotAFile => ErrorCode::NotAFile,
        ErrorKind::LimitReached => ErrorCode::LimitReached,
        ErrorKind::AlreadyExists => ErrorCode::AlreadyExists,
        _ => ErrorCode::Io,
    };
    locks::Error {
        code,
        message: err.to_string(),
    }
}
