//! A component built against `stagelock:staging@1.0.0` as it was released (the frozen copy in
//! the host crate's `wit-compat/1.0.0`), importing `locks` alone, with raw bindings. It tries
//! `held.lock` (held by the host), waits for it in vain, creates and deletes a lock: what a host
//! serving a later 1.x (and nothing of 1.0.0) must run unchanged.

mod bindings {
    wit_bindgen::generate!({
        inline: "
            package test:compat;
            world compat {
                import stagelock:staging/locks@1.0.0;
                import wasi:filesystem/preopens@0.2.12;
            }
        ",
        path: ["../../wit", "../../host/stagelock-wasmtime/wit-compat/1.0.0"],
        world: "test:compat/compat",
        generate_all,
    });
}

use bindings::stagelock::staging1_0_0::locks;
use bindings::wasi::filesystem::preopens;

fn main() {
    let (root, _) = preopens::get_directories()
        .into_iter()
        .next()
        .expect("a grant");
    match locks::try_lock_path(&root, "held.lock") {
        Err(code) => println!("err try {code:?}"),
        Ok(_) => println!("ok try held.lock"),
    }
    let request = locks::request_lock(&root, "held.lock", Some(1_000_000)).expect("request");
    let outcome = loop {
        if let Some(outcome) = request.get() {
            break outcome;
        }
        request.subscribe().block();
    };
    match outcome {
        Ok(Err(code)) => println!("err wait {code:?}"),
        other => println!("unexpected wait {other:?}"),
    }
    let (lock, name) = locks::create_and_lock(&root, "lock-").expect("create");
    println!("ok create {}", name.starts_with("lock-"));
    locks::StagingLock::unlock_and_delete(lock).expect("unlock");
    println!("ok unlock");
}
