//! Recovers the staging area (`pairs`) in `/work` and prints how many stages it removed and
//! skipped: run by an async embedder while the host's executor keeps a ticker going.
use stagelock_test_guests::*;

fn main() {
    let dir = work();
    let area = area(&dir, "pairs").expect("area");
    show("recover", area.recover_stale(), |r| {
        format!(
            "removed={} skipped={}",
            r.removed_stages().len(),
            r.skipped_stages().len()
        )
    });
}
