//! Model-checked staging: random sequences of operations by several actors at once (threads,
//! processes, guests in sync and async stores), a containers/storage-style holder of classic
//! POSIX locks (`foreign.rs`: it takes lock paths and lets go in each of its ways, `F_UNLCK`
//! keeping its descriptor among them) and hostile steps between them, each step checked
//! against a model (`model.rs`: who holds each path, which waits must end) and the files
//! looked at from outside after it (`world.rs`). A waiter that does not get a freed path
//! within 30 s fails the run: a lost wake-up. Runs on the local disk, on LazyFS with a power cut at a random step, and on
//! bindfs (commits without `renameat2` flags).
//!
//! Generated with proptest: a failing sequence shrinks to a minimal one, printed step by step
//! with the seed of the run, and its seed goes to `model/regressions.txt`, which every run
//! replays first. Settings (environment):
//!
//! - `STAGELOCK_MODEL_SEED=N`: the run's seed (printed by every run; the same seed replays the
//!   same sequences).
//! - `STAGELOCK_MODEL_CASES=N`: sequences per test (each test's default: its CI budget).
//! - `STAGELOCK_FAULTS_OFF=NAME,..`: protections of the core switched off (in this process and
//!   the actors'), to see the test fail without them: `scripts/model.sh --protections`.

mod actors;
#[cfg(feature = "components")]
mod guest;
mod model;
mod steps;
mod world;

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use proptest::test_runner::{
    Config, FileFailurePersistence, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner,
};
use stagelock::Layout;
use stagelock_tests::FuseMount;

use model::Model;
use steps::{Case, Kind, Mix};
use world::World;

/// The tests of this binary run one at a time: each counts this process's descriptors.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Every kind of actor: guests too when the guests are built (the `components` feature).
#[cfg(feature = "components")]
const ALL_KINDS: &[Kind] = &[
    Kind::Thread,
    Kind::Process,
    Kind::GuestSync,
    Kind::GuestAsync,
];
#[cfg(not(feature = "components"))]
const ALL_KINDS: &[Kind] = &[Kind::Thread, Kind::Process];

// The model's one guest, `model_actor`, has its test below.
#[cfg(feature = "components")]
stagelock_tests::foreach_model!(assert_test_exists);
#[cfg(feature = "components")]
use stagelock_tests::assert_test_exists;

/// Where a run's sequences happen, and what it does to them.
#[derive(Clone, Copy)]
enum Ground<'a> {
    /// A fresh temporary directory on the local disk.
    Local,
    /// A directory on this FUSE mount.
    Fuse(&'a Path),
    /// A directory on this LazyFS mount, with a power cut after the case's `cut` step.
    PowerCut(&'a FuseMount),
}

/// What a run covered.
#[derive(Default)]
struct Tally {
    sequences: AtomicUsize,
    steps: AtomicUsize,
}

/// Runs `cases` generated sequences of `mix` (or `STAGELOCK_MODEL_CASES`) on `ground`; a
/// failure shrinks and is reported with its minimal sequence and the run's seed.
fn run(name: &str, mix: Mix, cases: u32, ground: Ground<'_>) -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    stagelock::faults::Protection::switch_off_from_env().map_err(anyhow::Error::msg)?;
    let seed: u64 = match std::env::var("STAGELOCK_MODEL_SEED") {
        Ok(s) => parse_seed(&s).with_context(|| format!("STAGELOCK_MODEL_SEED={s}"))?,
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos() as u64,
    };
    let cases = match std::env::var("STAGELOCK_MODEL_CASES") {
        Ok(n) => n.parse().context("STAGELOCK_MODEL_CASES")?,
        Err(_) => cases,
    };
    eprintln!(
        "model {name}: seed {seed:#x} (STAGELOCK_MODEL_SEED={seed:#x} replays), {cases} sequences"
    );
    // A failure's seed is kept for every later run to replay first, unless it was found with
    // a protection switched off (then it is no bug of the code that ships).
    let faults_off = std::env::var_os("STAGELOCK_FAULTS_OFF").is_some_and(|v| !v.is_empty());
    let persistence: Option<Box<dyn proptest::test_runner::FailurePersistence>> = if faults_off {
        None
    } else {
        Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/model/regressions.txt"
        ))))
    };
    let config = Config {
        cases,
        failure_persistence: persistence,
        max_shrink_iters: 400,
        // A lost wake-up costs 30 s per failing try: shrinking stops after 5 minutes.
        max_shrink_time: 300_000,
        ..Config::default()
    };
    let mut bytes = [0u8; 32];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = (seed >> ((i % 8) * 8)) as u8;
    }
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes));
    let tally = Tally::default();
    let started = Instant::now();
    let result = runner.run(&steps::case(mix), |case| {
        let ran = one(&case, ground).map_err(|e| TestCaseError::fail(format!("{e:#}")))?;
        tally.sequences.fetch_add(1, Ordering::Relaxed);
        tally.steps.fetch_add(ran, Ordering::Relaxed);
        Ok(())
    });
    eprintln!(
        "model {name}: {} sequences, {} steps run, in {:.1} s",
        tally.sequences.load(Ordering::Relaxed),
        tally.steps.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
    match result {
        Ok(()) => Ok(()),
        Err(TestError::Fail(why, case)) => {
            // Run once more, for the shrunk sequence's own failure (proptest reports the last
            // one it saw), and to say whether it fails every time.
            let again = match one(&case, ground) {
                Ok(_) => format!("it passed when run again; the failure seen: {why}"),
                Err(e) => format!("{e:#}"),
            };
            bail!(
                "model {name}: a sequence broke a promise (seed {seed:#x}); shrunk to:\n{case}\
                 failed: {again}"
            )
        }
        Err(TestError::Abort(why)) => bail!("model {name}: aborted: {why}"),
    }
}

fn parse_seed(s: &str) -> Result<u64> {
    Ok(match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16)?,
        None => s.parse()?,
    })
}

/// Runs one sequence; returns how many of its steps ran.
fn one(case: &Case, ground: Ground<'_>) -> Result<usize> {
    let base = match ground {
        Ground::Local => std::env::temp_dir(),
        Ground::Fuse(path) => path.to_owned(),
        Ground::PowerCut(mount) => mount.path().to_owned(),
    };
    let scratch = tempfile::tempdir_in(base)?;
    // The first guest of the process opens what stays open (the engine's code memory,
    // wasmtime-wasi's runtime): before the count.
    #[cfg(feature = "components")]
    if case.kinds.iter().any(|k| k.is_guest()) {
        guest::warm_up()?;
    }
    let descriptors = open_descriptors()?;
    let mut world = World::new(scratch.path(), case.layout, &case.kinds)?;
    let fuse = !matches!(ground, Ground::Local);
    let mut model = Model::new(case.layout, case.kinds.clone(), fuse);
    for (i, step) in case.steps.iter().enumerate() {
        let at = |e: String| anyhow::anyhow!("step {i} ({step:?}): {e}");
        model.step(step, &mut world).map_err(at)?;
        world.check(&model).map_err(at)?;
        if let Ground::PowerCut(mount) = ground
            && i == case.cut
        {
            return after_power_cut(world, model, mount)
                .map_err(|e| e.context(format!("power cut after step {i}")));
        }
    }
    world
        .finish(&mut model)
        .map_err(|e| anyhow::anyhow!("ending the actors: {e}"))?;
    world
        .check(&model)
        .map_err(|e| anyhow::anyhow!("at the end: {e}"))?;
    let ran = model.ran;
    drop(world);
    no_descriptor_leaked(descriptors)?;
    Ok(ran)
}

/// The power goes: every actor dies at once (all are processes: SIGKILL), LazyFS drops what
/// was not synced. Then every commit that returned is in `dest/` byte for byte, and recovery
/// leaves nothing of a stage in the area.
fn after_power_cut(mut world: World, mut model: Model, mount: &FuseMount) -> Result<usize> {
    world.kill_all(&mut model);
    stagelock_tests::power_cut(mount)?;
    world
        .check_dest(&model)
        .map_err(|e| anyhow::anyhow!("after the power cut: {e}"))?;
    world
        .recover_all(&model)
        .map_err(|e| anyhow::anyhow!("recovering after the power cut: {e}"))?;
    Ok(model.ran)
}

/// The process's open descriptors, but for the inotify instance that waits make once per
/// process, at the first wait that needs it, and keep for the process's life (sys/unix/events.rs):
/// the first sequence with a wait would otherwise count it as a leak.
fn open_descriptors() -> Result<usize> {
    let mut count = 0;
    for fd in std::fs::read_dir("/proc/self/fd")? {
        let target = std::fs::read_link(fd?.path()).unwrap_or_default();
        count += usize::from(target.as_os_str() != "anon_inode:inotify");
    }
    Ok(count)
}

/// The same descriptors are open as before the sequence (a moment is allowed for the threads
/// reading the processes' output to see them exit: 30 s, as a loaded machine may take its
/// time; a leak stays forever).
fn no_descriptor_leaked(before: usize) -> Result<()> {
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let now = open_descriptors()?;
        if now <= before {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{} descriptors leaked: {before} were open before the sequence, {now} after",
                now - before
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// The CI budget: sequences of up to 40 steps by two to four actors of every kind, on the
/// local disk.
#[test]
fn sequences_keep_every_promise() -> Result<()> {
    let mix = Mix {
        kinds: ALL_KINDS,
        max_steps: 40,
        non_durable: true,
    };
    run("local", mix, 300, Ground::Local)
}

/// Power cuts at a random step, on LazyFS: processes (the power kills them), durable commits.
#[test]
fn sequences_survive_power_cuts() -> Result<()> {
    let Some(mount) = stagelock_tests::lazyfs_mount()? else {
        return Ok(());
    };
    let mix = Mix {
        kinds: &[Kind::Process],
        max_steps: 20,
        non_durable: false,
    };
    run("power-cut", mix, 40, Ground::PowerCut(&mount))
}

/// On bindfs, a FUSE filesystem without `renameat2` flags: every commit takes the fallback.
#[test]
fn sequences_keep_every_promise_on_bindfs() -> Result<()> {
    if let Some(why) = stagelock_tests::fuse_missing(Path::new("bindfs")) {
        eprintln!("SKIPPED: the bindfs model run needs /dev/fuse, bindfs and fuse3: {why}");
        return Ok(());
    }
    let mount = FuseMount::new(&["bindfs"], &["fusermount3", "-u"])?;
    let mix = Mix {
        kinds: ALL_KINDS,
        max_steps: 20,
        non_durable: true,
    };
    run("bindfs", mix, 40, Ground::Fuse(mount.path()))
}

/// The guest actor (`model_actor`) speaks the protocol in both stores: its locks exclude each
/// other's and native ones, its stages commit, `trap` and `spin` (out of fuel) end it with
/// every lock freed, and no descriptor is left open once the guests are gone.
#[cfg(feature = "components")]
#[test]
fn model_actor() -> Result<()> {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    guest::warm_up()?;
    let before = open_descriptors()?;
    let tmp = tempfile::tempdir()?;
    guest::smoke(tmp.path())?;
    drop(tmp);
    no_descriptor_leaked(before)
}

/// The sequences the model test found bugs with (shrunk), run as they were found, every time:
/// the seeds in `model/regressions.txt` replay them only as long as the generator draws the
/// same cases from them.
#[test]
fn found_bugs_stay_fixed() -> Result<()> {
    use steps::Step::{Commit, Recover, Stage, UnlinkStageLock};
    // A stage's lock file deleted by another process, recovery then removing the stage, and
    // the stage's owner committing: lock-lost, nothing moved. Before 0365bdb a per-directory
    // stage failed with a bare "No such file or directory"; on LazyFS, a pair failed with
    // "syncing the stage failed: Stale file handle".
    let lost_then_recovered = |layout, kinds: &[Kind]| Case {
        layout,
        kinds: kinds.to_vec(),
        steps: vec![
            Stage { actor: 0, s: 0 },
            UnlinkStageLock { actor: 0, s: 0 },
            Recover { actor: 1 },
            Commit {
                actor: 0,
                s: 0,
                dest: 0,
                replace: false,
                durable: true,
            },
        ],
        cut: usize::MAX, // no power cut
    };
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let replay = |case: &Case, ground: Ground<'_>, on: &str| {
        one(case, ground).map_err(|e| anyhow::anyhow!("on {on}:\n{case}failed: {e:#}"))
    };
    let both = [Layout::Pairs, Layout::PerDirectory];
    for layout in both {
        replay(
            &lost_then_recovered(layout, &[Kind::Thread, Kind::Process]),
            Ground::Local,
            "the local disk",
        )?;
    }
    if let Some(mount) = stagelock_tests::lazyfs_mount()? {
        for layout in both {
            replay(
                &lost_then_recovered(layout, &[Kind::Process, Kind::Process]),
                Ground::Fuse(mount.path()),
                "LazyFS",
            )?;
        }
    }
    // On FUSE, a per-directory stage whose lock file was deleted while its owner had it open
    // holds the file's `.fuse_hidden` name: recovery keeps it (not a stage), where on a local
    // disk it removes it. (The model did not know this at first.)
    if stagelock_tests::fuse_missing(Path::new("bindfs")).is_none() {
        let mount = FuseMount::new(&["bindfs"], &["fusermount3", "-u"])?;
        let mut case = lost_then_recovered(Layout::PerDirectory, &[Kind::Thread, Kind::Thread]);
        case.steps.truncate(3);
        replay(&case, Ground::Fuse(mount.path()), "bindfs")?;
    }
    Ok(())
}
