//! A native build step next to podman, buildah or CRI-O: recover what dead builders left in a
//! staging area, then stage a build and commit it into place, as containers/storage does with
//! its own staging directories.
//!
//! ```sh
//! cargo run -p stagelock --example recover_then_stage -- STAGING_DIR DEST_DIR NAME
//! ```
//!
//! STAGING_DIR and DEST_DIR must exist, on one filesystem; NAME is the committed directory's
//! name in DEST_DIR (an existing one is replaced). Prints what recovery did, then the commit.

use std::path::Path;

use cap_std::fs::Dir;
use stagelock::{CommitOptions, Layout, StagingArea};

/// Recovers the stale stages of the per-directory area `staging`, then stages a small build and
/// commits it as `dest/name`, replacing what was there. Returns what it did, line by line.
pub fn run(staging: &Path, dest: &Path, name: &str) -> Result<String, Box<dyn std::error::Error>> {
    let ambient = cap_std::ambient_authority();
    let area = StagingArea::open_ambient_dir(staging, Layout::PerDirectory, ambient)?;
    let dest_dir = Dir::open_ambient_dir(dest, ambient)?;

    // Stages whose builders died: their locks are free. Live builders' stages are skipped.
    let report = area.recover_stale()?;
    let mut out = format!("{report}\n");

    let stage = area.stage()?; // locked first, then its directory made
    stage.dir().create_dir("bin")?;
    stage.dir().write("bin/tool", "#!/bin/sh\necho built\n")?;
    stage.dir().write("VERSION", "1.0\n")?;
    let id = stage.id().to_owned();
    // Renamed into place under the lock, durably (the tree synced first); on failure the stage
    // comes back, still held, to retry or abort.
    stage
        .commit_with(&dest_dir, name, CommitOptions::new().replace(true))
        .map_err(|failed| failed.error)?;
    out.push_str(&format!("committed stage {id} as {name}\n"));
    Ok(out)
}

#[allow(dead_code)] // the tests include this file for `run`
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [staging, dest, name] = args.as_slice() else {
        return Err("usage: recover_then_stage STAGING_DIR DEST_DIR NAME".into());
    };
    print!("{}", run(Path::new(staging), Path::new(dest), name)?);
    Ok(())
}
