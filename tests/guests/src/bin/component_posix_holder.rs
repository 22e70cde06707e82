//! Tries `go.lock` (which a POSIX `fcntl` holder may hold), and releases it if taken.
use stagelock_test_guests::*;

fn main() {
    let dir = work();
    if let Some(lock) = try_lock(&dir, "go.lock") {
        unlock(lock);
    }
}
