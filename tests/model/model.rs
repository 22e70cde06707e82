//! The model: what stagelock promises, as a small state machine of who holds which lock path,
//! which stages are live or dead, and what `dest/` holds. Each step asks the model what must
//! happen, has the real actors (through [`Io`]) do it, and checks the reply against the
//! prediction; the world's state (`world.rs`) is then compared with the model's after every
//! step.

use std::collections::{BTreeMap, BTreeSet};

use stagelock::Layout;

use crate::steps::{DESTS, FILES, Kind, PATHS, Step, TEXTS};

#[path = "foreign.rs"]
mod foreign;
pub use foreign::ForeignAct;

/// What the model needs done in the real world.
pub trait Io {
    /// Sends `line` to actor `actor` and returns its reply.
    fn send(&mut self, actor: usize, line: &str) -> Result<String, String>;
    /// Sends `line` to actor `actor` without waiting: a wait that will block.
    fn start(&mut self, actor: usize, line: &str) -> Result<(), String>;
    /// Waits at most `ms` for the reply to a started command (`None`: none yet).
    fn poll(&mut self, actor: usize, ms: u64) -> Result<Option<String>, String>;
    /// Ends actor `actor` abruptly (`spin`: a guest runs out of fuel rather than trapping) and
    /// starts a fresh one of the same kind in its place.
    fn kill(&mut self, actor: usize, spin: bool) -> Result<(), String>;
    /// A hostile act on the files (a path beneath `locks/` or the area).
    fn world(&mut self, act: Act<'_>) -> Result<(), String>;
    /// The lock status of `path` beneath `locks/` through the native API, in the protocol's
    /// words: `missing`, `free`, `held`, or `err KIND MESSAGE`.
    fn status(&mut self, path: &str) -> Result<String, String>;
    /// Has the containers/storage-style holder do `act`, and returns its reply.
    fn foreign(&mut self, act: ForeignAct<'_>) -> Result<String, String>;
}

/// A hostile act on the files.
#[derive(Debug)]
pub enum Act<'a> {
    Unlink(&'a str),
    Replace(&'a str),
    Symlink(&'a str),
    Mkdir(&'a str),
    Clear(&'a str),
    SwapSub,
    RestoreSub,
    /// Deletes the area entry (a stage's lock file) at this path.
    UnlinkInArea(String),
    /// Plants the foreign entry `ID` that recovery must keep.
    Plant(&'a str),
    /// Does this to the resource of the stage `ID` (whose lock is held).
    Mishap(String, Mishap),
}

/// What a stage's owner did to its own resource (removed it, or put something else there).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mishap {
    /// Removed.
    Gone,
    /// Replaced by a regular file.
    File,
    /// Replaced by a symbolic link out of the grant.
    SymlinkOut,
    /// Replaced by another directory (with a file `other`): the resource now.
    OtherDir,
}

impl Mishap {
    /// A file or a symbolic link at the resource's path: a commit refuses it, recovery calls
    /// the stage not a stage and keeps it.
    pub fn not_a_dir(self) -> bool {
        matches!(self, Mishap::File | Mishap::SymlinkOut)
    }
}

/// What is at a lock path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A regular file: which incarnation (a new number each time one is made) and who holds
    /// it.
    File {
        made: u64,
        holder: Option<(usize, u8)>,
    },
    Symlink,
    Dir,
}

/// The holder of an entry the containers/storage-style holder locked (no actor's index).
const FOREIGN: (usize, u8) = (usize::MAX, 0);

/// A lock an actor holds: its path and the incarnation of the file it locked (if that file
/// is no longer the one at the path, the lock is lost).
#[derive(Clone, Debug)]
struct Held {
    path: String,
    made: u64,
}

#[derive(Clone, Debug, Default)]
struct ActorState {
    locks: BTreeMap<u8, Held>,
    stages: BTreeMap<u8, String>,
    /// A started wait: (handle, path).
    waiting: Option<(u8, String)>,
    /// Its descriptor limit is down to what it has open.
    starved: bool,
}

/// A stage in the area.
#[derive(Clone, Debug)]
pub struct StageState {
    /// Its actor and number there; `None` once its actor died (a dead stage).
    owner: Option<(usize, u8)>,
    /// Whether its lock file is still there (another process may delete it).
    pub lock_file: bool,
    /// Whether its resource directory is still there (recovery removes a stage whose lock
    /// file is gone).
    pub resource: bool,
    files: BTreeMap<String, String>,
    /// What its owner did to its resource, if anything (`resource` is false once it is gone).
    pub mishap: Option<Mishap>,
}

/// The whole model.
pub struct Model {
    pub layout: Layout,
    pub kinds: Vec<Kind>,
    /// Entries beneath `locks/` (`sub/...` while `sub` is a directory).
    pub locks: BTreeMap<String, Entry>,
    /// Whether `locks/sub` is now a symbolic link out of the grant.
    pub sub_swapped: bool,
    /// Stages by ID.
    pub stages: BTreeMap<String, StageState>,
    /// Foreign entries planted in the area (IDs).
    pub planted: BTreeSet<String>,
    /// `dest/`: each committed name with its files.
    pub dest: BTreeMap<String, BTreeMap<String, String>>,
    actors: Vec<ActorState>,
    /// The lock the containers/storage-style holder has, if any (its entry's holder is
    /// [`FOREIGN`]).
    foreign: Option<Held>,
    made: u64,
    /// Steps that ran (were not skipped as meaningless in the state they met).
    pub ran: usize,
    /// Whether the files are on FUSE, where a file deleted while open keeps a `.fuse_hidden`
    /// name beside it until it is closed.
    fuse: bool,
}

type Outcome = Result<(), String>;

impl Model {
    pub fn new(layout: Layout, kinds: Vec<Kind>, fuse: bool) -> Self {
        Model {
            layout,
            actors: vec![ActorState::default(); kinds.len()],
            kinds,
            foreign: None,
            locks: BTreeMap::new(),
            sub_swapped: false,
            stages: BTreeMap::new(),
            planted: BTreeSet::new(),
            dest: BTreeMap::new(),
            made: 0,
            ran: 0,
            fuse,
        }
    }

    /// The lock paths steps can name: the fixed ones, then those created so far.
    fn path(&self, index: u8) -> String {
        let created: Vec<&String> = (self.locks.keys())
            .filter(|p| p.starts_with("lock-"))
            .collect();
        let i = usize::from(index) % (PATHS.len() + created.len());
        PATHS
            .get(i)
            .map_or_else(|| created[i - PATHS.len()].clone(), |p| p.to_string())
    }

    fn actor(&self, index: u8) -> usize {
        usize::from(index) % self.actors.len()
    }

    fn new_file(&mut self, holder: Option<(usize, u8)>) -> Entry {
        self.made += 1;
        Entry::File {
            made: self.made,
            holder,
        }
    }

    /// Whether a path beneath `sub/` cannot be reached inside the grant now.
    fn escapes(&self, path: &str) -> bool {
        self.sub_swapped && path.starts_with("sub/")
    }

    /// The reply expected of taking `path` now (by any means): `None` if it is free.
    fn refusal(&self, path: &str, starved: bool) -> Option<&'static [&'static str]> {
        if starved {
            // The descriptor comes first: nothing is looked up without one.
            return Some(&["limit-reached"]);
        }
        if self.escapes(path) {
            // cap-std refuses to leave the directory.
            return Some(&[
                "access",
                "not-permitted",
                "other",
                "no-entry",
                "not-directory",
            ]);
        }
        match self.locks.get(path) {
            Some(Entry::Symlink | Entry::Dir) => Some(&["not-a-file"]),
            Some(Entry::File {
                holder: Some(_), ..
            }) => Some(&["would-block"]),
            _ => None,
        }
    }

    /// Records that actor `a` took `path` as its lock `h`.
    fn took(&mut self, a: usize, h: u8, path: &str) {
        let made = match self.locks.get(path) {
            Some(Entry::File { made, .. }) => *made,
            _ => {
                let entry = self.new_file(None);
                self.locks.insert(path.to_owned(), entry);
                self.made
            }
        };
        self.locks.insert(
            path.to_owned(),
            Entry::File {
                made,
                holder: Some((a, h)),
            },
        );
        self.actors[a].locks.insert(
            h,
            Held {
                path: path.to_owned(),
                made,
            },
        );
    }

    /// Actor `a` lets go of its lock `h` without deleting the file.
    fn let_go(&mut self, a: usize, h: u8) {
        let Some(held) = self.actors[a].locks.remove(&h) else {
            return;
        };
        if let Some(Entry::File { made, holder }) = self.locks.get_mut(&held.path)
            && *made == held.made
        {
            *holder = None;
        }
    }

    /// Runs one step. `Ok` if the real world did what the model predicts.
    pub fn step(&mut self, step: &Step, io: &mut dyn Io) -> Outcome {
        let ran = self.run(step, io)?;
        if ran {
            self.ran += 1;
        }
        self.settle_waits(io)
    }

    /// Returns whether the step ran (`false`: it meant nothing in this state, and was skipped).
    fn run(&mut self, step: &Step, io: &mut dyn Io) -> Result<bool, String> {
        use Step::*;
        match *step {
            Create { actor, h } => {
                let a = self.actor(actor);
                if !self.free_slot(a, h) {
                    return Ok(false);
                }
                let reply = io.send(a, &format!("create {h}"))?;
                if self.actors[a].starved {
                    expect_err(&reply, &["limit-reached"], "lock-*")?;
                    return Ok(true);
                }
                let name = reply
                    .strip_prefix("ok ")
                    .ok_or_else(|| unexpected(&reply, "ok NAME"))?;
                if !name.starts_with("lock-") || self.locks.contains_key(name) {
                    return Err(format!("create-and-lock made {name:?}, a name not new"));
                }
                let entry = self.new_file(None);
                self.locks.insert(name.to_owned(), entry);
                self.took(a, h, name);
            }
            Try { actor, h, path } | Wait { actor, h, path } | TryRaced { actor, h, path } => {
                let a = self.actor(actor);
                if !self.free_slot(a, h) {
                    return Ok(false);
                }
                let raced = matches!(step, TryRaced { .. });
                if raced && self.kinds[a].is_guest() {
                    return Ok(false);
                }
                let path = self.path(path);
                let line = match step {
                    Try { .. } => format!("try {h} {path}"),
                    TryRaced { .. } => format!("try-raced {h} {path}"),
                    _ => format!("wait {h} {path} 20"),
                };
                let reply = io.send(a, &line)?;
                let held = matches!(
                    self.locks.get(&path),
                    Some(Entry::File {
                        holder: Some(_),
                        ..
                    })
                );
                if raced && held && !self.escapes(&path) && !self.actors[a].starved {
                    // The file was deleted between the open and the lock: the lock met the
                    // holder's lock on the deleted file (busy), and the holder lost its lock.
                    expect_err(&reply, &["would-block"], &path)?;
                    self.locks.remove(&path);
                } else {
                    self.took_or_refused(a, h, &path, &reply)?;
                }
            }
            WaitLong { actor, h, path } => {
                let a = self.actor(actor);
                // A waiter holds no locks, so no two waiters can wait on each other.
                if !self.free_slot(a, h) || !self.actors[a].locks.is_empty() {
                    return Ok(false);
                }
                let path = self.path(path);
                // Its limit is far past the 30 s `settle_waits` allows once the path is free,
                // so that a lost wake-up fails the run there; a wait that ended at its limit
                // would take the lock by its last try and hide one.
                let line = format!("wait {h} {path} 600000");
                let busy = self.refusal(&path, self.actors[a].starved) == Some(&["would-block"]);
                if busy {
                    io.start(a, &line)?;
                    self.actors[a].waiting = Some((h, path));
                } else {
                    let reply = io.send(a, &line)?;
                    self.took_or_refused(a, h, &path, &reply)?;
                }
            }
            Unlock { actor, h } => {
                let a = self.actor(actor);
                let Some(held) = (self.may_release(a))
                    .then(|| self.actors[a].locks.get(&h))
                    .flatten()
                else {
                    return Ok(false);
                };
                let held = held.clone();
                let reply = io.send(a, &format!("unlock {h}"))?;
                // Unlock-and-delete deletes by path: a lost lock deletes what is there now.
                match self.locks.get(&held.path) {
                    Some(Entry::Dir) => expect_err(&reply, &["not-a-file", "other"], &held.path)?,
                    _ if self.escapes(&held.path) => {
                        expect_err(&reply, &["access", "not-permitted", "other"], &held.path)?
                    }
                    _ => {
                        expect_ok(&reply)?;
                        self.locks.remove(&held.path);
                    }
                }
                self.actors[a].locks.remove(&h);
            }
            Drop { actor, h } => {
                let a = self.actor(actor);
                if !self.may_release(a) || !self.actors[a].locks.contains_key(&h) {
                    return Ok(false);
                }
                expect_ok(&io.send(a, &format!("drop {h}"))?)?;
                self.let_go(a, h);
            }
            ForeignLock { path } => return self.foreign_lock(path, io),
            ForeignRelease { how } => return self.foreign_release(how, io),
            Stage { actor, s } => {
                let a = self.actor(actor);
                if !self.ready(a) || self.actors[a].stages.contains_key(&s) {
                    return Ok(false);
                }
                let reply = io.send(a, &format!("stage {s}"))?;
                if self.actors[a].starved {
                    expect_err(&reply, &["limit-reached"], "")?;
                    return Ok(true);
                }
                let id = reply
                    .strip_prefix("ok ")
                    .ok_or_else(|| unexpected(&reply, "ok ID"))?;
                if self.stages.contains_key(id) || self.planted.contains(id) {
                    return Err(format!("stage made ID {id}, which is not new"));
                }
                self.stages.insert(
                    id.to_owned(),
                    StageState {
                        owner: Some((a, s)),
                        lock_file: true,
                        resource: true,
                        files: BTreeMap::new(),
                        mishap: None,
                    },
                );
                self.actors[a].stages.insert(s, id.to_owned());
            }
            Write {
                actor,
                s,
                file,
                text,
            } => {
                let a = self.actor(actor);
                let Some(id) = self.stage_of(a, s) else {
                    return Ok(false);
                };
                if self.stages[&id].mishap.is_some() {
                    // The actor's handle names what was removed: not this model's business.
                    return Ok(false);
                }
                let (file, text) = (FILES[usize::from(file) % 2], TEXTS[usize::from(text) % 3]);
                let reply = io.send(a, &format!("write {s} {file} {text}"))?;
                let stage = self
                    .stages
                    .get_mut(&id)
                    .expect("a stage of an actor is known");
                if !stage.resource || self.actors[a].starved {
                    if !reply.starts_with("err io ") {
                        return Err(unexpected(&reply, "err io (the stage is gone)"));
                    }
                } else {
                    expect_ok(&reply)?;
                    stage.files.insert(file.to_owned(), text.to_owned());
                }
            }
            Commit {
                actor,
                s,
                dest,
                replace,
                durable,
            } => {
                let a = self.actor(actor);
                let Some(id) = self.stage_of(a, s) else {
                    return Ok(false);
                };
                if self.actors[a].starved {
                    return Ok(false);
                }
                let dest = DESTS[usize::from(dest) % 2];
                let line = format!(
                    "commit {s} {dest} {} {}",
                    if replace { "replace" } else { "keep" },
                    if durable { "full" } else { "none" }
                );
                let reply = io.send(a, &line)?;
                let stage = &self.stages[&id];
                if !stage.lock_file {
                    // The lock file is gone: someone deleted it, the lock is lost. Nothing is
                    // moved; the stage is left behind for recovery.
                    expect_commit_err(&reply, "lock-lost gone", dest)?;
                    self.stages.get_mut(&id).expect("known").owner = None;
                    self.actors[a].stages.remove(&s);
                } else if let Some(kinds) = stage.mishap.and_then(refused_commit) {
                    // Nothing moves; the stage comes back, still held, to abort.
                    if !kinds
                        .iter()
                        .any(|k| expect_commit_err(&reply, k, dest).is_ok())
                    {
                        return Err(unexpected(&reply, &format!("err {}", kinds.join("|"))));
                    }
                } else if self.dest.contains_key(dest) && !replace {
                    expect_commit_err(&reply, "exist kept", dest)?;
                } else {
                    expect_ok(&reply)?;
                    let files = stage.files.clone();
                    self.dest.insert(dest.to_owned(), files);
                    self.stages.remove(&id);
                    self.actors[a].stages.remove(&s);
                }
            }
            Abort { actor, s } => {
                let a = self.actor(actor);
                let Some(id) = self.stage_of(a, s) else {
                    return Ok(false);
                };
                if self.actors[a].starved {
                    return Ok(false);
                }
                expect_ok(&io.send(a, &format!("abort {s}"))?)?;
                self.stages.remove(&id);
                self.actors[a].stages.remove(&s);
            }
            Recover { actor } => {
                let a = self.actor(actor);
                if !self.ready(a) || self.actors[a].starved {
                    return Ok(false);
                }
                let reply = io.send(a, "recover")?;
                let expected = self.recover_expected();
                if reply != expected {
                    return Err(unexpected(&reply, &expected));
                }
                self.recovered();
            }
            Status { path } => {
                let path = self.path(path);
                let reply = io.status(&path)?;
                let expected: &[&str] = match self.locks.get(&path) {
                    _ if self.escapes(&path) => &["err"],
                    None => &["missing"],
                    Some(Entry::File { holder: None, .. }) => &["free"],
                    Some(Entry::File { .. }) => &["held"],
                    Some(_) => &["err not-a-file"],
                };
                if !expected.iter().any(|e| reply.starts_with(e)) {
                    return Err(unexpected(&reply, &expected.join(" or ")));
                }
            }
            Unlink { path } | Clear { path } => {
                let path = self.path(path);
                let clear = matches!(step, Clear { .. });
                let removable = match self.locks.get(&path) {
                    Some(Entry::File { .. }) => true,
                    Some(_) => clear,
                    None => false,
                };
                if !removable || self.escapes(&path) {
                    return Ok(false);
                }
                io.world(if clear {
                    Act::Clear(&path)
                } else {
                    Act::Unlink(&path)
                })?;
                self.locks.remove(&path);
            }
            Replace { path } => {
                let path = self.path(path);
                if self.escapes(&path) || matches!(self.locks.get(&path), Some(Entry::Dir)) {
                    return Ok(false);
                }
                io.world(Act::Replace(&path))?;
                let entry = self.new_file(None);
                self.locks.insert(path, entry);
            }
            Symlink { path } | Mkdir { path } => {
                let path = self.path(path);
                if self.escapes(&path) || self.locks.contains_key(&path) {
                    return Ok(false);
                }
                if matches!(step, Symlink { .. }) {
                    io.world(Act::Symlink(&path))?;
                    self.locks.insert(path, Entry::Symlink);
                } else {
                    io.world(Act::Mkdir(&path))?;
                    self.locks.insert(path, Entry::Dir);
                }
            }
            SwapSub => {
                if self.sub_swapped || self.locks.keys().any(|p| p.starts_with("sub/")) {
                    return Ok(false);
                }
                io.world(Act::SwapSub)?;
                self.sub_swapped = true;
            }
            RestoreSub => {
                if !self.sub_swapped || self.actors.iter().any(|a| a.waiting.is_some()) {
                    return Ok(false);
                }
                io.world(Act::RestoreSub)?;
                self.sub_swapped = false;
            }
            UnlinkStageLock { actor, s } => {
                let a = self.actor(actor);
                let Some(id) = self.actors[a].stages.get(&s).cloned() else {
                    return Ok(false);
                };
                // (A per-directory stage without its lock file and resource would be an empty
                // `N` the model does not track.)
                if !self.stages[&id].lock_file
                    || self.stages[&id].mishap == Some(self::Mishap::Gone)
                {
                    return Ok(false);
                }
                let lock = self.layout.lock_path(&id).to_string_lossy().into_owned();
                io.world(Act::UnlinkInArea(lock))?;
                self.stages.get_mut(&id).expect("known").lock_file = false;
            }
            Mishap { actor, s, what } => {
                let a = self.actor(actor);
                let Some(id) = self.actors[a].stages.get(&s).cloned() else {
                    return Ok(false);
                };
                let stage = &self.stages[&id];
                if !stage.lock_file || !stage.resource || stage.mishap.is_some() {
                    return Ok(false);
                }
                let mishap = [
                    self::Mishap::Gone,
                    self::Mishap::File,
                    self::Mishap::SymlinkOut,
                    self::Mishap::OtherDir,
                ][usize::from(what) % 4];
                io.world(Act::Mishap(id.clone(), mishap))?;
                let stage = self.stages.get_mut(&id).expect("known");
                stage.mishap = Some(mishap);
                stage.files.clear();
                match mishap {
                    self::Mishap::Gone => stage.resource = false,
                    self::Mishap::OtherDir => {
                        stage.files.insert("other".into(), "someone else's".into());
                    }
                    _ => {}
                }
            }
            Plant => {
                if !self.planted.is_empty() {
                    return Ok(false);
                }
                io.world(Act::Plant("4242"))?;
                self.planted.insert("4242".to_owned());
            }
            Kill { actor, spin } => {
                let a = self.actor(actor);
                // A blocked thread or guest cannot be told to quit or trap until it is done.
                if self.actors[a].waiting.is_some() && self.kinds[a] != Kind::Process {
                    return Ok(false);
                }
                io.kill(a, spin)?;
                self.died(a);
            }
            Nofile { actor } | NofileRestore { actor } => {
                let a = self.actor(actor);
                let starve = matches!(step, Nofile { .. });
                if self.kinds[a] != Kind::Process
                    || !self.ready(a)
                    || self.actors[a].starved == starve
                {
                    return Ok(false);
                }
                let line = if starve { "nofile 0" } else { "nofile-restore" };
                expect_ok(&io.send(a, line)?)?;
                self.actors[a].starved = starve;
            }
        }
        Ok(true)
    }

    /// Whether actor `a` is free to take a step (not blocked in a wait).
    fn ready(&self, a: usize) -> bool {
        self.actors[a].waiting.is_none()
    }

    /// Whether actor `a` may let go of something: not while starved of descriptors, where the
    /// one it frees would be the next one it gets (the model keeps every open failing).
    fn may_release(&self, a: usize) -> bool {
        self.ready(a) && !self.actors[a].starved
    }

    fn free_slot(&self, a: usize, h: u8) -> bool {
        self.ready(a) && !self.actors[a].locks.contains_key(&h)
    }

    fn stage_of(&self, a: usize, s: u8) -> Option<String> {
        self.ready(a)
            .then(|| self.actors[a].stages.get(&s).cloned())
            .flatten()
    }

    fn took_or_refused(&mut self, a: usize, h: u8, path: &str, reply: &str) -> Outcome {
        match self.refusal(path, self.actors[a].starved) {
            Some(kinds) => expect_err(reply, kinds, path),
            None => {
                expect_ok(reply)?;
                self.took(a, h, path);
                Ok(())
            }
        }
    }

    /// After a step: every started wait whose path is now free (or can no longer be locked)
    /// must end, one winner per path; the others go on waiting.
    fn settle_waits(&mut self, io: &mut dyn Io) -> Outcome {
        loop {
            let ready: Vec<(usize, u8, String)> = (0..self.actors.len())
                .filter_map(|a| {
                    let (h, path) = self.actors[a].waiting.clone()?;
                    let refusal = self.refusal(&path, false);
                    (refusal != Some(&["would-block"])).then_some((a, h, path))
                })
                .collect();
            let Some((_, _, path)) = ready.first() else {
                return Ok(());
            };
            let path = path.clone();
            let waiters: Vec<(usize, u8)> = (ready.iter())
                .filter(|(_, _, p)| *p == path)
                .map(|(a, h, _)| (*a, *h))
                .collect();
            // A lost wake-up waits until its limit (10 minutes); a release that makes no event
            // is found by the sweep within a second or two. 30 s leaves room for a loaded
            // machine (the former 5 s was thin with builds beside it).
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            let (a, h, reply) = 'found: loop {
                for &(a, h) in &waiters {
                    if let Some(reply) = io.poll(a, 5)? {
                        break 'found (a, h, reply);
                    }
                }
                if std::time::Instant::now() > deadline {
                    return Err(format!(
                        "waiters {waiters:?} on {path} did not end within 30 s of it being free"
                    ));
                }
            };
            self.actors[a].waiting = None;
            self.took_or_refused(a, h, &path, &reply)?;
        }
    }

    /// Actor `a` died: what the OS or its host releases for it, by its kind.
    fn died(&mut self, a: usize) {
        self.ended(a, self.kinds[a] == Kind::Process);
    }

    /// Actor `a` ended: its locks are let go (their files stay: nobody deleted them); its
    /// stages are left behind for recovery if it was `killed`, else aborted.
    fn ended(&mut self, a: usize, killed: bool) {
        let handles: Vec<u8> = self.actors[a].locks.keys().copied().collect();
        for h in handles {
            self.let_go(a, h);
        }
        let state = std::mem::take(&mut self.actors[a]);
        for id in state.stages.values() {
            if killed {
                // Killed: its stages are left behind, dead, for recovery.
                self.stages.get_mut(id).expect("known").owner = None;
            } else {
                // A thread's stages are dropped (aborted) as it quits; a guest's by the host
                // as it drops the trapped store.
                self.stages.remove(id);
            }
        }
    }

    /// The reply recovery must give now.
    fn recover_expected(&self) -> String {
        let mut removed = Vec::new();
        let mut skipped = Vec::new();
        for (id, stage) in &self.stages {
            if !stage.lock_file && !stage.resource {
                continue; // nothing left of it
            }
            if stage.resource && stage.mishap.is_some_and(Mishap::not_a_dir) {
                // A file or a symbolic link where its resource belongs: checked before its
                // lock, and kept.
                skipped.push(format!("{id}:not-a-stage"));
            } else if stage.owner.is_some() && stage.lock_file {
                skipped.push(format!("{id}:held"));
            } else if self.hides_deleted_lock(stage) {
                // Its stage directory holds the `.fuse_hidden` name of its deleted, still open
                // lock file: something a stage does not hold, so recovery keeps it.
                skipped.push(format!("{id}:not-a-stage"));
            } else {
                removed.push(id.clone());
            }
        }
        for id in &self.planted {
            skipped.push(format!("{id}:not-a-stage"));
        }
        removed.sort();
        skipped.sort();
        format!(
            "ok removed={} skipped={}",
            removed.join(","),
            skipped.join(",")
        )
    }

    /// Whether stage's directory holds its deleted lock file's `.fuse_hidden` name (on FUSE,
    /// per directory, while the live owner still has the file open).
    fn hides_deleted_lock(&self, stage: &StageState) -> bool {
        self.fuse
            && self.layout == Layout::PerDirectory
            && stage.owner.is_some()
            && !stage.lock_file
    }

    /// What recovery did: dead stages and stages without a lock file are gone.
    fn recovered(&mut self) {
        let fuse = self.fuse && self.layout == Layout::PerDirectory;
        self.stages.retain(|_, stage| {
            if stage.resource && stage.mishap.is_some_and(Mishap::not_a_dir) {
                return true; // not a stage: kept as it is
            }
            let hidden = fuse && stage.owner.is_some() && !stage.lock_file;
            let dead = !hidden && (stage.owner.is_none() || !stage.lock_file);
            if dead {
                stage.resource = false;
                stage.lock_file = false;
            }
            // A stage without a lock whose actor still has it stays known (empty) until the
            // actor ends it.
            stage.owner.is_some()
        });
    }

    /// What a recovery keeps of stages whose owner put a file or a symbolic link where the
    /// resource belongs (not stages any more): their entries in the area.
    pub fn not_stages(&self) -> Vec<std::path::PathBuf> {
        let mut kept = Vec::new();
        for (id, stage) in &self.stages {
            if stage.resource && stage.mishap.is_some_and(Mishap::not_a_dir) {
                if self.layout == Layout::PerDirectory {
                    kept.push(id.into());
                }
                kept.push(self.layout.lock_path(id));
                kept.push(self.layout.resource_path(id));
            }
        }
        kept
    }

    /// A power cut: every actor dies as a killed process does, and so does the foreign holder.
    pub fn power_cut(&mut self) {
        for a in 0..self.actors.len() {
            self.ended(a, true);
        }
        self.foreign_gone();
    }

    /// Every actor's pending state, for the end of a sequence.
    pub fn waiting(&self) -> Vec<usize> {
        (0..self.actors.len())
            .filter(|&a| self.actors[a].waiting.is_some())
            .collect()
    }

    /// Actor `a` quit cleanly (`quit`): its stages aborted, its locks dropped.
    pub fn quit(&mut self, a: usize) {
        self.ended(a, false);
    }

    /// Whether actor `a`'s descriptor limit is down.
    pub fn starved(&self, a: usize) -> bool {
        self.actors[a].starved
    }

    /// Actor `a`'s descriptor limit is back up.
    pub fn fed(&mut self, a: usize) {
        self.actors[a].starved = false;
    }
}

fn unexpected(reply: &str, expected: &str) -> String {
    format!("replied {reply:?}, where the model expects {expected}")
}

fn expect_ok(reply: &str) -> Outcome {
    if reply == "ok" || reply.starts_with("ok ") {
        Ok(())
    } else {
        Err(unexpected(reply, "ok"))
    }
}

/// An error of one of `kinds`, with a one-line message naming `path` (when not empty).
fn expect_err(reply: &str, kinds: &[&str], path: &str) -> Outcome {
    let expected = || format!("err {}", kinds.join("|"));
    let rest = reply
        .strip_prefix("err ")
        .ok_or_else(|| unexpected(reply, &expected()))?;
    let (kind, message) = rest.split_once(' ').unwrap_or((rest, ""));
    if !kinds.contains(&kind) {
        return Err(unexpected(reply, &expected()));
    }
    let named = path
        .rsplit('/')
        .next()
        .unwrap_or(path)
        .trim_end_matches('*');
    if message.is_empty() || !message.contains(named) {
        return Err(format!(
            "the error {reply:?} does not name the path {path:?} in its message"
        ));
    }
    Ok(())
}

/// The kinds a commit of a stage whose owner did `mishap` fails with (`None`: it commits what is
/// there). Native actors say `access` for what guests get as `not-permitted`.
fn refused_commit(mishap: Mishap) -> Option<&'static [&'static str]> {
    match mishap {
        Mishap::Gone => Some(&["no-entry kept"]),
        Mishap::File => Some(&["not-a-file kept"]),
        Mishap::SymlinkOut => Some(&["not-permitted kept", "access kept"]),
        Mishap::OtherDir => None,
    }
}

fn expect_commit_err(reply: &str, kind: &str, dest: &str) -> Outcome {
    let expected = format!("err {kind}");
    let rest = (reply.strip_prefix(&expected))
        .ok_or_else(|| unexpected(reply, &format!("{expected} MESSAGE")))?;
    if !rest.contains(dest) {
        return Err(format!("the error {reply:?} does not name {dest:?}"));
    }
    Ok(())
}
