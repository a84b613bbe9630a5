//! The sans-IO session state machine.
//!
//! [`Session`] knows the whole client side of the protocol — handshake, xids, the in-flight
//! FIFO, pings, timeouts, reconnects, watches, auth replay, chroot, read-only mode — and does no
//! IO, reads no clock and starts no thread. Time is always an argument.
//!
//! # Driving it
//!
//! After **every** input, drain all outputs, in this order:
//!
//! 1. [`Session::poll_action`]: connect to a host, drop a connection, probe a host;
//! 2. [`Session::transmit`] / [`Session::advance_transmit`]: bytes to write to the current
//!    connection (coalesced: one buffer holds every pending frame);
//! 3. [`Session::poll_event`]: completions, watch events, session state changes;
//! 4. [`Session::poll_timeout`]: when to call [`Session::handle_timeout`] next, and why.
//!
//! Inputs: [`Session::handle_connected`], [`Session::handle_bytes`] (any split of the
//! stream), [`Session::handle_disconnected`], [`Session::handle_timeout`] (spurious calls are
//! harmless), [`Session::handle_probe_result`], and the commands [`Session::submit`],
//! [`Session::add_auth`], [`Session::remove_watcher`], [`Session::close`].
//!
//! Every connection attempt has a [`ConnId`]; inputs naming any other connection are ignored,
//! so nothing from an abandoned connection is ever delivered.

mod watches;

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use tracing::{debug, info, trace, warn};
use zk_proto::{
    AddWatchMode, AddWatchRequest, AuthPacket, ConnectRequest, ConnectResponse, DEFAULT_MAX_FRAME,
    ErrorCode, EventType, FrameDecoder, MultiResult, OpCode, Record, RemoveWatchesRequest, Reply,
    Request, Response, SetWatches, SetWatches2, WatcherType, write_record_frame, xid,
};

use watches::parent_path;
pub use watches::{Registry, WatchKind, WatcherId};

use crate::error::Error;
use crate::hosts::{HostAddr, Rng, parse_connect_string};
use crate::path::{Chroot, validate_path};

/// Identifies one submitted operation; also the id of the watcher it registers.
pub type OpId = u64;

/// Identifies one connection attempt.
pub type ConnId = u64;

/// Session configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The servers, in connect-string order (shuffled from `seed`).
    pub hosts: Vec<HostAddr>,
    /// The chroot applied to every path.
    pub chroot: Chroot,
    /// The requested session timeout (the server clamps it).
    pub session_timeout: Duration,
    /// Accept read-only servers (`canBeReadOnly`).
    pub can_be_read_only: bool,
    /// The largest frame the client sends (the server's `jute.maxbuffer`).
    pub max_outgoing_frame: usize,
    /// The largest frame the client accepts.
    pub max_incoming_frame: usize,
    /// How long a request submitted while disconnected waits for a connection before it fails
    /// with ConnectionLoss (it was never sent). `None`: the session timeout.
    pub unsent_timeout: Option<Duration>,
    /// Seed for host shuffling and reconnect jitter.
    pub seed: u64,
    /// Resume this session (id, password) instead of creating one.
    pub resume: Option<(i64, Bytes)>,
    /// SetWatches batches stop taking paths once their lengths sum to this many bytes.
    pub set_watches_batch: usize,
}

impl Config {
    /// A configuration for a connect string `h1:p1,h2:p2[/chroot]` with defaults: a 30 s
    /// session timeout, read-write servers only, 1 MiB frames out, 4 MiB frames in.
    pub fn new(connect_string: &str) -> Result<Config, Error> {
        let (hosts, chroot) = parse_connect_string(connect_string)?;
        Ok(Config {
            hosts,
            chroot,
            session_timeout: Duration::from_secs(30),
            can_be_read_only: false,
            max_outgoing_frame: DEFAULT_MAX_FRAME,
            max_incoming_frame: 4 << 20,
            unsent_timeout: None,
            seed: 0x5eed,
            resume: None,
            set_watches_batch: 128 * 1024,
        })
    }
}

/// The session's externally visible state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionState {
    /// Connecting for the first time.
    Connecting,
    /// Connected to a read-write server.
    Connected,
    /// Connected to a read-only server: writes fail with NotReadOnly.
    ConnectedReadOnly,
    /// The connection was lost; reconnecting. The session may still be alive.
    Disconnected,
    /// The session expired (terminal).
    Expired,
    /// Authentication failed (terminal).
    AuthFailed,
    /// The client closed the session (terminal).
    Closed,
}

impl SessionState {
    /// Whether no further transition can happen.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            SessionState::Expired | SessionState::AuthFailed | SessionState::Closed
        )
    }

    /// Whether requests can be sent now.
    pub fn is_connected(self) -> bool {
        matches!(
            self,
            SessionState::Connected | SessionState::ConnectedReadOnly
        )
    }

    pub(crate) fn terminal_error(self) -> Option<Error> {
        match self {
            SessionState::Expired => Some(Error::SessionExpired),
            SessionState::AuthFailed => Some(Error::AuthFailed),
            SessionState::Closed => Some(Error::Closed),
            _ => None,
        }
    }
}

/// Something the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open a TCP connection to `host`, then report [`Session::handle_connected`] or
    /// [`Session::handle_disconnected`] with `conn`.
    Connect {
        /// The attempt's id.
        conn: ConnId,
        /// Where to connect (resolve the name on every attempt).
        host: HostAddr,
    },
    /// Close connection `conn` (if still open) and forget it.
    Disconnect {
        /// The connection.
        conn: ConnId,
    },
    /// Read-only mode: ask `host` with the `isro` four-letter word whether it is read-write,
    /// and report [`Session::handle_probe_result`] with `probe`.
    Probe {
        /// The probe's id.
        probe: u64,
        /// The host to ask.
        host: HostAddr,
    },
}

/// A watch notification for one local watcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedEvent {
    /// What happened.
    pub event_type: EventType,
    /// The node's path, relative to the chroot.
    pub path: String,
}

/// Something that happened, for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An operation finished.
    Completed {
        /// The operation.
        op: OpId,
        /// Its outcome.
        result: Result<Response, Error>,
    },
    /// A watch fired for watcher `watcher` (a one-shot watcher is then gone).
    Watch {
        /// The watcher (the id of the operation that set it).
        watcher: WatcherId,
        /// The event.
        event: WatchedEvent,
    },
    /// The session state changed.
    State(SessionState),
    /// Watcher `watcher` is gone without firing: the client moved to a new session (after
    /// read-only mode), and the server knows nothing of the old session's watches.
    WatchLost {
        /// The watcher (the id of the operation that set it).
        watcher: WatcherId,
    },
}

/// Why [`Session::poll_timeout`] wants to be called back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerReason {
    /// Time for the next connection attempt.
    Reconnect,
    /// The current connection attempt runs out.
    ConnectTimeout,
    /// Nothing received for the read timeout: the connection is dead.
    ReadTimeout,
    /// Nothing sent for a while: ping.
    Ping,
    /// The close request's reply is overdue.
    CloseTimeout,
    /// An unsent request's wait for a connection runs out.
    UnsentTimeout,
    /// Read-only mode: look for a read-write server.
    ReadOnlyProbe,
}

#[derive(Debug)]
enum Phase {
    /// No connection; the next attempt starts at `at`.
    Idle { at: Instant },
    /// TCP connect in progress.
    Connecting { conn: ConnId, deadline: Instant },
    /// ConnectRequest sent, waiting for the ConnectResponse.
    Handshaking { conn: ConnId, deadline: Instant },
    /// Session established on `conn`.
    Connected { conn: ConnId },
    /// closeSession sent on `conn`.
    Closing { conn: ConnId, deadline: Instant },
    /// Expired, auth failed or closed.
    Terminal,
}

/// How a successful reply registers a watcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WatchReg {
    /// exists: Data if the node exists, Exist on NoNode.
    Exists,
    Data,
    Child,
    Persistent,
    Recursive,
}

#[derive(Debug)]
enum Pending {
    User {
        op: OpId,
        watch: Option<(WatchReg, String)>,
    },
    Ping,
    Internal(&'static str),
    Close,
}

#[derive(Debug)]
struct InFlight {
    xid: i32,
    opcode: OpCode,
    pending: Pending,
}

#[derive(Debug)]
struct Queued {
    op: OpId,
    request: Request,
    watch: Option<(WatchReg, String)>,
    deadline: Instant,
}

#[derive(Debug)]
struct AuthEntry {
    scheme: String,
    auth: Bytes,
    waiting: Option<OpId>,
}

#[derive(Debug)]
struct RoProbe {
    at: Instant,
    interval: Duration,
    outstanding: Option<(u64, usize)>,
    next_host: usize,
}

/// The client side of one ZooKeeper session, as a state machine. See the module docs.
#[derive(Debug)]
pub struct Session {
    config: Config,
    hosts: Vec<HostAddr>,
    rng: Rng,
    next_host: usize,
    attempts_in_round: usize,
    failed_rounds: u32,
    /// When the current (or last) connection finished its handshake.
    connected_at: Instant,

    phase: Phase,
    state: SessionState,
    session_id: i64,
    passwd: Bytes,
    negotiated: Option<Duration>,
    last_zxid: i64,
    seen_rw: bool,

    next_conn: ConnId,
    next_xid: i32,
    next_op: OpId,
    next_probe: u64,

    decoder: FrameDecoder,
    inbuf: BytesMut,
    outbuf: BytesMut,
    last_recv: Instant,
    last_send: Instant,
    pings_in_flight: usize,

    inflight: VecDeque<InFlight>,
    auth_inflight: VecDeque<Option<OpId>>,
    queued: VecDeque<Queued>,
    auths: Vec<AuthEntry>,
    watches: Registry,
    /// Paths whose server registration was persistent and outlived its persistent
    /// watchers because one-shot watchers on the path still needed it: removed on the
    /// server when the path's last watcher goes (ZOOKEEPER-4466, see [`Session::send_user`]).
    lingering: HashSet<String>,
    /// Paths holding both a persistent and a recursive watch of this session. The server
    /// (3.8) keeps them as one recursive registration, which never reports
    /// NodeChildrenChanged: the client derives that event from the recursive NodeCreated and
    /// NodeDeleted of the path's children, and drops the server's own (3.9+ sends it too).
    derived_children: HashSet<String>,

    events: VecDeque<Event>,
    actions: VecDeque<Action>,
    ro_probe: Option<RoProbe>,
}

const PASSWD_LEN: usize = 16;

/// A connection that drops sooner than this after its handshake counts as a failed attempt,
/// not as a working connection lost: the next attempt backs off.
const STABLE_CONNECTION: Duration = Duration::from_secs(1);

impl Session {
    /// A new session; the first connection attempt is due at `now`.
    pub fn new(config: Config, now: Instant) -> Session {
        let mut rng = Rng::new(config.seed);
        let mut hosts = config.hosts.clone();
        rng.shuffle(&mut hosts);
        let (session_id, passwd) = config
            .resume
            .clone()
            .unwrap_or_else(|| (0, Bytes::from(vec![0; PASSWD_LEN])));
        Session {
            decoder: FrameDecoder::new(config.max_incoming_frame),
            config,
            hosts,
            rng,
            next_host: 0,
            attempts_in_round: 0,
            failed_rounds: 0,
            connected_at: now,
            phase: Phase::Idle { at: now },
            state: SessionState::Connecting,
            seen_rw: session_id != 0,
            session_id,
            passwd,
            negotiated: None,
            last_zxid: 0,
            next_conn: 1,
            next_xid: 1,
            next_op: 1,
            next_probe: 1,
            inbuf: BytesMut::new(),
            outbuf: BytesMut::new(),
            last_recv: now,
            last_send: now,
            pings_in_flight: 0,
            inflight: VecDeque::new(),
            auth_inflight: VecDeque::new(),
            queued: VecDeque::new(),
            auths: Vec::new(),
            watches: Registry::default(),
            lingering: HashSet::new(),
            derived_children: HashSet::new(),
            events: VecDeque::new(),
            actions: VecDeque::new(),
            ro_probe: None,
        }
    }

    // ------------------------------------------------------------------ getters

    /// The current state.
    pub fn state(&self) -> SessionState {
        self.state
    }

    /// The session id (0 before the first connect).
    pub fn session_id(&self) -> i64 {
        self.session_id
    }

    /// The session password (16 bytes once connected).
    pub fn password(&self) -> &Bytes {
        &self.passwd
    }

    /// The negotiated session timeout, once connected.
    pub fn negotiated_timeout(&self) -> Option<Duration> {
        self.negotiated
    }

    /// The highest zxid seen in replies to this client's requests.
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// Requests sent and not yet answered (pings and internal requests included).
    pub fn in_flight(&self) -> usize {
        self.inflight.len() + self.auth_inflight.len()
    }

    /// Requests waiting for a connection.
    pub fn queued(&self) -> usize {
        self.queued.len()
    }

    /// The local watch registry.
    pub fn watches(&self) -> &Registry {
        &self.watches
    }

    /// The chroot.
    pub fn chroot(&self) -> &Chroot {
        &self.config.chroot
    }

    /// The hosts in the (shuffled) order they are tried.
    pub fn hosts(&self) -> &[HostAddr] {
        &self.hosts
    }

    /// The connection currently in use or being attempted.
    pub fn current_conn(&self) -> Option<ConnId> {
        match self.phase {
            Phase::Connecting { conn, .. }
            | Phase::Handshaking { conn, .. }
            | Phase::Connected { conn }
            | Phase::Closing { conn, .. } => Some(conn),
            Phase::Idle { .. } | Phase::Terminal => None,
        }
    }

    fn timeout_base(&self) -> Duration {
        self.negotiated.unwrap_or(self.config.session_timeout)
    }

    /// Nothing received for this long drops the connection: 2/3 of the negotiated timeout.
    pub fn read_timeout(&self) -> Duration {
        self.timeout_base() * 2 / 3
    }

    /// A connection attempt (TCP and handshake) gets this long: timeout / number of hosts.
    pub fn connect_timeout(&self) -> Duration {
        let n = u32::try_from(self.hosts.len().max(1)).unwrap_or(u32::MAX);
        self.timeout_base() / n
    }

    fn ping_interval(&self) -> Duration {
        (self.read_timeout() / 2).min(Duration::from_secs(10))
    }

    // ------------------------------------------------------------------ outputs

    /// The next action for the driver.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next event for the user.
    pub fn has_pending_actions(&self) -> bool {
        !self.actions.is_empty()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Bytes waiting to be written to the current connection.
    pub fn transmit(&self) -> &[u8] {
        &self.outbuf
    }

    /// Report that the first `n` bytes of [`Session::transmit`] were written at `now`.
    pub fn advance_transmit(&mut self, now: Instant, n: usize) {
        let n = n.min(self.outbuf.len());
        if n > 0 {
            self.outbuf.advance(n);
            self.last_send = now;
        }
    }

    /// When [`Session::handle_timeout`] is due next, and why.
    pub fn poll_timeout(&self) -> Option<(Instant, TimerReason)> {
        let mut best: Option<(Instant, TimerReason)> = None;
        let mut consider = |at: Instant, why: TimerReason| {
            // `map_or`, not `is_none_or`: the MSRV is 1.80 (clippy::incompatible_msrv).
            if best.map_or(true, |(b, _)| at < b) {
                best = Some((at, why));
            }
        };
        match self.phase {
            Phase::Idle { at } => consider(at, TimerReason::Reconnect),
            Phase::Connecting { deadline, .. } | Phase::Handshaking { deadline, .. } => {
                consider(deadline, TimerReason::ConnectTimeout)
            }
            Phase::Connected { .. } => {
                consider(
                    self.last_recv + self.read_timeout(),
                    TimerReason::ReadTimeout,
                );
                if self.pings_in_flight == 0 {
                    consider(self.last_send + self.ping_interval(), TimerReason::Ping);
                }
                if let Some(p) = &self.ro_probe {
                    if p.outstanding.is_none() {
                        consider(p.at, TimerReason::ReadOnlyProbe);
                    }
                }
            }
            Phase::Closing { deadline, .. } => consider(deadline, TimerReason::CloseTimeout),
            Phase::Terminal => {}
        }
        if let Some(q) = self.queued.front() {
            consider(q.deadline, TimerReason::UnsentTimeout);
        }
        best
    }

    // ------------------------------------------------------------------ commands

    /// Submit a request. Paths are client paths (the chroot is applied here).
    ///
    /// Invalid paths, oversized requests, requests the API must not send directly (check
    /// outside multi, ping, auth, setWatches, closeSession, deleteContainer, sasl) and requests
    /// after the session ended are refused at once. A request submitted while disconnected
    /// waits for the next connection (see [`Config::unsent_timeout`]).
    pub fn submit(&mut self, now: Instant, request: Request) -> Result<OpId, Error> {
        self.submit_inner(now, request, true)
    }

    /// Submit a request whose paths bypass the chroot (e.g. `/zookeeper/config`).
    pub fn submit_unrooted(&mut self, now: Instant, request: Request) -> Result<OpId, Error> {
        self.submit_inner(now, request, false)
    }

    fn submit_inner(
        &mut self,
        now: Instant,
        mut request: Request,
        rooted: bool,
    ) -> Result<OpId, Error> {
        if let Some(err) = self.state.terminal_error() {
            return Err(err);
        }
        if matches!(self.phase, Phase::Closing { .. }) {
            return Err(Error::Closed);
        }
        validate_request(&request)?;
        let watch = watch_registration(&request);
        if rooted {
            apply_chroot(&self.config.chroot, &mut request);
        }
        let len = request.frame_len();
        if len > self.config.max_outgoing_frame {
            return Err(Error::TooLarge {
                len,
                max: self.config.max_outgoing_frame,
            });
        }
        let op = self.alloc_op();
        trace!(op, opcode = ?request.opcode(), "submit");
        if matches!(self.phase, Phase::Connected { .. }) {
            self.send_user(op, &request, watch);
        } else {
            let wait = self
                .config
                .unsent_timeout
                .unwrap_or(self.config.session_timeout);
            self.queued.push_back(Queued {
                op,
                request,
                watch,
                deadline: now + wait,
            });
        }
        Ok(op)
    }

    /// Add credentials (e.g. `digest`, `user:password`), sent now and after every reconnect.
    /// The returned op completes when the server accepts them; a rejection ends the session
    /// with [`SessionState::AuthFailed`].
    pub fn add_auth(&mut self, _now: Instant, scheme: &str, auth: Bytes) -> Result<OpId, Error> {
        if let Some(err) = self.state.terminal_error() {
            return Err(err);
        }
        // Fix: refused after close(), as `submit` is; it used to be accepted, never sent,
        // and (before `fail_waiting_auths`) never completed.
        if matches!(self.phase, Phase::Closing { .. }) {
            return Err(Error::Closed);
        }
        let op = self.alloc_op();
        let entry = AuthEntry {
            scheme: scheme.to_owned(),
            auth,
            waiting: Some(op),
        };
        if matches!(self.phase, Phase::Connected { .. }) {
            self.send_auth(&entry.scheme, &entry.auth, Some(op));
            self.auths.push(AuthEntry {
                waiting: None,
                ..entry
            });
        } else {
            self.auths.push(entry);
        }
        Ok(op)
    }

    /// Forget a local watcher. When it was the last watcher on its path and the server's
    /// registration there is persistent (it was, or it outlived, a persistent watcher), that
    /// registration is removed too. A persistent watcher that leaves one-shot watchers
    /// behind on its path leaves the registration to them (on 3.8 it may be what serves
    /// them), and it goes when they do.
    pub fn remove_watcher(&mut self, _now: Instant, watcher: WatcherId) {
        let Some((kind, path)) = self.watches.remove(watcher) else {
            return;
        };
        if kind.is_one_shot() {
            self.release_lingering(&path);
        } else if self.watches.has_any_on(&path) {
            self.lingering.insert(path);
        } else {
            self.lingering.remove(&path);
            self.send_remove_watches(path);
        }
    }

    /// Deliver a notification (a client path) to the watchers it reaches.
    fn dispatch_event(&mut self, event_type: EventType, path: String) {
        for watcher in self.watches.trigger(event_type, &path) {
            self.events.push_back(Event::Watch {
                watcher,
                event: WatchedEvent {
                    event_type,
                    path: path.clone(),
                },
            });
        }
        self.release_lingering(&path);
    }

    /// After watchers on `path` fired or were dropped: if none is left and the server's
    /// registration there outlived a persistent watcher, remove it.
    fn release_lingering(&mut self, path: &str) {
        if !self.lingering.is_empty()
            && !self.watches.has_any_on(path)
            && self.lingering.remove(path)
        {
            self.send_remove_watches(path.to_owned());
        }
    }

    /// Remove every registration of this connection on `path` (a client path) from the
    /// server; nothing to do while disconnected (a new connection re-registers only what
    /// the registry holds).
    fn send_remove_watches(&mut self, mut path: String) {
        self.derived_children.remove(&path);
        if matches!(self.phase, Phase::Connected { .. }) {
            self.config.chroot.apply(&mut path);
            let req = Request::RemoveWatches(RemoveWatchesRequest {
                path,
                watcher_type: WatcherType::Any,
            });
            self.send_internal(&req, Pending::Internal("removeWatches"));
        }
    }

    /// Close the session: send closeSession and wait (bounded) for its reply, then report
    /// [`SessionState::Closed`]. Requests not yet sent fail with [`Error::Closed`].
    pub fn close(&mut self, now: Instant) {
        if self.state.is_terminal() || matches!(self.phase, Phase::Closing { .. }) {
            return;
        }
        self.fail_queued(&Error::Closed);
        match self.phase {
            Phase::Connected { conn } => {
                self.send_internal(&Request::CloseSession, Pending::Close);
                let wait = self.read_timeout().min(Duration::from_secs(2));
                self.phase = Phase::Closing {
                    conn,
                    deadline: now + wait,
                };
            }
            _ => self.finish_close(),
        }
    }

    // ------------------------------------------------------------------ inputs

    /// The TCP connection `conn` is established.
    pub fn handle_connected(&mut self, now: Instant, conn: ConnId) {
        let Phase::Connecting { conn: c, deadline } = self.phase else {
            return;
        };
        if c != conn {
            return;
        }
        let (session_id, passwd) = if self.seen_rw {
            (self.session_id, self.passwd.clone())
        } else {
            (0, Bytes::from(vec![0; PASSWD_LEN]))
        };
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: self.last_zxid,
            timeout: duration_ms(self.config.session_timeout),
            session_id,
            passwd,
            read_only: Some(self.config.can_be_read_only),
        };
        debug!(
            conn,
            session_id,
            last_zxid = self.last_zxid,
            "tcp connected, handshaking"
        );
        self.outbuf.clear();
        write_record_frame(&mut self.outbuf, &req);
        self.last_recv = now;
        self.phase = Phase::Handshaking { conn, deadline };
    }

    /// Bytes arrived on connection `conn` (any split of the stream).
    pub fn handle_bytes(&mut self, now: Instant, conn: ConnId, bytes: &[u8]) {
        match self.phase {
            Phase::Handshaking { conn: c, .. }
            | Phase::Connected { conn: c }
            | Phase::Closing { conn: c, .. }
                if c == conn => {}
            _ => return,
        }
        self.last_recv = now;
        self.inbuf.extend_from_slice(bytes);
        loop {
            if self.current_conn() != Some(conn) {
                return;
            }
            let frame = match self.decoder.decode(&mut self.inbuf) {
                Ok(Some(frame)) => frame,
                Ok(None) => return,
                Err(e) => {
                    warn!(conn, error = %e, "bad frame from server; dropping the connection");
                    self.drop_connection(now, "bad frame");
                    return;
                }
            };
            if let Err(reason) = self.handle_frame(now, frame) {
                warn!(conn, reason, "protocol error; dropping the connection");
                self.drop_connection(now, reason);
                return;
            }
        }
    }

    /// Connection `conn` failed or closed.
    pub fn handle_disconnected(&mut self, now: Instant, conn: ConnId) {
        if self.current_conn() == Some(conn) {
            self.drop_connection(now, "connection closed");
        }
    }

    /// A timer may have expired.
    pub fn handle_timeout(&mut self, now: Instant) {
        while self.queued.front().is_some_and(|q| q.deadline <= now) {
            if let Some(q) = self.queued.pop_front() {
                self.complete(q.op, Err(Error::ConnectionLoss));
            }
        }
        match self.phase {
            Phase::Idle { at } if now >= at => self.start_attempt(now),
            Phase::Connecting { deadline, .. } | Phase::Handshaking { deadline, .. }
                if now >= deadline =>
            {
                self.drop_connection(now, "connect timeout")
            }
            Phase::Connected { .. } => {
                if now.saturating_duration_since(self.last_recv) >= self.read_timeout() {
                    warn!(
                        timeout_ms = self.read_timeout().as_millis() as u64,
                        "nothing received within the read timeout; dropping the connection"
                    );
                    self.drop_connection(now, "read timeout");
                    return;
                }
                if self.pings_in_flight == 0
                    && now.saturating_duration_since(self.last_send) >= self.ping_interval()
                {
                    self.send_internal(&Request::Ping, Pending::Ping);
                    self.pings_in_flight += 1;
                }
                self.maybe_probe(now);
            }
            Phase::Closing { deadline, .. } if now >= deadline => self.finish_close(),
            _ => {}
        }
    }

    /// The answer to [`Action::Probe`] `probe`: whether the host is read-write.
    pub fn handle_probe_result(&mut self, now: Instant, probe: u64, read_write: bool) {
        let Some(p) = &mut self.ro_probe else { return };
        let Some((id, host)) = p.outstanding else {
            return;
        };
        if id != probe {
            return;
        }
        p.outstanding = None;
        if read_write && self.state == SessionState::ConnectedReadOnly {
            info!(host = %self.hosts[host], "found a read-write server; moving to it");
            self.next_host = host;
            self.ro_probe = None;
            self.drop_connection(now, "moving to a read-write server");
            self.phase = Phase::Idle { at: now };
        } else {
            p.interval = (p.interval * 2).min(Duration::from_secs(60));
            p.at = now + p.interval;
        }
    }

    // ------------------------------------------------------------------ internals

    fn alloc_op(&mut self) -> OpId {
        let op = self.next_op;
        self.next_op += 1;
        op
    }

    fn alloc_xid(&mut self) -> i32 {
        let x = self.next_xid;
        self.next_xid = if x == i32::MAX { 1 } else { x + 1 };
        x
    }

    fn complete(&mut self, op: OpId, result: Result<Response, Error>) {
        self.events.push_back(Event::Completed { op, result });
    }

    fn set_state(&mut self, state: SessionState) {
        if self.state != state {
            info!(from = ?self.state, to = ?state, session_id = format_args!("{:#x}", self.session_id), "session state");
            self.state = state;
            self.events.push_back(Event::State(state));
        }
    }

    /// Send a user request. Servers before 3.9 keep one watch mode per (connection, path) in
    /// each of their two watch managers, data and child, and the last registration wins
    /// (ZOOKEEPER-4466; PROTOCOL.md §7). So that a one-shot watch never turns this session's
    /// persistent watch on the same path into a one-shot one:
    ///
    /// - a one-shot watch whose events a persistent registration on its path (held or in
    ///   flight) already brings is kept locally only: the request goes without its watch
    ///   flag. A persistent or recursive watch brings every data event on its path; only a
    ///   persistent one brings child events there. (A child watch beside a recursive one
    ///   goes to the server: on 3.8 it demotes the recursive entry of the child manager,
    ///   which reports nothing the data manager's does not: it never reports
    ///   NodeChildrenChanged, and its NodeDeleted is deduplicated against the data
    ///   manager's.)
    /// - a persistent and a recursive watch on one path: 3.8 gives both managers the mode of
    ///   the last addWatch (SetWatches2 too, in the order persistent, recursive), and no
    ///   registration brings the recursive watch's subtree and the persistent watch's child
    ///   events at once. So the server holds the recursive one (a persistent watch added
    ///   where a recursive one is held is sent as a recursive addWatch, which changes
    ///   nothing there), and the client derives NodeChildrenChanged on the path from the
    ///   recursive NodeCreated and NodeDeleted of its children ([`Session::derived_children`]).
    ///
    /// SetWatches after a reconnect lists one-shot, then persistent, then recursive paths,
    /// which leaves the same modes.
    fn send_user(&mut self, op: OpId, request: &Request, watch: Option<(WatchReg, String)>) {
        let xid = self.alloc_xid();
        match (&watch, request) {
            (Some((reg, path)), _) if self.served_by_persistent(*reg, path) => {
                let mut plain = request.clone();
                clear_watch_flag(&mut plain);
                plain.encode_frame(xid, &mut self.outbuf);
            }
            (Some((WatchReg::Persistent, path)), Request::AddWatch(r))
                if self.holds_persistent(WatchReg::Recursive, path) =>
            {
                let recursive = Request::AddWatch(AddWatchRequest {
                    path: r.path.clone(),
                    mode: AddWatchMode::PersistentRecursive,
                });
                recursive.encode_frame(xid, &mut self.outbuf);
            }
            (_, Request::RemoveWatches(r)) => {
                self.forget_removed(&r.path, r.watcher_type);
                request.encode_frame(xid, &mut self.outbuf);
            }
            _ => request.encode_frame(xid, &mut self.outbuf),
        }
        self.inflight.push_back(InFlight {
            xid,
            opcode: request.opcode(),
            pending: Pending::User { op, watch },
        });
    }

    /// A user's removeWatches of `kind` on `server_path` leaves the local watchers it
    /// serves without events: forget them, whatever the server answers (their handles stay
    /// open and receive nothing more), so that no later watch counts on the removed
    /// registration and no reconnect re-registers it. Before 3.9, Data and Children remove
    /// persistent registrations too (PROTOCOL.md §7).
    fn forget_removed(&mut self, server_path: &str, kind: WatcherType) {
        let kinds: &[WatchKind] = match kind {
            WatcherType::Data => &[
                WatchKind::Data,
                WatchKind::Exist,
                WatchKind::Persistent,
                WatchKind::PersistentRecursive,
            ],
            WatcherType::Children => &[
                WatchKind::Child,
                WatchKind::Persistent,
                WatchKind::PersistentRecursive,
            ],
            WatcherType::Any => &[
                WatchKind::Data,
                WatchKind::Exist,
                WatchKind::Child,
                WatchKind::Persistent,
                WatchKind::PersistentRecursive,
            ],
            WatcherType::Persistent => &[WatchKind::Persistent],
            WatcherType::PersistentRecursive => &[WatchKind::PersistentRecursive],
            _ => &[],
        };
        let mut path = server_path.to_owned();
        self.config.chroot.strip(&mut path);
        if self.watches.remove_kinds(&path, kinds).is_empty() {
            return;
        }
        self.derived_children.remove(&path);
        // What the server may still hold there (half a persistent registration) goes with
        // the path's last watcher.
        if self.watches.has_any_on(&path) {
            self.lingering.insert(path);
        } else {
            self.lingering.remove(&path);
        }
    }

    /// Whether a persistent registration of this session on `path` brings every event a
    /// one-shot watch of `reg` would (see [`Session::send_user`]).
    fn served_by_persistent(&self, reg: WatchReg, path: &str) -> bool {
        match reg {
            WatchReg::Exists | WatchReg::Data => {
                self.holds_persistent(WatchReg::Persistent, path)
                    || self.holds_persistent(WatchReg::Recursive, path)
            }
            WatchReg::Child => self.holds_persistent(WatchReg::Persistent, path),
            WatchReg::Persistent | WatchReg::Recursive => false,
        }
    }

    /// Whether this session holds a persistent watch of `reg` on exactly `path`, or has
    /// one in flight (its addWatch cannot fail on a live connection: 3.8 checks no ACL).
    fn holds_persistent(&self, reg: WatchReg, path: &str) -> bool {
        let kind = match reg {
            WatchReg::Persistent => WatchKind::Persistent,
            WatchReg::Recursive => WatchKind::PersistentRecursive,
            _ => return false,
        };
        self.watches.has(kind, path)
            || self.inflight.iter().any(|f| {
                f.opcode == OpCode::AddWatch
                    && matches!(&f.pending, Pending::User { watch: Some((r, p)), .. }
                        if *r == reg && p == path)
            })
    }

    fn send_internal(&mut self, request: &Request, pending: Pending) {
        let xid = match request.fixed_xid() {
            Some(x) => x,
            None => self.alloc_xid(),
        };
        request.encode_frame(xid, &mut self.outbuf);
        self.inflight.push_back(InFlight {
            xid,
            opcode: request.opcode(),
            pending,
        });
    }

    fn send_auth(&mut self, scheme: &str, auth: &Bytes, waiting: Option<OpId>) {
        Request::Auth(AuthPacket {
            auth_type: 0,
            scheme: scheme.to_owned(),
            auth: auth.clone(),
        })
        .encode_frame(xid::AUTH, &mut self.outbuf);
        self.auth_inflight.push_back(waiting);
    }

    fn start_attempt(&mut self, now: Instant) {
        let host = self.hosts[self.next_host].clone();
        self.next_host = (self.next_host + 1) % self.hosts.len();
        let conn = self.next_conn;
        self.next_conn += 1;
        let deadline = now + self.connect_timeout();
        debug!(conn, host = %host, "connecting");
        self.phase = Phase::Connecting { conn, deadline };
        self.actions.push_back(Action::Connect { conn, host });
    }

    fn fail_queued(&mut self, err: &Error) {
        while let Some(q) = self.queued.pop_front() {
            self.complete(q.op, Err(err.clone()));
        }
    }

    /// Fail the ops of credentials added while disconnected (their AuthPacket was never
    /// sent, so they are neither in flight nor queued). Fix: without this, `add_auth` made
    /// while disconnected never completed once the session ended (expired, auth failed,
    /// closed) — the rule "pending, queued and later requests fail" missed them.
    fn fail_waiting_auths(&mut self, err: &Error) {
        let waiting: Vec<OpId> = self
            .auths
            .iter_mut()
            .filter_map(|a| a.waiting.take())
            .collect();
        for op in waiting {
            self.complete(op, Err(err.clone()));
        }
    }

    fn fail_in_flight(&mut self, err: &Error) {
        while let Some(f) = self.inflight.pop_front() {
            if let Pending::User { op, .. } = f.pending {
                self.complete(op, Err(err.clone()));
            }
        }
        while let Some(waiting) = self.auth_inflight.pop_front() {
            if let Some(op) = waiting {
                self.complete(op, Err(err.clone()));
            }
        }
        self.pings_in_flight = 0;
    }

    fn reset_connection_buffers(&mut self) {
        self.inbuf.clear();
        self.outbuf.clear();
        self.decoder = FrameDecoder::new(self.config.max_incoming_frame);
    }

    /// The current connection is gone (or must go): clean up and plan the next attempt.
    fn drop_connection(&mut self, now: Instant, reason: &'static str) {
        let Some(conn) = self.current_conn() else {
            return;
        };
        self.actions.push_back(Action::Disconnect { conn });
        self.reset_connection_buffers();
        self.ro_probe = None;
        let was = std::mem::replace(&mut self.phase, Phase::Idle { at: now });
        match was {
            Phase::Closing { .. } => {
                self.fail_in_flight(&Error::ConnectionLoss);
                self.finish_close();
            }
            Phase::Connected { .. } => {
                info!(conn, reason, "disconnected");
                self.fail_in_flight(&Error::ConnectionLoss);
                self.set_state(SessionState::Disconnected);
                if now.saturating_duration_since(self.connected_at) >= STABLE_CONNECTION {
                    // Reconnect at once, to the next host in rotation.
                    self.attempts_in_round = 0;
                    self.failed_rounds = 0;
                    self.phase = Phase::Idle { at: now };
                } else {
                    // A server that takes the session and drops it at once (or that we
                    // drop for what it sends) must not make a reconnect loop.
                    let delay = self.failed_attempt_delay();
                    self.phase = Phase::Idle { at: now + delay };
                }
            }
            Phase::Connecting { .. } | Phase::Handshaking { .. } => {
                debug!(conn, reason, "connection attempt failed");
                self.fail_in_flight(&Error::ConnectionLoss);
                let delay = self.failed_attempt_delay();
                self.phase = Phase::Idle { at: now + delay };
            }
            Phase::Idle { .. } | Phase::Terminal => {}
        }
    }

    /// Count a failed attempt; the delay before the next one: 0–50 ms within a round of
    /// the hosts, and after a fully failed round 100 ms doubling up to 1 s (plus 0–100 ms).
    fn failed_attempt_delay(&mut self) -> Duration {
        self.attempts_in_round += 1;
        if self.attempts_in_round >= self.hosts.len() {
            self.attempts_in_round = 0;
            self.failed_rounds = self.failed_rounds.saturating_add(1);
            let exp = 100u64 << self.failed_rounds.min(4).saturating_sub(1);
            Duration::from_millis(exp.min(1000) + self.rng.below(100))
        } else {
            Duration::from_millis(self.rng.below(50))
        }
    }

    /// The session is over: no watcher, and nothing kept for the server's registrations.
    fn forget_watches(&mut self) {
        self.watches.drain();
        self.lingering.clear();
        self.derived_children.clear();
    }

    fn finish_close(&mut self) {
        if let Some(conn) = self.current_conn() {
            self.actions.push_back(Action::Disconnect { conn });
        }
        self.phase = Phase::Terminal;
        self.reset_connection_buffers();
        self.fail_in_flight(&Error::Closed);
        self.fail_queued(&Error::Closed);
        self.fail_waiting_auths(&Error::Closed);
        self.forget_watches();
        self.set_state(SessionState::Closed);
    }

    fn go_terminal(&mut self, state: SessionState, err: &Error) {
        if let Some(conn) = self.current_conn() {
            self.actions.push_back(Action::Disconnect { conn });
        }
        self.phase = Phase::Terminal;
        self.reset_connection_buffers();
        self.ro_probe = None;
        self.fail_in_flight(err);
        self.fail_queued(err);
        self.fail_waiting_auths(err);
        self.forget_watches();
        self.set_state(state);
    }

    fn handle_frame(&mut self, now: Instant, frame: Bytes) -> Result<(), &'static str> {
        if matches!(self.phase, Phase::Handshaking { .. }) {
            let resp = ConnectResponse::decode(&frame).map_err(|_| "bad ConnectResponse")?;
            self.on_connect_response(now, resp);
            return Ok(());
        }
        let reply = Reply::parse(&frame).map_err(|_| "bad reply header")?;
        match reply.header.xid {
            xid::NOTIFICATION => {
                let ev = reply.watcher_event().map_err(|_| "bad WatcherEvent")?;
                let mut path = ev.path;
                self.config.chroot.strip(&mut path);
                trace!(event = ?ev.event_type, path, "notification");
                if self.derived_children.is_empty() {
                    self.dispatch_event(ev.event_type, path);
                    return Ok(());
                }
                let derived = match ev.event_type {
                    // Derived from the children's events instead (3.9+ sends both).
                    EventType::NodeChildrenChanged if self.derived_children.contains(&path) => {
                        return Ok(());
                    }
                    EventType::NodeCreated | EventType::NodeDeleted => parent_path(&path)
                        .filter(|p| self.derived_children.contains(*p))
                        .map(str::to_owned),
                    _ => None,
                };
                self.dispatch_event(ev.event_type, path);
                if let Some(parent) = derived {
                    self.dispatch_event(EventType::NodeChildrenChanged, parent);
                }
                Ok(())
            }
            xid::AUTH => {
                let waiting = self
                    .auth_inflight
                    .pop_front()
                    .ok_or("unexpected auth reply")?;
                if reply.header.err == ErrorCode::AuthFailed {
                    if let Some(op) = waiting {
                        self.complete(op, Err(Error::AuthFailed));
                    }
                    warn!("authentication failed");
                    self.go_terminal(SessionState::AuthFailed, &Error::AuthFailed);
                } else if let Some(op) = waiting {
                    let result = match reply.header.err {
                        ErrorCode::Ok => Ok(Response::Empty),
                        code => Err(Error::from(code)),
                    };
                    self.complete(op, result);
                }
                Ok(())
            }
            x => {
                // Fix: check (and, for user requests, decode) against the FIFO head *before*
                // popping it. Popping first lost the head on "xid out of order" or an
                // undecodable body: the connection was dropped and every other in-flight
                // request failed with ConnectionLoss, but the head's op never completed.
                let head = self
                    .inflight
                    .front()
                    .ok_or("reply with nothing in flight")?;
                if head.xid != x {
                    return Err("xid out of order");
                }
                let result = match head.pending {
                    Pending::User { .. } => Some(
                        reply
                            .response(head.opcode)
                            .map_err(|_| "undecodable reply body")?,
                    ),
                    _ => None,
                };
                let Some(head) = self.inflight.pop_front() else {
                    return Err("reply with nothing in flight");
                };
                if x > 0 && reply.header.zxid > self.last_zxid {
                    self.last_zxid = reply.header.zxid;
                }
                match head.pending {
                    Pending::Ping => {
                        self.pings_in_flight = self.pings_in_flight.saturating_sub(1);
                    }
                    Pending::Internal(what) => {
                        if reply.header.err != ErrorCode::Ok {
                            debug!(what, err = ?reply.header.err, "internal request failed");
                        }
                    }
                    Pending::Close => self.finish_close(),
                    Pending::User { op, watch } => {
                        // Always `Some` for a user request (decoded above).
                        if let Some(result) = result {
                            self.finish_user(op, head.opcode, watch, result);
                        }
                    }
                }
                Ok(())
            }
        }
    }

    fn finish_user(
        &mut self,
        op: OpId,
        opcode: OpCode,
        watch: Option<(WatchReg, String)>,
        result: Result<Response, ErrorCode>,
    ) {
        if let Some((reg, path)) = watch {
            let kind = match (reg, &result) {
                (WatchReg::Exists, Ok(_)) => Some(WatchKind::Data),
                (WatchReg::Exists, Err(ErrorCode::NoNode)) => Some(WatchKind::Exist),
                (WatchReg::Data, Ok(_)) => Some(WatchKind::Data),
                (WatchReg::Child, Ok(_)) => Some(WatchKind::Child),
                (WatchReg::Persistent, Ok(_)) => Some(WatchKind::Persistent),
                (WatchReg::Recursive, Ok(_)) => Some(WatchKind::PersistentRecursive),
                _ => None,
            };
            if let Some(kind) = kind {
                self.watches.add(op, kind, &path);
                // From this reply on the server holds the recursive registration only.
                if !kind.is_one_shot()
                    && self.watches.has(WatchKind::Persistent, &path)
                    && self.watches.has(WatchKind::PersistentRecursive, &path)
                {
                    self.derived_children.insert(path);
                }
            }
        }
        let result = match result {
            Err(code) => Err(Error::from(code)),
            Ok(mut resp) => {
                strip_chroot(&self.config.chroot, &mut resp);
                match (&resp, opcode) {
                    (Response::Multi(m), OpCode::Multi) => match first_failure(&m.results) {
                        Some((index, code)) => Err(Error::MultiFailed { index, code }),
                        None => Ok(resp),
                    },
                    _ => Ok(resp),
                }
            }
        };
        self.complete(op, result);
    }

    fn on_connect_response(&mut self, now: Instant, resp: ConnectResponse) {
        let Phase::Handshaking { conn, .. } = self.phase else {
            return;
        };
        if resp.is_expired() {
            warn!(
                session_id = format_args!("{:#x}", self.session_id),
                "session expired"
            );
            self.go_terminal(SessionState::Expired, &Error::SessionExpired);
            return;
        }
        let negotiated = Duration::from_millis(u64::try_from(resp.timeout).unwrap_or(0));
        let read_only = resp.read_only == Some(true);
        // A new session (only after read-only mode): the old watches are meaningless, and
        // their owners are told so (after the state change, which names the new session)
        // rather than left waiting for an event that cannot come.
        let lost = if self.session_id != 0 && resp.session_id != self.session_id {
            self.watches.drain()
        } else {
            Vec::new()
        };
        self.session_id = resp.session_id;
        self.passwd = resp.passwd;
        self.negotiated = Some(negotiated);
        self.phase = Phase::Connected { conn };
        // A new round of hosts starts here; the backoff (`failed_rounds`) is forgotten only
        // once a connection has proved stable (see `drop_connection`).
        self.attempts_in_round = 0;
        self.connected_at = now;
        self.pings_in_flight = 0;
        if !read_only {
            self.seen_rw = true;
        }
        info!(
            conn,
            session_id = format_args!("{:#x}", resp.session_id),
            timeout_ms = resp.timeout,
            read_only,
            "session established"
        );
        // Order after connect: auth replay, SetWatches, then queued requests.
        let auths: Vec<(String, Bytes, Option<OpId>)> = self
            .auths
            .iter_mut()
            .map(|a| (a.scheme.clone(), a.auth.clone(), a.waiting.take()))
            .collect();
        for (scheme, auth, waiting) in auths {
            self.send_auth(&scheme, &auth, waiting);
        }
        // The new connection holds only what SetWatches re-registers (a path listed as both
        // persistent and recursive ends recursive).
        self.lingering.clear();
        self.derived_children = self.watches.paths_with_both_persistent_kinds();
        self.send_set_watches();
        while let Some(q) = self.queued.pop_front() {
            self.send_user(q.op, &q.request, q.watch);
        }
        self.last_send = now;
        self.set_state(if read_only {
            SessionState::ConnectedReadOnly
        } else {
            SessionState::Connected
        });
        for watcher in lost {
            self.events.push_back(Event::WatchLost { watcher });
        }
        if read_only && self.hosts.len() > 1 {
            self.ro_probe = Some(RoProbe {
                at: now + Duration::from_millis(100),
                interval: Duration::from_millis(100),
                outstanding: None,
                next_host: self.next_host,
            });
        }
    }

    fn send_set_watches(&mut self) {
        if self.watches.is_empty() {
            return;
        }
        let kinds = [
            WatchKind::Data,
            WatchKind::Exist,
            WatchKind::Child,
            WatchKind::Persistent,
            WatchKind::PersistentRecursive,
        ];
        let mut lists: Vec<Vec<String>> = kinds
            .iter()
            .map(|k| {
                let mut paths = self.watches.paths(*k);
                for p in &mut paths {
                    self.config.chroot.apply(p);
                }
                paths
            })
            .collect();
        let limit = self.config.set_watches_batch.max(1);
        loop {
            let mut batch: [Vec<String>; 5] = Default::default();
            let mut total = 0usize;
            'fill: for (i, list) in lists.iter_mut().enumerate() {
                while total < limit {
                    let Some(p) = list.pop() else { continue 'fill };
                    total += p.len();
                    batch[i].push(p);
                }
                break;
            }
            if total == 0 {
                break;
            }
            let [data, exist, child, persistent, recursive] = batch;
            let req = if persistent.is_empty() && recursive.is_empty() {
                Request::SetWatches(SetWatches {
                    relative_zxid: self.last_zxid,
                    data_watches: data,
                    exist_watches: exist,
                    child_watches: child,
                })
            } else {
                Request::SetWatches2(SetWatches2 {
                    relative_zxid: self.last_zxid,
                    data_watches: data,
                    exist_watches: exist,
                    child_watches: child,
                    persistent_watches: persistent,
                    persistent_recursive_watches: recursive,
                })
            };
            debug!(watches = self.watches.len(), "re-registering watches");
            self.send_internal(&req, Pending::Internal("setWatches"));
        }
    }

    fn maybe_probe(&mut self, now: Instant) {
        let n = self.hosts.len();
        let current = (self.next_host + n - 1) % n;
        let Some(p) = &mut self.ro_probe else { return };
        if p.outstanding.is_some() || now < p.at {
            return;
        }
        let mut host = p.next_host % n;
        if host == current {
            host = (host + 1) % n;
        }
        p.next_host = (host + 1) % n;
        let probe = self.next_probe;
        self.next_probe += 1;
        p.outstanding = Some((probe, host));
        self.actions.push_back(Action::Probe {
            probe,
            host: self.hosts[host].clone(),
        });
    }
}

fn first_failure(results: &[MultiResult]) -> Option<(usize, ErrorCode)> {
    results.iter().enumerate().find_map(|(i, r)| match r {
        MultiResult::Error(code)
            if *code != ErrorCode::Ok && *code != ErrorCode::RuntimeInconsistency =>
        {
            Some((i, *code))
        }
        _ => None,
    })
}

fn duration_ms(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

/// Drop the watch flag of a read (the watch is then kept locally only).
fn clear_watch_flag(request: &mut Request) {
    match request {
        Request::Exists(r) => r.watch = false,
        Request::GetData(r) => r.watch = false,
        Request::GetChildren(r) => r.watch = false,
        Request::GetChildren2(r) => r.watch = false,
        _ => {}
    }
}

fn watch_registration(request: &Request) -> Option<(WatchReg, String)> {
    let (reg, path) = match request {
        Request::Exists(r) if r.watch => (WatchReg::Exists, &r.path),
        Request::GetData(r) if r.watch => (WatchReg::Data, &r.path),
        Request::GetChildren(r) if r.watch => (WatchReg::Child, &r.path),
        Request::GetChildren2(r) if r.watch => (WatchReg::Child, &r.path),
        Request::AddWatch(r) => match r.mode {
            AddWatchMode::PersistentRecursive => (WatchReg::Recursive, &r.path),
            _ => (WatchReg::Persistent, &r.path),
        },
        _ => return None,
    };
    Some((reg, path.clone()))
}

/// Check paths and refuse requests the API must not send directly.
fn validate_request(request: &Request) -> Result<(), Error> {
    use zk_proto::MultiOp;
    let internal = |what: &'static str| Err(Error::InvalidUse(what));
    match request {
        Request::Create(r) | Request::Create2(r) | Request::CreateContainer(r) => {
            validate_path(&r.path, r.flags.is_sequential())
        }
        Request::CreateTtl(r) => validate_path(&r.path, r.flags.is_sequential()),
        Request::Delete(r) => validate_path(&r.path, false),
        Request::Exists(r) => validate_path(&r.path, false),
        Request::GetData(r) => validate_path(&r.path, false),
        Request::SetData(r) => validate_path(&r.path, false),
        Request::GetAcl(r) => validate_path(&r.path, false),
        Request::SetAcl(r) => validate_path(&r.path, false),
        Request::GetChildren(r) => validate_path(&r.path, false),
        Request::GetChildren2(r) => validate_path(&r.path, false),
        Request::Sync(r) => validate_path(&r.path, false),
        Request::GetAllChildrenNumber(r) => validate_path(&r.path, false),
        Request::CheckWatches(r) => validate_path(&r.path, false),
        Request::RemoveWatches(r) => validate_path(&r.path, false),
        Request::AddWatch(r) => validate_path(&r.path, false),
        Request::GetEphemerals(r) => {
            if r.prefix_path.is_empty() || r.prefix_path.starts_with('/') {
                Ok(())
            } else {
                Err(Error::InvalidPath {
                    path: r.prefix_path.clone(),
                    reason: "prefix must start with /",
                })
            }
        }
        Request::Multi(m) | Request::MultiRead(m) => {
            let read = matches!(request, Request::MultiRead(_));
            for op in &m.ops {
                let is_read = matches!(op, MultiOp::GetChildren(_) | MultiOp::GetData(_));
                if is_read != read {
                    return internal("multi takes only writes and checks; multiRead only reads");
                }
                let sequential = match op {
                    MultiOp::Create(c) | MultiOp::Create2(c) | MultiOp::CreateContainer(c) => {
                        c.flags.is_sequential()
                    }
                    MultiOp::CreateTtl(c) => c.flags.is_sequential(),
                    _ => false,
                };
                validate_path(op.path(), sequential)?;
            }
            Ok(())
        }
        Request::Reconfig(_) | Request::WhoAmI => Ok(()),
        Request::Check(_) => internal("check is only valid inside multi"),
        Request::Ping => internal("pings are sent by the session itself"),
        Request::Auth(_) => internal("use add_auth"),
        Request::SetWatches(_) | Request::SetWatches2(_) => {
            internal("watches are re-registered by the session itself")
        }
        Request::CloseSession => internal("use close"),
        Request::DeleteContainer(_) => internal("deleteContainer is server-internal"),
        Request::Sasl(_) => internal("SASL is not supported"),
    }
}

fn apply_chroot(chroot: &Chroot, request: &mut Request) {
    if chroot.prefix().is_none() {
        return;
    }
    let path: &mut String = match request {
        Request::Create(r) | Request::Create2(r) | Request::CreateContainer(r) => &mut r.path,
        Request::CreateTtl(r) => &mut r.path,
        Request::Delete(r) => &mut r.path,
        Request::Exists(r) => &mut r.path,
        Request::GetData(r) => &mut r.path,
        Request::SetData(r) => &mut r.path,
        Request::GetAcl(r) => &mut r.path,
        Request::SetAcl(r) => &mut r.path,
        Request::GetChildren(r) => &mut r.path,
        Request::GetChildren2(r) => &mut r.path,
        Request::Sync(r) => &mut r.path,
        Request::GetAllChildrenNumber(r) => &mut r.path,
        Request::CheckWatches(r) => &mut r.path,
        Request::RemoveWatches(r) => &mut r.path,
        Request::AddWatch(r) => &mut r.path,
        Request::GetEphemerals(r) => {
            if r.prefix_path.is_empty() {
                r.prefix_path.push('/');
            }
            &mut r.prefix_path
        }
        Request::Multi(m) | Request::MultiRead(m) => {
            for op in &mut m.ops {
                chroot.apply(op.path_mut());
            }
            return;
        }
        _ => return,
    };
    chroot.apply(path);
}

fn strip_chroot(chroot: &Chroot, resp: &mut Response) {
    if chroot.prefix().is_none() {
        return;
    }
    match resp {
        Response::Create(r) => chroot.strip(&mut r.path),
        Response::Create2(r) => chroot.strip(&mut r.path),
        Response::Sync(r) => chroot.strip(&mut r.path),
        Response::GetEphemerals(r) => {
            for p in &mut r.ephemerals {
                chroot.strip(p);
            }
        }
        Response::Multi(m) => {
            for r in &mut m.results {
                match r {
                    MultiResult::Create(c) => chroot.strip(&mut c.path),
                    MultiResult::Create2(c) => chroot.strip(&mut c.path),
                    _ => {}
                }
            }
        }
        _ => {}
    }
}
