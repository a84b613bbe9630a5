//! The mio driver: the only code that touches sockets or reads the clock.
//!
//! One thread per client owns the mio [`Poll`], the sockets and the [`Session`] core. User
//! threads hand it [`Command`]s through a mutex-protected queue and wake it with a
//! [`mio::Waker`] only when it may be blocked. Each loop iteration reads the clock once, feeds
//! commands, socket events and timeouts into the core, then drains the core's outputs: actions
//! (connect, disconnect, probe), coalesced bytes to write, and events (completions, watch
//! notifications, state changes) that it routes to completion slots and watch channels.

#![allow(clippy::disallowed_methods)] // the driver is where the clock is read

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
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
    established: bool,
}

struct Probe {
    id: u64,
    stream: TcpStream,
    sent: bool,
    reply: Vec<u8>,
    deadline: Instant,
}

pub(crate) struct Driver {
    core: Session,
    poll: Poll,
    shared: Arc<Shared>,
    conn: Option<Conn>,
    probe: Option<Probe>,
    slots: HashMap<OpId, Arc<Slot>>,
    sinks: HashMap<u64, WatchSink>,
    close_slots: Vec<Arc<Slot>>,
    cmds: Vec<Command>,
    readbuf: Vec<u8>,
    wakeups: Wakeups,
}

impl Driver {
    pub(crate) fn new(core: Session, poll: Poll, shared: Arc<Shared>) -> Driver {
        Driver {
            core,
            poll,
            shared,
            conn: None,
            probe: None,
            slots: HashMap::new(),
            sinks: HashMap::new(),
            close_slots: Vec::new(),
            cmds: Vec::new(),
            readbuf: vec![0; 64 * 1024],
            wakeups: Wakeups::default(),
        }
    }

    /// Run until the session is over (expired, auth failed or closed).
    pub(crate) fn run(mut self) {
        let span = tracing::debug_span!("zk_driver");
        let _guard = span.enter();
        let mut events = Events::with_capacity(64);
        loop {
            let now = Instant::now();
            self.drain_commands(now);
            self.core.handle_timeout(now);
            self.process_outputs(now);
            if self.core.state().is_terminal() {
                break;
            }
            let mut timeout = self
                .core
                .poll_timeout()
                .map(|(at, _)| at.saturating_duration_since(Instant::now()));
            if let Some(p) = &self.probe {
                let left = p.deadline.saturating_duration_since(Instant::now());
                timeout = Some(timeout.map_or(left, |t| t.min(left)));
            }
            // Lazy wake-ups are only safe while the socket is established and requests are
            // really on their way to the server.
            let in_flight = match &self.conn {
                Some(c) if c.established && self.core.state().is_connected() => {
                    self.core.in_flight()
                }
                _ => 0,
            };
            self.shared.in_flight.store(in_flight, Ordering::SeqCst);
            self.shared.needs_wake.store(true, Ordering::SeqCst);
            if self.shared.has_commands() {
                timeout = Some(Duration::ZERO);
            }
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    warn!(error = %e, "poll failed");
                }
            }
            self.shared.needs_wake.store(false, Ordering::SeqCst);
            let now = Instant::now();
            for ev in events.iter() {
                match ev.token() {
                    CONN => self.on_conn_event(now, ev.is_readable(), ev.is_writable()),
                    PROBE => self.on_probe_event(now),
                    _ => {}
                }
            }
            self.check_probe_deadline(now);
        }
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let err = self.core.state().terminal_error().unwrap_or(Error::Closed);
        let leftover = self.shared.close_queue(err.clone());
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

    fn drain_commands(&mut self, now: Instant) {
        self.shared.take_commands(&mut self.cmds);
        let mut cmds = std::mem::take(&mut self.cmds);
        for cmd in cmds.drain(..) {
            match cmd {
                Command::Submit {
                    request,
                    slot,
                    watch,
                    unrooted,
                } => {
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

    /// Drain the core: actions, bytes to write, events; repeat while actions cause more.
    fn process_outputs(&mut self, now: Instant) {
        loop {
            let mut acted = false;
            while let Some(action) = self.core.poll_action() {
                acted = true;
                self.do_action(now, action);
            }
            self.flush(now);
            while let Some(event) = self.core.poll_event() {
                self.dispatch(event);
            }
            if !acted {
                break;
            }
        }
        self.wakeups.wake_all();
    }

    fn do_action(&mut self, now: Instant, action: Action) {
        match action {
            Action::Connect { conn, host } => {
                if let Some(old) = self.conn.take() {
                    self.deregister(old.stream);
                }
                match connect(&host) {
                    Ok(mut stream) => {
                        let interest = Interest::READABLE | Interest::WRITABLE;
                        if let Err(e) = self.poll.registry().register(&mut stream, CONN, interest) {
                            warn!(error = %e, "register failed");
                            self.core.handle_disconnected(now, conn);
                            return;
                        }
                        self.conn = Some(Conn {
                            id: conn,
                            stream,
                            established: false,
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
                        if self
                            .poll
                            .registry()
                            .register(&mut stream, PROBE, interest)
                            .is_ok()
                        {
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
        let _ = self.poll.registry().deregister(&mut stream);
    }

    /// Write as much of the pending output as the socket takes.
    fn flush(&mut self, now: Instant) {
        let Some(conn) = &mut self.conn else { return };
        if !conn.established {
            return;
        }
        let id = conn.id;
        loop {
            let data = self.core.transmit();
            if data.is_empty() {
                return;
            }
            match conn.stream.write(data) {
                Ok(0) => {
                    self.core.handle_disconnected(now, id);
                    return;
                }
                Ok(n) => {
                    trace!(bytes = n, "wrote");
                    self.core.advance_transmit(now, n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    debug!(error = %e, "write failed");
                    self.core.handle_disconnected(now, id);
                    return;
                }
            }
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

    fn read_all(&mut self, now: Instant, id: ConnId) {
        loop {
            let Some(conn) = &mut self.conn else { return };
            if conn.id != id {
                return;
            }
            match conn.stream.read(&mut self.readbuf) {
                Ok(0) => {
                    debug!("server closed the connection");
                    self.core.handle_disconnected(now, id);
                    return;
                }
                Ok(n) => {
                    self.core.handle_bytes(now, id, &self.readbuf[..n]);
                    if n < self.readbuf.len() {
                        // Most likely drained; an edge-triggered poll re-arms on new data,
                        // but read once more to be sure and to hit WouldBlock.
                        continue;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    debug!(error = %e, "read failed");
                    self.core.handle_disconnected(now, id);
                    return;
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

    fn dispatch(&mut self, event: Event) {
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
            Event::State(state) => {
                self.shared.publish_state(
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

fn fail_command(cmd: Command, err: &Error) {
    match cmd {
        Command::Submit { slot, .. } | Command::AddAuth { slot, .. } => {
            slot.complete(Err(err.clone()))
        }
        Command::Close(slot) => slot.complete(Ok(zk_proto::Response::Empty)),
        Command::RemoveWatcher(_) => {}
    }
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
