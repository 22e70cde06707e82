//! Paths and patterns that leave the granted directory; argument: an absolute path outside.
use stagelock_test_guests::*;

fn main() {
    let dir = work();
    let abs: String = arg(0);
    let mut held = Vec::new();
    for path in [
        "../x.lock",
        "../outside/x.lock",
        "/etc/stagelock-x.lock",
        &abs,
        "out/x.lock",
    ] {
        held.extend(try_lock(&dir, path));
    }
    for pattern in ["../lock-", "/tmp/lock-"] {
        held.extend(create(&dir, pattern));
    }
}
