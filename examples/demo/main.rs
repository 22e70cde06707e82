//! The stagelock demo: a sandboxed build step, run as a WebAssembly component by
//! `stagelock run`, that stages its output under a staging lock the way containers/storage does.
//!
//! `stagelock-demo build`: open the staging area `/work/staging`, recover what dead builders
//! left, stage (lock `lock-ID` first, then the resource `temp-dir-ID`), build into the stage
//! through its descriptor, announce the lock in `staging/current`, wait (up to 10 s) for a
//! second instance to check in, then commit the stage to `/work/out` (one rename, under the
//! lock) and unlock-and-delete.
//!
//! `stagelock-demo second`: wait for the builder's announcement, try to take its lock (and be
//! refused), wait 300 ms for it (in vain: the builder holds it until second checks in), then
//! check in.
//!
//! Both see only the directory granted as `/work`.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use stagelock_guest::filesystem::{DescriptorFlags, OpenFlags, PathFlags};
use stagelock_guest::{ErrorKind, Layout, StagingArea, StagingLock, Wait, preopened_dir};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() {
    let role = std::env::args().nth(1).unwrap_or_default();
    let result = match role.as_str() {
        "build" => build(),
        "second" => second(),
        _ => Err("usage: stagelock-demo (build|second)".into()),
    };
    if let Err(e) = result {
        eprintln!("[{role}] error: {e}");
        std::process::exit(1);
    }
}

fn say(role: &str, what: impl std::fmt::Display) {
    println!("[{role:>7}] {what}");
}

fn build() -> Result<()> {
    let say = |what: String| say("build", what);
    let work = preopened_dir("/work").ok_or("the host did not grant /work")?;
    fs::create_dir_all("/work/staging")?;
    let staging = work.open_at(
        PathFlags::empty(),
        "staging",
        OpenFlags::DIRECTORY,
        DescriptorFlags::MUTATE_DIRECTORY,
    )?;
    let area = StagingArea::open(&staging, Layout::Pairs)?;
    let report = area.recover_stale()?;
    say(format!(
        "recover-stale: removed {} stage(s) left by dead builders, {} busy",
        report.removed_stages().len(),
        report.skipped_stages().len()
    ));

    let stage = area.stage()?;
    let id = stage.id();
    say(format!(
        "staged: took staging/lock-{id}, then made staging/{}",
        stage.path()
    ));
    let out = stage.dir()?;
    let mut files = 0;
    for entry in fs::read_dir("/work/src")? {
        let entry = entry?;
        let text = fs::read_to_string(entry.path())?.to_uppercase();
        let name = entry
            .file_name()
            .into_string()
            .map_err(|_| "non-UTF-8 name")?;
        let file = out.open_at(
            PathFlags::empty(),
            &name,
            OpenFlags::CREATE,
            DescriptorFlags::WRITE,
        )?;
        file.write(text.as_bytes(), 0)?;
        files += 1;
    }
    drop(out);
    say(format!(
        "built {files} files into the stage; letting a second instance try its lock"
    ));
    // Written aside, then renamed: the second instance never reads a half-written name.
    fs::write("/work/staging/current.tmp", format!("lock-{id}"))?;
    fs::rename("/work/staging/current.tmp", "/work/staging/current")?;

    if !wait_for("/work/staging/second-done", Duration::from_secs(10)) {
        say("no second instance checked in (that is fine); carrying on".to_owned());
    }
    fs::remove_file("/work/staging/current")?;
    let _ = fs::remove_file("/work/staging/second-done");

    stage
        .commit_replacing(&work, "out")
        .map_err(|failed| failed.error)?;
    say(
        "committed the stage to out/ (one rename, under the lock), then unlock-and-delete"
            .to_owned(),
    );
    let left = fs::read_dir("/work/staging")?.count();
    say(format!("staging/ now holds {left} entries"));
    Ok(())
}

fn second() -> Result<()> {
    let say = |what: String| say("second", what);
    if !wait_for("/work/staging/current", Duration::from_secs(10)) {
        return Err("the builder never announced its lock".into());
    }
    let name = fs::read_to_string("/work/staging/current")?;
    let work = preopened_dir("/work").ok_or("the host did not grant /work")?;
    match StagingLock::try_lock_path(&work, &format!("staging/{name}")) {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {
            say(format!("refused, as it should be: {e}"))
        }
        Err(e) => return Err(e.into()),
        Ok(lock) => {
            drop(lock);
            return Err(format!("took staging/{name} while the builder held it").into());
        }
    }
    let patience = Wait::For(Duration::from_millis(300));
    match StagingLock::lock_path(&work, &format!("staging/{name}"), patience) {
        Err(e) if e.kind() == ErrorKind::WouldBlock => say(format!("waited, in vain: {e}")),
        Err(e) => return Err(e.into()),
        Ok(lock) => {
            drop(lock);
            return Err(format!("took staging/{name} while the builder held it").into());
        }
    }
    match StagingLock::try_lock_path(&work, "../escape.lock") {
        Err(e) => say(format!("and the sandbox holds: {e}")),
        Ok(_) => return Err("escaped the granted directory".into()),
    }
    fs::write("/work/staging/second-done", "")?;
    Ok(())
}

fn wait_for(path: &str, limit: Duration) -> bool {
    let start = Instant::now();
    while !Path::new(path).exists() {
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}
