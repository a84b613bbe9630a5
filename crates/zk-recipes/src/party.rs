//! Parties (kazoo's `party.py`): a pool of members that join and leave, each an ephemeral node
//! under the party path.
//!
//! - [`Party`]: a member is the node `<uuid>__party__` holding its identifier as data; members
//!   are listed by reading each node's data.
//! - [`ShallowParty`]: the identifier is in the node's name, `<uuid>-<identifier>`, so listing
//!   the members takes one `getChildren`.
//!
//! Node names and data are kazoo's, so Rust and kazoo members join the same party.
//!
//! Where this does better than kazoo: membership is tied to the session. kazoo's member keeps
//! `participating = True` after its session expired and its node vanished; here
//! [`Party::is_member`] turns `false` once the session ends, [`Party::check_member`] asks the
//! server, and [`Party::wait_left`] blocks until the membership ends. Joining recovers from a
//! lost reply by the node's name *and* its `ephemeralOwner` (a node of another session with
//! our name is an error, never taken for ours).

use std::time::{Duration, Instant};

use crate::session::{Session, SessionExt, join};
use crate::watchers::{Backoff, node_held, owned_by, retrying, uuid_hex, wait_node_gone};
use crate::{CreateOptions, Error};

/// kazoo's `Party` node marker: member nodes are `<uuid>__party__`.
pub const PARTY_NODE_NAME: &str = "__party__";

/// How long `join`, `leave` and the reads retry through connection loss before returning it.
const RETRY_BUDGET: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Deep,
    Shallow,
}

/// What both kinds share: the member node, joining and leaving.
#[derive(Debug)]
struct Member<S: Session> {
    session: S,
    path: String,
    /// The member node's full path.
    node: String,
    identifier: String,
    kind: Kind,
    participating: bool,
    ensured_path: bool,
    /// The deliberately broken variant (kazoo's behaviour): membership outlives the session.
    ignore_session_loss: bool,
}

impl<S: Session> Member<S> {
    fn new(session: S, path: &str, identifier: &str, kind: Kind) -> Member<S> {
        let path = path.trim_end_matches('/');
        let path = if path.is_empty() { "/" } else { path };
        let tag = match kind {
            Kind::Deep => format!("party:{identifier}"),
            Kind::Shallow => format!("shallow-party:{identifier}"),
        };
        let uuid = uuid_hex(&session, path, &tag);
        let name = match kind {
            Kind::Deep => format!("{uuid}{PARTY_NODE_NAME}"),
            Kind::Shallow => format!("{uuid}-{identifier}"),
        };
        Member {
            node: join(path, &name),
            path: path.to_owned(),
            identifier: identifier.to_owned(),
            session,
            kind,
            participating: false,
            ensured_path: false,
            ignore_session_loss: false,
        }
    }

    fn budget(&self) -> Option<Instant> {
        Some(self.session.now() + RETRY_BUDGET)
    }

    fn ensure_parent(&mut self) -> Result<(), Error> {
        if !self.ensured_path {
            let deadline = self.budget();
            retrying(&self.session, deadline, || {
                self.session.ensure_path(&self.path)
            })?;
            self.ensured_path = true;
        }
        Ok(())
    }

    fn join(&mut self) -> Result<(), Error> {
        self.ensure_parent()?;
        let deadline = self.budget();
        let mut backoff = Backoff::new();
        loop {
            let err = match self.session.create(
                &self.node,
                self.identifier.as_bytes(),
                &CreateOptions::ephemeral(),
            ) {
                Ok(_) => break,
                Err(Error::NodeExists) => {
                    // Ours after a lost reply (or joined already); someone else's otherwise.
                    match self.session.exists(&self.node) {
                        Ok(Some(stat)) if owned_by(&self.session, &stat) => break,
                        Ok(Some(_)) => return Err(Error::NodeExists),
                        Ok(None) => continue,
                        Err(e) => e,
                    }
                }
                Err(Error::NoNode) => {
                    // The party node was deleted under us (F15): make it again.
                    self.ensured_path = false;
                    match self.ensure_parent() {
                        Ok(()) => continue,
                        Err(e) => e,
                    }
                }
                Err(e) => e,
            };
            if !backoff.wait(&self.session, &err, deadline)? {
                return Err(err);
            }
        }
        self.participating = true;
        Ok(())
    }

    fn leave(&mut self) -> Result<bool, Error> {
        let was = self.participating;
        self.participating = false;
        let deadline = self.budget();
        let mut ambiguous = false;
        let mut backoff = Backoff::new();
        loop {
            let err = match self.session.delete(&self.node, None) {
                Ok(()) => return Ok(true),
                // Deleted by the attempt whose reply was lost, or not there at all.
                Err(Error::NoNode) => return Ok(ambiguous && was),
                Err(e) if e.is_terminal() => return Ok(false),
                Err(e) => e,
            };
            ambiguous |= err == Error::ConnectionLoss;
            if !backoff.wait(&self.session, &err, deadline)? {
                // Still unknown: we may still be a member.
                self.participating = was;
                return Err(err);
            }
        }
    }

    fn is_member(&self) -> bool {
        self.participating && (self.ignore_session_loss || !self.session.state().is_terminal())
    }

    fn check_member(&mut self, timeout: Option<Duration>) -> Result<bool, Error> {
        if !self.is_member() {
            return Ok(false);
        }
        if self.ignore_session_loss {
            return Ok(true);
        }
        let held = node_held(&self.session, &self.node, self.session.deadline(timeout))?;
        if !held {
            self.participating = false;
        }
        Ok(held)
    }

    fn wait_left(&mut self, deadline: Option<Instant>) -> Result<bool, Error> {
        if !self.is_member() {
            return Ok(true);
        }
        let gone = wait_node_gone(&self.session, &self.node, deadline)?;
        if gone {
            self.participating = false;
        }
        Ok(gone)
    }

    /// The member nodes' names (kazoo's `_get_children`: `Party` keeps only `__party__`
    /// nodes, `ShallowParty` all children).
    fn children(&mut self) -> Result<Vec<String>, Error> {
        self.ensure_parent()?;
        let deadline = self.budget();
        let (children, _) = retrying(&self.session, deadline, || {
            self.session.get_children(&self.path)
        })?;
        Ok(self.filter(children))
    }

    fn filter(&self, children: Vec<String>) -> Vec<String> {
        match self.kind {
            Kind::Deep => children
                .into_iter()
                .filter(|c| c.contains(PARTY_NODE_NAME))
                .collect(),
            Kind::Shallow => children,
        }
    }

    fn members_of(&self, children: Vec<String>) -> Result<Vec<String>, Error> {
        match self.kind {
            Kind::Shallow => Ok(children
                .into_iter()
                .map(|c| match c.find('-') {
                    Some(i) => c[i + 1..].to_owned(),
                    None => c,
                })
                .collect()),
            Kind::Deep => {
                let deadline = self.budget();
                let mut out = Vec::with_capacity(children.len());
                for child in children {
                    let path = join(&self.path, &child);
                    match retrying(&self.session, deadline, || self.session.get_data(&path)) {
                        Ok((data, _)) => out.push(String::from_utf8_lossy(&data).into_owned()),
                        Err(Error::NoNode) => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(out)
            }
        }
    }

    fn members(&mut self) -> Result<Vec<String>, Error> {
        let children = self.children()?;
        self.members_of(children)
    }

    fn wait_for_members(
        &mut self,
        n: usize,
        timeout: Option<Duration>,
    ) -> Result<Vec<String>, Error> {
        self.ensure_parent()?;
        let deadline = self.session.deadline(timeout);
        let mut backoff = Backoff::new();
        loop {
            let err = match self.session.get_children_watch(&self.path) {
                Ok((children, _, watch)) => {
                    let children = self.filter(children);
                    if children.len() >= n {
                        return self.members_of(children);
                    }
                    match self.session.wait_watch(&watch, deadline)? {
                        Some(_) => continue,
                        None => return Err(Error::Timeout),
                    }
                }
                Err(Error::NoNode) => {
                    self.ensured_path = false;
                    match self.ensure_parent() {
                        Ok(()) => continue,
                        Err(e) => e,
                    }
                }
                Err(e) => e,
            };
            if !backoff.wait(&self.session, &err, deadline)? {
                return Err(Error::Timeout);
            }
        }
    }
}

impl<S: Session> Drop for Member<S> {
    /// Leave on drop, best effort (one attempt).
    fn drop(&mut self) {
        if self.participating && !self.session.state().is_terminal() {
            let _ = self.session.delete(&self.node, None);
        }
    }
}

macro_rules! party_api {
    ($name:ident) => {
        impl<S: Session> $name<S> {
            /// The party path.
            pub fn path(&self) -> &str {
                &self.0.path
            }

            /// This member's identifier.
            pub fn identifier(&self) -> &str {
                &self.0.identifier
            }

            /// This member's node (full path).
            pub fn node(&self) -> &str {
                &self.0.node
            }

            /// The session this member is on.
            pub fn session(&self) -> &S {
                &self.0.session
            }

            /// Join the party: create our ephemeral node (and the party path if missing).
            /// Joining twice is harmless. A lost reply is recovered by looking at the node
            /// (ours only if this session owns it). Connection loss is retried for up to a
            /// minute.
            pub fn join(&mut self) -> Result<(), Error> {
                self.0.join()
            }

            /// Leave the party: delete our node. `Ok(true)` if we were a member (kazoo: the
            /// node was there), `Ok(false)` if not; a terminal session has already left.
            pub fn leave(&mut self) -> Result<bool, Error> {
                self.0.leave()
            }

            /// Whether we are a member, as far as this process can tell without asking the
            /// server: joined, not left, and the session not ended (after expiry the server
            /// has deleted our node, and this is `false`).
            pub fn is_member(&self) -> bool {
                self.0.is_member()
            }

            /// Ask the server whether our node is still there (retried through connection
            /// loss until `timeout`); `Ok(false)`, and [`Self::is_member`] `false` from then
            /// on, once it is gone.
            pub fn check_member(&mut self, timeout: Option<Duration>) -> Result<bool, Error> {
                self.0.check_member(timeout)
            }

            /// Block until our membership ends (the session ends or our node is deleted):
            /// `Ok(true)`; `Ok(false)` when `deadline` passes first.
            pub fn wait_left(&mut self, deadline: Option<Instant>) -> Result<bool, Error> {
                self.0.wait_left(deadline)
            }

            /// The number of members (kazoo's `len(party)`).
            pub fn len(&mut self) -> Result<usize, Error> {
                Ok(self.0.children()?.len())
            }

            /// Whether the party has no members.
            pub fn is_empty(&mut self) -> Result<bool, Error> {
                Ok(self.len()? == 0)
            }

            /// Block until the party has at least `n` members and return them; [`Error::Timeout`]
            /// when `timeout` passes first.
            pub fn wait_for_members(
                &mut self,
                n: usize,
                timeout: Option<Duration>,
            ) -> Result<Vec<String>, Error> {
                self.0.wait_for_members(n, timeout)
            }
        }
    };
}

/// A party whose members keep their identifier as node data (kazoo's `Party`).
///
/// ```no_run
/// # fn demo<S: zk_recipes::Session>(session: S) -> Result<(), zk_recipes::Error> {
/// use zk_recipes::party::Party;
/// let mut party = Party::new(session, "/app/workers", "worker-1");
/// party.join()?;
/// for member in party.members()? {
///     println!("{member}");
/// }
/// assert!(party.is_member());
/// party.leave()?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Party<S: Session>(Member<S>);

impl<S: Session> Party<S> {
    /// A member-to-be of the party at `path`, identified by `identifier` (its node's data).
    /// Dropping it leaves the party (best effort).
    pub fn new(session: S, path: &str, identifier: &str) -> Party<S> {
        Party(Member::new(session, path, identifier, Kind::Deep))
    }

    /// The members' identifiers (kazoo iterates the party for them): the data of every
    /// `__party__` node.
    pub fn members(&mut self) -> Result<Vec<String>, Error> {
        self.0.members()
    }

    /// The deliberately broken variant for the simulator: membership is kept after the session
    /// is lost (kazoo's behaviour).
    pub(crate) fn broken_ignore_session_loss(mut self) -> Party<S> {
        self.0.ignore_session_loss = true;
        self
    }
}

party_api!(Party);

/// A party whose members' identifiers are in their node names, `<uuid>-<identifier>` (kazoo's
/// `ShallowParty`): listing takes one call. The identifier must be valid in a node name.
#[derive(Debug)]
pub struct ShallowParty<S: Session>(Member<S>);

impl<S: Session> ShallowParty<S> {
    /// A member-to-be of the shallow party at `path`, identified by `identifier`.
    /// Dropping it leaves the party (best effort).
    pub fn new(session: S, path: &str, identifier: &str) -> ShallowParty<S> {
        ShallowParty(Member::new(session, path, identifier, Kind::Shallow))
    }

    /// The members' identifiers: every child's name after its first `-` (as kazoo does).
    pub fn members(&mut self) -> Result<Vec<String>, Error> {
        self.0.members()
    }

    /// The deliberately broken variant for the simulator: membership is kept after the session
    /// is lost (kazoo's behaviour).
    pub(crate) fn broken_ignore_session_loss(mut self) -> ShallowParty<S> {
        self.0.ignore_session_loss = true;
        self
    }
}

party_api!(ShallowParty);
