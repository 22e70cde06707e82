//! Waiting for a lock someone else holds: [`Wait`] says how long, [`LockWait`] is one wait in
//! progress, driven by its caller (a sleeping thread in [`LockDir::lock_path`], a timer in an
//! async host).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Op};
use crate::lock::StagingLock;
use crate::lock_dir::LockDir;
use crate::sys;

/// The first pause of a waiting lock between two attempts; each pause doubles up to
/// [`MAX_NAP`]. Each pause is drawn between three quarters and all of its nominal length, so
/// that many waiters do not retry in lockstep.
const FIRST_NAP: Duration = Duration::from_micros(500);

/// The longest pause of a waiting lock: bounds how late it notices a release (about half of it
/// on average), at a cost of about a hundred failed attempts a second, each a few microseconds.
const MAX_NAP: Duration = Duration::from_millis(10);

/// How long [`StagingLock::lock_path`] and [`LockDir::lock_path`] wait for a lock that someone
/// else holds.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use stagelock::Wait;
/// assert_eq!(Wait::from(Duration::from_millis(1500)), Wait::For(Duration::from_millis(1500)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Wait {
    /// Not at all: a busy lock fails at once, as [`StagingLock::try_lock_path`] does.
    No,
    /// At most this long (zero is [`Wait::No`]).
    For(Duration),
    /// Until the lock is free, however long that takes.
    Forever,
}

impl From<Duration> for Wait {
    fn from(d: Duration) -> Self {
        Wait::For(d)
    }
}

/// One wait for the lock on a path, in progress, for callers that do their own pausing.
///
/// Each [`attempt`](Self::attempt) tries the lock once, as
/// [`try_lock_path`](StagingLock::try_lock_path) does, without blocking. While someone else
/// holds it, the attempt says how long to pause before the next one: an exponential backoff
/// from 0.5 ms up to 10 ms, jittered so that waiters do not retry in lockstep. Who pauses is
/// up to the caller: [`LockDir::lock_path`] sleeps its thread, an
/// async runtime sets a timer (that is how `stagelock-wasmtime` lets components wait without
/// blocking the host).
///
/// The time limit counts from [`LockDir::start_wait`]. Once an
/// attempt returned the lock or an error, the wait is over; attempting again starts over with
/// the same deadline.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use stagelock::{Attempt, LockDir, Wait};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let tmp = tempfile::tempdir()?;
/// let locks = LockDir::open_ambient_dir(tmp.path(), cap_std::ambient_authority())?;
/// let mut waiting = locks.start_wait("x.lock", Wait::For(Duration::from_secs(5)));
/// let lock = loop {
///     match waiting.attempt()? {
///         Attempt::Locked(lock) => break lock,
///         Attempt::Retry(pause) => std::thread::sleep(pause), // or an async timer
///     }
/// };
/// lock.unlock_and_delete()?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct LockWait {
    dir: LockDir,
    path: PathBuf,
    wait: Wait,
    deadline: Option<Instant>,
    nap: Duration,
}

/// What one [`LockWait::attempt`] achieved.
#[derive(Debug)]
#[must_use]
pub enum Attempt {
    /// The lock is ours.
    Locked(StagingLock),
    /// Someone else holds it: pause this long, then attempt again.
    Retry(Duration),
}

impl LockDir {
    /// [`StagingLock::lock_path`] beneath this directory, sharing its handle: waits as `wait`
    /// says for a lock someone else holds, sleeping the calling thread between attempts.
    ///
    /// # Errors
    ///
    /// As [`StagingLock::lock_path`]: [`ErrorKind::WouldBlock`] when the wait ran out.
    pub fn lock_path(&self, path: impl AsRef<Path>, wait: Wait) -> Result<StagingLock, Error> {
        let mut waiting = self.start_wait(path, wait);
        loop {
            match waiting.attempt()? {
                Attempt::Locked(lock) => return Ok(lock),
                Attempt::Retry(pause) => std::thread::sleep(pause),
            }
        }
    }

    /// Starts waiting for the lock on `path` beneath this directory, for a caller that does its
    /// own pausing between attempts (an async runtime, an event loop); see [`LockWait`]. Nothing
    /// is tried yet; a [`Wait::For`] limit counts from now.
    pub fn start_wait(&self, path: impl AsRef<Path>, wait: Wait) -> LockWait {
        LockWait::new(self.clone(), path.as_ref(), wait)
    }
}

impl LockWait {
    fn new(dir: LockDir, path: &Path, wait: Wait) -> Self {
        let wait = match wait {
            Wait::For(d) if d.is_zero() => Wait::No,
            wait => wait,
        };
        LockWait {
            dir,
            path: path.to_owned(),
            wait,
            // A deadline too far to represent is forever.
            deadline: match wait {
                Wait::No => Some(Instant::now()),
                Wait::For(d) => Instant::now().checked_add(d),
                Wait::Forever => None,
            },
            nap: FIRST_NAP,
        }
    }

    /// The path being waited for, relative to its directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Tries the lock once, without blocking.
    ///
    /// # Errors
    ///
    /// - [`ErrorKind::WouldBlock`]: still held by someone else and the time is up (at once for
    ///   [`Wait::No`]); the message says how long it waited.
    /// - Everything else [`try_lock_path`](StagingLock::try_lock_path) returns:
    ///   [`ErrorKind::NotFound`] for a missing parent directory,
    ///   [`ErrorKind::PermissionDenied`], [`ErrorKind::NotAFile`], [`ErrorKind::InvalidInput`],
    ///   [`ErrorKind::LimitReached`]. These end the wait at once.
    pub fn attempt(&mut self) -> Result<Attempt, Error> {
        // The fallback's registry parks every refused descriptor of a file this process
        // holds: wait for our own holder without opening it again and again.
        if !sys::held_here(self.dir.handle(), &self.path) {
            match self.dir.acquire(&self.path, true, Op::LockPath) {
                Err(e) if e.kind() == ErrorKind::WouldBlock && self.wait != Wait::No => {}
                done => return done.map(Attempt::Locked),
            }
        }
        let jitter = self.nap / 4;
        let mut pause =
            self.nap - jitter + Duration::from_nanos(fastrand::u64(..=jitter.as_nanos() as u64));
        self.nap = (self.nap * 2).min(MAX_NAP);
        if let Some(deadline) = self.deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.timed_out());
            }
            pause = pause.min(left);
        }
        Ok(Attempt::Retry(pause))
    }

    #[cold]
    fn timed_out(&self) -> Error {
        let why = match self.wait {
            Wait::For(waited) => {
                format!("still held by another lock holder after waiting {waited:?}")
            }
            _ => "held by another lock holder".to_owned(),
        };
        Error::new(ErrorKind::WouldBlock, Op::LockPath, &self.path, why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_wait_is_no_wait_and_a_timed_one_says_how_long() {
        let tmp = tempfile::tempdir().unwrap();
        let locks = LockDir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).unwrap();
        let _held = locks.try_lock_path("x.lock").unwrap();
        for wait in [Wait::No, Wait::For(Duration::ZERO)] {
            let e = locks.lock_path("x.lock", wait).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::WouldBlock);
            assert!(!e.to_string().contains("after waiting"), "{wait:?}: {e}");
        }
        let e = locks
            .lock_path("x.lock", Wait::For(Duration::from_millis(3)))
            .unwrap_err();
        assert!(e.to_string().ends_with("after waiting 3ms"), "{e}");
    }
}
