//! A guest in C: `tests/c/app.c`, built with wit-bindgen's C bindings generated from `wit/` as
//! it is, Debian's clang and wasi-libc and the preview1 reactor adapter, takes locks, is refused
//! by a holder in the host and by a Python `lockf` holder and for paths that are not lock files,
//! waits (with a timeout, and on two requests and a clock through `wasi:io/poll`), recovers a
//! dead builder's stage, stages, commits (durably, then replacing without a sync), is refused a
//! commit over its result and aborts that stage.
//!
//! `scripts/c-guest.sh` installs the tools, builds the component and runs this suite with
//! `STAGELOCK_C_GUEST` naming it. Without it the test says it is skipped and passes, so a plain
//! `cargo test` needs no C toolchain.

use anyhow::{Context, Result};
use stagelock::StagingLock;
use stagelock_tests::{GuestRun, Holder, Scratch, Taken};

#[test]
fn c_guest_locks_waits_and_stages() -> Result<()> {
    let Some(wasm) = std::env::var_os("STAGELOCK_C_GUEST") else {
        println!("skipped: run scripts/c-guest.sh");
        return Ok(());
    };
    let s = Scratch::new()?;
    let held = StagingLock::try_lock_path(s.dir(), "held.lock")?;
    let (holder, taken) = Holder::containers_storage(&s.join("py.lock"))?;
    assert_eq!(taken, Taken::Held(String::new()));
    // What a builder that died mid-stage leaves: its lock file, unlocked, and its resource.
    s.dir().create_dir_all("staging/temp-dir-7")?;
    s.dir().write("staging/temp-dir-7/half", "half built")?;
    s.dir().write("staging/lock-7", "")?;

    let path: &'static str = wasm.to_str().context("a UTF-8 path")?.to_owned().leak();
    // A second grant, whose descriptor the guest must drop.
    let other = Scratch::new()?;
    let mut done = GuestRun::new(&[])
        .work(s.path())
        .grant(other.path(), "/other", wasmtime_wasi::FsPerms::ReadOnly)
        .run(path)
        .succeeded();
    print!("the C guest printed:\n{}", done.stdout);
    // Every line was flushed: a reactor runs no exit handlers, so the guest flushes itself.
    assert_eq!(
        done.lines(),
        [
            "ok try a.lock a.lock",
            "err try held.lock would-block",
            "err try py.lock would-block",
            "err try ../out.lock not-permitted",
            "err try staging not-a-file",
            "err wait held.lock would-block",
            "ok wait c.lock c.lock",
            "ok poll [1]",
            "ok wait d.lock d.lock",
            "ok recover 7 0",
            "ok commit first",
            "ok commit second",
            "err commit third exist (stage back: true)",
            "ok abort",
            "ok unlock a.lock",
        ],
        "{}",
        done.stdout
    );
    // Nothing leaks: no lock or stage is held, and of the descriptors only the adapter's own
    // preopens are left (the guest dropped the ones get-directories gave it, which the
    // generated list-free function does not).
    assert_eq!(done.store.data().locks.held(), 0, "locks and stages held");
    let descriptors = done
        .store
        .data_mut()
        .table
        .iter_mut()
        .filter(|entry| entry.is::<wasmtime_wasi::filesystem::Descriptor>())
        .count();
    assert_eq!(descriptors, 2, "descriptors left in the store");

    assert_eq!(std::fs::read_to_string(s.join("out/built.txt"))?, "second");
    let left = stagelock_tests::names(&s.join("staging"))?;
    assert!(left.is_empty(), "every stage is gone: {left:?}");
    holder.release()?;
    held.unlock_and_delete()?;
    assert_eq!(s.names()?, ["out", "py.lock", "staging"]);
    Ok(())
}

/// Without a directory at `/work` the guest says so and `run` returns false: a failed run, as
/// `stagelock run` turns into a non-zero exit.
#[test]
fn c_guest_without_work_fails() {
    let Some(wasm) = std::env::var_os("STAGELOCK_C_GUEST") else {
        println!("skipped: run scripts/c-guest.sh");
        return;
    };
    let path: &'static str = wasm.to_str().expect("a UTF-8 path").to_owned().leak();
    let done = GuestRun::new(&[]).run(path);
    assert_eq!(done.outcome, Err("run returned an error".to_owned()));
    assert_eq!(
        done.stderr,
        "c guest: run it with a directory granted at /work\n"
    );
    assert_eq!(done.stdout, "");
}
