//! A path of plain names resolved again by hand when `openat2(RESOLVE_BENEATH)` reports an
//! escape that did not happen.
//!
//! cap-std resolves a path of several components with `openat2(RESOLVE_BENEATH)`. Linux ends
//! such a walk by checking that the entry it reached still lies beneath the starting directory
//! (`complete_walk` → `path_is_under`), and answers `EXDEV` if not, which cap-std reports as an
//! escape. When the entry is renamed out of the directory between its lookup and that check (a
//! stager committing `N/dir` into its destination while a recoverer looks at `N/dir`), the check
//! fails although the path named an entry beneath the handle and leads nowhere else. Every
//! filesystem has that window; a FUSE filesystem with its entry cache off (JuiceFS as the
//! multihost suite mounts it) makes each lookup a round trip to its daemon and the window
//! milliseconds wide. Seen there in JuiceFS's access log: the recoverer's lookup of `N/dir`, the
//! stager's rename of `N/dir` into `out/`, and then the recoverer's "escape".
//!
//! So an escape reported for a path of plain names is resolved again by hand: each directory on
//! the way opened with `O_NOFOLLOW | O_DIRECTORY` beneath the one before, and the operation run
//! again on the last name beneath its parent. A walk by plain names that follows no symbolic
//! link cannot leave the directory, so the second answer is the truth: what is there now, or
//! `NotFound` if it moved away. A symbolic link, or anything but a directory, on the way keeps
//! the first answer (the kernel's: it may well lead out).

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

use rustix::fs::{Mode, OFlags};

/// Runs `op`, a resolution of `path` beneath `dir` through cap-std, and if it reports an escape
/// for a path of plain names, runs it again on the last name beneath its parent, opened by hand.
///
/// `op` may run twice, so it must be one that an escape report leaves undone (every opening,
/// creating or removing call of cap-std is: the kernel's check comes before anything is made or
/// removed, and an open that created its file skips it).
pub(crate) fn again_if_escaped<T>(
    dir: &File,
    path: &Path,
    mut op: impl FnMut(&File, &Path) -> io::Result<T>,
) -> io::Result<T> {
    if by_hand_always() {
        match parent_by_hand(dir, path) {
            Some(Ok((parent, name))) => return op(parent.as_ref().unwrap_or(dir), Path::new(name)),
            Some(Err(e)) => return Err(e),
            None => {}
        }
    }
    match op(dir, path) {
        Err(e) if escaped(&e) => match parent_by_hand(dir, path) {
            Some(Ok((parent, name))) => op(parent.as_ref().unwrap_or(dir), Path::new(name)),
            Some(Err(walk)) => Err(walk),
            None => Err(e),
        },
        other => other,
    }
}

/// cap-std's escape report: permission denied, with no OS error behind it.
fn escaped(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::PermissionDenied && e.raw_os_error().is_none()
}

/// The directory holding `path`'s last name, opened by hand beneath `dir` (`None` for `dir`
/// itself), and that name. `None` if `path` is not all plain names, or a symbolic link or a
/// non-directory is on the way: only the kernel's walk can say where those lead.
#[allow(clippy::type_complexity)]
fn parent_by_hand<'p>(dir: &File, path: &'p Path) -> Option<io::Result<(Option<File>, &'p OsStr)>> {
    // Split by hand: `Path::components` drops a `.` and a trailing `/`, which change what a
    // path means (`link/.` follows the link; `mid-out/.` must stay the escape it is).
    let mut names = Vec::new();
    for name in path.as_os_str().as_bytes().split(|&b| b == b'/') {
        if matches!(name, b"" | b"." | b"..") {
            return None;
        }
        names.push(OsStr::from_bytes(name));
    }
    let (last, on_the_way) = names.split_last()?;
    let mut parent: Option<File> = None;
    for name in on_the_way {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        // No `O_PATH` there (nor `openat2`: cap-std resolves by hand itself, never this way).
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match rustix::fs::openat(parent.as_ref().unwrap_or(dir), *name, flags, Mode::empty()) {
            Ok(fd) => parent = Some(File::from(fd)),
            Err(rustix::io::Errno::NOTDIR | rustix::io::Errno::LOOP) => return None,
            Err(e) => return Some(Err(e.into())),
        }
    }
    Some(Ok((parent, last)))
}

/// Whether every path of plain names is resolved by hand first (a test's switch,
/// `STAGELOCK_FAULTS_BY_HAND=1`: the hostile suites and the model test run once so, to show
/// that the by-hand walk refuses every real escape too).
#[cfg(any(test, feature = "faults"))]
fn by_hand_always() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("STAGELOCK_FAULTS_BY_HAND").is_some_and(|v| v == "1"))
}

#[cfg(not(any(test, feature = "faults")))]
#[inline(always)]
fn by_hand_always() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, File) {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("root/a/b")).unwrap();
        std::fs::write(tmp.path().join("root/a/b/f"), b"x").unwrap();
        std::os::unix::fs::symlink("../..", tmp.path().join("root/a/out")).unwrap();
        std::os::unix::fs::symlink("b", tmp.path().join("root/a/in")).unwrap();
        let dir = File::open(tmp.path().join("root")).unwrap();
        (tmp, dir)
    }

    #[test]
    fn plain_names_are_walked_to_the_last_ones_parent() {
        let (_tmp, dir) = setup();
        let (parent, name) = parent_by_hand(&dir, Path::new("a/b/f")).unwrap().unwrap();
        assert_eq!(name, "f");
        let parent = parent.unwrap();
        let meta = cap_primitives::fs::stat(
            &parent,
            Path::new(name),
            cap_primitives::fs::FollowSymlinks::No,
        );
        assert!(meta.unwrap().is_file());
        let (parent, name) = parent_by_hand(&dir, Path::new("f")).unwrap().unwrap();
        assert!(parent.is_none());
        assert_eq!(name, "f");
    }

    #[test]
    fn anything_but_plain_directories_on_the_way_keeps_the_kernels_answer() {
        let (_tmp, dir) = setup();
        for path in [
            "a/out/root/a",
            "a/in/f",
            "a/b/f/x",
            "../root/a",
            "/etc/passwd",
            "",
            "a/.",
            "a/./b",
            "a//b",
            "a/b/",
        ] {
            assert!(parent_by_hand(&dir, Path::new(path)).is_none(), "{path}");
        }
        let missing = parent_by_hand(&dir, Path::new("a/nope/f"))
            .unwrap()
            .unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn an_escape_reported_for_plain_names_is_resolved_again_and_a_real_one_stands() {
        let (_tmp, dir) = setup();
        let mut calls = Vec::new();
        // An operation that reports an escape for the whole path, as openat2 does when the
        // entry moves out mid-walk, and answers for the last name beneath its parent.
        let found = again_if_escaped(&dir, Path::new("a/b/f"), |d, p| {
            calls.push(p.to_owned());
            if p == Path::new("a/b/f") {
                return Err(io::Error::new(io::ErrorKind::PermissionDenied, "escape"));
            }
            cap_primitives::fs::stat(d, p, cap_primitives::fs::FollowSymlinks::No)
        });
        assert!(found.unwrap().is_file());
        if by_hand_always() {
            assert_eq!(calls, [Path::new("f")]);
        } else {
            assert_eq!(calls, [Path::new("a/b/f"), Path::new("f")]);
        }
        // Through a symbolic link out: the escape stands.
        let out = again_if_escaped(&dir, Path::new("a/out/x"), |d, p| {
            cap_primitives::fs::stat(d, p, cap_primitives::fs::FollowSymlinks::No)
        });
        assert!(escaped(&out.unwrap_err()));
    }

    /// The race itself, on the local filesystem: one thread renames `s/dir` out of the root and
    /// back while another resolves `s/dir` beneath the root. The kernel's walk reports escapes
    /// (on a local filesystem the window is narrow: some runs see none); resolved again, none is
    /// left, and every answer is the directory or "not found".
    #[test]
    fn an_entry_renamed_out_mid_walk_is_never_an_escape() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("root/s/dir")).unwrap();
        std::fs::create_dir(tmp.path().join("out")).unwrap();
        let dir = File::open(tmp.path().join("root")).unwrap();
        let stop = AtomicBool::new(false);
        let (inside, outside) = (tmp.path().join("root/s/dir"), tmp.path().join("out/dir"));
        let (mut kernel, mut ours) = (0, 0);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    std::fs::rename(&inside, &outside).unwrap();
                    std::fs::rename(&outside, &inside).unwrap();
                }
            });
            let started = std::time::Instant::now();
            while started.elapsed() < std::time::Duration::from_millis(500) {
                let stat = |d: &File, p: &Path| {
                    cap_primitives::fs::stat(d, p, cap_primitives::fs::FollowSymlinks::No)
                };
                if stat(&dir, Path::new("s/dir")).is_err_and(|e| escaped(&e)) {
                    kernel += 1;
                }
                match again_if_escaped(&dir, Path::new("s/dir"), stat) {
                    Ok(meta) => assert!(meta.is_dir()),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => {
                        ours += 1;
                        eprintln!("{e}");
                    }
                }
            }
            stop.store(true, Ordering::Relaxed);
        });
        eprintln!("escapes reported by the kernel's walk: {kernel}; after resolving again: {ours}");
        assert_eq!(ours, 0);
    }
}
