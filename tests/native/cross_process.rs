//! Exclusion across processes: another process of ours (`lock-holder`), and a process holding a
//! classic POSIX `fcntl` lock (Python's `fcntl.lockf`, as containers/storage's Go code does), in
//! both directions.

use std::process::Command;

use anyhow::Result;
use stagelock::{ErrorKind, StagingLock};
use stagelock_tests::{Holder, Scratch, Taken, lockable_by_other_process};

fn holder(mode: &str, s: &Scratch, target: &str, extra: &[&str]) -> Result<(Holder, Taken)> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lock-holder"));
    command.arg(mode).arg(s.path()).arg(target).args(extra);
    Holder::start(command)
}

#[test]
fn another_process_cannot_take_a_lock_we_hold_until_we_release() -> Result<()> {
    let s = Scratch::new()?;
    let lock = StagingLock::try_lock_path(s.dir(), "p.lock")?;
    for _ in 0..3 {
        let (_h, taken) = holder("try", &s, "p.lock", &[])?;
        assert_eq!(taken, Taken::Busy);
    }
    lock.unlock_and_delete()?;
    let (h, taken) = holder("try", &s, "p.lock", &[])?;
    assert_eq!(taken, Taken::Held(String::new()));
    h.release()?;
    assert!(!s.join("p.lock").exists());
    Ok(())
}

#[test]
fn we_cannot_take_a_lock_another_process_holds() -> Result<()> {
    let s = Scratch::new()?;
    let (h, taken) = holder("create", &s, "lock-", &[])?;
    let Taken::Held(name) = taken else {
        panic!("{taken:?}")
    };
    let err = StagingLock::try_lock_path(s.dir(), &name).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WouldBlock);
    h.release()?;
    assert!(!s.join(&name).exists(), "holder deleted it");
    Ok(())
}

#[test]
fn a_killed_holder_releases_and_leaves_the_file() -> Result<()> {
    let s = Scratch::new()?;
    let (h, taken) = holder("try", &s, "k.lock", &[])?;
    assert_eq!(taken, Taken::Held(String::new()));
    h.kill()?;
    assert!(s.join("k.lock").is_file());
    StagingLock::try_lock_path(s.dir(), "k.lock")?.unlock_and_delete()?;
    Ok(())
}

#[test]
fn a_containers_storage_holder_excludes_us() -> Result<()> {
    let s = Scratch::new()?;
    let (h, taken) = Holder::containers_storage(&s.join("go.lock"))?;
    assert_eq!(taken, Taken::Held(String::new()));
    let err = StagingLock::try_lock_path(s.dir(), "go.lock").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WouldBlock, "{err}");
    h.release()?;
    StagingLock::try_lock_path(s.dir(), "go.lock")?.unlock_and_delete()?;
    Ok(())
}

#[test]
fn we_exclude_a_containers_storage_locker() -> Result<()> {
    let s = Scratch::new()?;
    let (lock, name) = StagingLock::create_and_lock(s.dir(), "lock-")?;
    assert!(!lockable_by_other_process(&s.join(&name))?);
    lock.unlock_and_delete()?;
    // The Python probe re-creates the path; once we released, it gets the lock.
    assert!(lockable_by_other_process(&s.join(&name))?);
    Ok(())
}

/// With OFD locks, closing some other descriptor of the file keeps our lock. With the classic
/// per-process POSIX locks of the fallback (`--cfg stagelock_posix_fallback`) that close drops
/// it: the documented limit of the fallback, checked here so the docs stay true.
#[test]
fn closing_another_descriptor_of_the_file_keeps_the_lock() -> Result<()> {
    let s = Scratch::new()?;
    let lock = StagingLock::try_lock_path(s.dir(), "c.lock")?;
    drop(std::fs::File::open(s.join("c.lock"))?);
    drop(s.dir().open("c.lock")?);
    let dropped = lockable_by_other_process(&s.join("c.lock"))?;
    assert_eq!(dropped, cfg!(stagelock_posix_fallback));
    lock.unlock_and_delete()?;
    Ok(())
}
