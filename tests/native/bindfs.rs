//! Commits on a filesystem without `renameat2` flags: a real bindfs (FUSE) mount, where
//! `RENAME_NOREPLACE` and `RENAME_EXCHANGE` give `EINVAL`. Both modes (refusing and replacing)
//! through the Rust API and through `stagelock stage`.
//!
//! Needs `/dev/fuse`, `bindfs` and `fusermount3` (scripts/setup.sh installs them when it runs
//! as root); without them each test says so and passes.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, ensure};
use cap_std::fs::Dir;
use stagelock::{CommitOptions, Durability, ErrorKind, Layout, LockDir, StagingArea};
use stagelock_tests::{FuseMount, fuse_missing, names, stagelock_bin};

/// A bindfs mount with `staging/` and `out/` in it, or `None` (said on stderr) if impossible.
fn bindfs() -> Result<Option<FuseMount>> {
    if let Some(why) = fuse_missing(Path::new("bindfs")) {
        eprintln!("SKIPPED: bindfs tests need /dev/fuse, bindfs and fuse3: {why}");
        return Ok(None);
    }
    let mount = FuseMount::new(&["bindfs"], &["fusermount3", "-u"])?;
    std::fs::create_dir(mount.path().join("staging"))?;
    std::fs::create_dir(mount.path().join("out"))?;
    // The point of these tests: the flags are missing here.
    std::fs::create_dir(mount.path().join("probe"))?;
    let cwd = rustix::fs::CWD;
    let probe = rustix::fs::renameat_with(
        cwd,
        mount.path().join("probe"),
        cwd,
        mount.path().join("probe2"),
        rustix::fs::RenameFlags::NOREPLACE,
    );
    ensure!(
        probe == Err(rustix::io::Errno::INVAL),
        "bindfs was expected to refuse RENAME_NOREPLACE with EINVAL, got {probe:?}"
    );
    std::fs::remove_dir(mount.path().join("probe"))?;
    Ok(Some(mount))
}

fn read(path: impl AsRef<Path>) -> Result<String> {
    let path = path.as_ref();
    std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))
}

/// Nothing but `wanted` in `dir` (no reserved aside names, no stages left).
fn only(dir: &Path, wanted: &[&str]) -> Result<()> {
    let names = names(dir)?;
    ensure!(
        names == wanted,
        "{}: {names:?}, wanted {wanted:?}",
        dir.display()
    );
    Ok(())
}

#[test]
fn the_api_commits_refuses_and_replaces_on_bindfs() -> Result<()> {
    let Some(mount) = bindfs()? else {
        return Ok(());
    };
    let root = Dir::open_ambient_dir(mount.path(), cap_std::ambient_authority())?;
    for layout in [Layout::Pairs, Layout::PerDirectory] {
        let area = StagingArea::with_layout(&root.open_dir("staging")?, layout)?;
        for durability in [Durability::Full, Durability::None] {
            let dest = format!("out/{layout:?}-{durability:?}");
            let plain = CommitOptions::new().durability(durability);
            let replace = plain.replace(true);

            let stage = area.stage()?;
            stage.dir().write("f", "one")?;
            stage.commit_with(&root, &dest, plain)?;
            ensure!(root.read_to_string(format!("{dest}/f"))? == "one");

            // Refused: the stage comes back and DEST is untouched.
            let stage = area.stage()?;
            stage.dir().write("f", "two")?;
            let failed = stage.commit_with(&root, &dest, plain).unwrap_err();
            ensure!(failed.error.kind() == ErrorKind::AlreadyExists, "{failed}");
            failed.stage.context("the stage is handed back")?.abort()?;
            ensure!(root.read_to_string(format!("{dest}/f"))? == "one");

            // Replaced: a directory, then a file.
            let stage = area.stage()?;
            stage.dir().write("f", "three")?;
            stage.commit_with(&root, &dest, replace)?;
            ensure!(root.read_to_string(format!("{dest}/f"))? == "three");
            let file = format!("{dest}.file");
            root.write(&file, "a file")?;
            let stage = area.stage()?;
            stage.dir().write("f", "four")?;
            stage.commit_with(&root, &file, replace)?;
            ensure!(root.read_to_string(format!("{file}/f"))? == "four");
        }
    }
    only(
        &mount.path().join("out"),
        &[
            "Pairs-Full",
            "Pairs-Full.file",
            "Pairs-None",
            "Pairs-None.file",
            "PerDirectory-Full",
            "PerDirectory-Full.file",
            "PerDirectory-None",
            "PerDirectory-None.file",
        ],
    )?;
    only(&mount.path().join("staging"), &[])
}

#[test]
fn the_cli_commits_refuses_and_replaces_on_bindfs() -> Result<()> {
    let Some(mount) = bindfs()? else {
        return Ok(());
    };
    let bin = stagelock_bin(false);
    let staging = mount.path().join("staging");
    let dest = mount.path().join("out/x");
    let stage = |value: &str, extra: &[&str]| -> Result<std::process::Output> {
        let script = format!("echo {value} > \"$STAGELOCK_STAGE_DIR/f\"");
        let out = Command::new(bin)
            .arg("stage")
            .arg(&staging)
            .arg("--into")
            .arg(&dest)
            .args(extra)
            .args(["--", "sh", "-c", &script])
            .output()?;
        Ok(out)
    };
    for layout in ["pairs", "per-dir"] {
        let _ = std::fs::remove_dir_all(&dest);
        let out = stage("one", &["--layout", layout])?;
        ensure!(out.status.success(), "{out:?}");
        ensure!(read(dest.join("f"))? == "one\n");

        let out = stage("two", &["--layout", layout])?;
        ensure!(out.status.code() == Some(1), "refused: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(stderr.contains("already exists"), "{stderr}");
        ensure!(read(dest.join("f"))? == "one\n");

        for (value, flags) in [
            ("three", &["--replace"][..]),
            ("four", &["--replace", "--no-sync"]),
        ] {
            let out = stage(value, &[&["--layout", layout][..], flags].concat())?;
            ensure!(out.status.success(), "{flags:?}: {out:?}");
            ensure!(read(dest.join("f"))? == format!("{value}\n"));
        }
        only(&mount.path().join("out"), &["x"])?;
        only(&staging, &[])?;
    }
    Ok(())
}

/// On a filesystem that is not local, try-lock-path opens a path again after `EPERM` (JuiceFS
/// says so when another host deletes the file during the open), but only a few times: an
/// immutable lock file (`chattr +i` beneath the bindfs mount) is still refused with the OS's
/// own error, at once, on the mount as on the local disk.
#[test]
fn a_lasting_eperm_is_reported_on_fuse_as_on_a_local_disk() -> Result<()> {
    let Some(mount) = bindfs()? else {
        return Ok(());
    };
    let file = mount.backing.path().join("x.lock");
    std::fs::write(&file, "")?;
    let chattr = |flag: &str| Command::new("chattr").arg(flag).arg(&file).output();
    match chattr("+i") {
        Ok(out) if out.status.success() => {}
        other => {
            eprintln!("SKIPPED: chattr +i needs CAP_LINUX_IMMUTABLE and ext4 or alike: {other:?}");
            return Ok(());
        }
    }
    let outcome = (|| -> Result<()> {
        for dir in [mount.path(), mount.backing.path()] {
            let locks = LockDir::open_ambient_dir(dir, cap_std::ambient_authority())?;
            let started = std::time::Instant::now();
            let Err(err) = locks.try_lock_path("x.lock") else {
                anyhow::bail!("{}: an immutable file was locked", dir.display());
            };
            ensure!(
                err.kind() == ErrorKind::PermissionDenied
                    && err.to_string()
                        == "try-lock-path \"x.lock\": Operation not permitted (os error 1)",
                "{}: {err} ({:?})",
                dir.display(),
                err.kind()
            );
            println!("{}: refused in {:?}", dir.display(), started.elapsed());
        }
        Ok(())
    })();
    chattr("-i")?;
    outcome
}

/// bindfs implements no locks, so the kernel takes them for this host alone: the mount table
/// cannot tell, `LockDir::filesystem`'s probe lock does (and leaves nothing behind), and
/// `stagelock doctor` says unknown (exit 3) with that reason. Not local-only: bindfs's storage
/// is this host's own directory, which no other host is known to reach.
#[test]
fn a_probe_lock_finds_that_bindfs_leaves_locks_to_this_hosts_kernel() -> Result<()> {
    let Some(mount) = bindfs()? else {
        return Ok(());
    };
    let locks = LockDir::open_ambient_dir(mount.path(), cap_std::ambient_authority())?;
    let fs = locks.filesystem()?;
    ensure!(fs.fs_type.starts_with("fuse"), "{fs:?}");
    ensure!(fs.locks == stagelock::LockReach::Unknown, "{fs:?}");
    ensure!(
        fs.reason.contains("landed in this host's lock table"),
        "{fs:?}"
    );
    ensure!(locks.local_only()?.is_none(), "bindfs is not local-only");
    only(mount.path(), &["out", "staging"])?;
    let out = Command::new(stagelock_bin(false))
        .arg("doctor")
        .arg(mount.path())
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(out.status.code() == Some(3), "{}: {stdout}", out.status);
    ensure!(stdout.contains("lock table"), "{stdout}");
    only(mount.path(), &["out", "staging"])
}
