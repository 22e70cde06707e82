//! stagelock's benchmarks: `cargo bench -p stagelock-tests --bench stagelock` (or
//! `scripts/bench.sh`). Prints a Markdown table; every figure is a median over interleaved
//! rounds, and every ratio is against a baseline measured in the same run.
//!
//! `STAGELOCK_BENCH_DIR` picks the directory to lock in (default: the system temp dir);
//! `STAGELOCK_BENCH_QUICK=1` runs fewer rounds (for a smoke test); `STAGELOCK_BENCH_ONLY=a,b`
//! runs only those sections (native, threads, guest, start, run, memory, held, recover,
//! commit, wait).

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

/// The raw-syscall floor: exactly the syscalls a staging lock needs, nothing else.
mod floor {
    use super::*;

    pub struct RawDir {
        fd: std::fs::File,
        name: Vec<u8>,
        state: u64,
    }

    impl RawDir {
        pub fn open(path: &Path) -> RawDir {
            RawDir {
                fd: std::fs::File::open(path).unwrap(),
                name: Vec::with_capacity(32),
                state: 0x9e3779b97f4a7c15,
            }
        }

        fn next_name(&mut self) -> *const libc::c_char {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            self.name.clear();
            write!(self.name, "lock-{}\0", self.state as u32).unwrap();
            self.name.as_ptr().cast()
        }

        /// openat(O_EXCL) + lock + unlinkat + close; `ofd` picks F_OFD_SETLK, else flock.
        pub fn create_lock_delete(&mut self, ofd: bool) {
            let name = self.next_name();
            let dir = self.fd.as_raw_fd();
            // SAFETY: `name` is NUL-terminated and lives in `self.name` across the calls; `lock`
            // is a valid flock struct; every descriptor used is open.
            unsafe {
                let fd = libc::openat(
                    dir,
                    name,
                    libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC,
                    0o600,
                );
                assert!(fd >= 0);
                lock(fd, ofd);
                assert_eq!(libc::unlinkat(dir, name, 0), 0);
                libc::close(fd);
            }
        }

        /// openat(O_CREAT | O_NOFOLLOW) of a fixed name: the descriptor.
        fn open_fixed(&self, name: &CString) -> libc::c_int {
            // SAFETY: `name` is NUL-terminated; the directory descriptor is open.
            let fd = unsafe {
                libc::openat(
                    self.fd.as_raw_fd(),
                    name.as_ptr(),
                    libc::O_RDWR | libc::O_CREAT | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                    0o644,
                )
            };
            assert!(fd >= 0);
            fd
        }

        /// openat(O_CREAT) + lock + unlinkat + close on a fixed name.
        pub fn open_lock_delete(&mut self, name: &CString) {
            let fd = self.open_fixed(name);
            // SAFETY: `fd` was just opened; `name` is NUL-terminated.
            unsafe {
                lock(fd, true);
                assert_eq!(libc::unlinkat(self.fd.as_raw_fd(), name.as_ptr(), 0), 0);
                libc::close(fd);
            }
        }

        /// openat + a refused lock + close.
        pub fn open_refused(&mut self, name: &CString) {
            let fd = self.open_fixed(name);
            // SAFETY: `fd` was just opened; `l` is a valid flock struct.
            unsafe {
                let mut l: libc::flock = std::mem::zeroed();
                l.l_type = libc::F_WRLCK as _;
                assert_eq!(libc::fcntl(fd, libc::F_OFD_SETLK, &mut l), -1);
                libc::close(fd);
            }
        }
    }

    /// SAFETY (caller): `fd` is open.
    unsafe fn lock(fd: libc::c_int, ofd: bool) {
        // SAFETY: `l` is a valid flock struct; `fd` is open (caller).
        unsafe {
            if ofd {
                let mut l: libc::flock = std::mem::zeroed();
                l.l_type = libc::F_WRLCK as _;
                assert_eq!(libc::fcntl(fd, libc::F_OFD_SETLK, &mut l), 0);
            } else {
                assert_eq!(libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB), 0);
            }
        }
    }
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

/// ns per operation of the guest's benchmark loop `op` (`create`, `try` or `busy`).
fn bench_ops(dir: &Path, op: &str, n: u32, target: &str) -> f64 {
    let done = GuestRun::new(&[op, &n.to_string(), target])
        .work(dir)
        .max_held(1024)
        .run(BENCH_OPS)
        .succeeded();
    let ns: f64 = done
        .stdout
        .trim()
        .strip_prefix("ok bench ")
        .unwrap()
        .parse()
        .unwrap();
    ns / f64::from(n)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks harness=false benches to list tests
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

    if want("native") {
        // --- Native create-and-lock + unlock-and-delete ---
        let d = scratch(&base, "native");
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
            "",
            None,
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

    if want("threads") {
        // --- Threads on different directories ---
        let (da, db) = (scratch(&base, "thread-a"), scratch(&base, "thread-b"));
        let (la, lb) = (
            LockDir::new(open_dir(&da).unwrap()),
            LockDir::new(open_dir(&db).unwrap()),
        );
        let (ra, rb) = (
            std::sync::Mutex::new(floor::RawDir::open(&da)),
            std::sync::Mutex::new(floor::RawDir::open(&db)),
        );
        let ours = |l: &LockDir, ops: u32| {
            for _ in 0..ops {
                l.create_and_lock("lock-")
                    .unwrap()
                    .0
                    .unlock_and_delete()
                    .unwrap();
            }
        };
        let raw_ops = |r: &std::sync::Mutex<floor::RawDir>, ops: u32| {
            let mut r = r.lock().unwrap(); // one thread per directory: never contended
            for _ in 0..ops {
                r.create_lock_delete(true);
            }
        };
        let [one, two, raw_one, raw_two] = interleaved(
            rounds,
            &mut [
                &mut || time_per_op(1, || ours(&la, 2 * n)),
                &mut || {
                    time_per_op(1, || {
                        std::thread::scope(|s| {
                            s.spawn(|| ours(&la, n));
                            s.spawn(|| ours(&lb, n));
                        })
                    })
                },
                &mut || time_per_op(1, || raw_ops(&ra, 2 * n)),
                &mut || {
                    time_per_op(1, || {
                        std::thread::scope(|s| {
                            s.spawn(|| raw_ops(&ra, n));
                            s.spawn(|| raw_ops(&rb, n));
                        })
                    })
                },
            ],
        );
        let ops_s = |ns: f64| format!("{:.0} ops/s", f64::from(2 * n) / ns * 1e9);
        let r = one / two;
        t.row(
            "throughput, 2 threads in 2 directories (vs 1 thread, same total)",
            ops_s(two),
            ops_s(one),
            format!("{r:.2}x"),
            ">= 1.6x",
            Some(r >= 1.6),
        );
        let raw_r = raw_one / raw_two;
        t.row(
            "the same with raw syscalls: what the kernel and filesystem allow",
            ops_s(raw_two),
            ops_s(raw_one),
            format!("{raw_r:.2}x"),
            "(reference)",
            None,
        );
        let r = (one / two) / raw_r;
        t.row(
            "stagelock's 2-thread scaling relative to the raw syscalls' scaling",
            format!("{:.2}x", one / two),
            format!("{raw_r:.2}x"),
            format!("{r:.2}"),
            ">= 0.95",
            Some(r >= 0.95),
        );
    }

    // Compile the guests before anything is timed.
    stagelock_tests::component(BENCH_OPS);
    stagelock_tests::component(BENCH_HELD_COST);
    if want("guest") {
        // --- Guest vs native, per operation ---
        let gd = scratch(&base, "guest");
        let glocks = LockDir::new(open_dir(&gd).unwrap());
        let gheld = glocks.try_lock_path("busy.lock").unwrap();
        let [native_c, guest_c, native_t, guest_t, native_b, guest_b] = interleaved(
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
                "<= 1.15x",
                Some(r <= 1.15),
            );
        }
        drop(gheld);
    }

    if want("start") {
        // --- Component start ---
        let bytes = std::fs::read(BENCH_OPS).unwrap();
        let cold_engine = Engine::default();
        let cache_dir = scratch(&base, "cache");
        let mut cfg = Config::new();
        let mut cache = CacheConfig::new();
        cache.with_directory(&cache_dir);
        cfg.cache(Some(Cache::new(cache).unwrap()));
        let cached_engine = Engine::new(&cfg).unwrap();
        Component::new(&cached_engine, &bytes).unwrap(); // fills the cache
        let compile_rounds = if quick { 3 } else { 7 };
        let [cold, cached] = interleaved(
            compile_rounds,
            &mut [
                &mut || time_per_op(1, || drop(Component::new(&cold_engine, &bytes).unwrap())),
                &mut || time_per_op(1, || drop(Component::new(&cached_engine, &bytes).unwrap())),
            ],
        );
        let r = cold / cached;
        t.row(
            "load a component: from the on-disk cache (vs cold compile)",
            format!("{:.2} ms", cached / 1e6),
            format!("{:.2} ms", cold / 1e6),
            format!("{r:.0}x faster"),
            "",
            None,
        );

        let mut pooling = Config::new();
        pooling.allocation_strategy(InstanceAllocationStrategy::pooling());
        let pool_engine = Engine::new(&pooling).unwrap();
        let inst_n = if quick { 50 } else { 1000 };
        let fresh_store =
            |engine: &Engine| Store::new(engine, PluginState::new(WasiCtxBuilder::new().build()));
        let instantiate_with = |engine: &Engine| {
            let component = Component::new(engine, &bytes).unwrap();
            let linker = plugin_linker(engine).unwrap();
            let pre = linker.instantiate_pre(&component).unwrap();
            let pre_ns = time_per_op(inst_n, || {
                let mut store = fresh_store(engine);
                pre.instantiate(&mut store).unwrap();
            });
            let plain_ns = time_per_op(inst_n, || {
                let mut store = fresh_store(engine);
                linker.instantiate(&mut store, &component).unwrap();
            });
            (pre_ns, plain_ns)
        };
        let (pre_ns, plain_ns) = instantiate_with(&cold_engine);
        let (pool_pre_ns, _) = instantiate_with(&pool_engine);
        let best = pre_ns.min(pool_pre_ns);
        t.row(
            "instantiate a fresh store, `InstancePre`, on-demand (vs `Linker::instantiate`)",
            us(pre_ns, 2),
            us(plain_ns, 2),
            format!("{:.2}x", pre_ns / plain_ns),
            "<= 50 µs",
            Some(pre_ns <= 50_000.0),
        );
        t.row(
            "instantiate a fresh store, `InstancePre`, pooling allocator",
            us(pool_pre_ns, 2),
            us(plain_ns, 2),
            format!("{:.2}x", pool_pre_ns / plain_ns),
            "<= 50 µs",
            Some(best <= 50_000.0),
        );
    }

    if want("run") {
        // --- stagelock run, wall clock ---
        let bin = stagelock_tests::stagelock_bin(true);
        let run_dir = scratch(&base, "run");
        let run_cache = scratch(&base, "run-cache");
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

    if want("memory") {
        // --- Memory and descriptors per held lock ---
        const HELD: usize = 10_000;
        let md = scratch(&base, "memory");
        let mlocks = LockDir::new(open_dir(&md).unwrap());
        let mdir = open_dir(&md).unwrap();
        let mut held: Vec<StagingLock> = Vec::with_capacity(HELD);
        // The `&Dir` variant takes two descriptors per lock: hold fewer to stay under RLIMIT_NOFILE.
        for (what, shared, count) in [
            ("`LockDir`", true, HELD),
            ("`StagingLock::create_and_lock(&Dir)`", false, HELD / 4),
        ] {
            let (heap0, fds0) = (LIVE.load(Ordering::SeqCst), open_fds());
            for _ in 0..count {
                let (lock, _) = if shared {
                    mlocks.create_and_lock("lock-")
                } else {
                    StagingLock::create_and_lock(&mdir, "lock-")
                }
                .unwrap();
                held.push(lock);
            }
            let heap = (LIVE.load(Ordering::SeqCst) - heap0) as f64 / count as f64;
            let fds = (open_fds() - fds0) as f64 / count as f64;
            // The `&Dir` convenience keeps its own duplicate of the directory, by design.
            let (target, met) = if shared {
                ("<= 1 fd, <= 256 B", Some(fds <= 1.0 && heap <= 256.0))
            } else {
                ("(2 fds by design)", None)
            };
            t.row(
                &format!("per held lock ({count} held), native {what}: descriptors / heap bytes"),
                format!("{fds:.2} fd, {heap:.0} B"),
                format!("+{} B inline", std::mem::size_of::<StagingLock>()),
                String::new(),
                target,
                met,
            );
            for lock in held.drain(..) {
                lock.unlock_and_delete().unwrap();
            }
        }
        let (heap, fds) = bench_held_cost(&md, HELD);
        t.row(
            "per held lock (10000 held), guest, host side: descriptors / heap bytes",
            format!("{fds:.2} fd, {heap:.0} B"),
            String::new(),
            String::new(),
            "<= 1 fd, <= 256 B",
            Some(fds <= 1.0 && heap <= 256.0),
        );
    }

    if want("held") {
        // --- Many locks held at once through one `LockDir` ---
        let mut counts: [usize; 2] = if quick {
            [1_000, 10_000]
        } else {
            [10_000, 100_000]
        };
        let rounds = if quick { 1 } else { 3 };
        let mut raised = raise_nofile(counts[1] as u64 + 1_000);
        if let Err(why) = &raised {
            // Without CAP_SYS_RESOURCE the hard limit is the ceiling: hold as many as it allows.
            let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum;
            let most = hard.map_or(usize::MAX, |h| h.saturating_sub(1_000) as usize);
            let most = most / 1_000 * 1_000;
            if most >= 2_000 {
                eprintln!(
                    "  held: {why}; holding {most} locks instead of {}",
                    counts[1]
                );
                counts = [most / 10, most]; // the same tenfold step
                raised = raise_nofile(most as u64 + 1_000);
            }
        }
        match raised {
            Err(why) => eprintln!("  held: skipped, {why}"),
            Ok(()) => {
                let hd = scratch(&base, "held");
                let locks = LockDir::new(open_dir(&hd).unwrap());
                // Per count: ns per take, ns per release, heap bytes and RSS bytes per held lock.
                let mut samples = vec![[Vec::new(), Vec::new(), Vec::new(), Vec::new()]; 2];
                for _ in 0..rounds {
                    for (k, &count) in counts.iter().enumerate() {
                        let mut held: Vec<StagingLock> = Vec::with_capacity(count);
                        let (heap0, rss0) = (LIVE.load(Ordering::SeqCst), rss_bytes());
                        let take = time_per_op(count as u32, || {
                            held.push(locks.create_and_lock("lock-").unwrap().0)
                        });
                        let heap = (LIVE.load(Ordering::SeqCst) - heap0) as f64 / count as f64;
                        let rss = rss_bytes().saturating_sub(rss0) as f64 / count as f64;
                        let mut all = held.drain(..);
                        let release = time_per_op(count as u32, || {
                            all.next().unwrap().unlock_and_delete().unwrap()
                        });
                        drop(all);
                        for (i, v) in [take, release, heap, rss].into_iter().enumerate() {
                            samples[k][i].push(v);
                        }
                    }
                }
                let m: Vec<[f64; 4]> = samples.into_iter().map(|s| s.map(median)).collect();
                let (small, big) = (counts[0], counts[1]);
                for (what, i) in [("take", 0), ("release (unlock-and-delete)", 1)] {
                    let r = m[1][i] / m[0][i];
                    t.row(
                        &format!("{what} {big} held locks in one `LockDir`, per lock (vs {small})"),
                        us(m[1][i], 2),
                        us(m[0][i], 2),
                        format!("{r:.2}x"),
                        "<= 1.25x (linear)",
                        Some(r <= 1.25),
                    );
                }
                let inline = std::mem::size_of::<StagingLock>() as f64;
                let per_lock = inline + m[1][2];
                t.row(
                    &format!("memory per held lock ({big} held), `LockDir`: inline + heap"),
                    format!("{per_lock:.0} B"),
                    format!("{inline:.0} B inline + {:.0} B heap", m[1][2]),
                    format!("RSS {:.0} B/lock", m[1][3]),
                    "<= 256 B",
                    Some(per_lock <= 256.0),
                );
                let _ = std::fs::remove_dir_all(&hd);
            }
        }
    }

    if want("recover") {
        // --- Recovery of many stale stages: N threads vs the sequential recovery ---
        let sizes: [usize; 2] = if quick {
            [500, 2_000]
        } else {
            [10_000, 40_000]
        };
        let rounds = if quick { 1 } else { 3 };
        let rd = scratch(&base, "recover");
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

    if want("commit") {
        // --- Durable vs non-durable commit of a 100-file, 10 MB stage ---
        let d = scratch(&base, "commit");
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

    if want("wait") {
        // --- Waiting for a busy lock: wake-up latency and CPU, per kind of release ---
        let d = scratch(&base, "wait");
        let rounds = if quick { 5 } else { 21 };
        for release in [Release::UnlockAndDelete, Release::Exit, Release::UnlockKeep] {
            let (latency_ms, cpu_share) = bench_wait(&d, release, rounds);
            t.row(
                &format!(
                    "waiting lock: wake-up after {} (median of {rounds}, holds of {} ms)",
                    release.what(),
                    WAIT_HOLD.as_millis()
                ),
                format!("{latency_ms:.2} ms"),
                String::new(),
                String::new(),
                "<= 10 ms",
                Some(latency_ms <= 10.0),
            );
            t.row(
                &format!(
                    "waiting lock: CPU while waiting ({}), share of one core",
                    release.what()
                ),
                format!("{:.3}%", cpu_share * 100.0),
                String::new(),
                String::new(),
                "<= 1%",
                Some(cpu_share <= 0.01),
            );
        }
    }

    let _ = std::fs::remove_dir_all(&base);
    println!();
    println!(
        "Machine: {} cores, {}; locks in {}.",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu(),
        base.parent().unwrap().display()
    );
    println!();
    t.print();
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

/// Raises the soft descriptor limit to at least `want` (and the hard one, if allowed).
fn raise_nofile(want: u64) -> Result<(), String> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let now = getrlimit(Resource::Nofile);
    if now.current.is_none_or(|c| c >= want) {
        return Ok(());
    }
    let maximum = now.maximum.map(|m| m.max(want));
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(want),
            maximum,
        },
    )
    .map_err(|e| format!("cannot raise RLIMIT_NOFILE to {want} ({now:?}): {e}"))
}

/// The process's resident set, in bytes.
fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .unwrap();
    kib * 1024
}

/// Host-side cost of a guest holding `count` locks: measured while it holds 1, then count + 1.
fn bench_held_cost(dir: &Path, count: usize) -> (f64, f64) {
    std::thread::scope(|s| {
        let run = s.spawn(|| {
            GuestRun::new(&[&count.to_string()])
                .work(dir)
                .max_held(count + 10)
                .run(BENCH_HELD_COST)
                .succeeded()
        });
        let wait = |name: &str| {
            stagelock_tests::wait_until(&format!("the guest to reach {name}"), || {
                dir.join(name).exists()
            })
        };
        wait("a");
        let (heap0, fds0) = (LIVE.load(Ordering::SeqCst), open_fds());
        std::fs::write(dir.join("b"), "").unwrap();
        wait("c");
        let heap = (LIVE.load(Ordering::SeqCst) - heap0) as f64 / count as f64;
        let fds = (open_fds() - fds0) as f64 / count as f64;
        std::fs::write(dir.join("d"), "").unwrap();
        run.join().unwrap();
        (heap, fds)
    })
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

/// How long each holder of the waiting-lock bench holds before releasing: long enough for the
/// waiter's backoff to reach its longest pause, as in a real wait.
const WAIT_HOLD: std::time::Duration = std::time::Duration::from_millis(200);

/// How the holder of the waiting-lock bench releases.
#[derive(Clone, Copy, Debug)]
enum Release {
    /// Native `unlock_and_delete` (another thread, another open file description): the
    /// waiter must open the new file at the path.
    UnlockAndDelete,
    /// A Python `fcntl.lockf` holder process exits without unlocking (a crash).
    Exit,
    /// A Python `fcntl.lockf` holder unlocks (`LOCK_UN`) and keeps the file and its life:
    /// containers/storage's `Unlock`.
    UnlockKeep,
}

impl Release {
    fn what(self) -> &'static str {
        match self {
            Release::UnlockAndDelete => "unlock-and-delete",
            Release::Exit => "holder exit",
            Release::UnlockKeep => "unlock keeping the file (`lockf` `LOCK_UN`)",
        }
    }
}

/// The calling thread's CPU time.
fn thread_cpu() -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, exclusively borrowed timespec the call fills in.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// A Python holder that prints `held`, and on stdin EOF releases as `release` says, printing
/// the wall-clock nanoseconds just before releasing (so exit time counts against us).
const PYTHON_TIMED_HOLDER: &str = r#"
import fcntl, os, sys, time
f = open(sys.argv[1], "a")
fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
print("held", flush=True)
sys.stdin.read()
if sys.argv[2] == "exit":
    print(time.time_ns(), flush=True)
    os._exit(0)
t = time.time_ns()
fcntl.lockf(f, fcntl.LOCK_UN)
print(t, flush=True)
time.sleep(1)
"#;

/// Median wake-up latency (ms) of `StagingLock::lock_path(.., Wait::Forever)` after `release`,
/// and the waiting thread's CPU time over its wall time, over `rounds` waits.
fn bench_wait(d: &Path, release: Release, rounds: usize) -> (f64, f64) {
    use stagelock::Wait;
    use stagelock_tests::now_ns;
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let dir = open_dir(d).unwrap();
    let name = "wait.lock";
    let (mut latencies, mut cpu, mut wall) = (Vec::new(), 0.0, 0.0);
    for _ in 0..rounds {
        let _ = std::fs::remove_file(d.join(name));
        // The holder takes the lock, then the waiter starts waiting.
        let mut native = None;
        let mut child = None;
        match release {
            Release::UnlockAndDelete => {
                native = Some(StagingLock::try_lock_path(&dir, name).unwrap());
            }
            Release::Exit | Release::UnlockKeep => {
                let how = if matches!(release, Release::Exit) {
                    "exit"
                } else {
                    "unlock"
                };
                let mut c = Command::new("python3")
                    .args(["-c", PYTHON_TIMED_HOLDER])
                    .arg(d.join(name))
                    .arg(how)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap();
                let mut out = BufReader::new(c.stdout.take().unwrap());
                let mut line = String::new();
                out.read_line(&mut line).unwrap();
                assert_eq!(line, "held\n");
                child = Some((c, out));
            }
        }
        let (acquired, waited_cpu, waited_wall) = std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                let (cpu0, wall0) = (thread_cpu(), Instant::now());
                let lock = StagingLock::lock_path(&dir, name, Wait::Forever).unwrap();
                let at = now_ns();
                let (cpu, wall) = (thread_cpu() - cpu0, wall0.elapsed());
                lock.unlock_and_delete().unwrap();
                (at, cpu, wall)
            });
            std::thread::sleep(WAIT_HOLD);
            let released = match (native.take(), child.as_mut()) {
                (Some(lock), _) => {
                    let at = now_ns();
                    lock.unlock_and_delete().unwrap();
                    at
                }
                (None, Some((c, out))) => {
                    drop(c.stdin.take());
                    let mut line = String::new();
                    out.read_line(&mut line).unwrap();
                    line.trim().parse::<u128>().unwrap()
                }
                (None, None) => unreachable!(),
            };
            let (at, cpu, wall) = waiter.join().unwrap();
            (at.saturating_sub(released), cpu, wall)
        });
        if let Some((mut c, _)) = child {
            let _ = c.kill();
            let _ = c.wait();
        }
        latencies.push(acquired as f64 / 1e6);
        cpu += waited_cpu.as_secs_f64();
        wall += waited_wall.as_secs_f64();
    }
    (median(latencies), cpu / wall)
}
