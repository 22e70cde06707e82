//! 20,000 try-locks of `swap/x.lock` (while the host swaps `swap` for a symlink out), each
//! released at once; prints `ok try-loop ok=A KIND=B ...` counting the outcomes.
use std::collections::BTreeMap;

use stagelock_test_guests::*;

fn main() {
    let dir = work();
    let mut outcomes = BTreeMap::<String, usize>::new();
    for _ in 0..20_000 {
        let key = match StagingLock::try_lock_path(&dir, "swap/x.lock") {
            Ok(lock) => {
                drop(lock);
                "ok".to_owned()
            }
            Err(e) => format!("{:?}", e.kind()),
        };
        *outcomes.entry(key).or_default() += 1;
    }
    let counts: Vec<String> = outcomes.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("ok try-loop {}", counts.join(" "));
}
