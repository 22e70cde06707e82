//! The `stagelock` command: staging locks and staging areas for shell steps, and a runner for
//! sandboxed components that take them. See `stagelock --help`; this file dispatches each
//! subcommand and picks the exit status for "held by someone else".

mod cli;
mod cmd;
mod docs;
mod doctor;
mod exit;
mod hold;
mod local_only;
mod platform;
mod run;
mod stage;
mod status;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::cli::{Cli, Command};
use crate::exit::EXIT_BUSY;

fn main() -> ExitCode {
    let cli = Cli::parse(); // prints usage errors itself and exits 2
    // The exit status for "held by someone else": -E N where the command has it.
    let (result, busy) = match cli.command {
        Command::Lock(args) => (hold::lock(&args), args.wait.conflict_exit_code),
        Command::Try(args) => (hold::try_lock(&args), args.wait.conflict_exit_code),
        Command::Status(args) => (status::status(&args), args.conflict_exit_code),
        Command::Doctor(args) => (doctor::doctor(&args), EXIT_BUSY),
        Command::Create(args) => (hold::create(&args), EXIT_BUSY),
        Command::Stage(args) => (stage::stage(args), EXIT_BUSY),
        Command::Recover(args) => (stage::recover(args), EXIT_BUSY),
        Command::Run(args) => (run::run(args), EXIT_BUSY),
        Command::Completions(args) => (docs::completions(&args, Cli::command()), EXIT_BUSY),
        Command::Man(args) => (docs::man(&args, Cli::command()), EXIT_BUSY),
    };
    match result {
        Ok(code) => code,
        Err(err) => exit::report(&err, busy),
    }
}
