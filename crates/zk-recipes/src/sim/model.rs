//! The in-memory ZooKeeper data model the simulator runs on: a pure, deterministic
//! transcription of a 3.8 server's data tree, sessions, ACLs and watches, speaking the
//! protocol's own types.
//!
//! [`Model::apply`] takes any [`Request`] a client may send and returns what the server
//! would: the reply header's zxid, the reply (or error code), and the watch notifications the
//! change triggered, which a server delivers **before** the reply. Time is an argument
//! (`now_ms`); nothing reads a clock, draws a random number or iterates a hash map, so the
//! same calls give the same results.
//!
//! The semantics are those of the Debian 3.8.0 server the conformance suite
//! (`tests/tests/conformance.rs`) runs against, including its quirks:
//!
//! - **zxids**: every write consumes one, also when it fails (NodeExists, BadVersion,
//!   BadArguments, ...), a failed or empty multi, a multi with a read op (MarshallingError),
//!   reconfig (ReconfigDisabled) and a standalone check. Session creation and close consume
//!   one too. Reads, multiRead, setWatches and pings reply with the last zxid; auth with 0.
//! - **Stat**: `cversion` is reported as `2 × children ever created − numChildren`; the
//!   sequence suffix (`%010d`) is the internal children-ever-created counter. `/` starts with
//!   cversion −1 and `/zookeeper` with −2 (their children were added without a create);
//!   `/zookeeper/config` has aversion −1 and a READ-only ACL. ephemeralOwner is 0 for
//!   containers and TTL nodes.
//! - **Opcode, not flags, makes a container**: createContainer (19) makes a container
//!   whatever its (non-TTL) flags; create/create2 with flags 4 make a plain persistent node.
//!   TTL modes need createTTL, and createTTL needs a TTL mode with 0 < ttl ≤ 2^40−1
//!   (BadArguments otherwise). The real 3.8.0 server *accepts* createTTL with a non-TTL mode
//!   and a negative ttl and then crashes applying it (the transaction is also replayed on
//!   restart); the model answers BadArguments.
//! - **Inside a multi it is the other way round**: the server rebuilds each create op from
//!   its flags, so flags 4 make a container whatever the opcode, createContainer with flags
//!   1 an ephemeral, create2 ops get path-only results, and a TTL mode on a non-createTTL op
//!   fails the whole multi with MarshallingError (a zxid consumed, nothing applied).
//! - **deleteContainer (20)** from a client is always BadArguments (the server reads the
//!   path from the whole frame buffer, header included); the reaper's own deletes work.
//! - **Paths**: create and delete check only for a slash and NUL before looking up the
//!   parent (so `/a//b` is NoNode), the full path rules come after the parent's ACL check;
//!   setData, setACL and check validate first; reads do not validate (a bad path is NoNode,
//!   `""` is an alias of `/`), except exists, which refuses a NUL. delete refuses `/`,
//!   `/zookeeper`, `/zookeeper/quota` and `/zookeeper/config`.
//! - **ACLs**: READ for getData/getChildren/getAllChildrenNumber/check, READ or ADMIN for
//!   getACL (digest ids masked to `user:x` without ADMIN), none for exists, sync and the watch
//!   operations; CREATE/DELETE on the parent; WRITE for setData; ADMIN for setACL. Every
//!   session also has the identity `ip:127.0.0.1`. A notification is only delivered to a
//!   session that may READ the node it is about (setWatches catch-up events excepted).
//! - **Watches**: one mode per (session, path, manager), last registration
//!   wins; `exists` on a missing node leaves a watch; checkWatches reports a watch if **any**
//!   session has one on the path (a 3.8.0 bug), removeWatches only the caller's; the 3.9
//!   watcher types 4 and 5 are MarshallingError.
//! - **Sequence counter overflow**: once a parent's counter reaches `i32::MAX`, the server
//!   no longer advances it (`DataTree.createNode` only raises it), so later sequential
//!   creates reuse the suffix `2147483647` and fail with NodeExists.
//!
//! `close_session` and `expire_session` delete the session's ephemerals in one transaction
//! (all with its zxid); a closing session still hears its own watches fire (before its
//! close reply), an expiring one does not (its connection is gone).

mod acl;

pub use acl::digest_id;
mod tree;
mod watch;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use zk_proto::{
    Acl, ClientInfo, Create2Response, CreateMode, CreateResponse, ErrorCode, ErrorResponse,
    EventType, GetAclResponse, GetAllChildrenNumberResponse, GetChildren2Response,
    GetChildrenResponse, GetDataResponse, GetEphemeralsResponse, MultiOp, MultiRequest,
    MultiResponse, MultiResult, Perms, Request, Response, SetAclResponse, SetDataResponse,
    SetSaslResponse, SetWatches2, Stat, SyncResponse, WatcherEvent, WatcherType, WhoAmIResponse,
};
use zk_proto::{AddWatchMode, ExistsResponse};

use tree::{Kind, Node};
use watch::{Manager, Mode, Session, Trigger};

/// The largest TTL the server accepts, ms (2^40 − 1).
pub const MAX_TTL: i64 = (1 << 40) - 1;

/// Server settings the model honours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelConfig {
    /// `minSessionTimeout`, ms (default 2 × tickTime with tickTime 2000).
    pub min_session_timeout: i32,
    /// `maxSessionTimeout`, ms (default 20 × tickTime).
    pub max_session_timeout: i32,
    /// `extendedTypesEnabled`: without it TTL creates fail with Unimplemented.
    pub extended_types: bool,
}

impl Default for ModelConfig {
    fn default() -> ModelConfig {
        ModelConfig {
            min_session_timeout: 4_000,
            max_session_timeout: 40_000,
            extended_types: true,
        }
    }
}

/// A watch notification for one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The session it is for.
    pub session: i64,
    /// The event (state always SyncConnected).
    pub event: WatcherEvent,
}

/// The outcome of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The reply header's zxid: the transaction's for a write (also a failed one), the last
    /// zxid for a read, 0 for auth.
    pub zxid: i64,
    /// The reply, or the header's error code. A failed multi is `Ok` with per-op errors.
    pub result: Result<Response, ErrorCode>,
    /// Notifications the request triggered, to be delivered before the reply.
    pub notifications: Vec<Notification>,
}

/// An in-memory ZooKeeper server: data tree, sessions, watches.
///
/// Inputs: [`open_session`](Self::open_session), [`apply`](Self::apply),
/// [`add_auth`](Self::add_auth), [`set_watches`](Self::set_watches),
/// [`close_session`](Self::close_session), [`expire_session`](Self::expire_session),
/// [`drop_watches`](Self::drop_watches), [`reap`](Self::reap). Getters for checkers:
/// [`node`](Self::node), [`children`](Self::children), [`ephemerals`](Self::ephemerals),
/// [`last_zxid`](Self::last_zxid).
#[derive(Debug, Clone)]
pub struct Model {
    config: ModelConfig,
    zxid: i64,
    nodes: BTreeMap<String, Node>,
    sessions: BTreeMap<i64, Session>,
    next_session: i64,
    ephemerals: BTreeMap<i64, BTreeSet<String>>,
    containers: BTreeSet<String>,
    ttls: BTreeSet<String>,
}

impl Default for Model {
    fn default() -> Model {
        Model::new()
    }
}

/// Which create opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CreateOp {
    Create,
    Create2,
    Container,
    Ttl,
}

/// One write transaction in progress: its zxid and time, the caller, the watch triggers it
/// produced, and (inside a multi) the prior state of every node it touched.
struct Tx {
    zxid: i64,
    now: i64,
    session: i64,
    auth: BTreeSet<(String, String)>,
    triggers: Vec<Trigger>,
    undo: Option<Vec<(String, Option<Node>)>>,
}

impl Model {
    /// A fresh server: `/`, `/zookeeper`, `/zookeeper/config` and `/zookeeper/quota` as a
    /// 3.8 standalone server has them, zxid 0, default [`ModelConfig`].
    pub fn new() -> Model {
        Model::with_config(ModelConfig::default())
    }

    /// A fresh server with `config`.
    pub fn with_config(config: ModelConfig) -> Model {
        let open = Acl::open_unsafe();
        let mut config_node = Node::builtin(Acl::read_unsafe(), &[]);
        config_node.aversion = -1;
        let nodes = BTreeMap::from([
            ("/".to_owned(), Node::builtin(open.clone(), &["zookeeper"])),
            (
                "/zookeeper".to_owned(),
                Node::builtin(open.clone(), &["config", "quota"]),
            ),
            ("/zookeeper/config".to_owned(), config_node),
            ("/zookeeper/quota".to_owned(), Node::builtin(open, &[])),
        ]);
        Model {
            config,
            zxid: 0,
            nodes,
            sessions: BTreeMap::new(),
            next_session: 1 << 56,
            ephemerals: BTreeMap::new(),
            containers: BTreeSet::new(),
            ttls: BTreeSet::new(),
        }
    }

    // ---------------------------------------------------------------------------- sessions

    /// Create a session (a createSession transaction: consumes a zxid). Returns its id and
    /// 16-byte password; ids are `2^56 + n` for the n-th session. The timeout is clamped to
    /// the configured bounds ([`session_timeout`](Self::session_timeout)).
    pub fn open_session(&mut self, _now_ms: i64, timeout_ms: i32) -> (i64, Bytes) {
        self.zxid += 1;
        let id = self.next_session;
        self.next_session += 1;
        let timeout = timeout_ms.clamp(
            self.config.min_session_timeout,
            self.config
                .max_session_timeout
                .max(self.config.min_session_timeout),
        );
        let digest = acl::sha1(format!("zk-model-session:{id}").as_bytes());
        let password = Bytes::copy_from_slice(&digest[..16]);
        self.sessions
            .insert(id, Session::new(timeout, password.clone()));
        (id, password)
    }

    /// The negotiated timeout of a live session.
    pub fn session_timeout(&self, session: i64) -> Option<i32> {
        self.sessions.get(&session).map(|s| s.timeout)
    }

    /// Whether the session exists (not closed or expired).
    pub fn is_alive(&self, session: i64) -> bool {
        self.sessions.contains_key(&session)
    }

    /// Whether `passwd` resumes the live session `session`.
    pub fn check_password(&self, session: i64, passwd: &[u8]) -> bool {
        self.sessions
            .get(&session)
            .is_some_and(|s| s.password[..] == *passwd)
    }

    /// The client closed the session: delete its ephemerals (one transaction), fire the
    /// watches (its own included: they precede the close reply), then forget it.
    pub fn close_session(&mut self, now_ms: i64, session: i64) -> Vec<Notification> {
        self.end_session(now_ms, session, false).unwrap_or_default()
    }

    /// The server expired the session: as [`close_session`](Self::close_session), but its
    /// connection is gone, so it hears nothing.
    pub fn expire_session(&mut self, now_ms: i64, session: i64) -> Vec<Notification> {
        self.end_session(now_ms, session, true).unwrap_or_default()
    }

    /// Forget the session's watches (its connection dropped; a reconnect re-registers them
    /// with [`set_watches`](Self::set_watches)).
    pub fn drop_watches(&mut self, session: i64) {
        if let Some(s) = self.sessions.get_mut(&session) {
            s.data_watches.clear();
            s.child_watches.clear();
        }
    }

    /// Add credentials (the auth packet). `digest` adds `user:base64(sha1(user:password))`;
    /// `ip` succeeds and adds nothing new (every session already is `ip:127.0.0.1`); any
    /// other scheme is AuthFailed (the server then closes the connection; the session lives).
    pub fn add_auth(&mut self, session: i64, scheme: &str, auth: &[u8]) -> Result<(), ErrorCode> {
        let s = self
            .sessions
            .get_mut(&session)
            .ok_or(ErrorCode::SessionExpired)?;
        match scheme {
            "digest" => {
                s.auth.insert(("digest".to_owned(), acl::digest_id(auth)));
                Ok(())
            }
            "ip" => Ok(()),
            _ => Err(ErrorCode::AuthFailed),
        }
    }

    /// Re-register watches after a reconnect (setWatches / setWatches2, PROTOCOL.md §7):
    /// data watches on missing nodes fire NodeDeleted and on nodes changed after
    /// `relative_zxid` NodeDataChanged; exist watches on present nodes fire NodeCreated;
    /// child watches fire NodeDeleted or NodeChildrenChanged (pzxid); the rest are
    /// registered, persistent ones without catch-up. `req.relative_zxid` is ignored in favour
    /// of `relative_zxid`.
    pub fn set_watches(
        &mut self,
        session: i64,
        relative_zxid: i64,
        req: &SetWatches2,
    ) -> Vec<Notification> {
        let Some(mut s) = self.sessions.remove(&session) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut note = |event_type, path: &str| {
            out.push(Notification {
                session,
                event: watch::event(event_type, path),
            });
        };
        for path in &req.data_watches {
            match self.get(path) {
                None => note(EventType::NodeDeleted, path),
                Some(n) if n.mzxid > relative_zxid => note(EventType::NodeDataChanged, path),
                Some(_) => s.watch(Manager::Data, path, Mode::Standard),
            }
        }
        for path in &req.exist_watches {
            match self.get(path) {
                Some(_) => note(EventType::NodeCreated, path),
                None => s.watch(Manager::Data, path, Mode::Standard),
            }
        }
        for path in &req.child_watches {
            match self.get(path) {
                None => note(EventType::NodeDeleted, path),
                Some(n) if n.pzxid > relative_zxid => {
                    note(EventType::NodeChildrenChanged, path);
                }
                Some(_) => s.watch(Manager::Child, path, Mode::Standard),
            }
        }
        for (paths, mode) in [
            (&req.persistent_watches, Mode::Persistent),
            (&req.persistent_recursive_watches, Mode::Recursive),
        ] {
            for path in paths {
                s.watch(Manager::Child, path, mode);
                s.watch(Manager::Data, path, mode);
            }
        }
        self.sessions.insert(session, s);
        out
    }

    // ---------------------------------------------------------------------------- requests

    /// Apply one request from `session` at `now_ms` (ctime/mtime of what it writes).
    ///
    /// Every variant a client may send is handled. deleteContainer (20) from a client is
    /// BadArguments (the server misreads its path); sasl replies a null token with zxid 0.
    /// A standalone successful check replies `Ok(Empty)` here, but the 3.8.0 server sends no
    /// reply at all (PROTOCOL.md §4). Requests of a dead session fail with SessionExpired
    /// and change nothing.
    pub fn apply(&mut self, now_ms: i64, session: i64, request: &Request) -> Applied {
        if !self.sessions.contains_key(&session) {
            return self.read_reply(Err(ErrorCode::SessionExpired));
        }
        match request {
            Request::Create(c) => self.write(now_ms, session, |m, tx| {
                m.op_create(tx, CreateOp::Create, &c.path, &c.data, &c.acl, c.flags, -1)
            }),
            Request::Create2(c) => self.write(now_ms, session, |m, tx| {
                m.op_create(tx, CreateOp::Create2, &c.path, &c.data, &c.acl, c.flags, -1)
            }),
            Request::CreateContainer(c) => self.write(now_ms, session, |m, tx| {
                m.op_create(
                    tx,
                    CreateOp::Container,
                    &c.path,
                    &c.data,
                    &c.acl,
                    c.flags,
                    -1,
                )
            }),
            Request::CreateTtl(c) => self.write(now_ms, session, |m, tx| {
                m.op_create(tx, CreateOp::Ttl, &c.path, &c.data, &c.acl, c.flags, c.ttl)
            }),
            Request::Delete(d) => {
                self.write(now_ms, session, |m, tx| m.op_delete(tx, &d.path, d.version))
            }
            // The server reads a client's deleteContainer path from the whole frame buffer,
            // request header included, so it always holds a NUL: BadArguments.
            Request::DeleteContainer(_) => {
                self.write(now_ms, session, |_, _| Err(ErrorCode::BadArguments))
            }
            Request::SetData(s) => self.write(now_ms, session, |m, tx| {
                m.op_set_data(tx, &s.path, &s.data, s.version)
            }),
            Request::Check(c) => {
                self.write(now_ms, session, |m, tx| m.op_check(tx, &c.path, c.version))
            }
            Request::SetAcl(s) => {
                let zxid = self.next_zxid();
                let result = self.op_set_acl(session, &s.path, &s.acl, s.version);
                Applied {
                    zxid,
                    result: result.map(|stat| Response::SetAcl(SetAclResponse { stat })),
                    notifications: Vec::new(),
                }
            }
            Request::Multi(m) => self.multi(now_ms, session, m),
            Request::Reconfig(_) => Applied {
                zxid: self.next_zxid(),
                result: Err(ErrorCode::ReconfigDisabled),
                notifications: Vec::new(),
            },
            Request::CloseSession => {
                let notifications = self.end_session(now_ms, session, false).unwrap_or_default();
                Applied {
                    zxid: self.zxid,
                    result: Ok(Response::Empty),
                    notifications,
                }
            }
            Request::Auth(a) => Applied {
                zxid: 0,
                result: self
                    .add_auth(session, &a.scheme, &a.auth)
                    .map(|()| Response::Empty),
                notifications: Vec::new(),
            },
            Request::SetWatches(w) => {
                let req = SetWatches2 {
                    relative_zxid: w.relative_zxid,
                    data_watches: w.data_watches.clone(),
                    exist_watches: w.exist_watches.clone(),
                    child_watches: w.child_watches.clone(),
                    persistent_watches: Vec::new(),
                    persistent_recursive_watches: Vec::new(),
                };
                let notifications = self.set_watches(session, w.relative_zxid, &req);
                Applied {
                    notifications,
                    ..self.read_reply(Ok(Response::Empty))
                }
            }
            Request::SetWatches2(w) => {
                let notifications = self.set_watches(session, w.relative_zxid, w);
                Applied {
                    notifications,
                    ..self.read_reply(Ok(Response::Empty))
                }
            }
            Request::Sasl(_) => Applied {
                zxid: 0,
                result: Ok(Response::Sasl(SetSaslResponse { token: None })),
                notifications: Vec::new(),
            },
            Request::MultiRead(m) => {
                let result = self.multi_read(session, m);
                self.read_reply(result)
            }
            other => {
                let result = self.read(session, other);
                self.read_reply(result)
            }
        }
    }

    /// One pass of the server's container/TTL reaper (`ContainerManager`) at `now_ms`:
    /// containers that had a child and are empty, then TTL nodes without children that were
    /// not modified for more than their TTL, each deleted by its own transaction. Candidates
    /// are chosen before deleting, so a container emptied by this pass goes in the next one.
    pub fn reap(&mut self, now_ms: i64) -> Vec<Notification> {
        let mut candidates: Vec<String> = self
            .containers
            .iter()
            .filter(|p| {
                self.nodes
                    .get(*p)
                    .is_some_and(|n| n.children.is_empty() && n.cversion > 0)
            })
            .cloned()
            .collect();
        candidates.extend(self.ttls.iter().filter_map(|p| {
            let n = self.nodes.get(p)?;
            let Kind::Ttl(ttl) = n.kind else {
                return None;
            };
            (n.children.is_empty() && ttl != 0 && now_ms.saturating_sub(n.mtime) > ttl)
                .then(|| p.clone())
        }));
        let mut out = Vec::new();
        for path in candidates {
            // The reaper's requests have no session: no ACL applies to deleteContainer.
            let applied = self.write(now_ms, 0, |m, tx| m.op_delete_container(tx, &path));
            out.extend(applied.notifications);
        }
        out
    }

    // ---------------------------------------------------------------------------- getters

    /// The last zxid (what reads report).
    pub fn last_zxid(&self) -> i64 {
        self.zxid
    }

    /// A node's data and Stat.
    pub fn node(&self, path: &str) -> Option<(Bytes, Stat)> {
        self.nodes.get(path).map(|n| (n.data.clone(), n.stat()))
    }

    /// A node's ACL.
    pub fn acl(&self, path: &str) -> Option<Vec<Acl>> {
        self.nodes.get(path).map(|n| n.acl.clone())
    }

    /// A node's child names, sorted.
    pub fn children(&self, path: &str) -> Option<Vec<String>> {
        self.nodes
            .get(path)
            .map(|n| n.children.iter().cloned().collect())
    }

    /// The session's ephemeral nodes, sorted.
    pub fn ephemerals(&self, session: i64) -> Vec<String> {
        self.ephemerals
            .get(&session)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Every node path, sorted.
    pub fn paths(&self) -> Vec<String> {
        self.nodes.keys().cloned().collect()
    }

    // ---------------------------------------------------------------------------- internals

    fn next_zxid(&mut self) -> i64 {
        self.zxid += 1;
        self.zxid
    }

    fn read_reply(&self, result: Result<Response, ErrorCode>) -> Applied {
        Applied {
            zxid: self.zxid,
            result,
            notifications: Vec::new(),
        }
    }

    /// The node at `path`; `""` is the root's alias, as in the server's node map.
    fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(canonical(path))
    }

    fn auth_of(&self, session: i64) -> BTreeSet<(String, String)> {
        self.sessions
            .get(&session)
            .map(|s| s.auth.clone())
            .unwrap_or_default()
    }

    fn tx(&mut self, now_ms: i64, session: i64, journal: bool) -> Tx {
        Tx {
            zxid: self.next_zxid(),
            now: now_ms,
            session,
            auth: self.auth_of(session),
            triggers: Vec::new(),
            undo: journal.then(Vec::new),
        }
    }

    /// One standalone write: a fresh zxid (consumed even on failure), the op, its
    /// notifications.
    fn write(
        &mut self,
        now_ms: i64,
        session: i64,
        op: impl FnOnce(&mut Model, &mut Tx) -> Result<MultiResult, ErrorCode>,
    ) -> Applied {
        let mut tx = self.tx(now_ms, session, false);
        let result = op(self, &mut tx).map(|r| match r {
            MultiResult::Create(c) => Response::Create(c),
            MultiResult::Create2(c) => Response::Create2(c),
            MultiResult::SetData(s) => Response::SetData(s),
            _ => Response::Empty,
        });
        Applied {
            zxid: tx.zxid,
            result,
            notifications: watch::fire(&mut self.sessions, tx.triggers),
        }
    }

    /// Remember `path`'s state before a multi first changes it.
    fn save(&self, tx: &mut Tx, path: &str) {
        if let Some(undo) = &mut tx.undo {
            if !undo.iter().any(|(p, _)| p == path) {
                undo.push((path.to_owned(), self.nodes.get(path).cloned()));
            }
        }
    }

    fn insert_node(&mut self, path: String, node: Node) {
        match node.kind {
            Kind::Ephemeral(s) => {
                self.ephemerals.entry(s).or_default().insert(path.clone());
            }
            Kind::Container => {
                self.containers.insert(path.clone());
            }
            Kind::Ttl(_) => {
                self.ttls.insert(path.clone());
            }
            Kind::Persistent => {}
        }
        self.nodes.insert(path, node);
    }

    fn remove_node(&mut self, path: &str) -> Option<Node> {
        let node = self.nodes.remove(path)?;
        match node.kind {
            Kind::Ephemeral(s) => {
                if let Some(set) = self.ephemerals.get_mut(&s) {
                    set.remove(path);
                    if set.is_empty() {
                        self.ephemerals.remove(&s);
                    }
                }
            }
            Kind::Container => {
                self.containers.remove(path);
            }
            Kind::Ttl(_) => {
                self.ttls.remove(path);
            }
            Kind::Persistent => {}
        }
        Some(node)
    }

    fn rollback(&mut self, undo: Vec<(String, Option<Node>)>) {
        for (path, old) in undo.into_iter().rev() {
            self.remove_node(&path);
            if let Some(node) = old {
                self.insert_node(path, node);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn op_create(
        &mut self,
        tx: &mut Tx,
        op: CreateOp,
        path: &str,
        data: &Bytes,
        acl: &[Acl],
        flags: CreateMode,
        ttl: i64,
    ) -> Result<MultiResult, ErrorCode> {
        let mode = match flags.to_raw() {
            raw @ 0..=6 => CreateMode::from_raw(raw),
            _ => return Err(ErrorCode::BadArguments),
        };
        if mode.is_ttl() && !self.config.extended_types {
            return Err(ErrorCode::Unimplemented);
        }
        let ttl_ok = if mode.is_ttl() {
            ttl > 0 && ttl <= MAX_TTL
        } else {
            // A negative ttl on createTTL with a non-TTL mode crashes the real server.
            ttl < 0 && op != CreateOp::Ttl
        };
        if !ttl_ok {
            return Err(ErrorCode::BadArguments);
        }
        let parent_path = tree::parent_of(path).ok_or(ErrorCode::BadArguments)?;
        let acl = acl::fixup(acl, &tx.auth)?;
        let parent = self.get(parent_path).ok_or(ErrorCode::NoNode)?;
        if !acl::check(&parent.acl, Perms::CREATE, &tx.auth) {
            return Err(ErrorCode::NoAuth);
        }
        let mut path = path.to_owned();
        if mode.is_sequential() {
            path.push_str(&format!("{:010}", parent.cversion));
        }
        if !tree::valid_path(&path) {
            return Err(ErrorCode::BadArguments);
        }
        if self.get(&path).is_some() {
            return Err(ErrorCode::NodeExists);
        }
        if matches!(parent.kind, Kind::Ephemeral(_)) {
            return Err(ErrorCode::NoChildrenForEphemerals);
        }
        let kind = match op {
            CreateOp::Container => Kind::Container,
            CreateOp::Ttl => Kind::Ttl(ttl),
            CreateOp::Create | CreateOp::Create2 if mode.is_ephemeral() => {
                Kind::Ephemeral(tx.session)
            }
            CreateOp::Create | CreateOp::Create2 => Kind::Persistent,
        };
        let parent_key = canonical(parent_path).to_owned();
        self.save(tx, &parent_key);
        self.save(tx, &path);
        let parent_acl = {
            let parent = self.nodes.get_mut(&parent_key).ok_or(ErrorCode::NoNode)?;
            // DataTree.createNode only ever raises the counter (and then pzxid).
            let next = parent.cversion.wrapping_add(1);
            if next > parent.cversion {
                parent.cversion = next;
                parent.pzxid = tx.zxid;
            }
            parent.children.insert(tree::name_of(&path).to_owned());
            parent.acl.clone()
        };
        let node = Node::new(data.clone(), acl.clone(), tx.zxid, tx.now, kind);
        let stat = node.stat();
        self.insert_node(path.clone(), node);
        tx.triggers.push(Trigger::new(
            Manager::Data,
            &path,
            EventType::NodeCreated,
            &acl,
        ));
        tx.triggers.push(Trigger::new(
            Manager::Child,
            tree::watch_key(parent_path),
            EventType::NodeChildrenChanged,
            &parent_acl,
        ));
        Ok(match op {
            CreateOp::Create => MultiResult::Create(CreateResponse { path }),
            _ => MultiResult::Create2(Create2Response { path, stat }),
        })
    }

    fn op_delete(
        &mut self,
        tx: &mut Tx,
        path: &str,
        version: i32,
    ) -> Result<MultiResult, ErrorCode> {
        let parent_path = tree::parent_of(path)
            .filter(|_| !tree::is_special(path))
            .ok_or(ErrorCode::BadArguments)?;
        let parent = self.get(parent_path).ok_or(ErrorCode::NoNode)?;
        if !acl::check(&parent.acl, Perms::DELETE, &tx.auth) {
            return Err(ErrorCode::NoAuth);
        }
        let node = self.get(path).ok_or(ErrorCode::NoNode)?;
        if version != -1 && version != node.version {
            return Err(ErrorCode::BadVersion);
        }
        if !node.children.is_empty() {
            return Err(ErrorCode::NotEmpty);
        }
        self.unlink(tx, path, parent_path);
        Ok(MultiResult::Delete)
    }

    /// deleteContainer (20): the reaper's delete, which checks no ACL or version.
    fn op_delete_container(&mut self, tx: &mut Tx, path: &str) -> Result<MultiResult, ErrorCode> {
        let parent_path = tree::parent_of(path)
            .filter(|_| !tree::is_special(path))
            .ok_or(ErrorCode::BadArguments)?;
        let node = self.get(path).ok_or(ErrorCode::NoNode)?;
        if !node.children.is_empty() {
            return Err(ErrorCode::NotEmpty);
        }
        if matches!(node.kind, Kind::Ephemeral(_)) {
            return Err(ErrorCode::BadVersion);
        }
        if self.get(parent_path).is_none() {
            return Err(ErrorCode::NoNode);
        }
        self.unlink(tx, path, parent_path);
        Ok(MultiResult::Delete)
    }

    /// Remove a checked, childless node (`DataTree.deleteNode`) and queue its triggers.
    fn unlink(&mut self, tx: &mut Tx, path: &str, parent_path: &str) {
        let parent_key = canonical(parent_path).to_owned();
        self.save(tx, &parent_key);
        self.save(tx, path);
        let Some(node) = self.remove_node(path) else {
            return;
        };
        let mut parent_acl = Vec::new();
        if let Some(parent) = self.nodes.get_mut(&parent_key) {
            parent.children.remove(tree::name_of(path));
            if tx.zxid > parent.pzxid {
                parent.pzxid = tx.zxid;
            }
            parent_acl = parent.acl.clone();
        }
        tx.triggers.push(Trigger::new(
            Manager::Data,
            path,
            EventType::NodeDeleted,
            &node.acl,
        ));
        tx.triggers.push(Trigger {
            suppress_previous: true,
            ..Trigger::new(Manager::Child, path, EventType::NodeDeleted, &node.acl)
        });
        tx.triggers.push(Trigger::new(
            Manager::Child,
            tree::watch_key(parent_path),
            EventType::NodeChildrenChanged,
            &parent_acl,
        ));
    }

    fn op_set_data(
        &mut self,
        tx: &mut Tx,
        path: &str,
        data: &Bytes,
        version: i32,
    ) -> Result<MultiResult, ErrorCode> {
        if !tree::valid_path(path) {
            return Err(ErrorCode::BadArguments);
        }
        let node = self.get(path).ok_or(ErrorCode::NoNode)?;
        if !acl::check(&node.acl, Perms::WRITE, &tx.auth) {
            return Err(ErrorCode::NoAuth);
        }
        if version != -1 && version != node.version {
            return Err(ErrorCode::BadVersion);
        }
        self.save(tx, path);
        let node = self.nodes.get_mut(path).ok_or(ErrorCode::NoNode)?;
        node.data = data.clone();
        node.version = node.version.wrapping_add(1);
        node.mtime = tx.now;
        node.mzxid = tx.zxid;
        let stat = node.stat();
        let acl = node.acl.clone();
        tx.triggers.push(Trigger::new(
            Manager::Data,
            path,
            EventType::NodeDataChanged,
            &acl,
        ));
        Ok(MultiResult::SetData(SetDataResponse { stat }))
    }

    fn op_check(
        &mut self,
        tx: &mut Tx,
        path: &str,
        version: i32,
    ) -> Result<MultiResult, ErrorCode> {
        if !tree::valid_path(path) {
            return Err(ErrorCode::BadArguments);
        }
        let node = self.get(path).ok_or(ErrorCode::NoNode)?;
        if !acl::check(&node.acl, Perms::READ, &tx.auth) {
            return Err(ErrorCode::NoAuth);
        }
        if version != -1 && version != node.version {
            return Err(ErrorCode::BadVersion);
        }
        Ok(MultiResult::Check)
    }

    fn op_set_acl(
        &mut self,
        session: i64,
        path: &str,
        acl: &[Acl],
        version: i32,
    ) -> Result<Stat, ErrorCode> {
        if !tree::valid_path(path) {
            return Err(ErrorCode::BadArguments);
        }
        let auth = self.auth_of(session);
        let acl = acl::fixup(acl, &auth)?;
        let node = self.nodes.get_mut(path).ok_or(ErrorCode::NoNode)?;
        if !acl::check(&node.acl, Perms::ADMIN, &auth) {
            return Err(ErrorCode::NoAuth);
        }
        if version != -1 && version != node.aversion {
            return Err(ErrorCode::BadVersion);
        }
        node.acl = acl;
        node.aversion = node.aversion.wrapping_add(1);
        Ok(node.stat())
    }

    fn multi(&mut self, now_ms: i64, session: i64, m: &MultiRequest) -> Applied {
        let reads = m
            .ops
            .iter()
            .any(|op| matches!(op, MultiOp::GetChildren(_) | MultiOp::GetData(_)));
        if reads {
            // Rejected while decoding, after a zxid was taken.
            return Applied {
                zxid: self.next_zxid(),
                result: Err(ErrorCode::MarshallingError),
                notifications: Vec::new(),
            };
        }
        let mut tx = self.tx(now_ms, session, true);
        let mut results = Vec::with_capacity(m.ops.len());
        for (i, op) in m.ops.iter().enumerate() {
            let r = match op {
                MultiOp::Create(c) | MultiOp::Create2(c) | MultiOp::CreateContainer(c) => {
                    match multi_create_op(c.flags, false) {
                        Some(kind) => {
                            self.op_create(&mut tx, kind, &c.path, &c.data, &c.acl, c.flags, -1)
                        }
                        None => return self.multi_marshalling_error(tx),
                    }
                }
                MultiOp::CreateTtl(c) => match multi_create_op(c.flags, true) {
                    Some(CreateOp::Ttl) => self.op_create(
                        &mut tx,
                        CreateOp::Ttl,
                        &c.path,
                        &c.data,
                        &c.acl,
                        c.flags,
                        c.ttl,
                    ),
                    Some(kind) => {
                        self.op_create(&mut tx, kind, &c.path, &c.data, &c.acl, c.flags, -1)
                    }
                    None => return self.multi_marshalling_error(tx),
                },
                MultiOp::Delete(d) => self.op_delete(&mut tx, &d.path, d.version),
                MultiOp::Check(c) => self.op_check(&mut tx, &c.path, c.version),
                MultiOp::SetData(s) => self.op_set_data(&mut tx, &s.path, &s.data, s.version),
                MultiOp::GetChildren(_) | MultiOp::GetData(_) => Err(ErrorCode::MarshallingError),
            };
            match r {
                Ok(r) => results.push(r),
                Err(code) => {
                    self.rollback(tx.undo.take().unwrap_or_default());
                    let mut results = vec![MultiResult::Error(ErrorCode::Ok); i];
                    results.push(MultiResult::Error(code));
                    results.resize(
                        m.ops.len(),
                        MultiResult::Error(ErrorCode::RuntimeInconsistency),
                    );
                    return Applied {
                        zxid: tx.zxid,
                        result: Ok(Response::Multi(MultiResponse { results })),
                        notifications: Vec::new(),
                    };
                }
            }
        }
        Applied {
            zxid: tx.zxid,
            result: Ok(Response::Multi(MultiResponse { results })),
            notifications: watch::fire(&mut self.sessions, tx.triggers),
        }
    }

    /// A multi whose op the server cannot prepare (a ClassCastException, not a
    /// KeeperException): the whole request fails, after taking its zxid.
    fn multi_marshalling_error(&mut self, mut tx: Tx) -> Applied {
        self.rollback(tx.undo.take().unwrap_or_default());
        Applied {
            zxid: tx.zxid,
            result: Err(ErrorCode::MarshallingError),
            notifications: Vec::new(),
        }
    }

    fn multi_read(&mut self, session: i64, m: &MultiRequest) -> Result<Response, ErrorCode> {
        let writes = m
            .ops
            .iter()
            .any(|op| !matches!(op, MultiOp::GetChildren(_) | MultiOp::GetData(_)));
        if writes {
            return Err(ErrorCode::MarshallingError);
        }
        let results =
            m.ops
                .iter()
                .map(|op| {
                    let r = match op {
                        MultiOp::GetChildren(g) => self
                            .get_children(session, &g.path, g.watch)
                            .map(|(children, _)| {
                                MultiResult::GetChildren(GetChildrenResponse { children })
                            }),
                        MultiOp::GetData(g) => self
                            .get_data(session, &g.path, g.watch)
                            .map(MultiResult::GetData),
                        _ => Err(ErrorCode::MarshallingError),
                    };
                    r.unwrap_or_else(MultiResult::Error)
                })
                .collect();
        Ok(Response::Multi(MultiResponse { results }))
    }

    fn get_data(
        &mut self,
        session: i64,
        path: &str,
        watch: bool,
    ) -> Result<GetDataResponse, ErrorCode> {
        let auth = self.auth_of(session);
        let node = self.get(path).ok_or(ErrorCode::NoNode)?;
        if !acl::check(&node.acl, Perms::READ, &auth) {
            return Err(ErrorCode::NoAuth);
        }
        let r = GetDataResponse {
            data: node.data.clone(),
            stat: node.stat(),
        };
        if watch {
            self.watch(session, Manager::Data, path, Mode::Standard);
        }
        Ok(r)
    }

    fn get_children(
        &mut self,
        session: i64,
        path: &str,
        watch: bool,
    ) -> Result<(Vec<String>, Stat), ErrorCode> {
        let auth = self.auth_of(session);
        let node = self.get(path).ok_or(ErrorCode::NoNode)?;
        if !acl::check(&node.acl, Perms::READ, &auth) {
            return Err(ErrorCode::NoAuth);
        }
        let r = (node.children.iter().cloned().collect(), node.stat());
        if watch {
            self.watch(session, Manager::Child, path, Mode::Standard);
        }
        Ok(r)
    }

    fn watch(&mut self, session: i64, m: Manager, path: &str, mode: Mode) {
        if let Some(s) = self.sessions.get_mut(&session) {
            s.watch(m, path, mode);
        }
    }

    /// Requests that change no data.
    fn read(&mut self, session: i64, request: &Request) -> Result<Response, ErrorCode> {
        let auth = self.auth_of(session);
        match request {
            Request::Exists(e) => {
                if e.path.contains('\0') {
                    return Err(ErrorCode::BadArguments);
                }
                if e.watch {
                    self.watch(session, Manager::Data, &e.path, Mode::Standard);
                }
                let node = self.get(&e.path).ok_or(ErrorCode::NoNode)?;
                Ok(Response::Exists(ExistsResponse { stat: node.stat() }))
            }
            Request::GetData(g) => self
                .get_data(session, &g.path, g.watch)
                .map(Response::GetData),
            Request::GetChildren(g) => self
                .get_children(session, &g.path, g.watch)
                .map(|(children, _)| Response::GetChildren(GetChildrenResponse { children })),
            Request::GetChildren2(g) => {
                self.get_children(session, &g.path, g.watch)
                    .map(|(children, stat)| {
                        Response::GetChildren2(GetChildren2Response { children, stat })
                    })
            }
            Request::GetAcl(g) => {
                let node = self.get(&g.path).ok_or(ErrorCode::NoNode)?;
                if !acl::check(&node.acl, Perms(Perms::READ.0 | Perms::ADMIN.0), &auth) {
                    return Err(ErrorCode::NoAuth);
                }
                let mut acl = node.acl.clone();
                if !acl::check(&node.acl, Perms::ADMIN, &auth) {
                    for a in acl.iter_mut().filter(|a| a.id.scheme == "digest") {
                        if let Some(i) = a.id.id.find(':') {
                            a.id.id.replace_range(i.., ":x");
                        }
                    }
                }
                Ok(Response::GetAcl(GetAclResponse {
                    acl,
                    stat: node.stat(),
                }))
            }
            Request::Sync(s) => Ok(Response::Sync(SyncResponse {
                path: s.path.clone(),
            })),
            Request::GetAllChildrenNumber(g) => {
                let node = self.get(&g.path).ok_or(ErrorCode::NoNode)?;
                if !acl::check(&node.acl, Perms::READ, &auth) {
                    return Err(ErrorCode::NoAuth);
                }
                let n = match g.path.as_str() {
                    // The server counts its node map, where "" and "/" both name the root.
                    "/" => self.nodes.len() - 1,
                    p => {
                        let prefix = format!("{p}/");
                        self.nodes.keys().filter(|k| k.starts_with(&prefix)).count()
                    }
                };
                Ok(Response::GetAllChildrenNumber(
                    GetAllChildrenNumberResponse {
                        total_number: i32::try_from(n).unwrap_or(i32::MAX),
                    },
                ))
            }
            Request::GetEphemerals(g) => {
                let prefix = g.prefix_path.trim();
                let all = prefix.is_empty() || prefix == "/";
                let ephemerals = self
                    .ephemerals(session)
                    .into_iter()
                    .filter(|p| all || p.starts_with(&g.prefix_path))
                    .collect();
                Ok(Response::GetEphemerals(GetEphemeralsResponse {
                    ephemerals,
                }))
            }
            Request::AddWatch(a) => {
                let mode = match a.mode {
                    AddWatchMode::Persistent => Mode::Persistent,
                    AddWatchMode::PersistentRecursive => Mode::Recursive,
                    AddWatchMode::Unknown(_) => return Err(ErrorCode::MarshallingError),
                };
                self.watch(session, Manager::Data, &a.path, mode);
                self.watch(session, Manager::Child, &a.path, mode);
                Ok(Response::AddWatch(ErrorResponse { err: ErrorCode::Ok }))
            }
            Request::CheckWatches(c) => {
                let managers = watch_managers(c.watcher_type)?;
                // 3.8.0's WatchManager.containsWatcher ignores whose watch it is.
                let any = managers.iter().any(|&m| {
                    self.sessions
                        .values()
                        .any(|s| s.table_ref(m).contains_key(&c.path))
                });
                if any {
                    Ok(Response::Empty)
                } else {
                    Err(ErrorCode::NoWatcher)
                }
            }
            Request::RemoveWatches(r) => {
                let managers = watch_managers(r.watcher_type)?;
                let mut removed = false;
                if let Some(s) = self.sessions.get_mut(&session) {
                    for m in managers {
                        removed |= s.table(m).remove(&r.path).is_some();
                    }
                }
                if removed {
                    Ok(Response::Empty)
                } else {
                    Err(ErrorCode::NoWatcher)
                }
            }
            Request::WhoAmI => Ok(Response::WhoAmI(WhoAmIResponse {
                client_info: auth
                    .iter()
                    .map(|(scheme, id)| ClientInfo {
                        auth_scheme: scheme.clone(),
                        user: acl::user_name(scheme, id),
                    })
                    .collect(),
            })),
            Request::Ping => Ok(Response::Empty),
            // Writes and session requests are handled by `apply`.
            _ => Err(ErrorCode::Unimplemented),
        }
    }

    /// Close or expire: one transaction deleting every ephemeral of the session.
    fn end_session(
        &mut self,
        now_ms: i64,
        session: i64,
        expired: bool,
    ) -> Option<Vec<Notification>> {
        if !self.sessions.contains_key(&session) {
            return None;
        }
        if expired {
            self.drop_watches(session);
        }
        let mut tx = self.tx(now_ms, session, false);
        for path in self.ephemerals(session) {
            if let Some(parent) = tree::parent_of(&path) {
                let parent = parent.to_owned();
                self.unlink(&mut tx, &path, &parent);
            }
        }
        let notes = watch::fire(&mut self.sessions, tx.triggers);
        self.sessions.remove(&session);
        self.ephemerals.remove(&session);
        Some(notes)
    }
}

/// The opcode a create op inside a multi really gets: the server rebuilds every create op
/// with `Op.create(path, data, acl, flags[, ttl])`, which picks the opcode from the flags
/// (unknown flags count as persistent): a container mode makes createContainer, a TTL mode
/// createTTL (only a createTTL op carries a ttl: `None` = the server fails the whole multi),
/// anything else a plain create, so create2 ops get path-only results.
fn multi_create_op(flags: CreateMode, has_ttl: bool) -> Option<CreateOp> {
    let mode = match flags.to_raw() {
        raw @ 0..=6 => CreateMode::from_raw(raw),
        _ => CreateMode::Persistent,
    };
    if mode.is_ttl() {
        has_ttl.then_some(CreateOp::Ttl)
    } else if mode.is_container() {
        Some(CreateOp::Container)
    } else {
        Some(CreateOp::Create)
    }
}

/// The root's alias: the server's node map has both `""` and `/`.
fn canonical(path: &str) -> &str {
    if path.is_empty() { "/" } else { path }
}

/// The managers a checkWatches/removeWatches type covers; 3.8 knows only 1–3.
fn watch_managers(t: WatcherType) -> Result<Vec<Manager>, ErrorCode> {
    match t {
        WatcherType::Children => Ok(vec![Manager::Child]),
        WatcherType::Data => Ok(vec![Manager::Data]),
        WatcherType::Any => Ok(vec![Manager::Child, Manager::Data]),
        _ => Err(ErrorCode::MarshallingError),
    }
}
