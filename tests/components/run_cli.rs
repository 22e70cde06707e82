//! `stagelock run`: grants, arguments, environment, exit statuses and the compilation cache.

use std::path::Path;
use std::process::{Command, Output};

use anyhow::Result;
use stagelock_tests::guests::*;
use stagelock_tests::{Entry, Scratch, assert_test_exists, foreach_run_cli, stagelock_bin, tree};

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
            "--dir",
            &grant,
            "--env",
            "GREETING=hi there",
            RUN_CLI_ARGS_ENV,
            "a.lock",
            "GREETING",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "ok try a.lock\nok env GREETING=hi there\nok argv0 run_cli_args_env.wasm\nok unlock\n"
    );
    assert!(s.names()?.is_empty());

    // As with wasmtime: `--env NAME` passes this process's value on, `-S inherit-env` passes
    // the whole environment, `--argv0` names the program, and no `--` is needed.
    let with_env = |args: &[&str]| {
        Command::new(stagelock_bin(false))
            .arg("run")
            .args(args)
            .env("STAGELOCK_CACHE_DIR", cache.path())
            .env("FROM_HOST", "inherited")
            .output()
            .expect("run stagelock")
    };
    let out = with_env(&[
        "--dir",
        &grant,
        "--env",
        "FROM_HOST",
        RUN_CLI_ARGS_ENV,
        "b.lock",
        "FROM_HOST",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("ok env FROM_HOST=inherited\n"),
        "{}",
        text(&out.stdout)
    );
    let out = with_env(&["--dir", &grant, RUN_CLI_ARGS_ENV, "c.lock", "FROM_HOST"]);
    assert!(
        text(&out.stdout).contains("ok env FROM_HOST=\n"),
        "not passed on unasked"
    );
    let out = with_env(&[
        "-S",
        "inherit-env",
        "--argv0",
        "step",
        "--dir",
        &grant,
        RUN_CLI_ARGS_ENV,
        "d.lock",
        "FROM_HOST",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("ok env FROM_HOST=inherited\n"), "{stdout}");
    assert!(stdout.contains("ok argv0 step\n"), "{stdout}");
    assert!(s.names()?.is_empty());
    Ok(())
}

/// The table of argument vectors, shared with `stagelock run`'s own unit test.
#[path = "../../host/stagelock-cli/src/run/argv_cases.rs"]
mod argv_cases;

/// `stagelock run` gives the component everything after it, options and `--` included, as
/// `wasmtime run` 48 does (its `module_and_args`, with clap's `trailing_var_arg`): the forms in
/// `stagelock run --help`, our own options after the component, and `--` before and after it.
/// `C` is the component, `W` a grant; the guest prints the argument vector it received.
#[test]
fn run_cli_argv() -> Result<()> {
    let (s, cache) = (Scratch::new()?, Scratch::new()?);
    let grant = format!("{}::/work", s.path().display());
    let name = Path::new(RUN_CLI_ARGV)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap();
    for (args, expected) in argv_cases::ARGV_CASES {
        let args: Vec<&str> = args
            .iter()
            .map(|a| match *a {
                "C" => RUN_CLI_ARGV,
                "W" => &grant,
                a => a,
            })
            .collect();
        let expected: Vec<&str> = expected
            .iter()
            .map(|a| if *a == "C" { name } else { a })
            .collect();
        let out = run(cache.path(), &args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert_eq!(
            text(&out.stdout),
            format!("{expected:?}\n"),
            "stagelock run {args:?}"
        );
    }
    assert!(s.names()?.is_empty());
    Ok(())
}

/// Runs `guest` under `limit` (a `-W` option) in `s` and checks it was stopped: exit 134, one
/// line on stderr containing `why`, and the lock it took (`lock`) free again afterwards.
fn stopped_by(s: &Scratch, cache: &Path, limit: &str, guest: &str, lock: &str, why: &str) {
    let grant = format!("{}::/work", s.path().display());
    let out = run(cache, &["-W", limit, "--dir", &grant, guest]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(134), "{limit}: {err}");
    assert_eq!(text(&out.stdout), format!("ok try {lock}\n"), "{limit}");
    assert_eq!(err.lines().count(), 1, "{limit}: one line: {err}");
    assert!(
        err.contains(why) && err.contains("released"),
        "{limit}: {err}"
    );
    assert!(
        stagelock_tests::lockable_by_other_process(&s.join(lock)).unwrap(),
        "{limit}: the stopped component's lock was released"
    );
}

/// `-W timeout` and `-W fuel` stop a component that computes forever; its lock is released.
#[test]
fn run_cli_spin() -> Result<()> {
    let (s, cache) = (Scratch::new()?, Scratch::new()?);
    // The timeout runs from instantiation, and the guest must take its lock and print within
    // it (milliseconds, but a file creation on a disk busy with builds can stall): 2 s, not the
    // former 500 ms, leaves a loaded machine room. The component compiles before the clock
    // starts.
    stopped_by(
        &s,
        cache.path(),
        "timeout=2s",
        RUN_CLI_SPIN,
        "spin.lock",
        "timeout=2s",
    );
    stopped_by(
        &s,
        cache.path(),
        "fuel=50000000",
        RUN_CLI_SPIN,
        "spin.lock",
        "out of fuel",
    );
    let out = run(cache.path(), &["-W", "timeout=soon", RUN_CLI_SPIN]);
    assert_eq!(out.status.code(), Some(2), "a bad limit is a usage error");
    assert!(
        text(&out.stderr).contains("timeout"),
        "{}",
        text(&out.stderr)
    );
    Ok(())
}

/// `-W max-memory-size` stops a component that allocates forever; its lock is released.
#[test]
fn run_cli_grow() -> Result<()> {
    let (s, cache) = (Scratch::new()?, Scratch::new()?);
    stopped_by(
        &s,
        cache.path(),
        "max-memory-size=32MiB",
        RUN_CLI_GROW,
        "grow.lock",
        "max-memory-size=33554432",
    );
    Ok(())
}

/// Files that are not components are refused on one line that says what to do.
#[test]
fn run_refuses_core_modules_and_non_wasm_on_one_line() -> Result<()> {
    let (s, cache) = (Scratch::new()?, Scratch::new()?);
    let module = s.join("module.wasm");
    std::fs::write(&module, b"\0asm\x01\0\0\0")?; // an empty core module
    let text_file = s.join("notes.txt");
    std::fs::write(&text_file, "hello\n(module)\n")?;
    for (file, says) in [
        (&module, "core WebAssembly module"),
        (&text_file, "not a WebAssembly file"),
    ] {
        let out = run(cache.path(), &[file.to_str().unwrap()]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(says) && err.contains("wasm32-wasip2"), "{err}");
    }
    Ok(())
}

/// `stagelock run` exits with the component's status.
#[test]
fn run_cli_exit() -> Result<()> {
    let (s, cache) = (Scratch::new()?, Scratch::new()?);
    let grant = format!("{}::/work", s.path().display());
    // wasi:cli/exit@0.2 carries success or failure, not a number: Rust's exit(7) arrives as 1.
    let out = run(cache.path(), &["--dir", &grant, RUN_CLI_EXIT, "7"]);
    assert_eq!(out.status.code(), Some(1));
    let out = run(cache.path(), &["--dir", &grant, RUN_CLI_EXIT, "0", "trap"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "exit(0) ends the run before the trap"
    );
    let out = run(
        cache.path(),
        &["--dir", &grant, RUN_CLI_EXIT, "t.lock", "trap"],
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
        &["--dir-ro", &grant, COMPONENT_READ_ONLY_GRANT],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("err try ReadOnly"),
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
        &["--dir", "/no/such/dir::/work", RUN_CLI_EXIT],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("/no/such/dir"),
        "{}",
        text(&out.stderr)
    );
    let out = run(cache.path(), &["--env", "=NONAME", RUN_CLI_EXIT]);
    assert_eq!(out.status.code(), Some(2), "usage error");
    Ok(())
}

#[test]
fn run_caches_compiled_components_on_disk() -> Result<()> {
    let (s, cache) = (Scratch::new()?, Scratch::new()?);
    let grant = format!("{}::/work", s.path().display());
    let out = run(cache.path(), &["--dir", &grant, RUN_CLI_EXIT, "0"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let files = tree(cache.path())?;
    assert!(
        files.values().any(|e| matches!(e, Entry::File(_))),
        "the compiled component was cached"
    );
    let out = run(
        cache.path(),
        &["--no-cache", "--dir", &grant, RUN_CLI_EXIT, "0"],
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        tree(cache.path())?,
        files,
        "--no-cache neither reads nor writes it"
    );
    Ok(())
}

/// A guest exhausting descriptors gets `limit-reached`, the host does not crash. Under `ulimit -n 256`, a guest whose first act is to take locks
/// until an error gets `limit-reached` (its own exit status 0 says so), the host goes on
/// working (the guest prints and releases afterwards) and exits normally, not with a panic
/// (101), and nothing is left behind because the guest unlock-and-deletes what it took.
#[test]
#[cfg_attr(
    windows,
    ignore = "lowers the descriptor limit with sh's ulimit: Unix only"
)]
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
                "--dir",
                &grant,
                "--max-locks",
                max_locks,
                RUN_CLI_EXHAUST_LOCKS,
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

/// `stagelock run` serves every WIT version the host does: components built against the frozen
/// 0.1.0 and 0.2.0 run as they do embedded (the 1.0.0 ones are every other test here).
#[test]
fn run_cli_serves_the_older_wit_versions() -> Result<()> {
    for (component, built) in [(COMPAT_V0_1, "from 0.1.0"), (COMPAT_V0_2, "from 0.2.0")] {
        let (s, cache) = (Scratch::new()?, Scratch::new()?);
        let grant = format!("{}::/work", s.path().display());
        let out = run(cache.path(), &["--dir", &grant, component]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{component}: {}",
            text(&out.stderr)
        );
        let stdout = text(&out.stdout);
        assert!(
            stdout.contains("ok commit out\n") && stdout.ends_with("ok recover 0 0\n"),
            "{component}: {stdout}"
        );
        assert_eq!(std::fs::read_to_string(s.join("out/built.txt"))?, built);
    }
    Ok(())
}

/// A component that imports an interface the host does not serve (as a default componentize-js
/// build imports `wasi:http`) is refused on one line that names the import and what to do, not
/// with the linker's account of it; nothing of it runs.
#[test]
fn run_cli_unserved_import() -> Result<()> {
    let cache = Scratch::new()?;
    let out = run(cache.path(), &[RUN_CLI_UNSERVED_IMPORT]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "", "nothing ran");
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "stagelock: run {RUN_CLI_UNSERVED_IMPORT:?}: it imports wasi:http/types@0.3.0, which \
             stagelock run does not serve (it serves wasi:cli/command 0.2 and stagelock:staging); \
             a JavaScript component built with componentize-js imports it unless built with \
             disableFeatures: ['http', 'fetch-event']\n"
        )
    );
    Ok(())
}

/// The guest crate's example `guest/examples/nested_area.rs`, run as its docs say: in a grant
/// holding a dead builder's stage in `builds/staging`, it recovers that stage, stages, builds
/// through the stage's descriptor and with `std::fs`, and commits to `builds/out/NAME`,
/// printing what its docs show; the area is empty after. A second run into the same name is
/// refused (`dest` exists) and aborts its stage: nothing is left either.
#[test]
fn run_cli_nested_area() -> Result<()> {
    let (s, cache) = (Scratch::new()?, Scratch::new()?);
    s.dir().create_dir_all("builds/staging/7/dir")?;
    s.dir().write("builds/staging/7/dir/half-built", "")?;
    s.dir().write("builds/staging/7/staging.lock", "")?; // nobody holds it: its builder died
    let grant = format!("{}::/work", s.path().display());
    let out = run(
        cache.path(),
        &["--dir", &grant, RUN_CLI_NESTED_AREA, "release-1"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "removed 7: its builder is gone\n1 removed, 0 skipped\n\
         built release-1 in a stage of builds/staging\n\
         committed builds/out/release-1\n"
    );
    let file = |text: &str| Entry::File(text.as_bytes().to_vec());
    let built = [
        ("builds", Entry::Dir),
        ("builds/out", Entry::Dir),
        ("builds/out/release-1", Entry::Dir),
        ("builds/out/release-1/bin", Entry::Dir),
        (
            "builds/out/release-1/bin/tool",
            file("#!/bin/sh\necho built\n"),
        ),
        ("builds/out/release-1/manifest", file("name: release-1\n")),
        ("builds/staging", Entry::Dir),
    ]
    .map(|(path, entry)| (std::path::PathBuf::from(path), entry));
    assert_eq!(tree(s.path())?, built.into_iter().collect());

    let out = run(
        cache.path(),
        &["--dir", &grant, RUN_CLI_NESTED_AREA, "release-1"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "nested_area: commit \"builds/out/release-1\": destination exists\n"
    );
    assert!(s.join("builds/out/release-1/manifest").is_file());
    assert!(
        std::fs::read_dir(s.join("builds/staging"))?
            .next()
            .is_none()
    );
    Ok(())
}
