//! Contention stress: holders of every kind (native processes, `stagelock lock` from the shell,
//! guests in this process, a guest under `stagelock run`) hammer K shared paths; each stamps its
//! hold interval while holding, and a checker proves no two holds of one path overlap.
//!
//! CI runs a small size. `scripts/stress.sh [SCALE]` runs it big (SCALE 530 is about a million
//! acquisitions); `STAGELOCK_STRESS_SCALE` multiplies the per-worker counts and
//! `STAGELOCK_STRESS_DIR` picks where the locks live.

use std::fs::File;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use stagelock_tests::guests::*;
use stagelock_tests::{
    Scratch, Stress, assert_test_exists, check_holds, foreach_contention, loads_the_machine,
    stagelock_bin, stress_guest, stress_holder,
};

foreach_contention!(assert_test_exists);

const PATHS: usize = 4;

fn scale() -> usize {
    std::env::var("STAGELOCK_STRESS_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

/// Holders of every kind never overlap.
#[test]
fn contention_stress() -> Result<()> {
    // It loads every core: no test of this binary that times itself runs meanwhile.
    let _load = loads_the_machine();
    let s = scale();
    let (native, guests, run, cli) = (500 * s, 300 * s, 300 * s, 40 * s.min(25));
    let scratch = Scratch::new()?;
    let root = match std::env::var_os("STAGELOCK_STRESS_DIR") {
        Some(dir) => tempfile::tempdir_in(dir)?.keep(),
        None => scratch.path().to_path_buf(),
    };
    let dir = root.join("locks");
    let logs = root.join("logs");
    std::fs::create_dir_all(&dir)?;
    std::fs::create_dir_all(&logs)?;
    let log = |tag: &str| File::create(logs.join(tag));
    let bin = stagelock_bin(false);
    let holder = env!("CARGO_BIN_EXE_lock-holder");
    let started = Instant::now();

    let mut children = Vec::new();
    for i in 0..2 {
        let tag = format!("native{i}");
        let child = stress_holder(
            holder,
            Stress::Native,
            &dir,
            PATHS,
            native,
            &tag,
            log(&tag)?,
        )
        .stderr(Stdio::null())
        .spawn()?;
        children.push((tag, child));
    }
    let child = stress_holder(holder, Stress::Cli, &dir, PATHS, cli, "cli", log("cli")?).spawn()?;
    children.push(("cli".into(), child));
    let grant = format!("{}::/work", dir.display());
    let child = Command::new(bin)
        .args([
            "run",
            "--dir",
            &grant,
            CONTENTION_STRESS,
            &PATHS.to_string(),
            &run.to_string(),
            "run",
        ])
        .env("STAGELOCK_CACHE_DIR", root.join("cache"))
        .stdout(log("run")?)
        .spawn()?;
    children.push(("run".into(), child));

    std::thread::scope(|scope| -> Result<()> {
        let threads: Vec<_> = (0..2)
            .map(|i| {
                let (dir, log) = (&dir, log(&format!("guest{i}")));
                scope.spawn(move || stress_guest(dir, PATHS, guests, &format!("guest{i}"), log?))
            })
            .collect();
        for t in threads {
            t.join().unwrap()?;
        }
        Ok(())
    })?;
    for (tag, mut child) in children {
        let status = child.wait()?;
        ensure!(status.success(), "{tag} exited {status}");
    }
    let elapsed = started.elapsed();

    let expected = 2 * native + 2 * guests + run + cli;
    let total = check_holds(&logs, expected).context("overlapping holds")?;
    let left: Vec<_> = std::fs::read_dir(&dir)?
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "lock files left behind: {left:?}");
    eprintln!(
        "{total} acquisitions of {PATHS} paths (native 2x{native}, guests 2x{guests}, \
         stagelock run {run}, stagelock lock {cli}) in {elapsed:.1?}: no overlap"
    );
    if std::env::var_os("STAGELOCK_STRESS_DIR").is_some() {
        std::fs::remove_dir_all(&root)?;
    }
    Ok(())
}
