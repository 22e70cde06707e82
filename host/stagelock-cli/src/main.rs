//! The `stagelock` command: staging locks and staging areas for shell steps, and a runner for
//! sandboxed components that take them. See `stagelock --help`; this file parses arguments,
//! dispatches and picks exit codes.

mod docs;
mod hold;
mod run;
mod stage;
mod status;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit status when the lock is held by someone else (`EX_TEMPFAIL` from sysexits.h).
const EXIT_BUSY: u8 = 75;
/// Exit status for any other failure.
const EXIT_FAILURE: u8 = 1;

const EXIT_CODES: &str = "\
Exit status:
  0    success (lock, create: the command's own status is passed through)
  75   the lock is held by someone else (EX_TEMPFAIL); -E N picks another
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
    /// Lock PATH (created if missing, parents never), run CMD while holding it, then
    /// unlock-and-delete PATH. If PATH is held: exits 75 at once, or waits with -w/--wait.
    ///
    /// CMD inherits the lock (as with flock(1)): if stagelock is killed, the lock stays held
    /// until CMD exits too, so CMD's work stays protected. Use --no-inherit to keep it from CMD.
    #[command(after_help = LOCK_EXAMPLES)]
    Lock(hold::LockArgs),
    /// Exit 0 if PATH can be locked (it is then unlocked and deleted), 75 if it is held.
    #[command(after_help = EXIT_CODES)]
    Try(hold::TryArgs),
    /// Say whether PATH is locked and by whom (process ID and command line where the OS tells),
    /// without creating, locking or otherwise disturbing it. Exits 0 if free (or missing), 75
    /// if held.
    #[command(after_help = STATUS_EXAMPLES)]
    Status(status::StatusArgs),
    /// Create and lock a fresh file in DIR named from PATTERN (the last `*` or the end becomes a
    /// random number), print its name, run CMD with STAGELOCK_NAME (the name) and STAGELOCK_PATH
    /// (DIR/name) set, then unlock-and-delete it.
    ///
    /// CMD inherits the lock unless --no-inherit is given (see `stagelock lock --help`).
    #[command(after_help = EXIT_CODES)]
    Create(hold::CreateArgs),
    /// Build a resource in a fresh stage of the staging area ROOT: run CMD with
    /// STAGELOCK_STAGE_DIR set to the stage's directory; if CMD exits 0, move the result to DEST
    /// (atomically, under the lock), else remove it. Exits with CMD's status.
    ///
    /// CMD inherits the stage's lock unless --no-inherit is given (see `stagelock lock --help`).
    #[command(after_help = EXIT_CODES)]
    Stage(stage::StageArgs),
    /// Remove the stages in ROOT whose builders are gone (their locks are free), and orphans;
    /// print what was removed and what was skipped and why. Exits 1 if a removal failed.
    #[command(after_help = RECOVER_EXAMPLES)]
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
    /// Print a completion script for SHELL, to source or to install (see the README).
    Completions(docs::CompletionsArgs),
    /// Print the man page (roff): stagelock(1), or stagelock-COMMAND(1) for a subcommand.
    /// View it with `stagelock man | man -l -`.
    Man(docs::ManArgs),
}

const LOCK_EXAMPLES: &str = "\
Examples:
  stagelock lock /tmp/build.lock -- make          # busy: exit 75 at once
  stagelock lock -w 2.5 /tmp/build.lock -- make   # wait up to 2.5 s for the holder
  stagelock lock --wait /tmp/build.lock -- make   # wait as long as it takes
  stagelock lock -E 3 -w 1 /tmp/build.lock -c 'make && make install'   # busy: exit 3

Exit status:
  CMD's own status, or 75 (-E N) if PATH is still held, 1 on any other error,
  2 on a usage error, 128+N if CMD was killed by signal N.";

const STATUS_EXAMPLES: &str = "\
Examples:
  stagelock status /tmp/build.lock
  stagelock status --json /tmp/build.lock

Exit status:
  0 free (or no such file), 75 (-E N) held, 1 error, 2 usage error.";

const RECOVER_EXAMPLES: &str = "\
Examples:
  stagelock recover --dry-run /var/tmp/area
  stagelock recover --json /var/tmp/area
  stagelock recover --quiet /var/tmp/area || echo 'a stale stage could not be removed'

Exit status:
  0 success, 1 if a removal failed (or any other error), 2 usage error.";

fn main() -> ExitCode {
    let cli = Cli::parse(); // prints usage errors itself and exits 2
    // The exit status for "held by someone else": -E N where the command has it.
    let (result, busy) = match cli.command {
        Command::Lock(args) => (hold::lock(&args), args.wait.conflict_exit_code),
        Command::Try(args) => (hold::try_lock(&args), args.wait.conflict_exit_code),
        Command::Status(args) => (status::status(&args), args.conflict_exit_code),
        Command::Create(args) => (hold::create(&args), EXIT_BUSY),
        Command::Stage(args) => (stage::stage(args), EXIT_BUSY),
        Command::Recover(args) => (stage::recover(args), EXIT_BUSY),
        Command::Run(args) => (run::run(args), EXIT_BUSY),
        Command::Completions(args) => (docs::completions(&args), EXIT_BUSY),
        Command::Man(args) => (docs::man(&args), EXIT_BUSY),
    };
    match result {
        Ok(code) => code,
        Err(err) => report(&err, busy),
    }
}

/// Prints `err` on one line and picks the exit status for it.
fn report(err: &anyhow::Error, busy_code: u8) -> ExitCode {
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
    ExitCode::from(if busy { busy_code } else { EXIT_FAILURE })
}
