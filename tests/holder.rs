//! `lock-holder`: takes a staging lock in its own process, for cross-process tests.
//!
//! Usage: `lock-holder (try|create) DIR PATH_OR_PATTERN [--drop]`. Prints `held [NAME]` or `busy`;
//! holding, it waits for stdin to close, then unlock-and-deletes (or with `--drop`, just drops
//! the lock, leaving the file) and prints `released`.

use std::io::Read;

use anyhow::{Context, Result, bail};
use cap_std::fs::Dir;
use stagelock::{ErrorKind, StagingLock};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
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
