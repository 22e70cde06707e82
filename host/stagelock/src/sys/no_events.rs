//! Where waits get no events (classic `fcntl` locks, other Unix systems, Windows): nothing to
//! watch, so every wait polls with backoff. The same names as `unix/events.rs`, each refusing.

use std::fs::File;
use std::io;
use std::task::Waker;
use std::time::Duration;

use super::os::LockedFile;

/// Whether waits get events in this build.
pub(crate) const HAS_EVENTS: bool = false;

/// Never made here: [`Watch::new`] always fails.
#[derive(Debug)]
pub(crate) enum Watch {}

impl Watch {
    /// Fails: no event source on this platform or lock backend.
    pub(crate) fn new(_file: &File) -> io::Result<Watch> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }

    pub(crate) fn take_fired(&self) -> bool {
        match *self {}
    }

    pub(crate) fn wait(&self, _pause: Duration) {
        match *self {}
    }

    pub(crate) fn register(&self, _waker: &Waker) -> bool {
        match *self {}
    }
}

/// No waits are ever armed with events here.
pub(crate) fn live_watches() -> usize {
    0
}

/// Never called without a [`Watch`]: a wait keeps no descriptor where there are no events
/// (with classic locks, closing one would drop another holder's lock of this process).
pub(crate) fn try_lock_keeping(_file: File) -> io::Result<Result<LockedFile, File>> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}
