//! The stagelock demo: a sandboxed build step, run as a WebAssembly component by
//! `stagelock run`, that stages its output under a staging lock the way containers/storage does.
//!
//! `stagelock-demo build`: take `lock-ID` with create-and-lock in `/work/staging`, build into
//! `staging/temp-dir-ID`, announce the lock in `staging/current`, wait (up to 10 s) for a second
//! instance to check in, then move the result to `/work/out` and unlock-and-delete.
//!
//! `stagelock-demo second`: wait for the builder's announcement, try to take its lock (and be
//! refused), then check in.
//!
//! Both see only the directory granted as `/work`.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use stagelock_guest::{ErrorKind, StagingLock, preopened_dir};

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
    fs::create_dir_all("/work/staging")?;
    let work = preopened_dir("/work").ok_or("the host did not grant /work")?;
    let staging = work.open_at(
        stagelock_guest::filesystem::PathFlags::empty(),
        "staging",
        stagelock_guest::filesystem::OpenFlags::DIRECTORY,
        stagelock_guest::filesystem::DescriptorFlags::MUTATE_DIRECTORY,
    )?;
    let (lock, name) = StagingLock::create_and_lock(&staging, "lock-")?;
    let id = name.trim_start_matches("lock-");
    let temp = format!("/work/staging/temp-dir-{id}");
    say(format!(
        "took staging/{name} (create-and-lock); staging into staging/temp-dir-{id}"
    ));

    fs::create_dir(&temp)?;
    let mut files = 0;
    for entry in fs::read_dir("/work/src")? {
        let entry = entry?;
        let text = fs::read_to_string(entry.path())?;
        let out = Path::new(&temp).join(entry.file_name());
        fs::write(out, text.to_uppercase())?;
        files += 1;
    }
    say(format!(
        "built {files} files; letting a second instance try the lock"
    ));
    fs::write("/work/staging/current", &name)?;

    let checked_in = wait_for("/work/staging/second-done", Duration::from_secs(10));
    if !checked_in {
        say("no second instance checked in (that is fine); carrying on".to_owned());
    }
    fs::remove_file("/work/staging/current")?;
    let _ = fs::remove_file("/work/staging/second-done");

    let _ = fs::remove_dir_all("/work/out");
    fs::rename(&temp, "/work/out")?;
    say(format!(
        "committed staging/temp-dir-{id} -> out/ while holding the lock"
    ));
    lock.unlock_and_delete()?;
    say(format!("unlock-and-delete: staging/{name} is gone"));
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
