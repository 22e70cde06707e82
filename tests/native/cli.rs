//! The `stagelock` command: exit codes, messages, inheritance and clean-up.
//!
//! Most cases run `sh`, and expect Unix's messages and holders: on Windows those are left out
//! (their helpers unused), and `windows.rs` checks the command the Windows way.
#![cfg_attr(windows, allow(dead_code, unused_imports))]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use stagelock_tests::{Holder, Taken, names, stagelock_bin, wait_until};

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
#[cfg(unix)] // sh, Unix messages and holders (tests/native/windows.rs has Windows's)
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
#[cfg(unix)] // sh, Unix messages and holders (tests/native/windows.rs has Windows's)
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
#[cfg(unix)] // sh, Unix messages and holders (tests/native/windows.rs has Windows's)
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
#[cfg(unix)] // sh, Unix messages and holders (tests/native/windows.rs has Windows's)
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
#[cfg(unix)] // sh, Unix messages and holders (tests/native/windows.rs has Windows's)
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
#[cfg(unix)] // sh, Unix messages and holders (tests/native/windows.rs has Windows's)
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
#[cfg(unix)] // sh, Unix messages and holders (tests/native/windows.rs has Windows's)
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

/// Issue 32: a command that removed or replaced its own stage's resource fails the commit with
/// exit 1 and one line naming the operation and DEST once; the stage is aborted, so nothing is
/// left in the staging area, DEST is not made, and what a symlink led to is untouched.
#[test]
#[cfg(unix)] // sh, Unix messages and holders (tests/native/windows.rs has Windows's)
fn stage_aborts_when_the_command_removed_or_replaced_its_resource() {
    let tmp = tempfile::tempdir().unwrap();
    let at = |rel: &str| tmp.path().join(rel);
    for dir in ["st", "dst", "elsewhere"] {
        std::fs::create_dir(at(dir)).unwrap();
    }
    std::fs::write(at("elsewhere/keep"), "kept").unwrap();
    let elsewhere = s(&at("elsewhere")).to_owned();
    let cases = [
        (
            "rm -rf \"$STAGELOCK_STAGE_DIR\"".to_owned(),
            "the stage's resource is gone: No such file or directory (os error 2)",
        ),
        (
            "rm -rf \"$STAGELOCK_STAGE_DIR\" && echo x > \"$STAGELOCK_STAGE_DIR\"".to_owned(),
            "the stage's resource is a regular file, not a directory",
        ),
        (
            format!(
                "rm -rf \"$STAGELOCK_STAGE_DIR\" && ln -s {elsewhere} \"$STAGELOCK_STAGE_DIR\""
            ),
            "the stage's resource is a symbolic link leading out of the staging area",
        ),
    ];
    for layout in ["pairs", "per-dir"] {
        for (script, why) in &cases {
            let (code, stdout, stderr) = stagelock_in(
                tmp.path(),
                &[
                    "stage", "st", "--layout", layout, "--into", "dst/x", "--", "sh", "-c", script,
                ],
            );
            assert_eq!(stdout, "", "{layout}: {script}");
            assert_eq!(code, Some(1), "{layout}: {script}: {stderr}");
            assert_eq!(
                stderr,
                format!("stagelock: commit \"dst/x\": {why}; the stage was aborted\n"),
                "{layout}: {script}"
            );
            assert!(
                names(&at("st")).unwrap().is_empty(),
                "{layout}: {script}: stage left"
            );
            assert!(
                names(&at("dst")).unwrap().is_empty(),
                "{layout}: {script}: DEST made"
            );
            assert_eq!(
                names(&at("elsewhere")).unwrap(),
                ["keep"],
                "{layout}: {script}"
            );
        }
    }
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

#[test]
#[cfg(unix)] // sh, Unix messages and holders (tests/native/windows.rs has Windows's)
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
        names(&tmp.path().join("staging/1")).unwrap(),
        ["notes.txt"],
        "no lock file was made in it"
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stdout,
        "skipped 1: not a stage: 1/notes.txt is a regular file, where a stage has nothing but staging.lock and dir\n\
         0 removed, 1 skipped\n"
    );
}

/// `stagelock stage` refuses a DEST it could not commit to before running the command: the
/// command (which would create `marker`) never runs, no stage is made, and the refusal is one
/// line that starts with the operation and names DEST as given.
#[test]
#[cfg(unix)] // sh, Unix messages and holders (tests/native/windows.rs has Windows's)
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
        assert!(
            names(&at("area")).unwrap().is_empty(),
            "{dest}: a stage was made"
        );
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
#[cfg(unix)] // /dev/shm
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
    assert!(names(&tmp.path().join("area")).unwrap().is_empty());
}

/// A command for `stagelock lock -c` that says it runs (creates `go.ready`) and then holds
/// until `go` exists, and that marker. The marker, not the lock file, says the lock is held:
/// the file exists a moment before it is locked, and a busy machine can stretch that moment.
fn hold_until(go: &Path) -> (String, PathBuf) {
    let ready = go.with_extension("ready");
    let hold = format!(
        "touch '{}'; while ! test -e '{}'; do sleep 0.01; done",
        s(&ready),
        s(go)
    );
    (hold, ready)
}

/// Starts `stagelock ARGS` in the background, output captured.
fn spawn(args: &[&str]) -> std::process::Child {
    Command::new(bin())
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start stagelock")
}

/// Asserts `waiter` is still waiting (has not exited) a while after it started.
fn still_waiting(waiter: &mut std::process::Child) {
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        waiter.try_wait().unwrap().is_none(),
        "the waiter gave up or took a held lock"
    );
}

/// A Python process holding a POSIX lock on `path` until its stdin closes, then exiting
/// without unlocking or deleting (a crash, as far as the lock is concerned).
fn python_holder_that_exits(path: &Path) -> Holder {
    let mut command = Command::new("python3");
    command.arg("-c").arg(
        "import fcntl, sys\n\
         f = open(sys.argv[1], 'a')\n\
         fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\n\
         print('held', flush=True)\n\
         sys.stdin.read()\n\
         print('released', flush=True)\n\
         import os; os._exit(0)",
    );
    command.arg(path);
    let (holder, taken) = Holder::start(command).unwrap();
    assert_eq!(taken, Taken::Held(String::new()));
    holder
}

#[test]
#[cfg(unix)] // sh, Unix messages and holders (tests/native/windows.rs has Windows's)
fn lock_waits_for_an_unlock_and_delete() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("w.lock");
    let go = tmp.path().join("go");
    // The holder unlocks-and-deletes when `go` appears; the waiter then locks the new file.
    let (hold, ready) = hold_until(&go);
    let mut holder = spawn(&["lock", s(&path), "-c", &hold]);
    wait_until("the holder holds", || ready.exists());
    let mut waiter = spawn(&["lock", "-w", "60", s(&path), "--", "true"]);
    still_waiting(&mut waiter);
    std::fs::write(&go, "").unwrap();
    assert_eq!(holder.wait().unwrap().code(), Some(0));
    let out = waiter.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!path.exists(), "the waiter deleted it in turn");
}

#[test]
#[cfg(unix)] // sh, Unix messages and holders (tests/native/windows.rs has Windows's)
fn lock_waits_for_a_holder_that_exits_and_one_that_unlocks_keeping_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("w.lock");
    // Exit without unlocking: the file stays, unlocked.
    let holder = python_holder_that_exits(&path);
    let mut waiter = spawn(&["lock", "--wait", s(&path), "--", "true"]);
    still_waiting(&mut waiter);
    holder.release().unwrap();
    let out = waiter.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // containers/storage's Unlock (Python's LOCK_UN): the holder lives on, the file stays.
    let (holder, taken) = Holder::containers_storage(&path).unwrap();
    assert_eq!(taken, Taken::Held(String::new()));
    let mut waiter = spawn(&["lock", "--wait=60", s(&path), "-c", "exit 0"]);
    still_waiting(&mut waiter);
    holder.release().unwrap();
    let out = waiter.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
#[cfg(unix)] // sh, Unix messages and holders (tests/native/windows.rs has Windows's)
fn lock_gives_up_after_its_timeout_with_the_conflict_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("t.lock");
    let (holder, taken) = Holder::containers_storage(&path).unwrap();
    assert_eq!(taken, Taken::Held(String::new()));
    let out = stagelock(&["lock", "-w", "0.2", s(&path), "--", "true"]);
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "stagelock: lock-path {:?}: still held by another lock holder after waiting 200ms\n",
            s(&path)
        )
    );
    for args in [
        &["lock", "-E", "9", s(&path), "--", "true"][..],
        &[
            "lock",
            "-E",
            "9",
            "--timeout",
            "0.05",
            s(&path),
            "--",
            "true",
        ],
        &["try", "-E", "9", s(&path)],
    ] {
        let out = stagelock(args);
        assert_eq!(out.status.code(), Some(9), "{args:?}: {}", stderr(&out));
    }
    holder.release().unwrap();
    // Free now: a command's own 75 comes through, distinguishable from busy with -E.
    let out = stagelock(&["lock", "-E", "9", s(&path), "-c", "exit 75"]);
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
}

#[test]
fn lock_wait_values_are_checked() {
    for bad in ["-1", "abc", "nan", ""] {
        let out = stagelock(&["lock", "-w", bad, "/tmp/x.lock", "--", "true"]);
        assert_eq!(out.status.code(), Some(2), "-w {bad:?}");
    }
    // -c and a CMD together are a usage error; so is neither.
    let out = stagelock(&["lock", "/tmp/x.lock", "-c", "true", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    let out = stagelock(&["lock", "/tmp/x.lock"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
#[cfg(unix)] // sh, Unix messages and holders (tests/native/windows.rs has Windows's)
fn dash_c_runs_the_command_through_sh() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("c.lock");
    let out = stagelock(&["lock", s(&path), "-c", "echo a; echo b >&2; exit 3"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "a\n");
    assert_eq!(stderr(&out), "b\n");
    let out = stagelock(&[
        "create",
        s(tmp.path()),
        "x-",
        "-c",
        "test -f \"$STAGELOCK_PATH\"",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
#[cfg(unix)] // sh, Unix messages and holders (tests/native/windows.rs has Windows's)
fn status_names_the_holders_without_disturbing_them() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("s.lock");
    // Missing: reported free, and not created.
    let out = stagelock(&["status", s(&path)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("free: {} (no such file)\n", s(&path))
    );
    assert!(!path.exists(), "status created the file");
    // An OFD holder (stagelock) and the command that inherited its lock.
    let go = tmp.path().join("go");
    let (hold, ready) = hold_until(&go);
    let mut holder = spawn(&["lock", s(&path), "-c", &hold]);
    wait_until("the holder holds", || ready.exists());
    let out = stagelock(&["status", "--json", s(&path)]);
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    let json = String::from_utf8_lossy(&out.stdout);
    assert!(json.contains("\"state\":\"held\""), "{json}");
    assert!(
        json.contains(&format!("\"kind\":\"ofd\",\"pid\":{}", holder.id())),
        "{json}"
    );
    let out = stagelock(&["status", "-E", "4", s(&path)]);
    assert_eq!(out.status.code(), Some(4));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("  pid {} (ofd lock): ", holder.id())) && text.contains(" lock "),
        "{text}"
    );
    // Still held: looking did not take or drop the lock.
    assert_eq!(stagelock(&["try", s(&path)]).status.code(), Some(75));
    std::fs::write(&go, "").unwrap();
    assert_eq!(holder.wait().unwrap().code(), Some(0));
    // A classic POSIX holder (containers/storage's kind), by PID and command line.
    let (posix, taken) = Holder::containers_storage(&path).unwrap();
    assert_eq!(taken, Taken::Held(String::new()));
    let out = stagelock(&["status", s(&path)]);
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("  pid {} (posix lock): ", posix.pid())) && text.contains("python3"),
        "{text}"
    );
    // The holder's lock survived being looked at: it is still held for others...
    assert_eq!(stagelock(&["try", s(&path)]).status.code(), Some(75));
    posix.release().unwrap();
    // ...and once released, the file is there, free.
    let out = stagelock(&["status", "--json", s(&path)]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "{{\"holders\":[],\"path\":{:?},\"state\":\"free\"}}\n",
            s(&path)
        )
    );
}

#[test]
fn status_errors_are_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let out = stagelock(&["status", s(tmp.path())]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not a regular file"),
        "{}",
        stderr(&out)
    );
    let out = stagelock(&["status", s(&tmp.path().join("no/x.lock"))]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("no/x.lock"), "{}", stderr(&out));
}

#[test]
#[cfg(unix)] // sh, Unix messages and holders (tests/native/windows.rs has Windows's)
fn recover_json_and_quiet() {
    let tmp = tempfile::tempdir().unwrap();
    let staging = tmp.path().join("staging");
    std::fs::create_dir_all(staging.join("temp-dir-7/inner")).unwrap();
    std::fs::write(staging.join("lock-8"), "").unwrap();
    std::fs::write(staging.join("lock-9"), "").unwrap();
    std::fs::create_dir(staging.join("temp-dir-9")).unwrap();
    let (holder, taken) = Holder::containers_storage(&staging.join("lock-9")).unwrap();
    assert_eq!(taken, Taken::Held(String::new()));
    let out = stagelock(&["recover", "--json", "--dry-run", s(&staging)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let at = |p: &str| format!("{:?}", s(&staging.join(p)));
    let expected = format!(
        "{{\"dry_run\":true,\"removed\":[\
         {{\"id\":\"7\",\"lock\":null,\"reason\":\"an orphan resource without a lock file\",\"resource\":{}}},\
         {{\"id\":\"8\",\"lock\":{},\"reason\":\"an orphan lock file without a resource\",\"resource\":null}}],\
         \"root\":{:?},\
         \"skipped\":[{{\"failed\":false,\"id\":\"9\",\"lock\":{},\"reason\":\"held by a live builder\",\"resource\":{}}}]}}\n",
        at("temp-dir-7"),
        at("lock-8"),
        s(&staging),
        at("lock-9"),
        at("temp-dir-9"),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
    let out = stagelock(&["recover", "--quiet", s(&staging)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    assert_eq!(stderr(&out), "");
    assert!(!staging.join("lock-8").exists() && !staging.join("temp-dir-7").exists());
    assert!(staging.join("temp-dir-9").exists(), "the held stage stays");
    holder.release().unwrap();
}

#[test]
fn completions_and_man_page() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = stagelock(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", stderr(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("stagelock") && text.contains("conflict-exit-code"),
            "{shell}"
        );
    }
    assert_eq!(stagelock(&["completions", "tcsh"]).status.code(), Some(2));
    let out = stagelock(&["man"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.contains(".TH stagelock 1"), "{page}");
    let out = stagelock(&["man", "lock"]);
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(
        page.contains(".TH stagelock-lock 1") && page.contains("conflict"),
        "{page}"
    );
    let out = stagelock(&["man", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "stagelock: man \"nope\": no such command (see `stagelock --help`)\n"
    );
}

#[test]
#[cfg(unix)] // sh, Unix messages and holders (tests/native/windows.rs has Windows's)
fn stage_runs_dash_c_and_exits_its_conflict_code_when_dest_exists() {
    let tmp = tempfile::tempdir().unwrap();
    let staging = tmp.path().join("staging");
    std::fs::create_dir(&staging).unwrap();
    let out_dir = tmp.path().join("out");
    let args = |code: &'static str| {
        vec![
            "stage".to_owned(),
            s(&staging).to_owned(),
            "--into".to_owned(),
            s(&out_dir).to_owned(),
            "-E".to_owned(),
            code.to_owned(),
            "-c".to_owned(),
            "echo built > \"$STAGELOCK_STAGE_DIR/f\"".to_owned(),
        ]
    };
    let run = |a: Vec<String>| Command::new(bin()).args(a).output().expect("run stagelock");
    let out = run(args("4"));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(out_dir.join("f")).unwrap(),
        "built\n"
    );
    // Someone else made DEST: the conflict code, one line naming it.
    let out = run(args("4"));
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1);
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    // Made while the command ran: the same code at commit time.
    let mut a = args("5");
    a.pop();
    a.push(format!("mkdir {:?}", s(&out_dir.join("late"))));
    a[3] = s(&out_dir.join("late")).to_owned();
    let out = run(a);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert_eq!(std::fs::read_dir(&staging).unwrap().count(), 0, "aborted");
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
    assert_eq!(names(&tmp.path().join("many")).unwrap(), ["notes.txt"]);
    let (code, _, stderr) = stagelock_in(tmp.path(), &["recover", "many", "--jobs", "0"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--jobs"), "{stderr}");
}

#[test]
fn doctor_says_how_far_locks_reach_on_the_filesystem_and_exits_by_it() {
    let tmp = tempfile::tempdir().unwrap();
    let out = stagelock(&["doctor", "--json", s(tmp.path())]);
    let report = String::from_utf8(out.stdout.clone()).unwrap();
    if cfg!(target_os = "linux") {
        // The scratch directory is on a local kernel filesystem here (ext4 or tmpfs), or, in
        // the filesystem matrix, on XFS, Btrfs or overlayfs: all local.
        assert!(report.contains(r#""locks":"local""#), "{report}");
        assert!(report.contains(r#""exclusion":"assured""#), "{report}");
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let mount_point = report
            .split(r#""mount_point":""#)
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("no mount_point in {report}"));
        assert!(tmp.path().starts_with(mount_point), "{report}");
    } else {
        // Where the platform lists no mount table (Windows), nothing is known: exit 3.
        assert!(report.contains(r#""locks":"unknown""#), "{report}");
        assert!(
            report.contains(r#""reason":"this platform lists no mount table""#),
            "{report}"
        );
        assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    }
    let text = stagelock(&["doctor", s(tmp.path())]);
    let text = String::from_utf8(text.stdout).unwrap();
    for line in [
        "filesystem:",
        "locks:",
        "exclusion:",
        "link counts:",
        "durability:",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }

    let missing = tmp.path().join("missing");
    let out = stagelock(&["doctor", s(&missing)]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("doctor") && err.contains(s(&missing)), "{err}");
}
