//! The argument vectors `stagelock run` hands a component, one table for the parser's unit
//! test and the end-to-end test (`tests/components/run_cli.rs`).

/// `stagelock run ARGS` and the argument vector the component receives, as `wasmtime run`
/// 48 gives it (its `module_and_args`): the forms in `stagelock run --help`, options after the
/// component, and `--` before or after it. `C` stands for the component (its argv[0] is its
/// file name), `W` for a grant. Checked twice: by the parser's unit test
/// (`run::tests`) and end to end by `run_cli::run_cli_argv` (tests/components), which
/// includes this file.
pub(crate) const ARGV_CASES: &[(&[&str], &[&str])] = &[
    // The forms in `stagelock run --help`.
    (
        &["--dir", "W", "C", "build", "--verbose"],
        &["C", "build", "--verbose"],
    ),
    (
        &[
            "-W",
            "timeout=30s,max-memory-size=512MiB",
            "--env",
            "HOME",
            "--env",
            "MODE=ci",
            "C",
        ],
        &["C"],
    ),
    (
        &["-S", "inherit-env", "--argv0", "step", "C", "--dir", "out"],
        &["step", "--dir", "out"],
    ),
    // Options after the component are the component's, even ours (issue 31).
    (&["--dir", "W", "C", "--dir", "foo"], &["C", "--dir", "foo"]),
    (
        &[
            "C",
            "-W",
            "fuel=1",
            "--env",
            "X=1",
            "-S",
            "inherit-env",
            "--no-cache",
        ],
        &[
            "C",
            "-W",
            "fuel=1",
            "--env",
            "X=1",
            "-S",
            "inherit-env",
            "--no-cache",
        ],
    ),
    (
        &["--argv0", "a", "C", "--argv0", "b"],
        &["a", "--argv0", "b"],
    ),
    (
        &["C", "--help", "--version", "-h"],
        &["C", "--help", "--version", "-h"],
    ),
    (&["C", "build", "--dir", "x"], &["C", "build", "--dir", "x"]),
    // `--` after the component is passed through (as wasmtime does); before it, it ends
    // stagelock's options; both together, the second is the component's.
    (&["C", "--", "a", "b"], &["C", "--", "a", "b"]),
    (&["C", "--"], &["C", "--"]),
    (&["--", "C", "--dir", "foo"], &["C", "--dir", "foo"]),
    (&["--", "C", "--", "--", "-a"], &["C", "--", "--", "-a"]),
    // A lone `-`, words named like subcommands, empty and spaced arguments: unchanged.
    (
        &["C", "-", "run", "lock", "", " x "],
        &["C", "-", "run", "lock", "", " x "],
    ),
];
