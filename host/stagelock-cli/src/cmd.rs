//! The command that `lock`, `create` and `stage` run while they hold a lock, and how it is run.

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, ExitStatus};

use anyhow::Context;
use clap::Args;

use stagelock::StagingLock;
use stagelock::process::ignore_interrupts;

/// The command to run: `-c COMMAND` (through `sh -c`), or `-- CMD ARGS...`.
#[derive(Debug, Args)]
pub(crate) struct CmdArgs {
    /// Run COMMAND with `sh -c` instead of CMD (as flock(1)'s -c).
    #[arg(
        short = 'c',
        long = "command",
        value_name = "COMMAND",
        conflicts_with = "cmd"
    )]
    shell: Option<OsString>,
    /// The command to run, and its arguments.
    #[arg(last = true, required_unless_present = "shell", value_name = "CMD")]
    cmd: Vec<OsString>,
}

impl CmdArgs {
    /// The command, ready for its environment.
    pub(crate) fn command(&self) -> Command {
        match &self.shell {
            Some(script) => {
                let mut command = Command::new("sh");
                command.arg("-c").arg(script);
                command
            }
            None => {
                let mut command = Command::new(&self.cmd[0]);
                command.args(&self.cmd[1..]);
                command
            }
        }
    }
}

/// Runs `command` to completion while `lock` is held, letting it inherit the lock if asked.
pub(crate) fn run_holding(
    lock: &StagingLock,
    path: &Path,
    command: &mut Command,
    inherit: bool,
) -> anyhow::Result<ExitStatus> {
    let program = Path::new(command.get_program()).to_owned();
    lock.set_inheritable(inherit)?;
    let spawned = command.spawn();
    lock.set_inheritable(false)?;
    let mut child = spawned.with_context(|| {
        format!(
            "run {:?} while holding {:?}: cannot start it",
            program.display(),
            path.display()
        )
    })?;
    let _interrupts = ignore_interrupts();
    child
        .wait()
        .with_context(|| format!("run {:?}: waiting for it failed", program.display()))
}
