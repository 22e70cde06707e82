//! Crashes: holders SIGKILLed while holding (a native process, `stagelock lock`, a guest under
//! `stagelock run`) free the lock at once and leave the file, which recovery cleans; SIGKILL
//! in the middle of create-and-lock leaves nothing that blocks the next caller.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Result;
use stagelock::{LockDir, StagingArea};
use stagelock_tests::guests::*;
use stagelock_tests::{
    Holder, Scratch, Taken, assert_test_exists, busy, foreach_crash, stagelock_bin, wait_until,
};

foreach_crash!(assert_test_exists);

fn lock_files(s: &Scratch) -> Result<Vec<String>> {
    Ok(s.names()?
        .into_iter()
        .filter(|n| n.starts_with("lock-"))
        .collect())
}

/// SIGKILLs the child's whole process group (it and whatever it started) and reaps it.
fn kill_group(mut child: Child) -> Result<()> {
    let pgid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL)?;
    child.wait()?;
    Ok(())
}

/// After a holder of `name` died: its lock is free at once, its file is still there, and
/// recovery removes it.
fn assert_freed_kept_and_recovered(s: &Scratch, name: &str) -> Result<()> {
    assert!(!busy(s.dir(), name), "{name} is free at once");
    assert!(s.join(name).is_file(), "{name} stays");
    let report = StagingArea::new(s.dir())?.recover_stale()?;
    assert_eq!(report.removed.len(), 1, "{report:?}");
    assert!(s.names()?.is_empty(), "recovered: {:?}", s.names()?);
    Ok(())
}

#[test]
fn a_killed_native_holder() -> Result<()> {
    let s = Scratch::new()?;
    let mut c = Command::new(env!("CARGO_BIN_EXE_lock-holder"));
    c.arg("create").arg(s.path()).arg("lock-");
    let (holder, taken) = Holder::start(c)?;
    let Taken::Held(name) = taken else {
        panic!("{taken:?}")
    };
    assert!(busy(s.dir(), &name));
    holder.kill()?;
    assert_freed_kept_and_recovered(&s, &name)
}

#[test]
fn a_killed_stagelock_lock_and_its_command() -> Result<()> {
    let s = Scratch::new()?;
    let child = Command::new(stagelock_bin(false))
        .arg("lock")
        .arg(s.join("lock-77"))
        .args(["--", "sleep", "600"])
        .process_group(0)
        .stdin(Stdio::null())
        .spawn()?;
    wait_until("stagelock lock to hold lock-77", || {
        s.join("lock-77").exists() && busy(s.dir(), "lock-77")
    });
    kill_group(child)?;
    wait_until("the killed group's lock to be released", || {
        !busy(s.dir(), "lock-77")
    });
    assert_freed_kept_and_recovered(&s, "lock-77")
}

/// A guest under `stagelock run`, killed while holding.
#[test]
fn crash_killed_under_run() -> Result<()> {
    let s = Scratch::new()?;
    let cache = Scratch::new()?;
    let grant = format!("{}::/work", s.path().display());
    let child = Command::new(stagelock_bin(false))
        .args(["run", "--dir", &grant, CRASH_KILLED_UNDER_RUN])
        .env("STAGELOCK_CACHE_DIR", cache.path())
        .process_group(0)
        .stdout(Stdio::null())
        .spawn()?;
    wait_until("the guest to hold its lock", || s.join("holding").exists());
    std::fs::remove_file(s.join("holding"))?;
    let name = lock_files(&s)?.pop().expect("the guest's lock file");
    assert!(busy(s.dir(), &name));
    kill_group(child)?;
    wait_until("the killed guest's lock to be released", || {
        !busy(s.dir(), &name)
    });
    assert_freed_kept_and_recovered(&s, &name)
}

#[test]
fn sigkill_in_the_middle_of_create_and_lock_blocks_nobody() -> Result<()> {
    let s = Scratch::new()?;
    for round in 0..20u64 {
        let mut c = Command::new(env!("CARGO_BIN_EXE_lock-holder"));
        c.arg("churn").arg(s.path()).process_group(0);
        let (holder, taken) = Holder::start(c)?;
        assert!(matches!(taken, Taken::Held(_)));
        // Somewhere between (or inside) create, lock, delete and close.
        std::thread::sleep(Duration::from_micros(1000 + round * 997 % 9000));
        holder.kill()?;
    }
    // Whatever the kills left behind is free, and a new caller gets a lock at once.
    let leftovers = lock_files(&s)?;
    for name in &leftovers {
        assert!(
            !busy(s.dir(), name),
            "{name} is still held after its holder died"
        );
    }
    let locks = LockDir::new(s.dir().try_clone()?);
    locks.create_and_lock("lock-")?.0.unlock_and_delete()?;
    let report = StagingArea::new(s.dir())?.recover_stale()?;
    assert_eq!(report.removed.len(), leftovers.len());
    assert!(s.names()?.is_empty());
    eprintln!(
        "20 SIGKILLs mid-churn left {} unlocked files, all recovered",
        leftovers.len()
    );
    Ok(())
}

#[test]
fn fd_exhaustion_is_a_clear_error_and_recoverable() -> Result<()> {
    let s = Scratch::new()?;
    let out = Command::new(env!("CARGO_BIN_EXE_lock-holder"))
        .arg("exhaust")
        .arg(s.path())
        .arg("64")
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = stdout.lines().next().unwrap();
    assert!(first.starts_with("exhausted "), "{stdout}");
    assert!(
        first.contains(" LimitReached create-and-lock \""),
        "{first}"
    );
    assert!(first.contains("Too many open files"), "{first}");
    assert_eq!(stdout.lines().nth(1), Some("recovered"));
    assert!(s.names()?.is_empty(), "all released and deleted");
    Ok(())
}
