//! `stagelock run`, wall clock.

use super::*;

pub fn run(b: &Bench, t: &mut Table) {
    let (base, quick) = (&b.base, b.quick);
    let bin = stagelock_tests::stagelock_bin(true);
    let run_dir = scratch(base, "run");
    let run_cache = scratch(base, "run-cache");
    let grant = format!("{}::/work", run_dir.display());
    let run_once = || {
        let status = Command::new(bin)
            .args(["run", "--dir", &grant, RUN_CLI_EXIT, "0"])
            .env("STAGELOCK_CACHE_DIR", &run_cache)
            .status()
            .unwrap();
        assert!(status.success());
    };
    run_once(); // fills the cache
    let spawn_rounds = if quick { 3 } else { 21 };
    let [run_ns, true_ns] = interleaved(
        spawn_rounds,
        &mut [&mut || time_per_op(1, run_once), &mut || {
            time_per_op(1, || {
                assert!(Command::new("true").status().unwrap().success())
            })
        }],
    );
    t.row(
        "`stagelock run` of a cached small component, wall (vs spawning `true`)",
        format!("{:.1} ms", run_ns / 1e6),
        format!("{:.1} ms", true_ns / 1e6),
        format!("{:.1}x", run_ns / true_ns),
        "<= 20 ms",
        Some(run_ns <= 20e6),
    );
}
