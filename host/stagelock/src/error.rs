//! The crate's error type: what went wrong ([`ErrorKind`]), in which operation, on which path.

use std::borrow::Cow;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::sys;

/// The broad class of an [`Error`], stable across platforms; match on this, not on messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The lock is held by someone else (another process, thread, guest or handle).
    /// POSIX: `EAGAIN` / `EACCES` from `fcntl(F_SETLK)`. Windows: `ERROR_LOCK_VIOLATION` from
    /// `LockFileEx`, and `ERROR_SHARING_VIOLATION` (someone has the file or directory open in a
    /// way that excludes ours, for now).
    WouldBlock,
    /// A directory on the way to the path does not exist (`ENOENT`). Parents are never created.
    NotFound,
    /// The pattern or path is malformed: a separator in a pattern, an empty path, a NUL byte,
    /// a name too long (`EINVAL`, `ENAMETOOLONG`).
    InvalidInput,
    /// The path would leave the directory it is resolved in (`..`, an absolute path, a symlink
    /// pointing out), or the OS refused access (`EACCES`, `EPERM`, `EROFS`).
    PermissionDenied,
    /// The path names something other than a regular file: a directory, FIFO, socket, device or
    /// a symbolic link (final symlinks are never followed).
    NotAFile,
    /// A resource limit was hit: out of file descriptors (`EMFILE`, `ENFILE`), or a cap on held
    /// locks set by the embedder.
    LimitReached,
    /// The destination exists and overwriting it was not asked for (`EEXIST`).
    AlreadyExists,
    /// The destination of a commit is on another filesystem than the staging area (`EXDEV`): a
    /// commit is a rename, which cannot cross filesystems.
    CrossDevice,
    /// A lock we held is no longer ours: its file was deleted (and maybe made anew, maybe
    /// locked by someone else), or another holder has a lock on it. See
    /// [`StagingLock::verify`](crate::StagingLock::verify).
    LockLost,
    /// Anything else the OS reported (`EIO`, `ENOSPC`, ...); the message has the details.
    Other,
}

impl ErrorKind {
    /// Classifies an OS error.
    pub(crate) fn of_io(err: &io::Error) -> Self {
        if let Some(kind) = sys::kind_of(err) {
            return match kind {
                sys::OsErrorKind::NotAFile => Self::NotAFile,
                sys::OsErrorKind::LimitReached => Self::LimitReached,
                sys::OsErrorKind::PermissionDenied => Self::PermissionDenied,
                sys::OsErrorKind::InvalidInput => Self::InvalidInput,
                sys::OsErrorKind::CrossDevice => Self::CrossDevice,
                sys::OsErrorKind::NotFound => Self::NotFound,
                sys::OsErrorKind::WouldBlock => Self::WouldBlock,
            };
        }
        match err.kind() {
            io::ErrorKind::WouldBlock => Self::WouldBlock,
            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => Self::NotFound,
            io::ErrorKind::InvalidInput | io::ErrorKind::InvalidFilename => Self::InvalidInput,
            io::ErrorKind::PermissionDenied => Self::PermissionDenied,
            io::ErrorKind::AlreadyExists => Self::AlreadyExists,
            _ => Self::Other,
        }
    }

    fn io_kind(self) -> io::ErrorKind {
        match self {
            Self::WouldBlock => io::ErrorKind::WouldBlock,
            Self::NotFound => io::ErrorKind::NotFound,
            Self::InvalidInput | Self::NotAFile => io::ErrorKind::InvalidInput,
            Self::PermissionDenied => io::ErrorKind::PermissionDenied,
            Self::LimitReached => io::ErrorKind::QuotaExceeded,
            Self::AlreadyExists => io::ErrorKind::AlreadyExists,
            Self::CrossDevice => io::ErrorKind::CrossesDevices,
            Self::LockLost | Self::Other => io::ErrorKind::Other,
        }
    }
}

/// Why the OS denied access ([`Error::denial`]), as WASI's `error-code` tells the cases apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Denial {
    /// The caller lacks the rights (`EACCES`; on Windows `ERROR_ACCESS_DENIED`).
    Access,
    /// The filesystem is read-only (`EROFS`; on Windows `ERROR_WRITE_PROTECT`).
    ReadOnly,
    /// The operation is not permitted on this file (`EPERM`; an immutable file, say).
    NotPermitted,
}

/// The operation an [`Error`] comes from; shown first in its message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Op {
    /// [`StagingLock::create_and_lock`](crate::StagingLock::create_and_lock).
    CreateAndLock,
    /// [`StagingLock::try_lock_path`](crate::StagingLock::try_lock_path).
    TryLockPath,
    /// [`StagingLock::unlock_and_delete`](crate::StagingLock::unlock_and_delete).
    UnlockAndDelete,
    /// [`StagingLock::set_inheritable`](crate::StagingLock::set_inheritable).
    SetInheritable,
    /// [`StagingLock::verify`](crate::StagingLock::verify).
    Verify,
    /// [`StagingArea::stage`](crate::StagingArea::stage).
    Stage,
    /// [`Stage::commit`](crate::Stage::commit).
    Commit,
    /// [`Stage::abort`](crate::Stage::abort).
    Abort,
    /// [`StagingArea::recover_stale`](crate::StagingArea::recover_stale).
    Recover,
    /// [`StagingLock::lock_path`](crate::StagingLock::lock_path): locking, waiting if asked.
    LockPath,
    /// [`StagingLock::status`](crate::StagingLock::status).
    Status,
    /// [`LockDir::filesystem`](crate::LockDir::filesystem): what the directory's filesystem
    /// can promise.
    Filesystem,
}

impl Op {
    /// The operation's name, as messages show it (`try-lock-path`).
    pub fn as_str(self) -> &'static str {
        match self {
            Op::CreateAndLock => "create-and-lock",
            Op::TryLockPath => "try-lock-path",
            Op::UnlockAndDelete => "unlock-and-delete",
            Op::SetInheritable => "set-inheritable",
            Op::Verify => "verify",
            Op::Stage => "stage",
            Op::Commit => "commit",
            Op::Abort => "abort",
            Op::Recover => "recover",
            Op::LockPath => "lock-path",
            Op::Status => "status",
            Op::Filesystem => "filesystem",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from a staging-lock operation.
///
/// Its message names the operation and the path (relative to the directory the operation was
/// given, or as given for ambient paths), for example
/// `try-lock-path "staging/1/staging.lock": held by another lock holder`.
/// Convert it into [`std::io::Error`] with `?` or `into()`: the [`ErrorKind`] maps onto the
/// matching [`io::ErrorKind`] and the original error stays reachable through
/// [`io::Error::get_ref`].
#[derive(Debug, thiserror::Error)]
#[error("{}", .0)]
pub struct Error(Box<Inner>);

// Boxed: a `Result<_, Error>` stays one word wide on the paths that succeed.
#[derive(Debug, thiserror::Error)]
#[error("{op} \"{}\": {message}", .path.display())]
struct Inner {
    kind: ErrorKind,
    op: Op,
    path: PathBuf,
    message: Cow<'static, str>,
    // Not a `#[source]`: the message already carries its text, and chains would repeat it.
    io: Option<io::Error>,
}

impl Error {
    /// An error with a message of ours and no OS error behind it.
    #[cold]
    pub(crate) fn new(
        kind: ErrorKind,
        op: Op,
        path: impl Into<PathBuf>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self(Box::new(Inner {
            kind,
            op,
            path: path.into(),
            message: message.into(),
            io: None,
        }))
    }

    /// A lock file that is some other kind of file (a directory, a FIFO, a socket).
    #[cold]
    pub(crate) fn not_regular(
        op: Op,
        path: impl Into<PathBuf>,
        kind: crate::sys::FileKind,
    ) -> Self {
        let why = format!("is a {}, not a regular file", kind.name());
        Self::new(ErrorKind::NotAFile, op, path, why)
    }

    /// An OS error `err` from `op` on `path`, its kind classified from the errno (as every error
    /// of this crate is); for layers built on this crate that do their own I/O.
    #[cold]
    pub fn io(op: Op, path: impl Into<PathBuf>, err: io::Error) -> Self {
        Self::io_as(ErrorKind::of_io(&err), op, path, err)
    }

    /// An OS error with a kind chosen by the caller, who knows better than the errno.
    #[cold]
    pub(crate) fn io_as(kind: ErrorKind, op: Op, path: impl Into<PathBuf>, err: io::Error) -> Self {
        let message = match (kind, err.kind(), sys::not_a_file(&err)) {
            (ErrorKind::PermissionDenied, io::ErrorKind::PermissionDenied, _)
                if err.raw_os_error().is_none() =>
            {
                // cap-std's escape error says "a path led outside of the filesystem".
                Cow::Borrowed("path escapes the directory it is resolved in")
            }
            (ErrorKind::NotAFile, _, Some(what)) => Cow::Borrowed(what),
            _ => Cow::Owned(err.to_string()),
        };
        Self(Box::new(Inner {
            kind,
            op,
            path: path.into(),
            message,
            io: Some(err),
        }))
    }

    /// Prefixes the path with `dir`, the directory the operation ran in, so the message names
    /// the full path (for callers that opened `dir` by an ambient path).
    pub fn in_dir(mut self, dir: &Path) -> Self {
        self.0.path = dir.join(&self.0.path);
        self
    }

    /// The class of failure.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The operation that failed.
    pub fn op(&self) -> Op {
        self.0.op
    }

    /// The path the operation was working on.
    pub fn path(&self) -> &Path {
        &self.0.path
    }

    /// What went wrong, without the operation and the path (for messages that wrap this one
    /// and name them themselves).
    pub(crate) fn why(&self) -> &str {
        &self.0.message
    }

    /// The OS error behind this one, if there was one.
    pub fn io_error(&self) -> Option<&io::Error> {
        self.0.io.as_ref()
    }

    /// Why the OS denied access, for an [`ErrorKind::PermissionDenied`] error that came from
    /// the OS; `None` for every other error, and for a path refused for leading out of its
    /// directory (no OS error behind it).
    pub fn denial(&self) -> Option<Denial> {
        match self.0.kind {
            ErrorKind::PermissionDenied => Some(match sys::denial(self.0.io.as_ref()?)? {
                sys::OsDenial::Access => Denial::Access,
                sys::OsDenial::ReadOnly => Denial::ReadOnly,
                sys::OsDenial::NotPermitted => Denial::NotPermitted,
            }),
            _ => None,
        }
    }

    /// The message, exactly as [`Display`](fmt::Display) writes it (`OP "PATH": WHY`), made
    /// in one allocation of the right size without the formatting machinery: for hosts that
    /// hand the message on as a string for every refused lock (`to_string` grows its string a
    /// few times on the way).
    pub fn to_message(&self) -> String {
        let (op, path, why) = (
            self.0.op.as_str(),
            self.0.path.to_string_lossy(),
            &*self.0.message,
        );
        let mut message = String::with_capacity(op.len() + path.len() + why.len() + 5);
        message.push_str(op);
        message.push_str(" \"");
        message.push_str(&path);
        message.push_str("\": ");
        message.push_str(why);
        message
    }
}

impl From<Error> for io::Error {
    fn from(err: Error) -> Self {
        io::Error::new(err.0.kind.io_kind(), err)
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn to_message_is_what_display_writes() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt as _;
        let paths = [
            Path::new("staging/1/staging.lock"),
            Path::new(""),
            Path::new("späte \"quotes\"\n"),
            Path::new(OsStr::from_bytes(b"bad-\xff\xfe-utf8")),
        ];
        for path in paths {
            for err in [
                Error::new(
                    ErrorKind::WouldBlock,
                    Op::TryLockPath,
                    path,
                    "held by another lock holder",
                ),
                Error::new(ErrorKind::Other, Op::Recover, path, format!("{} owned", 42)),
                Error::io(Op::Commit, path, io::Error::from_raw_os_error(libc::ENOSPC)),
            ] {
                assert_eq!(err.to_message(), err.to_string(), "{path:?}");
            }
        }
    }
}
