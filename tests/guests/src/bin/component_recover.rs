//! Recovers a staging area (`pairs`): a dry run, then twice for real.
use stagelock_test_guests::*;

fn main() {
    let dir = work();
    let area = area(&dir, "pairs").expect("area");
    show("recover-dry", area.recover_stale_dry_run(), summary);
    show("recover", area.recover_stale(), summary);
    show("recover", area.recover_stale(), summary);
}
