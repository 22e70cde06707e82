//! Staging areas: stage, commit, abort and recovery, in both layouts, against crashed holders
//! in other processes and against concurrent stagers.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Result;
use stagelock::{ErrorKind, Layout, RecoverOptions, SkipReason, StagingArea};
use stagelock_tests::{
    Entry, Holder, STAGE_FILES, Scratch, StopOnDrop, Taken, names, stage_fill_check_commit, tree,
    wait_until,
};

const LAYOUTS: [(Layout, &str); 2] = [(Layout::Pairs, "pairs"), (Layout::PerDirectory, "per-dir")];

/// A scratch directory with `staging/` (the area) and `out/` (commit destinations).
fn setup(layout: Layout) -> Result<(Scratch, StagingArea)> {
    let s = Scratch::new()?;
    s.dir().create_dir("staging")?;
    s.dir().create_dir("out")?;
    let area = StagingArea::with_layout(&s.dir().open_dir("staging")?, layout)?;
    Ok((s, area))
}

fn staging_entries(s: &Scratch) -> Result<usize> {
    Ok(std::fs::read_dir(s.join("staging"))?.count())
}

#[test]
fn stage_then_commit_moves_the_resource_and_cleans_up() -> Result<()> {
    for (layout, _) in LAYOUTS {
        let (s, area) = setup(layout)?;
        let stage = area.stage()?;
        let resource = s.join("staging").join(stage.path());
        assert!(resource.is_dir(), "{layout:?}: resource created");
        match layout {
            Layout::Pairs => {
                assert!(s.join(format!("staging/lock-{}", stage.id())).is_file());
                assert_eq!(
                    stage.path().to_str().unwrap(),
                    format!("temp-dir-{}", stage.id())
                );
            }
            _ => assert!(
                s.join(format!("staging/{}/staging.lock", stage.id()))
                    .is_file()
            ),
        }
        stage.dir().write("layer", "contents")?;
        stage.commit(s.dir(), "out/layer-1")?;
        assert_eq!(
            std::fs::read_to_string(s.join("out/layer-1/layer"))?,
            "contents"
        );
        assert_eq!(
            staging_entries(&s)?,
            0,
            "{layout:?}: lock and stage dir gone"
        );
    }
    Ok(())
}

#[test]
fn abort_and_drop_remove_the_resource_then_the_lock() -> Result<()> {
    for (layout, _) in LAYOUTS {
        let (s, area) = setup(layout)?;
        let stage = area.stage()?;
        stage.dir().create_dir_all("deep/tree")?;
        stage.dir().write("deep/tree/file", "x")?;
        stage.abort()?;
        assert_eq!(staging_entries(&s)?, 0, "{layout:?}");
        let stage = area.stage()?;
        stage.dir().write("file", "x")?;
        drop(stage);
        assert_eq!(staging_entries(&s)?, 0, "{layout:?}: drop aborts");
    }
    Ok(())
}

#[test]
fn commit_refuses_to_clobber_and_hands_the_stage_back() -> Result<()> {
    for (layout, _) in LAYOUTS {
        let (s, area) = setup(layout)?;
        s.dir().create_dir("out/full")?;
        s.dir().write("out/full/keep", "old")?;
        s.dir().create_dir("out/empty")?;
        s.dir().write("out/file", "old")?;
        let mut stage = area.stage()?;
        stage.dir().write("new", "new")?;
        for dest in ["out/full", "out/empty", "out/file"] {
            let failed = stage.commit(s.dir(), dest).unwrap_err();
            assert_eq!(
                failed.error.kind(),
                ErrorKind::AlreadyExists,
                "{dest}: {}",
                failed.error
            );
            assert!(failed.error.to_string().contains(dest), "{}", failed.error);
            stage = failed.stage.expect("handed back");
        }
        assert_eq!(std::fs::read_to_string(s.join("out/full/keep"))?, "old");
        assert!(std::fs::read_dir(s.join("out/empty"))?.next().is_none());
        for dest in ["out/../../escape", "out/missing-parent/x", ".", "/tmp/abs"] {
            let failed = stage.commit(s.dir(), dest).unwrap_err();
            assert_ne!(failed.error.kind(), ErrorKind::AlreadyExists, "{dest}");
            stage = failed.stage.expect("handed back");
        }
        assert_eq!(
            std::fs::read_to_string(s.join("staging").join(stage.path()).join("new"))?,
            "new"
        );
        stage.commit_replacing(s.dir(), "out/full")?;
        assert_eq!(std::fs::read_to_string(s.join("out/full/new"))?, "new");
        assert!(!s.join("out/full/keep").exists(), "replaced whole");
        assert_eq!(
            staging_entries(&s)?,
            0,
            "{layout:?}: old destination removed under the lock"
        );
        assert_eq!(s.names()?, ["out", "staging"], "nothing escaped");
    }
    Ok(())
}

/// What a stage's owner can do to its own resource before committing it (a build step that
/// removed its output, or put something else in its place).
#[derive(Clone, Copy, Debug)]
enum Mishap {
    /// The resource directory removed.
    Vanished,
    /// The resource replaced by a regular file.
    File,
    /// The resource replaced by a symbolic link leading out of the staging area.
    #[cfg(unix)]
    SymlinkOut,
    /// The resource replaced by a symbolic link to a directory inside the staging area.
    #[cfg(unix)]
    SymlinkIn,
}

impl Mishap {
    const ALL: &[Mishap] = &[
        Mishap::Vanished,
        Mishap::File,
        #[cfg(unix)]
        Mishap::SymlinkOut,
        #[cfg(unix)]
        Mishap::SymlinkIn,
    ];

    /// The kind a commit of the stage must fail with.
    fn kind(self) -> ErrorKind {
        match self {
            Mishap::Vanished => ErrorKind::NotFound,
            Mishap::File => ErrorKind::NotAFile,
            #[cfg(unix)]
            Mishap::SymlinkOut => ErrorKind::PermissionDenied,
            #[cfg(unix)]
            Mishap::SymlinkIn => ErrorKind::NotAFile,
        }
    }

    /// Does it to the resource at `resource` (`elsewhere` is outside the staging area).
    #[cfg_attr(windows, allow(unused_variables))] // `elsewhere` is for the Unix symlinks
    fn apply(self, resource: &Path, elsewhere: &Path) -> std::io::Result<()> {
        std::fs::remove_dir_all(resource)?;
        match self {
            Mishap::Vanished => Ok(()),
            Mishap::File => std::fs::write(resource, "not a directory"),
            #[cfg(unix)]
            Mishap::SymlinkOut => std::os::unix::fs::symlink(elsewhere, resource),
            #[cfg(unix)]
            Mishap::SymlinkIn => std::os::unix::fs::symlink(".", resource),
        }
    }
}

/// Issue 32: a commit that fails before anything moved (the owner removed or replaced its own
/// resource) hands the stage back still held, in both layouts, replacing or not; aborting it
/// then leaves the staging area empty, and neither DEST nor what a symlink led to is touched.
#[test]
fn a_commit_of_a_removed_or_replaced_resource_hands_the_stage_back_to_abort() -> Result<()> {
    for (layout, _) in LAYOUTS {
        for &mishap in Mishap::ALL {
            for replace in [false, true] {
                let what = format!("{layout:?}, {mishap:?}, replace {replace}");
                let (s, area) = setup(layout)?;
                s.dir().create_dir("elsewhere")?;
                s.dir().write("elsewhere/keep", "kept")?;
                if replace {
                    s.dir().create_dir("out/result")?;
                    s.dir().write("out/result/old", "old")?;
                }
                let stage = area.stage()?;
                stage.dir().write("data", "built")?;
                let resource = s.join("staging").join(stage.path());
                match mishap.apply(&resource, &s.join("elsewhere")) {
                    Ok(()) => {}
                    // Windows: the stage's own handle keeps its resource from being removed.
                    Err(_) if cfg!(windows) => continue,
                    Err(e) => return Err(anyhow::Error::from(e).context(what)),
                }
                let out = s.dir().open_dir("out")?;
                let committed = if replace {
                    stage.commit_replacing(&out, "result")
                } else {
                    stage.commit(&out, "result")
                };
                let failed = committed.expect_err(&what);
                assert_eq!(
                    failed.error.kind(),
                    mishap.kind(),
                    "{what}: {}",
                    failed.error
                );
                let Some(stage) = failed.stage else {
                    panic!("{what}: no stage handed back: {}", failed.error);
                };
                let message = failed.error.to_string();
                assert!(
                    message.starts_with("commit \"result\": "),
                    "{what}: {message}"
                );
                assert_eq!(message.matches("commit").count(), 1, "{what}: {message}");
                stage.lock().verify()?;
                stage.abort()?;
                assert_eq!(staging_entries(&s)?, 0, "{what}: aborted");
                if replace {
                    assert_eq!(names(&s.join("out/result"))?, ["old"], "{what}");
                } else {
                    assert!(names(&s.join("out"))?.is_empty(), "{what}: DEST made");
                }
                assert_eq!(names(&s.join("elsewhere"))?, ["keep"], "{what}");
            }
        }
    }
    Ok(())
}

/// A resource the owner removed and made anew (`rm -rf "$DIR" && mkdir "$DIR"`, a common build
/// step) is a directory in the stage like any other: it is what the commit moves into place.
#[test]
fn a_resource_made_anew_by_its_owner_is_what_is_committed() -> Result<()> {
    for (layout, _) in LAYOUTS {
        let (s, area) = setup(layout)?;
        let stage = area.stage()?;
        stage.dir().write("old", "from the first build")?;
        let resource = s.join("staging").join(stage.path());
        match std::fs::remove_dir_all(&resource) {
            Ok(()) => {}
            // Windows: the stage's own handle keeps its resource from being removed.
            Err(_) if cfg!(windows) => continue,
            Err(e) => return Err(e.into()),
        }
        std::fs::create_dir(&resource)?;
        std::fs::write(resource.join("new"), "rebuilt")?;
        stage.commit(&s.dir().open_dir("out")?, "result")?;
        assert_eq!(names(&s.join("out/result"))?, ["new"], "{layout:?}");
        assert_eq!(staging_entries(&s)?, 0, "{layout:?}");
    }
    Ok(())
}

#[test]
fn a_holder_killed_mid_stage_is_recovered_by_another_process() -> Result<()> {
    for (layout, name) in LAYOUTS {
        let (s, area) = setup(layout)?;
        let staging = s.join("staging");
        let start = |s: &str| {
            let mut c = Command::new(env!("CARGO_BIN_EXE_lock-holder"));
            c.arg("stage").arg(&staging).arg(s);
            Holder::start(c)
        };
        let (killed, taken) = start(name)?;
        let Taken::Held(dead_id) = taken else {
            panic!("{taken:?}")
        };
        let (alive, taken) = start(name)?;
        let Taken::Held(live_id) = taken else {
            panic!("{taken:?}")
        };

        let report = area.recover_stale()?;
        assert!(report.removed.is_empty(), "both alive: {report:?}");
        assert_eq!(report.skipped.len(), 2);
        assert!(
            report
                .skipped
                .iter()
                .all(|k| matches!(k.reason, SkipReason::Held))
        );

        killed.kill()?;
        let before = staging_entries(&s)?;
        let dry = area.recover_stale_dry_run()?;
        assert_eq!(
            dry.removed
                .iter()
                .map(|r| r.id.as_str())
                .collect::<Vec<_>>(),
            [dead_id.as_str()]
        );
        assert_eq!(staging_entries(&s)?, before, "a dry run changes nothing");
        assert!(dry.dry_run);

        let report = area.recover_stale()?;
        assert_eq!(report.removed.len(), 1, "{report:?}");
        let removed = &report.removed[0];
        assert_eq!(
            (removed.id.as_str(), removed.had_lock, removed.had_resource),
            (dead_id.as_str(), true, true)
        );
        assert_eq!(report.skipped.len(), 1);
        assert_eq!(report.skipped[0].id, live_id);

        let again = area.recover_stale()?;
        assert!(again.removed.is_empty(), "idempotent: {again:?}");
        alive.release()?;
        assert_eq!(staging_entries(&s)?, 0, "{layout:?}");
    }
    Ok(())
}

#[test]
fn orphans_are_recovered_and_reported() -> Result<()> {
    // Pairs: a resource without its lock file, and a lock file without its resource.
    let (s, area) = setup(Layout::Pairs)?;
    s.dir().create_dir_all("staging/temp-dir-11/sub")?;
    s.dir().write("staging/temp-dir-11/sub/f", "x")?;
    s.dir().write("staging/lock-22", "")?;
    s.dir().write("staging/unrelated.txt", "keep")?;
    let live = area.stage()?;
    let report = area.recover_stale()?;
    let removed = removed_ids(&report);
    assert_eq!(removed, [("11", false, true), ("22", true, false)]);
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].id, live.id());
    assert_eq!(
        std::fs::read_dir(s.join("staging"))?.count(),
        3,
        "live pair + unrelated file"
    );
    assert!(s.join("staging/unrelated.txt").exists());
    live.abort()?;

    // Per-directory: a stage directory without a lock file (its creator died before locking).
    let (s, area) = setup(Layout::PerDirectory)?;
    s.dir().create_dir_all("staging/33/dir")?;
    s.dir().create_dir_all("staging/44")?;
    s.dir().create_dir_all("staging/not-a-stage/dir")?;
    let report = area.recover_stale()?;
    let removed = removed_ids(&report);
    assert_eq!(removed, [("33", false, true), ("44", false, false)]);
    assert_eq!(s.names()?, ["out", "staging"]);
    assert_eq!(
        std::fs::read_dir(s.join("staging"))?.count(),
        1,
        "only stage-named entries go"
    );
    assert!(s.join("staging/not-a-stage/dir").is_dir());
    Ok(())
}

/// Ids skipped as not a stage, and ids removed, sorted.
#[cfg(unix)]
fn not_stages_and_removed(report: &stagelock::Report) -> (Vec<&str>, Vec<&str>) {
    let mut not_stages: Vec<_> = report
        .skipped
        .iter()
        .filter(|k| matches!(k.reason, SkipReason::NotAStage(_)))
        .map(|k| k.id.as_str())
        .collect();
    let mut removed: Vec<_> = report.removed.iter().map(|r| r.id.as_str()).collect();
    not_stages.sort();
    removed.sort();
    (not_stages, removed)
}

#[test]
#[cfg(unix)] // symbolic links among the cases
fn recovery_leaves_what_is_not_a_stage_untouched_per_directory() -> Result<()> {
    let (s, area) = setup(Layout::PerDirectory)?;
    let d = s.dir();
    d.create_dir("keep")?;
    d.write("keep/k", "kept")?;
    // Named like stages, but not stages: each must stay byte for byte.
    d.create_dir_all("staging/1")?;
    d.write("staging/1/notes.txt", "important\n")?; // issue 10's reproduction
    d.create_dir_all("staging/2/dir")?;
    d.write("staging/2/dir/x", "x")?;
    d.write("staging/2/notes.txt", "n")?;
    d.create_dir_all("staging/3/dir/sub")?;
    d.write("staging/3/staging.lock", "")?; // a stale lock file, free
    d.write("staging/3/dir/sub/x", "x")?;
    d.create_dir_all("staging/3/extra")?;
    d.create_dir_all("staging/4")?;
    d.write("staging/4/dir", "a file named dir")?;
    d.create_dir_all("staging/6")?;
    std::os::unix::fs::symlink("../../keep", s.join("staging/6/dir"))?;
    d.create_dir_all("staging/7/staging.lock")?;
    d.write("staging/7/staging.lock/x", "x")?;
    // Not named like stages at all (leading zero, beyond u32): never even looked at.
    d.create_dir_all("staging/007/dir")?;
    d.create_dir_all("staging/4294967296/dir")?;
    let before = tree(&s.join("staging"))?;
    // Real dead stages beside them, which are removed.
    d.create_dir_all("staging/8/dir/sub")?;
    d.write("staging/8/dir/sub/f", "f")?;
    d.create_dir_all("staging/9/dir")?;
    d.write("staging/9/staging.lock", "")?;

    let dry = area.recover_stale_dry_run()?;
    assert_eq!(
        not_stages_and_removed(&dry),
        (vec!["1", "2", "3", "4", "6", "7"], vec!["8", "9"])
    );
    let report = area.recover_stale()?;
    assert_eq!(
        not_stages_and_removed(&report),
        (vec!["1", "2", "3", "4", "6", "7"], vec!["8", "9"]),
        "{report:?}"
    );
    assert_eq!(report.skipped.len(), 6, "{report:?}");
    assert_eq!(tree(&s.join("staging"))?, before);
    assert_eq!(std::fs::read_to_string(s.join("keep/k"))?, "kept");
    let again = area.recover_stale()?;
    assert!(again.removed.is_empty());
    assert_eq!(tree(&s.join("staging"))?, before);
    Ok(())
}

#[test]
#[cfg(unix)] // symbolic links among the cases
fn recovery_leaves_what_is_not_a_stage_untouched_with_pairs() -> Result<()> {
    let (s, area) = setup(Layout::Pairs)?;
    let d = s.dir();
    d.create_dir("keep")?;
    d.write("keep/k", "kept")?;
    d.write("staging/temp-dir-5", "a file, not a resource directory")?;
    d.create_dir_all("staging/lock-6")?;
    d.write("staging/lock-6/x", "a directory, not a lock file")?;
    std::os::unix::fs::symlink("../keep", s.join("staging/temp-dir-10"))?;
    d.create_dir_all("staging/temp-dir-01/x")?; // not a stage name
    d.write("staging/lock-01", "")?;
    let before = tree(&s.join("staging"))?;
    d.create_dir_all("staging/temp-dir-12/x")?; // an orphan resource: removed

    let report = area.recover_stale()?;
    assert_eq!(
        not_stages_and_removed(&report),
        (vec!["10", "5", "6"], vec!["12"]),
        "{report:?}"
    );
    assert_eq!(tree(&s.join("staging"))?, before);
    assert_eq!(std::fs::read_to_string(s.join("keep/k"))?, "kept");
    Ok(())
}

/// What a report says of each stage, in its order: `(id, "removed" or the skip reason)`.
fn outcomes(report: &stagelock::Report) -> Vec<(String, String)> {
    let mut all: Vec<_> = report
        .removed
        .iter()
        .map(|r| {
            (
                r.id.clone(),
                format!("removed {} {}", r.had_lock, r.had_resource),
            )
        })
        .chain(
            report
                .skipped
                .iter()
                .map(|k| (k.id.clone(), k.reason.to_string())),
        )
        .collect();
    // Removed and skipped are each in listing order; merge them back by the listing's order.
    all.sort();
    all
}

/// Recovery on many threads handles every stage once, with the guarantees of one thread: dead
/// stages go, held ones and entries that are not stages stay exactly as they are, and the
/// report is the one a single thread gives.
#[test]
fn parallel_recovery_removes_exactly_the_dead_stages() -> Result<()> {
    const STAGES: u32 = 300;
    for (layout, name) in LAYOUTS {
        let (s, area) = setup(layout)?;
        let d = s.dir();
        let mut dead = Vec::new();
        for n in 1..=STAGES {
            let (lock, resource, extra) = match layout {
                Layout::Pairs => (
                    format!("staging/lock-{n}"),
                    format!("staging/temp-dir-{n}"),
                    format!("staging/lock-{n}/not-a-lock-file"),
                ),
                _ => (
                    format!("staging/{n}/staging.lock"),
                    format!("staging/{n}/dir"),
                    format!("staging/{n}/notes.txt"),
                ),
            };
            d.create_dir_all(format!("{resource}/sub"))?;
            d.write(format!("{resource}/sub/f"), "x")?;
            if n % 5 == 0 {
                // Not a stage: a directory where the lock file would be, or a file of the user's.
                if layout == Layout::Pairs {
                    d.create_dir(&lock)?;
                }
                d.write(&extra, "keep")?;
            } else {
                d.write(&lock, "")?;
                dead.push(n.to_string());
            }
        }
        let live: Vec<_> = (0..20).map(|_| area.stage()).collect::<Result<_, _>>()?;
        for stage in &live {
            stage.dir().write("work", "live")?;
        }
        let not_stages = |s: &Scratch| -> Result<Vec<(PathBuf, Entry)>> {
            Ok(tree(&s.join("staging"))?
                .into_iter()
                .filter(|(path, _)| {
                    let id = path
                        .to_str()
                        .unwrap()
                        .trim_start_matches("lock-")
                        .trim_start_matches("temp-dir-");
                    let id = id.split('/').next().unwrap_or_default();
                    id.parse::<u32>().is_ok_and(|n| n % 5 == 0 && n <= STAGES)
                })
                .collect())
        };
        let before = not_stages(&s)?;

        let one = area.recover_stale_with(RecoverOptions::new().jobs(1).dry_run(true))?;
        let many = area.recover_stale_with(RecoverOptions::new().jobs(8).dry_run(true))?;
        let ids = |r: &stagelock::Report| -> Vec<String> {
            r.removed.iter().map(|x| x.id.clone()).collect()
        };
        assert_eq!(ids(&many), ids(&one), "{name}: the same order on 8 threads");
        assert_eq!(outcomes(&many), outcomes(&one), "{name}");

        let report = area.recover_stale_with(RecoverOptions::new().jobs(8))?;
        assert_eq!(
            ids(&report),
            ids(&one),
            "{name}: what the dry run said, in its order"
        );
        let mut removed = ids(&report);
        removed.sort();
        dead.sort();
        assert_eq!(removed, dead, "{name}: exactly the dead stages");
        let skipped = |what: fn(&SkipReason) -> bool| {
            report.skipped.iter().filter(|k| what(&k.reason)).count()
        };
        assert_eq!(
            skipped(|r| matches!(r, SkipReason::Held)),
            live.len(),
            "{name}"
        );
        assert_eq!(
            skipped(|r| matches!(r, SkipReason::NotAStage(_) | SkipReason::Failed(_))),
            (STAGES / 5) as usize,
            "{name}: {report:?}"
        );
        assert_eq!(not_stages(&s)?, before, "{name}: not-stages untouched");
        for (i, stage) in live.into_iter().enumerate() {
            assert_eq!(stage.dir().read_to_string("work")?, "live", "{name}");
            stage.commit(s.dir(), format!("out/{i}"))?;
        }
        let again = area.recover_stale_with(RecoverOptions::new().jobs(8))?;
        assert!(again.removed.is_empty(), "{name}: {again:?}");
    }
    Ok(())
}

/// Stagers in threads and in processes loop stage / fill / check / commit while a recoverer
/// loops recover_stale, and holders get SIGKILLed mid-stage. No live stage may lose a file, every
/// commit must be complete, every dead stage must be recovered, and nothing may be left.
#[test]
fn recovery_racing_stagers_never_removes_live_work() -> Result<()> {
    const THREADS: usize = 2;
    const PROCESSES: usize = 2;
    const ROUNDS: usize = 150;
    const KILLED: usize = 3;
    for (layout, name) in LAYOUTS {
        let (s, area) = setup(layout)?;
        let started = Instant::now();
        let stop = AtomicBool::new(false);
        let (recovered_dead, passes) = std::thread::scope(|scope| -> Result<(usize, usize)> {
            let recoverer = scope.spawn(|| -> Result<(usize, usize)> {
                let (mut dead, mut passes) = (0, 0);
                while !stop.load(Ordering::SeqCst) {
                    // The default (one thread per core), and more threads than cores.
                    let report = if passes % 2 == 0 {
                        area.recover_stale()?
                    } else {
                        area.recover_stale_with(RecoverOptions::new().jobs(4))?
                    };
                    for r in &report.removed {
                        // Live stages create their resource only after locking, so only dead
                        // ones can be removed with a resource.
                        dead += usize::from(r.had_resource);
                    }
                    for k in &report.skipped {
                        anyhow::ensure!(!matches!(k.reason, SkipReason::Failed(_)), "{:?}", k);
                    }
                    passes += 1;
                }
                Ok((dead, passes))
            });
            let mut workers = Vec::new();
            for t in 0..THREADS {
                let (area, s) = (&area, &s);
                workers.push(scope.spawn(move || -> Result<()> {
                    let out = s.dir().open_dir("out")?;
                    for i in 0..ROUNDS {
                        stage_fill_check_commit(area, &out, &format!("t{t}-{i}"))?;
                    }
                    Ok(())
                }));
            }
            let loops: Vec<_> = (0..PROCESSES)
                .map(|p| {
                    Command::new(env!("CARGO_BIN_EXE_lock-holder"))
                        .args(["stage-loop", s.join("staging").to_str().unwrap(), name])
                        .arg(ROUNDS.to_string())
                        .arg(s.join("out"))
                        .arg(format!("p{p}"))
                        .output()
                })
                .collect::<Vec<_>>();
            for k in 0..KILLED {
                let mut c = Command::new(env!("CARGO_BIN_EXE_lock-holder"));
                c.arg("stage").arg(s.join("staging")).arg(name);
                let (holder, taken) = Holder::start(c)?;
                assert!(matches!(taken, Taken::Held(_)), "kill {k}: {taken:?}");
                holder.kill()?;
            }
            for w in workers {
                w.join().unwrap()?;
            }
            for out in loops {
                let out = out?;
                anyhow::ensure!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            // Let the recoverer see the last killed stages.
            let _stop = StopOnDrop(&stop);
            wait_until("the recoverer to clear the killed stages", || {
                staging_entries(&s).is_ok_and(|n| n == 0)
            });
            stop.store(true, Ordering::SeqCst);
            recoverer.join().unwrap()
        })?;
        assert_eq!(
            recovered_dead, KILLED,
            "{layout:?}: every killed stage recovered once"
        );
        assert_eq!(staging_entries(&s)?, 0, "{layout:?}: nothing left");
        let committed = std::fs::read_dir(s.join("out"))?.count();
        assert_eq!(committed, (THREADS + PROCESSES) * ROUNDS, "{layout:?}");
        eprintln!(
            "{layout:?}: {committed} commits x {STAGE_FILES} files, {KILLED} killed holders, \
             {passes} recovery passes in {:?}",
            started.elapsed()
        );
    }
    Ok(())
}

/// `(id, had_lock, had_resource)` of each stage `report` removed, sorted.
fn removed_ids(report: &stagelock::Report) -> Vec<(&str, bool, bool)> {
    let mut removed: Vec<_> = report
        .removed
        .iter()
        .map(|r| (r.id.as_str(), r.had_lock, r.had_resource))
        .collect();
    removed.sort();
    removed
}

/// Deletes `path` from another process, as someone who does not hold its lock would.
fn unlink_in_another_process(path: &Path) -> Result<()> {
    let status = Command::new(env!("CARGO_BIN_EXE_lock-holder"))
        .arg("delete")
        .arg(path)
        .status()?;
    anyhow::ensure!(
        status.success(),
        "lock-holder could not delete {}",
        path.display()
    );
    Ok(())
}

/// What a lost lock at commit must leave: an error of kind `LockLost`, no stage handed back,
/// DEST as it was (absent, or its old contents), and the resource still in the staging area.
fn assert_lost_at_commit(
    committed: Result<(), stagelock::CommitError>,
    s: &Scratch,
    resource: &Path,
    replace: bool,
) -> Result<()> {
    let failed = committed.expect_err("the commit went through on a lost lock");
    assert_eq!(failed.error.kind(), ErrorKind::LockLost, "{}", failed.error);
    assert!(failed.stage.is_none(), "no stage handed back to abort");
    if replace {
        assert_eq!(std::fs::read_to_string(s.join("out/result/old"))?, "old");
        assert!(!s.join("out/result/data").exists());
    } else {
        assert!(!s.join("out/result").exists(), "DEST was made");
    }
    assert_eq!(
        std::fs::read_to_string(resource.join("data"))?,
        "built",
        "the stage was removed"
    );
    Ok(())
}

#[test]
#[cfg_attr(
    windows,
    ignore = "wine keeps a file deleted while open under its name until its last handle closes"
)]
fn a_lock_file_deleted_by_another_process_mid_stage_fails_the_commit_with_lock_lost() -> Result<()>
{
    for (layout, _) in LAYOUTS {
        for replace in [false, true] {
            let (s, area) = setup(layout)?;
            if replace {
                s.dir().create_dir("out/result")?;
                s.dir().write("out/result/old", "old")?;
            }
            let stage = area.stage()?;
            stage.dir().write("data", "built")?;
            let resource = s.join("staging").join(stage.path());
            stage.lock().verify()?;
            unlink_in_another_process(&s.join("staging").join(stage.lock().path()))?;
            assert_eq!(
                stage.lock().verify().unwrap_err().kind(),
                ErrorKind::LockLost
            );
            let out = s.dir().open_dir("out")?;
            let committed = if replace {
                stage.commit_replacing(&out, "result")
            } else {
                stage.commit(&out, "result")
            };
            assert_lost_at_commit(committed, &s, &resource, replace)?;
            // Left for recovery, which removes it: no one holds its lock.
            let report = area.recover_stale()?;
            assert_eq!(report.removed.len(), 1, "{layout:?}: {report:?}");
            assert_eq!(staging_entries(&s)?, 0, "{layout:?}");
        }
    }
    Ok(())
}

#[test]
#[cfg_attr(
    windows,
    ignore = "wine keeps a file deleted while open under its name until its last handle closes"
)]
fn a_lock_file_deleted_and_locked_anew_by_another_process_fails_the_commit_with_lock_lost()
-> Result<()> {
    for (layout, _) in LAYOUTS {
        let (s, area) = setup(layout)?;
        let stage = area.stage()?;
        stage.dir().write("data", "built")?;
        let resource = s.join("staging").join(stage.path());
        let lock_path = s.join("staging").join(stage.lock().path());
        unlink_in_another_process(&lock_path)?;
        // The other process makes a new file at the path and locks it (POSIX fcntl lock).
        let (other, taken) = Holder::containers_storage(&lock_path)?;
        assert_eq!(taken, Taken::Held(String::new()));
        let committed = stage.commit(&s.dir().open_dir("out")?, "result");
        assert_lost_at_commit(committed, &s, &resource, false)?;
        // The new holder's file was not deleted by us, and its lock stays.
        assert!(lock_path.is_file());
        assert!(!stagelock_tests::lockable_by_other_process(&lock_path)?);
        let report = area.recover_stale()?;
        assert!(report.removed.is_empty(), "{layout:?}: {report:?}");
        other.release()?;
        let report = area.recover_stale()?;
        assert_eq!(report.removed.len(), 1, "{layout:?}: {report:?}");
        assert_eq!(staging_entries(&s)?, 0, "{layout:?}");
    }
    Ok(())
}

/// The crate's example `host/stagelock/examples/recover_then_stage.rs`, compiled in here.
#[path = "../../host/stagelock/examples/recover_then_stage.rs"]
mod recover_then_stage;

/// The native example recovers a killed builder's stage, skips a live builder's, and commits
/// its build; run again, it replaces the build and finds nothing more to recover.
#[test]
fn the_recover_then_stage_example_recovers_the_dead_skips_the_live_and_commits() -> Result<()> {
    let (s, _area) = setup(Layout::PerDirectory)?;
    let staging = s.join("staging");
    let start = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_lock-holder"));
        c.arg("stage").arg(&staging).arg("per-dir");
        Holder::start(c)
    };
    let (killed, Taken::Held(dead)) = start()? else {
        panic!("the first stager could not stage")
    };
    let (alive, Taken::Held(live)) = start()? else {
        panic!("the second stager could not stage")
    };
    killed.kill()?;

    let out = recover_then_stage::run(&staging, &s.join("out"), "tool")
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(lines[0].starts_with(&format!("removed {dead}: ")), "{out}");
    assert_eq!(lines[1], format!("skipped {live}: held by a live builder"));
    assert_eq!(lines[2], "1 removed, 1 skipped", "{out}");
    assert!(
        lines[3].starts_with("committed stage ") && lines[3].ends_with(" as tool"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(s.join("out/tool/VERSION"))?,
        "1.0\n"
    );

    let again = recover_then_stage::run(&staging, &s.join("out"), "tool")
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    assert!(again.contains("0 removed, 1 skipped"), "{again}");
    assert_eq!(names(&s.join("out"))?, ["tool"]);
    alive.release()?;
    assert_eq!(staging_entries(&s)?, 0, "{:?}", names(&staging)?);
    Ok(())
}
