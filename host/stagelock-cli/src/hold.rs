//! `stagelock lock`, `try` and `create`: hold a staging lock around a command.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use stagelock::{StagingLock, Wait};

use crate::cmd::{CmdArgs, run_holding};
use crate::exit::{EXIT_BUSY, exit_code};
use crate::local_only;

/// How long to wait for a busy lock, and what to exit with if it stays busy.
#[derive(Debug, Args)]
pub(super) struct WaitArgs {
    /// If PATH is held, wait up to SECONDS (fractions allowed, `inf` for ever) for it to be
    /// released; 0 does not wait (the default). As flock(1)'s -w.
    #[arg(short = 'w', long = "timeout", value_name = "SECONDS", value_parser = parse_wait,
          conflicts_with = "wait_long")]
    wait_short: Option<Wait>,
    /// If PATH is held, wait for it to be released: for ever, or up to SECONDS with
    /// --wait=SECONDS.
    #[arg(long = "wait", value_name = "SECONDS", value_parser = parse_wait, num_args = 0..=1,
          require_equals = true, default_missing_value = "inf")]
    wait_long: Option<Wait>,
    /// The exit status when PATH is (still) held by someone else, so that a command's own
    /// status 75 can be told apart. As flock(1)'s -E.
    #[arg(short = 'E', long, value_name = "N", default_value_t = EXIT_BUSY)]
    pub(super) conflict_exit_code: u8,
}

impl WaitArgs {
    fn wait(&self) -> Wait {
        self.wait_short.or(self.wait_long).unwrap_or(Wait::No)
    }
}

/// `SECONDS`: a non-negative decimal number of seconds, or `inf`.
fn parse_wait(s: &str) -> Result<Wait, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if secs.is_nan() || secs < 0.0 {
        return Err(format!("{s:?} is not a non-negative number of seconds"));
    }
    Ok(match Duration::try_from_secs_f64(secs) {
        Ok(d) if d.is_zero() => Wait::No,
        Ok(d) => Wait::For(d),
        Err(_) => Wait::Forever, // inf, or too long to tell apart from it
    })
}

#[derive(Debug, Args)]
pub(super) struct LockArgs {
    #[command(flatten)]
    pub(super) wait: WaitArgs,
    /// Do not let CMD inherit the lock.
    #[arg(long)]
    no_inherit: bool,
    /// The lock file.
    path: PathBuf,
    #[command(flatten)]
    cmd: CmdArgs,
}

#[derive(Debug, Args)]
pub(super) struct TryArgs {
    #[command(flatten)]
    pub(super) wait: WaitArgs,
    /// The lock file.
    path: PathBuf,
}

#[derive(Debug, Args)]
pub(super) struct CreateArgs {
    /// Do not let CMD inherit the lock.
    #[arg(long)]
    no_inherit: bool,
    /// The directory to create the lock file in.
    dir: PathBuf,
    /// The name pattern, as for Go's os.CreateTemp (`lock-` gives `lock-<N>`).
    pattern: String,
    #[command(flatten)]
    cmd: CmdArgs,
}

/// Locks `path`, waiting as asked.
fn take(path: &Path, wait: Wait) -> anyhow::Result<StagingLock> {
    let ambient = cap_std::ambient_authority();
    Ok(match wait {
        // The message of a plain try-lock, as without a wait.
        Wait::No => StagingLock::try_lock_ambient_path(path, ambient)?,
        wait => StagingLock::lock_ambient_path(path, wait, ambient)?,
    })
}

/// `stagelock lock [-w SECONDS] [-E N] PATH (-c COMMAND | -- CMD...)`
pub(super) fn lock(args: &LockArgs) -> anyhow::Result<ExitCode> {
    local_only::check("lock", args.path.parent().unwrap_or(Path::new(".")))?;
    let lock = take(&args.path, args.wait.wait())?;
    let status = run_holding(&lock, &args.path, &mut args.cmd.command(), !args.no_inherit);
    release(lock, &args.path)?;
    Ok(exit_code(status?))
}

/// `stagelock try [-w SECONDS] [-E N] PATH`
pub(super) fn try_lock(args: &TryArgs) -> anyhow::Result<ExitCode> {
    local_only::check("try", args.path.parent().unwrap_or(Path::new(".")))?;
    let lock = take(&args.path, args.wait.wait())?;
    release(lock, &args.path)?;
    Ok(ExitCode::SUCCESS)
}

/// `stagelock create DIR PATTERN (-c COMMAND | -- CMD...)`
pub(super) fn create(args: &CreateArgs) -> anyhow::Result<ExitCode> {
    local_only::check("create", &args.dir)?;
    let (lock, name) = StagingLock::create_and_lock_in_ambient_dir(
        &args.dir,
        &args.pattern,
        cap_std::ambient_authority(),
    )?;
    let path = args.dir.join(&name);
    println!("{name}");
    let mut command = args.cmd.command();
    command
        .env("STAGELOCK_NAME", &name)
        .env("STAGELOCK_PATH", &path);
    let status = run_holding(&lock, &path, &mut command, !args.no_inherit);
    release(lock, &path)?;
    Ok(exit_code(status?))
}

/// Unlock-and-delete, with the lock's full path in the error.
fn release(lock: StagingLock, path: &Path) -> anyhow::Result<()> {
    lock.unlock_and_delete()
        .with_context(|| format!("release {:?}", path.display()))
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;
    use clap::error::ErrorKind;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> Result<Command, clap::Error> {
        Ok(Cli::try_parse_from(["stagelock"].iter().chain(args))?.command)
    }

    /// `stagelock lock ARGS... PATH -- true`, parsed.
    fn lock(args: &[&str]) -> Result<LockArgs, clap::Error> {
        let argv: Vec<&str> = ["lock"]
            .iter()
            .chain(args)
            .chain(&["p", "--", "true"])
            .copied()
            .collect();
        match parse(&argv)? {
            Command::Lock(args) => Ok(args),
            other => panic!("not lock: {other:?}"),
        }
    }

    fn wait_of(args: &[&str]) -> Wait {
        lock(args).unwrap().wait.wait()
    }

    #[test]
    fn without_a_wait_flag_a_busy_lock_is_not_waited_for() {
        assert_eq!(wait_of(&[]), Wait::No);
        assert_eq!(wait_of(&["-w", "0"]), Wait::No);
    }

    #[test]
    fn wait_flags_take_seconds_fractions_or_forever() {
        let secs = |s: f64| Wait::For(Duration::from_secs_f64(s));
        assert_eq!(wait_of(&["-w", "2.5"]), secs(2.5));
        assert_eq!(wait_of(&["--timeout", "1"]), secs(1.0));
        assert_eq!(wait_of(&["-w", "inf"]), Wait::Forever);
        assert_eq!(wait_of(&["--wait"]), Wait::Forever);
        assert_eq!(wait_of(&["--wait=3"]), secs(3.0));
        assert_eq!(wait_of(&["--wait=0"]), Wait::No);
        // Longer than a Duration holds: as good as for ever.
        assert_eq!(wait_of(&["-w", "1e30"]), Wait::Forever);
    }

    #[test]
    fn bad_waits_are_refused_saying_what_is_wrong() {
        let err = lock(&["-w", "soon"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ValueValidation);
        assert!(
            err.to_string()
                .contains("\"soon\" is not a number of seconds"),
            "{err}"
        );
        for negative in ["-1", "NaN"] {
            let err = lock(&[&format!("--timeout={negative}")]).unwrap_err();
            let why = format!("{negative:?} is not a non-negative number of seconds");
            assert!(err.to_string().contains(&why), "{err}");
        }
        let err = lock(&["-w", "1", "--wait"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ArgumentConflict);
    }

    #[test]
    fn the_conflict_exit_code_defaults_to_75_and_e_picks_another() {
        assert_eq!(lock(&[]).unwrap().wait.conflict_exit_code, 75);
        assert_eq!(lock(&["-E", "3"]).unwrap().wait.conflict_exit_code, 3);
        assert_eq!(
            lock(&["--conflict-exit-code", "0"])
                .unwrap()
                .wait
                .conflict_exit_code,
            0
        );
        assert_eq!(
            lock(&["-E", "256"]).unwrap_err().kind(),
            ErrorKind::ValueValidation
        );
        match parse(&["try", "-E", "9", "-w", "1", "p"]).unwrap() {
            Command::Try(args) => {
                assert_eq!(args.wait.conflict_exit_code, 9);
                assert_eq!(args.wait.wait(), Wait::For(Duration::from_secs(1)));
                assert_eq!(args.path, Path::new("p"));
            }
            other => panic!("not try: {other:?}"),
        }
    }

    #[test]
    fn lock_runs_cmd_or_a_shell_command_but_needs_one() {
        let args = lock(&["--no-inherit"]).unwrap();
        assert!(args.no_inherit);
        assert_eq!(args.path, Path::new("p"));
        let command = args.cmd.command();
        assert_eq!(command.get_program(), "true");
        match parse(&["lock", "p", "-c", "make && make install"]).unwrap() {
            Command::Lock(args) => {
                let command = args.cmd.command();
                assert_eq!(command.get_program(), "sh");
                let argv: Vec<_> = command.get_args().collect();
                assert_eq!(argv, ["-c", "make && make install"]);
            }
            other => panic!("not lock: {other:?}"),
        }
        let err = parse(&["lock", "p"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MissingRequiredArgument);
        let err = parse(&["lock", "p", "-c", "x", "--", "y"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ArgumentConflict);
    }

    #[test]
    fn create_takes_a_directory_and_a_pattern() {
        match parse(&["create", "/tmp", "lock-", "--", "env"]).unwrap() {
            Command::Create(args) => {
                assert_eq!(
                    (args.dir.as_path(), args.pattern.as_str()),
                    (Path::new("/tmp"), "lock-")
                );
                assert!(!args.no_inherit);
            }
            other => panic!("not create: {other:?}"),
        }
        // create never waits: the file is new.
        assert_eq!(
            parse(&["create", "-w", "1", "/tmp", "x", "--", "true"])
                .unwrap_err()
                .kind(),
            ErrorKind::UnknownArgument
        );
    }
}
