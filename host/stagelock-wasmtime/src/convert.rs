//! Every conversion between WIT types and the native core's or the host's: errors into the
//! guest's `error-code` (1.0.0) or `error` record (0.2.0, 0.1.0), layouts, commit options,
//! recovery reports, and the records of the other bindings (sync stores, the older versions)
//! into and from the async 1.0.0 ones the host functions use. A new WIT type, or a new case of
//! one, is converted here.

use std::fmt;

use stagelock::{CommitOptions, Denial, Durability, ErrorKind, Layout, Report, SkipReason};
use wasmtime::component::Resource;

use crate::bindings::locks::ErrorCode;
use crate::bindings::{staging, v0_1, v0_2};
use crate::ctx::StagingLockCtxView;
use crate::error::{CommitFailure, HostError, Refusal, Repr};

/// What a 1.0.0 guest receives for `err`: its `error-code`, or (`Err`) the trap. Only `other`
/// carries text: a refused lock costs the guest a discriminant, no string.
pub(crate) fn guest_error(err: HostError) -> wasmtime::Result<ErrorCode> {
    Ok(match err.0 {
        Repr::Core(e) => core_code(&e),
        Repr::Refused(refusal, _) => refusal_code(refusal),
        Repr::Trap(e) => return Err(e),
    })
}

/// The 1.0.0 `error-code` for a failure of the native core.
fn core_code(e: &stagelock::Error) -> ErrorCode {
    match e.kind() {
        ErrorKind::WouldBlock => ErrorCode::WouldBlock,
        ErrorKind::NotFound => ErrorCode::NoEntry,
        ErrorKind::InvalidInput => ErrorCode::Invalid,
        ErrorKind::PermissionDenied => match e.denial() {
            Some(Denial::Access) => ErrorCode::Access,
            Some(Denial::ReadOnly) => ErrorCode::ReadOnly,
            // EPERM, and cap-std's refusal of a path leading out (no OS error).
            _ => ErrorCode::NotPermitted,
        },
        ErrorKind::NotAFile => ErrorCode::NotAFile,
        ErrorKind::LimitReached => ErrorCode::LimitReached,
        ErrorKind::AlreadyExists => ErrorCode::Exist,
        ErrorKind::CrossDevice => ErrorCode::CrossDevice,
        ErrorKind::LockLost => ErrorCode::LockLost,
        // I/O errors and whatever kinds the core adds: the one case with the host's text.
        _ => other(e.to_message()),
    }
}

/// `other`, always with its text: the one place the case is built (the WIT's `option` is as
/// 1.0.0 shipped it; a guest never gets a failure without words).
fn other(text: String) -> ErrorCode {
    ErrorCode::Other(Some(text))
}

/// The 1.0.0 `error-code` for a refusal of the host's own.
fn refusal_code(refusal: Refusal) -> ErrorCode {
    match refusal {
        Refusal::LimitReached => ErrorCode::LimitReached,
        Refusal::ReadOnly => ErrorCode::ReadOnly,
        Refusal::NotADirectory => ErrorCode::NotDirectory,
        // 1.0.0's `lock-request.get` says so with its nested result instead.
        Refusal::OutcomeTaken => ErrorCode::Invalid,
        Refusal::LocalOnly => ErrorCode::NotPermitted,
    }
}

/// What a 0.2.0 (or, converted, 0.1.0) guest receives for `err`: an `error` with its code and
/// the whole message, or (`Err`) the trap.
pub(crate) fn legacy_error(err: HostError) -> wasmtime::Result<v0_2::locks::Error> {
    use v0_2::locks::ErrorCode as C;
    Ok(match err.0 {
        Repr::Core(e) => v0_2::locks::Error {
            code: match e.kind() {
                ErrorKind::WouldBlock => C::WouldBlock,
                ErrorKind::NotFound => C::NotFound,
                ErrorKind::InvalidInput => C::InvalidInput,
                ErrorKind::PermissionDenied => C::AccessDenied,
                ErrorKind::NotAFile => C::NotAFile,
                ErrorKind::LimitReached => C::LimitReached,
                ErrorKind::AlreadyExists => C::AlreadyExists,
                ErrorKind::LockLost => C::LockLost,
                _ => C::Io,
            },
            // One exact allocation, no formatting.
            message: e.to_message(),
        },
        Repr::Refused(refusal, message) => v0_2::locks::Error {
            code: match refusal {
                Refusal::LimitReached => C::LimitReached,
                Refusal::ReadOnly => C::AccessDenied,
                Refusal::NotADirectory => C::NotADirectory,
                Refusal::OutcomeTaken => C::InvalidInput,
                Refusal::LocalOnly => C::AccessDenied,
            },
            message,
        },
        Repr::Trap(e) => return Err(e),
    })
}

impl fmt::Debug for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = match &self.0 {
            Repr::Core(e) => core_code(e),
            Repr::Refused(refusal, _) => refusal_code(*refusal),
            Repr::Trap(e) => return write!(f, "HostError::Trap({e:?})"),
        };
        match code {
            ErrorCode::Other(_) => write!(f, "HostError::Guest(ErrorCode::Other: {self})"),
            code => write!(f, "HostError::Guest({code:?}: {self})"),
        }
    }
}

impl StagingLockCtxView<'_> {
    /// The stage a failed commit hands back to the guest (counted as held again), if any.
    fn hand_back(
        &mut self,
        err: &mut CommitFailure,
    ) -> wasmtime::Result<Option<Resource<stagelock::Stage>>> {
        err.stage.take().map(|s| self.hold(*s)).transpose()
    }

    /// What a 1.0.0 guest receives for a failed commit: the code, with the stage handed back if
    /// it still exists; or (`Err`) the trap.
    pub(crate) fn commit_error(
        &mut self,
        mut err: CommitFailure,
    ) -> wasmtime::Result<staging::CommitError> {
        let stage = self.hand_back(&mut err)?;
        let code = guest_error(err.error)?;
        Ok(staging::CommitError { code, stage })
    }

    /// [`commit_error`](Self::commit_error) for a 0.2.0 (or, converted, 0.1.0) guest.
    pub(crate) fn legacy_commit_error(
        &mut self,
        mut err: CommitFailure,
    ) -> wasmtime::Result<v0_2::staging::CommitError> {
        let stage = self.hand_back(&mut err)?;
        let error = legacy_error(err.error)?;
        Ok(v0_2::staging::CommitError { error, stage })
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
                SkipReason::NotAStage(_) => staging::SkipReason::NotAStage,
                SkipReason::Failed(e) => staging::SkipReason::Failed(core_code(&e)),
                // A reason the core adds later: its words, in the one case that carries them.
                ref reason => staging::SkipReason::Failed(other(reason.to_string())),
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

/// Records of the other bindings (`$m`: sync stores, the older versions) from and into the
/// async 1.0.0 bindings' ones, which the host functions use. `$failed` converts the code of
/// a failed recovery (1.0.0 keeps it; older versions have a bare `failed`).
macro_rules! convert_records {
    ($m:path, failed: |$code:ident| $failed:expr) => {
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
                            a::SkipReason::Failed($code) => $failed,
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
        };
    };
}

convert_records!(crate::bindings::sync::staging, failed: |code| m::SkipReason::Failed(code));
convert_records!(v0_2::staging, failed: |_code| m::SkipReason::Failed);
convert_records!(v0_2::sync::staging, failed: |_code| m::SkipReason::Failed);
convert_records!(v0_1::staging, failed: |_code| m::SkipReason::Failed);
convert_records!(v0_1::sync::staging, failed: |_code| m::SkipReason::Failed);

impl From<staging::CommitError> for crate::bindings::sync::staging::CommitError {
    fn from(err: staging::CommitError) -> Self {
        Self {
            code: err.code,
            stage: err.stage,
        }
    }
}

/// 0.2.0's commit errors as the other bindings of the older versions have them.
macro_rules! legacy_commit_error {
    ($m:path) => {
        impl From<v0_2::staging::CommitError> for $m {
            fn from(err: v0_2::staging::CommitError) -> Self {
                #[allow(clippy::useless_conversion)] // the same error record for sync 0.2.0
                Self {
                    error: err.error.into(),
                    stage: err.stage,
                }
            }
        }
    };
}

legacy_commit_error!(v0_2::sync::staging::CommitError);
legacy_commit_error!(v0_1::staging::CommitError);
legacy_commit_error!(v0_1::sync::staging::CommitError);

/// 0.1.0's error codes are 0.2.0's.
impl From<v0_2::locks::Error> for v0_1::locks::Error {
    fn from(err: v0_2::locks::Error) -> Self {
        use v0_1::locks::ErrorCode as B;
        use v0_2::locks::ErrorCode as A;
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

// The cases are errno values: the OS errors of Unix.
#[cfg(all(test, unix))]
mod tests {
    use std::io;
    use std::path::Path;

    use stagelock::Op;

    use super::*;

    /// bindgen gives variants no `PartialEq`: they are compared by what `Debug` shows.
    macro_rules! assert_code {
        ($left:expr, $right:expr $(, $($why:tt)*)?) => {
            assert_eq!(format!("{:?}", $left), format!("{:?}", $right) $(, $($why)*)?)
        };
    }

    fn os_error(errno: i32) -> stagelock::Error {
        stagelock::Error::io(
            Op::TryLockPath,
            "dir/x.lock",
            io::Error::from_raw_os_error(errno),
        )
    }

    /// `other` is built in one place, [`other`], which always gives it text: no other line of
    /// the crate's code (tests apart) names the case but to match it (`Other(_)`).
    #[test]
    fn other_is_built_only_with_its_text() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut built = Vec::new();
        for entry in std::fs::read_dir(&src).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text
                .lines()
                .take_while(|l| !l.starts_with("#[cfg(all(test"));
            for line in code.map(|l| l.split("//").next().unwrap().trim()) {
                if line.contains("Other(") && !line.contains("Other(_)") {
                    built.push(line.to_owned());
                }
            }
        }
        assert_eq!(
            built,
            ["ErrorCode::Other(Some(text))"],
            "`other` built outside `other()`"
        );
        assert_code!(other("why".into()), ErrorCode::Other(Some("why".into())));
    }

    #[test]
    fn core_errors_reach_a_1_0_guest_as_bare_codes_but_for_other() {
        let cases = [
            (libc::EAGAIN, ErrorCode::WouldBlock),
            (libc::ENOENT, ErrorCode::NoEntry),
            (libc::EINVAL, ErrorCode::Invalid),
            (libc::ENAMETOOLONG, ErrorCode::Invalid),
            (libc::EACCES, ErrorCode::Access),
            (libc::EPERM, ErrorCode::NotPermitted),
            (libc::EROFS, ErrorCode::ReadOnly),
            (libc::EISDIR, ErrorCode::NotAFile),
            (libc::EMFILE, ErrorCode::LimitReached),
            (libc::EEXIST, ErrorCode::Exist),
            (libc::EXDEV, ErrorCode::CrossDevice),
        ];
        for (errno, code) in cases {
            assert_code!(
                guest_error(os_error(errno).into()).unwrap(),
                code,
                "errno {errno}"
            );
        }
        let io = os_error(libc::EIO);
        let message = io.to_message();
        assert_code!(
            guest_error(io.into()).unwrap(),
            ErrorCode::Other(Some(message))
        );
    }

    #[test]
    fn an_escape_is_not_permitted_for_a_1_0_guest_and_access_denied_for_older_ones() {
        let root = cap_std::fs::Dir::open_ambient_dir(".", cap_std::ambient_authority()).unwrap();
        let escape = stagelock::StagingLock::try_lock_path(&root, "../x.lock").unwrap_err();
        let message = escape.to_message();
        assert_code!(
            guest_error(HostError::from(escape)).unwrap(),
            ErrorCode::NotPermitted
        );
        let escape = stagelock::StagingLock::try_lock_path(&root, "../x.lock").unwrap_err();
        let old = legacy_error(escape.into()).unwrap();
        assert_eq!(
            (old.code, old.message),
            (v0_2::locks::ErrorCode::AccessDenied, message)
        );
    }

    #[test]
    fn older_guests_get_the_whole_message_with_their_code() {
        use v0_2::locks::ErrorCode as Old;
        let cases = [
            (libc::EAGAIN, Old::WouldBlock),
            (libc::ENOENT, Old::NotFound),
            (libc::EINVAL, Old::InvalidInput),
            (libc::EACCES, Old::AccessDenied),
            (libc::EEXIST, Old::AlreadyExists),
            (libc::EXDEV, Old::Io),
            (libc::EIO, Old::Io),
        ];
        for (errno, code) in cases {
            let core = os_error(errno);
            let message = core.to_message();
            let old = legacy_error(core.into()).unwrap();
            assert_eq!((old.code, old.message), (code, message), "errno {errno}");
        }
    }

    #[test]
    fn the_hosts_own_refusals_have_their_codes_in_every_version() {
        let path = Path::new("x.lock");
        let refusals = [
            (
                HostError::read_only(Op::TryLockPath, path),
                ErrorCode::ReadOnly,
            ),
            (
                HostError::not_a_directory(Op::TryLockPath, path),
                ErrorCode::NotDirectory,
            ),
            (
                HostError::limit_reached(Op::TryLockPath, path, 3),
                ErrorCode::LimitReached,
            ),
        ];
        for (refusal, code) in refusals {
            let message = refusal.to_string();
            assert!(
                message.starts_with("try-lock-path \"x.lock\": "),
                "{message}"
            );
            assert_code!(guest_error(refusal).unwrap(), code);
        }
        let old = legacy_error(HostError::read_only(Op::TryLockPath, path)).unwrap();
        assert_eq!(old.code, v0_2::locks::ErrorCode::AccessDenied);
        let old = legacy_error(HostError::outcome_taken()).unwrap();
        assert_eq!(
            (old.code, old.message.as_str()),
            (
                v0_2::locks::ErrorCode::InvalidInput,
                "lock-request.get: the outcome was already taken"
            )
        );
    }

    #[test]
    fn a_host_error_displays_as_the_message_and_debugs_with_its_code() {
        let err = HostError::from(os_error(libc::EAGAIN));
        let message = os_error(libc::EAGAIN).to_message();
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
    fn traps_stay_traps() {
        let err = HostError::from(wasmtime::format_err!("host failure"));
        assert!(!err.is_guest_error());
        assert_eq!(guest_error(err).unwrap_err().to_string(), "host failure");
        let err = HostError::from(wasmtime::format_err!("host failure"));
        assert_eq!(legacy_error(err).unwrap_err().to_string(), "host failure");
    }

    #[test]
    fn every_error_code_means_the_same_in_0_1_0_as_in_0_2_0() {
        use v0_1::locks::ErrorCode as Old;
        use v0_2::locks::ErrorCode as New;
        let codes = [
            (New::WouldBlock, Old::WouldBlock),
            (New::NotFound, Old::NotFound),
            (New::InvalidInput, Old::InvalidInput),
            (New::AccessDenied, Old::AccessDenied),
            (New::NotAFile, Old::NotAFile),
            (New::NotADirectory, Old::NotADirectory),
            (New::LimitReached, Old::LimitReached),
            (New::AlreadyExists, Old::AlreadyExists),
            (New::Io, Old::Io),
            (New::LockLost, Old::LockLost),
        ];
        for (code, old) in codes {
            let message = format!("{code:?}");
            let err = v0_1::locks::Error::from(v0_2::locks::Error {
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
