//! Components built against older WIT versions (the frozen 0.1.0 and 0.2.0) run unchanged on
//! this host, which serves 1.0.0.

use anyhow::Result;
use stagelock::StagingLock;
use stagelock_tests::guests::*;
use stagelock_tests::{GuestRun, Scratch, assert_test_exists, component, foreach_compat};

foreach_compat!(assert_test_exists);

/// The `stagelock:` interfaces `guest` imports.
fn stagelock_imports(guest: &'static str) -> Vec<String> {
    let component = component(guest);
    let engine = component.engine().clone();
    component
        .component_type()
        .imports(&engine)
        .map(|(name, _)| name.to_owned())
        .filter(|name| name.starts_with("stagelock:"))
        .collect()
}

/// Runs `guest` in a sync and in an async store, each time in a fresh directory where the host
/// holds `held.lock`; `check` gets the store's kind and the guest's lines. The guest must have
/// committed `out/built.txt` holding `built`, and left nothing else.
fn on_both_stores(guest: &'static str, built: &str, check: impl Fn(&str, &[&str])) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    for store in ["sync", "async"] {
        let s = Scratch::new()?;
        let held = StagingLock::try_lock_path(s.dir(), "held.lock")?;
        let run = GuestRun::new(&[]).work(s.path());
        let done = match store {
            "sync" => run.run(guest),
            _ => runtime.block_on(run.run_async(guest)),
        }
        .succeeded();
        check(store, &done.lines());
        assert_eq!(
            std::fs::read_to_string(s.join("out/built.txt"))?,
            built,
            "{store}"
        );
        held.unlock_and_delete()?;
        assert_eq!(s.names()?, ["out"], "{store}");
    }
    Ok(())
}

/// A component built against `stagelock:staging@0.1.0` (the frozen WIT in the host crate's
/// `wit-compat/0.1.0`) imports the 0.1.0 interfaces, and runs on both linkers: its locks
/// exclude the host's, its stage commits, its recovery runs.
#[test]
fn compat_v0_1() -> Result<()> {
    assert_eq!(
        stagelock_imports(COMPAT_V0_1),
        [
            "stagelock:staging/locks@0.1.0",
            "stagelock:staging/staging@0.1.0"
        ]
    );
    on_both_stores(COMPAT_V0_1, "from 0.1.0", |store, lines| {
        assert!(
            lines[0].starts_with("err try ErrorCode::WouldBlock: try-lock-path \"held.lock\""),
            "{store}: {lines:?}"
        );
        assert_eq!(
            lines[1..],
            [
                "ok create true",
                "ok unlock",
                "ok commit out",
                "ok recover 0 0"
            ],
            "{store}"
        );
    })
}

/// A component built against `stagelock:staging@0.2.0` (the frozen WIT in `wit-compat/0.2.0`)
/// imports the 0.2.0 interfaces and runs on both linkers with 0.2.0's records: errors with a
/// code and the whole message, `lock-request.get` without 1.0.0's nested result (an outcome
/// taken twice is `invalid-input`), a refused commit that hands the stage back.
#[test]
fn compat_v0_2() -> Result<()> {
    assert_eq!(
        stagelock_imports(COMPAT_V0_2),
        [
            "stagelock:staging/locks@0.2.0",
            "stagelock:staging/staging@0.2.0"
        ]
    );
    on_both_stores(COMPAT_V0_2, "from 0.2.0", |store, lines| {
        assert_eq!(
            lines[..3],
            [
                "err try ErrorCode::WouldBlock: try-lock-path \"held.lock\": held by another lock \
                 holder",
                "err wait ErrorCode::WouldBlock: lock-path \"held.lock\": still held by another \
                 lock holder after waiting 20ms",
                "err wait ErrorCode::InvalidInput: lock-request.get: the outcome was already taken",
            ],
            "{store}: {lines:?}"
        );
        assert_eq!(
            lines[3..6],
            ["ok create true", "ok unlock", "ok commit out"],
            "{store}"
        );
        assert!(
            lines[6].starts_with("err commit ErrorCode::AlreadyExists: commit \"out\": ")
                && lines[6].ends_with("(stage back: true)"),
            "{store}: {lines:?}"
        );
        assert_eq!(lines[7..], ["ok recover 0 0"], "{store}");
    })
}
