//! The wasmtime host of stagelock: lends containers/storage-compatible staging locks and staging
//! areas to WebAssembly components, scoped to the directories the host granted them through WASI.
//!
//! Guests call the `stagelock:staging/locks` and `stagelock:staging/staging` interfaces (the WIT
//! ships in this crate's `wit/`), passing a `wasi:filesystem` directory descriptor they hold as
//! the capability. Locks are the same OS locks as the native [`stagelock`] crate's, so guests
//! exclude each other (in one store, across stores, across engines), native holders, and other
//! processes such as containers/storage.
//!
//! # Embedding
//!
//! Keep a [`StagingLockCtx`] next to your `WasiCtx` and `ResourceTable`, implement
//! [`StagingLockView`], and add the interfaces next to WASI:
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
//! [`add_to_linker_async`], and instantiate and call with the `*_async` functions. There, the
//! functions that may block on the filesystem for long (starting a stage, commit and its
//! `fsync`s, abort, recovery, dropping a stage) run on tokio's blocking threads, as
//! wasmtime-wasi runs its own filesystem calls, so the executor stays free for other guests.
//! Lock operations (one `open` and one `fcntl`) run inline.
//!
//! To link one interface alone, use the generated `add_to_linker` of that interface with the
//! [`HasStagingLock`] marker:
//!
//! ```
//! # use stagelock_wasmtime::plugin::PluginState as State;
//! use stagelock_wasmtime::{HasStagingLock, StagingLockView, bindings};
//! # fn main() -> wasmtime::Result<()> {
//! # let engine = wasmtime::Engine::default();
//! let mut linker = wasmtime::component::Linker::<State>::new(&engine);
//! bindings::locks::add_to_linker::<State, HasStagingLock>(&mut linker, State::staging_lock)?;
//! # Ok(()) }
//! ```
//!
//! [`plugin::PluginState`] and [`plugin::plugin_linker`] do all of the above for the common
//! case of a `wasi:cli/run` command.
//!
//! # Waiting guests
//!
//! A guest waits for a busy lock with `locks.request-lock` (a timeout, or none), which returns
//! a `lock-request` ([`LockRequest`]) whose `subscribe` gives a `wasi:io/poll` pollable: the
//! guest polls it with anything else it waits for (several locks, a clock, a stream). The host
//! attempts the lock while the pollable is polled, pausing between attempts on a tokio timer
//! (0.5 ms to 10 ms), so in async embeddings a waiting guest is just a pending task and other
//! guests on the same runtime run; a sync store's `poll` blocks its thread as a clock does.
//!
//! # WIT versions
//!
//! Both linkers define `stagelock:staging@0.2.0` (this crate's `wit/`) and `@0.1.0` (in
//! `wit-compat/0.1.0`), so components built against 0.1.0 run unchanged. The versions share
//! every resource: a 0.1.0 guest and a 0.2.0 guest in one host exclude each other as two
//! 0.2.0 guests do. The 0.1.0 bindings are in [`bindings::v0_1`].
//!
//! # A fresh sandbox per request
//!
//! Compile once and pre-link with [`Linker::instantiate_pre`](wasmtime::component::Linker::instantiate_pre);
//! then each request costs only a new `Store` and
//! [`InstancePre::instantiate`](wasmtime::component::InstancePre::instantiate), less still with
//! `Config::allocation_strategy(InstanceAllocationStrategy::pooling())` (for the figures, see
//! [BENCHMARKS.md](https://github.com/stagelock/stagelock/blob/main/BENCHMARKS.md)):
//!
//! ```no_run
//! # use stagelock_wasmtime::plugin::{plugin_linker, PluginState};
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
//! - Each store holds at most [`StagingLockCtx::max_held`] locks and stages (default 1024);
//!   past it, `limit-reached`.
//! - Dropping a guest's handle releases the lock and keeps the file; dropping the store releases
//!   every lock the guest held. Only a bad handle traps.
#![deny(missing_docs)]

pub mod bindings;
mod convert;
mod ctx;
mod error;
mod linker;
mod locks;
pub mod plugin;
mod request;
mod staging;

pub use ctx::{
    DEFAULT_MAX_HELD, HasStagingLock, StagingLockCtx, StagingLockCtxView, StagingLockView,
};
pub use error::{CommitFailure, HostError};
pub use linker::{add_to_linker_async, add_to_linker_sync};
pub use request::LockRequest;
