//! Directories whose locks stay on this host while other hosts reach the files (NFS mounted
//! `nolock` or `local_lock=posix|all`, SMB `nobrl`, sshfs, rclone, virtiofs without lock
//! support): warned about before a command relies on their locks, or refused, as
//! `STAGELOCK_LOCAL_ONLY` says (`warn`, the default; `refuse`; `allow`).

use std::path::Path;

use anyhow::bail;
use stagelock::LockDir;

/// The variable that says what to do about such a directory.
pub(super) const VAR: &str = "STAGELOCK_LOCAL_ONLY";

/// What to do about a directory whose locks reach this host only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Policy {
    /// One line on stderr, then go on (the default).
    Warn,
    /// Fail before taking anything.
    Refuse,
    /// Say nothing.
    Allow,
}

fn policy() -> anyhow::Result<Policy> {
    match std::env::var(VAR).as_deref() {
        Err(_) | Ok("" | "warn") => Ok(Policy::Warn),
        Ok("refuse") => Ok(Policy::Refuse),
        Ok("allow") => Ok(Policy::Allow),
        Ok(other) => bail!("{VAR}={other:?}: use warn (the default), refuse or allow"),
    }
}

/// Warns about, or refuses, the directory `dir` (shown as given) before `op` relies on the
/// locks taken in it. A directory that cannot be opened or looked at is left to `op` to
/// report.
pub(super) fn check(op: &str, dir: &Path) -> anyhow::Result<()> {
    let policy = policy()?;
    if policy == Policy::Allow {
        return Ok(());
    }
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Ok(locks) = LockDir::open_ambient_dir(dir, cap_std::ambient_authority()) else {
        return Ok(());
    };
    let Ok(Some(fs)) = locks.local_only() else {
        return Ok(());
    };
    let what = format!(
        "{op} {:?}: {}; another host can hold the same lock at the same time (stagelock doctor \
         says more)",
        dir.display().to_string(),
        fs.reason
    );
    if policy == Policy::Refuse {
        bail!("{what}; refused ({VAR}=refuse)");
    }
    eprintln!("stagelock: warning: {what}; {VAR}=refuse refuses, {VAR}=allow silences this");
    Ok(())
}
