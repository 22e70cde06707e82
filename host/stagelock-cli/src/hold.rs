//! `stagelock lock`, `try` and `create`: hold a staging lock around a command.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitCode, ExitStatus};

use anyhow::Context;

use stagelock::StagingLock;
use stagelock::process::ignore_interrupts;

/// `stagelock lock PATH -- CMD...`
pub(super) fn lock(path: &Path, cmd: &[OsString], inherit: bool) -> anyhow::Result<ExitCode> {
    let lock = StagingLock::try_lock_ambient_path(path, cap_std::ambient_authority())?;
    let status = run_holding(&lock, path, Command::new(&cmd[0]).args(&cmd[1..]), inherit);
    release(lock, path)?;
    Ok(exit_code(status?))
}

/// `stagelock try PATH`
pub(super) fn try_lock(path: &Path) -> anyhow::Result<ExitCode> {
    let lock = StagingLock::try_lock_ambient_path(path, cap_std::ambient_authority())?;
    release(lock, path)?;
    Ok(ExitCode::SUCCESS)
}

/// `stagelock create DIR PATTERN -- CMD...`
pub(super) fn create(
    dir: &Path,
    pattern: &str,
    cmd: &[OsString],
    inherit: bool,
) -> anyhow::Result<ExitCode> {
    let (lock, name) =
        StagingLock::create_and_lock_in_ambient_dir(dir, pattern, cap_std::ambient_authority())?;
    let path = dir.join(&name);
    println!("{name}");
    let mut command = Command::new(&cmd[0]);
    command
        .args(&cmd[1..])
        .env("STAGELOCK_NAME", &name)
        .env("STAGELOCK_PATH", &path);
    let status = run_holding(&lock, &path, &mut command, inherit);
    release(lock, &path)?;
    Ok(exit_code(status?))
}

/// Runs `command` to completion while `lock` is held, letting it inherit the lock if asked.
pub(super) fn run_holding(
    lock: &StagingLock,
    path: &Path,
    command: &mut Command,
    inherit: bool,
) -> anyhow::Result<ExitStatus> {
    let program = Path::new(command.get_program()).to_owned();
    lock.set_inheritable(inherit)?;
    let spawned = command.spawn();
    lock.set_inheritable(false)?;
    let mut child = spawned.with_context(|| {
        format!(
            "run {:?} while holding {:?}: cannot start it",
            program.display(),
            path.display()
        )
    })?;
    let _interrupts = ignore_interrupts();
    child
        .wait()
        .with_context(|| format!("run {:?}: waiting for it failed", program.display()))
}

/// Unlock-and-delete, with the lock's full path in the error.
fn release(lock: StagingLock, path: &Path) -> anyhow::Result<()> {
    lock.unlock_and_delete()
        .with_context(|| format!("release {:?}", path.display()))
}

/// The command's exit status as ours: its code, or 128 + the signal that killed it.
pub(super) fn exit_code(status: ExitStatus) -> ExitCode {
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitCode::from(code as u8),
        (None, Some(signal)) => ExitCode::from(128u8.wrapping_add(signal as u8)),
        (None, None) => ExitCode::from(super::EXIT_FAILURE),
    }
}
