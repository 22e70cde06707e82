//! `stagelock run`: grants, arguments, environment, exit statuses and the compilation cache.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use anyhow::Result;
use stagelock_tests::Scratch;

fn stagelock_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| stagelock_tests::stagelock_bin(false))
}

fn run(cache: &Path, args: &[&str]) -> Output {
    Command::new(stagelock_bin())
        .arg("run")
        .args(args)
        .env("STAGELOCK_CACHE_DIR", cache)
        .output()
        .expect("run stagelock")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const LOCKCTL: &str = env!("GUEST_LOCKCTL");

#[test]
fn run_grants_directories_and_passes_arguments_and_environment() -> Result<()> {
    let (s, cache) = (Scratch::new()?, Scratch::new()?);
    let grant = format!("{}::/work", s.path().display());
    let out = run(
        cache.path(),
        &[
            LOCKCTL,
            "--dir",
            &grant,
            "--env",
            "GREETING=hi there",
            "--",
            "try",
            "a.lock",
            "env",
            "GREETING",
            "unlock",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "ok try a.lock\nok env GREETING=hi there\nok unlock\n"
    );
    assert!(s.names()?.is_empty());
    Ok(())
}

#[test]
fn run_exits_with_the_component_status() -> Result<()> {
    let (s, cache) = (Scratch::new()?, Scratch::new()?);
    let grant = format!("{}::/work", s.path().display());
    // wasi:cli/exit@0.2 carries success or failure, not a number: Rust's exit(7) arrives as 1.
    let out = run(cache.path(), &[LOCKCTL, "--dir", &grant, "--", "exit", "7"]);
    assert_eq!(out.status.code(), Some(1));
    let out = run(
        cache.path(),
        &[LOCKCTL, "--dir", &grant, "--", "exit", "0", "trap"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "exit(0) ends the run before the trap"
    );
    let out = run(
        cache.path(),
        &[LOCKCTL, "--dir", &grant, "--", "try", "t.lock", "trap"],
    );
    assert_eq!(out.status.code(), Some(134), "a trap exits 134");
    assert!(
        text(&out.stderr).contains("trapped"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        s.join("t.lock").is_file(),
        "the trapped guest's lock file stays"
    );
    Ok(())
}

#[test]
fn run_read_only_grants_refuse_locks() -> Result<()> {
    let (s, cache) = (Scratch::new()?, Scratch::new()?);
    let grant = format!("{}::/work", s.path().display());
    let out = run(
        cache.path(),
        &[LOCKCTL, "--dir-ro", &grant, "--", "try", "x.lock"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("err try AccessDenied"),
        "{}",
        text(&out.stdout)
    );
    assert!(s.names()?.is_empty());
    Ok(())
}

#[test]
fn run_reports_bad_input_on_one_line_with_exit_1() -> Result<()> {
    let cache = Scratch::new()?;
    let out = run(cache.path(), &["/no/such/component.wasm"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("/no/such/component.wasm"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    let out = run(cache.path(), &[LOCKCTL, "--dir", "/no/such/dir::/work"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("/no/such/dir"),
        "{}",
        text(&out.stderr)
    );
    let out = run(cache.path(), &[LOCKCTL, "--env", "NOEQUALS"]);
    assert_eq!(out.status.code(), Some(2), "usage error");
    Ok(())
}

#[test]
fn run_caches_compiled_components_on_disk() -> Result<()> {
    let (s, cache) = (Scratch::new()?, Scratch::new()?);
    let grant = format!("{}::/work", s.path().display());
    let out = run(cache.path(), &[LOCKCTL, "--dir", &grant, "--", "exit", "0"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let files = walk(cache.path());
    assert!(!files.is_empty(), "the compiled component was cached");
    let out = run(
        cache.path(),
        &[LOCKCTL, "--no-cache", "--dir", &grant, "--", "exit", "0"],
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        walk(cache.path()),
        files,
        "--no-cache neither reads nor writes it"
    );
    Ok(())
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found.sort();
    found
}

const EXHAUST_LOCKS: &str = env!("GUEST_EXHAUST_LOCKS");

/// Issue 10's reproduction: under `ulimit -n 256`, a guest whose first act is to take locks
/// until an error gets `limit-reached` (its own exit status 0 says so), the host goes on
/// working (the guest prints and releases afterwards) and exits normally, not with a panic
/// (101), and nothing is left behind because the guest unlock-and-deletes what it took.
#[test]
fn a_guest_exhausting_descriptors_gets_limit_reached_and_the_host_exits_normally() -> Result<()> {
    for max_locks in ["1024", "100000"] {
        let (s, cache) = (Scratch::new()?, Scratch::new()?);
        let grant = format!("{}::/work", s.path().display());
        let out = Command::new("sh")
            .arg("-c")
            .arg("ulimit -n 256; exec \"$@\"")
            .arg("sh")
            .arg(stagelock_bin())
            .args([
                "run",
                EXHAUST_LOCKS,
                "--dir",
                &grant,
                "--max-locks",
                max_locks,
            ])
            .env("STAGELOCK_CACHE_DIR", cache.path())
            .output()?;
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(
            out.status.code(),
            Some(0),
            "--max-locks {max_locks}: {stderr}"
        );
        assert_eq!(stderr, "", "--max-locks {max_locks}");
        let lines: Vec<&str> = stdout.lines().collect();
        let [exhausted, released] = lines.as_slice() else {
            panic!("--max-locks {max_locks}: {stdout}");
        };
        let taken: usize = exhausted
            .strip_prefix("exhausted ")
            .and_then(|rest| rest.strip_suffix(" LimitReached"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{exhausted}"));
        assert!(
            (1..=256 - 64).contains(&taken),
            "the host keeps 64 descriptors: {taken}"
        );
        assert_eq!(*released, format!("released {taken}"));
        assert!(s.names()?.is_empty(), "left behind: {:?}", s.names()?.len());
    }
    Ok(())
}
