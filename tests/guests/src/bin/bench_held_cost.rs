//! Holds one lock, says `a`, waits for `b`; then holds COUNT (argument) more, says `c` and waits
//! for `d`: the host measures its own cost per held lock in between.
use stagelock_test_guests::*;

fn main() {
    let dir = work();
    let _warm = many(&dir, 1, "warm-");
    touch(&dir, "a");
    wait_for(&dir, "b");
    let _held = many(&dir, arg(0), "x-");
    touch(&dir, "c");
    wait_for(&dir, "d");
}
