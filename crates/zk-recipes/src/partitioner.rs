//! SetPartitioner: divide a set of items among the members of a party (kazoo's
//! `kazoo.recipe.partitioner.SetPartitioner`, node for node).
//!
//! Each member joins a shallow party under `<path>/party` (an ephemeral node
//! `<uuid hex>-<identifier>` whose data is the identifier, as kazoo's `ShallowParty` writes
//! it). Once the party's membership has not changed for `time_boundary`, every member applies
//! the same partition function to (its identifier, the members' identifiers, the set) and
//! locks each item of its share with a kazoo-compatible lock under `<path>/locks/<item>`
//! (ephemeral sequential nodes `<uuid hex>__lock__<10-digit sequence>`, empty data). When all
//! its locks are held the member is [`PartitionState::Acquired`]; a later change of the
//! membership moves it to [`PartitionState::Release`], and it must
//! [`SetPartitioner::release_set`] so the set can be repartitioned.
//!
//! Kazoo runs the allocation in background greenlets; here the caller drives it:
//! [`SetPartitioner::wait_for_acquire`] runs the allocation (settling, partitioning, locking)
//! until it completes or its timeout passes, and [`SetPartitioner::state`] looks for a
//! membership change or a lost session. A typical loop:
//!
//! ```no_run
//! # use std::time::Duration;
//! # use zk_recipes::partitioner::{PartitionState, SetPartitioner};
//! # fn work(_: &str) {}
//! # fn run<S: zk_recipes::Session>(session: S) -> Result<(), zk_recipes::Error> {
//! let mut qp = SetPartitioner::builder("/work_queues", ["queue-1", "queue-2", "queue-3"])
//!     .identifier("worker-1")
//!     .time_boundary(Duration::from_secs(5))
//!     .build(session)?;
//! loop {
//!     match qp.state() {
//!         PartitionState::Failure => break, // lost or finished: make a new one
//!         PartitionState::Release => qp.release_set()?,
//!         PartitionState::Allocating => {
//!             qp.wait_for_acquire(Duration::from_secs(30))?;
//!         }
//!         PartitionState::Acquired => {
//!             for item in &qp {
//!                 work(item);
//!             }
//!         }
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Where this differs from kazoo (on purpose):
//! - lock contenders are ordered by their integer sequence (negative ones after 2^31
//!   included), and a waiter watches only the next lower contender;
//! - an ambiguous create (connection loss) is recovered by the node's unique prefix *and* an
//!   `ephemeralOwner` check against this session; a timed-out lock attempt deletes its node,
//!   retrying until the delete succeeds;
//! - session loss is explicit: once the session has expired the state is
//!   [`PartitionState::Failure`] and no item is reported as owned;
//! - each owned item has a [`Fence`] (its lock node and sequence) for fenced writes;
//! - [`SetPartitioner::generation`] tells which membership (the party node's child version)
//!   the current partition was computed from.
//!
//! Items must be valid znode names (kazoo uses `str(item)` as the lock node's name).

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::fence::{Fence, sequence_of};
use crate::session::{Session, SessionExt, join};
use crate::{CreateMode, CreateOptions, Error, SessionState};

/// The marker kazoo's `Lock` puts between the contender's uuid and the sequence number.
pub(crate) const LOCK_MARKER: &str = "__lock__";

// ---------------------------------------------------------------------------------------------
// Small private helpers shared with `lease.rs` (a minimal kazoo-compatible lock, the party
// operations, a deterministic uuid). They use nothing but the `Session` trait.
// ---------------------------------------------------------------------------------------------

thread_local! {
    static UUID_COUNTER: Cell<u64> = const { Cell::new(0) };
}

fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A 32-hex-digit identifier in the role of kazoo's `uuid.uuid4().hex`.
///
/// It must be unique among the nodes this session creates under the same parent, and the
/// simulator must reproduce it from the seed, so it is a hash of the session id, `salt` (the
/// parent path) and a per-thread counter — no OS randomness, no `RandomState`. Simulated
/// processes run on fresh threads, so the counter restarts with every run. Different
/// sessions never share a node with each other anyway: recovery also checks the node's
/// `ephemeralOwner`.
pub(crate) fn uuid_hex(session_id: i64, salt: &str) -> String {
    let n = UUID_COUNTER.with(|c| {
        let v = c.get();
        c.set(v.wrapping_add(1));
        v
    });
    let mut a: u64 = 0xcbf2_9ce4_8422_2325;
    let mut b: u64 = 0x8422_2325_cbf2_9ce4;
    for byte in session_id
        .to_le_bytes()
        .into_iter()
        .chain(n.to_le_bytes())
        .chain(salt.bytes())
    {
        a = (a ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        b = (b ^ u64::from(byte))
            .wrapping_mul(0x0000_0100_0000_01b3)
            .rotate_left(7);
    }
    format!("{:016x}{:016x}", mix64(a), mix64(b ^ n))
}

/// The error a terminal session state stands for.
pub(crate) fn terminal_error(state: SessionState) -> Option<Error> {
    match state {
        SessionState::Expired => Some(Error::SessionExpired),
        SessionState::Closed => Some(Error::Closed),
        SessionState::AuthFailed => Some(Error::AuthFailed),
        _ => None,
    }
}

/// Errors after which the same call may be retried (the outcome of a write is then unknown).
pub(crate) fn retryable(e: &Error) -> bool {
    e.is_retryable() || matches!(e, Error::NotReadOnly)
}

/// Wait a little before retrying after a connection loss: until the session state changes
/// (e.g. reconnects), at most 500 ms; fails once the session is gone.
pub(crate) fn pause<S: Session>(s: &S) -> Result<(), Error> {
    let st = s.state();
    if let Some(e) = terminal_error(st) {
        return Err(e);
    }
    if st == SessionState::Connected {
        s.sleep(Duration::from_millis(5));
    } else {
        let _ = s.wait_state(st, Some(s.now() + Duration::from_millis(500)));
    }
    match terminal_error(s.state()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// [`SessionExt::ensure_path`], retried through connection losses.
pub(crate) fn ensure_path_retrying<S: Session>(s: &S, path: &str) -> Result<(), Error> {
    loop {
        match s.ensure_path(path) {
            Ok(()) => return Ok(()),
            Err(e) if retryable(&e) => pause(s)?,
            Err(e) => return Err(e),
        }
    }
}

/// Delete `path` (any version), retried through connection losses until it is gone. Fails
/// only with a terminal error (the session is gone, and with it its ephemerals) or an error
/// retrying cannot fix.
pub(crate) fn delete_retrying<S: Session>(s: &S, path: &str) -> Result<(), Error> {
    loop {
        match s.delete(path, None) {
            Ok(()) | Err(Error::NoNode) => return Ok(()),
            Err(e) if retryable(&e) => pause(s)?,
            Err(e) => return Err(e),
        }
    }
}

/// A lock node this session holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeldLock {
    /// The full path of the lock node.
    pub(crate) node: String,
    /// Its sequence number.
    pub(crate) seq: i64,
}

impl HeldLock {
    pub(crate) fn fence(&self) -> Fence {
        Fence {
            node: self.node.clone(),
            token: self.seq,
        }
    }
}

fn last_component(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Our node among `lock_path`'s children after an ambiguous create: the name starts with
/// our unique `prefix` AND its `ephemeralOwner` is this session (CURATOR-498).
fn find_own<S: Session>(s: &S, lock_path: &str, prefix: &str) -> Result<Option<String>, Error> {
    let (children, _) = match s.get_children(lock_path) {
        Ok(c) => c,
        Err(Error::NoNode) => return Ok(None),
        Err(e) => return Err(e),
    };
    for child in children.into_iter().filter(|c| c.starts_with(prefix)) {
        if let Some(stat) = s.exists(&join(lock_path, &child))? {
            if stat.ephemeral_owner == s.session_id() {
                return Ok(Some(child));
            }
        }
    }
    Ok(None)
}

/// Delete every node of ours with `prefix` under `lock_path`, retried until done (after a
/// failed or timed-out attempt no contender node may be left behind; kazoo #732, #760).
fn cleanup_prefix<S: Session>(s: &S, lock_path: &str, prefix: &str, known: Option<&str>) {
    if let Some(node) = known {
        if delete_retrying(s, &join(lock_path, node)).is_err() {
            return;
        }
    }
    loop {
        match find_own(s, lock_path, prefix) {
            Ok(Some(node)) => {
                if delete_retrying(s, &join(lock_path, &node)).is_err() {
                    return;
                }
            }
            Ok(None) => return,
            Err(e) if retryable(&e) => {
                if pause(s).is_err() {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}

/// Acquire a kazoo-compatible exclusive lock on `lock_path`: an ephemeral sequential node
/// `<uuid>__lock__<seq>` with `data`, held once no contender has a lower sequence. Waits only
/// on the next lower contender. `Ok(None)` when `deadline` passes first (our node is then
/// deleted again).
pub(crate) fn acquire_lock<S: Session>(
    s: &S,
    lock_path: &str,
    data: &[u8],
    deadline: Option<Instant>,
) -> Result<Option<HeldLock>, Error> {
    let prefix = format!("{}{LOCK_MARKER}", uuid_hex(s.session_id(), lock_path));
    let mut mine: Option<(String, i64)> = None;
    let result = acquire_inner(s, lock_path, &prefix, data, deadline, &mut mine);
    if !matches!(result, Ok(Some(_))) {
        let known = mine.as_ref().map(|(n, _)| n.as_str());
        if terminal_error(s.state()).is_none() {
            cleanup_prefix(s, lock_path, &prefix, known);
        }
    }
    result
}

fn acquire_inner<S: Session>(
    s: &S,
    lock_path: &str,
    prefix: &str,
    data: &[u8],
    deadline: Option<Instant>,
    mine: &mut Option<(String, i64)>,
) -> Result<Option<HeldLock>, Error> {
    let passed = |s: &S| deadline.is_some_and(|d| s.now() >= d);
    let mut tried = false;
    loop {
        if passed(s) {
            return Ok(None);
        }
        if mine.is_none() {
            if tried {
                match find_own(s, lock_path, prefix) {
                    Ok(Some(name)) => {
                        let seq = sequence_of(&name, LOCK_MARKER)
                            .ok_or_else(|| Error::Protocol(format!("bad lock node {name}")))?;
                        *mine = Some((name, seq));
                    }
                    Ok(None) => {}
                    Err(e) if retryable(&e) => {
                        pause(s)?;
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            if mine.is_none() {
                tried = true;
                let options = CreateOptions::new(CreateMode::EphemeralSequential);
                match s.create(&join(lock_path, prefix), data, &options) {
                    Ok((path, _)) => {
                        let name = last_component(&path).to_owned();
                        let seq = sequence_of(&name, LOCK_MARKER)
                            .ok_or_else(|| Error::Protocol(format!("bad lock node {name}")))?;
                        *mine = Some((name, seq));
                    }
                    Err(Error::NoNode) => {
                        ensure_path_retrying(s, lock_path)?;
                        continue;
                    }
                    Err(e) if retryable(&e) => {
                        pause(s)?;
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        let Some((name, seq)) = mine.clone() else {
            continue;
        };
        let children = match s.get_children(lock_path) {
            Ok((c, _)) => c,
            Err(Error::NoNode) => {
                *mine = None;
                tried = false;
                continue;
            }
            Err(e) if retryable(&e) => {
                pause(s)?;
                continue;
            }
            Err(e) => return Err(e),
        };
        if !children.contains(&name) {
            // Our node is gone while the session lives (someone deleted it): contend anew.
            if let Some(e) = terminal_error(s.state()) {
                return Err(e);
            }
            *mine = None;
            tried = false;
            continue;
        }
        let predecessor = children
            .iter()
            .filter_map(|c| sequence_of(c, LOCK_MARKER).map(|q| (q, c)))
            .filter(|(q, _)| *q < seq)
            .max_by_key(|(q, _)| *q)
            .map(|(_, c)| c.clone());
        let Some(predecessor) = predecessor else {
            return Ok(Some(HeldLock {
                node: join(lock_path, &name),
                seq,
            }));
        };
        match s.exists_watch(&join(lock_path, &predecessor)) {
            Ok((None, _)) => continue,
            Ok((Some(_), watch)) => match s.wait_watch(&watch, deadline) {
                Ok(Some(_)) => continue,
                Ok(None) => return Ok(None),
                Err(e) if retryable(&e) => continue,
                Err(e) => return Err(e),
            },
            Err(e) if retryable(&e) => {
                pause(s)?;
                continue;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Create our ephemeral party node (name known in advance, so a retry after a connection
/// loss finds it by name; adopted only if this session owns it).
pub(crate) fn join_party<S: Session>(s: &S, node: &str, data: &[u8]) -> Result<(), Error> {
    loop {
        match s.create(node, data, &CreateOptions::ephemeral()) {
            Ok(_) => return Ok(()),
            Err(Error::NodeExists) => match s.exists(node) {
                Ok(Some(stat)) if stat.ephemeral_owner == s.session_id() => return Ok(()),
                Ok(Some(_)) => return Err(Error::NodeExists),
                Ok(None) => continue,
                Err(e) if retryable(&e) => pause(s)?,
                Err(e) => return Err(e),
            },
            Err(Error::NoNode) => ensure_path_retrying(s, crate::session::parent_of(node))?,
            Err(e) if retryable(&e) => pause(s)?,
            Err(e) => return Err(e),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The partitioner.
// ---------------------------------------------------------------------------------------------

/// The partitioner's state (kazoo's `PartitionState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PartitionState {
    /// The set needs to be partitioned: [`SetPartitioner::wait_for_acquire`] does it.
    Allocating,
    /// The set has been partitioned and this member's share acquired.
    Acquired,
    /// The membership changed (or the connection was interrupted): release the share with
    /// [`SetPartitioner::release_set`] as soon as possible.
    Release,
    /// The session was lost, partitioning failed, or [`SetPartitioner::finish`] was called:
    /// this partitioner is unusable; make a new one.
    Failure,
}

impl PartitionState {
    /// [`PartitionState::Failure`].
    pub fn is_failed(self) -> bool {
        self == PartitionState::Failure
    }
    /// [`PartitionState::Release`].
    pub fn is_release(self) -> bool {
        self == PartitionState::Release
    }
    /// [`PartitionState::Allocating`].
    pub fn is_allocating(self) -> bool {
        self == PartitionState::Allocating
    }
    /// [`PartitionState::Acquired`].
    pub fn is_acquired(self) -> bool {
        self == PartitionState::Acquired
    }
}

/// A partition function: `(identifier, members, items) -> this member's items`. Every member
/// must compute the same division from the same inputs (`members` comes in the server's
/// child order, which differs between members: sort it).
pub type PartitionFunc = Arc<dyn Fn(&str, &[String], &[String]) -> Vec<String> + Send + Sync>;

/// Kazoo's default partition function: sort the items and the members, and take every
/// `n`-th item starting at this member's index in the sorted members (`n` members). Returns
/// nothing if `identifier` is not a member.
pub fn default_partition(identifier: &str, members: &[String], items: &[String]) -> Vec<String> {
    let mut all = items.to_vec();
    all.sort();
    let mut workers = members.to_vec();
    workers.sort();
    let Some(i) = workers.iter().position(|w| w == identifier) else {
        return Vec::new();
    };
    all.into_iter().skip(i).step_by(workers.len()).collect()
}

/// The identifier a shallow-party node name carries: what follows its first `-`.
fn member_identifier(child: &str) -> String {
    match child.find('-') {
        Some(i) => child[i + 1..].to_owned(),
        None => child.to_owned(),
    }
}

/// Options for a [`SetPartitioner`]; see [`SetPartitioner::builder`].
pub struct SetPartitionerBuilder<S> {
    path: String,
    items: Vec<String>,
    identifier: Option<String>,
    time_boundary: Duration,
    max_reaction_time: Duration,
    partition_func: Option<PartitionFunc>,
    session: std::marker::PhantomData<fn() -> S>,
}

impl<S> Clone for SetPartitionerBuilder<S> {
    fn clone(&self) -> Self {
        SetPartitionerBuilder {
            path: self.path.clone(),
            items: self.items.clone(),
            identifier: self.identifier.clone(),
            time_boundary: self.time_boundary,
            max_reaction_time: self.max_reaction_time,
            partition_func: self.partition_func.clone(),
            session: std::marker::PhantomData,
        }
    }
}

impl<S> std::fmt::Debug for SetPartitionerBuilder<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetPartitionerBuilder")
            .field("path", &self.path)
            .field("items", &self.items)
            .field("identifier", &self.identifier)
            .field("time_boundary", &self.time_boundary)
            .field("max_reaction_time", &self.max_reaction_time)
            .field("custom_partition_func", &self.partition_func.is_some())
            .finish()
    }
}

impl<S: Session> SetPartitionerBuilder<S> {
    /// This member's identifier (the part after `<uuid>-` in its party node name; must not
    /// contain `/`). Default: the session id in hex (kazoo: `<fqdn>-<pid>`).
    pub fn identifier(mut self, identifier: impl Into<String>) -> Self {
        self.identifier = Some(identifier.into());
        self
    }

    /// How long the membership must stay unchanged before the set is partitioned (kazoo's
    /// `time_boundary`, default 30 s).
    pub fn time_boundary(mut self, d: Duration) -> Self {
        self.time_boundary = d;
        self
    }

    /// How long one lock attempt waits before looking for a membership change again (kazoo's
    /// `max_reaction_time`, default 1 s).
    pub fn max_reaction_time(mut self, d: Duration) -> Self {
        self.max_reaction_time = d;
        self
    }

    /// A custom partition function (see [`PartitionFunc`]); default [`default_partition`].
    pub fn partition_func(
        mut self,
        f: impl Fn(&str, &[String], &[String]) -> Vec<String> + Send + Sync + 'static,
    ) -> Self {
        self.partition_func = Some(Arc::new(f));
        self
    }

    /// Create the paths, join the party and start in [`PartitionState::Allocating`].
    pub fn build(self, session: S) -> Result<SetPartitioner<S>, Error> {
        let identifier = self
            .identifier
            .unwrap_or_else(|| format!("{:x}", session.session_id()));
        if identifier.contains('/') {
            return Err(Error::InvalidUse(
                "a partitioner identifier cannot contain '/'",
            ));
        }
        let lock_path = join(&self.path, "locks");
        let party_path = join(&self.path, "party");
        ensure_path_retrying(&session, &self.path)?;
        ensure_path_retrying(&session, &lock_path)?;
        ensure_path_retrying(&session, &party_path)?;
        let party_name = format!(
            "{}-{identifier}",
            uuid_hex(session.session_id(), &party_path)
        );
        let party_node = join(&party_path, &party_name);
        join_party(&session, &party_node, identifier.as_bytes())?;
        Ok(SetPartitioner {
            session,
            path: self.path,
            lock_path,
            party_path,
            items: self.items,
            identifier,
            partition_func: self
                .partition_func
                .unwrap_or_else(|| Arc::new(default_partition)),
            time_boundary: self.time_boundary,
            max_reaction_time: self.max_reaction_time,
            state: PartitionState::Allocating,
            party_name,
            party_node,
            joined: true,
            phase: Phase::Idle,
            watch: None,
            changed: false,
            locks: Vec::new(),
            partition_set: Vec::new(),
            members: Vec::new(),
            generation: None,
        })
    }
}

enum Phase {
    /// Read the membership (and watch it) next.
    Idle,
    /// Membership read; waiting for it to stay unchanged until `until`.
    Settling {
        until: Instant,
        children: Vec<String>,
        cversion: i32,
    },
    /// Settled: locking `want`.
    Locking {
        members: Vec<String>,
        cversion: i32,
        want: Vec<String>,
    },
}

/// Partitions a set among the members of a party (kazoo's `SetPartitioner`); see the
/// [module documentation](self).
///
/// Dropping it releases its locks and leaves the party (best effort), like
/// [`SetPartitioner::finish`].
pub struct SetPartitioner<S: Session> {
    session: S,
    path: String,
    lock_path: String,
    party_path: String,
    items: Vec<String>,
    identifier: String,
    partition_func: PartitionFunc,
    time_boundary: Duration,
    max_reaction_time: Duration,
    state: PartitionState,
    party_name: String,
    party_node: String,
    joined: bool,
    phase: Phase,
    /// The membership watch left by the read the current allocation is based on.
    watch: Option<S::Watch>,
    /// Whether that watch has fired (a one-shot watch is only delivered once).
    changed: bool,
    locks: Vec<(String, HeldLock)>,
    partition_set: Vec<String>,
    members: Vec<String>,
    generation: Option<i64>,
}

impl<S: Session> std::fmt::Debug for SetPartitioner<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetPartitioner")
            .field("path", &self.path)
            .field("identifier", &self.identifier)
            .field("state", &self.state)
            .field("partition", &self.partition_set)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl<S: Session> SetPartitioner<S> {
    /// Options for a partitioner of `items` under `path`.
    pub fn builder<I, T>(path: &str, items: I) -> SetPartitionerBuilder<S>
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        SetPartitionerBuilder {
            path: path.to_owned(),
            items: items.into_iter().map(Into::into).collect(),
            identifier: None,
            time_boundary: Duration::from_secs(30),
            max_reaction_time: Duration::from_secs(1),
            partition_func: None,
            session: std::marker::PhantomData,
        }
    }

    /// The partitioner's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// This member's identifier.
    pub fn identifier(&self) -> &str {
        &self.identifier
    }

    /// The whole set being partitioned.
    pub fn items(&self) -> &[String] {
        &self.items
    }

    /// This member's party node (full path).
    pub fn party_node(&self) -> &str {
        &self.party_node
    }

    /// The session.
    pub fn session(&self) -> &S {
        &self.session
    }

    /// The state now: looks (without blocking) for a lost session (→
    /// [`PartitionState::Failure`]) and, when acquired, for a membership change or a
    /// connection interruption (→ [`PartitionState::Release`], as kazoo does on any
    /// connection state change).
    pub fn state(&mut self) -> PartitionState {
        self.refresh();
        self.state
    }

    /// Whether the session is still usable (its loss empties the share even before
    /// [`SetPartitioner::state`] notices it).
    fn alive(&self) -> bool {
        self.state != PartitionState::Failure && terminal_error(self.session.state()).is_none()
    }

    /// This member's share while [`PartitionState::Acquired`] (or [`PartitionState::Release`],
    /// until released): the items whose locks it holds. Empty otherwise, and once the session
    /// is gone.
    pub fn partition(&self) -> &[String] {
        if self.alive() {
            &self.partition_set
        } else {
            &[]
        }
    }

    /// Iterate over this member's share (see [`SetPartitioner::partition`]).
    pub fn iter(&self) -> std::slice::Iter<'_, String> {
        self.partition().iter()
    }

    /// The members' identifiers the current share was computed from.
    pub fn members(&self) -> &[String] {
        if self.alive() { &self.members } else { &[] }
    }

    /// Which membership the current share was computed from: the party node's child version
    /// (`cversion`) when the membership settled. Members whose shares carry the same
    /// generation divided the same membership. `None` unless acquired.
    pub fn generation(&self) -> Option<i64> {
        self.generation.filter(|_| self.alive())
    }

    /// The fence of an item whose lock this member holds: its lock node and sequence number.
    /// `None` once the session is gone.
    pub fn fence(&self, item: &str) -> Option<Fence> {
        if !self.alive() {
            return None;
        }
        self.locks
            .iter()
            .find(|(i, _)| i == item)
            .map(|(_, l)| l.fence())
    }

    /// The fences of all items whose locks this member holds, as (item, fence).
    pub fn fences(&self) -> Vec<(String, Fence)> {
        if !self.alive() {
            return Vec::new();
        }
        self.locks
            .iter()
            .map(|(i, l)| (i.clone(), l.fence()))
            .collect()
    }

    /// Run the allocation until this member's share is acquired or `timeout` passes, and
    /// return the state then. Does nothing unless [`PartitionState::Allocating`] (kazoo's
    /// `wait_for_acquire`, which here also does the work kazoo does in the background).
    ///
    /// A session lost on the way gives `Ok(PartitionState::Failure)`; an error retrying
    /// cannot fix (e.g. `NoAuth`) ends the partitioner ([`PartitionState::Failure`]) and is
    /// returned.
    pub fn wait_for_acquire(&mut self, timeout: Duration) -> Result<PartitionState, Error> {
        let deadline = self.session.now() + timeout;
        self.refresh();
        if self.state != PartitionState::Allocating {
            return Ok(self.state);
        }
        match self.allocate(deadline) {
            Ok(()) => {}
            Err(e) if terminal_error(self.session.state()).is_some() || e.is_terminal() => {
                self.lost();
            }
            Err(e) => {
                let _ = self.finish();
                return Err(e);
            }
        }
        Ok(self.state)
    }

    /// Release this member's share and start allocating again (kazoo's `release_set`).
    pub fn release_set(&mut self) -> Result<(), Error> {
        if self.state == PartitionState::Failure {
            return Ok(());
        }
        match self.release_locks() {
            Ok(()) => {
                self.reset_allocation();
                self.set_state(PartitionState::Allocating);
                Ok(())
            }
            Err(e) if e.is_terminal() => {
                self.lost();
                Ok(())
            }
            Err(e) => {
                let _ = self.finish();
                Err(e)
            }
        }
    }

    /// Release the share and leave the party; the partitioner is then
    /// [`PartitionState::Failure`] (kazoo's `finish`).
    pub fn finish(&mut self) -> Result<(), Error> {
        let released = self.release_locks();
        self.reset_allocation();
        self.set_state(PartitionState::Failure);
        let left = if self.joined {
            self.joined = false;
            delete_retrying(&self.session, &self.party_node)
        } else {
            Ok(())
        };
        self.locks.clear();
        match released.and(left) {
            Err(e) if !e.is_terminal() => Err(e),
            _ => Ok(()),
        }
    }

    fn set_state(&mut self, state: PartitionState) {
        if self.state != state {
            tracing::debug!(path = %self.path, id = %self.identifier, ?state, "partitioner state");
        }
        self.state = state;
    }

    fn reset_allocation(&mut self) {
        self.partition_set.clear();
        self.members.clear();
        self.generation = None;
        self.watch = None;
        self.changed = false;
        self.phase = Phase::Idle;
    }

    /// The session is gone: nothing is held any more.
    fn lost(&mut self) {
        self.locks.clear();
        self.joined = false;
        self.reset_allocation();
        self.set_state(PartitionState::Failure);
    }

    fn refresh(&mut self) {
        if self.state == PartitionState::Failure {
            return;
        }
        let st = self.session.state();
        if terminal_error(st).is_some() {
            self.lost();
            return;
        }
        if self.state == PartitionState::Acquired {
            match self.membership_changed() {
                Ok(changed) => {
                    if changed || st != SessionState::Connected {
                        self.set_state(PartitionState::Release);
                    }
                }
                Err(_) => self.lost(),
            }
        }
    }

    /// Whether the membership watch has fired (without blocking).
    fn membership_changed(&mut self) -> Result<bool, Error> {
        if self.changed {
            return Ok(true);
        }
        let Some(w) = &self.watch else {
            return Ok(true);
        };
        match self.session.wait_watch(w, Some(self.session.now())) {
            Ok(Some(_)) => {
                self.changed = true;
                self.watch = None;
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(e) => {
                self.changed = true;
                self.watch = None;
                Err(e)
            }
        }
    }

    fn release_locks(&mut self) -> Result<(), Error> {
        let mut failure = None;
        let mut kept = Vec::new();
        for (item, lock) in std::mem::take(&mut self.locks) {
            if failure.as_ref().is_some_and(Error::is_terminal) {
                continue;
            }
            match delete_retrying(&self.session, &lock.node) {
                Ok(()) => {}
                Err(e) if e.is_terminal() => failure = Some(e),
                Err(e) => {
                    kept.push((item, lock));
                    failure = Some(e);
                }
            }
        }
        self.locks = kept;
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Give up a lock acquisition because the membership changed: release, start over.
    fn abort(&mut self) -> Result<(), Error> {
        self.release_locks()?;
        self.reset_allocation();
        Ok(())
    }

    /// Run the allocation until acquired (`Ok`, state [`PartitionState::Acquired`]) or
    /// `deadline` (`Ok`, still allocating, progress kept).
    fn allocate(&mut self, deadline: Instant) -> Result<(), Error> {
        loop {
            if let Some(e) = terminal_error(self.session.state()) {
                return Err(e);
            }
            let now = self.session.now();
            match std::mem::replace(&mut self.phase, Phase::Idle) {
                Phase::Idle => {
                    if now >= deadline {
                        return Ok(());
                    }
                    if !self.joined {
                        join_party(&self.session, &self.party_node, self.identifier.as_bytes())?;
                        self.joined = true;
                    }
                    match self.session.get_children_watch(&self.party_path) {
                        Ok((children, stat, watch)) => {
                            self.watch = Some(watch);
                            self.changed = false;
                            if !children.contains(&self.party_name) {
                                // Our member node is gone while the session lives: rejoin.
                                self.joined = false;
                                continue;
                            }
                            self.phase = Phase::Settling {
                                until: now + self.time_boundary,
                                children,
                                cversion: stat.cversion,
                            };
                        }
                        Err(Error::NoNode) => {
                            ensure_path_retrying(&self.session, &self.party_path)?;
                            self.joined = false;
                        }
                        Err(e) if retryable(&e) => pause(&self.session)?,
                        Err(e) => return Err(e),
                    }
                }
                Phase::Settling {
                    until,
                    children,
                    cversion,
                } => {
                    if self.changed {
                        continue; // back to Idle: read the membership again
                    }
                    if now >= until {
                        if self.membership_changed()? {
                            continue;
                        }
                        let members: Vec<String> =
                            children.iter().map(|c| member_identifier(c)).collect();
                        let want = (self.partition_func)(&self.identifier, &members, &self.items);
                        self.phase = Phase::Locking {
                            members,
                            cversion,
                            want,
                        };
                        continue;
                    }
                    if now >= deadline {
                        self.phase = Phase::Settling {
                            until,
                            children,
                            cversion,
                        };
                        return Ok(());
                    }
                    let fired = match &self.watch {
                        Some(w) => self.session.wait_watch(w, Some(until.min(deadline)))?,
                        None => None,
                    };
                    if fired.is_some() || self.watch.is_none() {
                        self.changed = true;
                        self.watch = None;
                    } else {
                        self.phase = Phase::Settling {
                            until,
                            children,
                            cversion,
                        };
                    }
                }
                Phase::Locking {
                    members,
                    cversion,
                    want,
                } => {
                    let next = want
                        .iter()
                        .find(|item| !self.locks.iter().any(|(i, _)| i == *item))
                        .cloned();
                    let Some(item) = next else {
                        if self.membership_changed()? {
                            self.abort()?;
                            continue;
                        }
                        self.partition_set = want;
                        self.members = members;
                        self.generation = Some(i64::from(cversion));
                        self.set_state(PartitionState::Acquired);
                        return Ok(());
                    };
                    let lock_deadline = (now + self.max_reaction_time).min(deadline);
                    let lock_path = join(&self.lock_path, &item);
                    match acquire_lock(&self.session, &lock_path, b"", Some(lock_deadline))? {
                        Some(held) => {
                            self.locks.push((item, held));
                            if self.membership_changed()? {
                                self.abort()?;
                                continue;
                            }
                        }
                        None => {
                            if self.membership_changed()? {
                                self.abort()?;
                                continue;
                            }
                            if self.session.now() >= deadline {
                                self.phase = Phase::Locking {
                                    members,
                                    cversion,
                                    want,
                                };
                                return Ok(());
                            }
                        }
                    }
                    self.phase = Phase::Locking {
                        members,
                        cversion,
                        want,
                    };
                }
            }
        }
    }
}

impl<'a, S: Session> IntoIterator for &'a SetPartitioner<S> {
    type Item = &'a String;
    type IntoIter = std::slice::Iter<'a, String>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<S: Session> Drop for SetPartitioner<S> {
    fn drop(&mut self) {
        if self.joined || !self.locks.is_empty() {
            if terminal_error(self.session.state()).is_some() {
                return;
            }
            let _ = self.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn default_partition_is_kazoos() {
        // kazoo: sorted(items)[i::len(workers)] with i the index in sorted(members)
        let items = s(&["c", "a", "e", "b", "d"]);
        let members = s(&["w2", "w0", "w1"]);
        assert_eq!(default_partition("w0", &members, &items), s(&["a", "d"]));
        assert_eq!(default_partition("w1", &members, &items), s(&["b", "e"]));
        assert_eq!(default_partition("w2", &members, &items), s(&["c"]));
        assert!(default_partition("nobody", &members, &items).is_empty());
    }

    #[test]
    fn shallow_party_identifiers() {
        assert_eq!(member_identifier("0123abcd-worker-1"), "worker-1");
        assert_eq!(member_identifier("0123abcd-"), "");
        assert_eq!(member_identifier("plain"), "plain");
    }

    #[test]
    fn uuids_are_hex_and_distinct() {
        let a = uuid_hex(7, "/p");
        let b = uuid_hex(7, "/p");
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
