//! Locks through a path with directories, and through a descriptor of a subdirectory.
use stagelock_test_guests::*;

fn main() {
    let dir = work();
    let _outer = try_lock(&dir, "staging/1/staging.lock");
    let staging = subdir(&dir, "staging");
    let _inner = try_lock(&staging, "1/staging.lock");
    let _created = create(&staging, "lock-");
}
