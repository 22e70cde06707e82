//! The containers/storage-style holder's steps: a classic POSIX `fcntl` lock taken by another
//! process, and each way such a holder lets go (the releases a waiter must see, one of which,
//! `F_UNLCK` keeping the descriptor, no inotify event reports).

use super::{Entry, FOREIGN, Held, Io, Model, expect_ok, unexpected};

/// What the model has the foreign holder do.
#[derive(Clone, Copy, Debug)]
pub enum ForeignAct<'a> {
    /// Open the lock file at this path (beneath `locks/`) and take a POSIX lock on it without
    /// waiting.
    Lock(&'a str),
    /// `F_UNLCK`, keeping the descriptor open.
    Unlock,
    /// Close the file (which releases the lock).
    Close,
    /// Remove the path while holding the lock, then close (containers/storage's
    /// unlock-and-delete).
    Delete,
    /// SIGKILL.
    Exit,
}

impl Model {
    /// `ForeignLock`: the holder takes the lock file at `path`, creating it if missing, if no
    /// other lock is in the way (it holds one lock at a time).
    pub(super) fn foreign_lock(&mut self, path: u8, io: &mut dyn Io) -> Result<bool, String> {
        let path = self.path(path);
        if self.foreign.is_some() || self.escapes(&path) {
            return Ok(false);
        }
        let (made, held) = match self.locks.get(&path) {
            Some(Entry::File { made, holder }) => (*made, holder.is_some()),
            None => {
                self.new_file(None); // a new incarnation: self.made
                (self.made, false)
            }
            // A directory, or a symbolic link out (which an open with O_CREAT would follow).
            Some(_) => return Ok(false),
        };
        let reply = io.foreign(ForeignAct::Lock(&path))?;
        if held {
            // An OFD lock of an actor (thread, process or guest) excludes a POSIX lock.
            if reply != "busy" {
                return Err(unexpected(&reply, "busy (an actor holds it)"));
            }
            return Ok(true);
        }
        expect_ok(&reply)?;
        self.locks.insert(
            path.clone(),
            Entry::File {
                made,
                holder: Some(FOREIGN),
            },
        );
        self.foreign = Some(Held { path, made });
        Ok(true)
    }

    /// `ForeignRelease`: the holder lets go of its lock in the way `how` says (see the step).
    pub(super) fn foreign_release(&mut self, how: u8, io: &mut dyn Io) -> Result<bool, String> {
        let Some(held) = self.foreign.clone() else {
            return Ok(false);
        };
        let act = [
            ForeignAct::Unlock,
            ForeignAct::Close,
            ForeignAct::Delete,
            ForeignAct::Exit,
        ][usize::from(how) % 4];
        let delete = matches!(act, ForeignAct::Delete);
        let reply = io.foreign(act)?;
        if delete && !self.escapes(&held.path) {
            // By path: whatever is there now goes (a file another process put in its place
            // too, taking that one's holder's lock with it), but a directory.
            match self.locks.get(&held.path) {
                Some(Entry::Dir) => {
                    if !reply.starts_with("kept ") {
                        return Err(unexpected(&reply, "kept (a directory is not removed)"));
                    }
                }
                Some(_) => {
                    expect_ok(&reply)?;
                    self.locks.remove(&held.path);
                }
                None => expect_ok(&reply)?,
            }
        } else {
            // Through a symbolic link out of the grant, a delete finds nothing to remove.
            expect_ok(&reply)?;
        }
        self.foreign_gone();
        Ok(true)
    }

    /// The holder has no lock any more: its entry, if still at its path, is free.
    pub(super) fn foreign_gone(&mut self) {
        let Some(held) = self.foreign.take() else {
            return;
        };
        if let Some(Entry::File { made, holder }) = self.locks.get_mut(&held.path)
            && *made == held.made
        {
            *holder = None;
        }
    }
}
