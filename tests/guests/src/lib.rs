//! What the test guests share: the granted directory, and one way to print an outcome.
//!
//! Each guest in `src/bin` is one scenario of one host test suite: `tests/build.rs` builds every
//! file there and lists it in a `foreach_<suite>!` macro, where the suite is the name's prefix
//! (`component_*` for `tests/components/component.rs`, ...). The host test for guest `x` is the
//! test function `x`; a guest without one does not compile.
//!
//! Guests print one line per step: `ok STEP [DETAIL]` or `err STEP KIND: MESSAGE`.

use std::time::{Duration, Instant};

use stagelock_guest::filesystem::{DescriptorFlags, OpenFlags, PathFlags};
pub use stagelock_guest::*;

/// The first directory the host granted, opened so that locks can be taken in it.
pub fn work() -> Descriptor {
    let preopens = preopened_dirs();
    let (first, _) = preopens.first().expect("no directory was granted");
    subdir(first, ".")
}

/// `path` beneath `dir`, opened as a directory locks can be taken in.
pub fn subdir(dir: &Descriptor, path: &str) -> Descriptor {
    dir.open_at(
        PathFlags::empty(),
        path,
        OpenFlags::DIRECTORY,
        DescriptorFlags::MUTATE_DIRECTORY,
    )
    .unwrap_or_else(|e| panic!("open directory {path}: {e:?}"))
}

/// Prints the outcome of `step` (`ok STEP DETAIL` or `err STEP KIND: MESSAGE`) and hands back
/// what it took, if anything.
pub fn show<T>(step: &str, result: Result<T, Error>, detail: impl Fn(&T) -> String) -> Option<T> {
    match result {
        Ok(taken) => {
            let detail = detail(&taken);
            if detail.is_empty() {
                println!("ok {step}");
            } else {
                println!("ok {step} {detail}");
            }
            Some(taken)
        }
        Err(e) => {
            show_err(step, &e);
            None
        }
    }
}

/// Prints `err STEP KIND: MESSAGE`.
pub fn show_err(step: &str, e: &Error) {
    println!("err {step} {:?}: {e}", e.kind());
}

/// `try-lock-path` of `path`, shown as step `try`.
pub fn try_lock(dir: &Descriptor, path: &str) -> Option<StagingLock> {
    show("try", StagingLock::try_lock_path(dir, path), |l| l.path())
}

/// `create-and-lock` with `pattern`, shown as step `create` with the name it created.
pub fn create(dir: &Descriptor, pattern: &str) -> Option<StagingLock> {
    show(
        "create",
        StagingLock::create_and_lock(dir, pattern),
        |(_, n)| n.clone(),
    )
    .map(|(l, _)| l)
}

/// Unlock-and-delete of `lock`, shown as step `unlock`.
pub fn unlock(lock: StagingLock) {
    show("unlock", lock.unlock_and_delete(), |()| String::new());
}

/// Creates the marker file `name` in `dir` (how a guest tells the host it got somewhere).
pub fn touch(dir: &Descriptor, name: &str) {
    dir.open_at(
        PathFlags::empty(),
        name,
        OpenFlags::CREATE,
        DescriptorFlags::WRITE,
    )
    .unwrap_or_else(|e| panic!("touch {name}: {e:?}"));
}

/// Waits (up to 120 s) until the marker file `name` exists in `dir` (how the host tells a guest
/// to go on).
pub fn wait_for(dir: &Descriptor, name: &str) {
    let start = Instant::now();
    while dir.stat_at(PathFlags::empty(), name).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "waited too long for {name}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The guest's arguments after `argv[0]`.
pub fn args() -> Vec<String> {
    std::env::args().skip(1).collect()
}

/// Opens a staging area of `layout` (`pairs` or `per-dir`) on `dir`, shown as step `area`.
pub fn area(dir: &Descriptor, layout: &str) -> Option<StagingArea> {
    let layout = match layout {
        "pairs" => Layout::Pairs,
        "per-dir" => Layout::PerDirectory,
        other => panic!("no layout {other:?}"),
    };
    show("area", StagingArea::open(dir, layout), |_| String::new())
}

/// Starts a stage, shown as `ok stage ID PATH`.
pub fn stage(area: &StagingArea) -> Option<Stage> {
    show("stage", area.stage(), |s| {
        format!("{} {}", s.id(), s.path())
    })
}

/// Writes `text` to the file `name` in `stage`, through the stage's own descriptor.
pub fn stage_write(stage: &Stage, name: &str, text: &str) {
    let file = stage
        .dir()
        .expect("stage dir")
        .open_at(
            PathFlags::empty(),
            name,
            OpenFlags::CREATE,
            DescriptorFlags::WRITE,
        )
        .expect("create in stage");
    file.write(text.as_bytes(), 0).expect("write in stage");
}

/// Commits `stage` to `dest` beneath `dir` (replacing it if `replace`), shown as step
/// `commit` or `commit-replace`; on failure the stage comes back.
pub fn commit(stage: Stage, dir: &Descriptor, dest: &str, replace: bool) -> Option<Stage> {
    let (step, result) = if replace {
        ("commit-replace", stage.commit_replacing(dir, dest))
    } else {
        ("commit", stage.commit(dir, dest))
    };
    match result {
        Ok(()) => {
            println!("ok {step}");
            None
        }
        Err(failed) => {
            show_err(step, &failed.error);
            failed.stage
        }
    }
}

/// A recovery report as `removed=ID,... skipped=ID:WHY,...` (removed ids sorted).
pub fn summary(report: &Report) -> String {
    let mut removed: Vec<&str> = report.removed_stages().map(|r| r.id).collect();
    removed.sort();
    let skipped: Vec<String> = report
        .skipped_stages()
        .map(|k| format!("{}:{}", k.id, k.reason))
        .collect();
    format!(
        "removed={} skipped={}",
        removed.join(","),
        skipped.join(",")
    )
}

/// Creates up to `n` locks with `pattern`, keeping them; prints `ok many N`, or
/// `err many TAKEN KIND: MESSAGE` at the first error.
pub fn many(dir: &Descriptor, n: usize, pattern: &str) -> Vec<StagingLock> {
    let mut held = Vec::new();
    while held.len() < n {
        match StagingLock::create_and_lock(dir, pattern) {
            Ok((lock, _)) => held.push(lock),
            Err(e) => {
                println!("err many {} {:?}: {e}", held.len(), e.kind());
                return held;
            }
        }
    }
    println!("ok many {n}");
    held
}

/// Argument `i`, parsed.
pub fn arg<T: std::str::FromStr>(i: usize) -> T {
    let args = args();
    let text = args
        .get(i)
        .unwrap_or_else(|| panic!("missing argument {i}"));
    text.parse()
        .unwrap_or_else(|_| panic!("argument {i}: cannot parse {text:?}"))
}
