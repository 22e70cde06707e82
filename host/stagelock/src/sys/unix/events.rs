//! Linux: events that say a lock may have become free, for waits (`wait.rs`). One inotify
//! instance per process, made at the first wait that needs it, read by one thread
//! (`stagelock-events`) that wakes the waiters of the file an event names.
//!
//! A waiter watches the lock file it keeps open, through that descriptor
//! (`/proc/self/fd/N`), never through its path looked up again. The mask is always the same:
//! a holder's close (`IN_CLOSE_WRITE`, `IN_CLOSE_NOWRITE`, how OFD holders, a holder's exit and
//! containers/storage's `UnlockAndCloseHandle` release), a change of its links
//! (`IN_ATTRIB`: unlock-and-delete), and the file deleted or moved.
//!
//! An `F_UNLCK` that keeps the descriptor open makes no event. For that one the same thread
//! sweeps the watched files now and then ([`sweep_every`]: every second, longer with many
//! waiters): it asks the kernel whether anyone still holds each (`F_OFD_GETLK` on a waiter's
//! own descriptor, which takes nothing) and wakes the waiters of those nobody holds. So an
//! idle waiter makes no attempt at all, and the sweep costs one system call per watched file
//! per period, in one thread, however many waiters there are.
//!
//! Waiters of one file share its watch (inotify gives the same inode the same watch descriptor
//! again); the sweep removes the watch once nobody waits on the file. An event wakes one waiter of the
//! file, the one waiting longest, not all of them: a release lets one of this process's
//! waiters through, so the others would only find it taken again. The one woken passes the
//! turn on by itself: it takes the lock, whose release is the next event; or it leaves the
//! file (its wait ended, or the file was deleted and it moved to the new one), and closing its
//! kept descriptor is an event that wakes the next. The sweep wakes every waiter of a file
//! nobody holds, so a waiter that was woken but does not act (an event loop that stopped
//! polling it) holds the others up for one sweep at most. Should the instance or the thread
//! fail, or the kernel drop events (`IN_Q_OVERFLOW`), every waiter is woken and tries again.

use std::collections::HashMap;
use std::fs::File;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::task::Waker;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};

/// Whether waits get events in this build.
pub(crate) const HAS_EVENTS: bool = true;

/// What every watch asks for (always the same, so a shared watch is never narrowed).
fn mask() -> WatchFlags {
    WatchFlags::CLOSE_WRITE
        | WatchFlags::CLOSE_NOWRITE
        | WatchFlags::ATTRIB
        | WatchFlags::DELETE_SELF
        | WatchFlags::MOVE_SELF
}

/// The process's event source: the inotify instance and its waiters by watch descriptor.
struct Source {
    inotify: OwnedFd,
    /// The waiters of each watched file, each with the descriptor it keeps open: open for as
    /// long as it is here (a watch leaves this map, under its lock, before closing it).
    watches: Mutex<HashMap<i32, Waiters>>,
    /// Set when the reading thread has stopped: no more events come.
    broken: AtomicBool,
}

/// The waiters of one watched file, in the order they came, each with its kept descriptor.
type Waiters = Vec<(Arc<Waiter>, RawFd)>;

/// Whether the events thread sweeps (only stagelock's own tests switch it off, to show what
/// the sweep is for).
static SWEEPING: AtomicBool = AtomicBool::new(true);

/// Switches the sweep on or off (see [`SWEEPING`]).
pub(crate) fn set_sweeping(on: bool) {
    SWEEPING.store(on, Ordering::Relaxed);
}

/// The shortest time between two sweeps for releases that make no event.
const SWEEP: Duration = Duration::from_secs(1);

/// The sweep's period grows by this much per watched file, so that it makes at most 5,000
/// system calls a second (10,000 watched files: one sweep every 2 s).
const SWEEP_PER_FILE: Duration = Duration::from_micros(200);

/// How long the events thread waits for events before it sweeps: [`SWEEP`], or
/// [`SWEEP_PER_FILE`] per watched file if that is longer.
fn sweep_every(files: usize) -> Duration {
    SWEEP.max(SWEEP_PER_FILE.saturating_mul(u32::try_from(files).unwrap_or(u32::MAX)))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The source, made at the first call; `None` (for good) if the kernel refused an instance
/// (`EMFILE`: 128 per user by default) or the thread could not start, or once the thread
/// stopped.
fn source() -> Option<&'static Source> {
    instance().filter(|source| source.started())
}

/// The instance, made at the first call, whether its thread runs or not.
fn instance() -> Option<&'static Source> {
    static SOURCE: OnceLock<Option<Source>> = OnceLock::new();
    SOURCE
        .get_or_init(|| {
            let inotify = inotify::init(CreateFlags::CLOEXEC).ok()?;
            Some(Source {
                inotify,
                watches: Mutex::new(HashMap::new()),
                broken: AtomicBool::new(false),
            })
        })
        .as_ref()
}

impl Source {
    /// Starts the reading thread once; whether it runs.
    fn started(&'static self) -> bool {
        static STARTED: OnceLock<bool> = OnceLock::new();
        *STARTED.get_or_init(|| {
            std::thread::Builder::new()
                .name("stagelock-events".into())
                .spawn(move || self.run())
                .is_ok()
        }) && !self.broken.load(Ordering::Acquire)
    }

    /// The reading thread: waits for events on the instance and wakes the waiters of each;
    /// between them, sweeps for the releases that make none.
    fn run(&'static self) {
        let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
        let mut events = inotify::Reader::new(&self.inotify, &mut buf);
        let mut next_sweep = Instant::now() + SWEEP;
        loop {
            let now = Instant::now();
            if now >= next_sweep {
                let files = self.sweep();
                next_sweep = Instant::now() + sweep_every(files);
                continue;
            }
            let left = next_sweep - now;
            let timeout = Timespec {
                tv_sec: left.as_secs().try_into().unwrap_or(i64::MAX),
                tv_nsec: left.subsec_nanos().into(),
            };
            let mut fds = [PollFd::new(&self.inotify, PollFlags::IN)];
            match rustix::event::poll(&mut fds, Some(&timeout)) {
                Ok(0) | Err(rustix::io::Errno::INTR) => continue,
                Ok(_) => {}
                Err(_) => return self.stop(),
            }
            // Readable: one `read` takes what is queued; then every event it brought.
            loop {
                match events.next() {
                    Ok(event) if event.events().contains(ReadFlags::QUEUE_OVERFLOW) => {
                        self.wake_all();
                    }
                    Ok(event) if event.events().contains(ReadFlags::IGNORED) => {
                        // The kernel removed the watch (its file is gone for good).
                        let mut watches = lock(&self.watches);
                        if watches.get(&event.wd()).is_some_and(Vec::is_empty) {
                            watches.remove(&event.wd());
                        }
                    }
                    Ok(event) => {
                        // Fired outside the map's lock: a waker may drop a wait (and its watch).
                        let first = lock(&self.watches)
                            .get(&event.wd())
                            .and_then(|waiters| Some(Arc::clone(&waiters.first()?.0)));
                        if let Some(waiter) = first {
                            waiter.fire();
                        }
                    }
                    Err(rustix::io::Errno::INTR) => {}
                    Err(_) => return self.stop(),
                }
                if events.is_buffer_empty() {
                    break;
                }
            }
        }
    }

    /// The thread is stopping for good: no more events come, so every waiter is woken to poll.
    fn stop(&self) {
        self.broken.store(true, Ordering::Release);
        self.wake_all();
    }

    /// Wakes the waiters of every watched file nobody holds any more (a release that made no
    /// event: an `F_UNLCK` keeping its descriptor); returns how many files it looked at.
    fn sweep(&self) -> usize {
        // The watches nobody waits on any more go first, their removal outside the map's lock
        // (a wait arriving meanwhile on the same file makes a new watch, or, rarely, joins the
        // one being removed and is then woken by the next sweep).
        let unwatched: Vec<i32> = {
            let mut watches = lock(&self.watches);
            let empty: Vec<i32> = (watches.iter())
                .filter_map(|(&wd, waiters)| waiters.is_empty().then_some(wd))
                .collect();
            for wd in &empty {
                watches.remove(wd);
            }
            empty
        };
        for wd in unwatched {
            // EINVAL if the kernel already removed it (file gone, unmounted): nothing to do.
            let _ = inotify::remove_watch(&self.inotify, wd);
        }
        if !SWEEPING.load(Ordering::Relaxed) {
            return 0;
        }
        let files: Vec<i32> = lock(&self.watches).keys().copied().collect();
        for wd in &files {
            let free = {
                let watches = lock(&self.watches);
                // One descriptor per file answers for all its waiters.
                let Some(&(_, fd)) = watches.get(wd).and_then(|waiters| waiters.first()) else {
                    continue;
                };
                // SAFETY: a descriptor in the map is open while the map's lock is held (see
                // `Source::watches`), and it is only borrowed for this call.
                let file = unsafe { BorrowedFd::borrow_raw(fd) };
                let free = matches!(
                    super::fcntl::conflicting_lock(file, libc::F_OFD_GETLK),
                    Ok(None)
                );
                free.then(|| watches[wd].iter().map(|(w, _)| Arc::clone(w)).collect())
            };
            // Fired outside the map's lock, as events are.
            for waiter in free.unwrap_or_else(Vec::new) {
                waiter.fire();
            }
        }
        files.len()
    }

    fn wake_all(&self) {
        let waiters: Vec<_> = lock(&self.watches)
            .values()
            .flatten()
            .map(|(w, _)| Arc::clone(w))
            .collect();
        for waiter in waiters {
            waiter.fire();
        }
    }
}

/// One waiter: whether an event came since it last looked, and who to wake.
#[derive(Debug, Default)]
struct Waiter {
    state: Mutex<State>,
    woken: Condvar,
}

#[derive(Debug, Default)]
struct State {
    fired: bool,
    waker: Option<Waker>,
}

impl Waiter {
    fn fire(&self) {
        let waker = {
            let mut state = lock(&self.state);
            state.fired = true;
            state.waker.take()
        };
        self.woken.notify_all();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// A watch on one lock file a waiter keeps open, which it owns; removed (the inotify watch
/// with its last waiter, by the next sweep) when dropped, and the file closed after that.
#[derive(Debug)]
pub(crate) struct Watch {
    // Dropped first: leaves the map, so that nothing asks about the file once it closes.
    joined: Joined,
    file: File,
}

/// A waiter's place among the waiters of a watched file; leaving it when dropped.
#[derive(Debug)]
struct Joined {
    wd: i32,
    waiter: Arc<Waiter>,
}

impl Watch {
    /// Watches the file open as `file`, through its descriptor, and keeps it open.
    ///
    /// Fails, handing the file back, when there is no event source (see [`source`]) or the
    /// kernel refuses the watch (`ENOSPC`: the per-user watch limit; `ENOENT`: no `/proc`): the
    /// waiter then polls.
    pub(crate) fn new(file: File) -> Result<Watch, File> {
        let Some(source) = source() else {
            return Err(file);
        };
        let path = format!("/proc/self/fd/{}", file.as_raw_fd());
        // Under the map's lock, so that the sweep cannot remove the watch between its (shared)
        // creation and our joining it.
        let mut watches = lock(&source.watches);
        let Ok(wd) = inotify::add_watch(&source.inotify, path, mask()) else {
            return Err(file);
        };
        let waiter = Arc::new(Waiter::default());
        watches
            .entry(wd)
            .or_default()
            .push((Arc::clone(&waiter), file.as_raw_fd()));
        Ok(Watch {
            joined: Joined { wd, waiter },
            file,
        })
    }

    /// The lock file, kept open.
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// Ends the watch and hands back the file, still open: for a waiter that locked it, so
    /// that no close of it wakes the other waiters.
    pub(crate) fn into_file(self) -> File {
        let Watch { joined, file } = self;
        drop(joined);
        file
    }

    /// Whether an event came since the last call; forgets it.
    pub(crate) fn take_fired(&self) -> bool {
        std::mem::take(&mut lock(&self.joined.waiter.state).fired)
    }

    /// Blocks until an event comes (or came since [`take_fired`](Self::take_fired)) or `pause`
    /// has passed.
    pub(crate) fn wait(&self, pause: Duration) {
        let until = Instant::now().checked_add(pause);
        let mut state = lock(&self.joined.waiter.state);
        while !state.fired {
            let left = match until {
                Some(until) => until.saturating_duration_since(Instant::now()),
                None => Duration::MAX,
            };
            if left.is_zero() {
                return;
            }
            state = match self.joined.waiter.woken.wait_timeout(state, left) {
                Ok((state, _)) => state,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    /// Whether an event came since [`take_fired`](Self::take_fired); if none did, `waker` is
    /// woken at the next one.
    pub(crate) fn register(&self, waker: &Waker) -> bool {
        let mut state = lock(&self.joined.waiter.state);
        if state.fired {
            return true;
        }
        match &mut state.waker {
            Some(old) if old.will_wake(waker) => {}
            slot => *slot = Some(waker.clone()),
        }
        false
    }
}

impl Drop for Joined {
    /// Leaves the file's waiters. The inotify watch stays when the last one leaves, for the
    /// sweep to remove (`inotify_rm_watch` can take milliseconds, waiting for the kernel's
    /// grace period, and a wait that ends must not; a new wait on the file meanwhile reuses
    /// it).
    fn drop(&mut self) {
        let Some(source) = instance() else { return };
        if let Some(waiters) = lock(&source.watches).get_mut(&self.wd) {
            waiters.retain(|(w, _)| !Arc::ptr_eq(w, &self.waiter));
        }
    }
}

/// Whether events still come: the instance exists and its thread runs. Once not, armed waits
/// poll as waits without events do.
pub(crate) fn events_working() -> bool {
    source().is_some()
}
