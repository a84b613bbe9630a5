//! Fencing: a lock is not a fence (FAULTS.md). A holder that stalls past its session loses
//! its node while still believing it holds the lock; writes made through a [`Fence`] carry a
//! check of the holder's own node in the same multi, so they fail once the node is gone.

use crate::session::Session;
use crate::{Error, Op, OpResult};

/// Proof of holding a lock, lease or leadership: the holder's own node and a token that
/// increases with every new holder (the node's sequence number, or its czxid for nodes
/// without one).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fence {
    /// The holder's own node.
    pub node: String,
    /// Monotonic per new holder: compare tokens to order holders.
    pub token: i64,
}

impl Fence {
    /// Run `ops` atomically only if the holder's node still exists (a `check` on it first).
    /// Fails with [`Error::MultiFailed`] `{ index: 0, .. }` when the node is gone, i.e. when
    /// the holder has lost the lock.
    pub fn write<S: Session>(&self, session: &S, ops: Vec<Op>) -> Result<Vec<OpResult>, Error> {
        let mut all = Vec::with_capacity(ops.len() + 1);
        all.push(Op::check(&self.node, None));
        all.extend(ops);
        let mut results = session.multi(all)?;
        results.remove(0);
        Ok(results)
    }

    /// Whether an error from [`Fence::write`] means the fence was lost (not a transient or
    /// unrelated failure).
    pub fn is_lost(err: &Error) -> bool {
        matches!(
            err,
            Error::MultiFailed { index: 0, .. } | Error::SessionExpired | Error::Closed
        )
    }
}

/// The sequence number of a sequential node name: what follows the last `marker` (e.g.
/// `__lock__` in kazoo's `<uuid>__lock__0000000042`, or `lock-` in Curator's names), read as
/// the server writes it with `%010d` — a signed 32-bit counter, so names past 2^31-1 carry a
/// negative number (`__lock__-000000001`). Compare contenders by this integer, never by the
/// name's text (kazoo #730, #731).
pub fn sequence_of(name: &str, marker: &str) -> Option<i64> {
    let at = name.rfind(marker)?;
    let suffix = &name[at + marker.len()..];
    if suffix.len() < 10 || !suffix.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return None;
    }
    suffix.parse::<i32>().ok().map(i64::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_including_negative_ones() {
        assert_eq!(sequence_of("abc__lock__0000000042", "__lock__"), Some(42));
        assert_eq!(sequence_of("lock-0000000000", "lock-"), Some(0));
        assert_eq!(
            sequence_of("lock-2147483647", "lock-"),
            Some(i64::from(i32::MAX))
        );
        assert_eq!(
            sequence_of("lock--2147483648", "lock-"),
            Some(i64::from(i32::MIN))
        );
        assert_eq!(sequence_of("lock-1000000000", "lock-"), Some(1_000_000_000));
        assert_eq!(sequence_of("u__lock__-000000001", "__lock__"), Some(-1));
        assert_eq!(sequence_of("plain", "__lock__"), None);
        assert_eq!(sequence_of("x__lock__12", "__lock__"), None);
    }
}
