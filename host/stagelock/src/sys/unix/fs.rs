//! Files beneath a directory handle: opening, looking at (identity, kind, links, the kind of
//! filesystem) and removing them.
//!
//! Every path is resolved beneath the handle it is given. A single plain name (see
//! [`single_name`]) takes one `*at` syscall, which cannot leave the directory; anything longer
//! goes through cap-std's sandboxed resolution, which refuses `..` climbing out, absolute paths
//! and symbolic links leading out. A final symbolic link is never followed.

use std::fs::File;
use std::io;
use std::path::Path;

use cap_primitives::fs::{FollowSymlinks, OpenOptions, OpenOptionsExt as _};
use rustix::fs::{AtFlags, Mode, OFlags};

use super::LockedFile;
use super::again_if_escaped;
use crate::sys::types::{Create, FileId, FileKind, FileStat, HostForm};

/// The kind of file a `st_mode` says.
fn kind_of_mode(mode: u32) -> FileKind {
    use rustix::fs::FileType as T;
    match T::from_raw_mode(mode as _) {
        T::RegularFile => FileKind::Regular,
        T::Directory => FileKind::Directory,
        T::Symlink => FileKind::Symlink,
        T::Fifo => FileKind::Fifo,
        T::Socket => FileKind::Socket,
        T::CharacterDevice | T::BlockDevice => FileKind::Device,
        _ => FileKind::Other,
    }
}

/// Identity, kind, link count and mount of an open file: one `statx` on Linux, one `fstat`
/// elsewhere.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn stat_fd(file: &File) -> io::Result<FileStat> {
    use rustix::fs::StatxFlags;
    /// `STATX_MNT_ID_UNIQUE`, which rustix 1.1 does not name.
    const MNT_ID_UNIQUE: StatxFlags = StatxFlags::from_bits_retain(0x4000);
    let want = StatxFlags::TYPE | StatxFlags::INO | StatxFlags::NLINK | MNT_ID_UNIQUE;
    let st = match rustix::fs::statx(file, c"", AtFlags::EMPTY_PATH, want) {
        Ok(st) => st,
        // No statx (old kernels, some seccomp filters): what fstat says, without the mount.
        Err(rustix::io::Errno::NOSYS | rustix::io::Errno::PERM) => return fstat(file),
        Err(e) => return Err(e.into()),
    };
    let unique = st.stx_mask & MNT_ID_UNIQUE.bits() != 0;
    Ok(FileStat {
        id: FileId {
            dev: rustix::fs::makedev(st.stx_dev_major, st.stx_dev_minor) as u64,
            ino: st.stx_ino,
        },
        kind: kind_of_mode(st.stx_mode.into()),
        nlink: st.stx_nlink.into(),
        mount: unique.then_some(st.stx_mnt_id),
    })
}

/// Identity, kind and link count of an open file: one `fstat`.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn stat_fd(file: &File) -> io::Result<FileStat> {
    fstat(file)
}

fn fstat(file: &File) -> io::Result<FileStat> {
    let st = rustix::fs::fstat(file)?;
    Ok(FileStat {
        id: FileId {
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
        },
        kind: kind_of_mode(st.st_mode as u32),
        nlink: st.st_nlink as u64,
        mount: None,
    })
}

/// The identity of what `path` names beneath `dir`, not following a final symlink. A single
/// plain name is looked up with one `fstatat`; longer paths go through cap-std's sandboxed
/// resolution.
pub(crate) fn stat_at(dir: &File, path: &Path) -> io::Result<FileId> {
    if single_name(path) {
        let st = rustix::fs::statat(dir, path, AtFlags::SYMLINK_NOFOLLOW)?;
        return Ok(FileId {
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
        });
    }
    let meta = again_if_escaped(dir, path, |d, p| {
        cap_primitives::fs::stat(d, p, FollowSymlinks::No)
    })?;
    Ok(FileId {
        dev: cap_primitives::fs::MetadataExt::dev(&meta),
        ino: cap_primitives::fs::MetadataExt::ino(&meta),
    })
}

/// Whether `file`, of which [`stat_fd`] said `stat`, is on a local kernel filesystem (see
/// [`is_local_filesystem`]). Asked once per mount: the answer is kept by the mount's unique
/// ID, which no other mount ever gets (a mount's filesystem never changes). Where the kernel
/// gives no such ID, every call asks (`fstatfs`).
pub(crate) fn on_local_filesystem(file: &File, stat: &FileStat) -> bool {
    match stat.mount {
        Some(mount) => mounts::local(mount, || is_local_filesystem(file)),
        None => is_local_filesystem(file),
    }
}

/// What [`is_local_filesystem`] said of the last few mounts seen.
mod mounts {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

    /// Slots by mount ID modulo their number: a few mounts in use at once each keep theirs.
    const SLOTS: usize = 16;

    /// Each slot is `mount << 1 | local`, or 0 when empty; one atomic word, so a reader sees
    /// a whole entry or another one, never a mix.
    static SEEN: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];

    /// Whether the mount `mount` is local: remembered, or `ask`ed and then remembered.
    pub(super) fn local(mount: u64, ask: impl FnOnce() -> bool) -> bool {
        if mount == 0 || mount >= 1 << 63 {
            return ask(); // cannot be encoded; not expected from the kernel
        }
        let slot = &SEEN[(mount % SLOTS as u64) as usize];
        let seen = slot.load(Relaxed);
        if seen >> 1 == mount {
            return seen & 1 == 1;
        }
        let local = ask();
        slot.store(mount << 1 | u64::from(local), Relaxed);
        local
    }

    #[cfg(test)]
    mod tests {
        use super::local;

        #[test]
        fn each_mount_is_asked_once_and_keeps_its_own_answer() {
            // IDs far from the kernel's (which start at 2^31) so real mounts are not disturbed.
            let (a, b) = (3 * 16 + 1, 5 * 16 + 1); // the same slot
            let mut asked = 0;
            assert!(local(a, || {
                asked += 1;
                true
            }));
            assert!(
                local(a, || {
                    asked += 1;
                    false
                }),
                "remembered"
            );
            assert_eq!(asked, 1);
            assert!(
                !local(b, || false),
                "another mount in the same slot is asked"
            );
            assert!(
                local(a, || true),
                "and then a is asked again, not told b's answer"
            );
        }
    }
}

/// Whether `file` is on a local kernel filesystem, whose inodes all processes share (ext2/3/4,
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
pub(crate) fn is_local_filesystem(file: &File) -> bool {
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
    match rustix::fs::fstatfs(file) {
        // Truncation on purpose: magic numbers are 32-bit; `f_type` is signed on some targets.
        Ok(fs) => LOCAL.contains(&(fs.f_type as u32)),
        Err(_) => false,
    }
}

/// Whether a filesystem is local, where we do not know how to ask: never assumed.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn is_local_filesystem(_file: &File) -> bool {
    false
}

/// What the OS makes of `path` other than names beneath its directory: nothing on Unix, where
/// a backslash and a colon are ordinary characters of a name (`C:\x.lock` is one name).
pub(crate) fn host_form(_path: &Path) -> Option<HostForm> {
    None
}

/// Whether paths have forms here that [`host_form`] refuses: not on Unix.
pub(crate) const HAS_HOST_FORMS: bool = false;

/// What separates a path's components: `/` only.
pub(crate) const SEPARATORS: [char; 1] = ['/'];

/// Whether `path` is one plain name, which cannot leave the directory it is looked up in, so a
/// plain `*at` syscall is as safe as cap-std's resolution: no `/` byte at all (so nothing like
/// `x/.`, whose `x` an `openat` would follow), not empty, not `.` or `..`.
pub(crate) fn single_name(path: &Path) -> bool {
    let bytes = path.as_os_str().as_encoded_bytes();
    !bytes.is_empty() && !bytes.contains(&b'/') && bytes != b"." && bytes != b".."
}

/// Opens the lock file `path` beneath `dir` with `mode` for new files.
pub(crate) fn open_beneath(dir: &File, path: &Path, create: Create, mode: u32) -> io::Result<File> {
    if single_name(path) {
        return open_at(dir, path, create, mode);
    }
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
    again_if_escaped(dir, path, |d, p| cap_primitives::fs::open(d, p, &options))
}

/// `openat` of the lock file `path` in `dir`: `O_NOFOLLOW` for the last name only, so a longer
/// path follows symbolic links on the way wherever they lead.
fn open_at(dir: &File, path: &Path, create: Create, mode: u32) -> io::Result<File> {
    let mut flags = OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NOCTTY;
    flags |= match create {
        Create::New => OFlags::CREATE | OFlags::EXCL,
        Create::IfMissing => OFlags::CREATE | OFlags::NONBLOCK,
        Create::No => OFlags::NONBLOCK,
    };
    let fd = rustix::fs::openat(dir, path, flags, Mode::from_bits_truncate(mode as _))?;
    Ok(File::from(fd))
}

/// [`open_beneath`] without the escape check, for the test switch that turns it off
/// (`Protection::EscapeCheck`, decided above this layer): a longer path is opened as a single
/// name is, following symbolic links on the way wherever they lead.
#[cfg(any(test, feature = "faults"))]
pub(crate) fn open_following(
    dir: &File,
    path: &Path,
    create: Create,
    mode: u32,
) -> io::Result<File> {
    open_at(dir, path, create, mode)
}

/// Opens the existing file `path` beneath `dir` read-only, to look at its locks: never created,
/// never following a final symlink, never blocking (on a FIFO), close-on-exec.
pub(crate) fn open_beneath_to_look(dir: &File, path: &Path) -> io::Result<File> {
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
    let mut options = OpenOptions::new();
    options
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    cap_fs_ext::OpenOptionsFollowExt::follow(&mut options, FollowSymlinks::No);
    again_if_escaped(dir, path, |d, p| cap_primitives::fs::open(d, p, &options))
}

/// Deletes the lock file `locked`, held and named `path` beneath `dir`, before its lock is
/// released: by its path (Unix has no delete by descriptor).
pub(crate) fn delete_held(_locked: &LockedFile, dir: &File, path: &Path) -> io::Result<()> {
    remove_beneath(dir, path)
}

/// Deletes the non-directory `path` beneath `dir` (a symbolic link itself, not its target).
pub(crate) fn remove_beneath(dir: &File, path: &Path) -> io::Result<()> {
    if single_name(path) {
        return Ok(rustix::fs::unlinkat(dir, path, AtFlags::empty())?);
    }
    again_if_escaped(dir, path, cap_primitives::fs::remove_file)
}

/// Removes `path` beneath `dir` only if it is an empty directory (`rmdir`).
pub(crate) fn remove_empty_dir(dir: &File, path: &Path) -> io::Result<()> {
    if single_name(path) {
        return Ok(rustix::fs::unlinkat(dir, path, AtFlags::REMOVEDIR)?);
    }
    again_if_escaped(dir, path, cap_primitives::fs::remove_dir)
}

/// Removes the directory `path` beneath `dir` that a stage's lock file and resource just left;
/// one that is gone, or in use again (someone put a file in it), is left as it is.
///
/// A FUSE filesystem (bindfs, for one) keeps a file that was deleted while open under a name
/// `.fuse_hiddenN` until its daemon handles the close, which reaches it after `close` returned:
/// the lock file, deleted while held, can linger so for a moment. While such names are all that
/// is left, the `rmdir` is tried again, for at most about 50 ms.
pub(crate) fn remove_emptied_dir(dir: &File, path: &Path) {
    for _ in 0..50 {
        match remove_empty_dir(dir, path) {
            Err(e)
                if matches!(e.raw_os_error(), Some(libc::ENOTEMPTY | libc::EEXIST))
                    && only_fuse_hidden(dir, path) =>
            {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            _ => return,
        }
    }
}

/// Whether every entry of the directory `path` beneath `dir` is a FUSE hidden file.
fn only_fuse_hidden(dir: &File, path: &Path) -> bool {
    let Ok(entries) = again_if_escaped(dir, path, cap_primitives::fs::read_dir) else {
        return false;
    };
    entries.into_iter().all(|entry| {
        entry.is_ok_and(|e| {
            e.file_name()
                .as_encoded_bytes()
                .starts_with(b".fuse_hidden")
        })
    })
}

/// Removes the directory tree `path` beneath `dir` (cap-std removes it by handle, never
/// following a symbolic link); gone is fine, anything but a directory (a file, a symbolic link)
/// is an error and stays.
pub(crate) fn remove_dir_tree(dir: &File, path: &Path) -> io::Result<()> {
    match again_if_escaped(dir, path, cap_primitives::fs::remove_dir_all) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Removes `path` beneath `dir` whatever it is (a directory tree or a file); gone is fine.
pub(crate) fn remove_all(dir: &File, path: &Path) -> io::Result<()> {
    let result = again_if_escaped(dir, path, |d, p| {
        match cap_primitives::fs::stat(d, p, FollowSymlinks::No) {
            Ok(meta) if meta.is_dir() => cap_primitives::fs::remove_dir_all(d, p),
            Ok(_) => cap_primitives::fs::remove_file(d, p),
            Err(e) => Err(e),
        }
    });
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whether_a_mount_is_local_is_what_fstatfs_says_and_stays_so() {
        let dir = tempfile::tempdir().unwrap();
        let file = File::create(dir.path().join("x")).unwrap();
        let stat = stat_fd(&file).unwrap();
        let local = is_local_filesystem(&file);
        assert_eq!(on_local_filesystem(&file, &stat), local, "asked");
        assert_eq!(on_local_filesystem(&file, &stat), local, "remembered");
        let named = stat_at(&File::open(dir.path()).unwrap(), Path::new("x")).unwrap();
        assert_eq!(named, stat.id, "statx and fstatat agree on the identity");
    }
}
