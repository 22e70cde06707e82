//! Benchmark loops, arguments `OP N TARGET`: N create-and-lock + unlock-and-delete cycles
//! (`create`, TARGET a pattern), N try-lock-path + unlock-and-delete cycles (`try`), or N
//! refused try-locks of a held path (`busy`); prints `ok bench NANOSECONDS`, timed inside.
use std::time::Instant;

use stagelock_test_guests::*;

fn main() {
    let dir = work();
    let (op, n, target): (String, u32, String) = (arg(0), arg(1), arg(2));
    let start = Instant::now();
    for _ in 0..n {
        match op.as_str() {
            "create" => {
                let (lock, _) = StagingLock::create_and_lock(&dir, &target).unwrap();
                lock.unlock_and_delete().unwrap();
            }
            "try" => StagingLock::try_lock_path(&dir, &target)
                .unwrap()
                .unlock_and_delete()
                .unwrap(),
            "busy" => drop(StagingLock::try_lock_path(&dir, &target).unwrap_err()),
            other => panic!("no benchmark {other:?}"),
        }
    }
    println!("ok bench {}", start.elapsed().as_nanos());
}
