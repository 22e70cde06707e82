//! Exit statuses, and how a failure becomes one: a one-line message on stderr and a status.

use std::process::{ExitCode, ExitStatus};

/// Exit status when the lock is held by someone else (`EX_TEMPFAIL` from sysexits.h); `-E N`
/// picks another where a command has it.
pub(crate) const EXIT_BUSY: u8 = 75;
/// Exit status for any other failure.
pub(crate) const EXIT_FAILURE: u8 = 1;
/// Exit status when a component traps or is stopped by a `-W` limit (128 + SIGABRT, as
/// `wasmtime run` does).
pub(crate) const EXIT_TRAP: u8 = 134;

/// `text` on one line: its lines trimmed, the empty ones dropped, the rest joined with spaces.
pub(crate) fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Prints `err` on one line (`stagelock: ...`, whatever the layers below put in their
/// messages) and picks the exit status for it: `busy_code` if the lock is held by someone
/// else, else [`EXIT_FAILURE`].
pub(crate) fn report(err: &anyhow::Error, busy_code: u8) -> ExitCode {
    eprintln!("stagelock: {}", one_line(&format!("{err:#}")));
    ExitCode::from(failure_status(err, busy_code))
}

/// The exit status for `err`: `busy_code` if the lock is held by someone else, else
/// [`EXIT_FAILURE`].
fn failure_status(err: &anyhow::Error, busy_code: u8) -> u8 {
    let busy = err
        .downcast_ref::<stagelock::Error>()
        .is_some_and(|e| e.kind() == stagelock::ErrorKind::WouldBlock);
    if busy { busy_code } else { EXIT_FAILURE }
}

/// A child command's exit status as ours: its code, or 128 + the signal that killed it.
pub(crate) fn exit_code(status: ExitStatus) -> ExitCode {
    ExitCode::from(child_status(status))
}

fn child_status(status: ExitStatus) -> u8 {
    match (status.code(), crate::platform::killed_by(status)) {
        // Windows codes go past 255 (0xC0000005 for a crash): those are a plain failure.
        (Some(code), _) => u8::try_from(code).unwrap_or(EXIT_FAILURE),
        (None, Some(signal)) => 128u8.wrapping_add(signal as u8),
        (None, None) => EXIT_FAILURE,
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use stagelock::Op;

    use super::*;

    fn core_error(kind: io::ErrorKind) -> stagelock::Error {
        stagelock::Error::io(Op::TryLockPath, "/tmp/x.lock", io::Error::from(kind))
    }

    #[test]
    fn one_line_trims_and_joins_lines_and_drops_empty_ones() {
        let text = "  run \"x\":\n\n  trapped\n\tat 0x1  \n";
        assert_eq!(one_line(text), "run \"x\": trapped at 0x1");
        assert_eq!(one_line("already one line"), "already one line");
        assert_eq!(one_line("\n \n"), "");
    }

    #[test]
    fn only_a_lock_held_by_someone_else_exits_with_the_busy_code() {
        let held = core_error(io::ErrorKind::WouldBlock);
        assert_eq!(failure_status(&held.into(), 3), 3);
        let missing = core_error(io::ErrorKind::NotFound);
        assert_eq!(failure_status(&missing.into(), 3), EXIT_FAILURE);
        let other = anyhow::anyhow!("run \"x.wasm\": cannot open it");
        assert_eq!(failure_status(&other, EXIT_BUSY), EXIT_FAILURE);
    }

    #[test]
    fn a_held_lock_under_context_still_exits_with_the_busy_code() {
        let err = anyhow::Error::from(core_error(io::ErrorKind::WouldBlock)).context("lock");
        assert_eq!(failure_status(&err, EXIT_BUSY), EXIT_BUSY);
    }

    #[test]
    #[cfg(unix)]
    fn a_child_status_passes_through_and_a_signal_gives_128_plus_it() {
        use std::os::unix::process::ExitStatusExt as _;
        assert_eq!(child_status(ExitStatus::from_raw(0)), 0);
        assert_eq!(child_status(ExitStatus::from_raw(7 << 8)), 7);
        assert_eq!(child_status(ExitStatus::from_raw(75 << 8)), 75);
        assert_eq!(child_status(ExitStatus::from_raw(9)), 137); // SIGKILL
        assert_eq!(child_status(ExitStatus::from_raw(15)), 143); // SIGTERM
    }
}
