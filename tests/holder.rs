//! `lock-holder`: takes a staging lock in its own process, for cross-process tests.
//!
//! Usage:
//! - `lock-holder (try|create) DIR PATH_OR_PATTERN [--drop]`: prints `held [NAME]` or `busy`;
//!   holding, it waits for stdin to close, then unlock-and-deletes (or with `--drop`, just drops
//!   the lock, leaving the file) and prints `released`.
//! - `lock-holder stage DIR (pairs|per-dir)`: starts a stage in the staging area DIR, writes a
//!   file into it, prints `held ID`, waits for stdin to close, aborts and prints `released`.
//! - `lock-holder stage-loop DIR (pairs|per-dir) COUNT DEST TAG`: COUNT times, stages, fills,
//!   checks and commits to `DEST/TAG-i`; prints `done COUNT`.

use std::io::Read;

use anyhow::{Context, Result, bail};
use cap_std::fs::Dir;
use stagelock::{ErrorKind, Layout, StagingArea, StagingLock};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("stage") => return stage(&args[1..]),
        Some("stage-loop") => return stage_loop(&args[1..]),
        _ => {}
    }
    let [mode, dir, target, rest @ ..] = args.as_slice() else {
        bail!("usage: lock-holder (try|create) DIR PATH_OR_PATTERN [--drop]");
    };
    let drop_only = rest.iter().any(|a| a == "--drop");
    let dir = Dir::open_ambient_dir(dir, cap_std::ambient_authority()).context("open DIR")?;
    let taken = match mode.as_str() {
        "try" => StagingLock::try_lock_path(&dir, target).map(|l| (l, String::new())),
        "create" => StagingLock::create_and_lock(&dir, target),
        _ => bail!("unknown mode {mode:?}"),
    };
    let (lock, name) = match taken {
        Ok(taken) => taken,
        Err(e) if e.kind() == ErrorKind::WouldBlock => {
            println!("busy");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    println!("held {name}");
    std::io::stdin().read_to_end(&mut Vec::new())?;
    if drop_only {
        drop(lock);
    } else {
        lock.unlock_and_delete()?;
    }
    println!("released");
    Ok(())
}

fn area(dir: &str, layout: &str) -> Result<StagingArea> {
    let layout = match layout {
        "pairs" => Layout::Pairs,
        "per-dir" => Layout::PerDirectory,
        _ => bail!("unknown layout {layout:?}"),
    };
    Ok(StagingArea::open_ambient_dir(
        dir,
        layout,
        cap_std::ambient_authority(),
    )?)
}

fn stage(args: &[String]) -> Result<()> {
    let [dir, layout] = args else {
        bail!("usage: lock-holder stage DIR LAYOUT")
    };
    let stage = area(dir, layout)?.stage()?;
    stage.dir().write("data", b"half-built")?;
    println!("held {}", stage.id());
    std::io::stdin().read_to_end(&mut Vec::new())?;
    stage.abort()?;
    println!("released");
    Ok(())
}

fn stage_loop(args: &[String]) -> Result<()> {
    let [dir, layout, count, dest, tag] = args else {
        bail!("usage: lock-holder stage-loop DIR LAYOUT COUNT DEST TAG")
    };
    let area = area(dir, layout)?;
    let dest = Dir::open_ambient_dir(dest, cap_std::ambient_authority())?;
    let count: usize = count.parse()?;
    for i in 0..count {
        stagelock_tests::stage_fill_check_commit(&area, &dest, &format!("{tag}-{i}"))?;
    }
    println!("done {count}");
    Ok(())
}
