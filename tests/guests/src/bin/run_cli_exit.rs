//! Ends as its arguments say, in order: `N` exits with status N, `trap` traps, anything else
//! is a path to lock (and hold) first.
use stagelock_test_guests::*;

fn main() {
    let mut held = Vec::new();
    for step in args() {
        if let Ok(status) = step.parse() {
            std::process::exit(status);
        }
        if step == "trap" {
            panic!("trap requested while holding {held:?}");
        }
        held.extend(try_lock(&work(), &step));
    }
}
