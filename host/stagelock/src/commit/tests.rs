//! The fallback sequences on a filesystem that has the flags (forced by a switch), and a
//! simulated crash at every step of them: a crash is the lock released with its file kept
//! and nothing else done, as when the process dies.
use super::place::Step;
use super::place::hooks::{crash_at_step, force_fallback_on};
use crate::{ErrorKind, StagingArea};
use cap_std::fs::Dir;

/// The fallback sequences forced where they are the portable way (Unix); on Windows the
/// sequences of no-replace renames run as they are.
fn forced_fallback() -> Option<super::place::hooks::Guard> {
    cfg!(unix).then(force_fallback_on)
}

struct Fixture {
    _tmp: tempfile::TempDir,
    root: Dir,
    area: StagingArea,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).unwrap();
    root.create_dir("staging").unwrap();
    root.create_dir("out").unwrap();
    let area = StagingArea::new(&root.open_dir("staging").unwrap()).unwrap();
    Fixture {
        _tmp: tmp,
        root,
        area,
    }
}

/// Every file under `dir` (not following symlinks) as "path=contents", sorted; `staging`
/// is left out.
/// How many entries the staging area holds.
fn staging_entries(root: &Dir) -> usize {
    root.open_dir("staging").unwrap().entries().unwrap().count()
}

fn tree(dir: &Dir, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    for entry in dir.entries().unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        if prefix.is_empty() && name == "staging" {
            continue;
        }
        let path = format!("{prefix}{name}");
        if entry.file_type().unwrap().is_dir() {
            let sub = tree(&dir.open_dir(&name).unwrap(), &format!("{path}/"));
            if sub.is_empty() {
                out.push(format!("{path}/"));
            }
            out.extend(sub);
        } else {
            out.push(format!("{path}={}", dir.read_to_string(&name).unwrap()));
        }
    }
    out.sort();
    out
}

fn stage_with(area: &StagingArea, contents: &str) -> crate::Stage {
    let stage = area.stage().unwrap();
    stage.dir().create_dir("sub").unwrap();
    stage.dir().write("sub/f", contents).unwrap();
    stage
}

#[test]
fn the_forced_fallback_commits_and_never_overwrites() {
    let f = fixture();
    let _fallback = forced_fallback();
    stage_with(&f.area, "one").commit(&f.root, "out/a").unwrap();
    assert_eq!(tree(&f.root, ""), ["out/a/sub/f=one"]);

    // An existing directory, empty or not, or file is refused; the stage comes back.
    f.root.create_dir("out/empty").unwrap();
    f.root.write("out/file", "mine").unwrap();
    for dest in ["out/a", "out/empty", "out/file"] {
        let failed = stage_with(&f.area, "two")
            .commit(&f.root, dest)
            .unwrap_err();
        assert_eq!(failed.error.kind(), ErrorKind::AlreadyExists, "{dest}");
        failed.stage.expect("handed back").abort().unwrap();
    }
    assert_eq!(
        tree(&f.root, ""),
        ["out/a/sub/f=one", "out/empty/", "out/file=mine"]
    );
    assert!(f.area.recover_stale().unwrap().removed.is_empty());
    assert_eq!(staging_entries(&f.root), 0);
}

#[test]
fn the_forced_fallback_replaces_directories_and_files() {
    let f = fixture();
    let _fallback = forced_fallback();
    stage_with(&f.area, "old").commit(&f.root, "out/a").unwrap();
    stage_with(&f.area, "new")
        .commit_replacing(&f.root, "out/a")
        .unwrap();
    f.root.write("out/file", "old file").unwrap();
    stage_with(&f.area, "new2")
        .commit_replacing(&f.root, "out/file")
        .unwrap();
    // Replacing where nothing is: a plain commit.
    stage_with(&f.area, "new3")
        .commit_replacing(&f.root, "out/none")
        .unwrap();
    assert_eq!(
        tree(&f.root, ""),
        [
            "out/a/sub/f=new",
            "out/file/sub/f=new2",
            "out/none/sub/f=new3"
        ]
    );
    assert_eq!(staging_entries(&f.root), 0);
}

#[test]
#[cfg(unix)] // the mkdir reservation is Unix's fallback; Windows renames without replacing
fn a_crash_between_reserving_and_renaming_leaves_an_empty_directory_at_dest() {
    let f = fixture();
    let _fallback = forced_fallback();
    let _crash = crash_at_step(Step::Reserved, 0);
    let crashed = stage_with(&f.area, "new").commit(&f.root, "out/a");
    assert!(crashed.unwrap_err().stage.is_none());
    assert_eq!(tree(&f.root, ""), ["out/a/"]);
    // Recovery removes the uncommitted stage; the placeholder is the user's to remove.
    assert_eq!(f.area.recover_stale().unwrap().removed.len(), 1);
    assert_eq!(tree(&f.root, ""), ["out/a/"]);
    let failed = stage_with(&f.area, "again")
        .commit(&f.root, "out/a")
        .unwrap_err();
    assert_eq!(failed.error.kind(), ErrorKind::AlreadyExists);
    drop(failed);
    f.root.remove_dir("out/a").unwrap();
    stage_with(&f.area, "again")
        .commit(&f.root, "out/a")
        .unwrap();
    assert_eq!(tree(&f.root, ""), ["out/a/sub/f=again"]);
}

/// A crash at each step of a replacing fallback, then recovery: the old destination and
/// the new result are each still under a name outside the staging area (the table in
/// `Stage::commit_replacing`'s docs), until the new one is in place.
#[test]
fn a_crash_at_any_step_of_a_replacing_fallback_loses_nothing() {
    let new = ".a.stagelock-ID.new";
    let old = ".a.stagelock-ID.old";
    let cases: [(Step, u32, Vec<String>); 5] = [
        // 0. reserving the .new name: only an empty directory more.
        (
            Step::Reserved,
            0,
            vec![format!("out/{new}/"), "out/a/sub/f=old".into()],
        ),
        // 1. the new result is aside.
        (
            Step::NewAside,
            0,
            vec![format!("out/{new}/sub/f=new"), "out/a/sub/f=old".into()],
        ),
        // 2a. reserving the .old name.
        (
            Step::Reserved,
            1,
            vec![
                format!("out/{new}/sub/f=new"),
                format!("out/{old}/"),
                "out/a/sub/f=old".into(),
            ],
        ),
        // 2. the old destination is aside.
        (
            Step::OldAside,
            0,
            vec![
                format!("out/{new}/sub/f=new"),
                format!("out/{old}/sub/f=old"),
            ],
        ),
        // 3. the new result is in place; the old one still aside.
        (
            Step::NewInPlace,
            0,
            vec![format!("out/{old}/sub/f=old"), "out/a/sub/f=new".into()],
        ),
    ];
    // Windows renames without replacing: no reservations (Step::Reserved) on the way.
    let cases = cases
        .into_iter()
        .filter(|(step, ..)| cfg!(unix) || *step != Step::Reserved);
    for (step, nth, expected) in cases {
        let f = fixture();
        let _fallback = forced_fallback();
        stage_with(&f.area, "old").commit(&f.root, "out/a").unwrap();
        let stage = stage_with(&f.area, "new");
        let id = stage.id().to_owned();
        let _crash = crash_at_step(step, nth);
        let crashed = stage.commit_replacing(&f.root, "out/a").unwrap_err();
        assert!(crashed.stage.is_none(), "{step:?} {nth}: crashed");
        f.area.recover_stale().unwrap();
        let after: Vec<String> = tree(&f.root, "")
            .into_iter()
            .map(|p| p.replace(&id, "ID"))
            .collect();
        // The new result is only kept once it has left the stage (not committed before).
        let left_the_stage = (step, nth) != (Step::Reserved, 0);
        let kept = if left_the_stage {
            &["sub/f=old", "sub/f=new"][..]
        } else {
            &["sub/f=old"][..]
        };
        for kept in kept {
            assert!(
                after.iter().any(|p| p.ends_with(kept)),
                "{kept} lost by a crash at {step:?} #{nth} and recovery: {after:?}"
            );
        }
        assert_eq!(
            after, expected,
            "after a crash at {step:?} #{nth} and recovery"
        );
    }
}

#[test]
#[cfg(unix)]
fn a_durable_commit_syncs_a_tree_with_links_and_fifos_without_following_or_opening_them() {
    use super::*;
    use cap_std::io_lifetimes::AsFilelike;
    let f = fixture();
    let stage = f.area.stage().unwrap();
    let stage_path = f._tmp.path().join("staging").join(stage.path());
    stage.dir().create_dir_all("d/e/f").unwrap();
    stage.dir().write("d/e/f/data", vec![7u8; 5000]).unwrap();
    std::os::unix::fs::symlink("/dev/zero", stage_path.join("link")).unwrap();
    // A FIFO opened for reading would block this test forever.
    {
        let dir = stage.dir().as_filelike_view::<File>();
        let mode = rustix::fs::Mode::from_bits_truncate(0o600);
        rustix::fs::mknodat(&*dir, "fifo", rustix::fs::FileType::Fifo, mode, 0).unwrap();
    }
    stage
        .commit_with(&f.root, "out/a", CommitOptions::new())
        .unwrap();
    assert_eq!(f.root.read("out/a/d/e/f/data").unwrap(), vec![7u8; 5000]);
    let fifo = f.root.symlink_metadata("out/a/fifo").unwrap();
    assert!(cap_std::fs::FileTypeExt::is_fifo(&fifo.file_type()));
}
