//! The model test's actor as a guest: the protocol of `tests/support/actor.rs` (its module doc
//! has the table), read from stdin one command a line and answered on stdout one line each,
//! in the grant preopened at `/grant` (`locks/`, `area/`, `dest/`), the staging area of the
//! layout given as argument (`pairs` or `per-dir`).
//!
//! Replies use the native interpreter's words; an error's `KIND` is the WIT `error-code` case
//! name. Guests add `trap` (trap at once) and `spin` (compute until the host's deadline stops
//! it); the host's driver answers those with `trapped MESSAGE` when the run ends.
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::time::Duration;

use stagelock_guest::filesystem::{DescriptorFlags, OpenFlags, PathFlags};
use stagelock_test_guests::*;

fn main() {
    let layout = match arg::<String>(0).as_str() {
        "pairs" => Layout::Pairs,
        "per-dir" => Layout::PerDirectory,
        other => panic!("no layout {other:?}"),
    };
    let grant = preopened_dir("/grant").expect("the host granted /grant");
    let mut actor = Actor {
        locks_dir: subdir(&grant, "locks"),
        dest: subdir(&grant, "dest"),
        area: StagingArea::open(&subdir(&grant, "area"), layout)
            .unwrap_or_else(|e| panic!("open the staging area: {e}")),
        locks: BTreeMap::new(),
        stages: BTreeMap::new(),
    };
    let stdout = std::io::stdout();
    for line in std::io::stdin().lock().lines() {
        let line = line.expect("read stdin");
        let reply = actor.step(&line);
        let mut out = stdout.lock();
        writeln!(out, "{}", reply.as_deref().unwrap_or("bye")).expect("write stdout");
        out.flush().expect("flush stdout");
        if reply.is_none() {
            return;
        }
    }
}

/// One actor's locks and stages, as `stagelock_tests::actor::Interpreter` on the native core.
struct Actor {
    locks_dir: Descriptor,
    dest: Descriptor,
    area: StagingArea,
    locks: BTreeMap<u32, StagingLock>,
    stages: BTreeMap<u32, Stage>,
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

impl Actor {
    /// Runs one command line and returns the reply line (`None` after `quit`).
    fn step(&mut self, line: &str) -> Option<String> {
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
                let (lock, name) = StagingLock::create_and_lock(&self.locks_dir, "lock-*")?;
                self.locks.insert(number(n)?, lock);
                ok(&name)
            }
            ["try", n, path] => {
                let lock = StagingLock::try_lock_path(&self.locks_dir, path)?;
                self.locks.insert(number(n)?, lock);
                ok("")
            }
            ["wait", n, path, ms] => {
                let wait = Wait::For(Duration::from_millis(number(ms)?.into()));
                let lock = StagingLock::lock_path(&self.locks_dir, path, wait)?;
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
                let id = stage.id();
                self.stages.insert(number(n)?, stage);
                ok(&id)
            }
            ["write", n, file, text] => {
                let stage = self
                    .stages
                    .get(&number(n)?)
                    .ok_or(Reply::Bad("no such stage".into()))?;
                write(stage, file, text).map_err(|e| Reply::Io(format!("write {file}: {e}")))?;
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
                let mut removed: Vec<&str> = report.removed_stages().map(|r| r.id).collect();
                let mut skipped: Vec<String> = (report.skipped_stages())
                    .map(|k| format!("{}:{}", k.id, skip_name(k.reason)))
                    .collect();
                removed.sort_unstable();
                skipped.sort_unstable();
                ok(&format!(
                    "removed={} skipped={}",
                    removed.join(","),
                    skipped.join(",")
                ))
            }
            ["trap"] => trap(),
            ["spin"] => {
                let mut x: u64 = 1;
                loop {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
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

/// Writes `text` to `file` (created or truncated) in `stage`'s directory.
fn write(stage: &Stage, file: &str, text: &str) -> Result<(), String> {
    let dir = stage.dir().map_err(|e| e.to_string())?;
    let flags = OpenFlags::CREATE | OpenFlags::TRUNCATE;
    let file = (dir.open_at(PathFlags::empty(), file, flags, DescriptorFlags::WRITE))
        .map_err(|e| e.name().to_owned())?;
    let mut bytes = text.as_bytes();
    let mut at = 0;
    while !bytes.is_empty() {
        let n = file.write(bytes, at).map_err(|e| e.name().to_owned())?;
        bytes = &bytes[n as usize..];
        at += n;
    }
    Ok(())
}

/// Traps at once: no unwinding, no destructors, as a crash.
fn trap() -> ! {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    std::process::abort();
}

/// The protocol's word for an error kind: the WIT `error-code` case name.
fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::WouldBlock => "would-block",
        ErrorKind::NotFound => "no-entry",
        ErrorKind::InvalidInput => "invalid",
        ErrorKind::AccessDenied => "access",
        ErrorKind::NotPermitted => "not-permitted",
        ErrorKind::ReadOnly => "read-only",
        ErrorKind::NotAFile => "not-a-file",
        ErrorKind::NotADirectory => "not-directory",
        ErrorKind::LimitReached => "limit-reached",
        ErrorKind::AlreadyExists => "exist",
        ErrorKind::CrossDevice => "cross-device",
        ErrorKind::LockLost => "lock-lost",
        _ => "other",
    }
}

/// The protocol's word for a skip reason, from its message (the guest crate's report keeps
/// only the message, which the host writes from the reason: see `SkipReason`'s `Display`).
fn skip_name(message: &str) -> &'static str {
    if message.starts_with("held by") {
        "held"
    } else if message.starts_with("finished by its builder") {
        "vanished"
    } else if message.starts_with("not a stage") {
        "not-a-stage"
    } else {
        "failed"
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
