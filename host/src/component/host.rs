//! Trait impls of the `locks` interface: each body checks its handles and calls the native core.

use std::path::Path;
use std::sync::Arc;

use wasmtime::component::Resource;
use wasmtime_wasi::filesystem::Descriptor;

use super::StagingLockCtxView;
use super::bindings::locks::{self, ErrorCode};
use crate::StagingLock;
use crate::error::{Error as CoreError, ErrorKind, Op};
use crate::lock::SharedDir;

type GuestResult<T> = wasmtime::Result<Result<T, locks::Error>>;

impl locks::Host for StagingLockCtxView<'_> {
    fn create_and_lock(
        &mut self,
        dir: Resource<Descriptor>,
        pattern: String,
    ) -> GuestResult<(Resource<StagingLock>, String)> {
        let op = Op::CreateAndLock;
        let dir = match self.dir(&dir, op, Path::new(&pattern))? {
            Ok(dir) => dir,
            Err(e) => return Ok(Err(e)),
        };
        match StagingLock::create_and_lock_shared(&dir, &pattern) {
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
        let dir = match self.dir(&dir, op, path)? {
            Ok(dir) => dir,
            Err(e) => return Ok(Err(e)),
        };
        match StagingLock::try_lock_path_shared(&dir, path) {
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
        let lock = self.table.delete(lock)?;
        self.ctx.held -= 1;
        Ok(lock.unlock_and_delete().map_err(|e| to_guest(&e)))
    }

    fn drop(&mut self, lock: Resource<StagingLock>) -> wasmtime::Result<()> {
        drop(self.table.delete(lock)?); // releases the lock, keeps the file
        self.ctx.held -= 1;
        Ok(())
    }
}

impl StagingLockCtxView<'_> {
    /// The directory behind a guest's descriptor, if locks may be taken in it. A bad handle traps.
    fn dir(
        &self,
        dir: &Resource<Descriptor>,
        op: Op,
        path: &Path,
    ) -> wasmtime::Result<Result<SharedDir, locks::Error>> {
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
        if self.ctx.held >= self.ctx.max_held {
            let why = format!(
                "this instance already holds {} locks, the host's limit",
                self.ctx.held
            );
            return refuse(ErrorCode::LimitReached, &why);
        }
        Ok(Ok(Arc::clone(&dir.dir)))
    }

    /// Moves a new lock into the table and counts it.
    fn hold(&mut self, lock: StagingLock) -> wasmtime::Result<Resource<StagingLock>> {
        let handle = self.table.push(lock)?;
        self.ctx.held += 1;
        Ok(handle)
    }
}

fn guest_error(code: ErrorCode, op: Op, path: &Path, why: &str) -> locks::Error {
    locks::Error {
        code,
        message: format!("{op} {path:?}: {why}"),
    }
}

/// The one conversion from the core's error to the guest's.
fn to_guest(err: &CoreError) -> locks::Error {
    let code = match err.kind() {
        ErrorKind::WouldBlock => ErrorCode::WouldBlock,
        ErrorKind::NotFound => ErrorCode::NotFound,
        ErrorKind::InvalidInput => ErrorCode::InvalidInput,
        ErrorKind::PermissionDenied => ErrorCode::AccessDenied,
        ErrorKind::NotAFile => ErrorCode::NotAFile,
        ErrorKind::LimitReached => ErrorCode::LimitReached,
        ErrorKind::AlreadyExists => ErrorCode::AlreadyExists,
        ErrorKind::Other => ErrorCode::Io,
    };
    locks::Error {
        code,
        message: err.to_string(),
    }
}
