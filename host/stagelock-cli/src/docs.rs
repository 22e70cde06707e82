//! `stagelock completions SHELL` and `stagelock man [COMMAND]`: for packagers and scripts.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Command};

#[derive(Debug, Args)]
pub(super) struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub(super) struct ManArgs {
    /// A subcommand, for its own page (stagelock-COMMAND(1)); none: stagelock(1).
    command: Option<String>,
}

/// `stagelock completions SHELL`, for `cli` (the whole command).
pub(super) fn completions(args: &CompletionsArgs, mut cli: Command) -> anyhow::Result<ExitCode> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cli, "stagelock", &mut out);
    write_out(&out)
}

/// `stagelock man [COMMAND]`, from `cli` (the whole command).
pub(super) fn man(args: &ManArgs, mut cli: Command) -> anyhow::Result<ExitCode> {
    cli.build();
    let page = match &args.command {
        None => cli,
        Some(name) => {
            let Some(sub) = cli.find_subcommand(name) else {
                bail!("man {name:?}: no such command (see `stagelock --help`)");
            };
            // Leaked: clap names are static strings (without its `string` feature), and this
            // process prints one page and exits.
            let title: &'static str = format!("stagelock-{name}").leak();
            sub.clone().name(title).bin_name(title)
        }
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut out)
        .context("man: rendering the page")?;
    write_out(&out)
}

fn write_out(bytes: &[u8]) -> anyhow::Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .context("write to standard output")?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;
    use crate::cli::Cli;

    #[test]
    fn man_for_an_unknown_command_is_one_line_naming_it() {
        let args = ManArgs {
            command: Some("lokc".to_owned()),
        };
        let err = man(&args, Cli::command()).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "man \"lokc\": no such command (see `stagelock --help`)"
        );
    }
}
