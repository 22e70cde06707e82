//! Takes `d.lock` and drops the handle without unlocking, twice.
use stagelock_test_guests::*;

fn main() {
    let dir = work();
    for _ in 0..2 {
        drop(try_lock(&dir, "d.lock").expect("d.lock is free"));
        println!("ok drop");
    }
}
