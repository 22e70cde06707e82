//! What a sequence is made of: the actors' kinds and the steps, with the strategies that
//! generate them (proptest shrinks a failing sequence by dropping steps and simplifying them),
//! and the text each prints as when a failing sequence is reported.

use std::fmt;

use proptest::prelude::*;
use stagelock::Layout;

/// The lock paths the steps name, beneath `locks/` (`sub/` is a directory a hostile step can
/// swap for a symbolic link out of the grant). Steps also name the locks created so far, by
/// index past these.
pub const PATHS: [&str; 3] = ["a.lock", "b.lock", "sub/c.lock"];
/// Names in `dest/` commits go to.
pub const DESTS: [&str; 2] = ["d1", "d2"];
/// Files a stage is filled with, and their contents.
pub const FILES: [&str; 2] = ["f", "g"];
pub const TEXTS: [&str; 3] = ["one", "two-two", "three-three-three"];

/// Who runs an actor's steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(feature = "components"), allow(dead_code))] // guests need the feature
pub enum Kind {
    /// A thread of the test process, with its own directory handles.
    Thread,
    /// A `lock-holder model` process.
    Process,
    /// A guest component in a store of its own, called synchronously.
    GuestSync,
    /// A guest component in an async store.
    GuestAsync,
}

impl Kind {
    pub fn is_guest(self) -> bool {
        matches!(self, Kind::GuestSync | Kind::GuestAsync)
    }
}

/// One step: an actor's operation, or something the world does to the files between them.
/// Numbers are indices, taken modulo what exists (`actor` modulo the actors, `path` modulo the
/// known lock paths), so every shrunk sequence still means something.
#[derive(Clone, Debug)]
pub enum Step {
    Create {
        actor: u8,
        h: u8,
    },
    Try {
        actor: u8,
        h: u8,
        path: u8,
    },
    /// Try-lock-path with the file deleted between its open and its lock (the race the
    /// path-still-names check closes); threads and processes only.
    TryRaced {
        actor: u8,
        h: u8,
        path: u8,
    },
    /// Lock-path waiting 20 ms.
    Wait {
        actor: u8,
        h: u8,
        path: u8,
    },
    /// Lock-path waiting until the holder lets go (at most 10 minutes: the run fails after
    /// 30 s).
    WaitLong {
        actor: u8,
        h: u8,
        path: u8,
    },
    Unlock {
        actor: u8,
        h: u8,
    },
    Drop {
        actor: u8,
        h: u8,
    },
    /// A containers/storage-style holder in another process (a classic POSIX `fcntl` lock)
    /// takes the lock file at the path; one such lock at a time.
    ForeignLock {
        path: u8,
    },
    /// ... and lets go of it: `how` 0 unlocks with `F_UNLCK` and keeps its descriptor open (no
    /// event tells a waiter), 1 closes the file, 2 deletes it and then closes (unlock-and-
    /// delete, by path), 3 exits (SIGKILL).
    ForeignRelease {
        how: u8,
    },
    Stage {
        actor: u8,
        s: u8,
    },
    Write {
        actor: u8,
        s: u8,
        file: u8,
        text: u8,
    },
    Commit {
        actor: u8,
        s: u8,
        dest: u8,
        replace: bool,
        durable: bool,
    },
    Abort {
        actor: u8,
        s: u8,
    },
    Recover {
        actor: u8,
    },
    /// The status of a lock path, asked through the native API.
    Status {
        path: u8,
    },
    /// Another process deletes the lock file at the path.
    Unlink {
        path: u8,
    },
    /// Another process renames a new file over the lock file at the path.
    Replace {
        path: u8,
    },
    /// The path is made a symbolic link out of the grant.
    Symlink {
        path: u8,
    },
    /// The path is made a directory.
    Mkdir {
        path: u8,
    },
    /// Whatever another process put at the path is removed.
    Clear {
        path: u8,
    },
    /// `locks/sub` is swapped for a symbolic link to a directory outside the grant.
    SwapSub,
    /// ... and back.
    RestoreSub,
    /// Another process deletes the lock file of an actor's stage.
    UnlinkStageLock {
        actor: u8,
        s: u8,
    },
    /// The owner's own mistake: an actor's stage's resource is removed (`what` 0), replaced by
    /// a file (1), by a symbolic link out of the grant (2), or by another directory (3).
    Mishap {
        actor: u8,
        s: u8,
        what: u8,
    },
    /// An entry is put in the area that looks like a dead stage but holds what a stage does
    /// not (a symbolic link, an extra file): recovery must keep it.
    Plant,
    /// The actor ends abruptly: SIGKILL (a process), a trap or, with `spin`, running out of
    /// fuel (a guest), quitting without cleaning up (a thread); a fresh one takes its place.
    Kill {
        actor: u8,
        spin: bool,
    },
    /// The actor's descriptor limit is lowered to what it has open (processes only).
    Nofile {
        actor: u8,
    },
    NofileRestore {
        actor: u8,
    },
}

/// One generated case: the area's layout, the actors, the steps, and (for the power-cut run)
/// the step after which the power goes.
#[derive(Clone, Debug)]
pub struct Case {
    pub layout: Layout,
    pub kinds: Vec<Kind>,
    pub steps: Vec<Step>,
    pub cut: usize,
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "layout {:?}, actors {:?}", self.layout, self.kinds)?;
        for (i, step) in self.steps.iter().enumerate() {
            writeln!(f, "  {i:>2}: {step:?}")?;
        }
        Ok(())
    }
}

/// Which actors and steps a run generates.
#[derive(Clone, Copy)]
pub struct Mix {
    /// The kinds actors are drawn from.
    pub kinds: &'static [Kind],
    /// At most this many steps.
    pub max_steps: usize,
    /// Whether commits may be non-durable (not on the power-cut run: a non-durable commit
    /// may be lost or torn by a power cut, by design).
    pub non_durable: bool,
}

fn actor_op(non_durable: bool) -> impl Strategy<Value = Step> {
    let a = 0..4u8;
    // Few numbers, so that steps often meet the lock or stage an earlier step made.
    let h = 0..2u8;
    let s = 0..1u8;
    let p = 0..5u8;
    prop_oneof![
        3 => (a.clone(), h.clone()).prop_map(|(actor, h)| Step::Create { actor, h }),
        6 => (a.clone(), h.clone(), p.clone()).prop_map(|(actor, h, path)| Step::Try { actor, h, path }),
        1 => (a.clone(), h.clone(), p.clone()).prop_map(|(actor, h, path)| Step::TryRaced { actor, h, path }),
        2 => (a.clone(), h.clone(), p.clone()).prop_map(|(actor, h, path)| Step::Wait { actor, h, path }),
        2 => (a.clone(), h.clone(), p.clone()).prop_map(|(actor, h, path)| Step::WaitLong { actor, h, path }),
        4 => (a.clone(), h.clone()).prop_map(|(actor, h)| Step::Unlock { actor, h }),
        2 => (a.clone(), h).prop_map(|(actor, h)| Step::Drop { actor, h }),
        2 => p.clone().prop_map(|path| Step::ForeignLock { path }),
        3 => (0..4u8).prop_map(|how| Step::ForeignRelease { how }),
        4 => (a.clone(), s.clone()).prop_map(|(actor, s)| Step::Stage { actor, s }),
        4 => (a.clone(), s.clone(), 0..2u8, 0..3u8)
            .prop_map(|(actor, s, file, text)| Step::Write { actor, s, file, text }),
        6 => (a.clone(), s.clone(), 0..2u8, any::<bool>(), any::<bool>()).prop_map(
            move |(actor, s, dest, replace, durable)| Step::Commit {
                actor,
                s,
                dest,
                replace,
                durable: durable || !non_durable,
            }
        ),
        1 => (a.clone(), s).prop_map(|(actor, s)| Step::Abort { actor, s }),
        2 => a.prop_map(|actor| Step::Recover { actor }),
        1 => p.prop_map(|path| Step::Status { path }),
    ]
}

fn hostile() -> impl Strategy<Value = Step> {
    let a = 0..4u8;
    let p = 0..5u8;
    prop_oneof![
        2 => p.clone().prop_map(|path| Step::Unlink { path }),
        1 => p.clone().prop_map(|path| Step::Replace { path }),
        1 => p.clone().prop_map(|path| Step::Symlink { path }),
        1 => p.clone().prop_map(|path| Step::Mkdir { path }),
        2 => p.prop_map(|path| Step::Clear { path }),
        1 => Just(Step::SwapSub),
        1 => Just(Step::RestoreSub),
        2 => (a.clone(), 0..1u8).prop_map(|(actor, s)| Step::UnlinkStageLock { actor, s }),
        1 => Just(Step::Plant),
        2 => (a.clone(), 0..1u8, 0..4u8).prop_map(|(actor, s, what)| Step::Mishap { actor, s, what }),
        2 => (a.clone(), any::<bool>()).prop_map(|(actor, spin)| Step::Kill { actor, spin }),
        1 => a.clone().prop_map(|actor| Step::Nofile { actor }),
        1 => a.prop_map(|actor| Step::NofileRestore { actor }),
    ]
}

/// An actor's whole piece of work in a row: stage, write a file, commit. (Drawn one step at a
/// time, a commit with something in it is rare in a short sequence, and so is a power cut
/// right after one.)
fn work(non_durable: bool) -> impl Strategy<Value = Vec<Step>> {
    (0..4u8, 0..2u8, 0..3u8, 0..2u8, any::<bool>(), any::<bool>()).prop_map(
        move |(actor, file, text, dest, replace, durable)| {
            vec![
                Step::Stage { actor, s: 0 },
                Step::Write {
                    actor,
                    s: 0,
                    file,
                    text,
                },
                Step::Commit {
                    actor,
                    s: 0,
                    dest,
                    replace,
                    durable: durable || !non_durable,
                },
            ]
        },
    )
}

/// A waiter meeting the containers/storage-style holder in a row: the holder takes a path, an
/// actor waits for it, the holder lets go in one of its ways. (Drawn one step at a time, the
/// three rarely meet on one path: 300 sequences had none.)
fn foreign_wait() -> impl Strategy<Value = Vec<Step>> {
    (0..4u8, 0..2u8, 0..5u8, 0..4u8).prop_map(|(actor, h, path, how)| {
        vec![
            Step::ForeignLock { path },
            Step::WaitLong { actor, h, path },
            Step::ForeignRelease { how },
        ]
    })
}

/// The strategy of a whole case.
pub fn case(mix: Mix) -> impl Strategy<Value = Case> {
    let layout = prop_oneof![Just(Layout::Pairs), Just(Layout::PerDirectory)];
    let kinds = proptest::collection::vec(proptest::sample::select(mix.kinds), 2..=4);
    let step = prop_oneof![
        8 => actor_op(mix.non_durable).prop_map(|s| vec![s]),
        2 => hostile().prop_map(|s| vec![s]),
        1 => work(mix.non_durable),
        1 => foreign_wait(),
    ];
    let steps = proptest::collection::vec(step, 1..=mix.max_steps).prop_map(move |runs| {
        let mut steps: Vec<Step> = runs.into_iter().flatten().collect();
        steps.truncate(mix.max_steps);
        steps
    });
    // Half the cuts come right after a commit (where a power cut tells most: the commit
    // returned, so all of it must be there), the others after any step.
    let after_commit = any::<bool>();
    (
        layout,
        kinds,
        steps,
        any::<proptest::sample::Index>(),
        after_commit,
    )
        .prop_map(|(layout, kinds, steps, cut, after_commit)| {
            let commits: Vec<usize> = (0..steps.len())
                .filter(|&i| matches!(steps[i], Step::Commit { .. }))
                .collect();
            let cut = if after_commit && !commits.is_empty() {
                commits[cut.index(commits.len())]
            } else {
                cut.index(steps.len())
            };
            Case {
                layout,
                kinds,
                steps,
                cut,
            }
        })
}
