//! Traps while holding `t.lock` and a created lock.
use stagelock_test_guests::*;

fn main() {
    let dir = work();
    let held = (try_lock(&dir, "t.lock"), create(&dir, "c-"));
    panic!("trap requested while holding {held:?}");
}
