//! A sandboxed build step whose staging area is a directory nested inside its grant: it
//! recovers what dead builders left there, stages, builds into the stage both through the
//! stage's descriptor and with `std::fs`, and commits the result next to the area.
//!
//! ```text
//! stagelock run --dir WORK::/work nested_area.wasm NAME
//! ```
//!
//! The area is `WORK/builds/staging` (per-directory layout, as containers/storage's overlay
//! driver: `N/staging.lock` beside `N/dir`), the result goes to `WORK/builds/out/NAME`; both
//! are made if missing. From the workspace's root:
//!
//! ```text
//! $ cargo build --release --target wasm32-wasip2 -p stagelock-guest --example nested_area
//! $ cargo build --release -p stagelock-cli
//! $ mkdir -p /tmp/work/builds/staging/7/dir     # a builder died here: no lock file is held
//! $ touch /tmp/work/builds/staging/7/staging.lock
//! $ target/release/stagelock run --dir /tmp/work::/work \
//!       target/wasm32-wasip2/release/examples/nested_area.wasm release-1
//! removed 7: its builder is gone
//! 1 removed, 0 skipped
//! built release-1 in a stage of builds/staging
//! committed builds/out/release-1
//! ```
//!
//! The test command builds it with the test guests and runs it as above
//! (`run_cli::run_cli_nested_area` in `tests/components/run_cli.rs`).

use stagelock_guest::filesystem::{DescriptorFlags, OpenFlags, PathFlags};
use stagelock_guest::{Layout, StagingArea, preopened_dir};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Where the grant is mounted in the component, and the area and results beneath it.
const WORK: &str = "/work";
const AREA: &str = "builds/staging";
const OUT: &str = "builds/out";

fn main() {
    if let Err(e) = run() {
        eprintln!("nested_area: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let name = std::env::args().nth(1).ok_or("usage: nested_area NAME")?;
    // std::fs reaches the grant by its path in the component.
    std::fs::create_dir_all(format!("{WORK}/{AREA}"))?;
    std::fs::create_dir_all(format!("{WORK}/{OUT}"))?;

    // The area, opened by its path beneath the grant. (From a descriptor instead: open the
    // directory with `DescriptorFlags::MUTATE_DIRECTORY`, as locks need, and pass it to
    // `StagingArea::open`; its stages then do not know their paths in the component.)
    let area = StagingArea::open_path(&format!("{WORK}/{AREA}"), Layout::PerDirectory)?;

    // What builders that died left (their locks are free): removed, one line each.
    println!("{}", area.recover_stale()?);

    let stage = area.stage()?;
    // Through the stage's descriptor: the resource directory, whatever its name.
    let manifest = stage.dir()?.open_at(
        PathFlags::empty(),
        "manifest",
        OpenFlags::CREATE,
        DescriptorFlags::WRITE,
    )?;
    manifest.write(format!("name: {name}\n").as_bytes(), 0)?;
    drop(manifest);
    // With std::fs, at the stage's path in the component (`/work/builds/staging/N/dir`).
    let resource = stage.local_path().ok_or("the area was opened by path")?;
    std::fs::create_dir(resource.join("bin"))?;
    std::fs::write(resource.join("bin/tool"), "#!/bin/sh\necho built\n")?;
    println!("built {name} in a stage of {AREA}");

    // One rename beneath the grant, under the stage's lock; then the lock file goes. A
    // failed commit hands the stage back, still held: here it is aborted (removed).
    let work = preopened_dir(WORK).ok_or("the host did not grant /work")?;
    let dest = format!("{OUT}/{name}");
    if let Err(failed) = stage.commit(&work, &dest) {
        if let Some(stage) = failed.stage {
            stage.abort()?;
        }
        return Err(failed.error.into());
    }
    println!("committed {dest}");
    Ok(())
}
