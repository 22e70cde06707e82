//! `stagelock status PATH`: free or held, and by whom.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use stagelock::{Holder, LockKind, LockStatus, StagingLock};

use crate::exit::EXIT_BUSY;

#[derive(Debug, Args)]
pub(super) struct StatusArgs {
    /// The lock file (never created, never locked).
    path: PathBuf,
    /// Print one JSON object: {"path", "state": "missing"|"free"|"held", "holders": [{"pid",
    /// "kind": "ofd"|"posix", "command"}]} (pid and command null when unknown).
    #[arg(long)]
    json: bool,
    /// The exit status when PATH is held.
    #[arg(short = 'E', long, value_name = "N", default_value_t = EXIT_BUSY)]
    pub(super) conflict_exit_code: u8,
}

/// `stagelock status [--json] [-E N] PATH`
pub(super) fn status(args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let status = StagingLock::status_ambient_path(&args.path, cap_std::ambient_authority())?;
    let shown = args.path.display();
    let (state, holders): (&str, &[Holder]) = match &status {
        LockStatus::Missing => ("missing", &[]),
        LockStatus::Held(holders) => ("held", holders),
        _ => ("free", &[]),
    };
    if args.json {
        let holders: Vec<_> = holders
            .iter()
            .map(|h| json!({"pid": h.pid, "kind": kind(h.kind), "command": h.command}))
            .collect();
        let path = args.path.to_string_lossy();
        println!(
            "{}",
            json!({"path": path, "state": state, "holders": holders})
        );
    } else {
        match state {
            "missing" => println!("free: {shown} (no such file)"),
            "held" => println!("held: {shown}"),
            _ => println!("free: {shown}"),
        }
        for h in holders {
            let pid = h.pid.map_or("unknown".to_owned(), |p| p.to_string());
            let command = match (&h.command, h.pid) {
                (Some(args), _) => args
                    .iter()
                    .map(|a| shell_word(a))
                    .collect::<Vec<_>>()
                    .join(" "),
                (None, Some(_)) => "(command line unknown)".to_owned(),
                (None, None) => "(the OS does not say which process)".to_owned(),
            };
            println!("  pid {pid} ({} lock): {command}", kind(h.kind));
        }
    }
    Ok(if status.is_held() {
        ExitCode::from(args.conflict_exit_code)
    } else {
        ExitCode::SUCCESS
    })
}

fn kind(kind: LockKind) -> &'static str {
    match kind {
        LockKind::Ofd => "ofd",
        LockKind::Posix => "posix",
        LockKind::Handle => "handle",
        _ => "other",
    }
}

/// `arg` as one word on one line: as is if plain, else quoted with escapes (`"a b\\n"`).
fn shell_word(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        arg.to_owned()
    } else {
        format!("{arg:?}")
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use clap::Parser as _;

    use super::*;
    use crate::cli::{Cli, Command};

    fn status(args: &[&str]) -> StatusArgs {
        match Cli::try_parse_from([&["stagelock", "status"], args].concat())
            .unwrap()
            .command
        {
            Command::Status(args) => args,
            other => panic!("not status: {other:?}"),
        }
    }

    #[test]
    fn status_flags() {
        let args = status(&["p"]);
        assert_eq!(
            (args.path.as_path(), args.json, args.conflict_exit_code),
            (Path::new("p"), false, 75)
        );
        let args = status(&["--json", "-E", "2", "p"]);
        assert_eq!((args.json, args.conflict_exit_code), (true, 2));
    }

    #[test]
    fn a_holders_command_line_shows_plain_words_as_is_and_quotes_the_rest() {
        assert_eq!(shell_word("make"), "make");
        assert_eq!(shell_word("--jobs=4"), "--jobs=4");
        assert_eq!(shell_word("/usr/bin/podman"), "/usr/bin/podman");
        assert_eq!(shell_word("a b"), "\"a b\"");
        assert_eq!(shell_word(""), "\"\"");
        // One line, whatever the argument holds.
        assert_eq!(shell_word("x\ny"), "\"x\\ny\"");
        assert_eq!(shell_word("$HOME"), "\"$HOME\"");
    }
}
