//! Files beneath a directory handle on Windows: opening (always sharing read, write and delete),
//! looking at (identity by 128-bit file ID, kind, links), deleting (through a handle, after checking what it is),
//! removing.
//!
//! Every path goes through cap-std's sandboxed resolution, which opens each component relative
//! to its directory's handle (`NtCreateFile` with a root directory) and refuses `..` climbing
//! out, absolute paths and symbolic links or junctions leading out. A final reparse point
//! (symbolic link, junction) is never followed: it is opened itself.

use std::fs::File;
use std::io;
use std::mem::size_of;
use std::os::windows::io::AsRawHandle;
use std::path::Path;

use cap_fs_ext::OpenOptionsFollowExt as _;
use cap_primitives::fs::{FollowSymlinks, OpenOptions, OpenOptionsExt as _};
use windows_sys::Win32::Foundation::{
    ERROR_DIR_NOT_EMPTY, ERROR_DIRECTORY, ERROR_INVALID_FUNCTION, ERROR_INVALID_PARAMETER,
    ERROR_NOT_SUPPORTED, ERROR_SHARING_VIOLATION, GENERIC_READ, GENERIC_WRITE, HANDLE,
};
use windows_sys::Win32::Storage::FileSystem::{
    BY_HANDLE_FILE_INFORMATION, DELETE, FILE_ATTRIBUTE_DEVICE, FILE_ATTRIBUTE_DIRECTORY,
    FILE_ATTRIBUTE_REPARSE_POINT, FILE_DISPOSITION_FLAG_DELETE,
    FILE_DISPOSITION_FLAG_IGNORE_READONLY_ATTRIBUTE, FILE_DISPOSITION_FLAG_POSIX_SEMANTICS,
    FILE_DISPOSITION_INFO, FILE_DISPOSITION_INFO_EX, FILE_FLAG_BACKUP_SEMANTICS,
    FILE_FLAG_OPEN_REPARSE_POINT, FILE_ID_INFO, FILE_READ_ATTRIBUTES, FILE_SHARE_DELETE,
    FILE_SHARE_READ, FILE_SHARE_WRITE, FILE_STANDARD_INFO, FileDispositionInfo,
    FileDispositionInfoEx, FileIdInfo, FileStandardInfo, GetFileInformationByHandle,
    GetFileInformationByHandleEx, SetFileInformationByHandle,
};

use super::{LockedFile, check};
use crate::sys::types::{Create, FileId, FileKind, FileStat};

/// Every handle here shares everything: a lock file must stay deletable (and renamable) while
/// others hold it open, as on Unix.
const SHARE_ALL: u32 = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;

fn handle(file: &File) -> HANDLE {
    file.as_raw_handle() as HANDLE
}

/// Options that open `path` itself (a reparse point is not followed; a directory opens too,
/// so that it is refused as what it is, not as "access denied"), sharing everything.
fn options(access: u32) -> OpenOptions {
    let mut options = OpenOptions::new();
    options
        .access_mode(access)
        .share_mode(SHARE_ALL)
        .custom_flags(FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT);
    options.follow(FollowSymlinks::No);
    options
}

/// Identity, kind and link count of an open file: `GetFileInformationByHandle`, the 128-bit
/// identity ([`file_id`]), and whether a delete is pending (`FileStandardInfo`), which counts as
/// no name left.
pub(crate) fn stat_fd(file: &File) -> io::Result<FileStat> {
    // SAFETY: all-zero is a valid value of these plain C structs.
    let mut info: BY_HANDLE_FILE_INFORMATION = unsafe { std::mem::zeroed() };
    // SAFETY: a valid handle borrowed from `file`; `info` is exclusively borrowed for the call.
    check(unsafe { GetFileInformationByHandle(handle(file), &mut info) })?;
    // SAFETY: as above.
    let mut standard: FILE_STANDARD_INFO = unsafe { std::mem::zeroed() };
    // SAFETY: a valid handle; the buffer is a FILE_STANDARD_INFO of the size passed.
    check(unsafe {
        GetFileInformationByHandleEx(
            handle(file),
            FileStandardInfo,
            (&raw mut standard).cast(),
            size_of::<FILE_STANDARD_INFO>() as u32,
        )
    })?;
    let id = match file_id(file) {
        Ok(id) => id,
        // Filesystems that keep no 128-bit IDs (FAT, some network redirectors) refuse the
        // class: their 64-bit index is all there is.
        Err(e) if unsupported(&e) => FileId {
            dev: info.dwVolumeSerialNumber.into(),
            ino: u128::from(info.nFileIndexHigh) << 32 | u128::from(info.nFileIndexLow),
        },
        Err(e) => return Err(e),
    };
    let attributes = info.dwFileAttributes;
    let kind = if attributes & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
        FileKind::Symlink
    } else if attributes & FILE_ATTRIBUTE_DIRECTORY != 0 {
        FileKind::Directory
    } else if attributes & FILE_ATTRIBUTE_DEVICE != 0 {
        FileKind::Device
    } else {
        FileKind::Regular
    };
    Ok(FileStat {
        id,
        kind,
        nlink: if standard.DeletePending {
            0
        } else {
            info.nNumberOfLinks.into()
        },
        mount: None,
    })
}

/// The file's identity as `FILE_ID_INFO` gives it: the volume's 64-bit serial number and the
/// file's 128-bit ID, which ReFS keeps unique where its 64-bit index may not be.
fn file_id(file: &File) -> io::Result<FileId> {
    // SAFETY: all-zero is a valid value of this plain C struct.
    let mut info: FILE_ID_INFO = unsafe { std::mem::zeroed() };
    // SAFETY: a valid handle borrowed from `file`; the buffer is a FILE_ID_INFO of the size
    // passed.
    check(unsafe {
        GetFileInformationByHandleEx(
            handle(file),
            FileIdInfo,
            (&raw mut info).cast(),
            size_of::<FILE_ID_INFO>() as u32,
        )
    })?;
    Ok(FileId {
        dev: info.VolumeSerialNumber,
        ino: u128::from_le_bytes(info.FileId.Identifier),
    })
}

/// Whether a `GetFileInformationByHandleEx` failed because the filesystem does not know the
/// class asked for.
fn unsupported(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error().and_then(|c| u32::try_from(c).ok()),
        Some(ERROR_INVALID_PARAMETER | ERROR_NOT_SUPPORTED | ERROR_INVALID_FUNCTION)
    )
}

/// Runs `op`, a resolution of `path` beneath `dir` through cap-std, once: Windows has no
/// kernel walk that reports an entry renamed out mid-walk as an escape (cap-std resolves there
/// component by component), so nothing is resolved again (Linux's `beneath.rs` does).
pub(crate) fn again_if_escaped<T>(
    dir: &File,
    path: &Path,
    mut op: impl FnMut(&File, &Path) -> io::Result<T>,
) -> io::Result<T> {
    op(dir, path)
}

/// The identity of what `path` names beneath `dir` (a final reparse point itself): opened to
/// read its attributes only, sharing everything, so it never gets in the way of a delete.
pub(crate) fn stat_at(dir: &File, path: &Path) -> io::Result<FileId> {
    let file = cap_primitives::fs::open(dir, path, &options(FILE_READ_ATTRIBUTES))?;
    Ok(stat_fd(&file)?.id)
}

/// Whether `file`, of which [`stat_fd`] said `stat`, is on a local filesystem whose link counts
/// can be trusted: not known on Windows, so never assumed (the path is always looked up again).
pub(crate) fn on_local_filesystem(_file: &File, _stat: &FileStat) -> bool {
    false
}

/// Whether a filesystem is local: not known on Windows, so never assumed.
pub(crate) fn is_local_filesystem(_file: &File) -> bool {
    false
}

/// Whether `path` is one plain name: no separator (`/` or `\`), no `:` (which would name a
/// stream or a drive), not empty, not `.` or `..`.
pub(crate) fn single_name(path: &Path) -> bool {
    let bytes = path.as_os_str().as_encoded_bytes();
    !bytes.is_empty()
        && !bytes.iter().any(|b| matches!(b, b'/' | b'\\' | b':'))
        && bytes != b"."
        && bytes != b".."
}

/// Opens the lock file `path` beneath `dir` for reading and writing, sharing everything, never
/// following a final reparse point. A directory, reparse point or device is refused
/// (`ERROR_DIRECTORY_NOT_SUPPORTED` or `ERROR_CANT_RESOLVE_FILENAME`, which the crate reports
/// as "not a regular file"). `_mode` is for Unix.
///
/// Not opened with the right to delete: containers/storage opens its lock files as Go's
/// `os.OpenFile` does, sharing read and write but not delete, and Windows refuses an open that
/// does not share delete while another handle has that right (and the other way round). Held
/// that way, each side's lock makes the other's `LockFileEx` say "busy", as on Unix.
pub(crate) fn open_beneath(
    dir: &File,
    path: &Path,
    create: Create,
    _mode: u32,
) -> io::Result<File> {
    let mut options = options(GENERIC_READ | GENERIC_WRITE);
    options.read(true).write(true);
    match create {
        Create::New => options.create_new(true),
        Create::IfMissing => options.create(true),
        Create::No => &mut options,
    };
    let file = cap_primitives::fs::open(dir, path, &options)?;
    refuse_unless_regular(file)
}

/// Opens the existing file `path` beneath `dir` read-only, to look at its locks, sharing
/// everything, never following a final reparse point; refuses what is not a regular file.
pub(crate) fn open_beneath_to_look(dir: &File, path: &Path) -> io::Result<File> {
    let mut options = options(GENERIC_READ);
    options.read(true);
    refuse_unless_regular(cap_primitives::fs::open(dir, path, &options)?)
}

fn refuse_unless_regular(file: File) -> io::Result<File> {
    match stat_fd(&file)?.kind {
        FileKind::Regular => Ok(file),
        FileKind::Directory => Err(io::Error::from_raw_os_error(
            super::errno::ERROR_DIRECTORY_NOT_SUPPORTED,
        )),
        _ => Err(io::Error::from_raw_os_error(
            super::errno::ERROR_CANT_RESOLVE_FILENAME,
        )),
    }
}

/// Deletes the file open as `file`: with POSIX semantics where Windows has them (the name is
/// gone at once, though handles stay open), else marked for deletion the classic way (the
/// name goes when the last handle closes). Wine 8 and FAT filesystems have only the classic way.
fn delete_by_handle(file: &File) -> io::Result<()> {
    // Like unlink(2), whatever the file's read-only attribute says (Windows 10 1809+).
    let posix = FILE_DISPOSITION_INFO_EX {
        Flags: FILE_DISPOSITION_FLAG_DELETE
            | FILE_DISPOSITION_FLAG_POSIX_SEMANTICS
            | FILE_DISPOSITION_FLAG_IGNORE_READONLY_ATTRIBUTE,
    };
    // SAFETY: a valid handle; the buffer is a FILE_DISPOSITION_INFO_EX of the size passed.
    let done = check(unsafe {
        SetFileInformationByHandle(
            handle(file),
            FileDispositionInfoEx,
            (&raw const posix).cast(),
            size_of::<FILE_DISPOSITION_INFO_EX>() as u32,
        )
    });
    match done {
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(c) if c == ERROR_INVALID_PARAMETER as i32 || c == ERROR_NOT_SUPPORTED as i32
            ) =>
        {
            let classic = FILE_DISPOSITION_INFO { DeleteFile: true };
            // SAFETY: as above, with a FILE_DISPOSITION_INFO.
            check(unsafe {
                SetFileInformationByHandle(
                    handle(file),
                    FileDispositionInfo,
                    (&raw const classic).cast(),
                    size_of::<FILE_DISPOSITION_INFO>() as u32,
                )
            })
        }
        other => other,
    }
}

/// Deletes the lock file `locked`, held and named `path` beneath `dir`, before its lock is
/// released: `path` is opened with the right to delete, and deleted only if it still names the
/// file we locked (else our file is gone already and the one there now is someone else's).
///
/// A process that has the file open without sharing delete (containers/storage's Go code,
/// trying the lock) makes the open fail with a sharing violation for as long as it has it open:
/// it is tried again for about 100 ms.
pub(crate) fn delete_held(locked: &LockedFile, dir: &File, path: &Path) -> io::Result<()> {
    let ours = stat_fd(locked.file())?.id;
    let mut tries = 0;
    let file = loop {
        match cap_primitives::fs::open(dir, path, &options(DELETE | FILE_READ_ATTRIBUTES)) {
            Err(e) if e.raw_os_error() == Some(ERROR_SHARING_VIOLATION as i32) && tries < 100 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            other => break other?,
        }
    };
    if stat_fd(&file)?.id != ours {
        return Ok(());
    }
    delete_by_handle(&file)
}

/// Deletes the non-directory `path` beneath `dir` (a reparse point itself, not its target).
pub(crate) fn remove_beneath(dir: &File, path: &Path) -> io::Result<()> {
    let file = cap_primitives::fs::open(dir, path, &options(DELETE | FILE_READ_ATTRIBUTES))?;
    if stat_fd(&file)?.kind == FileKind::Directory {
        return Err(io::Error::from_raw_os_error(
            super::errno::ERROR_DIRECTORY_NOT_SUPPORTED,
        ));
    }
    delete_by_handle(&file)
}

/// Removes `path` beneath `dir` only if it is an empty directory.
pub(crate) fn remove_empty_dir(dir: &File, path: &Path) -> io::Result<()> {
    cap_primitives::fs::remove_dir(dir, path)
}

/// Removes the directory `path` beneath `dir` that a stage's lock file and resource just left;
/// one that is gone, or in use again, is left as it is.
///
/// A file deleted the classic way keeps its name until its last handle closes (someone
/// looking at the lock at that moment): while the directory is "not empty", the removal is
/// tried again, for at most about 50 ms.
pub(crate) fn remove_emptied_dir(dir: &File, path: &Path) {
    for _ in 0..50 {
        match remove_empty_dir(dir, path) {
            Err(e) if e.raw_os_error() == Some(ERROR_DIR_NOT_EMPTY as i32) => {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            _ => return,
        }
    }
}

/// The names in the directory open as `dir` (listed by its path, as cap-std lists on Windows;
/// each is then opened relative to `dir`'s handle, so a listing of the wrong directory only
/// names files that are not there).
pub(super) fn names_in(dir: &File) -> io::Result<Vec<std::ffi::OsString>> {
    let mut names = Vec::new();
    for entry in cap_primitives::fs::read_base_dir(dir)? {
        match entry {
            Ok(entry) => names.push(entry.file_name()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(names)
}

/// Opens `name` in `dir` itself (a reparse point is not followed) with the right to delete it
/// and to list it; `None` if it is gone.
fn open_to_remove(dir: &File, name: &Path) -> io::Result<Option<File>> {
    const FILE_LIST_DIRECTORY: u32 = 1;
    let access = DELETE | FILE_READ_ATTRIBUTES | FILE_LIST_DIRECTORY;
    match cap_primitives::fs::open(dir, name, &options(access)) {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The names in the directory `name` beneath `dir`; `None` if it is gone. Listed before the
/// directory is opened with the right to delete: the listing opens it again by its path, which
/// a handle of ours with that right would refuse (a sharing violation).
fn names_beneath(dir: &File, name: &Path) -> io::Result<Option<Vec<std::ffi::OsString>>> {
    let listing = match cap_primitives::fs::read_dir(dir, name) {
        Ok(listing) => listing,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut names = Vec::new();
    for entry in listing {
        match entry {
            Ok(entry) => names.push(entry.file_name()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Some(names))
}

/// Removes `name` in `dir`: a directory with everything in it, depth first, each entry deleted
/// through a handle opened relative to its directory's (cap-std removes trees by full path on
/// Windows, which a directory renamed and replaced by a junction meanwhile would lead
/// outside); anything else (a file, a reparse point, never followed) only if `any`, else
/// refused as not a directory. Gone is fine.
fn remove_tree(dir: &File, name: &Path, any: bool) -> io::Result<()> {
    let Some(first) = open_to_remove(dir, name)? else {
        return Ok(());
    };
    if stat_fd(&first)?.kind != FileKind::Directory {
        if !any {
            return Err(io::Error::from_raw_os_error(ERROR_DIRECTORY as i32)); // "not a directory"
        }
        return delete_by_handle(&first);
    }
    drop(first);
    let Some(names) = names_beneath(dir, name)? else {
        return Ok(());
    };
    let Some(top) = open_to_remove(dir, name)? else {
        return Ok(());
    };
    if stat_fd(&top)?.kind != FileKind::Directory {
        // Replaced since it was listed: only what is there now goes, itself.
        return if any { delete_by_handle(&top) } else { Ok(()) };
    }
    for child in names {
        remove_tree(&top, Path::new(&child), true)?;
    }
    delete_by_handle(&top)
}

/// Removes the directory tree `path` beneath `dir`, entry by entry through handles; gone is
/// fine, anything but a directory (a file, a reparse point) is an error and stays.
pub(crate) fn remove_dir_tree(dir: &File, path: &Path) -> io::Result<()> {
    remove_tree(dir, path, false)
}

/// Removes `path` beneath `dir` whatever it is (a directory tree, a file, a reparse point);
/// gone is fine.
pub(crate) fn remove_all(dir: &File, path: &Path) -> io::Result<()> {
    remove_tree(dir, path, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Identity is `FILE_ID_INFO`'s (wine answers it too): the same for two handles of one
    /// file, different for another file, and what `stat_fd` reports.
    #[test]
    fn identity_is_the_128_bit_file_id() {
        let tmp = tempfile::tempdir().unwrap();
        let a = File::create(tmp.path().join("a")).unwrap();
        let b = File::create(tmp.path().join("b")).unwrap();
        let again = File::open(tmp.path().join("a")).unwrap();
        let id = file_id(&a).expect("GetFileInformationByHandleEx(FileIdInfo)");
        assert_eq!(stat_fd(&a).unwrap().id, id);
        assert_eq!(file_id(&again).unwrap(), id);
        assert_ne!(file_id(&b).unwrap(), id);
        assert_ne!(id.ino, 0);
    }
}
