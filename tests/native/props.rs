//! Property tests: whatever the path or pattern, the native API never panics, never creates or
//! deletes anything outside its directory, and answers the same input with the same kind.

use proptest::prelude::*;
use stagelock::{ErrorKind, StagingLock};
use stagelock_tests::{Scratch, tree};

/// `outer/granted` with traps inside (symlinks out, a FIFO, a directory), and `outer/outside`.
fn sandbox() -> Scratch {
    let s = Scratch::new().unwrap();
    s.dir().create_dir_all("granted/d/e").unwrap();
    s.dir().create_dir_all("outside").unwrap();
    let g = s.join("granted");
    std::os::unix::fs::symlink("../outside", g.join("out")).unwrap();
    std::os::unix::fs::symlink("/", g.join("root")).unwrap();
    std::os::unix::fs::symlink("d", g.join("in")).unwrap();
    stagelock_tests::mkfifo(&g.join("fifo")).unwrap();
    s
}

fn component() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("..".to_owned()),
        Just(".".to_owned()),
        Just(String::new()),
        Just("d".to_owned()),
        Just("e".to_owned()),
        Just("out".to_owned()),
        Just("root".to_owned()),
        Just("in".to_owned()),
        Just("fifo".to_owned()),
        Just("tmp".to_owned()),
        "[a-z.\\-]{1,8}",
        "\\PC{0,4}",
    ]
}

fn path() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        prop::collection::vec(component(), 1..6),
        any::<bool>(),
    )
        .prop_map(|(abs, parts, slash)| {
            let mut p = if abs { "/".to_owned() } else { String::new() };
            p += &parts.join("/");
            if slash {
                p.push('/');
            }
            p
        })
}

const PATH_KINDS: [ErrorKind; 6] = [
    ErrorKind::PermissionDenied,
    ErrorKind::NotFound,
    ErrorKind::NotAFile,
    ErrorKind::InvalidInput,
    ErrorKind::WouldBlock,
    ErrorKind::Other,
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn try_lock_path_never_escapes_and_is_stable(paths in prop::collection::vec(path(), 1..8)) {
        let s = sandbox();
        let granted = s.dir().open_dir("granted").unwrap();
        let outside_before = tree(&s.join("outside")).unwrap();
        let root_before = s.names().unwrap();
        for p in &paths {
            let first = StagingLock::try_lock_path(&granted, p);
            let first_kind = first.as_ref().err().map(|e| e.kind());
            if let Some(kind) = first_kind {
                prop_assert!(PATH_KINDS.contains(&kind), "{p:?}: {kind:?}");
                prop_assert_ne!(kind, ErrorKind::Other, "{:?}: {}", p, first.as_ref().unwrap_err());
            }
            let second = StagingLock::try_lock_path(&granted, p).err().map(|e| e.kind());
            match first {
                Ok(lock) => {
                    prop_assert_eq!(second, Some(ErrorKind::WouldBlock), "{:?} held", p);
                    // What was locked lies beneath the grant.
                    let real = s.join("granted").join(lock.path()).canonicalize().unwrap();
                    prop_assert!(real.starts_with(s.join("granted").canonicalize().unwrap()), "{p:?} -> {real:?}");
                    lock.unlock_and_delete().unwrap();
                }
                Err(_) => prop_assert_eq!(second, first_kind, "{:?} answered differently", p),
            }
        }
        prop_assert_eq!(tree(&s.join("outside")).unwrap(), outside_before);
        prop_assert_eq!(s.names().unwrap(), root_before);
    }

    #[test]
    fn create_and_lock_names_follow_the_pattern_or_refuse_it(pattern in "\\PC{0,12}|[a-z*/.]{0,12}|.{0,300}") {
        let s = sandbox();
        let granted = s.dir().open_dir("granted").unwrap();
        let before = tree(&s.join("granted")).unwrap();
        match StagingLock::create_and_lock(&granted, &pattern) {
            Ok((lock, name)) => {
                let (prefix, suffix) = match pattern.rfind('*') {
                    Some(i) => (&pattern[..i], &pattern[i + 1..]),
                    None => (pattern.as_str(), ""),
                };
                let digits = name.strip_prefix(prefix).and_then(|n| n.strip_suffix(suffix));
                prop_assert!(digits.is_some_and(|d| d.parse::<u32>().is_ok()), "{pattern:?} -> {name:?}");
                prop_assert!(!name.contains('/'));
                prop_assert!(s.join("granted").join(&name).is_file());
                lock.unlock_and_delete().unwrap();
            }
            Err(e) => {
                prop_assert_eq!(e.kind(), ErrorKind::InvalidInput, "{:?}: {}", pattern, e);
                prop_assert!(pattern.contains('/') || pattern.contains('\0') || pattern.len() > 200, "{pattern:?}: {e}");
            }
        }
        prop_assert_eq!(tree(&s.join("granted")).unwrap(), before);
        prop_assert!(tree(&s.join("outside")).unwrap().is_empty());
    }
}
