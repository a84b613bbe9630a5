//! Sessions and their watches, and the 3.8 server's firing rules (`WatchManager`).
//!
//! The server keeps two watch managers, data and child, and in 3.8 each holds **one mode per
//! (connection, path)**: the last registration wins. `exists`/`getData` register a standard
//! watch in the data manager, `getChildren` in the child manager, `addWatch` the same mode in
//! both. A trigger walks the path and its ancestors: a recursive registration fires for
//! anything but NodeChildrenChanged, any other only on the path itself (and a standard one
//! is consumed). Each connection gets at most one notification per trigger, and (as the
//! Debian 3.8.0 server has the CVE-2024-23944 fix) only if it may READ the node.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use zk_proto::{Acl, EventType, KeeperState, Perms, WatcherEvent};

use super::Notification;
use super::acl::{self, Ident};
use super::tree::self_and_ancestors;

/// How a registration fires (`WatcherMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// One-shot.
    Standard,
    /// Survives firing; this path only.
    Persistent,
    /// Survives firing; this path and all below, never NodeChildrenChanged.
    Recursive,
}

/// Which watch manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Manager {
    /// `dataWatches`: exists, getData, addWatch.
    Data,
    /// `childWatches`: getChildren, addWatch.
    Child,
}

/// One live session.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub timeout: i32,
    pub password: Bytes,
    /// Authenticated identities, always including the connection's `ip`.
    pub auth: BTreeSet<Ident>,
    pub data_watches: BTreeMap<String, Mode>,
    pub child_watches: BTreeMap<String, Mode>,
}

impl Session {
    pub(crate) fn new(timeout: i32, password: Bytes) -> Session {
        Session {
            timeout,
            password,
            auth: BTreeSet::from([("ip".to_owned(), acl::CLIENT_IP.to_owned())]),
            data_watches: BTreeMap::new(),
            child_watches: BTreeMap::new(),
        }
    }

    pub(crate) fn table(&mut self, m: Manager) -> &mut BTreeMap<String, Mode> {
        match m {
            Manager::Data => &mut self.data_watches,
            Manager::Child => &mut self.child_watches,
        }
    }

    pub(crate) fn table_ref(&self, m: Manager) -> &BTreeMap<String, Mode> {
        match m {
            Manager::Data => &self.data_watches,
            Manager::Child => &self.child_watches,
        }
    }

    /// Register (or re-mode: the last registration wins) a watch.
    pub(crate) fn watch(&mut self, m: Manager, path: &str, mode: Mode) {
        self.table(m).insert(path.to_owned(), mode);
    }
}

/// A watch trigger produced by a change, fired once the change is committed.
#[derive(Debug, Clone)]
pub(crate) struct Trigger {
    pub manager: Manager,
    pub path: String,
    pub event: EventType,
    /// The ACL the notification is checked against (READ).
    pub acl: Vec<Acl>,
    /// Skip the connections the previous trigger hit (`deleteNode`'s child-manager
    /// NodeDeleted after the data-manager one).
    pub suppress_previous: bool,
}

impl Trigger {
    pub(crate) fn new(manager: Manager, path: &str, event: EventType, acl: &[Acl]) -> Trigger {
        Trigger {
            manager,
            path: path.to_owned(),
            event,
            acl: acl.to_vec(),
            suppress_previous: false,
        }
    }
}

/// Fire `triggers` in order against every session's registrations.
pub(crate) fn fire(
    sessions: &mut BTreeMap<i64, Session>,
    triggers: Vec<Trigger>,
) -> Vec<Notification> {
    let mut out = Vec::new();
    let mut previous: BTreeSet<i64> = BTreeSet::new();
    for t in triggers {
        let mut hit = BTreeSet::new();
        for (&sid, session) in sessions.iter_mut() {
            let table = session.table(t.manager);
            let mut fired = false;
            for local in self_and_ancestors(&t.path) {
                let Some(&mode) = table.get(local) else {
                    continue;
                };
                if mode == Mode::Recursive {
                    fired |= t.event != EventType::NodeChildrenChanged;
                } else if local == t.path {
                    fired = true;
                    if mode == Mode::Standard {
                        table.remove(local);
                    }
                }
            }
            if fired {
                hit.insert(sid);
            }
        }
        for &sid in &hit {
            if t.suppress_previous && previous.contains(&sid) {
                continue;
            }
            let Some(session) = sessions.get(&sid) else {
                continue;
            };
            if acl::check(&t.acl, Perms::READ, &session.auth) {
                out.push(Notification {
                    session: sid,
                    event: event(t.event, &t.path),
                });
            }
        }
        previous = hit;
    }
    out
}

/// A server notification: always state SyncConnected.
pub(crate) fn event(event_type: EventType, path: &str) -> WatcherEvent {
    WatcherEvent {
        event_type,
        state: KeeperState::SyncConnected,
        path: path.to_owned(),
    }
}
