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
//! fn main() -> wasmtime::Result<()> {
//!     let engine = wasmtime::Engine::default();
//!     let mut linker = Linker::<State>::new(&engine);
//!     wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
//!     stagelock_wasmtime::add_to_linker_sync(&mut linker)?;
//!     Ok(())
//! }
//! ```
//!
//! The `?`s return into [`wasmtime::Result`]: wasmtime 48 has its own error type,
//! [`wasmtime::Error`], which is not `anyhow::Error`. Have your functions return
//! `wasmtime::Result<T>`, and `use wasmtime::error::Context` for `context` and `with_context`
//! (`wasmtime::bail!` and `wasmtime::format_err!` make new errors). An `anyhow` program
//! converts at the boundary: `.map_err(anyhow::Error::from)`, and the other way
//! `.map_err(wasmtime::Error::from_anyhow)` (both with wasmtime's `anyhow` feature).
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
//! Both linkers define `stagelock:staging@1.0.1` (this crate's `wit/`: 1.0.0 with each
//! function's failing situations and their cases written down, no type changed), and the
//! frozen `@0.2.0` and `@0.1.0` (in `wit-compat/`), so components built against those run
//! unchanged; components built against the released 1.0.0 (kept in `wit-compat/1.0.0`) get
//! 1.0.1 through wasmtime's semver matching. The
//! versions share every resource: guests of different versions in one host exclude each other
//! as guests of one version do. 1.0.0 guests get bare `error-code`s (only `other` carries the
//! host's text); 0.2.0 and 0.1.0 guests get their `error` records with the whole message. Their
//! bindings are in [`bindings::v0_2`] and [`bindings::v0_1`].
//!
//! Within 1.x the package only grows, every addition behind an `@since` gate (never a new case
//! of a variant: a new kind of failure reaches 1.x guests as `other`, with its text), so a later
//! 1.x needs no frozen copy: wasmtime's linker gives a component that imports `@1.0.0` the 1.x
//! this crate serves (`tests/components/compat.rs` shows one on a host serving only a 1.1.0).
//! The crate's own version follows its Rust API, not the WIT package.
//!
//! # A complete host
//!
//! Compile once and pre-link with [`Linker::instantiate_pre`](wasmtime::component::Linker::instantiate_pre)
//! (wrapped in wasmtime-wasi's `CommandPre` for a `wasi:cli/run` command); then each run
//! costs only a new `Store` and an instantiation, less still with
//! `Config::allocation_strategy(InstanceAllocationStrategy::pooling())` (for the figures, see
//! [BENCHMARKS.md](https://github.com/stagelock/stagelock/blob/main/BENCHMARKS.md)). A fresh
//! sandbox per request, each granted one directory, run to its end:
//!
//! ```no_run
//! use stagelock_wasmtime::plugin::{PluginState, plugin_linker};
//! use wasmtime::component::Component;
//! use wasmtime::error::Context as _;
//! use wasmtime::{Engine, Store};
//! use wasmtime_wasi::p2::bindings::sync::CommandPre;
//! use wasmtime_wasi::{FsPerms, WasiCtxBuilder};
//!
//! fn main() -> wasmtime::Result<()> {
//!     let engine = Engine::default();
//!     let component = Component::from_file(&engine, "plugin.wasm").context("load plugin.wasm")?;
//!     let pre = CommandPre::new(plugin_linker(&engine)?.instantiate_pre(&component)?)?;
//!     for request in 0..3 {
//!         let mut wasi = WasiCtxBuilder::new();
//!         wasi.inherit_stdio()
//!             .args(&["plugin", &request.to_string()])
//!             // Locks and stages need a read-write grant.
//!             .preopened_dir("/srv/plugin-data", "/work", FsPerms::ReadWrite)?;
//!         let mut store = Store::new(&engine, PluginState::new(wasi.build()));
//!         let command = pre.instantiate(&mut store)?;
//!         match command.wasi_cli_run().call_run(&mut store) {
//!             Ok(Ok(())) => {}
//!             Ok(Err(())) => eprintln!("request {request}: the plugin exited with a failure"),
//!             Err(trap) => eprintln!("request {request}: the plugin trapped: {trap:?}"),
//!         }
//!         // Dropping the store releases every lock the plugin still held and aborts its
//!         // stages, whether it finished or trapped.
//!     }
//!     Ok(())
//! }
//! ```
//!
//! The crate's example
//! [`examples/plugin_host.rs`](https://github.com/stagelock/stagelock/blob/main/host/stagelock-wasmtime/examples/plugin_host.rs)
//! is a complete async host (`plugin_linker_async`, `wasmtime_wasi::p2::bindings::CommandPre`,
//! `instantiate_async`): it runs two instances of a plugin at once, in two stores on one tokio
//! thread over one granted directory, and shows the second refused the lock the first holds.
//! The test command runs it (`tests/components/embedding.rs`), over the plugin
//! `tests/guests/src/bin/embedding_plugin_host.rs`; its docs say how to run it by hand.
//!
//! The example
//! [`examples/sandbox_per_request.rs`](https://github.com/stagelock/stagelock/blob/main/host/stagelock-wasmtime/examples/sandbox_per_request.rs)
//! is the loop above made complete: its engine takes instances from wasmtime's pooling
//! allocator (`InstanceAllocationStrategy::Pooling`, the wasmtime feature `pooling-allocator`)
//! and meters them with fuel, and it shows a request that panics and one that spins forever,
//! each with a stage open, trapping without leaving anything in the staging area for the next.
//!
//! Wasmtime and its compiler (Cranelift) are most of what an embedding costs to build: a
//! debug build of that example is a binary of about 320 MB, and a first build compiles
//! wasmtime, which takes minutes on a small machine.
//!
//! # Rules
//!
//! - The directory must be a descriptor for a directory granted with `FsPerms::ReadWrite` (or
//!   opened beneath such a grant), the rule wasi:filesystem applies to its own mutations;
//!   otherwise `read-only` (`not-directory` for a file descriptor).
//! - Each store holds at most [`StagingLockCtx::max_held`] locks and stages (default 1024);
//!   past it, `limit-reached`.
//! - Dropping a guest's handle releases the lock and keeps the file; dropping the store releases
//!   every lock the guest held. Only a bad handle traps.
//! - A guest that traps (a panic, a bad handle, or a limit such as fuel) leaves its store as it
//!   was: its locks stay held until the embedder drops the store. Dropping it then releases
//!   every lock (their files stay, as after a crash) and aborts every stage the guest had not
//!   committed: the stage's resource is removed under its lock, then its lock file, so
//!   [`recover_stale`](stagelock::StagingArea::recover_stale) has nothing to find. What
//!   recovery finds is what a host process left when it died itself (killed, or the machine
//!   went down) with stages open.
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

/// The README's Rust example, compiled and run as a doc test so it keeps working as written.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
