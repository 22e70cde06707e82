//! Builds the guest components the host tests run for `wasm32-wasip2`: every
//! `tests/guests/src/bin/*.rs` (found here, not listed by hand), the demo and the guest
//! crate's examples ([`EXAMPLES`]). Writes
//! `$OUT_DIR/guests.rs`, which `support.rs` includes: a path constant per guest
//! (`component_cap` -> `COMPONENT_CAP`) and, per suite, a macro `foreach_<suite>!` naming
//! each of its guests.
//!
//! A guest's suite is the test module its name starts with (`component_cap` belongs to
//! `tests/components/component.rs`, `bench_ops` to the bench binary `tests/bench/main.rs`).
//! That file says `foreach_component!(assert_test_exists);`, which expands to
//! `use self::component_cap as _;` for every guest: a guest without a host test of its name
//! does not compile.
//!
//! The nested cargo uses its own target directory: sharing the outer build's would deadlock on
//! its lock.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Examples built with the guests: (guest name, cargo package, target), where the target is a
/// binary (`Bin`) or a cargo example of the package (`Example`).
const EXAMPLES: &[(&str, &str, Target)] = &[
    (
        "component_demo",
        "stagelock-demo",
        Target::Bin("stagelock-demo"),
    ),
    (
        "run_cli_nested_area",
        "stagelock-guest",
        Target::Example("nested_area"),
    ),
];

/// A compiled target of a package.
enum Target {
    Bin(&'static str),
    Example(&'static str),
}

impl Target {
    /// Where cargo puts it, relative to the release directory.
    fn wasm(&self) -> String {
        match self {
            Target::Bin(bin) => format!("{bin}.wasm"),
            Target::Example(example) => format!("examples/{example}.wasm"),
        }
    }
}

fn main() {
    let tests = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let root = tests.parent().unwrap().to_path_buf();
    for watched in [
        "guest",
        "tests/guests",
        "examples/demo",
        "wit",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    let target_dir = root.join("target/guests");
    // Packaged on its own (`cargo package` verifies every crate of the workspace), or built
    // without the `components` feature, this crate has no guests to build: it lists none, and
    // the tests that run guests are not built.
    let build_guests = root.join("tests/guests/Cargo.toml").is_file()
        && std::env::var_os("CARGO_FEATURE_COMPONENTS").is_some();
    if build_guests {
        build(&root, &target_dir);
    }
    let release = target_dir.join("wasm32-wasip2/release");

    let bins = tests.join("guests/src/bin");
    let mut guests: Vec<(String, PathBuf)> = (if build_guests { stems(&bins) } else { vec![] })
        .into_iter()
        .map(|name| {
            let wasm = release.join(format!("{name}.wasm"));
            (name, wasm)
        })
        .collect();
    for (name, _, target) in EXAMPLES.iter().filter(|_| build_guests) {
        guests.push((name.to_string(), release.join(target.wasm())));
    }

    let suites = suites(&tests);
    let mut by_suite: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut code = String::new();
    for (name, wasm) in &guests {
        assert!(wasm.is_file(), "{} was not built", wasm.display());
        let suite = suites
            .keys()
            .filter(|s| name.starts_with(&format!("{s}_")))
            .max_by_key(|s| s.len())
            .unwrap_or_else(|| {
                panic!(
                    "guest `{name}`: name it after the test module that runs it, \
                     `<suite>_<scenario>.rs` with <suite> one of {:?}",
                    suites.keys()
                )
            });
        assert!(
            suites[suite].len() == 1,
            "guest `{name}`: its suite `{suite}` is more than one file: {:?}",
            suites[suite]
        );
        by_suite.entry(suite).or_default().push(name);
        writeln!(
            code,
            "/// The `{name}` guest component.\npub const {}: &str = {:?};",
            name.to_uppercase(),
            wasm.display().to_string()
        )
        .unwrap();
    }
    writeln!(
        code,
        "/// Where compiled guests are cached between test runs.\npub const CACHE_DIR: &str = {:?};",
        target_dir.join("wasmtime-cache").display().to_string()
    )
    .unwrap();
    let files: Vec<(&str, &str)> = by_suite
        .keys()
        .map(|suite| (*suite, suites[*suite][0].as_str()))
        .collect();
    writeln!(
        code,
        "/// The suites that run guests, each with its file (relative to `tests/`).\n\
         pub const SUITES: &[(&str, &str)] = &{files:?};"
    )
    .unwrap();
    for (suite, names) in &by_suite {
        writeln!(
            code,
            "/// Calls `$mac!(name)` for every guest of `tests/{}`.\n\
             #[macro_export]\nmacro_rules! foreach_{suite} {{\n    ($mac:ident) => {{",
            suites[*suite][0]
        )
        .unwrap();
        for name in names {
            writeln!(code, "        $mac!({name});").unwrap();
        }
        code.push_str("    };\n}\n");
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap()).join("guests.rs");
    std::fs::write(out, code).unwrap();
}

/// Builds the guests and the examples for wasm32-wasip2 into `target_dir`.
fn build(root: &Path, target_dir: &Path) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(root)
        .args([
            "build",
            "--locked",
            "--release",
            "--target",
            "wasm32-wasip2",
        ])
        .args(["-p", "stagelock-test-guests", "--bins"]);
    for (_, package, target) in EXAMPLES {
        command.args(["-p", package]);
        if let Target::Example(example) = target {
            command.args(["--example", example]);
        }
    }
    let status = command
        .arg("--target-dir")
        .arg(target_dir)
        // Small components: no debug info in what the tests compile over and over.
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "true")
        // Flags meant for the host build must not leak into the guest build.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTC_WRAPPER")
        .status()
        .expect("run cargo to build the guest components");
    assert!(
        status.success(),
        "building the guest components failed (is the wasm32-wasip2 target installed? \
         `rustup toolchain install` in the repository installs it)"
    );
}

/// The suites, each with its files relative to `tests/` (a guest's suite must have one): every
/// `tests/<suite>.rs`; every binary root `tests/<suite>/main.rs`, named by its directory; and
/// every module beside a root, `tests/<binary>/<suite>.rs` (but one named as its binary: that
/// suite is the root's).
fn suites(tests: &Path) -> BTreeMap<String, Vec<String>> {
    let mut suites: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for stem in stems(tests) {
        suites
            .entry(stem.clone())
            .or_default()
            .push(format!("{stem}.rs"));
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(tests)
        .unwrap_or_else(|e| panic!("read {}: {e}", tests.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("main.rs").is_file())
        .collect();
    dirs.sort();
    for dir in dirs {
        let binary = dir.file_name().unwrap().to_string_lossy().into_owned();
        for stem in stems(&dir) {
            let (suite, file) = if stem == "main" {
                (binary.clone(), format!("{binary}/main.rs"))
            } else if stem == binary {
                // `model/model.rs` beside `model/main.rs`: the binary's suite is its root.
                continue;
            } else {
                (stem.clone(), format!("{binary}/{stem}.rs"))
            };
            suites.entry(suite).or_default().push(file);
        }
    }
    suites
}

/// The stems of the `*.rs` files in `dir`, sorted.
fn stems(dir: &Path) -> Vec<String> {
    let mut stems: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    stems.sort();
    stems
}
