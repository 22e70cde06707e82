//! Helpers shared by stagelock's integration tests: scratch directories and lock holders that
//! run in other processes.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

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
        let dir = Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority())?;
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
        let mut names = std::fs::read_dir(self.path())?
            .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
            .collect::<Result<Vec<_>>>()?;
        names.sort();
        Ok(names)
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

    /// A Python process taking a POSIX `fcntl.lockf` lock (classic `F_SETLK`, what
    /// containers/storage's Go code takes) on `path`.
    pub fn python_lockf(path: &Path) -> Result<(Holder, Taken)> {
        let mut command = Command::new("python3");
        command.arg("-c").arg(PYTHON_LOCKF).arg(path);
        Holder::start(command)
    }

    fn line(&mut self) -> Result<String> {
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

/// Whether another open of `path` (in a Python child, so a different process and open file
/// description) could take a POSIX lock on it right now.
pub fn lockable_by_other_process(path: &Path) -> Result<bool> {
    let (holder, taken) = Holder::python_lockf(path)?;
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

/// The `stagelock` binary, built on first use with cargo (it belongs to another package of the
/// workspace, so cargo does not hand it to this one's tests; its build lock is free while tests
/// and benches run).
pub fn stagelock_bin(release: bool) -> PathBuf {
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

/// An engine and a linker (WASI p2 plus staging locks) to run guest components with, as an
/// embedder would.
pub struct GuestHost {
    /// The engine components are compiled for.
    pub engine: wasmtime::Engine,
    linker: wasmtime::component::Linker<stagelock_wasmtime::PluginState>,
}

impl Default for GuestHost {
    fn default() -> Self {
        Self::new()
    }
}

impl GuestHost {
    /// A default engine and its linker.
    pub fn new() -> Self {
        let engine = wasmtime::Engine::default();
        let linker = stagelock_wasmtime::plugin_linker(&engine).expect("link WASI and locks");
        GuestHost { engine, linker }
    }

    /// Compiles the component at `path` (one of the `GUEST_*` paths build.rs provides).
    pub fn load(&self, path: &str) -> wasmtime::component::Component {
        wasmtime::component::Component::from_file(&self.engine, path)
            .unwrap_or_else(|e| panic!("load {path}: {e:?}"))
    }

    /// Runs `component` in a fresh store over `wasi` (with at most `max_held` locks, if given).
    /// Returns the store, still holding whatever the guest left, and `Ok` if `run` succeeded,
    /// else `exit N`, `run returned an error` or `trap: ...`.
    pub fn run(
        &self,
        component: &wasmtime::component::Component,
        wasi: &mut wasmtime_wasi::WasiCtxBuilder,
        max_held: Option<usize>,
    ) -> (
        wasmtime::Store<stagelock_wasmtime::PluginState>,
        std::result::Result<(), String>,
    ) {
        let mut state = stagelock_wasmtime::PluginState::new(wasi.build());
        if let Some(max) = max_held {
            state.locks.set_max_held(max);
        }
        let mut store = wasmtime::Store::new(&self.engine, state);
        let command = wasmtime_wasi::p2::bindings::sync::Command::instantiate(
            &mut store,
            component,
            &self.linker,
        )
        .expect("instantiate the guest");
        let outcome = match command.wasi_cli_run().call_run(&mut store) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(())) => Err("run returned an error".to_owned()),
            Err(e) => match e.downcast_ref::<wasmtime_wasi::I32Exit>() {
                Some(exit) => Err(format!("exit {}", exit.0)),
                None => Err(format!("trap: {e:?}")),
            },
        };
        (store, outcome)
    }
}

/// WASI for a guest: `args` after an `argv[0]` of `guest`, and `dir` granted read-write at
/// `/work`. Callers add stdio.
pub fn wasi_in(dir: &Path, args: &[&str]) -> wasmtime_wasi::WasiCtxBuilder {
    let mut wasi = wasmtime_wasi::WasiCtxBuilder::new();
    wasi.arg("guest").args(args);
    wasi.preopened_dir(dir, "/work", wasmtime_wasi::FsPerms::ReadWrite)
        .unwrap_or_else(|e| panic!("grant {}: {e:?}", dir.display()));
    wasi
}

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
