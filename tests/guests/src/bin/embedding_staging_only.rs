//! Uses only the `staging` interface: stages a file and commits it to `out`.
use stagelock_test_guests::*;

fn main() {
    let dir = work();
    let area = area(&dir, "pairs").expect("area");
    let stage = stage(&area).expect("stage");
    stage_write(&stage, "data", "staged");
    assert!(commit(stage, &dir, "out", false).is_none(), "committed");
}
