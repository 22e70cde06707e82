//! Conveniences for the common case: store data with WASI p2 and staging locks, and a linker
//! with both, for running `wasi:cli/run` commands (what `stagelock run` does).
//!
//! Pair each linker with wasmtime-wasi's bindings of the same kind:
//!
//! | linker | command bindings | instantiate, then run |
//! |---|---|---|
//! | [`plugin_linker`] | `wasmtime_wasi::p2::bindings::sync::{Command, CommandPre}` | `pre.instantiate(&mut store)?`, `command.wasi_cli_run().call_run(&mut store)?` |
//! | [`plugin_linker_async`] | `wasmtime_wasi::p2::bindings::{Command, CommandPre}` | `pre.instantiate_async(&mut store).await?`, `command.wasi_cli_run().call_run(&mut store).await?` |
//!
//! `call_run` returns `wasmtime::Result<Result<(), ()>>`: the outer error is a trap, the inner
//! `Err(())` the command's own failure (`wasi:cli/exit` with a failure, or `main` returning
//! one). The crate docs have a complete synchronous host; the crate's example
//! `examples/plugin_host.rs` is a complete asynchronous one, run by the test command.

use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::ctx::{StagingLockCtx, StagingLockCtxView, StagingLockView};
use crate::linker::{add_to_linker_async, add_to_linker_sync};

/// Store data for the common case: WASI p2 plus staging locks.
pub struct PluginState {
    /// The WASI context (arguments, environment, stdio, preopened directories).
    pub wasi: WasiCtx,
    /// The resource table shared by WASI and the lock interfaces.
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

/// A linker with WASI p2 (synchronous) and the staging-lock interfaces, for [`PluginState`].
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

/// Like [`plugin_linker`], for async stores (`instantiate_async`, and `call_run(..).await`,
/// inside a tokio runtime with its time driver enabled).
///
/// # Errors
///
/// Only if wasmtime refuses the definitions (not expected).
///
/// # Examples
///
/// One instance of a command in an async store, granted `data` as `/work`:
///
/// ```no_run
/// use stagelock_wasmtime::plugin::{PluginState, plugin_linker_async};
/// use wasmtime::component::Component;
/// use wasmtime::{Engine, Store};
/// use wasmtime_wasi::p2::bindings::CommandPre;
/// use wasmtime_wasi::{FsPerms, WasiCtxBuilder};
///
/// async fn run_once(engine: &Engine, component: &Component) -> wasmtime::Result<()> {
///     let pre = CommandPre::new(plugin_linker_async(engine)?.instantiate_pre(component)?)?;
///     let mut wasi = WasiCtxBuilder::new();
///     wasi.inherit_stdio()
///         .preopened_dir("data", "/work", FsPerms::ReadWrite)?;
///     let mut store = Store::new(engine, PluginState::new(wasi.build()));
///     let command = pre.instantiate_async(&mut store).await?;
///     command
///         .wasi_cli_run()
///         .call_run(&mut store)
///         .await?
///         .map_err(|()| wasmtime::format_err!("the command failed"))
/// }
/// ```
pub fn plugin_linker_async(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<PluginState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    add_to_linker_async(&mut linker)?;
    Ok(linker)
}
