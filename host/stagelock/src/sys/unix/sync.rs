//! Durability: the `fsync`s that put a committed tree and its directory entries on disk.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

/// `fsync` of the directory `dir`: its entries reach the disk. The directory is opened again
/// (`openat(dir, ".")`), as handles from cap-std may be `O_PATH`, which cannot be synced.
pub(crate) fn fsync_dir(dir: impl AsFd) -> io::Result<()> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let dir = rustix::fs::openat(dir, c".", flags, Mode::empty())?;
    Ok(rustix::fs::fsync(&dir)?)
}

/// `fsync`s every regular file and every directory of the tree under `top`, and `top` itself,
/// so that data and names written into it are on disk. Symbolic links are never followed (their
/// entries are synced with their directory); FIFOs, sockets and devices are not opened. Entries
/// that vanish meanwhile are skipped.
///
/// On Linux a first pass starts the writeback of every file (`sync_file_range(WRITE)`), so the
/// filesystem allocates and writes all of them at once, and the `fsync`s of the second pass
/// mostly find their data written and their journal transaction committed by the first one.
///
/// Uses about one descriptor per level of depth, plus one per directory whose subdirectories are
/// still to be visited.
pub(crate) fn sync_tree(top: &File) -> io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    walk(top, &mut start_writeback, &mut |_| Ok(()))?;
    walk(top, &mut |file| Ok(rustix::fs::fsync(file)?), &mut |dir| {
        Ok(rustix::fs::fsync(dir)?)
    })
}

/// `sync_file_range(file, 0, 0, SYNC_FILE_RANGE_WRITE)`: starts writing the file's dirty pages
/// without waiting for them.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn start_writeback(file: &OwnedFd) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid descriptor borrowed for the call; the call takes plain integers only.
    let rc = unsafe { libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE) };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    // Not every filesystem has it; the fsync pass does the work then.
    match err.raw_os_error() {
        Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP | libc::ESPIPE) => Ok(()),
        _ => Err(err),
    }
}

/// Visits every regular file (`on_file`) and directory (`on_dir`, after its files) of the tree
/// under `top`, depth first, each opened read-only without following symbolic links;
/// subdirectories still to visit are kept as (parent, name), so only their parents stay open.
fn walk(
    top: &File,
    on_file: &mut dyn FnMut(&OwnedFd) -> io::Result<()>,
    on_dir: &mut dyn FnMut(&OwnedFd) -> io::Result<()>,
) -> io::Result<()> {
    let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    let file_flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NOCTTY;
    let mut pending: Vec<(Rc<OwnedFd>, CString)> = Vec::new();
    let mut current = Some(rustix::fs::openat(top, c".", dir_flags, Mode::empty())?);
    loop {
        let dir = match current.take() {
            Some(dir) => Rc::new(dir),
            None => match pending.pop() {
                None => return Ok(()),
                Some((parent, name)) => {
                    let opened = rustix::fs::openat(&*parent, &name, dir_flags, Mode::empty());
                    match skip_vanished(opened.map_err(io::Error::from))? {
                        Some(dir) => Rc::new(dir),
                        None => continue,
                    }
                }
            },
        };
        for entry in rustix::fs::Dir::read_from(&*dir)? {
            let entry = entry?;
            let name = entry.file_name();
            if name == c"." || name == c".." {
                continue;
            }
            let mut kind = entry.file_type();
            if kind == FileType::Unknown {
                let st = rustix::fs::statat(&*dir, name, AtFlags::SYMLINK_NOFOLLOW);
                match skip_vanished(st.map_err(io::Error::from))? {
                    Some(st) => kind = FileType::from_raw_mode(st.st_mode as _),
                    None => continue,
                }
            }
            match kind {
                FileType::RegularFile => {
                    let opened = rustix::fs::openat(&*dir, name, file_flags, Mode::empty());
                    if let Some(file) = skip_vanished(opened.map_err(io::Error::from))? {
                        on_file(&file)?;
                    }
                }
                FileType::Directory => pending.push((Rc::clone(&dir), name.to_owned())),
                // Symbolic links, FIFOs, sockets, devices: only their entries matter, and those
                // are synced with the directory.
                _ => {}
            }
        }
        on_dir(&dir)?;
    }
}

/// `Ok(None)` for an entry that vanished (`ENOENT`), the result otherwise.
fn skip_vanished<T>(result: io::Result<T>) -> io::Result<Option<T>> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}
