//! The one guest runner: an engine, a linker as an embedder would link it, compiled guests
//! cached on disk, and [`GuestRun`] for one run of a guest (built with the `components`
//! feature, the default). A second [`Host`], [`fuel_host`], runs guests that must be able to
//! run out of fuel.

use std::path::Path;
use std::sync::{Mutex, OnceLock};

use crate::guests;

/// The engine every guest of this process runs on: the default configuration, with an on-disk
/// cache of compiled components shared by every test binary and run.
pub fn engine() -> &'static wasmtime::Engine {
    &host().engine
}

/// The component at `path` (one of the [`guests`] paths), compiled (or loaded from the cache)
/// once per process.
pub fn component(path: &'static str) -> wasmtime::component::Component {
    host().component(path)
}

type Slot = std::sync::Arc<OnceLock<wasmtime::component::Component>>;

/// An engine, a linker (WASI p2 plus staging locks, as an embedder would link them) and the
/// components loaded so far.
pub struct Host {
    engine: wasmtime::Engine,
    linker: wasmtime::component::Linker<stagelock_wasmtime::plugin::PluginState>,
    linker_async: wasmtime::component::Linker<stagelock_wasmtime::plugin::PluginState>,
    components: Mutex<std::collections::HashMap<&'static str, Slot>>,
}

impl Host {
    /// An engine of `config` with the on-disk cache, and its linkers.
    /// (On Windows without it: the build's paths are Unix paths, which wine runs beneath `Z:`
    /// but which are not absolute there, as the cache's must be.)
    fn new(mut config: wasmtime::Config) -> Host {
        if cfg!(unix) {
            let mut cache = wasmtime::CacheConfig::new();
            cache.with_directory(guests::CACHE_DIR);
            config.cache(Some(
                wasmtime::Cache::new(cache).expect("open the compilation cache"),
            ));
        }
        let engine = wasmtime::Engine::new(&config).expect("an engine");
        let linker =
            stagelock_wasmtime::plugin::plugin_linker(&engine).expect("link WASI and locks");
        let linker_async = stagelock_wasmtime::plugin::plugin_linker_async(&engine)
            .expect("link WASI and locks for async stores");
        Host {
            engine,
            linker,
            linker_async,
            components: Mutex::default(),
        }
    }

    /// The component at `path` (one of the [`guests`] paths) for this engine, compiled (or
    /// loaded from the cache) once per process.
    pub fn component(&self, path: &'static str) -> wasmtime::component::Component {
        let slot = {
            let mut slots = self.components.lock().unwrap_or_else(|p| p.into_inner());
            slots.entry(path).or_default().clone()
        };
        // Compiled outside the map's lock: tests loading different guests compile in parallel.
        slot.get_or_init(|| {
            wasmtime::component::Component::from_file(&self.engine, path)
                .unwrap_or_else(|e| panic!("load {path}: {e:?}"))
        })
        .clone()
    }
}

fn host() -> &'static Host {
    static HOST: OnceLock<Host> = OnceLock::new();
    HOST.get_or_init(|| Host::new(wasmtime::Config::new()))
}

/// The host for guests that must be able to run out of fuel: its engine counts fuel, and a
/// store on it is given its fuel (`Store::set_fuel`) in the `setup` of [`GuestRun::run_on`]
/// before it runs a guest: a guest that computes past it traps with `OutOfFuel`. (Its
/// compiled guests are cached apart from [`host`]'s: another configuration.)
pub fn fuel_host() -> &'static Host {
    static HOST: OnceLock<Host> = OnceLock::new();
    HOST.get_or_init(|| {
        let mut config = wasmtime::Config::new();
        config.consume_fuel(true);
        Host::new(config)
    })
}

/// The contention stress guest in a store of this process: `holds` holds of `paths` shared
/// paths in `dir`, stamped on `log` as [`crate::check_holds`] reads them.
pub fn stress_guest(
    dir: &Path,
    paths: usize,
    holds: usize,
    tag: &str,
    log: std::fs::File,
) -> anyhow::Result<()> {
    let done = GuestRun::new(&[&paths.to_string(), &holds.to_string(), tag])
        .work(dir)
        .stdout_to(log)
        .run(guests::CONTENTION_STRESS);
    match done.outcome {
        Ok(()) => Ok(()),
        Err(e) => anyhow::bail!("guest {tag}: {e}\n{}", done.stderr),
    }
}

/// One run of a guest: its arguments, grants and cap, then [`GuestRun::run`]. Stdout and stderr
/// are kept in memory unless redirected.
pub struct GuestRun {
    wasi: wasmtime_wasi::WasiCtxBuilder,
    stdout: wasmtime_wasi::p2::pipe::MemoryOutputPipe,
    stderr: wasmtime_wasi::p2::pipe::MemoryOutputPipe,
    max_held: Option<usize>,
}

impl GuestRun {
    /// A run with `args` after an `argv[0]` of `guest`, and no grant yet.
    pub fn new(args: &[&str]) -> Self {
        let stdout = wasmtime_wasi::p2::pipe::MemoryOutputPipe::new(1 << 22);
        let stderr = wasmtime_wasi::p2::pipe::MemoryOutputPipe::new(1 << 20);
        let mut wasi = wasmtime_wasi::WasiCtxBuilder::new();
        wasi.arg("guest")
            .args(args)
            .stdout(stdout.clone())
            .stderr(stderr.clone());
        GuestRun {
            wasi,
            stdout,
            stderr,
            max_held: None,
        }
    }

    /// Grants `host` to the guest at `guest` with `perms`.
    pub fn grant(mut self, host: &Path, guest: &str, perms: wasmtime_wasi::FsPerms) -> Self {
        self.wasi
            .preopened_dir(host, guest, perms)
            .unwrap_or_else(|e| panic!("grant {}: {e:?}", host.display()));
        self
    }

    /// Grants `dir` read-write at `/work`.
    pub fn work(self, dir: &Path) -> Self {
        self.grant(dir, "/work", wasmtime_wasi::FsPerms::ReadWrite)
    }

    /// Caps the locks the guest may hold at once (the host's default otherwise).
    pub fn max_held(mut self, max: usize) -> Self {
        self.max_held = Some(max);
        self
    }

    /// Sends the guest's stdout to `file` instead of memory.
    pub fn stdout_to(mut self, file: std::fs::File) -> Self {
        self.wasi.stdout(wasmtime_wasi::cli::OutputFile::new(file));
        self
    }

    /// Gives the guest `stdin` (empty otherwise) and sends its stdout to `stdout` instead of
    /// memory: for a guest the test talks to while it runs.
    pub fn stdio(
        mut self,
        stdin: impl wasmtime_wasi::cli::StdinStream + 'static,
        stdout: impl wasmtime_wasi::cli::StdoutStream + 'static,
    ) -> Self {
        self.wasi.stdin(stdin).stdout(stdout);
        self
    }

    /// Runs the guest at `path` (one of the [`guests`] paths) in a fresh store, to its end.
    pub fn run(self, path: &'static str) -> Finished {
        self.run_with(&host().linker, path)
    }

    /// [`run`](Self::run) with the embedder's own (synchronous) `linker`.
    pub fn run_with(
        mut self,
        linker: &wasmtime::component::Linker<stagelock_wasmtime::plugin::PluginState>,
        path: &'static str,
    ) -> Finished {
        let component = component(path);
        let store = self.store(host());
        self.run_in(store, &component, linker)
    }

    /// [`run`](Self::run) on `host`'s engine and sync linker, with `setup` given the store
    /// first (to give it its fuel).
    pub fn run_on(
        mut self,
        host: &Host,
        path: &'static str,
        setup: impl FnOnce(&mut wasmtime::Store<stagelock_wasmtime::plugin::PluginState>),
    ) -> Finished {
        let component = host.component(path);
        let mut store = self.store(host);
        setup(&mut store);
        self.run_in(store, &component, &host.linker)
    }

    fn run_in(
        self,
        mut store: wasmtime::Store<stagelock_wasmtime::plugin::PluginState>,
        component: &wasmtime::component::Component,
        linker: &wasmtime::component::Linker<stagelock_wasmtime::plugin::PluginState>,
    ) -> Finished {
        let command =
            wasmtime_wasi::p2::bindings::sync::Command::instantiate(&mut store, component, linker)
                .expect("instantiate the guest");
        let ran = command.wasi_cli_run().call_run(&mut store);
        self.finish(ran, store)
    }

    /// [`run`](Self::run) in an async store (`plugin_linker_async`), as a future for the
    /// caller's tokio runtime.
    pub async fn run_async(self, path: &'static str) -> Finished {
        self.run_async_on(host(), path, |_| {}).await
    }

    /// [`run_async`](Self::run_async) on `host`'s engine and async linker, with `setup` given
    /// the store first. Dropping the future drops the store with it (as a crash would).
    pub async fn run_async_on(
        mut self,
        host: &Host,
        path: &'static str,
        setup: impl FnOnce(&mut wasmtime::Store<stagelock_wasmtime::plugin::PluginState>),
    ) -> Finished {
        let component = host.component(path);
        let mut store = self.store(host);
        setup(&mut store);
        let command = wasmtime_wasi::p2::bindings::Command::instantiate_async(
            &mut store,
            &component,
            &host.linker_async,
        )
        .await
        .expect("instantiate the guest");
        let ran = command.wasi_cli_run().call_run(&mut store).await;
        self.finish(ran, store)
    }

    fn store(&mut self, host: &Host) -> wasmtime::Store<stagelock_wasmtime::plugin::PluginState> {
        let mut state = stagelock_wasmtime::plugin::PluginState::new(self.wasi.build());
        if let Some(max) = self.max_held {
            state.locks.set_max_held(max);
        }
        wasmtime::Store::new(&host.engine, state)
    }

    fn finish(
        self,
        ran: wasmtime::Result<std::result::Result<(), ()>>,
        store: wasmtime::Store<stagelock_wasmtime::plugin::PluginState>,
    ) -> Finished {
        let trap = ran.as_ref().err().and_then(|e| e.downcast_ref().copied());
        let outcome = match ran {
            Ok(Ok(())) => Ok(()),
            Ok(Err(())) => Err("run returned an error".to_owned()),
            Err(e) => match e.downcast_ref::<wasmtime_wasi::I32Exit>() {
                Some(exit) => Err(format!("exit {}", exit.0)),
                None => Err(format!("trap: {e:?}")),
            },
        };
        let text = |p: &wasmtime_wasi::p2::pipe::MemoryOutputPipe| {
            String::from_utf8_lossy(&p.contents()).into_owned()
        };
        Finished {
            stdout: text(&self.stdout),
            stderr: text(&self.stderr),
            outcome,
            trap,
            store,
        }
    }
}

/// Runs the guest at `path` with `args` in `dir` (granted read-write at `/work`), and checks
/// that it succeeded.
pub fn run_guest(path: &'static str, dir: &Path, args: &[&str]) -> Finished {
    GuestRun::new(args).work(dir).run(path).succeeded()
}

/// A finished guest run; its store (and whatever the guest left held in it) lives until this
/// is dropped.
pub struct Finished {
    /// What the guest printed (empty if it was sent to a file).
    pub stdout: String,
    /// What the guest printed on stderr.
    pub stderr: String,
    /// `Ok` if `run` returned success, else `exit N`, `run returned an error` or `trap: ...`.
    pub outcome: std::result::Result<(), String>,
    /// The trap that ended the run, if a trap did.
    pub trap: Option<wasmtime::Trap>,
    /// The store the guest ran in.
    pub store: wasmtime::Store<stagelock_wasmtime::plugin::PluginState>,
}

impl Finished {
    /// The lines of stdout.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// Checks that the run succeeded (panicking with its stderr if not).
    pub fn succeeded(self) -> Self {
        assert_eq!(
            self.outcome,
            Ok(()),
            "stdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        self
    }
}
