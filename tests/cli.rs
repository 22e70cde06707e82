//! The `stagelock` command: exit codes, messages, inheritance and clean-up.

use std::path::Path;
use std::process::{Command, Output};

use stagelock_tests::{stagelock_bin, wait_until};

/// The binary's path, for the shell scripts the tests hand it.
fn bin() -> &'static str {
    s(stagelock_bin(false))
}

fn stagelock(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .output()
        .expect("run stagelock")
}

/// `stagelock stage STAGING [--layout LAYOUT] [FLAGS] --into INTO -- sh -c SCRIPT`.
fn stage(staging: &Path, layout: &str, flags: &[&str], into: &Path, script: &str) -> Output {
    let mut args = vec!["stage", s(staging)];
    if !layout.is_empty() {
        args.extend(["--layout", layout]);
    }
    args.extend(flags);
    args.extend(["--into", s(into), "--", "sh", "-c", script]);
    stagelock(&args)
}

/// `template` with `{bin}` replaced by the binary's path and `{p}` by `path`: a shell script
/// that runs stagelock on `path`.
fn script(template: &str, path: &Path) -> String {
    template.replace("{bin}", bin()).replace("{p}", s(path))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn try_exits_0_when_free_and_deletes_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("t.lock");
    let out = stagelock(&["try", s(&path)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!path.exists());
}

#[test]
fn lock_runs_the_command_holding_the_lock_then_deletes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("l.lock");
    // Inside the command, the lock is busy for another stagelock (exit 75) and the file exists.
    let script = script("test -f {p} && {bin} try {p}; echo inner=$?", &path);
    let out = stagelock(&["lock", s(&path), "--", "sh", "-c", &script]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "inner=75");
    assert!(stderr(&out).contains("held by another lock holder"));
    assert!(!path.exists(), "deleted after the command");
}

#[test]
fn lock_passes_the_command_status_through() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("l.lock");
    let out = stagelock(&["lock", s(&path), "--", "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7));
    assert!(!path.exists());
    let out = stagelock(&["lock", s(&path), "--", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(out.status.code(), Some(128 + 15));
    assert!(!path.exists());
}

#[test]
fn busy_exits_75_naming_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("b.lock");
    let cmd = script(
        "{bin} lock {p} -- true; echo lock=$?; {bin} try {p}; echo try=$?",
        &path,
    );
    let out = stagelock(&["lock", s(&path), "--", "sh", "-c", &cmd]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "lock=75\ntry=75\n");
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 2, "one line each: {err}");
    assert!(err.lines().all(|l| l.contains(s(&path))), "{err}");
}

#[test]
fn create_prints_the_name_and_sets_the_environment() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = s(tmp.path());
    let out = stagelock(&[
        "create",
        dir,
        "lock-*.tmp",
        "--",
        "sh",
        "-c",
        "test -f \"$STAGELOCK_PATH\" && echo \"$STAGELOCK_NAME\"",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert_eq!(lines[0], lines[1], "printed name = STAGELOCK_NAME");
    let digits = lines[0]
        .strip_prefix("lock-")
        .unwrap()
        .strip_suffix(".tmp")
        .unwrap();
    assert!(digits.parse::<u32>().is_ok());
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "deleted after"
    );
}

#[test]
fn other_errors_exit_1_with_one_line_and_usage_errors_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no/such/x.lock");
    let out = stagelock(&["try", s(&missing)]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out).lines().count(), 1);
    assert!(stderr(&out).contains(s(&missing)), "{}", stderr(&out));
    assert!(!tmp.path().join("no").exists());

    let out = stagelock(&["create", s(tmp.path()), "a/b", "--", "true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("separator"), "{}", stderr(&out));

    let out = stagelock(&["lock", s(&tmp.path().join("x")), "--", "/no/such/program"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("/no/such/program"),
        "{}",
        stderr(&out)
    );
    assert!(!tmp.path().join("x").exists(), "released and deleted");

    assert_eq!(stagelock(&["lock", "x"]).status.code(), Some(2));
    assert_eq!(stagelock(&["frobnicate"]).status.code(), Some(2));
    let help = stagelock(&["--help"]);
    assert!(String::from_utf8_lossy(&help.stdout).contains("75"));
}

#[test]
fn the_command_inherits_the_lock_unless_told_not_to() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("i.lock");
    // The command kills its parent stagelock, then checks whether the lock is still held.
    let script = script(
        "kill -KILL $PPID; sleep 0.2; {bin} try {p} 2>/dev/null; echo $? > {p}.status",
        &path,
    );
    let run = |extra: &[&str]| {
        let mut args = vec!["lock"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[s(&path), "--", "sh", "-c", &script]);
        let out = stagelock(&args);
        assert_eq!(out.status.code(), None, "stagelock was killed");
        // The orphaned command finishes on its own; wait for its verdict.
        let status_file = format!("{}.status", s(&path));
        let mut verdict = String::new();
        wait_until("the command's verdict", || {
            verdict = std::fs::read_to_string(&status_file).unwrap_or_default();
            verdict.ends_with('\n')
        });
        std::fs::remove_file(&status_file).unwrap();
        verdict.trim().to_owned()
    };
    assert_eq!(run(&[]), "75", "inherited: still held after stagelock died");
    assert!(path.exists(), "left behind by the killed stagelock");
    assert_eq!(
        run(&["--no-inherit"]),
        "0",
        "not inherited: free once stagelock died"
    );
}

#[test]
fn stage_commits_on_success_and_aborts_on_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let staging = tmp.path().join("staging");
    std::fs::create_dir(&staging).unwrap();
    let out = tmp.path().join("out");
    let fill = "echo built > \"$STAGELOCK_STAGE_DIR/artifact\"";
    for layout in ["pairs", "per-dir"] {
        let _ = std::fs::remove_dir_all(&out);
        let run = stage(&staging, layout, &[], &out, fill);
        assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
        assert_eq!(
            std::fs::read_to_string(out.join("artifact")).unwrap(),
            "built\n"
        );
        assert_eq!(
            std::fs::read_dir(&staging).unwrap().count(),
            0,
            "{layout}: stage cleaned up"
        );

        let refill = "echo new > \"$STAGELOCK_STAGE_DIR/artifact\"";
        let again = stage(&staging, layout, &[], &out, refill);
        assert_eq!(again.status.code(), Some(1), "refuses to clobber");
        assert!(stderr(&again).contains("--replace"), "{}", stderr(&again));
        assert_eq!(
            std::fs::read_to_string(out.join("artifact")).unwrap(),
            "built\n"
        );
        let replaced = stage(&staging, layout, &["--replace"], &out, refill);
        assert_eq!(replaced.status.code(), Some(0), "{}", stderr(&replaced));
        assert_eq!(
            std::fs::read_to_string(out.join("artifact")).unwrap(),
            "new\n"
        );

        let failed = stage(
            &staging,
            layout,
            &[],
            &tmp.path().join("never"),
            "touch \"$STAGELOCK_STAGE_DIR/x\"; exit 3",
        );
        assert_eq!(failed.status.code(), Some(3), "the command's status");
        assert!(!tmp.path().join("never").exists());
        assert_eq!(
            std::fs::read_dir(&staging).unwrap().count(),
            0,
            "{layout}: aborted stage removed"
        );
    }
}

#[test]
fn recover_removes_stale_stages_and_reports_held_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let staging = tmp.path().join("staging");
    std::fs::create_dir_all(staging.join("temp-dir-7/inner")).unwrap();
    std::fs::write(staging.join("lock-8"), "").unwrap();
    // A live stage: recover runs inside it, so its own stage is held.
    let script = script(
        "{bin} recover --dry-run {p}; {bin} recover {p}; {bin} recover {p}",
        &staging,
    );
    let run = stage(&staging, "", &[], &tmp.path().join("out"), &script);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let text = String::from_utf8_lossy(&run.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "would remove 7: an orphan resource without a lock file"
    );
    assert_eq!(
        lines[1],
        "would remove 8: an orphan lock file without a resource"
    );
    assert!(
        lines[2].starts_with("skipped ") && lines[2].ends_with(": held by a live builder"),
        "{text}"
    );
    assert_eq!(lines[3], "2 would remove, 1 skipped");
    assert_eq!(
        lines[4],
        "removed 7: an orphan resource without a lock file"
    );
    assert_eq!(
        lines[5],
        "removed 8: an orphan lock file without a resource"
    );
    assert_eq!(lines[7], "2 removed, 1 skipped");
    assert_eq!(lines[9], "0 removed, 1 skipped", "idempotent: {text}");
    assert_eq!(std::fs::read_dir(&staging).unwrap().count(), 0);
    assert!(tmp.path().join("out").is_dir());
}

#[test]
fn stage_checks_its_destination_before_running_the_command() {
    let tmp = tempfile::tempdir().unwrap();
    let staging = tmp.path().join("staging");
    std::fs::create_dir(&staging).unwrap();
    let marker = tmp.path().join("ran");
    let touch = script("touch {p}", &marker);
    let run = stage(&staging, "", &[], &tmp.path().join("no/such/dest"), &touch);
    assert_eq!(run.status.code(), Some(1));
    assert!(stderr(&run).contains("no/such/dest"), "{}", stderr(&run));
    assert!(!marker.exists(), "the command did not run");
    assert_eq!(
        std::fs::read_dir(&staging).unwrap().count(),
        0,
        "no stage was made"
    );
}

/// Runs `stagelock ARGS` in `cwd` (so paths are given relative, as users type them); returns
/// (exit code, stdout, stderr).
fn stagelock_in(cwd: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(bin())
        .current_dir(cwd)
        .args(args)
        .output()
        .expect("run stagelock");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// Entry names of a directory, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn recover_reports_not_a_stage_and_keeps_the_users_file() {
    // Issue 10's reproduction: `staging/1` made by hand, as for `stagelock lock`.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("staging/1")).unwrap();
    std::fs::write(tmp.path().join("staging/1/notes.txt"), "important\n").unwrap();
    let (code, stdout, stderr) =
        stagelock_in(tmp.path(), &["recover", "staging", "--layout", "per-dir"]);
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("staging/1/notes.txt")).unwrap(),
        "important\n"
    );
    assert_eq!(
        names(&tmp.path().join("staging/1")),
        ["notes.txt"],
        "no lock file was made in it"
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stdout,
        "skipped 1: not a stage (it holds more than a lock file and a resource directory)\n\
         0 removed, 1 skipped\n"
    );
}

/// `stagelock stage` refuses a DEST it could not commit to before running the command: the
/// command (which would create `marker`) never runs, no stage is made, and the refusal is one
/// line that starts with the operation and names DEST as given.
#[test]
fn stage_refuses_an_unusable_dest_before_the_command_runs_on_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let at = |rel: &str| tmp.path().join(rel);
    std::fs::create_dir(at("area")).unwrap();
    std::fs::create_dir(at("out1")).unwrap();
    std::fs::write(at("out1/old"), "old").unwrap();
    std::fs::write(at("afile"), "").unwrap();
    let marker = at("marker");
    let build = format!("touch {}; echo BUILDING", s(&marker));
    let cases = [
        (
            "out1",
            "stagelock: commit \"out1\": it already exists (pass --replace to overwrite it)",
        ),
        (
            "nodir/x",
            "stagelock: commit \"nodir/x\": its directory \"nodir\" cannot be used: No such file \
             or directory (os error 2)",
        ),
        (
            "afile/x",
            "stagelock: commit \"afile/x\": its directory \"afile\" cannot be used: Not a \
             directory (os error 20)",
        ),
        (
            "sub/..",
            "stagelock: commit \"sub/..\": it has no final name",
        ),
    ];
    for (dest, message) in cases {
        let (code, stdout, stderr) = stagelock_in(
            tmp.path(),
            &["stage", "area", "--into", dest, "--", "sh", "-c", &build],
        );
        assert!(!marker.exists(), "{dest}: the command ran");
        assert_eq!(stdout, "", "{dest}: the command ran");
        assert_eq!(code, Some(1), "{dest}: {stderr}");
        assert_eq!(stderr, format!("{message}\n"), "{dest}");
        assert!(names(&at("area")).is_empty(), "{dest}: a stage was made");
    }
    assert_eq!(std::fs::read_to_string(at("out1/old")).unwrap(), "old");
    // A missing ROOT is named as given, with the operation first.
    let (code, _, stderr) = stagelock_in(
        tmp.path(),
        &["stage", "nope", "--into", "new", "--", "sh", "-c", &build],
    );
    assert!(!marker.exists());
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr,
        "stagelock: stage \"nope\": No such file or directory (os error 2)\n"
    );
}

/// A DEST on another filesystem than ROOT (here /dev/shm, a tmpfs, against a ROOT in the build
/// directory) is refused before the command runs.
#[test]
fn stage_refuses_a_dest_on_another_filesystem_before_the_command_runs() {
    use std::os::unix::fs::MetadataExt;
    let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let shm = Path::new("/dev/shm");
    let dev = |p: &Path| std::fs::metadata(p).unwrap().dev();
    if !shm.is_dir() || dev(shm) == dev(tmp.path()) {
        eprintln!("skipped: /dev/shm is missing or on the build directory's filesystem");
        return;
    }
    std::fs::create_dir(tmp.path().join("area")).unwrap();
    let marker = tmp.path().join("marker");
    let dest = shm.join(format!("stagelock-test-{}", std::process::id()));
    let build = format!("touch {}", s(&marker));
    let (code, stdout, stderr) = stagelock_in(
        tmp.path(),
        &[
            "stage",
            "area",
            "--into",
            s(&dest),
            "--",
            "sh",
            "-c",
            &build,
        ],
    );
    assert!(!marker.exists(), "the command ran");
    assert_eq!(stdout, "");
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "stagelock: commit \"{}\": it is on another filesystem than the staging area \
             \"area\" (a commit is one rename, which cannot cross filesystems)\n",
            dest.display()
        )
    );
    assert!(!dest.exists());
    assert!(names(&tmp.path().join("area")).is_empty());
}

/// `recover --jobs N` removes the same stale stages and prints the same report, in the same
/// order, as one thread; `--jobs 0` is a usage error.
#[test]
fn recover_with_jobs_reports_the_same_as_one_thread() {
    let tmp = tempfile::tempdir().unwrap();
    let make = |dir: &str| {
        for n in 1..=40 {
            let resource = tmp.path().join(format!("{dir}/temp-dir-{n}"));
            std::fs::create_dir_all(&resource).unwrap();
            std::fs::write(resource.join("f"), "x").unwrap();
            if n % 3 != 0 {
                std::fs::write(tmp.path().join(format!("{dir}/lock-{n}")), "").unwrap();
            }
        }
        std::fs::write(tmp.path().join(format!("{dir}/notes.txt")), "keep").unwrap();
    };
    make("one");
    make("many");
    let (code, one, stderr) = stagelock_in(tmp.path(), &["recover", "one", "--jobs", "1"]);
    assert_eq!(code, Some(0), "{stderr}");
    let (code, many, stderr) = stagelock_in(tmp.path(), &["recover", "many", "-j", "7"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(many, one);
    assert!(one.ends_with("40 removed, 0 skipped\n"), "{one}");
    assert_eq!(names(&tmp.path().join("many")), ["notes.txt"]);
    let (code, _, stderr) = stagelock_in(tmp.path(), &["recover", "many", "--jobs", "0"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--jobs"), "{stderr}");
}
