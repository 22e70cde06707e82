//! Commits onto an existing `out`, then out of the grant, then replacing `out`.
use stagelock_test_guests::*;

fn main() {
    let dir = work();
    let area = area(&dir, "pairs").expect("area");
    let stage = stage(&area).expect("stage");
    stage_write(&stage, "new", "new");
    let stage = commit(stage, &dir, "out", false).expect("the stage comes back");
    let stage = commit(stage, &dir, "../escape", false).expect("the stage comes back");
    commit(stage, &dir, "out", true);
}
