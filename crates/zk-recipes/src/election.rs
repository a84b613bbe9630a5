//! Leader election (kazoo's `election.py`), on kazoo's lock nodes, with a fence and an explicit
//! loss of leadership.
//!
//! Every contender creates an ephemeral sequential node `<uuid>__lock__<seq>` under the
//! election path, with its identifier as the node's data — the nodes of kazoo's `Lock`, which
//! kazoo's `Election` is built on, so Rust and kazoo contenders run in the same election. The
//! contender with the lowest sequence number leads and runs the leader function; the others
//! each watch only the contender just before them (no herd effect).
//!
//! Where this does better than kazoo:
//! - contenders are ordered by the integer sequence number, negative ones (past 2^31)
//!   included (kazoo #730, #731 sort the text);
//! - a create whose reply was lost is recovered by the uuid prefix *and* an `ephemeralOwner`
//!   check against this session (CURATOR-498): a node of another session is never adopted;
//! - a contender that gives up (cancelled, timed out) deletes its node, retrying through
//!   connection loss until it is gone (kazoo #732, #760);
//! - the leader is told when it loses leadership ([`Leadership::is_leader`],
//!   [`Leadership::wait_lost`]) and holds a fence ([`Leadership::fence`],
//!   [`Leadership::write`]): a leader that stalls past its session cannot write after the
//!   next one.
//!
//! ```no_run
//! # fn demo<S: zk_recipes::Session>(session: S) -> Result<(), zk_recipes::Error> {
//! use zk_recipes::election::Election;
//! use zk_recipes::{CreateMode, CreateOptions, Op};
//!
//! let election = Election::new(session, "/app/leader", "worker-1");
//! election.run(|leadership| {
//!     // Writes through the fence fail once leadership is lost.
//!     leadership.write(vec![Op::create(
//!         "/app/log/e-",
//!         "leader wrote this",
//!         CreateOptions::new(CreateMode::PersistentSequential),
//!     )])
//! })?;
//! # Ok(()) }
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use zk_proto::EventType;

use crate::fence::{Fence, sequence_of};
use crate::session::{Session, SessionExt, join, wait_cancellable};
use crate::watchers::{
    Backoff, delete_until_gone, node_held, owned_by, retrying, uuid_hex, wait_node_gone,
};
use crate::{CreateMode, CreateOptions, Error, Op, OpResult, SessionState};

/// kazoo's lock node marker: contender nodes are `<uuid>__lock__<seq>`.
pub const LOCK_NODE_NAME: &str = "__lock__";

/// How long cleanup (deleting our node after giving up or leading) keeps retrying through
/// connection loss; the node is ephemeral, so it goes with the session at the latest.
const CLEANUP_BUDGET: Duration = Duration::from_secs(60);

/// A leader election on `path` (kazoo's `Election`).
///
/// [`Election::run`] contends, runs the function once elected, and leaves the election when
/// it returns. [`Election::cancel`] (from another thread) withdraws a contender that is still
/// waiting; as in kazoo it does not interrupt a running leader function. Tied to one session:
/// once it expires, every call fails with [`Error::SessionExpired`]; contend again with a new
/// session and a new `Election`.
#[derive(Debug)]
pub struct Election<S: Session> {
    session: S,
    path: String,
    identifier: String,
    /// `<uuid>__lock__`: the name we create, before the server's sequence suffix.
    prefix: String,
    cancelled: AtomicBool,
    /// Deliberately broken ordering for the simulator's broken variant: contenders sorted by
    /// their whole name (uuid first) instead of by sequence number.
    by_name: bool,
}

/// Whether a leader still leads, as far as this process can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeadershipState {
    /// Connected, and the leader's node has not been seen gone.
    Leader,
    /// Disconnected: the session (and with it leadership) may be lost; it is kept if the
    /// session reconnects in time. Writes through the fence fail meanwhile.
    Suspended,
    /// Lost for good: the session ended or the leader's node is gone.
    Lost,
}

/// Handed to the leader function: the fence of this term of leadership, and whether it lasts.
#[derive(Debug)]
pub struct Leadership<'a, S: Session> {
    session: &'a S,
    fence: Fence,
    lost: AtomicBool,
}

impl<S: Session> Election<S> {
    /// An election on `path`; `identifier` is this contender's node data, what
    /// [`Election::contenders`] lists (kazoo's `identifier`, empty if `None` there).
    pub fn new(session: S, path: &str, identifier: &str) -> Election<S> {
        let path = path.trim_end_matches('/');
        let path = if path.is_empty() { "/" } else { path };
        let uuid = uuid_hex(&session, path, &format!("election:{identifier}"));
        Election {
            prefix: format!("{uuid}{LOCK_NODE_NAME}"),
            session,
            path: path.to_owned(),
            identifier: identifier.to_owned(),
            cancelled: AtomicBool::new(false),
            by_name: false,
        }
    }

    /// The deliberately broken variant for the simulator: orders contenders by name, so a
    /// newcomer whose uuid sorts first takes over from a sitting leader.
    pub(crate) fn broken_name_order(mut self) -> Election<S> {
        self.by_name = true;
        self
    }

    /// The election path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// This contender's identifier.
    pub fn identifier(&self) -> &str {
        &self.identifier
    }

    /// The session this election runs on.
    pub fn session(&self) -> &S {
        &self.session
    }

    /// Contend; once elected, run `func` as leader and leave the election when it returns.
    /// `Ok(Some(result))` after leading; `Ok(None)` when cancelled before being elected.
    /// Blocks until then; connection loss is retried; the session's end is an error.
    pub fn run<T>(&self, func: impl FnOnce(&Leadership<'_, S>) -> T) -> Result<Option<T>, Error> {
        self.run_within(None, func)
    }

    /// [`Election::run`], giving up with [`Error::Timeout`] (and withdrawing) when not elected
    /// within `timeout`.
    pub fn run_within<T>(
        &self,
        timeout: Option<Duration>,
        func: impl FnOnce(&Leadership<'_, S>) -> T,
    ) -> Result<Option<T>, Error> {
        let deadline = self.session.deadline(timeout);
        let Some(fence) = self.contend(deadline)? else {
            return Ok(None);
        };
        let node = fence.node.clone();
        // Leave the election even if `func` panics.
        let guard = LeaveOnDrop {
            session: &self.session,
            node: Some(node),
        };
        let leadership = Leadership {
            session: &self.session,
            fence,
            lost: AtomicBool::new(false),
        };
        let result = func(&leadership);
        guard.leave()?;
        Ok(Some(result))
    }

    /// Withdraw: a waiting [`Election::run`] returns `Ok(None)` (within about 100 ms) and its
    /// node is deleted. A running leader function is not interrupted; as in kazoo, a cancel
    /// that finds no waiting contender cancels the next [`Election::run`].
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
    }

    /// The identifiers of the current contenders, the leader first (kazoo's `contenders()`).
    pub fn contenders(&self) -> Result<Vec<String>, Error> {
        self.session.ensure_path(&self.path)?;
        let (children, _) = self.session.get_children(&self.path)?;
        let mut out = Vec::new();
        for (_, name) in self.order(children) {
            match self.session.get_data(&join(&self.path, &name)) {
                Ok((data, _)) => out.push(String::from_utf8_lossy(&data).into_owned()),
                Err(Error::NoNode) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// The contender nodes among `children`, in election order.
    fn order(&self, children: Vec<String>) -> Vec<(i64, String)> {
        let mut contenders: Vec<(i64, String)> = children
            .into_iter()
            .filter_map(|c| sequence_of(&c, LOCK_NODE_NAME).map(|s| (s, c)))
            .collect();
        if self.by_name {
            contenders.sort_by(|a, b| a.1.cmp(&b.1));
        } else {
            contenders.sort();
        }
        contenders
    }

    fn take_cancel(&self) -> bool {
        self.cancelled.swap(false, Ordering::SeqCst)
    }

    /// Wait to be elected. `Ok(None)`: cancelled. Gives up (deleting our node) on a cancel,
    /// the deadline or an error.
    fn contend(&self, deadline: Option<Instant>) -> Result<Option<Fence>, Error> {
        if self.take_cancel() {
            return Ok(None);
        }
        let mut node: Option<String> = None;
        let result = self.contend_inner(deadline, &mut node);
        match &result {
            Ok(Some(_)) => {}
            _ => {
                if let Some(n) = node {
                    let until = self.session.now() + CLEANUP_BUDGET;
                    let cleanup =
                        delete_until_gone(&self.session, &join(&self.path, &n), Some(until));
                    if let (Ok(_), Err(e)) = (&result, cleanup) {
                        return Err(e);
                    }
                }
            }
        }
        result
    }

    fn contend_inner(
        &self,
        deadline: Option<Instant>,
        node: &mut Option<String>,
    ) -> Result<Option<Fence>, Error> {
        let mut backoff = Backoff::new();
        loop {
            if self.take_cancel() {
                return Ok(None);
            }
            if deadline.is_some_and(|d| self.session.now() >= d) {
                return Err(Error::Timeout);
            }
            // A fresh create comes with the listing sent right behind it.
            let mut listed = None;
            let own = match node {
                Some(n) => n.clone(),
                None => {
                    let (n, children) = self.create_node(deadline)?;
                    *node = Some(n.clone());
                    listed = children;
                    n
                }
            };
            let children = match listed {
                Some(c) => c,
                None => match self.session.get_children(&self.path) {
                    Ok((c, _)) => c,
                    Err(e) => {
                        if !backoff.wait(&self.session, &e, deadline)? {
                            return Err(Error::Timeout);
                        }
                        continue;
                    }
                },
            };
            let contenders = self.order(children);
            let Some(at) = contenders.iter().position(|(_, n)| *n == own) else {
                // Our node is gone while the session lives (deleted by someone): create
                // another, as kazoo does.
                *node = None;
                continue;
            };
            let own_seq = contenders[at].0;
            if at == 0 {
                return Ok(Some(Fence {
                    node: join(&self.path, &own),
                    token: own_seq,
                }));
            }
            let (_, predecessor) = &contenders[at - 1];
            let predecessor_is_first = at == 1;
            let watch = match self.session.get_data_watch(&join(&self.path, predecessor)) {
                Ok((_, _, w)) => w,
                Err(Error::NoNode) => continue,
                Err(e) => {
                    if !backoff.wait(&self.session, &e, deadline)? {
                        return Err(Error::Timeout);
                    }
                    continue;
                }
            };
            backoff = Backoff::new();
            match wait_cancellable(&self.session, &watch, deadline, &self.cancelled) {
                Err(Error::Cancelled) => return Ok(None),
                Err(e) => return Err(e),
                // The deadline: the loop's top says so.
                Ok(None) => {}
                // The predecessor was the lowest node: once it is deleted we are (new
                // contenders come after us), no need to list again.
                Ok(Some(event))
                    if predecessor_is_first
                        && !self.by_name
                        && event.event_type == EventType::NodeDeleted =>
                {
                    return Ok(Some(Fence {
                        node: join(&self.path, &own),
                        token: own_seq,
                    }));
                }
                Ok(Some(_)) => {}
            }
        }
    }

    /// Create our contender node; after an ambiguous create, adopt the node only if it
    /// carries our prefix and this session owns it. Returns the node's name, and after a
    /// fresh create the election's children, listed in the same round trip (`None` when
    /// that listing failed or the node was adopted). On an error after an ambiguous create,
    /// a node of ours that did get created is deleted.
    fn create_node(
        &self,
        deadline: Option<Instant>,
    ) -> Result<(String, Option<Vec<String>>), Error> {
        let mut ambiguous = false;
        let result = self.create_node_inner(deadline, &mut ambiguous);
        if result.is_err() && ambiguous {
            let until = Some(self.session.now() + CLEANUP_BUDGET);
            if let Ok(Some(name)) = retrying(&self.session, until, || self.find_own()) {
                let _ = delete_until_gone(&self.session, &join(&self.path, &name), until);
            }
        }
        result
    }

    fn create_node_inner(
        &self,
        deadline: Option<Instant>,
        ambiguous: &mut bool,
    ) -> Result<(String, Option<Vec<String>>), Error> {
        let options = CreateOptions::new(CreateMode::EphemeralSequential);
        let create_path = join(&self.path, &self.prefix);
        let mut backoff = Backoff::new();
        loop {
            if *ambiguous {
                match retrying(&self.session, deadline, || self.find_own()) {
                    Ok(Some(name)) => {
                        *ambiguous = false;
                        return Ok((name, None));
                    }
                    Ok(None) => *ambiguous = false,
                    Err(e) if e.is_retryable() => return Err(Error::Timeout),
                    Err(e) => return Err(e),
                }
            }
            let err = match self.session.create_and_list(
                &create_path,
                self.identifier.as_bytes(),
                &options,
                &self.path,
            ) {
                Ok(((path, _), listed)) => {
                    let name = path
                        .rsplit_once('/')
                        .map_or(path.as_str(), |(_, name)| name)
                        .to_owned();
                    return Ok((name, listed.ok().map(|(children, _)| children)));
                }
                Err(Error::NoNode) => match self.session.ensure_path(&self.path) {
                    Ok(()) => continue,
                    Err(e) => e,
                },
                Err(Error::ConnectionLoss) => {
                    *ambiguous = true;
                    Error::ConnectionLoss
                }
                Err(e) => e,
            };
            if !backoff.wait(&self.session, &err, deadline)? {
                return Err(Error::Timeout);
            }
        }
    }

    /// Our node after an ambiguous create: our prefix, owned by this session.
    fn find_own(&self) -> Result<Option<String>, Error> {
        let children = match self.session.get_children(&self.path) {
            Ok((children, _)) => children,
            // The lost reply was a NoNode: no election node yet, so no node of ours.
            Err(Error::NoNode) => return Ok(None),
            Err(e) => return Err(e),
        };
        for child in children.into_iter().filter(|c| c.starts_with(&self.prefix)) {
            match self.session.exists(&join(&self.path, &child))? {
                Some(stat) if owned_by(&self.session, &stat) => return Ok(Some(child)),
                _ => {}
            }
        }
        Ok(None)
    }
}

/// Deletes the leader's node when leading ends (also on a panic in the leader function).
struct LeaveOnDrop<'a, S: Session> {
    session: &'a S,
    node: Option<String>,
}

impl<S: Session> LeaveOnDrop<'_, S> {
    fn leave(mut self) -> Result<(), Error> {
        match self.node.take() {
            Some(node) => {
                let until = self.session.now() + CLEANUP_BUDGET;
                delete_until_gone(self.session, &node, Some(until))
            }
            None => Ok(()),
        }
    }
}

impl<S: Session> Drop for LeaveOnDrop<'_, S> {
    fn drop(&mut self) {
        if let Some(node) = self.node.take() {
            let _ = self.session.delete(&node, None);
        }
    }
}

impl<S: Session> Leadership<'_, S> {
    /// The fence of this term: the leader's node and its sequence number as the token
    /// (greater for every later leader).
    pub fn fence(&self) -> &Fence {
        &self.fence
    }

    /// The fencing token (the node's sequence number).
    pub fn token(&self) -> i64 {
        self.fence.token
    }

    /// Whether this process still leads as far as it can tell without asking the server:
    /// connected, and neither the session's end nor the node's deletion seen. `false` while
    /// disconnected (see [`LeadershipState::Suspended`]) and for good once lost.
    pub fn is_leader(&self) -> bool {
        self.state() == LeadershipState::Leader
    }

    /// Leader, suspended (disconnected) or lost.
    pub fn state(&self) -> LeadershipState {
        if self.lost.load(Ordering::SeqCst) {
            return LeadershipState::Lost;
        }
        let state = self.session.state();
        if state.is_terminal() {
            self.lost.store(true, Ordering::SeqCst);
            LeadershipState::Lost
        } else if state == SessionState::Connected {
            LeadershipState::Leader
        } else {
            LeadershipState::Suspended
        }
    }

    /// Ask the server whether our node is still there (one round trip, retried through
    /// connection loss until `timeout`): `Ok(false)` once leadership is lost.
    pub fn check(&self, timeout: Option<Duration>) -> Result<bool, Error> {
        if self.state() == LeadershipState::Lost {
            return Ok(false);
        }
        let held = node_held(
            self.session,
            &self.fence.node,
            self.session.deadline(timeout),
        )?;
        if !held {
            self.lost.store(true, Ordering::SeqCst);
        }
        Ok(held)
    }

    /// Block until leadership is lost (the session ends or our node goes): `Ok(true)`;
    /// `Ok(false)` when `deadline` passes first. A partitioned leader learns of its
    /// session's expiry when it reconnects (the server tells it then).
    pub fn wait_lost(&self, deadline: Option<Instant>) -> Result<bool, Error> {
        if self.state() == LeadershipState::Lost {
            return Ok(true);
        }
        let lost = wait_node_gone(self.session, &self.fence.node, deadline)?;
        if lost {
            self.lost.store(true, Ordering::SeqCst);
        }
        Ok(lost)
    }

    /// Run `ops` atomically, only while we lead: `multi[check(our node), ops...]`. Fails with
    /// [`Error::MultiFailed`] `{ index: 0, .. }` (see [`Fence::is_lost`]) once leadership is
    /// lost, and marks it lost.
    pub fn write(&self, ops: Vec<Op>) -> Result<Vec<OpResult>, Error> {
        let result = self.fence.write(self.session, ops);
        if let Err(e) = &result {
            if Fence::is_lost(e) {
                self.lost.store(true, Ordering::SeqCst);
            }
        }
        result
    }
}
