//! Many holders at once: the contention stress (holders that log their holds, checked for
//! overlaps afterwards) and the contention benchmark's contenders.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Result;
use stagelock::{Attempt, LockDir, Wait};

use crate::{now_ns, stagelock_bin};

/// Sets its flag when dropped, so a recoverer looping until the flag stops however its scope is
/// left (a panic included: the scope would otherwise wait for it forever).
pub struct StopOnDrop<'a>(pub &'a std::sync::atomic::AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Holds for a few microseconds, so that overlapping holds (if locks were broken) would show.
pub fn hold_briefly() {
    for _ in 0..200 {
        std::hint::spin_loop();
    }
}

/// The native stress holder: takes `holds` holds of `paths` shared paths (`s0.lock`, ...,
/// starting at `s{first % paths}.lock`) through `locks`, each with a try-lock retried on
/// `WouldBlock`; stamps each hold on `out` as [`check_holds`] reads it. Returns how many
/// try-locks were refused.
pub fn stress_holds(
    locks: &stagelock::LockDir,
    paths: usize,
    holds: usize,
    tag: &str,
    first: usize,
    out: &mut impl Write,
) -> Result<u64> {
    let mut i = 0;
    let mut refused = 0u64;
    while i < holds {
        let path = format!("s{}.lock", (i + first) % paths);
        let lock = match locks.try_lock_path(&path) {
            Ok(lock) => lock,
            Err(e) if e.kind() == stagelock::ErrorKind::WouldBlock => {
                refused += 1;
                std::thread::yield_now();
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let acquired = now_ns();
        hold_briefly();
        let released = now_ns();
        lock.unlock_and_delete()?;
        writeln!(out, "{tag} {path} {acquired} {released}")?;
        i += 1;
    }
    out.flush()?;
    Ok(refused)
}

/// How a stress holder process takes its holds (see [`stress_holder`]).
#[derive(Clone, Copy)]
pub enum Stress {
    /// `lock-holder stress`: [`stress_holds`] in that process.
    Native,
    /// `lock-holder stress-cli`: each hold a `stagelock lock` (the debug [`stagelock_bin`]) from
    /// that process.
    Cli,
}

/// `lock-holder stress[-cli] [STAGELOCK] DIR PATHS HOLDS TAG`: `holds` holds of `paths` shared
/// paths in `dir`, stamped on `stdout` as [`check_holds`] reads them; `holder` is the test's
/// `env!("CARGO_BIN_EXE_lock-holder")`.
pub fn stress_holder(
    holder: &str,
    how: Stress,
    dir: &Path,
    paths: usize,
    holds: usize,
    tag: &str,
    stdout: std::fs::File,
) -> Command {
    let mut command = Command::new(holder);
    match how {
        Stress::Native => command.arg("stress"),
        Stress::Cli => command.arg("stress-cli").arg(stagelock_bin(false)),
    };
    command
        .arg(dir)
        .args([&paths.to_string(), &holds.to_string(), tag])
        .stdout(stdout);
    command
}

/// One hold, as stamped by its holder.
struct Hold {
    tag: String,
    acquired: u128,
    released: u128,
}

/// The contention checker: reads every log in `logs` (lines `TAG PATH ACQUIRE_NS RELEASE_NS`,
/// as the stress holders print them) and checks, path by path, that each hold began after the
/// previous one ended, and that `expected` holds were logged in all. Returns how many were.
pub fn check_holds(logs: &Path, expected: usize) -> Result<usize> {
    let mut by_path: std::collections::BTreeMap<String, Vec<Hold>> =
        std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(logs)? {
        let path = entry?.path();
        for line in std::fs::read_to_string(&path)?.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            let [tag, lock, acquired, released] = f[..] else {
                anyhow::bail!("{}: bad line {line:?}", path.display())
            };
            by_path.entry(lock.to_owned()).or_default().push(Hold {
                tag: tag.to_owned(),
                acquired: acquired.parse()?,
                released: released.parse()?,
            });
        }
    }
    let mut total = 0;
    for (lock, holds) in &mut by_path {
        holds.sort_by_key(|h| h.acquired);
        for pair in holds.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            anyhow::ensure!(
                a.acquired <= a.released,
                "{lock}: {} released before acquiring",
                a.tag
            );
            anyhow::ensure!(
                b.acquired >= a.released,
                "{lock}: {} acquired at {} while {} held it until {}",
                b.tag,
                b.acquired,
                a.tag,
                a.released
            );
        }
        total += holds.len();
    }
    anyhow::ensure!(
        total == expected,
        "{total} holds logged, {expected} expected"
    );
    Ok(total)
}

/// One contender of the contention benchmark: from wall-clock `start_ns` until `end_ns`, takes
/// the lock on `name` in `dir` in turn with the others (waiting as long as it takes), holds it
/// for a 10 us critical section, and unlock-and-deletes it. Returns (locks taken, attempts
/// made). With `raw`, the loop is made of system calls, as a careful program without stagelock
/// would write it: open (creating), `F_OFD_SETLKW`, a check that the path still names the
/// file (or close and open again: the holder deleted it), the section, unlink, close.
pub fn contend(dir: &Path, name: &str, start_ns: u128, end_ns: u128, raw: bool) -> (u64, u64) {
    while now_ns() < start_ns {
        std::thread::sleep(Duration::from_micros(100));
    }
    let (mut taken, mut attempts) = (0, 0);
    let locks = LockDir::open_ambient_dir(dir, cap_std::ambient_authority()).expect("the dir");
    while now_ns() < end_ns {
        if raw {
            attempts += raw_lock_section_unlink(&dir.join(name));
        } else {
            let mut waiting = locks.start_wait(name, Wait::Forever);
            let lock = loop {
                match waiting.attempt().expect("a wait") {
                    Attempt::Locked(lock) => break lock,
                    Attempt::Retry(pause) => waiting.wait(pause),
                }
            };
            attempts += waiting.attempts();
            critical_section();
            lock.unlock_and_delete().expect("unlock-and-delete");
        }
        taken += 1;
    }
    (taken, attempts)
}

/// The benchmark's critical section: 10 us of work under the lock.
fn critical_section() {
    let start = Instant::now();
    while start.elapsed() < Duration::from_micros(10) {
        std::hint::spin_loop();
    }
}

/// The raw loop's one lock cycle; how many times it opened and locked.
#[cfg(unix)]
fn raw_lock_section_unlink(path: &Path) -> u64 {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let mut attempts = 0;
    loop {
        attempts += 1;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(path)
            .expect("open");
        // SAFETY: `flock` is plain integers; all-zero is valid (the whole file from 0).
        let mut lock: libc::flock = unsafe { std::mem::zeroed() };
        lock.l_type = libc::F_WRLCK as _;
        lock.l_whence = libc::SEEK_SET as _;
        // SAFETY: a valid descriptor and an exclusively borrowed `flock`.
        let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLKW, &mut lock) };
        assert_eq!(rc, 0, "F_OFD_SETLKW");
        let ours = file.metadata().expect("fstat").ino();
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.ino() == ours) {
            critical_section();
            std::fs::remove_file(path).expect("unlink");
            return attempts; // closing the file releases the lock
        }
    }
}

#[cfg(not(unix))]
fn raw_lock_section_unlink(_path: &Path) -> u64 {
    unimplemented!("the raw loop is Unix's F_OFD_SETLKW")
}
