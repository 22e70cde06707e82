//! The actors a sequence runs on: threads of this process, `lock-holder model` processes and
//! guest components (`guest.rs`), all driven by the protocol of [`stagelock_tests::actor`]
//! through one trait; and the foreign holder, a containers/storage-style process with a
//! protocol of its own.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use stagelock::Layout;
use stagelock_tests::actor::Interpreter;

/// One actor: commands go in one line at a time, each answered by one line.
pub trait Actor: Send {
    /// Sends one command; its reply comes from [`recv`](Self::recv).
    fn send(&mut self, command: &str) -> Result<()>;
    /// The reply to the last command sent, waiting at most `timeout` (`None`: not yet).
    fn recv(&mut self, timeout: Duration) -> Result<Option<String>>;
    /// Ends the actor abruptly, as a crash would: SIGKILL for a process, a trap for a guest.
    /// What it held is released by the OS (or by the host dropping the store), not by it.
    fn kill(&mut self);
}

/// A thread of this process with its own `Dir` handles (its own open file descriptions, so
/// its locks exclude the other threads').
pub struct Thread {
    commands: Option<Sender<String>>,
    replies: Receiver<String>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Thread {
    /// Starts the thread's interpreter on `grant`.
    pub fn spawn(grant: &Path, layout: Layout) -> Result<Self> {
        let mut interpreter = Interpreter::new(grant, layout)?;
        let (commands, inbox) = channel::<String>();
        let (outbox, replies) = channel();
        let thread = std::thread::spawn(move || {
            for command in inbox {
                let reply = interpreter.step(&command);
                let bye = reply.is_none();
                if outbox.send(reply.unwrap_or_else(|| "bye".into())).is_err() || bye {
                    return;
                }
            }
        });
        Ok(Thread {
            commands: Some(commands),
            replies,
            thread: Some(thread),
        })
    }
}

impl Actor for Thread {
    fn send(&mut self, command: &str) -> Result<()> {
        let commands = self.commands.as_ref().context("the thread has stopped")?;
        commands
            .send(command.to_owned())
            .map_err(|_| anyhow!("the thread has stopped"))
    }

    fn recv(&mut self, timeout: Duration) -> Result<Option<String>> {
        received(self.replies.recv_timeout(timeout))
    }

    fn kill(&mut self) {
        // A thread cannot be killed; it quits, dropping what it holds.
        self.commands = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Thread {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A `lock-holder model` process.
pub struct Process {
    child: Child,
    stdin: Option<ChildStdin>,
    replies: Receiver<String>,
}

impl Process {
    /// Starts `lock-holder model GRANT LAYOUT`.
    pub fn spawn(grant: &Path, layout: Layout) -> Result<Self> {
        let layout = match layout {
            Layout::Pairs => "pairs",
            _ => "per-dir",
        };
        let mut command = Command::new(env!("CARGO_BIN_EXE_lock-holder"));
        command.arg("model").arg(grant).arg(layout);
        Process::start(command, "lock-holder model")
    }

    /// Starts `command` with its stdin and stdout piped, one line per command and reply.
    fn start(mut command: Command, what: &str) -> Result<Self> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("spawn {what}"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("its stdout")?;
        Ok(Process {
            child,
            stdin,
            replies: lines(BufReader::new(stdout)),
        })
    }
}

impl Actor for Process {
    fn send(&mut self, command: &str) -> Result<()> {
        let stdin = self.stdin.as_mut().context("the process was killed")?;
        writeln!(stdin, "{command}").context("write to lock-holder model")?;
        stdin.flush().context("write to lock-holder model")
    }

    fn recv(&mut self, timeout: Duration) -> Result<Option<String>> {
        received(self.replies.recv_timeout(timeout))
    }

    fn kill(&mut self) {
        // SIGKILL before closing stdin: at the end of its input it would quit cleanly.
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stdin = None;
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A containers/storage-style holder: a Python process taking classic POSIX `fcntl` locks
/// (`lockf`, `F_SETLK`), as containers/storage's Go code does, on one lock file at a time. It
/// answers `lock PATH` (the file created if missing, as containers/storage's lock files are;
/// `ok`, or `busy` when another lock is in the way), `unlock` (`F_UNLCK`,
/// keeping its descriptor open, so no close event tells anyone), `close`, and `delete`
/// (unlock-and-delete: the path removed while the lock is held, then the file closed; `ok`, or
/// `kept ERROR` when what is at the path cannot be removed).
pub struct Foreign(Process);

const FOREIGN: &str = r#"
import fcntl, os, sys
f, path = None, None
for line in sys.stdin:
    command, _, arg = line.strip().partition(" ")
    try:
        if command == "lock":
            if f is not None:
                f.close()
            f, path = os.fdopen(os.open(arg, os.O_RDWR | os.O_CREAT, 0o644), "r+"), arg
            try:
                fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                reply = "ok"
            except (BlockingIOError, PermissionError):
                f.close()
                f = None
                reply = "busy"
        elif command == "unlock":
            fcntl.lockf(f, fcntl.LOCK_UN)
            reply = "ok"
        elif command == "close":
            f.close()
            f, reply = None, "ok"
        elif command == "delete":
            try:
                os.remove(path)
                reply = "ok"
            except FileNotFoundError:
                reply = "ok"
            except OSError as e:
                reply = "kept " + e.strerror
            f.close()
            f = None
        else:
            reply = "err unknown command " + command
    except Exception as e:
        reply = "err " + repr(e)
    print(reply, flush=True)
"#;

impl Foreign {
    /// Starts the holder (holding nothing yet).
    pub fn spawn() -> Result<Self> {
        let mut command = Command::new("python3");
        command.args(["-c", FOREIGN]);
        Process::start(command, "python3, the POSIX lock holder").map(Foreign)
    }
}

impl Actor for Foreign {
    fn send(&mut self, command: &str) -> Result<()> {
        self.0.send(command)
    }

    fn recv(&mut self, timeout: Duration) -> Result<Option<String>> {
        self.0.recv(timeout)
    }

    /// SIGKILL: the process's POSIX locks go with it, as a crashed Go process's do.
    fn kill(&mut self) {
        self.0.kill();
    }
}

/// A thread reading `reader`'s lines into a channel (ends with the stream).
pub fn lines(reader: impl BufRead + Send + 'static) -> Receiver<String> {
    let (sender, receiver) = channel();
    std::thread::spawn(move || {
        for line in reader.lines() {
            let Ok(line) = line else { return };
            if sender.send(line).is_err() {
                return;
            }
        }
    });
    receiver
}

fn received(r: Result<String, RecvTimeoutError>) -> Result<Option<String>> {
    match r {
        Ok(line) => Ok(Some(line)),
        Err(RecvTimeoutError::Timeout) => Ok(None),
        Err(RecvTimeoutError::Disconnected) => Err(anyhow!("the actor stopped replying")),
    }
}
