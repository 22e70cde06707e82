//! A guest in JavaScript: `tests/js/app.js`, built into a component by componentize-js from
//! `wit/` as it is, takes locks, is refused by a holder in the host and by a Python `lockf`
//! holder, waits (with a timeout, and on two requests and a clock through `wasi:io/poll`),
//! stages, commits (durably, then replacing without a sync), is refused a commit over its
//! result and aborts that stage, recovers a dead builder's stage, and commits a stage whose
//! resource it removed itself: refused with `no-entry`, the stage handed back to abort.
//!
//! `scripts/js-guest.sh` installs componentize-js (npm, pinned by `tests/js/package-lock.json`),
//! builds the component and runs this suite with `STAGELOCK_JS_GUEST` naming it. Without it the
//! test says it is skipped and passes, so a plain `cargo test` needs no Node.js.

use anyhow::{Context, Result};
use stagelock::StagingLock;
use stagelock_tests::{GuestRun, Holder, Scratch, Taken};

#[test]
fn js_guest_locks_waits_and_stages() -> Result<()> {
    let Some(wasm) = std::env::var_os("STAGELOCK_JS_GUEST") else {
        println!("skipped: run scripts/js-guest.sh");
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
    let done = GuestRun::new(&[]).work(s.path()).run(path).succeeded();
    assert_eq!(
        done.lines(),
        [
            "ok try a.lock a.lock",
            "err try held.lock would-block",
            "err try py.lock would-block",
            "err wait held.lock would-block",
            "ok wait c.lock c.lock",
            "ok poll [1]",
            "ok wait d.lock d.lock",
            "ok recover 7 0",
            "ok commit first",
            "ok commit second",
            "err commit third exist (stage back: true)",
            "ok abort",
            "err commit vanished no-entry (stage back: true)",
            "ok abort vanished",
            "ok unlock a.lock",
        ],
        "{}",
        done.stdout
    );
    assert_eq!(std::fs::read_to_string(s.join("out/built.txt"))?, "second");
    let left = stagelock_tests::names(&s.join("staging"))?;
    assert!(left.is_empty(), "every stage is gone: {left:?}");
    holder.release()?;
    held.unlock_and_delete()?;
    assert_eq!(s.names()?, ["out", "py.lock", "staging"]);
    Ok(())
}
