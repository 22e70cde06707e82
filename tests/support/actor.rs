//! The model test's actor protocol, and its interpreter on the native core.
//!
//! An actor is anything that holds locks and stages on its own: a thread of the test process,
//! a `lock-holder model` process, a guest component in a store. The model test drives each by
//! one line of text per step and reads one line back, so that all kinds run the same steps
//! through the same words; this file is the native side ([`Interpreter`]), the guest
//! `tests/guests/src/bin/model_actor.rs` the component side.
//!
//! An actor is given a grant directory holding `locks/`, `area/` (a staging area of the
//! sequence's layout) and `dest/`. Locks and stages are named by numbers the test picks
//! (`N`), local to the actor.
//!
//! | command | does | replies |
//! |---|---|---|
//! | `create N` | create-and-lock `lock-*` in `locks/` | `ok NAME` |
//! | `try N PATH` | try-lock-path `PATH` beneath `locks/` | `ok` |
//! | `try-raced N PATH` | try-lock-path with the file deleted between open and lock (native only) | `ok` |
//! | `wait N PATH MS` | lock-path, waiting at most `MS` ms | `ok` |
//! | `unlock N` | unlock-and-delete | `ok` |
//! | `drop N` | drop the lock, keeping its file | `ok` |
//! | `stage N` | start a stage in `area/` | `ok ID` |
//! | `write N FILE TEXT` | write `TEXT` to `FILE` in stage `N` | `ok` (`err io ..` if it cannot) |
//! | `commit N DEST replace\|keep full\|none` | commit stage `N` to `dest/DEST` | `ok` |
//! | `abort N` | abort stage `N` | `ok` (`err io ..` if it cannot) |
//! | `recover` | recover the area's dead stages | `ok removed=ID,.. skipped=ID:REASON,..` |
//! | `quit` | drop everything (stages abort) and stop | `bye` |
//!
//! A failure replies `err KIND MESSAGE` (a commit: `err KIND kept|gone MESSAGE`, whether the
//! stage came back), `KIND` one of [`kind_name`]'s words, `MESSAGE` the error's one line.
//! Recovery's `REASON` is `held`, `vanished`, `failed` or `not-a-stage`; IDs are sorted.
//! Guests add `trap` and `spin` (run out of fuel); processes add `nofile K` (lower the soft
//! descriptor limit to K more than are open) and `nofile-restore`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use cap_std::fs::Dir;
use stagelock::{
    CommitOptions, Durability, Error, ErrorKind, Layout, LockDir, SkipReason, Stage, StagingArea,
    StagingLock, Wait,
};

/// The protocol's word for an error kind (the WIT `error-code` case names).
pub fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::WouldBlock => "would-block",
        ErrorKind::NotFound => "no-entry",
        ErrorKind::InvalidInput => "invalid",
        ErrorKind::PermissionDenied => "access",
        ErrorKind::NotAFile => "not-a-file",
        ErrorKind::LimitReached => "limit-reached",
        ErrorKind::AlreadyExists => "exist",
        ErrorKind::CrossDevice => "cross-device",
        ErrorKind::LockLost => "lock-lost",
        _ => "other",
    }
}

/// The protocol's word for a skip reason.
pub fn skip_name(reason: &SkipReason) -> &'static str {
    match reason {
        SkipReason::Held => "held",
        SkipReason::Vanished => "vanished",
        SkipReason::NotAStage(_) => "not-a-stage",
        _ => "failed",
    }
}

/// The layout's word in the protocol (`pairs`, `per-dir`).
pub fn parse_layout(word: &str) -> Option<Layout> {
    match word {
        "pairs" => Some(Layout::Pairs),
        "per-dir" => Some(Layout::PerDirectory),
        _ => None,
    }
}

/// One actor's locks and stages on the native core, driven by protocol lines.
pub struct Interpreter {
    locks_dir: LockDir,
    dest: Dir,
    area: StagingArea,
    locks: BTreeMap<u32, StagingLock>,
    stages: BTreeMap<u32, Stage>,
}

impl Interpreter {
    /// An actor on the grant directory `grant` (with `locks/`, `area/`, `dest/`).
    pub fn new(grant: &Path, layout: Layout) -> anyhow::Result<Self> {
        let grant = crate::open_dir(grant)?;
        let open = |name: &str| {
            grant
                .open_dir(name)
                .map_err(|e| anyhow::anyhow!("open {name}/ of the grant: {e}"))
        };
        Ok(Interpreter {
            locks_dir: LockDir::new(open("locks")?),
            dest: open("dest")?,
            area: StagingArea::with_layout(&open("area")?, layout)?,
            locks: BTreeMap::new(),
            stages: BTreeMap::new(),
        })
    }

    /// Runs one command line and returns the reply line (`None` after `quit`).
    pub fn step(&mut self, line: &str) -> Option<String> {
        let words: Vec<&str> = line.split(' ').collect();
        Some(match self.run(&words) {
            Ok(reply) => reply,
            Err(Reply::Quit) => return None,
            Err(Reply::Failed(e)) => failure(&e, ""),
            Err(Reply::Commit(e, kept)) => failure(&e, if kept { "kept " } else { "gone " }),
            Err(Reply::Bad(why)) => format!("err invalid {why}: {line}"),
            Err(Reply::Io(why)) => format!("err io {why}"),
        })
    }

    fn run(&mut self, words: &[&str]) -> Result<String, Reply> {
        let ok = |s: &str| Ok(format!("ok{}{s}", if s.is_empty() { "" } else { " " }));
        match *words {
            ["create", n] => {
                let (lock, name) = self.locks_dir.create_and_lock("lock-*")?;
                self.locks.insert(number(n)?, lock);
                ok(&name)
            }
            ["try", n, path] => {
                let lock = self.locks_dir.try_lock_path(path)?;
                self.locks.insert(number(n)?, lock);
                ok("")
            }
            ["try-raced", n, path] => {
                // The race the path-still-names check closes: the file is deleted between
                // the open and the lock (once; the retry that follows runs undisturbed).
                let target = path.to_owned();
                let mut once = true;
                let _hook = stagelock::faults::set_before_lock(move |dir, _| {
                    if std::mem::take(&mut once)
                        && let Ok(dir) = dir.try_clone()
                    {
                        let dir = Dir::from_std_file(dir);
                        let _ = dir.remove_file(&target);
                    }
                });
                let lock = self.locks_dir.try_lock_path(path)?;
                self.locks.insert(number(n)?, lock);
                ok("")
            }
            ["wait", n, path, ms] => {
                let wait = Wait::For(Duration::from_millis(number(ms)?.into()));
                let lock = self.locks_dir.lock_path(path, wait)?;
                self.locks.insert(number(n)?, lock);
                ok("")
            }
            ["unlock", n] => {
                take(&mut self.locks, n)?.unlock_and_delete()?;
                ok("")
            }
            ["drop", n] => {
                drop(take(&mut self.locks, n)?);
                ok("")
            }
            ["stage", n] => {
                let stage = self.area.stage()?;
                let id = stage.id().to_owned();
                self.stages.insert(number(n)?, stage);
                ok(&id)
            }
            ["write", n, file, text] => {
                let stage = self
                    .stages
                    .get(&number(n)?)
                    .ok_or(Reply::Bad("no such stage".into()))?;
                stage
                    .dir()
                    .write(file, text)
                    .map_err(|e| Reply::Io(format!("write {file}: {e}")))?;
                ok("")
            }
            ["commit", n, dest, replace, durability] => {
                let options = CommitOptions::new()
                    .replace(match replace {
                        "replace" => true,
                        "keep" => false,
                        _ => return Err(Reply::Bad("replace or keep".into())),
                    })
                    .durability(match durability {
                        "full" => Durability::Full,
                        "none" => Durability::None,
                        _ => return Err(Reply::Bad("full or none".into())),
                    });
                let number = number(n)?;
                let stage = self
                    .stages
                    .remove(&number)
                    .ok_or(Reply::Bad("no such stage".into()))?;
                match stage.commit_with(&self.dest, dest, options) {
                    Ok(()) => ok(""),
                    Err(e) => {
                        let kept = e.stage.is_some();
                        if let Some(stage) = e.stage {
                            self.stages.insert(number, stage);
                        }
                        Err(Reply::Commit(e.error, kept))
                    }
                }
            }
            ["abort", n] => {
                take(&mut self.stages, n)?.abort()?;
                ok("")
            }
            ["recover"] => {
                let report = self.area.recover_stale()?;
                let mut removed: Vec<&str> = report.removed.iter().map(|r| &*r.id).collect();
                let mut skipped: Vec<String> = (report.skipped.iter())
                    .map(|s| format!("{}:{}", s.id, skip_name(&s.reason)))
                    .collect();
                removed.sort_unstable();
                skipped.sort_unstable();
                ok(&format!(
                    "removed={} skipped={}",
                    removed.join(","),
                    skipped.join(",")
                ))
            }
            ["quit"] => {
                self.stages.clear();
                self.locks.clear();
                Err(Reply::Quit)
            }
            _ => Err(Reply::Bad("unknown command".into())),
        }
    }
}

/// How a command did not reply `ok`.
enum Reply {
    Failed(Error),
    Commit(Error, bool),
    Bad(String),
    Io(String),
    Quit,
}

impl From<Error> for Reply {
    fn from(e: Error) -> Self {
        Reply::Failed(e)
    }
}

fn failure(e: &Error, extra: &str) -> String {
    format!("err {} {extra}{e}", kind_name(e.kind()))
}

fn number(word: &str) -> Result<u32, Reply> {
    word.parse().map_err(|_| Reply::Bad("not a number".into()))
}

fn take<T>(map: &mut BTreeMap<u32, T>, n: &str) -> Result<T, Reply> {
    map.remove(&number(n)?)
        .ok_or(Reply::Bad("no such handle".into()))
}
