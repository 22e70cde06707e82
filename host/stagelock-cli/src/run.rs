//! `stagelock run`: runs a `wasi:cli/run` component with WASI and staging locks linked.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use wasmtime::component::Component;
use wasmtime::{Cache, CacheConfig, Config, Engine, Store};
use wasmtime_wasi::p2::bindings::sync::Command;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

use stagelock_wasmtime::plugin::{PluginState, plugin_linker};

/// Exit status when the component traps (128 + SIGABRT, as `wasmtime run` does).
const EXIT_TRAP: u8 = 134;

/// Descriptors kept free for the host however many locks the component takes: for wasmtime,
/// WASI's runtime and I/O, and the component's own `wasi:filesystem` opens (which no cap
/// bounds). The component's cap on held locks is lowered to leave these.
const FD_RESERVE: u64 = 64;

#[derive(Debug, Args)]
pub(super) struct RunArgs {
    /// The component to run (a `wasi:cli/run` command, for example built with
    /// `cargo build --target wasm32-wasip2`).
    component: PathBuf,
    /// Grant the host directory HOST_DIR to the component, read-write, at GUEST_DIR (default:
    /// the same path). Repeatable.
    #[arg(long = "dir", value_name = "HOST_DIR[::GUEST_DIR]")]
    dirs: Vec<String>,
    /// Like --dir, but read-only: the component may read it and cannot take locks in it.
    #[arg(long = "dir-ro", value_name = "HOST_DIR[::GUEST_DIR]")]
    dirs_ro: Vec<String>,
    /// Set an environment variable in the component. Repeatable.
    #[arg(long = "env", value_name = "NAME=VALUE", value_parser = parse_env)]
    envs: Vec<(String, String)>,
    /// How many locks the component may hold at once. Lowered, if need be, to leave 64 file
    /// descriptors of the process's limit (RLIMIT_NOFILE, raised to its hard limit) to the host.
    #[arg(long, value_name = "N", default_value_t = stagelock_wasmtime::DEFAULT_MAX_HELD)]
    max_locks: usize,
    /// Do not use the on-disk cache of compiled components.
    #[arg(long)]
    no_cache: bool,
    /// Arguments for the component (its argv[0] is the component's file name).
    #[arg(last = true, value_name = "ARGS")]
    args: Vec<String>,
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected NAME=VALUE, got {s:?}")),
    }
}

/// Splits `HOST::GUEST` (or `HOST`, granted at the same path).
fn split_dir(spec: &str) -> (&str, &str) {
    spec.split_once("::").unwrap_or((spec, spec))
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

/// An engine for running components, with the on-disk compilation cache unless `no_cache`.
fn engine(no_cache: bool) -> Result<Engine> {
    let mut config = Config::new();
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

/// Raises the soft limit on open descriptors to the hard limit, as servers do, and returns the
/// soft limit in force (`None`: unlimited or unknown).
fn raise_nofile_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if let (Some(soft), Some(hard)) = (limit.current, limit.maximum)
        && soft < hard
    {
        limit.current = Some(hard);
        // Refused (a hard limit above what the kernel allows): keep the soft limit.
        let _ = setrlimit(Resource::Nofile, limit);
    }
    getrlimit(Resource::Nofile).current
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

pub(super) fn run(args: RunArgs) -> Result<ExitCode> {
    let nofile = raise_nofile_limit();
    // WASI's tokio runtime starts on first use and panics if it cannot get its descriptors
    // then; start it now, before the component can use them all up.
    wasmtime_wasi::runtime::in_tokio(async {});
    let shown = args.component.display().to_string();
    let engine = engine(args.no_cache)?;
    let component = Component::from_file(&engine, &args.component)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("run {shown:?}: cannot load it as a component"))?;

    let mut wasi = WasiCtxBuilder::new();
    wasi.inherit_stdio();
    let argv0 = Path::new(&args.component)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| shown.clone());
    wasi.arg(&argv0).args(&args.args);
    for (k, v) in &args.envs {
        wasi.env(k, v);
    }
    let grants = (args.dirs.iter().map(|d| (d, FsPerms::ReadWrite)))
        .chain(args.dirs_ro.iter().map(|d| (d, FsPerms::ReadOnly)));
    for (spec, perms) in grants {
        let (host, guest) = split_dir(spec);
        if host.is_empty() || guest.is_empty() {
            bail!("run {shown:?}: --dir {spec:?} needs HOST_DIR[::GUEST_DIR]");
        }
        wasi.preopened_dir(host, guest, perms)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("run {shown:?}: cannot grant directory {host:?}"))?;
    }
    let mut state = PluginState::new(wasi.build());
    state.locks.set_max_held(max_held(args.max_locks, nofile));

    let linker = plugin_linker(&engine)?;
    let mut store = Store::new(&engine, state);
    let command = Command::instantiate(&mut store, &component, &linker)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("run {shown:?}: cannot instantiate it"))?;
    match command.wasi_cli_run().call_run(&mut store) {
        Ok(Ok(())) => Ok(ExitCode::SUCCESS),
        Ok(Err(())) => Ok(ExitCode::FAILURE),
        Err(e) => match e.downcast_ref::<I32Exit>() {
            Some(exit) => Ok(ExitCode::from(exit.0 as u8)),
            None => {
                eprintln!("stagelock: run {shown:?}: trapped: {e:#}");
                Ok(ExitCode::from(EXIT_TRAP))
            }
        },
    }
}
