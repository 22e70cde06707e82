//! At a cap of one lock: opens an area, is refused a stage, frees its lock, stages and commits.
use stagelock_test_guests::*;

fn main() {
    let dir = work();
    let lock = try_lock(&dir, "a.lock").expect("a.lock");
    let area = area(&dir, "pairs").expect("area");
    let _refused = stage(&area);
    unlock(lock);
    let stage = stage(&area).expect("stage");
    stage_write(&stage, "f", "x");
    commit(stage, &dir, "out", false);
}
