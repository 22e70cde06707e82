//! Adding both interfaces, in both WIT versions, to a linker of sync or async stores.

use wasmtime::component::Linker;

use crate::bindings::{self, v0_1, v0_2};
use crate::ctx::{HasStagingLock, StagingLockView};

/// Adds `stagelock:staging/locks` and `stagelock:staging/staging` (1.0.1, and the frozen 0.2.0
/// and 0.1.0, so components built against any of them run) to a linker of synchronous stores: every function runs
/// inline, except that a guest waiting on a `lock-request` blocks in `wasi:io/poll` as it does
/// on a clock.
///
/// # Errors
///
/// If the linker already defines the interfaces.
pub fn add_to_linker_sync<T: StagingLockView + 'static>(
    linker: &mut Linker<T>,
) -> wasmtime::Result<()> {
    let get = T::staging_lock;
    bindings::locks::add_to_linker::<T, HasStagingLock>(linker, get)?;
    bindings::sync::staging::add_to_linker::<T, HasStagingLock>(linker, get)?;
    v0_2::locks::add_to_linker::<T, HasStagingLock>(linker, get)?;
    v0_2::sync::staging::add_to_linker::<T, HasStagingLock>(linker, get)?;
    v0_1::locks::add_to_linker::<T, HasStagingLock>(linker, get)?;
    v0_1::sync::staging::add_to_linker::<T, HasStagingLock>(linker, get)
}

/// Adds `stagelock:staging/locks` and `stagelock:staging/staging` (1.0.1, 0.2.0 and 0.1.0) to a
/// linker of async stores: the functions that may block on the filesystem for long run on
/// tokio's blocking threads, and a guest waiting on a `lock-request` waits on a tokio timer, so
/// other tasks run meanwhile.
///
/// Components that import `staging` must then be instantiated and called with the `*_async`
/// functions (`instantiate_async`, `call_async`).
///
/// # Errors
///
/// If the linker already defines the interfaces.
pub fn add_to_linker_async<T: StagingLockView + 'static>(
    linker: &mut Linker<T>,
) -> wasmtime::Result<()> {
    let get = T::staging_lock;
    bindings::locks::add_to_linker::<T, HasStagingLock>(linker, get)?;
    bindings::staging::add_to_linker::<T, HasStagingLock>(linker, get)?;
    v0_2::locks::add_to_linker::<T, HasStagingLock>(linker, get)?;
    v0_2::staging::add_to_linker::<T, HasStagingLock>(linker, get)?;
    v0_1::locks::add_to_linker::<T, HasStagingLock>(linker, get)?;
    v0_1::staging::add_to_linker::<T, HasStagingLock>(linker, get)
}
