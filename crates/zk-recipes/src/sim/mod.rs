//! A deterministic in-memory ZooKeeper for tests, with virtual time and injected faults.
//!
//! Many simulated clients, each running ordinary blocking code against the [`Session`] trait,
//! are interleaved by one seeded RNG: only one runs at a time, every trait call is a point
//! where the scheduler decides what happens next (which task resumes, network latencies,
//! faults), and time is virtual — a 30-second timeout costs microseconds. The same seed yields
//! the same timeline byte for byte ([`RunReport::trace_hash`]).
//!
//! Faults, drawn from the seed with per-request probabilities ([`Faults`]) or scripted:
//! a request lost before the server (not applied, `ConnectionLoss`); a reply lost after the
//! server applied the request (the ambiguous case); delays; disconnects for a while (session
//! kept, watches re-registered on reconnect with catch-up events); a client cut off longer
//! than its session timeout (the server expires the session, its ephemerals vanish, and the
//! client learns it only when it reconnects); outright session expiry; a process that stalls
//! (GC pause, SIGSTOP) while it believes it holds a lock ([`SimCtx::stall`]).
//!
//! # Testing your own code with injected partitions
//!
//! ```
//! use std::time::Duration;
//! use zk_recipes::sim::{Faults, Sim, SimConfig};
//! use zk_recipes::{CreateOptions, Error, Session};
//!
//! let mut sim = Sim::new(SimConfig {
//!     seed: 7,
//!     faults: Faults { disconnect: 0.2, drop_reply: 0.1, ..Faults::none() },
//!     ..SimConfig::default()
//! });
//! sim.spawn("writer", |ctx| {
//!     let zk = ctx.connect();
//!     // Under faults, a create may report ConnectionLoss although it was applied:
//!     // code must check before retrying.
//!     loop {
//!         match zk.create("/job", b"x", &CreateOptions::persistent()) {
//!             Ok(_) | Err(Error::NodeExists) => break,
//!             Err(Error::ConnectionLoss) => ctx.sleep(Duration::from_millis(10)),
//!             Err(e) => panic!("unexpected {e}"),
//!         }
//!     }
//! });
//! let report = sim.run();
//! assert!(report.panics.is_empty(), "{:?}", report.panics);
//! // Same seed, same timeline.
//! assert_eq!(report.trace_hash, {
//!     let mut again = Sim::new(SimConfig { seed: 7, faults: Faults { disconnect: 0.2, drop_reply: 0.1, ..Faults::none() }, ..SimConfig::default() });
//!     again.spawn("writer", |ctx| {
//!         let zk = ctx.connect();
//!         loop {
//!             match zk.create("/job", b"x", &CreateOptions::persistent()) {
//!                 Ok(_) | Err(Error::NodeExists) => break,
//!                 Err(Error::ConnectionLoss) => ctx.sleep(Duration::from_millis(10)),
//!                 Err(e) => panic!("unexpected {e}"),
//!             }
//!         }
//!     });
//!     again.run().trace_hash
//! });
//! ```

pub mod model;
mod world;

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_proto::{
    DeleteRequest, ExistsRequest, GetChildren2Request, GetDataRequest, MultiRequest, MultiResult,
    Request, Response, SetDataRequest, SyncRequest,
};
use zk_session::{CreateOptions, Error, Op, OpResult, SessionState, Stat, WatchedEvent};

pub use world::TraceLine;
use world::{ClientId, Shared, TaskId, Wait, Wake, WatchKindReq, World, block_on};

use crate::session::Session;

/// Per-request fault probabilities (each in 0.0..=1.0), drawn from the run's seed.
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    /// The request is lost before the server: not applied; the connection drops.
    pub drop_request: f64,
    /// The server applies the request, then the reply is lost; the connection drops.
    pub drop_reply: f64,
    /// Extra latency of up to `delay_max` on a message.
    pub delay: f64,
    /// The largest extra latency.
    pub delay_max: Duration,
    /// The connection drops for up to `disconnect_max` (less than the session timeout).
    pub disconnect: f64,
    /// The longest short disconnect.
    pub disconnect_max: Duration,
    /// The client is cut off longer than its session timeout: the session expires.
    pub partition: f64,
    /// The server expires the session outright.
    pub expire: f64,
    /// Chance that [`SimCtx::stall`] really stalls (longer than the session timeout).
    pub stall: f64,
}

impl Faults {
    /// No faults.
    pub fn none() -> Faults {
        Faults {
            drop_request: 0.0,
            drop_reply: 0.0,
            delay: 0.0,
            delay_max: Duration::from_millis(50),
            disconnect: 0.0,
            disconnect_max: Duration::from_millis(500),
            partition: 0.0,
            expire: 0.0,
            stall: 0.0,
        }
    }

    /// A mix of every fault at rates that keep runs making progress.
    pub fn standard() -> Faults {
        Faults {
            drop_request: 0.01,
            drop_reply: 0.01,
            delay: 0.05,
            disconnect: 0.005,
            partition: 0.002,
            expire: 0.001,
            stall: 0.05,
            ..Faults::none()
        }
    }
}

/// How a simulation runs.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The seed: the same seed gives the same run.
    pub seed: u64,
    /// Every client's session timeout.
    pub session_timeout: Duration,
    /// One-way network latency range.
    pub latency: (Duration, Duration),
    /// Fault probabilities.
    pub faults: Faults,
    /// Virtual time after which every blocked call returns [`Error::Closed`] and the run ends.
    pub max_time: Duration,
    /// Keep the readable timeline (costs memory; the hash is always computed).
    pub keep_trace: bool,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            seed: 0,
            session_timeout: Duration::from_secs(6),
            latency: (Duration::from_micros(100), Duration::from_millis(2)),
            faults: Faults::none(),
            max_time: Duration::from_secs(600),
            keep_trace: false,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The seed.
    pub seed: u64,
    /// FNV-1a hash of the whole timeline: equal for equal seeds.
    pub trace_hash: u64,
    /// The timeline, when [`SimConfig::keep_trace`] was set.
    pub trace: Vec<TraceLine>,
    /// Faults injected.
    pub faults_injected: u64,
    /// Virtual time at the end.
    pub elapsed: Duration,
    /// Panics of simulated tasks (task name and message).
    pub panics: Vec<String>,
    /// Whether the run hit [`SimConfig::max_time`] with tasks still running.
    pub timed_out: bool,
    /// The server's data at the end of the run, for checkers.
    pub model: Arc<model::Model>,
}

type TaskFn = Box<dyn FnOnce(SimCtx) + Send>;

/// A simulation: spawn tasks, then [`Sim::run`].
pub struct Sim {
    shared: Arc<Shared>,
    pending: Vec<(TaskId, TaskFn)>,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim").finish_non_exhaustive()
    }
}

impl Sim {
    /// A new simulation.
    pub fn new(config: SimConfig) -> Sim {
        #[allow(clippy::disallowed_methods)] // only an anchor for virtual Instants
        let anchor = Instant::now();
        let keep = config.keep_trace;
        let mut world = World::new(config, anchor, keep);
        world.start_reaper();
        Sim {
            shared: Arc::new(Shared {
                world: Mutex::new(world),
                cv: Condvar::new(),
            }),
            pending: Vec::new(),
        }
    }

    /// Add a simulated process running `f`.
    pub fn spawn(&mut self, name: &str, f: impl FnOnce(SimCtx) + Send + 'static) {
        let mut w = self.shared.lock();
        let id = w.tasks.len();
        w.tasks.push(world::Task {
            name: name.to_owned(),
            wait: Wait::None,
            wake: Some(Wake::Start),
            done: false,
            frozen_until: None,
        });
        drop(w);
        self.pending.push((id, Box::new(f)));
    }

    /// Run every task to completion (or to the time limit) and report.
    pub fn run(self) -> RunReport {
        let mut threads = Vec::new();
        for (task, f) in self.pending {
            let shared = self.shared.clone();
            let t = std::thread::Builder::new()
                .name(format!("sim-task-{task}"))
                .spawn(move || run_task(shared, task, f))
                .expect("spawn a simulation thread");
            threads.push(t);
        }
        {
            let mut w = self.shared.lock();
            w.schedule();
            self.shared.cv.notify_all();
            while !w.finished {
                w = self
                    .shared
                    .cv
                    .wait(w)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
        }
        for t in threads {
            let _ = t.join();
        }
        let mut w = self.shared.lock();
        RunReport {
            seed: w.config.seed,
            trace_hash: w.hash,
            trace: std::mem::take(&mut w.trace),
            faults_injected: w.faults_injected,
            elapsed: w.now,
            panics: std::mem::take(&mut w.panics),
            timed_out: w.stopping,
            model: Arc::new(std::mem::take(&mut w.model)),
        }
    }
}

fn run_task(shared: Arc<Shared>, task: TaskId, f: TaskFn) {
    // Wait for the first turn.
    {
        let mut w = shared.lock();
        loop {
            if w.current == Some(task) && matches!(w.tasks[task].wake, Some(Wake::Start)) {
                w.tasks[task].wake = None;
                break;
            }
            w = shared
                .cv
                .wait(w)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }
    let ctx = SimCtx {
        shared: shared.clone(),
        task,
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(ctx)));
    let mut w = shared.lock();
    if let Err(p) = outcome {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "panic".to_owned());
        let name = w.tasks[task].name.clone();
        w.log(format!("{name}: PANIC {msg}"));
        w.panics.push(format!("{name}: {msg}"));
    }
    // A finished process closes its sessions.
    let mine: Vec<ClientId> = (0..w.clients.len())
        .filter(|&c| w.clients[c].task == task)
        .collect();
    for c in mine {
        w.close_client(c);
    }
    w.tasks[task].done = true;
    w.tasks[task].wait = Wait::None;
    w.schedule();
    shared.cv.notify_all();
}

/// A simulated process: opens sessions, sleeps, stalls, logs.
#[derive(Clone)]
pub struct SimCtx {
    shared: Arc<Shared>,
    task: TaskId,
}

impl std::fmt::Debug for SimCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimCtx").field("task", &self.task).finish()
    }
}

impl SimCtx {
    /// Open a new session (connected at once).
    pub fn connect(&self) -> SimSession {
        let mut w = self.shared.lock();
        let client = w.open_client(self.task);
        drop(w);
        SimSession {
            shared: self.shared.clone(),
            task: self.task,
            client,
        }
    }

    /// Virtual now.
    pub fn now(&self) -> Instant {
        let w = self.shared.lock();
        w.epoch_instant + w.now
    }

    /// Virtual sleep.
    pub fn sleep(&self, d: Duration) {
        sleep(&self.shared, self.task, d);
    }

    /// Whether the run is past its time limit (every blocking call now fails).
    pub fn stopped(&self) -> bool {
        self.shared.lock().stopping
    }

    /// A point where the process may stall (GC pause, SIGSTOP): with the configured
    /// probability it freezes for longer than the session timeout, so its sessions expire
    /// while it is frozen. Returns whether it stalled.
    pub fn stall(&self) -> bool {
        let mut w = self.shared.lock();
        let p = w.config.faults.stall;
        let roll = ((w.rng.next_u64() >> 11) as f64) / ((1u64 << 53) as f64);
        if p <= 0.0 || roll >= p {
            return false;
        }
        let timeout = w.config.session_timeout;
        let d = timeout + timeout / 2;
        w.stall(self.task, d);
        let at = w.now + d;
        let token = w.timer(self.task, at);
        w.tasks[self.task].wait = Wait::Timer { token };
        let wake = block_on(&self.shared, self.task, w);
        let mut w = self.shared.lock();
        w.thaw(self.task);
        drop(w);
        !matches!(wake, Wake::Stopped)
    }

    /// Scripted fault: freeze this process for `d` (as SIGSTOP or a long GC pause would):
    /// its sessions get no heartbeats, so past the session timeout the server expires them.
    pub fn stall_for(&self, d: Duration) {
        let mut w = self.shared.lock();
        w.stall(self.task, d);
        let at = w.now + d;
        let token = w.timer(self.task, at);
        w.tasks[self.task].wait = Wait::Timer { token };
        block_on(&self.shared, self.task, w);
        self.shared.lock().thaw(self.task);
    }

    /// Add a line to the run's timeline.
    pub fn log(&self, text: impl Into<String>) {
        let mut w = self.shared.lock();
        let name = w.tasks[self.task].name.clone();
        w.log(format!("{name}: {}", text.into()));
    }

    /// A value from the run's seeded RNG (for workload decisions).
    pub fn random(&self, below: u64) -> u64 {
        self.shared.lock().rng.below(below)
    }
}

fn sleep(shared: &Arc<Shared>, task: TaskId, d: Duration) {
    let mut w = shared.lock();
    if w.stopping {
        return;
    }
    let at = w.now + d;
    let token = w.timer(task, at);
    w.tasks[task].wait = Wait::Timer { token };
    block_on(shared, task, w);
}

/// One simulated session: the [`Session`] implementation of the simulator.
#[derive(Clone)]
pub struct SimSession {
    shared: Arc<Shared>,
    task: TaskId,
    client: ClientId,
}

impl std::fmt::Debug for SimSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimSession")
            .field("client", &self.client)
            .finish()
    }
}

/// A one-shot watch in the simulator.
#[derive(Debug)]
pub struct SimWatch {
    client: ClientId,
    id: u64,
}

impl SimSession {
    fn call(
        &self,
        request: Request,
        watch: Option<(WatchKindReq, String)>,
    ) -> (Result<Response, Error>, Option<u64>) {
        let mut w = self.shared.lock();
        if w.stopping {
            return (Err(Error::Closed), None);
        }
        let watch_id = watch.map(|(kind, path)| {
            let c = &mut w.clients[self.client];
            let id = c.next_watch;
            c.next_watch += 1;
            c.pending_watch = Some((id, kind, path));
            id
        });
        w.submit(self.client, request);
        match block_on(&self.shared, self.task, w) {
            Wake::Reply(r) => (r, watch_id),
            _ => (Err(Error::Closed), None),
        }
    }

    fn watch(&self, id: Option<u64>) -> Result<SimWatch, Error> {
        id.map(|id| SimWatch {
            client: self.client,
            id,
        })
        .ok_or(Error::Closed)
    }

    /// Close the session (its ephemerals are deleted at once).
    pub fn close(&self) {
        let mut w = self.shared.lock();
        w.close_client(self.client);
    }

    /// The process dies without closing the session: the server expires it after the session
    /// timeout (its ephemerals vanish then), as after a crash or `kill -9`.
    pub fn crash(&self) {
        let mut w = self.shared.lock();
        w.crash_client(self.client);
    }

    /// Scripted fault: cut this session's connection for `d`. Shorter than the session
    /// timeout, the session survives (watches are re-registered on reconnect, with catch-up
    /// events); longer, the server expires it after the timeout (its ephemerals vanish) and
    /// the client learns that only when it reconnects.
    pub fn disconnect_for(&self, d: Duration) {
        let mut w = self.shared.lock();
        w.faults_injected += 1;
        w.log(format!(
            "FAULT scripted disconnect s{} for {d:?}",
            self.client
        ));
        w.disconnect(self.client, d);
    }

    /// Scripted fault: the server expires this session now.
    pub fn expire(&self) {
        let mut w = self.shared.lock();
        w.faults_injected += 1;
        let session = w.clients[self.client].session;
        w.log(format!("FAULT scripted expiry s{}", self.client));
        w.expire_now(session);
    }

    /// The simulated process this session belongs to.
    pub fn ctx(&self) -> SimCtx {
        SimCtx {
            shared: self.shared.clone(),
            task: self.task,
        }
    }
}

fn unexpected<T>(r: Response) -> Result<T, Error> {
    Err(Error::Protocol(format!("unexpected response {r:?}")))
}

fn validate(path: &str, sequential: bool) -> Result<(), Error> {
    zk_session::path::validate_path(path, sequential)
}

impl Session for SimSession {
    type Watch = SimWatch;

    fn create(
        &self,
        path: &str,
        data: &[u8],
        options: &CreateOptions,
    ) -> Result<(String, Stat), Error> {
        validate(path, options.mode.is_sequential())?;
        let req = options.request(path, Bytes::copy_from_slice(data))?;
        match self.call(req, None).0? {
            Response::Create2(r) => Ok((r.path, r.stat)),
            Response::Create(r) => Ok((r.path, Stat::default())),
            other => unexpected(other),
        }
    }

    fn delete(&self, path: &str, version: Option<i32>) -> Result<(), Error> {
        validate(path, false)?;
        let req = Request::Delete(DeleteRequest {
            path: path.to_owned(),
            version: version.unwrap_or(-1),
        });
        self.call(req, None).0.map(|_| ())
    }

    fn exists(&self, path: &str) -> Result<Option<Stat>, Error> {
        validate(path, false)?;
        let req = Request::Exists(ExistsRequest {
            path: path.to_owned(),
            watch: false,
        });
        match self.call(req, None).0 {
            Ok(Response::Exists(e)) => Ok(Some(e.stat)),
            Ok(other) => unexpected(other),
            Err(Error::NoNode) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn exists_watch(&self, path: &str) -> Result<(Option<Stat>, SimWatch), Error> {
        validate(path, false)?;
        let req = Request::Exists(ExistsRequest {
            path: path.to_owned(),
            watch: true,
        });
        let (r, id) = self.call(req, Some((WatchKindReq::Exists, path.to_owned())));
        match r {
            Ok(Response::Exists(e)) => Ok((Some(e.stat), self.watch(id)?)),
            Ok(other) => unexpected(other),
            Err(Error::NoNode) => Ok((None, self.watch(id)?)),
            Err(e) => Err(e),
        }
    }

    fn get_data(&self, path: &str) -> Result<(Bytes, Stat), Error> {
        validate(path, false)?;
        let req = Request::GetData(GetDataRequest {
            path: path.to_owned(),
            watch: false,
        });
        match self.call(req, None).0? {
            Response::GetData(d) => Ok((d.data, d.stat)),
            other => unexpected(other),
        }
    }

    fn get_data_watch(&self, path: &str) -> Result<(Bytes, Stat, SimWatch), Error> {
        validate(path, false)?;
        let req = Request::GetData(GetDataRequest {
            path: path.to_owned(),
            watch: true,
        });
        let (r, id) = self.call(req, Some((WatchKindReq::Data, path.to_owned())));
        match r? {
            Response::GetData(d) => Ok((d.data, d.stat, self.watch(id)?)),
            other => unexpected(other),
        }
    }

    fn set_data(&self, path: &str, data: &[u8], version: Option<i32>) -> Result<Stat, Error> {
        validate(path, false)?;
        let req = Request::SetData(SetDataRequest {
            path: path.to_owned(),
            data: Bytes::copy_from_slice(data),
            version: version.unwrap_or(-1),
        });
        match self.call(req, None).0? {
            Response::SetData(s) => Ok(s.stat),
            other => unexpected(other),
        }
    }

    fn get_children(&self, path: &str) -> Result<(Vec<String>, Stat), Error> {
        validate(path, false)?;
        let req = Request::GetChildren2(GetChildren2Request {
            path: path.to_owned(),
            watch: false,
        });
        match self.call(req, None).0? {
            Response::GetChildren2(c) => Ok((c.children, c.stat)),
            other => unexpected(other),
        }
    }

    fn get_children_watch(&self, path: &str) -> Result<(Vec<String>, Stat, SimWatch), Error> {
        validate(path, false)?;
        let req = Request::GetChildren2(GetChildren2Request {
            path: path.to_owned(),
            watch: true,
        });
        let (r, id) = self.call(req, Some((WatchKindReq::Child, path.to_owned())));
        match r? {
            Response::GetChildren2(c) => Ok((c.children, c.stat, self.watch(id)?)),
            other => unexpected(other),
        }
    }

    fn multi(&self, ops: Vec<Op>) -> Result<Vec<OpResult>, Error> {
        let mut mops = Vec::with_capacity(ops.len());
        for op in ops {
            let (path, sequential) = op.path();
            validate(path, sequential)?;
            mops.push(op.into_multi_op()?);
        }
        let req = Request::Multi(MultiRequest { ops: mops });
        match self.call(req, None).0? {
            Response::Multi(m) => {
                let failed = m.results.iter().enumerate().find_map(|(i, r)| match r {
                    MultiResult::Error(code)
                        if *code != zk_proto::ErrorCode::Ok
                            && *code != zk_proto::ErrorCode::RuntimeInconsistency =>
                    {
                        Some((i, *code))
                    }
                    _ => None,
                });
                if let Some((index, code)) = failed {
                    return Err(Error::MultiFailed { index, code });
                }
                m.results
                    .into_iter()
                    .map(OpResult::from_multi_result)
                    .collect()
            }
            other => unexpected(other),
        }
    }

    fn sync(&self, path: &str) -> Result<(), Error> {
        validate(path, false)?;
        let req = Request::Sync(SyncRequest {
            path: path.to_owned(),
        });
        self.call(req, None).0.map(|_| ())
    }

    fn session_id(&self) -> i64 {
        self.shared.lock().clients[self.client].session
    }

    fn state(&self) -> SessionState {
        self.shared.lock().clients[self.client].state
    }

    fn now(&self) -> Instant {
        let w = self.shared.lock();
        w.epoch_instant + w.now
    }

    fn sleep(&self, duration: Duration) {
        sleep(&self.shared, self.task, duration);
    }

    fn wait_watch(
        &self,
        watch: &SimWatch,
        deadline: Option<Instant>,
    ) -> Result<Option<WatchedEvent>, Error> {
        let mut w = self.shared.lock();
        if let Some(r) = w.clients[watch.client].fired.remove(&watch.id) {
            return r.map(Some);
        }
        let state = w.clients[watch.client].state;
        if let Some(e) = terminal_error(state) {
            return Err(e);
        }
        if w.stopping {
            return Err(Error::Closed);
        }
        let token = deadline.map(|d| {
            let at = d.saturating_duration_since(w.epoch_instant).max(w.now);
            w.timer(self.task, at)
        });
        w.tasks[self.task].wait = Wait::Watch {
            client: watch.client,
            watch: watch.id,
            token,
        };
        match block_on(&self.shared, self.task, w) {
            Wake::Watch(r) => r.map(Some),
            Wake::Timer => Ok(None),
            _ => Err(Error::Closed),
        }
    }

    fn wait_state(&self, seen: SessionState, deadline: Option<Instant>) -> SessionState {
        let mut w = self.shared.lock();
        let state = w.clients[self.client].state;
        if state != seen || w.stopping {
            return state;
        }
        let token = deadline.map(|d| {
            let at = d.saturating_duration_since(w.epoch_instant).max(w.now);
            w.timer(self.task, at)
        });
        w.tasks[self.task].wait = Wait::State {
            client: self.client,
            seen,
            token,
        };
        match block_on(&self.shared, self.task, w) {
            Wake::State(s) => s,
            _ => self.shared.lock().clients[self.client].state,
        }
    }
}

fn terminal_error(state: SessionState) -> Option<Error> {
    match state {
        SessionState::Expired => Some(Error::SessionExpired),
        SessionState::Closed => Some(Error::Closed),
        SessionState::AuthFailed => Some(Error::AuthFailed),
        _ => None,
    }
}
