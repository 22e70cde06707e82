//! Contention stress, arguments `K M TAG`: M acquisitions of `s<k>.lock` (k cycling over K
//! paths), each printing `TAG PATH ACQUIRE_NS RELEASE_NS` (wall clock) stamped while held.
use stagelock_test_guests::*;

fn main() {
    let dir = work();
    let (k, m, tag): (usize, usize, String) = (arg(0), arg(1), arg(2));
    let mut i = 0;
    while i < m {
        let path = format!("s{}.lock", i % k);
        let lock = match StagingLock::try_lock_path(&dir, &path) {
            Ok(lock) => lock,
            Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
            Err(e) => panic!("{e}"),
        };
        let acquired = wall_ns();
        for _ in 0..200 {
            std::hint::spin_loop();
        }
        let released = wall_ns();
        lock.unlock_and_delete().unwrap();
        println!("{tag} {path} {acquired} {released}");
        i += 1;
    }
}

/// Wall-clock nanoseconds (the clock native and CLI stress holders stamp with too).
fn wall_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos()
}
