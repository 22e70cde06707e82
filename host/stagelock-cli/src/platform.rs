//! What the command does differently per OS family: a child's signal, the descriptor limit,
//! which filesystem a directory is on. Everything else is the core's, which has its own
//! platform layer.

use std::process::ExitStatus;

/// The signal that killed a child, if one did (Unix); never on Windows, where a process ends
/// with an exit code only.
#[cfg(unix)]
pub(crate) fn killed_by(status: ExitStatus) -> Option<i32> {
    std::os::unix::process::ExitStatusExt::signal(&status)
}

/// The signal that killed a child: Windows has none.
#[cfg(windows)]
pub(crate) fn killed_by(_status: ExitStatus) -> Option<i32> {
    None
}

/// Raises the soft limit on open descriptors to the hard limit, as servers do, and returns the
/// soft limit in force (`None`: unlimited or unknown).
#[cfg(unix)]
pub(crate) fn raise_nofile_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if let (Some(soft), Some(hard)) = (limit.current, limit.maximum)
        && soft < hard
    {
        limit.current = Some(hard);
        // Refused (a hard limit above what the kernel allows): keep the soft limit.
        let _ = setrlimit(Resource::Nofile, limit);
    }
    getrlimit(Resource::Nofile).current
}

/// Windows has no per-process limit on handles that a server would raise: unknown.
#[cfg(windows)]
pub(crate) fn raise_nofile_limit() -> Option<u64> {
    None
}

/// The device the directory at the ambient path `path` is on, and the one `dir` is on (Unix
/// `st_dev`), to refuse a commit across filesystems before staging; `None` on Windows, where
/// the commit's rename itself says so (`ERROR_NOT_SAME_DEVICE`).
#[cfg(unix)]
pub(crate) fn devices(
    path: &std::path::Path,
    dir: &cap_std::fs::Dir,
) -> Option<(std::io::Result<u64>, std::io::Result<u64>)> {
    use cap_std::fs::MetadataExt as _;
    use std::os::unix::fs::MetadataExt as _;
    Some((
        std::fs::metadata(path).map(|m| m.dev()),
        dir.dir_metadata().map(|m| m.dev()),
    ))
}

/// Which filesystem a directory is on: not asked on Windows (see the Unix version).
#[cfg(windows)]
pub(crate) fn devices(
    _path: &std::path::Path,
    _dir: &cap_std::fs::Dir,
) -> Option<(std::io::Result<u64>, std::io::Result<u64>)> {
    None
}
