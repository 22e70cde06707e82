//! How host functions fail: an error the guest can handle, or a trap. These types name no WIT
//! type (the bindings name them); [`convert`](crate::convert) turns them into the guest's records.

use std::fmt;
use std::path::Path;

use stagelock::{Op, Stage};
use wasmtime::component::ResourceTableError;

/// The error of the host functions that return `result<_, error-code>` in WIT
/// (`result<_, error>` in 0.2.0 and 0.1.0).
///
/// Made from a [`stagelock::Error`] (the guest gets the matching `error-code`, and in 0.2.0 and
/// 0.1.0 the same message, naming the operation and the path), from a refusal of the host's own
/// (the store's cap on held locks, a read-only grant, a file where a directory belongs), or
/// from a [`ResourceTableError`] or [`wasmtime::Error`] (a bad handle or a host failure: the
/// guest traps). Embedders see it only if they call the host functions themselves.
pub struct HostError(pub(crate) Repr);

pub(crate) enum Repr {
    /// The native core failed; its kind picks the `error-code`. Turned into the guest's message
    /// only when handed over: a refused try-lock comes here every time.
    Core(stagelock::Error),
    /// The host refused, with the whole message (`OP "PATH": WHY`).
    Refused(Refusal, String),
    /// The guest traps.
    Trap(wasmtime::Error),
}

/// Why the host itself refuses a request; [`convert`](crate::convert) picks its `error-code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The store already holds its cap of locks (`limit-reached`).
    LimitReached,
    /// The directory was granted read-only (`read-only`; `access-denied` before 1.0.0).
    ReadOnly,
    /// The descriptor is a file, not a directory (`not-directory`).
    NotADirectory,
    /// `lock-request.get` was called again after it handed out the outcome (before 1.0.0,
    /// `invalid-input`; 1.0.0 says so with the shape of its result).
    OutcomeTaken,
    /// The directory's locks reach this host only, and the host refuses such directories
    /// (`not-permitted`; `access-denied` before 1.0.0).
    LocalOnly,
}

impl HostError {
    #[cold]
    fn refused(refusal: Refusal, op: Op, path: &Path, why: &str) -> Self {
        HostError(Repr::Refused(refusal, format!("{op} {path:?}: {why}")))
    }

    /// The store already holds `held` locks, its cap.
    #[cold]
    pub(crate) fn limit_reached(op: Op, path: &Path, held: usize) -> Self {
        let why = format!("this instance already holds {held} locks, the host's limit");
        Self::refused(Refusal::LimitReached, op, path, &why)
    }

    /// The guest's directory was granted read-only.
    #[cold]
    pub(crate) fn read_only(op: Op, path: &Path) -> Self {
        let why = "the directory was granted read-only";
        Self::refused(Refusal::ReadOnly, op, path, why)
    }

    /// The directory's filesystem keeps locks on this host while other hosts reach it
    /// (`why`), and the store refuses such directories.
    #[cold]
    pub(crate) fn local_only(op: Op, path: &Path, why: &str) -> Self {
        let why =
            format!("{why}; this host refuses directories whose locks cannot exclude other hosts");
        Self::refused(Refusal::LocalOnly, op, path, &why)
    }

    /// The guest passed a file descriptor where a directory belongs.
    #[cold]
    pub(crate) fn not_a_directory(op: Op, path: &Path) -> Self {
        let why = "the descriptor is a file, not a directory";
        Self::refused(Refusal::NotADirectory, op, path, why)
    }

    /// The outcome of a lock request was already handed to the guest.
    #[cold]
    pub(crate) fn outcome_taken() -> Self {
        let message = "lock-request.get: the outcome was already taken".to_owned();
        HostError(Repr::Refused(Refusal::OutcomeTaken, message))
    }

    /// Whether this says an outcome was already taken (1.0.0 guests get it as a shape, not a
    /// code).
    pub(crate) fn is_outcome_taken(&self) -> bool {
        matches!(self.0, Repr::Refused(Refusal::OutcomeTaken, _))
    }

    /// Whether the guest gets this error (`false`: it traps).
    pub fn is_guest_error(&self) -> bool {
        !matches!(self.0, Repr::Trap(_))
    }
}

impl From<stagelock::Error> for HostError {
    fn from(err: stagelock::Error) -> Self {
        HostError(Repr::Core(err))
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

// `Debug` shows the `error-code` the guest gets, so it lives with the conversions (`convert`).

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Core(e) => f.write_str(&e.to_message()),
            Repr::Refused(_, message) => f.write_str(message),
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
    /// Boxed: a stage is large (a `PathBuf` is four words on Windows), and failures are rare.
    pub(crate) stage: Option<Box<Stage>>,
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

impl From<stagelock::CommitError> for CommitFailure {
    fn from(failed: stagelock::CommitError) -> Self {
        CommitFailure {
            error: failed.error.into(),
            stage: failed.stage.map(Box::new),
        }
    }
}

impl fmt::Display for CommitFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}
