//! Znodes and path rules.

use std::collections::BTreeSet;

use bytes::Bytes;
use zk_proto::{Acl, Stat};

/// What kind of node, i.e. the server's `EphemeralType` behind `ephemeralOwner`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// An ordinary persistent node.
    Persistent,
    /// Dies with the session.
    Ephemeral(i64),
    /// Deleted by the reaper once it had a child and is empty.
    Container,
    /// Deleted by the reaper once empty and unmodified for the TTL (ms).
    Ttl(i64),
}

/// One znode: the server's `DataNode` with its `StatPersisted`.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub data: Bytes,
    pub acl: Vec<Acl>,
    pub czxid: i64,
    pub mzxid: i64,
    pub pzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    /// The internal child counter: children ever created (not deletes). Sequence suffixes
    /// come from it; clients see `2 * cversion - numChildren`.
    pub cversion: i32,
    pub aversion: i32,
    pub kind: Kind,
    pub children: BTreeSet<String>,
}

impl Node {
    /// A node as `DataTree.createNode` makes it.
    pub(crate) fn new(data: Bytes, acl: Vec<Acl>, zxid: i64, now: i64, kind: Kind) -> Node {
        Node {
            data,
            acl,
            czxid: zxid,
            mzxid: zxid,
            pzxid: zxid,
            ctime: now,
            mtime: now,
            version: 0,
            cversion: 0,
            aversion: 0,
            kind,
            children: BTreeSet::new(),
        }
    }

    /// A node of the initial tree (`/`, `/zookeeper`, ...): all-zero stat.
    pub(crate) fn builtin(acl: Vec<Acl>, children: &[&str]) -> Node {
        let mut n = Node::new(Bytes::new(), acl, 0, 0, Kind::Persistent);
        n.children = children.iter().map(|c| (*c).to_owned()).collect();
        n
    }

    /// The Stat a client sees (`DataNode.copyStat`).
    pub(crate) fn stat(&self) -> Stat {
        let num_children = i32::try_from(self.children.len()).unwrap_or(i32::MAX);
        Stat {
            czxid: self.czxid,
            mzxid: self.mzxid,
            ctime: self.ctime,
            mtime: self.mtime,
            version: self.version,
            cversion: self.cversion.wrapping_mul(2).wrapping_sub(num_children),
            aversion: self.aversion,
            // Container and TTL markers are hidden from clients.
            ephemeral_owner: match self.kind {
                Kind::Ephemeral(s) => s,
                _ => 0,
            },
            data_length: i32::try_from(self.data.len()).unwrap_or(i32::MAX),
            num_children,
            pzxid: self.pzxid,
        }
    }
}

/// The paths `delete` refuses with BadArguments (`DataTree.isSpecialPath`).
pub(crate) fn is_special(path: &str) -> bool {
    matches!(
        path,
        "/" | "/zookeeper" | "/zookeeper/quota" | "/zookeeper/config"
    )
}

/// The parent of `path` as the server computes it (`path.substring(0, lastIndexOf('/'))`);
/// `None` without a slash or with a NUL (the server's BadArguments).
pub(crate) fn parent_of(path: &str) -> Option<&str> {
    if path.contains('\0') {
        return None;
    }
    path.rfind('/').map(|i| &path[..i])
}

/// The last segment of `path`.
pub(crate) fn name_of(path: &str) -> &str {
    path.rfind('/').map_or(path, |i| &path[i + 1..])
}

/// The path that watches on a parent are keyed by: the server turns the root's parent `""`
/// into `/`.
pub(crate) fn watch_key(parent: &str) -> &str {
    if parent.is_empty() { "/" } else { parent }
}

/// `path` and its ancestors up to `/`, nearest first (`PathParentIterator`).
pub(crate) fn self_and_ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut next = Some(path);
    std::iter::from_fn(move || {
        let cur = next?;
        next = if cur == "/" || cur.is_empty() {
            None
        } else {
            match cur.rfind('/') {
                Some(0) => Some("/"),
                Some(i) => Some(&cur[..i]),
                None => None,
            }
        };
        Some(cur)
    })
}

/// Java's `PathUtils.validatePath`, over UTF-16 code units as Java sees the string.
pub(crate) fn valid_path(path: &str) -> bool {
    let chars: Vec<u16> = path.encode_utf16().collect();
    let slash = u16::from(b'/');
    let dot = u16::from(b'.');
    match chars.as_slice() {
        [] => return false,
        [first, ..] if *first != slash => return false,
        [_] => return true,
        [.., last] if *last == slash => return false,
        _ => {}
    }
    let mut lastc = slash;
    for i in 1..chars.len() {
        let c = chars[i];
        let next_is_end_or_slash = i + 1 == chars.len() || chars[i + 1] == slash;
        if c == 0 || (c == slash && lastc == slash) {
            return false;
        } else if c == dot && lastc == dot {
            if chars[i - 2] == slash && next_is_end_or_slash {
                return false;
            }
        } else if c == dot {
            if chars[i - 1] == slash && next_is_end_or_slash {
                return false;
            }
        } else if (0x01..=0x1f).contains(&c)
            || (0x7f..=0x9f).contains(&c)
            || (0xd800..=0xf8ff).contains(&c)
            || c >= 0xfff0
        {
            return false;
        }
        lastc = c;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_rules() {
        for ok in ["/", "/a", "/a/b", "/a.b", "/...", "/a/..b", "/é"] {
            assert!(valid_path(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            "/a/",
            "//",
            "/a//b",
            "/.",
            "/..",
            "/a/./b",
            "/a/../b",
            "/a\0",
            "/\u{1}",
            "/\u{85}",
            "/\u{e000}",
            "/😀",
            "/\u{fff0}",
        ] {
            assert!(!valid_path(bad), "{bad:?}");
        }
    }

    #[test]
    fn ancestors() {
        let v: Vec<&str> = self_and_ancestors("/a/b/c").collect();
        assert_eq!(v, ["/a/b/c", "/a/b", "/a", "/"]);
        assert_eq!(self_and_ancestors("/").collect::<Vec<_>>(), ["/"]);
        assert_eq!(parent_of("/a"), Some(""));
        assert_eq!(parent_of("/a/b"), Some("/a"));
        assert_eq!(parent_of("a"), None);
        assert_eq!(name_of("/a/b"), "b");
    }
}
