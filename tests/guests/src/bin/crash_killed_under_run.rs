//! Creates a lock, says so with the marker `holding`, and waits for a marker that never comes
//! (the host kills it).
use stagelock_test_guests::*;

fn main() {
    let dir = work();
    let _held = create(&dir, "lock-");
    touch(&dir, "holding");
    wait_for(&dir, "never");
}
