//! Guest vs native, per operation.

use super::*;

pub fn run(b: &Bench, t: &mut Table) {
    let (base, rounds, n) = (&b.base, b.rounds, b.n);
    let gd = scratch(base, "guest");
    let glocks = LockDir::new(open_dir(&gd).unwrap());
    let gheld = glocks.try_lock_path("busy.lock").unwrap();
    let [
        native_c,
        guest_c,
        native_t,
        guest_t,
        native_b,
        guest_b,
        v0_2_b,
    ] = interleaved(
        rounds,
        &mut [
            &mut || {
                time_per_op(n, || {
                    glocks
                        .create_and_lock("lock-")
                        .unwrap()
                        .0
                        .unlock_and_delete()
                        .unwrap()
                })
            },
            &mut || bench_ops(&gd, "create", n, "lock-"),
            &mut || {
                time_per_op(n, || {
                    glocks
                        .try_lock_path("t.lock")
                        .unwrap()
                        .unlock_and_delete()
                        .unwrap()
                })
            },
            &mut || bench_ops(&gd, "try", n, "t.lock"),
            &mut || time_per_op(n, || drop(glocks.try_lock_path("busy.lock").unwrap_err())),
            &mut || bench_ops(&gd, "busy", n, "busy.lock"),
            &mut || bench_busy_v0_2(&gd, n, "busy.lock"),
        ],
    );
    for (what, g, nat) in [
        (
            "guest create-and-lock + unlock-and-delete (vs native `LockDir`)",
            guest_c,
            native_c,
        ),
        (
            "guest try-lock-path + unlock-and-delete (vs native)",
            guest_t,
            native_t,
        ),
        ("guest try-lock-path refused (vs native)", guest_b, native_b),
    ] {
        let r = g / nat;
        t.row(
            what,
            us(g, 2),
            us(nat, 2),
            format!("{r:.2}x"),
            "<= 1.10x",
            Some(r <= 1.10),
        );
    }
    let r = v0_2_b / native_b;
    t.row(
        "the same refusal by a guest built against WIT 0.2.0 (an error record with a message)",
        us(v0_2_b, 2),
        us(native_b, 2),
        format!("{r:.2}x"),
        "(1.0.0's, before)",
        None,
    );
    drop(gheld);
}

/// ns per refused try-lock of the guest built against WIT 0.2.0, whose errors carry a message.
pub fn bench_busy_v0_2(dir: &Path, n: u32, target: &str) -> f64 {
    let run = GuestRun::new(&[&n.to_string(), target]).work(dir);
    per_op(&run.run(BENCH_BUSY_V0_2).succeeded().stdout, n)
}

/// ns per operation of the guest's benchmark loop `op` (`create`, `try` or `busy`).
pub fn bench_ops(dir: &Path, op: &str, n: u32, target: &str) -> f64 {
    let run = GuestRun::new(&[op, &n.to_string(), target])
        .work(dir)
        .max_held(1024);
    per_op(&run.run(BENCH_OPS).succeeded().stdout, n)
}

/// ns per operation from a benchmark guest's `ok bench NANOSECONDS` for `n` operations.
fn per_op(stdout: &str, n: u32) -> f64 {
    let ns: f64 = stdout
        .trim()
        .strip_prefix("ok bench ")
        .unwrap()
        .parse()
        .unwrap();
    ns / f64::from(n)
}
