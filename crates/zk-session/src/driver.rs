//! The mio driver: the only code that touches sockets or reads the clock.
//!
//! One thread per client owns the mio [`Poll`]; the session core, the sockets and the routing
//! tables live in an [`Engine`] behind a mutex in [`Shared`]. User threads hand the driver
//! [`Command`]s through a mutex-protected queue and wake it with a [`mio::Waker`] only when
//! it may be blocked. Each turn of the loop locks the engine, reads the clock once, feeds
//! commands, socket events and timeouts into the core, then drains the core's outputs:
//! actions (connect, disconnect, probe), coalesced bytes to write, and events (completions,
//! watch notifications, state changes) that it routes to completion slots and watch channels.
//!
//! A blocking call on an idle connection skips the hand-offs: the caller locks the engine and
//! runs the same code on its own thread ([`Shared::run_inline`]).

#![allow(clippy::disallowed_methods)] // the driver is where the clock is read

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Registry, Token};
use tracing::{debug, trace, warn};
use zk_proto::Request;

use crate::client::Shared;
use crate::completion::{Slot, Wakeups};
use crate::error::Error;
use crate::hosts::HostAddr;
use crate::session::{Action, ConnId, Event, OpId, Session, SessionState};
use crate::watch::WatchSink;

pub(crate) const WAKER: Token = Token(0);
const CONN: Token = Token(1);
const PROBE: Token = Token(2);

/// With at least this many requests in flight, the driver lets replies gather for
/// [`COALESCE`] before it looks at the socket again. Queueing delay at this depth is already
/// milliseconds, so the added delay is small against it, and it cuts wake-ups per reply
/// several-fold. Measured on W2 against a 3.8 server: 100 µs halves client CPU and raises
/// throughput; 300 µs or more starves the server's pipeline (its CPU per request rises by
/// half and throughput falls by a third).
const COALESCE_IN_FLIGHT: usize = 128;
const COALESCE: Duration = Duration::from_micros(100);

/// How long a blocking caller may wait on the socket itself before it hands the wait back
/// to the driver.
const INLINE_BUDGET: Duration = Duration::from_millis(250);
/// The caller's reads time out after a slice that starts at the first value and doubles up
/// to the second; after each, it hands back at once if another thread has queued a request,
/// so that one slow call delays other threads' requests by at most the largest slice.
const INLINE_SLICES: (Duration, Duration) = (Duration::from_millis(1), Duration::from_millis(8));
/// How long a thread waiting for a watch event may read the idle connection itself before it
/// leaves the reading to the driver. Its reads time out after the first of
/// [`INLINE_SLICES`], always: a wait may be long, so other threads' requests must not wait
/// behind it for more than that.
const INLINE_WAIT_BUDGET: Duration = Duration::from_millis(20);
/// How long a caller about to run inline waits for a driver turn in progress to end before
/// it hands its request to the driver instead.
const INLINE_ENTRY_SPIN: Duration = Duration::from_micros(200);

/// What user threads ask of the driver.
pub(crate) enum Command {
    Submit {
        request: Request,
        slot: Arc<Slot>,
        watch: Option<WatchSink>,
        unrooted: bool,
    },
    AddAuth {
        scheme: String,
        auth: Bytes,
        slot: Arc<Slot>,
    },
    RemoveWatcher(u64),
    Close(Arc<Slot>),
}

struct Conn {
    id: ConnId,
    stream: TcpStream,
    /// A second handle on the same socket (a dup of its descriptor), for the blocking reads
    /// of [`Shared::run_inline`]: mio's stream offers no blocking mode.
    reader: std::net::TcpStream,
    established: bool,
    /// Registered for writability too: while connecting, and while output waits for room.
    /// Otherwise only for readability, so that re-registering after an inline read does not
    /// wake the driver for a socket that is merely writable.
    wants_write: bool,
    /// The read timeout last set on `reader`, when it may be reused.
    read_timeout: Option<Duration>,
}

impl Conn {
    fn interest(&self) -> Interest {
        if self.wants_write {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        }
    }

    fn want_write(&mut self, registry: &Registry, on: bool) {
        if self.wants_write != on {
            self.wants_write = on;
            let interest = self.interest();
            if let Err(e) = registry.reregister(&mut self.stream, CONN, interest) {
                warn!(error = %e, "reregister failed");
            }
        }
    }
}

struct Probe {
    id: u64,
    stream: TcpStream,
    sent: bool,
    reply: Vec<u8>,
    deadline: Instant,
}

/// Everything the driver works on, behind [`Shared::engine`]: the session core, the sockets
/// and the routing tables. The driver thread locks it for each turn of its loop (never while
/// it blocks in `poll`); a blocking caller may lock it to run its own request inline.
pub(crate) struct Engine {
    core: Session,
    registry: Registry,
    conn: Option<Conn>,
    probe: Option<Probe>,
    slots: HashMap<OpId, Arc<Slot>>,
    sinks: HashMap<u64, WatchSink>,
    close_slots: Vec<Arc<Slot>>,
    cmds: Vec<Command>,
    readbuf: Vec<u8>,
    wakeups: Wakeups,
    /// When the driver thread looks again at the latest, if it is blocked in `poll`
    /// (`None`: only when an event comes).
    planned_wake: Option<Instant>,
}

/// The driver thread's own part: the mio [`Poll`].
pub(crate) struct Driver {
    poll: Poll,
    shared: Arc<Shared>,
}

impl Engine {
    pub(crate) fn new(core: Session, registry: Registry) -> Engine {
        Engine {
            core,
            registry,
            conn: None,
            probe: None,
            slots: HashMap::new(),
            sinks: HashMap::new(),
            close_slots: Vec::new(),
            cmds: Vec::new(),
            readbuf: vec![0; 64 * 1024],
            wakeups: Wakeups::default(),
            planned_wake: None,
        }
    }
}

impl Driver {
    pub(crate) fn new(poll: Poll, shared: Arc<Shared>) -> Driver {
        Driver { poll, shared }
    }

    /// Run until the session is over (expired, auth failed or closed).
    ///
    /// One turn: lock the engine once, handle what the poll reported, the queued commands
    /// and the core's timers, drain the core's outputs, unlock, and only then wake the
    /// threads whose operations completed (a woken thread finds the engine free, so its next
    /// blocking call can take the inline path at once).
    pub(crate) fn run(mut self) {
        let span = tracing::debug_span!("zk_driver");
        let _guard = span.enter();
        let shared = self.shared.clone();
        let mut events = Events::with_capacity(64);
        let mut ready: Vec<(Token, bool, bool)> = Vec::new();
        loop {
            let (mut timeout, in_flight, mut wakeups, terminal) = {
                let mut e = shared.lock_engine();
                let now = Instant::now();
                for (token, readable, writable) in ready.drain(..) {
                    match token {
                        CONN => e.on_conn_event(now, readable, writable),
                        PROBE => e.on_probe_event(now),
                        _ => {}
                    }
                }
                e.check_probe_deadline(now);
                e.drain_commands(&shared, now);
                e.core.handle_timeout(now);
                e.process_outputs(&shared, now);
                let terminal = e.core.state().is_terminal();
                if terminal {
                    e.shutdown(&shared);
                }
                let now = Instant::now();
                let mut timeout = e
                    .core
                    .poll_timeout()
                    .map(|(at, _)| at.saturating_duration_since(now));
                if let Some(p) = &e.probe {
                    let left = p.deadline.saturating_duration_since(now);
                    timeout = Some(timeout.map_or(left, |t| t.min(left)));
                }
                e.planned_wake = timeout.map(|t| now + t);
                // Lazy wake-ups are only safe while the socket is established and requests
                // are really on their way to the server.
                let in_flight = match &e.conn {
                    Some(c) if c.established && e.core.state().is_connected() => e.core.in_flight(),
                    _ => 0,
                };
                shared.in_flight.store(in_flight, Ordering::SeqCst);
                shared.needs_wake.store(true, Ordering::SeqCst);
                (timeout, in_flight, std::mem::take(&mut e.wakeups), terminal)
            };
            wakeups.wake_all();
            if terminal {
                break;
            }
            if shared.has_commands() {
                timeout = Some(Duration::ZERO);
            } else if in_flight >= COALESCE_IN_FLIGHT {
                // A deep pipeline: the server has plenty queued, and replies trickle in one
                // by one. Let them gather for a moment, so one wake-up serves many of them
                // rather than each costing two context switches.
                std::thread::sleep(COALESCE);
                // Then read them at once: asking the poll first would only say what the read
                // finds out, one syscall later. Nothing there: wait in the poll as usual.
                let mut e = shared.lock_engine();
                if e.read_gathered(Instant::now()) {
                    continue;
                }
            }
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    warn!(error = %e, "poll failed");
                }
            }
            shared.needs_wake.store(false, Ordering::SeqCst);
            ready.extend(
                events
                    .iter()
                    .map(|ev| (ev.token(), ev.is_readable(), ev.is_writable())),
            );
        }
    }
}

impl Shared {
    /// Run a blocking caller's request on the caller's own thread, sparing the two thread
    /// hand-offs (caller to driver, driver to caller) that otherwise dominate a sequential
    /// call's overhead.
    ///
    /// Only taken when the connection is idle: established, connected, nothing in flight or
    /// queued, and the driver not busy. The request is submitted and written here; the caller
    /// then reads the socket itself (blocking, in the socket's own mode; the driver's poll
    /// does not see it meanwhile) until its reply is in, the core wants to act (a timer,
    /// bytes to send, a reconnect), another thread queues a request (noticed within
    /// [`INLINE_SLICES`]) or [`INLINE_BUDGET`] passes. Everything read is handled by
    /// the core exactly as the driver would handle it, watch events included; whatever is
    /// left is handed back to the driver. Gives the command back, untouched, when the path is
    /// not open.
    pub(crate) fn run_inline(&self, cmd: Command) -> Option<Command> {
        match self.run_inline_batch(vec![cmd]) {
            Ok(()) => None,
            Err(mut cmds) => cmds.pop(),
        }
    }

    /// [`Shared::run_inline`] for requests sent back to back ([`crate::Client::batch`]): all
    /// are written at once, and the caller reads until the last reply is in (replies come in
    /// order). Only `Submit` commands qualify; gives the commands back, untouched, when the
    /// path is not open.
    pub(crate) fn run_inline_batch(&self, cmds: Vec<Command>) -> Result<(), Vec<Command>> {
        if cmds.is_empty() || !cmds.iter().all(|c| matches!(c, Command::Submit { .. })) {
            return Err(cmds);
        }
        let Some(mut e) = self.engine_for_inline() else {
            return Err(cmds);
        };
        self.inline_runs.fetch_add(1, Ordering::Relaxed);
        let submits: Vec<_> = cmds
            .into_iter()
            .filter_map(|cmd| match cmd {
                Command::Submit {
                    request,
                    slot,
                    watch,
                    unrooted,
                } => Some((request, slot, watch, unrooted)),
                _ => None, // excluded above
            })
            .collect();
        // Replies come in order: the last one in means all are.
        let last = submits[submits.len() - 1].1.clone();
        e.inline(
            self,
            submits,
            &|| last.is_done(),
            INLINE_BUDGET,
            INLINE_SLICES.1,
        );
        self.hand_back(e, last.is_done());
        Ok(())
    }

    /// Wait on the caller's own thread for `done` (its watch event) while the connection is
    /// idle, as [`Shared::run_inline`] waits for a reply: the event then needs no hand-off
    /// from the driver thread, which matters when the event starts the caller's next request
    /// (a lock waiter's turn). Reads for at most `budget` (capped by [`INLINE_WAIT_BUDGET`])
    /// in slices of the shortest read timeout, handing the socket back as soon as another
    /// thread queues a request; whether it ran.
    pub(crate) fn run_inline_wait(&self, done: &dyn Fn() -> bool, budget: Duration) -> bool {
        let Some(mut e) = self.engine_for_inline() else {
            return false;
        };
        self.inline_waits.fetch_add(1, Ordering::Relaxed);
        e.inline(
            self,
            Vec::new(),
            done,
            budget.min(INLINE_WAIT_BUDGET),
            INLINE_SLICES.0,
        );
        let finished = done();
        self.hand_back(e, finished);
        true
    }

    /// The engine, locked for an inline run, if the path is open: the connection is idle
    /// and nothing is queued. A driver turn in progress is waited out (it is short, and
    /// the thread it just woke is typically the one asking); another thread's inline run
    /// is not (it may wait on the server for long), nor is a turn that takes longer than
    /// [`INLINE_ENTRY_SPIN`].
    fn engine_for_inline(&self) -> Option<MutexGuard<'_, Engine>> {
        let mut spun_since = None;
        let e = loop {
            match self.engine.try_lock() {
                Ok(e) => break e,
                Err(TryLockError::Poisoned(p)) => break p.into_inner(),
                Err(TryLockError::WouldBlock) => {
                    if self.inline_active.load(Ordering::Acquire) {
                        return None;
                    }
                    let since = *spun_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > INLINE_ENTRY_SPIN {
                        return None;
                    }
                    std::thread::yield_now();
                }
            }
        };
        if !e.can_run_inline() || self.has_commands() {
            return None;
        }
        self.inline_active.store(true, Ordering::Release);
        Some(e)
    }

    /// After an inline run: unlock, wake the threads whose operations it completed, and
    /// wake the driver if the wait is not over (the driver reads on) or if the core now
    /// wants a timer sooner than the driver planned to wake.
    fn hand_back(&self, mut e: MutexGuard<'_, Engine>, finished: bool) {
        let driver_needed = !finished
            || match (e.core.poll_timeout(), e.planned_wake) {
                (Some((at, _)), Some(planned)) => at < planned,
                (Some(_), None) => true,
                (None, _) => false,
            };
        let mut wakeups = std::mem::take(&mut e.wakeups);
        self.inline_active.store(false, Ordering::Release);
        drop(e);
        wakeups.wake_all();
        if driver_needed {
            let _ = self.waker.wake();
        }
    }
}

impl Engine {
    fn can_run_inline(&self) -> bool {
        self.conn
            .as_ref()
            .is_some_and(|c| c.established && Some(c.id) == self.core.current_conn())
            && self.core.state().is_connected()
            && self.core.in_flight() == 0
            && self.core.queued() == 0
            && self.core.transmit().is_empty()
            && self.probe.is_none()
    }

    /// The body of [`Shared::run_inline`] and [`Shared::run_inline_wait`]: submit and write
    /// `submits` (if any), then read until `done()` (or the other conditions there), for at
    /// most `budget`, with read timeouts growing from the first of [`INLINE_SLICES`] to
    /// `max_slice`. The socket leaves the driver's poll first, so that what arrives cannot
    /// wake the driver thread too; it returns before the engine is unlocked.
    fn inline(
        &mut self,
        shared: &Shared,
        submits: Vec<(Request, Arc<Slot>, Option<WatchSink>, bool)>,
        done: &dyn Fn() -> bool,
        budget: Duration,
        max_slice: Duration,
    ) {
        let Some(mut conn) = self.conn.take() else {
            // Unreachable after `can_run_inline`; keep the requests anyway.
            let now = Instant::now();
            for (request, slot, watch, unrooted) in submits {
                self.submit(now, request, slot, watch, unrooted);
            }
            return;
        };
        let id = conn.id;
        let now = Instant::now();
        if self.registry.deregister(&mut conn.stream).is_err() {
            self.conn = Some(conn);
            for (request, slot, watch, unrooted) in submits {
                self.submit(now, request, slot, watch, unrooted);
            }
            return;
        }
        let deadline = now + budget;
        for (request, slot, watch, unrooted) in submits {
            self.submit(now, request, slot, watch, unrooted);
        }
        // Write the request (a full send buffer leaves the rest to the driver).
        let written = write_pending(&mut self.core, &mut conn.stream, now);
        let mut lost = written == Written::Lost;
        let wait = written == Written::All && !done();
        let mut slice = INLINE_SLICES.0;
        if wait {
            lost = conn.reader.set_nonblocking(false).is_err();
        }
        while wait && !lost && !done() {
            let now = Instant::now();
            let timer = self.core.poll_timeout().map(|(at, _)| at);
            if now >= deadline || timer.is_some_and(|at| at <= now) {
                break;
            }
            // A read waits one slice, or less when a timer of the core is due sooner; the
            // socket's timeout is re-armed only when it changes.
            let timeout = match timer {
                Some(at) if at < now + slice => at - now,
                _ => slice,
            };
            if conn.read_timeout != Some(timeout) {
                if conn.reader.set_read_timeout(Some(timeout)).is_err() {
                    break;
                }
                conn.read_timeout = Some(timeout);
            }
            match (&conn.reader).read(&mut self.readbuf) {
                Ok(0) => lost = true,
                Ok(n) => {
                    self.core
                        .handle_bytes(Instant::now(), id, &self.readbuf[..n]);
                    while let Some(event) = self.core.poll_event() {
                        self.dispatch(shared, event);
                    }
                    if self.core.has_pending_actions()
                        || !self.core.transmit().is_empty()
                        || shared.has_commands()
                    {
                        break;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if shared.has_commands() {
                        break;
                    }
                    slice = (slice * 2).min(max_slice);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    debug!(error = %e, "inline read failed");
                    lost = true;
                }
            }
        }
        // Give the socket back to the driver's poll (registering reports any readiness
        // that is already there, so nothing that arrived meanwhile is missed).
        conn.wants_write = !self.core.transmit().is_empty();
        let interest = conn.interest();
        let now = Instant::now();
        if lost
            || (wait && conn.reader.set_nonblocking(true).is_err())
            || self
                .registry
                .register(&mut conn.stream, CONN, interest)
                .is_err()
        {
            // The socket is unusable by the driver: the connection is over.
            self.core.handle_disconnected(now, id);
        } else {
            self.conn = Some(conn);
        }
        self.core.handle_timeout(now);
        self.process_outputs(shared, now);
    }

    fn shutdown(&mut self, shared: &Shared) {
        let err = self.core.state().terminal_error().unwrap_or(Error::Closed);
        let leftover = shared.close_queue(err.clone());
        for cmd in leftover {
            fail_command(cmd, &err);
        }
        for (_, slot) in self.slots.drain() {
            slot.complete(Err(err.clone()));
        }
        for (_, sink) in self.sinks.drain() {
            let _ = sink.tx.send(Err(err.clone()));
        }
        for slot in self.close_slots.drain(..) {
            slot.complete(Ok(zk_proto::Response::Empty));
        }
        self.conn = None;
        self.probe = None;
    }

    fn drain_commands(&mut self, shared: &Shared, now: Instant) {
        shared.take_commands(&mut self.cmds);
        let mut cmds = std::mem::take(&mut self.cmds);
        for cmd in cmds.drain(..) {
            match cmd {
                Command::Submit {
                    request,
                    slot,
                    watch,
                    unrooted,
                } => self.submit(now, request, slot, watch, unrooted),
                Command::AddAuth { scheme, auth, slot } => {
                    match self.core.add_auth(now, &scheme, auth) {
                        Ok(op) => {
                            self.slots.insert(op, slot);
                        }
                        Err(e) => slot.complete(Err(e)),
                    }
                }
                Command::RemoveWatcher(id) => {
                    self.sinks.remove(&id);
                    self.core.remove_watcher(now, id);
                }
                Command::Close(slot) => {
                    self.close_slots.push(slot);
                    self.core.close(now);
                }
            }
        }
        self.cmds = cmds;
    }

    fn submit(
        &mut self,
        now: Instant,
        request: Request,
        slot: Arc<Slot>,
        watch: Option<WatchSink>,
        unrooted: bool,
    ) {
        let submitted = if unrooted {
            self.core.submit_unrooted(now, request)
        } else {
            self.core.submit(now, request)
        };
        match submitted {
            Ok(op) => {
                self.slots.insert(op, slot);
                if let Some(sink) = watch {
                    sink.id.store(op, Ordering::Release);
                    self.sinks.insert(op, sink);
                }
            }
            Err(e) => slot.complete(Err(e)),
        }
    }

    /// Drain the core: actions, bytes to write, events; repeat while actions cause more.
    /// Waiters of completed operations are collected in `wakeups`, for whoever unlocks the
    /// engine to wake.
    fn process_outputs(&mut self, shared: &Shared, now: Instant) {
        loop {
            let mut acted = false;
            while let Some(action) = self.core.poll_action() {
                acted = true;
                self.do_action(now, action);
            }
            self.flush(now);
            while let Some(event) = self.core.poll_event() {
                self.dispatch(shared, event);
            }
            if !acted {
                break;
            }
        }
    }

    fn do_action(&mut self, now: Instant, action: Action) {
        match action {
            Action::Connect { conn, host } => {
                if let Some(old) = self.conn.take() {
                    self.deregister(old.stream);
                }
                match connect(&host).and_then(with_reader) {
                    Ok((mut stream, reader)) => {
                        let interest = Interest::READABLE | Interest::WRITABLE;
                        if let Err(e) = self.registry.register(&mut stream, CONN, interest) {
                            warn!(error = %e, "register failed");
                            self.core.handle_disconnected(now, conn);
                            return;
                        }
                        self.conn = Some(Conn {
                            id: conn,
                            stream,
                            reader,
                            established: false,
                            wants_write: true,
                            read_timeout: None,
                        });
                    }
                    Err(e) => {
                        debug!(host = %host, error = %e, "connect failed");
                        self.core.handle_disconnected(now, conn);
                    }
                }
            }
            Action::Disconnect { conn } => {
                if self.conn.as_ref().is_some_and(|c| c.id == conn) {
                    if let Some(old) = self.conn.take() {
                        self.deregister(old.stream);
                    }
                }
            }
            Action::Probe { probe, host } => {
                if let Some(old) = self.probe.take() {
                    self.deregister(old.stream);
                }
                match connect(&host) {
                    Ok(mut stream) => {
                        let interest = Interest::READABLE | Interest::WRITABLE;
                        if self.registry.register(&mut stream, PROBE, interest).is_ok() {
                            self.probe = Some(Probe {
                                id: probe,
                                stream,
                                sent: false,
                                reply: Vec::new(),
                                deadline: now + Duration::from_secs(2),
                            });
                            return;
                        }
                        self.core.handle_probe_result(now, probe, false);
                    }
                    Err(_) => self.core.handle_probe_result(now, probe, false),
                }
            }
        }
    }

    fn deregister(&mut self, mut stream: TcpStream) {
        let _ = self.registry.deregister(&mut stream);
    }

    /// Write as much of the pending output as the socket takes.
    fn flush(&mut self, now: Instant) {
        let Some(conn) = &mut self.conn else { return };
        if !conn.established {
            return;
        }
        match write_pending(&mut self.core, &mut conn.stream, now) {
            Written::All => conn.want_write(&self.registry, false),
            Written::Full => conn.want_write(&self.registry, true),
            Written::Lost => self.core.handle_disconnected(now, conn.id),
        }
    }

    fn on_conn_event(&mut self, now: Instant, readable: bool, writable: bool) {
        let Some(conn) = &mut self.conn else { return };
        let id = conn.id;
        if !conn.established {
            if !(writable || readable) {
                return;
            }
            match conn.stream.take_error() {
                Ok(None) => {}
                Ok(Some(e)) | Err(e) => {
                    debug!(error = %e, "connect failed");
                    self.core.handle_disconnected(now, id);
                    return;
                }
            }
            match conn.stream.peer_addr() {
                Ok(_) => {
                    let _ = conn.stream.set_nodelay(true);
                    conn.established = true;
                    self.core.handle_connected(now, id);
                }
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(e) => {
                    debug!(error = %e, "connect failed");
                    self.core.handle_disconnected(now, id);
                    return;
                }
            }
        }
        if readable {
            self.read_all(now, id);
        }
    }

    /// Read what has gathered on an established connection without asking the poll first;
    /// whether anything came. Stops at a short read (the socket is then drained for now):
    /// the poll's readiness is edge-triggered, but new data raises a new edge, and a
    /// readiness left over from what this read took costs one empty read later.
    fn read_gathered(&mut self, now: Instant) -> bool {
        match &self.conn {
            Some(conn) if conn.established => {
                let id = conn.id;
                self.read_conn(now, id, true)
            }
            _ => false,
        }
    }

    /// Read the connection until the socket is drained (`WouldBlock`), as the edge-triggered
    /// poll requires.
    fn read_all(&mut self, now: Instant, id: ConnId) {
        self.read_conn(now, id, false);
    }

    /// Read connection `id` and feed the core until `WouldBlock`, or with `stop_short` until
    /// the first read that does not fill the buffer. Whether anything happened (bytes, or
    /// the connection's end).
    fn read_conn(&mut self, now: Instant, id: ConnId, stop_short: bool) -> bool {
        let mut got = false;
        loop {
            let Some(conn) = &mut self.conn else {
                return got;
            };
            if conn.id != id {
                return got;
            }
            match conn.stream.read(&mut self.readbuf) {
                Ok(0) => {
                    debug!("server closed the connection");
                    self.core.handle_disconnected(now, id);
                    return true;
                }
                Ok(n) => {
                    got = true;
                    self.core.handle_bytes(now, id, &self.readbuf[..n]);
                    if stop_short && n < self.readbuf.len() {
                        return true;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return got,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    debug!(error = %e, "read failed");
                    self.core.handle_disconnected(now, id);
                    return true;
                }
            }
        }
    }

    fn on_probe_event(&mut self, now: Instant) {
        let Some(p) = &mut self.probe else { return };
        if !p.sent {
            if p.stream.peer_addr().is_err() {
                return;
            }
            match p.stream.write(b"isro") {
                Ok(4) => p.sent = true,
                Ok(_) | Err(_) => {
                    self.finish_probe(now, false);
                    return;
                }
            }
        }
        let mut buf = [0u8; 64];
        loop {
            let Some(p) = &mut self.probe else { return };
            match p.stream.read(&mut buf) {
                Ok(0) => {
                    let rw = p.reply.starts_with(b"rw");
                    self.finish_probe(now, rw);
                    return;
                }
                Ok(n) => p.reply.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.finish_probe(now, false);
                    return;
                }
            }
        }
    }

    fn check_probe_deadline(&mut self, now: Instant) {
        if self.probe.as_ref().is_some_and(|p| now >= p.deadline) {
            self.finish_probe(now, false);
        }
    }

    fn finish_probe(&mut self, now: Instant, rw: bool) {
        if let Some(p) = self.probe.take() {
            let id = p.id;
            self.deregister(p.stream);
            self.core.handle_probe_result(now, id, rw);
        }
    }

    fn dispatch(&mut self, shared: &Shared, event: Event) {
        match event {
            Event::Completed { op, result } => {
                // Decide from the op's own result whether it left a watch. The registry is no
                // guide here: all frames of one read are handled before events are dispatched,
                // so a notification right behind this reply may already have fired (and
                // removed) the watch; its Event::Watch follows this one and needs the sink.
                if let Some(sink) = self.sinks.get(&op) {
                    let set = match &result {
                        Ok(_) => true,
                        Err(Error::NoNode) => sink.set_on_no_node,
                        Err(_) => false,
                    };
                    if !set {
                        self.sinks.remove(&op);
                    }
                }
                if let Some(slot) = self.slots.remove(&op) {
                    slot.complete_deferred(result, &mut self.wakeups);
                }
            }
            Event::Watch { watcher, event } => {
                let one_shot_done = !self.core.watches().contains(watcher);
                let delivered = match self.sinks.get(&watcher) {
                    Some(sink) => sink.tx.send(Ok(event)).is_ok(),
                    None => false,
                };
                if one_shot_done {
                    self.sinks.remove(&watcher);
                } else if !delivered {
                    self.sinks.remove(&watcher);
                    #[allow(clippy::disallowed_methods)]
                    self.core.remove_watcher(Instant::now(), watcher);
                }
            }
            Event::WatchLost { watcher } => {
                if let Some(sink) = self.sinks.remove(&watcher) {
                    let _ = sink.tx.send(Err(Error::WatchLost));
                }
            }
            Event::State(state) => {
                shared.publish_state(
                    state,
                    self.core.session_id(),
                    self.core.password().clone(),
                    self.core.negotiated_timeout(),
                );
                if state == SessionState::Closed {
                    for slot in self.close_slots.drain(..) {
                        slot.complete(Ok(zk_proto::Response::Empty));
                    }
                }
            }
        }
    }
}

pub(crate) fn fail_command(cmd: Command, err: &Error) {
    match cmd {
        Command::Submit { slot, .. } | Command::AddAuth { slot, .. } => {
            slot.complete(Err(err.clone()))
        }
        Command::Close(slot) => slot.complete(Ok(zk_proto::Response::Empty)),
        Command::RemoveWatcher(_) => {}
    }
}

/// How far [`write_pending`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    /// Everything pending is written.
    All,
    /// The socket's send buffer is full; the rest waits for writability.
    Full,
    /// The connection failed (or the peer is gone).
    Lost,
}

/// Write as much of the core's pending output to `stream` as it takes.
fn write_pending(core: &mut Session, stream: &mut TcpStream, now: Instant) -> Written {
    loop {
        let data = core.transmit();
        if data.is_empty() {
            return Written::All;
        }
        match stream.write(data) {
            Ok(0) => return Written::Lost,
            Ok(n) => {
                trace!(bytes = n, "wrote");
                core.advance_transmit(now, n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Written::Full,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                debug!(error = %e, "write failed");
                return Written::Lost;
            }
        }
    }
}

/// Split a stream into the driver's non-blocking handle and a second handle on the same
/// socket for blocking reads.
fn with_reader(stream: TcpStream) -> io::Result<(TcpStream, std::net::TcpStream)> {
    let std_stream = std::net::TcpStream::from(stream);
    let reader = std_stream.try_clone()?;
    Ok((TcpStream::from_std(std_stream), reader))
}

fn connect(host: &HostAddr) -> io::Result<TcpStream> {
    let addrs: Vec<SocketAddr> = (host.host.as_str(), host.port).to_socket_addrs()?.collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "host resolves to no address");
    for addr in addrs {
        match TcpStream::connect(addr) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}
