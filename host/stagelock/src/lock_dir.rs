//! [`LockDir`]: the one implementation of taking a staging lock (create-and-lock,
//! try-lock-path), in a directory whose handle all its locks share.
//!
//! Every lock is taken the same way: open the path, lock the open file, then check that the
//! path still names it ([`lock_verified`]), since its holder may have deleted it between our
//! open and our lock. The entry points on a `&Dir` or an ambient path (`entry.rs`), waiting
//! (`wait.rs`), status (`status.rs`) and staging areas all come here.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cap_std::AmbientAuthority;
use cap_std::fs::Dir;

use crate::dir::{self, SharedDir, check_path};
use crate::error::{Error, ErrorKind, Op};
use crate::faults::Protection;
use crate::lock::{StagingLock, gone};
use crate::pattern::Pattern;
use crate::retry::retry;
use crate::sys::{self, LockedFile};

mod kept;
pub(crate) use kept::Kept;

/// How many fresh files create-and-lock makes before giving up when someone else keeps locking
/// them first (the Go original's limit).
const LOCK_ATTEMPTS: u32 = 1000;

/// How many times try-lock-path opens a path again after an `EPERM` (or, when creating, an
/// `ENOENT`) on a network filesystem, where that can mean the file was deleted during the open.
const RACED_OPEN_ATTEMPTS: u32 = 16;

/// How many random names create-and-lock tries per file before giving up on collisions
/// (Go's `os.CreateTemp` limit).
const NAME_ATTEMPTS: u32 = 10_000;

/// A directory to take many staging locks in, through one shared handle.
///
/// [`StagingLock::create_and_lock`] and [`StagingLock::try_lock_path`] duplicate the directory
/// handle they are given, so each lock costs two descriptors. Locks taken through a `LockDir`
/// share its handle instead: one descriptor per held lock, and two syscalls less per operation
/// (the `dup` and its `close`).
/// Cloning a `LockDir` is cheap (a reference count).
///
/// # Examples
///
/// ```
/// use stagelock::LockDir;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let tmp = tempfile::tempdir()?;
/// let locks = LockDir::open_ambient_dir(tmp.path(), cap_std::ambient_authority())?;
/// let held: Vec<_> = (0..100)
///     .map(|_| locks.create_and_lock("lock-").map(|(lock, _name)| lock))
///     .collect::<Result<_, _>>()?;
/// for lock in held {
///     lock.unlock_and_delete()?;
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct LockDir {
    dir: SharedDir,
}

impl LockDir {
    /// Takes `dir` over (no duplicate is made).
    pub fn new(dir: Dir) -> Self {
        LockDir::from_shared(Arc::new(dir.into_std_file()))
    }

    /// Shares an open directory handle that others keep too (no duplicate is made); for hosts
    /// that already hold one, such as a WASI directory descriptor's `Arc<File>`.
    ///
    /// Paths are resolved beneath `dir` exactly as beneath a [`Dir`]. A handle that is not a
    /// directory is not refused here: every operation on it then fails with
    /// [`ErrorKind::NotFound`]. Nothing is asked of the filesystem here.
    pub fn from_shared(dir: Arc<fs::File>) -> Self {
        LockDir { dir }
    }

    /// Opens the directory at the ambient path `dir`.
    ///
    /// # Errors
    ///
    /// As [`Dir::open_ambient_dir`], classified into an [`ErrorKind`].
    ///
    /// # Ambient Authority
    ///
    /// Opens `dir` with the process's ambient authority; everything after is beneath it.
    pub fn open_ambient_dir(
        dir: impl AsRef<Path>,
        ambient: AmbientAuthority,
    ) -> Result<Self, Error> {
        let dir = dir.as_ref();
        Ok(LockDir::from_shared(dir::open_ambient(
            dir,
            Op::CreateAndLock,
            dir,
            ambient,
        )?))
    }

    /// The shared handle.
    pub(crate) fn handle(&self) -> &SharedDir {
        &self.dir
    }

    /// [`StagingLock::create_and_lock`] in this directory, sharing its handle.
    ///
    /// # Errors
    ///
    /// As [`StagingLock::create_and_lock`].
    pub fn create_and_lock(&self, pattern: &str) -> Result<(StagingLock, String), Error> {
        let pat = Pattern::parse(pattern).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                Op::CreateAndLock,
                pattern,
                e.message(),
            )
        })?;
        dir::check_pattern(pat, pattern, Op::CreateAndLock)?;
        let mut name = String::with_capacity(pattern.len() + 10);
        let mut raced_opens = 0;
        let held = retry(LOCK_ATTEMPTS, || {
            let file = match create_new(&self.dir, pat, &mut name) {
                Ok(file) => file,
                // On a network filesystem a recoverer on another host can see our new file
                // while our create is still on its way back, lock it (it is not locked yet),
                // find it stale and delete it: our open then fails although the create
                // succeeded (JuiceFS: ENOENT without a trash, EPERM with one). The same race
                // as a delete between our create and our lock: make another. A lasting error
                // (the directory removed) is reported after a few tries.
                Err(e)
                    if e.io_error().is_some_and(|io| sys::raced_open(io, true))
                        && raced_opens < RACED_OPEN_ATTEMPTS
                        && !sys::is_local_filesystem(&self.dir) =>
                {
                    raced_opens += 1;
                    return Ok(None);
                }
                Err(e) => return Err(e),
            };
            Ok(
                match lock_verified(&self.dir, Path::new(&name), file, Op::CreateAndLock, false)? {
                    Verified::Held(file) => Some(file),
                    // Someone locked our new file first: it is theirs now. Or a recoverer
                    // deleted it between our create and our lock (released): make another.
                    Verified::Busy(_) | Verified::Replaced => None,
                },
            )
        })?;
        match held {
            Some(file) => {
                let lock = StagingLock::new(file, Arc::clone(&self.dir), PathBuf::from(&name));
                Ok((lock, name))
            }
            None => Err(Error::new(
                ErrorKind::Other,
                Op::CreateAndLock,
                name,
                format!(
                    "gave up after {LOCK_ATTEMPTS} attempts: each new file was locked by someone \
                     else first (the path is the last file tried)"
                ),
            )),
        }
    }

    /// [`StagingLock::try_lock_path`] beneath this directory, sharing its handle.
    ///
    /// # Errors
    ///
    /// As [`StagingLock::try_lock_path`].
    pub fn try_lock_path(&self, path: impl AsRef<Path>) -> Result<StagingLock, Error> {
        self.acquire(path.as_ref(), true, Op::TryLockPath)
    }

    /// Like [`try_lock_path`](Self::try_lock_path), but never creates the file: a missing one
    /// is [`ErrorKind::NotFound`]. For looking without touching (recovery's dry runs).
    pub(crate) fn try_lock_existing(&self, path: &Path) -> Result<StagingLock, Error> {
        self.acquire(path, false, Op::TryLockPath)
    }

    /// Opens `path` (creating the file if `create` and missing) and locks it, for `op`:
    /// [`ErrorKind::WouldBlock`] if someone else holds it. A file deleted between our open and
    /// our lock is opened again.
    pub(crate) fn acquire(&self, path: &Path, create: bool, op: Op) -> Result<StagingLock, Error> {
        match self.acquire_or_keep(path, create, op, false)? {
            Taken::Locked(lock) => Ok(lock),
            Taken::Busy(_) => Err(Error::new(
                ErrorKind::WouldBlock,
                op,
                path,
                "held by another lock holder",
            )),
        }
    }

    /// [`acquire`](Self::acquire) for a wait: when someone else holds the lock, hands back the
    /// file it opened (if `keep`), to be tried again with [`relock_kept`](Self::relock_kept)
    /// without opening (and closing) the path again.
    pub(crate) fn acquire_or_keep(
        &self,
        path: &Path,
        create: bool,
        op: Op,
        keep: bool,
    ) -> Result<Taken, Error> {
        check_path(path, op)?;
        let err = |e| Error::io(op, path, e);
        let how = if create {
            sys::Create::IfMissing
        } else {
            sys::Create::No
        };
        let mut raced_opens = 0;
        let held = retry(LOCK_ATTEMPTS, || {
            let file = match open_lock_file(&self.dir, path, how, 0o644) {
                Ok(file) => file,
                // On a network filesystem the file may be deleted between the kernel's lookup
                // and its open: JuiceFS then says EPERM (the file is in its trash), or ENOENT
                // without a trash, even to O_CREAT; on Windows a file deleted the classic way
                // refuses opens (access denied) until its last handle closes. Open the path
                // again; a lasting error (an immutable file, a missing parent) is reported
                // after a few tries.
                Err(e)
                    if sys::raced_open(&e, create)
                        && raced_opens < RACED_OPEN_ATTEMPTS
                        && !sys::is_local_filesystem(&self.dir) =>
                {
                    raced_opens += 1;
                    return Ok(None);
                }
                Err(e) => return Err(err(e)),
            };
            match lock_verified(&self.dir, path, file, op, keep)? {
                Verified::Held(file) => Ok(Some(Ok(file))),
                Verified::Busy(kept) => Ok(Some(Err(kept))),
                // Its holder deleted the file after our open and released it before our lock:
                // open the path again (creating a fresh file).
                Verified::Replaced => Ok(None),
            }
        })?;
        match held {
            Some(Ok(file)) => Ok(Taken::Locked(StagingLock::new(
                file,
                Arc::clone(&self.dir),
                path.to_path_buf(),
            ))),
            Some(Err(kept)) => Ok(Taken::Busy(kept)),
            None => Err(Error::new(
                ErrorKind::Other,
                op,
                path,
                format!("gave up after {LOCK_ATTEMPTS} attempts: the file kept being replaced"),
            )),
        }
    }
}

/// What [`LockDir::acquire_or_keep`] came to.
pub(crate) enum Taken {
    /// The lock is ours.
    Locked(StagingLock),
    /// Someone else holds it; the file opened, if it was to be kept.
    Busy(Option<fs::File>),
}

/// Creates a file with a fresh name from `pattern` (left in `name`), retrying on collisions.
fn create_new(dir: &fs::File, pattern: Pattern<'_>, name: &mut String) -> Result<fs::File, Error> {
    let created = retry(NAME_ATTEMPTS, || {
        pattern.write_name(fastrand::u32(..), name);
        match open_lock_file(dir, Path::new(name.as_str()), sys::Create::New, 0o600) {
            Ok(file) => Ok(Some(file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(Error::io(Op::CreateAndLock, name.as_str(), e)),
        }
    })?;
    created.ok_or_else(|| {
        Error::new(
            ErrorKind::Other,
            Op::CreateAndLock,
            name.as_str(),
            format!(
                "gave up after {NAME_ATTEMPTS} names that all existed (the path is the last one)"
            ),
        )
    })
}

/// Opens the lock file `path` beneath `dir` ([`sys::open_beneath`]); without the escape check (a
/// test's switch, [`Protection::EscapeCheck`]), following symbolic links on the way.
fn open_lock_file(
    dir: &fs::File,
    path: &Path,
    how: sys::Create,
    mode: u32,
) -> io::Result<fs::File> {
    #[cfg(any(test, feature = "faults"))]
    if !Protection::EscapeCheck.on() {
        return sys::open_following(dir, path, how, mode);
    }
    sys::open_beneath(dir, path, how, mode)
}

/// What [`lock_verified`] came to.
enum Verified {
    /// Locked, and the path still names the locked file.
    Held(LockedFile),
    /// Another holder has the lock: the file if it was to be kept, else closed (or parked by
    /// the fallback's registry).
    Busy(Option<fs::File>),
    /// Locked, but the path no longer names the file: it was deleted (and maybe made anew)
    /// between our open and our lock. The lock is already released.
    Replaced,
}

/// The one lock-then-verify routine of create-and-lock and try-lock-path: locks `file`, just
/// opened at `path` beneath `dir`, refuses it if it is not a regular file, and checks that
/// `path` still names it.
///
/// Lock first, look after: a busy path then costs no more than open + fcntl + close. (A FIFO or
/// device is locked for an instant before being refused; locks are advisory and it is never
/// read or written.)
fn lock_verified(
    dir: &SharedDir,
    path: &Path,
    file: fs::File,
    op: Op,
    keep: bool,
) -> Result<Verified, Error> {
    let err = |e| Error::io(op, path, e);
    #[cfg(any(test, feature = "faults"))]
    crate::faults::hooks::before_lock(dir, path);
    // A file we hold open that is "not found" was deleted: some network filesystems (JuiceFS
    // without its trash) forget a file another client deleted, open or not.
    let tried = if keep {
        sys::try_lock_or_keep(file).map(|t| t.map_err(Some))
    } else {
        sys::try_lock(file).map(|t| t.ok_or(None))
    };
    let locked = match tried {
        Ok(Ok(locked)) => locked,
        Ok(Err(kept)) => return Ok(Verified::Busy(kept)),
        Err(e) if gone(&e) => return Ok(Verified::Replaced),
        Err(e) => return Err(err(e)),
    };
    let stat = match sys::stat_fd(locked.file()) {
        Ok(stat) => stat,
        Err(e) if gone(&e) => return Ok(Verified::Replaced),
        Err(e) => return Err(err(e)),
    };
    if stat.kind != sys::FileKind::Regular {
        return Err(Error::not_regular(op, path, stat.kind));
    }
    Ok(
        if !Protection::StillNames.on()
            || still_names(dir, path, locked.file(), &stat).map_err(err)?
        {
            Verified::Held(locked)
        } else {
            Verified::Replaced
        },
    )
}

/// Whether `path` beneath `dir` still names the locked file described by `stat`, that is, it
/// was not deleted (and maybe re-created) between our open and our lock.
///
/// Lock files are created, locked and deleted, never renamed or linked, so a file with no name
/// was deleted, and, where link counts are current (local filesystems), a file with exactly one
/// name, opened by a plain name in `dir`, still has that name: the common case costs no syscall
/// beyond the `statx` after locking. Anything else gets the full check: the path is looked up
/// again and compared by device and inode. That covers a hard-linked file, a path through
/// subdirectories (which could have been renamed), and every file on a network or FUSE
/// filesystem, where a deleted file may keep its link (JuiceFS's trash).
fn still_names(
    dir: &fs::File,
    path: &Path,
    file: &fs::File,
    stat: &sys::FileStat,
) -> io::Result<bool> {
    match stat.nlink {
        0 => Ok(false),
        1 if sys::single_name(path) && sys::on_local_filesystem(file, stat) => Ok(true),
        _ => match sys::stat_at(dir, path) {
            Ok(id) => Ok(id == stat.id),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        },
    }
}

#[cfg(test)]
mod tests {
    //! The create/unlink race of the Go original, made deterministic: between our open and our
    //! lock, a "recoverer" (another open file description, as another process would have) locks
    //! the file, deletes it and releases it.
    use super::*;
    use crate::faults::hooks;
    use cap_primitives::fs::OpenOptions;
    use std::cell::Cell;
    use std::rc::Rc;
    use std::sync::{RwLock, RwLockReadGuard};

    /// What a recoverer does to a lock file it finds unlocked: lock, delete, release.
    fn recover(dir: &fs::File, path: &Path) {
        let mut options = OpenOptions::new();
        options.read(true).write(true);
        let file = cap_primitives::fs::open(dir, path, &options).unwrap();
        let locked = sys::try_lock(file)
            .unwrap()
            .expect("the new file is not locked yet");
        sys::remove_beneath(dir, path).unwrap();
        drop(locked);
    }

    /// Held for writing while a test starts a process. Between its fork and its exec, a child
    /// holds every descriptor of this process, so a lock that another test releases by closing
    /// its file meanwhile stays held until the exec, and that test's next lock fails (CI saw it
    /// once). The tests here release and lock again, so each holds it for reading throughout.
    static SPAWNING: RwLock<()> = RwLock::new(());

    /// A scratch directory, with no process started while it lives (see [`SPAWNING`]).
    struct Scratch {
        tmp: tempfile::TempDir,
        _no_spawning: RwLockReadGuard<'static, ()>,
    }

    impl Scratch {
        fn path(&self) -> &Path {
            self.tmp.path()
        }
    }

    fn scratch() -> (Scratch, LockDir) {
        let no_spawning = SPAWNING.read().unwrap_or_else(|p| p.into_inner());
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).unwrap();
        let scratch = Scratch {
            tmp,
            _no_spawning: no_spawning,
        };
        (scratch, LockDir::new(dir))
    }

    /// Runs `recover` at the first open-to-lock window only; counts the windows seen.
    fn recover_once() -> (Rc<Cell<u32>>, hooks::Guard) {
        let windows = Rc::new(Cell::new(0));
        let seen = Rc::clone(&windows);
        let guard = hooks::set_before_lock(move |dir, path| {
            seen.set(seen.get() + 1);
            if seen.get() == 1 {
                recover(dir, path);
            }
        });
        (windows, guard)
    }

    #[test]
    #[cfg_attr(
        windows,
        ignore = "wine keeps a deleted file's name, and reports no pending delete, until its last handle closes"
    )]
    fn create_and_lock_retries_when_the_new_file_was_deleted_before_the_lock() {
        let (tmp, dir) = scratch();
        let (windows, _guard) = recover_once();
        let (lock, name) = dir.create_and_lock("lock-").unwrap();
        assert_eq!(windows.get(), 2, "a second file was made");
        // What we hold is the file the name points to, not a deleted inode.
        let on_disk = sys::stat_at(dir.handle(), Path::new(&name)).unwrap();
        let held = sys::stat_fd(lock.file()).unwrap();
        assert_eq!(on_disk, held.id);
        assert!(held.nlink > 0);
        lock.unlock_and_delete().unwrap();
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    #[cfg_attr(
        windows,
        ignore = "wine keeps a deleted file's name, and reports no pending delete, until its last handle closes"
    )]
    fn try_lock_path_reopens_when_the_file_was_deleted_before_the_lock() {
        let (_tmp, dir) = scratch();
        let (windows, _guard) = recover_once();
        let lock = dir.try_lock_path("p.lock").unwrap();
        assert_eq!(windows.get(), 2, "the path was opened again");
        let on_disk = sys::stat_at(dir.handle(), Path::new("p.lock")).unwrap();
        assert_eq!(on_disk, sys::stat_fd(lock.file()).unwrap().id);
        lock.unlock_and_delete().unwrap();
    }

    #[test]
    #[cfg_attr(
        windows,
        ignore = "wine keeps a deleted file's name, and reports no pending delete, until its last handle closes"
    )]
    fn without_the_check_the_race_would_hand_out_a_lock_on_a_deleted_file() {
        // Guards the test above against passing vacuously: the interleaving really does leave
        // the first lock on an unlinked inode.
        let (_tmp, dir) = scratch();
        let mut options = OpenOptions::new();
        options.read(true).write(true).create_new(true);
        let file = cap_primitives::fs::open(dir.handle(), Path::new("x"), &options).unwrap();
        recover(dir.handle(), Path::new("x"));
        let locked = sys::try_lock(file)
            .unwrap()
            .expect("lock on the deleted inode succeeds");
        let stat = sys::stat_fd(locked.file()).unwrap();
        assert_eq!(stat.nlink, 0);
        assert!(!still_names(dir.handle(), Path::new("x"), locked.file(), &stat).unwrap());
    }

    /// The race across two hosts, on the two JuiceFS mounts of `scripts/multihost.sh` (skipped
    /// without them): B opens the lock file; through A, the file is deleted, made anew and
    /// locked; B locks the old file. JuiceFS keeps the deleted file in its trash with one link,
    /// so only looking the path up again shows that B holds a deleted file: B must be refused,
    /// not handed a second lock on a path A holds.
    #[test]
    #[cfg(unix)]
    fn multihost_a_file_deleted_through_another_mount_is_not_held() {
        use std::os::unix::fs::MetadataExt as _;
        let var = |name| std::env::var_os(name).map(std::path::PathBuf::from);
        let (Some(a), Some(b)) = (var("STAGELOCK_MULTIHOST_A"), var("STAGELOCK_MULTIHOST_B"))
        else {
            println!("skipped: run scripts/multihost.sh");
            return;
        };
        let rel = format!("unit-race-{}", std::process::id());
        std::fs::create_dir(a.join(&rel)).unwrap();
        let open = |mount: &Path| {
            let dir = Dir::open_ambient_dir(mount.join(&rel), cap_std::ambient_authority());
            LockDir::new(dir.unwrap())
        };
        let (dir_a, dir_b) = (open(&a), open(&b));
        assert!(
            !sys::is_local_filesystem(dir_b.handle()),
            "a FUSE mount must not count as a local filesystem"
        );
        // The premise: a file deleted through A keeps one link in JuiceFS's trash, seen
        // through B too; without a trash (`STAGELOCK_MULTIHOST_TRASH=0`), B cannot even `fstat`
        // it any more; on GlusterFS (`STAGELOCK_MULTIHOST_ENGINE=glusterfs`) it has no link
        // left, as on a local filesystem, or its handle is stale.
        let (on_a, on_b) = (a.join(&rel).join("premise"), b.join(&rel).join("premise"));
        std::fs::write(&on_a, "").unwrap();
        let opened_on_b = std::fs::File::open(&on_b).unwrap();
        std::fs::remove_file(&on_a).unwrap();
        assert!(!on_b.exists(), "B still sees the deleted file's name");
        let seen = opened_on_b
            .metadata()
            .map(|m| m.nlink())
            .map_err(|e| e.kind());
        let env = |name| std::env::var(name).unwrap_or_default();
        if env("STAGELOCK_MULTIHOST_ENGINE") == "glusterfs" {
            // No link left, or (with the volume's open-behind on) a stale handle.
            assert!(
                matches!(seen, Ok(0) | Err(io::ErrorKind::StaleNetworkFileHandle)),
                "on GlusterFS: {seen:?}"
            );
        } else if env("STAGELOCK_MULTIHOST_TRASH") == "0" {
            assert_eq!(seen, Err(io::ErrorKind::NotFound), "without a trash");
        } else {
            assert_eq!(
                seen,
                Ok(1),
                "a deleted file lost its link: is JuiceFS's trash off?"
            );
        }
        drop(opened_on_b);

        let path = Path::new("x.lock");
        std::fs::write(a.join(&rel).join(path), "").unwrap();
        let held_by_a = Rc::new(Cell::new(None));
        let (held, on_a) = (Rc::clone(&held_by_a), dir_a.clone());
        let windows = Rc::new(Cell::new(0));
        let seen = Rc::clone(&windows);
        let guard = hooks::set_before_lock(move |_dir, path| {
            seen.set(seen.get() + 1);
            if seen.get() == 1 {
                cap_primitives::fs::remove_file(on_a.handle(), path).unwrap();
                held.set(Some(on_a.try_lock_path(path).unwrap()));
            }
        });
        let got = dir_b.try_lock_path(path);
        drop(guard);
        let lock_a = held_by_a.take().expect("A took the new file");
        let err = got.expect_err("B was handed a lock on x.lock while A holds it");
        assert_eq!(err.kind(), ErrorKind::WouldBlock, "{err}");
        assert_eq!(windows.get(), 2, "B opened the path again");
        lock_a.unlock_and_delete().unwrap();
        std::fs::remove_dir(a.join(&rel)).unwrap();
    }

    #[test]
    #[cfg(unix)] // Windows cannot say whether another handle holds a lock
    fn verify_sees_another_holder_of_a_lock_we_lost_in_place() {
        // A lock lost without its file changing (a close elsewhere under classic locks, a
        // network filesystem expiring it) is seen through F_OFD_GETLK / F_GETLK, here with a
        // POSIX `fcntl` lock taken by another process (Python's `lockf`).
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};
        // Not `scratch()`: this test starts a process, so it holds `SPAWNING` for writing.
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).unwrap();
        let dir = LockDir::new(dir);
        let lock = dir.try_lock_path("x.lock").unwrap();
        lock.verify().unwrap();
        sys::drop_lock_keeping_file(lock.file()).unwrap();
        lock.verify().unwrap(); // lost, but no one else holds it: nothing to see yet
        let spawning = SPAWNING.write().unwrap_or_else(|p| p.into_inner());
        let mut other = Command::new("python3")
            .args([
                "-c",
                "import fcntl, sys\n\
                 f = open(sys.argv[1], 'a')\n\
                 fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\n\
                 print('held', flush=True)\n\
                 sys.stdin.read()",
            ])
            .arg(tmp.path().join("x.lock"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        drop(spawning); // `spawn` returns once the child has exec'd
        let mut line = String::new();
        BufReader::new(other.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(
            line, "held\n",
            "our lock is gone, so another process gets it"
        );
        let err = lock.verify().unwrap_err();
        drop(other.stdin.take());
        other.wait().unwrap();
        assert_eq!(err.kind(), ErrorKind::LockLost, "{err}");
        assert_eq!(
            err.to_string(),
            "verify \"x.lock\": lock lost: another holder has a lock on the file"
        );
    }

    #[test]
    #[cfg_attr(
        windows,
        ignore = "wine keeps a deleted file's name, and reports no pending delete, until its last handle closes"
    )]
    fn a_hard_linked_lock_file_gets_the_full_path_check() {
        let (tmp, dir) = scratch();
        let at = |name: &str| tmp.path().join(name);
        std::fs::write(at("x"), "").unwrap();
        std::fs::hard_link(at("x"), at("y")).unwrap();
        let opened = std::fs::File::open(at("x")).unwrap();
        let stat = sys::stat_fd(&opened).unwrap();
        assert_eq!(stat.nlink, 2);
        assert!(
            still_names(dir.handle(), Path::new("x"), &opened, &stat).unwrap(),
            "x still names it"
        );
        // x is deleted and made anew while our file lives on under y.
        std::fs::remove_file(at("x")).unwrap();
        std::fs::hard_link(at("y"), at("z")).unwrap();
        std::fs::write(at("x"), "").unwrap();
        let stat = sys::stat_fd(&opened).unwrap();
        assert_eq!(stat.nlink, 2);
        assert!(
            !still_names(dir.handle(), Path::new("x"), &opened, &stat).unwrap(),
            "x names another file"
        );
    }
}
