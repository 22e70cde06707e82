//! The wasmtime host: lends staging locks to WebAssembly components, scoped to the directories
//! the host granted them through WASI.
//!
//! Guests call the `stagelock:staging/locks` interface (see `wit/locks.wit`), passing a
//! `wasi:filesystem` directory descriptor they hold as the capability. Locks are the same OS
//! locks as the native API's, so guests exclude each other (in one store, across stores, across
//! engines), native holders, and other processes.
//!
//! # Embedding
//!
//! Keep a [`StagingLockCtx`] next to your `WasiCtx` and `ResourceTable`, implement
//! [`StagingLockView`], and add the interface next to WASI:
//!
//! ```
//! use stagelock_wasmtime::{StagingLockCtx, StagingLockCtxView, StagingLockView};
//! use wasmtime::component::{Linker, ResourceTable};
//! use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
//!
//! struct State {
//!     wasi: WasiCtx,
//!     table: ResourceTable,
//!     locks: StagingLockCtx,
//! }
//!
//! impl WasiView for State {
//!     fn ctx(&mut self) -> WasiCtxView<'_> {
//!         WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
//!     }
//! }
//!
//! impl StagingLockView for State {
//!     fn staging_lock(&mut self) -> StagingLockCtxView<'_> {
//!         StagingLockCtxView { ctx: &mut self.locks, table: &mut self.table }
//!     }
//! }
//!
//! # fn main() -> wasmtime::Result<()> {
//! let engine = wasmtime::Engine::default();
//! let mut linker = Linker::<State>::new(&engine);
//! wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
//! stagelock_wasmtime::add_to_linker_sync(&mut linker)?;
//! # Ok(()) }
//! ```
//!
//! Async (tokio) embedders call `wasmtime_wasi::p2::add_to_linker_async` and
//! [`add_to_linker_async`] instead; nothing else changes. [`PluginState`] and [`plugin_linker`]
//! do all of the above for the common case.
//!
//! # A fresh sandbox per request
//!
//! Compile once and pre-link with [`Linker::instantiate_pre`]; then each request costs a new
//! `Store` and [`InstancePre::instantiate`](wasmtime::component::InstancePre::instantiate)
//! (about 16 µs here, 11 µs with `Config::allocation_strategy(InstanceAllocationStrategy::pooling())`;
//! see BENCHMARKS.md):
//!
//! ```no_run
//! # use stagelock_wasmtime::{plugin_linker, PluginState};
//! # fn main() -> wasmtime::Result<()> {
//! let engine = wasmtime::Engine::default();
//! let component = wasmtime::component::Component::from_file(&engine, "plugin.wasm")?;
//! let pre = plugin_linker(&engine)?.instantiate_pre(&component)?;
//! for _request in 0..3 {
//!     let wasi = wasmtime_wasi::WasiCtxBuilder::new().build();
//!     let mut store = wasmtime::Store::new(&engine, PluginState::new(wasi));
//!     let _instance = pre.instantiate(&mut store)?;
//!     // ... call it; dropping the store releases every lock it took ...
//! }
//! # Ok(()) }
//! ```
//!
//! # Rules
//!
//! - The directory must be a descriptor for a directory granted with `FsPerms::ReadWrite` (or
//!   opened beneath such a grant), the rule wasi:filesystem applies to its own mutations;
//!   otherwise `access-denied` (`not-a-directory` for a file descriptor).
//! - Each store holds at most [`StagingLockCtx::max_held`] locks (default 1024); past it,
//!   `limit-reached`.
//! - Dropping a guest's handle releases the lock and keeps the file; dropping the store releases
//!   every lock the guest held. Only a bad handle traps.

mod bindings;
mod locks;
mod staging;

use wasmtime::component::{HasData, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

pub use bindings::locks::{Error as GuestError, ErrorCode};

/// The default cap on locks one store may hold at once.
pub const DEFAULT_MAX_HELD: usize = 1024;

/// Per-store staging-lock state: the cap on held locks, and how many are held.
#[derive(Debug)]
pub struct StagingLockCtx {
    max_held: usize,
    held: usize,
}

impl Default for StagingLockCtx {
    fn default() -> Self {
        Self::new()
    }
}

impl StagingLockCtx {
    /// A context with the default cap of [`DEFAULT_MAX_HELD`] locks.
    pub fn new() -> Self {
        StagingLockCtx {
            max_held: DEFAULT_MAX_HELD,
            held: 0,
        }
    }

    /// Sets how many locks the store may hold at once; further requests get `limit-reached`.
    pub fn set_max_held(&mut self, max: usize) -> &mut Self {
        self.max_held = max;
        self
    }

    /// The cap on locks held at once.
    pub fn max_held(&self) -> usize {
        self.max_held
    }

    /// How many locks the guest holds right now (handles not yet dropped or unlocked).
    pub fn held(&self) -> usize {
        self.held
    }
}

/// What the host functions need from the store: the lock state and the store's resource table
/// (the same table WASI keeps descriptors in).
pub struct StagingLockCtxView<'a> {
    /// The store's staging-lock state.
    pub ctx: &'a mut StagingLockCtx,
    /// The store's resource table, shared with WASI.
    pub table: &'a mut ResourceTable,
}

/// Implemented by store data that lends staging locks to guests.
pub trait StagingLockView: Send {
    /// Borrows the lock state and the resource table.
    fn staging_lock(&mut self) -> StagingLockCtxView<'_>;
}

struct HasStagingLock;

impl HasData for HasStagingLock {
    type Data<'a> = StagingLockCtxView<'a>;
}

/// Adds `stagelock:staging/locks` and `stagelock:staging/staging` to a linker of synchronous
/// stores.
///
/// # Errors
///
/// If the linker already defines the interface.
pub fn add_to_linker_sync<T: StagingLockView + 'static>(
    linker: &mut Linker<T>,
) -> wasmtime::Result<()> {
    bindings::locks::add_to_linker::<T, HasStagingLock>(linker, T::staging_lock)?;
    bindings::staging::add_to_linker::<T, HasStagingLock>(linker, T::staging_lock)
}

/// Adds `stagelock:staging/locks` and `stagelock:staging/staging` to a linker of async stores.
///
/// The functions never wait for a lock (every lock operation is non-blocking) and run inline on
/// the executor, like wasmtime-wasi's own synchronous functions. Recovery, aborting a stage and
/// replacing a destination remove directory trees inline too: embedders with large stages on
/// slow filesystems may want to run those guests on a blocking-friendly thread.
///
/// # Errors
///
/// If the linker already defines the interface.
pub fn add_to_linker_async<T: StagingLockView + 'static>(
    linker: &mut Linker<T>,
) -> wasmtime::Result<()> {
    add_to_linker_sync(linker)
}

/// Store data for the common case: WASI p2 plus staging locks.
pub struct PluginState {
    /// The WASI context (arguments, environment, stdio, preopened directories).
    pub wasi: WasiCtx,
    /// The resource table shared by WASI and the lock interface.
    pub table: ResourceTable,
    /// The staging-lock state.
    pub locks: StagingLockCtx,
}

impl PluginState {
    /// Store data around `wasi`, with an empty table and the default lock cap.
    pub fn new(wasi: WasiCtx) -> Self {
        PluginState {
            wasi,
            table: ResourceTable::new(),
            locks: StagingLockCtx::new(),
        }
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl StagingLockView for PluginState {
    fn staging_lock(&mut self) -> StagingLockCtxView<'_> {
        StagingLockCtxView {
            ctx: &mut self.locks,
            table: &mut self.table,
        }
    }
}

/// A linker with WASI p2 (synchronous) and the staging-lock interface, for [`PluginState`].
///
/// # Errors
///
/// Only if wasmtime refuses the definitions (not expected).
pub fn plugin_linker(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<PluginState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    add_to_linker_sync(&mut linker)?;
    Ok(linker)
}
