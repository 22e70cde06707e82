//! `stagelock stage` and `stagelock recover`: staging areas from the shell.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use cap_std::fs::Dir;
use clap::{Args, ValueEnum};

use stagelock::{CommitOptions, Durability, Layout, RecoverOptions, Stage, StagingArea};

use crate::platform;

use crate::cmd::{CmdArgs, run_holding};
use crate::exit::{EXIT_FAILURE, exit_code};
use crate::local_only;

/// Stage layouts, as the command line names them.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(super) enum LayoutArg {
    /// `lock-ID` beside `temp-dir-ID` in ROOT.
    Pairs,
    /// `<N>/staging.lock` and `<N>/dir` in ROOT.
    PerDir,
}

impl From<LayoutArg> for Layout {
    fn from(l: LayoutArg) -> Self {
        match l {
            LayoutArg::Pairs => Layout::Pairs,
            LayoutArg::PerDir => Layout::PerDirectory,
        }
    }
}

#[derive(Debug, Args)]
pub(super) struct StageArgs {
    /// The staging area (a directory on the same filesystem as DEST).
    root: PathBuf,
    /// Where the result goes if CMD succeeds. Checked before CMD runs: its parent must be an
    /// existing directory on ROOT's filesystem, and DEST must not exist unless --replace.
    #[arg(long, value_name = "DEST")]
    into: PathBuf,
    /// Replace DEST if it exists (atomically swapped, then the old one removed).
    #[arg(long)]
    replace: bool,
    /// Do not fsync the result before and after moving it into place: faster, but a power
    /// cut soon after may leave DEST's files empty or missing.
    #[arg(long)]
    no_sync: bool,
    /// How stages are laid out in ROOT.
    #[arg(long, value_enum, default_value_t = LayoutArg::Pairs)]
    layout: LayoutArg,
    /// Do not let CMD inherit the stage's lock.
    #[arg(long)]
    no_inherit: bool,
    /// The exit status when DEST already exists without --replace (someone else made it,
    /// before CMD ran or while it ran): stage's one conflict, since each stage's lock is a
    /// fresh file no one else can hold (so stage never waits, and never exits 75 by itself).
    /// Default: 1, as any other error.
    #[arg(short = 'E', long, value_name = "N", default_value_t = EXIT_FAILURE)]
    pub(super) conflict_exit_code: u8,
    /// The command that fills $STAGELOCK_STAGE_DIR.
    #[command(flatten)]
    cmd: CmdArgs,
}

#[derive(Debug, Args)]
pub(super) struct RecoverArgs {
    /// The staging area.
    root: PathBuf,
    /// How stages are laid out in ROOT.
    #[arg(long, value_enum, default_value_t = LayoutArg::Pairs)]
    layout: LayoutArg,
    /// Only say what would be removed.
    #[arg(long)]
    dry_run: bool,
    /// Print one JSON object instead: {"root", "dry_run", "removed": [{"id", "lock",
    /// "resource", "reason"}], "skipped": [{"id", "lock", "resource", "reason", "failed"}]},
    /// paths under ROOT (for removed stages, null for a part the stage did not have).
    #[arg(long, conflicts_with = "quiet")]
    json: bool,
    /// Print nothing but failures (on stderr); the exit status says whether any.
    #[arg(short, long)]
    quiet: bool,
    /// Work on at most N stages at a time, each on its own thread [default: 4 per core, at
    /// most 64: recovery mostly waits on the disk]. 1 recovers one stage after the other.
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,
}

/// `stagelock stage ROOT --into DEST -- CMD...`
pub(super) fn stage(args: StageArgs) -> Result<ExitCode> {
    let ambient = cap_std::ambient_authority();
    let dest = match Dest::check(&args.into, args.replace) {
        Err(e) if e.is::<DestExists>() => {
            eprintln!("stagelock: {e:#}");
            return Ok(ExitCode::from(args.conflict_exit_code));
        }
        dest => dest?,
    };
    local_only::check("stage", &args.root)?;
    let area = StagingArea::open_ambient_dir(&args.root, args.layout.into(), ambient)?;
    dest.check_same_filesystem(&args.root)?;
    let stage = area.stage().map_err(|e| e.in_dir(&args.root))?;
    let dir = args.root.join(stage.path());
    let mut command = args.cmd.command();
    command.env("STAGELOCK_STAGE_DIR", &dir);
    let status = run_holding(stage.lock(), &dir, &mut command, !args.no_inherit);
    let status = match status {
        Ok(status) => status,
        Err(e) => {
            stage.abort().map_err(|e| e.in_dir(&args.root))?;
            return Err(e);
        }
    };
    if !status.success() {
        stage.abort().map_err(|e| e.in_dir(&args.root))?;
        eprintln!("stagelock: stage: the command failed ({status}); aborted the stage");
        return Ok(exit_code(status));
    }
    let durability = if args.no_sync {
        Durability::None
    } else {
        Durability::Full
    };
    let options = CommitOptions::new()
        .replace(args.replace)
        .durability(durability);
    let committed = stage.commit_with(&dest.dir, dest.name, options);
    // A failed commit that moved nothing hands the stage back, which is aborted here. (DEST was
    // checked before CMD ran; this is for a DEST made meanwhile, a filesystem that refuses the
    // rename, or a CMD that removed or replaced its own stage's resource.)
    let Err(failed) = committed else {
        return Ok(ExitCode::SUCCESS);
    };
    let err = failed.error.in_dir(dest.shown_parent);
    if err.kind() == stagelock::ErrorKind::AlreadyExists {
        drop(failed.stage); // aborts, as the refusals before CMD ran leave nothing behind
        eprintln!("stagelock: {err} (pass --replace to overwrite it)");
        return Ok(ExitCode::from(args.conflict_exit_code));
    }
    match failed.stage.map(Stage::abort) {
        Some(Ok(())) => bail!("{err}; the stage was aborted"),
        Some(Err(e)) => bail!(
            "{err}; aborting the stage failed too: {}",
            e.in_dir(&args.root)
        ),
        None => Err(err.into()),
    }
}

/// Where `stage` commits to, checked before any work is done, so that a build is never run
/// only to be thrown away because its result cannot be put in place.
struct Dest<'a> {
    /// DEST as given, for messages.
    given: &'a Path,
    /// DEST's parent as given (empty for a bare name), to prefix error paths with.
    shown_parent: &'a Path,
    /// DEST's final name.
    name: &'a Path,
    /// DEST's parent directory, open.
    dir: Dir,
}

impl<'a> Dest<'a> {
    /// Checks that DEST's parent exists and is a directory, and that DEST does not exist unless
    /// `replace`. Every refusal is one line naming DEST.
    fn check(given: &'a Path, replace: bool) -> Result<Self> {
        let name = given
            .file_name()
            .with_context(|| format!("commit {:?}: it has no final name", given.display()))?;
        let shown_parent = given.parent().unwrap_or(Path::new(""));
        let opened = if shown_parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            shown_parent
        };
        let dir = Dir::open_ambient_dir(opened, cap_std::ambient_authority()).map_err(|e| {
            anyhow!(
                "commit {:?}: its directory {:?} cannot be used: {e}",
                given.display(),
                opened.display()
            )
        })?;
        let dest = Dest {
            given,
            shown_parent,
            name: Path::new(name),
            dir,
        };
        if !replace && dest.dir.symlink_metadata(dest.name).is_ok() {
            return Err(anyhow::Error::new(DestExists(given.to_owned())));
        }
        Ok(dest)
    }

    /// Checks that DEST's parent is on the filesystem of the staging area `root`: a commit is one
    /// `rename`, which cannot cross filesystems.
    fn check_same_filesystem(&self, root: &Path) -> Result<()> {
        let Some((root_dev, dest_dev)) = platform::devices(root, &self.dir) else {
            return Ok(());
        };
        let root_dev = root_dev.with_context(|| format!("stage {:?}", root.display()))?;
        let dest_dev = dest_dev.with_context(|| format!("commit {:?}", self.given.display()))?;
        if root_dev != dest_dev {
            bail!(
                "commit {:?}: it is on another filesystem than the staging area {:?} (a commit \
                 is one rename, which cannot cross filesystems)",
                self.given.display(),
                root.display()
            );
        }
        Ok(())
    }
}

/// DEST exists and --replace was not given: stage's conflict (exit -E N).
#[derive(Debug)]
struct DestExists(PathBuf);

impl std::fmt::Display for DestExists {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "commit {:?}: it already exists (pass --replace to overwrite it)",
            self.0.display()
        )
    }
}

impl std::error::Error for DestExists {}

/// `stagelock recover ROOT [--dry-run] [--jobs N] [--json | --quiet]`
pub(super) fn recover(args: RecoverArgs) -> Result<ExitCode> {
    local_only::check("recover", &args.root)?;
    let area = StagingArea::open_ambient_dir(
        &args.root,
        args.layout.into(),
        cap_std::ambient_authority(),
    )?;
    let mut options = RecoverOptions::new().dry_run(args.dry_run);
    if let Some(jobs) = args.jobs {
        options = options.jobs(jobs.into());
    }
    let report = area.recover_stale_with(options)?;
    let layout: Layout = args.layout.into();
    if args.json {
        println!("{}", report_json(&args.root, layout, &report));
    } else {
        print_report(&report, args.quiet);
    }
    let failed = report
        .skipped
        .iter()
        .any(|k| matches!(k.reason, stagelock::SkipReason::Failed(_)));
    Ok(if failed {
        ExitCode::from(EXIT_FAILURE)
    } else {
        ExitCode::SUCCESS
    })
}

/// The prose report; with `quiet`, only failures, on stderr.
fn print_report(report: &stagelock::Report, quiet: bool) {
    if quiet {
        let failed = report
            .skipped
            .iter()
            .filter(|k| matches!(k.reason, stagelock::SkipReason::Failed(_)));
        for k in failed {
            eprintln!("stagelock: recover: skipped {}: {}", k.id, k.reason);
        }
        return;
    }
    println!("{report}");
}

/// The report as one JSON object, with each stage's paths under `root`.
fn report_json(root: &Path, layout: Layout, report: &stagelock::Report) -> serde_json::Value {
    use serde_json::json;
    let at = |p: PathBuf| root.join(p).to_string_lossy().into_owned();
    let removed: Vec<_> = report
        .removed
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "lock": r.had_lock.then(|| at(layout.lock_path(&r.id))),
                "resource": r.had_resource.then(|| at(layout.resource_path(&r.id))),
                "reason": r.reason(),
            })
        })
        .collect();
    let skipped: Vec<_> = report
        .skipped
        .iter()
        .map(|k| {
            json!({
                "id": k.id,
                "lock": at(layout.lock_path(&k.id)),
                "resource": at(layout.resource_path(&k.id)),
                "reason": k.reason.to_string(),
                "failed": matches!(k.reason, stagelock::SkipReason::Failed(_)),
            })
        })
        .collect();
    json!({
        "root": root.to_string_lossy(),
        "dry_run": report.dry_run,
        "removed": removed,
        "skipped": skipped,
    })
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

    fn stage(args: &[&str]) -> Result<StageArgs, clap::Error> {
        match parse(&[&["stage"], args].concat())? {
            Command::Stage(args) => Ok(args),
            other => panic!("not stage: {other:?}"),
        }
    }

    fn recover(args: &[&str]) -> Result<RecoverArgs, clap::Error> {
        match parse(&[&["recover"], args].concat())? {
            Command::Recover(args) => Ok(args),
            other => panic!("not recover: {other:?}"),
        }
    }

    #[test]
    fn stage_defaults_keep_dest_durable_paired_and_exit_1_on_conflict() {
        let args = stage(&["root", "--into", "dest", "--", "make"]).unwrap();
        assert_eq!(
            (args.root.as_path(), args.into.as_path()),
            (Path::new("root"), Path::new("dest"))
        );
        assert!(!args.replace && !args.no_sync && !args.no_inherit);
        assert_eq!(Layout::from(args.layout), Layout::Pairs);
        assert_eq!(args.conflict_exit_code, EXIT_FAILURE);
    }

    #[test]
    fn stage_flags() {
        let args = stage(&[
            "root",
            "--into",
            "d",
            "--replace",
            "--no-sync",
            "--layout",
            "per-dir",
            "--no-inherit",
            "-E",
            "4",
            "-c",
            "true",
        ])
        .unwrap();
        assert!(args.replace && args.no_sync && args.no_inherit);
        assert_eq!(Layout::from(args.layout), Layout::PerDirectory);
        assert_eq!(args.conflict_exit_code, 4);
    }

    #[test]
    fn stage_needs_its_destination_and_a_known_layout() {
        let err = stage(&["root", "--", "make"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MissingRequiredArgument);
        assert!(err.to_string().contains("--into <DEST>"), "{err}");
        let err = stage(&["root", "--into", "d", "--layout", "flat", "--", "make"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidValue);
    }

    #[test]
    fn recover_flags() {
        let args = recover(&["root"]).unwrap();
        assert!(!args.dry_run && !args.json && !args.quiet && args.jobs.is_none());
        let args = recover(&["--dry-run", "-j", "8", "--layout", "per-dir", "root"]).unwrap();
        assert!(args.dry_run);
        assert_eq!(args.jobs, Some(8));
        assert!(recover(&["-q", "root"]).unwrap().quiet);
        assert_eq!(
            recover(&["-j", "0", "root"]).unwrap_err().kind(),
            ErrorKind::ValueValidation
        );
        let err = recover(&["--json", "--quiet", "root"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ArgumentConflict);
    }

    #[test]
    fn a_dest_without_a_final_name_is_refused_on_one_line_naming_the_commit() {
        let err = Dest::check(Path::new("/"), false).err().unwrap();
        assert_eq!(format!("{err:#}"), "commit \"/\": it has no final name");
    }

    #[test]
    fn a_dest_in_a_missing_directory_is_refused_before_any_work() {
        let err = Dest::check(Path::new("/no/such/dir/dest"), false)
            .err()
            .unwrap();
        let text = format!("{err:#}");
        assert!(
            text.starts_with(
                "commit \"/no/such/dir/dest\": its directory \"/no/such/dir\" cannot be used: "
            ),
            "{text}"
        );
        assert_eq!(text.lines().count(), 1);
    }

    #[test]
    fn an_existing_dest_is_the_conflict_unless_replaced() {
        let here = env!("CARGO_MANIFEST_DIR");
        let given = PathBuf::from(here).join("Cargo.toml");
        let err = Dest::check(&given, false).err().unwrap();
        assert!(err.is::<DestExists>());
        let expected = format!(
            "commit {:?}: it already exists (pass --replace to overwrite it)",
            given.display()
        );
        assert_eq!(err.to_string(), expected);
        assert!(Dest::check(&given, true).is_ok());
    }
}
