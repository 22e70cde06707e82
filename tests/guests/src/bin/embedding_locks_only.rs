//! Uses only the `locks` interface: takes a lock by path and releases it.
use stagelock_test_guests::*;

fn main() {
    let dir = work();
    let lock = try_lock(&dir, "only.lock").expect("only.lock");
    unlock(lock);
}
