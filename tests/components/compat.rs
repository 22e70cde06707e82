//! Components built against older WIT versions (the frozen 0.1.0 and 0.2.0) run unchanged on
//! this host, which serves 1.0.0.

use anyhow::Result;
use stagelock::StagingLock;
use stagelock_tests::guests::*;
use stagelock_tests::{GuestRun, Scratch, assert_test_exists, component, foreach_compat};

foreach_compat!(assert_test_exists);

/// A component built against `stagelock:staging@0.1.0` (the frozen WIT in the host crate's
/// `wit-compat/0.1.0`) imports the 0.1.0 interfaces, and runs on both linkers: its locks
/// exclude the host's, its stage commits, its recovery runs.
#[test]
fn compat_v0_1() -> Result<()> {
    let component = component(COMPAT_V0_1);
    let engine = component.engine().clone();
    let imports: Vec<String> = component
        .component_type()
        .imports(&engine)
        .map(|(name, _)| name.to_owned())
        .filter(|name| name.starts_with("stagelock:"))
        .collect();
    assert_eq!(
        imports,
        [
            "stagelock:staging/locks@0.1.0",
            "stagelock:staging/staging@0.1.0"
        ]
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    for store in ["sync", "async"] {
        let s = Scratch::new()?;
        let held = StagingLock::try_lock_path(s.dir(), "held.lock")?;
        let run = GuestRun::new(&[]).work(s.path());
        let done = match store {
            "sync" => run.run(COMPAT_V0_1),
            _ => runtime.block_on(run.run_async(COMPAT_V0_1)),
        }
        .succeeded();
        let lines = done.lines();
        assert!(
            lines[0].starts_with("err try ErrorCode::WouldBlock: try-lock-path \"held.lock\""),
            "{store}: {}",
            done.stdout
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
        assert_eq!(
            std::fs::read_to_string(s.join("out/built.txt"))?,
            "from 0.1.0"
        );
        held.unlock_and_delete()?;
        assert_eq!(s.names()?, ["out"], "{store}");
    }
    Ok(())
}

/// A component built against `stagelock:staging@0.2.0` (the frozen WIT in `wit-compat/0.2.0`)
/// imports the 0.2.0 interfaces and runs on both linkers with 0.2.0's records: errors with a
/// code and the whole message, `lock-request.get` without 1.0.0's nested result (an outcome
/// taken twice is `invalid-input`), a refused commit that hands the stage back.
#[test]
fn compat_v0_2() -> Result<()> {
    let component = component(COMPAT_V0_2);
    let engine = component.engine().clone();
    let imports: Vec<String> = component
        .component_type()
        .imports(&engine)
        .map(|(name, _)| name.to_owned())
        .filter(|name| name.starts_with("stagelock:"))
        .collect();
    assert_eq!(
        imports,
        [
            "stagelock:staging/locks@0.2.0",
            "stagelock:staging/staging@0.2.0"
        ]
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    for store in ["sync", "async"] {
        let s = Scratch::new()?;
        let held = StagingLock::try_lock_path(s.dir(), "held.lock")?;
        let run = GuestRun::new(&[]).work(s.path());
        let done = match store {
            "sync" => run.run(COMPAT_V0_2),
            _ => runtime.block_on(run.run_async(COMPAT_V0_2)),
        }
        .succeeded();
        let lines = done.lines();
        assert_eq!(
            lines[..3],
            [
                "err try ErrorCode::WouldBlock: try-lock-path \"held.lock\": held by another lock \
                 holder",
                "err wait ErrorCode::WouldBlock: lock-path \"held.lock\": still held by another \
                 lock holder after waiting 20ms",
                "err wait ErrorCode::InvalidInput: lock-request.get: the outcome was already taken",
            ],
            "{store}: {}",
            done.stdout
        );
        assert_eq!(
            lines[3..6],
            ["ok create true", "ok unlock", "ok commit out"],
            "{store}"
        );
        assert!(
            lines[6].starts_with("err commit ErrorCode::AlreadyExists: commit \"out\": ")
                && lines[6].ends_with("(stage back: true)"),
            "{store}: {}",
            done.stdout
        );
        assert_eq!(lines[7..], ["ok recover 0 0"], "{store}");
        assert_eq!(
            std::fs::read_to_string(s.join("out/built.txt"))?,
            "from 0.2.0"
        );
        held.unlock_and_delete()?;
        assert_eq!(s.names()?, ["out"], "{store}");
    }
    Ok(())
}
