//! The [`Session`] trait: the small interface every recipe is written against.
//!
//! Two implementations: [`zk_session::Client`] (real sockets, real time) and
//! [`crate::sim::SimSession`] (the deterministic simulator, virtual time). Recipes use nothing
//! else — no clock, no sleeps, no threads of their own — so the simulator sees and orders
//! every step they take.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_session::{Client, CreateOptions, Error, Op, OpResult, SessionState, Stat, WatchedEvent};

/// A ZooKeeper session as the recipes see it: blocking operations, one-shot watches, session
/// state, and time.
pub trait Session: Clone + Send + Sync + 'static {
    /// A one-shot watch left by the `_watch` reads.
    type Watch: Send + 'static;

    /// Create a node; returns the created path (with any sequence suffix) and its Stat.
    fn create(
        &self,
        path: &str,
        data: &[u8],
        options: &CreateOptions,
    ) -> Result<(String, Stat), Error>;
    /// Delete a node (`None`: any version).
    fn delete(&self, path: &str, version: Option<i32>) -> Result<(), Error>;
    /// The node's Stat, or `None`.
    fn exists(&self, path: &str) -> Result<Option<Stat>, Error>;
    /// [`Session::exists`], leaving a watch (created if missing; changed or deleted if present).
    fn exists_watch(&self, path: &str) -> Result<(Option<Stat>, Self::Watch), Error>;
    /// The node's data and Stat.
    fn get_data(&self, path: &str) -> Result<(Bytes, Stat), Error>;
    /// [`Session::get_data`], leaving a watch for a change or delete.
    fn get_data_watch(&self, path: &str) -> Result<(Bytes, Stat, Self::Watch), Error>;
    /// Set the node's data (`None`: any version).
    fn set_data(&self, path: &str, data: &[u8], version: Option<i32>) -> Result<Stat, Error>;
    /// The node's children (unsorted) and its Stat.
    fn get_children(&self, path: &str) -> Result<(Vec<String>, Stat), Error>;
    /// [`Session::get_children`], leaving a watch for a child change or the node's delete.
    fn get_children_watch(&self, path: &str) -> Result<(Vec<String>, Stat, Self::Watch), Error>;
    /// Run ops atomically.
    fn multi(&self, ops: Vec<Op>) -> Result<Vec<OpResult>, Error>;
    /// Create a node, then list `parent`'s children: `Err` is the create's error; after a
    /// successful create, the listing's own outcome comes with the create's. The listing is
    /// read after the create, so it includes the new node unless something deleted it since.
    ///
    /// The default runs the two calls one after the other; a real client sends the listing
    /// right behind the create ([`Client::batch`]), one round trip for both.
    #[allow(clippy::type_complexity)]
    fn create_and_list(
        &self,
        path: &str,
        data: &[u8],
        options: &CreateOptions,
        parent: &str,
    ) -> Result<((String, Stat), Result<(Vec<String>, Stat), Error>), Error> {
        let created = self.create(path, data, options)?;
        Ok((created, self.get_children(parent)))
    }
    /// Catch the connected server up with the leader.
    fn sync(&self, path: &str) -> Result<(), Error>;

    /// The session id (0 before the first connect).
    fn session_id(&self) -> i64;
    /// The session state now.
    fn state(&self) -> SessionState;

    /// The current time (virtual in the simulator).
    fn now(&self) -> Instant;
    /// Sleep (virtual in the simulator).
    fn sleep(&self, duration: Duration);
    /// Wait for `watch` to fire: `Ok(Some(event))`, `Ok(None)` once `deadline` passes, or the
    /// error that ended the session (the watch will then never fire).
    fn wait_watch(
        &self,
        watch: &Self::Watch,
        deadline: Option<Instant>,
    ) -> Result<Option<WatchedEvent>, Error>;
    /// Block until the state differs from `seen` or `deadline` passes; returns the state then.
    fn wait_state(&self, seen: SessionState, deadline: Option<Instant>) -> SessionState;
}

/// Helpers every [`Session`] gets.
pub trait SessionExt: Session {
    /// Create `path` and missing ancestors as empty persistent nodes; existing ones stay.
    fn ensure_path(&self, path: &str) -> Result<(), Error> {
        if path == "/" || path.is_empty() {
            return Ok(());
        }
        match self.create(path, b"", &CreateOptions::persistent()) {
            Ok(_) | Err(Error::NodeExists) => Ok(()),
            Err(Error::NoNode) => {
                let parent = parent_of(path);
                self.ensure_path(parent)?;
                match self.create(path, b"", &CreateOptions::persistent()) {
                    Ok(_) | Err(Error::NodeExists) => Ok(()),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Delete `path` and everything below it; vanished nodes are fine.
    fn delete_recursive(&self, path: &str) -> Result<(), Error> {
        for _ in 0..5 {
            let children = match self.get_children(path) {
                Ok((c, _)) => c,
                Err(Error::NoNode) => return Ok(()),
                Err(e) => return Err(e),
            };
            for c in children {
                self.delete_recursive(&join(path, &c))?;
            }
            match self.delete(path, None) {
                Ok(()) | Err(Error::NoNode) => return Ok(()),
                Err(Error::NotEmpty) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::NotEmpty)
    }

    /// A deadline `timeout` from now (`None` stays `None`).
    fn deadline(&self, timeout: Option<Duration>) -> Option<Instant> {
        timeout.map(|t| self.now() + t)
    }
}

impl<S: Session> SessionExt for S {}

/// How often a blocking recipe call looks at its cancel flag.
pub(crate) const CANCEL_POLL: Duration = Duration::from_millis(100);

/// Wait for `watch` until `deadline` (`Ok(None)` then), failing with [`Error::Cancelled`] once
/// `cancel` is set; the flag is taken (reset) by the wait that sees it. Looks at the flag
/// every [`CANCEL_POLL`].
pub(crate) fn wait_cancellable<S: Session>(
    session: &S,
    watch: &S::Watch,
    deadline: Option<Instant>,
    cancel: &AtomicBool,
) -> Result<Option<WatchedEvent>, Error> {
    loop {
        if cancel.swap(false, Ordering::SeqCst) {
            return Err(Error::Cancelled);
        }
        let slice = session.now() + CANCEL_POLL;
        let until = deadline.map_or(slice, |d| d.min(slice));
        match session.wait_watch(watch, Some(until))? {
            Some(ev) => return Ok(Some(ev)),
            None if deadline.is_some_and(|d| session.now() >= d) => return Ok(None),
            None => {}
        }
    }
}

/// The parent of an absolute path (`/` for top-level nodes).
pub fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// `parent/child`, without doubling the slash at the root.
pub fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

impl Session for Client {
    type Watch = zk_session::OneshotWatch;

    fn create(
        &self,
        path: &str,
        data: &[u8],
        options: &CreateOptions,
    ) -> Result<(String, Stat), Error> {
        Client::create(self, path, data, options)
    }
    fn delete(&self, path: &str, version: Option<i32>) -> Result<(), Error> {
        Client::delete(self, path, version)
    }
    fn exists(&self, path: &str) -> Result<Option<Stat>, Error> {
        Client::exists(self, path)
    }
    fn exists_watch(&self, path: &str) -> Result<(Option<Stat>, Self::Watch), Error> {
        Client::exists_watch(self, path)
    }
    fn get_data(&self, path: &str) -> Result<(Bytes, Stat), Error> {
        Client::get_data(self, path)
    }
    fn get_data_watch(&self, path: &str) -> Result<(Bytes, Stat, Self::Watch), Error> {
        Client::get_data_watch(self, path)
    }
    fn set_data(&self, path: &str, data: &[u8], version: Option<i32>) -> Result<Stat, Error> {
        Client::set_data(self, path, data, version)
    }
    fn get_children(&self, path: &str) -> Result<(Vec<String>, Stat), Error> {
        Client::get_children_with_stat(self, path)
    }
    fn get_children_watch(&self, path: &str) -> Result<(Vec<String>, Stat, Self::Watch), Error> {
        Client::get_children_watch(self, path)
    }
    fn multi(&self, ops: Vec<Op>) -> Result<Vec<OpResult>, Error> {
        Client::multi(self, ops)
    }
    fn create_and_list(
        &self,
        path: &str,
        data: &[u8],
        options: &CreateOptions,
        parent: &str,
    ) -> Result<((String, Stat), Result<(Vec<String>, Stat), Error>), Error> {
        let (created, listed) = self.batch(|c| {
            (
                c.create_async(path, Bytes::copy_from_slice(data), options),
                c.get_children_with_stat_async(parent),
            )
        });
        Ok((created.wait()?, listed.wait()))
    }
    fn sync(&self, path: &str) -> Result<(), Error> {
        Client::sync(self, path)
    }
    fn session_id(&self) -> i64 {
        Client::session_id(self)
    }
    fn state(&self) -> SessionState {
        Client::state(self)
    }
    #[allow(clippy::disallowed_methods)] // the real session's time source is the real clock
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
    fn wait_watch(
        &self,
        watch: &Self::Watch,
        deadline: Option<Instant>,
    ) -> Result<Option<WatchedEvent>, Error> {
        let result = match deadline {
            None => watch.wait_timeout(Duration::from_secs(u64::from(u32::MAX))),
            Some(d) => watch.wait_timeout(d.saturating_duration_since(self.now())),
        };
        match result {
            Ok(ev) => Ok(Some(ev)),
            Err(Error::Timeout) => Ok(None),
            Err(e) => Err(e),
        }
    }
    fn wait_state(&self, seen: SessionState, deadline: Option<Instant>) -> SessionState {
        let states = self.state_watch();
        loop {
            let now = Client::state(self);
            if now != seen {
                return now;
            }
            let next = match deadline {
                None => states.next_state(),
                Some(d) => {
                    let left = d.saturating_duration_since(self.now());
                    if left.is_zero() {
                        return now;
                    }
                    states.next_timeout(left)
                }
            };
            match next {
                Some(s) if s != seen => return s,
                Some(_) => {}
                None => return Client::state(self),
            }
        }
    }
}
