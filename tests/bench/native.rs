//! Native create-and-lock + unlock-and-delete and try-lock-path, against the raw syscalls.

use super::*;

pub fn run(b: &Bench, t: &mut Table) {
    let (base, rounds, n) = (&b.base, b.rounds, b.n);
    let d = scratch(base, "native");
    let raw = std::cell::RefCell::new(floor::RawDir::open(&d));
    let locks = LockDir::new(open_dir(&d).unwrap());
    let dir = open_dir(&d).unwrap();
    let [floor_ns, flock_ns, shared_ns, dup_ns] = interleaved(
        rounds,
        &mut [
            &mut || time_per_op(n, || raw.borrow_mut().create_lock_delete(true)),
            &mut || time_per_op(n, || raw.borrow_mut().create_lock_delete(false)),
            &mut || {
                time_per_op(n, || {
                    locks
                        .create_and_lock("lock-")
                        .unwrap()
                        .0
                        .unlock_and_delete()
                        .unwrap()
                })
            },
            &mut || {
                time_per_op(n, || {
                    StagingLock::create_and_lock(&dir, "lock-")
                        .unwrap()
                        .0
                        .unlock_and_delete()
                        .unwrap()
                })
            },
        ],
    );
    let r = shared_ns / floor_ns;
    t.row(
        "create-and-lock + unlock-and-delete, `LockDir` (vs raw syscalls)",
        us(shared_ns, 2),
        us(floor_ns, 2),
        format!("{r:.2}x"),
        "<= 1.10x",
        Some(r <= 1.10),
    );
    let r = dup_ns / floor_ns;
    t.row(
        "the same via `StagingLock::create_and_lock(&Dir)` (dup per call)",
        us(dup_ns, 2),
        us(floor_ns, 2),
        format!("{r:.2}x"),
        "<= 1.05x",
        Some(r <= 1.05),
    );
    // The entry points on a `&Dir` are a `LockDir` of their own: they may cost what it costs
    // plus the `dup` (and its `close`) they document, nothing else.
    let r = dup_ns / shared_ns;
    t.row(
        "`create_and_lock(&Dir)` vs `LockDir`: what the wrapper adds (its dup)",
        us(dup_ns, 2),
        us(shared_ns, 2),
        format!("{r:.2}x"),
        "<= 1.05x",
        Some(r <= 1.05),
    );
    let r = flock_ns / floor_ns;
    t.row(
        "the same syscalls with `flock` instead of OFD locks",
        us(flock_ns, 2),
        us(floor_ns, 2),
        format!("{r:.2}x"),
        "(reference)",
        None,
    );

    // --- try-lock-path ---
    let name = CString::new("t.lock").unwrap();
    let busy_name = CString::new("busy.lock").unwrap();
    let _held = locks.try_lock_path("busy.lock").unwrap();
    let [floor_try, ours_try, floor_busy, ours_busy] = interleaved(
        rounds,
        &mut [
            &mut || time_per_op(n, || raw.borrow_mut().open_lock_delete(&name)),
            &mut || {
                time_per_op(n, || {
                    locks
                        .try_lock_path("t.lock")
                        .unwrap()
                        .unlock_and_delete()
                        .unwrap()
                })
            },
            &mut || time_per_op(n, || raw.borrow_mut().open_refused(&busy_name)),
            &mut || {
                time_per_op(n, || {
                    assert_eq!(
                        locks.try_lock_path("busy.lock").unwrap_err().kind(),
                        ErrorKind::WouldBlock
                    )
                })
            },
        ],
    );
    let r = ours_try / floor_try;
    t.row(
        "try-lock-path + unlock-and-delete (vs raw syscalls)",
        us(ours_try, 2),
        us(floor_try, 2),
        format!("{r:.2}x"),
        "<= 1.10x",
        Some(r <= 1.10),
    );
    let r = ours_busy / floor_busy;
    t.row(
        "try-lock-path refused, path busy (vs raw open + lock + close)",
        us(ours_busy, 2),
        us(floor_busy, 2),
        format!("{r:.2}x"),
        "cheap",
        Some(r <= 1.5),
    );
}
