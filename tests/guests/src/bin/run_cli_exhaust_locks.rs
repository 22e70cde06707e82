//! `run_cli_exhaust_locks`: a guest whose very first act is to create-and-lock in its first preopened
//! directory until an error, before any other WASI call (no output yet, so nothing of the host's
//! WASI machinery has been used). Then it prints `exhausted N KIND`, unlock-and-deletes every
//! lock it took, prints `released N`, and exits 0 if the error was `limit-reached`, 1 otherwise.
//!
//! Its host test runs it under `stagelock run` with a low `RLIMIT_NOFILE`: the host must hand
//! out `limit-reached` and go on working (printing, releasing) rather than crash.

use stagelock_guest::{ErrorKind, StagingLock, preopened_dirs};

fn main() {
    let (dir, _) = preopened_dirs()
        .into_iter()
        .next()
        .expect("no directory was granted");
    let mut held = Vec::new();
    let error = loop {
        match StagingLock::create_and_lock(&dir, "lock-") {
            Ok((lock, _name)) => held.push(lock),
            Err(e) => break e,
        }
    };
    println!("exhausted {} {:?}", held.len(), error.kind());
    let count = held.len();
    for lock in held {
        lock.unlock_and_delete().expect("unlock-and-delete");
    }
    println!("released {count}");
    std::process::exit(if error.kind() == ErrorKind::LimitReached {
        0
    } else {
        1
    });
}
