//! The plugin that `host/stagelock-wasmtime/examples/sandbox_per_request.rs` runs once per
//! request, each time in a fresh sandbox over the directory granted as `/work`. A request is
//! `KIND NAME`: it stages a result for `NAME` in the staging area `/work/staging`, then
//!
//! - `build`: commits it to `/work/out/NAME` and says so;
//! - `crash`: panics with the stage still open (the component traps);
//! - `spin`: loops forever with the stage still open (until the host's fuel runs out).
//!
//! Written with the guest crate alone (not this crate's test helpers), as a plugin would be.

use stagelock_guest::filesystem::{DescriptorFlags, OpenFlags, PathFlags};
use stagelock_guest::{Layout, StagingArea, preopened_dir};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(kind), Some(name)) = (args.next(), args.next()) else {
        return Err("usage: KIND NAME".into());
    };
    let work = preopened_dir("/work").ok_or("the host did not grant /work")?;
    let staging = work.open_at(
        PathFlags::empty(),
        "staging",
        OpenFlags::DIRECTORY,
        DescriptorFlags::MUTATE_DIRECTORY,
    )?;
    let area = StagingArea::open(&staging, Layout::Pairs)?;
    let stage = area.stage()?;
    let result = stage.dir()?.open_at(
        PathFlags::empty(),
        "result",
        OpenFlags::CREATE,
        DescriptorFlags::WRITE,
    )?;
    result.write(format!("built for {name}\n").as_bytes(), 0)?;
    drop(result);
    match kind.as_str() {
        "build" => {
            let dest = format!("out/{name}");
            stage.commit(&work, &dest).map_err(|failed| failed.error)?;
            println!("committed {dest}");
        }
        "crash" => panic!("crashed while building {name}"),
        "spin" => loop {
            std::hint::spin_loop();
        },
        _ => return Err(format!("unknown request kind {kind:?}").into()),
    }
    Ok(())
}
