//! Takes `spin.lock`, says so, then computes forever: only a limit of the host stops it.
use stagelock_test_guests::*;

fn main() {
    let dir = work();
    let _held = try_lock(&dir, "spin.lock").expect("spin.lock is free");
    let mut x: u64 = 1;
    loop {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}
