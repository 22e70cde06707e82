//! The command line: the `stagelock` command's subcommands, as clap parses them, and their help.

use clap::{Parser, Subcommand};

use crate::docs::{CompletionsArgs, ManArgs};
use crate::doctor::DoctorArgs;
use crate::hold::{CreateArgs, LockArgs, TryArgs};
use crate::run::RunArgs;
use crate::stage::{RecoverArgs, StageArgs};
use crate::status::StatusArgs;

const EXIT_CODES: &str = "\
Exit status:
  0    success (lock, create: the command's own status is passed through)
  75   the lock is held by someone else (EX_TEMPFAIL); -E N picks another
  1    any other error (a one-line message on stderr)
  2    usage error
  128+N  the command was killed by signal N
  134  (run) the component trapped or was stopped by a -W limit";

const DOCTOR_EXIT_CODES: &str = "\
Exit status:
  0    exclusion assured: a local filesystem, or a network one whose locks reach its server
  3    unknown (FUSE, virtiofs, 9p, a type stagelock does not know): test it across hosts
  4    a shared filesystem whose locks stay on this host (NFS nolock or local_lock=posix|all,
       SMB nobrl): another host can hold the same lock at the same time
  1    any other error (a one-line message on stderr)
  2    usage error

Examples:
  stagelock doctor /var/lib/containers/storage
  stagelock doctor --json /mnt/shared/staging";

/// Staging lock files compatible with containers/storage.
///
/// Locks are open-file-description locks (Linux `F_OFD_SETLK`): they exclude containers/storage
/// processes holding POSIX fcntl locks on the same file, and each other.
#[derive(Debug, Parser)]
#[command(name = "stagelock", version, after_help = EXIT_CODES)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Lock PATH (created if missing, parents never), run CMD while holding it, then
    /// unlock-and-delete PATH. If PATH is held: exits 75 at once, or waits with -w/--wait.
    ///
    /// CMD inherits the lock (as with flock(1)): if stagelock is killed, the lock stays held
    /// until CMD exits too, so CMD's work stays protected. Use --no-inherit to keep it from CMD.
    #[command(after_help = LOCK_EXAMPLES)]
    Lock(LockArgs),
    /// Exit 0 if PATH can be locked (it is then unlocked and deleted), 75 if it is held.
    #[command(after_help = EXIT_CODES)]
    Try(TryArgs),
    /// Say whether PATH is locked and by whom (process ID and command line where the OS tells),
    /// without creating, locking or otherwise disturbing it. Exits 0 if free (or missing), 75
    /// if held.
    #[command(after_help = STATUS_EXAMPLES)]
    Status(StatusArgs),
    /// Say what stagelock can promise on the filesystem holding the directory PATH: its type
    /// and options, how far its locks reach (this host, or its server's every client), whether
    /// link counts are trusted, what a durable commit reaches. Nothing is created or locked.
    ///
    /// What no mount can show: a local filesystem that this host exports over NFS or SMB
    /// (its server's lock manager then takes the same kernel locks, so it is still safe).
    #[command(after_help = DOCTOR_EXIT_CODES)]
    Doctor(DoctorArgs),
    /// Create and lock a fresh file in DIR named from PATTERN (the last `*` or the end becomes a
    /// random number), print its name, run CMD with STAGELOCK_NAME (the name) and STAGELOCK_PATH
    /// (DIR/name) set, then unlock-and-delete it.
    ///
    /// CMD inherits the lock unless --no-inherit is given (see `stagelock lock --help`).
    #[command(after_help = EXIT_CODES)]
    Create(CreateArgs),
    /// Build a resource in a fresh stage of the staging area ROOT: run CMD with
    /// STAGELOCK_STAGE_DIR set to the stage's directory; if CMD exits 0, move the result to DEST
    /// (atomically, under the lock), else remove it. Exits with CMD's status.
    ///
    /// CMD inherits the stage's lock unless --no-inherit is given (see `stagelock lock --help`).
    #[command(after_help = EXIT_CODES)]
    Stage(StageArgs),
    /// Remove the stages in ROOT whose builders are gone (their locks are free), and orphans;
    /// print what was removed and what was skipped and why. Exits 1 if a removal failed.
    #[command(after_help = RECOVER_EXAMPLES)]
    Recover(RecoverArgs),
    /// Run a WebAssembly component (a `wasi:cli/run` command) with WASI and staging locks.
    ///
    /// The component sees only the directories granted with --dir / --dir-ro, and takes
    /// staging locks in them through the stagelock:staging/locks interface; its locks exclude
    /// native holders and other components. It exits with the component's status. Compiled
    /// components are cached on disk ($STAGELOCK_CACHE_DIR, else $XDG_CACHE_HOME/stagelock,
    /// else ~/.cache/stagelock), so a second run skips compilation.
    ///
    /// Options come first, then the component, then its arguments, as with `wasmtime run`:
    /// everything after the component is the component's, options and `--` included.
    ///
    ///   stagelock run --dir ./ws::/work step.wasm build --verbose
    ///
    ///   stagelock run -W timeout=30s,max-memory-size=512MiB --env HOME --env MODE=ci step.wasm
    ///
    ///   stagelock run -S inherit-env --argv0 step step.wasm --dir out   # step gets --dir out
    #[command(
        after_help = EXIT_CODES,
        override_usage = "stagelock run [OPTIONS] [--] <COMPONENT> [ARGS]..."
    )]
    Run(RunArgs),
    /// Print a completion script for SHELL, to source or to install (see docs/command-line.md).
    Completions(CompletionsArgs),
    /// Print the man page (roff): stagelock(1), or stagelock-COMMAND(1) for a subcommand.
    /// View it with `stagelock man | man -l -`.
    Man(ManArgs),
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    /// clap's own checks of the tree: no two arguments share a name or a flag, every
    /// `conflicts_with` and `required_unless_present` names an argument that exists.
    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_subcommand_is_there_under_its_documented_name() {
        let cli = Cli::command();
        let names: Vec<_> = cli.get_subcommands().map(|c| c.get_name()).collect();
        assert_eq!(
            names,
            [
                "lock",
                "try",
                "status",
                "doctor",
                "create",
                "stage",
                "recover",
                "run",
                "completions",
                "man"
            ]
        );
    }

    #[test]
    fn the_exit_statuses_in_the_help_are_the_ones_used() {
        use crate::exit::{EXIT_BUSY, EXIT_FAILURE, EXIT_TRAP};
        assert!(EXIT_CODES.contains(&format!("  {EXIT_BUSY}   the lock is held")));
        assert!(EXIT_CODES.contains(&format!("  {EXIT_FAILURE}    any other error")));
        assert!(EXIT_CODES.contains(&format!("  {EXIT_TRAP}  (run) the component trapped")));
    }
}
