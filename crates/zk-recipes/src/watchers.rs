//! Higher-level watches (kazoo's `watchers.py`): [`DataWatch`] and [`ChildrenWatch`], as
//! blocking handles over the [`Session`] trait.
//!
//! kazoo calls a function with the current value when the watch is created and again on every
//! change. Here the caller pulls instead: [`DataWatch::next`] returns the current value on the
//! first call, then blocks until the value changes and returns the new one (or `Ok(None)` once
//! the deadline passes). [`DataWatch::for_each`] is kazoo's callback form: it runs until the
//! function returns `false`, as returning `False` stops a kazoo watch.
//!
//! Semantics follow kazoo:
//! - a [`DataWatch`] watches nodes that do not exist yet: it reports `(None, None)` while the
//!   node is absent and keeps watching through deletion and re-creation; a change is a
//!   different `mzxid` (so writing the same bytes again is a change, as in kazoo);
//! - a [`ChildrenWatch`] needs the node to exist: when it is missing (at the start or later)
//!   the watch ends with [`Error::NoNode`], where kazoo stops calling silently;
//! - connection loss is retried (the session's watches survive a reconnect, and the server
//!   delivers what changed meanwhile); session expiry ends the handle with the session's
//!   error. kazoo resumes on its next session by itself; here [`DataWatch::rebind`] /
//!   [`ChildrenWatch::rebind`] move the watch to a new session, and only a value that differs
//!   from the last one returned is reported again (kazoo's behaviour after a reconnect).
//!
//! The module also holds small helpers the recipes of this family share (retries, waiting for
//! a node of ours to go, kazoo-style uuids).

use std::cell::Cell;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_session::WatchedEvent;

use crate::session::Session;
use crate::{Error, Stat};

/// A node's value as a [`DataWatch`] reports it: its data and Stat, both `None` while the node
/// does not exist.
pub type DataValue = (Option<Bytes>, Option<Stat>);

/// Watches one node's data (kazoo's `DataWatch`): the current value first, then every change,
/// through deletion and re-creation of the node.
///
/// ```no_run
/// # fn demo<S: zk_recipes::Session>(session: S) -> Result<(), zk_recipes::Error> {
/// use zk_recipes::watchers::DataWatch;
/// let mut watch = DataWatch::new(session, "/config/feature");
/// while let Some((data, stat)) = watch.next(None)? {
///     match (data, stat) {
///         (Some(data), Some(stat)) => println!("v{}: {data:?}", stat.version),
///         _ => println!("no such node (yet)"),
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct DataWatch<S: Session> {
    session: S,
    path: String,
    watch: Option<S::Watch>,
    /// The last reported version: `None` before the first report; `Some(None)` when the node
    /// was reported absent; else its `mzxid`.
    last: Option<Option<i64>>,
    last_event: Option<WatchedEvent>,
}

impl<S: Session> DataWatch<S> {
    /// A watch on `path`. Nothing is read until the first [`DataWatch::next`].
    pub fn new(session: S, path: impl Into<String>) -> DataWatch<S> {
        DataWatch {
            session,
            path: path.into(),
            watch: None,
            last: None,
            last_event: None,
        }
    }

    /// The watched path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The server event that led to the value last returned (`None` for the first value and
    /// after a [`DataWatch::rebind`]), as kazoo passes `event` to a three-argument function.
    pub fn last_event(&self) -> Option<&WatchedEvent> {
        self.last_event.as_ref()
    }

    /// The current value on the first call; afterwards block until the node changes (data
    /// set, deleted, created) and return the new value. `Ok(None)` when `deadline` passes
    /// first (call again to keep watching). Connection loss is retried until the deadline;
    /// the session's end is returned as its error ([`Error::SessionExpired`], ...).
    pub fn next(&mut self, deadline: Option<Instant>) -> Result<Option<DataValue>, Error> {
        loop {
            if let Some(w) = &self.watch {
                match self.session.wait_watch(w, deadline) {
                    Ok(None) => return Ok(None),
                    Ok(Some(event)) => {
                        self.watch = None;
                        self.last_event = Some(event);
                    }
                    Err(e) => {
                        self.watch = None;
                        return Err(e);
                    }
                }
            }
            let Some((value, watch)) = self.read(deadline)? else {
                return Ok(None);
            };
            self.watch = Some(watch);
            let version = value.1.as_ref().map(|s| s.mzxid);
            if self.last != Some(version) {
                self.last = Some(version);
                return Ok(Some(value));
            }
        }
    }

    /// kazoo's callback form: call `f` with the current value, then with every change, until
    /// it returns `false` (`Ok(())`) or the session ends (its error).
    pub fn for_each(
        &mut self,
        mut f: impl FnMut(Option<&Bytes>, Option<&Stat>) -> bool,
    ) -> Result<(), Error> {
        loop {
            if let Some((data, stat)) = self.next(None)? {
                if !f(data.as_ref(), stat.as_ref()) {
                    return Ok(());
                }
            }
        }
    }

    /// Continue on another session (after the old one expired): the next call reads the node
    /// again and reports it only if it differs from the value last returned.
    pub fn rebind(&mut self, session: S) {
        self.session = session;
        self.watch = None;
        self.last_event = None;
    }

    fn read(&self, deadline: Option<Instant>) -> Result<Option<(DataValue, S::Watch)>, Error> {
        let mut backoff = Backoff::new();
        loop {
            let err = match self.session.get_data_watch(&self.path) {
                Ok((data, stat, w)) => return Ok(Some(((Some(data), Some(stat)), w))),
                Err(Error::NoNode) => match self.session.exists_watch(&self.path) {
                    Ok((None, w)) => return Ok(Some(((None, None), w))),
                    // Created in between: read it again.
                    Ok((Some(_), _)) => continue,
                    Err(e) => e,
                },
                Err(e) => e,
            };
            if !backoff.wait(&self.session, &err, deadline)? {
                return Ok(None);
            }
        }
    }
}

/// Watches one node's children (kazoo's `ChildrenWatch`): the current list first, then every
/// change. The node must exist: once it is missing the watch ends with [`Error::NoNode`].
///
/// Lists are returned in the server's order; a list equal (as a set) to the one last returned
/// is not reported again.
#[derive(Debug)]
pub struct ChildrenWatch<S: Session> {
    session: S,
    path: String,
    watch: Option<S::Watch>,
    /// The last reported list, sorted.
    last: Option<Vec<String>>,
    last_event: Option<WatchedEvent>,
    ended: bool,
}

impl<S: Session> ChildrenWatch<S> {
    /// A watch on the children of `path`. Nothing is read until the first
    /// [`ChildrenWatch::next`].
    pub fn new(session: S, path: impl Into<String>) -> ChildrenWatch<S> {
        ChildrenWatch {
            session,
            path: path.into(),
            watch: None,
            last: None,
            last_event: None,
            ended: false,
        }
    }

    /// The watched path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The server event that led to the list last returned (`None` for the first one).
    pub fn last_event(&self) -> Option<&WatchedEvent> {
        self.last_event.as_ref()
    }

    /// The current children on the first call; afterwards block until they change and return
    /// the new list. `Ok(None)` when `deadline` passes first. [`Error::NoNode`] once the node
    /// is missing (and on every later call); the session's end as its error.
    pub fn next(&mut self, deadline: Option<Instant>) -> Result<Option<Vec<String>>, Error> {
        loop {
            if self.ended {
                return Err(Error::NoNode);
            }
            if let Some(w) = &self.watch {
                match self.session.wait_watch(w, deadline) {
                    Ok(None) => return Ok(None),
                    Ok(Some(event)) => {
                        self.watch = None;
                        self.last_event = Some(event);
                    }
                    Err(e) => {
                        self.watch = None;
                        return Err(e);
                    }
                }
            }
            let mut backoff = Backoff::new();
            let (children, watch) = loop {
                let err = match self.session.get_children_watch(&self.path) {
                    Ok((children, _, w)) => break (children, w),
                    Err(Error::NoNode) => {
                        self.ended = true;
                        return Err(Error::NoNode);
                    }
                    Err(e) => e,
                };
                if !backoff.wait(&self.session, &err, deadline)? {
                    return Ok(None);
                }
            };
            self.watch = Some(watch);
            let mut sorted = children.clone();
            sorted.sort_unstable();
            if self.last.as_ref() != Some(&sorted) {
                self.last = Some(sorted);
                return Ok(Some(children));
            }
        }
    }

    /// kazoo's callback form: call `f` with the children now, then after every change, until
    /// it returns `false` (`Ok(())`), the node is gone ([`Error::NoNode`]) or the session
    /// ends.
    pub fn for_each(&mut self, mut f: impl FnMut(&[String]) -> bool) -> Result<(), Error> {
        loop {
            if let Some(children) = self.next(None)? {
                if !f(&children) {
                    return Ok(());
                }
            }
        }
    }

    /// Continue on another session (after the old one expired): the next call lists the
    /// children again and reports them only if they differ from the list last returned.
    pub fn rebind(&mut self, session: S) {
        self.session = session;
        self.watch = None;
        self.last_event = None;
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers shared by the election and party recipes.

/// Exponential backoff for retryable errors (connection loss, throttling, timeouts): waits for
/// the session to reconnect when it is disconnected, else sleeps, never past a deadline.
#[derive(Debug)]
pub(crate) struct Backoff {
    delay: Duration,
}

impl Backoff {
    pub(crate) fn new() -> Backoff {
        Backoff {
            delay: Duration::from_millis(10),
        }
    }

    /// After `err`: `Err(err)` when it is not retryable (terminal errors included); `Ok(false)`
    /// when `deadline` has passed; else wait a little and `Ok(true)` (try again).
    pub(crate) fn wait<S: Session>(
        &mut self,
        session: &S,
        err: &Error,
        deadline: Option<Instant>,
    ) -> Result<bool, Error> {
        if !err.is_retryable() {
            return Err(err.clone());
        }
        let now = session.now();
        if deadline.is_some_and(|d| now >= d) {
            return Ok(false);
        }
        let mut until = now + self.delay;
        if let Some(d) = deadline {
            until = until.min(d);
        }
        let state = session.state();
        if state.is_terminal() {
            return Err(state_error(state));
        }
        if state.is_connected() {
            session.sleep(until.saturating_duration_since(now));
        } else {
            // Reconnecting: resume as soon as the state changes.
            let after = session.wait_state(state, Some(until));
            if after.is_terminal() {
                return Err(state_error(after));
            }
        }
        self.delay = (self.delay * 2).min(Duration::from_secs(1));
        Ok(true)
    }
}

/// The error a terminal session state stands for.
pub(crate) fn state_error(state: zk_session::SessionState) -> Error {
    use zk_session::SessionState;
    match state {
        SessionState::Expired => Error::SessionExpired,
        SessionState::AuthFailed => Error::AuthFailed,
        _ => Error::Closed,
    }
}

/// Run `f`, retrying retryable errors (see [`Backoff`]) until `deadline`; at the deadline the
/// last error is returned.
pub(crate) fn retrying<S: Session, T>(
    session: &S,
    deadline: Option<Instant>,
    mut f: impl FnMut() -> Result<T, Error>,
) -> Result<T, Error> {
    let mut backoff = Backoff::new();
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) => {
                if !backoff.wait(session, &e, deadline)? {
                    return Err(e);
                }
            }
        }
    }
}

/// Whether `stat` describes an ephemeral node owned by this session.
pub(crate) fn owned_by<S: Session>(session: &S, stat: &Stat) -> bool {
    stat.ephemeral_owner != 0 && stat.ephemeral_owner == session.session_id()
}

/// Wait until `path`, an ephemeral node of this session, is gone: deleted, owned by another
/// session, or lost with the session. `Ok(true)` when gone, `Ok(false)` when `deadline`
/// passes first; other errors as they come (e.g. [`Error::NoAuth`]).
pub(crate) fn wait_node_gone<S: Session>(
    session: &S,
    path: &str,
    deadline: Option<Instant>,
) -> Result<bool, Error> {
    let mut backoff = Backoff::new();
    loop {
        if session.state().is_terminal() {
            return Ok(true);
        }
        let err = match session.exists_watch(path) {
            Ok((None, _)) => return Ok(true),
            Ok((Some(stat), _)) if !owned_by(session, &stat) => return Ok(true),
            Ok((Some(_), w)) => match session.wait_watch(&w, deadline) {
                Ok(None) => return Ok(false),
                Ok(Some(_)) => continue,
                Err(e) if e.is_terminal() => return Ok(true),
                Err(e) => e,
            },
            Err(e) if e.is_terminal() => return Ok(true),
            Err(e) => e,
        };
        if !backoff.wait(session, &err, deadline)? {
            return Ok(false);
        }
    }
}

/// Whether `path`, an ephemeral node of this session, still exists (one round trip; retried
/// through connection loss until `deadline`). A terminal session answers `Ok(false)`.
pub(crate) fn node_held<S: Session>(
    session: &S,
    path: &str,
    deadline: Option<Instant>,
) -> Result<bool, Error> {
    match retrying(session, deadline, || session.exists(path)) {
        Ok(Some(stat)) => Ok(owned_by(session, &stat)),
        Ok(None) => Ok(false),
        Err(e) if e.is_terminal() => Ok(false),
        Err(e) => Err(e),
    }
}

/// Delete our node, retrying connection loss (an ambiguous delete is confirmed by the retry's
/// `NoNode`) until it is gone, the session ends (an ephemeral goes with it), or `deadline`.
/// kazoo makes one best-effort attempt (#732, #760); a contender node left behind blocks
/// everyone queued after it until the session ends.
pub(crate) fn delete_until_gone<S: Session>(
    session: &S,
    path: &str,
    deadline: Option<Instant>,
) -> Result<(), Error> {
    match retrying(session, deadline, || session.delete(path, None)) {
        Ok(()) | Err(Error::NoNode) => Ok(()),
        Err(e) if e.is_terminal() => Ok(()),
        Err(e) => Err(e),
    }
}

thread_local! {
    static UUIDS_MADE: Cell<u64> = const { Cell::new(0) };
}

/// A random-looking 128-bit uuid in kazoo's form (`uuid.uuid4().hex`: 32 lowercase hex digits,
/// version 4). The simulator must stay deterministic, so it is derived, not drawn from the OS:
/// from the session id, the path and a `tag` (the recipe and identifier), a per-thread counter
/// and the thread. Simulated processes are threads named `sim-task-N`, so the name stands for
/// the thread there; elsewhere the thread's id does, so threads sharing one session never
/// derive the same uuid.
pub(crate) fn uuid_hex<S: Session>(session: &S, path: &str, tag: &str) -> String {
    let count = UUIDS_MADE.with(|c| {
        let n = c.get();
        c.set(n + 1);
        n
    });
    let thread = std::thread::current();
    let mut h = Fnv::default();
    session.session_id().hash(&mut h);
    path.hash(&mut h);
    tag.hash(&mut h);
    count.hash(&mut h);
    match thread.name() {
        Some(name) if name.starts_with("sim-task-") => name.hash(&mut h),
        _ => {
            thread.id().hash(&mut h);
            std::process::id().hash(&mut h);
        }
    }
    let seed = h.finish();
    let hi = splitmix64(seed);
    let lo = splitmix64(seed ^ 0x9e37_79b9_7f4a_7c15 ^ hi);
    // Version 4, RFC 4122 variant, as uuid4() sets them.
    let hi = (hi & !0xf000) | 0x4000;
    let lo = (lo & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!("{hi:016x}{lo:016x}")
}

/// FNV-1a: a fixed, seedless hash (unlike `RandomState`), so uuids repeat in the simulator.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::sim::{Sim, SimConfig};

    fn uuids(seed: u64) -> Vec<String> {
        let out: Arc<Mutex<Vec<String>>> = Arc::default();
        let mut sim = Sim::new(SimConfig {
            seed,
            ..SimConfig::default()
        });
        for _ in 0..2 {
            let out = out.clone();
            sim.spawn("p", move |ctx| {
                let zk = ctx.connect();
                for _ in 0..3 {
                    let u = uuid_hex(&zk, "/x", "tag");
                    out.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(u);
                }
            });
        }
        let report = sim.run();
        assert!(report.panics.is_empty(), "{:?}", report.panics);
        let v = out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        v
    }

    #[test]
    fn uuids_look_like_uuid4_hex_and_repeat_in_the_simulator() {
        let a = uuids(1);
        assert_eq!(a.len(), 6);
        for u in &a {
            assert_eq!(u.len(), 32, "{u}");
            assert!(
                u.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
            assert_eq!(&u[12..13], "4", "version 4: {u}");
            assert!(matches!(&u[16..17], "8" | "9" | "a" | "b"), "variant: {u}");
        }
        let distinct: std::collections::BTreeSet<&String> = a.iter().collect();
        assert_eq!(distinct.len(), a.len(), "{a:?}");
        let mut again = uuids(1);
        let mut a = a;
        a.sort();
        again.sort();
        assert_eq!(a, again, "deterministic in the simulator");
    }

    #[test]
    fn threads_sharing_a_session_get_different_uuids() {
        // Outside the simulator each thread mixes in its id: two threads' first uuids on one
        // session, path and tag differ.
        let mut sim = Sim::new(SimConfig::default());
        let out: Arc<Mutex<Vec<String>>> = Arc::default();
        let o = out.clone();
        sim.spawn("p", move |ctx| {
            let zk = ctx.connect();
            let made: Vec<String> = (0..2)
                .map(|_| {
                    let zk = zk.clone();
                    std::thread::spawn(move || uuid_hex(&zk, "/x", "t"))
                })
                .collect::<Vec<_>>()
                .into_iter()
                .filter_map(|h| h.join().ok())
                .collect();
            o.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend(made);
        });
        let report = sim.run();
        assert!(report.panics.is_empty(), "{:?}", report.panics);
        let out = out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        assert_eq!(out.len(), 2);
        assert_ne!(out[0], out[1]);
    }
}
