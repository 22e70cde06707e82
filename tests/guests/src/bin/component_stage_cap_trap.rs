//! At a cap of one lock: holds a stage, is refused a second, and traps.
use stagelock_test_guests::*;

fn main() {
    let dir = work();
    let area = area(&dir, "per-dir").expect("area");
    let first = stage(&area).expect("stage");
    stage_write(&first, "f", "x");
    let second = stage(&area);
    panic!("trap requested while holding {first:?} and {second:?}");
}
