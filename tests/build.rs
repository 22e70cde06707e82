//! Builds the guest components the host tests run (tests/guests and the demo) for
//! `wasm32-wasip2`, and tells the tests where they are (`GUEST_<NAME>` variables).
//!
//! The nested cargo uses its own target directory: sharing the outer build's would deadlock on
//! its lock.

use std::path::PathBuf;
use std::process::Command;

const GUESTS: &[(&str, &str)] = &[
    ("LOCKCTL", "lockctl"),
    ("EXHAUST_LOCKS", "exhaust_locks"),
    ("DEMO", "stagelock-demo"),
];

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap())
        .parent()
        .unwrap()
        .to_path_buf();
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
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&root)
        .args([
            "build",
            "--locked",
            "--release",
            "--target",
            "wasm32-wasip2",
        ])
        .args(["-p", "stagelock-test-guests", "-p", "stagelock-demo"])
        .arg("--target-dir")
        .arg(&target_dir)
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
    for (var, bin) in GUESTS {
        let path = target_dir.join(format!("wasm32-wasip2/release/{bin}.wasm"));
        assert!(path.is_file(), "{} was not built", path.display());
        println!("cargo:rustc-env=GUEST_{var}={}", path.display());
    }
}
