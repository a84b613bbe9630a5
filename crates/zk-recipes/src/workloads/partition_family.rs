//! Workloads of the partition family: the set partitioner and the leases, each with
//! deliberately broken variants the checkers must catch.
//!
//! Client processes (`--clients`): the workers, at least 2 (a share or a lease is handed
//! between them; a lone worker that stalls through the short run makes no progress).
//!
//! **`partitioner`**: client processes (workers; three by default) partition items (four by
//! default; one more than the workers when there are more) under faults (lost requests and
//! replies, disconnects, partitions, expiries, stalls inside the critical section). Workers
//! leave and rejoin (each incarnation with a new identifier), so the membership keeps
//! changing. While acquired, a worker appends `item_member_token_` entries for each owned item
//! to two logs in ZooKeeper through a separate "database" session: `/plog` through the
//! item's [`Fence`](crate::Fence), `/ulog` without it. Checked: (1) in every generation (the
//! party's child version the partition was computed from) the members' shares are disjoint,
//! each is what the partition function gives, and when every member of the generation
//! acquired, they cover the set; (2) in the fenced log, each item's tokens never go back (so
//! no holder writes after the next one started).
//!
//! **`lease`**: client processes (workers; four by default) with fixed identities take a
//! [`NonBlockingLease`] (`/lease`) or a [`MultiNonBlockingLease`] of 2 slots (`/mlease`) for
//! 2 s, renew it while working, and append `slot_holder_token_` entries through the lease's
//! fence (`/llog`) and without it (`/lulog`). The clock is a [`VirtualUtc`] shared by all
//! workers. Checked per lease path: (1) a grant to another identity never happens before the
//! previous grant's end; (2) a renewal by the same identity before its end is never refused;
//! (3) in the fenced log tokens never go back.
//!
//! Broken variants: `partitioner-broken` and `lease-broken` check the unfenced logs instead
//! (a stalled holder that lost its items or lease writes after the next holder: how late
//! holders learn they lost); `partitioner-cover-broken` uses a partition function that
//! leaves items unowned; `lease-skew-broken` gives one worker a clock 5 s ahead (leases are
//! only as good as the clocks), so it takes leases that have not ended.
//!
//! Every run must also make progress (acquisitions or grants, log entries) and end before the
//! simulator's time limit (no hung process).

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::{Checker, Log, Outcome, Workload};
use crate::lease::{MultiNonBlockingLease, NonBlockingLease, VirtualUtc};
use crate::partitioner::{PartitionState, SetPartitioner, default_partition};
use crate::sim::{Faults, Sim, SimConfig, SimCtx, SimSession};
use crate::{CreateMode, CreateOptions, Error, Op, OpResult, Session, SessionExt, sequence_of};

/// This family's workloads.
pub fn all() -> Vec<&'static dyn Workload> {
    vec![
        &Partitioner,
        &PartitionerBroken,
        &PartitionerCoverBroken,
        &Lease,
        &LeaseBroken,
        &LeaseSkewBroken,
    ]
}

fn config(seed: u64) -> SimConfig {
    SimConfig {
        seed,
        faults: Faults {
            // stall() is called inside every critical section (dozens per run): keep the
            // rate per call low enough that workers also get work done.
            stall: 0.02,
            ..Faults::standard()
        },
        ..SimConfig::default()
    }
}

/// The fewest workers of every workload of the family (see the module docs).
const MIN_WORKERS: usize = 2;

fn seq_options() -> CreateOptions {
    CreateOptions::new(CreateMode::PersistentSequential)
}

/// The protected resource: a store the workers write to through their own session (like a
/// database connection), reconnected when it expires — so a stale holder's write does get
/// through, unless it is fenced.
struct Db {
    ctx: SimCtx,
    zk: SimSession,
}

impl Db {
    fn new(ctx: &SimCtx) -> Db {
        Db {
            ctx: ctx.clone(),
            zk: ctx.connect(),
        }
    }

    fn session(&mut self) -> SimSession {
        if self.zk.state().is_terminal() {
            self.zk = self.ctx.connect();
        }
        self.zk.clone()
    }

    fn write(&mut self, f: impl Fn(&SimSession) -> Result<Vec<OpResult>, Error>) -> Outcome {
        for _ in 0..3 {
            if self.ctx.stopped() {
                break;
            }
            let zk = self.session();
            match f(&zk) {
                Ok(_) => return Outcome::Ok,
                Err(Error::SessionExpired) => continue,
                Err(Error::ConnectionLoss) => return Outcome::Info,
                Err(_) => return Outcome::Fail,
            }
        }
        Outcome::Fail
    }

    fn ensure(&mut self, path: &str) {
        for _ in 0..100 {
            if self.ctx.stopped() || self.session().ensure_path(path).is_ok() {
                return;
            }
            self.ctx.sleep(Duration::from_millis(20));
        }
    }
}

/// The final contents of the logs (children of each path), read by a last task.
fn spawn_reader(
    sim: &mut Sim,
    after: Duration,
    paths: &'static [&'static str],
) -> Log<(&'static str, Vec<String>)> {
    let out: Log<(&'static str, Vec<String>)> = Log::default();
    let o = out.clone();
    sim.spawn("reader", move |ctx| {
        ctx.sleep(after);
        let mut zk = ctx.connect();
        for path in paths {
            // Retry through faults (a partition may cut this session off for a while).
            for _ in 0..1000 {
                if ctx.stopped() {
                    return;
                }
                if zk.state().is_terminal() {
                    zk = ctx.connect();
                }
                match zk.get_children(path) {
                    Ok((c, _)) => {
                        o.push((path, c));
                        break;
                    }
                    Err(Error::NoNode) => {
                        o.push((path, Vec::new()));
                        break;
                    }
                    Err(_) => ctx.sleep(Duration::from_millis(100)),
                }
            }
        }
    });
    out
}

fn log_of<'a>(logs: &'a [(&'static str, Vec<String>)], path: &str) -> Option<&'a Vec<String>> {
    logs.iter().find(|(p, _)| *p == path).map(|(_, c)| c)
}

/// Log entries `key_holder_token_<seq>` in sequence order, as (key, holder, token, seq).
fn parse_log(children: &[String]) -> Vec<(String, String, i64, i64)> {
    let mut entries: Vec<(i64, String, String, i64)> = children
        .iter()
        .filter_map(|c| {
            let seq = sequence_of(c, "_")?;
            let head = &c[..c.rfind('_')?];
            let mut parts = head.splitn(3, '_');
            let key = parts.next()?.to_owned();
            let holder = parts.next()?.to_owned();
            let token = parts.next()?.parse().ok()?;
            Some((seq, key, holder, token))
        })
        .collect();
    entries.sort_by_key(|e| e.0);
    entries
        .into_iter()
        .map(|(s, k, h, t)| (k, h, t, s))
        .collect()
}

/// In log order, per key: tokens never go back, and each token has one holder. Returns
/// every violation found.
fn token_violations(entries: &[(String, String, i64, i64)]) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: BTreeMap<&str, i64> = BTreeMap::new();
    let mut holders: BTreeMap<(&str, i64), &str> = BTreeMap::new();
    for (key, holder, token, seq) in entries {
        if let Some(h) = holders.insert((key.as_str(), *token), holder.as_str()) {
            if h != holder {
                out.push(format!(
                    "entry {seq}: {key} token {token} written by {h} and {holder}"
                ));
            }
        }
        match current.get(key.as_str()) {
            Some(&cur) if *token < cur => out.push(format!(
                "entry {seq}: {holder} wrote {key} with token {token} after token {cur}"
            )),
            _ => {
                current.insert(key.as_str(), *token);
            }
        }
    }
    out
}

fn check_log(name: &str, children: Option<&Vec<String>>) -> Result<usize, String> {
    let children = children.ok_or_else(|| format!("the {name} log could not be read"))?;
    let entries = parse_log(children);
    let v = token_violations(&entries);
    if v.is_empty() {
        Ok(entries.len())
    } else {
        Err(format!(
            "{} violation(s) in the {name} log of {} entries; first: {}",
            v.len(),
            entries.len(),
            v[0]
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// partitioner
// ---------------------------------------------------------------------------------------------

const P_PATH: &str = "/part";

/// The items for `workers` workers: `i0`, `i1`, ..., at least 4 and always one more than the
/// workers (so that, as with the default 3 workers and 4 items, every member of a full
/// generation owns something and a leaky partition function is visible).
fn p_items(workers: usize) -> Vec<String> {
    (0..(workers + 1).max(4)).map(|k| format!("i{k}")).collect()
}
/// Workers by default.
const P_WORKERS: usize = 3;
const P_RUN: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PVariant {
    Correct,
    Unfenced,
    Cover,
}

/// A member's acquired share.
#[derive(Debug, Clone)]
struct Acquired {
    ident: String,
    generation: i64,
    members: Vec<String>,
    items: Vec<String>,
}

/// Broken on purpose: like kazoo's partition function, but it steps over one slot too many,
/// so some items belong to nobody.
fn leaky_partition(identifier: &str, members: &[String], items: &[String]) -> Vec<String> {
    let mut all = items.to_vec();
    all.sort();
    let mut workers = members.to_vec();
    workers.sort();
    let Some(i) = workers.iter().position(|w| w == identifier) else {
        return Vec::new();
    };
    all.into_iter().skip(i).step_by(workers.len() + 1).collect()
}

fn partition_worker(
    ctx: &SimCtx,
    i: usize,
    items: &[String],
    variant: PVariant,
    acquired: &Log<Acquired>,
) {
    let start = ctx.now();
    let mut db = Db::new(ctx);
    db.ensure("/plog");
    db.ensure("/ulog");
    let mut incarnation = 0;
    while ctx.now() < start + P_RUN && !ctx.stopped() {
        let zk = ctx.connect();
        let ident = format!("w{i}.{incarnation}");
        incarnation += 1;
        let mut builder = SetPartitioner::builder(P_PATH, items.iter().cloned())
            .identifier(&ident)
            .time_boundary(Duration::from_millis(300))
            .max_reaction_time(Duration::from_millis(100));
        if variant == PVariant::Cover {
            builder = builder.partition_func(leaky_partition);
        }
        let mut p = match builder.build(zk.clone()) {
            Ok(p) => p,
            Err(e) => {
                ctx.log(format!("build failed: {e}"));
                zk.close();
                ctx.sleep(Duration::from_millis(100));
                continue;
            }
        };
        let mut rounds = 4 + ctx.random(12);
        let mut recorded = None;
        loop {
            if ctx.stopped() {
                break;
            }
            if ctx.now() >= start + P_RUN {
                let _ = p.finish();
                break;
            }
            match p.state() {
                PartitionState::Failure => break,
                PartitionState::Release => {
                    recorded = None;
                    let _ = p.release_set();
                }
                PartitionState::Allocating => {
                    recorded = None;
                    let _ = p.wait_for_acquire(Duration::from_secs(2));
                }
                PartitionState::Acquired => {
                    if recorded != p.generation() {
                        recorded = p.generation();
                        ctx.log(format!(
                            "acquired {:?} in generation {:?} of {:?}",
                            p.partition(),
                            p.generation(),
                            p.members()
                        ));
                        acquired.push(Acquired {
                            ident: ident.clone(),
                            generation: p.generation().unwrap_or(-1),
                            members: p.members().to_vec(),
                            items: p.partition().to_vec(),
                        });
                    }
                    for (item, fence) in p.fences() {
                        ctx.stall();
                        let entry = format!("{item}_{ident}_{}_", fence.token);
                        let upath = format!("/ulog/{entry}");
                        db.write(|s| s.create(&upath, b"", &seq_options()).map(|_| Vec::new()));
                        let ppath = format!("/plog/{entry}");
                        let outcome = db.write(|s| {
                            fence.write(s, vec![Op::create(&ppath, Bytes::new(), seq_options())])
                        });
                        ctx.log(format!("fenced write {entry}: {outcome:?}"));
                    }
                    ctx.sleep(Duration::from_millis(200));
                    rounds -= 1;
                    if rounds == 0 {
                        let _ = p.finish();
                        break;
                    }
                }
            }
        }
        drop(p);
        zk.close();
        ctx.sleep(Duration::from_millis(ctx.random(1000)));
    }
}

fn check_generations(
    acquired: &[Acquired],
    items: &[String],
    variant: PVariant,
) -> Result<usize, String> {
    let all: BTreeSet<String> = items.iter().cloned().collect();
    let mut by_gen: BTreeMap<i64, BTreeMap<&str, &Acquired>> = BTreeMap::new();
    for a in acquired {
        by_gen
            .entry(a.generation)
            .or_default()
            .insert(a.ident.as_str(), a);
    }
    let mut stable = 0;
    for (generation, shares) in &by_gen {
        let first = shares.values().next().map(|a| &a.members);
        let mut members: Vec<String> = first.cloned().unwrap_or_default();
        members.sort();
        for a in shares.values() {
            let mut m = a.members.clone();
            m.sort();
            if m != members {
                return Err(format!(
                    "generation {generation}: {} saw members {m:?}, others {members:?}",
                    a.ident
                ));
            }
            if variant != PVariant::Cover {
                let want = default_partition(&a.ident, &a.members, items);
                if want != a.items {
                    return Err(format!(
                        "generation {generation}: {} acquired {:?}, the partition function gives {want:?}",
                        a.ident, a.items
                    ));
                }
            }
        }
        let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
        for a in shares.values() {
            for item in &a.items {
                if let Some(other) = owner.insert(item.as_str(), a.ident.as_str()) {
                    return Err(format!(
                        "generation {generation}: {item} acquired by both {other} and {}",
                        a.ident
                    ));
                }
            }
        }
        let everyone = members.iter().all(|m| shares.contains_key(m.as_str()));
        if everyone {
            stable += 1;
            let covered: BTreeSet<String> = owner.keys().map(|s| (*s).to_owned()).collect();
            if covered != all {
                let missing: Vec<&String> = all.difference(&covered).collect();
                return Err(format!(
                    "generation {generation} (members {members:?}, all acquired): items {missing:?} belong to nobody"
                ));
            }
        }
    }
    Ok(stable)
}

fn spawn_partitioner(sim: &mut Sim, workers: usize, variant: PVariant) -> Checker {
    let acquired: Log<Acquired> = Log::default();
    let items = p_items(workers);
    for i in 0..workers {
        let (acquired, items) = (acquired.clone(), items.clone());
        sim.spawn(&format!("w{i}"), move |ctx| {
            partition_worker(&ctx, i, &items, variant, &acquired);
        });
    }
    let logs = spawn_reader(sim, P_RUN + Duration::from_secs(30), &["/plog", "/ulog"]);
    Box::new(move |report| {
        if report.timed_out {
            return Err("the run hit the time limit: a process hung".into());
        }
        let acquired = acquired.snapshot();
        let logs = logs.snapshot();
        let stable = check_generations(&acquired, &items, variant)?;
        let entries = match variant {
            PVariant::Unfenced => check_log("unfenced", log_of(&logs, "/ulog"))?,
            _ => check_log("fenced", log_of(&logs, "/plog"))?,
        };
        // A complete generation is usual but not guaranteed (a few seeds stall or cut off
        // a member in every generation of the 15 s run); some work is.
        if acquired.is_empty() || entries == 0 {
            return Err(format!(
                "no progress: {} acquisitions ({stable} complete generations), {entries} log entries",
                acquired.len()
            ));
        }
        Ok(())
    })
}

/// `partitioner`: see the module docs.
#[derive(Debug)]
pub struct Partitioner;
/// `partitioner-broken`: the partitioner's unfenced log, checked like the fenced one.
#[derive(Debug)]
pub struct PartitionerBroken;
/// `partitioner-cover-broken`: a partition function that leaves items unowned.
#[derive(Debug)]
pub struct PartitionerCoverBroken;

impl Workload for Partitioner {
    fn name(&self) -> &'static str {
        "partitioner"
    }
    fn about(&self) -> &'static str {
        "SetPartitioner with churn; shares disjoint and covering per generation, fenced item log"
    }
    fn config(&self, seed: u64) -> SimConfig {
        config(seed)
    }
    fn default_clients(&self) -> usize {
        P_WORKERS
    }
    fn min_clients(&self) -> usize {
        MIN_WORKERS
    }
    fn spawn(&self, sim: &mut Sim, clients: usize) -> Checker {
        spawn_partitioner(sim, clients, PVariant::Correct)
    }
}

impl Workload for PartitionerBroken {
    fn name(&self) -> &'static str {
        "partitioner-broken"
    }
    fn about(&self) -> &'static str {
        "deliberately broken: item writes without the fence (stale owners write late)"
    }
    fn broken(&self) -> bool {
        true
    }
    fn config(&self, seed: u64) -> SimConfig {
        config(seed)
    }
    fn default_clients(&self) -> usize {
        P_WORKERS
    }
    fn min_clients(&self) -> usize {
        MIN_WORKERS
    }
    fn spawn(&self, sim: &mut Sim, clients: usize) -> Checker {
        spawn_partitioner(sim, clients, PVariant::Unfenced)
    }
}

impl Workload for PartitionerCoverBroken {
    fn name(&self) -> &'static str {
        "partitioner-cover-broken"
    }
    fn about(&self) -> &'static str {
        "deliberately broken: a partition function that leaves items to nobody"
    }
    fn broken(&self) -> bool {
        true
    }
    fn config(&self, seed: u64) -> SimConfig {
        config(seed)
    }
    fn default_clients(&self) -> usize {
        P_WORKERS
    }
    fn min_clients(&self) -> usize {
        MIN_WORKERS
    }
    fn spawn(&self, sim: &mut Sim, clients: usize) -> Checker {
        spawn_partitioner(sim, clients, PVariant::Cover)
    }
}

// ---------------------------------------------------------------------------------------------
// lease
// ---------------------------------------------------------------------------------------------

/// Workers by default.
const L_WORKERS: usize = 4;
const L_RUN: Duration = Duration::from_secs(15);
const L_DURATION: Duration = Duration::from_secs(2);
const L_LOCK_TIMEOUT: Duration = Duration::from_secs(1);
/// 2024-01-01T00:00:00Z: the virtual clock's start.
const L_EPOCH_SECS: u64 = 1_704_067_200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LVariant {
    Correct,
    Unfenced,
    Skew,
}

fn ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[derive(Debug, Clone)]
enum LeaseEvent {
    /// An obtained lease (`now`: the recipe's reading of the true clock, ms).
    Granted {
        path: String,
        ident: String,
        token: i64,
        now: i64,
        end: i64,
    },
    /// A renewal refused.
    RenewalRefused {
        path: String,
        ident: String,
        now: i64,
        prev_end: i64,
        holder: Option<String>,
    },
}

fn lease_tag(path: &str) -> String {
    path.trim_start_matches('/').replace('/', ".")
}

struct LeaseWorker<'a> {
    ctx: &'a SimCtx,
    ident: String,
    utc: VirtualUtc,
    skew: Duration,
    events: &'a Log<LeaseEvent>,
    db: Db,
}

impl LeaseWorker<'_> {
    /// The true time of a reading of this worker's (possibly skewed) clock.
    fn true_ms(&self, t: SystemTime) -> i64 {
        ms(t) - i64::try_from(self.skew.as_millis()).unwrap_or(0)
    }

    fn granted(&self, lease: &NonBlockingLease, read: SystemTime) {
        self.ctx.log(format!(
            "obtained {} token {:?} until {:?}",
            lease.path(),
            lease.token(),
            lease.record().map(|r| crate::lease::format_utc(r.end))
        ));
        self.events.push(LeaseEvent::Granted {
            path: lease.path().to_owned(),
            ident: self.ident.clone(),
            token: lease.token().unwrap_or(-1),
            now: self.true_ms(read),
            end: lease.end().map_or(0, ms),
        });
    }

    fn run(&mut self) {
        let start = self.ctx.now();
        self.db.ensure("/llog");
        self.db.ensure("/lulog");
        let mut zk = self.ctx.connect();
        while self.ctx.now() < start + L_RUN && !self.ctx.stopped() {
            if zk.state().is_terminal() {
                zk = self.ctx.connect();
            }
            let last = Cell::new(self.utc.epoch);
            let clock = || {
                let t = self.utc.at(self.ctx.now());
                last.set(t);
                t
            };
            let got = if self.ctx.random(2) == 0 {
                MultiNonBlockingLease::obtain_within(
                    &zk,
                    2,
                    "/mlease",
                    L_DURATION,
                    &self.ident,
                    &clock,
                    Some(L_LOCK_TIMEOUT),
                )
                .map(|m| m.lease().cloned())
            } else {
                NonBlockingLease::obtain_within(
                    &zk,
                    "/lease",
                    L_DURATION,
                    &self.ident,
                    &clock,
                    Some(L_LOCK_TIMEOUT),
                )
                .map(|l| l.obtained().then_some(l))
            };
            if let Ok(Some(lease)) = got {
                self.granted(&lease, last.get());
                self.hold(&zk, lease);
            }
            self.ctx
                .sleep(Duration::from_millis(100 + self.ctx.random(500)));
        }
    }

    /// Work under the lease until it is about to end, renewing it now and then.
    fn hold(&mut self, zk: &SimSession, mut lease: NonBlockingLease) {
        let tag = lease_tag(lease.path());
        loop {
            let Some(end) = lease.end() else { return };
            if self.utc.at(self.ctx.now()) + Duration::from_millis(300) >= end {
                return;
            }
            self.ctx.stall();
            let entry = format!("{tag}_{}_{}_", self.ident, lease.token().unwrap_or(-1));
            let upath = format!("/lulog/{entry}");
            self.db
                .write(|s| s.create(&upath, b"", &seq_options()).map(|_| Vec::new()));
            let fpath = format!("/llog/{entry}");
            self.db
                .write(|s| lease.write(s, vec![Op::create(&fpath, Bytes::new(), seq_options())]));
            self.ctx.sleep(Duration::from_millis(200));
            if self.ctx.random(3) != 0 {
                continue;
            }
            let last = Cell::new(self.utc.epoch);
            let clock = || {
                let t = self.utc.at(self.ctx.now());
                last.set(t);
                t
            };
            match NonBlockingLease::obtain_within(
                zk,
                lease.path(),
                L_DURATION,
                &self.ident,
                &clock,
                Some(L_LOCK_TIMEOUT),
            ) {
                Ok(renewed) if renewed.obtained() => {
                    self.granted(&renewed, last.get());
                    lease = renewed;
                }
                Ok(refused) => {
                    self.events.push(LeaseEvent::RenewalRefused {
                        path: lease.path().to_owned(),
                        ident: self.ident.clone(),
                        now: self.true_ms(last.get()),
                        prev_end: ms(end),
                        holder: refused.record().map(|r| r.holder.clone()),
                    });
                    return;
                }
                Err(_) => return,
            }
        }
    }
}

fn check_leases(events: &[LeaseEvent]) -> Result<usize, String> {
    let mut grants: BTreeMap<&str, Vec<(i64, &str, i64, i64)>> = BTreeMap::new();
    for e in events {
        match e {
            LeaseEvent::Granted {
                path,
                ident,
                token,
                now,
                end,
            } => {
                grants
                    .entry(path.as_str())
                    .or_default()
                    .push((*token, ident.as_str(), *now, *end))
            }
            LeaseEvent::RenewalRefused {
                path,
                ident,
                now,
                prev_end,
                holder,
            } => {
                if now < prev_end || holder.as_deref() == Some(ident.as_str()) {
                    return Err(format!(
                        "{path}: renewal by {ident} at {now} refused before its end {prev_end} (holder now {holder:?})"
                    ));
                }
            }
        }
    }
    let mut n = 0;
    for (path, mut gs) in grants {
        gs.sort_by_key(|g| g.0);
        n += gs.len();
        for w in gs.windows(2) {
            let (t1, h1, _, end1) = w[0];
            let (t2, h2, now2, _) = w[1];
            if t1 == t2 {
                return Err(format!("{path}: two grants with token {t1}"));
            }
            if h1 != h2 && now2 < end1 {
                return Err(format!(
                    "{path}: {h2} obtained the lease (token {t2}) at {now2}, before {h1}'s lease (token {t1}) ended at {end1}"
                ));
            }
        }
    }
    Ok(n)
}

fn spawn_lease(sim: &mut Sim, workers: usize, variant: LVariant) -> Checker {
    let events: Log<LeaseEvent> = Log::default();
    let anchor: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    for i in 0..workers {
        let events = events.clone();
        let anchor = anchor.clone();
        sim.spawn(&format!("w{i}"), move |ctx| {
            let a = *anchor
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get_or_insert_with(|| ctx.now());
            let skew = if variant == LVariant::Skew && i == 0 {
                Duration::from_secs(5)
            } else {
                Duration::ZERO
            };
            let mut w = LeaseWorker {
                ctx: &ctx,
                ident: format!("w{i}"),
                utc: VirtualUtc {
                    anchor: a,
                    epoch: UNIX_EPOCH + Duration::from_secs(L_EPOCH_SECS) + skew,
                },
                skew,
                events: &events,
                db: Db::new(&ctx),
            };
            w.run();
        });
    }
    let logs = spawn_reader(sim, L_RUN + Duration::from_secs(30), &["/llog", "/lulog"]);
    Box::new(move |report| {
        if report.timed_out {
            return Err("the run hit the time limit: a process hung".into());
        }
        let grants = check_leases(&events.snapshot())?;
        let logs = logs.snapshot();
        let entries = match variant {
            LVariant::Unfenced => check_log("unfenced", log_of(&logs, "/lulog"))?,
            _ => check_log("fenced", log_of(&logs, "/llog"))?,
        };
        if grants == 0 || entries == 0 {
            return Err(format!(
                "no progress: {grants} grants, {entries} log entries"
            ));
        }
        Ok(())
    })
}

/// `lease`: see the module docs.
#[derive(Debug)]
pub struct Lease;
/// `lease-broken`: the leases' unfenced log, checked like the fenced one.
#[derive(Debug)]
pub struct LeaseBroken;
/// `lease-skew-broken`: one worker's clock runs 5 s ahead.
#[derive(Debug)]
pub struct LeaseSkewBroken;

impl Workload for Lease {
    fn name(&self) -> &'static str {
        "lease"
    }
    fn about(&self) -> &'static str {
        "NonBlockingLease/MultiNonBlockingLease(2) with renewals; lease periods, renewals, fenced log"
    }
    fn config(&self, seed: u64) -> SimConfig {
        config(seed)
    }
    fn default_clients(&self) -> usize {
        L_WORKERS
    }
    fn min_clients(&self) -> usize {
        MIN_WORKERS
    }
    fn spawn(&self, sim: &mut Sim, clients: usize) -> Checker {
        spawn_lease(sim, clients, LVariant::Correct)
    }
}

impl Workload for LeaseBroken {
    fn name(&self) -> &'static str {
        "lease-broken"
    }
    fn about(&self) -> &'static str {
        "deliberately broken: lease writes without the fence (stalled holders write late)"
    }
    fn broken(&self) -> bool {
        true
    }
    fn config(&self, seed: u64) -> SimConfig {
        config(seed)
    }
    fn default_clients(&self) -> usize {
        L_WORKERS
    }
    fn min_clients(&self) -> usize {
        MIN_WORKERS
    }
    fn spawn(&self, sim: &mut Sim, clients: usize) -> Checker {
        spawn_lease(sim, clients, LVariant::Unfenced)
    }
}

impl Workload for LeaseSkewBroken {
    fn name(&self) -> &'static str {
        "lease-skew-broken"
    }
    fn about(&self) -> &'static str {
        "deliberately broken: one client's clock 5 s ahead takes leases that have not ended"
    }
    fn broken(&self) -> bool {
        true
    }
    fn config(&self, seed: u64) -> SimConfig {
        config(seed)
    }
    fn default_clients(&self) -> usize {
        L_WORKERS
    }
    fn min_clients(&self) -> usize {
        MIN_WORKERS
    }
    fn spawn(&self, sim: &mut Sim, clients: usize) -> Checker {
        spawn_lease(sim, clients, LVariant::Skew)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_parsing_and_token_order() {
        let children = vec![
            "i0_w1.0_5_0000000002".to_owned(),
            "i0_w0.0_3_0000000000".to_owned(),
            "i1_w0.0_7_0000000001".to_owned(),
            "i0_w0.0_3_0000000003".to_owned(),
        ];
        let entries = parse_log(&children);
        assert_eq!(entries[0], ("i0".into(), "w0.0".into(), 3, 0));
        let v = token_violations(&entries);
        assert_eq!(v.len(), 1, "{v:?}");
    }

    #[test]
    fn leaky_partition_leaves_items() {
        let items = p_items(P_WORKERS);
        assert_eq!(items, ["i0", "i1", "i2", "i3"]);
        let members = vec!["a".to_owned(), "b".to_owned()];
        let mut all: Vec<String> = leaky_partition("a", &members, &items);
        all.extend(leaky_partition("b", &members, &items));
        assert!(all.len() < items.len());
    }
}
