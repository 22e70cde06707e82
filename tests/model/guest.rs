//! Guest actors: the `model_actor` component in a store of this process, on a thread of its
//! own, its stdin fed one command at a time while it runs and its stdout read line by line.
//!
//! The store is on [`stagelock_tests::fuel_host`] with [`FUEL`]: a guest told to `spin`
//! computes until it runs out and traps. A guest killed while it reads stdin is sent `trap`
//! (a sync store) or has its store dropped mid-call (an async one). A run that ends in a trap
//! is answered `trapped MESSAGE` by the driver, after the store (and so everything the guest
//! held) is dropped.

use std::collections::VecDeque;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use stagelock::Layout;
use stagelock_tests::{Finished, GuestRun, fuel_host, guests};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use wasmtime_wasi::cli::{IsTerminal, StdinStream, StdoutStream};

use crate::actors::Actor;

/// The fuel of a guest's store: a thousand times what a sequence's commands burn, so only
/// `spin` runs out (within a second).
pub const FUEL: u64 = 1_000_000_000;

/// A `model_actor` guest in a store of its own, on its own thread.
pub struct Guest {
    stdin: Stdin,
    replies: Receiver<String>,
    thread: Option<JoinHandle<()>>,
}

impl Guest {
    /// Starts the guest on `grant` (holding `locks/`, `area/`, `dest/`; granted at `/grant`)
    /// in a synchronous store, called with the sync linker.
    pub fn spawn_sync(grant: &Path, layout: Layout) -> Result<Guest> {
        Guest::spawn(grant, layout, false)
    }

    /// [`spawn_sync`](Self::spawn_sync) in an async store, with the async linker, on a tokio
    /// current-thread runtime of its thread.
    pub fn spawn_async(grant: &Path, layout: Layout) -> Result<Guest> {
        Guest::spawn(grant, layout, true)
    }

    fn spawn(grant: &Path, layout: Layout, in_async: bool) -> Result<Guest> {
        let layout = match layout {
            Layout::Pairs => "pairs",
            _ => "per-dir",
        };
        if !grant.is_dir() {
            bail!("no grant directory {}", grant.display());
        }
        let stdin = Stdin::default();
        let (lines, replies) = channel();
        let run = GuestRun::new(&[layout])
            .grant(grant, "/grant", wasmtime_wasi::FsPerms::ReadWrite)
            .stdio(stdin.clone(), Stdout::new(lines.clone()));
        let setup = |store: &mut wasmtime::Store<_>| {
            store
                .set_fuel(FUEL)
                .expect("the fuel host's engine counts fuel")
        };
        let killed = stdin.clone();
        let name = if in_async {
            "guest-async"
        } else {
            "guest-sync"
        };
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let finished = if in_async {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_time()
                        .build()
                        .expect("a tokio runtime");
                    runtime.block_on(async {
                        tokio::select! {
                            finished = run.run_async_on(fuel_host(), guests::MODEL_ACTOR, setup) => Some(finished),
                            () = killed.killed() => None,
                        }
                    })
                } else {
                    Some(run.run_on(fuel_host(), guests::MODEL_ACTOR, setup))
                };
                let last = ended(finished.as_ref());
                // The store goes first: once `trapped` is read, what the guest held is free.
                drop(finished);
                if let Some(last) = last {
                    let _ = lines.send(last);
                }
            })
            .context("start the guest's thread")?;
        Ok(Guest {
            stdin,
            replies,
            thread: Some(thread),
        })
    }
}

/// Opens what the first guest of a process opens for good (the compiled component's memory
/// image, wasmtime-wasi's own tokio runtime: four descriptors), by running a guest once:
/// call it before counting the process's descriptors. Later calls do nothing.
pub fn warm_up() -> Result<()> {
    static WARM: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let warm = WARM.get_or_init(|| {
        let run = || -> Result<()> {
            let tmp = tempfile::tempdir()?;
            for dir in ["locks", "area", "dest"] {
                std::fs::create_dir(tmp.path().join(dir))?;
            }
            for mut guest in [
                Guest::spawn_sync(tmp.path(), Layout::Pairs)?,
                Guest::spawn_async(tmp.path(), Layout::Pairs)?,
            ] {
                guest.send("quit")?;
                let reply = guest.recv(Duration::from_secs(60))?;
                if reply.as_deref() != Some("bye") {
                    bail!("the warm-up guest replied {reply:?} to quit");
                }
            }
            Ok(())
        };
        run().map_err(|e| format!("{e:#}"))
    });
    warm.clone().map_err(anyhow::Error::msg)
}

impl Actor for Guest {
    fn send(&mut self, command: &str) -> Result<()> {
        match &self.thread {
            Some(thread) if !thread.is_finished() => {
                self.stdin.push(command);
                Ok(())
            }
            _ => Err(anyhow!("the guest has ended")),
        }
    }

    fn recv(&mut self, timeout: Duration) -> Result<Option<String>> {
        match self.replies.recv_timeout(timeout) {
            Ok(line) => Ok(Some(line)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(anyhow!("the guest stopped replying")),
        }
    }

    /// Traps the guest: at its next deadline check if it runs, at its next command (`trap`)
    /// if it reads stdin; an async store is dropped mid-call at once. A sync guest in a wait
    /// traps when the wait ends. Returns once the store is dropped.
    fn kill(&mut self) {
        self.stdin.kill();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The driver's last line for a run that ended (`None`: the async store was dropped when
/// killed): `trapped MESSAGE` for a trap, nothing after a clean end (the guest said `bye`),
/// `ended ...` otherwise.
fn ended(finished: Option<&Finished>) -> Option<String> {
    let Some(finished) = finished else {
        return Some("trapped killed: the async store was dropped mid-call".into());
    };
    let stderr = one_line(&finished.stderr);
    let stderr = if stderr.is_empty() {
        String::new()
    } else {
        format!(" (stderr: {stderr})")
    };
    match (&finished.outcome, finished.trap) {
        (Ok(()), _) => None,
        (_, Some(wasmtime::Trap::OutOfFuel)) => Some(format!(
            "trapped out of fuel: ran past {FUEL} units{stderr}"
        )),
        (_, Some(trap)) => Some(format!("trapped {trap}{stderr}")),
        (Err(why), None) => Some(format!("ended {}{stderr}", one_line(why))),
    }
}

fn one_line(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines.join(" | ")
}

/// The guest's stdin: the commands sent so far and not yet read, shared by every stream the
/// guest opens on it; and whether the guest was killed.
#[derive(Clone, Default)]
struct Stdin(Arc<Shared>);

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    killed: AtomicBool,
}

#[derive(Default)]
struct Queue {
    bytes: VecDeque<u8>,
    wakers: Vec<Waker>,
}

impl Stdin {
    /// Appends the line `command`.
    fn push(&self, command: &str) {
        let mut queue = self.queue();
        queue.bytes.extend(command.as_bytes());
        queue.bytes.push_back(b'\n');
        queue.wakers.drain(..).for_each(Waker::wake);
    }

    /// Marks the guest killed and sends it `trap`.
    fn kill(&self) {
        self.0.killed.store(true, Ordering::SeqCst);
        self.push("trap");
    }

    fn is_killed(&self) -> bool {
        self.0.killed.load(Ordering::SeqCst)
    }

    /// Ready once the guest is killed.
    async fn killed(&self) {
        std::future::poll_fn(|cx| {
            let mut queue = self.queue();
            if self.is_killed() {
                return Poll::Ready(());
            }
            queue.wakers.push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.0.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl AsyncRead for Stdin {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut queue = self.queue();
        if queue.bytes.is_empty() {
            queue.wakers.push(cx.waker().clone());
            return Poll::Pending;
        }
        let n = queue.bytes.len().min(buf.remaining());
        let (front, back) = queue.bytes.as_slices();
        let from_front = n.min(front.len());
        buf.put_slice(&front[..from_front]);
        buf.put_slice(&back[..n - from_front]);
        queue.bytes.drain(..n);
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for Stdin {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdinStream for Stdin {
    fn async_stream(&self) -> Box<dyn AsyncRead + Send + Sync> {
        Box::new(self.clone())
    }
}

/// The guest's stdout, sent on as lines.
#[derive(Clone)]
struct Stdout(Arc<Mutex<(Vec<u8>, Sender<String>)>>);

impl Stdout {
    fn new(lines: Sender<String>) -> Self {
        Stdout(Arc::new(Mutex::new((Vec::new(), lines))))
    }
}

impl AsyncWrite for Stdout {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut out = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let (pending, lines) = &mut *out;
        pending.extend_from_slice(bytes);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line[..end]).into_owned();
            // The receiver is gone only when the guest is: nothing left to tell.
            let _ = lines.send(line);
        }
        Poll::Ready(Ok(bytes.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for Stdout {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Stdout {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

/// The guests' round trip, in both stores: locks exclude each other and native holders,
/// stages commit, `trap` and `spin` end in `trapped` with every lock freed. `grant` gets
/// `locks/`, `area/` and `dest/` if missing; it should start empty.
pub fn smoke(grant: &Path) -> Result<()> {
    for dir in ["locks", "area", "dest"] {
        std::fs::create_dir_all(grant.join(dir))?;
    }
    let reply = |actor: &mut dyn Actor, command: &str| -> Result<String> {
        actor.send(command)?;
        // 60 s, as the warm-up: `spin` takes its second of CPU, longer on a loaded machine.
        let reply = actor.recv(Duration::from_secs(60))?;
        reply.with_context(|| format!("no reply to {command:?}"))
    };
    let expect = |actor: &mut dyn Actor, command: &str, start: &str| -> Result<String> {
        let got = reply(actor, command)?;
        if !got.starts_with(start) {
            bail!("{command:?} replied {got:?}, not {start:?}...");
        }
        Ok(got)
    };
    let native_free = |path: &str| -> Result<()> {
        let mut native = stagelock_tests::actor::Interpreter::new(grant, Layout::Pairs)?;
        let got = native.step(&format!("try 1 {path}"));
        if got.as_deref() != Some("ok") {
            bail!("native try {path}: {got:?}, the guest's lock is not free");
        }
        native.step("unlock 1");
        Ok(())
    };
    for (i, sync_first) in [true, false].into_iter().enumerate() {
        let (mut a, mut b) = if sync_first {
            (
                Guest::spawn_sync(grant, Layout::Pairs)?,
                Guest::spawn_async(grant, Layout::Pairs)?,
            )
        } else {
            (
                Guest::spawn_async(grant, Layout::Pairs)?,
                Guest::spawn_sync(grant, Layout::Pairs)?,
            )
        };
        let created = expect(&mut a, "create 1", "ok lock-")?;
        let created = created.trim_start_matches("ok ").to_owned();
        expect(&mut a, "try 2 x.lock", "ok")?;
        expect(
            &mut b,
            "try 1 x.lock",
            "err would-block try-lock-path \"x.lock\"",
        )?;
        expect(&mut b, &format!("try 1 {created}"), "err would-block")?;
        let mut native = stagelock_tests::actor::Interpreter::new(grant, Layout::Pairs)?;
        match native.step("try 1 x.lock") {
            Some(r) if r.starts_with("err would-block") => {}
            other => bail!("native try x.lock while a guest holds it: {other:?}"),
        }
        drop(native);
        expect(&mut a, "stage 1", "ok ")?;
        expect(&mut a, "write 1 f hello", "ok")?;
        expect(&mut a, &format!("commit 1 a{i} keep full"), "ok")?;
        let text = std::fs::read_to_string(grant.join(format!("dest/a{i}/f")))?;
        if text != "hello" {
            bail!("dest/a{i}/f holds {text:?}");
        }
        expect(&mut b, "stage 1", "ok ")?;
        expect(&mut b, "write 1 f two", "ok")?;
        expect(
            &mut b,
            &format!("commit 1 a{i} keep none"),
            "err exist kept commit",
        )?;
        expect(&mut b, &format!("commit 1 a{i} replace none"), "ok")?;
        expect(&mut b, "stage 2", "ok ")?; // left to recovery by the trap
        expect(&mut b, "nonsense", "err invalid unknown command: nonsense")?;
        // A traps: its locks are free once `trapped` is read.
        expect(&mut a, "trap", "trapped ")?;
        a.kill();
        native_free("x.lock")?;
        native_free(&created)?;
        // B computes forever: its fuel runs out.
        expect(&mut b, "try 3 y.lock", "ok")?;
        // The reply says fuel stopped it; a spin that never stops misses the reply's 60 s.
        // (No bound on how long it took: a second of CPU can take several at load 5.)
        expect(&mut b, "spin", "trapped out of fuel")?;
        b.kill();
        native_free("y.lock")?;
        // B's second stage went with its store (the host aborts what a dropped store held);
        // a live guest's stage is skipped as held.
        let mut c = Guest::spawn_sync(grant, Layout::Pairs)?;
        expect(&mut c, "recover", "ok removed= skipped=")?;
        let id = expect(&mut c, "stage 5", "ok ")?;
        let mut e = Guest::spawn_async(grant, Layout::Pairs)?;
        let held = format!("ok removed= skipped={}:held", id.trim_start_matches("ok "));
        expect(&mut e, "recover", &held)?;
        expect(&mut c, "quit", "bye")?;
        expect(&mut e, "quit", "bye")?;
        c.kill();
        e.kill();
        // A killed guest blocked on stdin.
        let mut d = Guest::spawn_async(grant, Layout::Pairs)?;
        expect(&mut d, "try 1 z.lock", "ok")?;
        d.kill();
        native_free("z.lock")?;
        let mut d = Guest::spawn_sync(grant, Layout::Pairs)?;
        expect(&mut d, "try 1 z.lock", "ok")?;
        d.kill();
        native_free("z.lock")?;
    }
    Ok(())
}
