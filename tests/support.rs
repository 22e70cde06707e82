//! Helpers shared by stagelock's integration tests: scratch directories, lock holders that run
//! in other processes, the one guest runner, the one wait helper and the one way to the
//! `stagelock` binary.
//!
//! Guests: every `tests/guests/src/bin/<suite>_<scenario>.rs` is built by `build.rs`; its path
//! is [`guests`]`::<SUITE>_<SCENARIO>`, and the suite's module (`tests/components/<suite>.rs`)
//! says `foreach_<suite>!(assert_test_exists);` so that each guest needs a test function of its
//! name. Adding a scenario is adding a guest file and that test.
//!
//! The test binaries (`native`, `components`, `multihost`) are each a `main.rs` with one module
//! per suite, all of whose tests share one process: a helper belongs here, written once, and a
//! test with process-wide side effects runs through [`in_own_process`].

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cap_std::fs::Dir;

/// A fresh temporary directory, open both as a path and as a capability.
pub struct Scratch {
    tmp: tempfile::TempDir,
    dir: Dir,
}

impl Scratch {
    /// Makes a new empty directory.
    pub fn new() -> Result<Self> {
        let tmp = tempfile::tempdir()?;
        let dir = open_dir(tmp.path())?;
        Ok(Scratch { tmp, dir })
    }

    /// The directory as a capability.
    pub fn dir(&self) -> &Dir {
        &self.dir
    }

    /// The directory's ambient path.
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// `rel` under the directory, as an ambient path.
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// Names of the entries in the directory, sorted.
    pub fn names(&self) -> Result<Vec<String>> {
        names(self.path())
    }
}

/// What a holder process reported after trying to take its lock.
#[derive(Debug, PartialEq, Eq)]
pub enum Taken {
    /// It holds the lock (the rest of its line, if any, follows: a created name).
    Held(String),
    /// The lock was busy.
    Busy,
}

/// A process holding (or having failed to take) a lock, speaking a line protocol: it prints
/// `held [NAME]` or `busy`, then on stdin EOF releases and prints `released`.
pub struct Holder {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    what: String,
}

impl Holder {
    /// Starts `command` and waits for its first line.
    pub fn start(mut command: Command) -> Result<(Holder, Taken)> {
        let what = format!("{command:?}");
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("start {what}"))?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut holder = Holder {
            child,
            stdin,
            stdout,
            what,
        };
        let line = holder.line()?;
        let taken = match line.split_once(' ').unwrap_or((line.as_str(), "")) {
            ("held", rest) => Taken::Held(rest.to_owned()),
            ("busy", _) => Taken::Busy,
            _ => bail!("{}: unexpected first line {line:?}", holder.what),
        };
        Ok((holder, taken))
    }

    /// A process taking the lock containers/storage's Go code takes on `path`: on Unix a
    /// POSIX `fcntl.lockf` lock (classic `F_SETLK`), in Python; on Windows `LockFileEx` over
    /// every byte, as its `rawfilelock_windows.go` does (`lock-holder go-lock`).
    pub fn containers_storage(path: &Path) -> Result<(Holder, Taken)> {
        #[cfg(unix)]
        let command = {
            let mut command = Command::new("python3");
            command.arg("-c").arg(PYTHON_LOCKF).arg(path);
            command
        };
        #[cfg(windows)]
        let command = {
            // Beside the test binary's directory (`deps/`), where cargo puts the package's bins.
            let exe = std::env::current_exe()?;
            let bins = exe
                .parent()
                .and_then(Path::parent)
                .context("test binary's directory")?;
            let mut command = Command::new(bins.join("lock-holder.exe"));
            command.arg("go-lock").arg(path);
            command
        };
        Holder::start(command)
    }

    /// Reads the holder's next line of output (for holders that say more than their first).
    pub fn line(&mut self) -> Result<String> {
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        if line.is_empty() {
            let status = self.child.wait()?;
            bail!("{}: exited ({status}) without a word", self.what);
        }
        Ok(line.trim_end().to_owned())
    }

    /// Tells the holder to release, and waits until it has.
    pub fn release(mut self) -> Result<()> {
        drop(self.stdin.take());
        let line = self.line()?;
        let status = self.child.wait()?;
        if line != "released" || !status.success() {
            bail!("{}: release said {line:?}, exit {status}", self.what);
        }
        Ok(())
    }

    /// Sends `text` to the holder's stdin (for holders that take commands).
    pub fn send(&mut self, text: &str) -> Result<()> {
        let stdin = self.stdin.as_mut().context("stdin already closed")?;
        stdin.write_all(text.as_bytes())?;
        stdin.flush()?;
        Ok(())
    }

    /// Kills the holder with SIGKILL and reaps it.
    pub fn kill(mut self) -> Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// The holder's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(unix)]
const PYTHON_LOCKF: &str = r#"
import fcntl, sys
f = open(sys.argv[1], "a")
try:
    fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
except OSError:
    print("busy", flush=True)
    sys.exit(0)
print("held", flush=True)
sys.stdin.read()
fcntl.lockf(f, fcntl.LOCK_UN)
print("released", flush=True)
"#;

/// Whether another open of `path` (in a child process, so a different process and open file
/// description) could take containers/storage's lock on it right now
/// ([`Holder::containers_storage`]).
pub fn lockable_by_other_process(path: &Path) -> Result<bool> {
    let (holder, taken) = Holder::containers_storage(path)?;
    match taken {
        Taken::Held(_) => {
            holder.release()?;
            Ok(true)
        }
        Taken::Busy => Ok(false),
    }
}

/// Files each stage of the concurrency tests writes, and checks before committing.
pub const STAGE_FILES: usize = 8;

/// One stager iteration of the concurrency tests: stage, write [`STAGE_FILES`] files, check they
/// are all still there (a recoverer that removed a live stage would make this fail), commit to
/// `name` beneath `dest`, and check the committed result is complete.
pub fn stage_fill_check_commit(
    area: &stagelock::StagingArea,
    dest: &Dir,
    name: &str,
) -> Result<()> {
    let stage = area.stage()?;
    for f in 0..STAGE_FILES {
        stage.dir().write(format!("f{f}"), name)?;
        std::thread::yield_now();
    }
    for f in 0..STAGE_FILES {
        let text = stage
            .dir()
            .read_to_string(format!("f{f}"))
            .with_context(|| format!("stage {} of {name} lost f{f}", stage.id()))?;
        anyhow::ensure!(
            text == name,
            "stage {} of {name}: f{f} holds {text:?}",
            stage.id()
        );
    }
    stage
        .commit(dest, name)
        .map_err(|e| anyhow::anyhow!("commit {name}: {e}"))?;
    for f in 0..STAGE_FILES {
        let text = dest.read_to_string(Path::new(name).join(format!("f{f}")))?;
        anyhow::ensure!(text == name, "committed {name} is incomplete at f{f}");
    }
    Ok(())
}

/// Paths of the guest components `build.rs` built, and the `foreach_<suite>!` macros (exported
/// at the crate root) that name every guest of a suite.
pub mod guests {
    include!(concat!(env!("OUT_DIR"), "/guests.rs"));
}

/// For `foreach_<suite>!(assert_test_exists)`: fails to compile unless a test function (or any
/// item) named after the guest exists where it is invoked.
#[macro_export]
macro_rules! assert_test_exists {
    ($name:ident) => {
        #[allow(unused_imports)]
        use self::$name as _;
    };
}

/// Waits (polling every few milliseconds, up to two minutes) until `ok` holds; panics naming
/// `what` if it never does. The one busy-wait of the tests: use it for markers, released locks
/// and emptied directories alike.
pub fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Makes a FIFO at `path` (for the tests that a lock path naming one is refused at once).
#[cfg(unix)]
pub fn mkfifo(path: &Path) -> std::io::Result<()> {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_bits_truncate(0o644),
        0,
    )?;
    Ok(())
}

/// Names of the entries of the directory at `dir`, sorted.
pub fn names(dir: &Path) -> Result<Vec<String>> {
    let mut names = std::fs::read_dir(dir)
        .with_context(|| format!("list {}", dir.display()))?
        .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
        .collect::<Result<Vec<_>>>()?;
    names.sort();
    Ok(names)
}

/// The directory at the ambient `path`, as a capability.
pub fn open_dir(path: &Path) -> Result<Dir> {
    Dir::open_ambient_dir(path, cap_std::ambient_authority())
        .with_context(|| format!("open {}", path.display()))
}

/// What a path beneath a walked directory is (see [`tree`]).
#[derive(Clone, PartialEq, Eq)]
pub enum Entry {
    /// A directory (its entries are in the tree too).
    Dir,
    /// A regular file, with its contents.
    File(Vec<u8>),
    /// A symbolic link (not followed), with its target.
    Symlink(PathBuf),
    /// A FIFO, socket or device: never opened.
    Special,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Entry::Dir => f.write_str("dir"),
            // A compiled component, say: its size says enough.
            Entry::File(bytes) if bytes.len() > 256 => write!(f, "<{} bytes>", bytes.len()),
            Entry::File(bytes) => write!(f, "{:?}", String::from_utf8_lossy(bytes)),
            Entry::Symlink(target) => write!(f, "-> {}", target.display()),
            Entry::Special => f.write_str("special"),
        }
    }
}

/// Everything beneath `dir`, by path relative to it, sorted: what each entry is, files with
/// their contents, symlinks not followed. The one tree walker of the tests: compare two to
/// check that something was left exactly as it was.
pub fn tree(dir: &Path) -> Result<BTreeMap<PathBuf, Entry>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("list {}", d.display()))? {
            let path = entry?.path();
            let meta = std::fs::symlink_metadata(&path)?;
            let what = if meta.is_symlink() {
                Entry::Symlink(std::fs::read_link(&path)?)
            } else if meta.is_dir() {
                todo.push(path.clone());
                Entry::Dir
            } else if meta.is_file() {
                Entry::File(
                    std::fs::read(&path).with_context(|| format!("read {}", path.display()))?,
                )
            } else {
                Entry::Special
            };
            out.insert(path.strip_prefix(dir)?.to_path_buf(), what);
        }
    }
    Ok(out)
}

/// The median of `v` (the upper one of an even count), for the benchmarks.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// `ns` nanoseconds in microseconds, with `decimals` decimals: `12.34 µs`.
pub fn us(ns: f64, decimals: usize) -> String {
    format!("{:.*} µs", decimals, ns / 1000.0)
}

/// The environment variable that tells a test binary started by [`in_own_process`] which test
/// it runs.
const OWN_PROCESS: &str = "STAGELOCK_TESTS_OWN_PROCESS";

/// For a test whose side effects are process-wide (it uses up the descriptors, say), which must
/// not run beside the other tests of its binary: `name` is its full name in the binary
/// (`suite::test`). In the process this starts, returns `true`: the caller runs its body there.
/// Elsewhere, runs this test binary again with only that test (`--exact`), relays its stderr,
/// panics unless it passed, and returns `false`.
pub fn in_own_process(name: &str) -> bool {
    if std::env::var_os(OWN_PROCESS).is_some_and(|v| v == name) {
        return true;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = Command::new(&exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(OWN_PROCESS, name)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", exe.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success() && stdout.contains("test result: ok. 1 passed;"),
        "{name}, in a process of its own ({}):\n{stdout}",
        out.status
    );
    false
}

/// The tests of one binary that load every core, and those whose assertion is a time bound,
/// never run at the same time: the first hold [`loads_the_machine`], the second
/// [`measures_time`] (other tests need neither).
static MACHINE: RwLock<()> = RwLock::new(());

/// Held while a test loads every core (the contention stress): no test timing itself runs.
pub fn loads_the_machine() -> RwLockWriteGuard<'static, ()> {
    MACHINE
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Held while a test asserts a time bound: no test loading every core runs.
pub fn measures_time() -> RwLockReadGuard<'static, ()> {
    MACHINE
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Whether `path` beneath `dir` is held by someone else right now: a native try-lock that is
/// refused with `WouldBlock`. When it is free, the probe's lock is dropped, not deleted: the file
/// stays as it was. Any other error panics.
pub fn busy(dir: &Dir, path: &str) -> bool {
    match stagelock::StagingLock::try_lock_path(dir, path) {
        Err(e) if e.kind() == stagelock::ErrorKind::WouldBlock => true,
        Err(e) => panic!("probe {path}: {e}"),
        Ok(lock) => {
            drop(lock);
            false
        }
    }
}

/// The `stagelock` binary (the debug build, or the release build for benchmarks), built with
/// cargo on first use in this process. The one way tests find it: it belongs to another package
/// of the workspace, so cargo does not hand it to this one's tests; its build lock is free while
/// tests and benches run. `STAGELOCK_BIN` names one built already instead: for test binaries
/// cross-built for another OS (scripts/windows.sh), where this cargo cannot build for them.
pub fn stagelock_bin(release: bool) -> &'static Path {
    static BINS: [OnceLock<PathBuf>; 2] = [OnceLock::new(), OnceLock::new()];
    BINS[usize::from(release)].get_or_init(|| match std::env::var_os("STAGELOCK_BIN") {
        Some(bin) => PathBuf::from(bin),
        None => build_stagelock(release),
    })
}

fn build_stagelock(release: bool) -> PathBuf {
    let mut command = Command::new(env!("CARGO"));
    command.args([
        "build",
        "--locked",
        "-p",
        "stagelock-cli",
        "--bin",
        "stagelock",
    ]);
    if release {
        command.arg("--release");
    }
    let out = command
        .args(["--message-format", "json-render-diagnostics"])
        .output()
        .expect("run cargo build");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("cargo prints UTF-8");
    let key = "\"executable\":\"";
    let line = stdout
        .lines()
        .rfind(|l| l.contains(key))
        .expect("cargo reported no executable");
    let start = line.find(key).unwrap() + key.len();
    PathBuf::from(&line[start..start + line[start..].find('"').unwrap()])
}

/// Wall-clock nanoseconds: the one clock every stress holder (native, CLI, guest) can read, so
/// their hold intervals can be compared.
pub fn now_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos()
}

#[path = "support/actor.rs"]
pub mod actor;
#[path = "support/stress.rs"]
mod stress;
pub use stress::*;
#[cfg(feature = "components")]
#[path = "support/guest_host.rs"]
mod guest_host;
#[cfg(feature = "components")]
pub use guest_host::*;

/// Why a FUSE test cannot run here (`None`: it can): `/dev/fuse` must exist and `tool` (a path
/// or a command on `PATH`) must run.
pub fn fuse_missing(tool: &Path) -> Option<String> {
    if !Path::new("/dev/fuse").exists() {
        return Some("no /dev/fuse".into());
    }
    let found = if tool.components().count() > 1 {
        tool.exists()
    } else {
        Command::new("sh")
            .args(["-c", "command -v \"$0\" >/dev/null"])
            .arg(tool)
            .status()
            .is_ok_and(|s| s.success())
    };
    if !found {
        return Some(format!("{} not found", tool.display()));
    }
    if Command::new("sh")
        .args(["-c", "command -v fusermount3 >/dev/null"])
        .status()
        .map_or(true, |s| !s.success())
    {
        return Some("fusermount3 not found (apt-get install fuse3)".into());
    }
    None
}

/// The LazyFS tool: `$STAGELOCK_LAZYFS`, else `../shared/tools/lazyfs/lazyfs` beside the
/// repository.
pub fn lazyfs() -> PathBuf {
    std::env::var_os("STAGELOCK_LAZYFS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/tools/lazyfs/lazyfs"),
        PathBuf::from,
    )
}

/// A LazyFS mount (a FUSE filesystem that keeps written data in its own cache until `fsync`),
/// or `None` (said on stderr) if impossible here.
pub fn lazyfs_mount() -> Result<Option<FuseMount>> {
    let tool = lazyfs();
    if let Some(why) = fuse_missing(&tool) {
        eprintln!(
            "SKIPPED: power-loss tests need /dev/fuse, fuse3 and LazyFS \
             (../shared/tools/lazyfs/lazyfs or $STAGELOCK_LAZYFS): {why}"
        );
        return Ok(None);
    }
    let tool = tool.to_str().context("LazyFS path is not UTF-8")?;
    Ok(Some(FuseMount::new(&[tool, "mount"], &[tool, "umount"])?))
}

/// A simulated power cut on a LazyFS mount: LazyFS drops every byte not yet synced.
pub fn power_cut(mount: &FuseMount) -> Result<()> {
    let status = Command::new(lazyfs())
        .arg("clear-cache")
        .arg(mount.path())
        .status()?;
    anyhow::ensure!(status.success(), "lazyfs clear-cache: {status}");
    Ok(())
}

/// A FUSE filesystem mounted on a fresh temporary directory over another one (its backing
/// directory), unmounted when dropped, also when a test fails.
pub struct FuseMount {
    /// Where the filesystem is mounted.
    pub mnt: tempfile::TempDir,
    /// The directory it shows.
    pub backing: tempfile::TempDir,
    unmount: Vec<String>,
}

impl FuseMount {
    /// Runs `mount` with the backing directory and the mount point appended, then checks that
    /// the mount point is a FUSE mount; `unmount` is the command that undoes it (the mount
    /// point appended).
    pub fn new(mount: &[&str], unmount: &[&str]) -> Result<Self> {
        let backing = tempfile::tempdir()?;
        let mnt = tempfile::tempdir()?;
        let status = Command::new(mount[0])
            .args(&mount[1..])
            .arg(backing.path())
            .arg(mnt.path())
            .status()
            .with_context(|| format!("run {}", mount[0]))?;
        anyhow::ensure!(status.success(), "{mount:?} failed: {status}");
        let this = FuseMount {
            mnt,
            backing,
            unmount: unmount.iter().map(|s| s.to_string()).collect(),
        };
        let mounts = std::fs::read_to_string("/proc/mounts")?;
        let point = format!(" {} fuse", this.mnt.path().display());
        anyhow::ensure!(
            mounts.lines().any(|l| l.contains(&point)),
            "{} is not a FUSE mount after {mount:?}",
            this.mnt.path().display()
        );
        Ok(this)
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        self.mnt.path()
    }
}

impl Drop for FuseMount {
    fn drop(&mut self) {
        for attempt in 0..50 {
            let status = Command::new(&self.unmount[0])
                .args(&self.unmount[1..])
                .arg(self.mnt.path())
                .stderr(Stdio::null())
                .status();
            if status.is_ok_and(|s| s.success()) {
                return;
            }
            if attempt == 49 {
                // Busy for too long: detach it, so the temporary directories can go.
                let _ = Command::new("fusermount3")
                    .arg("-uz")
                    .arg(self.mnt.path())
                    .status();
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

#[cfg(test)]
mod tests {
    /// Each suite with guests invokes its `foreach_<suite>!(assert_test_exists)` (which makes a
    /// guest without a test a compile error).
    #[test]
    fn every_suite_checks_its_guests() {
        for (suite, file) in super::guests::SUITES {
            let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
            let text = std::fs::read_to_string(&file).unwrap();
            let call = format!("foreach_{suite}!(assert_test_exists)");
            assert!(
                text.contains(&call),
                "{} must say `{call};`",
                file.display()
            );
        }
    }
}
