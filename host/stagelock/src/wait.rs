//! Waiting for a lock someone else holds: [`Wait`] says how long, [`LockWait`] is one wait in
//! progress, driven by its caller (a thread blocked in [`LockWait::wait`] in
//! [`LockDir::lock_path`], a timer and a waker in an async host).
//!
//! On Linux with OFD locks and a local filesystem, a wait is woken by events (`sys/unix/events.rs`):
//! it keeps the lock file it found busy open, watches it through that descriptor, and tries
//! again when its holder closes, deletes or changes it. Elsewhere, and whenever events are
//! refused, it polls with backoff.

use std::fs;
use std::path::{Path, PathBuf};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Op};
use crate::faults::Protection;
use crate::lock::StagingLock;
use crate::lock_dir::{Kept, LockDir, Taken};
use crate::sys;

/// The first pause of a waiting lock between two attempts; each pause doubles up to
/// [`MAX_NAP`]. Each pause is drawn between three quarters and all of its nominal length, so
/// that many waiters do not retry in lockstep.
const FIRST_NAP: Duration = Duration::from_micros(500);

/// The longest pause of a waiting lock: bounds how late it notices a release (about half of it
/// on average), at a cost of about a hundred failed attempts a second, each a few microseconds.
const MAX_NAP: Duration = Duration::from_millis(10);

/// The pause of a wait armed with events, when it has no time limit: it is woken by events
/// (and by the events thread's sweep for releases that make none), not by the clock. Long,
/// but small enough for any timer an event loop sets for it.
const ARMED_PAUSE: Duration = Duration::from_secs(3600);

/// How many times one attempt opens the path again when the file it kept or opened was
/// replaced meanwhile, before it pauses.
const ROUNDS: u32 = 8;

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
/// holds it, the attempt says how long to pause before the next one. Who pauses is up to the
/// caller: [`LockDir::lock_path`] blocks its thread in [`wait`](Self::wait), an async runtime
/// sets a timer and hands its waker to [`register`](Self::register) (that is how
/// `stagelock-wasmtime` lets components wait without blocking the host).
///
/// # Events and polling
///
/// On Linux and Android (OFD locks) with the lock file on a local filesystem, the first busy
/// attempt keeps the file open and watches it (inotify, through that descriptor): its holder's
/// close, its exit, and unlock-and-delete each wake [`wait`](Self::wait) and
/// [`register`](Self::register)'s waker at once, and later attempts try the lock on that same
/// descriptor (so waiters make no close events that would wake each other). The one release no
/// event shows, a classic `fcntl` `F_UNLCK` that keeps its descriptor open, is found by the
/// events thread, which asks the kernel every second or so (longer with many watched files:
/// 200 us per file) whether anyone still holds each watched file, taking nothing, and wakes
/// the waits of those nobody holds. An idle wait makes no attempt at all, and the pause an
/// attempt returns is only its time limit (an hour without one).
///
/// Everywhere else, and where events are refused (a network or FUSE filesystem, where another
/// host's release makes no event; no inotify instance left, `EMFILE`; no watch left,
/// `ENOSPC`; no `/proc`), the wait polls as it always did: an exponential backoff from 0.5 ms
/// up to 10 ms, jittered so that waiters do not retry in lockstep, and [`wait`](Self::wait)
/// just sleeps.
///
/// The time limit counts from [`LockDir::start_wait`], and caps every pause. Once an
/// attempt returned the lock or an error, the wait is over; attempting again starts over with
/// the same deadline. Dropping a `LockWait` closes the file it kept and removes its watch at
/// once.
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
///         Attempt::Retry(pause) => waiting.wait(pause), // or an async timer and `register`
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
    /// The busy lock file kept open between attempts, and its watch: events are armed.
    armed: Option<Armed>,
    /// Events were refused for this wait: it polls with backoff.
    no_events: bool,
    /// How many times it tried the lock: see [`LockWait::attempts`].
    tries: u64,
}

/// A busy lock file a wait keeps open, in the watch on it.
type Armed = sys::Watch;

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
    /// says for a lock someone else holds, blocking the calling thread between attempts (until
    /// an event on Linux, see [`LockWait`]).
    ///
    /// # Errors
    ///
    /// As [`StagingLock::lock_path`]: [`ErrorKind::WouldBlock`] when the wait ran out.
    pub fn lock_path(&self, path: impl AsRef<Path>, wait: Wait) -> Result<StagingLock, Error> {
        let mut waiting = self.start_wait(path, wait);
        loop {
            match waiting.attempt()? {
                Attempt::Locked(lock) => return Ok(lock),
                Attempt::Retry(pause) => waiting.wait(pause),
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
            armed: None,
            no_events: false,
            tries: 0,
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
        if self.wait == Wait::No {
            self.tries += 1;
            return self
                .dir
                .acquire(&self.path, true, Op::LockPath)
                .map(Attempt::Locked);
        }
        match self.try_once() {
            Ok(Some(lock)) => Ok(Attempt::Locked(lock)),
            Ok(None) => self.pause(),
            Err(e) => {
                self.armed = None;
                Err(e)
            }
        }
    }

    /// One try of the lock, through the kept file if there is one: `None` while busy.
    fn try_once(&mut self) -> Result<Option<StagingLock>, Error> {
        let mut moving = false;
        for _ in 0..ROUNDS {
            if let Some(watch) = &self.armed {
                // Forget the events so far: this try sees what they announced.
                watch.take_fired();
                let kept = self
                    .dir
                    .relock_kept(&self.path, watch.file(), Op::LockPath)?;
                if !matches!(kept, Kept::Deleted) {
                    self.tries += 1;
                }
                match kept {
                    // The kept file becomes the lock's: not closed, so it wakes nobody.
                    Kept::Locked => {
                        if let Some(watch) = self.armed.take() {
                            let file = watch.into_file();
                            let lock = self.dir.kept_lock(&self.path, file, Op::LockPath)?;
                            return Ok(Some(lock));
                        }
                    }
                    Kept::Busy => return Ok(None),
                    // Deleted (maybe made anew): the watch goes (closing the kept file wakes
                    // the next waiter of this process), the path is opened again.
                    Kept::Replaced | Kept::Deleted => {
                        self.armed = None;
                        moving = true;
                        continue;
                    }
                }
            }
            // Moving to the file now at the path, which another waiter of this process (woken
            // first) most likely holds already: look before trying, and wait on it if held.
            if moving && let Some(file) = self.dir.open_if_held(&self.path, Op::LockPath)? {
                moving = false;
                if !self.arm(file) {
                    return Ok(None);
                }
                continue;
            }
            // The fallback's registry parks every refused descriptor of a file this process
            // holds: wait for our own holder without opening it again and again.
            if sys::held_here(self.dir.handle(), &self.path) {
                return Ok(None);
            }
            // Only where there are events: with the fallback's classic locks, a kept descriptor
            // closed later would drop another holder's lock of this process.
            let keep = sys::HAS_EVENTS && !self.no_events && Protection::WaitEvents.on();
            self.tries += 1;
            match self
                .dir
                .acquire_or_keep(&self.path, true, Op::LockPath, keep)?
            {
                Taken::Locked(lock) => return Ok(Some(lock)),
                Taken::Busy(None) => return Ok(None),
                Taken::Busy(Some(file)) => {
                    if !self.arm(file) {
                        return Ok(None);
                    }
                }
            }
        }
        Ok(None)
    }

    /// Arms this wait with `file`, held by someone else a moment ago; whether to try it again
    /// at once: it was released, deleted or replaced between that try (or look) and the watch,
    /// a change whose event came before the watch. Looking (`F_OFD_GETLK`, `fstat` and the
    /// path's `stat`) is not trying: a wait that arms makes one try, not two. Without a watch
    /// (refused), the wait polls from now on.
    fn arm(&mut self, file: fs::File) -> bool {
        let Some(watch) = watch(file) else {
            self.no_events = true;
            return false;
        };
        let released = matches!(sys::locked_by_other(watch.file()), Ok(false));
        // A deleted file still held by its holder is never free, so the sweep, which looks for
        // free files, would not find it either: without this look, such a wait waited forever
        // (the model test caught it, deleting a lock file as a waiter armed).
        let changed = released || self.dir.kept_has_no_name(&self.path, watch.file());
        self.armed = Some(watch);
        changed
    }

    /// The pause after a busy attempt, or the end of the wait.
    fn pause(&mut self) -> Result<Attempt, Error> {
        if self.armed.is_some() && !sys::events_working() {
            // The event source stopped (it woke every wait then): poll from now on.
            self.armed = None;
            self.no_events = true;
        }
        let mut pause = if self.armed.is_some() {
            ARMED_PAUSE
        } else {
            let pause = jittered(self.nap);
            self.nap = (self.nap * 2).min(MAX_NAP);
            pause
        };
        if let Some(deadline) = self.deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.armed = None;
                return Err(self.timed_out());
            }
            pause = pause.min(left);
        }
        Ok(Attempt::Retry(pause))
    }

    /// Blocks the calling thread for `pause` (the one an [`attempt`](Self::attempt) returned),
    /// or, when this wait is armed with events, until the first event on the lock file, if
    /// sooner. Then [`attempt`](Self::attempt) again.
    ///
    /// An event only says the lock *may* be free: the next attempt can still find it busy
    /// (another waiter was first) and pause again. Without events this is
    /// [`std::thread::sleep`]. Never fails; a wait whose event source broke (its thread
    /// stopped) was woken then and polls from its next pause on.
    pub fn wait(&mut self, pause: Duration) {
        match &self.armed {
            Some(watch) => watch.wait(pause),
            None => std::thread::sleep(pause),
        }
    }

    /// Asks for `waker` to be woken at the next event on the lock file, for callers with their
    /// own event loop, who also set a timer for the [`attempt`](Self::attempt)'s pause and
    /// attempt again at whichever comes first. Wakes it at once if an event came since the
    /// last attempt. Only the last waker registered is woken.
    ///
    /// Returns `false` when this wait has no events (not armed: polling with backoff, see
    /// [`LockWait`]): then nothing is registered and only the timer says when to attempt.
    pub fn register(&self, waker: &Waker) -> bool {
        let Some(watch) = &self.armed else {
            return false;
        };
        if watch.register(waker) {
            waker.wake_by_ref();
        }
        true
    }

    /// [`register`](Self::register) as a poll: ready when an event came since the last
    /// attempt, else pending with `cx`'s waker registered. Always pending (and nothing
    /// registered) when this wait has no events: poll a timer for the pause beside it.
    pub fn poll_event(&self, cx: &mut Context<'_>) -> Poll<()> {
        match &self.armed {
            Some(watch) if watch.register(cx.waker()) => Poll::Ready(()),
            _ => Poll::Pending,
        }
    }

    /// Whether this wait is armed with events now (see [`LockWait`]): it keeps the lock file
    /// open and is woken when its holder releases; otherwise it polls with backoff.
    pub fn has_events(&self) -> bool {
        self.armed.is_some()
    }

    /// How many times this wait tried to take the lock (`F_OFD_SETLK`, or `fcntl`/`LockFileEx`
    /// without events): what an idle wait armed with events should not do, and what a release
    /// should cause once per process, not once per waiter (tests and benchmarks count them).
    /// Asking whether someone holds the file (`F_OFD_GETLK`, which a wait does when it moves
    /// to a new file at its path) is not a try.
    pub fn attempts(&self) -> u64 {
        self.tries
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

/// Between three quarters and all of `nap`, so that many waiters do not retry in lockstep.
fn jittered(nap: Duration) -> Duration {
    let jitter = nap / 4;
    nap - jitter + Duration::from_nanos(fastrand::u64(..=jitter.as_nanos() as u64))
}

/// A watch on the busy lock file `file` (which it keeps open), if it is on a local filesystem
/// (elsewhere another host's release makes no event) and the OS grants one; else the file is
/// closed and the wait polls.
fn watch(file: fs::File) -> Option<sys::Watch> {
    sys::set_sweeping(Protection::WaitSweep.on());
    let stat = sys::stat_fd(&file).ok()?;
    if !sys::on_local_filesystem(&file, &stat) {
        return None;
    }
    sys::Watch::new(file).ok()
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
