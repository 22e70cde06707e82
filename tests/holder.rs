//! `lock-holder`: takes a staging lock in its own process, for cross-process tests.
//!
//! Usage:
//! - `lock-holder (try|create) DIR PATH_OR_PATTERN [--drop]`: prints `held [NAME]` or `busy`;
//!   holding, it waits for stdin to close, then unlock-and-deletes (or with `--drop`, just drops
//!   the lock, leaving the file) and prints `released`.
//! - `lock-holder stage DIR (pairs|per-dir)`: starts a stage in the staging area DIR, writes a
//!   file into it, prints `held ID`, waits for stdin to close, aborts and prints `released`.
//! - `lock-holder stage-writing DIR (pairs|per-dir)`: starts a stage, prints `held ID`, then
//!   keeps writing `w<i>` files into it (every 20 ms) until stdin says `commit DEST NAME`: then
//!   commits to NAME beneath the directory DEST and prints `committed WRITES` or
//!   `lost KIND WRITES: MESSAGE` (the stage's lock was lost) or `failed KIND WRITES: MESSAGE`.
//! - `lock-holder stage-loop DIR (pairs|per-dir) COUNT DEST TAG`: COUNT times, stages, fills,
//!   checks and commits to `DEST/TAG-i`; prints `done COUNT`.
//! - `lock-holder stress DIR K M TAG`: M acquisitions of `s<k>.lock` (k cycling over K paths),
//!   each printing `TAG PATH ACQUIRE_NS RELEASE_NS` stamped while held.
//! - `lock-holder stress-cli STAGELOCK DIR K M TAG`: the same through `STAGELOCK lock`, whose
//!   command (`lock-holder stamp`) prints the stamps while the CLI holds the lock.
//! - `lock-holder stamp TAG PATH`: prints `TAG PATH NOW NOW'` (run under a held lock).
//! - `lock-holder delete PATH`: deletes PATH (another process deleting a lock file it does not
//!   hold, as no cooperating holder does).
//! - `lock-holder put NAME TEXT CODE`: writes TEXT to NAME in `$STAGELOCK_STAGE_DIR` and exits
//!   with CODE (a `stagelock stage` command, where there is no `sh`).
//! - `lock-holder churn DIR`: create-and-lock + unlock-and-delete forever (to be SIGKILLed).
//! - `lock-holder model GRANT (pairs|per-dir)`: an actor of the model test: runs the protocol of
//!   `stagelock_tests::actor` on stdin, one reply line per command on stdout, plus
//!   `nofile K` (lower the soft descriptor limit to K above the lowest free descriptor) and
//!   `nofile-restore`; ends at `quit` or the end of stdin.
//! - `lock-holder go-lock PATH` (Windows): takes the lock the way containers/storage does there
//!   (`internal/rawfilelock/rawfilelock_windows.go`): opens PATH as Go's `os.OpenFile` does
//!   (`OPEN_ALWAYS`, sharing read and write, not delete), `LockFileEx` with
//!   `LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY` over every byte; prints `held` or
//!   `busy`; holding, waits for stdin to close, unlocks, closes and prints `released`.
//! - `lock-holder contend DIR NAME START_NS END_NS (ours|raw)`: one process of the contention
//!   benchmark ([`stagelock_tests::contend`]); prints `TAKEN ATTEMPTS`.
//! - `lock-holder exhaust DIR NOFILE`: lowers RLIMIT_NOFILE to NOFILE, creates locks until the
//!   first error, prints `exhausted N KIND`, releases them all, then prints `recovered` once a
//!   new lock works again.

use std::io::Read;

use anyhow::{Context, Result, bail};
use cap_std::fs::Dir;
use stagelock::{ErrorKind, Layout, StagingArea, StagingLock};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("stage") => return stage(&args[1..]),
        Some("stage-loop") => return stage_loop(&args[1..]),
        Some("stage-writing") => return stage_writing(&args[1..]),
        Some("stress") => return stress(&args[1..]),
        Some("stress-cli") => return stress_cli(&args[1..]),
        Some("stamp") => return stamp(&args[1..]),
        Some("churn") => return churn(&args[1..]),
        Some("delete") => return delete(&args[1..]),
        Some("put") => return put(&args[1..]),
        Some("contend") => return contend(&args[1..]),
        #[cfg(unix)]
        Some("exhaust") => return exhaust(&args[1..]),
        #[cfg(unix)]
        Some("model") => return model(&args[1..]),
        #[cfg(windows)]
        Some("go-lock") => return go_lock(&args[1..]),
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

fn stage_writing(args: &[String]) -> Result<()> {
    let [dir, layout] = args else {
        bail!("usage: lock-holder stage-writing DIR LAYOUT")
    };
    let stage = area(dir, layout)?.stage()?;
    println!("held {}", stage.id());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut writes = 0u64;
    let command = loop {
        if let Ok(command) = rx.try_recv() {
            break command;
        }
        // A write may block for as long as the filesystem is frozen; it goes on afterwards.
        match stage
            .dir()
            .write(format!("w{writes}"), b"written while staging")
        {
            Ok(()) => writes += 1,
            Err(e) => eprintln!("write w{writes}: {e}"),
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let parts: Vec<&str> = command.split(' ').collect();
    let ["commit", dest, name] = parts[..] else {
        bail!("expected `commit DEST NAME`, got {command:?}")
    };
    let dest = Dir::open_ambient_dir(dest, cap_std::ambient_authority())?;
    match stage.commit(&dest, name) {
        Ok(()) => println!("committed {writes}"),
        Err(e) if e.error.kind() == ErrorKind::LockLost => {
            println!("lost {:?} {writes}: {}", e.error.kind(), e.error)
        }
        Err(e) => println!("failed {:?} {writes}: {}", e.error.kind(), e.error),
    }
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

fn stress(args: &[String]) -> Result<()> {
    let [dir, k, m, tag] = args else {
        bail!("usage: lock-holder stress DIR K M TAG")
    };
    let locks = stagelock::LockDir::open_ambient_dir(dir, cap_std::ambient_authority())?;
    let (k, m): (usize, usize) = (k.parse()?, m.parse()?);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let refused =
        stagelock_tests::stress_holds(&locks, k, m, tag, std::process::id() as usize, &mut out)?;
    eprintln!("{tag}: {m} acquisitions, {refused} refusals");
    Ok(())
}

fn stress_cli(args: &[String]) -> Result<()> {
    let [bin, dir, k, m, tag] = args else {
        bail!("usage: lock-holder stress-cli STAGELOCK DIR K M TAG")
    };
    let (k, m): (usize, usize) = (k.parse()?, m.parse()?);
    let me = std::env::current_exe()?;
    let mut i = 0;
    while i < m {
        let path = format!("s{}.lock", i % k);
        let out = std::process::Command::new(bin)
            .arg("lock")
            .arg(std::path::Path::new(dir).join(&path))
            .arg("--")
            .arg(&me)
            .args(["stamp", tag, &path])
            .stdout(std::process::Stdio::inherit())
            .output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => i += 1,
            Some(75) => std::thread::yield_now(),
            _ => bail!("stagelock lock exited {}: {stderr}", out.status),
        }
    }
    Ok(())
}

fn stamp(args: &[String]) -> Result<()> {
    let [tag, path] = args else {
        bail!("usage: lock-holder stamp TAG PATH")
    };
    let acquired = stagelock_tests::now_ns();
    stagelock_tests::hold_briefly();
    let released = stagelock_tests::now_ns();
    println!("{tag} {path} {acquired} {released}");
    Ok(())
}

fn churn(args: &[String]) -> Result<()> {
    let [dir] = args else {
        bail!("usage: lock-holder churn DIR")
    };
    let locks = stagelock::LockDir::open_ambient_dir(dir, cap_std::ambient_authority())?;
    println!("held churning");
    loop {
        let (lock, _) = locks.create_and_lock("lock-")?;
        lock.unlock_and_delete()?;
    }
}

fn put(args: &[String]) -> Result<()> {
    let [name, text, code] = args else {
        bail!("usage: lock-holder put NAME TEXT CODE")
    };
    let dir = std::env::var_os("STAGELOCK_STAGE_DIR").context("STAGELOCK_STAGE_DIR")?;
    std::fs::write(std::path::Path::new(&dir).join(name), text)?;
    std::process::exit(code.parse()?)
}

fn delete(args: &[String]) -> Result<()> {
    let [path] = args else {
        bail!("usage: lock-holder delete PATH")
    };
    std::fs::remove_file(path).with_context(|| format!("delete {path}"))
}

#[cfg(unix)]
fn model(args: &[String]) -> Result<()> {
    use std::io::{BufRead, Write};
    let [grant, layout] = args else {
        bail!("usage: lock-holder model GRANT (pairs|per-dir)")
    };
    stagelock::faults::Protection::switch_off_from_env().map_err(anyhow::Error::msg)?;
    let layout = stagelock_tests::actor::parse_layout(layout).context("layout")?;
    let mut actor = stagelock_tests::actor::Interpreter::new(grant.as_ref(), layout)?;
    let nofile = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let mut out = std::io::stdout().lock();
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let words: Vec<&str> = line.split(' ').collect();
        let reply = match words.as_slice() {
            ["nofile", more] => {
                // The limit bounds descriptor numbers, and a new one takes the lowest free:
                // the number a `dup` gets.
                let lowest_free = rustix::io::dup(std::io::stdin())?;
                let lowest_free = std::os::fd::AsRawFd::as_raw_fd(&lowest_free) as u64;
                set_nofile(lowest_free + more.parse::<u64>()?, nofile.maximum)?;
                "ok".to_owned()
            }
            ["nofile-restore"] => {
                set_nofile(nofile.current.unwrap_or(1024), nofile.maximum)?;
                "ok".to_owned()
            }
            _ => match actor.step(&line) {
                Some(reply) => reply,
                None => {
                    writeln!(out, "bye")?;
                    return Ok(());
                }
            },
        };
        writeln!(out, "{reply}")?;
        out.flush()?;
    }
    Ok(())
}

#[cfg(unix)]
fn set_nofile(current: u64, maximum: Option<u64>) -> Result<()> {
    let limit = rustix::process::Rlimit {
        current: Some(current),
        maximum,
    };
    rustix::process::setrlimit(rustix::process::Resource::Nofile, limit).context("setrlimit")?;
    Ok(())
}

#[cfg(unix)]
fn exhaust(args: &[String]) -> Result<()> {
    let [dir, nofile] = args else {
        bail!("usage: lock-holder exhaust DIR NOFILE")
    };
    let locks = stagelock::LockDir::open_ambient_dir(dir, cap_std::ambient_authority())?;
    let limit: u64 = nofile.parse()?;
    let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum;
    rustix::process::setrlimit(
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit {
            current: Some(limit),
            maximum: hard,
        },
    )?;
    let mut held = Vec::new();
    let err = loop {
        match locks.create_and_lock("lock-") {
            Ok((lock, _)) => held.push(lock),
            Err(e) => break e,
        }
    };
    println!("exhausted {} {:?} {err}", held.len(), err.kind());
    for lock in held {
        lock.unlock_and_delete()?;
    }
    locks.create_and_lock("lock-")?.0.unlock_and_delete()?;
    println!("recovered");
    Ok(())
}

#[cfg(windows)]
fn go_lock(args: &[String]) -> Result<()> {
    use std::os::windows::fs::OpenOptionsExt as _;
    use std::os::windows::io::AsRawHandle as _;
    use windows_sys::Win32::Foundation::{ERROR_LOCK_VIOLATION, HANDLE};
    use windows_sys::Win32::Storage::FileSystem::{
        FILE_SHARE_READ, FILE_SHARE_WRITE, LOCKFILE_EXCLUSIVE_LOCK, LOCKFILE_FAIL_IMMEDIATELY,
        LockFileEx, UnlockFileEx,
    };
    let [path] = args else {
        bail!("usage: lock-holder go-lock PATH")
    };
    // What Go's os.OpenFile(path, O_RDWR|O_CREATE) does: OPEN_ALWAYS, sharing read and write.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE)
        .open(path)
        .with_context(|| format!("open {path}"))?;
    let handle = file.as_raw_handle() as HANDLE;
    // SAFETY: all-zero is a valid OVERLAPPED (offset 0); the handle is valid and synchronous.
    let mut at = unsafe { std::mem::zeroed() };
    // rawfilelock_windows.go: LockFileEx(fd, LOCKFILE_EXCLUSIVE_LOCK|LOCKFILE_FAIL_IMMEDIATELY,
    // 0, allBytes, allBytes, ol) with allBytes = ^uint32(0).
    let flags = LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY;
    // SAFETY: as above; `at` outlives the synchronous call.
    if unsafe { LockFileEx(handle, flags, 0, u32::MAX, u32::MAX, &mut at) } == 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(ERROR_LOCK_VIOLATION as i32) {
            println!("busy");
            return Ok(());
        }
        return Err(err).context("LockFileEx");
    }
    println!("held");
    std::io::stdin().read_to_end(&mut Vec::new())?;
    // SAFETY: as above.
    let mut at = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { UnlockFileEx(handle, 0, u32::MAX, u32::MAX, &mut at) } == 0 {
        return Err(std::io::Error::last_os_error()).context("UnlockFileEx");
    }
    drop(file);
    println!("released");
    Ok(())
}

/// `contend DIR NAME START_NS END_NS (ours|raw)`.
fn contend(args: &[String]) -> Result<()> {
    let [dir, name, start, end, how] = args else {
        bail!("usage: lock-holder contend DIR NAME START_NS END_NS (ours|raw)");
    };
    let (start, end) = (start.parse()?, end.parse()?);
    let (taken, attempts) =
        stagelock_tests::contend(std::path::Path::new(dir), name, start, end, how == "raw");
    println!("{taken} {attempts}");
    Ok(())
}
