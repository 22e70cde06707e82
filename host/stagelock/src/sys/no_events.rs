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
    /// Fails, handing the file back: no event source on this platform or lock backend.
    pub(crate) fn new(file: File) -> Result<Watch, File> {
        Err(file)
    }

    pub(crate) fn file(&self) -> &File {
        match *self {}
    }

    pub(crate) fn into_file(self) -> File {
        match self {}
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

/// Nothing to sweep here.
pub(crate) fn set_sweeping(_on: bool) {}

/// No events ever come here.
pub(crate) fn events_working() -> bool {
    false
}

/// Never called without a [`Watch`]: a wait keeps no descriptor where there are no events
/// (with classic locks, closing one would drop another holder's lock of this process).
pub(crate) fn try_lock_keeping(_file: &File) -> io::Result<bool> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// Never called: as [`try_lock_keeping`].
pub(crate) fn kept_locked(file: File) -> io::Result<LockedFile> {
    drop(file);
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// Never called: as [`try_lock_keeping`].
pub(crate) fn try_lock_or_keep(file: File) -> io::Result<Result<LockedFile, File>> {
    drop(file);
    Err(io::Error::from(io::ErrorKind::Unsupported))
}
