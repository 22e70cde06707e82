//! Waits for `a.lock` and `b.lock` (both held by others) and a 120 s clock at once; reports
//! which became ready, takes `b.lock`, tells the host (`got-b`), then waits for `a.lock` alone.
use stagelock_test_guests::*;

fn main() {
    let dir = work();
    let a = StagingLock::request(&dir, "a.lock", Wait::Forever).expect("request a");
    let b = StagingLock::request(&dir, "b.lock", Wait::Forever).expect("request b");
    assert!(a.get().is_none() && b.get().is_none(), "both are held");
    touch(&dir, "waiting");
    let ready = {
        let (pa, pb) = (a.subscribe(), b.subscribe());
        let give_up = monotonic_clock::subscribe_duration(120_000_000_000);
        poll::poll(&[&pa, &pb, &give_up])
    };
    println!("ok ready {ready:?}");
    let lock_b = show("get b", b.get().expect("b is ready"), |l| l.path()).expect("b");
    touch(&dir, "got-b");
    a.subscribe().block();
    let lock_a = show("get a", a.get().expect("a is ready"), |l| l.path()).expect("a");
    unlock(lock_a);
    unlock(lock_b);
}
