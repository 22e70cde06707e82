//! One waiter of the waiting benchmarks: asks for the lock on the path it is given with no
//! time limit, waits on the request's pollable (in an async host, without holding up the
//! others), prints the wall-clock nanoseconds at which it had the lock, then unlock-and-deletes
//! it.
use std::time::{SystemTime, UNIX_EPOCH};

use stagelock_test_guests::*;

fn main() {
    let dir = work();
    let path = args().into_iter().next().expect("a path");
    let request = StagingLock::request(&dir, &path, Wait::Forever).expect("request");
    let lock = loop {
        match request.get() {
            Some(lock) => break lock.expect("the lock"),
            None => request.subscribe().block(),
        }
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970");
    println!("{}", now.as_nanos());
    lock.unlock_and_delete().expect("unlock-and-delete");
}
