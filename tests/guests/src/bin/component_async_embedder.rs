//! Takes a lock by path and a created one, and releases both (run by an async embedder).
use stagelock_test_guests::*;

fn main() {
    let dir = work();
    let by_path = try_lock(&dir, "a.lock").expect("a.lock");
    let created = create(&dir, "lock-").expect("created");
    unlock(created);
    unlock(by_path);
}
