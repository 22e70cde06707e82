//! Guest components (built for wasm32-wasip2 by build.rs) taking staging locks through the
//! wasmtime host: against each other, native holders and foreign processes; escapes, grants,
//! handle drops, traps and the per-store cap.

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::Result;
use stagelock::{ErrorKind, StagingLock};
use stagelock_tests::{GuestHost, Holder, Scratch, Taken, lockable_by_other_process};
use stagelock_wasmtime::PluginState;
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// One engine and one compiled copy of each guest per test binary (compiling is the slow part).
struct Guests {
    host: GuestHost,
    lockctl: Component,
    demo: Component,
}

fn guests() -> &'static Guests {
    static GUESTS: OnceLock<Guests> = OnceLock::new();
    GUESTS.get_or_init(|| {
        let host = GuestHost::new();
        Guests {
            lockctl: host.load(env!("GUEST_LOCKCTL")),
            demo: host.load(env!("GUEST_DEMO")),
            host,
        }
    })
}

/// A directory granted to a guest.
struct Grant<'a>(&'a Path, &'a str, FsPerms);

/// A finished guest run; its store is kept alive until this is dropped.
struct Finished {
    stdout: String,
    stderr: String,
    /// `Ok` if `run` returned success, else the exit code or the trap.
    outcome: std::result::Result<(), String>,
    store: Store<PluginState>,
}

impl Finished {
    fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

fn run(
    component: &Component,
    grants: &[Grant],
    args: &[&str],
    max_held: Option<usize>,
) -> Finished {
    let (stdout, stderr) = (
        MemoryOutputPipe::new(1 << 20),
        MemoryOutputPipe::new(1 << 20),
    );
    let mut wasi = WasiCtxBuilder::new();
    wasi.stdout(stdout.clone())
        .stderr(stderr.clone())
        .arg("guest")
        .args(args);
    for Grant(host, guest, perms) in grants {
        wasi.preopened_dir(host, guest, *perms).unwrap();
    }
    let (store, outcome) = guests().host.run(component, &mut wasi, max_held);
    let text = |p: &MemoryOutputPipe| String::from_utf8_lossy(&p.contents()).into_owned();
    Finished {
        stdout: text(&stdout),
        stderr: text(&stderr),
        outcome,
        store,
    }
}

/// Runs `lockctl` with `steps` in a read-write grant of `dir` at `/work`.
fn lockctl(dir: &Path, steps: &[&str]) -> Finished {
    let done = run(
        &guests().lockctl,
        &[Grant(dir, "/work", FsPerms::ReadWrite)],
        steps,
        None,
    );
    assert_eq!(done.outcome, Ok(()), "stderr: {}", done.stderr);
    done
}

fn wait_for(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn native_busy(s: &Scratch, path: &str) -> bool {
    match StagingLock::try_lock_path(s.dir(), path) {
        Err(e) if e.kind() == ErrorKind::WouldBlock => true,
        Err(e) => panic!("{e}"),
        Ok(lock) => {
            drop(lock);
            false
        }
    }
}

#[test]
fn guests_in_two_stores_exclude_each_other() -> Result<()> {
    let s = Scratch::new()?;
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| {
            lockctl(
                s.path(),
                &[
                    "try",
                    "shared.lock",
                    "touch",
                    "a-holds",
                    "wait",
                    "b-done",
                    "unlock",
                ],
            )
        });
        let b = scope.spawn(|| {
            lockctl(
                s.path(),
                &["wait", "a-holds", "try", "shared.lock", "touch", "b-done"],
            )
        });
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(a.lines(), ["ok try shared.lock", "ok unlock"]);
    assert_eq!(b.lines().len(), 1);
    assert!(
        b.lines()[0].starts_with("err try WouldBlock: try-lock-path \"shared.lock\""),
        "{}",
        b.stdout
    );
    assert!(!s.join("shared.lock").exists());
    Ok(())
}

#[test]
fn a_guest_and_a_native_holder_exclude_each_other() -> Result<()> {
    let s = Scratch::new()?;
    let native = StagingLock::try_lock_path(s.dir(), "n.lock")?;
    let refused = lockctl(s.path(), &["try", "n.lock"]);
    assert!(
        refused.lines()[0].starts_with("err try WouldBlock"),
        "{}",
        refused.stdout
    );
    native.unlock_and_delete()?;

    std::thread::scope(|scope| -> Result<()> {
        let guest = scope.spawn(|| {
            lockctl(
                s.path(),
                &["try", "g.lock", "touch", "held", "wait", "done", "unlock"],
            )
        });
        wait_for(&s.join("held"));
        assert!(
            native_busy(&s, "g.lock"),
            "native taker refused while the guest holds"
        );
        assert!(
            !lockable_by_other_process(&s.join("g.lock"))?,
            "POSIX fcntl taker refused"
        );
        std::fs::write(s.join("done"), "")?;
        assert_eq!(
            guest.join().unwrap().lines(),
            ["ok try g.lock", "ok unlock"]
        );
        Ok(())
    })?;
    assert!(!s.join("g.lock").exists());
    Ok(())
}

#[test]
fn a_posix_fcntl_holder_in_another_process_excludes_guests() -> Result<()> {
    let s = Scratch::new()?;
    let (holder, taken) = Holder::python_lockf(&s.join("go.lock"))?;
    assert_eq!(taken, Taken::Held(String::new()));
    let refused = lockctl(s.path(), &["try", "go.lock"]);
    assert!(
        refused.lines()[0].starts_with("err try WouldBlock"),
        "{}",
        refused.stdout
    );
    holder.release()?;
    let taken = lockctl(s.path(), &["try", "go.lock", "unlock"]);
    assert_eq!(taken.lines(), ["ok try go.lock", "ok unlock"]);
    Ok(())
}

#[test]
fn guest_escapes_are_refused_and_create_nothing_outside() -> Result<()> {
    let outer = Scratch::new()?;
    outer.dir().create_dir("granted")?;
    outer.dir().create_dir("outside")?;
    std::os::unix::fs::symlink("../outside", outer.join("granted/out"))?;
    let abs = outer.join("outside/abs.lock");
    let steps = [
        "try",
        "../x.lock",
        "try",
        "../outside/x.lock",
        "try",
        "/etc/stagelock-x.lock",
        "try",
        abs.to_str().unwrap(),
        "try",
        "out/x.lock",
        "create",
        "../lock-",
        "create",
        "/tmp/lock-",
    ];
    let done = lockctl(&outer.join("granted"), &steps);
    let lines = done.lines();
    assert_eq!(lines.len(), 7, "{}", done.stdout);
    for line in &lines[..5] {
        assert!(
            line.starts_with("err try AccessDenied: try-lock-path"),
            "{line}"
        );
    }
    for line in &lines[5..] {
        assert!(line.starts_with("err create InvalidInput"), "{line}");
    }
    assert_eq!(outer.names()?, ["granted", "outside"]);
    assert_eq!(std::fs::read_dir(outer.join("outside"))?.count(), 0);
    assert!(!Path::new("/etc/stagelock-x.lock").exists());
    Ok(())
}

#[test]
fn read_only_grants_and_file_descriptors_are_refused() -> Result<()> {
    let s = Scratch::new()?;
    let grants = [Grant(s.path(), "/work", FsPerms::ReadOnly)];
    let done = run(
        &guests().lockctl,
        &grants,
        &["try", "x.lock", "create", "lock-"],
        None,
    );
    assert_eq!(done.outcome, Ok(()), "{}", done.stderr);
    let lines = done.lines();
    assert!(
        lines[0].starts_with("err try AccessDenied"),
        "{}",
        done.stdout
    );
    assert!(lines[0].contains("read-only"), "{}", done.stdout);
    assert!(
        lines[1].starts_with("err create AccessDenied"),
        "{}",
        done.stdout
    );
    assert!(s.names()?.is_empty(), "nothing created");

    let done = lockctl(s.path(), &["file", "plain.txt", "try", "x.lock"]);
    assert!(
        done.lines()[0].starts_with("err try NotADirectory"),
        "{}",
        done.stdout
    );
    assert_eq!(s.names()?, ["plain.txt"]);
    Ok(())
}

#[test]
fn subdirectory_descriptors_and_paths_work() -> Result<()> {
    let s = Scratch::new()?;
    s.dir().create_dir_all("staging/1")?;
    let done = lockctl(
        s.path(),
        &[
            "try",
            "staging/1/staging.lock",
            "subdir",
            "staging",
            "try",
            "1/staging.lock",
            "create",
            "lock-",
        ],
    );
    let lines = done.lines();
    assert_eq!(lines[0], "ok try staging/1/staging.lock");
    assert!(
        lines[1].starts_with("err try WouldBlock"),
        "same file through another descriptor"
    );
    assert!(lines[2].starts_with("ok create lock-"), "{}", done.stdout);
    Ok(())
}

#[test]
fn a_dropped_handle_releases_the_lock_and_keeps_the_file() -> Result<()> {
    let s = Scratch::new()?;
    let done = lockctl(
        s.path(),
        &["try", "d.lock", "drop", "try", "d.lock", "drop"],
    );
    assert_eq!(
        done.lines(),
        ["ok try d.lock", "ok drop", "ok try d.lock", "ok drop"]
    );
    assert_eq!(done.store.data().locks.held(), 0);
    assert!(
        s.join("d.lock").is_file(),
        "the file stays, as after a crash"
    );
    assert!(!native_busy(&s, "d.lock"));
    Ok(())
}

#[test]
fn a_trapped_guest_holds_until_its_store_drops_then_everything_is_released() -> Result<()> {
    let s = Scratch::new()?;
    let grants = [Grant(s.path(), "/work", FsPerms::ReadWrite)];
    let done = run(
        &guests().lockctl,
        &grants,
        &["try", "t.lock", "create", "c-", "trap"],
        None,
    );
    assert!(
        done.outcome.as_ref().is_err_and(|e| e.starts_with("trap")),
        "{:?}",
        done.outcome
    );
    let created = done.lines()[1]
        .strip_prefix("ok create ")
        .unwrap()
        .to_owned();
    assert_eq!(done.store.data().locks.held(), 2);
    assert!(
        native_busy(&s, "t.lock"),
        "still held while the store lives"
    );
    drop(done);
    assert!(!native_busy(&s, "t.lock"), "released with the store");
    assert!(!native_busy(&s, &created));
    assert!(
        s.join("t.lock").is_file() && s.join(&created).is_file(),
        "files stay"
    );
    Ok(())
}

#[test]
fn the_per_store_cap_gives_limit_reached() -> Result<()> {
    let s = Scratch::new()?;
    let grants = [Grant(s.path(), "/work", FsPerms::ReadWrite)];
    let steps = ["many", "5", "lock-", "unlock", "create", "again-"];
    let done = run(&guests().lockctl, &grants, &steps, Some(3));
    let lines = done.lines();
    assert!(
        lines[0].starts_with("err many 3 LimitReached"),
        "{}",
        done.stdout
    );
    assert!(lines[0].contains("limit"), "{}", done.stdout);
    assert_eq!(lines[1], "ok unlock");
    assert!(
        lines[2].starts_with("ok create again-"),
        "a freed slot can be used"
    );
    assert_eq!(
        done.store.data().locks.held(),
        0,
        "main's locks were dropped as it returned"
    );
    // The cap is per store: another guest is not affected.
    let other = lockctl(s.path(), &["many", "4", "other-"]);
    assert_eq!(other.lines(), ["ok many 4"]);
    Ok(())
}

#[test]
fn guests_stage_and_commit_in_both_layouts() -> Result<()> {
    for layout in ["pairs", "per-dir"] {
        let s = Scratch::new()?;
        let steps = [
            "area",
            layout,
            "stage",
            "stage-write",
            "a.txt",
            "hello",
            "commit",
            "out",
        ];
        let done = lockctl(s.path(), &steps);
        let lines = done.lines();
        assert_eq!(lines[0], "ok area");
        assert!(lines[1].starts_with("ok stage "), "{}", done.stdout);
        assert_eq!(lines[2], "ok commit", "{layout}: {}", done.stdout);
        assert_eq!(std::fs::read_to_string(s.join("out/a.txt"))?, "hello");
        assert_eq!(s.names()?, ["out"], "{layout}: lock and stage gone");
        assert_eq!(done.store.data().locks.held(), 0);
    }
    Ok(())
}

#[test]
fn a_guest_commit_refuses_to_clobber_and_gets_its_stage_back() -> Result<()> {
    let s = Scratch::new()?;
    s.dir().create_dir("out")?;
    s.dir().write("out/old", "old")?;
    let steps = [
        "area",
        "pairs",
        "stage",
        "stage-write",
        "new",
        "new",
        "commit",
        "out",
        "commit",
        "../escape",
        "commit-replace",
        "out",
    ];
    let done = lockctl(s.path(), &steps);
    let lines = done.lines();
    assert!(
        lines[2].starts_with("err commit AlreadyExists: commit \"out\""),
        "{}",
        done.stdout
    );
    assert!(
        lines[3].starts_with("err commit AccessDenied"),
        "{}",
        done.stdout
    );
    assert_eq!(
        lines[4], "ok commit-replace",
        "the stage came back both times"
    );
    assert_eq!(std::fs::read_to_string(s.join("out/new"))?, "new");
    assert!(!s.join("out/old").exists());
    assert_eq!(s.names()?, ["out"]);
    Ok(())
}

#[test]
fn a_guest_recovers_a_stage_whose_native_holder_was_killed() -> Result<()> {
    let s = Scratch::new()?;
    let start = || {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_lock-holder"));
        c.args(["stage", s.path().to_str().unwrap(), "pairs"]);
        Holder::start(c)
    };
    let (dead, taken) = start()?;
    let Taken::Held(dead_id) = taken else {
        panic!("{taken:?}")
    };
    let (alive, taken) = start()?;
    let Taken::Held(live_id) = taken else {
        panic!("{taken:?}")
    };
    dead.kill()?;
    let done = lockctl(
        s.path(),
        &["area", "pairs", "recover-dry", "recover", "recover"],
    );
    let lines = done.lines();
    let held = format!("skipped={live_id}:held by a live builder");
    assert_eq!(lines[1], format!("ok recover-dry removed={dead_id} {held}"));
    assert_eq!(lines[2], format!("ok recover removed={dead_id} {held}"));
    assert_eq!(
        lines[3],
        format!("ok recover removed= {held}"),
        "idempotent"
    );
    alive.release()?;
    assert!(s.names()?.is_empty());
    Ok(())
}

#[test]
fn a_guest_at_its_cap_can_still_open_areas_and_commit() -> Result<()> {
    let s = Scratch::new()?;
    let grants = [Grant(s.path(), "/work", FsPerms::ReadWrite)];
    let steps = [
        "try",
        "a.lock",
        "area",
        "pairs",
        "stage",
        "unlock",
        "stage",
        "stage-write",
        "f",
        "x",
        "commit",
        "out",
    ];
    let done = run(&guests().lockctl, &grants, &steps, Some(1));
    let lines = done.lines();
    assert_eq!(lines[1], "ok area", "opening an area takes no lock");
    assert!(
        lines[2].starts_with("err stage LimitReached"),
        "{}",
        done.stdout
    );
    assert!(lines[4].starts_with("ok stage "), "{}", done.stdout);
    assert_eq!(
        lines[5], "ok commit",
        "a commit at the cap frees, not takes, a lock"
    );
    assert_eq!(std::fs::read_to_string(s.join("out/f"))?, "x");
    Ok(())
}

#[test]
fn stages_count_against_the_cap_and_are_aborted_when_the_store_drops() -> Result<()> {
    let s = Scratch::new()?;
    let grants = [Grant(s.path(), "/work", FsPerms::ReadWrite)];
    let steps = [
        "area",
        "per-dir",
        "stage",
        "stage-write",
        "f",
        "x",
        "stage",
        "trap",
    ];
    let done = run(&guests().lockctl, &grants, &steps, Some(1));
    assert!(
        done.lines()[2].starts_with("err stage LimitReached"),
        "{}",
        done.stdout
    );
    assert!(done.outcome.as_ref().is_err_and(|e| e.starts_with("trap")));
    assert_eq!(done.store.data().locks.held(), 1);
    assert_eq!(
        s.names()?.len(),
        1,
        "the stage directory, while the store lives"
    );
    drop(done);
    assert!(s.names()?.is_empty(), "aborted with the store");
    Ok(())
}

#[test]
fn the_demo_stages_commits_and_refuses_a_second_instance() -> Result<()> {
    let s = Scratch::new()?;
    s.dir().create_dir("src")?;
    s.dir().write("src/a.txt", "alpha")?;
    s.dir().write("src/b.txt", "beta")?;
    let grants = [Grant(s.path(), "/work", FsPerms::ReadWrite)];
    let demo = &guests().demo;
    let (build, second) = std::thread::scope(|scope| {
        let build = scope.spawn(|| run(demo, &grants, &["build"], None));
        let second = scope.spawn(|| run(demo, &grants, &["second"], None));
        (build.join().unwrap(), second.join().unwrap())
    });
    assert_eq!(build.outcome, Ok(()), "{}", build.stderr);
    assert_eq!(second.outcome, Ok(()), "{}", second.stderr);
    assert!(
        second.stdout.contains("refused, as it should be"),
        "{}",
        second.stdout
    );
    assert!(second.stdout.contains("escapes"), "{}", second.stdout);
    assert!(
        build.stdout.contains("unlock-and-delete"),
        "{}",
        build.stdout
    );
    assert_eq!(std::fs::read_to_string(s.join("out/a.txt"))?, "ALPHA");
    assert_eq!(std::fs::read_to_string(s.join("out/b.txt"))?, "BETA");
    assert_eq!(
        std::fs::read_dir(s.join("staging"))?.count(),
        0,
        "lock and temp dir gone"
    );
    Ok(())
}

#[test]
fn async_embedders_link_the_same_interface() -> Result<()> {
    use wasmtime_wasi::p2::bindings::Command as AsyncCommand;
    let s = Scratch::new()?;
    let engine = Engine::default(); // wasmtime 48 supports async calls on any engine

    let component =
        Component::from_file(&engine, env!("GUEST_LOCKCTL")).map_err(anyhow::Error::from)?;
    let mut linker = Linker::<PluginState>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(anyhow::Error::from)?;
    stagelock_wasmtime::add_to_linker_async(&mut linker).map_err(anyhow::Error::from)?;
    let stdout = MemoryOutputPipe::new(1 << 16);
    let mut wasi = WasiCtxBuilder::new();
    wasi.stdout(stdout.clone()).args(&[
        "guest", "try", "a.lock", "create", "lock-", "unlock", "unlock",
    ]);
    wasi.preopened_dir(s.path(), "/work", FsPerms::ReadWrite)
        .map_err(anyhow::Error::from)?;
    let mut store = Store::new(&engine, PluginState::new(wasi.build()));
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let result = runtime.block_on(async {
        let command = AsyncCommand::instantiate_async(&mut store, &component, &linker).await?;
        command.wasi_cli_run().call_run(&mut store).await
    });
    assert_eq!(result.map_err(|e| format!("{e:?}")), Ok(Ok(())));
    let out = String::from_utf8_lossy(&stdout.contents()).into_owned();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "ok try a.lock");
    assert!(lines[1].starts_with("ok create lock-"));
    assert_eq!(lines[2..], ["ok unlock", "ok unlock"]);
    assert!(s.names()?.is_empty());
    Ok(())
}

#[test]
fn every_guest_has_a_host_test() -> Result<()> {
    let bins = Path::new(env!("CARGO_MANIFEST_DIR")).join("guests/src/bin");
    // Guests run through `stagelock run` have their host tests in run_cli.rs.
    let this = concat!(include_str!("component.rs"), include_str!("run_cli.rs"));
    for entry in std::fs::read_dir(bins)? {
        let stem = entry?
            .path()
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .to_uppercase();
        let var = format!("env!(\"GUEST_{stem}\")");
        assert!(
            this.contains(&var),
            "guest {stem} is built but no test runs it"
        );
    }
    Ok(())
}
