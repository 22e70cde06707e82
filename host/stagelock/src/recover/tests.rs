//! Recovery's second look, made deterministic: between the first check and the lock (the
//! lock module's test hook), someone puts a file into what looked like an orphan stage.
use super::*;
use crate::area::Layout;
use crate::faults::hooks;

#[test]
fn a_file_put_in_a_stage_between_check_and_lock_keeps_everything_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let at = |rel: &str| tmp.path().join(rel);
    // Looks like a stage whose creator died before locking: just `5/dir`.
    std::fs::create_dir_all(at("5/dir")).unwrap();
    std::fs::write(at("5/dir/data"), "mine").unwrap();
    let area = StagingArea::open_ambient_dir(
        tmp.path(),
        Layout::PerDirectory,
        cap_std::ambient_authority(),
    )
    .unwrap();
    let notes = at("5/notes.txt");
    let _guard = hooks::set_before_lock(move |_, _| {
        std::fs::write(&notes, "important").unwrap();
    });
    let report = area.recover_stale().unwrap();
    assert!(report.removed.is_empty(), "{report:?}");
    assert!(
        matches!(report.skipped.as_slice(), [Skipped { id, reason: SkipReason::NotAStage(_) }] if id == "5"),
        "{report:?}"
    );
    assert_eq!(std::fs::read_to_string(at("5/dir/data")).unwrap(), "mine");
    assert_eq!(
        std::fs::read_to_string(at("5/notes.txt")).unwrap(),
        "important"
    );
    assert!(
        !at("5/staging.lock").exists(),
        "the lock file recovery made is gone again"
    );
}

/// Each layout's skip reason says what was found, in that layout's names: a pair whose
/// `temp-dir-N` is a symbolic link, a stage directory holding a file of someone else's.
#[test]
#[cfg(unix)] // a symbolic link
fn not_a_stage_says_what_was_found_in_the_layouts_terms() {
    let reason = |layout: Layout, make: &dyn Fn(&Path)| {
        let tmp = tempfile::tempdir().unwrap();
        make(tmp.path());
        let area = StagingArea::open_ambient_dir(tmp.path(), layout, cap_std::ambient_authority())
            .unwrap();
        let report = area.recover_stale().unwrap();
        assert!(report.removed.is_empty(), "{report:?}");
        match report.skipped.as_slice() {
            [Skipped { reason, .. }] => reason.to_string(),
            other => panic!("one skipped stage expected: {other:?}"),
        }
    };
    let pairs = reason(Layout::Pairs, &|root| {
        std::fs::write(root.join("lock-7"), "").unwrap();
        std::os::unix::fs::symlink("/", root.join("temp-dir-7")).unwrap();
    });
    assert_eq!(
        pairs,
        "not a stage: temp-dir-7 is a symbolic link, where a stage has a directory"
    );
    let per_dir = reason(Layout::PerDirectory, &|root| {
        std::fs::create_dir_all(root.join("5/dir")).unwrap();
        std::fs::write(root.join("5/notes.txt"), "important").unwrap();
    });
    assert_eq!(
        per_dir,
        "not a stage: 5/notes.txt is a regular file, where a stage has nothing but \
         staging.lock and dir"
    );
}

#[test]
fn stage_ids_are_canonical_u32_decimals() {
    for id in ["0", "1", "42", "4294967295"] {
        assert!(decimal(id), "{id}");
    }
    for id in [
        "",
        "01",
        "007",
        "4294967296",
        "99999999999",
        "+1",
        "-1",
        "1a",
        " 1",
    ] {
        assert!(!decimal(id), "{id}");
    }
}
