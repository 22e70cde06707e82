//! Staging locks for sandboxed WebAssembly components.
//!
//! A component built for `wasm32-wasip2` and run by a host that provides the
//! `stagelock:staging/locks` interface (`stagelock run`, or any wasmtime embedder using
//! `stagelock-wasmtime`) takes staging locks compatible with containers/storage, in the
//! directories it was granted, with no other filesystem authority.
//!
//! - Use [`StagingLock::create_and_lock`] to make a fresh lock file from a name pattern and
//!   derive your resource's name from it (`lock-ID` guards `temp-dir-ID`).
//! - Use [`StagingLock::try_lock_path`] to lock a known path, for example
//!   `staging/<N>/staging.lock`.
//! - Use [`StagingLock::lock_path`] to wait for a lock someone holds (with a timeout), or
//!   [`StagingLock::request`] to wait for several locks and a clock at once with [`poll`].
//! - Finish with [`StagingLock::unlock_and_delete`]; dropping a lock releases it and leaves the
//!   file, as a crashed holder would.
//!
//! - Use [`StagingArea`] for the whole pattern: [`StagingArea::stage`] locks, then creates a
//!   resource directory to build in ([`Stage::dir`]); [`Stage::commit`] moves it into place
//!   under the lock; [`StagingArea::recover_stale`] cleans up after dead builders.
//!
//! The directory argument is the capability: a [`Descriptor`] the component holds, from
//! [`preopened_dir`] or opened beneath one with [`Descriptor::open_at`].
//!
//! # Examples
//!
//! ```no_run
//! use stagelock_guest::{preopened_dir, ErrorKind, StagingLock};
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let work = preopened_dir("/work").ok_or("the host did not grant /work")?;
//!     let (lock, name) = StagingLock::create_and_lock(&work, "lock-")?;
//!     println!("holding {name}");
//!     match StagingLock::try_lock_path(&work, &name) {
//!         Err(e) if e.kind() == ErrorKind::WouldBlock => println!("a second taker is refused"),
//!         other => panic!("unexpected: {other:?}"),
//!     }
//!     lock.unlock_and_delete()?;
//!     Ok(())
//! }
//! ```
//!
//! # Building into a stage
//!
//! A staging area is usually a subdirectory of what the host granted (`/work/staging`, with
//! results committed beside it). Open that subdirectory as a descriptor of its own and open the
//! area on it; then build into the stage through the descriptor [`Stage::dir`] gives, or with
//! `std::fs` at the stage's path beneath the grant: `/work/staging/` followed by
//! [`Stage::path`], which is relative to the area's root, not to the grant. Commit into any
//! directory beneath the same grant (one filesystem: a commit is one rename).
//!
//! [`StagingArea::open_path`] does both steps from the area's path in the component
//! (`/work/staging`), and its stages then give their own paths there
//! ([`Stage::local_path`]). The crate's example `examples/nested_area.rs` is a complete build
//! step made this way (an area two levels down, recovery, both ways of writing, a commit that
//! hands its stage back to abort when it fails); its docs say how to build it and run it with
//! `stagelock run`, and the test command runs it so.
//!
//! ```no_run
//! use stagelock_guest::filesystem::{DescriptorFlags, OpenFlags, PathFlags};
//! use stagelock_guest::{Layout, StagingArea, preopened_dir};
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let work = preopened_dir("/work").ok_or("the host did not grant /work")?;
//!     std::fs::create_dir_all("/work/staging")?;
//!     // A directory to take locks in must be opened for mutating, as a grant is.
//!     let staging = work.open_at(
//!         PathFlags::empty(),
//!         "staging",
//!         OpenFlags::DIRECTORY,
//!         DescriptorFlags::MUTATE_DIRECTORY,
//!     )?;
//!     let area = StagingArea::open(&staging, Layout::Pairs)?;
//!     area.recover_stale()?; // what dead builders left
//!     let stage = area.stage()?;
//!
//!     // Through the stage's handle: a descriptor for the resource directory.
//!     let dir = stage.dir()?;
//!     let file = dir.open_at(
//!         PathFlags::empty(),
//!         "manifest",
//!         OpenFlags::CREATE,
//!         DescriptorFlags::WRITE,
//!     )?;
//!     file.write(b"built in the stage\n", 0)?;
//!     drop((file, dir));
//!     // Or with std::fs, at the stage's path beneath the area beneath the grant.
//!     std::fs::write(format!("/work/staging/{}/data", stage.path()), "more")?;
//!
//!     // Into place at /work/result, under the lock; then the lock file goes.
//!     stage.commit(&work, "result").map_err(|failed| failed.error)?;
//!     Ok(())
//! }
//! ```
//!
//! # When a guest traps, or drops its handles
//!
//! - Dropping a [`StagingLock`] releases the lock and keeps its file, as a crashed holder
//!   would; [`StagingLock::unlock_and_delete`] is the clean way out.
//! - Dropping a [`Stage`] aborts it: the host removes its resource under the lock, then the
//!   lock file.
//! - A component that traps (a panic, a bad handle, a limit of the host's) does not run its
//!   destructors; the host's rule is that dropping its store releases every lock it held
//!   (their files stay) and aborts every stage it had not committed (removed, as above). So
//!   [`StagingArea::recover_stale`] finds nothing of a trapped component: what it finds is
//!   what was left when the host process itself died (killed, or the machine went down) with
//!   stages open, or a stage of a native builder that crashed.
//!
//! # How the types differ from the native crate's
//!
//! The native crate `stagelock` works on `cap_std` directories in the same process; this one
//! holds handles to resources that live in the host, and every call crosses the component
//! boundary. Where the types differ, that is why (the 1.x API stays as it is; additions are
//! named beside it):
//!
//! | native (`stagelock`) | here | why |
//! |---|---|---|
//! | `Stage::dir() -> &Dir` | [`Stage::dir`]` -> Result<Descriptor, Error>` | each call has the host duplicate its handle of the directory into a new `wasi:filesystem` descriptor, which the component owns and drops; duplicating can fail (out of descriptors) |
//! | `StagingArea::new(&Dir)`, `with_layout(&Dir, Layout)` | [`StagingArea::open`]`(&Descriptor, Layout)`, and [`StagingArea::open_path`]`(&str, Layout)` | a descriptor is a component's `Dir`; by path, the area is opened beneath the grant that holds it and remembers its path ([`StagingArea::path`]) |
//! | `Stage::id() -> &str`, `Stage::path() -> PathBuf` | [`Stage::id`], [`Stage::path`]` -> String` | the value lives in the host: each call copies a WIT `string` into the component, which cannot lend it; WASI paths are UTF-8 strings, not `OsStr` |
//! | the stage's path on the host, `area's path.join(stage.path())` | [`Stage::local_path`]` -> Option<PathBuf>`: its path in the component, for `std::fs` | known when the area was opened by path; a descriptor's path is the component's own business |
//! | `Report { removed: Vec<Recovered>, skipped: Vec<Skipped> }` | [`Report::removed_stages`] and [`Report::skipped_stages`], named ([`RemovedStage`], [`SkippedStage`]); the fields `removed: Vec<(String, bool, bool)>`, `skipped: Vec<(String, String)>`, deprecated | the tuple fields are as 1.0.0 shipped them: they keep working through 1.x (changing a public field's type would break it), and the named views are beside them |
//! | `Layout::PerDirectory`, `Layout::Pairs` | the same | |
//! | `StagingLock::status`, `LockDir`, `RecoverOptions` (threads) | none | not in WIT 1.0.0: who holds a lock is the host's to know (its processes), and recovery's threads are the host's |
//! | `Skipped::reason: SkipReason` (with the `Error` or the `Foreign` entry) | the reason's text, as the host's `SkipReason` displays it | the host's error and paths do not cross the boundary; the text is what people read |
//! | `impl Display for Report` | `impl Display for` [`Report`] | the same lines: one per stage, then the count |
//!
//! # Errors
//!
//! Operations return [`Error`]: an [`ErrorKind`] to match on, and a one-line message that names
//! the operation and the path (`try-lock-path "staging/1/staging.lock": held by another lock
//! holder`). The host sends only the error's code (WIT `error-code`), as WASI's interfaces do:
//! the message is composed here, from the operation, the path and the code, and only when it is
//! shown; the host's own text comes along only for failures the code cannot describe
//! ([`ErrorKind::Other`]). It converts into [`std::io::Error`].
//!
//! # Versions
//!
//! This crate speaks `stagelock:staging@1.0.1` (the released 1.0.0 with its error cases
//! written down, the same types), which stays compatible through 1.x (additions only, each
//! with its `@since` gate); hosts serving 1.0.0 run it too. Hosts that serve 1.x also serve 0.2.0 and 0.1.0 for
//! components built before it.
//!
//! # Platform Notes
//!
//! Built for any target other than `wasm32-wasip2` the crate compiles (so docs and `cargo check`
//! work), but its functions can only be called inside a component.
#![deny(missing_docs)]

/// The README's example, compiled as a doc test so that it keeps working as written.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

use std::time::Duration;

mod area;
mod error;
mod report;

pub use area::{CommitError, CommitOptions, Durability, Layout, Stage, StagingArea};
use error::{Detail, Op};
pub use error::{Error, ErrorKind};
pub use report::{RemovedStage, Report, SkippedStage};

#[allow(missing_docs)]
mod bindings {
    wit_bindgen::generate!({
        inline: "
            package stagelock:guest;
            world guest {
                include stagelock:staging/imports@1.0.1;
                import wasi:filesystem/preopens@0.2.12;
                import wasi:clocks/monotonic-clock@0.2.12;
            }
        ",
        path: "wit",
        world: "stagelock:guest/guest",
        generate_all,
    });
}

use bindings::stagelock::staging::locks;

/// `wasi:clocks/monotonic-clock`, for timers to poll beside [`LockRequest`]s.
pub use bindings::wasi::clocks::monotonic_clock;
/// WASI filesystem types, for opening subdirectories and working in them.
pub use bindings::wasi::filesystem::types as filesystem;
/// `wasi:io/poll`, to wait for [`LockRequest`]s together with other things.
pub use bindings::wasi::io::poll;
/// A `wasi:filesystem` descriptor: the directory capability locks are taken in.
pub use filesystem::Descriptor;
/// A `wasi:io/poll` pollable, from [`LockRequest::subscribe`] or [`monotonic_clock`].
pub use poll::Pollable;

/// The directories the host granted this component, with their guest paths.
pub fn preopened_dirs() -> Vec<(Descriptor, String)> {
    bindings::wasi::filesystem::preopens::get_directories()
}

/// The directory the host granted at `guest_path` (as given to `stagelock run --dir
/// HOST::GUEST`), if any.
pub fn preopened_dir(guest_path: &str) -> Option<Descriptor> {
    preopened_dirs()
        .into_iter()
        .find_map(|(dir, path)| (path == guest_path).then_some(dir))
}

/// A held staging lock. Dropping it releases the lock and keeps the file.
#[derive(Debug)]
pub struct StagingLock(locks::StagingLock);

impl StagingLock {
    /// Creates a fresh file in `dir` named from `pattern` and locks it; returns the lock and the
    /// file's base name.
    ///
    /// A random number replaces the last `*` of `pattern`, or is appended if there is none
    /// (`"lock-"` gives `lock-3141592653`), as Go's `os.CreateTemp` does. The file has mode
    /// 0600. Never blocks.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] for a `/` or NUL in `pattern`; [`ErrorKind::ReadOnly`] for
    /// a read-only grant; [`ErrorKind::NotADirectory`] if `dir` is a file;
    /// [`ErrorKind::LimitReached`] past the host's cap on held locks.
    pub fn create_and_lock(
        dir: &Descriptor,
        pattern: &str,
    ) -> Result<(StagingLock, String), Error> {
        let (lock, name) =
            locks::create_and_lock(dir, pattern).map_err(Error::of(Op::CreateAndLock, pattern))?;
        Ok((StagingLock(lock), name))
    }

    /// Locks the file at `path` beneath `dir`, creating it if missing (never its parents).
    /// Never blocks.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::WouldBlock`] if someone else holds it; [`ErrorKind::NotFound`] for a missing
    /// parent; [`ErrorKind::NotPermitted`] if `path` leaves `dir` (`..`, absolute, a symlink
    /// out); [`ErrorKind::ReadOnly`] if the grant is read-only; [`ErrorKind::NotAFile`] for
    /// directories, FIFOs, sockets, devices and symlinks.
    pub fn try_lock_path(dir: &Descriptor, path: &str) -> Result<StagingLock, Error> {
        match locks::try_lock_path(dir, path) {
            Ok(lock) => Ok(StagingLock(lock)),
            Err(code) => Err(Error::new(code, Op::TryLockPath, path)),
        }
    }

    /// Locks the file at `path` beneath `dir` like [`try_lock_path`](Self::try_lock_path), but
    /// if someone else holds it, waits for them to release it as `wait` says: [`Wait::No`],
    /// [`Wait::For`] a duration, or [`Wait::Forever`]. The component blocks in `wasi:io/poll` meanwhile; the host does not
    /// (in an async host, other work runs). To wait for several things at once, use
    /// [`request`](Self::request).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::WouldBlock`] if it is still held when the wait runs out (the message says
    /// how long it waited); otherwise as [`try_lock_path`](Self::try_lock_path) and
    /// [`request`](Self::request), at once.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use stagelock_guest::{preopened_dir, StagingLock, Wait};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let work = preopened_dir("/work").ok_or("the host did not grant /work")?;
    /// let lock = StagingLock::lock_path(&work, "layer.lock", Wait::For(Duration::from_secs(5)))?;
    /// lock.unlock_and_delete()?;
    /// # Ok(()) }
    /// ```
    pub fn lock_path(dir: &Descriptor, path: &str, wait: Wait) -> Result<StagingLock, Error> {
        let request = StagingLock::request(dir, path, wait)?;
        loop {
            if let Some(outcome) = request.get() {
                return outcome;
            }
            request.subscribe().block();
        }
    }

    /// Starts waiting for the lock on `path` beneath `dir` (created if missing, as
    /// [`try_lock_path`](Self::try_lock_path) does), as long as `wait` says.
    /// The first attempt is made at once. Poll [`LockRequest::subscribe`] with
    /// [`poll::poll`] together with other requests or a [`monotonic_clock`] timer, then call
    /// [`LockRequest::get`].
    ///
    /// # Errors
    ///
    /// Only when no attempt can be made: [`ErrorKind::ReadOnly`] for a read-only grant,
    /// [`ErrorKind::NotADirectory`] if `dir` is a file, [`ErrorKind::LimitReached`] at the
    /// host's cap (a request counts as a held lock). What the attempts find comes from
    /// [`LockRequest::get`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use stagelock_guest::{monotonic_clock, poll, preopened_dir, StagingLock, Wait};
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let work = preopened_dir("/work").ok_or("the host did not grant /work")?;
    /// let a = StagingLock::request(&work, "a.lock", Wait::Forever)?;
    /// let b = StagingLock::request(&work, "b.lock", Wait::Forever)?;
    /// let give_up = monotonic_clock::subscribe_duration(10_000_000_000); // 10 s
    /// let ready = poll::poll(&[&a.subscribe(), &b.subscribe(), &give_up]);
    /// if ready.contains(&0) {
    ///     let lock = a.get().expect("ready")?;
    ///     lock.unlock_and_delete()?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn request(dir: &Descriptor, path: &str, wait: Wait) -> Result<LockRequest, Error> {
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let timeout = match wait {
            Wait::No => Some(0),
            Wait::For(d) => Some(nanos(d)),
            Wait::Forever => None,
        };
        let request =
            locks::request_lock(dir, path, timeout).map_err(Error::of(Op::LockPath, path))?;
        Ok(LockRequest {
            request,
            path: path.to_owned(),
            wait,
        })
    }

    /// Deletes the lock file while still holding the lock, then releases it. The lock is
    /// released whatever the outcome; a file already gone is not an error.
    ///
    /// # Errors
    ///
    /// Any failure to delete other than "not found", for example [`ErrorKind::ReadOnly`].
    pub fn unlock_and_delete(self) -> Result<(), Error> {
        let path = self.0.path();
        locks::StagingLock::unlock_and_delete(self.0).map_err(Error::of(Op::UnlockAndDelete, &path))
    }

    /// The lock file's path, relative to the directory it was locked in.
    pub fn path(&self) -> String {
        self.0.path()
    }
}

/// How long [`StagingLock::lock_path`] and [`StagingLock::request`] wait for a lock that
/// someone else holds (the native crate's `stagelock::Wait`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Wait {
    /// Not at all: a busy lock fails at once.
    No,
    /// At most this long.
    For(Duration),
    /// Until the lock is free, however long that takes.
    Forever,
}

impl From<Duration> for Wait {
    fn from(d: Duration) -> Self {
        Wait::For(d)
    }
}

/// A wait for the lock on one path, in progress: from [`StagingLock::request`].
///
/// The host attempts the lock while the component polls [`subscribe`](Self::subscribe)'s
/// pollable, retrying every 0.5 to 10 ms while someone else holds it; dropping the request
/// stops the wait (a lock taken but not fetched with [`get`](Self::get) is released and its
/// file kept).
#[derive(Debug)]
pub struct LockRequest {
    request: locks::LockRequest,
    path: String,
    wait: Wait,
}

impl LockRequest {
    /// A pollable that is ready once [`get`](Self::get) has the outcome. Drop it before the
    /// request.
    pub fn subscribe(&self) -> Pollable {
        self.request.subscribe()
    }

    /// The outcome if there is one yet (one more attempt is made first, without blocking):
    /// `None` while the lock is held by someone else and time is left.
    ///
    /// # Errors
    ///
    /// Once: [`ErrorKind::WouldBlock`] when the timeout passed, or what
    /// [`StagingLock::try_lock_path`] returns. After the outcome was taken,
    /// [`ErrorKind::InvalidInput`].
    pub fn get(&self) -> Option<Result<StagingLock, Error>> {
        Some(match self.request.get()? {
            Ok(Ok(lock)) => Ok(StagingLock(lock)),
            Ok(Err(code)) => {
                let mut e = Error::new(code, Op::LockPath, &self.path);
                if let (ErrorKind::WouldBlock, Wait::For(d)) = (e.kind, self.wait)
                    && !d.is_zero()
                {
                    e.detail = Detail::Waited(d);
                }
                Err(e)
            }
            Err(()) => Err(Error {
                kind: ErrorKind::InvalidInput,
                op: Op::LockPath,
                path: self.path.clone(),
                detail: Detail::Text("the outcome was already taken by an earlier get"),
            }),
        })
    }
}
