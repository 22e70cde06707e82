//! What both OS families do alike: through cap-std's sandboxed resolution, which refuses `..`
//! climbing out, absolute paths and symbolic links leading out, on Unix and Windows.
//! (Removing trees is not here: cap-std removes them by handle on Unix, but by full path on
//! Windows, so each family has its own.)

use std::fs::File;
use std::path::Path;

use cap_primitives::fs::FollowSymlinks;

/// Whether `path` beneath `dir` names anything (not following a final symlink).
pub(crate) fn exists(dir: &File, path: &Path) -> bool {
    super::again_if_escaped(dir, path, |d, p| {
        cap_primitives::fs::stat(d, p, FollowSymlinks::No)
    })
    .is_ok()
}
