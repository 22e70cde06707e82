//! The error-case table, from a component built against `stagelock:staging@1.0.0` as it was
//! released (the frozen copy in the host crate's `wit-compat/1.0.0`), with raw bindings: no
//! stagelock-guest, so what is printed is exactly the `error-code` case the host sent.
//!
//! Each argument is one row, `OP|ARG|...` (see `tests/components/errors.rs`); for each the
//! guest prints one line: `ok` or the case's WIT name, with `+back` when a failed commit
//! handed its stage back (which is then aborted) and, for `request`, where the error came:
//! `at-request` or `at-get`. Grants: `/work` read-write, `/ro` read-only, `/shm` read-write on
//! another filesystem.

mod bindings {
    wit_bindgen::generate!({
        inline: "
            package test:errors;
            world errors {
                import stagelock:staging/locks@1.0.0;
                import stagelock:staging/staging@1.0.0;
                import wasi:filesystem/preopens@0.2.12;
            }
        ",
        path: ["../../wit", "../../host/stagelock-wasmtime/wit-compat/1.0.0"],
        world: "test:errors/errors",
        generate_all,
    });
}

use bindings::stagelock::staging1_0_0::locks::{self, ErrorCode, StagingLock};
use bindings::stagelock::staging1_0_0::staging::{self, CommitOptions, Durability, Layout};
use bindings::wasi::filesystem::preopens;
use bindings::wasi::filesystem::types::{Descriptor, DescriptorFlags, OpenFlags, PathFlags};

/// The WIT name of `code`.
fn case(code: &ErrorCode) -> &'static str {
    match code {
        ErrorCode::WouldBlock => "would-block",
        ErrorCode::NoEntry => "no-entry",
        ErrorCode::Invalid => "invalid",
        ErrorCode::Access => "access",
        ErrorCode::NotPermitted => "not-permitted",
        ErrorCode::ReadOnly => "read-only",
        ErrorCode::NotAFile => "not-a-file",
        ErrorCode::NotDirectory => "not-directory",
        ErrorCode::LimitReached => "limit-reached",
        ErrorCode::Exist => "exist",
        ErrorCode::CrossDevice => "cross-device",
        ErrorCode::LockLost => "lock-lost",
        ErrorCode::Other(Some(_)) => "other",
        ErrorCode::Other(None) => "other(none)",
    }
}

/// The grants, by guest path.
struct Grants {
    work: Descriptor,
    ro: Descriptor,
    shm: Descriptor,
}

impl Grants {
    /// The directory a row names: `fd` is a regular file's descriptor.
    fn dir(&self, which: &str) -> Descriptor {
        let mutate = DescriptorFlags::MUTATE_DIRECTORY;
        let (base, path, open, flags) = match which {
            "work" => (&self.work, ".", OpenFlags::DIRECTORY, mutate),
            "ro" => (&self.ro, ".", OpenFlags::DIRECTORY, DescriptorFlags::READ),
            "shm" => (&self.shm, ".", OpenFlags::DIRECTORY, mutate),
            "fd" => (
                &self.work,
                "file",
                OpenFlags::empty(),
                DescriptorFlags::READ,
            ),
            other => panic!("no directory {other:?}"),
        };
        base.open_at(PathFlags::empty(), path, open, flags)
            .unwrap_or_else(|e| panic!("open {which}: {e:?}"))
    }
}

fn main() {
    let mut grants = preopens::get_directories();
    let mut take = |name: &str| {
        let at = grants.iter().position(|(_, p)| p == name).expect(name);
        grants.swap_remove(at).0
    };
    let grants = Grants {
        work: take("/work"),
        ro: take("/ro"),
        shm: take("/shm"),
    };
    for row in std::env::args().skip(1) {
        let fields: Vec<&str> = row.split('|').collect();
        println!("{}", run(&grants, &fields));
    }
}

fn outcome<T>(result: Result<T, ErrorCode>, ok: impl FnOnce(T)) -> String {
    match result {
        Ok(taken) => {
            ok(taken);
            "ok".to_owned()
        }
        Err(code) => case(&code).to_owned(),
    }
}

fn release(lock: StagingLock) {
    StagingLock::unlock_and_delete(lock).expect("unlock");
}

/// Runs one row.
fn run(g: &Grants, row: &[&str]) -> String {
    match row {
        ["try", dir, path] => outcome(locks::try_lock_path(&g.dir(dir), path), release),
        ["create", dir, pattern] => {
            outcome(locks::create_and_lock(&g.dir(dir), pattern), |(l, _)| {
                release(l)
            })
        }
        ["request", dir, path] => match locks::request_lock(&g.dir(dir), path, Some(0)) {
            Err(code) => format!("at-request {}", case(&code)),
            Ok(request) => loop {
                match request.get() {
                    None => request.subscribe().block(),
                    Some(Ok(result)) => break format!("at-get {}", outcome(result, release)),
                    Some(Err(())) => break "outcome taken".to_owned(),
                }
            },
        },
        ["held", path] => {
            // Taken through another handle of this component: `would-block` for the second.
            let first = locks::try_lock_path(&g.work, path).expect("first");
            let second = outcome(locks::try_lock_path(&g.work, path), release);
            release(first);
            second
        }
        ["cap", what] => {
            // The run's cap is 2: two locks held, then one more of `what`.
            let held = [
                locks::try_lock_path(&g.work, "cap-1.lock").expect("cap-1"),
                locks::try_lock_path(&g.work, "cap-2.lock").expect("cap-2"),
            ];
            let out = match *what {
                "try" => outcome(locks::try_lock_path(&g.work, "cap-3.lock"), release),
                "create" => outcome(locks::create_and_lock(&g.work, "cap-"), |(l, _)| release(l)),
                "request" => outcome(locks::request_lock(&g.work, "cap-3.lock", Some(0)), drop),
                "stage" => {
                    let area = staging::StagingArea::open(&g.work, Layout::Pairs).expect("area");
                    outcome(area.stage(), |s| staging::Stage::abort(s).expect("abort"))
                }
                other => panic!("cap {other}"),
            };
            held.into_iter().for_each(release);
            out
        }
        ["unlock", mishap] => {
            let lock = locks::try_lock_path(&g.work, "u.lock").expect("lock");
            if *mishap == "deleted" {
                g.work.unlink_file_at("u.lock").expect("delete");
            }
            outcome(StagingLock::unlock_and_delete(lock), drop)
        }
        ["area", dir] => outcome(staging::StagingArea::open(&g.dir(dir), Layout::Pairs), drop),
        ["stage", "root-gone"] => outcome(area_of_a_removed_root(g).stage(), |s| {
            staging::Stage::abort(s).expect("abort")
        }),
        ["dir", mishap] => with_stage(g, mishap, |stage| {
            let out = outcome(stage.dir(), drop);
            let _ = staging::Stage::abort(stage);
            out
        }),
        ["abort", mishap] => with_stage(g, mishap, |stage| {
            outcome(staging::Stage::abort(stage), drop)
        }),
        ["commit", dir, dest, replace, mishap] => with_stage(g, mishap, |stage| {
            let options = CommitOptions {
                replace: *replace == "replace",
                durability: Durability::None,
            };
            match staging::Stage::commit_with(stage, &g.dir(dir), dest, options) {
                Ok(()) => "ok".to_owned(),
                Err(failed) => match failed.stage {
                    Some(stage) => {
                        staging::Stage::abort(stage).expect("abort the stage handed back");
                        format!("{} +back", case(&failed.code))
                    }
                    None => case(&failed.code).to_owned(),
                },
            }
        }),
        ["exhaust", what] => {
            // Descriptors run out (the host's limit was lowered): every lock one more.
            let area = staging::StagingArea::open(&g.work, Layout::Pairs).expect("area");
            let stage = matches!(*what, "dir" | "commit").then(|| area.stage().expect("stage"));
            let mut fill = Vec::new();
            let first_failure = loop {
                match locks::create_and_lock(&g.work, "fill-") {
                    Ok((lock, _)) => fill.push(lock),
                    Err(code) => break case(&code).to_owned(),
                }
            };
            let out = match *what {
                "create" => first_failure,
                "try" => outcome(locks::try_lock_path(&g.work, "t.lock"), release),
                "stage" => outcome(area.stage(), |s| staging::Stage::abort(s).expect("abort")),
                "dir" => outcome(stage.as_ref().expect("stage").dir(), drop),
                "recover" => outcome(area.recover_stale(false), drop),
                "commit" => {
                    let stage = stage.expect("stage");
                    let commit = staging::Stage::commit(stage, &g.work, "c", false);
                    fill.into_iter().for_each(release);
                    return match commit {
                        Ok(()) => "ok".to_owned(),
                        Err(failed) => match failed.stage {
                            Some(stage) => {
                                staging::Stage::abort(stage).expect("abort");
                                format!("{} +back", case(&failed.code))
                            }
                            None => case(&failed.code).to_owned(),
                        },
                    };
                }
                other => panic!("exhaust {other}"),
            };
            fill.into_iter().for_each(release);
            if let Some(stage) = stage {
                staging::Stage::abort(stage).expect("abort");
            }
            out
        }
        ["recover", "root-gone"] => outcome(area_of_a_removed_root(g).recover_stale(false), drop),
        other => panic!("not a row: {other:?}"),
    }
}

/// An area opened on `/work/gone`, which is then removed.
fn area_of_a_removed_root(g: &Grants) -> staging::StagingArea {
    g.work.create_directory_at("gone").expect("mkdir");
    let root = g.work.open_at(
        PathFlags::empty(),
        "gone",
        OpenFlags::DIRECTORY,
        DescriptorFlags::MUTATE_DIRECTORY,
    );
    let area = staging::StagingArea::open(&root.expect("open"), Layout::Pairs).expect("area");
    g.work.remove_directory_at("gone").expect("rmdir");
    area
}

/// Stages in the area `area` of `/work` (pairs), does `mishap` to the stage as its owner, and
/// hands it to `then`.
fn with_stage(g: &Grants, mishap: &str, then: impl FnOnce(staging::Stage) -> String) -> String {
    let root = g
        .work
        .open_at(
            PathFlags::empty(),
            "area",
            OpenFlags::DIRECTORY,
            DescriptorFlags::MUTATE_DIRECTORY,
        )
        .expect("area/");
    let area = staging::StagingArea::open(&root, Layout::Pairs).expect("area");
    let stage = area.stage().expect("stage");
    let resource = format!("area/{}", stage.path());
    let lock = format!("area/lock-{}", stage.id());
    match mishap {
        "none" => {}
        "vanished" => g.work.remove_directory_at(&resource).expect("rmdir"),
        "file" => {
            g.work.remove_directory_at(&resource).expect("rmdir");
            g.work
                .open_at(
                    PathFlags::empty(),
                    &resource,
                    OpenFlags::CREATE,
                    DescriptorFlags::WRITE,
                )
                .expect("file");
        }
        "symlink-out" => {
            g.work.remove_directory_at(&resource).expect("rmdir");
            g.work
                .symlink_at("../../outside", &resource)
                .expect("symlink");
        }
        "lost" => g.work.unlink_file_at(&lock).expect("delete the lock file"),
        other => panic!("mishap {other}"),
    }
    let out = then(stage);
    // What a mishap left behind that no abort removes (the file or symlink put in the
    // resource's place, once the stage is gone).
    if matches!(mishap, "file" | "symlink-out") {
        let _ = g.work.unlink_file_at(&resource);
    }
    out
}
