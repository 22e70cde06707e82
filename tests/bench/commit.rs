//! Durable vs non-durable commit of a 100-file, 10 MB stage.

use super::*;

pub fn run(b: &Bench, t: &mut Table) {
    let (base, quick) = (&b.base, b.quick);
    let d = scratch(base, "commit");
    std::fs::create_dir(d.join("staging")).unwrap();
    let root = open_dir(&d).unwrap();
    let area = StagingArea::new(&root.open_dir("staging").unwrap()).unwrap();
    let rounds = if quick { 2 } else { 7 };
    let (files, size) = (100, 100_000);
    let data: Vec<Vec<u8>> = (0..files)
        .map(|i| {
            (0..size)
                .map(|j| (i * 31 + j * 7 + j / 251) as u8)
                .collect()
        })
        .collect();
    // Each variant: write the stage, then commit it; returns (total ns, commit ns). The
    // result is removed and everything flushed (untimed) before the next one.
    let run = |how: &dyn Fn(stagelock::Stage)| -> (f64, f64) {
        let start = Instant::now();
        let stage = area.stage().unwrap();
        for (i, contents) in data.iter().enumerate() {
            stage.dir().write(format!("f{i}"), contents).unwrap();
        }
        let commit = Instant::now();
        how(stage);
        let end = Instant::now();
        std::fs::remove_dir_all(d.join("out")).unwrap();
        // SAFETY: sync() takes no arguments and only flushes.
        unsafe { libc::sync() };
        (
            (end - start).as_nanos() as f64,
            (end - commit).as_nanos() as f64,
        )
    };
    let none = CommitOptions::new().durability(Durability::None);
    // The naive way, for reference: one pass, `fsync` each file, then the directories.
    let naive = |dir: &Path| {
        for entry in std::fs::read_dir(dir).unwrap() {
            std::fs::File::open(entry.unwrap().path())
                .unwrap()
                .sync_all()
                .unwrap();
        }
        std::fs::File::open(dir).unwrap().sync_all().unwrap();
    };
    let mut samples: [Vec<(f64, f64)>; 4] = Default::default();
    unsafe { libc::sync() };
    for _ in 0..rounds {
        samples[0].push(run(&|s| s.commit_with(&root, "out", none).unwrap()));
        samples[1].push(run(&|s| s.commit(&root, "out").unwrap()));
        samples[2].push(run(&|s| {
            s.commit_with(&root, "out", none).unwrap();
            let out = std::fs::File::open(d.join("out")).unwrap();
            // SAFETY: a valid descriptor, borrowed for the call.
            assert_eq!(unsafe { libc::syncfs(out.as_raw_fd()) }, 0);
        }));
        samples[3].push(run(&|s| {
            naive(&d.join("staging").join(s.path()));
            s.commit_with(&root, "out", none).unwrap();
            std::fs::File::open(&d).unwrap().sync_all().unwrap();
        }));
    }
    let med = |k: usize, commit: bool| {
        median(
            samples[k]
                .iter()
                .map(|s| if commit { s.1 } else { s.0 })
                .collect(),
        )
    };
    let ms = |ns: f64| {
        if ns < 1e6 {
            us(ns, 2)
        } else {
            format!("{:.1} ms", ns / 1e6)
        }
    };
    let ratio = |a: f64, b: f64| format!("{:.2}x", a / b);
    let (none_total, full_total, syncfs_total) = (med(0, false), med(1, false), med(2, false));
    let (none_commit, full_commit, syncfs_commit) = (med(0, true), med(1, true), med(2, true));
    t.row(
        "stage 100 files / 10 MB + durable commit (vs `Durability::None`), total",
        ms(full_total),
        ms(none_total),
        ratio(full_total, none_total),
        "(documented cost)",
        None,
    );
    t.row(
        "the commit alone: durable (fsync every file and dir) vs `Durability::None`",
        ms(full_commit),
        ms(none_commit),
        ratio(full_commit, none_commit),
        "",
        None,
    );
    t.row(
        "the commit alone: `Durability::None` + `syncfs` (the alternative) vs durable",
        ms(syncfs_commit),
        ms(full_commit),
        ratio(syncfs_commit, full_commit),
        "(reference)",
        None,
    );
    let _ = syncfs_total;
    let naive_commit = med(3, true);
    t.row(
        "the commit alone: durable vs one naive pass of `fsync`s (no writeback started first)",
        ms(full_commit),
        ms(naive_commit),
        ratio(full_commit, naive_commit),
        "(reference)",
        None,
    );
}
