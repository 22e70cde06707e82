//! The `fcntl(2)` calls both lock backends make: set a whole-file write lock without waiting,
//! ask for a conflicting lock, and the descriptor's close-on-exec flag. A backend passes its
//! own commands (`F_OFD_SETLK` / `F_OFD_GETLK` on Linux, `F_SETLK` / `F_GETLK` in the
//! fallback); nothing here knows which one is in use.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd};

/// A whole-file lock request of `kind` (`l_start = 0`, `l_len = 0`: to the end, however it
/// grows).
fn whole_file(kind: libc::c_short) -> libc::flock {
    // SAFETY: `flock` is a plain C struct of integers; all-zero is a valid value of it.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = kind;
    lock.l_whence = libc::SEEK_SET as _;
    lock.l_start = 0;
    lock.l_len = 0;
    lock
}

/// `fcntl(fd, setlk, &lock)` with a whole-file write lock: `Ok(true)` when taken, `Ok(false)`
/// when another holder has it.
pub(crate) fn try_write_lock(file: &File, setlk: libc::c_int) -> io::Result<bool> {
    let mut lock = whole_file(libc::F_WRLCK as _);
    // SAFETY: the descriptor is valid while `file` is borrowed, and `lock` is a valid, exclusively
    // borrowed `struct flock` for the whole call, as F_SETLK and F_OFD_SETLK require.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), setlk, &mut lock as *mut libc::flock) };
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        // POSIX allows either for "held by someone else".
        Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(false),
        _ => Err(err),
    }
}

/// The lock some *other* holder has on `file` that conflicts with a whole-file write lock, as
/// `fcntl(fd, getlk)` reports it: `None` when there is none, else its `l_pid` (the holding
/// process for a classic POSIX lock, `-1` for an OFD lock, which belongs to an open file
/// description, not a process). Only one conflicting lock is reported, and never one of the
/// asker's own (its open file description, or with classic locks its process).
///
/// Works on a descriptor opened read-only: asking takes no lock.
pub(crate) fn conflicting_lock(file: impl AsFd, getlk: libc::c_int) -> io::Result<Option<i32>> {
    let mut lock = whole_file(libc::F_WRLCK as _);
    // SAFETY: the descriptor is valid while `file` is borrowed, and `lock` is a valid, exclusively
    // borrowed `struct flock` (l_pid 0, as F_OFD_GETLK requires) that the call fills in.
    let rc = unsafe {
        libc::fcntl(
            file.as_fd().as_raw_fd(),
            getlk,
            &mut lock as *mut libc::flock,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let unlocked: libc::c_short = libc::F_UNLCK as _;
    Ok((lock.l_type != unlocked).then_some(lock.l_pid))
}

/// Releases the lock `file` holds without closing it, as a lost lock would be: for tests of
/// lost-lock detection only.
#[cfg(test)]
pub(crate) fn unlock(file: &File, setlk: libc::c_int) -> io::Result<()> {
    let mut lock = whole_file(libc::F_UNLCK as _);
    // SAFETY: as in `try_write_lock`: a valid descriptor and an exclusively borrowed `flock`.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), setlk, &mut lock as *mut libc::flock) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether `file` is passed on to programs this process executes (clears or sets `FD_CLOEXEC`).
///
/// Used by the CLI to let the command it runs inherit the lock, like `flock(1)` does.
pub(crate) fn set_inheritable(file: &File, inherit: bool) -> io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: `fd` is a valid open descriptor borrowed from `file` for the duration of both calls;
    // F_GETFD/F_SETFD take and return plain integers and touch no memory of ours.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        if flags < 0 {
            return Err(io::Error::last_os_error());
        }
        let flags = if inherit {
            flags & !libc::FD_CLOEXEC
        } else {
            flags | libc::FD_CLOEXEC
        };
        if libc::fcntl(fd, libc::F_SETFD, flags) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
