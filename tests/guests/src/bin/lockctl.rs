//! `lockctl`: a guest that runs a script of lock operations given as arguments, printing one
//! line per step, so that host tests can drive any scenario with one component.
//!
//! Steps (each a few arguments):
//! - `dir GUEST_PATH`: work in that preopened directory (default: the first preopen)
//! - `subdir PATH`: work in a subdirectory opened beneath the current one
//! - `file PATH`: use a *file* descriptor as the directory (to test the refusal)
//! - `try PATH`, `create PATTERN`: take a lock and keep it on a stack
//! - `unlock`, `drop`: unlock-and-delete or drop the newest lock
//! - `many N PATTERN`: create up to N more locks; print how many, and the first error
//! - `touch NAME`, `wait NAME`: create a marker file, or wait (up to 60 s) for one, in the
//!   current directory (how tests order steps across instances)
//! - `trap`: trap while holding whatever is held
//! - `exit N`: exit with status N; `env NAME`: print `ok env NAME=VALUE`
//! - `area pairs|per-dir`: open a staging area on the current directory
//! - `stage`: start a stage (kept on a stack); `stage-write NAME TEXT`: write a file into the
//!   newest stage through its descriptor; `commit DEST` / `commit-replace DEST`: commit it
//!   beneath the current directory (handed back on failure); `stage-abort`: abort it
//! - `recover` / `recover-dry`: print `ok recover removed=ID,... skipped=ID:why,...`
//! - `bench-create N PATTERN`, `bench-try N PATH`, `bench-busy N PATH`: N create-and-lock +
//!   unlock-and-delete cycles, N try-lock-path + unlock-and-delete cycles, or N refused
//!   try-locks of a held path; print `ok bench NANOSECONDS` (timed inside the guest)
//! - `stress K M TAG`: M acquisitions of `s<k>.lock` (k cycling over K paths), each printing
//!   `TAG PATH ACQUIRE_NS RELEASE_NS` (wall clock) stamped while held
//! - `try-loop N PATH`: N try-locks of PATH, each released at once; print
//!   `ok try-loop ok=A <kind>=B ...` counting the outcomes
//! - `try-nul`, `create-nul`: a path or pattern with a NUL byte in it
//!
//! Output: `ok STEP [DETAIL]` or `err STEP KIND: MESSAGE`.

use std::time::{Duration, Instant};

use stagelock_guest::filesystem::{DescriptorFlags, OpenFlags, PathFlags};
use stagelock_guest::{
    Descriptor, Error, ErrorKind, Layout, Report, Stage, StagingArea, StagingLock, preopened_dirs,
};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut preopens = preopened_dirs();
    let (first, _) = preopens.first().expect("no directory was granted");
    let mut dir: Descriptor = reopen(first, ".", DescriptorFlags::MUTATE_DIRECTORY);
    let mut held: Vec<StagingLock> = Vec::new();
    let mut area: Option<StagingArea> = None;
    let mut stages: Vec<Stage> = Vec::new();
    let mut steps = args.iter().map(String::as_str);
    while let Some(step) = steps.next() {
        let mut arg = || steps.next().expect("missing argument");
        match step {
            "dir" => {
                let want = arg();
                let i = preopens
                    .iter()
                    .position(|(_, p)| p == want)
                    .expect("no such preopen");
                dir = preopens.remove(i).0;
                println!("ok dir {want}");
            }
            "subdir" => dir = reopen(&dir, arg(), DescriptorFlags::MUTATE_DIRECTORY),
            "file" => {
                let path = arg();
                dir = dir
                    .open_at(
                        PathFlags::empty(),
                        path,
                        OpenFlags::CREATE,
                        DescriptorFlags::WRITE,
                    )
                    .expect("open file");
            }
            "try" => report(
                "try",
                StagingLock::try_lock_path(&dir, arg()),
                &mut held,
                |l| l.path(),
            ),
            "create" => report(
                "create",
                StagingLock::create_and_lock(&dir, arg()),
                &mut held,
                |(_, n)| n.clone(),
            ),
            "unlock" => match held.pop().expect("nothing held").unlock_and_delete() {
                Ok(()) => println!("ok unlock"),
                Err(e) => print_err("unlock", &e),
            },
            "drop" => {
                drop(held.pop().expect("nothing held"));
                println!("ok drop");
            }
            "many" => {
                let n: usize = arg().parse().expect("a count");
                let pattern = arg();
                let mut taken = 0;
                let mut first_err = None;
                while taken < n {
                    match StagingLock::create_and_lock(&dir, pattern) {
                        Ok((lock, _)) => {
                            held.push(lock);
                            taken += 1;
                        }
                        Err(e) => {
                            first_err = Some(e);
                            break;
                        }
                    }
                }
                match first_err {
                    None => println!("ok many {taken}"),
                    Some(e) => println!("err many {taken} {:?}: {e}", e.kind()),
                }
            }
            "touch" => {
                dir.open_at(
                    PathFlags::empty(),
                    arg(),
                    OpenFlags::CREATE,
                    DescriptorFlags::WRITE,
                )
                .expect("touch");
            }
            "wait" => {
                let name = arg();
                let start = Instant::now();
                while dir.stat_at(PathFlags::empty(), name).is_err() {
                    assert!(
                        start.elapsed() < Duration::from_secs(60),
                        "waited too long for {name}"
                    );
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            "exit" => std::process::exit(arg().parse().expect("a status")),
            "env" => {
                let name = arg();
                println!("ok env {name}={}", std::env::var(name).unwrap_or_default());
            }
            "area" => {
                let layout = match arg() {
                    "pairs" => Layout::Pairs,
                    _ => Layout::PerDirectory,
                };
                match StagingArea::open(&dir, layout) {
                    Ok(a) => {
                        area = Some(a);
                        println!("ok area");
                    }
                    Err(e) => print_err("area", &e),
                }
            }
            "stage" => match area.as_ref().expect("no area").stage() {
                Ok(stage) => {
                    println!("ok stage {} {}", stage.id(), stage.path());
                    stages.push(stage);
                }
                Err(e) => print_err("stage", &e),
            },
            "stage-write" => {
                let (name, text) = (arg(), arg());
                let stage_dir = stages.last().expect("no stage").dir().expect("stage dir");
                let file = stage_dir
                    .open_at(
                        PathFlags::empty(),
                        name,
                        OpenFlags::CREATE,
                        DescriptorFlags::WRITE,
                    )
                    .expect("create in stage");
                file.write(text.as_bytes(), 0).expect("write in stage");
            }
            step @ ("commit" | "commit-replace") => {
                let dest = arg();
                let stage = stages.pop().expect("no stage");
                let result = if step == "commit" {
                    stage.commit(&dir, dest)
                } else {
                    stage.commit_replacing(&dir, dest)
                };
                match result {
                    Ok(()) => println!("ok {step}"),
                    Err(failed) => {
                        print_err(step, &failed.error);
                        stages.extend(failed.stage);
                    }
                }
            }
            "stage-abort" => match stages.pop().expect("no stage").abort() {
                Ok(()) => println!("ok stage-abort"),
                Err(e) => print_err("stage-abort", &e),
            },
            step @ ("recover" | "recover-dry") => {
                let area = area.as_ref().expect("no area");
                let report = if step == "recover" {
                    area.recover_stale()
                } else {
                    area.recover_stale_dry_run()
                };
                match report {
                    Ok(report) => println!("ok {step} {}", summary(&report)),
                    Err(e) => print_err(step, &e),
                }
            }
            step @ ("bench-create" | "bench-try" | "bench-busy") => {
                let n: u32 = arg().parse().expect("a count");
                let target = arg();
                let start = Instant::now();
                for _ in 0..n {
                    match step {
                        "bench-create" => {
                            let (lock, _) = StagingLock::create_and_lock(&dir, target).unwrap();
                            lock.unlock_and_delete().unwrap();
                        }
                        "bench-try" => {
                            StagingLock::try_lock_path(&dir, target)
                                .unwrap()
                                .unlock_and_delete()
                                .unwrap();
                        }
                        _ => {
                            StagingLock::try_lock_path(&dir, target).unwrap_err();
                        }
                    }
                }
                println!("ok bench {}", start.elapsed().as_nanos());
            }
            "stress" => {
                let k: usize = arg().parse().expect("K");
                let m: usize = arg().parse().expect("M");
                let tag = arg();
                let mut i = 0;
                while i < m {
                    let path = format!("s{}.lock", i % k);
                    let lock = match StagingLock::try_lock_path(&dir, &path) {
                        Ok(lock) => lock,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                        Err(e) => panic!("{e}"),
                    };
                    let acquired = wall_ns();
                    for _ in 0..200 {
                        std::hint::spin_loop();
                    }
                    let released = wall_ns();
                    lock.unlock_and_delete().unwrap();
                    println!("{tag} {path} {acquired} {released}");
                    i += 1;
                }
            }
            "try-loop" => {
                let n: usize = arg().parse().expect("N");
                let path = arg();
                let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
                for _ in 0..n {
                    let key = match StagingLock::try_lock_path(&dir, path) {
                        Ok(lock) => {
                            drop(lock);
                            "ok".to_owned()
                        }
                        Err(e) => format!("{:?}", e.kind()),
                    };
                    *outcomes.entry(key).or_default() += 1;
                }
                let counts: Vec<String> =
                    outcomes.iter().map(|(k, v)| format!("{k}={v}")).collect();
                println!("ok try-loop {}", counts.join(" "));
            }
            "try-nul" => report(
                "try",
                StagingLock::try_lock_path(&dir, "a\0b"),
                &mut held,
                |l| l.path(),
            ),
            "create-nul" => report(
                "create",
                StagingLock::create_and_lock(&dir, "a\0*"),
                &mut held,
                |(_, n)| n.clone(),
            ),
            "trap" => panic!("trap requested while holding {} locks", held.len()),
            other => panic!("unknown step {other:?}"),
        }
    }
}

/// Opens `path` beneath `dir` as a directory with `flags`.
fn reopen(dir: &Descriptor, path: &str, flags: DescriptorFlags) -> Descriptor {
    dir.open_at(PathFlags::empty(), path, OpenFlags::DIRECTORY, flags)
        .unwrap_or_else(|e| panic!("open directory {path}: {e:?}"))
}

fn report<T>(
    step: &str,
    result: Result<T, Error>,
    held: &mut Vec<StagingLock>,
    detail: impl Fn(&T) -> String,
) where
    T: Into<Held>,
{
    match result {
        Ok(taken) => {
            println!("ok {step} {}", detail(&taken));
            held.push(taken.into().0);
        }
        Err(e) => print_err(step, &e),
    }
}

/// Wall-clock nanoseconds (the clock native and CLI stress holders stamp with too).
fn wall_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos()
}

fn summary(report: &Report) -> String {
    let mut removed: Vec<&str> = report
        .removed
        .iter()
        .map(|(id, _, _)| id.as_str())
        .collect();
    removed.sort();
    let skipped: Vec<String> = report
        .skipped
        .iter()
        .map(|(id, why)| format!("{id}:{why}"))
        .collect();
    format!(
        "removed={} skipped={}",
        removed.join(","),
        skipped.join(",")
    )
}

fn print_err(step: &str, e: &Error) {
    println!("err {step} {:?}: {e}", e.kind());
}

struct Held(StagingLock);

impl From<StagingLock> for Held {
    fn from(lock: StagingLock) -> Self {
        Held(lock)
    }
}

impl From<(StagingLock, String)> for Held {
    fn from((lock, _): (StagingLock, String)) -> Self {
        Held(lock)
    }
}
