//! Creates up to N (argument) locks, releases the newest, and creates one more.
use stagelock_test_guests::*;

fn main() {
    let dir = work();
    let mut held = many(&dir, arg(0), "lock-");
    unlock(held.pop().expect("took at least one"));
    held.extend(create(&dir, "again-"));
}
