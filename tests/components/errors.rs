//! The error-case table: for each function of `locks` and `staging`, each failing situation,
//! the one `error-code` case a guest gets and the native `ErrorKind`. Every row runs natively
//! and from a component built against the released 1.0.0 (`errors_table`, raw bindings) in a
//! sync and in an async store, each time in a fresh sandbox, and must give exactly its case;
//! nothing outside the grant may change. SECURITY.md's "The error-case table" is this table,
//! rendered (`STAGELOCK_BLESS=1` writes it there).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use stagelock::{CommitOptions, Durability, Layout, StagingArea, StagingLock, Wait};
use stagelock_tests::guests::*;
use stagelock_tests::{Entry, GuestRun, Scratch, assert_test_exists, foreach_errors, tree};
use wasmtime_wasi::FsPerms;

foreach_errors!(assert_test_exists);

/// One row: what the guest runs (`OP|ARG|...`, see `tests/guests/src/bin/errors_table.rs`), the
/// WIT function and the situation as the docs name them, the native `ErrorKind` (`Ok`, or `-`
/// where the situation has no native counterpart), and the guest's case.
struct Row {
    op: &'static str,
    function: &'static str,
    situation: &'static str,
    native: &'static str,
    wit: &'static str,
}

const fn row(
    op: &'static str,
    function: &'static str,
    situation: &'static str,
    native: &'static str,
    wit: &'static str,
) -> Row {
    Row {
        op,
        function,
        situation,
        native,
        wit,
    }
}

/// The table. A function's rows are the situations its docs in `wit/locks.wit` and
/// `wit/staging.wit` list, in their order.
#[rustfmt::skip] // one row per line, as in the table it renders
const ROWS: &[Row] = &[
    // try-lock-path (and create-and-lock, request-lock, where they share a situation)
    row("try|work|../x.lock", "try-lock-path", "`..` climbing out", "PermissionDenied", "not-permitted"),
    row("try|work|/abs/x.lock", "try-lock-path", "an absolute path", "PermissionDenied", "not-permitted"),
    row("try|work|mid-out/x.lock", "try-lock-path", "a symbolic link leading out on the way", "PermissionDenied", "not-permitted"),
    row("try|work|final-out", "try-lock-path", "a final symbolic link leading out", "NotAFile", "not-a-file"),
    row("try|work|file-link", "try-lock-path", "a final symbolic link inside", "NotAFile", "not-a-file"),
    row("try|work|mid-out/", "try-lock-path", "a final symbolic link with a trailing slash (leading out)", "NotAFile", "not-a-file"),
    row("try|work|dir-link/", "try-lock-path", "a final symbolic link with a trailing slash (inside)", "NotAFile", "not-a-file"),
    row("try|work|loop1/x.lock", "try-lock-path", "a symbolic link loop on the way", "NotAFile", "not-a-file"),
    row("try|work|nope/x.lock", "try-lock-path", "a missing parent directory", "NotFound", "no-entry"),
    row("try|work|file/x.lock", "try-lock-path", "a regular file on the way", "NotFound", "no-entry"),
    row("try|work|d", "try-lock-path", "a directory", "NotAFile", "not-a-file"),
    row("try|work|fifo", "try-lock-path", "a FIFO", "NotAFile", "not-a-file"),
    row("try|work|sock", "try-lock-path", "a socket", "NotAFile", "not-a-file"),
    row("try|work|", "try-lock-path", "an empty path", "InvalidInput", "invalid"),
    row("held|h.lock", "try-lock-path", "held by someone else", "WouldBlock", "would-block"),
    row("try|ro|x.lock", "try-lock-path", "a read-only grant", "-", "read-only"),
    row("try|fd|x.lock", "try-lock-path", "a file's descriptor as the directory", "-", "not-directory"),
    row("cap|try", "try-lock-path", "the host's cap on held locks", "-", "limit-reached"),
    row("create|work|a/b*", "create-and-lock", "a pattern with a `/`", "InvalidInput", "invalid"),
    row("create|ro|x-*", "create-and-lock", "a read-only grant", "-", "read-only"),
    row("create|fd|x-*", "create-and-lock", "a file's descriptor as the directory", "-", "not-directory"),
    row("cap|create", "create-and-lock", "the host's cap on held locks", "-", "limit-reached"),
    row("request|work|held.lock", "request-lock, get", "held past the timeout", "WouldBlock", "at-get would-block"),
    row("request|work|mid-out/x.lock", "request-lock, get", "a symbolic link leading out on the way", "PermissionDenied", "at-get not-permitted"),
    row("request|work|d", "request-lock, get", "a directory", "NotAFile", "at-get not-a-file"),
    row("request|work|nope/x.lock", "request-lock, get", "a missing parent directory", "NotFound", "at-get no-entry"),
    row("request|ro|x.lock", "request-lock, get", "a read-only grant", "-", "at-request read-only"),
    row("request|fd|x.lock", "request-lock, get", "a file's descriptor as the directory", "-", "at-request not-directory"),
    row("cap|request", "request-lock, get", "the host's cap on held locks", "-", "limit-reached"),
    row("unlock|deleted", "unlock-and-delete", "its file deleted by someone else", "Ok", "ok"),
    // staging
    row("area|ro", "staging-area.open", "a read-only grant", "-", "read-only"),
    row("area|fd", "staging-area.open", "a file's descriptor as the root", "-", "not-directory"),
    row("stage|root-gone", "staging-area.stage", "the area's root removed", "NotFound", "no-entry"),
    row("cap|stage", "staging-area.stage", "the host's cap on held locks", "-", "limit-reached"),
    row("dir|vanished", "stage.dir", "the resource removed by its owner", "-", "ok"),
    row("exhaust|create", "create-and-lock", "the host out of file descriptors", "LimitReached", "limit-reached"),
    row("exhaust|try", "try-lock-path", "the host out of file descriptors", "LimitReached", "limit-reached"),
    row("exhaust|stage", "staging-area.stage", "the host out of file descriptors", "LimitReached", "limit-reached"),
    row("exhaust|dir", "stage.dir", "the host out of file descriptors", "-", "limit-reached"),
    row("exhaust|recover", "staging-area.recover-stale", "the host out of file descriptors", "LimitReached", "limit-reached"),
    row("exhaust|commit", "stage.commit", "the host out of file descriptors", "LimitReached", "limit-reached +back"),
    row("commit|work|exists|keep|none", "stage.commit", "an existing destination", "AlreadyExists", "exist +back"),
    row("commit|work|dest-link|keep|none", "stage.commit", "a symbolic link as the destination", "AlreadyExists", "exist +back"),
    row("commit|work|dest-link|replace|none", "stage.commit", "a symbolic link as the destination, replacing (the link is replaced)", "Ok", "ok"),
    row("commit|work|nope/x|keep|none", "stage.commit", "a missing parent directory", "NotFound", "no-entry +back"),
    row("commit|work|../x|keep|none", "stage.commit", "`..` climbing out", "PermissionDenied", "not-permitted +back"),
    row("commit|work|mid-out/x|keep|none", "stage.commit", "a symbolic link leading out on the way", "PermissionDenied", "not-permitted +back"),
    row("commit|work|loop1/x|keep|none", "stage.commit", "a symbolic link loop on the way", "NotAFile", "not-a-file +back"),
    row("commit|work||keep|none", "stage.commit", "an empty destination", "InvalidInput", "invalid +back"),
    row("commit|work|.|keep|none", "stage.commit", "a destination without a final name (`.`)", "InvalidInput", "invalid +back"),
    row("commit|work|exists/|keep|none", "stage.commit", "an existing destination, with a trailing slash", "AlreadyExists", "exist +back"),
    row("commit|work|new/|keep|none", "stage.commit", "a new destination, with a trailing slash", "Ok", "ok"),
    row("commit|ro|x|keep|none", "stage.commit", "a read-only grant as the destination's directory", "-", "read-only +back"),
    row("commit|fd|x|keep|none", "stage.commit", "a file's descriptor as the destination's directory", "-", "not-directory +back"),
    row("commit|shm|x|keep|none", "stage.commit", "another filesystem", "CrossDevice", "cross-device +back"),
    row("commit|work|x|keep|lost", "stage.commit", "the lock lost (its file deleted)", "LockLost", "lock-lost"),
    row("commit|work|x|keep|vanished", "stage.commit", "the resource removed by its owner", "NotFound", "no-entry +back"),
    row("commit|work|x|keep|file", "stage.commit", "the resource replaced by a file", "NotAFile", "not-a-file +back"),
    row("commit|work|x|keep|symlink-out", "stage.commit", "the resource replaced by a symbolic link leading out", "PermissionDenied", "not-permitted +back"),
    row("recover|root-gone", "staging-area.recover-stale", "the area's root removed (nothing to recover)", "Ok", "ok"),
    row("abort|vanished", "stage.abort", "the resource removed by its owner", "Ok", "ok"),
    row("abort|lost", "stage.abort", "the lock lost (its file deleted)", "Ok", "ok"),
];

/// `outer/granted` (granted read-write), `outer/ro` (read-only), `outer/outside` (what must
/// never change), and a directory on another filesystem (`/dev/shm`).
struct Sandbox {
    outer: Scratch,
    shm: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Result<Sandbox> {
        let outer = Scratch::new()?;
        let d = outer.dir();
        for dir in [
            "granted/d",
            "granted/area",
            "granted/exists",
            "ro",
            "outside/sub",
        ] {
            d.create_dir_all(dir)?;
        }
        d.write("outside/secret", "keep")?;
        d.write("granted/file", "")?;
        let g = outer.join("granted");
        let sym = |target: &str, link: &str| std::os::unix::fs::symlink(target, g.join(link));
        sym("../outside/secret", "final-out")?;
        sym("../outside", "mid-out")?;
        sym("file", "file-link")?;
        sym("d", "dir-link")?;
        sym("loop2", "loop1")?;
        sym("loop1", "loop2")?;
        sym("../outside/secret", "dest-link")?;
        stagelock_tests::mkfifo(&g.join("fifo"))?;
        drop(std::os::unix::net::UnixListener::bind(g.join("sock"))?);
        let shm = tempfile::tempdir_in("/dev/shm").context("a directory on tmpfs")?;
        Ok(Sandbox { outer, shm })
    }

    fn granted(&self) -> PathBuf {
        self.outer.join("granted")
    }

    fn outside(&self) -> BTreeMap<PathBuf, Entry> {
        tree(&self.outer.join("outside")).unwrap()
    }
}

/// What a native call gave, in the table's words.
fn native_outcome<T>(result: Result<T, stagelock::Error>) -> String {
    match result {
        Ok(_) => "Ok".to_owned(),
        Err(e) => format!("{:?}", e.kind()),
    }
}

/// Runs `op` natively in `sb`; `None` where the situation has no native counterpart.
fn run_native(sb: &Sandbox, op: &str) -> Result<Option<String>> {
    let granted = sb.outer.dir().open_dir("granted")?;
    let dir = |which: &str| -> Result<Option<cap_std::fs::Dir>> {
        Ok(match which {
            "work" => Some(granted.try_clone()?),
            "shm" => Some(cap_std::fs::Dir::open_ambient_dir(
                sb.shm.path(),
                cap_std::ambient_authority(),
            )?),
            _ => None, // read-only grants, file descriptors: a guest's situations only
        })
    };
    let fields: Vec<&str> = op.split('|').collect();
    Ok(Some(match fields[..] {
        ["try", which, path] => {
            let Some(d) = dir(which)? else {
                return Ok(None);
            };
            native_outcome(StagingLock::try_lock_path(&d, path).map(|l| l.unlock_and_delete()))
        }
        ["create", which, pattern] => {
            let Some(d) = dir(which)? else {
                return Ok(None);
            };
            native_outcome(
                StagingLock::create_and_lock(&d, pattern).map(|(l, _)| l.unlock_and_delete()),
            )
        }
        ["request", which, path] => {
            let Some(d) = dir(which)? else {
                return Ok(None);
            };
            let _held = (path == "held.lock")
                .then(|| StagingLock::try_lock_path(&granted, "held.lock"))
                .transpose()?;
            native_outcome(
                StagingLock::lock_path(&d, path, Wait::For(Duration::ZERO))
                    .map(|l| l.unlock_and_delete()),
            )
        }
        ["held", path] => {
            let first = StagingLock::try_lock_path(&granted, path)?;
            let second = native_outcome(StagingLock::try_lock_path(&granted, path));
            first.unlock_and_delete()?;
            second
        }
        ["cap", _] | ["dir", _] | ["area", _] => return Ok(None),
        ["exhaust", what] => {
            let area = StagingArea::with_layout(&granted, Layout::Pairs)?;
            let stage = (what == "commit").then(|| area.stage()).transpose()?;
            let mut fill = Vec::new();
            let failure = loop {
                match StagingLock::create_and_lock(&granted, "fill-") {
                    Ok((lock, _)) => fill.push(lock),
                    Err(e) => break format!("{:?}", e.kind()),
                }
            };
            let out = match what {
                "create" => failure,
                "try" => native_outcome(StagingLock::try_lock_path(&granted, "t.lock")),
                "stage" => native_outcome(area.stage().map(|s| s.abort())),
                "recover" => native_outcome(area.recover_stale()),
                "commit" => match stage.map(|s| s.commit(&granted, "c")) {
                    Some(Ok(())) => "Ok".to_owned(),
                    Some(Err(failed)) => {
                        let kind = failed.error.kind();
                        drop(fill);
                        match failed.stage {
                            Some(stage) => {
                                stage.abort()?;
                                return Ok(Some(format!("{kind:?} +back")));
                            }
                            None => return Ok(Some(format!("{kind:?}"))),
                        }
                    }
                    None => unreachable!(),
                },
                _ => "-".to_owned(),
            };
            drop(fill);
            out
        }
        ["recover", "root-gone"] => {
            granted.create_dir("gone")?;
            let area = StagingArea::new(&granted.open_dir("gone")?)?;
            granted.remove_dir("gone")?;
            native_outcome(area.recover_stale())
        }
        ["unlock", "deleted"] => {
            let lock = StagingLock::try_lock_path(&granted, "u.lock")?;
            granted.remove_file("u.lock")?;
            native_outcome(lock.unlock_and_delete())
        }
        ["stage", "root-gone"] => {
            granted.create_dir("gone")?;
            let area = StagingArea::new(&granted.open_dir("gone")?)?;
            granted.remove_dir("gone")?;
            native_outcome(area.stage().map(|s| s.abort()))
        }
        ["abort", mishap] => {
            let (stage, _area) = native_stage(&granted, mishap)?;
            native_outcome(stage.abort())
        }
        ["commit", which, dest, replace, mishap] => {
            let Some(d) = dir(which)? else {
                return Ok(None);
            };
            let (stage, _area) = native_stage(&granted, mishap)?;
            let options = CommitOptions::new()
                .replace(replace == "replace")
                .durability(Durability::None);
            match stage.commit_with(&d, dest, options) {
                Ok(()) => "Ok".to_owned(),
                Err(failed) => {
                    let kind = failed.error.kind();
                    match failed.stage {
                        Some(stage) => {
                            stage.abort()?;
                            format!("{kind:?} +back")
                        }
                        None => format!("{kind:?}"),
                    }
                }
            }
        }
        _ => anyhow::bail!("not a row: {op}"),
    }))
}

/// A stage in `area/` of `granted`, with `mishap` done to it by its owner.
fn native_stage(
    granted: &cap_std::fs::Dir,
    mishap: &str,
) -> Result<(stagelock::Stage, StagingArea)> {
    let area = StagingArea::with_layout(&granted.open_dir("area")?, Layout::Pairs)?;
    let stage = area.stage()?;
    let resource = Path::new("area").join(stage.path());
    match mishap {
        "none" => {}
        "vanished" => granted.remove_dir(&resource)?,
        "file" => {
            granted.remove_dir(&resource)?;
            granted.write(&resource, "")?;
        }
        "symlink-out" => {
            granted.remove_dir(&resource)?;
            granted.symlink("../../outside", &resource)?;
        }
        "lost" => granted.remove_file(format!("area/lock-{}", stage.id()))?,
        other => anyhow::bail!("mishap {other}"),
    }
    Ok((stage, area))
}

/// The rows `select` picks, run by a guest in a sandbox of its own, in a sync or an async
/// store, before `setup` (given the sandbox) lowers what it must; the guest's lines, and
/// whether nothing outside the grant changed.
fn run_guest_rows(
    rows: &[&Row],
    store: &str,
    runtime: &tokio::runtime::Runtime,
    max_held: usize,
    setup: impl FnOnce(),
) -> Result<(Vec<String>, bool)> {
    let sb = Sandbox::new()?;
    let before = sb.outside();
    let _held = StagingLock::try_lock_path(&sb.outer.dir().open_dir("granted")?, "held.lock")?;
    let ops: Vec<&str> = rows.iter().map(|r| r.op).collect();
    let run = GuestRun::new(&ops)
        .work(&sb.granted())
        .grant(&sb.outer.join("ro"), "/ro", FsPerms::ReadOnly)
        .grant(sb.shm.path(), "/shm", FsPerms::ReadWrite)
        .max_held(max_held);
    setup();
    let done = match store {
        "sync" => run.run(ERRORS_TABLE),
        _ => runtime.block_on(run.run_async(ERRORS_TABLE)),
    };
    eprint!("{}", done.stderr);
    ensure!(
        done.outcome.is_ok(),
        "{store}: {:?}\n{}",
        done.outcome,
        done.stdout
    );
    Ok((
        done.stdout.lines().map(str::to_owned).collect(),
        sb.outside() == before,
    ))
}

/// What `row` must give natively: its kind, handed back as the guest's is.
fn native_expected(row: &Row) -> String {
    match row.native {
        "-" => "-".to_owned(),
        kind if row.wit.ends_with(" +back") => format!("{kind} +back"),
        kind => kind.to_owned(),
    }
}

/// Checks `rows` natively (each in a fresh sandbox, after `setup`) and from a 1.0.0 guest in
/// both kinds of store; the rows that differ.
fn check_rows(rows: &[&Row], max_held: usize, setup: impl Fn()) -> Result<Vec<String>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    // Compiled (or read from the cache) before `setup` may take the descriptors it needs.
    drop(stagelock_tests::component(ERRORS_TABLE));
    let mut wrong = Vec::new();
    for store in ["sync", "async"] {
        let (lines, untouched) = run_guest_rows(rows, store, &runtime, max_held, &setup)?;
        ensure!(untouched, "{store}: something outside the grant changed");
        ensure!(lines.len() == rows.len(), "{store}: {lines:?}");
        for (row, line) in rows.iter().zip(&lines) {
            if line != row.wit {
                wrong.push(format!("{store} {}: {line}, expected {}", row.op, row.wit));
            }
        }
    }
    for row in rows {
        let sb = Sandbox::new()?;
        let before = sb.outside();
        setup();
        let got = run_native(&sb, row.op)?.unwrap_or_else(|| "-".to_owned());
        ensure!(sb.outside() == before, "native {}: outside changed", row.op);
        if got != native_expected(row) {
            wrong.push(format!(
                "native {}: {got}, expected {}",
                row.op,
                native_expected(row)
            ));
        }
    }
    Ok(wrong)
}

/// Every row but those that need the host out of descriptors, natively and from a 1.0.0 guest
/// in both kinds of store (a cap of 2 held locks): exactly its case.
#[test]
fn errors_table() -> Result<()> {
    let rows: Vec<&Row> = ROWS
        .iter()
        .filter(|r| !r.op.starts_with("exhaust|"))
        .collect();
    let wrong = check_rows(&rows, 2, || {})?;
    ensure!(wrong.is_empty(), "rows that differ:\n{}", wrong.join("\n"));
    Ok(())
}

/// The rows where the host is out of file descriptors, in a process of their own whose
/// `RLIMIT_NOFILE` is lowered to what it has open plus a few: exactly their case.
#[test]
fn errors_table_out_of_descriptors() -> Result<()> {
    if !stagelock_tests::in_own_process("errors::errors_table_out_of_descriptors") {
        return Ok(());
    }
    let rows: Vec<&Row> = ROWS
        .iter()
        .filter(|r| r.op.starts_with("exhaust|"))
        .collect();
    let lower = || {
        let open = std::fs::read_dir("/proc/self/fd").map_or(64, |d| d.count()) as u64;
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        rustix::process::setrlimit(
            rustix::process::Resource::Nofile,
            rustix::process::Rlimit {
                current: Some(open + 24),
                maximum: limit.maximum,
            },
        )
        .expect("lower RLIMIT_NOFILE");
    };
    let wrong = check_rows(&rows, 1024, lower)?;
    ensure!(wrong.is_empty(), "rows that differ:\n{}", wrong.join("\n"));
    Ok(())
}

/// The table as SECURITY.md shows it: one line per row, the guest's case with where it comes
/// (`request-lock` or `get`) and whether the stage is handed back, the native kind.
fn rendered() -> String {
    let mut out = String::from(
        "| function | situation | guest `error-code` | native `ErrorKind` |\n|---|---|---|---|\n",
    );
    for row in ROWS {
        let mut wit = row.wit.to_owned();
        if let Some(rest) = wit.strip_prefix("at-request ") {
            wit = format!("`{rest}` from `request-lock`");
        } else if let Some(rest) = wit.strip_prefix("at-get ") {
            wit = format!("`{rest}` from `get`");
        } else if let Some(rest) = wit.strip_suffix(" +back") {
            wit = format!("`{rest}`, the stage handed back");
        } else {
            wit = format!("`{wit}`");
        }
        let native = match row.native {
            "-" => "(none natively)".to_owned(),
            kind => format!("`{kind}`"),
        };
        out.push_str(&format!(
            "| `{}` | {} | {wit} | {native} |\n",
            row.function, row.situation
        ));
    }
    out
}

/// The first `code` span of a table cell, if any.
fn first_code(cell: &str) -> Option<&str> {
    let (_, rest) = cell.split_once('`')?;
    Some(rest.split_once('`')?.0)
}

/// SECURITY.md's hostile-input table agrees with this table: wherever a row of it gives a
/// native kind and a guest case, this table gives that kind the same case.
fn check_hostile_table(security: &str) -> Result<()> {
    let mut cases: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for row in ROWS.iter().filter(|r| r.native != "-") {
        let wit = row
            .wit
            .trim_start_matches("at-get ")
            .trim_end_matches(" +back");
        cases.entry(row.native).or_default().push(wit);
    }
    let section = security
        .split("## The hostile-input table")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .context("SECURITY.md lacks its hostile-input table")?;
    let mut checked = 0;
    for line in section.lines().filter(|l| l.starts_with("| ")) {
        let cells: Vec<&str> = line.split(" | ").collect();
        let (Some(native), Some(guest)) = (
            cells.get(2).and_then(|c| first_code(c)),
            cells.get(3).and_then(|c| first_code(c)),
        ) else {
            continue;
        };
        if let Some(known) = cases.get(native) {
            ensure!(
                known.contains(&guest),
                "SECURITY.md's hostile-input table gives `{native}` the case `{guest}`, the \
                 error-case table {known:?}: {line}"
            );
            checked += 1;
        }
    }
    ensure!(
        checked >= 8,
        "only {checked} rows of the hostile-input table checked"
    );
    Ok(())
}

/// SECURITY.md's error-case table is this file's table; `STAGELOCK_BLESS=1` writes it there.
#[test]
fn security_md_shows_this_table() -> Result<()> {
    const START: &str = "<!-- errors::ROWS: generated by tests/components/errors.rs -->\n";
    const END: &str = "<!-- end of errors::ROWS -->";
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../SECURITY.md");
    let text = std::fs::read_to_string(&path)?;
    let start = text
        .find(START)
        .context("SECURITY.md lacks the table's start marker")?
        + START.len();
    let end = start
        + text[start..]
            .find(END)
            .context("SECURITY.md lacks the end marker")?;
    check_hostile_table(&text)?;
    let table = rendered();
    if text[start..end] != table {
        if std::env::var_os("STAGELOCK_BLESS").is_some() {
            std::fs::write(&path, format!("{}{table}{}", &text[..start], &text[end..]))?;
        } else {
            anyhow::bail!(
                "SECURITY.md's error-case table differs from tests/components/errors.rs: \
                 run with STAGELOCK_BLESS=1 to write it"
            );
        }
    }
    Ok(())
}
