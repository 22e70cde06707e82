//! The plugin that `host/stagelock-wasmtime/examples/plugin_host.rs` runs twice at once over
//! one directory granted as `/work`: the instance that takes `plugin.lock` first holds it until
//! the other has been refused it, then releases it. Each prints what happened to it.
//!
//! Written with the guest crate alone (not this crate's test helpers), as a plugin would be.

use std::path::Path;
use std::time::{Duration, Instant};

use stagelock_guest::{ErrorKind, StagingLock, preopened_dir};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let work = preopened_dir("/work").ok_or("the host did not grant /work")?;
    match StagingLock::try_lock_path(&work, "plugin.lock") {
        Ok(lock) => {
            println!("took plugin.lock");
            // Held until the other instance says it was refused (a generous bound, so that a
            // host that never runs the second instance fails instead of hanging).
            let start = Instant::now();
            while !Path::new("/work/refused").exists() {
                if start.elapsed() > Duration::from_secs(60) {
                    return Err("the other instance never tried plugin.lock".into());
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            std::fs::remove_file("/work/refused")?;
            lock.unlock_and_delete()?;
            println!("released plugin.lock");
        }
        Err(e) if e.kind() == ErrorKind::WouldBlock => {
            println!("refused: {e}");
            std::fs::write("/work/refused", "")?;
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}
