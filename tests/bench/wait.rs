//! Waiting for a busy lock: wake-up latency and CPU, per kind of release.

use super::*;

pub fn run(b: &Bench, t: &mut Table) {
    let (base, quick) = (&b.base, b.quick);
    let d = scratch(base, "wait");
    let rounds = if quick { 5 } else { 21 };
    for release in [
        Release::UnlockAndDelete,
        Release::Exit,
        Release::Close,
        Release::UnlockKeep,
    ] {
        let (latency_ms, cpu_share) = bench_wait(&d, release, rounds);
        // No event shows an `F_UNLCK` that keeps the descriptor: on Linux the waiter notices it
        // by the events thread's sweep (every second) or the holder's close, a second later here.
        let (target, bound) = match release {
            Release::UnlockKeep if cfg!(target_os = "linux") => {
                ("<= 1100 ms (no event: the sweep)", 1100.0)
            }
            _ => ("<= 10 ms", 10.0),
        };
        t.row(
            &format!(
                "waiting lock: wake-up after {} (median of {rounds}, holds of {} ms)",
                release.what(),
                WAIT_HOLD.as_millis()
            ),
            format!("{latency_ms:.2} ms"),
            String::new(),
            String::new(),
            target,
            Some(latency_ms <= bound),
        );
        t.row(
            &format!(
                "waiting lock: CPU while waiting ({}), share of one core",
                release.what()
            ),
            format!("{:.3}%", cpu_share * 100.0),
            String::new(),
            String::new(),
            "<= 1%",
            Some(cpu_share <= 0.01),
        );
    }
    #[cfg(target_os = "linux")]
    handoff(b, t, &d);
}

/// Hand-off latency on one release (the holder, another open file description of this
/// process, closes its file): a thread waiting in `LockDir::lock_path` against a thread blocked
/// in the kernel's own `F_OFD_SETLKW`, in alternating rounds of the same run.
#[cfg(target_os = "linux")]
fn handoff(b: &Bench, t: &mut Table, d: &Path) {
    use stagelock::Wait;
    use stagelock_tests::now_ns;
    use std::os::fd::AsRawFd;
    let rounds = if b.quick { 11 } else { 101 };
    let locks = LockDir::new(open_dir(d).unwrap());
    let name = "handoff.lock";
    let path = d.join(name);
    let (mut ours, mut kernel) = (Vec::new(), Vec::new());
    for round in 0..2 * rounds {
        let held = locks.try_lock_path(name).unwrap();
        let raw = round % 2 == 1;
        let acquired = std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                if raw {
                    let file = std::fs::OpenOptions::new()
                        .read(true)
                        .write(true)
                        .open(&path)
                        .unwrap();
                    // SAFETY: `flock` is plain integers; all-zero is valid.
                    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
                    lock.l_type = libc::F_WRLCK as _;
                    lock.l_whence = libc::SEEK_SET as _;
                    // SAFETY: a valid descriptor and an exclusively borrowed `flock`.
                    let rc =
                        unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLKW, &mut lock) };
                    assert_eq!(rc, 0, "F_OFD_SETLKW");
                    now_ns()
                } else {
                    let lock = locks.lock_path(name, Wait::Forever).unwrap();
                    let at = now_ns();
                    drop(lock);
                    at
                }
            });
            // Long enough for the waiter to be waiting (blocked, or armed with its watch).
            std::thread::sleep(std::time::Duration::from_millis(20));
            let released = now_ns();
            drop(held);
            waiter.join().unwrap().saturating_sub(released) as f64 / 1e3
        });
        if raw {
            kernel.push(acquired)
        } else {
            ours.push(acquired)
        }
    }
    let p99 = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[(v.len() * 99 / 100).min(v.len() - 1)]
    };
    let (ours_p99, kernel_p99) = (p99(&mut ours), p99(&mut kernel));
    let (ours_med, kernel_med) = (median(ours), median(kernel));
    t.row(
        &format!("waiting lock: hand-off to a thread on a holder's close, median (p99) of {rounds}: lock_path vs a thread in F_OFD_SETLKW"),
        format!("{ours_med:.1} us ({ours_p99:.1} us)"),
        format!("{kernel_med:.1} us ({kernel_p99:.1} us)"),
        format!("{:.1}x", ours_med / kernel_med),
        "median <= F_OFD_SETLKW's + 50 us, p99 <= 1 ms",
        Some(ours_med <= kernel_med + 50.0 && ours_p99 <= 1000.0),
    );
}

/// How long each holder of the waiting-lock bench holds before releasing: long enough for the
/// waiter's backoff to reach its longest pause, as in a real wait.
const WAIT_HOLD: std::time::Duration = std::time::Duration::from_millis(200);

/// How the holder of the waiting-lock bench releases.
#[derive(Clone, Copy, Debug)]
enum Release {
    /// Native `unlock_and_delete` (another thread, another open file description): the
    /// waiter must open the new file at the path.
    UnlockAndDelete,
    /// A Python `fcntl.lockf` holder process exits without unlocking (a crash).
    Exit,
    /// A Python `fcntl.lockf` holder unlocks (`LOCK_UN`) and closes the file, living on:
    /// containers/storage's `Unlock` (`unlockAndCloseHandle`).
    Close,
    /// A Python `fcntl.lockf` holder unlocks (`LOCK_UN`) and keeps its descriptor open (for a
    /// second) and its life.
    UnlockKeep,
}

impl Release {
    fn what(self) -> &'static str {
        match self {
            Release::UnlockAndDelete => "unlock-and-delete",
            Release::Exit => "holder exit",
            Release::Close => "unlock and close (`lockf` `LOCK_UN`, `close`)",
            Release::UnlockKeep => "unlock keeping the descriptor (`lockf` `LOCK_UN`)",
        }
    }
}

/// The calling thread's CPU time.
fn thread_cpu() -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, exclusively borrowed timespec the call fills in.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// A Python holder that prints `held`, and on stdin EOF releases as `release` says, printing
/// the wall-clock nanoseconds just before releasing (so exit time counts against us).
const PYTHON_TIMED_HOLDER: &str = r#"
import fcntl, os, sys, time
f = open(sys.argv[1], "a")
fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
print("held", flush=True)
sys.stdin.read()
if sys.argv[2] == "exit":
    print(time.time_ns(), flush=True)
    os._exit(0)
t = time.time_ns()
fcntl.lockf(f, fcntl.LOCK_UN)
if sys.argv[2] == "close":
    f.close()
print(t, flush=True)
time.sleep(1)
"#;

/// Median wake-up latency (ms) of `StagingLock::lock_path(.., Wait::Forever)` after `release`,
/// and the waiting thread's CPU time over its wall time, over `rounds` waits.
fn bench_wait(d: &Path, release: Release, rounds: usize) -> (f64, f64) {
    use stagelock::Wait;
    use stagelock_tests::now_ns;
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let dir = open_dir(d).unwrap();
    let name = "wait.lock";
    let (mut latencies, mut cpu, mut wall) = (Vec::new(), 0.0, 0.0);
    for _ in 0..rounds {
        let _ = std::fs::remove_file(d.join(name));
        // The holder takes the lock, then the waiter starts waiting.
        let mut native = None;
        let mut child = None;
        match release {
            Release::UnlockAndDelete => {
                native = Some(StagingLock::try_lock_path(&dir, name).unwrap());
            }
            Release::Exit | Release::Close | Release::UnlockKeep => {
                let how = match release {
                    Release::Exit => "exit",
                    Release::Close => "close",
                    _ => "unlock",
                };
                let mut c = Command::new("python3")
                    .args(["-c", PYTHON_TIMED_HOLDER])
                    .arg(d.join(name))
                    .arg(how)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap();
                let mut out = BufReader::new(c.stdout.take().unwrap());
                let mut line = String::new();
                out.read_line(&mut line).unwrap();
                assert_eq!(line, "held\n");
                child = Some((c, out));
            }
        }
        let (acquired, waited_cpu, waited_wall) = std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                let (cpu0, wall0) = (thread_cpu(), Instant::now());
                let lock = StagingLock::lock_path(&dir, name, Wait::Forever).unwrap();
                let at = now_ns();
                let (cpu, wall) = (thread_cpu() - cpu0, wall0.elapsed());
                lock.unlock_and_delete().unwrap();
                (at, cpu, wall)
            });
            std::thread::sleep(WAIT_HOLD);
            let released = match (native.take(), child.as_mut()) {
                (Some(lock), _) => {
                    let at = now_ns();
                    lock.unlock_and_delete().unwrap();
                    at
                }
                (None, Some((c, out))) => {
                    drop(c.stdin.take());
                    let mut line = String::new();
                    out.read_line(&mut line).unwrap();
                    line.trim().parse::<u128>().unwrap()
                }
                (None, None) => unreachable!(),
            };
            let (at, cpu, wall) = waiter.join().unwrap();
            (at.saturating_sub(released), cpu, wall)
        });
        if let Some((mut c, _)) = child {
            let _ = c.kill();
            let _ = c.wait();
        }
        latencies.push(acquired as f64 / 1e6);
        cpu += waited_cpu.as_secs_f64();
        wall += waited_wall.as_secs_f64();
    }
    (median(latencies), cpu / wall)
}
