//! How host functions fail: an error the guest can handle, or a trap.

use std::fmt;
use std::path::Path;

use stagelock::{ErrorKind, Op, Stage};
use wasmtime::component::ResourceTableError;

use crate::bindings::locks::{self, ErrorCode};

/// The error of the host functions that return `result<_, error>` in WIT.
///
/// Made from a [`stagelock::Error`] (the guest gets an `error` with the matching `error-code`
/// and the same message, naming the operation and the path), or from a
/// [`ResourceTableError`] or [`wasmtime::Error`] (a bad handle or a host failure: the guest
/// traps). Embedders see it only if they call the host functions themselves.
pub struct HostError(Repr);

enum Repr {
    Guest(locks::Error),
    Trap(wasmtime::Error),
}

impl HostError {
    /// An error for the guest with our own message (`OP "PATH": WHY`).
    #[cold]
    pub(crate) fn guest(code: ErrorCode, op: Op, path: &Path, why: &str) -> Self {
        HostError(Repr::Guest(locks::Error {
            code,
            message: format!("{op} {path:?}: {why}"),
        }))
    }

    /// Whether the guest gets this error (`false`: it traps).
    pub fn is_guest_error(&self) -> bool {
        matches!(self.0, Repr::Guest(_))
    }

    /// What the guest receives, or the trap.
    pub(crate) fn into_guest(self) -> wasmtime::Result<locks::Error> {
        match self.0 {
            Repr::Guest(e) => Ok(e),
            Repr::Trap(e) => Err(e),
        }
    }
}

impl From<stagelock::Error> for HostError {
    fn from(err: stagelock::Error) -> Self {
        let code = match err.kind() {
            ErrorKind::WouldBlock => ErrorCode::WouldBlock,
            ErrorKind::NotFound => ErrorCode::NotFound,
            ErrorKind::InvalidInput => ErrorCode::InvalidInput,
            ErrorKind::PermissionDenied => ErrorCode::AccessDenied,
            ErrorKind::NotAFile => ErrorCode::NotAFile,
            ErrorKind::LimitReached => ErrorCode::LimitReached,
            ErrorKind::AlreadyExists => ErrorCode::AlreadyExists,
            ErrorKind::LockLost => ErrorCode::LockLost,
            _ => ErrorCode::Io,
        };
        HostError(Repr::Guest(locks::Error {
            code,
            // A refused try-lock comes here every time: one exact allocation, no formatting.
            message: err.to_message(),
        }))
    }
}

impl From<ResourceTableError> for HostError {
    fn from(err: ResourceTableError) -> Self {
        HostError(Repr::Trap(err.into()))
    }
}

impl From<wasmtime::Error> for HostError {
    fn from(err: wasmtime::Error) -> Self {
        HostError(Repr::Trap(err))
    }
}

impl fmt::Debug for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Guest(e) => write!(f, "HostError::Guest({:?}: {})", e.code, e.message),
            Repr::Trap(e) => write!(f, "HostError::Trap({e:?})"),
        }
    }
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Guest(e) => f.write_str(&e.message),
            Repr::Trap(e) => write!(f, "trap: {e}"),
        }
    }
}

impl std::error::Error for HostError {}

/// The error of `stage.commit`: why, and the stage handed back to the guest (still held) unless
/// the failure came after the resource was already in place.
#[derive(Debug)]
pub struct CommitFailure {
    pub(crate) error: HostError,
    pub(crate) stage: Option<Stage>,
}

impl From<HostError> for CommitFailure {
    fn from(error: HostError) -> Self {
        CommitFailure { error, stage: None }
    }
}

impl From<ResourceTableError> for CommitFailure {
    fn from(error: ResourceTableError) -> Self {
        HostError::from(error).into()
    }
}

impl fmt::Display for CommitFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}
