//! Running a child process while holding a lock: what `stagelock lock -- CMD` does.
//!
//! Let the child inherit the lock with [`StagingLock::set_inheritable`](crate::StagingLock::set_inheritable),
//! spawn it, then call [`ignore_interrupts`] while waiting for it, so a Ctrl-C at the terminal
//! stops the child and this process lives on to release (or clean up after) what it holds.

pub use crate::sys::{InterruptsIgnored, ignore_interrupts};
