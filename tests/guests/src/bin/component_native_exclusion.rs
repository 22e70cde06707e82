//! Tries `n.lock` (held natively by the host), then holds `g.lock` until the host has probed it.
use stagelock_test_guests::*;

fn main() {
    let dir = work();
    let _refused = try_lock(&dir, "n.lock");
    let lock = try_lock(&dir, "g.lock").expect("g.lock is free");
    touch(&dir, "held");
    wait_for(&dir, "done");
    unlock(lock);
}
