//! Asks for N (argument) lock handles with the pattern given as second argument.
use stagelock_test_guests::*;

fn main() {
    let pattern: String = arg(1);
    let _held = many(&work(), arg(0), &pattern);
}
