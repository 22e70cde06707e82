//! The suites that need no wasmtime, in one test binary (built without the `components`
//! feature too): the native API, staging areas, exclusion across processes, property tests,
//! the WIT package, the `stagelock` command, commits on FUSE and waits.
//!
//! `scripts/test.sh` runs `native::`, `staging::` and `cross_process::` again against the
//! classic fcntl fallback (`--cfg stagelock_posix_fallback`, without `components`). Each module
//! is one suite; their tests share this process, so none may change process-wide state (the
//! working directory, the environment, rlimits, signal dispositions) in it.

#[cfg(target_os = "linux")]
mod bindfs;
mod cli;
mod cross_process;
mod native;
#[cfg(unix)] // its sandbox has symbolic links and a FIFO
mod props;
mod staging;
mod waits;
#[cfg(windows)]
mod windows;
mod wit;
