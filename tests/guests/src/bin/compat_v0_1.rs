//! A component built against `stagelock:staging@0.1.0` as it was released (the frozen copy the
//! host keeps in `wit-compat/0.1.0`), with raw bindings: no stagelock-guest. It tries
//! `held.lock` (held by the host), creates and deletes a lock, stages and commits `out`, and
//! recovers the area.

mod bindings {
    wit_bindgen::generate!({
        inline: "
            package test:compat;
            world compat {
                import stagelock:staging/locks@0.1.0;
                import stagelock:staging/staging@0.1.0;
                import wasi:filesystem/preopens@0.2.12;
            }
        ",
        path: ["../../wit", "../../host/stagelock-wasmtime/wit-compat/0.1.0"],
        world: "test:compat/compat",
        generate_all,
    });
}

use bindings::stagelock::staging0_1_0::{locks, staging};
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
    file.write(b"from 0.1.0", 0).expect("write");
    drop((file, dir));
    let options = staging::CommitOptions {
        replace: false,
        durability: staging::Durability::Full,
    };
    staging::Stage::commit_with(stage, &root, "out", options).expect("commit");
    println!("ok commit out");
    let report = area.recover_stale(false).expect("recover");
    println!(
        "ok recover {} {}",
        report.removed.len(),
        report.skipped.len()
    );
}
