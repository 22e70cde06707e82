//! Conveniences for the common case: store data with WASI p2 and staging locks, and a linker
//! with both, for running `wasi:cli/run` commands (what `stagelock run` does).

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

/// Like [`plugin_linker`], for async stores (`instantiate_async`, `call_async`, inside a tokio
/// runtime).
///
/// # Errors
///
/// Only if wasmtime refuses the definitions (not expected).
pub fn plugin_linker_async(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<PluginState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    add_to_linker_async(&mut linker)?;
    Ok(linker)
}
