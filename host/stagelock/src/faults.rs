//! Fault injection for stagelock's own tests: protections that can be switched off, to show
//! that a test catches their absence, and a hook between the open and the lock of a lock file,
//! to make races deterministic.
//!
//! Built with the crate's `faults` feature (and in its unit tests). **Not for use**: a
//! protection switched off is a bug switched on. Without the feature every protection is on
//! and costs nothing to ask about.

/// A protection of the core that a test can switch off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(any(test, feature = "faults")), allow(dead_code))]
pub enum Protection {
    /// Taking a lock checks that the path still names the file it locked (not deleted, and
    /// maybe made anew, between the open and the lock).
    StillNames,
    /// A commit checks that the stage's lock is still its own right before the rename.
    VerifyBeforeCommit,
    /// Recovery skips an entry that holds anything a stage does not.
    NotAStageCheck,
    /// A durable commit syncs the resource's tree before the rename.
    SyncTree,
    /// A path of several components is resolved beneath its directory, never through a
    /// symbolic link out of it.
    EscapeCheck,
    /// A waiting lock is woken by events (inotify on Linux) and keeps its descriptor between
    /// attempts; off, every wait polls with backoff, as where there are no events.
    WaitEvents,
    /// The events thread sweeps the watched lock files for releases that make no event (an
    /// `F_UNLCK` that keeps its descriptor); off, such a release never wakes an armed wait.
    WaitSweep,
}

#[cfg(any(test, feature = "faults"))]
mod switches {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::Protection;

    static OFF: AtomicU32 = AtomicU32::new(0);

    impl Protection {
        /// Every protection, in the order the docs list them.
        pub const ALL: [Protection; 7] = [
            Protection::StillNames,
            Protection::VerifyBeforeCommit,
            Protection::NotAStageCheck,
            Protection::SyncTree,
            Protection::EscapeCheck,
            Protection::WaitEvents,
            Protection::WaitSweep,
        ];

        /// The protection's name in `STAGELOCK_FAULTS_OFF` and test output.
        pub fn name(self) -> &'static str {
            match self {
                Protection::StillNames => "still-names",
                Protection::VerifyBeforeCommit => "verify-before-commit",
                Protection::NotAStageCheck => "not-a-stage-check",
                Protection::SyncTree => "sync-tree",
                Protection::EscapeCheck => "escape-check",
                Protection::WaitEvents => "wait-events",
                Protection::WaitSweep => "wait-sweep",
            }
        }

        /// The protection named `name` (see [`name`](Self::name)).
        pub fn from_name(name: &str) -> Option<Protection> {
            Self::ALL.into_iter().find(|p| p.name() == name)
        }

        fn bit(self) -> u32 {
            1 << self as u32
        }

        /// Switches the protection off for the whole process, until [`switch_on`](Self::switch_on).
        pub fn switch_off(self) {
            OFF.fetch_or(self.bit(), Ordering::SeqCst);
        }

        /// Switches the protection back on.
        pub fn switch_on(self) {
            OFF.fetch_and(!self.bit(), Ordering::SeqCst);
        }

        /// Switches off the protections named, comma-separated, in the environment variable
        /// `STAGELOCK_FAULTS_OFF` (how a test passes its switches to its child processes).
        ///
        /// # Errors
        ///
        /// A name that is no protection's, with the names there are.
        pub fn switch_off_from_env() -> Result<(), String> {
            let Ok(names) = std::env::var("STAGELOCK_FAULTS_OFF") else {
                return Ok(());
            };
            for name in names.split(',').filter(|n| !n.is_empty()) {
                let known: Vec<_> = Self::ALL.iter().map(|p| p.name()).collect();
                Protection::from_name(name)
                    .ok_or_else(|| {
                        format!(
                            "STAGELOCK_FAULTS_OFF: no protection {name:?} (there are {known:?})"
                        )
                    })?
                    .switch_off();
            }
            Ok(())
        }

        pub(crate) fn on(self) -> bool {
            OFF.load(Ordering::Relaxed) & self.bit() == 0
        }
    }
}

#[cfg(not(any(test, feature = "faults")))]
impl Protection {
    #[inline(always)]
    pub(crate) fn on(self) -> bool {
        true
    }
}

#[cfg(any(test, feature = "faults"))]
pub use hooks::{Guard, set_before_lock};

/// Interleaving points for tests, to make races deterministic: between the open and the lock
/// of a lock file (`lock_dir` runs `before_lock` there).
#[cfg(any(test, feature = "faults"))]
pub(crate) mod hooks {
    use std::cell::RefCell;
    use std::fs;
    use std::path::Path;

    type Hook = Box<dyn FnMut(&fs::File, &Path)>;

    thread_local! {
        static BEFORE_LOCK: RefCell<Option<Hook>> = const { RefCell::new(None) };
    }

    /// Runs `hook` on this thread between every open and lock of a lock file (with the lock
    /// file's directory and path) until the guard is dropped. The hook may take locks itself;
    /// those do not run it.
    pub fn set_before_lock(hook: impl FnMut(&fs::File, &Path) + 'static) -> Guard {
        BEFORE_LOCK.with(|h| *h.borrow_mut() = Some(Box::new(hook)));
        Guard
    }

    /// Removes the hook when dropped.
    #[must_use = "the hook is removed when the guard drops"]
    pub struct Guard;

    impl Drop for Guard {
        fn drop(&mut self) {
            BEFORE_LOCK.with(|h| *h.borrow_mut() = None);
        }
    }

    pub(crate) fn before_lock(dir: &fs::File, path: &Path) {
        // Taken out while it runs, so a hook may itself take locks.
        if let Some(mut hook) = BEFORE_LOCK.with(|h| h.borrow_mut().take()) {
            hook(dir, path);
            BEFORE_LOCK.with(|h| {
                h.borrow_mut().get_or_insert(hook);
            });
        }
    }
}
