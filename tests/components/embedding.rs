//! Embedding the host the ways wasmtime's own interface crates are embedded: one interface
//! linked alone, and async stores whose executor the host functions never block.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use stagelock_tests::guests::*;
use stagelock_tests::{
    GuestRun, Scratch, assert_test_exists, component, engine, foreach_embedding, measures_time,
};
use stagelock_wasmtime::plugin::{PluginState, plugin_linker_async};
use stagelock_wasmtime::{HasStagingLock, StagingLockView, bindings};
use wasmtime::Store;
use wasmtime::component::Linker;
use wasmtime_wasi::p2::bindings::Command as AsyncCommand;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

foreach_embedding!(assert_test_exists);

/// The crate's complete example, `host/stagelock-wasmtime/examples/plugin_host.rs`, compiled
/// into this binary (its `main` unused) so that its `run` runs here over its plugin.
#[path = "../../host/stagelock-wasmtime/examples/plugin_host.rs"]
mod plugin_host;

/// The crate's sandbox-per-request example, compiled in the same way: its `serve` runs here.
#[path = "../../host/stagelock-wasmtime/examples/sandbox_per_request.rs"]
mod sandbox_per_request;

/// A linker with synchronous WASI and nothing of ours yet.
fn wasi_linker() -> Result<Linker<PluginState>> {
    let mut linker = Linker::new(engine());
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(anyhow::Error::from)?;
    Ok(linker)
}

/// Whether `linker` can instantiate the guest at `path`, else the error's text.
fn links(linker: &Linker<PluginState>, path: &'static str) -> Result<(), String> {
    linker
        .instantiate_pre(&component(path))
        .map(drop)
        .map_err(|e| format!("{e:?}"))
}

/// `locks` linked alone runs a guest that only takes locks; a guest that stages does not link.
#[test]
fn embedding_locks_only() -> Result<()> {
    let s = Scratch::new()?;
    let mut linker = wasi_linker()?;
    bindings::locks::add_to_linker::<PluginState, HasStagingLock>(
        &mut linker,
        PluginState::staging_lock,
    )
    .map_err(anyhow::Error::from)?;
    let run = GuestRun::new(&[])
        .work(s.path())
        .run_with(&linker, EMBEDDING_LOCKS_ONLY)
        .succeeded();
    assert_eq!(run.lines(), ["ok try only.lock", "ok unlock"]);
    assert!(s.names()?.is_empty());
    let refused = links(&linker, EMBEDDING_STAGING_ONLY).unwrap_err();
    assert!(refused.contains("stagelock:staging/staging"), "{refused}");
    Ok(())
}

/// `staging` linked alone runs a guest that only stages.
#[test]
fn embedding_staging_only() -> Result<()> {
    let s = Scratch::new()?;
    let mut linker = wasi_linker()?;
    bindings::sync::staging::add_to_linker::<PluginState, HasStagingLock>(
        &mut linker,
        PluginState::staging_lock,
    )
    .map_err(anyhow::Error::from)?;
    GuestRun::new(&[])
        .work(s.path())
        .run_with(&linker, EMBEDDING_STAGING_ONLY)
        .succeeded();
    assert_eq!(std::fs::read_to_string(s.join("out/data"))?, "staged");
    let refused = links(&linker, EMBEDDING_LOCKS_ONLY).unwrap_err();
    assert!(refused.contains("stagelock:staging/locks"), "{refused}");
    Ok(())
}

/// In an async store, recovery's tree removal runs off the executor: on a current-thread tokio
/// runtime a 10 ms ticker keeps ticking (no gap of [`BLOCKED`] or more, at least 5 ticks) while
/// a guest recovers a staging area of 2,000 stale stages.
#[test]
fn embedding_recover_many() -> Result<()> {
    // Its bound is on time: not while the contention stress loads every core.
    let _timed = measures_time();
    const STAGES: usize = 2000;
    let s = Scratch::new()?;
    for id in 0..STAGES {
        s.dir().write(format!("lock-{id}"), "")?; // unlocked: its builder is gone
        s.dir().create_dir(format!("temp-dir-{id}"))?;
        for file in ["a", "b", "c"] {
            s.dir().write(format!("temp-dir-{id}/{file}"), "stale")?;
        }
    }
    let component = component(EMBEDDING_RECOVER_MANY);
    let linker = plugin_linker_async(engine()).map_err(anyhow::Error::from)?;
    let stdout = MemoryOutputPipe::new(1 << 16);
    let mut wasi = WasiCtxBuilder::new();
    wasi.stdout(stdout.clone()).arg("guest");
    wasi.preopened_dir(s.path(), "/work", FsPerms::ReadWrite)
        .map_err(anyhow::Error::from)?;
    let mut store = Store::new(engine(), PluginState::new(wasi.build()));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let (result, worst, ticks, took) = runtime.block_on(async {
        let done = Arc::new(AtomicBool::new(false));
        let ticking = Arc::clone(&done);
        let ticker = tokio::spawn(async move {
            let (mut worst, mut ticks, mut last) = (Duration::ZERO, 0u32, Instant::now());
            while !ticking.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(10)).await;
                let now = Instant::now();
                worst = worst.max(now - last);
                (ticks, last) = (ticks + 1, now);
            }
            (worst, ticks)
        });
        let started = Instant::now();
        let result = async {
            let command = AsyncCommand::instantiate_async(&mut store, &component, &linker).await?;
            command.wasi_cli_run().call_run(&mut store).await
        }
        .await;
        let took = started.elapsed();
        done.store(true, Ordering::SeqCst);
        let (worst, ticks) = ticker.await.expect("the ticker ran to its end");
        (result, worst, ticks, took)
    });
    assert_eq!(result.map_err(|e| format!("{e:?}")), Ok(Ok(())));
    let out = String::from_utf8_lossy(&stdout.contents()).into_owned();
    assert_eq!(
        out.trim(),
        format!("ok area\nok recover removed={STAGES} skipped=0")
    );
    assert!(s.names()?.is_empty(), "every stale stage was removed");
    eprintln!("recovered {STAGES} stages in {took:?}: {ticks} ticks, the latest {worst:?}");
    // What this separates: with the removal on the executor, the ticker waits for the whole
    // recovery (gaps of 1.44 s and 653 ms measured, with 1 tick in all; longer under load)
    // and, were the recovery quicker than the bound, still ticks fewer than 5 times (the check
    // below). With it off the executor, gaps are the 10 ms sleep plus scheduling delay:
    // 66.6 ms was seen at load average 5 on 2 cores, which the former bound of 50 ms failed.
    const BLOCKED: Duration = Duration::from_millis(500);
    assert!(
        worst < BLOCKED,
        "a tick came {worst:?} after the previous one: the executor was blocked"
    );
    assert!(
        ticks >= 5,
        "the recovery was too quick to observe: {took:?}"
    );
    Ok(())
}

/// The plugin host example runs its plugin twice at once over one granted directory: one
/// instance takes `plugin.lock`, the other is refused it while it is held, and both end well,
/// leaving the directory empty.
#[test]
fn embedding_plugin_host() -> Result<()> {
    let s = Scratch::new()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let outputs = runtime
        .block_on(plugin_host::run(
            std::path::Path::new(EMBEDDING_PLUGIN_HOST),
            s.path(),
        ))
        .map_err(anyhow::Error::from)?;
    let mut outputs = outputs.map(|out| out.lines().map(str::to_owned).collect::<Vec<_>>());
    outputs.sort(); // which instance wins is up to the scheduler
    let [refused, took] = outputs;
    assert_eq!(took, ["took plugin.lock", "released plugin.lock"]);
    assert_eq!(
        refused,
        ["refused: try-lock-path \"plugin.lock\": held by another lock holder"]
    );
    assert!(s.names()?.is_empty(), "{:?}", s.names()?);
    Ok(())
}

/// The sandbox-per-request example serves each request in a fresh pooled instance on fuel: a
/// request that panics or spins with its stage open traps, and dropping its store aborts the
/// stage, so staging/ is empty after every request and only the built results are in out/.
#[test]
fn embedding_sandbox_request() -> Result<()> {
    let s = Scratch::new()?;
    let requests = ["build:a", "crash:b", "spin:c", "build:b"];
    let lines = sandbox_per_request::serve(
        std::path::Path::new(EMBEDDING_SANDBOX_REQUEST),
        s.path(),
        &requests,
    )
    .map_err(anyhow::Error::from)?;
    assert_eq!(
        lines,
        [
            "[build:a] committed out/a",
            "[build:a] finished; staging/ holds 0 entries",
            "[crash:b] wasm trap: wasm `unreachable` instruction executed; staging/ holds 0 entries",
            "[spin:c] wasm trap: all fuel consumed by WebAssembly; staging/ holds 0 entries",
            "[build:b] committed out/b",
            "[build:b] finished; staging/ holds 0 entries",
        ]
    );
    assert_eq!(
        std::fs::read_to_string(s.join("out/a/result"))?,
        "built for a\n"
    );
    assert_eq!(
        std::fs::read_to_string(s.join("out/b/result"))?,
        "built for b\n"
    );
    assert_eq!(s.names()?, ["out", "staging"]);
    Ok(())
}
