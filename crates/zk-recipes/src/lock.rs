//! Locks: [`Lock`] (exclusive), [`WriteLock`] and [`ReadLock`] (shared), and [`Semaphore`].
//!
//! # Wire format (kazoo's `kazoo/recipe/lock.py`)
//!
//! A contender creates an ephemeral sequential node under the lock path, named
//! `<uuid4 hex>__lock__<seq>` ([`Lock`], [`WriteLock`]) or `<uuid4 hex>__rlock__<seq>`
//! ([`ReadLock`]), holding the contender's identifier (UTF-8). A contender holds the lock once
//! no node *excluding it* has a lower sequence: a [`Lock`] is excluded by `__lock__` nodes (and
//! by the patterns given to [`Lock::with_extra_lock_patterns`], as kazoo's
//! `extra_lock_patterns`), a [`WriteLock`] by `__lock__` and `__rlock__` nodes, a [`ReadLock`]
//! by `__lock__` nodes only. So a Rust [`Lock`] and a kazoo `Lock` on the same path exclude
//! each other, and a [`ReadLock`] shares the lock with kazoo readers.
//!
//! [`LockNaming::Curator`] selects Curator's names instead: `_c_<uuid>-lock-<seq>` for a
//! [`Lock`] (marker `lock-`, as Curator's `InterProcessMutex` and `zookeeper-client`'s
//! `LockPrefix::new_curator(path, "lock-")`), `_c_<uuid>-__WRIT__<seq>` and
//! `_c_<uuid>-__READ__<seq>` for the shared locks (Curator's `InterProcessReadWriteLock`).
//!
//! A [`Semaphore`] keeps `max_leases` as the decimal data of its path, takes a lease by creating
//! the ephemeral node `<path>/<uuid4 hex>` (data: the identifier) while holding the kazoo lock
//! `<path>-__lock__`, and admits a new lease while the path has fewer than `max_leases`
//! children — exactly kazoo's `Semaphore`.
//!
//! # Where these differ from kazoo (python-zk/kazoo issues)
//!
//! - Contenders are ordered by the integer sequence, including the negative numbers the server
//!   writes after 2^31 creations (#730, #731), compared by serial-number arithmetic relative to
//!   the contender's own node, so the wrap from `2147483647` to `-2147483648` keeps the order.
//! - A waiter watches only the nearest *lower* node that excludes it (#649, #650): no herd. A
//!   waiter whose predecessor was the lowest such node when it last looked takes the lock as
//!   soon as that node is deleted, without listing the children again.
//! - A release marks the node in the transaction that deletes it
//!   (`multi[setData(node, ""), delete(node)]`), so the waiter watching it sees a data change
//!   instead of a deletion. Only a release after holding makes that change, so the waiter
//!   knows nothing that excludes it is left below and takes the lock without listing again
//!   (when the predecessor's kind excludes at least what the waiter excludes). A deletion
//!   without the marker (an abandoned attempt, an expired session, a kazoo contender) makes
//!   the waiter list the children as kazoo does. Per contended acquisition: one create and one
//!   getChildren sent back to back ([`Session::create_and_list`], one round trip), one
//!   getData watch and the wait; release is that one multi. (So the data of
//!   a contender node is the recipe's: changing it by hand reads as a release.)
//! - A non-blocking attempt ([`Lock::try_acquire`]) on a held lock lists the children and
//!   returns without creating (and deleting) a node.
//! - A create that ends in `ConnectionLoss` (outcome unknown) is recovered by the node's unique
//!   prefix, and a found node is adopted only if its `ephemeralOwner` is this session
//!   (CURATOR-498).
//! - After a failed, timed-out or non-blocking attempt, the contender's node is deleted with
//!   retries until that succeeds or the session has ended (#732, #760): no node is left behind.
//! - Session loss is explicit: [`LockGuard::is_held`] is `false` once the session is gone,
//!   and [`LockGuard::release`] reports that the lock had been lost.
//! - Every holder gets a [`Fence`] (its node and its czxid as the token); fenced writes
//!   ([`LockGuard::write`]) fail once the holder's node is gone.

use std::any::TypeId;
use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::fence::{Fence, sequence_of};
use crate::session::{Session, SessionExt, join, wait_cancellable};
use crate::{CreateMode, CreateOptions, Error, Op, OpResult, SessionState, Stat};
use zk_proto::ErrorCode;
use zk_session::EventType;

/// How long dropping a [`LockGuard`] keeps retrying the delete of its node while the session
/// is disconnected. Past the session timeout the server deletes the node anyway.
const DROP_PATIENCE: Duration = Duration::from_secs(60);
/// Pause before retrying after a connection loss while the session still reports connected.
const RETRY_PAUSE: Duration = Duration::from_millis(2);

// ---------------------------------------------------------------------------------------------
// Unique prefixes

thread_local! {
    static UUID_COUNTER: Cell<u64> = const { Cell::new(0) };
    static THREAD_NONCE: Cell<u64> = const { Cell::new(0) };
}

/// Process-wide counter giving each thread of a real client its own nonce.
static THREAD_NONCES: AtomicU64 = AtomicU64::new(1);

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A random-looking 128-bit uuid4 for node prefixes, from sources the simulator controls: the
/// session id, the recipe's path and identifier, a per-thread counter and the thread's name.
/// A real client (any session type but the simulator's) also mixes in a per-thread nonce from a
/// process-wide counter, so threads sharing one session never draw the same prefix; the
/// simulator runs each session on its own task thread and stays deterministic.
pub(crate) fn uuid4<S: Session>(session: &S, salt: &str) -> u128 {
    let count = UUID_COUNTER.with(|c| {
        let v = c.get().wrapping_add(1);
        c.set(v);
        v
    });
    let nonce = if TypeId::of::<S>() == TypeId::of::<crate::sim::SimSession>() {
        0
    } else {
        THREAD_NONCE.with(|n| {
            if n.get() == 0 {
                n.set(THREAD_NONCES.fetch_add(1, Ordering::Relaxed));
            }
            n.get()
        })
    };
    let name = std::thread::current()
        .name()
        .map_or(0, |n| fnv(n.as_bytes()));
    let seed = splitmix(session.session_id() as u64)
        ^ splitmix(fnv(salt.as_bytes()).rotate_left(17))
        ^ splitmix(count.wrapping_mul(0x2545_f491_4f6c_dd1d))
        ^ splitmix(name.rotate_left(41))
        ^ splitmix(nonce.wrapping_add(0x5851_f42d_4c95_7f2d));
    let hi = splitmix(seed);
    let lo = splitmix(hi ^ seed.rotate_left(32));
    let mut v = (u128::from(hi) << 64) | u128::from(lo);
    // Version 4, variant 10xx, as uuid.uuid4() and java.util.UUID.randomUUID().
    v &= !(0xf_u128 << 76);
    v |= 0x4_u128 << 76;
    v &= !(0x3_u128 << 62);
    v |= 0x2_u128 << 62;
    v
}

/// `uuid.uuid4().hex`: 32 lowercase hex digits.
pub(crate) fn uuid_hex(v: u128) -> String {
    format!("{v:032x}")
}

/// `java.util.UUID.toString()`: 8-4-4-4-12.
fn uuid_dashed(v: u128) -> String {
    let h = uuid_hex(v);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

// ---------------------------------------------------------------------------------------------
// Shared helpers

fn terminal_error(state: SessionState) -> Option<Error> {
    match state {
        SessionState::Expired => Some(Error::SessionExpired),
        SessionState::Closed => Some(Error::Closed),
        SessionState::AuthFailed => Some(Error::AuthFailed),
        _ => None,
    }
}

/// Errors after which the same request may be sent again once the session is usable.
fn retryable(e: &Error) -> bool {
    matches!(e, Error::ConnectionLoss | Error::NotReadOnly)
}

/// After a connection loss: wait until the session's state changes (reconnected, or ended) or
/// the deadline passes. `Err` with the session's terminal error, or `Timeout` past the deadline;
/// `Ok` means "try again".
fn wait_usable<S: Session>(session: &S, deadline: Option<Instant>) -> Result<(), Error> {
    let state = session.state();
    if let Some(e) = terminal_error(state) {
        return Err(e);
    }
    if deadline.is_some_and(|d| session.now() >= d) {
        return Err(Error::Timeout);
    }
    if state == SessionState::Connected {
        // Already reconnected (or about to notice the loss): a short pause avoids spinning.
        session.sleep(RETRY_PAUSE);
    } else {
        session.wait_state(state, deadline);
    }
    Ok(())
}

/// Run `op` until it returns something other than a connection loss (or the session is
/// unusable past the deadline).
fn retry<S: Session, T>(
    session: &S,
    deadline: Option<Instant>,
    mut op: impl FnMut() -> Result<T, Error>,
) -> Result<T, Error> {
    loop {
        match op() {
            Err(e) if retryable(&e) => wait_usable(session, deadline)?,
            other => return other,
        }
    }
}

/// The position of `seq` relative to `anchor` in serial-number arithmetic: negative when
/// `seq` was issued before `anchor` (correct across the wrap at 2^31).
fn relative(seq: i64, anchor: i64) -> i32 {
    (seq as i32).wrapping_sub(anchor as i32)
}

/// Sort sequence numbers in issue order, across a wrap: start after the widest gap.
fn sort_by_sequence<T>(items: &mut [(i64, T)]) {
    items.sort_by_key(|(s, _)| *s);
    if items.len() < 2 {
        return;
    }
    let mut start = 0;
    let mut widest = 0u32;
    for i in 0..items.len() {
        let prev = items[(i + items.len() - 1) % items.len()].0 as i32;
        let gap = (items[i].0 as i32).wrapping_sub(prev) as u32;
        if gap > widest {
            widest = gap;
            start = i;
        }
    }
    items.rotate_left(start);
}

/// The sequence of `name` if it ends with one of `patterns` followed by a sequence number.
fn contender_sequence(name: &str, patterns: &[String]) -> Option<i64> {
    patterns.iter().find_map(|p| sequence_of(name, p))
}

fn decode(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

// ---------------------------------------------------------------------------------------------
// The guard

/// A held lock, read/write lock side or semaphore lease: the holder's own node and its
/// [`Fence`]. Dropping it releases (deletes the node) on a best-effort basis; call
/// [`LockGuard::release`] to learn whether the lock was still held until then.
#[must_use = "dropping the guard releases the lock at once"]
pub struct LockGuard<S: Session> {
    session: S,
    fence: Fence,
    sequence: Option<i64>,
    released: bool,
    /// Mark the node before deleting it (lock nodes; not semaphore leases).
    mark: bool,
}

impl<S: Session> std::fmt::Debug for LockGuard<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockGuard")
            .field("fence", &self.fence)
            .field("sequence", &self.sequence)
            .field("released", &self.released)
            .finish()
    }
}

impl<S: Session> LockGuard<S> {
    fn new(session: S, node: String, stat: &Stat, sequence: Option<i64>) -> LockGuard<S> {
        LockGuard {
            session,
            fence: Fence {
                node,
                token: stat.czxid,
            },
            mark: sequence.is_some(),
            sequence,
            released: false,
        }
    }

    /// The fence: the holder's node and a token (the node's czxid) that grows with every new
    /// holder, across sequence wraps and across deletions of the lock path.
    pub fn fence(&self) -> &Fence {
        &self.fence
    }

    /// The holder's node (full path).
    pub fn node(&self) -> &str {
        &self.fence.node
    }

    /// The fencing token ([`Fence::token`]).
    pub fn token(&self) -> i64 {
        self.fence.token
    }

    /// The node's sequence number (`None` for a semaphore lease, whose node has none).
    pub fn sequence(&self) -> Option<i64> {
        self.sequence
    }

    /// Whether the lock is still held: the session has not ended and the holder's node
    /// still exists and belongs to it. Asks the server; any doubt (a connection loss, an
    /// ended session) answers `false`.
    pub fn is_held(&self) -> bool {
        if self.released || terminal_error(self.session.state()).is_some() {
            return false;
        }
        match self.session.exists(&self.fence.node) {
            Ok(Some(stat)) => stat.ephemeral_owner == self.session.session_id(),
            _ => false,
        }
    }

    /// A fenced write: `ops` run atomically only while the holder's node exists
    /// ([`Fence::write`]); fails with [`Error::MultiFailed`] `{ index: 0, .. }` once the lock
    /// is lost ([`Fence::is_lost`]).
    pub fn write(&self, ops: Vec<Op>) -> Result<Vec<OpResult>, Error> {
        self.fence.write(&self.session, ops)
    }

    /// Release: delete the holder's node (retried across connection losses). `Ok` if the lock
    /// was held until now; [`Error::SessionExpired`] or [`Error::NoNode`] if it had already
    /// been lost (the node is gone either way).
    pub fn release(mut self) -> Result<(), Error> {
        self.released = true;
        release_node(&self.session, &self.fence.node, self.mark, None)
    }
}

impl<S: Session> Drop for LockGuard<S> {
    fn drop(&mut self) {
        if !self.released {
            self.released = true;
            let deadline = self.session.now() + DROP_PATIENCE;
            let _ = release_node(&self.session, &self.fence.node, self.mark, Some(deadline));
        }
    }
}

/// Delete the holder's node. A lock node is first marked (`multi[setData(node), delete(node)]`,
/// one transaction): the waiter watching it then sees its data change, which only a release
/// after holding causes, and takes the lock without listing the children again.
fn release_node<S: Session>(
    session: &S,
    node: &str,
    mark: bool,
    deadline: Option<Instant>,
) -> Result<(), Error> {
    let mut retried = false;
    loop {
        let result = if mark {
            session
                .multi(vec![
                    Op::set_data(node, &b""[..], None),
                    Op::delete(node, None),
                ])
                .map(|_| ())
        } else {
            session.delete(node, None)
        };
        match result {
            Ok(()) => return Ok(()),
            Err(Error::NoNode)
            | Err(Error::MultiFailed {
                code: ErrorCode::NoNode,
                ..
            }) => {
                // After a lost reply our own delete may have been applied.
                return if retried { Ok(()) } else { Err(Error::NoNode) };
            }
            Err(e) if retryable(&e) => {
                retried = true;
                wait_usable(session, deadline)?;
            }
            Err(e) => return Err(e),
        }
    }
}

/// What a contender of our recipe with this node name excludes at the least (its default,
/// without extra patterns): a release marker from it proves these are gone below it.
fn min_exclusion(name: &str) -> Option<&'static [&'static str]> {
    const KNOWN: [(&str, &[&str]); 5] = [
        ("__lock__", &["__lock__"]),
        ("__rlock__", &["__lock__"]),
        ("lock-", &["lock-"]),
        ("__WRIT__", &["__WRIT__", "__READ__"]),
        ("__READ__", &["__WRIT__"]),
    ];
    KNOWN
        .iter()
        .find(|(marker, _)| sequence_of(name, marker).is_some())
        .map(|(_, min)| *min)
}

// ---------------------------------------------------------------------------------------------
// The lock core shared by Lock, WriteLock and ReadLock

/// Node naming: kazoo's (the default) or Curator's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LockNaming {
    /// `<uuid4 hex>__lock__<seq>` / `<uuid4 hex>__rlock__<seq>` (kazoo).
    #[default]
    Kazoo,
    /// `_c_<uuid>-lock-<seq>` / `_c_<uuid>-__WRIT__<seq>` / `_c_<uuid>-__READ__<seq>`
    /// (Curator, `zookeeper-client`'s `LockPrefix::new_curator`).
    Curator,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Exclusive,
    Write,
    Read,
}

impl Kind {
    /// (own marker, markers that exclude this contender when lower)
    fn markers(self, naming: LockNaming) -> (&'static str, &'static [&'static str]) {
        match (naming, self) {
            (LockNaming::Kazoo, Kind::Exclusive) => ("__lock__", &["__lock__"]),
            (LockNaming::Kazoo, Kind::Write) => ("__lock__", &["__lock__", "__rlock__"]),
            (LockNaming::Kazoo, Kind::Read) => ("__rlock__", &["__lock__"]),
            (LockNaming::Curator, Kind::Exclusive) => ("lock-", &["lock-"]),
            (LockNaming::Curator, Kind::Write) => ("__WRIT__", &["__WRIT__", "__READ__"]),
            (LockNaming::Curator, Kind::Read) => ("__READ__", &["__WRIT__"]),
        }
    }
}

/// Deliberate bugs for the simulator's broken workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Sabotage {
    #[default]
    None,
    /// Take the lock without waiting for lower contenders.
    NoWait,
    /// Exclude nothing (a reader ignoring writers).
    IgnoreOthers,
}

#[derive(Debug)]
struct Core<S: Session> {
    session: S,
    path: String,
    data: Vec<u8>,
    kind: Kind,
    naming: LockNaming,
    marker: String,
    exclude: Vec<String>,
    extra: Vec<String>,
    sabotage: Sabotage,
    /// Set by `cancel()`; taken by the blocking acquire that sees it. Shared with the
    /// [`Semaphore`] whose inner lock this is.
    cancelled: Arc<AtomicBool>,
}

/// One attempt's node: its unique prefix, the node once known, and whether a create may have
/// been applied without our learning its name.
struct Attempt {
    prefix: String,
    node: Option<(String, Stat)>,
    maybe_created: bool,
}

impl<S: Session> Core<S> {
    fn new(session: S, path: &str, identifier: &str, kind: Kind) -> Core<S> {
        let mut core = Core {
            session,
            path: path.trim_end_matches('/').to_owned(),
            data: identifier.as_bytes().to_vec(),
            kind,
            naming: LockNaming::Kazoo,
            marker: String::new(),
            exclude: Vec::new(),
            extra: Vec::new(),
            sabotage: Sabotage::None,
            cancelled: Arc::default(),
        };
        if core.path.is_empty() {
            core.path = "/".to_owned();
        }
        core.configure();
        core
    }

    fn configure(&mut self) {
        let (marker, exclude) = self.kind.markers(self.naming);
        self.marker = marker.to_owned();
        self.exclude = exclude.iter().map(|s| (*s).to_owned()).collect();
        if self.sabotage == Sabotage::IgnoreOthers {
            self.exclude = Vec::new();
        }
        for p in &self.extra {
            if !self.exclude.contains(p) {
                self.exclude.push(p.clone());
            }
        }
    }

    fn new_attempt(&self) -> Attempt {
        let salt = format!("{}\u{0}{}", self.path, decode(&self.data));
        let id = uuid4(&self.session, &salt);
        let prefix = match self.naming {
            LockNaming::Kazoo => format!("{}{}", uuid_hex(id), self.marker),
            LockNaming::Curator => format!("_c_{}-{}", uuid_dashed(id), self.marker),
        };
        Attempt {
            prefix,
            node: None,
            maybe_created: false,
        }
    }

    fn acquire(
        &self,
        blocking: bool,
        deadline: Option<Instant>,
    ) -> Result<Option<LockGuard<S>>, Error> {
        let mut attempt = self.new_attempt();
        match self.run(&mut attempt, blocking, deadline) {
            Ok(true) => {
                let (name, stat) = attempt.node.take().ok_or(Error::InvalidUse("no node"))?;
                let seq = sequence_of(&name, &self.marker);
                Ok(Some(LockGuard::new(
                    self.session.clone(),
                    join(&self.path, &name),
                    &stat,
                    seq,
                )))
            }
            Ok(false) => {
                self.cleanup(&mut attempt);
                Ok(None)
            }
            Err(e) => {
                self.cleanup(&mut attempt);
                Err(e)
            }
        }
    }

    /// Create (or recover) the node, then wait until no lower node excludes it. `Ok(false)`:
    /// not first and not blocking.
    fn run(
        &self,
        attempt: &mut Attempt,
        blocking: bool,
        deadline: Option<Instant>,
    ) -> Result<bool, Error> {
        if !blocking && self.busy(deadline)? {
            // A try on a held lock: fail without creating (and deleting) a node.
            return Ok(false);
        }
        'list: loop {
            if blocking && self.cancelled.swap(false, Ordering::SeqCst) {
                return Err(Error::Cancelled);
            }
            // A fresh create comes with the listing sent right behind it.
            let mut listed = None;
            let (name, _) = match &attempt.node {
                Some(n) => n.clone(),
                None => {
                    let (n, children) = self.create_node(attempt, deadline)?;
                    attempt.node = Some(n.clone());
                    listed = children;
                    n
                }
            };
            let own = sequence_of(&name, &self.marker)
                .ok_or_else(|| Error::Protocol(format!("lock node without a sequence: {name}")))?;
            let children = match listed {
                Some(c) => c,
                None => match retry(&self.session, deadline, || {
                    self.session.get_children(&self.path)
                }) {
                    Ok((c, _)) => c,
                    Err(Error::NoNode) => Vec::new(),
                    Err(e) => return Err(e),
                },
            };
            if !children.contains(&name) {
                // Our node is gone: the session ended (its ephemerals went with it), or the
                // node or the whole path was deleted under us. Start over with a new node.
                if let Some(e) = terminal_error(self.session.state()) {
                    return Err(e);
                }
                *attempt = self.new_attempt();
                continue 'list;
            }
            if self.sabotage == Sabotage::NoWait {
                return Ok(true);
            }
            // Lower contenders that exclude us, nearest last.
            let mut lower: Vec<(i32, &String)> = children
                .iter()
                .filter(|c| **c != name)
                .filter_map(|c| {
                    let seq = contender_sequence(c, &self.exclude)?;
                    let rel = relative(seq, own);
                    (rel < 0).then_some((rel, c))
                })
                .collect();
            if lower.is_empty() {
                return Ok(true);
            }
            if !blocking {
                return Ok(false);
            }
            lower.sort_unstable();
            let pred_name = lower[lower.len() - 1].1.as_str();
            let pred = join(&self.path, pred_name);
            // If the predecessor is the only lower node that excludes us, its deletion hands
            // us the lock: every node created later has a higher sequence.
            let pred_is_lowest = lower.len() == 1;
            loop {
                let watch = match retry(&self.session, deadline, || {
                    self.session.get_data_watch(&pred)
                }) {
                    Ok((_, _, w)) => w,
                    Err(Error::NoNode) if pred_is_lowest => return Ok(true),
                    Err(Error::NoNode) => continue 'list,
                    Err(e) => return Err(e),
                };
                match wait_cancellable(&self.session, &watch, deadline, &self.cancelled) {
                    Ok(Some(ev)) if ev.event_type == EventType::NodeDeleted => {
                        if pred_is_lowest {
                            return Ok(true);
                        }
                        continue 'list;
                    }
                    // The predecessor's release marker: it held the lock, so nothing that
                    // excludes us is left below it.
                    Ok(Some(ev))
                        if ev.event_type == EventType::NodeDataChanged
                            && self.trusts_release_of(pred_name) =>
                    {
                        return Ok(true);
                    }
                    // Data changed (or a spurious event): watch the same node again.
                    Ok(Some(_)) => {}
                    Ok(None) => return Err(Error::Timeout),
                    Err(Error::Cancelled) => return Err(Error::Cancelled),
                    Err(e) if retryable(&e) => wait_usable(&self.session, deadline)?,
                    // The watch ended without an event while the session lives on (a client
                    // that dropped it): look again rather than fail.
                    Err(_) if terminal_error(self.session.state()).is_none() => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }

    /// Whether a contender that excludes us exists now (for a try, before creating a node).
    fn busy(&self, deadline: Option<Instant>) -> Result<bool, Error> {
        match retry(&self.session, deadline, || {
            self.session.get_children(&self.path)
        }) {
            Ok((children, _)) => Ok(self.sabotage != Sabotage::NoWait
                && children
                    .iter()
                    .any(|c| contender_sequence(c, &self.exclude).is_some())),
            Err(Error::NoNode) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether a release marker on `pred` (a data change, which only our recipe's release makes,
    /// in the same transaction as the delete) proves that nothing excluding us is left below
    /// it: `pred`'s kind must exclude at least everything we exclude (no extra patterns).
    fn trusts_release_of(&self, pred: &str) -> bool {
        self.extra.is_empty()
            && min_exclusion(pred)
                .is_some_and(|min| self.exclude.iter().all(|e| min.contains(&e.as_str())))
    }

    /// Create the contender node, recovering an ambiguous create by prefix and owner. A
    /// fresh create also lists the lock's children, in the same round trip; `None` when
    /// that listing failed or the node was recovered (the caller lists them itself).
    #[allow(clippy::type_complexity)]
    fn create_node(
        &self,
        attempt: &mut Attempt,
        deadline: Option<Instant>,
    ) -> Result<((String, Stat), Option<Vec<String>>), Error> {
        let options = CreateOptions::new(CreateMode::EphemeralSequential);
        loop {
            if attempt.maybe_created {
                match retry(&self.session, deadline, || self.find_own(&attempt.prefix))? {
                    Some(found) => return Ok((found, None)),
                    None => attempt.maybe_created = false,
                }
            }
            let path = join(&self.path, &attempt.prefix);
            match self
                .session
                .create_and_list(&path, &self.data, &options, &self.path)
            {
                Ok(((created, stat), listed)) => {
                    let listed = listed.ok().map(|(children, _)| children);
                    return Ok(((base_name(&created).to_owned(), stat), listed));
                }
                Err(Error::ConnectionLoss) => {
                    attempt.maybe_created = true;
                    wait_usable(&self.session, deadline)?;
                }
                Err(Error::NotReadOnly) => wait_usable(&self.session, deadline)?,
                Err(Error::NoNode) => {
                    retry(&self.session, deadline, || {
                        self.session.ensure_path(&self.path)
                    })?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Our node by its unique prefix, only if this session owns it (CURATOR-498).
    fn find_own(&self, prefix: &str) -> Result<Option<(String, Stat)>, Error> {
        let children = match self.session.get_children(&self.path) {
            Ok((c, _)) => c,
            Err(Error::NoNode) => return Ok(None),
            Err(e) => return Err(e),
        };
        for child in children.into_iter().filter(|c| c.starts_with(prefix)) {
            if let Some(stat) = self.session.exists(&join(&self.path, &child))? {
                if stat.ephemeral_owner == self.session.session_id() {
                    return Ok(Some((child, stat)));
                }
            }
        }
        Ok(None)
    }

    /// Delete the attempt's node, retried until that succeeds or the session has ended (its
    /// ephemerals then go with it). Finds the node by prefix after an ambiguous create.
    fn cleanup(&self, attempt: &mut Attempt) {
        loop {
            let name = match &attempt.node {
                Some((n, _)) => n.clone(),
                None if attempt.maybe_created => match self.find_own(&attempt.prefix) {
                    Ok(Some((n, stat))) => {
                        attempt.node = Some((n.clone(), stat));
                        n
                    }
                    Ok(None) => return,
                    Err(e) if retryable(&e) => {
                        if wait_usable(&self.session, None).is_err() {
                            return;
                        }
                        continue;
                    }
                    Err(_) => return,
                },
                None => return,
            };
            match self.session.delete(&join(&self.path, &name), None) {
                Ok(()) | Err(Error::NoNode) => {
                    attempt.node = None;
                    attempt.maybe_created = false;
                    return;
                }
                Err(e) if retryable(&e) => {
                    if wait_usable(&self.session, None).is_err() {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
    }

    fn contenders(&self) -> Result<Vec<String>, Error> {
        let mut patterns = self.exclude.clone();
        if !patterns.contains(&self.marker) {
            patterns.push(self.marker.clone());
        }
        let children = match self.session.get_children(&self.path) {
            Ok((c, _)) => c,
            Err(Error::NoNode) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut nodes: Vec<(i64, String)> = children
            .into_iter()
            .filter_map(|c| contender_sequence(&c, &patterns).map(|s| (s, c)))
            .collect();
        sort_by_sequence(&mut nodes);
        let mut out = Vec::with_capacity(nodes.len());
        for (_, node) in nodes {
            match self.session.get_data(&join(&self.path, &node)) {
                Ok((data, _)) => out.push(decode(&data)),
                Err(Error::NoNode) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

macro_rules! lock_api {
    ($name:ident, $kind:expr, $what:literal) => {
        impl<S: Session> $name<S> {
            #[doc = concat!("A ", $what, " at `path` for `session`; `identifier` is stored in the")]
            /// contender's node (what [`Self::contenders`] returns).
            pub fn new(session: S, path: &str, identifier: &str) -> Self {
                $name {
                    core: Core::new(session, path, identifier, $kind),
                }
            }

            /// Use kazoo's node names (the default) or Curator's.
            pub fn with_naming(mut self, naming: LockNaming) -> Self {
                self.core.naming = naming;
                self.core.configure();
                self
            }

            /// Also treat nodes named `<anything><pattern><seq>` as contenders that exclude
            /// this one when lower (kazoo's `extra_lock_patterns`, e.g. `"lock-"` to exclude
            /// Curator-style contenders on the same path).
            pub fn with_extra_lock_patterns<I, P>(mut self, patterns: I) -> Self
            where
                I: IntoIterator<Item = P>,
                P: Into<String>,
            {
                self.core.extra.extend(patterns.into_iter().map(Into::into));
                self.core.configure();
                self
            }

            /// The lock path.
            pub fn path(&self) -> &str {
                &self.core.path
            }

            /// Block until the lock is held, or fail with [`Error::Timeout`] once `timeout`
            /// has passed (`None`: wait forever). Connection losses are ridden out; an ended
            /// session fails the call. On failure the contender's node is deleted (retried
            /// until that succeeds or the session has ended).
            pub fn acquire(&self, timeout: Option<Duration>) -> Result<LockGuard<S>, Error> {
                let deadline = self.core.session.deadline(timeout);
                self.core.acquire(true, deadline)?.ok_or(Error::Timeout)
            }

            /// Take the lock only if that needs no waiting: `Ok(None)` if another contender
            /// is ahead. A held lock is seen in a listing before any node is created; if a
            /// contender slips in between, this attempt's node is deleted again (retried until
            /// that succeeds).
            pub fn try_acquire(&self) -> Result<Option<LockGuard<S>>, Error> {
                self.core.acquire(false, None)
            }

            /// The identifiers of the current contenders (every node this lock or its
            /// counterpart recognises), ordered by sequence; the first holds the lock.
            pub fn contenders(&self) -> Result<Vec<String>, Error> {
                self.core.contenders()
            }

            /// Cancel a blocking [`Self::acquire`] (kazoo's `cancel()`), typically from
            /// another thread: it fails with [`Error::Cancelled`] within about 100 ms (once
            /// connected, if the session is reconnecting), and its node is deleted. As in
            /// kazoo, a cancel that finds no acquire in progress cancels the next blocking
            /// one; [`Self::try_acquire`] ignores it. A held lock is not affected.
            pub fn cancel(&self) {
                self.core.cancelled.store(true, Ordering::SeqCst);
            }

            #[allow(dead_code)]
            pub(crate) fn sabotage(mut self, sabotage: Sabotage) -> Self {
                self.core.sabotage = sabotage;
                self.core.configure();
                self
            }
        }
    };
}

/// An exclusive lock (kazoo's `Lock`).
///
/// ```no_run
/// # fn demo(client: zk_session::Client) -> Result<(), zk_recipes::Error> {
/// use std::time::Duration;
/// use zk_recipes::lock::Lock;
///
/// let lock = Lock::new(client, "/app/lock", "worker-1");
/// let guard = lock.acquire(Some(Duration::from_secs(10)))?;
/// // Writes that must not land after the lock is lost go through the fence:
/// guard.write(vec![zk_recipes::Op::set_data("/app/state", &b"v"[..], None)])?;
/// guard.release()?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Lock<S: Session> {
    core: Core<S>,
}
lock_api!(Lock, Kind::Exclusive, "exclusive lock");

/// The write side of a shared lock (kazoo's `WriteLock`): excluded by every lower writer and
/// reader on the same path.
#[derive(Debug)]
pub struct WriteLock<S: Session> {
    core: Core<S>,
}
lock_api!(WriteLock, Kind::Write, "write lock");

/// The read side of a shared lock (kazoo's `ReadLock`): excluded only by lower writers, so
/// readers (ours and kazoo's) hold it together. A waiting reader watches the nearest lower
/// writer.
#[derive(Debug)]
pub struct ReadLock<S: Session> {
    core: Core<S>,
}
lock_api!(ReadLock, Kind::Read, "read lock");

// ---------------------------------------------------------------------------------------------
// Semaphore

/// Python's `repr()` of a bytes value without the surrounding `b''`, as kazoo ends up writing
/// an identifier passed as bytes (`str(b"id")` is `"b'id'"`).
fn python_bytes_repr(bytes: &[u8]) -> String {
    let quote = if bytes.contains(&b'\'') && !bytes.contains(&b'"') {
        '"'
    } else {
        '\''
    };
    let mut s = String::from("b");
    s.push(quote);
    for &b in bytes {
        match b {
            b'\\' => s.push_str("\\\\"),
            b'\t' => s.push_str("\\t"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            _ if char::from(b) == quote => {
                s.push('\\');
                s.push(quote);
            }
            0x20..=0x7e => s.push(char::from(b)),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s.push(quote);
    s
}

/// A counting semaphore (kazoo's `Semaphore`): at most `max_leases` holders at once.
///
/// The path's data holds `max_leases` (checked against this instance's on first use: a
/// different stored number fails with [`Error::InvalidUse`]); leases are the ephemeral nodes
/// `<path>/<uuid4 hex>`; a lease is taken while holding the kazoo lock `<path>-__lock__`, and
/// the create is fenced by that lock's node, so a contender that lost the inner lock cannot
/// add a lease past the limit.
#[derive(Debug)]
pub struct Semaphore<S: Session> {
    session: S,
    path: String,
    data: Vec<u8>,
    max_leases: u32,
    lock_path: String,
    checked: AtomicBool,
    sabotage: bool,
    /// Set by [`Semaphore::cancel`]; its inner lock shares it.
    cancelled: Arc<AtomicBool>,
}

impl<S: Session> Semaphore<S> {
    /// A semaphore at `path` allowing `max_leases` holders; `identifier` is stored in the
    /// lease node (what [`Semaphore::lease_holders`] returns).
    pub fn new(session: S, path: &str, identifier: &str, max_leases: u32) -> Semaphore<S> {
        let path = path.trim_end_matches('/').to_owned();
        Semaphore {
            lock_path: format!("{path}-__lock__"),
            session,
            path,
            data: identifier.as_bytes().to_vec(),
            max_leases,
            checked: AtomicBool::new(false),
            sabotage: false,
            cancelled: Arc::default(),
        }
    }

    /// The semaphore path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The number of leases this instance allows.
    pub fn max_leases(&self) -> u32 {
        self.max_leases
    }

    #[allow(dead_code)]
    pub(crate) fn sabotage(mut self) -> Self {
        self.sabotage = true;
        self
    }

    /// Block until a lease is held, or fail with [`Error::Timeout`] once `timeout` has passed
    /// (`None`: wait forever).
    pub fn acquire(&self, timeout: Option<Duration>) -> Result<LockGuard<S>, Error> {
        let deadline = self.session.deadline(timeout);
        self.acquire_inner(true, deadline)?.ok_or(Error::Timeout)
    }

    /// Take a lease only if one is free now (and the inner lock is free): `Ok(None)` otherwise.
    pub fn try_acquire(&self) -> Result<Option<LockGuard<S>>, Error> {
        self.acquire_inner(false, None)
    }

    /// Cancel a blocking [`Semaphore::acquire`] (kazoo's `cancel()`), typically from another
    /// thread: it fails with [`Error::Cancelled`] within about 100 ms (once connected, if the
    /// session is reconnecting), and leaves no node behind. A cancel that finds no acquire
    /// in progress cancels the next blocking one, as kazoo's `Lock` does (kazoo's
    /// `Semaphore` forgets such a cancel, and so can lose one made just as an acquire
    /// starts); [`Semaphore::try_acquire`] ignores it. A held lease is not affected.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
    }

    /// The identifiers of the current lease holders, unordered.
    pub fn lease_holders(&self) -> Result<Vec<String>, Error> {
        let children = match self.session.get_children(&self.path) {
            Ok((c, _)) => c,
            Err(Error::NoNode) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::with_capacity(children.len());
        for child in children {
            match self.session.get_data(&join(&self.path, &child)) {
                Ok((data, _)) => out.push(decode(&data)),
                Err(Error::NoNode) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Create the path holding `max_leases`, or check the number it holds (non-numeric data is
    /// ignored, as kazoo does).
    fn ensure_path(&self, deadline: Option<Instant>) -> Result<(), Error> {
        if self.checked.load(Ordering::Relaxed) {
            return Ok(());
        }
        let leases = self.max_leases.to_string();
        loop {
            match retry(&self.session, deadline, || {
                self.session
                    .create(&self.path, leases.as_bytes(), &CreateOptions::persistent())
            }) {
                Ok(_) => break,
                Err(Error::NoNode) => {
                    let parent = crate::session::parent_of(&self.path).to_owned();
                    retry(&self.session, deadline, || {
                        self.session.ensure_path(&parent)
                    })?;
                }
                Err(Error::NodeExists) => {
                    let (data, _) = match retry(&self.session, deadline, || {
                        self.session.get_data(&self.path)
                    }) {
                        Ok(v) => v,
                        Err(Error::NoNode) => continue,
                        Err(e) => return Err(e),
                    };
                    if let Some(stored) = std::str::from_utf8(&data)
                        .ok()
                        .and_then(|s| s.trim().parse::<i64>().ok())
                    {
                        if stored != i64::from(self.max_leases) {
                            return Err(Error::InvalidUse(
                                "inconsistent max leases: the semaphore path stores another number",
                            ));
                        }
                    }
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        self.checked.store(true, Ordering::Relaxed);
        Ok(())
    }

    fn acquire_inner(
        &self,
        blocking: bool,
        deadline: Option<Instant>,
    ) -> Result<Option<LockGuard<S>>, Error> {
        self.ensure_path(deadline)?;
        let name = uuid_hex(uuid4(&self.session, &self.path));
        let lease = join(&self.path, &name);
        let mut maybe_created = false;
        let result = loop {
            let mut inner = Lock::new(
                self.session.clone(),
                &self.lock_path,
                &if self.data.is_empty() {
                    String::new()
                } else {
                    python_bytes_repr(&self.data)
                },
            );
            inner.core.cancelled = self.cancelled.clone();
            let guard = if blocking {
                let left = deadline.map(|d| d.saturating_duration_since(self.session.now()));
                match inner.acquire(left) {
                    Ok(g) => g,
                    Err(e) => break Err(e),
                }
            } else {
                match inner.try_acquire() {
                    Ok(Some(g)) => g,
                    Ok(None) => break Ok(None),
                    Err(e) => break Err(e),
                }
            };
            let r = self.take_lease(&guard, &lease, &mut maybe_created, blocking, deadline);
            let _ = guard.release();
            match r {
                // The inner lock was lost before the lease was taken: contend again.
                Err(e) if Fence::is_lost(&e) && terminal_error(self.session.state()).is_none() => {
                    continue;
                }
                other => break other,
            }
        };
        match result {
            Ok(Some(stat)) => Ok(Some(LockGuard::new(
                self.session.clone(),
                lease,
                &stat,
                None,
            ))),
            other => {
                if maybe_created {
                    self.cleanup(&lease);
                }
                other.map(|_| None)
            }
        }
    }

    /// Holding the inner lock: take a lease if fewer than `max_leases` exist, else wait for
    /// the lease pool to change. `Ok(None)`: none free and not blocking.
    fn take_lease(
        &self,
        inner: &LockGuard<S>,
        lease: &str,
        maybe_created: &mut bool,
        blocking: bool,
        deadline: Option<Instant>,
    ) -> Result<Option<Stat>, Error> {
        let name = base_name(lease);
        let limit = if self.sabotage {
            self.max_leases as usize + 1
        } else {
            self.max_leases as usize
        };
        loop {
            let (children, _, watch) = match retry(&self.session, deadline, || {
                self.session.get_children_watch(&self.path)
            }) {
                Ok(v) => v,
                Err(Error::NoNode) => {
                    self.checked.store(false, Ordering::Relaxed);
                    self.ensure_path(deadline)?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if children.iter().any(|c| c == name) {
                // An earlier, ambiguous create of ours was applied.
                match retry(&self.session, deadline, || self.session.exists(lease))? {
                    Some(stat) if stat.ephemeral_owner == self.session.session_id() => {
                        return Ok(Some(stat));
                    }
                    _ => {
                        return Err(Error::Protocol(format!(
                            "lease node {lease} belongs to another session"
                        )));
                    }
                }
            }
            if children.len() < limit {
                // From here on a failure must look for the lease and delete it.
                *maybe_created = true;
                let create = Op::create(lease, self.data.clone(), CreateOptions::ephemeral());
                match inner.write(vec![create]) {
                    Ok(results) => {
                        if let Some(OpResult::Create {
                            stat: Some(stat), ..
                        }) = results.first()
                        {
                            return Ok(Some(*stat));
                        }
                        // The lease is ours (a server may answer a create in a multi without
                        // its Stat): fetch the czxid, past any deadline.
                        match retry(&self.session, None, || self.session.exists(lease))? {
                            Some(stat) => return Ok(Some(stat)),
                            None => continue,
                        }
                    }
                    Err(e) if retryable(&e) => {
                        wait_usable(&self.session, deadline)?;
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            if !blocking {
                return Ok(None);
            }
            match wait_cancellable(&self.session, &watch, deadline, &self.cancelled) {
                Ok(Some(_)) => {}
                Ok(None) => return Err(Error::Timeout),
                Err(Error::Cancelled) => return Err(Error::Cancelled),
                Err(e) if retryable(&e) => wait_usable(&self.session, deadline)?,
                Err(_) if terminal_error(self.session.state()).is_none() => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Delete our lease node after a failed attempt whose create may have been applied.
    fn cleanup(&self, lease: &str) {
        loop {
            match self.session.exists(lease) {
                Ok(Some(stat)) if stat.ephemeral_owner == self.session.session_id() => {}
                Ok(_) => return,
                Err(e) if retryable(&e) => {
                    if wait_usable(&self.session, None).is_err() {
                        return;
                    }
                    continue;
                }
                Err(_) => return,
            }
            match self.session.delete(lease, None) {
                Ok(()) | Err(Error::NoNode) => return,
                Err(e) if retryable(&e) => {
                    if wait_usable(&self.session, None).is_err() {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_order_across_the_wrap() {
        assert!(relative(5, 7) < 0);
        assert!(relative(-3, -1) < 0);
        assert!(relative(-1, 5) < 0);
        assert!(relative(i64::from(i32::MAX), i64::from(i32::MIN)) < 0);
        assert!(relative(i64::from(i32::MIN), i64::from(i32::MAX)) > 0);
    }

    #[test]
    fn sorting_across_the_wrap() {
        let mut v = vec![
            (i64::from(i32::MIN) + 1, "c"),
            (i64::from(i32::MAX), "b"),
            (i64::from(i32::MIN), "c0"),
            (i64::from(i32::MAX) - 1, "a"),
        ];
        sort_by_sequence(&mut v);
        let names: Vec<_> = v.iter().map(|x| x.1).collect();
        assert_eq!(names, ["a", "b", "c0", "c"]);
        let mut plain = vec![(3, "3"), (-1, "-1"), (10, "10"), (-7, "-7")];
        sort_by_sequence(&mut plain);
        let names: Vec<_> = plain.iter().map(|x| x.1).collect();
        assert_eq!(names, ["-7", "-1", "3", "10"]);
    }

    #[test]
    fn contender_patterns() {
        let p = vec!["__lock__".to_owned(), "lock-".to_owned()];
        assert_eq!(contender_sequence("abc__lock__0000000003", &p), Some(3));
        assert_eq!(contender_sequence("_c_1-2-lock-0000000004", &p), Some(4));
        assert_eq!(contender_sequence("abc__rlock__0000000005", &p), None);
        assert_eq!(contender_sequence("abc__lock__-000000005", &p), Some(-5));
        assert_eq!(contender_sequence("leases", &p), None);
    }

    #[test]
    fn python_repr() {
        assert_eq!(python_bytes_repr(b"id"), "b'id'");
        assert_eq!(python_bytes_repr(b"it's"), "b\"it's\"");
        assert_eq!(python_bytes_repr(b"a\\b\n\x01"), "b'a\\\\b\\n\\x01'");
    }

    #[test]
    fn uuid_shapes() {
        let v = 0x0123_4567_89ab_cdef_0123_4567_89ab_cdef_u128;
        assert_eq!(uuid_hex(v).len(), 32);
        assert_eq!(uuid_dashed(v), "01234567-89ab-cdef-0123-456789abcdef");
    }
}
