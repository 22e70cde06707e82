//! The OS lock primitive: the only module with `unsafe` code and `cfg(target_os)` branches.
//!
//! The rest of the crate sees one type, [`LockedFile`]: an open file that holds an exclusive,
//! non-blocking, whole-file advisory lock for as long as it lives, and releases it when dropped.
//!
//! - Linux and Android: open-file-description locks (`F_OFD_SETLK`, `F_WRLCK`, whole file). They
//!   conflict with classic POSIX `fcntl` locks of other processes (containers/storage uses those),
//!   with OFD locks taken through any other open of the file (other threads, other guests), and are
//!   not dropped when the process closes some other descriptor of the same file.
//! - Other Unix: classic `fcntl` (`F_SETLK`) locks plus an in-process registry, the design of the Go
//!   original (see `posix.rs` for its limits).

#[cfg(all(
    any(target_os = "linux", target_os = "android"),
    not(stagelock_posix_fallback)
))]
#[path = "ofd.rs"]
mod imp;

#[cfg(all(
    unix,
    any(
        not(any(target_os = "linux", target_os = "android")),
        stagelock_posix_fallback
    )
))]
#[path = "posix.rs"]
mod imp;

#[cfg(not(unix))]
compile_error!("stagelock supports Unix targets only (Linux with open-file-description locks)");

pub(crate) use imp::{LockedFile, Probe, held_here, probe, try_lock};

#[cfg(any(target_os = "linux", target_os = "android"))]
mod proc;
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) use proc::{cmdline, holders};

/// Who holds locks, where the OS cannot tell (no `/proc`): nothing is known.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn holders(_id: FileId) -> Option<Vec<ProcHolder>> {
    None
}

/// A holder's command line, where the OS cannot tell: unknown.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn cmdline(_pid: u32) -> Option<Vec<String>> {
    None
}

/// A lock found in the OS's lock table (see `proc.rs`).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcHolder {
    /// An OFD lock (else a classic POSIX one).
    pub(crate) ofd: bool,
    /// The process, when known.
    pub(crate) pid: Option<u32>,
}

mod commit;
pub(crate) use commit::*;

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Whether `file` is passed on to programs this process executes (clears or sets `FD_CLOEXEC`).
///
/// Used by the CLI to let the command it runs inherit the lock, like `flock(1)` does.
pub(crate) fn set_inheritable(file: &File, inherit: bool) -> io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: `fd` is a valid open descriptor borrowed from `file` for the duration of both calls;
    // F_GETFD/F_SETFD take and return plain integers and touch no memory of ours.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        if flags < 0 {
            return Err(io::Error::last_os_error());
        }
        let flags = if inherit {
            flags & !libc::FD_CLOEXEC
        } else {
            flags | libc::FD_CLOEXEC
        };
        if libc::fcntl(fd, libc::F_SETFD, flags) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// A whole-file write lock request (`l_start = 0`, `l_len = 0`: to the end, however it grows).
fn whole_file_write_lock() -> libc::flock {
    // SAFETY: `flock` is a plain C struct of integers; all-zero is a valid value of it.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as _;
    lock.l_whence = libc::SEEK_SET as _;
    lock.l_start = 0;
    lock.l_len = 0;
    lock
}

/// `fcntl(fd, cmd, &lock)`: `Ok(true)` when taken, `Ok(false)` when another holder has it.
fn fcntl_try_lock(file: &File, cmd: libc::c_int) -> io::Result<bool> {
    let mut lock = whole_file_write_lock();
    // SAFETY: the descriptor is valid while `file` is borrowed, and `lock` is a valid, exclusively
    // borrowed `struct flock` for the whole call, as F_SETLK and F_OFD_SETLK require.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), cmd, &mut lock as *mut libc::flock) };
    if rc == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        // POSIX allows either for "held by someone else".
        Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(false),
        _ => Err(err),
    }
}

/// Whether some *other* holder has a lock on `file` that conflicts with a whole-file write
/// lock: `fcntl(F_OFD_GETLK)` on Linux, `F_GETLK` in the fallback (neither reports a lock of
/// the asker's own: its open file description, or with classic locks its process).
///
/// While we hold our lock no one else can; a conflicting holder therefore means our lock was
/// lost (dropped by a close elsewhere in the process under classic locks, or expired by a
/// network filesystem).
pub(crate) fn locked_by_other(file: &File) -> io::Result<bool> {
    Ok(conflicting_lock(file)?.is_some())
}

/// The lock some *other* holder has on `file` that conflicts with a whole-file write lock, as
/// `fcntl(F_OFD_GETLK)` (Linux) or `F_GETLK` (fallback) reports it: `None` when there is none,
/// else its `l_pid`: the holding process for a classic POSIX lock, `-1` for an OFD lock (which
/// belongs to an open file description, not a process). Only one conflicting lock is reported.
///
/// Works on a descriptor opened read-only: asking takes no lock.
pub(crate) fn conflicting_lock(file: &File) -> io::Result<Option<i32>> {
    let mut lock = whole_file_write_lock();
    // SAFETY: the descriptor is valid while `file` is borrowed, and `lock` is a valid, exclusively
    // borrowed `struct flock` (l_pid 0, as F_OFD_GETLK requires) that the call fills in.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), imp::GETLK, &mut lock as *mut libc::flock) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((lock.l_type != libc::F_UNLCK as _).then_some(lock.l_pid))
}

/// `major:minor` of a device number, as `/proc/locks` prints file identities.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn dev_numbers(id: FileId) -> (u32, u32) {
    (
        rustix::fs::major(id.dev as rustix::fs::Dev),
        rustix::fs::minor(id.dev as rustix::fs::Dev),
    )
}

impl FileId {
    /// The inode number.
    #[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
    pub(crate) fn ino(self) -> u64 {
        self.ino
    }
}

/// Releases the lock `file` holds without closing it, as a lost lock would be: for tests of
/// lost-lock detection only.
#[cfg(test)]
pub(crate) fn drop_lock_keeping_file(file: &File) -> io::Result<()> {
    let mut lock = whole_file_write_lock();
    lock.l_type = libc::F_UNLCK as _;
    // SAFETY: as in `fcntl_try_lock`: a valid descriptor and an exclusively borrowed `flock`.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), imp::SETLK, &mut lock as *mut libc::flock) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Ignores `SIGINT` and `SIGQUIT` in this process until the returned guard is dropped, like
/// `system(3)` does while it waits: a Ctrl-C at the terminal reaches the child, and this process
/// lives on to clean up after it. Call it *after* spawning: ignored signals survive `exec`.
pub fn ignore_interrupts() -> InterruptsIgnored {
    // SAFETY: `signal` with SIG_IGN installs no handler code of ours; the previous dispositions
    // are restored by the guard.
    let (int, quit) = unsafe {
        (
            libc::signal(libc::SIGINT, libc::SIG_IGN),
            libc::signal(libc::SIGQUIT, libc::SIG_IGN),
        )
    };
    InterruptsIgnored { int, quit }
}

/// Restores the `SIGINT` and `SIGQUIT` dispositions saved by [`ignore_interrupts`] when dropped.
#[derive(Debug)]
pub struct InterruptsIgnored {
    int: libc::sighandler_t,
    quit: libc::sighandler_t,
}

impl Drop for InterruptsIgnored {
    fn drop(&mut self) {
        // SAFETY: reinstates the dispositions `signal` returned above, which were valid then.
        unsafe {
            if self.int != libc::SIG_ERR {
                libc::signal(libc::SIGINT, self.int);
            }
            if self.quit != libc::SIG_ERR {
                libc::signal(libc::SIGQUIT, self.quit);
            }
        }
    }
}

/// How [`rename`] treats an existing destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RenameMode {
    /// Fail with `EEXIST` if the destination exists (atomically on Linux).
    NoReplace,
    /// Swap source and destination atomically (Linux); both must exist.
    Exchange,
}

/// `renameat2(old_dir, old, new_dir, new, mode)`: the file names are single components.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn rename(
    old_dir: impl std::os::fd::AsFd,
    old: &std::path::Path,
    new_dir: impl std::os::fd::AsFd,
    new: &std::path::Path,
    mode: RenameMode,
) -> io::Result<()> {
    use rustix::fs::RenameFlags;
    let flags = match mode {
        RenameMode::NoReplace => RenameFlags::NOREPLACE,
        RenameMode::Exchange => RenameFlags::EXCHANGE,
    };
    rustix::fs::renameat_with(old_dir, old, new_dir, new, flags).map_err(io::Error::from)
}

/// Without `renameat2`: always `ENOSYS`, so the caller takes its portable fallback (an exclusive
/// `mkdir` reservation, then a plain `rename`; see `stage::commit`).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn rename(
    _old_dir: impl std::os::fd::AsFd,
    _old: &std::path::Path,
    _new_dir: impl std::os::fd::AsFd,
    _new: &std::path::Path,
    _mode: RenameMode,
) -> io::Result<()> {
    Err(io::Error::from_raw_os_error(libc::ENOSYS))
}

/// A file's identity: device and inode, as `st_dev` / `st_ino`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileId {
    dev: u64,
    ino: u64,
}

/// What kind of file a descriptor or path is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileKind {
    Regular,
    Directory,
    Symlink,
    Fifo,
    Socket,
    Device,
    Other,
}

impl FileKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            FileKind::Regular => "regular file",
            FileKind::Directory => "directory",
            FileKind::Symlink => "symbolic link",
            FileKind::Fifo => "FIFO",
            FileKind::Socket => "socket",
            FileKind::Device => "device",
            FileKind::Other => "special file",
        }
    }

    fn of(ft: rustix::fs::FileType) -> Self {
        use rustix::fs::FileType as T;
        match ft {
            T::RegularFile => FileKind::Regular,
            T::Directory => FileKind::Directory,
            T::Symlink => FileKind::Symlink,
            T::Fifo => FileKind::Fifo,
            T::Socket => FileKind::Socket,
            T::CharacterDevice | T::BlockDevice => FileKind::Device,
            _ => FileKind::Other,
        }
    }
}

/// What [`stat_fd`] tells about an open file.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FileStat {
    pub(crate) id: FileId,
    pub(crate) kind: FileKind,
    /// How many names the file has (0: it was deleted).
    pub(crate) nlink: u64,
}

/// Identity, kind and link count of an open file (one `fstat`).
pub(crate) fn stat_fd(file: &File) -> io::Result<FileStat> {
    let st = rustix::fs::fstat(file)?;
    Ok(FileStat {
        id: FileId {
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
        },
        kind: FileKind::of(rustix::fs::FileType::from_raw_mode(st.st_mode as _)),
        nlink: st.st_nlink as u64,
    })
}

/// Whether `dir` is on a local kernel filesystem, whose inodes all processes share (ext2/3/4,
/// XFS, Btrfs, F2FS, bcachefs, ZFS, tmpfs, ramfs). There, the link count `fstat` reports for an
/// open file is its current one, whoever changed it, and an `open` fails only for reasons that
/// last.
///
/// Network and FUSE filesystems may keep a deleted file in ways a local one does not. JuiceFS
/// 1.4.2 with its trash on (the default, `--trash-days 1`) moves a deleted file into `.trash`,
/// where it keeps one link, whichever client or process deleted it, and refuses to open it
/// for writing (`EPERM`): what an `open` that raced a delete runs into. Without its trash
/// (`--trash-days 0`) it forgets a deleted file at once, and the racing `open` (even a create)
/// and an `fstat` of the file held open say `ENOENT`. Any other filesystem, and an `fstatfs`
/// that fails, count as not local.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn is_local_filesystem(dir: &File) -> bool {
    // From <linux/magic.h> (ZFS's from OpenZFS); all are 32-bit, whatever `f_type`'s width.
    const LOCAL: [u32; 8] = [
        0x0000_EF53, // ext2, ext3, ext4
        0x5846_5342, // XFS
        0x9123_683E, // Btrfs
        0xF2F5_2010, // F2FS
        0xCA45_1A4E, // bcachefs
        0x2FC1_2FC1, // ZFS
        0x0102_1994, // tmpfs
        0x8584_58F6, // ramfs
    ];
    match rustix::fs::fstatfs(dir) {
        // Truncation on purpose: magic numbers are 32-bit; `f_type` is signed on some targets.
        Ok(fs) => LOCAL.contains(&(fs.f_type as u32)),
        Err(_) => false,
    }
}

/// Whether a filesystem is local, where we do not know how to ask: never assumed.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn is_local_filesystem(_dir: &File) -> bool {
    false
}

/// The identity of what `path` names beneath `dir`, not following a final symlink. A single
/// plain name is looked up with one `fstatat`; longer paths go through cap-std's sandboxed
/// resolution.
pub(crate) fn stat_at(dir: &File, path: &std::path::Path) -> io::Result<FileId> {
    if single_name(path) {
        let st = rustix::fs::statat(dir, path, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)?;
        return Ok(FileId {
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
        });
    }
    let meta = cap_primitives::fs::stat(dir, path, cap_primitives::fs::FollowSymlinks::No)?;
    Ok(FileId {
        dev: cap_primitives::fs::MetadataExt::dev(&meta),
        ino: cap_primitives::fs::MetadataExt::ino(&meta),
    })
}

/// How [`open_beneath`] opens a lock file: always read-write, never following a final symlink,
/// never becoming a controlling terminal, never blocking (on a FIFO), close-on-exec.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Create {
    /// `O_CREAT | O_EXCL`: a fresh file.
    New,
    /// `O_CREAT`: open or create.
    IfMissing,
    /// Open an existing file only.
    No,
}

/// Whether `path` is one plain name, which cannot leave the directory it is looked up in, so a
/// plain `*at` syscall is as safe as cap-std's resolution: no `/` byte at all (so nothing like
/// `x/.`, whose `x` an `openat` would follow), not empty, not `.` or `..`.
pub(crate) fn single_name(path: &std::path::Path) -> bool {
    let bytes = path.as_os_str().as_encoded_bytes();
    !bytes.is_empty() && !bytes.contains(&b'/') && bytes != b"." && bytes != b".."
}

/// Opens the lock file `path` beneath `dir` with `mode` for new files. One plain name takes one
/// `openat`; longer paths go through cap-std's sandboxed resolution (escapes are refused).
pub(crate) fn open_beneath(
    dir: &File,
    path: &std::path::Path,
    create: Create,
    mode: u32,
) -> io::Result<File> {
    use rustix::fs::{Mode, OFlags};
    if single_name(path) {
        let mut flags = OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NOCTTY;
        flags |= match create {
            Create::New => OFlags::CREATE | OFlags::EXCL,
            Create::IfMissing => OFlags::CREATE | OFlags::NONBLOCK,
            Create::No => OFlags::NONBLOCK,
        };
        let fd = rustix::fs::openat(dir, path, flags, Mode::from_bits_truncate(mode as _))?;
        return Ok(File::from(fd));
    }
    use cap_primitives::fs::{FollowSymlinks, OpenOptions, OpenOptionsExt as _};
    let mut options = OpenOptions::new();
    options.read(true).write(true).mode(mode);
    match create {
        Create::New => options.create_new(true),
        Create::IfMissing => options
            .create(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY),
        Create::No => options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY),
    };
    cap_fs_ext::OpenOptionsFollowExt::follow(&mut options, FollowSymlinks::No);
    cap_primitives::fs::open(dir, path, &options)
}

/// Opens the existing file `path` beneath `dir` read-only, to look at its locks: never created,
/// never following a final symlink, never blocking (on a FIFO), close-on-exec.
pub(crate) fn open_beneath_to_look(dir: &File, path: &std::path::Path) -> io::Result<File> {
    use rustix::fs::{Mode, OFlags};
    if single_name(path) {
        let flags =
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::NONBLOCK;
        return Ok(File::from(rustix::fs::openat(
            dir,
            path,
            flags,
            Mode::empty(),
        )?));
    }
    use cap_primitives::fs::{FollowSymlinks, OpenOptions, OpenOptionsExt as _};
    let mut options = OpenOptions::new();
    options
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    cap_fs_ext::OpenOptionsFollowExt::follow(&mut options, FollowSymlinks::No);
    cap_primitives::fs::open(dir, path, &options)
}

/// Deletes the file `path` beneath `dir`: one `unlinkat` for a plain name, cap-std otherwise.
pub(crate) fn remove_beneath(dir: &File, path: &std::path::Path) -> io::Result<()> {
    if single_name(path) {
        return Ok(rustix::fs::unlinkat(
            dir,
            path,
            rustix::fs::AtFlags::empty(),
        )?);
    }
    cap_primitives::fs::remove_file(dir, path)
}
