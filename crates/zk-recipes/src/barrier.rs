//! Barriers, wire-compatible with kazoo's `kazoo.recipe.barrier`.
//!
//! * [`Barrier`]: the barrier is up while its node exists; [`Barrier::wait`] blocks until
//!   the node is deleted ([`Barrier::remove`]).
//! * [`DoubleBarrier`]: `num_clients` processes [`enter`](DoubleBarrier::enter) (each blocks
//!   until all have entered) and later [`leave`](DoubleBarrier::leave) (each blocks until all
//!   have left).
//!
//! # Wire format (kazoo's)
//!
//! A double barrier at `path` has one ephemeral child per participant, named by a 32-digit
//! hex uuid and holding the participant's identifier (kazoo: `"<fqdn>-<pid>"`, UTF-8), and
//! the persistent child `ready`, created (empty) by whoever sees `num_clients` participants
//! and deleted by the first to leave. Leaving follows kazoo's order: participants sorted by
//! name; the lowest waits for the highest to go; every other deletes its node and waits for
//! the lowest to go.
//!
//! Differences from kazoo: connection loss while waiting is retried rather than raised; an
//! ambiguous create of the participant node is resolved by its name and `ephemeralOwner`;
//! `enter` and `leave` take a timeout; a participant that finds its node already deleted in
//! `leave` keeps waiting for the others (kazoo gives up with `NoNodeError` there); expiry of
//! the session is reported as an error (the node is then gone, i.e. this process left).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::queue::{MAX_RETRIES, await_connected, is_ambiguous, retry, uuid_hex};
use crate::session::{Session, SessionExt, join};
use crate::{CreateOptions, Error, Stat};
use zk_session::EventType;

/// The name of a double barrier's `ready` node.
pub const READY_NODE: &str = "ready";

/// A barrier: up while its node exists (kazoo's `Barrier`).
#[derive(Debug, Clone)]
pub struct Barrier<S: Session> {
    zk: S,
    path: String,
    lax: bool,
}

impl<S: Session> Barrier<S> {
    /// A barrier at `path`.
    pub fn new(zk: S, path: &str) -> Barrier<S> {
        Barrier {
            zk,
            path: path.to_owned(),
            lax: false,
        }
    }

    /// Deliberately broken (for the simulator's broken variant): `wait` passes on any event
    /// of the node, not only its deletion.
    #[doc(hidden)]
    pub fn broken_any_event(mut self) -> Barrier<S> {
        self.lax = true;
        self
    }

    /// The barrier's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Put the barrier up (create its node and missing parents; an existing one stays).
    pub fn create(&self) -> Result<(), Error> {
        retry(&self.zk, None, || self.zk.ensure_path(&self.path))
    }

    /// Take the barrier down. `Ok(false)` when it was not up. After a connection loss with
    /// the delete in flight, a barrier found gone counts as removed here.
    pub fn remove(&self) -> Result<bool, Error> {
        let mut ambiguous = false;
        for _ in 0..MAX_RETRIES {
            match self.zk.delete(&self.path, None) {
                Ok(()) => return Ok(true),
                Err(Error::NoNode) => return Ok(ambiguous),
                Err(e) if is_ambiguous(&e) => {
                    ambiguous = true;
                    await_connected(&self.zk, None)?;
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::ConnectionLoss)
    }

    /// Wait until the barrier is down: `Ok(true)` once its node is gone (at once if it is not
    /// up), `Ok(false)` when `timeout` passes first.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool, Error> {
        let deadline = self.zk.deadline(timeout);
        loop {
            let (stat, watch) = match retry(&self.zk, deadline, || self.zk.exists_watch(&self.path))
            {
                Ok(v) => v,
                Err(Error::Timeout) if passed(&self.zk, deadline) => return Ok(false),
                Err(e) => return Err(e),
            };
            if stat.is_none() {
                return Ok(true);
            }
            match self.zk.wait_watch(&watch, deadline)? {
                Some(ev) if ev.event_type == EventType::NodeDeleted || self.lax => {
                    return Ok(true);
                }
                // Data changed (or a session event): look again.
                Some(_) => continue,
                None => return Ok(false),
            }
        }
    }
}

fn passed<S: Session>(zk: &S, deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| zk.now() >= d)
}

/// A double barrier (kazoo's `DoubleBarrier`; see the module docs).
///
/// ```no_run
/// # fn demo(zk: zk_session::Client) -> Result<(), zk_recipes::Error> {
/// use zk_recipes::barrier::DoubleBarrier;
///
/// let b = DoubleBarrier::new(zk, "/job/barrier", 3);
/// b.enter(None)?; // returns once 3 have entered
/// // ... work ...
/// b.leave(None)?; // returns once all 3 have left
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct DoubleBarrier<S: Session> {
    zk: S,
    path: String,
    num_clients: usize,
    identifier: String,
    node_name: String,
    node_path: String,
    participating: AtomicBool,
    /// Broken variant: passes `enter` one participant early.
    off_by_one: bool,
}

impl<S: Session> DoubleBarrier<S> {
    /// A double barrier at `path` for `num_clients` participants, identified as
    /// `"<host>-<pid>"` (kazoo's default identifier).
    pub fn new(zk: S, path: &str, num_clients: usize) -> DoubleBarrier<S> {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".to_owned());
        let identifier = format!("{host}-{}", std::process::id());
        DoubleBarrier::with_identifier(zk, path, num_clients, &identifier)
    }

    /// Like [`DoubleBarrier::new`] with the identifier stored in this participant's node.
    pub fn with_identifier(
        zk: S,
        path: &str,
        num_clients: usize,
        identifier: &str,
    ) -> DoubleBarrier<S> {
        let node_name = uuid_hex(zk.session_id());
        DoubleBarrier {
            node_path: join(path, &node_name),
            zk,
            path: path.to_owned(),
            num_clients,
            identifier: identifier.to_owned(),
            node_name,
            participating: AtomicBool::new(false),
            off_by_one: false,
        }
    }

    /// Deliberately broken (for the simulator's broken variant): passes `enter` when
    /// `num_clients - 1` have entered.
    #[doc(hidden)]
    pub fn broken_off_by_one(mut self) -> DoubleBarrier<S> {
        self.off_by_one = true;
        self
    }

    /// The barrier's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// This participant's node name (a uuid).
    pub fn node_name(&self) -> &str {
        &self.node_name
    }

    /// Whether this participant has entered and not left (as far as this handle knows; see
    /// [`DoubleBarrier::is_present`] to ask the server).
    pub fn participating(&self) -> bool {
        self.participating.load(Ordering::Relaxed)
    }

    /// Whether this participant's node exists and belongs to this session (a lost session
    /// means the participant has left).
    pub fn is_present(&self) -> Result<bool, Error> {
        match retry(&self.zk, None, || self.zk.exists(&self.node_path)) {
            Ok(Some(stat)) => Ok(self.owned(&stat)),
            Ok(None) => Ok(false),
            Err(e) if e.is_terminal() => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn owned(&self, stat: &Stat) -> bool {
        stat.ephemeral_owner == self.zk.session_id()
    }

    /// Enter: register, then block until `num_clients` participants have entered.
    /// `Err(Timeout)` when `timeout` passes first (this participant's node is then removed).
    pub fn enter(&self, timeout: Option<Duration>) -> Result<(), Error> {
        let deadline = self.zk.deadline(timeout);
        match self.inner_enter(deadline) {
            Ok(()) => {
                self.participating.store(true, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                self.cleanup();
                self.participating.store(false, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    fn inner_enter(&self, deadline: Option<Instant>) -> Result<(), Error> {
        retry(&self.zk, deadline, || self.zk.ensure_path(&self.path))?;
        self.create_own_node(deadline)?;
        let ready = join(&self.path, READY_NODE);
        let need = if self.off_by_one {
            self.num_clients.saturating_sub(1)
        } else {
            self.num_clients
        };
        loop {
            let (stat, watch) = retry(&self.zk, deadline, || self.zk.exists_watch(&ready))?;
            if stat.is_some() {
                return Ok(());
            }
            let (children, _) = retry(&self.zk, deadline, || self.zk.get_children(&self.path))?;
            let present = children.iter().filter(|c| *c != READY_NODE).count();
            if present >= need {
                retry(&self.zk, deadline, || self.zk.ensure_path(&ready))?;
                return Ok(());
            }
            match self.zk.wait_watch(&watch, deadline)? {
                // As in kazoo, the creation event is enough: `ready` may already be gone
                // again (a fast participant started leaving), but it was created, so all had
                // entered.
                Some(ev) if ev.event_type == EventType::NodeCreated => return Ok(()),
                Some(_) => {}
                None => return Err(Error::Timeout),
            }
        }
    }

    /// Create this participant's ephemeral node; an ambiguous create is resolved by the node's
    /// owner (never adopt a node of another session).
    fn create_own_node(&self, deadline: Option<Instant>) -> Result<(), Error> {
        for _ in 0..MAX_RETRIES {
            match self.zk.create(
                &self.node_path,
                self.identifier.as_bytes(),
                &CreateOptions::ephemeral(),
            ) {
                Ok(_) => return Ok(()),
                Err(Error::NodeExists) => {
                    return match retry(&self.zk, deadline, || self.zk.exists(&self.node_path))? {
                        Some(stat) if self.owned(&stat) => Ok(()),
                        Some(_) => Err(Error::NodeExists),
                        None => continue,
                    };
                }
                Err(Error::NoNode) => {
                    retry(&self.zk, deadline, || self.zk.ensure_path(&self.path))?;
                }
                Err(e) if is_ambiguous(&e) => {
                    await_connected(&self.zk, deadline)?;
                    match retry(&self.zk, deadline, || self.zk.exists(&self.node_path))? {
                        Some(stat) if self.owned(&stat) => return Ok(()),
                        Some(_) => return Err(Error::NodeExists),
                        None => continue,
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::ConnectionLoss)
    }

    /// Leave: deregister, then block until every participant has left. `Err(Timeout)` when
    /// `timeout` passes first (this participant's node is then removed).
    pub fn leave(&self, timeout: Option<Duration>) -> Result<(), Error> {
        let deadline = self.zk.deadline(timeout);
        let r = self.inner_leave(deadline);
        if r.is_err() {
            self.cleanup();
        }
        self.participating.store(false, Ordering::Relaxed);
        r
    }

    fn inner_leave(&self, deadline: Option<Instant>) -> Result<(), Error> {
        let ready = join(&self.path, READY_NODE);
        match retry(&self.zk, deadline, || self.zk.delete(&ready, None)) {
            Ok(()) | Err(Error::NoNode) | Err(Error::NotEmpty) => {}
            Err(e) => return Err(e),
        }
        loop {
            let mut children = match retry(&self.zk, deadline, || self.zk.get_children(&self.path))
            {
                Ok((c, _)) => c,
                Err(Error::NoNode) => return Ok(()),
                Err(e) => return Err(e),
            };
            children.retain(|c| c != READY_NODE);
            if children.is_empty() {
                return Ok(());
            }
            if children.len() == 1 && children[0] == self.node_name {
                self.delete_own_node(deadline)?;
                return Ok(());
            }
            children.sort();
            let lowest = &children[0];
            let watched = if *lowest == self.node_name {
                // We're first: wait for the highest to leave.
                children.last().cloned().unwrap_or_default()
            } else {
                self.delete_own_node(deadline)?;
                lowest.clone()
            };
            let (stat, watch) = retry(&self.zk, deadline, || {
                self.zk.exists_watch(&join(&self.path, &watched))
            })?;
            if stat.is_none() {
                continue;
            }
            if self.zk.wait_watch(&watch, deadline)?.is_none() {
                return Err(Error::Timeout);
            }
        }
    }

    fn delete_own_node(&self, deadline: Option<Instant>) -> Result<(), Error> {
        match retry(&self.zk, deadline, || self.zk.delete(&self.node_path, None)) {
            Ok(()) | Err(Error::NoNode) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Best effort: remove this participant's node (ours only).
    fn cleanup(&self) {
        if self.zk.state().is_terminal() {
            return;
        }
        if let Ok(Some(stat)) = retry(&self.zk, None, || self.zk.exists(&self.node_path)) {
            if self.owned(&stat) {
                let _ = retry(&self.zk, None, || self.zk.delete(&self.node_path, None));
            }
        }
    }
}
