//! The real world a sequence runs in: a scratch directory with the grant (`locks/`, `area/`,
//! `dest/`) and a directory `outside/` beside it, the actors, the hostile acts, and the checks
//! after every step that the files are what the model says, looked at from outside stagelock.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use stagelock::{Layout, LockDir, LockStatus};
use stagelock_tests::actor::kind_name;
use stagelock_tests::{Entry as TreeEntry, tree};

use crate::actors::{Actor, Foreign, Process, Thread};
use crate::model::{Act, Entry, ForeignAct, Io, Mishap, Model};
use crate::steps::{Kind, Step};

/// How long an actor may take to answer one step before the run fails.
const REPLY_WITHIN: Duration = Duration::from_secs(60);

pub struct World {
    root: PathBuf,
    layout: Layout,
    kinds: Vec<Kind>,
    actors: Vec<Option<Box<dyn Actor>>>,
    outside: BTreeMap<PathBuf, TreeEntry>,
    locks: LockDir,
    /// What each actor was last sent, for messages.
    last: Vec<String>,
    /// How many times `locks/sub` was swapped for a link.
    swaps: u32,
    /// The containers/storage-style holder, started by its first lock.
    foreign: Option<Foreign>,
}

impl World {
    /// A fresh world beneath `root` (an empty directory), with one actor per kind.
    pub fn new(root: &Path, layout: Layout, kinds: &[Kind]) -> anyhow::Result<Self> {
        let grant = root.join("grant");
        for dir in ["locks/sub", "area", "dest"] {
            fs::create_dir_all(grant.join(dir))?;
        }
        fs::create_dir_all(root.join("outside/inner"))?;
        fs::write(root.join("outside/canary"), "outside the grant")?;
        // Synced, so that a power cut (LazyFS) keeps the world the sequence starts from.
        for dir in [
            "grant/locks/sub",
            "grant/locks",
            "grant/area",
            "grant/dest",
            "grant",
        ] {
            fs::File::open(root.join(dir))?.sync_all()?;
        }
        fs::File::open(root)?.sync_all()?;
        let mut world = World {
            root: root.to_owned(),
            layout,
            kinds: kinds.to_vec(),
            actors: Vec::new(),
            outside: tree(&root.join("outside"))?,
            locks: LockDir::open_ambient_dir(grant.join("locks"), cap_std::ambient_authority())?,
            last: vec![String::new(); kinds.len()],
            swaps: 0,
            foreign: None,
        };
        for &kind in kinds {
            let actor = world.spawn(kind)?;
            world.actors.push(Some(actor));
        }
        Ok(world)
    }

    fn grant(&self) -> PathBuf {
        self.root.join("grant")
    }

    fn spawn(&self, kind: Kind) -> anyhow::Result<Box<dyn Actor>> {
        let grant = self.grant();
        Ok(match kind {
            Kind::Thread => Box::new(Thread::spawn(&grant, self.layout)?),
            Kind::Process => Box::new(Process::spawn(&grant, self.layout)?),
            #[cfg(feature = "components")]
            Kind::GuestSync => Box::new(crate::guest::Guest::spawn_sync(&grant, self.layout)?),
            #[cfg(feature = "components")]
            Kind::GuestAsync => Box::new(crate::guest::Guest::spawn_async(&grant, self.layout)?),
            #[cfg(not(feature = "components"))]
            Kind::GuestSync | Kind::GuestAsync => {
                anyhow::bail!("guest actors need the `components` feature")
            }
        })
    }

    fn actor(&mut self, a: usize) -> Result<&mut Box<dyn Actor>, String> {
        self.actors[a]
            .as_mut()
            .ok_or_else(|| format!("actor {a} is gone"))
    }

    fn who(&self, a: usize) -> String {
        format!("actor {a} ({:?})", self.kinds[a])
    }

    /// Ends every actor cleanly: the others first, then the waiting ones, which are all told to
    /// quit before any reply is awaited: the model lets no waiter hold a lock, so ending the
    /// others frees what they wait for, and of two waiters on one path the one that gets it
    /// quits, freeing it for the other.
    pub fn finish(&mut self, model: &mut Model) -> Result<(), String> {
        // The foreign holder lets go first: a waiter may be waiting for it.
        model.step(&Step::ForeignRelease { how: 1 }, self)?;
        let waiting = model.waiting();
        let mut order: Vec<usize> = (0..self.actors.len())
            .filter(|a| !waiting.contains(a))
            .collect();
        order.extend(&waiting);
        for &a in &order {
            if model.starved(a) {
                // Starved, its first failed abort would free descriptors for the next.
                let reply = self.send(a, "nofile-restore")?;
                if reply != "ok" {
                    return Err(format!(
                        "{} replied {reply:?} to nofile-restore",
                        self.who(a)
                    ));
                }
                model.fed(a);
            }
            if waiting.contains(&a) {
                self.start(a, "quit")?;
            }
        }
        for a in order {
            let reply = if waiting.contains(&a) {
                self.recv(a)?
            } else {
                self.send(a, "quit")?
            };
            if reply != "bye" {
                // A waiter answers its wait first (the lock came free as the others quit).
                let again = self.recv(a)?;
                if again != "bye" {
                    return Err(format!(
                        "{} replied {reply:?} then {again:?} to quit",
                        self.who(a)
                    ));
                }
            }
            model.quit(a);
            self.actors[a] = None;
        }
        Ok(())
    }

    /// The power goes: every actor dies at once.
    pub fn kill_all(&mut self, model: &mut Model) {
        for actor in self.actors.iter_mut().filter_map(Option::take) {
            drop(actor); // killed as it drops
        }
        self.foreign = None;
        model.power_cut();
    }

    /// Checks only `dest/` (after a power cut the rest may be anything recovery handles).
    pub fn check_dest(&self, model: &Model) -> Result<(), String> {
        let dest =
            read_tree(&self.grant().join("dest")).map_err(|e| format!("reading dest/: {e}"))?;
        if dest != model.dest {
            return Err(format!(
                "dest/ holds {dest:?}, where the model has {:?}",
                model.dest
            ));
        }
        Ok(())
    }

    /// Recovers the area with a fresh actor, then checks that nothing of a stage is left:
    /// only the planted entries.
    pub fn recover_all(&self, model: &Model) -> Result<(), String> {
        let mut actor = Thread::spawn(&self.grant(), self.layout).map_err(|e| format!("{e:#}"))?;
        actor.send("recover").map_err(|e| format!("{e:#}"))?;
        let reply = actor.recv(REPLY_WITHIN).map_err(|e| format!("{e:#}"))?;
        if !reply.as_deref().is_some_and(|r| r.starts_with("ok ")) {
            return Err(format!("recovery replied {reply:?}"));
        }
        let mut planted: Vec<PathBuf> = (model.planted.iter())
            .flat_map(|id| planted(self.layout, id).into_iter().map(|(p, _)| p))
            .collect();
        planted.extend(model.not_stages());
        // A lock file recovery deleted while the FUSE daemon had not yet seen a killed
        // holder's descriptor close (the kernel sends that release without waiting) is kept
        // under a `.fuse_hidden` name until it does: a moment is allowed for those (30 s, for
        // a loaded machine: the daemon's release is milliseconds, a leaked file is forever).
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let area = tree(&self.grant().join("area")).map_err(|e| format!("{e:#}"))?;
            let left: Vec<&PathBuf> = area.keys().filter(|p| !planted.contains(p)).collect();
            if left.is_empty() {
                return Ok(());
            }
            if !left.iter().all(|p| fuse_hidden(p)) || Instant::now() > deadline {
                return Err(format!(
                    "recovery left {left:?} in the area (reply {reply:?})"
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn recv(&mut self, a: usize) -> Result<String, String> {
        let who = self.who(a);
        let last = self.last[a].clone();
        let reply = self
            .actor(a)?
            .recv(REPLY_WITHIN)
            .map_err(|e| format!("{who}: {e:#}"))?;
        reply.ok_or_else(|| format!("{who} did not reply to {last:?} within {REPLY_WITHIN:?}"))
    }

    /// Checks that the files are what the model says: the lock paths (and whether each is
    /// locked, asked with `F_GETLK` on a fresh open), the area's entries, `dest/` file by file,
    /// and nothing changed outside the grant.
    pub fn check(&self, model: &Model) -> Result<(), String> {
        let grant = self.grant();
        let io = |e: anyhow::Error| format!("looking at the files: {e:#}");
        // Lock paths.
        let found = tree(&grant.join("locks")).map_err(io)?;
        let mut expected: BTreeMap<PathBuf, &'static str> = BTreeMap::new();
        expected.insert(
            "sub".into(),
            if model.sub_swapped { "symlink" } else { "dir" },
        );
        for (path, entry) in &model.locks {
            let kind = match entry {
                Entry::File { .. } => "file",
                Entry::Symlink => "symlink",
                Entry::Dir => "dir",
            };
            expected.insert(path.into(), kind);
        }
        let found_kinds: BTreeMap<PathBuf, &'static str> = (found.iter())
            .filter(|(p, _)| !fuse_hidden(p))
            .map(|(p, e)| (p.clone(), entry_kind(e)))
            .collect();
        if found_kinds != expected {
            return Err(format!(
                "locks/ holds {found_kinds:?}, where the model has {expected:?}"
            ));
        }
        for (path, entry) in &model.locks {
            if let Entry::File { holder, .. } = entry {
                let locked = locked(&grant.join("locks").join(path))
                    .map_err(|e| format!("F_GETLK on locks/{path}: {e}"))?;
                if locked != holder.is_some() {
                    return Err(format!(
                        "locks/{path} is {}locked, where the model has it held by {holder:?}",
                        if locked { "" } else { "not " }
                    ));
                }
            }
        }
        // The area.
        let area = tree(&grant.join("area")).map_err(io)?;
        let mut expected: BTreeMap<PathBuf, &'static str> = BTreeMap::new();
        for (id, stage) in &model.stages {
            let stage_dir = match self.layout {
                Layout::Pairs => None,
                _ => Some(PathBuf::from(id)),
            };
            if let Some(dir) = &stage_dir
                && (stage.lock_file || stage.resource)
            {
                expected.insert(dir.clone(), "dir");
            }
            if stage.lock_file {
                expected.insert(model.layout.lock_path(id), "file");
            }
            if stage.resource {
                let kind = match stage.mishap {
                    Some(Mishap::File) => "file",
                    Some(Mishap::SymlinkOut) => "symlink",
                    _ => "dir",
                };
                expected.insert(model.layout.resource_path(id), kind);
            }
        }
        for id in &model.planted {
            for (path, kind) in planted(self.layout, id) {
                expected.insert(path, kind);
            }
        }
        // The files inside resource directories are the stages' own business.
        let area_kinds: BTreeMap<PathBuf, &'static str> = (area.iter())
            .filter(|(p, _)| !inside_resource(self.layout, p) && !fuse_hidden(p))
            .map(|(p, e)| (p.clone(), entry_kind(e)))
            .collect();
        if area_kinds != expected {
            return Err(format!(
                "area/ holds {area_kinds:?}, where the model has {expected:?}"
            ));
        }
        // dest/, byte for byte.
        let dest = read_tree(&grant.join("dest")).map_err(|e| format!("reading dest/: {e}"))?;
        if dest != model.dest {
            return Err(format!(
                "dest/ holds {dest:?}, where the model has {:?}",
                model.dest
            ));
        }
        // Nothing outside the grant was made, changed or removed.
        let outside = tree(&self.root.join("outside")).map_err(io)?;
        if outside != self.outside {
            return Err(format!(
                "outside the grant changed: {outside:?}, was {:?}",
                self.outside
            ));
        }
        Ok(())
    }
}

impl Io for World {
    fn send(&mut self, a: usize, line: &str) -> Result<String, String> {
        self.start(a, line)?;
        let reply = self.recv(a);
        if std::env::var_os("STAGELOCK_MODEL_TRACE").is_some() {
            eprintln!("  {} <- {line:?}: {reply:?}", self.who(a));
        }
        reply
    }

    fn start(&mut self, a: usize, line: &str) -> Result<(), String> {
        let who = self.who(a);
        self.last[a] = line.to_owned();
        if std::env::var_os("STAGELOCK_MODEL_TRACE").is_some() {
            eprintln!("  {who} <- {line:?} ...");
        }
        self.actor(a)?
            .send(line)
            .map_err(|e| format!("{who}, sending {line:?}: {e:#}"))
    }

    fn poll(&mut self, a: usize, ms: u64) -> Result<Option<String>, String> {
        let who = self.who(a);
        (self.actor(a)?.recv(Duration::from_millis(ms))).map_err(|e| format!("{who}: {e:#}"))
    }

    fn kill(&mut self, a: usize, spin: bool) -> Result<(), String> {
        if self.kinds[a].is_guest() {
            let reply = self.send(a, if spin { "spin" } else { "trap" })?;
            if !reply.starts_with("trapped") {
                return Err(format!("{} replied {reply:?} to a trap", self.who(a)));
            }
        }
        if let Some(mut actor) = self.actors[a].take() {
            actor.kill();
        }
        let fresh = self
            .spawn(self.kinds[a])
            .map_err(|e| format!("respawn: {e:#}"))?;
        self.actors[a] = Some(fresh);
        Ok(())
    }

    fn world(&mut self, act: Act<'_>) -> Result<(), String> {
        let locks = self.grant().join("locks");
        let area = self.grant().join("area");
        let outside = self.root.join("outside");
        let done = match &act {
            Act::Unlink(path) => fs::remove_file(locks.join(path)),
            Act::Clear(path) => {
                let at = locks.join(path);
                fs::remove_file(&at).or_else(|_| fs::remove_dir(&at))
            }
            Act::Replace(path) => {
                let new = locks.join("replacement.tmp");
                fs::write(&new, "").and_then(|()| fs::rename(&new, locks.join(path)))
            }
            Act::Symlink(path) => symlink(outside.join("canary"), locks.join(path)),
            Act::Mkdir(path) => fs::create_dir(locks.join(path)),
            Act::SwapSub => {
                // Moved aside, not removed: on FUSE it may still hold a deleted lock file's
                // `.fuse_hidden` name, which the checks ignore (as they do the aside name).
                self.swaps += 1;
                let aside = locks.join(format!(".fuse_hidden-sub-{}", self.swaps));
                fs::rename(locks.join("sub"), aside)
                    .and_then(|()| symlink(&outside, locks.join("sub")))
            }
            Act::RestoreSub => {
                fs::remove_file(locks.join("sub")).and_then(|()| fs::create_dir(locks.join("sub")))
            }
            Act::UnlinkInArea(path) => fs::remove_file(area.join(path)),
            Act::Plant(id) => plant(self.layout, &area, id, &outside),
            Act::Mishap(id, mishap) => {
                let resource = area.join(self.layout.resource_path(id));
                fs::remove_dir_all(&resource).and_then(|()| match mishap {
                    Mishap::Gone => Ok(()),
                    Mishap::File => fs::write(&resource, "not a directory"),
                    Mishap::SymlinkOut => symlink(outside.join("canary"), &resource),
                    Mishap::OtherDir => fs::create_dir(&resource)
                        .and_then(|()| fs::write(resource.join("other"), "someone else's")),
                })
            }
        };
        done.map_err(|e| format!("{act:?}: {e}"))
    }

    fn foreign(&mut self, act: ForeignAct<'_>) -> Result<String, String> {
        let line = match act {
            ForeignAct::Lock(path) => {
                let path = self.grant().join("locks").join(path);
                format!("lock {}", path.display())
            }
            ForeignAct::Unlock => "unlock".into(),
            ForeignAct::Close => "close".into(),
            ForeignAct::Delete => "delete".into(),
            ForeignAct::Exit => {
                self.foreign = None; // killed as it drops
                return Ok("ok".into());
            }
        };
        let holder = match &mut self.foreign {
            Some(holder) => holder,
            None => self
                .foreign
                .insert(Foreign::spawn().map_err(|e| format!("{e:#}"))?),
        };
        let failed = |e: anyhow::Error| format!("the foreign holder, sent {line:?}: {e:#}");
        holder.send(&line).map_err(failed)?;
        let reply = holder.recv(REPLY_WITHIN).map_err(failed)?;
        if std::env::var_os("STAGELOCK_MODEL_TRACE").is_some() {
            eprintln!("  the foreign holder <- {line:?}: {reply:?}");
        }
        reply.ok_or_else(|| format!("the foreign holder did not reply to {line:?}"))
    }

    fn status(&mut self, path: &str) -> Result<String, String> {
        Ok(match self.locks.status(path) {
            Ok(LockStatus::Missing) => "missing".into(),
            Ok(LockStatus::Free) => "free".into(),
            Ok(_) => "held".into(),
            Err(e) => format!("err {} {e}", kind_name(e.kind())),
        })
    }
}

impl Drop for World {
    fn drop(&mut self) {
        for actor in self.actors.iter_mut().flatten() {
            actor.kill();
        }
    }
}

/// Whether any lock conflicts with a write lock on the whole file at `path`: `F_OFD_GETLK`
/// on a fresh read-only open, which sees every other open file description's locks (this
/// process's threads', other processes' OFD and classic `fcntl` locks). Asked directly, not
/// through stagelock (rustix's `F_GETLK` cannot return the `l_pid` of -1 OFD locks report).
fn locked(path: &Path) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    let file = fs::File::open(path)?;
    // SAFETY: a zeroed `flock` is valid; `fcntl` writes only into the one it is given.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as _;
    lock.l_whence = libc::SEEK_SET as _;
    // SAFETY: a valid descriptor and a valid, exclusively borrowed `flock`.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_GETLK, &mut lock) } == -1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(lock.l_type != libc::F_UNLCK as libc::c_short)
}

/// A FUSE daemon's name for a file deleted while still open (`.fuse_hidden*`), gone when it
/// is closed: what a deleted lock file looks like there while its holder has it.
fn fuse_hidden(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with(".fuse_hidden"))
}

fn entry_kind(entry: &TreeEntry) -> &'static str {
    match entry {
        TreeEntry::Dir => "dir",
        TreeEntry::File(_) => "file",
        TreeEntry::Symlink(_) => "symlink",
        TreeEntry::Special => "special",
    }
}

fn inside_resource(layout: Layout, path: &Path) -> bool {
    let mut parts = path.iter().map(|p| p.to_string_lossy());
    match layout {
        Layout::Pairs => {
            parts.next().is_some_and(|p| p.starts_with("temp-dir-")) && parts.next().is_some()
        }
        _ => parts.nth(1).is_some_and(|p| p == "dir") && parts.next().is_some(),
    }
}

/// The entries of a planted foreign entry `id`: what looks like a dead stage but is not one.
fn planted(layout: Layout, id: &str) -> Vec<(PathBuf, &'static str)> {
    match layout {
        // A free lock file beside a symbolic link where the resource directory would be.
        Layout::Pairs => vec![
            (layout.lock_path(id), "file"),
            (layout.resource_path(id), "symlink"),
        ],
        // A stage directory with a file no stage has.
        _ => vec![
            (id.into(), "dir"),
            (layout.lock_path(id), "file"),
            (layout.resource_path(id), "dir"),
            (Path::new(id).join("notes.txt"), "file"),
        ],
    }
}

fn plant(layout: Layout, area: &Path, id: &str, outside: &Path) -> std::io::Result<()> {
    match layout {
        Layout::Pairs => {
            fs::write(area.join(layout.lock_path(id)), "")?;
            symlink(outside.join("inner"), area.join(layout.resource_path(id)))
        }
        _ => {
            fs::create_dir_all(area.join(layout.resource_path(id)))?;
            fs::write(area.join(layout.lock_path(id)), "")?;
            fs::write(area.join(id).join("notes.txt"), "not a stage")
        }
    }
}

/// `dest/`'s entries, each a directory of files with their contents.
fn read_tree(dir: &Path) -> std::io::Result<BTreeMap<String, BTreeMap<String, String>>> {
    let mut out = BTreeMap::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let mut files = BTreeMap::new();
        for file in fs::read_dir(entry.path())? {
            let file = file?;
            files.insert(
                file.file_name().to_string_lossy().into_owned(),
                fs::read_to_string(file.path())?,
            );
        }
        out.insert(entry.file_name().to_string_lossy().into_owned(), files);
    }
    Ok(out)
}
