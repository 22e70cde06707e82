//! Memory and descriptors per held lock, native and guest.

use super::*;

pub fn run(b: &Bench, t: &mut Table) {
    let base = &b.base;
    const HELD: usize = 10_000;
    let md = scratch(base, "memory");
    let mlocks = LockDir::new(open_dir(&md).unwrap());
    let mdir = open_dir(&md).unwrap();
    let mut held: Vec<StagingLock> = Vec::with_capacity(HELD);
    // The `&Dir` variant takes two descriptors per lock: hold fewer to stay under RLIMIT_NOFILE.
    for (what, shared, count) in [
        ("`LockDir`", true, HELD),
        ("`StagingLock::create_and_lock(&Dir)`", false, HELD / 4),
    ] {
        let (heap0, fds0) = (LIVE.load(Ordering::SeqCst), open_fds());
        for _ in 0..count {
            let (lock, _) = if shared {
                mlocks.create_and_lock("lock-")
            } else {
                StagingLock::create_and_lock(&mdir, "lock-")
            }
            .unwrap();
            held.push(lock);
        }
        let heap = (LIVE.load(Ordering::SeqCst) - heap0) as f64 / count as f64;
        let fds = (open_fds() - fds0) as f64 / count as f64;
        // The `&Dir` convenience keeps its own duplicate of the directory, by design.
        let (target, met) = if shared {
            ("<= 1 fd, <= 256 B", Some(fds <= 1.0 && heap <= 256.0))
        } else {
            ("(2 fds by design)", None)
        };
        t.row(
            &format!("per held lock ({count} held), native {what}: descriptors / heap bytes"),
            format!("{fds:.2} fd, {heap:.0} B"),
            format!("+{} B inline", std::mem::size_of::<StagingLock>()),
            String::new(),
            target,
            met,
        );
        for lock in held.drain(..) {
            lock.unlock_and_delete().unwrap();
        }
    }
    let (heap, fds) = bench_held_cost(&md, HELD);
    t.row(
        "per held lock (10000 held), guest, host side: descriptors / heap bytes",
        format!("{fds:.2} fd, {heap:.0} B"),
        String::new(),
        String::new(),
        "<= 1 fd, <= 256 B",
        Some(fds <= 1.0 && heap <= 256.0),
    );
}

/// Host-side cost of a guest holding `count` locks: measured while it holds 1, then count + 1.
pub fn bench_held_cost(dir: &Path, count: usize) -> (f64, f64) {
    std::thread::scope(|s| {
        let run = s.spawn(|| {
            GuestRun::new(&[&count.to_string()])
                .work(dir)
                .max_held(count + 10)
                .run(BENCH_HELD_COST)
                .succeeded()
        });
        let wait = |name: &str| {
            stagelock_tests::wait_until(&format!("the guest to reach {name}"), || {
                dir.join(name).exists()
            })
        };
        wait("a");
        let (heap0, fds0) = (LIVE.load(Ordering::SeqCst), open_fds());
        std::fs::write(dir.join("b"), "").unwrap();
        wait("c");
        let heap = (LIVE.load(Ordering::SeqCst) - heap0) as f64 / count as f64;
        let fds = (open_fds() - fds0) as f64 / count as f64;
        std::fs::write(dir.join("d"), "").unwrap();
        run.join().unwrap();
        (heap, fds)
    })
}
