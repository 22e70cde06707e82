//! A fresh sandbox per request: a synchronous host that compiles and links a `wasi:cli/run`
//! component once (an `InstancePre`, as `CommandPre`), then serves each request with a new
//! instance in a new store, from wasmtime's pooling allocator (instances come from slots
//! reserved at start-up, so each costs little), on a fuel budget. A request that crashes or
//! never ends traps; dropping its store releases its locks and aborts its stage, so the next
//! request finds the staging area as clean as the last one that finished.
//!
//! ```text
//! sandbox_per_request PLUGIN.wasm DIR KIND:NAME...
//! ```
//!
//! The plugin it is written for is `tests/guests/src/bin/embedding_sandbox_request.rs`: each
//! request stages a result for `NAME` in `DIR/staging`, then (`KIND`) commits it to
//! `DIR/out/NAME` (`build`), panics (`crash`) or loops forever (`spin`). From the workspace's
//! root:
//!
//! ```text
//! $ cargo build --release --target wasm32-wasip2 -p stagelock-test-guests --bin embedding_sandbox_request
//! $ mkdir -p /tmp/sandbox-dir
//! $ cargo run -p stagelock-wasmtime --example sandbox_per_request -- \
//!       target/wasm32-wasip2/release/embedding_sandbox_request.wasm /tmp/sandbox-dir \
//!       build:a crash:b spin:c build:b
//! [build:a] committed out/a
//! [build:a] finished; staging/ holds 0 entries
//! [crash:b] wasm trap: wasm `unreachable` instruction executed; staging/ holds 0 entries
//! [spin:c] wasm trap: all fuel consumed by WebAssembly; staging/ holds 0 entries
//! [build:b] committed out/b
//! [build:b] finished; staging/ holds 0 entries
//! ```
//!
//! The test `embedding::embedding_sandbox_request` in `tests/components/embedding.rs` runs
//! this file's [`serve`] over that plugin.
//!
//! Every `?` here returns into [`wasmtime::Result`], wasmtime's own error type (not
//! `anyhow::Error`); `wasmtime::error::Context` gives `context` and `with_context`.

use std::path::Path;

use stagelock_wasmtime::plugin::{PluginState, plugin_linker};
use wasmtime::component::Component;
use wasmtime::error::Context as _;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap};
use wasmtime_wasi::p2::bindings::sync::CommandPre;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// Instructions' worth of fuel one request may burn (a `build` needs well under a million).
const FUEL: u64 = 100_000_000;

#[allow(dead_code)] // the test includes this file and calls `serve` alone
fn main() -> wasmtime::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [plugin, dir, requests @ ..] = args.as_slice() else {
        wasmtime::bail!("usage: sandbox_per_request PLUGIN.wasm DIR KIND:NAME...");
    };
    let requests: Vec<&str> = requests.iter().map(String::as_str).collect();
    for line in serve(Path::new(plugin), Path::new(dir), &requests)? {
        println!("{line}");
    }
    Ok(())
}

/// An engine whose instances come from a pool and run on fuel.
///
/// # Errors
///
/// If the pool's address space cannot be reserved.
pub fn engine() -> wasmtime::Result<Engine> {
    let mut pool = PoolingAllocationConfig::default();
    // Room for one request at a time, with headroom: a Rust component is a few core modules
    // (its code, the shims of its imports) with one linear memory.
    pool.total_component_instances(4)
        .total_core_instances(64)
        .max_core_instances_per_component(16)
        .total_memories(16)
        .max_memories_per_component(4)
        .total_tables(64)
        .max_tables_per_component(16)
        // Each request's memory stops growing at 64 MiB (a Rust guest then panics: a trap).
        .max_memory_size(64 << 20);
    let mut config = Config::new();
    config
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .consume_fuel(true);
    Engine::new(&config)
}

/// Serves each of `requests` (`KIND:NAME`) in turn with a fresh instance of the component at
/// `plugin`, granted `dir` read-write as `/work`, and returns what happened: the lines each
/// instance printed and one line of the host's per request, all prefixed `[KIND:NAME]`.
///
/// # Errors
///
/// If the component cannot be loaded or linked, if `dir` cannot be prepared or granted, or if
/// a request is not `KIND:NAME`. A request that traps or fails is reported, not an error: the
/// next one is served.
pub fn serve(plugin: &Path, dir: &Path, requests: &[&str]) -> wasmtime::Result<Vec<String>> {
    let engine = engine()?;
    let component = Component::from_file(&engine, plugin)
        .with_context(|| format!("load the component {}", plugin.display()))?;
    // Linked and type-checked once: each request then costs a store and an instantiation.
    let pre = CommandPre::new(plugin_linker(&engine)?.instantiate_pre(&component)?)
        .context("the component is not a wasi:cli/run command")?;
    for sub in ["staging", "out"] {
        let path = dir.join(sub);
        std::fs::create_dir_all(&path)
            .with_context(|| format!("create the directory {}", path.display()))?;
    }
    let mut lines = Vec::new();
    for request in requests {
        let (kind, name) = request
            .split_once(':')
            .with_context(|| format!("request {request:?}: not KIND:NAME"))?;
        let stdout = MemoryOutputPipe::new(64 * 1024);
        let mut wasi = WasiCtxBuilder::new();
        // The guest's stderr goes nowhere: a panic's message names the guest's source file.
        wasi.args(&["plugin", kind, name])
            .stdout(stdout.clone())
            .preopened_dir(dir, "/work", FsPerms::ReadWrite)
            .with_context(|| format!("grant {} to request {request}", dir.display()))?;
        let mut store = Store::new(&engine, PluginState::new(wasi.build()));
        store.set_fuel(FUEL)?;
        let outcome = match pre
            .instantiate(&mut store)
            .and_then(|command| command.wasi_cli_run().call_run(&mut store))
        {
            Ok(Ok(())) => "finished".to_owned(),
            Ok(Err(())) => "exited with a failure".to_owned(),
            Err(e) => match e.downcast_ref::<Trap>() {
                Some(trap) => trap.to_string(), // "wasm trap: ..."
                None => format!("failed: {e:#}"),
            },
        };
        // The sandbox goes: every lock it still held is released, every stage it had not
        // committed is aborted (its resource removed under its lock, then its lock file).
        drop(store);
        let left = std::fs::read_dir(dir.join("staging"))
            .context("list staging/")?
            .count();
        for line in String::from_utf8_lossy(&stdout.contents()).lines() {
            lines.push(format!("[{request}] {line}"));
        }
        lines.push(format!(
            "[{request}] {outcome}; staging/ holds {left} entries"
        ));
    }
    Ok(lines)
}
