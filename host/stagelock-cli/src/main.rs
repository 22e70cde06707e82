//! The `stagelock` command: staging locks and staging areas for shell steps, and a runner for
//! sandboxed components that take them. See `stagelock --help`; this file parses arguments,
//! dispatches and picks exit codes.

mod hold;
mod run;
mod stage;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit status when the lock is held by someone else (`EX_TEMPFAIL` from sysexits.h).
const EXIT_BUSY: u8 = 75;
/// Exit status for any other failure.
const EXIT_FAILURE: u8 = 1;

const EXIT_CODES: &str = "\
Exit status:
  0    success (lock, create: the command's own status is passed through)
  75   the lock is held by someone else (EX_TEMPFAIL)
  1    any other error (a one-line message on stderr)
  2    usage error
  128+N  the command was killed by signal N
  134  (run) the component trapped or was stopped by a -W limit";

/// Staging lock files compatible with containers/storage.
///
/// Locks are open-file-description locks (Linux `F_OFD_SETLK`): they exclude containers/storage
/// processes holding POSIX fcntl locks on the same file, and each other.
#[derive(Debug, Parser)]
#[command(name = "stagelock", version, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Try-lock PATH (created if missing, parents never), run CMD while holding it, then
    /// unlock-and-delete PATH. Never waits: exits 75 if PATH is held.
    ///
    /// CMD inherits the lock (as with flock(1)): if stagelock is killed, the lock stays held
    /// until CMD exits too, so CMD's work stays protected. Use --no-inherit to keep it from CMD.
    #[command(after_help = EXIT_CODES)]
    Lock {
        /// Do not let CMD inherit the lock.
        #[arg(long)]
        no_inherit: bool,
        /// The lock file.
        path: PathBuf,
        /// The command to run while holding the lock, and its arguments.
        #[arg(last = true, required = true, value_name = "CMD")]
        cmd: Vec<OsString>,
    },
    /// Exit 0 if PATH can be locked right now (it is then unlocked and deleted), 75 if it is held.
    #[command(after_help = EXIT_CODES)]
    Try {
        /// The lock file.
        path: PathBuf,
    },
    /// Create and lock a fresh file in DIR named from PATTERN (the last `*` or the end becomes a
    /// random number), print its name, run CMD with STAGELOCK_NAME (the name) and STAGELOCK_PATH
    /// (DIR/name) set, then unlock-and-delete it.
    ///
    /// CMD inherits the lock unless --no-inherit is given (see `stagelock lock --help`).
    #[command(after_help = EXIT_CODES)]
    Create {
        /// Do not let CMD inherit the lock.
        #[arg(long)]
        no_inherit: bool,
        /// The directory to create the lock file in.
        dir: PathBuf,
        /// The name pattern, as for Go's os.CreateTemp (`lock-` gives `lock-<N>`).
        pattern: String,
        /// The command to run while holding the lock, and its arguments.
        #[arg(last = true, required = true, value_name = "CMD")]
        cmd: Vec<OsString>,
    },
    /// Build a resource in a fresh stage of the staging area ROOT: run CMD with
    /// STAGELOCK_STAGE_DIR set to the stage's directory; if CMD exits 0, move the result to DEST
    /// (atomically, under the lock), else remove it. Exits with CMD's status.
    ///
    /// CMD inherits the stage's lock unless --no-inherit is given (see `stagelock lock --help`).
    #[command(after_help = EXIT_CODES)]
    Stage(stage::StageArgs),
    /// Remove the stages in ROOT whose builders are gone (their locks are free), and orphans;
    /// print what was removed and what was skipped and why. Exits 1 if a removal failed.
    #[command(after_help = EXIT_CODES)]
    Recover(stage::RecoverArgs),
    /// Run a WebAssembly component (a `wasi:cli/run` command) with WASI and staging locks.
    ///
    /// The component sees only the directories granted with --dir / --dir-ro, and takes
    /// staging locks in them through the stagelock:staging/locks interface; its locks exclude
    /// native holders and other components. It exits with the component's status. Compiled
    /// components are cached on disk ($STAGELOCK_CACHE_DIR, else $XDG_CACHE_HOME/stagelock,
    /// else ~/.cache/stagelock), so a second run skips compilation.
    ///
    /// Options come first, then the component, then its arguments, as with `wasmtime run`:
    ///
    ///   stagelock run --dir ./ws::/work step.wasm build --verbose
    ///
    ///   stagelock run -W timeout=30s,max-memory-size=512MiB --env HOME --env MODE=ci step.wasm
    ///
    ///   stagelock run -S inherit-env --argv0 step step.wasm -- --flag-for-the-component
    #[command(after_help = EXIT_CODES)]
    Run(run::RunArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse(); // prints usage errors itself and exits 2
    let result = match cli.command {
        Command::Lock {
            no_inherit,
            path,
            cmd,
        } => hold::lock(&path, &cmd, !no_inherit),
        Command::Try { path } => hold::try_lock(&path),
        Command::Create {
            no_inherit,
            dir,
            pattern,
            cmd,
        } => hold::create(&dir, &pattern, &cmd, !no_inherit),
        Command::Stage(args) => stage::stage(args),
        Command::Recover(args) => stage::recover(args),
        Command::Run(args) => run::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => report(&err),
    }
}

/// Prints `err` on one line and picks the exit status for it.
fn report(err: &anyhow::Error) -> ExitCode {
    // One line, whatever the layers below put in their messages.
    let text = format!("{err:#}");
    let line: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    eprintln!("stagelock: {}", line.join(" "));
    let busy = err
        .downcast_ref::<stagelock::Error>()
        .is_some_and(|e| e.kind() == stagelock::ErrorKind::WouldBlock);
    ExitCode::from(if busy { EXIT_BUSY } else { EXIT_FAILURE })
}
