//! A plugin host: compiles a `wasi:cli/run` component once, grants it one directory, and runs
//! two instances of it at once, each in its own store, on one tokio thread. The instances take
//! staging locks in the granted directory, and those exclude each other as two processes'
//! locks do. What each instance printed is shown after it, prefixed with its name.
//!
//! ```text
//! plugin_host PLUGIN.wasm DIR
//! ```
//!
//! The plugin it is written for is `tests/guests/src/bin/embedding_plugin_host.rs`: both
//! instances try `plugin.lock`; one takes it and holds it until the other has been refused it.
//! From the workspace's root:
//!
//! ```text
//! $ cargo build --release --target wasm32-wasip2 -p stagelock-test-guests --bin embedding_plugin_host
//! $ mkdir -p /tmp/plugin-dir
//! $ cargo run -p stagelock-wasmtime --example plugin_host -- \
//!       target/wasm32-wasip2/release/embedding_plugin_host.wasm /tmp/plugin-dir
//! [first] took plugin.lock
//! [first] released plugin.lock
//! [second] refused: try-lock-path "plugin.lock": held by another lock holder
//! ```
//!
//! (Which instance wins is up to the scheduler.) The test `embedding::embedding_plugin_host` in
//! `tests/components/embedding.rs` runs this file's [`run`] over that plugin.
//!
//! Every `?` here returns into [`wasmtime::Result`], wasmtime's own error type (not
//! `anyhow::Error`): `wasmtime::error::Context` gives `context` and `with_context` on results
//! and options, and `wasmtime::bail!` and `wasmtime::format_err!` make errors.

use std::path::Path;

use stagelock_wasmtime::plugin::{PluginState, plugin_linker_async};
use wasmtime::component::Component;
use wasmtime::error::Context as _;
use wasmtime::{Engine, Store};
use wasmtime_wasi::p2::bindings::CommandPre;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// The instances' names, passed to each as its only argument (after `argv[0]`).
const INSTANCES: [&str; 2] = ["first", "second"];

#[allow(dead_code)] // the test includes this file and calls `run` alone
fn main() -> wasmtime::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let (Some(plugin), Some(dir), None) = (args.next(), args.next(), args.next()) else {
        wasmtime::bail!("usage: plugin_host PLUGIN.wasm DIR");
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .context("start a tokio runtime")?;
    let outputs = runtime.block_on(run(Path::new(&plugin), Path::new(&dir)))?;
    for (name, output) in INSTANCES.iter().zip(outputs) {
        for line in output.lines() {
            println!("[{name}] {line}");
        }
    }
    Ok(())
}

/// Runs two instances of the component at `plugin` at once, each granted `dir` read-write as
/// `/work`, and returns what each printed (in the order of [`INSTANCES`]).
///
/// # Errors
///
/// If the component cannot be loaded or linked (it imports something the linker lacks), if
/// `dir` cannot be opened, if an instance traps, or if one exits with a failure (its stderr is
/// inherited: the reason is there).
pub async fn run(plugin: &Path, dir: &Path) -> wasmtime::Result<[String; 2]> {
    // Async stores need no setting of their own in wasmtime 48: an engine runs both kinds.
    let engine = Engine::default();
    let component = Component::from_file(&engine, plugin)
        .with_context(|| format!("load the component {}", plugin.display()))?;
    // Linked and type-checked once; each instance then costs a store and an instantiation.
    let linker = plugin_linker_async(&engine)?;
    let pre = CommandPre::new(linker.instantiate_pre(&component)?)
        .context("the component is not a wasi:cli/run command")?;
    // Two stores at once: while one instance waits (here, in a `wasi:io/poll` sleep), the
    // other runs.
    let (first, second) = tokio::join!(
        instance(&engine, &pre, dir, INSTANCES[0]),
        instance(&engine, &pre, dir, INSTANCES[1]),
    );
    Ok([first?, second?])
}

/// One instance of the plugin in a store of its own, run to its end; what it printed.
async fn instance(
    engine: &Engine,
    pre: &CommandPre<PluginState>,
    dir: &Path,
    name: &str,
) -> wasmtime::Result<String> {
    let stdout = MemoryOutputPipe::new(64 * 1024);
    let mut wasi = WasiCtxBuilder::new();
    wasi.args(&["plugin", name])
        .stdout(stdout.clone())
        .inherit_stderr()
        // The grant: the instance sees `dir` as `/work` and nothing else of the filesystem.
        // Locks need a read-write grant (or a directory opened beneath one).
        .preopened_dir(dir, "/work", FsPerms::ReadWrite)
        .with_context(|| format!("grant {} to {name}", dir.display()))?;
    let mut store = Store::new(engine, PluginState::new(wasi.build()));
    let command = pre.instantiate_async(&mut store).await?;
    let exit = command
        .wasi_cli_run()
        .call_run(&mut store)
        .await
        .with_context(|| format!("instance {name} trapped"))?;
    // Dropping the store releases every lock the instance still held; a stage it left open
    // is aborted (removed), as after a trap.
    drop(store);
    exit.map_err(|()| wasmtime::format_err!("instance {name} exited with a failure"))?;
    Ok(String::from_utf8_lossy(&stdout.contents()).into_owned())
}
