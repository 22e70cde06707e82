//! stagelock's benchmarks: `cargo bench -p stagelock-tests --bench stagelock` (or
//! `scripts/bench.sh`). Prints a Markdown table; every figure is a median over interleaved
//! rounds, and every ratio is against a baseline measured in the same run.
//!
//! `STAGELOCK_BENCH_DIR` picks the directory to lock in (default: the system temp dir);
//! `STAGELOCK_BENCH_QUICK=1` runs fewer rounds (for a smoke test); `STAGELOCK_BENCH_ONLY=a,b`
//! runs only those sections (native, threads, guest, start, run, memory, held, recover,
//! commit, wait, waiters, contention), each a module here with a `run` adding its rows to the
//! table (`waiters` and `contention` are both in `waiters.rs`).
//! `STAGELOCK_FAULTS_OFF=wait-events` measures waits as they were before events (polling).

use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::CString;
use std::io::Write as _;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use stagelock::{
    CommitOptions, Durability, ErrorKind, LockDir, RecoverOptions, StagingArea, StagingLock,
};
use stagelock_tests::guests::*;
use stagelock_tests::{GuestRun, assert_test_exists, foreach_bench, median, open_dir, us};
use stagelock_wasmtime::plugin::{PluginState, plugin_linker};
use wasmtime::component::Component;
use wasmtime::{Cache, CacheConfig, Config, Engine, InstanceAllocationStrategy, Store};
use wasmtime_wasi::WasiCtxBuilder;

// One module per section, as `STAGELOCK_BENCH_ONLY` names them (`SECTIONS` lists them in the
// order they run).
mod commit;
mod guest;
mod held;
mod memory;
mod native;
mod recover;
mod run;
mod start;
mod threads;
mod wait;
mod waiters;

mod floor;

// Each guest of the bench has a function of its name, in the section that runs it.
use guest::{bench_busy_v0_2, bench_ops};
use memory::bench_held_cost;
use waiters::bench_wait_lock;
foreach_bench!(assert_test_exists);

/// Live heap bytes, for the memory-per-lock figures.
struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

struct Table(Vec<[String; 6]>);

impl Table {
    fn row(
        &mut self,
        what: &str,
        ours: String,
        base: String,
        ratio: String,
        target: &str,
        met: Option<bool>,
    ) {
        let met = match met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "",
        };
        self.0
            .push([what.into(), ours, base, ratio, target.into(), met.into()]);
        eprintln!(
            "  {what}: {} vs {} = {}",
            self.0.last().unwrap()[1],
            self.0.last().unwrap()[2],
            self.0.last().unwrap()[3]
        );
    }

    fn print(&self) {
        println!("| measurement | stagelock | baseline | ratio | target | met |");
        println!("|---|---|---|---|---|---|");
        for r in &self.0 {
            println!(
                "| {} | {} | {} | {} | {} | {} |",
                r[0], r[1], r[2], r[3], r[4], r[5]
            );
        }
    }
}

/// A section's `run`: measures, and adds its rows to the table.
type Section = fn(&Bench, &mut Table);

/// The sections, in the order they run, by the names `STAGELOCK_BENCH_ONLY` takes.
const SECTIONS: &[(&str, Section)] = &[
    ("native", native::run),
    ("threads", threads::run),
    ("guest", guest::run),
    ("start", start::run),
    ("run", run::run),
    ("memory", memory::run),
    ("held", held::run),
    ("recover", recover::run),
    ("commit", commit::run),
    ("wait", wait::run),
    ("contention", waiters::run_contention),
    ("waiters", waiters::run),
];

/// What every section is given: where to lock, and how much to measure.
struct Bench {
    /// The directory each section makes its scratch directories in.
    base: PathBuf,
    /// Interleaved rounds of each measurement (sections that take longer choose fewer).
    rounds: usize,
    /// Operations per round.
    n: u32,
    /// `STAGELOCK_BENCH_QUICK`: fewer rounds and operations, for a smoke test.
    quick: bool,
}

fn want(section: &str) -> bool {
    std::env::var("STAGELOCK_BENCH_ONLY").map_or(true, |only| only.split(',').any(|s| s == section))
}

/// Runs each variant `rounds` times, interleaved, each returning ns per operation; medians.
fn interleaved<const K: usize>(
    rounds: usize,
    variants: &mut [&mut dyn FnMut() -> f64; K],
) -> [f64; K] {
    let mut samples: [Vec<f64>; K] = std::array::from_fn(|_| Vec::new());
    for _ in 0..rounds {
        for (k, v) in variants.iter_mut().enumerate() {
            samples[k].push(v());
        }
    }
    samples.map(median)
}

fn time_per_op(n: u32, mut op: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        op();
    }
    start.elapsed().as_nanos() as f64 / f64::from(n)
}

fn scratch(base: &Path, name: &str) -> PathBuf {
    let dir = base.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks harness=false benches to list tests
    }
    // `STAGELOCK_FAULTS_OFF=wait-events`: the waits' baseline, polling with backoff as before.
    if let Err(e) = stagelock::faults::Protection::switch_off_from_env() {
        eprintln!("{e}");
        std::process::exit(2);
    }
    let quick = std::env::var_os("STAGELOCK_BENCH_QUICK").is_some();
    let (rounds, n) = if quick { (3, 200) } else { (21, 2000) };
    let base = std::env::var_os("STAGELOCK_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("stagelock-bench-{}", std::process::id()));
    let mut t = Table(Vec::new());
    eprintln!(
        "stagelock benchmarks in {} ({rounds} rounds of {n} operations)",
        base.display()
    );
    let b = Bench {
        base,
        rounds,
        n,
        quick,
    };

    for &(name, run) in SECTIONS {
        if name == "guest" {
            // Compile the guests before anything is timed (whichever sections run).
            stagelock_tests::component(BENCH_OPS);
            stagelock_tests::component(BENCH_HELD_COST);
        }
        if want(name) {
            run(&b, &mut t);
        }
    }

    let _ = std::fs::remove_dir_all(&b.base);
    println!();
    println!(
        "Machine: {} cores, {}; locks in {}.",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu(),
        b.base.parent().unwrap().display()
    );
    println!();
    t.print();
}

fn cpu() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap().trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}
