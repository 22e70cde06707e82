//! Staging lock files compatible with containers/storage, for native Rust programs, shell steps
//! and sandboxed WebAssembly components.
//!
//! A *staging lock* is an exclusive, non-blocking lock on a small file that guards a resource
//! being built (a staging directory, a temporary layer). Its holder deletes the file while still
//! holding the lock when done; a holder that crashes leaves the file behind **unlocked**, which is
//! how recovery code recognises abandoned work.
//!
//! This crate reimplements containers/storage's `internal/staging_lockfile` on capability-scoped
//! directories ([`cap_std::fs::Dir`]): every path is resolved beneath a directory you hold.
//!
//! - Use [`StagingLock::create_and_lock`] to make a fresh lock file from a name pattern
//!   (`"lock-"` gives `lock-<random>`) and derive your resource's name from it.
//! - Use [`StagingLock::try_lock_path`] to lock a known path (`staging/<N>/staging.lock`), for
//!   example to find out whether its owner is gone.
//! - Use [`StagingLock::unlock_and_delete`] when done; just drop the lock to leave the file as a
//!   crashed holder would.
//! - Use [`StagingLock::lock_path`] to wait for a lock someone holds ([`Wait::For`] a
//!   duration or [`Wait::Forever`]), and [`StagingLock::status`] to see who holds it.
//! - Use [`LockDir`] to take many locks in one directory through one shared handle (one
//!   descriptor per held lock).
//! - Use [`StagingArea`] for the whole staging pattern: lock, build, commit or abort, recover.
//! - Use the `*_ambient_*` variants when all you have is a path string, as the CLI does.
//!
//! # Interoperability
//!
//! On Linux the lock is an open-file-description lock (`F_OFD_SETLK`), which excludes and is
//! excluded by the classic POSIX `fcntl` locks that containers/storage (Go) takes, other threads
//! of this process and other handles. It is *not* an `flock(2)` lock (what `std::fs::File::lock`
//! takes): the two kinds do not see each other.
//!
//! # Platform Notes
//!
//! Linux (and Android) use open-file-description locks. Other Unix systems fall back to classic
//! `fcntl` locks plus an in-process registry, as the Go original does: there, code in the same
//! process that opens and closes a locked file behind stagelock's back drops the lock, a
//! refused attempt on a file this process holds keeps its descriptor until the holder
//! releases, and child processes do not inherit locks. Commits work everywhere: where the
//! filesystem has no `renameat2` flags (FUSE filesystems, other Unix systems) they take a
//! sequence of plain renames with the same guarantees ([`Stage::commit_with`]).
//!
//! Windows uses `LockFileEx` on every byte, as containers/storage does there, so the two
//! exclude each other; its locks belong to a handle, as OFD locks do. Lock files are opened
//! sharing delete, so their holder can delete them while holding; unlock-and-delete deletes
//! only the file it locked (if the path names another file by then, that one stays). Commits
//! rename by handle without replacing; a replacing commit takes the fallback's sequence.
//! Windows cannot say who holds a lock ([`StagingLock::status`] reports a holder without a
//! process), nor whether another handle took a lock we lost without its file changing
//! ([`StagingLock::verify`] checks the path only). Looking at a lock takes a shared lock for
//! an instant, which a taker at that very instant finds busy. A file or directory someone has
//! open in a way that excludes ours (a sharing violation) is [`ErrorKind::WouldBlock`].
//!
//! # Security
//!
//! Paths that climb out of the directory (`..`), absolute paths and symlinks that lead out are
//! refused with [`ErrorKind::PermissionDenied`] and nothing is created outside. A final symlink is
//! never followed, and lock paths that are not regular files are refused with
//! [`ErrorKind::NotAFile`] (a FIFO is opened non-blocking, so it cannot hang the caller).
//!
//! Beyond the Go original, a lock is only returned after checking that its path still names the
//! locked file, which closes the create/delete race between a creator and a concurrent recoverer.
//! [`StagingLock::verify`] makes the same check (plus "no other holder") at any later moment,
//! and [`Stage::commit`] makes it right before its rename: a stage whose lock someone else
//! deleted or took is never committed ([`ErrorKind::LockLost`]) but left for recovery.
//!
//! # Errors
//!
//! Every operation returns [`Error`], whose [`kind`](Error::kind) is an [`ErrorKind`] and whose
//! message names the operation and the path. It converts into [`std::io::Error`].
#![deny(missing_docs)]
#![deny(unsafe_code)]

// The rooms, from the bottom up (each only uses those above it):
mod area; // StagingArea, Layout, Stage: staging, aborting
mod commit; // committing a stage: options, durability, renames and their fallback
mod dir; // directory handles locks share, ambient directories, path checks
mod entry; // StagingLock's entry points on a &Dir or an ambient path, over LockDir
mod error; // Error, ErrorKind, Op: what failed, in which operation, on which path
#[cfg(any(test, feature = "faults"))]
#[doc(hidden)]
pub mod faults; // protections a test can switch off, hooks into races (stagelock's own tests)
#[cfg(not(any(test, feature = "faults")))]
mod faults;
mod filesystem; // what a directory's filesystem can promise: how far its locks reach
mod lock; // StagingLock, a held lock: unlock-and-delete, verify, inherit
mod lock_dir; // LockDir: the one implementation of taking a lock
mod pattern; // CreateTemp-style name patterns
pub mod process;
mod recover; // recovering dead stages, and nothing else
mod retry; // the one "try again with something fresh" loop
mod status; // LockStatus: who holds a lock, without disturbing them
#[allow(unsafe_code)]
mod sys; // the platform layer: lock backends and syscalls, one file per concern
mod wait; // Wait and LockWait: waiting for a lock someone holds // running a child while holding a lock

pub use area::{Layout, Stage, StagingArea};
pub use commit::{CommitError, CommitOptions, Durability};
pub use error::{Denial, Error, ErrorKind, Op};
pub use filesystem::{Filesystem, LockReach};
pub use lock::StagingLock;
pub use lock_dir::LockDir;
pub use recover::{Foreign, RecoverOptions, Recovered, Report, SkipReason, Skipped};
pub use status::{Holder, LockKind, LockStatus};
pub use wait::{Attempt, LockWait, Wait};

/// The READMEs' Rust examples, compiled as doc tests so they keep working as written.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct CrateReadmeDoctests;

/// The user guide's Rust examples (`docs/`), compiled as doc tests for the same reason.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/staging-areas.md")]
struct StagingAreasDoctests;

#[cfg(doctest)]
#[doc = include_str!("../../../docs/library.md")]
struct LibraryDoctests;

#[cfg(doctest)]
#[doc = include_str!("../../../docs/components.md")]
struct ComponentsDoctests;
