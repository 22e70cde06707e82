//! Waiting for a lock: every kind of release reaches a waiting thread (`lock_path`) and a
//! waiting `LockWait` driven by a waker (`register`), an idle wait makes no attempts,
//! a timed wait never gives up early, and a dropped wait leaves no descriptor or watch behind.
//!
//! `STAGELOCK_FAULTS_OFF=wait-events` switches the events off (every wait polls with backoff):
//! `idle_wait_makes_no_attempts` then fails.
#![cfg_attr(windows, allow(dead_code, unused_imports))] // the Unix-only cases' helpers

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Wake, Waker};
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use stagelock::faults::Protection;
use stagelock::{Attempt, ErrorKind, LockDir, StagingLock, Wait};
use stagelock_tests::{Holder, Scratch, Taken, in_own_process, wait_until};

/// Generous: a waiter must have its lock this long after the release at the latest.
const GENEROUS: Duration = Duration::from_secs(20);

/// Whether this build's waits get events (Linux, OFD locks; the test directory is local).
const EVENTS: bool = cfg!(all(
    any(target_os = "linux", target_os = "android"),
    not(stagelock_posix_fallback)
));

fn faults_from_env() {
    Protection::switch_off_from_env().expect("STAGELOCK_FAULTS_OFF");
}

fn events_expected() -> bool {
    EVENTS && std::env::var("STAGELOCK_FAULTS_OFF").map_or(true, |v| !v.contains("wait-events"))
}

fn lock_holder(s: &Scratch, path: &str) -> Result<Holder> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lock-holder"));
    command.arg("try").arg(s.path()).arg(path);
    let (holder, taken) = Holder::start(command)?;
    ensure!(
        taken == Taken::Held(String::new()),
        "lock-holder: {taken:?}"
    );
    Ok(holder)
}

/// A containers/storage-style holder (a classic `fcntl` lock, Python's `lockf`) that, told
/// `unlock`, releases with `F_UNLCK` and keeps its descriptor open until stdin closes.
#[cfg(unix)]
fn posix_unlock_keeping_fd(path: &Path) -> Result<Holder> {
    const SCRIPT: &str = r#"
import fcntl, sys
f = open(sys.argv[1], "a")
fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
print("held", flush=True)
sys.stdin.readline()
fcntl.lockf(f, fcntl.LOCK_UN)
print("unlocked", flush=True)
sys.stdin.read()
print("released", flush=True)
"#;
    let mut command = Command::new("python3");
    command.arg("-c").arg(SCRIPT).arg(path);
    let (holder, taken) = Holder::start(command)?;
    ensure!(
        taken == Taken::Held(String::new()),
        "python holder: {taken:?}"
    );
    Ok(holder)
}

/// Unparks a thread: the waker of a `LockWait` driven by `register`.
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// What a waiter saw: whether its wait was armed with events while busy.
struct Waiter {
    thread: JoinHandle<Result<bool>>,
    started: Arc<AtomicBool>,
}

/// A thread waiting in `lock_path`; once it has the lock, it unlocks and deletes it.
fn thread_waiter(locks: &LockDir, path: &'static str) -> Waiter {
    let locks = locks.clone();
    let started = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&started);
    let thread = thread::spawn(move || {
        flag.store(true, Ordering::SeqCst);
        let lock = locks.lock_path(path, Wait::For(Duration::from_secs(120)))?;
        lock.unlock_and_delete()?;
        Ok(true)
    });
    Waiter { thread, started }
}

/// A `LockWait` driven like an event loop does: `register` its waker, park until woken or
/// the pause ends; once it has the lock, it drops it (leaving the file).
fn registered_waiter(locks: &LockDir, path: &'static str) -> Waiter {
    let locks = locks.clone();
    let started = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&started);
    let thread = thread::spawn(move || {
        let waker = Waker::from(Arc::new(Unpark(thread::current())));
        let mut waiting = locks.start_wait(path, Wait::For(Duration::from_secs(120)));
        let mut armed = false;
        let lock: StagingLock = loop {
            match waiting.attempt()? {
                Attempt::Locked(lock) => break lock,
                Attempt::Retry(pause) => {
                    armed |= waiting.register(&waker);
                    flag.store(true, Ordering::SeqCst);
                    thread::park_timeout(pause);
                }
            }
        };
        drop(lock);
        Ok(armed)
    });
    Waiter { thread, started }
}

/// Starts both kinds of waiter on `path`, lets them wait, runs `release`, and checks both get
/// the lock within [`GENEROUS`].
fn both_get_it(
    s: &Scratch,
    path: &'static str,
    release: impl FnOnce() -> Result<()>,
) -> Result<()> {
    faults_from_env();
    let locks = LockDir::new(s.dir().try_clone()?);
    let waiters = [thread_waiter(&locks, path), registered_waiter(&locks, path)];
    for w in &waiters {
        wait_until("the waiter started", || w.started.load(Ordering::SeqCst));
    }
    // Not needed for the test to pass: gives the thread in lock_path time to start waiting.
    thread::sleep(Duration::from_millis(200));
    for w in &waiters {
        ensure!(
            !w.thread.is_finished(),
            "a waiter ended while the lock was held"
        );
    }
    release()?;
    let released = Instant::now();
    for (i, w) in waiters.into_iter().enumerate() {
        while !w.thread.is_finished() {
            ensure!(
                released.elapsed() < GENEROUS,
                "waiter {i} has not got the lock {GENEROUS:?} after the release"
            );
            thread::sleep(Duration::from_millis(5));
        }
        let armed = w.thread.join().expect("waiter panicked")?;
        if i == 1 && events_expected() {
            ensure!(armed, "the registered waiter was not armed with events");
        }
    }
    Ok(())
}

#[test]
fn unlock_and_delete_reaches_the_waiters() -> Result<()> {
    let s = Scratch::new()?;
    let holder = lock_holder(&s, "d.lock")?;
    both_get_it(&s, "d.lock", || holder.release())
}

#[test]
fn the_holders_exit_reaches_the_waiters() -> Result<()> {
    let s = Scratch::new()?;
    let holder = lock_holder(&s, "e.lock")?;
    both_get_it(&s, "e.lock", || holder.kill())
}

#[test]
#[cfg(unix)]
fn a_posix_holder_that_closes_reaches_the_waiters() -> Result<()> {
    let s = Scratch::new()?;
    let (holder, taken) = Holder::containers_storage(&s.join("p.lock"))?;
    ensure!(taken == Taken::Held(String::new()), "{taken:?}");
    both_get_it(&s, "p.lock", || holder.release())
}

/// No event shows this release: the slow fallback poll notices it (within about 1 s).
#[test]
#[cfg(unix)]
fn a_posix_unlock_keeping_the_descriptor_reaches_the_waiters() -> Result<()> {
    let s = Scratch::new()?;
    let mut holder = posix_unlock_keeping_fd(&s.join("u.lock"))?;
    both_get_it(&s, "u.lock", || {
        holder.send("unlock\n")?;
        ensure!(holder.line()? == "unlocked");
        Ok(())
    })?;
    holder.release()
}

/// The lock file is deleted, its holder still holding it, between a waiter's try and its
/// watch: the deletion's event came before the watch, and the deleted file, held, is never
/// free for the sweep to find. The waiter must see it as it arms and take the path's new file.
/// (The model test found this wait waiting until its limit.)
#[test]
#[cfg(unix)]
fn a_file_deleted_between_the_try_and_the_watch_is_seen_as_the_wait_arms() -> Result<()> {
    faults_from_env();
    let s = Scratch::new()?;
    let locks = LockDir::new(s.dir().try_clone()?);
    let held = locks.try_lock_path("g.lock")?;
    let doomed = s.join("g.lock");
    let waiter = {
        let locks = locks.clone();
        thread::spawn(move || -> Result<StagingLock> {
            let mut first = true;
            // Between the waiter's open and its (first) try: the file goes, still held.
            let _hook = stagelock::faults::set_before_lock(move |_, _| {
                if std::mem::take(&mut first) {
                    std::fs::remove_file(&doomed).expect("delete the held lock file");
                }
            });
            Ok(locks.lock_path("g.lock", Wait::For(Duration::from_secs(600)))?)
        })
    };
    let started = Instant::now();
    while !waiter.is_finished() {
        ensure!(
            started.elapsed() < GENEROUS,
            "the waiter has not taken the new g.lock {GENEROUS:?} after the old one was deleted"
        );
        thread::sleep(Duration::from_millis(5));
    }
    let lock = waiter.join().expect("waiter panicked")?;
    lock.verify()?; // the file at the path, not the deleted one
    drop(held);
    lock.unlock_and_delete()?;
    Ok(())
}

/// Six threads of this process take one path in turn, 40 times each, releasing by
/// unlock-and-delete and by dropping the lock (the file stays), alternately: every one gets
/// its turns (no wake-up is lost: a stuck waiter fails the test after [`GENEROUS`] x 3), and a
/// release makes one try of the lock in this process, not one per waiter: the tries beyond
/// each wait's first are at most 2 per lock taken (1 + the one waiting process).
///
/// `STAGELOCK_FAULTS_OFF=wait-events` makes every wait poll (many tries); the turns still
/// come, so only the count fails then.
#[test]
fn many_waiters_of_one_process_take_turns_one_try_per_release() -> Result<()> {
    faults_from_env();
    const THREADS: usize = 6;
    const TURNS: u64 = 40;
    let s = Scratch::new()?;
    let locks = LockDir::new(s.dir().try_clone()?);
    let start = Instant::now();
    let tries: u64 = thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let locks = locks.clone();
                scope.spawn(move || -> Result<u64> {
                    let mut tries = 0;
                    for turn in 0..TURNS {
                        let mut waiting = locks.start_wait("turns.lock", Wait::Forever);
                        let lock = loop {
                            match waiting.attempt()? {
                                Attempt::Locked(lock) => break lock,
                                Attempt::Retry(pause) => waiting.wait(pause),
                            }
                            ensure!(
                                start.elapsed() < GENEROUS * 3,
                                "thread {t} stuck waiting for its turn {turn}"
                            );
                        };
                        tries += waiting.attempts() - 1;
                        thread::sleep(Duration::from_millis(2));
                        if turn % 2 == 0 {
                            lock.unlock_and_delete()?;
                        } else {
                            drop(lock);
                        }
                        // Let the others have their turns: each release finds them waiting.
                        thread::sleep(Duration::from_millis(3));
                    }
                    Ok(tries)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("worker panicked"))
            .sum::<Result<u64>>()
    })?;
    let taken = THREADS as u64 * TURNS;
    let per = tries as f64 / taken as f64;
    println!("{tries} tries beyond each wait's first for {taken} locks: {per:.2} per lock");
    if EVENTS {
        ensure!(per <= 2.0, "{per:.2} tries per release (at most 2)");
    }
    Ok(())
}

#[test]
fn idle_wait_makes_no_attempts() -> Result<()> {
    faults_from_env();
    let s = Scratch::new()?;
    let holder = lock_holder(&s, "i.lock")?;
    let locks = LockDir::new(s.dir().try_clone()?);
    let attempts = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&attempts);
    let waiter = thread::spawn(move || -> Result<()> {
        let mut waiting = locks.start_wait("i.lock", Wait::For(Duration::from_secs(120)));
        let lock = loop {
            let attempt = waiting.attempt()?;
            counted.store(waiting.attempts(), Ordering::SeqCst);
            match attempt {
                Attempt::Locked(lock) => break lock,
                Attempt::Retry(pause) => waiting.wait(pause),
            }
        };
        lock.unlock_and_delete()?;
        Ok(())
    });
    wait_until("the first attempt", || attempts.load(Ordering::SeqCst) >= 1);
    let before = attempts.load(Ordering::SeqCst);
    // Long enough for the events thread's sweep (every second) to look at the held file twice.
    thread::sleep(Duration::from_millis(2500));
    let idle = attempts.load(Ordering::SeqCst) - before;
    holder.release()?;
    waiter.join().expect("waiter panicked")?;
    println!("attempts during 2.5 idle seconds: {idle}");
    // `EVENTS`, not `events_expected()`: with the events switched off this fails, as it must.
    if EVENTS {
        ensure!(
            idle == 0,
            "{idle} attempts during 2.5 idle seconds (with events, none)"
        );
    }
    Ok(())
}

#[test]
fn a_timed_wait_never_gives_up_early() -> Result<()> {
    faults_from_env();
    let s = Scratch::new()?;
    let locks = LockDir::new(s.dir().try_clone()?);
    let held = locks.try_lock_path("t.lock")?;
    for limit in [1, 30, 300, 1200].map(Duration::from_millis) {
        let start = Instant::now();
        let err = locks.lock_path("t.lock", Wait::For(limit)).unwrap_err();
        let waited = start.elapsed();
        ensure!(err.kind() == ErrorKind::WouldBlock, "{err}");
        ensure!(waited >= limit, "gave up after {waited:?} of {limit:?}");
    }
    // Events in the meantime (another waiter's arrival, a touch of the file) do not end it.
    let start = Instant::now();
    let limit = Duration::from_millis(500);
    let other = locks.clone();
    let toucher = thread::spawn(move || {
        for _ in 0..5 {
            thread::sleep(Duration::from_millis(50));
            let _ = other.try_lock_path("t.lock");
        }
    });
    let err = locks.lock_path("t.lock", Wait::For(limit)).unwrap_err();
    let waited = start.elapsed();
    toucher.join().expect("toucher panicked");
    ensure!(err.kind() == ErrorKind::WouldBlock, "{err}");
    ensure!(waited >= limit, "gave up after {waited:?} of {limit:?}");
    held.unlock_and_delete()?;
    Ok(())
}

/// The descriptors of this process, and the watches of its inotify instances.
#[cfg(target_os = "linux")]
fn descriptors_and_watches() -> Result<(usize, usize)> {
    let mut fds = 0;
    let mut watches = 0;
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let entry = entry?;
        fds += 1;
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue; // the directory's own descriptor, closed by now
        };
        if target == Path::new("anon_inode:inotify") {
            let info =
                std::fs::read_to_string(Path::new("/proc/self/fdinfo").join(entry.file_name()))?;
            watches += info
                .lines()
                .filter(|l| l.starts_with("inotify wd:"))
                .count();
        }
    }
    Ok((fds, watches))
}

#[test]
#[cfg(target_os = "linux")]
fn a_dropped_wait_leaves_no_descriptor_behind() -> Result<()> {
    if !in_own_process("waits::a_dropped_wait_leaves_no_descriptor_behind") {
        return Ok(());
    }
    faults_from_env();
    let s = Scratch::new()?;
    let locks = LockDir::new(s.dir().try_clone()?);
    let held = locks.try_lock_path("f.lock")?;
    let one_wait = || -> Result<(bool, (usize, usize))> {
        let mut waiting = locks.start_wait("f.lock", Wait::Forever);
        let Attempt::Retry(_) = waiting.attempt()? else {
            anyhow::bail!("got a held lock");
        };
        Ok((waiting.has_events(), descriptors_and_watches()?))
    };
    // The first wait makes the process's event source (one descriptor, kept).
    one_wait()?;
    let (before, _) = descriptors_and_watches()?;
    let (armed, during) = one_wait().context("second wait")?;
    let (after, _) = descriptors_and_watches()?;
    eprintln!(
        "descriptors: before {before}, waiting {}, after {after}",
        during.0
    );
    if events_expected() {
        ensure!(armed, "the wait was not armed with events");
        ensure!(
            during == (before + 1, 1),
            "a waiting wait keeps one descriptor and one watch: {before} -> {during:?}"
        );
    }
    ensure!(
        after == before,
        "a dropped wait left a descriptor behind: {before} -> {after}"
    );
    // The watch nobody waits on is removed by the events thread's next sweep (about a
    // second): removing it can take the kernel milliseconds, which a wait that ends does not
    // spend.
    wait_until("the unwatched file's watch removed", || {
        descriptors_and_watches().is_ok_and(|(_, watches)| watches == 0)
    });
    held.unlock_and_delete()?;
    Ok(())
}
