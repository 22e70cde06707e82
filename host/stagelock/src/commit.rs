//! Moving a finished stage into place: how durable ([`Durability`]), and how, on filesystems that
//! have `renameat2`'s flags and on those that do not.
//!
//! With the flags (Linux on ext4, xfs, btrfs, tmpfs, ...), a commit is one
//! `renameat2(RENAME_NOREPLACE)`, and a replacing commit one `renameat2(RENAME_EXCHANGE)`.
//! Without them (`EINVAL` from FUSE filesystems such as bindfs and LazyFS, `ENOSYS` or
//! `EOPNOTSUPP` elsewhere, and every Unix but Linux), the same guarantees come from plain
//! `rename(2)` steps, ordered so that a crash between any two of them loses nothing: see
//! [`Stage::commit_replacing`](crate::Stage::commit_replacing) for each crash state.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Op};
use crate::sys::{self, RenameMode};

/// Whether a commit waits until the result is on disk.
///
/// The default, [`Full`](Self::Full), is what a staging area is for: after a commit returns, the
/// result survives a power cut or a kernel crash. [`None`](Self::None) is for results that are
/// cheap to rebuild.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Durability {
    /// Before the rename, `fsync` every regular file and every directory of the resource; after
    /// it, `fsync` the directories the resource left and entered. A power cut after the commit
    /// returns finds every committed byte.
    ///
    /// # Cost
    ///
    /// One `fsync` per file and directory (after starting every file's writeback at once on
    /// Linux), each waiting for the disk: for a 100-file, 10 MB stage on the project's ext4
    /// machine about 16 ms against 37 µs for the bare rename, 3.3x the time of writing and
    /// committing without it (BENCHMARKS.md). `syncfs` was measured as an alternative (0.41x
    /// on ext4) and is not used: it does not reach FUSE filesystems (on LazyFS every trial
    /// lost its data) and it waits for every other writer of the filesystem.
    #[default]
    Full,
    /// Rename only. The result is in place at once for every reader, but after a power cut
    /// its files may be empty or missing (on ext4 with `data=ordered`, often fine; on LazyFS or
    /// with delayed allocation, data written just before is lost).
    None,
}

/// How [`Stage::commit_with`](crate::Stage::commit_with) commits.
///
/// The default: do not replace an existing destination, [`Durability::Full`].
///
/// # Examples
///
/// ```
/// use stagelock::{CommitOptions, Durability};
/// let fast_replace = CommitOptions::new().replace(true).durability(Durability::None);
/// assert!(fast_replace.replaces());
/// assert_eq!(CommitOptions::default().durability_level(), Durability::Full);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct CommitOptions {
    replace: bool,
    durability: Durability,
}

impl CommitOptions {
    /// The defaults: no replacing, [`Durability::Full`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether an existing destination is replaced (as
    /// [`Stage::commit_replacing`](crate::Stage::commit_replacing)) instead of refused.
    pub fn replace(mut self, replace: bool) -> Self {
        self.replace = replace;
        self
    }

    /// How durable the commit is.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Whether these options replace an existing destination.
    pub fn replaces(&self) -> bool {
        self.replace
    }

    /// The durability these options ask for.
    pub fn durability_level(&self) -> Durability {
        self.durability
    }
}

/// Where a commit moves from and to: single names in open directories.
pub(crate) struct Places<'a> {
    /// The directory holding the stage's resource, and the resource's name in it.
    pub(crate) src_parent: &'a File,
    pub(crate) src_name: &'a Path,
    /// The destination's directory and final name.
    pub(crate) dest_parent: &'a File,
    pub(crate) name: &'a Path,
    /// The destination as the caller gave it, for messages.
    pub(crate) dest: &'a Path,
    /// The stage's ID, which makes the reserved names of a replacing fallback unique.
    pub(crate) id: &'a str,
}

/// Where the resource ended up after a successful [`place`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Placed {
    /// At the destination, which did not exist.
    New,
    /// At the destination; what was there is now where the resource was (in the stage, still
    /// locked), to be removed.
    Replaced,
}

/// How far a failed commit got.
#[derive(Debug)]
pub(crate) enum Moved {
    /// Nothing moved: the stage is as it was.
    No(Error),
    /// The result is in place, but the destination it replaced could not be removed.
    ButOldRemains(Error),
    /// The result is in place, but syncing its directories failed.
    ButNotSynced(Error),
    /// The result left the stage but is not at the destination (the message says where it is).
    Aside(Error),
    /// Nothing moved, because the lock could not be verified as still ours.
    LockLost(Error),
    /// A test's simulated crash: the process "died" here.
    #[cfg(test)]
    Crashed,
}

/// The steps of the fallback sequences, where tests simulate crashes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// An empty directory reserves the destination (or an aside name); the rename is next.
    Reserved,
    /// Replacing: the new result is beside the destination, under its `.new` name.
    NewAside,
    /// Replacing: the old destination is beside it too, under its `.old` name.
    OldAside,
    /// Replacing: the new result is at the destination; the old one is still aside.
    NewInPlace,
}

/// Moves the resource to the destination: atomically with `renameat2`'s flags, or with the
/// fallback sequences where the filesystem has none.
pub(crate) fn place(p: &Places<'_>, replace: bool) -> Result<Placed, Moved> {
    let no = |e: io::Error| Moved::No(Error::io(Op::Commit, p.dest, e));
    if !hooks::force_fallback() {
        match sys::rename(
            p.src_parent,
            p.src_name,
            p.dest_parent,
            p.name,
            RenameMode::NoReplace,
        ) {
            Ok(()) => return Ok(Placed::New),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && replace => {
                return match sys::rename(
                    p.src_parent,
                    p.src_name,
                    p.dest_parent,
                    p.name,
                    RenameMode::Exchange,
                ) {
                    Ok(()) => Ok(Placed::Replaced),
                    Err(e) if sys::rename_flags_unsupported(&e) => replace_fallback(p),
                    Err(e) => Err(no(e)),
                };
            }
            Err(e) if sys::rename_flags_unsupported(&e) => {}
            Err(e) => return Err(no(e)),
        }
    }
    match reserve_and_rename(p.src_parent, p.src_name, p.dest_parent, p.name) {
        Ok(()) => Ok(Placed::New),
        Err(Stop::Io(e)) if e.kind() == io::ErrorKind::AlreadyExists && replace => {
            replace_fallback(p)
        }
        Err(Stop::Io(e)) => Err(no(e)),
        #[cfg(test)]
        Err(Stop::Crashed) => Err(Moved::Crashed),
    }
}

/// Why a step stopped: an OS error, or (in tests) a simulated crash.
enum Stop {
    Io(io::Error),
    #[cfg(test)]
    Crashed,
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Self {
        Stop::Io(e)
    }
}

/// A simulated crash point inside a step (tests only; nothing in other builds).
fn crash_point(step: Step) -> Result<(), Stop> {
    #[cfg(test)]
    if hooks::crash_at(step) {
        return Err(Stop::Crashed);
    }
    #[cfg(not(test))]
    let _ = step;
    Ok(())
}

/// A simulated crash point between steps (tests only; nothing in other builds).
fn crash_check(step: Step) -> Result<(), Moved> {
    #[cfg(test)]
    if hooks::crash_at(step) {
        return Err(Moved::Crashed);
    }
    #[cfg(not(test))]
    let _ = step;
    Ok(())
}

/// The portable "rename, never overwriting": `mkdir` reserves `to` exclusively (`EEXIST` if
/// anything has that name), then `rename` replaces that empty placeholder with the directory
/// `from` atomically. On failure the placeholder is removed again if still empty.
fn reserve_and_rename(from_dir: &File, from: &Path, to_dir: &File, to: &Path) -> Result<(), Stop> {
    sys::reserve_dir(to_dir, to)?;
    crash_point(Step::Reserved)?;
    match sys::rename_plain(from_dir, from, to_dir, to) {
        Ok(()) => Ok(()),
        Err(e) => {
            // Only removed while empty: something put into it meanwhile is someone else's.
            let _ = sys::remove_empty_dir(to_dir, to);
            Err(Stop::Io(if sys::not_empty(&e) {
                io::Error::from_raw_os_error(libc::EEXIST)
            } else {
                e
            }))
        }
    }
}

/// The reserved name beside the destination under which a replacing fallback keeps the new
/// result (`new`) or the old destination (`old`) for a moment: `.NAME.stagelock-ID.new`.
pub(crate) fn aside_name(name: &Path, id: &str, which: &str) -> PathBuf {
    let mut aside = std::ffi::OsString::from(".");
    aside.push(name.as_os_str());
    aside.push(format!(".stagelock-{id}.{which}"));
    PathBuf::from(aside)
}

/// A replacing commit without `RENAME_EXCHANGE`. The order guarantees that at every instant
/// the old destination and the new result each have a name outside the staging area, until the
/// new one is at the destination:
///
/// 1. new result: stage → `.NAME.stagelock-ID.new` (reserved with `mkdir`, then renamed over);
/// 2. old destination: `NAME` → `.NAME.stagelock-ID.old` (the same way; a non-directory by
///    `link` + `unlink`);
/// 3. new result: `.new` → `NAME` (a plain rename);
/// 4. old destination: `.old` → where the resource was in the stage, still locked, to be
///    removed there (after a crash, recovery removes it).
fn replace_fallback(p: &Places<'_>) -> Result<Placed, Moved> {
    let new = aside_name(p.name, p.id, "new");
    let old = aside_name(p.name, p.id, "old");
    let beside = |aside: &Path| {
        p.dest
            .parent()
            .map_or_else(|| aside.to_path_buf(), |d| d.join(aside))
    };
    let stopped = |stop: Stop, what: &dyn Fn(io::Error) -> Moved| match stop {
        Stop::Io(e) => what(e),
        #[cfg(test)]
        Stop::Crashed => Moved::Crashed,
    };

    // 1. The new result leaves the stage for a name beside the destination.
    if let Err(stop) = reserve_and_rename(p.src_parent, p.src_name, p.dest_parent, &new) {
        return Err(stopped(stop, &|e| {
            Moved::No(Error::io(Op::Commit, beside(&new), e))
        }));
    }
    crash_check(Step::NewAside)?;

    // 2. The old destination goes aside too (if it vanished meanwhile, there is nothing to
    //    replace).
    let old_gone = match move_aside(p.dest_parent, p.name, &old) {
        Ok(()) => false,
        Err(Stop::Io(e)) if e.kind() == io::ErrorKind::NotFound => true,
        Err(stop) => {
            return Err(stopped(stop, &|e| {
                undo_new(p, &new, Error::io(Op::Commit, p.dest, e), &beside)
            }));
        }
    };
    crash_check(Step::OldAside)?;

    // 3. The new result takes the destination's name. Replacing was asked for, so a plain
    //    rename is right: it can only replace an empty directory made there meanwhile.
    if let Err(e) = sys::rename_plain(p.dest_parent, &new, p.dest_parent, p.name) {
        let error = Error::io(Op::Commit, p.dest, e);
        if !old_gone && sys::rename_plain(p.dest_parent, &old, p.dest_parent, p.name).is_err() {
            return Err(Moved::Aside(Error::new(
                error.kind(),
                Op::Commit,
                p.dest,
                format!(
                    "{error}; the new result is at {:?} and the old destination at {:?}",
                    beside(&new),
                    beside(&old)
                ),
            )));
        }
        return Err(undo_new(p, &new, error, &beside));
    }
    crash_check(Step::NewInPlace)?;
    if old_gone {
        return Ok(Placed::New);
    }

    // 4. The old destination goes where the resource was, to be removed under the lock.
    match sys::rename_plain(p.dest_parent, &old, p.src_parent, p.src_name) {
        Ok(()) => Ok(Placed::Replaced),
        Err(e) => Err(Moved::ButOldRemains(Error::io(Op::Commit, beside(&old), e))),
    }
}

/// Step 2 of [`replace_fallback`]: `name` → `aside`, never overwriting anything at `aside`.
fn move_aside(dir: &File, name: &Path, aside: &Path) -> Result<(), Stop> {
    match reserve_and_rename(dir, name, dir, aside) {
        Err(Stop::Io(e)) if sys::kind_mismatch(&e) => {
            // Not a directory: a second name first (exclusive), then the first one goes.
            sys::link_exclusive(dir, name, aside)?;
            sys::unlink(dir, name)?;
            Ok(())
        }
        other => other,
    }
}

/// Puts the new result back into the stage after a failed step 2 or 3: `Moved::No` if that
/// worked, else `Moved::Aside` naming where the result is.
fn undo_new(p: &Places<'_>, new: &Path, error: Error, beside: &dyn Fn(&Path) -> PathBuf) -> Moved {
    match sys::rename_plain(p.dest_parent, new, p.src_parent, p.src_name) {
        Ok(()) => Moved::No(error),
        Err(_) => Moved::Aside(Error::new(
            error.kind(),
            Op::Commit,
            p.dest,
            format!("{error}; the new result is at {:?}", beside(new)),
        )),
    }
}

/// Makes a placed result durable: the directories it left and entered are synced.
pub(crate) fn sync_parents(p: &Places<'_>) -> Result<(), Error> {
    sys::fsync_dir(p.dest_parent).map_err(|e| {
        Error::new(
            ErrorKind::Other,
            Op::Commit,
            p.dest,
            format!("committed, but syncing its directory failed: {e}"),
        )
    })?;
    sys::fsync_dir(p.src_parent).map_err(|e| {
        Error::new(
            ErrorKind::Other,
            Op::Commit,
            p.dest,
            format!("committed, but syncing the staging directory failed: {e}"),
        )
    })
}

/// Test switches: force the fallback on filesystems that have the flags, simulate crashes.
#[cfg(test)]
pub(crate) mod hooks {
    use std::cell::Cell;

    thread_local! {
        static FORCE_FALLBACK: Cell<bool> = const { Cell::new(false) };
        static CRASH_AT: Cell<Option<(super::Step, u32)>> = const { Cell::new(None) };
    }

    /// Makes this thread's commits take the fallback until the guard drops.
    pub(crate) fn force_fallback_on() -> Guard {
        FORCE_FALLBACK.with(|f| f.set(true));
        Guard
    }

    /// Makes this thread's next commit "crash" at the `nth` (from 0) time it reaches `step`.
    pub(crate) fn crash_at_step(step: super::Step, nth: u32) -> Guard {
        CRASH_AT.with(|c| c.set(Some((step, nth))));
        Guard
    }

    pub(crate) struct Guard;

    impl Drop for Guard {
        fn drop(&mut self) {
            FORCE_FALLBACK.with(|f| f.set(false));
            CRASH_AT.with(|c| c.set(None));
        }
    }

    pub(super) fn force_fallback() -> bool {
        FORCE_FALLBACK.with(Cell::get)
    }

    pub(super) fn crash_at(step: super::Step) -> bool {
        CRASH_AT.with(|c| match c.get() {
            Some((at, 0)) if at == step => {
                c.set(None);
                true
            }
            Some((at, n)) if at == step => {
                c.set(Some((at, n - 1)));
                false
            }
            _ => false,
        })
    }
}

/// Outside tests: no switches.
#[cfg(not(test))]
mod hooks {
    #[inline(always)]
    pub(super) fn force_fallback() -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    //! The fallback sequences on a filesystem that has the flags (forced by a switch), and a
    //! simulated crash at every step of them: a crash is the lock released with its file kept
    //! and nothing else done, as when the process dies.
    use super::hooks::{crash_at_step, force_fallback_on};
    use super::*;
    use crate::{ErrorKind, StagingArea};
    use cap_std::fs::Dir;
    use cap_std::io_lifetimes::AsFilelike;

    struct Fixture {
        _tmp: tempfile::TempDir,
        root: Dir,
        area: StagingArea,
    }

    fn fixture() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let root = Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).unwrap();
        root.create_dir("staging").unwrap();
        root.create_dir("out").unwrap();
        let area = StagingArea::new(&root.open_dir("staging").unwrap()).unwrap();
        Fixture {
            _tmp: tmp,
            root,
            area,
        }
    }

    /// Every file under `dir` (not following symlinks) as "path=contents", sorted; `staging`
    /// is left out.
    /// How many entries the staging area holds.
    fn staging_entries(root: &Dir) -> usize {
        root.open_dir("staging").unwrap().entries().unwrap().count()
    }

    fn tree(dir: &Dir, prefix: &str) -> Vec<String> {
        let mut out = Vec::new();
        for entry in dir.entries().unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            if prefix.is_empty() && name == "staging" {
                continue;
            }
            let path = format!("{prefix}{name}");
            if entry.file_type().unwrap().is_dir() {
                let sub = tree(&dir.open_dir(&name).unwrap(), &format!("{path}/"));
                if sub.is_empty() {
                    out.push(format!("{path}/"));
                }
                out.extend(sub);
            } else {
                out.push(format!("{path}={}", dir.read_to_string(&name).unwrap()));
            }
        }
        out.sort();
        out
    }

    fn stage_with(area: &StagingArea, contents: &str) -> crate::Stage {
        let stage = area.stage().unwrap();
        stage.dir().create_dir("sub").unwrap();
        stage.dir().write("sub/f", contents).unwrap();
        stage
    }

    #[test]
    fn the_forced_fallback_commits_and_never_overwrites() {
        let f = fixture();
        let _fallback = force_fallback_on();
        stage_with(&f.area, "one").commit(&f.root, "out/a").unwrap();
        assert_eq!(tree(&f.root, ""), ["out/a/sub/f=one"]);

        // An existing directory, empty or not, or file is refused; the stage comes back.
        f.root.create_dir("out/empty").unwrap();
        f.root.write("out/file", "mine").unwrap();
        for dest in ["out/a", "out/empty", "out/file"] {
            let failed = stage_with(&f.area, "two")
                .commit(&f.root, dest)
                .unwrap_err();
            assert_eq!(failed.error.kind(), ErrorKind::AlreadyExists, "{dest}");
            failed.stage.expect("handed back").abort().unwrap();
        }
        assert_eq!(
            tree(&f.root, ""),
            ["out/a/sub/f=one", "out/empty/", "out/file=mine"]
        );
        assert!(f.area.recover_stale().unwrap().removed.is_empty());
        assert_eq!(staging_entries(&f.root), 0);
    }

    #[test]
    fn the_forced_fallback_replaces_directories_and_files() {
        let f = fixture();
        let _fallback = force_fallback_on();
        stage_with(&f.area, "old").commit(&f.root, "out/a").unwrap();
        stage_with(&f.area, "new")
            .commit_replacing(&f.root, "out/a")
            .unwrap();
        f.root.write("out/file", "old file").unwrap();
        stage_with(&f.area, "new2")
            .commit_replacing(&f.root, "out/file")
            .unwrap();
        // Replacing where nothing is: a plain commit.
        stage_with(&f.area, "new3")
            .commit_replacing(&f.root, "out/none")
            .unwrap();
        assert_eq!(
            tree(&f.root, ""),
            [
                "out/a/sub/f=new",
                "out/file/sub/f=new2",
                "out/none/sub/f=new3"
            ]
        );
        assert_eq!(staging_entries(&f.root), 0);
    }

    #[test]
    fn a_crash_between_reserving_and_renaming_leaves_an_empty_directory_at_dest() {
        let f = fixture();
        let _fallback = force_fallback_on();
        let _crash = crash_at_step(Step::Reserved, 0);
        let crashed = stage_with(&f.area, "new").commit(&f.root, "out/a");
        assert!(crashed.unwrap_err().stage.is_none());
        assert_eq!(tree(&f.root, ""), ["out/a/"]);
        // Recovery removes the uncommitted stage; the placeholder is the user's to remove.
        assert_eq!(f.area.recover_stale().unwrap().removed.len(), 1);
        assert_eq!(tree(&f.root, ""), ["out/a/"]);
        let failed = stage_with(&f.area, "again")
            .commit(&f.root, "out/a")
            .unwrap_err();
        assert_eq!(failed.error.kind(), ErrorKind::AlreadyExists);
        drop(failed);
        f.root.remove_dir("out/a").unwrap();
        stage_with(&f.area, "again")
            .commit(&f.root, "out/a")
            .unwrap();
        assert_eq!(tree(&f.root, ""), ["out/a/sub/f=again"]);
    }

    /// A crash at each step of a replacing fallback, then recovery: the old destination and
    /// the new result are each still under a name outside the staging area (the table in
    /// `Stage::commit_replacing`'s docs), until the new one is in place.
    #[test]
    fn a_crash_at_any_step_of_a_replacing_fallback_loses_nothing() {
        let new = ".a.stagelock-ID.new";
        let old = ".a.stagelock-ID.old";
        let cases: [(Step, u32, Vec<String>); 5] = [
            // 0. reserving the .new name: only an empty directory more.
            (
                Step::Reserved,
                0,
                vec![format!("out/{new}/"), "out/a/sub/f=old".into()],
            ),
            // 1. the new result is aside.
            (
                Step::NewAside,
                0,
                vec![format!("out/{new}/sub/f=new"), "out/a/sub/f=old".into()],
            ),
            // 2a. reserving the .old name.
            (
                Step::Reserved,
                1,
                vec![
                    format!("out/{new}/sub/f=new"),
                    format!("out/{old}/"),
                    "out/a/sub/f=old".into(),
                ],
            ),
            // 2. the old destination is aside.
            (
                Step::OldAside,
                0,
                vec![
                    format!("out/{new}/sub/f=new"),
                    format!("out/{old}/sub/f=old"),
                ],
            ),
            // 3. the new result is in place; the old one still aside.
            (
                Step::NewInPlace,
                0,
                vec![format!("out/{old}/sub/f=old"), "out/a/sub/f=new".into()],
            ),
        ];
        for (step, nth, expected) in cases {
            let f = fixture();
            let _fallback = force_fallback_on();
            stage_with(&f.area, "old").commit(&f.root, "out/a").unwrap();
            let stage = stage_with(&f.area, "new");
            let id = stage.id().to_owned();
            let _crash = crash_at_step(step, nth);
            let crashed = stage.commit_replacing(&f.root, "out/a").unwrap_err();
            assert!(crashed.stage.is_none(), "{step:?} {nth}: crashed");
            f.area.recover_stale().unwrap();
            let after: Vec<String> = tree(&f.root, "")
                .into_iter()
                .map(|p| p.replace(&id, "ID"))
                .collect();
            // The new result is only kept once it has left the stage (not committed before).
            let left_the_stage = (step, nth) != (Step::Reserved, 0);
            let kept = if left_the_stage {
                &["sub/f=old", "sub/f=new"][..]
            } else {
                &["sub/f=old"][..]
            };
            for kept in kept {
                assert!(
                    after.iter().any(|p| p.ends_with(kept)),
                    "{kept} lost by a crash at {step:?} #{nth} and recovery: {after:?}"
                );
            }
            assert_eq!(
                after, expected,
                "after a crash at {step:?} #{nth} and recovery"
            );
        }
    }

    #[test]
    fn a_durable_commit_syncs_a_tree_with_links_and_fifos_without_following_or_opening_them() {
        let f = fixture();
        let stage = f.area.stage().unwrap();
        let stage_path = f._tmp.path().join("staging").join(stage.path());
        stage.dir().create_dir_all("d/e/f").unwrap();
        stage.dir().write("d/e/f/data", vec![7u8; 5000]).unwrap();
        std::os::unix::fs::symlink("/dev/zero", stage_path.join("link")).unwrap();
        // A FIFO opened for reading would block this test forever.
        {
            let dir = stage.dir().as_filelike_view::<File>();
            let mode = rustix::fs::Mode::from_bits_truncate(0o600);
            rustix::fs::mknodat(&*dir, "fifo", rustix::fs::FileType::Fifo, mode, 0).unwrap();
        }
        stage
            .commit_with(&f.root, "out/a", CommitOptions::new())
            .unwrap();
        assert_eq!(f.root.read("out/a/d/e/f/data").unwrap(), vec![7u8; 5000]);
        let fifo = f.root.symlink_metadata("out/a/fifo").unwrap();
        assert!(cap_std::fs::FileTypeExt::is_fifo(&fifo.file_type()));
    }
}
