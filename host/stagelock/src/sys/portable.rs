//! What both OS families do alike: through cap-std's sandboxed resolution, which refuses `..`
//! climbing out, absolute paths and symbolic links leading out, on Unix and Windows.

use std::fs::File;
use std::io;
use std::path::Path;

use cap_primitives::fs::FollowSymlinks;

/// Whether `path` beneath `dir` names anything (not following a final symlink).
pub(crate) fn exists(dir: &File, path: &Path) -> bool {
    cap_primitives::fs::stat(dir, path, FollowSymlinks::No).is_ok()
}

/// Removes the directory tree `path` beneath `dir`; gone is fine, anything but a directory (a
/// file, a symbolic link) is an error and stays.
pub(crate) fn remove_dir_tree(dir: &File, path: &Path) -> io::Result<()> {
    match cap_primitives::fs::remove_dir_all(dir, path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Removes `path` beneath `dir` whatever it is (a directory tree or a file); gone is fine.
pub(crate) fn remove_all(dir: &File, path: &Path) -> io::Result<()> {
    let result = match cap_primitives::fs::stat(dir, path, FollowSymlinks::No) {
        Ok(meta) if meta.is_dir() => cap_primitives::fs::remove_dir_all(dir, path),
        Ok(_) => cap_primitives::fs::remove_file(dir, path),
        Err(e) => Err(e),
    };
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}
