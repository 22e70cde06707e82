//! Run twice at once: `holder` holds `shared.lock` until `taker` has tried it.
use stagelock_test_guests::*;

fn main() {
    let dir = work();
    match args()[0].as_str() {
        "holder" => {
            let lock = try_lock(&dir, "shared.lock").expect("free at first");
            touch(&dir, "a-holds");
            wait_for(&dir, "b-done");
            unlock(lock);
        }
        _ => {
            wait_for(&dir, "a-holds");
            let _refused = try_lock(&dir, "shared.lock");
            touch(&dir, "b-done");
        }
    }
}
