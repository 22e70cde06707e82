//! Moving a finished resource into place: `renameat2` with its flags where the filesystem has
//! them, else the fallback sequences of plain renames, ordered so that a crash between any two
//! steps loses nothing; and the test switches that force the fallback and simulate crashes.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Op};
use crate::sys::{self, RenameMode};

/// Where a commit moves from and to: single names in open directories.
pub(super) struct Places<'a> {
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
pub(super) enum Placed {
    /// At the destination, which did not exist.
    New,
    /// At the destination; what was there is now where the resource was (in the stage, still
    /// locked), to be removed.
    Replaced,
}

/// How far a failed commit got.
#[derive(Debug)]
pub(super) enum Moved {
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
pub(super) fn place(p: &Places<'_>, replace: bool) -> Result<Placed, Moved> {
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

/// Renames `from` to `to`, never overwriting: with the system's own no-replace rename where the
/// filesystem has one (Linux's `renameat2`, Windows'), else the portable way: `mkdir` reserves
/// `to` exclusively (`EEXIST` if anything has that name), then `rename` replaces that empty
/// placeholder with the directory `from` atomically. On failure the placeholder is removed
/// again if still empty.
fn reserve_and_rename(from_dir: &File, from: &Path, to_dir: &File, to: &Path) -> Result<(), Stop> {
    if !hooks::force_fallback() {
        match sys::rename(from_dir, from, to_dir, to, RenameMode::NoReplace) {
            Err(e) if sys::rename_flags_unsupported(&e) => {}
            other => return Ok(other?),
        }
    }
    sys::reserve_dir(to_dir, to)?;
    crash_point(Step::Reserved)?;
    match sys::rename_plain(from_dir, from, to_dir, to) {
        Ok(()) => Ok(()),
        Err(e) => {
            // Only removed while empty: something put into it meanwhile is someone else's.
            let _ = sys::remove_empty_dir(to_dir, to);
            Err(Stop::Io(if sys::not_empty(&e) {
                sys::already_exists()
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
    //    rename is right: on Unix it can only replace an empty directory made there
    //    meanwhile, and on Windows it replaces nothing.
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
            sys::remove_beneath(dir, name)?;
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
pub(super) fn sync_parents(p: &Places<'_>) -> Result<(), Error> {
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
