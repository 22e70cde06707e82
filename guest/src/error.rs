//! [`Error`] and [`ErrorKind`]: what a failed call says. The host sends only the WIT
//! `error-code`; the one-line message is composed here, from the operation, the path and the
//! code, when it is shown.

use std::fmt;
use std::io;
use std::time::Duration;

use crate::bindings::stagelock::staging::locks;

/// The class of an [`Error`]; one per case of the WIT `error-code` (named in each).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Held by someone else, or still held when the wait ran out (`would-block`;
    /// `EWOULDBLOCK`).
    WouldBlock,
    /// A parent directory, or a file that must exist, is missing (`no-entry`; `ENOENT`).
    NotFound,
    /// A malformed pattern or path (`invalid`; `EINVAL`, `ENAMETOOLONG`).
    InvalidInput,
    /// The host's filesystem refused access (`access`; `EACCES`).
    AccessDenied,
    /// The path escapes the directory (`..`, absolute, a symlink out), or the host refused the
    /// operation (`not-permitted`; `EPERM`).
    NotPermitted,
    /// The directory was granted read-only, or its filesystem is read-only (`read-only`;
    /// `EROFS`).
    ReadOnly,
    /// Not a regular file: a directory, FIFO, socket, device or symlink (`not-a-file`).
    NotAFile,
    /// The descriptor is not a directory (`not-directory`; `ENOTDIR`).
    NotADirectory,
    /// Too many locks held: the host's cap, or its descriptors (`limit-reached`; `EMFILE`).
    LimitReached,
    /// The destination exists (`exist`; `EEXIST`).
    AlreadyExists,
    /// The destination is on another filesystem than the staging area (`cross-device`;
    /// `EXDEV`).
    CrossDevice,
    /// The lock was lost while held (its file was deleted or taken over): nothing was
    /// committed (`lock-lost`).
    LockLost,
    /// Any other failure on the host, such as an I/O error (`other`); the message is the
    /// host's.
    Other,
}

/// A staging-lock operation, as messages name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    CreateAndLock,
    TryLockPath,
    LockPath,
    UnlockAndDelete,
    Stage,
    Commit,
    Abort,
    Recover,
    OpenArea,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::CreateAndLock => "create-and-lock",
            Op::TryLockPath => "try-lock-path",
            Op::LockPath => "lock-path",
            Op::UnlockAndDelete => "unlock-and-delete",
            Op::Stage => "stage",
            Op::Commit => "commit",
            Op::Abort => "abort",
            Op::Recover => "recover",
            Op::OpenArea => "open-area",
        }
    }
}

/// What a message says beyond what its kind says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Detail {
    /// Nothing: the kind's own words.
    None,
    /// A wait that ran out after this long.
    Waited(Duration),
    /// Words of this crate's.
    Text(&'static str),
    /// The host's whole message (it names the operation and the path itself).
    Host(String),
}

/// A failed staging-lock operation: its [`ErrorKind`], and a one-line message that names the
/// operation and the path, for example
/// `try-lock-path "staging/1/staging.lock": held by another lock holder`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub(crate) kind: ErrorKind,
    pub(crate) op: Op,
    pub(crate) path: String,
    pub(crate) detail: Detail,
}

impl Error {
    /// The error `code` of `op` on `path`.
    #[cold]
    pub(crate) fn new(code: locks::ErrorCode, op: Op, path: &str) -> Self {
        use locks::ErrorCode as C;
        let mut detail = Detail::None;
        let kind = match code {
            C::WouldBlock => ErrorKind::WouldBlock,
            C::NoEntry => ErrorKind::NotFound,
            C::Invalid => ErrorKind::InvalidInput,
            C::Access => ErrorKind::AccessDenied,
            C::NotPermitted => ErrorKind::NotPermitted,
            C::ReadOnly => ErrorKind::ReadOnly,
            C::NotAFile => ErrorKind::NotAFile,
            C::NotDirectory => ErrorKind::NotADirectory,
            C::LimitReached => ErrorKind::LimitReached,
            C::Exist => ErrorKind::AlreadyExists,
            C::CrossDevice => ErrorKind::CrossDevice,
            C::LockLost => ErrorKind::LockLost,
            C::Other(text) => {
                if let Some(text) = text {
                    detail = Detail::Host(text);
                }
                ErrorKind::Other
            }
        };
        Error {
            kind,
            op,
            path: path.to_owned(),
            detail,
        }
    }

    /// The `wasi:filesystem` error `code` of `op` on `path` (opening a directory by path).
    #[cold]
    pub(crate) fn of_filesystem(code: crate::filesystem::ErrorCode, op: Op, path: &str) -> Self {
        use crate::filesystem::ErrorCode as C;
        let (kind, detail) = match code {
            C::NoEntry => (ErrorKind::NotFound, Detail::None),
            C::NotDirectory => (ErrorKind::NotADirectory, Detail::Text("not a directory")),
            C::Access => (ErrorKind::AccessDenied, Detail::None),
            C::NotPermitted => (ErrorKind::NotPermitted, Detail::None),
            C::ReadOnly => (ErrorKind::ReadOnly, Detail::None),
            C::Loop => (
                ErrorKind::InvalidInput,
                Detail::Text("too many symbolic links"),
            ),
            C::NameTooLong | C::Invalid => (ErrorKind::InvalidInput, Detail::None),
            C::InsufficientMemory | C::InsufficientSpace | C::Quota => (
                ErrorKind::LimitReached,
                Detail::Text("out of memory or space"),
            ),
            other => (ErrorKind::Other, Detail::Text(other.message())),
        };
        Error {
            kind,
            op,
            path: path.to_owned(),
            detail,
        }
    }

    /// [`Error::new`] for `map_err`.
    pub(crate) fn of(op: Op, path: &str) -> impl FnOnce(locks::ErrorCode) -> Self + '_ {
        move |code| Error::new(code, op, path)
    }

    /// The class of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The one-line message, as [`Display`](fmt::Display) writes it.
    pub fn message(&self) -> String {
        self.to_string()
    }

    /// What the kind says, in the words of the host's messages.
    fn why(&self) -> &'static str {
        match self.kind {
            ErrorKind::WouldBlock => "held by another lock holder",
            ErrorKind::NotFound => "no such file or directory",
            ErrorKind::InvalidInput => {
                "invalid argument (an empty path, a NUL byte, a `/` in a pattern, or too long)"
            }
            ErrorKind::AccessDenied => "permission denied",
            ErrorKind::NotPermitted => {
                "path escapes the directory it is resolved in, or the host does not permit it"
            }
            ErrorKind::ReadOnly => {
                "the directory was granted read-only, or is on a read-only filesystem"
            }
            ErrorKind::NotAFile => {
                "not a regular file (a directory, FIFO, socket, device or symlink)"
            }
            ErrorKind::NotADirectory => "the descriptor is not a directory",
            ErrorKind::LimitReached => {
                "too many locks held: the host's limit, or its file descriptors"
            }
            ErrorKind::AlreadyExists => "destination exists",
            ErrorKind::CrossDevice => "destination is on another filesystem than the staging area",
            ErrorKind::LockLost if self.op == Op::Commit => {
                "lock lost; nothing was moved, the stage is left for recovery"
            }
            ErrorKind::LockLost => "lock lost: its file was deleted or taken over",
            ErrorKind::Other => "failed on the host",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Detail::Host(text) = &self.detail {
            return f.write_str(text);
        }
        write!(f, "{} {:?}: ", self.op.as_str(), self.path)?;
        match &self.detail {
            Detail::Waited(d) => write!(f, "still held by another lock holder after waiting {d:?}"),
            Detail::Text(text) => f.write_str(text),
            Detail::None | Detail::Host(_) => f.write_str(self.why()),
        }
    }
}

impl std::error::Error for Error {}

impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        let kind = match e.kind {
            ErrorKind::WouldBlock => io::ErrorKind::WouldBlock,
            ErrorKind::NotFound => io::ErrorKind::NotFound,
            ErrorKind::InvalidInput | ErrorKind::NotAFile => io::ErrorKind::InvalidInput,
            ErrorKind::AccessDenied | ErrorKind::NotPermitted => io::ErrorKind::PermissionDenied,
            ErrorKind::ReadOnly => io::ErrorKind::ReadOnlyFilesystem,
            ErrorKind::NotADirectory => io::ErrorKind::NotADirectory,
            ErrorKind::LimitReached => io::ErrorKind::QuotaExceeded,
            ErrorKind::AlreadyExists => io::ErrorKind::AlreadyExists,
            ErrorKind::CrossDevice => io::ErrorKind::CrossesDevices,
            ErrorKind::LockLost | ErrorKind::Other => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}

#[cfg(test)]
mod tests {
    //! The messages composed here from a code must read as the host's did when it sent them.
    use super::*;
    use locks::ErrorCode as C;

    #[test]
    fn messages_name_the_operation_and_the_path_in_one_line() {
        let busy = Error::new(C::WouldBlock, Op::TryLockPath, "staging/1/staging.lock");
        assert_eq!(
            busy.to_string(),
            "try-lock-path \"staging/1/staging.lock\": held by another lock holder"
        );
        let mut waited = Error::new(C::WouldBlock, Op::LockPath, "x.lock");
        waited.detail = Detail::Waited(Duration::from_millis(300));
        assert_eq!(
            waited.to_string(),
            "lock-path \"x.lock\": still held by another lock holder after waiting 300ms"
        );
        let host = "commit \"out\": No space left on device (os error 28)";
        let io = Error::new(C::Other(Some(host.to_owned())), Op::Commit, "out");
        assert_eq!(
            (io.kind(), io.to_string()),
            (ErrorKind::Other, host.to_owned())
        );
        for code in [
            C::NoEntry,
            C::Invalid,
            C::Access,
            C::NotPermitted,
            C::ReadOnly,
            C::NotAFile,
            C::NotDirectory,
            C::LimitReached,
            C::Exist,
            C::CrossDevice,
            C::LockLost,
            C::Other(None),
        ] {
            let e = Error::new(code, Op::Commit, "dest\n\"x\"");
            let message = e.to_string();
            assert!(
                message.starts_with("commit \"dest\\n\\\"x\\\"\": "),
                "{message}"
            );
            assert!(!message.contains('\n'), "{message}");
        }
    }
}
