//! Stages a file and commits it to `out`, in the layout given as argument.
use stagelock_test_guests::*;

fn main() {
    let dir = work();
    let layout: String = arg(0);
    let area = area(&dir, &layout).expect("area");
    let stage = stage(&area).expect("stage");
    stage_write(&stage, "a.txt", "hello");
    commit(stage, &dir, "out", false);
}
