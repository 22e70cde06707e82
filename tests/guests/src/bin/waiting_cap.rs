//! Under a cap of 3 held locks: three requests (one for a free lock, two for locks the host
//! holds) fill it; a fourth is refused. Taking the free lock moves its place to the lock;
//! dropping a pending request frees a place for a new one.
use stagelock_test_guests::*;

fn main() {
    let dir = work();
    let free = StagingLock::request(&dir, "free.lock", Wait::Forever).expect("request 1");
    let held = StagingLock::request(&dir, "held1.lock", Wait::Forever).expect("request 2");
    let other = StagingLock::request(&dir, "held2.lock", Wait::Forever).expect("request 3");
    show(
        "request 4",
        StagingLock::request(&dir, "x.lock", Wait::Forever),
        |_| String::new(),
    );
    let lock = free.get().expect("free.lock is ready").expect("free.lock");
    drop(free);
    show(
        "request 4 again",
        StagingLock::request(&dir, "x.lock", Wait::Forever),
        |_| String::new(),
    );
    drop(held);
    let fourth = show(
        "request 4 after a drop",
        StagingLock::request(&dir, "x.lock", Wait::Forever),
        |_| String::new(),
    );
    drop((fourth, other));
    unlock(lock);
}
