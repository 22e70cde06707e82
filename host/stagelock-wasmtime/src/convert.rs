//! Every conversion between WIT types and the native core's or the host's: errors into the
//! guest's `error` (and their `error-code`), layouts, commit options, recovery reports, and the
//! records of the other bindings (sync stores, WIT 0.1.0) into and from the async 0.2.0 ones the
//! host functions use. A new WIT type, or a new case of one, is converted here.

use std::fmt;

use stagelock::{CommitOptions, Durability, ErrorKind, Layout, Report, SkipReason};

use crate::bindings::locks::{self, ErrorCode};
use crate::bindings::{staging, v0_1};
use crate::ctx::StagingLockCtxView;
use crate::error::{CommitFailure, HostError, Refusal, Repr};

/// What the guest receives for `err`: an `error` with its code and message, or (`Err`) the
/// trap.
pub(crate) fn guest_error(err: HostError) -> wasmtime::Result<locks::Error> {
    Ok(match err.0 {
        Repr::Core(e) => locks::Error {
            code: core_code(e.kind()),
            // One exact allocation, no formatting.
            message: e.to_message(),
        },
        Repr::Refused(refusal, message) => locks::Error {
            code: refusal_code(refusal),
            message,
        },
        Repr::Trap(e) => return Err(e),
    })
}

/// The guest's `error-code` for a failure of the native core.
fn core_code(kind: ErrorKind) -> ErrorCode {
    match kind {
        ErrorKind::WouldBlock => ErrorCode::WouldBlock,
        ErrorKind::NotFound => ErrorCode::NotFound,
        ErrorKind::InvalidInput => ErrorCode::InvalidInput,
        ErrorKind::PermissionDenied => ErrorCode::AccessDenied,
        ErrorKind::NotAFile => ErrorCode::NotAFile,
        ErrorKind::LimitReached => ErrorCode::LimitReached,
        ErrorKind::AlreadyExists => ErrorCode::AlreadyExists,
        ErrorKind::LockLost => ErrorCode::LockLost,
        _ => ErrorCode::Io,
    }
}

/// The guest's `error-code` for a refusal of the host's own.
fn refusal_code(refusal: Refusal) -> ErrorCode {
    match refusal {
        Refusal::LimitReached => ErrorCode::LimitReached,
        Refusal::ReadOnly => ErrorCode::AccessDenied,
        Refusal::NotADirectory => ErrorCode::NotADirectory,
        Refusal::OutcomeTaken => ErrorCode::InvalidInput,
    }
}

impl fmt::Debug for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = match &self.0 {
            Repr::Core(e) => core_code(e.kind()),
            Repr::Refused(refusal, _) => refusal_code(*refusal),
            Repr::Trap(e) => return write!(f, "HostError::Trap({e:?})"),
        };
        write!(f, "HostError::Guest({code:?}: {self})")
    }
}

impl StagingLockCtxView<'_> {
    /// What the guest receives for a failed commit: the error, with the stage handed back (and
    /// counted as held again) if it still exists; or (`Err`) the trap.
    pub(crate) fn commit_error(
        &mut self,
        err: CommitFailure,
    ) -> wasmtime::Result<staging::CommitError> {
        let error = guest_error(err.error)?;
        let stage = err.stage.map(|s| self.hold(s)).transpose()?;
        Ok(staging::CommitError { error, stage })
    }
}

impl From<staging::Layout> for Layout {
    fn from(layout: staging::Layout) -> Self {
        match layout {
            staging::Layout::Pairs => Layout::Pairs,
            staging::Layout::PerDirectory => Layout::PerDirectory,
        }
    }
}

impl From<staging::CommitOptions> for CommitOptions {
    fn from(options: staging::CommitOptions) -> Self {
        let durability = match options.durability {
            staging::Durability::Full => Durability::Full,
            staging::Durability::None => Durability::None,
        };
        CommitOptions::new()
            .replace(options.replace)
            .durability(durability)
    }
}

impl From<Report> for staging::Report {
    fn from(report: Report) -> Self {
        let removed = report.removed.into_iter().map(|r| staging::Recovered {
            id: r.id,
            had_lock: r.had_lock,
            had_resource: r.had_resource,
        });
        let skipped = report.skipped.into_iter().map(|k| staging::Skipped {
            message: k.reason.to_string(),
            reason: match k.reason {
                SkipReason::Held => staging::SkipReason::Held,
                SkipReason::Vanished => staging::SkipReason::Vanished,
                SkipReason::NotAStage => staging::SkipReason::NotAStage,
                _ => staging::SkipReason::Failed,
            },
            id: k.id,
        });
        staging::Report {
            dry_run: report.dry_run,
            removed: removed.collect(),
            skipped: skipped.collect(),
        }
    }
}

/// Records of the other bindings (sync stores, WIT 0.1.0) from and into the async 0.2.0
/// bindings' ones, which the host functions use.
macro_rules! convert_records {
    ($m:path) => {
        const _: () = {
            use crate::bindings::staging as a;
            use $m as m;

            impl From<m::Layout> for a::Layout {
                fn from(layout: m::Layout) -> Self {
                    match layout {
                        m::Layout::Pairs => a::Layout::Pairs,
                        m::Layout::PerDirectory => a::Layout::PerDirectory,
                    }
                }
            }

            impl From<m::CommitOptions> for a::CommitOptions {
                fn from(options: m::CommitOptions) -> Self {
                    a::CommitOptions {
                        replace: options.replace,
                        durability: match options.durability {
                            m::Durability::Full => a::Durability::Full,
                            m::Durability::None => a::Durability::None,
                        },
                    }
                }
            }

            impl From<a::Report> for m::Report {
                fn from(report: a::Report) -> Self {
                    let removed = report.removed.into_iter().map(|r| m::Recovered {
                        id: r.id,
                        had_lock: r.had_lock,
                        had_resource: r.had_resource,
                    });
                    let skipped = report.skipped.into_iter().map(|k| m::Skipped {
                        id: k.id,
                        reason: match k.reason {
                            a::SkipReason::Held => m::SkipReason::Held,
                            a::SkipReason::Vanished => m::SkipReason::Vanished,
                            a::SkipReason::Failed => m::SkipReason::Failed,
                            a::SkipReason::NotAStage => m::SkipReason::NotAStage,
                        },
                        message: k.message,
                    });
                    m::Report {
                        dry_run: report.dry_run,
                        removed: removed.collect(),
                        skipped: skipped.collect(),
                    }
                }
            }

            impl From<a::CommitError> for m::CommitError {
                fn from(err: a::CommitError) -> Self {
                    #[allow(clippy::useless_conversion)] // the same type for sync 0.2.0
                    m::CommitError {
                        error: err.error.into(),
                        stage: err.stage,
                    }
                }
            }
        };
    };
}

convert_records!(crate::bindings::sync::staging);
convert_records!(crate::bindings::v0_1::staging);
convert_records!(crate::bindings::v0_1::sync::staging);

/// 0.1.0's error codes are 0.2.0's.
impl From<locks::Error> for v0_1::locks::Error {
    fn from(err: locks::Error) -> Self {
        use locks::ErrorCode as A;
        use v0_1::locks::ErrorCode as B;
        let code = match err.code {
            A::WouldBlock => B::WouldBlock,
            A::NotFound => B::NotFound,
            A::InvalidInput => B::InvalidInput,
            A::AccessDenied => B::AccessDenied,
            A::NotAFile => B::NotAFile,
            A::NotADirectory => B::NotADirectory,
            A::LimitReached => B::LimitReached,
            A::AlreadyExists => B::AlreadyExists,
            A::Io => B::Io,
            A::LockLost => B::LockLost,
        };
        v0_1::locks::Error {
            code,
            message: err.message,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use stagelock::Op;

    use super::*;

    fn core_error(kind: io::ErrorKind) -> stagelock::Error {
        stagelock::Error::io(Op::TryLockPath, "dir/x.lock", io::Error::from(kind))
    }

    #[test]
    fn core_errors_reach_the_guest_with_their_code_and_message() {
        let cases = [
            (io::ErrorKind::WouldBlock, ErrorCode::WouldBlock),
            (io::ErrorKind::NotFound, ErrorCode::NotFound),
            (io::ErrorKind::InvalidInput, ErrorCode::InvalidInput),
            (io::ErrorKind::PermissionDenied, ErrorCode::AccessDenied),
            (io::ErrorKind::AlreadyExists, ErrorCode::AlreadyExists),
            (io::ErrorKind::Other, ErrorCode::Io),
        ];
        for (kind, code) in cases {
            let core = core_error(kind);
            let message = core.to_message();
            let guest = guest_error(core.into()).unwrap();
            assert_eq!((guest.code, guest.message), (code, message), "{kind:?}");
        }
    }

    #[test]
    fn the_core_kinds_without_an_io_error_keep_their_own_code() {
        assert_eq!(core_code(ErrorKind::NotAFile), ErrorCode::NotAFile);
        assert_eq!(core_code(ErrorKind::LimitReached), ErrorCode::LimitReached);
        assert_eq!(core_code(ErrorKind::LockLost), ErrorCode::LockLost);
        assert_eq!(core_code(ErrorKind::Other), ErrorCode::Io);
    }

    #[test]
    fn a_host_error_displays_as_the_guest_message_and_debugs_with_its_code() {
        let err = HostError::from(core_error(io::ErrorKind::WouldBlock));
        let message = core_error(io::ErrorKind::WouldBlock).to_message();
        assert_eq!(err.to_string(), message);
        assert_eq!(
            format!("{err:?}"),
            format!("HostError::Guest(ErrorCode::WouldBlock: {message})")
        );
        let trap = HostError::from(wasmtime::format_err!("bad"));
        assert_eq!(trap.to_string(), "trap: bad");
        assert!(format!("{trap:?}").starts_with("HostError::Trap("));
    }

    #[test]
    fn an_outcome_taken_twice_is_invalid_input() {
        let err = guest_error(HostError::outcome_taken()).unwrap();
        assert_eq!(err.code, ErrorCode::InvalidInput);
        assert_eq!(
            err.message,
            "lock-request.get: the outcome was already taken"
        );
    }

    #[test]
    fn traps_stay_traps() {
        let err = HostError::from(wasmtime::format_err!("host failure"));
        assert!(!err.is_guest_error());
        assert_eq!(guest_error(err).unwrap_err().to_string(), "host failure");
    }

    #[test]
    fn every_error_code_means_the_same_in_0_1_0() {
        use v0_1::locks::ErrorCode as Old;
        let codes = [
            (ErrorCode::WouldBlock, Old::WouldBlock),
            (ErrorCode::NotFound, Old::NotFound),
            (ErrorCode::InvalidInput, Old::InvalidInput),
            (ErrorCode::AccessDenied, Old::AccessDenied),
            (ErrorCode::NotAFile, Old::NotAFile),
            (ErrorCode::NotADirectory, Old::NotADirectory),
            (ErrorCode::LimitReached, Old::LimitReached),
            (ErrorCode::AlreadyExists, Old::AlreadyExists),
            (ErrorCode::Io, Old::Io),
            (ErrorCode::LockLost, Old::LockLost),
        ];
        for (code, old) in codes {
            let message = format!("{code:?}");
            let err = v0_1::locks::Error::from(locks::Error {
                code,
                message: message.clone(),
            });
            assert_eq!((err.code, err.message), (old, message));
        }
    }

    #[test]
    fn layouts_and_commit_options_reach_the_core_unchanged() {
        assert_eq!(Layout::from(staging::Layout::Pairs), Layout::Pairs);
        assert_eq!(
            Layout::from(staging::Layout::PerDirectory),
            Layout::PerDirectory
        );
        let old = v0_1::staging::Layout::PerDirectory;
        assert_eq!(
            Layout::from(staging::Layout::from(old)),
            Layout::PerDirectory
        );
        for (replace, durability, core) in [
            (false, staging::Durability::Full, Durability::Full),
            (true, staging::Durability::None, Durability::None),
        ] {
            let options = staging::CommitOptions {
                replace,
                durability,
            };
            let expected = CommitOptions::new().replace(replace).durability(core);
            assert_eq!(CommitOptions::from(options), expected);
        }
    }
}
