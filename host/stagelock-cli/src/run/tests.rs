use clap::Parser as _;

use super::argv_cases::ARGV_CASES;
use super::*;
use crate::cli::{Cli, Command};

fn parse(args: &[&str]) -> Result<RunArgs, clap::Error> {
    let argv = ["stagelock", "run"].iter().chain(args);
    match Cli::try_parse_from(argv)?.command {
        Command::Run(args) => Ok(args),
        other => panic!("not run: {other:?}"),
    }
}

/// Asserts that clap refuses `args` saying `why`.
fn refused(args: &[&str], why: &str) {
    let err = parse(args).unwrap_err().to_string();
    assert!(err.contains(why), "{args:?}: {err}");
}

#[test]
fn the_component_receives_everything_after_it_as_wasmtime_run_gives_it() {
    // argv[0] is the file name, without the path (as wasmtime, so no host path leaks).
    let without_path: (&[&str], &[&str]) = (
        &["--dir", "w", "sub/dir/step.wasm", "x"],
        &["step.wasm", "x"],
    );
    for (args, expected) in ARGV_CASES.iter().chain([&without_path]) {
        let parsed = parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        let shown = parsed.component().display().to_string();
        assert_eq!(
            parsed.argv(&shown).unwrap(),
            *expected,
            "stagelock run {args:?}"
        );
    }
    // stagelock's own options before the component are still its own.
    let args = parse(&[
        "--dir",
        "./ws::/work",
        "--dir-ro",
        "s",
        "step.wasm",
        "--dir",
        "foo",
    ])
    .unwrap();
    assert_eq!(
        (&args.dirs[..], &args.dirs_ro[..]),
        (&["./ws::/work".to_owned()][..], &["s".to_owned()][..])
    );
    assert_eq!(args.component(), Path::new("step.wasm"));
    let args = parse(&["step.wasm", "-W", "fuel=1", "--no-cache"]).unwrap();
    assert!(args.limits.is_empty() && !args.no_cache);
}

/// Every example in `stagelock run --help` is a case of [`ARGV_CASES`].
#[test]
fn the_help_examples_are_in_the_table() {
    use clap::CommandFactory as _;
    let cli = Cli::command();
    let help = cli
        .find_subcommand("run")
        .and_then(|run| run.get_long_about())
        .expect("run has a long help")
        .to_string();
    let examples: Vec<Vec<&str>> = help
        .lines()
        .filter_map(|line| line.trim().strip_prefix("stagelock run "))
        .map(|line| {
            line.split("  #")
                .next()
                .unwrap()
                .split_whitespace()
                // The table's placeholders for the help's component and grant.
                .map(|word| match word {
                    "step.wasm" => "C",
                    "./ws::/work" => "W",
                    word => word,
                })
                .collect()
        })
        .collect();
    assert_eq!(examples.len(), 3, "{help}");
    for example in examples {
        assert!(
            ARGV_CASES.iter().any(|(args, _)| *args == example),
            "not in ARGV_CASES: {example:?}"
        );
    }
}

#[cfg(unix)]
#[test]
fn an_argument_that_is_not_utf8_is_refused_on_one_line_naming_it() {
    use std::os::unix::ffi::OsStrExt as _;
    let bad = std::ffi::OsStr::from_bytes(b"caf\xe9");
    let cli = Cli::try_parse_from([
        "stagelock".as_ref(),
        "run".as_ref(),
        "step.wasm".as_ref(),
        "ok".as_ref(),
        bad,
    ])
    .unwrap();
    let Command::Run(args) = cli.command else {
        panic!("not run")
    };
    assert_eq!(
        format!("{:#}", args.argv("step.wasm").unwrap_err()),
        "run \"step.wasm\": argument 2 \"caf\\xE9\" is not UTF-8 (WASI passes arguments as strings)"
    );
}

#[test]
fn grants_split_host_from_guest_or_grant_at_the_same_path() {
    assert_eq!(
        parse_grant("./ws::/work", "c.wasm").unwrap(),
        ("./ws", "/work")
    );
    assert_eq!(parse_grant("/data", "c.wasm").unwrap(), ("/data", "/data"));
    // Only the first `::` splits.
    assert_eq!(parse_grant("a::b::c", "c.wasm").unwrap(), ("a", "b::c"));
    let args = parse(&["--dir", "a", "--dir-ro", "b::/b", "--dir", "c", "x.wasm"]).unwrap();
    assert_eq!(args.dirs, ["a", "c"]);
    assert_eq!(args.dirs_ro, ["b::/b"]);
}

#[test]
fn a_grant_with_an_empty_side_is_refused_on_one_line_naming_the_run() {
    for spec in ["", "::/work", "./ws::", "::"] {
        let err = format!("{:#}", parse_grant(spec, "c.wasm").unwrap_err());
        let expected = format!("run \"c.wasm\": --dir {spec:?} needs HOST_DIR[::GUEST_DIR]");
        assert_eq!(err, expected);
    }
}

#[test]
fn limits_parse_comma_separated_or_repeated() {
    let args = parse(&[
        "-W",
        "timeout=1.5s,fuel=10",
        "-W",
        "max-memory-size=512MiB",
        "c.wasm",
    ])
    .unwrap();
    let limits: Vec<_> = args.limits.into_iter().flatten().collect();
    assert!(matches!(
        limits[..],
        [Limit::Timeout(t), Limit::Fuel(10), Limit::MaxMemorySize(m)]
            if t == Duration::from_millis(1500) && m == 512 << 20
    ));
}

#[test]
fn durations_take_units_and_default_to_seconds() {
    let ms = Duration::from_millis;
    for (text, expected) in [
        ("2", ms(2000)),
        ("10s", ms(10_000)),
        ("500ms", ms(500)),
        ("250us", Duration::from_micros(250)),
        ("10ns", Duration::from_nanos(10)),
        ("2m", ms(120_000)),
        ("1h", ms(3_600_000)),
    ] {
        assert_eq!(parse_duration(text), Ok(expected), "{text}");
    }
    assert_eq!(
        parse_duration("10d").unwrap_err(),
        "timeout: unknown unit \"d\" in \"10d\" (ns, us, ms, s, m, h)"
    );
    assert_eq!(
        parse_duration("soon").unwrap_err(),
        "timeout: expected a duration such as 10s or 500ms, got \"soon\""
    );
}

#[test]
fn memory_sizes_take_binary_units_and_refuse_overflow() {
    assert_eq!(parse_bytes("65536"), Ok(65536));
    assert_eq!(parse_bytes("64KiB"), Ok(64 << 10));
    assert_eq!(parse_bytes("2M"), Ok(2 << 20));
    assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
    assert!(
        parse_bytes("1TiB")
            .unwrap_err()
            .contains("unknown unit \"TiB\"")
    );
    assert!(
        parse_bytes(&format!("{}G", usize::MAX))
            .unwrap_err()
            .contains("too large")
    );
}

#[test]
fn bad_limits_and_options_are_usage_errors_that_name_the_key() {
    refused(
        &["-W", "fuel=lots", "c.wasm"],
        "fuel: expected a whole number, got \"lots\"",
    );
    refused(&["-W", "stack=1", "c.wasm"], "unknown -W option \"stack\"");
    refused(
        &["-W", "timeout", "c.wasm"],
        "expected KEY=VALUE, got \"timeout\"",
    );
    refused(
        &["-S", "inherit-network", "c.wasm"],
        "unknown -S option \"inherit-network\"",
    );
}

#[test]
fn env_passes_values_or_names_and_refuses_an_empty_name() {
    let args = parse(&["--env", "MODE=ci", "--env", "HOME", "--env", "E=", "c.wasm"]).unwrap();
    let envs = [
        ("MODE".to_owned(), Some("ci".to_owned())),
        ("HOME".to_owned(), None),
        ("E".to_owned(), Some(String::new())),
    ];
    assert_eq!(args.envs, envs);
    refused(
        &["--env", "=NONAME", "c.wasm"],
        "expected NAME or NAME=VALUE, got \"=NONAME\"",
    );
}

#[test]
fn inherit_env_is_spelled_as_wasmtime_spells_it() {
    for spelling in ["inherit-env", "inherit-env=y", "inherit-env=true"] {
        let args = parse(&["-S", spelling, "c.wasm"]).unwrap();
        assert!(
            matches!(args.wasi_options[..], [WasiOption::InheritEnv]),
            "{spelling}"
        );
    }
}

#[test]
fn the_lock_cap_defaults_to_the_hosts_and_leaves_descriptors_to_the_host() {
    let args = parse(&["c.wasm"]).unwrap();
    assert_eq!(args.max_locks, stagelock_wasmtime::DEFAULT_MAX_HELD);
    assert!(!args.no_cache);
    assert_eq!(max_held(1024, None), 1024);
    assert_eq!(max_held(1024, Some(1_000_000)), 1024);
    assert_eq!(max_held(1024, Some(1024)), 1024 - FD_RESERVE as usize);
    assert_eq!(max_held(10, Some(FD_RESERVE - 1)), 0);
}

#[test]
fn a_component_is_required() {
    assert_eq!(
        parse(&["--dir", "x"]).unwrap_err().kind(),
        clap::error::ErrorKind::MissingRequiredArgument
    );
}
