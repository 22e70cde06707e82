//! Hostile input, natively and from guests: every case gets a clear error of a fixed kind, no
//! panic, no trap, and nothing is created or deleted outside the granted directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use stagelock::{ErrorKind, StagingLock};
use stagelock_tests::guests::*;
use stagelock_tests::{
    Entry, GuestRun, Scratch, assert_test_exists, foreach_hostile, in_own_process, names, tree,
};

foreach_hostile!(assert_test_exists);

/// The tests of this suite take turns, as when it was a binary of its own (those that must not
/// share their process with other suites' tests run in a process of their own).
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `outer/granted` (what is granted) beside `outer/outside` (what must never change), with the
/// hostile fixtures inside the grant.
struct Sandbox {
    outer: Scratch,
    has_device: bool,
}

impl Sandbox {
    fn new() -> Result<Sandbox> {
        let outer = Scratch::new()?;
        let d = outer.dir();
        d.create_dir_all("granted/d")?;
        d.create_dir_all("outside/sub")?;
        d.write("outside/secret", "keep")?;
        let g = outer.join("granted");
        let sym = |target: &str, link: &str| std::os::unix::fs::symlink(target, g.join(link));
        sym("../outside/secret", "final-out")?;
        sym("../outside", "mid-out")?;
        sym(outer.join("outside").to_str().unwrap(), "abs-out")?;
        sym("../outside/new", "dangling-out")?;
        sym("d", "inner-link")?;
        stagelock_tests::mkfifo(&g.join("fifo"))?;
        let _sock = std::os::unix::net::UnixListener::bind(g.join("sock"))?;
        let has_device = rustix::fs::mknodat(
            rustix::fs::CWD,
            g.join("dev"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::from_bits_truncate(0o666),
            rustix::fs::makedev(1, 3), // like /dev/null
        )
        .is_ok();
        Ok(Sandbox { outer, has_device })
    }

    fn granted(&self) -> cap_std::fs::Dir {
        self.outer.dir().open_dir("granted").unwrap()
    }

    /// Everything under `outside`, to compare before and after.
    fn outside(&self) -> BTreeMap<PathBuf, Entry> {
        tree(&self.outer.join("outside")).unwrap()
    }

    /// What must not change: everything outside, and the names inside the grant.
    fn snapshot(&self) -> (BTreeMap<PathBuf, Entry>, Vec<String>) {
        (self.outside(), self.granted_names())
    }

    /// Checks that nothing changed outside the grant since `before`, and nothing was left inside.
    fn assert_untouched(&self, before: &(BTreeMap<PathBuf, Entry>, Vec<String>)) {
        assert_eq!(
            self.outside(),
            before.0,
            "nothing changed outside the grant"
        );
        assert_eq!(self.granted_names(), before.1, "nothing left inside either");
    }

    fn granted_names(&self) -> Vec<String> {
        names(&self.outer.join("granted")).unwrap()
    }
}

/// One hostile case: an operation, its argument, and the kind of error it must give.
struct Case {
    what: &'static str,
    create: bool,
    arg: String,
    kind: Option<ErrorKind>,
}

fn cases(sb: &Sandbox) -> Vec<Case> {
    let abs = sb
        .outer
        .join("outside/abs.lock")
        .to_str()
        .unwrap()
        .to_owned();
    let long_path = format!("d/{}x.lock", "../d/".repeat(1000));
    let mut cases = vec![
        (
            "`..` out of the grant",
            false,
            "../x.lock".to_owned(),
            Some(ErrorKind::PermissionDenied),
        ),
        (
            "`..` after a real directory",
            false,
            "d/../../x.lock".into(),
            Some(ErrorKind::PermissionDenied),
        ),
        (
            "absolute path",
            false,
            abs,
            Some(ErrorKind::PermissionDenied),
        ),
        (
            "symlink out, final component",
            false,
            "final-out".into(),
            Some(ErrorKind::NotAFile),
        ),
        (
            "dangling symlink out, final component",
            false,
            "dangling-out".into(),
            Some(ErrorKind::NotAFile),
        ),
        (
            "symlink out, intermediate component",
            false,
            "mid-out/x.lock".into(),
            Some(ErrorKind::PermissionDenied),
        ),
        (
            "absolute symlink out, intermediate",
            false,
            "abs-out/x.lock".into(),
            Some(ErrorKind::PermissionDenied),
        ),
        (
            "symlink out, then `.`",
            false,
            "mid-out/.".into(),
            Some(ErrorKind::PermissionDenied),
        ),
        (
            "a directory, then `.`",
            false,
            "d/.".into(),
            Some(ErrorKind::NotAFile),
        ),
        (
            "symlink inside, intermediate (allowed)",
            false,
            "inner-link/ok.lock".into(),
            None,
        ),
        ("a directory", false, "d".into(), Some(ErrorKind::NotAFile)),
        (
            "a directory, trailing slash",
            false,
            "d/".into(),
            Some(ErrorKind::NotAFile),
        ),
        (
            "a FIFO (must not block)",
            false,
            "fifo".into(),
            Some(ErrorKind::NotAFile),
        ),
        ("a socket", false, "sock".into(), Some(ErrorKind::NotAFile)),
        (
            "empty path",
            false,
            String::new(),
            Some(ErrorKind::InvalidInput),
        ),
        (
            "a 300-byte name",
            false,
            "n".repeat(300),
            Some(ErrorKind::InvalidInput),
        ),
        (
            "a 5,000-byte path",
            false,
            long_path,
            Some(ErrorKind::InvalidInput),
        ),
        ("empty pattern (allowed)", true, String::new(), None),
        (
            "pattern with a separator",
            true,
            "a/b*".into(),
            Some(ErrorKind::InvalidInput),
        ),
        (
            "pattern climbing out",
            true,
            "../x*".into(),
            Some(ErrorKind::InvalidInput),
        ),
        (
            "absolute pattern",
            true,
            "/tmp/x*".into(),
            Some(ErrorKind::InvalidInput),
        ),
        (
            "a 300-byte pattern",
            true,
            "p".repeat(300),
            Some(ErrorKind::InvalidInput),
        ),
    ];
    if sb.has_device {
        cases.push((
            "a device node",
            false,
            "dev".into(),
            Some(ErrorKind::NotAFile),
        ));
    } else {
        eprintln!("note: cannot mknod a device here; the device row is not run");
    }
    cases
        .into_iter()
        .map(|(what, create, arg, kind)| Case {
            what,
            create,
            arg,
            kind,
        })
        .collect()
}

fn guest_kind(kind: ErrorKind) -> &'static str {
    match kind {
        // The hostile cases are escapes (`EACCES` from the OS would be `AccessDenied`).
        ErrorKind::PermissionDenied => "NotPermitted",
        ErrorKind::NotAFile => "NotAFile",
        ErrorKind::InvalidInput => "InvalidInput",
        ErrorKind::NotFound => "NotFound",
        other => panic!("no guest mapping for {other:?}"),
    }
}

#[test]
fn hostile_paths_and_patterns_natively() -> Result<()> {
    let _serial = serial();
    let sb = Sandbox::new()?;
    let before = sb.snapshot();
    let dir = sb.granted();
    for case in cases(&sb) {
        let result = if case.create {
            StagingLock::create_and_lock(&dir, &case.arg).map(|(l, _)| l)
        } else {
            StagingLock::try_lock_path(&dir, &case.arg)
        };
        match (result, case.kind) {
            (Ok(lock), None) => lock.unlock_and_delete()?,
            (Err(e), Some(kind)) => {
                assert_eq!(e.kind(), kind, "{}: {e}", case.what);
                assert!(
                    e.to_string().contains(&case.arg[..case.arg.len().min(40)]),
                    "{}: {e}",
                    case.what
                );
            }
            (Ok(_), Some(kind)) => panic!("{}: took a lock, expected {kind:?}", case.what),
            (Err(e), None) => panic!("{}: {e}", case.what),
        }
    }
    for (what, arg) in [("NUL in a path", "a\0b"), ("NUL in a pattern", "a\0*")] {
        let err = if what.ends_with("path") {
            StagingLock::try_lock_path(&dir, arg).unwrap_err()
        } else {
            StagingLock::create_and_lock(&dir, arg).unwrap_err()
        };
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{what}");
    }
    sb.assert_untouched(&before);
    Ok(())
}

/// Runs `guest` in `dir` granted read-write, at most `max_held` locks; returns (stdout,
/// whether it failed or trapped).
fn run(guest: &'static str, dir: &Path, args: &[&str], max_held: usize) -> (String, bool) {
    let done = GuestRun::new(args).work(dir).max_held(max_held).run(guest);
    eprint!("{}", done.stderr);
    (done.stdout, done.outcome.is_err())
}

/// Hostile paths and patterns from a guest: the same kinds of error, no trap.
#[test]
fn hostile_paths() -> Result<()> {
    let _serial = serial();
    let sb = Sandbox::new()?;
    let before = sb.snapshot();
    let cases = cases(&sb);
    let mut steps: Vec<&str> = Vec::new();
    for case in &cases {
        steps.push(if case.create { "create" } else { "try" });
        steps.push(&case.arg);
    }
    let (out, trapped) = run(HOSTILE_PATHS, &sb.outer.join("granted"), &steps, 1024);
    assert!(!trapped, "no trap: {out}");
    let mut lines = out.lines();
    for case in &cases {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("{}: no output", case.what));
        match case.kind {
            None => {
                assert!(line.starts_with("ok "), "{}: {line}", case.what);
                assert_eq!(lines.next(), Some("ok unlock"), "{}", case.what);
            }
            Some(kind) => {
                let op = if case.create { "create" } else { "try" };
                let expected = format!("err {op} {}: ", guest_kind(kind));
                assert!(line.starts_with(&expected), "{}: {line}", case.what);
            }
        }
    }
    assert!(
        lines.next().unwrap().starts_with("err try InvalidInput"),
        "NUL path"
    );
    assert!(
        lines.next().unwrap().starts_with("err create InvalidInput"),
        "NUL pattern"
    );
    sb.assert_untouched(&before);
    Ok(())
}

/// Swaps `swap` between a directory inside the grant and a symlink to outside, atomically and
/// as fast as it can, until `stop`.
fn swapper(granted: &Path, stop: &AtomicBool) {
    let (a, b) = (granted.join("swap"), granted.join("swap-other"));
    while !stop.load(Ordering::Relaxed) {
        rustix::fs::renameat_with(
            rustix::fs::CWD,
            &a,
            rustix::fs::CWD,
            &b,
            rustix::fs::RenameFlags::EXCHANGE,
        )
        .unwrap();
    }
}

fn swap_fixture(sb: &Sandbox) -> Result<std::path::PathBuf> {
    let granted = sb.outer.join("granted");
    std::fs::create_dir(granted.join("swap"))?;
    std::os::unix::fs::symlink("../outside/sub", granted.join("swap-other"))?;
    Ok(granted)
}

/// A symlink swapped in between check and use never lets a native lock escape. Each of its
/// 20,000 try-locks drops the lock and keeps the file, so the next must find it free: in a process
/// of its own, where no other test spawns a child (which holds a copy of every descriptor from
/// its fork to its exec, lock included).
#[test]
fn a_symlink_swapped_in_between_check_and_use_never_escapes_natively() -> Result<()> {
    let _serial = serial();
    if !in_own_process("hostile::a_symlink_swapped_in_between_check_and_use_never_escapes_natively")
    {
        return Ok(());
    }
    let sb = Sandbox::new()?;
    let granted = swap_fixture(&sb)?;
    let before = sb.outside();
    let dir = sb.granted();
    let stop = AtomicBool::new(false);
    let mut outcomes = BTreeMap::<String, usize>::new();
    std::thread::scope(|s| {
        s.spawn(|| swapper(&granted, &stop));
        for _ in 0..20_000 {
            let key = match StagingLock::try_lock_path(&dir, "swap/x.lock") {
                Ok(lock) => {
                    drop(lock);
                    "ok".to_owned()
                }
                Err(e) => format!("{:?}", e.kind()),
            };
            *outcomes.entry(key).or_default() += 1;
        }
        stop.store(true, Ordering::Relaxed);
    });
    eprintln!("native outcomes while swapping: {outcomes:?}");
    assert!(
        outcomes
            .keys()
            .all(|k| ["ok", "PermissionDenied", "NotFound", "NotAFile"].contains(&k.as_str()))
    );
    assert!(
        outcomes.contains_key("ok") && outcomes.contains_key("PermissionDenied"),
        "the race was exercised"
    );
    assert_eq!(
        sb.outside(),
        before,
        "nothing created outside: {:?}",
        sb.outside()
    );
    Ok(())
}

/// A symlink swapped in between check and use never lets a guest escape. In a process of its own,
/// as its native twin above.
#[test]
fn hostile_swap_race() -> Result<()> {
    let _serial = serial();
    if !in_own_process("hostile::hostile_swap_race") {
        return Ok(());
    }
    let sb = Sandbox::new()?;
    let granted = swap_fixture(&sb)?;
    let before = sb.outside();
    let stop = AtomicBool::new(false);
    let (out, trapped) = std::thread::scope(|s| {
        s.spawn(|| swapper(&granted, &stop));
        let result = run(HOSTILE_SWAP_RACE, &granted, &[], 1024);
        stop.store(true, Ordering::Relaxed);
        result
    });
    assert!(!trapped, "{out}");
    eprintln!("guest outcomes while swapping: {out}");
    let counts = out.trim().strip_prefix("ok try-loop ").expect("a summary");
    for pair in counts.split(' ') {
        let kind = pair.split('=').next().unwrap();
        assert!(
            ["ok", "NotPermitted", "NotFound", "NotAFile"].contains(&kind),
            "{pair}"
        );
    }
    assert!(
        counts.contains("ok=") && counts.contains("NotPermitted="),
        "the race was exercised"
    );
    assert_eq!(sb.outside(), before, "nothing created outside");
    Ok(())
}

/// A guest asking for 100,000 handles gets `LimitReached`, not a trap. It uses up the
/// descriptors of its process for a moment, so it runs in a process of its own.
#[test]
fn hostile_many_handles() -> Result<()> {
    let _serial = serial();
    if !in_own_process("hostile::hostile_many_handles") {
        return Ok(());
    }
    let s = Scratch::new()?;
    // The default cap, then a cap above the process's descriptor limit.
    let (out, trapped) = run(HOSTILE_MANY_HANDLES, s.path(), &["100000", "a-"], 1024);
    assert!(!trapped);
    assert!(out.starts_with("err many 1024 LimitReached:"), "{out}");
    let (out, trapped) = run(HOSTILE_MANY_HANDLES, s.path(), &["100000", "b-"], 1_000_000);
    assert!(!trapped, "{out}");
    assert!(
        out.starts_with("ok many 100000")
            || (out.starts_with("err many ") && out.contains(" LimitReached:")),
        "{out}"
    );
    eprintln!("100,000 handles under a high cap: {}", out.trim());
    // Every descriptor came back with the store: the process can still take locks.
    StagingLock::create_and_lock(s.dir(), "after-")?
        .0
        .unlock_and_delete()?;
    Ok(())
}
