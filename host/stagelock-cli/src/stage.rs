//! `stagelock stage` and `stagelock recover`: staging areas from the shell.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result};
use cap_std::fs::Dir;
use clap::{Args, ValueEnum};

use stagelock::{CommitOptions, Durability, Layout, StagingArea};

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
    /// Where the result goes if CMD succeeds; must not exist unless --replace.
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
    /// The command that fills $STAGELOCK_STAGE_DIR, and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    cmd: Vec<OsString>,
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
}

/// `stagelock stage ROOT --into DEST -- CMD...`
pub(super) fn stage(args: StageArgs) -> Result<ExitCode> {
    let ambient = cap_std::ambient_authority();
    // Where the result goes is checked before any work is done.
    let (parent, name) = split_dest(&args.into)?;
    let dest_dir = Dir::open_ambient_dir(parent, ambient).with_context(|| {
        format!(
            "commit {:?}: cannot open its directory",
            args.into.display()
        )
    })?;
    let area = StagingArea::open_ambient_dir(&args.root, args.layout.into(), ambient)?;
    let stage = area.stage()?;
    let dir = args.root.join(stage.path());
    let mut command = Command::new(&args.cmd[0]);
    command
        .args(&args.cmd[1..])
        .env("STAGELOCK_STAGE_DIR", &dir);
    let status = super::hold::run_holding(stage.lock(), &dir, &mut command, !args.no_inherit);
    let status = match status {
        Ok(status) => status,
        Err(e) => {
            stage.abort()?;
            return Err(e);
        }
    };
    if !status.success() {
        stage.abort()?;
        eprintln!("stagelock: stage: the command failed ({status}); aborted the stage");
        return Ok(super::hold::exit_code(status));
    }
    let durability = if args.no_sync {
        Durability::None
    } else {
        Durability::Full
    };
    let options = CommitOptions::new()
        .replace(args.replace)
        .durability(durability);
    let committed = stage.commit_with(&dest_dir, name, options);
    // A failed commit hands the stage back; dropping it aborts.
    if let Err(failed) = committed {
        let exists = failed.error.kind() == stagelock::ErrorKind::AlreadyExists;
        let err = anyhow::Error::from(stagelock::Error::from(failed).in_dir(parent));
        return Err(if exists {
            err.context("pass --replace to overwrite it")
        } else {
            err
        });
    }
    Ok(ExitCode::SUCCESS)
}

/// `DEST` as (its parent directory, its final name).
fn split_dest(dest: &Path) -> Result<(&Path, &Path)> {
    let name = dest
        .file_name()
        .with_context(|| format!("commit {:?}: it has no final name", dest.display()))?;
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Ok((parent, Path::new(name)))
}

/// `stagelock recover ROOT [--dry-run]`
pub(super) fn recover(args: RecoverArgs) -> Result<ExitCode> {
    let area = StagingArea::open_ambient_dir(
        &args.root,
        args.layout.into(),
        cap_std::ambient_authority(),
    )?;
    let report = if args.dry_run {
        area.recover_stale_dry_run()?
    } else {
        area.recover_stale()?
    };
    let verb = if report.dry_run {
        "would remove"
    } else {
        "removed"
    };
    for r in &report.removed {
        let what = match (r.had_lock, r.had_resource) {
            (true, true) => "its builder is gone",
            (false, true) => "an orphan resource without a lock file",
            (true, false) => "an orphan lock file without a resource",
            (false, false) => "an empty stage",
        };
        println!("{verb} {}: {what}", r.id);
    }
    for k in &report.skipped {
        println!("skipped {}: {}", k.id, k.reason);
    }
    println!(
        "{} {verb}, {} skipped",
        report.removed.len(),
        report.skipped.len()
    );
    let failed = report
        .skipped
        .iter()
        .any(|k| matches!(k.reason, stagelock::SkipReason::Failed(_)));
    Ok(if failed {
        ExitCode::from(super::EXIT_FAILURE)
    } else {
        ExitCode::SUCCESS
    })
}
