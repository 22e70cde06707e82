//! Console control events: what a process waiting for its child ignores.

use windows_sys::Win32::System::Console::SetConsoleCtrlHandler;

/// Ignores Ctrl-C in this process until the returned guard is dropped, as `system(3)` does on
/// Unix while it waits: the child, which shares the console, gets it, and this process lives
/// on to clean up after it. Call it *after* spawning: children inherit the setting at their
/// start. (Ctrl-Break cannot be ignored this way.)
pub fn ignore_interrupts() -> InterruptsIgnored {
    // SAFETY: a null handler with TRUE only sets this process's "ignore Ctrl-C" flag.
    let ignored = unsafe { SetConsoleCtrlHandler(None, 1) } != 0;
    InterruptsIgnored { ignored }
}

/// Stops ignoring Ctrl-C (see [`ignore_interrupts`]) when dropped.
#[derive(Debug)]
pub struct InterruptsIgnored {
    ignored: bool,
}

impl Drop for InterruptsIgnored {
    fn drop(&mut self) {
        if self.ignored {
            // SAFETY: as above, clearing the flag again.
            unsafe { SetConsoleCtrlHandler(None, 0) };
        }
    }
}
