//! Completion handles: wait with a deadline from a plain thread, or `.await` them.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

use zk_proto::Response;

use crate::client::Shared;
use crate::driver::Command;
use crate::error::Error;

#[derive(Debug, Default)]
struct SlotState {
    result: Option<Result<Response, Error>>,
    thread: Option<Thread>,
    waker: Option<Waker>,
}

/// Wake-ups collected while completing a batch of operations.
#[derive(Debug, Default)]
pub(crate) struct Wakeups {
    threads: Vec<Thread>,
    wakers: Vec<Waker>,
}

impl Wakeups {
    /// Wake every collected waiter.
    pub(crate) fn wake_all(&mut self) {
        for t in self.threads.drain(..) {
            t.unpark();
        }
        for w in self.wakers.drain(..) {
            w.wake();
        }
    }
}

/// Where the driver puts one operation's outcome.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    state: Mutex<SlotState>,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Store the outcome and wake whoever waits. Only the first outcome counts.
    pub(crate) fn complete(&self, result: Result<Response, Error>) {
        let mut wakeups = Wakeups::default();
        self.complete_deferred(result, &mut wakeups);
        wakeups.wake_all();
    }

    /// Store the outcome; the waiter's wake-up goes into `wakeups` for later, so that a batch
    /// of completions wakes each waiter once, after the whole batch is in place.
    pub(crate) fn complete_deferred(&self, result: Result<Response, Error>, wakeups: &mut Wakeups) {
        let mut s = self.lock();
        if s.result.is_some() {
            return;
        }
        s.result = Some(result);
        if let Some(t) = s.thread.take() {
            wakeups.threads.push(t);
        }
        if let Some(w) = s.waker.take() {
            wakeups.wakers.push(w);
        }
    }

    /// Whether the outcome is in.
    pub(crate) fn is_done(&self) -> bool {
        self.lock().result.is_some()
    }

    fn take(&self) -> Option<Result<Response, Error>> {
        self.lock().result.take()
    }

    /// Block until completed or `deadline` passes.
    fn wait(&self, deadline: Option<Instant>) -> Option<Result<Response, Error>> {
        // Waiting inside a `Client::batch`: what it collected must go out first, or this
        // operation (if it is one of them) would never be sent.
        crate::client::flush_open_batch();
        loop {
            {
                let mut s = self.lock();
                if let Some(r) = s.result.take() {
                    return Some(r);
                }
                s.thread = Some(std::thread::current());
            }
            match deadline {
                None => std::thread::park(),
                Some(d) => {
                    #[allow(clippy::disallowed_methods)] // a caller-side wait, not protocol time
                    let now = Instant::now();
                    if now >= d {
                        let mut s = self.lock();
                        s.thread = None;
                        return s.result.take();
                    }
                    std::thread::park_timeout(d - now);
                }
            }
        }
    }
}

type MapFn<T> = Box<dyn FnOnce(Result<Response, Error>) -> Result<T, Error> + Send>;

/// The pending outcome of one operation.
///
/// Wait for it from any thread with [`Completion::wait`] (or with a deadline), or `.await`
/// it from any executor: it implements [`Future`]. Dropping it does not cancel the
/// operation; the outcome is then discarded.
#[must_use = "the operation runs anyway; wait on the completion to learn its outcome"]
pub struct Completion<T> {
    slot: Arc<Slot>,
    map: Option<MapFn<T>>,
    /// A blocking call's request, not yet handed to the driver: [`Completion::wait`] first
    /// tries to run it on the waiting thread. Every other use sends it to the driver first.
    unsent: Option<(Arc<Shared>, Command)>,
}

impl<T> std::fmt::Debug for Completion<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Completion")
            .field("done", &self.slot.lock().result.is_some())
            .finish()
    }
}

impl<T> Completion<T> {
    pub(crate) fn new(slot: Arc<Slot>, map: MapFn<T>) -> Completion<T> {
        Completion {
            slot,
            map: Some(map),
            unsent: None,
        }
    }

    /// A completion whose request is still to be sent (see [`Completion::wait`]).
    pub(crate) fn unsent(
        slot: Arc<Slot>,
        map: MapFn<T>,
        shared: Arc<Shared>,
        cmd: Command,
    ) -> Completion<T> {
        Completion {
            slot,
            map: Some(map),
            unsent: Some((shared, cmd)),
        }
    }

    /// Hand a held-back request to the driver.
    fn send(&mut self) {
        if let Some((shared, cmd)) = self.unsent.take() {
            if let Err(e) = shared.push(cmd) {
                self.slot.complete(Err(e));
            }
        }
    }

    /// A completion that is already failed.
    pub(crate) fn failed(err: Error) -> Completion<T> {
        let slot = Arc::new(Slot::default());
        slot.complete(Err(err));
        Completion::new(
            slot,
            Box::new(|r| r.and_then(|_| Err(Error::InvalidUse("unreachable")))),
        )
    }

    fn finish(&mut self, r: Result<Response, Error>) -> Result<T, Error> {
        match self.map.take() {
            Some(map) => map(r),
            None => Err(Error::InvalidUse("completion already consumed")),
        }
    }

    /// Block until the operation completes.
    pub fn wait(mut self) -> Result<T, Error> {
        if let Some((shared, cmd)) = self.unsent.take() {
            // Run it on this thread if the connection is idle, else hand it to the driver.
            if let Some(cmd) = shared.run_inline(cmd) {
                self.unsent = Some((shared, cmd));
                self.send();
            }
        }
        match self.slot.wait(None) {
            Some(r) => self.finish(r),
            None => Err(Error::Timeout),
        }
    }

    /// Block for at most `timeout`. `Err(Error::Timeout)` when it passes first; the handle
    /// can then be waited on again.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<T, Error> {
        #[allow(clippy::disallowed_methods)] // a caller-side deadline
        let deadline = Instant::now() + timeout;
        self.wait_deadline(deadline)
    }

    /// Block until `deadline` at most. `Err(Error::Timeout)` when it passes first.
    pub fn wait_deadline(&mut self, deadline: Instant) -> Result<T, Error> {
        if self.map.is_none() {
            return Err(Error::InvalidUse("completion already consumed"));
        }
        self.send();
        match self.slot.wait(Some(deadline)) {
            Some(r) => self.finish(r),
            None => Err(Error::Timeout),
        }
    }

    /// The outcome if the operation has completed, without blocking.
    pub fn try_take(&mut self) -> Option<Result<T, Error>> {
        self.map.as_ref()?;
        self.send();
        let r = self.slot.take()?;
        Some(self.finish(r))
    }
}

impl<T> Unpin for Completion<T> {}

impl<T> Drop for Completion<T> {
    fn drop(&mut self) {
        self.send();
    }
}

impl<T> Future for Completion<T> {
    type Output = Result<T, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.send();
        let r = {
            let mut s = self.slot.lock();
            match s.result.take() {
                Some(r) => r,
                None => {
                    s.waker = Some(cx.waker().clone());
                    drop(s);
                    crate::client::flush_open_batch();
                    return Poll::Pending;
                }
            }
        };
        Poll::Ready(self.finish(r))
    }
}

#[cfg(test)]
mod tests {
    use super::Completion;
    use crate::client::Client;

    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}

    /// The handles cross threads and executors: the client is `Send + Sync`, a completion
    /// (which may carry a held-back request) is `Send`.
    #[test]
    fn handles_are_send() {
        send_sync::<Client>();
        send::<Completion<Vec<u8>>>();
    }
}
