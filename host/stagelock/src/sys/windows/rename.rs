//! Renames for commits on Windows: by the source's handle (`NtSetInformationFile` with
//! `FILE_RENAME_INFORMATION`), into a directory given by its handle (the name's root), never replacing an existing destination unless asked. Windows
//! has no exchange; a replacing commit takes the portable sequence of the crate's `commit`
//! module, made of these no-replace renames.

use std::fs::File;
use std::io;
use std::mem::{offset_of, size_of};
use std::os::windows::ffi::OsStrExt as _;
use std::os::windows::io::AsRawHandle;
use std::path::Path;

use cap_fs_ext::OpenOptionsFollowExt as _;
use cap_primitives::fs::{DirOptions, FollowSymlinks, OpenOptions, OpenOptionsExt as _};
use windows_sys::Wdk::Storage::FileSystem::{
    FILE_RENAME_INFORMATION, FileRenameInformation, NtSetInformationFile,
};
use windows_sys::Win32::Foundation::{
    ERROR_CALL_NOT_IMPLEMENTED, ERROR_DIR_NOT_EMPTY, ERROR_INVALID_NAME, HANDLE,
    RtlNtStatusToDosError,
};
use windows_sys::Win32::Storage::FileSystem::{
    DELETE, FILE_FLAG_BACKUP_SEMANTICS, FILE_FLAG_OPEN_REPARSE_POINT, FILE_READ_ATTRIBUTES,
    FILE_SHARE_DELETE, FILE_SHARE_READ, FILE_SHARE_WRITE, SYNCHRONIZE,
};
use windows_sys::Win32::System::IO::IO_STATUS_BLOCK;

use super::fs::single_name;
use super::names::host_form;
use crate::sys::types::RenameMode;

/// Renames `old` beneath `old_dir` to the single name `new` in `new_dir`: never replacing an
/// existing `new` (`ERROR_ALREADY_EXISTS`), atomically. `Exchange` is not supported, so the
/// caller takes its portable sequence.
pub(crate) fn rename(
    old_dir: &File,
    old: &Path,
    new_dir: &File,
    new: &Path,
    mode: RenameMode,
) -> io::Result<()> {
    match mode {
        RenameMode::NoReplace => rename_by_handle(old_dir, old, new_dir, new, false),
        RenameMode::Exchange => Err(io::Error::from_raw_os_error(NO_EXCHANGE)),
    }
}

/// What [`rename`] says to an exchange: "not implemented", which no no-replace rename says (a
/// filesystem refusing one must not send a commit to the `mkdir` reservation of Unix's
/// fallback, which cannot work here: Windows never renames over a directory).
const NO_EXCHANGE: i32 = ERROR_CALL_NOT_IMPLEMENTED as i32;

/// Whether a failed [`rename`] means "not supported here": only for an exchange.
pub(crate) fn rename_flags_unsupported(err: &io::Error) -> bool {
    err.raw_os_error() == Some(NO_EXCHANGE)
}

/// Whether `err` says a directory was not empty.
pub(crate) fn not_empty(err: &io::Error) -> bool {
    err.raw_os_error() == Some(ERROR_DIR_NOT_EMPTY as i32)
}

/// Whether `err` says a directory and a non-directory were mixed up in a rename: never, as
/// renames here never replace what is in the way.
pub(crate) fn kind_mismatch(_err: &io::Error) -> bool {
    false
}

/// Renames `old` beneath `old_dir` to the single name `new` in `new_dir`: on Windows never
/// replacing anything. The sequences that call it (the replacing commit's, and putting a
/// result back) only rename onto names they freed, and Windows would let a directory replace
/// a file someone made there meanwhile.
pub(crate) fn rename_plain(
    old_dir: &File,
    old: &Path,
    new_dir: &File,
    new: &Path,
) -> io::Result<()> {
    rename_by_handle(old_dir, old, new_dir, new, false)
}

/// Makes the directory `name` in `dir`, exclusively (`ERROR_ALREADY_EXISTS` if anything has
/// that name).
pub(crate) fn reserve_dir(dir: &File, name: &Path) -> io::Result<()> {
    cap_primitives::fs::create_dir(dir, name, &DirOptions::new())
}

/// A second name `new` for the non-directory `old` in `dir`, exclusively.
pub(crate) fn link_exclusive(dir: &File, old: &Path, new: &Path) -> io::Result<()> {
    cap_primitives::fs::hard_link(dir, old, dir, new)
}

/// Opens `old` itself (a reparse point is not followed) with the right to rename it, and
/// renames it through that handle, with `new_dir`'s handle as the root of the new name.
fn rename_by_handle(
    old_dir: &File,
    old: &Path,
    new_dir: &File,
    new: &Path,
    replace: bool,
) -> io::Result<()> {
    // One name, and one Windows takes as given (not a device, not stripped of a final dot):
    // the NT layer would make `CON` or `x.` a directory no Win32 program can open.
    if !single_name(new) || host_form(new).is_some() {
        return Err(io::Error::from_raw_os_error(ERROR_INVALID_NAME as i32));
    }
    let mut options = OpenOptions::new();
    options
        .access_mode(DELETE | SYNCHRONIZE | FILE_READ_ATTRIBUTES)
        .share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE)
        .custom_flags(FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT);
    options.follow(FollowSymlinks::No);
    let source = cap_primitives::fs::open(old_dir, old, &options)?;

    // FILE_RENAME_INFORMATION ends in the name, of any length: a buffer of u64s keeps it
    // aligned. (Win32's SetFileInformationByHandle would take the name as a path relative to
    // the current directory, not to the root directory handle.)
    let name: Vec<u16> = new.as_os_str().encode_wide().collect();
    let name_at = offset_of!(FILE_RENAME_INFORMATION, FileName);
    let bytes = name_at + (name.len() + 1) * size_of::<u16>();
    let mut buffer = vec![0u64; bytes.div_ceil(size_of::<u64>())];
    let info = buffer.as_mut_ptr().cast::<FILE_RENAME_INFORMATION>();
    // SAFETY: `buffer` is zeroed, aligned for FILE_RENAME_INFORMATION and `bytes` long: room
    // for the header and the name with its terminating zero, written through raw pointers
    // within it.
    unsafe {
        (*info).Anonymous.ReplaceIfExists = replace;
        (*info).RootDirectory = new_dir.as_raw_handle() as HANDLE;
        (*info).FileNameLength = (name.len() * size_of::<u16>()) as u32;
        let first = buffer.as_mut_ptr().cast::<u8>().add(name_at).cast::<u16>();
        std::ptr::copy_nonoverlapping(name.as_ptr(), first, name.len());
    }
    // SAFETY: all-zero is a valid IO_STATUS_BLOCK.
    let mut status: IO_STATUS_BLOCK = unsafe { std::mem::zeroed() };
    // SAFETY: a valid handle opened with DELETE access, for synchronous I/O; the buffer is a
    // FILE_RENAME_INFORMATION of `bytes` bytes; `new_dir`'s handle is valid for the call.
    let nt = unsafe {
        NtSetInformationFile(
            source.as_raw_handle() as HANDLE,
            &mut status,
            buffer.as_ptr().cast(),
            bytes as u32,
            FileRenameInformation,
        )
    };
    if nt >= 0 {
        return Ok(());
    }
    // SAFETY: takes and returns plain integers.
    let code = unsafe { RtlNtStatusToDosError(nt) };
    Err(io::Error::from_raw_os_error(code as i32))
}
