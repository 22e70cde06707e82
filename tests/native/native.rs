//! The native API in one process: the upstream cases, patterns, modes, paths that must be
//! refused, and mutual exclusion between threads.

use std::io;
#[cfg(unix)]
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
#[cfg(unix)]
use std::sync::mpsc;
#[cfg(unix)]
use std::time::Duration;

use anyhow::Result;
use stagelock::{ErrorKind, Op, StagingLock};
use stagelock_tests::{Scratch, busy, lockable_by_other_process};

// --- The upstream test cases (SEMANTICS.md) ---

#[test]
fn create_and_lock_then_unlock_and_delete_leaves_nothing() -> Result<()> {
    let s = Scratch::new()?;
    let (lock, name) = StagingLock::create_and_lock(s.dir(), "lock-")?;
    assert_eq!(lock.path(), Path::new(&name));
    assert_eq!(s.names()?, vec![name.clone()]);
    assert!(
        !lockable_by_other_process(&s.join(&name))?,
        "held while we hold it"
    );
    lock.unlock_and_delete()?;
    assert!(s.names()?.is_empty(), "file deleted");
    Ok(())
}

#[test]
fn try_lock_path_creates_a_missing_file_and_unlock_deletes_it() -> Result<()> {
    let s = Scratch::new()?;
    let lock = StagingLock::try_lock_path(s.dir(), "a.lock")?;
    assert!(s.join("a.lock").is_file());
    assert!(!lockable_by_other_process(&s.join("a.lock"))?);
    lock.unlock_and_delete()?;
    assert!(!s.join("a.lock").exists());
    Ok(())
}

#[test]
fn a_created_lock_is_busy_for_try_lock_path_until_released() -> Result<()> {
    let s = Scratch::new()?;
    let (lock, name) = StagingLock::create_and_lock(s.dir(), "lock-")?;
    let err = StagingLock::try_lock_path(s.dir(), &name).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WouldBlock);
    assert_eq!(err.op(), Op::TryLockPath);
    assert_eq!(err.path(), Path::new(&name));
    assert!(err.to_string().contains("try-lock-path"), "{err}");
    assert!(err.to_string().contains(&name), "{err}");
    lock.unlock_and_delete()?;
    StagingLock::try_lock_path(s.dir(), &name)?.unlock_and_delete()?;
    Ok(())
}

#[test]
fn after_unlock_and_delete_try_lock_path_recreates_the_file() -> Result<()> {
    let s = Scratch::new()?;
    StagingLock::try_lock_path(s.dir(), "x")?.unlock_and_delete()?;
    assert!(!s.join("x").exists());
    let again = StagingLock::try_lock_path(s.dir(), "x")?;
    assert!(s.join("x").is_file());
    assert!(busy(s.dir(), "x"));
    again.unlock_and_delete()?;
    Ok(())
}

#[test]
fn ten_threads_create_in_their_own_dirs_and_release() -> Result<()> {
    let s = Scratch::new()?;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..10)
            .map(|i| {
                let s = &s;
                scope.spawn(move || -> Result<()> {
                    let sub = format!("d{i}");
                    s.dir().create_dir(&sub)?;
                    let dir = s.dir().open_dir(&sub)?;
                    let (lock, name) = StagingLock::create_and_lock(&dir, "lock-")?;
                    assert!(dir.exists(&name));
                    lock.unlock_and_delete()?;
                    assert!(!dir.exists(&name));
                    Ok(())
                })
            })
            .collect();
        handles.into_iter().try_for_each(|h| h.join().unwrap())
    })?;
    for i in 0..10 {
        assert_eq!(std::fs::read_dir(s.join(format!("d{i}")))?.count(), 0);
    }
    Ok(())
}

#[test]
fn unlock_and_delete_of_an_already_deleted_file_is_fine() -> Result<()> {
    let s = Scratch::new()?;
    let lock = StagingLock::try_lock_path(s.dir(), "gone")?;
    s.dir().remove_file("gone")?;
    lock.unlock_and_delete()?;
    Ok(())
}

// --- Patterns and modes ---

#[test]
fn pattern_rules_follow_os_create_temp() -> Result<()> {
    let s = Scratch::new()?;
    let mut cases = vec![
        ("lock-", "lock-", ""),
        ("lock-*", "lock-", ""),
        ("", "", ""),
    ];
    if cfg!(windows) {
        // Only the last `*` is replaced, and `*` is no character of a Windows name.
        let err = StagingLock::create_and_lock(s.dir(), "pre*mid*.lock").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    } else {
        cases.push(("pre*mid*.lock", "pre*mid", ".lock"));
    }
    for (pattern, prefix, suffix) in cases {
        let (lock, name) = StagingLock::create_and_lock(s.dir(), pattern)?;
        let digits = name
            .strip_prefix(prefix)
            .and_then(|n| n.strip_suffix(suffix))
            .unwrap_or_else(|| panic!("{name:?} from {pattern:?}"));
        assert!(digits.parse::<u32>().is_ok(), "{name:?} from {pattern:?}");
        assert!(s.join(&name).is_file());
        lock.unlock_and_delete()?;
    }
    Ok(())
}

#[test]
fn patterns_with_separators_or_nul_are_invalid_and_create_nothing() -> Result<()> {
    let s = Scratch::new()?;
    s.dir().create_dir("sub")?;
    for pattern in ["sub/lock-", "../lock-", "/tmp/lock-*", "a\0b"] {
        let err = StagingLock::create_and_lock(s.dir(), pattern).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{pattern:?}: {err}");
        assert_eq!(err.op(), Op::CreateAndLock);
    }
    assert_eq!(s.names()?, vec!["sub"]);
    assert_eq!(std::fs::read_dir(s.join("sub"))?.count(), 0);
    Ok(())
}

#[test]
#[cfg(unix)] // Unix modes
fn created_files_are_0600_and_try_lock_files_at_most_0644() -> Result<()> {
    let s = Scratch::new()?;
    let (lock, name) = StagingLock::create_and_lock(s.dir(), "lock-")?;
    assert_eq!(
        std::fs::metadata(s.join(&name))?.permissions().mode() & 0o777,
        0o600
    );
    lock.unlock_and_delete()?;
    let lock = StagingLock::try_lock_path(s.dir(), "t.lock")?;
    let mode = std::fs::metadata(s.join("t.lock"))?.permissions().mode() & 0o777;
    assert_eq!(mode & !0o644, 0, "mode {mode:o}");
    assert_eq!(mode & 0o600, 0o600, "mode {mode:o}");
    lock.unlock_and_delete()?;
    Ok(())
}

#[test]
#[cfg_attr(
    windows,
    ignore = "wine reports a name longer than 255 characters as not found (real Windows: unverified)"
)]
fn a_very_long_name_is_invalid_input() -> Result<()> {
    let s = Scratch::new()?;
    let long = "x".repeat(300);
    let err = StagingLock::create_and_lock(s.dir(), &long).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    let err = StagingLock::try_lock_path(s.dir(), &long).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(s.names()?.is_empty());
    Ok(())
}

// --- Paths ---

#[test]
fn a_missing_parent_is_not_found_and_is_not_created() -> Result<()> {
    let s = Scratch::new()?;
    let err = StagingLock::try_lock_path(s.dir(), "no/such/dir/x.lock").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("no/such/dir/x.lock"), "{err}");
    assert!(s.names()?.is_empty());
    Ok(())
}

#[test]
fn subdirectory_paths_work() -> Result<()> {
    let s = Scratch::new()?;
    s.dir().create_dir_all("staging/1")?;
    let lock = StagingLock::try_lock_path(s.dir(), "staging/1/staging.lock")?;
    assert_eq!(lock.path(), Path::new("staging/1/staging.lock"));
    assert!(busy(s.dir(), "staging/1/staging.lock"));
    assert!(
        busy(s.dir(), "staging/../staging/1/staging.lock"),
        ".. inside is allowed"
    );
    lock.unlock_and_delete()?;
    assert!(!s.join("staging/1/staging.lock").exists());
    Ok(())
}

#[test]
fn escapes_are_permission_denied_and_create_nothing_outside() -> Result<()> {
    let outer = Scratch::new()?;
    outer.dir().create_dir("granted")?;
    outer.dir().create_dir("outside")?;
    outer.dir().create_dir("granted/a")?;
    let granted = outer.dir().open_dir("granted")?;
    let abs = outer.join("outside/abs.lock");
    let mut paths = vec![
        "../outside/x.lock",
        "../x.lock",
        "a/../../x.lock",
        abs.to_str().unwrap(),
    ];
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink("../outside", outer.join("granted/out"))?;
        std::os::unix::fs::symlink("/", outer.join("granted/root"))?;
        paths.extend(["out/x.lock", "root/tmp/x.lock"]);
    }
    #[cfg(windows)]
    paths.extend(["..\\outside\\x.lock", "a\\..\\..\\x.lock"]);
    for path in paths {
        let err = StagingLock::try_lock_path(&granted, path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{path}: {err}");
        assert!(err.to_string().contains(path), "{err}");
    }
    assert_eq!(outer.names()?, vec!["granted", "outside"]);
    assert_eq!(std::fs::read_dir(outer.join("outside"))?.count(), 0);
    Ok(())
}

/// Windows path forms, and what a Windows host makes of each: `E` refused as an escape
/// (`PermissionDenied`), `I` as invalid (`InvalidInput`). On Unix every one is a literal name
/// beneath the grant (`C:/x.lock` the file `x.lock` in a directory named `C:`).
const WINDOWS_PATHS: &[(&str, char)] = &[
    ("C:x.lock", 'E'),
    ("C:\\x.lock", 'E'),
    ("C:/x.lock", 'E'),
    ("c:x.lock", 'E'),
    ("\\\\?\\C:\\x", 'E'),
    ("\\\\.\\C:\\x", 'E'),
    ("\\\\server\\share\\x", 'E'),
    ("\\??\\C:\\x", 'E'),
    ("x.lock:stream", 'I'),
    ("x.lock::$DATA", 'I'),
    ("CON", 'I'),
    ("con", 'I'),
    ("NUL.lock", 'I'),
    ("nul.LOCK", 'I'),
    ("COM1", 'I'),
    ("com1.txt", 'I'),
    ("LPT1", 'I'),
    ("Lpt9.lock", 'I'),
    ("AUX", 'I'),
    ("x.lock.", 'I'),
    ("x.lock ", 'I'),
];

/// Create-and-lock patterns of the same forms (names are PREFIX, a decimal, SUFFIX): a pattern
/// any of whose names Windows would take for something else is refused whole; `\` is a
/// separator there, as `/` everywhere.
const WINDOWS_PATTERNS: &[(&str, char)] = &[
    ("C:x-*", 'E'),
    ("C:\\x-*", 'I'),
    ("\\\\server\\share\\x-*", 'I'),
    ("x-*.lock:stream", 'I'),
    ("NUL.*", 'I'),
    ("COM*", 'I'),
    ("lpt*.lock", 'I'),
    ("x-*.", 'I'),
    ("x-* ", 'I'),
];

/// Commit destinations of the same forms (the commit's own code resolves them: cap-std's
/// escapes for a drive or root, the rename's name check on Windows for the final name).
const WINDOWS_DESTS: &[(&str, char)] = &[
    ("C:x", 'E'),
    ("C:\\x", 'E'),
    ("\\\\server\\share\\x", 'E'),
    ("out:stream", 'I'),
    ("CON", 'I'),
    ("com1.d", 'I'),
    ("out.", 'I'),
    ("out ", 'I'),
    // The same forms before the final name, which only the commit's own check sees.
    ("CON\\x", 'I'),
    ("out.\\x", 'I'),
];

/// Every Windows path form, as a lock path, a pattern, a commit's destination and the last
/// name of an ambient path (what `stagelock lock PATH` locks beneath PATH's parent): on Windows
/// each is refused with its kind (see the tables above); on Unix each is the literal name it
/// spells, beneath the grant. Either way nothing appears outside the grant.
#[test]
fn windows_path_forms_are_refused_on_windows_and_literal_names_elsewhere() -> Result<()> {
    use stagelock::{Layout, StagingArea};
    let outer = Scratch::new()?;
    outer.dir().create_dir("granted")?;
    outer.dir().create_dir("outside")?;
    let granted = outer.dir().open_dir("granted")?;
    #[cfg(unix)]
    granted.create_dir("C:")?; // for `C:/x.lock`, a path through a directory named `C:`
    let kind_of = |form: char| match form {
        'E' => ErrorKind::PermissionDenied,
        _ => ErrorKind::InvalidInput,
    };
    // The name appended as it is (`join` would take `C:x.lock` for a path of its own).
    let ambient = |path: &str| {
        let mut joined = outer.join("granted").into_os_string();
        joined.push(std::path::MAIN_SEPARATOR_STR);
        joined.push(path);
        std::path::PathBuf::from(joined)
    };
    for &(path, form) in WINDOWS_PATHS {
        let taken = StagingLock::try_lock_path(&granted, path);
        // The final name of an ambient path: the forms without a separator.
        let by_path = || {
            (!path.contains(['\\', '/'])).then(|| {
                StagingLock::try_lock_ambient_path(ambient(path), cap_std::ambient_authority())
            })
        };
        if cfg!(windows) {
            let err = taken.unwrap_err();
            assert_eq!(err.kind(), kind_of(form), "{path:?}: {err}");
            assert!(err.to_string().contains("(Windows)"), "{path:?}: {err}");
            if let Some(by_path) = by_path() {
                let err = by_path.unwrap_err();
                assert_eq!(err.kind(), kind_of(form), "ambient {path:?}: {err}");
            }
        } else {
            let lock = taken.map_err(|e| anyhow::anyhow!("{path:?}: {e}"))?;
            assert_eq!(lock.path(), Path::new(path));
            assert!(ambient(path).is_file(), "{path:?} is a file of that name");
            lock.unlock_and_delete()?;
            assert!(!ambient(path).exists(), "{path:?}");
            if let Some(by_path) = by_path() {
                let lock = by_path.map_err(|e| anyhow::anyhow!("ambient {path:?}: {e}"))?;
                assert!(ambient(path).is_file(), "ambient {path:?}");
                lock.unlock_and_delete()?;
            }
        }
    }
    for &(pattern, form) in WINDOWS_PATTERNS {
        let made = StagingLock::create_and_lock(&granted, pattern);
        if cfg!(windows) {
            let err = made.unwrap_err();
            assert_eq!(err.kind(), kind_of(form), "{pattern:?}: {err}");
        } else {
            let (lock, name) = made.map_err(|e| anyhow::anyhow!("{pattern:?}: {e}"))?;
            let (prefix, suffix) = pattern.rsplit_once('*').unwrap();
            assert!(
                name.starts_with(prefix) && name.ends_with(suffix),
                "{name:?}"
            );
            assert!(ambient(&name).is_file(), "{name:?}");
            lock.unlock_and_delete()?;
        }
    }
    granted.create_dir("area")?;
    let area = StagingArea::with_layout(&granted.open_dir("area")?, Layout::PerDirectory)?;
    for &(dest, form) in WINDOWS_DESTS {
        let stage = area.stage()?;
        stage.dir().write("data", dest)?;
        let done = stage.commit(&granted, dest);
        if cfg!(windows) {
            let failed = done.unwrap_err();
            assert_eq!(failed.error.kind(), kind_of(form), "{dest:?}: {failed}");
            failed.stage.expect("handed back").abort()?;
        } else {
            done.map_err(|e| anyhow::anyhow!("{dest:?}: {e}"))?;
            assert_eq!(std::fs::read_to_string(ambient(dest).join("data"))?, dest);
            std::fs::remove_dir_all(ambient(dest))?;
        }
    }
    assert_eq!(std::fs::read_dir(outer.join("granted/area"))?.count(), 0);
    assert_eq!(outer.names()?, vec!["granted", "outside"]);
    assert_eq!(std::fs::read_dir(outer.join("outside"))?.count(), 0);
    let mut left = stagelock_tests::names(&outer.join("granted"))?;
    left.retain(|name| name != "area" && name != "C:");
    assert!(left.is_empty(), "left in the grant: {left:?}");
    #[cfg(windows)]
    for path in ["C:\\x.lock", "C:\\x", "x.lock", "C:x.lock", "x"] {
        assert!(!Path::new(path).exists(), "{path} made outside the grant");
    }
    Ok(())
}

#[test]
#[cfg(unix)] // symbolic links
fn a_final_symlink_is_not_followed_even_inside() -> Result<()> {
    let s = Scratch::new()?;
    std::fs::write(s.join("target"), b"")?;
    std::os::unix::fs::symlink("target", s.join("link"))?;
    std::os::unix::fs::symlink("../../etc/passwd", s.join("out"))?;
    std::os::unix::fs::symlink("missing", s.join("dangling"))?;
    for path in ["link", "out", "dangling"] {
        let err = StagingLock::try_lock_path(s.dir(), path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotAFile, "{path}: {err}");
    }
    assert!(!s.join("missing").exists(), "dangling target not created");
    Ok(())
}

#[test]
#[cfg(unix)] // FIFOs and sockets
fn non_regular_files_are_refused_without_blocking() -> Result<()> {
    let s = Scratch::new()?;
    s.dir().create_dir("dir")?;
    let fifo = s.join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap())?;
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let _socket = std::os::unix::net::UnixListener::bind(s.join("sock"))?;
    assert!(std::fs::symlink_metadata(&fifo)?.file_type().is_fifo());

    let (tx, rx) = mpsc::channel();
    let dir = s.dir().try_clone()?;
    std::thread::spawn(move || {
        let kinds: Vec<_> = ["dir", "fifo", "sock", ".", "dir/"]
            .into_iter()
            .map(|p| {
                (
                    p,
                    StagingLock::try_lock_path(&dir, p)
                        .map(drop)
                        .map_err(|e| e.kind()),
                )
            })
            .collect();
        tx.send(kinds).unwrap();
    });
    // A blocking open never returns; the five refusals take microseconds. 120 s, as
    // `wait_until`, so that a loaded machine cannot pass for a blocked open.
    let kinds = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("try-lock-path blocked on a non-regular file");
    for (path, result) in kinds {
        assert_eq!(result, Err(ErrorKind::NotAFile), "{path}");
    }
    Ok(())
}

#[test]
fn empty_and_nul_paths_are_invalid() -> Result<()> {
    let s = Scratch::new()?;
    for path in ["", "a\0b"] {
        let err = StagingLock::try_lock_path(s.dir(), path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{path:?}: {err}");
    }
    Ok(())
}

// --- Exclusion and release ---

#[test]
fn threads_on_one_path_hold_it_one_at_a_time() -> Result<()> {
    const THREADS: usize = 8;
    const ROUNDS: usize = 200;
    let s = Scratch::new()?;
    let inside = AtomicUsize::new(0);
    let acquired = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                let mut mine = 0;
                while mine < ROUNDS {
                    let lock = match StagingLock::try_lock_path(s.dir(), "shared.lock") {
                        Ok(lock) => lock,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                        Err(e) => panic!("{e}"),
                    };
                    assert_eq!(
                        inside.fetch_add(1, Ordering::SeqCst),
                        0,
                        "two holders at once"
                    );
                    std::hint::spin_loop();
                    inside.fetch_sub(1, Ordering::SeqCst);
                    lock.unlock_and_delete().unwrap();
                    mine += 1;
                }
                acquired.fetch_add(mine, Ordering::SeqCst);
            });
        }
    });
    assert_eq!(acquired.load(Ordering::SeqCst), THREADS * ROUNDS);
    assert!(s.names()?.is_empty(), "every lock file deleted");
    Ok(())
}

#[test]
fn dropping_a_lock_releases_it_and_keeps_the_file() -> Result<()> {
    let s = Scratch::new()?;
    let (lock, name) = StagingLock::create_and_lock(s.dir(), "lock-")?;
    drop(lock);
    assert!(s.join(&name).is_file(), "file stays, like after a crash");
    assert!(lockable_by_other_process(&s.join(&name))?);
    StagingLock::try_lock_path(s.dir(), &name)?.unlock_and_delete()?;
    Ok(())
}

#[test]
fn errors_convert_to_io_errors_keeping_the_kind() -> Result<()> {
    let s = Scratch::new()?;
    let held = StagingLock::try_lock_path(s.dir(), "a")?;
    let err: io::Error = StagingLock::try_lock_path(s.dir(), "a").unwrap_err().into();
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    let inner = err
        .get_ref()
        .unwrap()
        .downcast_ref::<stagelock::Error>()
        .unwrap();
    assert_eq!(inner.kind(), ErrorKind::WouldBlock);
    let err: io::Error = StagingLock::try_lock_path(s.dir(), "../a")
        .unwrap_err()
        .into();
    assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
    let err: io::Error = StagingLock::try_lock_path(s.dir(), "no/a")
        .unwrap_err()
        .into();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    held.unlock_and_delete()?;
    Ok(())
}

#[test]
fn ambient_paths_lock_and_name_the_full_path_in_errors() -> Result<()> {
    let s = Scratch::new()?;
    let auth = cap_std::ambient_authority;
    let path = s.join("amb.lock");
    let lock = StagingLock::try_lock_ambient_path(&path, auth())?;
    assert_eq!(lock.path(), Path::new("amb.lock"));
    let err = StagingLock::try_lock_ambient_path(&path, auth()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WouldBlock);
    assert_eq!(err.path(), path);
    lock.unlock_and_delete()?;
    let (lock, name) = StagingLock::create_and_lock_in_ambient_dir(s.path(), "c-", auth())?;
    assert!(s.join(&name).is_file());
    lock.unlock_and_delete()?;
    let err =
        StagingLock::create_and_lock_in_ambient_dir(s.join("nope"), "c-", auth()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("nope"), "{err}");
    let err = StagingLock::try_lock_ambient_path("/", auth()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    Ok(())
}

#[test]
fn locks_are_send_and_sync() {
    fn check<T: Send + Sync + 'static>() {}
    check::<StagingLock>();
    check::<stagelock::Error>();
}
