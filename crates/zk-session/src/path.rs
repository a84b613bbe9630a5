//! Path rules (as ZooKeeper's Java `PathUtils`) and chroot handling.

use crate::error::Error;

fn invalid(path: &str, reason: &'static str) -> Error {
    Error::InvalidPath {
        path: path.to_owned(),
        reason,
    }
}

fn bad_char(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{e000}'..='\u{f8ff}' | '\u{fff0}'..='\u{ffff}')
}

/// Check a node path. `sequential` allows a trailing `/` (the node name is then just the
/// sequence number), as for sequential creates.
pub fn validate_path(path: &str, sequential: bool) -> Result<(), Error> {
    if path.is_empty() {
        return Err(invalid(path, "path must not be empty"));
    }
    if !path.starts_with('/') {
        return Err(invalid(path, "path must start with /"));
    }
    if path.len() == 1 {
        return if sequential {
            // "/" + sequence: the server creates "/0000000001".
            Ok(())
        } else {
            Ok(())
        };
    }
    let body = if sequential && path.ends_with('/') {
        &path[..path.len() - 1]
    } else {
        path
    };
    if body.ends_with('/') {
        return Err(invalid(path, "path must not end with /"));
    }
    for segment in body[1..].split('/') {
        if segment.is_empty() {
            return Err(invalid(path, "empty node name (//)"));
        }
        if segment == "." || segment == ".." {
            return Err(invalid(path, "relative names . and .. are not allowed"));
        }
        if segment.chars().any(bad_char) {
            return Err(invalid(path, "invalid character"));
        }
    }
    Ok(())
}

/// A chroot prefix applied to outgoing paths and stripped from incoming ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chroot(Option<String>);

impl Chroot {
    /// No chroot.
    pub fn none() -> Chroot {
        Chroot(None)
    }

    /// A chroot such as `/app`; `/` or empty means none.
    pub fn new(root: &str) -> Result<Chroot, Error> {
        if root.is_empty() || root == "/" {
            return Ok(Chroot(None));
        }
        validate_path(root, false)?;
        Ok(Chroot(Some(root.to_owned())))
    }

    /// The prefix, if any.
    pub fn prefix(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// The extra bytes the chroot adds to each path.
    pub fn extra_len(&self) -> usize {
        self.0.as_ref().map_or(0, String::len)
    }

    /// Client path → server path (the client's `/` is the chroot itself).
    pub fn apply(&self, path: &mut String) {
        if let Some(root) = &self.0 {
            if path == "/" {
                path.clone_from(root);
            } else {
                path.insert_str(0, root);
            }
        }
    }

    /// Server path → client path. A path outside the chroot is returned unchanged.
    pub fn strip(&self, path: &mut String) {
        let Some(root) = &self.0 else { return };
        if path == root {
            *path = "/".to_owned();
        } else if path.starts_with(root.as_str()) && path.as_bytes().get(root.len()) == Some(&b'/')
        {
            path.drain(..root.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_path_rules() {
        for ok in ["/", "/a", "/a/b", "/a-b.c_d", "/ü", "/a/.b", "/a/..b"] {
            assert_eq!(validate_path(ok, false), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "a",
            "a/b",
            "/a/",
            "//",
            "/a//b",
            "/.",
            "/..",
            "/a/./b",
            "/a/../b",
            "/a\0b",
            "/a\u{1}",
            "/\u{7f}",
            "/\u{e000}",
            "/\u{fff0}",
        ] {
            assert!(
                matches!(validate_path(bad, false), Err(Error::InvalidPath { .. })),
                "{bad:?} should be rejected"
            );
        }
        assert_eq!(validate_path("/a/", true), Ok(()));
        assert_eq!(validate_path("/", true), Ok(()));
        assert!(validate_path("/a//", true).is_err());
    }

    #[test]
    fn chroot_apply_and_strip() {
        let c = Chroot::new("/app").unwrap();
        let mut p = "/".to_owned();
        c.apply(&mut p);
        assert_eq!(p, "/app");
        let mut p = "/x/y".to_owned();
        c.apply(&mut p);
        assert_eq!(p, "/app/x/y");
        c.strip(&mut p);
        assert_eq!(p, "/x/y");
        let mut p = "/app".to_owned();
        c.strip(&mut p);
        assert_eq!(p, "/");
        let mut p = "/apple/x".to_owned();
        c.strip(&mut p);
        assert_eq!(p, "/apple/x", "outside the chroot: unchanged");
        assert_eq!(Chroot::new("/").unwrap(), Chroot::none());
        assert!(Chroot::new("app").is_err());
    }
}
