//! Windows: the `stagelock` command driven the Windows way (its commands are `lock-holder`
//! modes, not `sh`), containers/storage's `LockFileEx` holder against the command, and what
//! only real Windows shows (wine does not model it; those tests are ignored with the reason,
//! and run with `--ignored` on a Windows machine).
//!
//! Exclusion across processes, release on kill and the holder in both directions are the
//! `cross_process` suite's, which runs here too.

use std::path::Path;
use std::process::{Command, Output};

use anyhow::Result;
use stagelock::{ErrorKind, StagingLock};
use stagelock_tests::{Holder, Scratch, Taken, stagelock_bin};

const HOLDER: &str = env!("CARGO_BIN_EXE_lock-holder");

fn stagelock(args: &[&str]) -> Output {
    Command::new(stagelock_bin(false))
        .args(args)
        .output()
        .expect("run stagelock")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `stagelock lock` holds the lock while its command runs, which containers/storage's holder
/// then finds busy; while that holder has it, `lock` exits 75 with one line naming the path
/// (its command not run), `try` too, `status` says held; once released the path is free.
#[test]
fn the_command_excludes_containers_storage_and_is_excluded_by_it() -> Result<()> {
    let s_ = Scratch::new()?;
    let path = s_.join("c.lock");
    let out = stagelock(&["lock", s(&path), "--", HOLDER, "go-lock", s(&path)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "busy\n",
        "LockFileEx refused while stagelock held"
    );
    assert!(!path.exists(), "unlock-and-delete after the command");

    let (holder, taken) = Holder::containers_storage(&path)?;
    assert_eq!(taken, Taken::Held(String::new()));
    let out = stagelock(&["lock", s(&path), "--", HOLDER, "stamp", "t", "p"]);
    assert_eq!(out.status.code(), Some(75));
    assert_eq!(text(&out.stdout), "", "the command did not run");
    let message = text(&out.stderr);
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(
        message.contains(s(&path)) && message.contains("held"),
        "{message}"
    );
    assert_eq!(stagelock(&["try", s(&path)]).status.code(), Some(75));
    let out = stagelock(&["status", s(&path)]);
    assert_eq!(out.status.code(), Some(75), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("held: "),
        "{}",
        text(&out.stdout)
    );
    let out = stagelock(&["status", "--json", s(&path)]);
    let json = text(&out.stdout);
    assert!(
        json.contains("\"kind\":\"handle\""),
        "a holder Windows does not name: {json}"
    );
    holder.release()?;
    let out = stagelock(&["try", s(&path)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!path.exists());
    Ok(())
}

/// `stagelock stage` commits what its command put in the stage, refuses to overwrite DEST
/// without `--replace`, replaces it with, and passes a failing command's code through,
/// aborting; in both layouts.
#[test]
fn stage_commits_replaces_and_aborts() -> Result<()> {
    let s_ = Scratch::new()?;
    s_.dir().create_dir("area")?;
    let (area, dest) = (s_.join("area"), s_.join("out"));
    for layout in ["pairs", "per-dir"] {
        let _ = std::fs::remove_dir_all(&dest);
        let stage = |replace: bool, text: &str, code: &str| {
            let mut args = vec!["stage", s(&area), "--layout", layout];
            if replace {
                args.push("--replace");
            }
            args.extend([
                "--into",
                s(&dest),
                "--",
                HOLDER,
                "put",
                "artifact",
                text,
                code,
            ]);
            stagelock(&args)
        };
        let artifact = || std::fs::read_to_string(dest.join("artifact")).unwrap();
        let out = stage(false, "one", "0");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{layout}: {}",
            text(&out.stderr)
        );
        assert_eq!(artifact(), "one");
        let out = stage(false, "two", "0");
        assert_eq!(out.status.code(), Some(1), "{layout}: refuses to clobber");
        assert!(
            text(&out.stderr).contains("--replace"),
            "{}",
            text(&out.stderr)
        );
        assert_eq!(artifact(), "one");
        let out = stage(true, "three", "0");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{layout}: {}",
            text(&out.stderr)
        );
        assert_eq!(artifact(), "three");
        let out = stage(true, "four", "3");
        assert_eq!(out.status.code(), Some(3), "{layout}: the command's status");
        assert_eq!(artifact(), "three");
        assert_eq!(
            std::fs::read_dir(&area)?.count(),
            0,
            "{layout}: nothing left"
        );
    }
    Ok(())
}

/// With POSIX delete semantics (Windows 10 1709+, NTFS), unlock-and-delete frees the name at
/// once, though another handle still has the file open: a new lock at that path is a new file.
#[test]
#[ignore = "real Windows only: wine 8 refuses POSIX delete semantics (FileDispositionInfoEx, \
            error 87) and keeps a deleted file's name until its last handle closes"]
fn unlock_and_delete_frees_the_name_at_once_while_the_file_is_still_open() -> Result<()> {
    let s_ = Scratch::new()?;
    let lock = StagingLock::try_lock_path(s_.dir(), "p.lock")?;
    let still_open = s_.dir().open("p.lock")?;
    lock.unlock_and_delete()?;
    assert!(!s_.join("p.lock").exists(), "the name is gone at once");
    let again = StagingLock::try_lock_path(s_.dir(), "p.lock")?;
    drop(still_open);
    again.unlock_and_delete()?;
    Ok(())
}

/// Windows locks are mandatory for I/O: while we hold a lock, another handle cannot read the
/// locked bytes (`ERROR_LOCK_VIOLATION`), so a reader that ignores the protocol is stopped too.
#[test]
#[ignore = "real Windows only: wine does not enforce byte-range locks on reads and writes"]
fn a_held_lock_blocks_reading_through_another_handle() -> Result<()> {
    use std::io::Read;
    let s_ = Scratch::new()?;
    s_.dir().write("r.lock", "x")?;
    let lock = StagingLock::try_lock_path(s_.dir(), "r.lock")?;
    let mut other = std::fs::File::open(s_.join("r.lock"))?;
    let err = other.read(&mut [0; 1]).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(33), "ERROR_LOCK_VIOLATION: {err}");
    lock.unlock_and_delete()?;
    Ok(())
}

/// A directory or the `.` of a grant is not a lock file: refused as such, with what it is.
#[test]
fn a_directory_is_not_a_lock_file() -> Result<()> {
    let s_ = Scratch::new()?;
    s_.dir().create_dir("d")?;
    for path in ["d", "."] {
        let err = StagingLock::try_lock_path(s_.dir(), path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotAFile, "{path}: {err}");
        assert!(err.to_string().contains("is a directory"), "{err}");
    }
    Ok(())
}
