//! Guest components (one per scenario, in `tests/guests/src/bin/component_*.rs`) taking
//! staging locks through the wasmtime host: against each other, native holders and foreign
//! processes; escapes, grants, handle drops, traps and the per-store cap.

use std::path::Path;

use anyhow::Result;
use stagelock::StagingLock;
use stagelock_tests::guests::*;
use stagelock_tests::{
    GuestRun, Holder, Scratch, Taken, assert_test_exists, busy, foreach_component,
    lockable_by_other_process, names, run_guest, wait_until,
};
use wasmtime_wasi::FsPerms;

foreach_component!(assert_test_exists);

/// Guests in two stores exclude each other.
#[test]
fn component_two_stores_exclude() -> Result<()> {
    let s = Scratch::new()?;
    let guest = |role| run_guest(COMPONENT_TWO_STORES_EXCLUDE, s.path(), &[role]);
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| guest("holder"));
        let b = scope.spawn(|| guest("taker"));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(a.lines(), ["ok try shared.lock", "ok unlock"]);
    assert_eq!(b.lines().len(), 1);
    assert!(
        b.lines()[0].starts_with("err try WouldBlock: try-lock-path \"shared.lock\""),
        "{}",
        b.stdout
    );
    assert!(!s.join("shared.lock").exists());
    Ok(())
}

/// A guest and a native holder exclude each other, and a POSIX `fcntl` taker is refused while
/// the guest holds.
#[test]
fn component_native_exclusion() -> Result<()> {
    let s = Scratch::new()?;
    let native = StagingLock::try_lock_path(s.dir(), "n.lock")?;
    std::thread::scope(|scope| -> Result<()> {
        let guest = scope.spawn(|| run_guest(COMPONENT_NATIVE_EXCLUSION, s.path(), &[]));
        wait_until("the guest to hold g.lock", || s.join("held").exists());
        assert!(
            busy(s.dir(), "g.lock"),
            "native taker refused while the guest holds"
        );
        assert!(
            !lockable_by_other_process(&s.join("g.lock"))?,
            "POSIX fcntl taker refused"
        );
        std::fs::write(s.join("done"), "")?;
        let done = guest.join().unwrap();
        let lines = done.lines();
        assert!(
            lines[0].starts_with("err try WouldBlock"),
            "{}",
            done.stdout
        );
        assert_eq!(lines[1..], ["ok try g.lock", "ok unlock"]);
        Ok(())
    })?;
    native.unlock_and_delete()?;
    assert!(!s.join("g.lock").exists());
    Ok(())
}

/// A POSIX `fcntl` holder in another process excludes guests.
#[test]
fn component_posix_holder() -> Result<()> {
    let s = Scratch::new()?;
    let (holder, taken) = Holder::containers_storage(&s.join("go.lock"))?;
    assert_eq!(taken, Taken::Held(String::new()));
    let refused = run_guest(COMPONENT_POSIX_HOLDER, s.path(), &[]);
    assert!(
        refused.lines()[0].starts_with("err try WouldBlock"),
        "{}",
        refused.stdout
    );
    holder.release()?;
    let taken = run_guest(COMPONENT_POSIX_HOLDER, s.path(), &[]);
    assert_eq!(taken.lines(), ["ok try go.lock", "ok unlock"]);
    Ok(())
}

/// Guest escapes are refused and create nothing outside.
#[test]
fn component_escapes() -> Result<()> {
    let outer = Scratch::new()?;
    outer.dir().create_dir("granted")?;
    outer.dir().create_dir("outside")?;
    // The fifth path goes through it; without it (Windows) that path is merely missing.
    #[cfg(unix)]
    std::os::unix::fs::symlink("../outside", outer.join("granted/out"))?;
    let abs = outer.join("outside/abs.lock");
    let done = run_guest(
        COMPONENT_ESCAPES,
        &outer.join("granted"),
        &[abs.to_str().unwrap()],
    );
    let lines = done.lines();
    assert_eq!(lines.len(), 7, "{}", done.stdout);
    let escapes = if cfg!(unix) { 5 } else { 4 };
    for line in &lines[..escapes] {
        assert!(
            line.starts_with("err try NotPermitted: try-lock-path"),
            "{line}"
        );
    }
    for line in &lines[escapes..5] {
        assert!(line.starts_with("err try "), "{line}");
    }
    for line in &lines[5..] {
        assert!(line.starts_with("err create InvalidInput"), "{line}");
    }
    assert_eq!(outer.names()?, ["granted", "outside"]);
    assert_eq!(std::fs::read_dir(outer.join("outside"))?.count(), 0);
    assert!(!Path::new("/etc/stagelock-x.lock").exists());
    Ok(())
}

/// Read-only grants are refused, saying so.
#[test]
fn component_read_only_grant() -> Result<()> {
    let s = Scratch::new()?;
    let done = GuestRun::new(&[])
        .grant(s.path(), "/work", FsPerms::ReadOnly)
        .run(COMPONENT_READ_ONLY_GRANT)
        .succeeded();
    let lines = done.lines();
    assert!(lines[0].starts_with("err try ReadOnly"), "{}", done.stdout);
    assert!(lines[0].contains("read-only"), "{}", done.stdout);
    assert!(
        lines[1].starts_with("err create ReadOnly"),
        "{}",
        done.stdout
    );
    assert!(s.names()?.is_empty(), "nothing created");
    Ok(())
}

/// A file descriptor is refused as the directory of a lock.
#[test]
fn component_file_not_dir() -> Result<()> {
    let s = Scratch::new()?;
    let done = run_guest(COMPONENT_FILE_NOT_DIR, s.path(), &[]);
    assert!(
        done.lines()[0].starts_with("err try NotADirectory"),
        "{}",
        done.stdout
    );
    assert_eq!(s.names()?, ["plain.txt"]);
    Ok(())
}

/// Subdirectory descriptors and paths work, and name the same files.
#[test]
fn component_subdirectories() -> Result<()> {
    let s = Scratch::new()?;
    s.dir().create_dir_all("staging/1")?;
    let done = run_guest(COMPONENT_SUBDIRECTORIES, s.path(), &[]);
    let lines = done.lines();
    assert_eq!(lines[0], "ok try staging/1/staging.lock");
    assert!(
        lines[1].starts_with("err try WouldBlock"),
        "same file through another descriptor"
    );
    assert!(lines[2].starts_with("ok create lock-"), "{}", done.stdout);
    Ok(())
}

/// A dropped handle releases the lock and keeps the file.
#[test]
fn component_dropped_handle() -> Result<()> {
    let s = Scratch::new()?;
    let done = run_guest(COMPONENT_DROPPED_HANDLE, s.path(), &[]);
    assert_eq!(
        done.lines(),
        ["ok try d.lock", "ok drop", "ok try d.lock", "ok drop"]
    );
    assert_eq!(done.store.data().locks.held(), 0);
    assert!(
        s.join("d.lock").is_file(),
        "the file stays, as after a crash"
    );
    assert!(!busy(s.dir(), "d.lock"));
    Ok(())
}

/// A trapped guest holds until its store drops, then everything is released.
#[test]
fn component_trap_holding() -> Result<()> {
    let s = Scratch::new()?;
    let done = GuestRun::new(&[])
        .work(s.path())
        .run(COMPONENT_TRAP_HOLDING);
    assert!(
        done.outcome.as_ref().is_err_and(|e| e.starts_with("trap")),
        "{:?}",
        done.outcome
    );
    let created = done.lines()[1]
        .strip_prefix("ok create ")
        .unwrap()
        .to_owned();
    assert_eq!(done.store.data().locks.held(), 2);
    assert!(busy(s.dir(), "t.lock"), "still held while the store lives");
    drop(done);
    assert!(!busy(s.dir(), "t.lock"), "released with the store");
    assert!(!busy(s.dir(), &created));
    assert!(
        s.join("t.lock").is_file() && s.join(&created).is_file(),
        "files stay"
    );
    Ok(())
}

/// The per-store cap gives `LimitReached`, and only to that store.
#[test]
fn component_cap() -> Result<()> {
    let s = Scratch::new()?;
    let done = GuestRun::new(&["5"])
        .work(s.path())
        .max_held(3)
        .run(COMPONENT_CAP)
        .succeeded();
    let lines = done.lines();
    assert!(
        lines[0].starts_with("err many 3 LimitReached"),
        "{}",
        done.stdout
    );
    assert!(lines[0].contains("limit"), "{}", done.stdout);
    assert_eq!(lines[1], "ok unlock");
    assert!(
        lines[2].starts_with("ok create again-"),
        "a freed slot can be used"
    );
    assert_eq!(
        done.store.data().locks.held(),
        0,
        "main's locks were dropped as it returned"
    );
    // The cap is per store: another guest is not affected.
    let other = run_guest(COMPONENT_CAP, s.path(), &["4"]);
    assert_eq!(other.lines()[0], "ok many 4");
    Ok(())
}

/// Guests stage and commit in both layouts.
#[test]
fn component_stage_commit() -> Result<()> {
    for layout in ["pairs", "per-dir"] {
        let s = Scratch::new()?;
        let done = run_guest(COMPONENT_STAGE_COMMIT, s.path(), &[layout]);
        let lines = done.lines();
        assert_eq!(lines[0], "ok area");
        assert!(lines[1].starts_with("ok stage "), "{}", done.stdout);
        assert_eq!(lines[2], "ok commit", "{layout}: {}", done.stdout);
        assert_eq!(std::fs::read_to_string(s.join("out/a.txt"))?, "hello");
        assert_eq!(s.names()?, ["out"], "{layout}: lock and stage gone");
        assert_eq!(done.store.data().locks.held(), 0);
    }
    Ok(())
}

/// A guest's commit refuses to clobber and gets its stage back.
#[test]
fn component_commit_refuses_clobber() -> Result<()> {
    let s = Scratch::new()?;
    s.dir().create_dir("out")?;
    s.dir().write("out/old", "old")?;
    let done = run_guest(COMPONENT_COMMIT_REFUSES_CLOBBER, s.path(), &[]);
    let lines = done.lines();
    assert!(
        lines[2].starts_with("err commit AlreadyExists: commit \"out\""),
        "{}",
        done.stdout
    );
    assert!(
        lines[3].starts_with("err commit NotPermitted: commit \"../escape\""),
        "{}",
        done.stdout
    );
    assert_eq!(
        lines[4], "ok commit-replace",
        "the stage came back both times"
    );
    assert_eq!(std::fs::read_to_string(s.join("out/new"))?, "new");
    assert!(!s.join("out/old").exists());
    assert_eq!(s.names()?, ["out"]);
    Ok(())
}

/// Issue 32: a guest that removed or replaced its own stage's resource gets the commit's
/// failure with the stage handed back, and aborts it: nothing is left in the staging area, in
/// both layouts, through the sync and the async linker.
#[test]
fn component_commit_resource_mishap() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let cases = [
        (
            "vanished",
            "NotFound: commit \"out\": no such file or directory",
        ),
        (
            "file",
            "NotAFile: commit \"out\": not a regular file (a directory, FIFO, socket, device or \
             symlink)",
        ),
        (
            "symlink-out",
            "NotPermitted: commit \"out\": path escapes the directory it is resolved in, or the \
             host does not permit it",
        ),
    ];
    for layout in ["pairs", "per-dir"] {
        for (mishap, error) in cases {
            for asynchronous in [false, true] {
                let what = format!("{layout}, {mishap}, async {asynchronous}");
                let s = Scratch::new()?;
                s.dir().create_dir("work")?;
                s.dir().create_dir("elsewhere")?;
                s.dir().write("elsewhere/keep", "kept")?;
                let run = GuestRun::new(&[layout, mishap]).work(&s.join("work"));
                let done = if asynchronous {
                    runtime.block_on(run.run_async(COMPONENT_COMMIT_RESOURCE_MISHAP))
                } else {
                    run.run(COMPONENT_COMMIT_RESOURCE_MISHAP)
                };
                let done = done.succeeded();
                let lines = done.lines();
                assert_eq!(
                    lines[2..],
                    [&format!("err commit {error}"), "ok abort"],
                    "{what}"
                );
                assert!(
                    s.join("work").read_dir()?.next().is_none(),
                    "{what}: left behind"
                );
                assert_eq!(names(&s.join("elsewhere"))?, ["keep"], "{what}");
                assert_eq!(done.store.data().locks.held(), 0, "{what}");
            }
        }
    }
    Ok(())
}

/// A guest recovers a stage whose native holder was killed, and skips a live one.
#[test]
fn component_recover() -> Result<()> {
    let s = Scratch::new()?;
    let start = || {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_lock-holder"));
        c.args(["stage", s.path().to_str().unwrap(), "pairs"]);
        Holder::start(c)
    };
    let (dead, taken) = start()?;
    let Taken::Held(dead_id) = taken else {
        panic!("{taken:?}")
    };
    let (alive, taken) = start()?;
    let Taken::Held(live_id) = taken else {
        panic!("{taken:?}")
    };
    dead.kill()?;
    let done = run_guest(COMPONENT_RECOVER, s.path(), &[]);
    let lines = done.lines();
    let held = format!("skipped={live_id}:held by a live builder");
    assert_eq!(lines[1], format!("ok recover-dry removed={dead_id} {held}"));
    assert_eq!(lines[2], format!("ok recover removed={dead_id} {held}"));
    assert_eq!(
        lines[3],
        format!("ok recover removed= {held}"),
        "idempotent"
    );
    alive.release()?;
    assert!(s.names()?.is_empty());
    Ok(())
}

/// A guest at its cap can still open areas and commit.
#[test]
fn component_cap_still_commits() -> Result<()> {
    let s = Scratch::new()?;
    let done = GuestRun::new(&[])
        .work(s.path())
        .max_held(1)
        .run(COMPONENT_CAP_STILL_COMMITS)
        .succeeded();
    let lines = done.lines();
    assert_eq!(lines[1], "ok area", "opening an area takes no lock");
    assert!(
        lines[2].starts_with("err stage LimitReached"),
        "{}",
        done.stdout
    );
    assert!(lines[4].starts_with("ok stage "), "{}", done.stdout);
    assert_eq!(
        lines[5], "ok commit",
        "a commit at the cap frees, not takes, a lock"
    );
    assert_eq!(std::fs::read_to_string(s.join("out/f"))?, "x");
    Ok(())
}

/// Stages count against the cap and are aborted when the store drops.
#[test]
fn component_stage_cap_trap() -> Result<()> {
    let s = Scratch::new()?;
    let done = GuestRun::new(&[])
        .work(s.path())
        .max_held(1)
        .run(COMPONENT_STAGE_CAP_TRAP);
    assert!(
        done.lines()[2].starts_with("err stage LimitReached"),
        "{}",
        done.stdout
    );
    assert!(done.outcome.as_ref().is_err_and(|e| e.starts_with("trap")));
    assert_eq!(done.store.data().locks.held(), 1);
    assert_eq!(
        s.names()?.len(),
        1,
        "the stage directory, while the store lives"
    );
    drop(done);
    assert!(s.names()?.is_empty(), "aborted with the store");
    Ok(())
}

/// The demo (examples/demo) stages, commits, and refuses a second instance.
#[test]
fn component_demo() -> Result<()> {
    let s = Scratch::new()?;
    s.dir().create_dir("src")?;
    s.dir().write("src/a.txt", "alpha")?;
    s.dir().write("src/b.txt", "beta")?;
    let demo = |arg| run_guest(COMPONENT_DEMO, s.path(), &[arg]);
    let (build, second) = std::thread::scope(|scope| {
        let build = scope.spawn(|| demo("build"));
        let second = scope.spawn(|| demo("second"));
        (build.join().unwrap(), second.join().unwrap())
    });
    assert!(
        second.stdout.contains("refused, as it should be"),
        "{}",
        second.stdout
    );
    assert!(second.stdout.contains("escapes"), "{}", second.stdout);
    assert!(
        build.stdout.contains("unlock-and-delete"),
        "{}",
        build.stdout
    );
    assert_eq!(std::fs::read_to_string(s.join("out/a.txt"))?, "ALPHA");
    assert_eq!(std::fs::read_to_string(s.join("out/b.txt"))?, "BETA");
    assert_eq!(
        std::fs::read_dir(s.join("staging"))?.count(),
        0,
        "lock and temp dir gone"
    );
    Ok(())
}

/// Async embedders link the same interface.
#[test]
fn component_async_embedder() -> Result<()> {
    let s = Scratch::new()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let done = runtime.block_on(
        GuestRun::new(&[])
            .work(s.path())
            .run_async(COMPONENT_ASYNC_EMBEDDER),
    );
    let done = done.succeeded();
    let lines = done.lines();
    assert_eq!(lines[0], "ok try a.lock");
    assert!(lines[1].starts_with("ok create lock-"));
    assert_eq!(lines[2..], ["ok unlock", "ok unlock"]);
    assert!(s.names()?.is_empty());
    Ok(())
}

/// `StagingArea::open_path` opens an area beneath a grant by its path in the component (a
/// trailing slash or not); its stages' `local_path` is where std::fs finds them; an area
/// opened from a descriptor has neither. A path no grant holds (`/workshop` is not beneath
/// `/work`), a missing one and a file are refused, each on one line naming `open-area`.
#[test]
fn component_open_path() -> Result<()> {
    let s = Scratch::new()?;
    s.dir().create_dir_all("builds/staging")?;
    s.dir().create_dir("out")?;
    s.dir().write("file", "")?;
    let done = run_guest(COMPONENT_OPEN_PATH, s.path(), &[]);
    assert_eq!(
        done.lines(),
        [
            "ok open Some(\"/work/builds/staging\")",
            "ok commit built with std::fs",
            "ok open Some(\"/work/builds/staging\")",
            "ok commit built with std::fs",
            "ok descriptor None None",
            "err open NotPermitted: open-area \"/elsewhere/staging\": no directory granted to \
             this component holds it",
            "err open NotPermitted: open-area \"/workshop\": no directory granted to this \
             component holds it",
            "err open NotFound: open-area \"/work/missing\": no such file or directory",
            "err open NotADirectory: open-area \"/work/file\": not a directory",
        ]
    );
    assert!(
        std::fs::read_dir(s.join("builds/staging"))?
            .next()
            .is_none()
    );
    assert_eq!(s.names()?, ["builds", "file", "out"]);
    Ok(())
}
