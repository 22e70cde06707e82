//! Guests waiting for locks (`locks.request-lock`, WIT 0.2.0): with a timeout, on several
//! locks and a clock at once through `wasi:io/poll`, and in an async host without holding up
//! the other guests on its runtime.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use stagelock::StagingLock;
use stagelock_tests::guests::*;
use stagelock_tests::{
    GuestRun, Holder, Scratch, Taken, assert_test_exists, foreach_waiting, run_guest, wait_until,
};

foreach_waiting!(assert_test_exists);

/// A timed wait gives up with `would-block` and says how long it waited; a free lock is taken
/// at once; errors other than "busy" end the wait at once and are handed out once.
#[test]
fn waiting_timeout() -> Result<()> {
    let s = Scratch::new()?;
    let held = StagingLock::try_lock_path(s.dir(), "held.lock")?;
    let done = run_guest(WAITING_TIMEOUT, s.path(), &[]);
    let lines = done.lines();
    assert_eq!(
        lines[0],
        "err wait held.lock WouldBlock: lock-path \"held.lock\": still held by another lock \
         holder after waiting 300ms",
        "{}",
        done.stdout
    );
    assert_eq!(lines[1..3], ["ok wait free.lock free.lock", "ok unlock"]);
    assert!(
        lines[3].starts_with("err get missing/x.lock NotFound: "),
        "{}",
        done.stdout
    );
    assert_eq!(
        lines[4],
        "err get missing/x.lock InvalidInput: lock-path \"missing/x.lock\": the outcome was \
         already taken by an earlier get"
    );
    assert_eq!(lines.len(), 5, "{}", done.stdout);
    assert_eq!(
        done.store.data().locks.held(),
        0,
        "every request was dropped"
    );
    held.unlock_and_delete()?;
    assert!(s.names()?.is_empty(), "{:?}", s.names()?);
    Ok(())
}

/// A guest polls two lock requests and a clock at once: the one released first (by a
/// containers/storage-style holder in another process that unlocks and keeps the file) is the
/// one ready, the other keeps waiting until its native holder unlock-and-deletes.
#[test]
fn waiting_several() -> Result<()> {
    let s = Scratch::new()?;
    let a = StagingLock::try_lock_path(s.dir(), "a.lock")?;
    let (b, taken) = Holder::containers_storage(&s.join("b.lock"))?;
    assert_eq!(taken, Taken::Held(String::new()));
    std::thread::scope(|scope| -> Result<()> {
        let guest = scope.spawn(|| run_guest(WAITING_SEVERAL, s.path(), &[]));
        wait_until("the guest to wait", || s.join("waiting").exists());
        b.release()?;
        wait_until("the guest to take b.lock", || s.join("got-b").exists());
        assert!(!guest.is_finished(), "a.lock is still ours");
        a.unlock_and_delete()?;
        let done = guest.join().unwrap();
        assert_eq!(
            done.lines(),
            [
                "ok ready [1]",
                "ok get b b.lock",
                "ok get a a.lock",
                "ok unlock",
                "ok unlock"
            ],
            "{}",
            done.stdout
        );
        Ok(())
    })?;
    Ok(())
}

/// In an async host, a guest waiting for a lock is a pending task: another guest on the same
/// current-thread runtime does all its work meanwhile. The lock is released only once the
/// working guest is done (or after 120 s, so that a host that blocks its thread while a guest
/// waits fails this test instead of hanging it; the working guest needs milliseconds, and
/// 120 s leaves room for a loaded machine: the former 20 s was the only margin a build beside
/// it ate into).
#[test]
fn waiting_async_two_guests() -> Result<()> {
    let s = Scratch::new()?;
    let held = StagingLock::try_lock_path(s.dir(), "w.lock")?;
    let worked = AtomicBool::new(false);
    let (waiter, worker, released_early) = std::thread::scope(|scope| {
        let releaser = scope.spawn(|| {
            let start = Instant::now();
            while !worked.load(Ordering::SeqCst) && start.elapsed() < Duration::from_secs(120) {
                std::thread::sleep(Duration::from_millis(5));
            }
            let early = !worked.load(Ordering::SeqCst);
            held.unlock_and_delete().expect("release w.lock");
            early
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime");
        let (waiter, worker) = runtime.block_on(async {
            let waiter = GuestRun::new(&["wait"])
                .work(s.path())
                .run_async(WAITING_ASYNC_TWO_GUESTS);
            let worker = async {
                // Starts once the waiter is waiting.
                while !s.join("waiting").exists() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                let done = GuestRun::new(&["work"])
                    .work(s.path())
                    .run_async(WAITING_ASYNC_TWO_GUESTS)
                    .await;
                worked.store(true, Ordering::SeqCst);
                done
            };
            tokio::join!(waiter, worker)
        });
        (waiter, worker, releaser.join().unwrap())
    });
    let (waiter, worker) = (waiter.succeeded(), worker.succeeded());
    assert_eq!(worker.lines(), ["ok worked"]);
    assert!(
        !released_early,
        "the working guest did not finish while the other waited"
    );
    assert_eq!(waiter.lines(), ["ok wait w.lock w.lock", "ok unlock"]);
    assert_eq!(s.names()?, ["waiting"]);
    Ok(())
}

/// A pending request counts against the store's cap on held locks until it is dropped or its
/// lock taken (the lock then counts instead).
#[test]
fn waiting_cap() -> Result<()> {
    let s = Scratch::new()?;
    let held = [
        StagingLock::try_lock_path(s.dir(), "held1.lock")?,
        StagingLock::try_lock_path(s.dir(), "held2.lock")?,
    ];
    let done = GuestRun::new(&[])
        .work(s.path())
        .max_held(3)
        .run(WAITING_CAP)
        .succeeded();
    let lines = done.lines();
    assert_eq!(
        lines[0],
        "err request 4 LimitReached: lock-path \"x.lock\": too many locks held: the host's \
         limit, or its file descriptors",
        "{}",
        done.stdout
    );
    assert!(
        lines[1].starts_with("err request 4 again LimitReached"),
        "{}",
        done.stdout
    );
    assert_eq!(lines[2..], ["ok request 4 after a drop", "ok unlock"]);
    assert_eq!(done.store.data().locks.held(), 0);
    for lock in held {
        lock.unlock_and_delete()?;
    }
    Ok(())
}
