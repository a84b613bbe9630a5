//! The local watch registry: which watchers wait on which paths, and how a server
//! notification fans out to them (PROTOCOL.md §7).

use std::collections::{HashMap, HashSet};

use zk_proto::EventType;

/// Identifies one local watcher (the id of the operation that registered it).
pub type WatcherId = u64;

/// The kinds of watch a client keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WatchKind {
    /// Set by getData, or exists on a present node: NodeDataChanged, NodeDeleted.
    Data,
    /// Set by exists on a missing node: NodeCreated.
    Exist,
    /// Set by getChildren: NodeChildrenChanged, NodeDeleted.
    Child,
    /// addWatch PERSISTENT: every event on the path, until removed.
    Persistent,
    /// addWatch PERSISTENT_RECURSIVE: created, deleted and data events on the path and below.
    PersistentRecursive,
}

impl WatchKind {
    /// One-shot kinds are removed when they fire.
    pub fn is_one_shot(self) -> bool {
        matches!(self, WatchKind::Data | WatchKind::Exist | WatchKind::Child)
    }
}

/// Watchers by kind and path (client paths, without the chroot).
#[derive(Debug, Default)]
pub struct Registry {
    by_kind: [HashMap<String, Vec<WatcherId>>; 5],
    by_id: HashMap<WatcherId, (WatchKind, String)>,
}

fn slot(kind: WatchKind) -> usize {
    match kind {
        WatchKind::Data => 0,
        WatchKind::Exist => 1,
        WatchKind::Child => 2,
        WatchKind::Persistent => 3,
        WatchKind::PersistentRecursive => 4,
    }
}

impl Registry {
    /// Register a watcher.
    pub fn add(&mut self, id: WatcherId, kind: WatchKind, path: &str) {
        self.by_kind[slot(kind)]
            .entry(path.to_owned())
            .or_default()
            .push(id);
        self.by_id.insert(id, (kind, path.to_owned()));
    }

    /// Remove a watcher; returns its kind and path if it was registered.
    pub fn remove(&mut self, id: WatcherId) -> Option<(WatchKind, String)> {
        let (kind, path) = self.by_id.remove(&id)?;
        let map = &mut self.by_kind[slot(kind)];
        if let Some(ids) = map.get_mut(&path) {
            ids.retain(|w| *w != id);
            if ids.is_empty() {
                map.remove(&path);
            }
        }
        Some((kind, path))
    }

    /// Whether watcher `id` is registered.
    pub fn contains(&self, id: WatcherId) -> bool {
        self.by_id.contains_key(&id)
    }

    /// Whether a watcher of `kind` is registered on exactly `path`.
    pub fn has(&self, kind: WatchKind, path: &str) -> bool {
        self.by_kind[slot(kind)].contains_key(path)
    }

    /// The paths holding both a persistent and a recursive watcher.
    pub fn paths_with_both_persistent_kinds(&self) -> HashSet<String> {
        let recursive = &self.by_kind[slot(WatchKind::PersistentRecursive)];
        self.by_kind[slot(WatchKind::Persistent)]
            .keys()
            .filter(|p| recursive.contains_key(*p))
            .cloned()
            .collect()
    }

    /// Whether any watcher of any kind remains on `path`.
    pub fn has_any_on(&self, path: &str) -> bool {
        self.by_kind.iter().any(|m| m.contains_key(path))
    }

    /// Remove the watchers of `kinds` on exactly `path`, returning their ids.
    pub fn remove_kinds(&mut self, path: &str, kinds: &[WatchKind]) -> Vec<WatcherId> {
        let mut removed = Vec::new();
        for kind in kinds {
            if let Some(ids) = self.by_kind[slot(*kind)].remove(path) {
                for id in &ids {
                    self.by_id.remove(id);
                }
                removed.extend(ids);
            }
        }
        removed
    }

    /// Whether no watcher is registered.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Number of registered watchers.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// The paths of a kind (for SetWatches after a reconnect), sorted for determinism.
    pub fn paths(&self, kind: WatchKind) -> Vec<String> {
        let mut v: Vec<String> = self.by_kind[slot(kind)].keys().cloned().collect();
        v.sort();
        v
    }

    /// The watchers a notification reaches, removing the one-shot ones.
    ///
    /// Recursive watchers on the path or any ancestor get every event but
    /// NodeChildrenChanged (ZOOKEEPER-4475 filtering).
    pub fn trigger(&mut self, event: EventType, path: &str) -> Vec<WatcherId> {
        let one_shot: &[WatchKind] = match event {
            EventType::NodeCreated | EventType::NodeDataChanged => {
                &[WatchKind::Data, WatchKind::Exist]
            }
            EventType::NodeChildrenChanged => &[WatchKind::Child],
            EventType::NodeDeleted => &[WatchKind::Data, WatchKind::Exist, WatchKind::Child],
            _ => &[],
        };
        let mut out = self.remove_kinds(path, one_shot);
        if let Some(ids) = self.by_kind[slot(WatchKind::Persistent)].get(path) {
            out.extend(ids.iter().copied());
        }
        if event != EventType::NodeChildrenChanged {
            let recursive = &self.by_kind[slot(WatchKind::PersistentRecursive)];
            if !recursive.is_empty() {
                let mut at = Some(path);
                while let Some(p) = at {
                    if let Some(ids) = recursive.get(p) {
                        out.extend(ids.iter().copied());
                    }
                    at = parent_path(p);
                }
            }
        }
        out
    }

    /// Remove every watcher, returning their ids.
    pub fn drain(&mut self) -> Vec<WatcherId> {
        for m in &mut self.by_kind {
            m.clear();
        }
        let mut ids: Vec<WatcherId> = self.by_id.drain().map(|(id, _)| id).collect();
        ids.sort_unstable();
        ids
    }
}

/// The parent of a client path (`None` for `/`).
pub(super) fn parent_path(path: &str) -> Option<&str> {
    match path.rfind('/') {
        Some(0) if path.len() > 1 => Some("/"),
        Some(i) if i > 0 => Some(&path[..i]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fan_out_follows_the_java_rules() {
        let mut r = Registry::default();
        r.add(1, WatchKind::Data, "/a");
        r.add(2, WatchKind::Exist, "/a");
        r.add(3, WatchKind::Child, "/a");
        r.add(4, WatchKind::Persistent, "/a");
        r.add(5, WatchKind::PersistentRecursive, "/");
        r.add(6, WatchKind::Data, "/a");
        let mut got = r.trigger(EventType::NodeChildrenChanged, "/a");
        got.sort();
        assert_eq!(
            got,
            [3, 4],
            "recursive watchers never see NodeChildrenChanged"
        );
        let mut got = r.trigger(EventType::NodeDataChanged, "/a");
        got.sort();
        assert_eq!(got, [1, 2, 4, 5, 6]);
        let mut got = r.trigger(EventType::NodeDataChanged, "/a");
        got.sort();
        assert_eq!(got, [4, 5], "one-shot watchers fired once");
        assert_eq!(r.trigger(EventType::NodeDeleted, "/b/c"), [5]);
        assert_eq!(r.len(), 2);
        assert_eq!(r.remove(4), Some((WatchKind::Persistent, "/a".into())));
        assert!(!r.has_any_on("/a"));
    }

    #[test]
    fn parents_up_to_the_root() {
        assert_eq!(parent_path("/a/b/c"), Some("/a/b"));
        assert_eq!(parent_path("/a"), Some("/"));
        assert_eq!(parent_path("/"), None);
        let mut r = Registry::default();
        r.add(1, WatchKind::PersistentRecursive, "/a/b");
        r.add(2, WatchKind::PersistentRecursive, "/a");
        let mut got = r.trigger(EventType::NodeCreated, "/a/b/c");
        got.sort();
        assert_eq!(got, [1, 2]);
        assert_eq!(
            r.trigger(EventType::NodeCreated, "/ab"),
            Vec::<WatcherId>::new()
        );
    }
}
