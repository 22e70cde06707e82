//! Contention stress, arguments `K M TAG [tolerate-eperm]`: M acquisitions of `s<k>.lock` (k
//! cycling over K paths), each printing `TAG PATH ACQUIRE_NS RELEASE_NS` (wall clock) stamped
//! while held. With `tolerate-eperm`, `access-denied` from try-lock-path counts as a refusal
//! (JuiceFS answers `EPERM` when another client unlinks the file during the open) and the
//! count goes to stderr as `TAG eperm N`.
use stagelock_test_guests::*;

fn main() {
    let dir = work();
    let (k, m, tag): (usize, usize, String) = (arg(0), arg(1), arg(2));
    let tolerate_eperm = args().get(3).is_some_and(|a| a == "tolerate-eperm");
    let mut eperm = 0u64;
    let mut i = 0;
    while i < m {
        let path = format!("s{}.lock", i % k);
        let lock = match StagingLock::try_lock_path(&dir, &path) {
            Ok(lock) => lock,
            Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
            Err(e) if tolerate_eperm && e.kind() == ErrorKind::AccessDenied => {
                eperm += 1;
                continue;
            }
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
    if tolerate_eperm {
        eprintln!("{tag} eperm {eperm}");
    }
}

/// Wall-clock nanoseconds (the clock native and CLI stress holders stamp with too).
fn wall_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos()
}
