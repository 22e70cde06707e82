//! `lock-request`: a guest's wait for a lock, driven by `wasi:io/poll`.

use std::future::Future as _;
use std::task::Poll;
use std::time::Duration;

use stagelock::{Attempt, LockWait, StagingLock};
use wasmtime_wasi::async_trait;
use wasmtime_wasi::p2::Pollable;

/// A guest's wait for the lock on one path: the host type of the WIT resource
/// `locks.lock-request`.
///
/// Its [`Pollable`] attempts the lock, and between attempts awaits whichever comes first: an
/// event on the lock file ([`LockWait::poll_event`]: on Linux, its holder closing, exiting or
/// deleting it, or the events thread finding it released) or a tokio timer for the pause the
/// attempt said ([`LockWait`]: only the time limit when events are armed, else a backoff from
/// 0.5 ms up to 10 ms). Waiting never blocks a
/// thread: in async embeddings other tasks, other guests included, run meanwhile. The tokio
/// runtime it is polled on needs its time driver, as `wasi:clocks` does.
#[derive(Debug)]
pub struct LockRequest {
    state: State,
}

#[derive(Debug)]
enum State {
    Waiting(LockWait),
    Done(Result<StagingLock, stagelock::Error>),
    /// The outcome was handed to the guest: a lock (`true`) or an error.
    Taken(bool),
}

impl LockRequest {
    /// A request that makes its first attempt at once.
    pub(crate) fn start(waiting: LockWait) -> Self {
        let mut request = LockRequest {
            state: State::Waiting(waiting),
        };
        request.step();
        request
    }

    /// One attempt, if still waiting: `Some(pause)` until the next one, or `None` once there is
    /// an outcome.
    fn step(&mut self) -> Option<Duration> {
        let State::Waiting(waiting) = &mut self.state else {
            return None;
        };
        match waiting.attempt() {
            Ok(Attempt::Retry(pause)) => Some(pause),
            Ok(Attempt::Locked(lock)) => {
                self.state = State::Done(Ok(lock));
                None
            }
            Err(e) => {
                self.state = State::Done(Err(e));
                None
            }
        }
    }

    /// The outcome, once (`Some(Err(None))` once it was taken); one more attempt first if
    /// still waiting.
    pub(crate) fn take(&mut self) -> Option<Result<StagingLock, Option<stagelock::Error>>> {
        self.step();
        let outcome = match std::mem::replace(&mut self.state, State::Taken(false)) {
            State::Done(outcome) => outcome,
            still => {
                let taken = matches!(still, State::Taken(_));
                self.state = still;
                return taken.then_some(Err(None));
            }
        };
        self.state = State::Taken(outcome.is_ok());
        Some(outcome.map_err(Some))
    }

    /// Whether this request still counts against the store's cap on held locks: until its lock
    /// was handed out (the lock then counts instead).
    pub(crate) fn counts(&self) -> bool {
        !matches!(self.state, State::Taken(true))
    }
}

#[async_trait]
impl Pollable for LockRequest {
    async fn ready(&mut self) {
        // Cancel-safe: every attempt's outcome is kept in `self` before the next await, and
        // an event or timer dropped mid-await loses nothing (the next attempt looks afresh).
        while let Some(pause) = self.step() {
            let State::Waiting(waiting) = &self.state else {
                break;
            };
            let mut timer = std::pin::pin!(tokio::time::sleep(pause));
            std::future::poll_fn(|cx| {
                if waiting.poll_event(cx).is_ready() {
                    return Poll::Ready(());
                }
                timer.as_mut().poll(cx)
            })
            .await;
        }
    }
}
