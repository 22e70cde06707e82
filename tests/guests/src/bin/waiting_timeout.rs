//! Waits for `held.lock` (held by the host) with a 300 ms timeout, then for the free `free.lock`,
//! then requests a lock beneath a missing directory and asks for its outcome twice.
use std::time::Duration;

use stagelock_test_guests::*;

fn main() {
    let dir = work();
    let timeout = Wait::For(Duration::from_millis(300));
    let refused = StagingLock::lock_path(&dir, "held.lock", timeout);
    show("wait held.lock", refused, |l| l.path());
    let free = StagingLock::lock_path(&dir, "free.lock", timeout);
    if let Some(lock) = show("wait free.lock", free, |l| l.path()) {
        unlock(lock);
    }
    let request = StagingLock::request(&dir, "missing/x.lock", Wait::Forever).expect("a request");
    request.subscribe().block();
    for _ in 0..2 {
        let outcome = request.get().expect("ready after block");
        show("get missing/x.lock", outcome, |l| l.path());
    }
}
