//! `wait`: requests `w.lock` (held by the host), tells the host it waits (`waiting`), waits
//! without limit, then unlock-and-deletes it.
//! `work`: 200 times takes and releases its own lock, then prints `ok worked`.
use stagelock_test_guests::*;

fn main() {
    let dir = work();
    match args()[0].as_str() {
        "wait" => {
            let request = StagingLock::request(&dir, "w.lock", Wait::Forever).expect("a request");
            assert!(request.get().is_none(), "w.lock is held");
            touch(&dir, "waiting");
            let lock = loop {
                request.subscribe().block();
                if let Some(lock) = request.get() {
                    break lock;
                }
            };
            if let Some(lock) = show("wait w.lock", lock, |l| l.path()) {
                unlock(lock);
            }
        }
        "work" => {
            for _ in 0..200 {
                let lock = StagingLock::try_lock_path(&dir, "k.lock").expect("k.lock is free");
                lock.unlock_and_delete().expect("unlock k.lock");
            }
            println!("ok worked");
        }
        other => panic!("no role {other:?}"),
    }
}
