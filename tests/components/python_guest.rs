//! A guest in another language: `tests/python/app.py`, built into a component by
//! componentize-py from `wit/` as it is, takes locks and waits for them through the host, and
//! commits a stage whose resource it removed itself (refused with `no-entry`, the stage handed
//! back to abort).
//!
//! `scripts/python-guest.sh` installs componentize-py (PyPI, in a venv under `target/`) and
//! runs this suite with `STAGELOCK_COMPONENTIZE_PY` set to it. Without it the test says it is
//! skipped and passes, so a plain `cargo test` needs no Python packages.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, ensure};
use stagelock_tests::{GuestRun, Holder, Scratch, Taken};

#[test]
fn python_guest_locks_and_waits() -> Result<()> {
    let Some(componentize_py) = std::env::var_os("STAGELOCK_COMPONENTIZE_PY") else {
        println!("skipped: run scripts/python-guest.sh");
        return Ok(());
    };
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = repo.join("target/python-guest");
    std::fs::create_dir_all(&out)?;
    let wasm = out.join("app.wasm");
    let built = Command::new(&componentize_py)
        .arg("-d")
        .arg(repo.join("wit"))
        .args(["-w", "plugin", "componentize", "-p"])
        .arg(repo.join("tests/python"))
        .args(["app", "-o"])
        .arg(&wasm)
        .output()
        .context("run componentize-py")?;
    ensure!(
        built.status.success(),
        "componentize-py failed: {}",
        String::from_utf8_lossy(&built.stderr)
    );

    let s = Scratch::new()?;
    let (holder, taken) = Holder::containers_storage(&s.join("b.lock"))?;
    assert_eq!(taken, Taken::Held(String::new()));
    let path: &'static str = wasm.to_str().context("a UTF-8 path")?.to_owned().leak();
    let done = GuestRun::new(&[]).work(s.path()).run(path).succeeded();
    assert_eq!(
        done.lines(),
        [
            "ok try a.lock",
            // WIT 1.0.0: the bare case, no string from the host.
            "err wait b.lock would-block",
            "ok wait c.lock c.lock",
            "ok poll [0]",
            "ok wait d.lock d.lock",
            "ok unlock-and-delete a.lock",
            "err commit vanished no-entry (stage back: True)",
            "ok abort vanished",
        ],
        "{}",
        done.stdout
    );
    holder.release()?;
    assert_eq!(
        s.names()?,
        ["b.lock"],
        "only the other process's file is left"
    );
    Ok(())
}
