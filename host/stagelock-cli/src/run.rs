//! `stagelock run`: runs a `wasi:cli/run` component with WASI and staging locks linked.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use stagelock_wasmtime::plugin::PluginState;
use stagelock_wasmtime::{StagingLockCtxView, StagingLockView};
use wasmtime::component::{Component, Linker};
use wasmtime::{Cache, CacheConfig, Config, Engine, ResourceLimiter, Store, Trap};
use wasmtime_wasi::p2::bindings::sync::Command;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::exit::{EXIT_TRAP, one_line};
use crate::local_only;

/// Descriptors kept free for the host however many locks the component takes: for wasmtime,
/// WASI's runtime and I/O, and the component's own `wasi:filesystem` opens (which no cap
/// bounds). The component's cap on held locks is lowered to leave these.
const FD_RESERVE: u64 = 64;

/// `stagelock run [OPTIONS] [--] COMPONENT [ARGS]...`, as `wasmtime run` takes them.
#[derive(Debug, Args)]
pub(super) struct RunArgs {
    /// Grant the host directory HOST_DIR to the component, read-write, at GUEST_DIR (default:
    /// the same path). Repeatable.
    #[arg(long = "dir", value_name = "HOST_DIR[::GUEST_DIR]")]
    dirs: Vec<String>,
    /// Like --dir, but read-only: the component may read it and cannot take locks in it.
    #[arg(long = "dir-ro", value_name = "HOST_DIR[::GUEST_DIR]")]
    dirs_ro: Vec<String>,
    /// Set NAME to VALUE in the component's environment, or pass NAME on from this process's
    /// environment. Repeatable.
    #[arg(long = "env", value_name = "NAME[=VALUE]", value_parser = parse_env)]
    envs: Vec<(String, Option<String>)>,
    /// The component's program name (argv[0]); default: its file name.
    #[arg(long, value_name = "NAME")]
    argv0: Option<String>,
    /// How many locks the component may hold at once. Lowered, if need be, to leave 64 file
    /// descriptors of the process's limit (RLIMIT_NOFILE, raised to its hard limit) to the host.
    #[arg(long, value_name = "N", default_value_t = stagelock_wasmtime::DEFAULT_MAX_HELD)]
    max_locks: usize,
    /// Limits, as wasmtime's -W: `timeout=DURATION` (wall clock, e.g. 500ms, 10s, 2m),
    /// `fuel=N` (instructions, roughly), `max-memory-size=BYTES` (per linear memory).
    /// Comma-separated or repeated. A component stopped by a limit exits 134 with the reason.
    #[arg(short = 'W', value_name = "KEY=VALUE", value_parser = parse_limits)]
    limits: Vec<Vec<Limit>>,
    /// WASI options, as wasmtime's -S: `inherit-env` (pass on this process's whole environment).
    #[arg(short = 'S', value_name = "KEY[=VALUE]", value_parser = parse_wasi_option)]
    wasi_options: Vec<WasiOption>,
    /// Do not use the on-disk cache of compiled components.
    #[arg(long)]
    no_cache: bool,
    /// The component to run (a `wasi:cli/run` command), then its arguments.
    ///
    /// Everything after the component is the component's, options and `--` included, as with
    /// `wasmtime run`. Components are built, for example, with
    /// `cargo build --target wasm32-wasip2`.
    // One vector, as wasmtime's `module_and_args`: with `trailing_var_arg`, clap stops looking
    // for options at its first value, so `C.wasm --dir x` gives `--dir x` to the component (a
    // separate `component` positional let clap go on parsing options after it).
    // Completed as paths, as the former `PathBuf` was.
    #[arg(
        value_name = "COMPONENT",
        trailing_var_arg = true,
        required = true,
        value_hint = clap::ValueHint::AnyPath
    )]
    component_and_args: Vec<OsString>,
}

impl RunArgs {
    /// The component's file, the first of [`RunArgs::component_and_args`].
    fn component(&self) -> &Path {
        // clap's `required = true` makes the vector non-empty.
        Path::new(&self.component_and_args[0])
    }

    /// The argument vector the component receives: its program name (`--argv0`, else the
    /// component's file name, as `wasmtime run` gives it), then every argument after the
    /// component, unchanged (a `--` among them included).
    ///
    /// # Errors
    ///
    /// An argument that is not UTF-8 (WASI arguments are strings): one line naming the run and
    /// the argument.
    fn argv(&self, shown: &str) -> Result<Vec<String>> {
        let argv0 = match &self.argv0 {
            Some(name) => name.clone(),
            None => self
                .component()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| shown.to_owned()),
        };
        let mut argv = vec![argv0];
        for (i, arg) in self.component_and_args.iter().enumerate().skip(1) {
            let Some(arg) = arg.to_str() else {
                bail!(
                    "run {shown:?}: argument {i} {arg:?} is not UTF-8 (WASI passes arguments as \
                     strings)"
                );
            };
            argv.push(arg.to_owned());
        }
        Ok(argv)
    }
}

/// A `-W` limit.
#[derive(Clone, Copy, Debug)]
enum Limit {
    Timeout(Duration),
    Fuel(u64),
    MaxMemorySize(usize),
}

/// A `-S` option.
#[derive(Clone, Copy, Debug)]
enum WasiOption {
    InheritEnv,
}

fn parse_limits(s: &str) -> Result<Vec<Limit>, String> {
    s.split(',')
        .map(|item| {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| format!("expected KEY=VALUE, got {item:?}"))?;
            match key {
                "timeout" => parse_duration(value).map(Limit::Timeout),
                "fuel" => value
                    .parse()
                    .map(Limit::Fuel)
                    .map_err(|_| format!("fuel: expected a whole number, got {value:?}")),
                "max-memory-size" => parse_bytes(value).map(Limit::MaxMemorySize),
                _ => Err(format!(
                    "unknown -W option {key:?} (known: timeout, fuel, max-memory-size)"
                )),
            }
        })
        .collect()
}

fn parse_wasi_option(s: &str) -> Result<WasiOption, String> {
    match s {
        "inherit-env" | "inherit-env=y" | "inherit-env=true" => Ok(WasiOption::InheritEnv),
        _ => Err(format!("unknown -S option {s:?} (known: inherit-env)")),
    }
}

/// `1.5s`, `500ms`, `2m`, `1h`, `250us`, `10ns`, or plain seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("timeout: expected a duration such as 10s or 500ms, got {s:?}"))?;
    let seconds = match unit {
        "" | "s" => number,
        "ms" => number / 1e3,
        "us" => number / 1e6,
        "ns" => number / 1e9,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => {
            return Err(format!(
                "timeout: unknown unit {unit:?} in {s:?} (ns, us, ms, s, m, h)"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("timeout {s:?}: {e}"))
}

/// `65536`, `64KiB`, `512MiB`, `1GiB` (also `K`/`M`/`G`, in 1024s).
fn parse_bytes(s: &str) -> Result<usize, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let number: usize = number
        .parse()
        .map_err(|_| format!("max-memory-size: expected bytes such as 512MiB, got {s:?}"))?;
    let scale: usize = match unit {
        "" | "B" => 1,
        "K" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        _ => return Err(format!("max-memory-size: unknown unit {unit:?} in {s:?}")),
    };
    number
        .checked_mul(scale)
        .ok_or_else(|| format!("max-memory-size {s:?} is too large"))
}

fn parse_env(s: &str) -> Result<(String, Option<String>), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), Some(v.to_owned()))),
        None if !s.is_empty() => Ok((s.to_owned(), None)),
        _ => Err(format!("expected NAME or NAME=VALUE, got {s:?}")),
    }
}

/// A `--dir`/`--dir-ro` grant of `stagelock run {shown}`: `HOST::GUEST` split, or `HOST`
/// granted at the same path.
///
/// # Errors
///
/// If either side is empty: one line naming the run and the grant.
fn parse_grant<'a>(spec: &'a str, shown: &str) -> Result<(&'a str, &'a str)> {
    let (host, guest) = spec.split_once("::").unwrap_or((spec, spec));
    if host.is_empty() || guest.is_empty() {
        bail!("run {shown:?}: --dir {spec:?} needs HOST_DIR[::GUEST_DIR]");
    }
    Ok((host, guest))
}

/// Where compiled components are cached: `$STAGELOCK_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/stagelock`, else `$HOME/.cache/stagelock`.
fn cache_dir() -> Option<PathBuf> {
    let from = |var: &str| {
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let dir = from("STAGELOCK_CACHE_DIR")
        .or_else(|| from("XDG_CACHE_HOME").map(|d| d.join("stagelock")))
        .or_else(|| from("HOME").map(|d| d.join(".cache/stagelock")))?;
    std::path::absolute(dir).ok()
}

/// An engine for running components, with the on-disk compilation cache unless `no_cache`,
/// and the instrumentation `-W timeout` (epochs) and `-W fuel` need.
fn engine(no_cache: bool, epochs: bool, fuel: bool) -> Result<Engine> {
    let mut config = Config::new();
    config.epoch_interruption(epochs).consume_fuel(fuel);
    if let Some(dir) = cache_dir().filter(|_| !no_cache) {
        let mut cache = CacheConfig::new();
        cache.with_directory(&dir);
        let cache = Cache::new(cache)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("set up the component cache in {:?}", dir.display()))?;
        config.cache(Some(cache));
    }
    Engine::new(&config)
        .map_err(anyhow::Error::from)
        .context("create the wasmtime engine")
}

/// The cap on the component's held locks: `asked`, lowered to keep [`FD_RESERVE`] descriptors
/// of `nofile` for the host.
fn max_held(asked: usize, nofile: Option<u64>) -> usize {
    match nofile {
        Some(limit) => {
            let room = usize::try_from(limit.saturating_sub(FD_RESERVE)).unwrap_or(usize::MAX);
            asked.min(room)
        }
        None => asked,
    }
}

/// The store's data: WASI and staging locks ([`PluginState`]), and the memory cap.
struct RunState {
    plugin: PluginState,
    /// `-W max-memory-size`, and the size a growth past it asked for.
    max_memory: Option<usize>,
    refused_growth: Option<usize>,
}

impl WasiView for RunState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        self.plugin.ctx()
    }
}

impl StagingLockView for RunState {
    fn staging_lock(&mut self) -> StagingLockCtxView<'_> {
        self.plugin.staging_lock()
    }
}

impl ResourceLimiter for RunState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        match self.max_memory {
            Some(max) if desired > max => {
                self.refused_growth = Some(desired);
                // A trap, not a failed `memory.grow`: the component stops with a clear reason.
                Err(wasmtime::format_err!("memory limit reached"))
            }
            _ => Ok(true),
        }
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

/// Refuses, on one line, a file that is not a component: not WebAssembly at all, or a core
/// module (which `Component::from_file` would only call "not a component" in a dump).
fn check_is_component(path: &Path, shown: &str) -> Result<()> {
    let mut header = [0u8; 8];
    let mut file =
        std::fs::File::open(path).with_context(|| format!("run {shown:?}: cannot open it"))?;
    let read = std::io::Read::read(&mut file, &mut header)
        .with_context(|| format!("run {shown:?}: cannot read it"))?;
    if read < 8 || &header[..4] != b"\0asm" {
        bail!(
            "run {shown:?}: not a WebAssembly file (it does not start with \\0asm); stagelock runs \
             WebAssembly components, such as `cargo build --target wasm32-wasip2` makes"
        );
    }
    if header[4..8] == [1, 0, 0, 0] {
        bail!(
            "run {shown:?}: a core WebAssembly module, not a component; stagelock runs components \
             only: build for wasm32-wasip2 (`cargo build --target wasm32-wasip2`), or wrap a \
             wasip1 module with `wasm-tools component new MODULE.wasm --adapt \
             wasi_snapshot_preview1.command.wasm -o COMPONENT.wasm`"
        );
    }
    Ok(())
}

/// The packages whose interfaces `stagelock run` serves: WASI 0.2's command world, and every
/// version of `stagelock:staging` the host crate serves.
const SERVED: [&str; 7] = [
    "wasi:cli/",
    "wasi:clocks/",
    "wasi:filesystem/",
    "wasi:io/",
    "wasi:random/",
    "wasi:sockets/",
    "stagelock:staging/",
];

/// Why `component` cannot run here, if it imports an interface of a package this host does not
/// serve: the first such import, and what to do about it (for a componentize-js build that
/// kept its `wasi:http` default, the option that drops it).
fn unserved_import(component: &Component, engine: &Engine) -> Option<String> {
    let ty = component.component_type();
    let (name, _) = ty
        .imports(engine)
        .find(|(name, _)| !SERVED.iter().any(|served| name.starts_with(served)))?;
    let mut why = format!(
        "it imports {name}, which stagelock run does not serve (it serves wasi:cli/command 0.2 \
         and stagelock:staging)"
    );
    if name.starts_with("wasi:http/") {
        why.push_str(
            "; a JavaScript component built with componentize-js imports it unless built with \
             disableFeatures: ['http', 'fetch-event']",
        );
    }
    Some(why)
}

pub(super) fn run(args: RunArgs) -> Result<ExitCode> {
    let nofile = crate::platform::raise_nofile_limit();
    // WASI's tokio runtime starts on first use and panics if it cannot get its descriptors
    // then; start it now, before the component can use them all up.
    wasmtime_wasi::runtime::in_tokio(async {});
    let shown = args.component().display().to_string();
    let argv = args.argv(&shown)?;
    let (mut timeout, mut fuel, mut max_memory) = (None, None, None);
    for limit in args.limits.iter().flatten() {
        match *limit {
            Limit::Timeout(t) => timeout = Some(t),
            Limit::Fuel(n) => fuel = Some(n),
            Limit::MaxMemorySize(bytes) => max_memory = Some(bytes),
        }
    }
    check_is_component(args.component(), &shown)?;
    let engine = engine(args.no_cache, timeout.is_some(), fuel.is_some())?;
    let component = Component::from_file(&engine, args.component())
        .map_err(anyhow::Error::from)
        .with_context(|| format!("run {shown:?}: cannot load it as a component"))?;

    let mut wasi = WasiCtxBuilder::new();
    wasi.inherit_stdio();
    if args
        .wasi_options
        .iter()
        .any(|o| matches!(o, WasiOption::InheritEnv))
    {
        wasi.inherit_env();
    }
    wasi.args(&argv);
    for (name, value) in &args.envs {
        match value {
            Some(value) => wasi.env(name, value),
            // Passed on if set here; absent in the component otherwise, as with wasmtime.
            None => match std::env::var(name) {
                Ok(value) => wasi.env(name, value),
                Err(_) => &mut wasi,
            },
        };
    }
    let grants = (args.dirs.iter().map(|d| (d, FsPerms::ReadWrite)))
        .chain(args.dirs_ro.iter().map(|d| (d, FsPerms::ReadOnly)));
    for (spec, perms) in grants {
        let (host, guest) = parse_grant(spec, &shown)?;
        if perms == FsPerms::ReadWrite {
            local_only::check(&format!("run {shown:?}: grant"), Path::new(host))?;
        }
        wasi.preopened_dir(host, guest, perms)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("run {shown:?}: cannot grant directory {host:?}"))?;
    }
    let mut plugin = PluginState::new(wasi.build());
    plugin.locks.set_max_held(max_held(args.max_locks, nofile));
    let state = RunState {
        plugin,
        max_memory,
        refused_growth: None,
    };

    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    stagelock_wasmtime::add_to_linker_sync(&mut linker)?;
    let mut store = Store::new(&engine, state);
    store.limiter(|state| state);
    if let Some(fuel) = fuel {
        store.set_fuel(fuel)?;
    }
    if let Some(timeout) = timeout {
        store.set_epoch_deadline(1);
        let engine = engine.clone();
        std::thread::spawn(move || {
            std::thread::sleep(timeout);
            engine.increment_epoch();
        });
    }
    let command = match Command::instantiate(&mut store, &component, &linker) {
        Ok(command) => command,
        Err(e) => match unserved_import(&component, &engine) {
            Some(refusal) => bail!("run {shown:?}: {refusal}"),
            None => {
                return Err(anyhow::Error::from(e))
                    .with_context(|| format!("run {shown:?}: cannot instantiate it"));
            }
        },
    };
    let outcome = command.wasi_cli_run().call_run(&mut store);
    let code = match outcome {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(())) => ExitCode::FAILURE,
        Err(e) => match e.downcast_ref::<I32Exit>() {
            Some(exit) => ExitCode::from(exit.0 as u8),
            None => {
                let why = match (e.downcast_ref::<Trap>(), store.data().refused_growth) {
                    (_, Some(asked)) => format!(
                        "stopped: it tried to grow a memory to {asked} bytes, past \
                         -W max-memory-size={}",
                        max_memory.unwrap_or_default()
                    ),
                    (Some(Trap::Interrupt), _) => format!(
                        "stopped: it ran longer than -W timeout={:?}",
                        timeout.unwrap_or_default()
                    ),
                    (Some(Trap::OutOfFuel), _) => format!(
                        "stopped: it ran out of fuel (-W fuel={})",
                        fuel.unwrap_or_default()
                    ),
                    _ => format!("trapped: {}", one_line(&format!("{e:#}"))),
                };
                eprintln!("stagelock: run {shown:?}: {why}; its locks were released");
                ExitCode::from(EXIT_TRAP)
            }
        },
    };
    drop(store); // releases every lock the component still held
    Ok(code)
}

#[cfg(test)]
mod argv_cases;

#[cfg(test)]
mod tests;
