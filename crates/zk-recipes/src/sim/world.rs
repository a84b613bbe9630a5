//! The deterministic scheduler: virtual time, a discrete-event queue, a seeded RNG, simulated
//! network faults, and the baton that lets exactly one simulated task run at a time.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_proto::{ErrorCode, EventType, Request, Response, SetWatches2};
use zk_session::session::{Registry, WatchKind};
use zk_session::{Error, SessionState, WatchedEvent};

use super::model::{Model, Notification};
use super::{Faults, SimConfig};
use zk_session::hosts::Rng;

pub(crate) type TaskId = usize;
pub(crate) type ClientId = usize;

/// What a blocked task is waiting for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Not blocked (running or runnable).
    None,
    /// The reply to a request of `client`.
    Reply { client: ClientId, call: u64 },
    /// A timer (sleep or deadline) with this token.
    Timer { token: u64 },
    /// A watch to fire, or `token`'s deadline.
    Watch {
        client: ClientId,
        watch: u64,
        token: Option<u64>,
    },
    /// The client's state to leave `seen`, or `token`'s deadline.
    State {
        client: ClientId,
        seen: SessionState,
        token: Option<u64>,
    },
}

/// What a task is handed when it resumes.
#[derive(Debug, Clone)]
pub(crate) enum Wake {
    Start,
    Reply(Result<Response, Error>),
    Timer,
    Watch(Result<WatchedEvent, Error>),
    State(SessionState),
    Stopped,
}

#[derive(Debug)]
pub(crate) struct Task {
    pub(crate) name: String,
    pub(crate) wait: Wait,
    pub(crate) wake: Option<Wake>,
    pub(crate) done: bool,
    /// Frozen (stalled) until this offset: its sessions get no heartbeats.
    pub(crate) frozen_until: Option<Duration>,
}

#[derive(Debug)]
pub(crate) struct ClientSt {
    pub(crate) task: TaskId,
    pub(crate) session: i64,
    pub(crate) state: SessionState,
    /// Bumped on every disconnect: events of an older epoch are dropped.
    pub(crate) epoch: u64,
    pub(crate) last_zxid: i64,
    pub(crate) c2s_free: Duration,
    pub(crate) s2c_free: Duration,
    pub(crate) watches: Registry,
    pub(crate) fired: BTreeMap<u64, Result<WatchedEvent, Error>>,
    pub(crate) next_watch: u64,
    /// Watch registration to make when the pending call's reply arrives.
    pub(crate) pending_watch: Option<(u64, WatchKindReq, String)>,
}

/// Which kind of watch a read asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WatchKindReq {
    Exists,
    Data,
    Child,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum EventKind {
    /// The request reaches the server.
    Apply {
        client: ClientId,
        epoch: u64,
        call: u64,
        request: Request,
        lose_reply: bool,
    },
    /// A reply reaches the client.
    Reply {
        client: ClientId,
        epoch: u64,
        call: u64,
        zxid: i64,
        result: Result<Response, ErrorCode>,
    },
    /// A notification reaches the client.
    Notify {
        client: ClientId,
        epoch: u64,
        event_type: EventType,
        path: String,
    },
    /// A timer for a task.
    Timer { task: TaskId, token: u64 },
    /// A disconnected client reconnects.
    Reconnect { client: ClientId, epoch: u64 },
    /// The server expires a session that has been silent for its timeout.
    Expire { session: i64 },
    /// The server's TTL/container reaper.
    Reap,
}

/// One line of the run's timeline.
#[derive(Debug, Clone)]
pub struct TraceLine {
    /// Virtual time since the start.
    pub at: Duration,
    /// What happened.
    pub text: String,
}

pub(crate) struct World {
    pub(crate) config: SimConfig,
    pub(crate) rng: Rng,
    pub(crate) now: Duration,
    pub(crate) epoch_instant: Instant,
    pub(crate) model: Model,
    pub(crate) tasks: Vec<Task>,
    pub(crate) clients: Vec<ClientSt>,
    events: BinaryHeap<Reverse<(Duration, u64, usize)>>,
    event_store: BTreeMap<usize, EventKind>,
    next_event: usize,
    seq: u64,
    next_token: u64,
    next_call: u64,
    pub(crate) current: Option<TaskId>,
    pub(crate) finished: bool,
    pub(crate) stopping: bool,
    pub(crate) trace: Vec<TraceLine>,
    pub(crate) keep_trace: bool,
    pub(crate) hash: u64,
    pub(crate) faults_injected: u64,
    pub(crate) panics: Vec<String>,
}

pub(crate) struct Shared {
    pub(crate) world: Mutex<World>,
    pub(crate) cv: Condvar,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl World {
    pub(crate) fn new(config: SimConfig, epoch_instant: Instant, keep_trace: bool) -> World {
        World {
            rng: Rng::new(config.seed ^ 0x51u64.rotate_left(56)),
            config,
            now: Duration::ZERO,
            epoch_instant,
            model: Model::new(),
            tasks: Vec::new(),
            clients: Vec::new(),
            events: BinaryHeap::new(),
            event_store: BTreeMap::new(),
            next_event: 0,
            seq: 0,
            next_token: 1,
            next_call: 1,
            current: None,
            finished: false,
            stopping: false,
            trace: Vec::new(),
            keep_trace,
            hash: FNV_OFFSET,
            faults_injected: 0,
            panics: Vec::new(),
        }
    }

    pub(crate) fn now_ms(&self) -> i64 {
        // Start the model's clock at a fixed, plausible epoch so ctime/mtime look real.
        1_700_000_000_000 + i64::try_from(self.now.as_millis()).unwrap_or(i64::MAX)
    }

    /// Append to the trace (and its hash).
    pub(crate) fn log(&mut self, text: String) {
        let stamp = format!("{:>10.3}ms ", self.now.as_secs_f64() * 1000.0);
        for b in stamp
            .bytes()
            .chain(text.bytes())
            .chain(std::iter::once(b'\n'))
        {
            self.hash ^= u64::from(b);
            self.hash = self.hash.wrapping_mul(FNV_PRIME);
        }
        if self.keep_trace {
            self.trace.push(TraceLine { at: self.now, text });
        }
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && ((self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        if hi <= lo {
            return lo;
        }
        let span = (hi - lo).as_micros() as u64;
        lo + Duration::from_micros(self.rng.below(span + 1))
    }

    fn latency(&mut self) -> Duration {
        let (lo, hi) = self.config.latency;
        let mut l = self.between(lo, hi);
        let f: Faults = self.config.faults.clone();
        if self.chance(f.delay) {
            self.faults_injected += 1;
            l += self.between(Duration::ZERO, f.delay_max);
        }
        l
    }

    fn push_event(&mut self, at: Duration, kind: EventKind) {
        let id = self.next_event;
        self.next_event += 1;
        self.seq += 1;
        self.event_store.insert(id, kind);
        self.events.push(Reverse((at, self.seq, id)));
    }

    pub(crate) fn new_token(&mut self) -> u64 {
        let t = self.next_token;
        self.next_token += 1;
        t
    }

    pub(crate) fn timer(&mut self, task: TaskId, at: Duration) -> u64 {
        let token = self.new_token();
        self.push_event(at, EventKind::Timer { task, token });
        token
    }

    pub(crate) fn open_client(&mut self, task: TaskId) -> ClientId {
        let timeout = i32::try_from(self.config.session_timeout.as_millis()).unwrap_or(i32::MAX);
        let now_ms = self.now_ms();
        let (session, _) = self.model.open_session(now_ms, timeout);
        let id = self.clients.len();
        self.clients.push(ClientSt {
            task,
            session,
            state: SessionState::Connected,
            epoch: 0,
            last_zxid: self.model.last_zxid(),
            c2s_free: self.now,
            s2c_free: self.now,
            watches: Registry::default(),
            fired: BTreeMap::new(),
            next_watch: 1,
            pending_watch: None,
        });
        let name = self.tasks[task].name.clone();
        self.log(format!("{name}: session s{id} opened"));
        id
    }

    /// A task submits a request on a client: decide its fate and schedule it.
    pub(crate) fn submit(&mut self, client: ClientId, request: Request) -> u64 {
        let call = self.next_call;
        self.next_call += 1;
        let task = self.clients[client].task;
        // The task waits for this call from here on, so a fault decided below (which fails
        // the pending call at once) reaches it.
        self.tasks[task].wait = Wait::Reply { client, call };
        let name = self.tasks[task].name.clone();
        let desc = describe(&request);
        self.log(format!("{name}: s{client} {desc}"));
        let f = self.config.faults.clone();
        let c = &self.clients[client];
        if c.state != SessionState::Connected {
            let err = match c.state {
                SessionState::Expired => ErrorCode::SessionExpired,
                _ => ErrorCode::ConnectionLoss,
            };
            let (epoch, at) = (c.epoch, self.now + Duration::from_micros(50));
            self.push_event(
                at,
                EventKind::Reply {
                    client,
                    epoch,
                    call,
                    zxid: 0,
                    result: Err(err),
                },
            );
            return call;
        }
        // Session-level faults first.
        if self.chance(f.expire) {
            self.faults_injected += 1;
            let session = self.clients[client].session;
            self.log(format!("FAULT expire s{client}"));
            self.expire(session);
        } else if self.chance(f.partition) {
            self.faults_injected += 1;
            let d = self.config.session_timeout
                + self.between(Duration::from_millis(1), self.config.session_timeout);
            self.log(format!("FAULT partition s{client} for {d:?}"));
            self.disconnect(client, d);
        } else if self.chance(f.disconnect) {
            self.faults_injected += 1;
            let max = f.disconnect_max.min(self.config.session_timeout / 2);
            let d = self.between(Duration::from_millis(1), max);
            self.log(format!("FAULT disconnect s{client} for {d:?}"));
            self.disconnect(client, d);
        }
        let c = &self.clients[client];
        if c.state != SessionState::Connected {
            let epoch = c.epoch;
            let at = self.now + Duration::from_micros(50);
            self.push_event(
                at,
                EventKind::Reply {
                    client,
                    epoch,
                    call,
                    zxid: 0,
                    result: Err(ErrorCode::ConnectionLoss),
                },
            );
            return call;
        }
        let lat = self.latency();
        let c = &mut self.clients[client];
        let at = (self.now + lat).max(c.c2s_free);
        c.c2s_free = at;
        let epoch = c.epoch;
        if self.chance(f.drop_request) {
            // Lost before the server: not applied; the connection drops.
            self.faults_injected += 1;
            self.log(format!("FAULT request lost s{client} ({desc})"));
            let d = self.between(Duration::from_millis(1), Duration::from_millis(50));
            self.disconnect(client, d);
            return call;
        }
        let lose_reply = self.chance(f.drop_reply);
        if lose_reply {
            self.faults_injected += 1;
        }
        self.push_event(
            at,
            EventKind::Apply {
                client,
                epoch,
                call,
                request,
                lose_reply,
            },
        );
        call
    }

    /// Drop a client's connection for `d`; the task blocked on a reply gets ConnectionLoss.
    pub(crate) fn disconnect(&mut self, client: ClientId, d: Duration) {
        let c = &mut self.clients[client];
        if c.state != SessionState::Connected {
            return;
        }
        c.state = SessionState::Disconnected;
        c.epoch += 1;
        c.pending_watch = None;
        let (epoch, session, task) = (c.epoch, c.session, c.task);
        self.model.drop_watches(session);
        self.push_event(self.now + d, EventKind::Reconnect { client, epoch });
        if d >= self.config.session_timeout {
            self.push_event(
                self.now + self.config.session_timeout,
                EventKind::Expire { session },
            );
        }
        self.fail_pending(task, client, Error::ConnectionLoss);
        self.wake_state_waiters(client);
    }

    fn fail_pending(&mut self, task: TaskId, client: ClientId, err: Error) {
        if let Wait::Reply { client: c, .. } = self.tasks[task].wait {
            if c == client {
                self.resume(task, Wake::Reply(Err(err)));
            }
        }
    }

    pub(crate) fn expire_now(&mut self, session: i64) {
        self.expire(session);
    }

    fn expire(&mut self, session: i64) {
        if !self.model.is_alive(session) {
            return;
        }
        let now_ms = self.now_ms();
        let notes = self.model.expire_session(now_ms, session);
        self.log(format!("server: session {session:#x} expired"));
        self.deliver_notifications(notes);
        // A connected client hears of it at once: the server closes its connection and the
        // reconnect is answered with "expired".
        let connected: Vec<ClientId> = (0..self.clients.len())
            .filter(|&i| {
                self.clients[i].session == session
                    && self.clients[i].state == SessionState::Connected
            })
            .collect();
        for client in connected {
            self.disconnect(client, Duration::from_millis(1));
        }
    }

    fn deliver_notifications(&mut self, notes: Vec<Notification>) {
        for n in notes {
            let Some(client) = self
                .clients
                .iter()
                .position(|c| c.session == n.session && c.state == SessionState::Connected)
            else {
                continue;
            };
            let lat = self.latency();
            let c = &mut self.clients[client];
            let at = (self.now + lat).max(c.s2c_free);
            c.s2c_free = at;
            let epoch = c.epoch;
            self.push_event(
                at,
                EventKind::Notify {
                    client,
                    epoch,
                    event_type: n.event.event_type,
                    path: n.event.path,
                },
            );
        }
    }

    pub(crate) fn resume(&mut self, task: TaskId, wake: Wake) {
        let t = &mut self.tasks[task];
        t.wait = Wait::None;
        t.wake = Some(wake);
    }

    fn wake_state_waiters(&mut self, client: ClientId) {
        let state = self.clients[client].state;
        for task in 0..self.tasks.len() {
            if let Wait::State {
                client: c, seen, ..
            } = self.tasks[task].wait
            {
                if c == client && seen != state {
                    self.resume(task, Wake::State(state));
                }
            }
        }
    }

    fn wake_watch_waiters(&mut self, client: ClientId) {
        for task in 0..self.tasks.len() {
            if let Wait::Watch {
                client: c, watch, ..
            } = self.tasks[task].wait
            {
                if c != client {
                    continue;
                }
                if let Some(r) = self.clients[client].fired.remove(&watch) {
                    self.resume(task, Wake::Watch(r));
                } else if self.clients[client].state.is_terminal() {
                    self.resume(task, Wake::Watch(Err(Error::SessionExpired)));
                }
            }
        }
    }

    /// Process one event. Returns false when the queue is empty.
    fn step_event(&mut self) -> bool {
        let Some(Reverse((at, _, id))) = self.events.pop() else {
            return false;
        };
        let Some(kind) = self.event_store.remove(&id) else {
            return true;
        };
        if at > self.now {
            self.now = at;
        }
        match kind {
            EventKind::Apply {
                client,
                epoch,
                call,
                request,
                lose_reply,
            } => {
                if self.clients[client].epoch != epoch {
                    return true; // the connection died before the request got there
                }
                let session = self.clients[client].session;
                let now_ms = self.now_ms();
                let applied = self.model.apply(now_ms, session, &request);
                let desc = describe(&request);
                self.log(format!(
                    "server: s{client} {desc} -> {}",
                    describe_result(&applied.result)
                ));
                self.deliver_notifications(applied.notifications);
                if lose_reply {
                    self.log(format!("FAULT reply lost s{client} ({desc})"));
                    let d = self.between(Duration::from_millis(1), Duration::from_millis(50));
                    self.disconnect(client, d);
                    return true;
                }
                let lat = self.latency();
                let c = &mut self.clients[client];
                let at = (self.now + lat).max(c.s2c_free);
                c.s2c_free = at;
                self.push_event(
                    at,
                    EventKind::Reply {
                        client,
                        epoch,
                        call,
                        zxid: applied.zxid,
                        result: applied.result,
                    },
                );
            }
            EventKind::Reply {
                client,
                epoch,
                call,
                zxid,
                result,
            } => {
                if self.clients[client].epoch != epoch {
                    return true;
                }
                let c = &mut self.clients[client];
                c.last_zxid = c.last_zxid.max(zxid);
                if let Some((watch, kind, path)) = c.pending_watch.take() {
                    let k = match (kind, &result) {
                        (WatchKindReq::Exists, Ok(_)) | (WatchKindReq::Data, Ok(_)) => {
                            Some(WatchKind::Data)
                        }
                        (WatchKindReq::Exists, Err(ErrorCode::NoNode)) => Some(WatchKind::Exist),
                        (WatchKindReq::Child, Ok(_)) => Some(WatchKind::Child),
                        _ => None,
                    };
                    if let Some(k) = k {
                        c.watches.add(watch, k, &path);
                    }
                }
                let task = c.task;
                if let Wait::Reply {
                    client: cl,
                    call: want,
                } = self.tasks[task].wait
                {
                    if cl == client && want == call {
                        self.resume(task, Wake::Reply(result.map_err(Error::from)));
                    }
                }
            }
            EventKind::Notify {
                client,
                epoch,
                event_type,
                path,
            } => {
                if self.clients[client].epoch != epoch {
                    return true;
                }
                let c = &mut self.clients[client];
                for w in c.watches.trigger(event_type, &path) {
                    c.fired.insert(
                        w,
                        Ok(WatchedEvent {
                            event_type,
                            path: path.clone(),
                        }),
                    );
                }
                self.log(format!("s{client}: event {event_type:?} {path}"));
                self.wake_watch_waiters(client);
            }
            EventKind::Timer { task, token } => match self.tasks[task].wait {
                Wait::Timer { token: t } if t == token => self.resume(task, Wake::Timer),
                Wait::Watch { token: Some(t), .. } if t == token => self.resume(task, Wake::Timer),
                Wait::State {
                    token: Some(t),
                    client,
                    ..
                } if t == token => {
                    let s = self.clients[client].state;
                    self.resume(task, Wake::State(s));
                }
                _ => {}
            },
            EventKind::Reconnect { client, epoch } => {
                if self.clients[client].epoch != epoch
                    || self.clients[client].state != SessionState::Disconnected
                {
                    return true;
                }
                let task = self.clients[client].task;
                if self.tasks[task].frozen_until.is_some_and(|u| u > self.now) {
                    // A frozen process cannot reconnect; try again when it thaws.
                    let at = self.tasks[task].frozen_until.unwrap_or(self.now);
                    self.push_event(at, EventKind::Reconnect { client, epoch });
                    return true;
                }
                let session = self.clients[client].session;
                if self.model.is_alive(session) {
                    self.clients[client].state = SessionState::Connected;
                    self.log(format!("s{client}: reconnected"));
                    let c = &self.clients[client];
                    let req = SetWatches2 {
                        relative_zxid: c.last_zxid,
                        data_watches: c.watches.paths(WatchKind::Data),
                        exist_watches: c.watches.paths(WatchKind::Exist),
                        child_watches: c.watches.paths(WatchKind::Child),
                        persistent_watches: Vec::new(),
                        persistent_recursive_watches: Vec::new(),
                    };
                    let notes = self.model.set_watches(session, req.relative_zxid, &req);
                    self.deliver_notifications(notes);
                } else {
                    self.clients[client].state = SessionState::Expired;
                    self.log(format!("s{client}: reconnect refused: session expired"));
                    self.clients[client].watches.drain();
                    self.wake_watch_waiters(client);
                }
                self.wake_state_waiters(client);
            }
            EventKind::Expire { session } => {
                // Only if the client stayed silent (still disconnected or frozen).
                let silent = self.clients.iter().any(|c| {
                    c.session == session
                        && (c.state == SessionState::Disconnected
                            || self.tasks[c.task]
                                .frozen_until
                                .is_some_and(|u| u > self.now))
                });
                if silent {
                    self.expire(session);
                }
            }
            EventKind::Reap => {
                let now_ms = self.now_ms();
                let notes = self.model.reap(now_ms);
                self.deliver_notifications(notes);
                let next = self.now + Duration::from_millis(100);
                self.push_event(next, EventKind::Reap);
            }
        }
        true
    }

    pub(crate) fn start_reaper(&mut self) {
        self.push_event(Duration::from_millis(100), EventKind::Reap);
    }

    /// Freeze a task for `d`: its sessions get no heartbeats; past the timeout they expire.
    pub(crate) fn stall(&mut self, task: TaskId, d: Duration) {
        let until = self.now + d;
        self.tasks[task].frozen_until = Some(until);
        self.faults_injected += 1;
        let name = self.tasks[task].name.clone();
        self.log(format!("FAULT {name} stalls for {d:?}"));
        if d >= self.config.session_timeout {
            let sessions: Vec<i64> = self
                .clients
                .iter()
                .filter(|c| c.task == task && c.state == SessionState::Connected)
                .map(|c| c.session)
                .collect();
            for session in sessions {
                self.push_event(
                    self.now + self.config.session_timeout,
                    EventKind::Expire { session },
                );
            }
        }
    }

    /// After a stall: a client whose session expired meanwhile learns it now.
    pub(crate) fn thaw(&mut self, task: TaskId) {
        self.tasks[task].frozen_until = None;
        for client in 0..self.clients.len() {
            let c = &self.clients[client];
            if c.task == task && !c.state.is_terminal() && !self.model.is_alive(c.session) {
                self.clients[client].state = SessionState::Expired;
                self.clients[client].epoch += 1;
                self.clients[client].watches.drain();
                self.log(format!("s{client}: learns its session expired"));
                self.wake_watch_waiters(client);
                self.wake_state_waiters(client);
            }
        }
    }

    /// Pick the next task to run, processing events (and advancing time) until one is
    /// runnable. Sets `current`; sets `finished` when every task is done.
    pub(crate) fn schedule(&mut self) {
        loop {
            let runnable: Vec<TaskId> = (0..self.tasks.len())
                .filter(|&t| !self.tasks[t].done && self.tasks[t].wake.is_some())
                .collect();
            if !runnable.is_empty() {
                let pick = runnable[self.rng.below(runnable.len() as u64) as usize];
                self.current = Some(pick);
                return;
            }
            if self.tasks.iter().all(|t| t.done) {
                self.current = None;
                self.finished = true;
                return;
            }
            if self.stopping {
                // Unblock everyone so their code can unwind.
                for t in 0..self.tasks.len() {
                    if !self.tasks[t].done && self.tasks[t].wait != Wait::None {
                        self.resume(t, Wake::Stopped);
                    }
                }
                continue;
            }
            let next_at = self.events.peek().map(|Reverse((at, _, _))| *at);
            match next_at {
                Some(at) if at <= self.config.max_time => {
                    self.step_event();
                }
                _ => {
                    self.log("time limit reached: stopping".to_owned());
                    self.stopping = true;
                }
            }
        }
    }

    pub(crate) fn close_client(&mut self, client: ClientId) {
        let c = &mut self.clients[client];
        if c.state.is_terminal() {
            return;
        }
        c.state = SessionState::Closed;
        c.epoch += 1;
        let session = c.session;
        c.watches.drain();
        let now_ms = self.now_ms();
        if self.model.is_alive(session) {
            let notes = self.model.close_session(now_ms, session);
            self.deliver_notifications(notes);
        }
        self.log(format!("s{client}: closed"));
        self.wake_watch_waiters(client);
        self.wake_state_waiters(client);
    }

    /// A crashed task's sessions are not closed: the server expires them after the timeout.
    pub(crate) fn crash_client(&mut self, client: ClientId) {
        let c = &mut self.clients[client];
        if c.state.is_terminal() {
            return;
        }
        c.state = SessionState::Closed;
        c.epoch += 1;
        c.watches.drain();
        let session = c.session;
        self.log(format!("s{client}: process died; session left to expire"));
        // Nothing keeps it alive any more.
        let at = self.now + self.config.session_timeout;
        self.push_event(at, EventKind::Expire { session });
        // Mark as silent for the expiry check.
        self.clients[client].state = SessionState::Disconnected;
        self.clients[client].epoch += 1;
    }
}

fn describe(r: &Request) -> String {
    match r {
        Request::Create(c) | Request::Create2(c) | Request::CreateContainer(c) => {
            format!("create {} {:?}", c.path, c.flags)
        }
        Request::CreateTtl(c) => format!("create {} {:?} ttl {}", c.path, c.flags, c.ttl),
        Request::Delete(d) => format!("delete {} v{}", d.path, d.version),
        Request::Exists(e) => format!("exists {}{}", e.path, if e.watch { " +w" } else { "" }),
        Request::GetData(g) => format!("get {}{}", g.path, if g.watch { " +w" } else { "" }),
        Request::SetData(s) => format!("set {} v{} {}B", s.path, s.version, s.data.len()),
        Request::GetChildren(g) => format!("ls {}{}", g.path, if g.watch { " +w" } else { "" }),
        Request::GetChildren2(g) => format!("ls {}{}", g.path, if g.watch { " +w" } else { "" }),
        Request::Multi(m) => format!(
            "multi [{}]",
            m.ops
                .iter()
                .map(|o| format!("{:?} {}", o.opcode(), o.path()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Request::Sync(s) => format!("sync {}", s.path),
        other => format!("{:?}", other.opcode()),
    }
}

fn describe_result(r: &Result<Response, ErrorCode>) -> String {
    match r {
        Err(code) => format!("{code:?}"),
        Ok(Response::Create(c)) => format!("ok {}", c.path),
        Ok(Response::Create2(c)) => format!("ok {}", c.path),
        Ok(Response::GetChildren(c)) => format!("ok {} children", c.children.len()),
        Ok(Response::GetChildren2(c)) => format!("ok {} children", c.children.len()),
        Ok(Response::GetData(d)) => format!("ok {}B v{}", d.data.len(), d.stat.version),
        Ok(Response::SetData(s)) => format!("ok v{}", s.stat.version),
        Ok(Response::Exists(e)) => format!("ok v{}", e.stat.version),
        Ok(Response::Multi(m)) => match m.first_error() {
            Some(code) => format!("multi failed: {code:?}"),
            None => format!("ok {} results", m.results.len()),
        },
        Ok(_) => "ok".to_owned(),
    }
}

/// Shared by [`super::SimSession`] calls: block the calling task until the scheduler hands
/// it the baton again, returning what it was woken with.
pub(crate) fn block_on(shared: &Arc<Shared>, task: TaskId, mut w: MutexGuard<'_, World>) -> Wake {
    w.schedule();
    shared.cv.notify_all();
    loop {
        if w.current == Some(task) {
            if let Some(wake) = w.tasks[task].wake.take() {
                return wake;
            }
        }
        w = shared.cv.wait(w).unwrap_or_else(PoisonError::into_inner);
    }
}

#[allow(dead_code)]
pub(crate) fn unused(_: Bytes, _: VecDeque<u8>) {}
