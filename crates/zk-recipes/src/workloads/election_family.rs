//! Workloads of the election family: `election`, `party`, `shallow-party`, and a deliberately
//! broken variant of each (`<name>-broken`).
//!
//! **election**: client processes (three by default, at least two) contend again and again
//! (some with a timeout, which must withdraw their node), and each leader appends
//! `holder@token` entries to two logs: a fenced one (`multi[check(leader node),
//! create(/elog/…-, sequential)]`) and an unfenced one. Leaders stall inside their term (the
//! session then expires under them). Checked (FAULTS.md): in the fenced log each term's run is
//! contiguous and tokens never go back; a contender that timed out left no node behind; while
//! somebody contends, somebody is elected within a bound (two session timeouts and a little: a
//! partitioned contender learns of its expiry only when it reconnects). The unfenced log's
//! violations are counted ([`election_stats`]); they show how late a stalled leader learns it
//! lost, and are bounded by its writes per term. The broken variant orders contenders by node
//! name (uuid first) instead of by sequence number, so a newcomer can take over from a sitting
//! leader.
//!
//! **party** / **shallow-party**: client processes (four by default) join and leave at random,
//! stall (their sessions expire), and rejoin on a new session when told they left. Checked: a
//! member that believes it is one finds itself in `members()` read on its own session; once
//! everything settles, `members()` is exactly the set of processes that believe they are
//! members. The broken variant keeps membership after session loss (kazoo's behaviour).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{Checker, Log, Outcome, Workload};
use crate::election::{Election, LeadershipState};
use crate::fence::{Fence, sequence_of};
use crate::party::{Party, ShallowParty};
use crate::sim::{Faults, Sim, SimConfig, SimCtx, SimSession};
use crate::{CreateMode, CreateOptions, Error, Op, Session, SessionExt, SessionState};

/// This family's workloads.
pub fn all() -> Vec<&'static dyn Workload> {
    vec![
        &ElectionWorkload,
        &BrokenElection,
        &PartyWorkload,
        &BrokenParty,
        &ShallowPartyWorkload,
        &BrokenShallowParty,
    ]
}

// ---------------------------------------------------------------------------------------------
// Election

const ELECTION: &str = "/election";
const FENCED_LOG: &str = "/elog";
const UNFENCED_LOG: &str = "/ulog";
/// Contenders by default.
const CONTENDERS: usize = 3;
/// The fewest contenders: an election of one elects nobody else, and a lone contender cut off
/// (its session expired) before it created the logs leaves the reader nothing to check.
const MIN_CONTENDERS: usize = 2;
const TERMS: usize = 4;
const WRITES: usize = 3;
const RUN_LIMIT: Duration = Duration::from_secs(150);

static UNFENCED_VIOLATIONS: AtomicU64 = AtomicU64::new(0);
static LOST_TERMS: AtomicU64 = AtomicU64::new(0);
static CRASHES: AtomicU64 = AtomicU64::new(0);
static MAX_GAP_MS: AtomicU64 = AtomicU64::new(0);

/// Totals over the `election` runs checked since the last [`election_stats`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElectionStats {
    /// Violations in the unfenced log (stale leaders writing late).
    pub unfenced_violations: u64,
    /// Terms that ended with leadership lost (session expired under a stalled leader).
    pub lost_terms: u64,
    /// Leaders that crashed (their session left to expire).
    pub crashes: u64,
    /// The longest time somebody contended while nobody led.
    pub max_gap: Duration,
}

/// The totals of the `election` runs checked since the last call (then reset).
pub fn election_stats() -> ElectionStats {
    ElectionStats {
        unfenced_violations: UNFENCED_VIOLATIONS.swap(0, Ordering::SeqCst),
        lost_terms: LOST_TERMS.swap(0, Ordering::SeqCst),
        crashes: CRASHES.swap(0, Ordering::SeqCst),
        max_gap: Duration::from_millis(MAX_GAP_MS.swap(0, Ordering::SeqCst)),
    }
}

/// How a term as leader ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Term {
    /// Done writing, still leader.
    Done,
    /// Leadership lost (told so).
    Lost,
    /// The process crashed while leading (its session is left to expire).
    Crashed,
}

/// Correct: the election recipe as shipped.
#[derive(Debug)]
pub struct ElectionWorkload;

/// Broken on purpose: contenders ordered by node name instead of sequence number.
#[derive(Debug)]
pub struct BrokenElection;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Contend,
    Elected,
    TermEnd,
    ContendEnd,
}

#[derive(Debug, Clone)]
struct Ev {
    proc: usize,
    at: Instant,
    phase: Phase,
}

/// What a leader's writes did (for the report).
#[derive(Debug, Clone)]
struct WriteRec {
    outcome: Outcome,
}

#[derive(Debug, Clone, Default)]
struct Readback {
    fenced: Vec<String>,
    unfenced: Vec<String>,
}

fn seq_options() -> CreateOptions {
    CreateOptions::new(CreateMode::PersistentSequential)
}

/// Run `f` on a session of its own, retrying through connection loss and opening a new
/// session when one expires (for the final readbacks).
fn on_fresh_session<T>(
    ctx: &SimCtx,
    mut f: impl FnMut(&SimSession) -> Result<T, Error>,
) -> Option<T> {
    for _ in 0..10 {
        let zk = ctx.connect();
        match patiently(ctx, || f(&zk)) {
            Ok(v) => return Some(v),
            Err(Error::Closed) if ctx.stopped() => return None,
            Err(_) => zk.close(),
        }
    }
    None
}

/// Retry a call through connection loss (a few times), for setup and readback.
fn patiently<T>(ctx: &SimCtx, mut f: impl FnMut() -> Result<T, Error>) -> Result<T, Error> {
    let mut last = Error::ConnectionLoss;
    for _ in 0..200 {
        if ctx.stopped() {
            return Err(Error::Closed);
        }
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if e.is_retryable() => last = e,
            Err(e) => return Err(e),
        }
        ctx.sleep(Duration::from_millis(50));
    }
    Err(last)
}

fn spawn_election(sim: &mut Sim, contenders: usize, broken: bool) -> Checker {
    let events: Log<Ev> = Log::default();
    let writes: Log<WriteRec> = Log::default();
    let problems: Log<String> = Log::default();
    let terms: Log<Term> = Log::default();
    let done: Log<usize> = Log::default();
    let readback: Log<Readback> = Log::default();
    for i in 0..contenders {
        let (events, writes, problems, terms, done) = (
            events.clone(),
            writes.clone(),
            problems.clone(),
            terms.clone(),
            done.clone(),
        );
        sim.spawn(&format!("p{i}"), move |ctx| {
            let logs = Logs {
                events: &events,
                writes: &writes,
                problems: &problems,
                terms: &terms,
            };
            contender(&ctx, i, broken, &logs);
            done.push(i);
        });
    }
    let (rb, d) = (readback.clone(), done.clone());
    sim.spawn("reader", move |ctx| {
        while d.snapshot().len() < contenders && !ctx.stopped() {
            ctx.sleep(Duration::from_millis(500));
        }
        let read = |path: &str| -> Option<Vec<String>> {
            let (mut names, _) = on_fresh_session(&ctx, |zk| zk.get_children(path))?;
            names.sort_by_key(|n| sequence_of(n, "-").unwrap_or(i64::MAX));
            Some(names)
        };
        if let (Some(fenced), Some(unfenced)) = (read(FENCED_LOG), read(UNFENCED_LOG)) {
            rb.push(Readback { fenced, unfenced });
        }
    });
    Box::new(move |report| {
        let Some(rb) = readback.snapshot().pop() else {
            return Err("the logs could not be read back".into());
        };
        if let Some(p) = problems.snapshot().first() {
            return Err(p.clone());
        }
        let fenced = check_log(&rb.fenced);
        let unfenced = check_log(&rb.unfenced);
        let gap = max_gap(&events.snapshot(), report.elapsed);
        let terms = terms.snapshot();
        let lost = terms.iter().filter(|t| **t == Term::Lost).count() as u64;
        if !broken {
            UNFENCED_VIOLATIONS.fetch_add(unfenced.len() as u64, Ordering::SeqCst);
            LOST_TERMS.fetch_add(lost, Ordering::SeqCst);
            let crashes = terms.iter().filter(|t| **t == Term::Crashed).count() as u64;
            CRASHES.fetch_add(crashes, Ordering::SeqCst);
            MAX_GAP_MS.fetch_max(gap.as_millis() as u64, Ordering::SeqCst);
        }
        if let Some(v) = fenced.first() {
            return Err(format!("fenced log: {v} ({})", summary(&writes.snapshot())));
        }
        if unfenced.len() as u64 > WRITES as u64 * lost {
            return Err(format!(
                "{} unfenced violations for {lost} lost terms: {}",
                unfenced.len(),
                unfenced.join("; ")
            ));
        }
        let bound = gap_bound();
        if gap > bound {
            return Err(format!(
                "no leader for {gap:?} while contended (bound {bound:?})"
            ));
        }
        Ok(())
    })
}

/// "n ok / n info / n failed fenced writes".
fn summary(writes: &[WriteRec]) -> String {
    let count = |o| writes.iter().filter(|w| w.outcome == o).count();
    format!(
        "fenced writes: {} ok, {} unknown, {} failed",
        count(Outcome::Ok),
        count(Outcome::Info),
        count(Outcome::Fail)
    )
}

/// How long contenders may go without a leader: a contender next in line that is partitioned
/// learns its session expired only when it reconnects (up to two session timeouts), then
/// contends again.
fn gap_bound() -> Duration {
    let timeout = SimConfig::default().session_timeout;
    timeout * 2 + Duration::from_secs(3)
}

/// Violations of "each holder's run is contiguous and tokens never go back" in a log of
/// `holder@token-<seq>` names (in sequence order).
fn check_log(names: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut ended: BTreeSet<String> = BTreeSet::new();
    let mut current: Option<(String, i64)> = None;
    for name in names {
        let Some((key, _)) = name.rsplit_once('-') else {
            continue;
        };
        let token: i64 = key
            .rsplit_once('@')
            .and_then(|(_, t)| t.parse().ok())
            .unwrap_or(i64::MIN);
        match &current {
            Some((k, _)) if k == key => continue,
            Some((k, t)) => {
                if ended.contains(key) {
                    out.push(format!("{name}: {key} writes again after {k}"));
                    continue;
                }
                if token <= *t {
                    out.push(format!("{name}: token {token} after token {t} ({k})"));
                    continue;
                }
                ended.insert(k.clone());
            }
            None => {}
        }
        current = Some((key.to_owned(), token));
    }
    out
}

/// The longest time during which somebody contended and nobody led.
fn max_gap(events: &[Ev], elapsed: Duration) -> Duration {
    let Some(start) = events.iter().map(|e| e.at).min() else {
        return Duration::ZERO;
    };
    let mut state: BTreeMap<usize, Phase> = BTreeMap::new();
    let mut sorted: Vec<&Ev> = events.iter().collect();
    sorted.sort_by_key(|e| e.at);
    let mut gap_start: Option<Instant> = None;
    let mut worst = Duration::ZERO;
    for e in sorted {
        state.insert(e.proc, e.phase);
        let leading = state.values().any(|p| *p == Phase::Elected);
        let contending = state.values().any(|p| *p == Phase::Contend);
        match (gap_start, contending && !leading) {
            (None, true) => gap_start = Some(e.at),
            (Some(s), false) => {
                worst = worst.max(e.at - s);
                gap_start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = gap_start {
        worst = worst.max((start + elapsed).saturating_duration_since(s));
    }
    worst
}

/// The logs a contender writes to.
struct Logs<'a> {
    events: &'a Log<Ev>,
    writes: &'a Log<WriteRec>,
    problems: &'a Log<String>,
    terms: &'a Log<Term>,
}

impl Logs<'_> {
    fn phase(&self, ctx: &SimCtx, proc: usize, phase: Phase) {
        self.events.push(Ev {
            proc,
            at: ctx.now(),
            phase,
        });
    }
}

fn contender(ctx: &SimCtx, i: usize, broken: bool, logs: &Logs<'_>) {
    let start = ctx.now();
    let mut zk = ctx.connect();
    // The unfenced log stands for an outside store: written on a session of its own, which
    // the writer reopens when it expires (the store knows nothing of the election).
    let mut store = ctx.connect();
    let _ = patiently(ctx, || zk.ensure_path(FENCED_LOG));
    let _ = patiently(ctx, || zk.ensure_path(UNFENCED_LOG));
    let mut terms = 0;
    let me = format!("p{i}");
    while terms < TERMS && ctx.now() < start + RUN_LIMIT && !ctx.stopped() {
        if zk.state().is_terminal() {
            zk = ctx.connect();
        }
        let mut election = Election::new(zk.clone(), ELECTION, &me);
        if broken {
            election = election.broken_name_order();
        }
        let timeout = match ctx.random(4) {
            0 => Some(Duration::from_millis(100 + ctx.random(1500))),
            _ => None,
        };
        logs.phase(ctx, i, Phase::Contend);
        let mut crashed = false;
        let result = election.run_within(timeout, |lead| {
            logs.phase(ctx, i, Phase::Elected);
            let term = lead_term(ctx, &zk, &mut store, &me, lead, logs.writes);
            logs.terms.push(term);
            crashed = term == Term::Crashed;
            logs.phase(ctx, i, Phase::TermEnd);
        });
        match result {
            Ok(Some(())) => terms += 1,
            Err(Error::Timeout) => {
                logs.phase(ctx, i, Phase::ContendEnd);
                if let Some(p) = leftover(ctx, &zk) {
                    logs.problems
                        .push(format!("{me}: after a timed-out run: {p}"));
                }
            }
            Ok(None) | Err(_) => logs.phase(ctx, i, Phase::ContendEnd),
        }
        if crashed {
            // The process restarts: a new session; the old one expires on the server.
            zk = ctx.connect();
        }
        ctx.sleep(Duration::from_millis(ctx.random(50)));
    }
}

/// A node of this session left in the election after giving up (kazoo #732, #760).
fn leftover(ctx: &SimCtx, zk: &SimSession) -> Option<String> {
    let (children, _) = patiently(ctx, || zk.get_children(ELECTION)).ok()?;
    for c in children {
        let path = format!("{ELECTION}/{c}");
        if let Ok(Some(stat)) = patiently(ctx, || zk.exists(&path)) {
            if stat.ephemeral_owner == zk.session_id() && !zk.state().is_terminal() {
                return Some(format!("node {c} left behind"));
            }
        }
    }
    None
}

/// One term as leader.
fn lead_term(
    ctx: &SimCtx,
    zk: &SimSession,
    store: &mut SimSession,
    me: &str,
    lead: &crate::election::Leadership<'_, SimSession>,
    writes: &Log<WriteRec>,
) -> Term {
    let token = lead.token();
    let key = format!("{me}@{token}");
    for _ in 0..WRITES {
        match lead.state() {
            LeadershipState::Lost => return Term::Lost,
            LeadershipState::Suspended => {
                // Wait a little for the session to come back (or be lost).
                let until = ctx.now() + Duration::from_millis(500);
                if let Ok(true) = lead.wait_lost(Some(until)) {
                    return Term::Lost;
                }
            }
            LeadershipState::Leader => {}
        }
        if ctx.random(25) == 0 {
            // kill -9: the session is left for the server to expire.
            zk.crash();
            return Term::Crashed;
        }
        // A GC pause or SIGSTOP while leading: the session may expire under us.
        ctx.stall();
        if store.state().is_terminal() {
            *store = ctx.connect();
        }
        let _ = store.create(
            &format!("{UNFENCED_LOG}/{key}-"),
            key.as_bytes(),
            &seq_options(),
        );
        let op = Op::create(
            &format!("{FENCED_LOG}/{key}-"),
            key.clone().into_bytes(),
            seq_options(),
        );
        match lead.write(vec![op]) {
            Ok(_) => writes.push(WriteRec {
                outcome: Outcome::Ok,
            }),
            Err(e) if Fence::is_lost(&e) => {
                writes.push(WriteRec {
                    outcome: Outcome::Fail,
                });
                return Term::Lost;
            }
            Err(Error::ConnectionLoss) => writes.push(WriteRec {
                outcome: Outcome::Info,
            }),
            Err(_) => writes.push(WriteRec {
                outcome: Outcome::Fail,
            }),
        }
        ctx.sleep(Duration::from_millis(10 + ctx.random(50)));
    }
    // Now and then make sure, the slow way.
    if ctx.random(3) == 0 {
        if let Ok(false) = lead.check(Some(Duration::from_secs(1))) {
            return Term::Lost;
        }
    }
    if lead.state() == LeadershipState::Lost {
        Term::Lost
    } else {
        Term::Done
    }
}

fn election_config(seed: u64) -> SimConfig {
    SimConfig {
        seed,
        faults: Faults::standard(),
        ..SimConfig::default()
    }
}

impl Workload for ElectionWorkload {
    fn name(&self) -> &'static str {
        "election"
    }
    fn config(&self, seed: u64) -> SimConfig {
        election_config(seed)
    }
    fn about(&self) -> &'static str {
        "leaders write through a fence while stalling; fenced log contiguous, tokens rise, bounded leaderless gaps"
    }
    fn default_clients(&self) -> usize {
        CONTENDERS
    }
    fn min_clients(&self) -> usize {
        MIN_CONTENDERS
    }
    fn spawn(&self, sim: &mut Sim, clients: usize) -> Checker {
        spawn_election(sim, clients, false)
    }
}

impl Workload for BrokenElection {
    fn name(&self) -> &'static str {
        "election-broken"
    }
    fn config(&self, seed: u64) -> SimConfig {
        election_config(seed)
    }
    fn about(&self) -> &'static str {
        "deliberately broken: contenders ordered by node name, not sequence (the checker must catch it)"
    }
    fn broken(&self) -> bool {
        true
    }
    fn default_clients(&self) -> usize {
        CONTENDERS
    }
    fn min_clients(&self) -> usize {
        MIN_CONTENDERS
    }
    fn spawn(&self, sim: &mut Sim, clients: usize) -> Checker {
        spawn_election(sim, clients, true)
    }
}

// ---------------------------------------------------------------------------------------------
// Party and ShallowParty

const PARTY: &str = "/party";
/// Members by default.
const MEMBERS: usize = 4;
const ROUNDS: usize = 6;

/// What the party workload needs of both kinds of party.
trait Membership {
    fn join(&mut self) -> Result<(), Error>;
    fn leave(&mut self) -> Result<bool, Error>;
    fn is_member(&self) -> bool;
    fn members(&mut self) -> Result<Vec<String>, Error>;
    fn wait_for_members(&mut self, n: usize, t: Option<Duration>) -> Result<Vec<String>, Error>;
}

macro_rules! membership {
    ($t:ident) => {
        impl Membership for $t<SimSession> {
            fn join(&mut self) -> Result<(), Error> {
                $t::join(self)
            }
            fn leave(&mut self) -> Result<bool, Error> {
                $t::leave(self)
            }
            fn is_member(&self) -> bool {
                $t::is_member(self)
            }
            fn members(&mut self) -> Result<Vec<String>, Error> {
                $t::members(self)
            }
            fn wait_for_members(
                &mut self,
                n: usize,
                t: Option<Duration>,
            ) -> Result<Vec<String>, Error> {
                $t::wait_for_members(self, n, t)
            }
        }
    };
}
membership!(Party);
membership!(ShallowParty);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavour {
    Deep,
    Shallow,
}

fn new_member(
    zk: SimSession,
    flavour: Flavour,
    id: &str,
    broken: bool,
) -> Box<dyn Membership + Send> {
    match (flavour, broken) {
        (Flavour::Deep, false) => Box::new(Party::new(zk, PARTY, id)),
        (Flavour::Deep, true) => Box::new(Party::new(zk, PARTY, id).broken_ignore_session_loss()),
        (Flavour::Shallow, false) => Box::new(ShallowParty::new(zk, PARTY, id)),
        (Flavour::Shallow, true) => {
            Box::new(ShallowParty::new(zk, PARTY, id).broken_ignore_session_loss())
        }
    }
}

/// One operation of a member, as the history records it.
#[derive(Debug, Clone)]
struct PartyOp {
    op: &'static str,
    outcome: Outcome,
}

trait Describe {
    fn describe(&self) -> &'static str;
}

impl Describe for Outcome {
    fn describe(&self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Info => "info",
        }
    }
}

fn party_config(seed: u64) -> SimConfig {
    SimConfig {
        seed,
        faults: Faults {
            stall: 0.08,
            ..Faults::standard()
        },
        ..SimConfig::default()
    }
}

fn spawn_party(sim: &mut Sim, flavour: Flavour, members: usize, broken: bool) -> Checker {
    let ops: Log<PartyOp> = Log::default();
    let problems: Log<String> = Log::default();
    let finals: Log<(String, bool)> = Log::default();
    let told: Log<String> = Log::default();
    let seen: Log<Vec<String>> = Log::default();
    let reader_done: Log<()> = Log::default();
    for i in 0..members {
        let (ops, problems, finals, told, reader_done) = (
            ops.clone(),
            problems.clone(),
            finals.clone(),
            told.clone(),
            reader_done.clone(),
        );
        sim.spawn(&format!("m{i}"), move |ctx| {
            let id = format!("m{i}");
            let mut zk = ctx.connect();
            let mut party = new_member(zk.clone(), flavour, &id, broken);
            let record = |op, outcome| ops.push(PartyOp { op, outcome });
            // Everyone joins, then waits for the others (up to a while).
            match party.join() {
                Ok(()) => record("join", Outcome::Ok),
                Err(_) => record("join", Outcome::Info),
            }
            // (The list may be shorter by the time it is read: a member may have left.)
            match party.wait_for_members(members, Some(Duration::from_secs(5))) {
                Ok(_) => record("wait", Outcome::Ok),
                Err(_) => record("wait", Outcome::Info),
            }
            let mut joined = party.is_member();
            for _ in 0..ROUNDS {
                if ctx.stopped() {
                    break;
                }
                if joined && !party.is_member() {
                    // Told it left (the session ended): start over on a new session.
                    told.push(id.clone());
                    joined = false;
                }
                if zk.state().is_terminal() {
                    zk = ctx.connect();
                    party = new_member(zk.clone(), flavour, &id, broken);
                }
                if ctx.random(3) != 0 {
                    match party.join() {
                        Ok(()) => {
                            record("join", Outcome::Ok);
                            joined = true;
                        }
                        Err(_) => record("join", Outcome::Info),
                    }
                } else {
                    match party.leave() {
                        Ok(_) => {
                            record("leave", Outcome::Ok);
                            joined = false;
                        }
                        Err(_) => record("leave", Outcome::Info),
                    }
                }
                ctx.sleep(Duration::from_millis(ctx.random(300)));
                ctx.stall();
                // A member that believes it is one finds itself in a list read on its own
                // (therefore live) session.
                if party.is_member() {
                    if let Ok(list) = party.members() {
                        if party.is_member() && !list.contains(&id) {
                            problems.push(format!(
                                "{id}: believes it is a member, but members() = {list:?}"
                            ));
                        }
                    }
                }
            }
            // Settle: wait out a disconnection, so the session is either alive or known lost.
            loop {
                let s = zk.state();
                if s == SessionState::Disconnected || s == SessionState::Connecting {
                    zk.wait_state(s, None);
                    if ctx.stopped() {
                        break;
                    }
                } else {
                    break;
                }
            }
            finals.push((id.clone(), party.is_member()));
            // Stay (with the session open) until the reader has looked.
            while reader_done.snapshot().is_empty() && !ctx.stopped() {
                ctx.sleep(Duration::from_millis(500));
            }
            drop(party);
        });
    }
    let (f, s, rd) = (finals.clone(), seen.clone(), reader_done.clone());
    sim.spawn("reader", move |ctx| {
        while f.snapshot().len() < members && !ctx.stopped() {
            ctx.sleep(Duration::from_millis(500));
        }
        let list = on_fresh_session(&ctx, |zk| {
            new_member(zk.clone(), flavour, "reader", false).members()
        });
        if let Some(list) = list {
            s.push(list);
        }
        rd.push(());
    });
    Box::new(move |_report| {
        if let Some(p) = problems.snapshot().first() {
            return Err(p.clone());
        }
        let Some(mut list) = seen.snapshot().pop() else {
            return Err("the members could not be read".into());
        };
        list.sort();
        let mut believed: Vec<String> = finals
            .snapshot()
            .into_iter()
            .filter(|(_, member)| *member)
            .map(|(id, _)| id)
            .collect();
        believed.sort();
        if list != believed {
            let ops = ops.snapshot();
            let history: Vec<String> = ops
                .iter()
                .map(|o| format!("{}:{}", o.op, o.outcome.describe()))
                .collect();
            return Err(format!(
                "members() = {list:?} but the members that believe they are: {believed:?} \
                 (told they left: {:?}; ops: {})",
                told.snapshot(),
                history.join(" ")
            ));
        }
        Ok(())
    })
}

/// Correct: kazoo's `Party`, membership tied to the session.
#[derive(Debug)]
pub struct PartyWorkload;

/// Broken on purpose: membership outlives the session (kazoo's behaviour).
#[derive(Debug)]
pub struct BrokenParty;

/// Correct: kazoo's `ShallowParty`.
#[derive(Debug)]
pub struct ShallowPartyWorkload;

/// Broken on purpose: shallow membership outlives the session.
#[derive(Debug)]
pub struct BrokenShallowParty;

impl Workload for PartyWorkload {
    fn name(&self) -> &'static str {
        "party"
    }
    fn about(&self) -> &'static str {
        "members join, leave, stall and rejoin; members() == those that believe they are members"
    }
    fn config(&self, seed: u64) -> SimConfig {
        party_config(seed)
    }
    fn default_clients(&self) -> usize {
        MEMBERS
    }
    fn spawn(&self, sim: &mut Sim, clients: usize) -> Checker {
        spawn_party(sim, Flavour::Deep, clients, false)
    }
}

impl Workload for BrokenParty {
    fn name(&self) -> &'static str {
        "party-broken"
    }
    fn about(&self) -> &'static str {
        "deliberately broken: membership kept after session loss (the checker must catch it)"
    }
    fn broken(&self) -> bool {
        true
    }
    fn config(&self, seed: u64) -> SimConfig {
        party_config(seed)
    }
    fn default_clients(&self) -> usize {
        MEMBERS
    }
    fn spawn(&self, sim: &mut Sim, clients: usize) -> Checker {
        spawn_party(sim, Flavour::Deep, clients, true)
    }
}

impl Workload for ShallowPartyWorkload {
    fn name(&self) -> &'static str {
        "shallow-party"
    }
    fn about(&self) -> &'static str {
        "shallow members join, leave, stall and rejoin; members() == those that believe they are"
    }
    fn config(&self, seed: u64) -> SimConfig {
        party_config(seed)
    }
    fn default_clients(&self) -> usize {
        MEMBERS
    }
    fn spawn(&self, sim: &mut Sim, clients: usize) -> Checker {
        spawn_party(sim, Flavour::Shallow, clients, false)
    }
}

impl Workload for BrokenShallowParty {
    fn name(&self) -> &'static str {
        "shallow-party-broken"
    }
    fn about(&self) -> &'static str {
        "deliberately broken: shallow membership kept after session loss (the checker must catch it)"
    }
    fn broken(&self) -> bool {
        true
    }
    fn config(&self, seed: u64) -> SimConfig {
        party_config(seed)
    }
    fn default_clients(&self) -> usize {
        MEMBERS
    }
    fn spawn(&self, sim: &mut Sim, clients: usize) -> Checker {
        spawn_party(sim, Flavour::Shallow, clients, true)
    }
}
