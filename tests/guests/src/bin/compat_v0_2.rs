//! A component built against `stagelock:staging@0.2.0` as it was released (the frozen copy the
//! host keeps in `wit-compat/0.2.0`), with raw bindings: no stagelock-guest. It tries
//! `held.lock` (held by the host), waits 20 ms for it in vain and asks for the outcome twice,
//! creates and deletes a lock, stages and commits `out`, and recovers the area: errors are
//! 0.2.0's records, each with its code and message.

mod bindings {
    wit_bindgen::generate!({
        inline: "
            package test:compat;
            world compat {
                import stagelock:staging/locks@0.2.0;
                import stagelock:staging/staging@0.2.0;
                import wasi:filesystem/preopens@0.2.12;
            }
        ",
        path: ["../../wit", "../../host/stagelock-wasmtime/wit-compat/0.2.0"],
        world: "test:compat/compat",
        generate_all,
    });
}

use bindings::stagelock::staging0_2_0::{locks, staging};
use bindings::wasi::filesystem::{preopens, types};

fn main() {
    let (root, _) = preopens::get_directories()
        .into_iter()
        .next()
        .expect("a grant");
    match locks::try_lock_path(&root, "held.lock") {
        Err(e) => println!("err try {:?}: {}", e.code, e.message),
        Ok(_) => println!("ok try held.lock"),
    }
    let request = locks::request_lock(&root, "held.lock", Some(20_000_000)).expect("request");
    let outcome = loop {
        if let Some(outcome) = request.get() {
            break outcome;
        }
        request.subscribe().block();
    };
    for outcome in [Some(outcome), request.get()] {
        match outcome {
            Some(Err(e)) => println!("err wait {:?}: {}", e.code, e.message),
            other => println!("unexpected wait {other:?}"),
        }
    }
    drop(request);
    let (lock, name) = locks::create_and_lock(&root, "lock-").expect("create");
    println!("ok create {}", name.starts_with("lock-"));
    locks::StagingLock::unlock_and_delete(lock).expect("unlock");
    println!("ok unlock");

    let area = staging::StagingArea::open(&root, staging::Layout::Pairs).expect("area");
    let stage = area.stage().expect("stage");
    let dir = stage.dir().expect("stage dir");
    let file = dir
        .open_at(
            types::PathFlags::empty(),
            "built.txt",
            types::OpenFlags::CREATE,
            types::DescriptorFlags::WRITE,
        )
        .expect("create built.txt");
    file.write(b"from 0.2.0", 0).expect("write");
    drop((file, dir));
    let options = staging::CommitOptions {
        replace: false,
        durability: staging::Durability::Full,
    };
    staging::Stage::commit_with(stage, &root, "out", options).expect("commit");
    println!("ok commit out");
    let again = area.stage().expect("stage");
    match staging::Stage::commit(again, &root, "out", false) {
        Err(e) => println!(
            "err commit {:?}: {} (stage back: {})",
            e.error.code,
            e.error.message,
            e.stage.is_some()
        ),
        Ok(()) => println!("ok commit out again"),
    }
    let report = area.recover_stale(false).expect("recover");
    println!(
        "ok recover {} {}",
        report.removed.len(),
        report.skipped.len()
    );
}
