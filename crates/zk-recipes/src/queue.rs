//! Distributed queues, wire-compatible with kazoo's `kazoo.recipe.queue`.
//!
//! * [`Queue`]: FIFO with priority, **at-most-once**. An item is handed out only after this
//!   consumer's delete of its node succeeded, so no two consumers ever both get it; an item
//!   whose delete had an unknown outcome (connection lost with the delete in flight, node gone
//!   afterwards) may be lost. [`Queue::take`] reports that case as [`Taken::Unknown`] with the
//!   data, so a caller can choose at-least-once for those items instead.
//! * [`LockingQueue`]: **at-least-once**. [`LockingQueue::get`] locks the head with an
//!   ephemeral `taken/` node and hands it out; [`LockingQueue::consume`] deletes the entry and
//!   the lock atomically, [`LockingQueue::release`] gives it back. While a holder's session is
//!   alive nobody else gets its item; if the session dies before `consume`, the lock vanishes
//!   with it and the item is handed out again.
//!
//! # Wire format (kazoo's)
//!
//! * `Queue` at `path`: entries `path/entry-PPP-SSSSSSSSSS` (persistent sequential), `PPP` the
//!   priority as `%03d` (0..=999, lower first), the data the item's bytes.
//! * `LockingQueue` at `path`: entries `path/entries/entry-PPP-SSSSSSSSSS`; the lock of an
//!   entry is the ephemeral `path/taken/<entry name>` holding the queue instance's id (a
//!   32-digit hex uuid, as kazoo's `uuid.uuid4().hex`).
//!
//! Entries are ordered by (priority, sequence), the sequence read as the signed 32-bit number
//! the server writes (kazoo compares the names as text; the order is the same until the
//! parent's counter passes 2^31).

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::fence::Fence;
use crate::session::{Session, SessionExt, join};
use crate::{CreateMode, CreateOptions, Error, Op, SessionState, Stat};

/// kazoo's default priority.
pub const DEFAULT_PRIORITY: u16 = 100;

/// The prefix of every entry name (kazoo's `Queue.prefix`, `LockingQueue.entry + "-"`).
pub const ENTRY_PREFIX: &str = "entry-";

/// The name of a [`LockingQueue`]'s entries directory.
pub const ENTRIES_DIR: &str = "entries";

/// The name of a [`LockingQueue`]'s locks directory.
pub const TAKEN_DIR: &str = "taken";

fn check_priority(priority: u16) -> Result<(), Error> {
    if priority > 999 {
        return Err(Error::InvalidUse("priority must be between 0 and 999"));
    }
    Ok(())
}

/// The create path kazoo uses for an entry of `priority` under `dir`.
fn entry_prefix_path(dir: &str, priority: u16) -> String {
    join(dir, &format!("{ENTRY_PREFIX}{priority:03}-"))
}

/// (priority, sequence) of an entry name `entry-PPP-SSSSSSSSSS`; `None` for other names.
pub fn entry_key(name: &str) -> Option<(u16, i64)> {
    let rest = name.strip_prefix(ENTRY_PREFIX)?;
    let (priority, seq) = rest.split_once('-')?;
    if priority.is_empty() || !priority.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let priority: u16 = priority.parse().ok()?;
    if seq.len() < 10 || !seq.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        return None;
    }
    let seq: i32 = seq.parse().ok()?;
    Some((priority, i64::from(seq)))
}

/// Sort entry names in queue order: by (priority, integer sequence); names that are not
/// entries go last, by name.
pub fn sort_entries(names: &mut [String]) {
    names.sort_by_cached_key(|n| {
        let key = entry_key(n);
        (key.is_none(), key.unwrap_or((0, 0)), n.clone())
    });
}

/// What [`Queue::take`] removed from the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// This consumer deleted the entry: it is handed out here and nowhere else.
    Item(Bytes),
    /// The connection was lost with this consumer's delete in flight and the entry is gone:
    /// either that delete applied (then nobody else gets the item) or another consumer's did
    /// (which then got it as [`Taken::Item`]). Drop it for at-most-once delivery; process it
    /// for at-least-once (it may then be processed twice).
    Unknown(Bytes),
}

/// A FIFO queue with priorities: kazoo's `Queue` (at-most-once; see the module docs).
#[derive(Debug)]
pub struct Queue<S: Session> {
    zk: S,
    path: String,
    ensured: AtomicBool,
    /// Test hook for the broken simulation variant.
    ignore_gone: bool,
}

impl<S: Session> Queue<S> {
    /// A queue at `path` (created on first use).
    pub fn new(zk: S, path: &str) -> Queue<S> {
        Queue {
            zk,
            path: path.to_owned(),
            ensured: AtomicBool::new(false),
            ignore_gone: false,
        }
    }

    /// Deliberately broken (for the simulator's broken variant): hands an item out even when
    /// its delete found it already gone, i.e. taken by another consumer.
    #[doc(hidden)]
    pub fn broken_ignore_gone(mut self) -> Queue<S> {
        self.ignore_gone = true;
        self
    }

    /// The queue's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    fn ensure(&self) -> Result<(), Error> {
        if !self.ensured.load(Ordering::Relaxed) {
            retry(&self.zk, None, || self.zk.ensure_path(&self.path))?;
            self.ensured.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Put an item with `priority` (0..=999, lower first; kazoo's default is
    /// [`DEFAULT_PRIORITY`]). Returns the entry's name.
    ///
    /// `Err(ConnectionLoss)` (or `Timeout`) means unknown: the item was enqueued once or not
    /// at all (a sequential create is never retried blindly, and kazoo's names carry no
    /// unique prefix to look for). Any other error: not enqueued.
    pub fn put(&self, value: &[u8], priority: u16) -> Result<String, Error> {
        check_priority(priority)?;
        self.ensure()?;
        put_entry(&self.zk, &self.path, value, priority)
    }

    /// Put several items atomically (all or none), in order, with one priority. Returns their
    /// entry names. `Err(ConnectionLoss)` means unknown: all were enqueued or none.
    pub fn put_all<V: AsRef<[u8]>>(
        &self,
        values: &[V],
        priority: u16,
    ) -> Result<Vec<String>, Error> {
        check_priority(priority)?;
        self.ensure()?;
        put_all_entries(&self.zk, &self.path, values, priority)
    }

    /// The number of items in the queue.
    pub fn length(&self) -> Result<usize, Error> {
        self.ensure()?;
        children_count(&self.zk, &self.path)
    }

    /// Remove and return the head item, or `None` when the queue is empty (it does not wait).
    ///
    /// At-most-once, as kazoo's: an item is returned only when this consumer's delete
    /// succeeded. An entry whose delete had an unknown outcome is skipped (it may be lost,
    /// never duplicated) and the next one is taken; use [`Queue::take`] to see those.
    pub fn get(&self) -> Result<Option<Bytes>, Error> {
        loop {
            match self.take()? {
                None => return Ok(None),
                Some(Taken::Item(data)) => return Ok(Some(data)),
                Some(Taken::Unknown(_)) => {
                    tracing::warn!(path = %self.path, "queue item lost by an ambiguous delete");
                }
            }
        }
    }

    /// Remove the head item: `None` when the queue is empty, [`Taken::Item`] when this
    /// consumer removed it, [`Taken::Unknown`] when the outcome of its delete is unknown.
    pub fn take(&self) -> Result<Option<Taken>, Error> {
        self.ensure()?;
        loop {
            let mut children = match retry(&self.zk, None, || self.zk.get_children(&self.path)) {
                Ok((c, _)) => c,
                Err(Error::NoNode) => {
                    self.ensured.store(false, Ordering::Relaxed);
                    return Ok(None);
                }
                Err(e) => return Err(e),
            };
            if children.is_empty() {
                return Ok(None);
            }
            sort_entries(&mut children);
            for name in &children {
                let node = join(&self.path, name);
                let data = match retry(&self.zk, None, || self.zk.get_data(&node)) {
                    Ok((data, _)) => data,
                    Err(Error::NoNode) => continue,
                    Err(e) => return Err(e),
                };
                match delete_confirmed(&self.zk, &node)? {
                    Deleted::Mine => return Ok(Some(Taken::Item(data))),
                    Deleted::Gone if self.ignore_gone => return Ok(Some(Taken::Item(data))),
                    Deleted::Gone => continue,
                    Deleted::Unknown => return Ok(Some(Taken::Unknown(data))),
                }
            }
            // Every entry we saw was taken by someone else: look again.
        }
    }
}

/// The outcome of [`delete_confirmed`].
enum Deleted {
    /// Our delete applied.
    Mine,
    /// It was already gone (someone else deleted it).
    Gone,
    /// Our delete's outcome is unknown and the node is gone.
    Unknown,
}

/// Delete `node`, telling apart "deleted by us", "already gone", and "unknown" (an ambiguous
/// delete after which the node is gone). Ambiguous deletes of a node that still exists are
/// retried (they did not apply).
fn delete_confirmed<S: Session>(zk: &S, node: &str) -> Result<Deleted, Error> {
    let mut ambiguous = false;
    for _ in 0..MAX_RETRIES {
        match zk.delete(node, None) {
            Ok(()) => return Ok(Deleted::Mine),
            Err(Error::NoNode) if ambiguous => return Ok(Deleted::Unknown),
            Err(Error::NoNode) => return Ok(Deleted::Gone),
            Err(e) if is_ambiguous(&e) => {
                ambiguous = true;
                if await_connected(zk, None).is_err() {
                    return Ok(Deleted::Unknown);
                }
                match retry(zk, None, || zk.exists(node)) {
                    Ok(Some(_)) => continue,
                    Ok(None) | Err(_) => return Ok(Deleted::Unknown),
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(if ambiguous {
        Deleted::Unknown
    } else {
        Deleted::Gone
    })
}

fn put_entry<S: Session>(zk: &S, dir: &str, value: &[u8], priority: u16) -> Result<String, Error> {
    // Waiting out a disconnection first turns a certain failure into a success; the create
    // itself is never retried (its outcome would be unknown).
    await_connected(zk, None)?;
    let opts = CreateOptions::new(CreateMode::PersistentSequential);
    let (path, _) = zk.create(&entry_prefix_path(dir, priority), value, &opts)?;
    Ok(last_segment(&path).to_owned())
}

fn put_all_entries<S: Session, V: AsRef<[u8]>>(
    zk: &S,
    dir: &str,
    values: &[V],
    priority: u16,
) -> Result<Vec<String>, Error> {
    if values.is_empty() {
        return Ok(Vec::new());
    }
    await_connected(zk, None)?;
    let prefix = entry_prefix_path(dir, priority);
    let ops = values
        .iter()
        .map(|v| {
            Op::create(
                &prefix,
                Bytes::copy_from_slice(v.as_ref()),
                CreateOptions::new(CreateMode::PersistentSequential),
            )
        })
        .collect();
    let results = zk.multi(ops)?;
    Ok(results
        .into_iter()
        .filter_map(|r| match r {
            crate::OpResult::Create { path, .. } => Some(last_segment(&path).to_owned()),
            _ => None,
        })
        .collect())
}

fn children_count<S: Session>(zk: &S, path: &str) -> Result<usize, Error> {
    match retry(zk, None, || zk.exists(path))? {
        Some(stat) => Ok(usize::try_from(stat.num_children).unwrap_or(0)),
        None => Ok(0),
    }
}

fn last_segment(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The item a [`LockingQueue`] holds.
#[derive(Debug, Clone)]
struct Held {
    /// The entry's name.
    name: String,
    /// Its data.
    data: Bytes,
    /// The lock node's czxid (the fencing token).
    token: i64,
}

/// A queue whose items are locked while processed: kazoo's `LockingQueue` (at-least-once;
/// see the module docs).
///
/// ```no_run
/// # fn demo(zk: zk_session::Client) -> Result<(), zk_recipes::Error> {
/// use std::time::Duration;
/// use zk_recipes::queue::LockingQueue;
///
/// let q = LockingQueue::new(zk, "/jobs");
/// q.put(b"job 1", 100)?;
/// if let Some(job) = q.get(Some(Duration::from_secs(5)))? {
///     // ... process `job` ...
///     # let _ = job;
///     q.consume()?; // or q.release() to hand it back
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct LockingQueue<S: Session> {
    zk: S,
    path: String,
    entries: String,
    taken: String,
    id: String,
    ensured: AtomicBool,
    held: Mutex<Option<Held>>,
    /// Test hook for the broken simulation variant: take without creating the lock node.
    skip_lock: bool,
}

impl<S: Session> LockingQueue<S> {
    /// A locking queue at `path` (its `entries` and `taken` children are created on first
    /// use), with a fresh id for its locks.
    pub fn new(zk: S, path: &str) -> LockingQueue<S> {
        let id = uuid_hex(zk.session_id());
        LockingQueue::with_id(zk, path, &id)
    }

    /// Like [`LockingQueue::new`] with an explicit lock id (the data of this instance's
    /// `taken/` nodes; kazoo uses a 32-digit hex uuid). Ids must be unique among consumers.
    pub fn with_id(zk: S, path: &str, id: &str) -> LockingQueue<S> {
        LockingQueue {
            entries: join(path, ENTRIES_DIR),
            taken: join(path, TAKEN_DIR),
            zk,
            path: path.to_owned(),
            id: id.to_owned(),
            ensured: AtomicBool::new(false),
            held: Mutex::new(None),
            skip_lock: false,
        }
    }

    /// Deliberately broken (for the simulator's broken variant): takes items without locking
    /// them, so two consumers can hold the same item.
    #[doc(hidden)]
    pub fn broken_without_locks(mut self) -> LockingQueue<S> {
        self.skip_lock = true;
        self
    }

    /// The queue's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// This instance's lock id.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn ensure(&self) -> Result<(), Error> {
        if !self.ensured.load(Ordering::Relaxed) {
            retry(&self.zk, None, || self.zk.ensure_path(&self.taken))?;
            retry(&self.zk, None, || self.zk.ensure_path(&self.entries))?;
            self.ensured.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    fn held(&self) -> Option<Held> {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_held(&self, h: Option<Held>) {
        *self.held.lock().unwrap_or_else(PoisonError::into_inner) = h;
    }

    /// Put an item (see [`Queue::put`] for the meaning of errors). Returns the entry's name.
    pub fn put(&self, value: &[u8], priority: u16) -> Result<String, Error> {
        check_priority(priority)?;
        self.ensure()?;
        put_entry(&self.zk, &self.entries, value, priority)
    }

    /// Put several items atomically (all or none). Returns their entry names.
    pub fn put_all<V: AsRef<[u8]>>(
        &self,
        values: &[V],
        priority: u16,
    ) -> Result<Vec<String>, Error> {
        check_priority(priority)?;
        self.ensure()?;
        put_all_entries(&self.zk, &self.entries, values, priority)
    }

    /// The number of entries, locked ones included.
    pub fn length(&self) -> Result<usize, Error> {
        self.ensure()?;
        children_count(&self.zk, &self.entries)
    }

    /// The name of the entry this instance holds, if any (without asking the server; see
    /// [`LockingQueue::holds_lock`]).
    pub fn held_entry(&self) -> Option<String> {
        self.held().map(|h| h.name)
    }

    /// The fence of the held item: its lock node and that node's czxid. Writes through
    /// [`Fence::write`] with this queue's session fail once the lock is gone.
    pub fn fence(&self) -> Option<Fence> {
        let dir = if self.skip_lock {
            &self.entries
        } else {
            &self.taken
        };
        self.held().map(|h| Fence {
            node: join(dir, &h.name),
            token: h.token,
        })
    }

    /// Lock and return the head item, waiting up to `timeout` (`None`: forever) for one;
    /// `Ok(None)` when the time runs out. An item got before and neither consumed nor
    /// released is returned again while its lock is still held.
    pub fn get(&self, timeout: Option<Duration>) -> Result<Option<Bytes>, Error> {
        if let Some(h) = self.held() {
            if self.holds_lock()? {
                return Ok(Some(h.data));
            }
        }
        self.ensure()?;
        let deadline = self.zk.deadline(timeout);
        loop {
            let listed = retry(&self.zk, deadline, || {
                let e = self.zk.get_children_watch(&self.entries)?;
                let t = self.zk.get_children_watch(&self.taken)?;
                Ok((e, t))
            });
            let ((entries, _, entries_watch), (taken, _, taken_watch)) = match listed {
                Ok(v) => v,
                Err(Error::NoNode) => {
                    self.ensured.store(false, Ordering::Relaxed);
                    self.ensure()?;
                    continue;
                }
                Err(Error::Timeout) if deadline.is_some_and(|d| self.zk.now() >= d) => {
                    return Ok(None);
                }
                Err(e) => return Err(e),
            };
            let mut available: Vec<String> = entries
                .iter()
                .filter(|e| !taken.contains(e))
                .cloned()
                .collect();
            sort_entries(&mut available);
            for name in &available {
                if let Some(h) = self.take(name)? {
                    let data = h.data.clone();
                    self.set_held(Some(h));
                    return Ok(Some(data));
                }
            }
            if !available.is_empty() {
                // Lost every race: look again at once.
                continue;
            }
            if entries.is_empty() {
                // Wait for an entry.
                match self.zk.wait_watch(&entries_watch, deadline)? {
                    Some(_) => continue,
                    None => return Ok(None),
                }
            }
            // Every entry is locked: wait for a lock to go, looking for new entries every
            // LOCK_POLL (the Session trait waits on one watch at a time).
            loop {
                let now = self.zk.now();
                if deadline.is_some_and(|d| now >= d) {
                    return Ok(None);
                }
                let slice = now + LOCK_POLL;
                let slice = deadline.map_or(slice, |d| d.min(slice));
                if self.zk.wait_watch(&taken_watch, Some(slice))?.is_some() {
                    break;
                }
                let now = self.zk.now();
                if self.zk.wait_watch(&entries_watch, Some(now))?.is_some() {
                    break;
                }
            }
        }
    }

    /// Try to lock and read entry `name`.
    fn take(&self, name: &str) -> Result<Option<Held>, Error> {
        let lock = join(&self.taken, name);
        let entry = join(&self.entries, name);
        let token = if self.skip_lock {
            0
        } else {
            match self.create_lock(&lock)? {
                Some(t) => t,
                None => return Ok(None),
            }
        };
        match retry(&self.zk, None, || self.zk.get_data(&entry)) {
            Ok((data, _)) => Ok(Some(Held {
                name: name.to_owned(),
                data,
                token,
            })),
            Err(Error::NoNode) => {
                // Consumed meanwhile: drop our lock.
                if !self.skip_lock {
                    self.delete_own_lock(&lock)?;
                }
                Ok(None)
            }
            Err(e) => {
                if !self.skip_lock {
                    let _ = self.delete_own_lock(&lock);
                }
                Err(e)
            }
        }
    }

    /// Create our lock node: `Some(czxid)` when we hold it, `None` when another holds it.
    fn create_lock(&self, lock: &str) -> Result<Option<i64>, Error> {
        let opts = CreateOptions::ephemeral();
        for _ in 0..MAX_RETRIES {
            match self.zk.create(lock, self.id.as_bytes(), &opts) {
                Ok((_, stat)) => {
                    if stat.czxid != 0 {
                        return Ok(Some(stat.czxid));
                    }
                    // A create without a Stat: read it.
                    return Ok(self.lock_stat(lock)?.map(|s| s.czxid));
                }
                Err(Error::NodeExists) => return Ok(self.lock_stat(lock)?.map(|s| s.czxid)),
                Err(Error::NoNode) => {
                    // The taken directory is gone (F15): recreate it.
                    self.ensured.store(false, Ordering::Relaxed);
                    self.ensure()?;
                }
                Err(e) if is_ambiguous(&e) => {
                    await_connected(&self.zk, None)?;
                    match retry(&self.zk, None, || self.zk.get_data(lock)) {
                        Ok((data, stat)) => {
                            return Ok(self.is_mine(&data, &stat).then_some(stat.czxid));
                        }
                        Err(Error::NoNode) => continue,
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::ConnectionLoss)
    }

    /// The lock's Stat when it is ours (our id, owned by our session), else `None`.
    fn lock_stat(&self, lock: &str) -> Result<Option<Stat>, Error> {
        match retry(&self.zk, None, || self.zk.get_data(lock)) {
            Ok((data, stat)) => Ok(self.is_mine(&data, &stat).then_some(stat)),
            Err(Error::NoNode) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn is_mine(&self, data: &[u8], stat: &Stat) -> bool {
        data == self.id.as_bytes() && stat.ephemeral_owner == self.zk.session_id()
    }

    /// Delete our lock node, retried until it is gone (never someone else's).
    fn delete_own_lock(&self, lock: &str) -> Result<(), Error> {
        for _ in 0..MAX_RETRIES {
            let Some(stat) = self.lock_stat(lock)? else {
                return Ok(());
            };
            match self.zk.delete(lock, Some(stat.version)) {
                Ok(()) | Err(Error::NoNode) => return Ok(()),
                Err(e) if is_ambiguous(&e) => await_connected(&self.zk, None)?,
                Err(e) => return Err(e),
            }
        }
        Err(Error::ConnectionLoss)
    }

    /// Whether this instance still holds the lock of its item: the lock node exists, holds
    /// our id and is owned by our session (read after a `sync`). `false` once the session
    /// is gone, and the held item is then forgotten.
    pub fn holds_lock(&self) -> Result<bool, Error> {
        let Some(h) = self.held() else {
            return Ok(false);
        };
        if self.skip_lock {
            return Ok(true);
        }
        let lock = join(&self.taken, &h.name);
        let result =
            retry(&self.zk, None, || self.zk.sync(&lock)).and_then(|()| self.lock_stat(&lock));
        match result {
            Ok(Some(_)) => Ok(true),
            Ok(None) => {
                self.set_held(None);
                Ok(false)
            }
            Err(e) if e.is_terminal() => {
                self.set_held(None);
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Remove the held item from the queue: its entry and its lock are deleted in one multi.
    /// `Ok(true)` when consumed; `Ok(false)` when nothing is held or the lock was lost (the
    /// item then goes, or went, to another consumer). An `Err` after the multi was sent means
    /// unknown (consumed or not); the item is forgotten either way.
    pub fn consume(&self) -> Result<bool, Error> {
        let Some(h) = self.held() else {
            return Ok(false);
        };
        let lock = join(&self.taken, &h.name);
        let entry = join(&self.entries, &h.name);
        if self.skip_lock {
            let r = self.zk.delete(&entry, None);
            self.set_held(None);
            return match r {
                Ok(()) => Ok(true),
                Err(Error::NoNode) => Ok(false),
                Err(e) => Err(e),
            };
        }
        for _ in 0..MAX_RETRIES {
            let ops = vec![Op::delete(&entry, None), Op::delete(&lock, None)];
            match self.zk.multi(ops) {
                Ok(_) => {
                    self.set_held(None);
                    return Ok(true);
                }
                Err(Error::MultiFailed { .. }) => {
                    // The entry or our lock is gone: not consumed by us.
                    let _ = self.delete_own_lock(&lock);
                    self.set_held(None);
                    return Ok(false);
                }
                Err(e) if is_ambiguous(&e) => {
                    if let Err(e) = await_connected(&self.zk, None) {
                        self.set_held(None);
                        return Err(e);
                    }
                    // Our session is alive, so our lock exists unless our multi deleted it.
                    let entry_left = retry(&self.zk, None, || self.zk.exists(&entry));
                    let lock_mine = self.lock_stat(&lock);
                    match (entry_left, lock_mine) {
                        (Ok(Some(_)), Ok(Some(_))) => continue, // not applied: again
                        (Ok(None), Ok(None)) => {
                            self.set_held(None);
                            return Ok(true);
                        }
                        (Ok(_), Ok(_)) => {
                            let _ = self.delete_own_lock(&lock);
                            self.set_held(None);
                            return Ok(false);
                        }
                        (Err(e), _) | (_, Err(e)) => {
                            self.set_held(None);
                            return Err(e);
                        }
                    }
                }
                Err(e) => {
                    self.set_held(None);
                    return Err(e);
                }
            }
        }
        self.set_held(None);
        Err(Error::ConnectionLoss)
    }

    /// Unlock the held item without consuming it (another consumer may then take it).
    /// `Ok(false)` when nothing was held or the lock was already lost.
    pub fn release(&self) -> Result<bool, Error> {
        let Some(h) = self.held() else {
            return Ok(false);
        };
        self.set_held(None);
        if self.skip_lock {
            return Ok(true);
        }
        let lock = join(&self.taken, &h.name);
        match self.lock_stat(&lock) {
            Ok(Some(_)) => {}
            Ok(None) => return Ok(false),
            Err(e) if e.is_terminal() => return Ok(false),
            Err(e) => return Err(e),
        }
        self.delete_own_lock(&lock)?;
        Ok(true)
    }
}

impl<S: Session> Drop for LockingQueue<S> {
    fn drop(&mut self) {
        // Best effort: hand a held item back rather than leave it locked until the session
        // ends.
        if self.held().is_some() && !self.zk.state().is_terminal() {
            let _ = self.release();
        }
    }
}

/// How often a [`LockingQueue::get`] whose entries are all locked also looks for new
/// entries (the Session trait waits on one watch at a time).
const LOCK_POLL: Duration = Duration::from_millis(200);

// ---------------------------------------------------------------------------------------
// Helpers shared with `counter.rs` and `barrier.rs`.

/// How many times a call is retried after connection loss before giving up.
pub(crate) const MAX_RETRIES: usize = 64;

/// Errors after which a write's outcome is unknown.
pub(crate) fn is_ambiguous(e: &Error) -> bool {
    matches!(e, Error::ConnectionLoss | Error::Timeout | Error::Closed)
}

/// Wait until the session is connected again: `Err` when it ends, when `deadline` passes
/// (`Timeout`), or when it stops changing state (a simulation past its time limit).
pub(crate) fn await_connected<S: Session>(zk: &S, deadline: Option<Instant>) -> Result<(), Error> {
    let mut state = zk.state();
    loop {
        match state {
            SessionState::Connected | SessionState::ConnectedReadOnly => return Ok(()),
            SessionState::Expired => return Err(Error::SessionExpired),
            SessionState::Closed => return Err(Error::Closed),
            SessionState::AuthFailed => return Err(Error::AuthFailed),
            s => {
                if deadline.is_some_and(|d| zk.now() >= d) {
                    return Err(Error::Timeout);
                }
                let next = zk.wait_state(s, deadline);
                if next == s {
                    return Err(if deadline.is_some_and(|d| zk.now() >= d) {
                        Error::Timeout
                    } else {
                        Error::ConnectionLoss
                    });
                }
                state = next;
            }
        }
    }
}

/// Run an idempotent call, retrying it after connection loss (once reconnected).
pub(crate) fn retry<S: Session, T>(
    zk: &S,
    deadline: Option<Instant>,
    mut op: impl FnMut() -> Result<T, Error>,
) -> Result<T, Error> {
    let mut attempts = 0;
    loop {
        match op() {
            Err(e @ (Error::ConnectionLoss | Error::Timeout | Error::Throttled))
                if attempts < MAX_RETRIES =>
            {
                attempts += 1;
                if matches!(e, Error::Throttled) {
                    zk.sleep(Duration::from_millis(10));
                }
                await_connected(zk, deadline)?;
            }
            r => return r,
        }
    }
}

/// A 32-digit hex id in the style of kazoo's `uuid.uuid4().hex`.
///
/// The Session trait has no randomness, and the simulator must be deterministic, so the id
/// mixes the session id (unique in the ensemble), a per-thread counter, and the thread: its
/// name for the simulator's task threads (`sim-task-N`, the same in every run of a seed), its
/// `ThreadId` and the process id otherwise (unique in the process).
pub(crate) fn uuid_hex(session_id: i64) -> String {
    thread_local! {
        static COUNTER: Cell<u64> = const { Cell::new(0) };
        static SALT: u64 = thread_salt();
    }
    let n = COUNTER.with(|c| {
        let v = c.get();
        c.set(v.wrapping_add(1));
        v
    });
    let salt = SALT.with(|s| *s);
    let a = mix(session_id as u64 ^ mix(salt ^ n.rotate_left(17)));
    let b = mix(a ^ salt.rotate_left(29) ^ n ^ 0x6a09_e667_f3bc_c909);
    // Version 4 and the RFC 4122 variant, as uuid4() sets them.
    let a = (a & !0xf000) | 0x4000;
    let b = (b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!("{a:016x}{b:016x}")
}

fn thread_salt() -> u64 {
    let t = std::thread::current();
    match t.name() {
        Some(name) if name.starts_with("sim-task-") => fnv(name.as_bytes()),
        _ => {
            let id = format!("{:?}/{}", t.id(), std::process::id());
            fnv(id.as_bytes()) ^ 0x5851_f42d_4c95_7f2d
        }
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// splitmix64's finaliser.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_parse_and_sort() {
        assert_eq!(entry_key("entry-100-0000000042"), Some((100, 42)));
        assert_eq!(entry_key("entry-005--000000001"), Some((5, -1)));
        assert_eq!(entry_key("entry-100-"), None);
        assert_eq!(entry_key("other"), None);
        let mut v: Vec<String> = [
            "entry-100-0000000010",
            "x",
            "entry-100-0000000002",
            "entry-001-0000000011",
            "entry-100--000000005",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        sort_entries(&mut v);
        assert_eq!(
            v,
            [
                "entry-001-0000000011",
                "entry-100--000000005",
                "entry-100-0000000002",
                "entry-100-0000000010",
                "x"
            ]
        );
        assert_eq!(entry_prefix_path("/q", 7), "/q/entry-007-");
    }

    #[test]
    fn uuids_are_hex_and_distinct() {
        let a = uuid_hex(1);
        let b = uuid_hex(1);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
