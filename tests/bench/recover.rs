//! Recovery of many stale stages: N threads vs the sequential recovery.

use super::*;

pub fn run(b: &Bench, t: &mut Table) {
    let (base, quick) = (&b.base, b.quick);
    let sizes: [usize; 2] = if quick {
        [500, 2_000]
    } else {
        [10_000, 40_000]
    };
    let rounds = if quick { 1 } else { 3 };
    let rd = scratch(base, "recover");
    // The default (one thread per core), or `STAGELOCK_BENCH_RECOVER_JOBS` threads.
    let jobs = std::env::var("STAGELOCK_BENCH_RECOVER_JOBS").ok();
    let jobs = jobs.map(|j| j.parse::<usize>().expect("STAGELOCK_BENCH_RECOVER_JOBS"));
    let parallel = jobs.map_or(RecoverOptions::new(), |j| RecoverOptions::new().jobs(j));
    let cores = parallel.jobs_or_default();
    // `jobs(1)` is the sequential recovery as it was before `jobs` existed: the same
    // per-stage code, one stage after the other on the calling thread, no thread started.
    let variants = [RecoverOptions::new().jobs(1), parallel];
    let mut medians = Vec::new();
    for &count in &sizes {
        let mut samples = [Vec::new(), Vec::new()];
        for round in 0..rounds {
            // Alternate which goes first, so neither always meets the fresher disk.
            for j in 0..2 {
                let k = (j + round) % 2;
                make_stale_stages(&rd, count);
                // SAFETY: sync() takes no arguments and only flushes.
                unsafe { libc::sync() };
                let area = StagingArea::open_ambient_dir(
                    &rd,
                    stagelock::Layout::Pairs,
                    cap_std::ambient_authority(),
                )
                .unwrap();
                let start = Instant::now();
                let report = area.recover_stale_with(variants[k]).unwrap();
                samples[k].push(start.elapsed().as_nanos() as f64);
                assert_eq!(report.removed.len(), count);
                assert!(report.skipped.is_empty(), "{:?}", report.skipped.first());
                assert_eq!(std::fs::read_dir(&rd).unwrap().count(), 0);
            }
        }
        let [seq, par] = samples.map(median);
        let r = par / seq;
        t.row(
            &format!(
                "recover {count} stale stages (pairs, 3 files each), {cores} threads \
                 (vs 1 thread: the sequential recovery)"
            ),
            format!("{:.2} s", par / 1e9),
            format!("{:.2} s", seq / 1e9),
            format!("{r:.2}x"),
            "<= 0.55x",
            Some(r <= 0.55),
        );
        medians.push((seq, par));
    }
    let (small, big) = (sizes[0], sizes[1]);
    // Near-linear: at most 15% over the ratio of the sizes (4.6x for 4x the stages).
    let limit = 1.15 * big as f64 / small as f64;
    let r = medians[1].1 / medians[0].1;
    t.row(
        &format!("recover {big} vs {small} stale stages, {cores} threads (near-linear)"),
        format!("{:.2} s", medians[1].1 / 1e9),
        format!("{:.2} s", medians[0].1 / 1e9),
        format!("{r:.2}x"),
        &format!("<= {limit:.1}x"),
        Some(r <= limit),
    );
    let r = medians[1].0 / medians[0].0;
    t.row(
        "the same, 1 thread (the sequential recovery)",
        format!("{:.2} s", medians[1].0 / 1e9),
        format!("{:.2} s", medians[0].0 / 1e9),
        format!("{r:.2}x"),
        "(reference)",
        None,
    );
    let _ = std::fs::remove_dir_all(&rd);
}

/// `count` stale stages in `dir`, as dead builders leave them (pairs layout): an unlocked
/// `lock-N` beside `temp-dir-N` holding three small files.
fn make_stale_stages(dir: &Path, count: usize) {
    let data = [b'x'; 100];
    for n in 1..=count {
        std::fs::write(dir.join(format!("lock-{n}")), "").unwrap();
        let resource = dir.join(format!("temp-dir-{n}"));
        std::fs::create_dir(&resource).unwrap();
        for f in ["a", "b", "c"] {
            std::fs::write(resource.join(f), data).unwrap();
        }
    }
}
