//! Staging locks on a distributed filesystem against a local one, in the same run:
//! `scripts/multihost.sh` (JuiceFS) and `GLUSTERFS_BENCH=1 scripts/glusterfs.sh` (GlusterFS) run
//! it (`cargo bench -p stagelock-tests --bench multihost`) with `STAGELOCK_BENCH_MULTIHOST_DIR`
//! on a mount, `STAGELOCK_BENCH_MULTIHOST_ENGINE` naming it in the table (default: JuiceFS)
//! and `STAGELOCK_BENCH_LOCAL_DIR` on the local disk (default: the system temp dir). Without
//! the first it says it is skipped.
//!
//! Prints a Markdown table; every figure is a median over interleaved rounds.

use std::path::{Path, PathBuf};
use std::time::Instant;

use cap_std::fs::Dir;
use stagelock::{Layout, LockDir, StagingArea};
use stagelock_tests::{median, us};

const ROUNDS: usize = 9;
const OPS: u32 = 100;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Some(remote) = std::env::var_os("STAGELOCK_BENCH_MULTIHOST_DIR") else {
        println!("skipped: run scripts/multihost.sh");
        return Ok(());
    };
    let engine = std::env::var("STAGELOCK_BENCH_MULTIHOST_ENGINE")
        .unwrap_or_else(|_| "JuiceFS (Redis on loopback)".into());
    let local = std::env::var_os("STAGELOCK_BENCH_LOCAL_DIR")
        .map_or_else(std::env::temp_dir, PathBuf::from);
    let remote = tempfile::tempdir_in(remote)?;
    let local = tempfile::tempdir_in(local)?;
    let sides = [Side::new(remote.path())?, Side::new(local.path())?];
    eprintln!(
        "{engine}: {}, local: {} ({} rounds of {OPS} operations)",
        remote.path().display(),
        local.path().display(),
        ROUNDS
    );

    let mut rows = Vec::new();
    let mut measure = |what: &str, op: &dyn Fn(&Side, u32) -> Result<(), stagelock::Error>| {
        let mut samples = [Vec::new(), Vec::new()];
        for round in 0..ROUNDS {
            for (side, samples) in sides.iter().zip(&mut samples) {
                let started = Instant::now();
                for i in 0..OPS {
                    op(side, round as u32 * OPS + i).expect(what);
                }
                samples.push(started.elapsed().as_nanos() as f64 / f64::from(OPS));
            }
        }
        let [remote, local] = samples.map(median);
        eprintln!("  {what}: {} vs {}", us(remote, 0), us(local, 0));
        rows.push((what.to_owned(), remote, local));
    };
    measure("try-lock-path + unlock-and-delete", &|side, _| {
        side.locks.try_lock_path("bench.lock")?.unlock_and_delete()
    });
    measure("create-and-lock + unlock-and-delete", &|side, _| {
        side.locks.create_and_lock("lock-")?.0.unlock_and_delete()
    });
    measure(
        "stage + write a 4 KiB file + commit (per-directory layout)",
        &|side, i| {
            let stage = side.area.stage()?;
            stage
                .dir()
                .write("data", [7u8; 4096])
                .map_err(|e| stagelock::Error::io(stagelock::Op::Stage, "data", e))?;
            stage.commit(&side.dest, format!("r{i}"))?;
            Ok(())
        },
    );

    println!("| measurement | {engine} | local disk | ratio |");
    println!("|---|---|---|---|");
    for (what, remote, local) in rows {
        println!(
            "| {what} | {} | {} | {:.0}x |",
            us(remote, 0),
            us(local, 0),
            remote / local
        );
    }
    Ok(())
}

/// One filesystem's lock directory, staging area and destination.
struct Side {
    locks: LockDir,
    area: StagingArea,
    dest: Dir,
}

impl Side {
    fn new(root: &Path) -> Result<Side, Box<dyn std::error::Error>> {
        for sub in ["locks", "staging", "dest"] {
            std::fs::create_dir(root.join(sub))?;
        }
        let ambient = cap_std::ambient_authority;
        Ok(Side {
            locks: LockDir::open_ambient_dir(root.join("locks"), ambient())?,
            area: StagingArea::open_ambient_dir(
                root.join("staging"),
                Layout::PerDirectory,
                ambient(),
            )?,
            dest: Dir::open_ambient_dir(root.join("dest"), ambient())?,
        })
    }
}
