//! Typed watch handles. Dropping a handle removes its watcher.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::time::{Duration, Instant};

use crate::client::Shared;
use crate::error::Error;
use crate::session::{SessionState, WatchedEvent};

/// What the driver sends to a watch handle: an event, or the error that ended the session.
pub(crate) type WatchMsg = Result<WatchedEvent, Error>;

/// The driver's end of a watch.
#[derive(Debug)]
pub(crate) struct WatchSink {
    pub(crate) id: Arc<AtomicU64>,
    pub(crate) tx: Sender<WatchMsg>,
    /// Set by `exists`: its NoNode reply still leaves a watch (for the node's creation).
    pub(crate) set_on_no_node: bool,
}

#[derive(Debug)]
struct WatchHandle {
    id: Arc<AtomicU64>,
    rx: Receiver<WatchMsg>,
    shared: Arc<Shared>,
    /// A one-shot watch's event (or error) has been taken. The driver dropped its end when
    /// it delivered, so dropping the handle then needs no command to the driver.
    taken: AtomicBool,
    /// This thread already read the connection itself for the next message and none came:
    /// later waits leave the reading to the driver until a message arrives. A caller that
    /// polls a quiet watch with short timeouts thus makes one inline read, not one per poll.
    inline_dry: AtomicBool,
}

impl WatchHandle {
    fn new(shared: Arc<Shared>) -> (WatchHandle, WatchSink) {
        let (tx, rx) = std::sync::mpsc::channel();
        let id = Arc::new(AtomicU64::new(0));
        (
            WatchHandle {
                id: id.clone(),
                rx,
                shared,
                taken: AtomicBool::new(false),
                inline_dry: AtomicBool::new(false),
            },
            WatchSink {
                id,
                tx,
                set_on_no_node: false,
            },
        )
    }

    fn closed_error(&self) -> Error {
        self.shared
            .state()
            .terminal_error()
            .unwrap_or(Error::Closed)
    }

    fn recv(&self) -> Result<WatchedEvent, Error> {
        if let Some(msg) = self.recv_inline(Duration::MAX) {
            return msg;
        }
        let msg = match self.rx.recv() {
            Ok(msg) => msg,
            Err(_) => Err(self.closed_error()),
        };
        self.inline_dry.store(false, Ordering::Relaxed);
        msg
    }

    fn recv_timeout(&self, timeout: Duration) -> Result<WatchedEvent, Error> {
        #[allow(clippy::disallowed_methods)] // a caller-side deadline, not protocol time
        let start = Instant::now();
        if let Some(msg) = self.recv_inline(timeout) {
            return msg;
        }
        let msg = match self
            .rx
            .recv_timeout(timeout.saturating_sub(start.elapsed()))
        {
            Ok(msg) => msg,
            Err(RecvTimeoutError::Timeout) => return Err(Error::Timeout),
            Err(RecvTimeoutError::Disconnected) => Err(self.closed_error()),
        };
        self.inline_dry.store(false, Ordering::Relaxed);
        msg
    }

    /// The message, if it is there, or comes while this thread reads the idle connection
    /// itself for a short while ([`Shared::run_inline_wait`], at most `budget`). Only the
    /// first wait for each message reads; see `inline_dry`.
    fn recv_inline(&self, budget: Duration) -> Option<WatchMsg> {
        if let Some(msg) = self.try_recv() {
            return Some(msg);
        }
        if budget.is_zero() || self.inline_dry.load(Ordering::Relaxed) {
            return None;
        }
        let got = RefCell::new(None);
        let done = || {
            let mut got = got.borrow_mut();
            if got.is_none() {
                *got = self.try_recv();
            }
            got.is_some()
        };
        let ran = self.shared.run_inline_wait(&done, budget);
        let got = got.into_inner();
        if ran {
            if got.is_some() {
                self.shared.inline_events.fetch_add(1, Ordering::Relaxed);
            } else {
                self.inline_dry.store(true, Ordering::Relaxed);
            }
        }
        got
    }

    fn try_recv(&self) -> Option<Result<WatchedEvent, Error>> {
        let msg = match self.rx.try_recv() {
            Ok(msg) => msg,
            Err(TryRecvError::Empty) => return None,
            Err(TryRecvError::Disconnected) => Err(self.closed_error()),
        };
        self.inline_dry.store(false, Ordering::Relaxed);
        Some(msg)
    }
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        let id = self.id.load(Ordering::Acquire);
        if id != 0 && !self.taken.load(Ordering::Acquire) {
            self.shared.remove_watcher(id);
        }
    }
}

/// A one-shot watch (set by `exists`, `get_data` or `get_children`): fires at most once.
///
/// If the session ends first, waiting returns the session's error (e.g.
/// [`Error::SessionExpired`]). After a reconnect within the session the watch stays set, and
/// a change made while disconnected is delivered. Once the event (or the session's error) has
/// been taken, [`OneshotWatch::wait_timeout`] returns [`Error::InvalidUse`] and
/// [`OneshotWatch::try_take`] `None`, as for a consumed [`crate::Completion`].
#[derive(Debug)]
pub struct OneshotWatch {
    handle: WatchHandle,
}

impl OneshotWatch {
    pub(crate) fn new(shared: Arc<Shared>) -> (OneshotWatch, WatchSink) {
        let (handle, sink) = WatchHandle::new(shared);
        let watch = OneshotWatch { handle };
        (watch, sink)
    }

    /// For `exists`, whose NoNode reply still sets a watch (for the node's creation).
    pub(crate) fn new_for_exists(shared: Arc<Shared>) -> (OneshotWatch, WatchSink) {
        let (watch, mut sink) = OneshotWatch::new(shared);
        sink.set_on_no_node = true;
        (watch, sink)
    }

    /// Note that the message `r` (anything but a timeout) was taken.
    fn taken(&self, r: &Result<WatchedEvent, Error>) {
        if !matches!(r, Err(Error::Timeout)) {
            self.handle.taken.store(true, Ordering::Release);
        }
    }

    /// Block until the watch fires.
    pub fn wait(self) -> Result<WatchedEvent, Error> {
        if self.handle.taken.load(Ordering::Acquire) {
            return Err(Error::InvalidUse("the watch has already fired"));
        }
        let r = self.handle.recv();
        self.taken(&r);
        r
    }

    /// Block for at most `timeout`; `Err(Error::Timeout)` if it has not fired by then.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<WatchedEvent, Error> {
        if self.handle.taken.load(Ordering::Acquire) {
            return Err(Error::InvalidUse("the watch has already fired"));
        }
        let r = self.handle.recv_timeout(timeout);
        self.taken(&r);
        r
    }

    /// The event, if the watch has fired (and it was not taken yet).
    pub fn try_take(&self) -> Option<Result<WatchedEvent, Error>> {
        if self.handle.taken.load(Ordering::Acquire) {
            return None;
        }
        let r = self.handle.try_recv()?;
        self.taken(&r);
        Some(r)
    }
}

/// A persistent (or persistent-recursive) watch from `add_watch`: delivers every event until
/// dropped. Iterating yields events until the session ends.
#[derive(Debug)]
pub struct PersistentWatch(WatchHandle);

impl PersistentWatch {
    pub(crate) fn new(shared: Arc<Shared>) -> (PersistentWatch, WatchSink) {
        let (h, sink) = WatchHandle::new(shared);
        (PersistentWatch(h), sink)
    }

    /// Block for the next event.
    pub fn next_event(&self) -> Result<WatchedEvent, Error> {
        self.0.recv()
    }

    /// Block at most `timeout` for the next event.
    pub fn next_timeout(&self, timeout: Duration) -> Result<WatchedEvent, Error> {
        self.0.recv_timeout(timeout)
    }

    /// The next event if one is waiting.
    pub fn try_next(&self) -> Option<Result<WatchedEvent, Error>> {
        self.0.try_recv()
    }
}

impl Iterator for &PersistentWatch {
    type Item = WatchedEvent;
    fn next(&mut self) -> Option<WatchedEvent> {
        self.next_event().ok()
    }
}

/// Session state changes, from the moment the handle was made.
#[derive(Debug)]
pub struct StateWatch {
    pub(crate) rx: Receiver<SessionState>,
}

impl StateWatch {
    /// Block for the next state change; `None` once the client is gone.
    pub fn next_state(&self) -> Option<SessionState> {
        self.rx.recv().ok()
    }

    /// Block at most `timeout` for the next state change.
    pub fn next_timeout(&self, timeout: Duration) -> Option<SessionState> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// The next state change if one is waiting.
    pub fn try_next(&self) -> Option<SessionState> {
        self.rx.try_recv().ok()
    }
}

impl Iterator for &StateWatch {
    type Item = SessionState;
    fn next(&mut self) -> Option<SessionState> {
        self.next_state()
    }
}
