//! A tight loop of lock cycles, for looking at with `strace -c` or `perf record`
//! (see BENCHMARKS.md): `cycle DIR N` runs N create-and-lock + unlock-and-delete cycles, then
//! N try-lock-path + unlock-and-delete cycles, in DIR.

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(n)) = (args.next(), args.next()) else {
        eprintln!("usage: cycle DIR N");
        std::process::exit(2);
    };
    let n: u32 = n.parse().expect("N is a count");
    let locks = stagelock::LockDir::open_ambient_dir(&dir, cap_std::ambient_authority())
        .unwrap_or_else(|e| panic!("{e}"));
    for _ in 0..n {
        let (lock, _) = locks.create_and_lock("lock-").unwrap();
        lock.unlock_and_delete().unwrap();
    }
    for _ in 0..n {
        locks
            .try_lock_path("t.lock")
            .unwrap()
            .unlock_and_delete()
            .unwrap();
    }
}
