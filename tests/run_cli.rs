//! `stagelock run`: grants, arguments, environment, exit statuses and the compilation cache.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::Result;
use stagelock_tests::guests::*;
use stagelock_tests::{Scratch, assert_test_exists, foreach_run_cli, stagelock_bin};

foreach_run_cli!(assert_test_exists);

fn run(cache: &Path, args: &[&str]) -> Output {
    Command::new(stagelock_bin(false))
        .arg("run")
        .args(args)
        .env("STAGELOCK_CACHE_DIR", cache)
        .output()
        .expect("run stagelock")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `stagelock run` grants directories and passes arguments and the environment.
#[test]
fn run_cli_args_env() -> Result<()> {
    let (s, cache) = (Scratch::new()?, Scratch::new()?);
    let grant = format!("{}::/work", s.path().display());
    let out = run(
        cache.path(),
        &[
            RUN_CLI_ARGS_ENV,
            "--dir",
            &grant,
            "--env",
            "GREETING=hi there",
            "--",
            "a.lock",
            "GREETING",
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

/// `stagelock run` exits with the component's status.
#[test]
fn run_cli_exit() -> Result<()> {
    let (s, cache) = (Scratch::new()?, Scratch::new()?);
    let grant = format!("{}::/work", s.path().display());
    // wasi:cli/exit@0.2 carries success or failure, not a number: Rust's exit(7) arrives as 1.
    let out = run(cache.path(), &[RUN_CLI_EXIT, "--dir", &grant, "--", "7"]);
    assert_eq!(out.status.code(), Some(1));
    let out = run(
        cache.path(),
        &[RUN_CLI_EXIT, "--dir", &grant, "--", "0", "trap"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "exit(0) ends the run before the trap"
    );
    let out = run(
        cache.path(),
        &[RUN_CLI_EXIT, "--dir", &grant, "--", "t.lock", "trap"],
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
        &[COMPONENT_READ_ONLY_GRANT, "--dir-ro", &grant],
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
    let out = run(
        cache.path(),
        &[RUN_CLI_EXIT, "--dir", "/no/such/dir::/work"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("/no/such/dir"),
        "{}",
        text(&out.stderr)
    );
    let out = run(cache.path(), &[RUN_CLI_EXIT, "--env", "NOEQUALS"]);
    assert_eq!(out.status.code(), Some(2), "usage error");
    Ok(())
}

#[test]
fn run_caches_compiled_components_on_disk() -> Result<()> {
    let (s, cache) = (Scratch::new()?, Scratch::new()?);
    let grant = format!("{}::/work", s.path().display());
    let out = run(cache.path(), &[RUN_CLI_EXIT, "--dir", &grant, "--", "0"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let files = walk(cache.path());
    assert!(!files.is_empty(), "the compiled component was cached");
    let out = run(
        cache.path(),
        &[RUN_CLI_EXIT, "--no-cache", "--dir", &grant, "--", "0"],
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

/// A guest exhausting descriptors gets `limit-reached`, the host does not crash. Under `ulimit -n 256`, a guest whose first act is to take locks
/// until an error gets `limit-reached` (its own exit status 0 says so), the host goes on
/// working (the guest prints and releases afterwards) and exits normally, not with a panic
/// (101), and nothing is left behind because the guest unlock-and-deletes what it took.
#[test]
fn run_cli_exhaust_locks() -> Result<()> {
    for max_locks in ["1024", "100000"] {
        let (s, cache) = (Scratch::new()?, Scratch::new()?);
        let grant = format!("{}::/work", s.path().display());
        let out = Command::new("sh")
            .arg("-c")
            .arg("ulimit -n 256; exec \"$@\"")
            .arg("sh")
            .arg(stagelock_bin(false))
            .args([
                "run",
                RUN_CLI_EXHAUST_LOCKS,
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
