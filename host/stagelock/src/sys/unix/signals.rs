//! Signal dispositions: what a process waiting for its child ignores, as `system(3)` does.

/// Ignores `SIGINT` and `SIGQUIT` in this process until the returned guard is dropped, like
/// `system(3)` does while it waits: a Ctrl-C at the terminal reaches the child, and this process
/// lives on to clean up after it. Call it *after* spawning: ignored signals survive `exec`.
pub fn ignore_interrupts() -> InterruptsIgnored {
    // SAFETY: `signal` with SIG_IGN installs no handler code of ours; the previous dispositions
    // are restored by the guard.
    let (int, quit) = unsafe {
        (
            libc::signal(libc::SIGINT, libc::SIG_IGN),
            libc::signal(libc::SIGQUIT, libc::SIG_IGN),
        )
    };
    InterruptsIgnored { int, quit }
}

/// Restores the `SIGINT` and `SIGQUIT` dispositions saved by [`ignore_interrupts`] when dropped.
#[derive(Debug)]
pub struct InterruptsIgnored {
    int: libc::sighandler_t,
    quit: libc::sighandler_t,
}

impl Drop for InterruptsIgnored {
    fn drop(&mut self) {
        // SAFETY: reinstates the dispositions `signal` returned above, which were valid then.
        unsafe {
            if self.int != libc::SIG_ERR {
                libc::signal(libc::SIGINT, self.int);
            }
            if self.quit != libc::SIG_ERR {
                libc::signal(libc::SIGQUIT, self.quit);
            }
        }
    }
}
