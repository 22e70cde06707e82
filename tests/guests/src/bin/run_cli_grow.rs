//! Takes `grow.lock`, says so, then keeps allocating memory it touches: only a limit of the
//! host stops it.
use stagelock_test_guests::*;

fn main() {
    let dir = work();
    let _held = try_lock(&dir, "grow.lock").expect("grow.lock is free");
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    loop {
        chunks.push(vec![1u8; 1 << 20]);
        std::hint::black_box(&chunks);
    }
}
