//! Workloads of the queue family: `queue`, `locking-queue`, `counter`, `barrier`,
//! `double-barrier`, and a deliberately broken variant of each (`<name>-broken`).
//!
//! Every operation is logged as invoked, then ok / fail / info (info: connection loss or
//! timeout, it may or may not have happened), in one history per run whose order the
//! simulator makes deterministic. A final task reads what is left in ZooKeeper. The checkers
//! (FAULTS.md, "Checking a recipe's history"):
//!
//! - `queue` (at-most-once): item ids are unique; an item acknowledged as enqueued is
//!   consumed exactly once or is still queued at the end, except one whose delete was
//!   ambiguous ([`Taken::Unknown`]), which is consumed at most once; an item of an unknown
//!   put at most once; of a failed put never; a consumer gets one producer's items of one
//!   priority in order. Broken variant: a consumer whose delete finds the entry gone hands
//!   the item out anyway (duplicates).
//! - `locking-queue` (at-least-once): each item is consumed (`consume() == true`) at most
//!   once; an acknowledged item is consumed or still queued at the end, unless a `consume`
//!   had an unknown outcome; a failed put is never seen. Holders write `start` and `end`
//!   entries through the lock's fence (`multi[check(taken/<entry>), create(log/e-)]`), with a
//!   possible stall (longer than the session) between them: in the fenced log, the entries of
//!   each (item, holder, attempt) are contiguous — nobody else holds an item while its holder
//!   is alive. An unfenced log (a separate session, as an external store) gets the same
//!   entries; its violations are counted ([`seed_stats`]), not failed. Broken variant: items
//!   taken without a lock node.
//! - `counter` (kazoo text int, text float or the Curator 4-byte int by seed): the final
//!   value lies in [#ok, #ok + #info] and successful increments return distinct values.
//!   Broken variant: writes without the version check (lost updates).
//! - `barrier`: no waiter passes before the coordinator's `remove` was invoked, and every
//!   waiter passes. Broken variant: `wait` passes on any event of the node (the coordinator
//!   writes to the barrier before removing it).
//! - `double-barrier` (N participants, 2 rounds): nobody passes `enter` before all N have
//!   invoked it; nobody passes `leave` before every participant that did not lose its session
//!   has invoked `leave` (a lost session is leaving); in rounds without session loss, nobody
//!   times out. Broken variant: `enter` passes one participant early.
//!
//! Client processes (`--clients N`, default in brackets): `queue` runs `N / 2` producers and
//! `N - N / 2` consumers (2 + 2; at least one of each); `locking-queue` one producer and
//! `N - 1` consumers (1 + 3); `counter` `N` workers (3); `barrier` one coordinator and `N - 1`
//! waiters (1 + 3); `double-barrier` `N` participants, the barrier's `num_clients` (3; at
//! least 2).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::{Checker, Log, Outcome, Workload};
use crate::barrier::{Barrier, DoubleBarrier};
use crate::counter::{Codec, Counter, CuratorInt, KazooFloat, KazooInt, Update};
use crate::fence::{Fence, sequence_of};
use crate::queue::{LockingQueue, Queue, Taken, sort_entries};
use crate::session::join;
use crate::sim::{Faults, RunReport, Sim, SimConfig, SimCtx, SimSession};
use crate::{CreateMode, CreateOptions, Error, Op, Session, SessionExt};

/// This family's workloads.
pub fn all() -> Vec<&'static dyn Workload> {
    WORKLOADS.iter().map(|w| w as &dyn Workload).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Queue,
    LockingQueue,
    Counter,
    Barrier,
    DoubleBarrier,
}

impl Kind {
    /// Client processes by default (see the module docs for the roles).
    fn default_clients(self) -> usize {
        match self {
            Kind::Queue => PRODUCERS + CONSUMERS,
            Kind::LockingQueue => 1 + LQ_CONSUMERS,
            Kind::Counter => COUNTER_WORKERS,
            Kind::Barrier => 1 + WAITERS,
            Kind::DoubleBarrier => PARTICIPANTS,
        }
    }

    /// The fewest client processes: one of each role; two participants for a double barrier.
    fn min_clients(self) -> usize {
        match self {
            Kind::Counter => 1,
            Kind::Queue | Kind::LockingQueue | Kind::Barrier | Kind::DoubleBarrier => 2,
        }
    }
}

/// One workload of the family.
#[derive(Debug)]
struct Family {
    name: &'static str,
    about: &'static str,
    kind: Kind,
    broken: bool,
}

static WORKLOADS: [Family; 10] = [
    Family {
        name: "queue",
        about: "producers and consumers under faults; at-most-once: acked items consumed once or left, ambiguous ones at most once",
        kind: Kind::Queue,
        broken: false,
    },
    Family {
        name: "queue-broken",
        about: "deliberately broken: a consumer hands out items whose delete found them gone (the checker must catch duplicates)",
        kind: Kind::Queue,
        broken: true,
    },
    Family {
        name: "locking-queue",
        about: "holders stall while holding; at-least-once, consumed at most once, fenced per-item log contiguous",
        kind: Kind::LockingQueue,
        broken: false,
    },
    Family {
        name: "locking-queue-broken",
        about: "deliberately broken: items taken without a lock node (the checker must catch two holders)",
        kind: Kind::LockingQueue,
        broken: true,
    },
    Family {
        name: "counter",
        about: "kazoo int/float and Curator 4-byte counters; final value in [ok, ok+info], distinct results",
        kind: Kind::Counter,
        broken: false,
    },
    Family {
        name: "counter-broken",
        about: "deliberately broken: writes without the version check (the checker must catch lost updates)",
        kind: Kind::Counter,
        broken: true,
    },
    Family {
        name: "barrier",
        about: "waiters pass only after the coordinator removes the barrier, and all pass",
        kind: Kind::Barrier,
        broken: false,
    },
    Family {
        name: "barrier-broken",
        about: "deliberately broken: wait passes on any node event (the checker must catch early passes)",
        kind: Kind::Barrier,
        broken: true,
    },
    Family {
        name: "double-barrier",
        about: "participants in 2 rounds; nobody passes enter before all entered, nor leave before all left",
        kind: Kind::DoubleBarrier,
        broken: false,
    },
    Family {
        name: "double-barrier-broken",
        about: "deliberately broken: enter passes one participant early (the checker must catch it)",
        kind: Kind::DoubleBarrier,
        broken: true,
    },
];

impl Workload for Family {
    fn name(&self) -> &'static str {
        self.name
    }
    fn about(&self) -> &'static str {
        self.about
    }
    fn broken(&self) -> bool {
        self.broken
    }
    fn config(&self, seed: u64) -> SimConfig {
        config(seed)
    }
    fn default_clients(&self) -> usize {
        self.kind.default_clients()
    }
    fn min_clients(&self) -> usize {
        self.kind.min_clients()
    }
    fn spawn(&self, sim: &mut Sim, clients: usize) -> Checker {
        spawn(sim, self.kind, clients, self.broken, Stats::default())
    }
}

/// The faults: the standard mix with more lost replies (the ambiguous case these recipes
/// must resolve) and more stalls inside critical sections.
///
/// `drop_request` is 0: in the simulator a request lost before the server leaves its caller
/// blocked until the time limit (`World::submit` disconnects before the caller waits for the
/// reply, so the ConnectionLoss wake-up is lost). Requests that never reach the server are
/// still exercised by `disconnect` (a request made while disconnected fails at once).
fn config(seed: u64) -> SimConfig {
    SimConfig {
        seed,
        faults: Faults {
            drop_request: 0.0,
            drop_reply: 0.03,
            stall: 0.08,
            ..Faults::standard()
        },
        ..SimConfig::default()
    }
}

/// Per-seed figures beyond the verdict.
#[derive(Debug, Clone)]
pub struct SeedStats {
    /// The checker's verdict.
    pub verdict: Result<(), String>,
    /// Faults injected.
    pub faults: u64,
    /// `locking-queue`: violations of the per-item contiguity rule in the unfenced log.
    pub unfenced_violations: usize,
    /// Operations with an unknown outcome (puts, ambiguous takes, counter changes, ...).
    pub unknown: usize,
    /// Operations acknowledged.
    pub ok: usize,
    /// `double-barrier`: participants that timed out in `enter` because the `ready` node
    /// came and went while they were disconnected (a lost wake-up inherent in kazoo's
    /// protocol; counted, not failed).
    pub missed_ready: usize,
}

impl Default for SeedStats {
    fn default() -> SeedStats {
        SeedStats {
            verdict: Ok(()),
            faults: 0,
            unfenced_violations: 0,
            unknown: 0,
            ok: 0,
            missed_ready: 0,
        }
    }
}

type Stats = Arc<Mutex<SeedStats>>;

/// Run one seed of a workload of this family and return its figures (`None` for another
/// family's name).
pub fn seed_stats(name: &str, seed: u64) -> Option<SeedStats> {
    let w = WORKLOADS.iter().find(|w| w.name == name)?;
    let stats = Stats::default();
    let mut sim = Sim::new(config(seed));
    let check = spawn(
        &mut sim,
        w.kind,
        w.kind.default_clients(),
        w.broken,
        stats.clone(),
    );
    let report = sim.run();
    let verdict = match report.panics.first() {
        Some(p) => Err(format!("task panicked: {p}")),
        None => check(&report),
    };
    let mut s = stats.lock().unwrap_or_else(PoisonError::into_inner).clone();
    s.verdict = verdict;
    s.faults = report.faults_injected;
    Some(s)
}

fn spawn(sim: &mut Sim, kind: Kind, clients: usize, broken: bool, stats: Stats) -> Checker {
    let check = match kind {
        Kind::Queue => {
            let producers = (clients / 2).max(1);
            let consumers = clients.saturating_sub(producers).max(1);
            spawn_queue(sim, producers, consumers, broken, stats)
        }
        Kind::LockingQueue => spawn_locking(sim, clients.saturating_sub(1).max(1), broken, stats),
        Kind::Counter => spawn_counter(sim, clients.max(1), broken, stats),
        Kind::Barrier => spawn_barrier(sim, clients.saturating_sub(1).max(1), broken),
        Kind::DoubleBarrier => spawn_double(sim, clients.max(1), broken, stats),
    };
    // Safety first; then progress: every process finishes well within the time limit.
    Box::new(move |report: &RunReport| {
        check(report)?;
        if report.timed_out {
            return Err("the run hit the time limit: some process never finished".into());
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------
// Shared pieces.

/// A new session when the old one is gone for good.
fn fresh(ctx: &SimCtx, zk: &mut SimSession) {
    if zk.state().is_terminal() {
        *zk = ctx.connect();
    }
}

/// Run `f` until it succeeds (reconnecting after expiry); `None` once the run stops.
fn until_ok<T>(
    ctx: &SimCtx,
    zk: &mut SimSession,
    mut f: impl FnMut(&SimSession) -> Result<T, Error>,
) -> Option<T> {
    for _ in 0..10_000 {
        if ctx.stopped() {
            return None;
        }
        fresh(ctx, zk);
        match f(zk) {
            Ok(v) => return Some(v),
            Err(_) => ctx.sleep(Duration::from_millis(20)),
        }
    }
    None
}

/// Sleep until `done` has `n` entries (or the run stops).
fn wait_done(ctx: &SimCtx, done: &Log<()>, n: usize) -> bool {
    while done.snapshot().len() < n {
        if ctx.stopped() {
            return false;
        }
        ctx.sleep(Duration::from_millis(500));
    }
    true
}

fn classify(e: &Error) -> Outcome {
    if matches!(e, Error::ConnectionLoss | Error::Timeout | Error::Closed) {
        Outcome::Info
    } else {
        Outcome::Fail
    }
}

/// Children of `dir` with their data, sorted as queue entries.
fn read_dir(zk: &SimSession, dir: &str) -> Result<Vec<(String, String)>, Error> {
    let (mut names, _) = match zk.get_children(dir) {
        Ok(v) => v,
        Err(Error::NoNode) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    sort_entries(&mut names);
    let mut out = Vec::new();
    for n in names {
        match zk.get_data(&join(dir, &n)) {
            Ok((d, _)) => out.push((n, String::from_utf8_lossy(&d).into_owned())),
            Err(Error::NoNode) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// queue

const QUEUE: &str = "/queue";
/// Producers by default.
const PRODUCERS: usize = 2;
const ITEMS_PER_PRODUCER: usize = 8;
/// Consumers by default.
const CONSUMERS: usize = 2;

/// An item id: `p<producer>-<n>-<priority>`.
fn item_id(producer: usize, n: usize, priority: u16) -> String {
    format!("p{producer}-{n}-{priority}")
}

fn parse_item(id: &str) -> Option<(usize, usize, u16)> {
    let mut it = id.strip_prefix('p')?.split('-');
    let p = it.next()?.parse().ok()?;
    let n = it.next()?.parse().ok()?;
    let prio = it.next()?.parse().ok()?;
    Some((p, n, prio))
}

#[derive(Debug, Clone)]
enum QEv {
    PutInvoked(String),
    Put(String, Outcome),
    Took {
        consumer: usize,
        id: String,
        unknown: bool,
    },
}

/// Producers put items one by one or in pairs (`put_all`); each item's outcome is logged.
fn producer<F>(ctx: &SimCtx, p: usize, hist: &Log<QEv>, mut put: F)
where
    F: FnMut(&SimSession, &[Vec<u8>], u16) -> Result<(), Error>,
{
    let mut zk = ctx.connect();
    let mut n = 0;
    while n < ITEMS_PER_PRODUCER {
        if ctx.stopped() {
            return;
        }
        fresh(ctx, &mut zk);
        let priority = if ctx.random(3) == 0 { 10 } else { 100 };
        let batch = if n + 1 < ITEMS_PER_PRODUCER && ctx.random(4) == 0 {
            2
        } else {
            1
        };
        let ids: Vec<String> = (n..n + batch).map(|k| item_id(p, k, priority)).collect();
        let values: Vec<Vec<u8>> = ids.iter().map(|i| i.clone().into_bytes()).collect();
        for id in &ids {
            hist.push(QEv::PutInvoked(id.clone()));
        }
        let outcome = match put(&zk, &values, priority) {
            Ok(()) => Outcome::Ok,
            Err(e) => classify(&e),
        };
        for id in ids {
            hist.push(QEv::Put(id, outcome));
        }
        n += batch;
        ctx.sleep(Duration::from_millis(ctx.random(30)));
    }
}

fn spawn_queue(
    sim: &mut Sim,
    producers: usize,
    consumers: usize,
    broken: bool,
    stats: Stats,
) -> Checker {
    let hist: Log<QEv> = Log::default();
    let done: Log<()> = Log::default();
    let remaining: Log<Vec<String>> = Log::default();
    for p in 0..producers {
        let (hist, done) = (hist.clone(), done.clone());
        sim.spawn(&format!("producer{p}"), move |ctx| {
            producer(&ctx, p, &hist, |zk, values, prio| {
                let q = Queue::new(zk.clone(), QUEUE);
                if values.len() == 1 {
                    q.put(&values[0], prio).map(|_| ())
                } else {
                    q.put_all(values, prio).map(|_| ())
                }
            });
            done.push(());
        });
    }
    for c in 0..consumers {
        let (hist, done) = (hist.clone(), done.clone());
        sim.spawn(&format!("consumer{c}"), move |ctx| {
            let mut zk = ctx.connect();
            let mut empty = 0;
            while !ctx.stopped() {
                fresh(&ctx, &mut zk);
                let q = Queue::new(zk.clone(), QUEUE);
                let q = if broken { q.broken_ignore_gone() } else { q };
                match q.take() {
                    Ok(Some(t)) => {
                        empty = 0;
                        let (data, unknown) = match t {
                            Taken::Item(d) => (d, false),
                            Taken::Unknown(d) => (d, true),
                        };
                        let id = String::from_utf8_lossy(&data).into_owned();
                        hist.push(QEv::Took {
                            consumer: c,
                            id,
                            unknown,
                        });
                        ctx.sleep(Duration::from_millis(ctx.random(20)));
                    }
                    Ok(None) => {
                        if done.snapshot().len() >= producers {
                            empty += 1;
                            if empty >= 2 {
                                break;
                            }
                        }
                        ctx.sleep(Duration::from_millis(50));
                    }
                    Err(_) => ctx.sleep(Duration::from_millis(20)),
                }
            }
            done.push(());
        });
    }
    let rem = remaining.clone();
    let d = done.clone();
    sim.spawn("final", move |ctx| {
        if !wait_done(&ctx, &d, producers + consumers) {
            return;
        }
        let mut zk = ctx.connect();
        if let Some(left) = until_ok(&ctx, &mut zk, |zk| read_dir(zk, QUEUE)) {
            rem.push(left.into_iter().map(|(_, data)| data).collect());
        }
    });
    Box::new(move |report: &RunReport| {
        let events = hist.snapshot();
        let left = remaining.snapshot().first().cloned();
        let mut s = stats.lock().unwrap_or_else(PoisonError::into_inner);
        s.unknown = events
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    QEv::Put(_, Outcome::Info) | QEv::Took { unknown: true, .. }
                )
            })
            .count();
        s.ok = events
            .iter()
            .filter(|e| matches!(e, QEv::Took { unknown: false, .. }))
            .count();
        drop(s);
        check_queue(&events, left.as_deref(), report.timed_out)
    })
}

fn check_queue(events: &[QEv], left: Option<&[String]>, timed_out: bool) -> Result<(), String> {
    let mut invoked: BTreeSet<&str> = BTreeSet::new();
    let mut put: BTreeMap<&str, Outcome> = BTreeMap::new();
    let mut items: BTreeMap<&str, usize> = BTreeMap::new();
    let mut unknown: BTreeSet<&str> = BTreeSet::new();
    // Per consumer, per (producer, priority): the last n got.
    let mut order: BTreeMap<(usize, usize, u16), usize> = BTreeMap::new();
    for e in events {
        match e {
            QEv::PutInvoked(id) => {
                if !invoked.insert(id) {
                    return Err(format!("item {id} put twice (ids must be unique)"));
                }
            }
            QEv::Put(id, o) => {
                put.insert(id, *o);
            }
            QEv::Took {
                consumer,
                id,
                unknown: u,
            } => {
                if !invoked.contains(id.as_str()) {
                    return Err(format!("consumer{consumer} got {id}, which was never put"));
                }
                if *u {
                    unknown.insert(id);
                    continue;
                }
                let n = items.entry(id).or_default();
                *n += 1;
                if *n > 1 {
                    return Err(format!("item {id} consumed twice"));
                }
                if let Some((p, k, prio)) = parse_item(id) {
                    if let Some(&last) = order.get(&(*consumer, p, prio)) {
                        if k < last {
                            return Err(format!(
                                "consumer{consumer} got {id} after p{p}-{last}-{prio}: not FIFO"
                            ));
                        }
                    }
                    order.insert((*consumer, p, prio), k);
                }
            }
        }
    }
    let Some(left) = left else {
        return if timed_out {
            Ok(())
        } else {
            Err("the final state of the queue was not read".into())
        };
    };
    let mut queued: BTreeMap<&str, usize> = BTreeMap::new();
    for id in left {
        if !put.contains_key(id.as_str()) {
            return Err(format!("{id} is queued but was never put"));
        }
        *queued.entry(id).or_default() += 1;
    }
    for (id, o) in &put {
        let got = items.get(id).copied().unwrap_or(0);
        let q = queued.get(id).copied().unwrap_or(0);
        let maybe = unknown.contains(id);
        match o {
            Outcome::Fail if got + q > 0 || maybe => {
                return Err(format!("{id}: put failed, yet it was in the queue"));
            }
            Outcome::Ok if !maybe && got + q != 1 => {
                return Err(format!(
                    "{id}: acknowledged put, consumed {got} times and {q} left in the queue"
                ));
            }
            _ if got + q > 1 => {
                return Err(format!(
                    "{id}: consumed {got} times and {q} left in the queue"
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// locking-queue

const LQ: &str = "/lq";
const LQ_LOG: &str = "/lq-log";
const LQ_UNFENCED: &str = "/lq-unfenced";
const LQ_ITEMS: usize = 10;
/// Consumers by default.
const LQ_CONSUMERS: usize = 3;

#[derive(Debug, Clone)]
enum LEv {
    PutInvoked(String),
    Put(String, Outcome),
    Got {
        consumer: usize,
        id: String,
    },
    /// `Ok`: consumed; `Fail`: not consumed (lock lost); `Info`: unknown.
    Consume {
        consumer: usize,
        id: String,
        outcome: Outcome,
    },
}

/// The final state: the entries left, the fenced log, the unfenced log.
type LqFinal = (Vec<String>, Vec<String>, Vec<String>);

fn spawn_locking(sim: &mut Sim, consumers: usize, broken: bool, stats: Stats) -> Checker {
    let hist: Log<LEv> = Log::default();
    let done: Log<()> = Log::default();
    let produced: Log<()> = Log::default();
    let fin: Log<LqFinal> = Log::default();
    {
        let (hist, done, produced) = (hist.clone(), done.clone(), produced.clone());
        sim.spawn("producer", move |ctx| {
            let mut zk = ctx.connect();
            let mut n = 0;
            while n < LQ_ITEMS && !ctx.stopped() {
                fresh(&ctx, &mut zk);
                let q = LockingQueue::new(zk.clone(), LQ);
                let batch = if n + 1 < LQ_ITEMS && ctx.random(3) == 0 {
                    2
                } else {
                    1
                };
                let ids: Vec<String> = (n..n + batch).map(|k| format!("i{k}")).collect();
                for id in &ids {
                    hist.push(LEv::PutInvoked(id.clone()));
                }
                let r = if batch == 1 {
                    q.put(ids[0].as_bytes(), 100).map(|_| ())
                } else {
                    let values: Vec<&[u8]> = ids.iter().map(|i| i.as_bytes()).collect();
                    q.put_all(&values, 100).map(|_| ())
                };
                let o = match r {
                    Ok(()) => Outcome::Ok,
                    Err(e) => classify(&e),
                };
                for id in ids {
                    hist.push(LEv::Put(id, o));
                }
                n += batch;
                ctx.sleep(Duration::from_millis(ctx.random(200)));
            }
            produced.push(());
            done.push(());
        });
    }
    for c in 0..consumers {
        let (hist, done, produced) = (hist.clone(), done.clone(), produced.clone());
        sim.spawn(&format!("consumer{c}"), move |ctx| {
            locking_consumer(&ctx, c, broken, &hist, &produced);
            done.push(());
        });
    }
    let (f, d) = (fin.clone(), done.clone());
    sim.spawn("final", move |ctx| {
        if !wait_done(&ctx, &d, 1 + consumers) {
            return;
        }
        let mut zk = ctx.connect();
        let r = until_ok(&ctx, &mut zk, |zk| {
            let left = read_dir(zk, &join(LQ, crate::queue::ENTRIES_DIR))?;
            let fenced = read_log(zk, LQ_LOG)?;
            let unfenced = read_log(zk, LQ_UNFENCED)?;
            Ok((left.into_iter().map(|(_, d)| d).collect(), fenced, unfenced))
        });
        if let Some(r) = r {
            f.push(r);
        }
    });
    Box::new(move |report: &RunReport| {
        let events = hist.snapshot();
        let fin = fin.snapshot().first().cloned();
        if let Some((_, _, unfenced)) = &fin {
            let mut s = stats.lock().unwrap_or_else(PoisonError::into_inner);
            s.unfenced_violations = contiguity_violations(unfenced).len();
            s.unknown = events
                .iter()
                .filter(|e| {
                    matches!(
                        e,
                        LEv::Put(_, Outcome::Info)
                            | LEv::Consume {
                                outcome: Outcome::Info,
                                ..
                            }
                    )
                })
                .count();
            s.ok = events
                .iter()
                .filter(|e| {
                    matches!(
                        e,
                        LEv::Consume {
                            outcome: Outcome::Ok,
                            ..
                        }
                    )
                })
                .count();
        }
        check_locking(&events, fin.as_ref(), report.timed_out)
    })
}

/// Entries of a sequential log, in sequence order.
fn read_log(zk: &SimSession, dir: &str) -> Result<Vec<String>, Error> {
    let (mut names, _) = match zk.get_children(dir) {
        Ok(v) => v,
        Err(Error::NoNode) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    names.sort_by_key(|n| sequence_of(n, "e-").unwrap_or(i64::MAX));
    let mut out = Vec::new();
    for n in names {
        match zk.get_data(&join(dir, &n)) {
            Ok((d, _)) => out.push(String::from_utf8_lossy(&d).into_owned()),
            Err(Error::NoNode) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

fn log_op(dir: &str, entry: &str) -> Op {
    Op::create(
        &join(dir, "e-"),
        entry.as_bytes().to_vec(),
        CreateOptions::new(CreateMode::PersistentSequential),
    )
}

/// Append to the unfenced log through a separate "storage" session, reconnected as needed
/// (an external store that knows nothing of locks). Stops after an ambiguous write.
fn unfenced_write(ctx: &SimCtx, st: &mut SimSession, entry: &str) {
    for _ in 0..20 {
        if ctx.stopped() {
            return;
        }
        fresh(ctx, st);
        match st.multi(vec![log_op(LQ_UNFENCED, entry)]) {
            Ok(_) => return,
            Err(e) if classify(&e) == Outcome::Info => return,
            Err(_) => ctx.sleep(Duration::from_millis(10)),
        }
    }
}

fn locking_consumer(ctx: &SimCtx, c: usize, broken: bool, hist: &Log<LEv>, produced: &Log<()>) {
    let mut zk = ctx.connect();
    let mut st = ctx.connect();
    let _ = until_ok(ctx, &mut zk, |zk| {
        zk.ensure_path(LQ_LOG)?;
        zk.ensure_path(LQ_UNFENCED)
    });
    let mut attempt = 0;
    let mut empty = 0;
    while !ctx.stopped() && attempt < 4 * LQ_ITEMS {
        fresh(ctx, &mut zk);
        let q = LockingQueue::new(zk.clone(), LQ);
        let q = if broken { q.broken_without_locks() } else { q };
        let got = match q.get(Some(Duration::from_secs(1))) {
            Ok(g) => g,
            Err(_) => {
                ctx.sleep(Duration::from_millis(20));
                continue;
            }
        };
        let Some(data) = got else {
            if !produced.snapshot().is_empty() {
                empty += 1;
                if empty >= 2 {
                    return;
                }
            }
            continue;
        };
        empty = 0;
        attempt += 1;
        let id = String::from_utf8_lossy(&data).into_owned();
        hist.push(LEv::Got {
            consumer: c,
            id: id.clone(),
        });
        let fence = q.fence().unwrap_or(Fence {
            node: join(LQ, "missing"),
            token: 0,
        });
        let tag = format!("{id}|c{c}|{attempt}");
        let mut lost = false;
        for (k, phase) in ["start", "end"].iter().enumerate() {
            if k == 1 {
                // Inside the critical section: work, and perhaps stall past the session.
                ctx.sleep(Duration::from_millis(ctx.random(30)));
                ctx.stall();
            }
            let entry = format!("{tag}|{phase}");
            if !lost {
                match fence.write(&zk, vec![log_op(LQ_LOG, &entry)]) {
                    Ok(_) => {}
                    Err(e) if Fence::is_lost(&e) => lost = true,
                    Err(_) => {}
                }
            }
            unfenced_write(ctx, &mut st, &entry);
        }
        if lost {
            // Our hold is gone; the item will be (or was) handed out again.
            drop(q);
            continue;
        }
        let consume = ctx.random(8) != 0;
        if consume {
            let outcome = match q.consume() {
                Ok(true) => Outcome::Ok,
                Ok(false) => Outcome::Fail,
                Err(e) => {
                    if e.is_terminal() {
                        // Expired: the multi was not applied unless its reply was lost
                        // earlier; the recipe reports the outcome as unknown.
                        Outcome::Info
                    } else {
                        classify(&e)
                    }
                }
            };
            hist.push(LEv::Consume {
                consumer: c,
                id,
                outcome,
            });
        } else {
            let _ = q.release();
        }
    }
}

/// Violations of "each (item, holder, attempt)'s entries are contiguous among the entries of
/// that item" in a log of `item|holder|attempt|phase` entries.
fn contiguity_violations(log: &[String]) -> Vec<String> {
    // Per item: the run open now, and the runs already closed.
    let mut current: BTreeMap<&str, &str> = BTreeMap::new();
    let mut closed: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut out = Vec::new();
    for e in log {
        let Some((item, rest)) = e.split_once('|') else {
            continue;
        };
        let Some((run, _phase)) = rest.rsplit_once('|') else {
            continue;
        };
        let seen = closed.entry(item).or_default();
        if seen.contains(run) {
            out.push(format!(
                "{item}: {run} wrote again after another holder ({e})"
            ));
        }
        match current.insert(item, run) {
            Some(prev) if prev != run => {
                seen.insert(prev);
            }
            _ => {}
        }
    }
    out
}

fn check_locking(events: &[LEv], fin: Option<&LqFinal>, timed_out: bool) -> Result<(), String> {
    let mut invoked: BTreeSet<&str> = BTreeSet::new();
    let mut put: BTreeMap<&str, Outcome> = BTreeMap::new();
    let mut consumed: BTreeMap<&str, usize> = BTreeMap::new();
    let mut unknown: BTreeSet<&str> = BTreeSet::new();
    let mut got_ids: BTreeSet<&str> = BTreeSet::new();
    for e in events {
        match e {
            LEv::PutInvoked(id) => {
                if !invoked.insert(id) {
                    return Err(format!("item {id} put twice"));
                }
            }
            LEv::Put(id, o) => {
                put.insert(id, *o);
            }
            LEv::Got { consumer, id } => {
                if !invoked.contains(id.as_str()) {
                    return Err(format!("consumer{consumer} got {id}, which was not put"));
                }
                got_ids.insert(id);
            }
            LEv::Consume {
                consumer,
                id,
                outcome,
            } => match outcome {
                Outcome::Ok => {
                    let n = consumed.entry(id).or_default();
                    *n += 1;
                    if *n > 1 {
                        return Err(format!(
                            "item {id} consumed twice (again by consumer{consumer})"
                        ));
                    }
                }
                Outcome::Info => {
                    unknown.insert(id);
                }
                Outcome::Fail => {}
            },
        }
    }
    let Some((left, fenced, _)) = fin else {
        return if timed_out {
            Ok(())
        } else {
            Err("the final state was not read".into())
        };
    };
    if let Some(v) = contiguity_violations(fenced).first() {
        return Err(format!("fenced log: {v}"));
    }
    let mut queued: BTreeMap<&str, usize> = BTreeMap::new();
    for id in left {
        *queued.entry(id).or_default() += 1;
    }
    for (id, o) in &put {
        let got = consumed.get(id).copied().unwrap_or(0);
        let q = queued.get(id).copied().unwrap_or(0);
        match o {
            Outcome::Fail if got + q > 0 || got_ids.contains(id) => {
                return Err(format!("{id}: put failed, yet it was in the queue"));
            }
            Outcome::Ok if !unknown.contains(id) && got + q != 1 => {
                return Err(format!(
                    "{id}: acknowledged put, consumed {got} times and {q} left: lost or duplicated"
                ));
            }
            _ if got + q > 1 => {
                return Err(format!("{id}: consumed {got} times and {q} left"));
            }
            _ => {}
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// counter

const COUNTER: &str = "/counter";
/// Workers by default.
const COUNTER_WORKERS: usize = 3;
const INCREMENTS: usize = 6;

fn spawn_counter(sim: &mut Sim, workers: usize, broken: bool, stats: Stats) -> Checker {
    // The encoding comes from the first random draw of the run (seeded).
    let mode: Log<u8> = Log::default();
    let hist: Log<(Outcome, Option<i64>)> = Log::default();
    let done: Log<()> = Log::default();
    let fin: Log<i64> = Log::default();
    for w in 0..workers {
        let (hist, done, mode) = (hist.clone(), done.clone(), mode.clone());
        sim.spawn(&format!("worker{w}"), move |ctx| {
            let m = mode_of(&ctx, &mode);
            match m {
                0 => counter_worker::<KazooInt>(&ctx, broken, 1, |v| v, &hist),
                1 => counter_worker::<KazooFloat>(&ctx, broken, 1.0, |v| v as i64, &hist),
                _ => counter_worker::<CuratorInt>(&ctx, broken, 1, i64::from, &hist),
            }
            done.push(());
        });
    }
    let (f, d, md) = (fin.clone(), done.clone(), mode.clone());
    sim.spawn("final", move |ctx| {
        if !wait_done(&ctx, &d, workers) {
            return;
        }
        let m = mode_of(&ctx, &md);
        let mut zk = ctx.connect();
        let v = until_ok(&ctx, &mut zk, |zk| match m {
            0 => Counter::new(zk.clone(), COUNTER).get(),
            1 => Counter::new_float(zk.clone(), COUNTER, 0.0)
                .get()
                .map(|v| v as i64),
            _ => Counter::new_curator(zk.clone(), COUNTER)
                .get()
                .map(i64::from),
        });
        if let Some(v) = v {
            f.push(v);
        }
    });
    Box::new(move |report: &RunReport| {
        let entries = hist.snapshot();
        let ok = entries.iter().filter(|e| e.0 == Outcome::Ok).count();
        let info = entries.iter().filter(|e| e.0 == Outcome::Info).count();
        {
            let mut s = stats.lock().unwrap_or_else(PoisonError::into_inner);
            s.ok = ok;
            s.unknown = info;
        }
        let mut seen = BTreeSet::new();
        for (_, v) in &entries {
            if let Some(v) = v {
                if !seen.insert(*v) {
                    return Err(format!("two successful increments returned {v}"));
                }
            }
        }
        let Some(&value) = fin.snapshot().first() else {
            return if report.timed_out {
                Ok(())
            } else {
                Err("the final value could not be read".into())
            };
        };
        let (ok, info) = (ok as i64, info as i64);
        if value < ok || value > ok + info {
            return Err(format!(
                "final value {value} outside [ok={ok}, ok+info={}] (mode {:?})",
                ok + info,
                mode.snapshot().first()
            ));
        }
        Ok(())
    })
}

fn mode_of(ctx: &SimCtx, mode: &Log<u8>) -> u8 {
    if let Some(m) = mode.snapshot().first() {
        return *m;
    }
    let m = ctx.random(3) as u8;
    mode.push(m);
    m
}

fn counter_worker<C: Codec>(
    ctx: &SimCtx,
    broken: bool,
    one: C::Value,
    to_i64: fn(C::Value) -> i64,
    hist: &Log<(Outcome, Option<i64>)>,
) {
    let mut zk = ctx.connect();
    for _ in 0..INCREMENTS {
        if ctx.stopped() {
            return;
        }
        fresh(ctx, &mut zk);
        let c: Counter<SimSession, C> = Counter::with_default(zk.clone(), COUNTER, zero::<C>(one));
        let c = if broken { c.broken_unversioned() } else { c };
        match c.increment(one) {
            Ok(Update::Applied { post, .. }) => hist.push((Outcome::Ok, Some(to_i64(post)))),
            Ok(Update::Unknown { .. }) => hist.push((Outcome::Info, None)),
            Err(e) => hist.push((classify(&e), None)),
        }
        ctx.sleep(Duration::from_millis(ctx.random(20)));
    }
}

/// The codec's zero: `one - one`.
fn zero<C: Codec>(one: C::Value) -> C::Value {
    C::negate(one).and_then(|m| C::add(one, m)).unwrap_or(one)
}

// ---------------------------------------------------------------------------------------
// barrier

const BARRIER_ROUNDS: usize = 3;
/// Waiters by default (beside the coordinator).
const WAITERS: usize = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
enum BEv {
    Created(usize),
    RemoveInvoked(usize),
    Passed { round: usize, waiter: usize },
}

fn barrier_path(round: usize) -> String {
    format!("/barrier-{round}")
}

fn spawn_barrier(sim: &mut Sim, waiters: usize, broken: bool) -> Checker {
    let hist: Log<BEv> = Log::default();
    {
        let hist = hist.clone();
        sim.spawn("coordinator", move |ctx| {
            let mut zk = ctx.connect();
            // Every round's barrier goes up first; they come down one by one.
            for round in 0..BARRIER_ROUNDS {
                let path = barrier_path(round);
                if until_ok(&ctx, &mut zk, |zk| Barrier::new(zk.clone(), &path).create()).is_none()
                {
                    return;
                }
                hist.push(BEv::Created(round));
            }
            for round in 0..BARRIER_ROUNDS {
                let path = barrier_path(round);
                ctx.sleep(Duration::from_millis(50 + ctx.random(200)));
                // A write to the barrier node: an event that is not its removal.
                let _ = until_ok(&ctx, &mut zk, |zk| {
                    zk.set_data(&path, b"still up", None).map(|_| ())
                });
                ctx.sleep(Duration::from_millis(50 + ctx.random(200)));
                hist.push(BEv::RemoveInvoked(round));
                let _ = until_ok(&ctx, &mut zk, |zk| Barrier::new(zk.clone(), &path).remove());
            }
        });
    }
    for w in 0..waiters {
        let hist = hist.clone();
        sim.spawn(&format!("waiter{w}"), move |ctx| {
            let mut zk = ctx.connect();
            // Start once the barriers are up.
            while !hist.snapshot().contains(&BEv::Created(BARRIER_ROUNDS - 1)) {
                if ctx.stopped() {
                    return;
                }
                ctx.sleep(Duration::from_millis(20));
            }
            for round in 0..BARRIER_ROUNDS {
                loop {
                    if ctx.stopped() {
                        return;
                    }
                    fresh(&ctx, &mut zk);
                    let b = Barrier::new(zk.clone(), &barrier_path(round));
                    let b = if broken { b.broken_any_event() } else { b };
                    match b.wait(Some(Duration::from_secs(30))) {
                        Ok(true) => {
                            hist.push(BEv::Passed { round, waiter: w });
                            break;
                        }
                        Ok(false) => {}
                        Err(_) => ctx.sleep(Duration::from_millis(20)),
                    }
                }
            }
        });
    }
    Box::new(move |report: &RunReport| {
        let events = hist.snapshot();
        let mut removing = BTreeSet::new();
        let mut passed = BTreeSet::new();
        for e in &events {
            match e {
                BEv::Created(_) => {}
                BEv::RemoveInvoked(r) => {
                    removing.insert(*r);
                }
                BEv::Passed { round, waiter } => {
                    if !removing.contains(round) {
                        return Err(format!(
                            "waiter{waiter} passed barrier {round} before it was removed"
                        ));
                    }
                    passed.insert((*round, *waiter));
                }
            }
        }
        if !report.timed_out && passed.len() != BARRIER_ROUNDS * waiters {
            return Err(format!(
                "only {} of {} barrier passes happened",
                passed.len(),
                BARRIER_ROUNDS * waiters
            ));
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------
// double-barrier

/// Participants by default.
const PARTICIPANTS: usize = 3;
const DB_ROUNDS: usize = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
enum DEv {
    EnterInvoked(usize, usize),
    Entered(usize, usize),
    LeaveInvoked(usize, usize),
    Left(usize, usize),
    /// A call failed: the participant's session was lost (it left), or it timed out.
    Lost {
        round: usize,
        who: usize,
        expired: bool,
        in_enter: bool,
    },
}

fn spawn_double(sim: &mut Sim, participants: usize, broken: bool, stats: Stats) -> Checker {
    let hist: Log<DEv> = Log::default();
    for p in 0..participants {
        let hist = hist.clone();
        sim.spawn(&format!("participant{p}"), move |ctx| {
            let mut zk = ctx.connect();
            for round in 0..DB_ROUNDS {
                if ctx.stopped() {
                    return;
                }
                fresh(&ctx, &mut zk);
                ctx.sleep(Duration::from_millis(ctx.random(300)));
                let path = format!("/dbarrier/r{round}");
                let b = DoubleBarrier::with_identifier(zk.clone(), &path, participants, "sim");
                let b = if broken { b.broken_off_by_one() } else { b };
                let lost = |e: &Error, zk: &SimSession, in_enter: bool| DEv::Lost {
                    round,
                    who: p,
                    expired: e.is_terminal() || zk.state().is_terminal(),
                    in_enter,
                };
                hist.push(DEv::EnterInvoked(round, p));
                // Shorter than the leave timeout, so that leavers outlast a participant that
                // missed `ready` and gives up.
                if let Err(e) = b.enter(Some(Duration::from_secs(30))) {
                    hist.push(lost(&e, &zk, true));
                    continue;
                }
                hist.push(DEv::Entered(round, p));
                ctx.sleep(Duration::from_millis(ctx.random(100)));
                ctx.stall();
                hist.push(DEv::LeaveInvoked(round, p));
                if let Err(e) = b.leave(Some(Duration::from_secs(60))) {
                    hist.push(lost(&e, &zk, false));
                    continue;
                }
                hist.push(DEv::Left(round, p));
            }
        });
    }
    Box::new(move |_report: &RunReport| {
        let events = hist.snapshot();
        let missed = missed_ready(&events);
        stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .missed_ready = missed.len();
        check_double(&events, participants, &missed)
    })
}

/// Participants (round, who) that timed out in `enter` although another participant passed
/// it in that round: they missed the `ready` node, which came and went while they were cut
/// off (kazoo's protocol cannot tell them; see the recipe's docs).
fn missed_ready(events: &[DEv]) -> BTreeSet<(usize, usize)> {
    events
        .iter()
        .filter_map(|e| match e {
            DEv::Lost {
                round,
                who,
                expired: false,
                in_enter: true,
            } if events
                .iter()
                .any(|x| matches!(x, DEv::Entered(r, _) if r == round)) =>
            {
                Some((*round, *who))
            }
            _ => None,
        })
        .collect()
}

fn check_double(
    events: &[DEv],
    participants: usize,
    missed: &BTreeSet<(usize, usize)>,
) -> Result<(), String> {
    for round in 0..DB_ROUNDS {
        let lost: BTreeSet<usize> = events
            .iter()
            .filter_map(|e| match e {
                DEv::Lost { round: r, who, .. } if *r == round => Some(*who),
                _ => None,
            })
            .collect();
        // A session loss in this round, or any failure in an earlier one (the participants
        // then reach this round out of step), excuses a failure here.
        let expired = events.iter().any(|e| {
            matches!(e, DEv::Lost { round: r, expired: true, .. } if *r == round)
                || matches!(e, DEv::Lost { round: r, .. } if *r < round)
        });
        let mut entering = BTreeSet::new();
        let mut leaving = BTreeSet::new();
        for e in events {
            match e {
                DEv::EnterInvoked(r, p) if *r == round => {
                    entering.insert(*p);
                }
                DEv::LeaveInvoked(r, p) if *r == round => {
                    leaving.insert(*p);
                }
                DEv::Entered(r, p) if *r == round && entering.len() < participants => {
                    return Err(format!(
                        "round {round}: participant{p} passed enter when only {} had entered",
                        entering.len()
                    ));
                }
                DEv::Left(r, p) if *r == round => {
                    if let Some(q) =
                        (0..participants).find(|q| !lost.contains(q) && !leaving.contains(q))
                    {
                        return Err(format!(
                            "round {round}: participant{p} passed leave before participant{q} left"
                        ));
                    }
                }
                _ => {}
            }
        }
        // Progress: without a session loss, only a participant that missed `ready` may fail.
        let unexplained: Vec<usize> = lost
            .iter()
            .copied()
            .filter(|p| !missed.contains(&(round, *p)))
            .collect();
        if !expired && !unexplained.is_empty() {
            return Err(format!(
                "round {round}: participants {unexplained:?} failed without any session loss"
            ));
        }
    }
    Ok(())
}
