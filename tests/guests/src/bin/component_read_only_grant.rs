//! Takes locks in a directory that may be granted read-only.
use stagelock_test_guests::*;

fn main() {
    let dir = work();
    let _held = (try_lock(&dir, "x.lock"), create(&dir, "lock-"));
}
