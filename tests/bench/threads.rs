//! Threads on different directories: how stagelock scales against how the syscalls do.

use super::*;

pub fn run(b: &Bench, t: &mut Table) {
    let (base, rounds, n) = (&b.base, b.rounds, b.n);
    let (da, db) = (scratch(base, "thread-a"), scratch(base, "thread-b"));
    let (la, lb) = (
        LockDir::new(open_dir(&da).unwrap()),
        LockDir::new(open_dir(&db).unwrap()),
    );
    let (ra, rb) = (
        std::sync::Mutex::new(floor::RawDir::open(&da)),
        std::sync::Mutex::new(floor::RawDir::open(&db)),
    );
    let ours = |l: &LockDir, ops: u32| {
        for _ in 0..ops {
            l.create_and_lock("lock-")
                .unwrap()
                .0
                .unlock_and_delete()
                .unwrap();
        }
    };
    let raw_ops = |r: &std::sync::Mutex<floor::RawDir>, ops: u32| {
        let mut r = r.lock().unwrap(); // one thread per directory: never contended
        for _ in 0..ops {
            r.create_lock_delete(true);
        }
    };
    let [one, two, raw_one, raw_two] = interleaved(
        rounds,
        &mut [
            &mut || time_per_op(1, || ours(&la, 2 * n)),
            &mut || {
                time_per_op(1, || {
                    std::thread::scope(|s| {
                        s.spawn(|| ours(&la, n));
                        s.spawn(|| ours(&lb, n));
                    })
                })
            },
            &mut || time_per_op(1, || raw_ops(&ra, 2 * n)),
            &mut || {
                time_per_op(1, || {
                    std::thread::scope(|s| {
                        s.spawn(|| raw_ops(&ra, n));
                        s.spawn(|| raw_ops(&rb, n));
                    })
                })
            },
        ],
    );
    let ops_s = |ns: f64| format!("{:.0} ops/s", f64::from(2 * n) / ns * 1e9);
    let r = one / two;
    t.row(
        "throughput, 2 threads in 2 directories (vs 1 thread, same total)",
        ops_s(two),
        ops_s(one),
        format!("{r:.2}x"),
        ">= 1.6x",
        Some(r >= 1.6),
    );
    let raw_r = raw_one / raw_two;
    t.row(
        "the same with raw syscalls: what the kernel and filesystem allow",
        ops_s(raw_two),
        ops_s(raw_one),
        format!("{raw_r:.2}x"),
        "(reference)",
        None,
    );
    let r = (one / two) / raw_r;
    t.row(
        "stagelock's 2-thread scaling relative to the raw syscalls' scaling",
        format!("{:.2}x", one / two),
        format!("{raw_r:.2}x"),
        format!("{r:.2}"),
        ">= 0.95",
        Some(r >= 0.95),
    );
}
