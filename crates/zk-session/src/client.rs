//! The thread-safe client handle.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use zk_proto::{
    Acl, AddWatchMode, AddWatchRequest, CheckVersionRequest, ClientInfo, CreateMode, CreateRequest,
    CreateTtlRequest, DeleteRequest, ExistsRequest, GetAclRequest, GetAllChildrenNumberRequest,
    GetChildren2Request, GetChildrenRequest, GetDataRequest, GetEphemeralsRequest, MultiOp,
    MultiRequest, MultiResult, ReconfigRequest, RemoveWatchesRequest, Request, Response,
    SetAclRequest, SetDataRequest, Stat, SyncRequest, WatcherType,
};

use crate::completion::{Completion, Slot};
use crate::driver::{Command, Driver, Engine, WAKER, fail_command};
use crate::error::Error;
use crate::session::{Config, Session, SessionState};
use crate::watch::{OneshotWatch, PersistentWatch, StateWatch, WatchSink};

thread_local! {
    /// Set by [`Client::blocking`] while it builds its request: the next submission on this
    /// thread is held back in its completion instead of being queued for the driver.
    static HOLD_BACK: Cell<bool> = const { Cell::new(false) };
    /// Set by [`Client::batch`]: the client whose requests this thread is collecting, and
    /// those collected so far.
    static BATCH: RefCell<Option<(Arc<Shared>, Vec<Command>)>> = const { RefCell::new(None) };
}

/// Send what this thread's open [`Client::batch`] has collected so far (the batch stays
/// open); called before a thread blocks on a completion.
pub(crate) fn flush_open_batch() {
    let open = BATCH.with(|b| match &mut *b.borrow_mut() {
        Some((s, cmds)) if !cmds.is_empty() => Some((s.clone(), std::mem::take(cmds))),
        _ => None,
    });
    if let Some((shared, cmds)) = open {
        shared.push_all(cmds);
    }
}

/// Take what this thread has batched for `shared` so far (empty when it batches nothing,
/// or for another client).
fn take_batched(shared: &Shared) -> Vec<Command> {
    BATCH.with(|b| match &mut *b.borrow_mut() {
        Some((s, cmds)) if std::ptr::eq(Arc::as_ptr(s), shared) => std::mem::take(cmds),
        _ => Vec::new(),
    })
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Debug, Clone)]
struct Info {
    state: SessionState,
    session_id: i64,
    password: Bytes,
    timeout: Option<Duration>,
}

struct Queue {
    cmds: Vec<Command>,
    closed: Option<Error>,
}

/// With at least this many requests in flight, a new command does not wake the driver: the
/// next reply will, and the driver drains every queued command before blocking again. A full
/// pipeline then costs no wake-up syscalls at all. (Every in-flight request ends in a reply,
/// a disconnect or the read timeout, so nothing waits forever.)
const LAZY_WAKE_IN_FLIGHT: usize = 16;

/// State shared by the client handles and the driver thread.
pub(crate) struct Shared {
    queue: Mutex<Queue>,
    /// The driver's state; see [`Engine`].
    pub(crate) engine: Mutex<Engine>,
    pub(crate) needs_wake: AtomicBool,
    /// Requests the driver has in flight, published before it blocks: while enough are in
    /// flight, a reply is sure to wake the driver soon, so submitters skip the wake-up.
    pub(crate) in_flight: AtomicUsize,
    /// Requests run on their caller's thread ([`Shared::run_inline`]).
    pub(crate) inline_runs: AtomicU64,
    /// Watch events read by the thread that waited for them ([`Shared::run_inline_wait`]).
    pub(crate) inline_events: AtomicU64,
    /// Times a thread waiting for a watch read the connection itself, event or not.
    pub(crate) inline_waits: AtomicU64,
    /// Set while a caller's thread holds the engine for an inline run (which may last as
    /// long as the server takes to reply), so that others do not wait for the engine.
    pub(crate) inline_active: AtomicBool,
    pub(crate) waker: mio::Waker,
    info: Mutex<Info>,
    info_changed: Condvar,
    state_watchers: Mutex<Vec<Sender<SessionState>>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("info", &*lock(&self.info))
            .finish()
    }
}

impl Shared {
    /// Queue a command for the driver; once the session is over, the error that ended it
    /// (the command is dropped: its caller reports the error).
    pub(crate) fn push(&self, cmd: Command) -> Result<(), Error> {
        // Whatever this thread has batched for this client was issued first: it goes first.
        let batched = take_batched(self);
        if !batched.is_empty() {
            self.push_all(batched);
        }
        {
            let mut q = lock(&self.queue);
            if let Some(err) = &q.closed {
                return Err(err.clone());
            }
            q.cmds.push(cmd);
        }
        if self.in_flight.load(Ordering::SeqCst) < LAZY_WAKE_IN_FLIGHT
            && self.needs_wake.swap(false, Ordering::SeqCst)
        {
            let _ = self.waker.wake();
        }
        Ok(())
    }

    /// Queue several commands in order, waking the driver at most once. Once the session is
    /// over, each fails with the error that ended it.
    fn push_all(&self, cmds: Vec<Command>) {
        {
            let mut q = lock(&self.queue);
            if let Some(err) = q.closed.clone() {
                drop(q);
                for cmd in cmds {
                    fail_command(cmd, &err);
                }
                return;
            }
            q.cmds.extend(cmds);
        }
        if self.needs_wake.swap(false, Ordering::SeqCst) {
            let _ = self.waker.wake();
        }
    }

    /// Send what a [`Client::batch`] collected: on the caller's thread when the connection
    /// is idle, else through the driver.
    fn send_batch(&self, cmds: Vec<Command>) {
        if cmds.is_empty() {
            return;
        }
        if let Err(cmds) = self.run_inline_batch(cmds) {
            self.push_all(cmds);
        }
    }

    pub(crate) fn lock_engine(&self) -> MutexGuard<'_, Engine> {
        lock(&self.engine)
    }

    pub(crate) fn has_commands(&self) -> bool {
        !lock(&self.queue).cmds.is_empty()
    }

    pub(crate) fn take_commands(&self, into: &mut Vec<Command>) {
        let mut q = lock(&self.queue);
        std::mem::swap(&mut q.cmds, into);
    }

    /// Refuse further commands; return those still queued.
    pub(crate) fn close_queue(&self, err: Error) -> Vec<Command> {
        let mut q = lock(&self.queue);
        q.closed = Some(err);
        std::mem::take(&mut q.cmds)
    }

    pub(crate) fn state(&self) -> SessionState {
        lock(&self.info).state
    }

    pub(crate) fn publish_state(
        &self,
        state: SessionState,
        session_id: i64,
        password: Bytes,
        timeout: Option<Duration>,
    ) {
        // Hold the watcher list across the update, so that a StateWatch made by a thread that
        // already saw the new state (e.g. after `connect` returned) does not receive it too.
        let mut watchers = lock(&self.state_watchers);
        {
            let mut info = lock(&self.info);
            info.state = state;
            info.session_id = session_id;
            info.password = password;
            info.timeout = timeout;
        }
        self.info_changed.notify_all();
        watchers.retain(|tx| tx.send(state).is_ok());
    }

    pub(crate) fn remove_watcher(&self, id: u64) {
        let _ = self.push(Command::RemoveWatcher(id));
    }
}

/// Builds a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    config: Config,
    connect_timeout: Option<Duration>,
    auth: Vec<(String, Bytes)>,
}

impl ClientBuilder {
    /// Start from a connect string `host:port,host:port[/chroot]`.
    pub fn new(connect_string: &str) -> Result<ClientBuilder, Error> {
        Ok(ClientBuilder {
            config: Config::new(connect_string)?,
            connect_timeout: None,
            auth: Vec::new(),
        })
    }

    /// The requested session timeout (default 30 s; the server clamps it).
    pub fn session_timeout(mut self, timeout: Duration) -> Self {
        self.config.session_timeout = timeout;
        self
    }

    /// Accept read-only servers (default: no).
    pub fn can_be_read_only(mut self, yes: bool) -> Self {
        self.config.can_be_read_only = yes;
        self
    }

    /// How long [`ClientBuilder::connect`] waits for the first session (default: the session
    /// timeout).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Seed for host shuffling and reconnect jitter.
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = seed;
        self
    }

    /// How long a request made while disconnected waits for a connection (default: the
    /// session timeout).
    pub fn unsent_timeout(mut self, timeout: Duration) -> Self {
        self.config.unsent_timeout = Some(timeout);
        self
    }

    /// The largest frame sent (default 1,048,575 bytes, the server's `jute.maxbuffer`).
    pub fn max_outgoing_frame(mut self, bytes: usize) -> Self {
        self.config.max_outgoing_frame = bytes;
        self
    }

    /// The largest frame accepted (default 4 MiB).
    pub fn max_incoming_frame(mut self, bytes: usize) -> Self {
        self.config.max_incoming_frame = bytes;
        self
    }

    /// Resume an existing session instead of creating one.
    pub fn resume(mut self, session_id: i64, password: Bytes) -> Self {
        self.config.resume = Some((session_id, password));
        self
    }

    /// Authenticate with `scheme` (e.g. `digest`, credentials `user:password`) on every
    /// connection.
    pub fn auth(mut self, scheme: &str, credentials: impl Into<Bytes>) -> Self {
        self.auth.push((scheme.to_owned(), credentials.into()));
        self
    }

    /// The session configuration (for the sans-IO core).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Start the client and wait until the session is established.
    pub fn connect(self) -> Result<Client, Error> {
        let wait = self.connect_timeout.unwrap_or(self.config.session_timeout);
        let client = self.connect_lazy()?;
        client.wait_connected(wait)?;
        Ok(client)
    }

    /// Start the client without waiting; operations queue until connected.
    pub fn connect_lazy(self) -> Result<Client, Error> {
        let poll = mio::Poll::new().map_err(|e| Error::Protocol(format!("mio poll: {e}")))?;
        let waker = mio::Waker::new(poll.registry(), WAKER)
            .map_err(|e| Error::Protocol(format!("mio waker: {e}")))?;
        let registry = poll
            .registry()
            .try_clone()
            .map_err(|e| Error::Protocol(format!("mio registry: {e}")))?;
        #[allow(clippy::disallowed_methods)] // the session's epoch, handed to the core
        let now = std::time::Instant::now();
        let mut core = Session::new(self.config, now);
        let mut auth_slots = Vec::new();
        for (scheme, auth) in self.auth {
            if let Ok(op) = core.add_auth(now, &scheme, auth) {
                auth_slots.push(op);
            }
        }
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                cmds: Vec::new(),
                closed: None,
            }),
            engine: Mutex::new(Engine::new(core, registry)),
            needs_wake: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            inline_runs: AtomicU64::new(0),
            inline_events: AtomicU64::new(0),
            inline_waits: AtomicU64::new(0),
            inline_active: AtomicBool::new(false),
            waker,
            info: Mutex::new(Info {
                state: SessionState::Connecting,
                session_id: 0,
                password: Bytes::new(),
                timeout: None,
            }),
            info_changed: Condvar::new(),
            state_watchers: Mutex::new(Vec::new()),
        });
        let driver = Driver::new(poll, shared.clone());
        let thread = std::thread::Builder::new()
            .name("zk-driver".into())
            .spawn(move || driver.run())
            .map_err(|e| Error::Protocol(format!("spawn driver thread: {e}")))?;
        Ok(Client {
            inner: Arc::new(Inner {
                shared,
                thread: Mutex::new(Some(thread)),
            }),
        })
    }
}

struct Inner {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let slot = Arc::new(Slot::default());
        let _ = self.shared.push(Command::Close(slot));
        if let Some(t) = lock(&self.thread).take() {
            let _ = t.join();
        }
    }
}

/// Options for [`Client::create`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateOptions {
    /// The create mode.
    pub mode: CreateMode,
    /// The node's ACL (default: open to everyone).
    pub acl: Vec<Acl>,
    /// Time to live for the TTL modes.
    pub ttl: Option<Duration>,
}

impl CreateOptions {
    /// Options for `mode` with the open ACL.
    pub fn new(mode: CreateMode) -> CreateOptions {
        CreateOptions {
            mode,
            acl: Acl::open_unsafe(),
            ttl: None,
        }
    }

    /// A persistent node.
    pub fn persistent() -> CreateOptions {
        CreateOptions::new(CreateMode::Persistent)
    }

    /// An ephemeral node.
    pub fn ephemeral() -> CreateOptions {
        CreateOptions::new(CreateMode::Ephemeral)
    }

    /// Use this ACL.
    pub fn with_acl(mut self, acl: Vec<Acl>) -> CreateOptions {
        self.acl = acl;
        self
    }

    /// Use this TTL (for [`CreateMode::PersistentWithTtl`] and
    /// [`CreateMode::PersistentSequentialWithTtl`]).
    pub fn with_ttl(mut self, ttl: Duration) -> CreateOptions {
        self.ttl = Some(ttl);
        self
    }

    /// The request a create of `path` with these options sends (create2, createContainer or
    /// createTTL), after the options' own checks (a TTL mode needs a TTL in 1 ms ..= 2^40-1 ms,
    /// and only a TTL mode takes one). The path itself is checked when it is submitted.
    pub fn request(&self, path: &str, data: Bytes) -> Result<Request, Error> {
        let base = CreateRequest {
            path: path.to_owned(),
            data,
            acl: self.acl.clone(),
            flags: self.mode,
        };
        if self.mode.is_ttl() {
            let ttl = self
                .ttl
                .ok_or(Error::InvalidUse("a TTL mode needs with_ttl"))?;
            let ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
            if ms <= 0 || ms > (1 << 40) - 1 {
                return Err(Error::InvalidUse("TTL must be in 1 ms ..= 2^40-1 ms"));
            }
            return Ok(Request::CreateTtl(CreateTtlRequest {
                path: base.path,
                data: base.data,
                acl: base.acl,
                flags: base.flags,
                ttl: ms,
            }));
        }
        if self.ttl.is_some() {
            return Err(Error::InvalidUse("with_ttl needs a TTL create mode"));
        }
        Ok(if self.mode.is_container() {
            Request::CreateContainer(base)
        } else {
            Request::Create2(base)
        })
    }

    fn multi_op(&self, path: &str, data: Bytes) -> Result<MultiOp, Error> {
        Ok(match self.request(path, data)? {
            Request::CreateTtl(r) => MultiOp::CreateTtl(r),
            Request::CreateContainer(r) => MultiOp::CreateContainer(r),
            Request::Create2(r) => MultiOp::Create2(r),
            _ => return Err(Error::InvalidUse("unreachable create request")),
        })
    }
}

/// One operation of a [`Client::multi`] transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Create a node.
    Create {
        /// Its path.
        path: String,
        /// Its data.
        data: Bytes,
        /// How.
        options: CreateOptions,
    },
    /// Delete a node (version `None` = any).
    Delete {
        /// Its path.
        path: String,
        /// Expected version.
        version: Option<i32>,
    },
    /// Set a node's data (version `None` = any).
    SetData {
        /// Its path.
        path: String,
        /// New data.
        data: Bytes,
        /// Expected version.
        version: Option<i32>,
    },
    /// Require a node's version (`None` = only that it exists).
    Check {
        /// Its path.
        path: String,
        /// Expected version.
        version: Option<i32>,
    },
}

impl Op {
    /// A create op.
    pub fn create(path: &str, data: impl Into<Bytes>, options: CreateOptions) -> Op {
        Op::Create {
            path: path.to_owned(),
            data: data.into(),
            options,
        }
    }

    /// A delete op.
    pub fn delete(path: &str, version: Option<i32>) -> Op {
        Op::Delete {
            path: path.to_owned(),
            version,
        }
    }

    /// A setData op.
    pub fn set_data(path: &str, data: impl Into<Bytes>, version: Option<i32>) -> Op {
        Op::SetData {
            path: path.to_owned(),
            data: data.into(),
            version,
        }
    }

    /// A version check.
    pub fn check(path: &str, version: Option<i32>) -> Op {
        Op::Check {
            path: path.to_owned(),
            version,
        }
    }

    /// The op's path, and whether it may get a sequence suffix (for path validation).
    pub fn path(&self) -> (&str, bool) {
        match self {
            Op::Create { path, options, .. } => (path, options.mode.is_sequential()),
            Op::Delete { path, .. } | Op::SetData { path, .. } | Op::Check { path, .. } => {
                (path, false)
            }
        }
    }

    /// The op as it goes on the wire inside a multi.
    pub fn into_multi_op(self) -> Result<MultiOp, Error> {
        Ok(match self {
            Op::Create {
                path,
                data,
                options,
            } => options.multi_op(&path, data)?,
            Op::Delete { path, version } => MultiOp::Delete(DeleteRequest {
                path,
                version: version.unwrap_or(-1),
            }),
            Op::SetData {
                path,
                data,
                version,
            } => MultiOp::SetData(SetDataRequest {
                path,
                data,
                version: version.unwrap_or(-1),
            }),
            Op::Check { path, version } => MultiOp::Check(CheckVersionRequest {
                path,
                version: version.unwrap_or(-1),
            }),
        })
    }
}

/// The result of one op of a successful [`Client::multi`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    /// The created path and, where the server gives one, its Stat.
    Create {
        /// The created path.
        path: String,
        /// Its Stat (create2-style ops).
        stat: Option<Stat>,
    },
    /// Deleted.
    Delete,
    /// The new Stat.
    SetData(Stat),
    /// The check passed.
    Check,
}

impl OpResult {
    /// The result of one op of a successful multi, from its wire form.
    pub fn from_multi_result(r: MultiResult) -> Result<OpResult, Error> {
        match r {
            MultiResult::Create(c) => Ok(OpResult::Create {
                path: c.path,
                stat: None,
            }),
            MultiResult::Create2(c) => Ok(OpResult::Create {
                path: c.path,
                stat: Some(c.stat),
            }),
            MultiResult::Delete => Ok(OpResult::Delete),
            MultiResult::SetData(s) => Ok(OpResult::SetData(s.stat)),
            MultiResult::Check => Ok(OpResult::Check),
            other => Err(Error::Protocol(format!(
                "unexpected multi result {other:?}"
            ))),
        }
    }
}

/// A read of a [`Client::multi_read`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOp {
    /// getData.
    GetData(String),
    /// getChildren.
    GetChildren(String),
}

/// The result of one [`ReadOp`]: reads are independent, so each may fail alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadResult {
    /// Data and Stat.
    Data(Bytes, Stat),
    /// Child names.
    Children(Vec<String>),
}

type Mapped<T> = Result<T, Error>;

fn unexpected<T>(resp: Response) -> Mapped<T> {
    Err(Error::Protocol(format!("unexpected response {resp:?}")))
}

/// A ZooKeeper client: one session, shared by any number of threads.
///
/// Cloning is cheap; all clones share the session, which is closed when the last clone is
/// dropped (or by [`Client::close`]). Every operation has a blocking form and an `_async` form
/// returning a [`Completion`] (wait with a deadline, or `.await` it).
///
/// ```no_run
/// use zk_session::{Client, CreateOptions};
///
/// let zk = Client::connect("127.0.0.1:2181")?;
/// zk.create("/demo", b"hello", &CreateOptions::ephemeral())?;
/// let (data, stat) = zk.get_data("/demo")?;
/// assert_eq!(&data[..], b"hello");
/// zk.set_data("/demo", b"world", Some(stat.version))?;
/// # Ok::<(), zk_session::Error>(())
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("shared", &self.inner.shared)
            .finish()
    }
}

impl Client {
    /// Connect with default options and wait for the session.
    pub fn connect(connect_string: &str) -> Result<Client, Error> {
        ClientBuilder::new(connect_string)?.connect()
    }

    /// A builder for custom options.
    pub fn builder(connect_string: &str) -> Result<ClientBuilder, Error> {
        ClientBuilder::new(connect_string)
    }

    /// How many blocking calls so far ran on their caller's own thread rather than through
    /// the driver thread (the inline path, taken when the connection is idle). For tests and
    /// diagnostics.
    pub fn inline_calls(&self) -> u64 {
        self.shared().inline_runs.load(Ordering::Relaxed)
    }

    /// How many watch events so far were read from the socket by the very thread waiting
    /// for them (an idle connection's waiter reads it itself for a short while), rather
    /// than handed over by the driver thread. For tests and diagnostics.
    pub fn inline_events(&self) -> u64 {
        self.shared().inline_events.load(Ordering::Relaxed)
    }

    /// How many times so far a thread waiting for a watch event read the idle connection
    /// itself, whether or not its event came. A handle does so at most once per event it
    /// receives: a caller polling a quiet watch with short timeouts leaves the reading to the
    /// driver after its first poll. For tests and diagnostics.
    pub fn inline_waits(&self) -> u64 {
        self.shared().inline_waits.load(Ordering::Relaxed)
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.inner.shared
    }

    // -------------------------------------------------------------- session

    /// The current session state.
    pub fn state(&self) -> SessionState {
        self.shared().state()
    }

    /// The session id (0 until connected).
    pub fn session_id(&self) -> i64 {
        lock(&self.shared().info).session_id
    }

    /// The session password (empty until connected).
    pub fn session_password(&self) -> Bytes {
        lock(&self.shared().info).password.clone()
    }

    /// The negotiated session timeout, once connected.
    pub fn negotiated_timeout(&self) -> Option<Duration> {
        lock(&self.shared().info).timeout
    }

    /// Block until connected (read-write or read-only), or fail on a terminal state or after
    /// `timeout`.
    pub fn wait_connected(&self, timeout: Duration) -> Result<(), Error> {
        let shared = self.shared();
        let guard = lock(&shared.info);
        let (guard, _) = shared
            .info_changed
            .wait_timeout_while(guard, timeout, |i| {
                !i.state.is_connected() && !i.state.is_terminal()
            })
            .unwrap_or_else(PoisonError::into_inner);
        if guard.state.is_connected() {
            Ok(())
        } else if let Some(err) = guard.state.terminal_error() {
            Err(err)
        } else {
            Err(Error::Timeout)
        }
    }

    /// Session state changes from now on.
    pub fn state_watch(&self) -> StateWatch {
        let (tx, rx) = std::sync::mpsc::channel();
        lock(&self.shared().state_watchers).push(tx);
        StateWatch { rx }
    }

    /// Close the session (ephemerals are deleted at once) and wait for it.
    pub fn close(&self) -> Result<(), Error> {
        let slot = Arc::new(Slot::default());
        let completion: Completion<()> = Completion::new(slot.clone(), Box::new(|_| Ok(())));
        if self.shared().push(Command::Close(slot)).is_err() {
            return Ok(());
        }
        completion.wait()
    }

    // -------------------------------------------------------------- plumbing

    fn submit<T: 'static>(
        &self,
        request: Request,
        watch: Option<WatchSink>,
        unrooted: bool,
        map: impl FnOnce(Result<Response, Error>) -> Mapped<T> + Send + 'static,
    ) -> Completion<T> {
        let slot = Arc::new(Slot::default());
        let cmd = Command::Submit {
            request,
            slot: slot.clone(),
            watch,
            unrooted,
        };
        if HOLD_BACK.with(|h| h.replace(false)) {
            // A blocking call: requests batched before it on this thread go first.
            let batched = take_batched(self.shared());
            if !batched.is_empty() {
                self.shared().push_all(batched);
            }
            return Completion::unsent(slot, Box::new(map), self.shared().clone(), cmd);
        }
        let cmd = BATCH.with(|b| match &mut *b.borrow_mut() {
            Some((s, cmds)) if Arc::ptr_eq(s, self.shared()) => {
                cmds.push(cmd);
                None
            }
            _ => Some(cmd),
        });
        let Some(cmd) = cmd else {
            return Completion::new(slot, Box::new(map));
        };
        match self.shared().push(cmd) {
            Ok(()) => Completion::new(slot, Box::new(map)),
            Err(err) => Completion::failed(err),
        }
    }

    /// Send the requests that `calls` issues through this client's non-blocking (`_async`)
    /// methods back to back, as one exchange with the server: they cost one round trip
    /// instead of one each. Returns what `calls` returns (typically the completions); when
    /// the connection is idle, the requests are written and their replies read on this
    /// thread before `batch` returns, so waiting on the completions then costs nothing.
    ///
    /// Order is kept: the server runs the requests in the order issued, after everything
    /// issued before the batch. A blocking call inside `calls`, or waiting there on a
    /// completion, first sends what was batched so far (so it cannot wait on a request that
    /// was never sent). A nested `batch` of the same client adds to the open one. Requests to
    /// other clients inside `calls` are not batched, nor is a `batch` of another client
    /// opened there: they are sent as usual.
    ///
    /// ```no_run
    /// # fn demo(client: zk_session::Client) -> Result<(), zk_session::Error> {
    /// use zk_session::{CreateMode, CreateOptions};
    /// let opts = CreateOptions::new(CreateMode::EphemeralSequential);
    /// let (created, listed) = client.batch(|c| {
    ///     (c.create_async("/lock/n-", &b""[..], &opts), c.get_children_async("/lock"))
    /// });
    /// let (name, _) = created.wait()?;
    /// let children = listed.wait()?; // includes `name`
    /// # let _ = (name, children); Ok(()) }
    /// ```
    pub fn batch<T>(&self, calls: impl FnOnce(&Client) -> T) -> T {
        /// Ends the batch, also when `calls` panics: nothing collected is lost.
        struct Open {
            shared: Arc<Shared>,
        }
        impl Drop for Open {
            fn drop(&mut self) {
                let batch = BATCH.with(|b| b.borrow_mut().take());
                if let Some((_, cmds)) = batch {
                    self.shared.send_batch(cmds);
                }
            }
        }
        let opened = BATCH.with(|b| {
            let mut b = b.borrow_mut();
            if b.is_some() {
                return false;
            }
            *b = Some((self.shared().clone(), Vec::new()));
            true
        });
        if !opened {
            return calls(self);
        }
        let open = Open {
            shared: self.shared().clone(),
        };
        let out = calls(self);
        drop(open);
        out
    }

    /// Run a blocking call: `op` builds its one request, which is held back from the driver
    /// so that waiting on it can run it on this thread ([`Completion::wait`]).
    fn blocking<T>(&self, op: impl FnOnce() -> Completion<T>) -> Result<T, Error> {
        struct Reset;
        impl Drop for Reset {
            fn drop(&mut self) {
                HOLD_BACK.with(|h| h.set(false));
            }
        }
        HOLD_BACK.with(|h| h.set(true));
        let completion = {
            let _reset = Reset;
            op()
        };
        completion.wait()
    }

    fn call<T: 'static>(
        &self,
        request: Request,
        map: impl FnOnce(Response) -> Mapped<T> + Send + 'static,
    ) -> Completion<T> {
        self.submit(request, None, false, move |r| r.and_then(map))
    }

    // -------------------------------------------------------------- operations

    /// Create a node; returns the created path (with any sequence suffix) and its Stat.
    pub fn create(
        &self,
        path: &str,
        data: &[u8],
        options: &CreateOptions,
    ) -> Result<(String, Stat), Error> {
        self.blocking(|| self.create_async(path, Bytes::copy_from_slice(data), options))
    }

    /// [`Client::create`], without blocking.
    pub fn create_async(
        &self,
        path: &str,
        data: impl Into<Bytes>,
        options: &CreateOptions,
    ) -> Completion<(String, Stat)> {
        match options.request(path, data.into()) {
            Ok(req) => self.call(req, |resp| match resp {
                Response::Create2(r) => Ok((r.path, r.stat)),
                Response::Create(r) => Ok((r.path, Stat::default())),
                other => unexpected(other),
            }),
            Err(e) => Completion::failed(e),
        }
    }

    /// Delete a node; `version` `None` deletes any version.
    pub fn delete(&self, path: &str, version: Option<i32>) -> Result<(), Error> {
        self.blocking(|| self.delete_async(path, version))
    }

    /// [`Client::delete`], without blocking.
    pub fn delete_async(&self, path: &str, version: Option<i32>) -> Completion<()> {
        let req = Request::Delete(DeleteRequest {
            path: path.to_owned(),
            version: version.unwrap_or(-1),
        });
        self.call(req, |_| Ok(()))
    }

    /// The node's Stat, or `None` if it does not exist.
    pub fn exists(&self, path: &str) -> Result<Option<Stat>, Error> {
        self.blocking(|| self.exists_async(path))
    }

    /// [`Client::exists`], without blocking.
    pub fn exists_async(&self, path: &str) -> Completion<Option<Stat>> {
        let req = Request::Exists(ExistsRequest {
            path: path.to_owned(),
            watch: false,
        });
        self.submit(req, None, false, map_exists)
    }

    /// [`Client::exists`], leaving a watch: fires on create if missing, else on data change
    /// or delete.
    pub fn exists_watch(&self, path: &str) -> Result<(Option<Stat>, OneshotWatch), Error> {
        self.blocking(|| self.exists_watch_async(path))
    }

    /// [`Client::exists_watch`], without blocking.
    pub fn exists_watch_async(&self, path: &str) -> Completion<(Option<Stat>, OneshotWatch)> {
        let (watch, sink) = OneshotWatch::new_for_exists(self.shared().clone());
        let req = Request::Exists(ExistsRequest {
            path: path.to_owned(),
            watch: true,
        });
        self.submit(req, Some(sink), false, move |r| {
            map_exists(r).map(|s| (s, watch))
        })
    }

    /// The node's data and Stat.
    pub fn get_data(&self, path: &str) -> Result<(Bytes, Stat), Error> {
        self.blocking(|| self.get_data_async(path))
    }

    /// [`Client::get_data`], without blocking.
    pub fn get_data_async(&self, path: &str) -> Completion<(Bytes, Stat)> {
        let req = Request::GetData(GetDataRequest {
            path: path.to_owned(),
            watch: false,
        });
        self.call(req, map_get_data)
    }

    /// [`Client::get_data`], leaving a watch for the next data change or delete.
    pub fn get_data_watch(&self, path: &str) -> Result<(Bytes, Stat, OneshotWatch), Error> {
        self.blocking(|| self.get_data_watch_async(path))
    }

    /// [`Client::get_data_watch`], without blocking.
    pub fn get_data_watch_async(&self, path: &str) -> Completion<(Bytes, Stat, OneshotWatch)> {
        let (watch, sink) = OneshotWatch::new(self.shared().clone());
        let req = Request::GetData(GetDataRequest {
            path: path.to_owned(),
            watch: true,
        });
        self.submit(req, Some(sink), false, move |r| {
            r.and_then(map_get_data).map(|(d, s)| (d, s, watch))
        })
    }

    /// Set the node's data; `version` `None` for any. Returns the new Stat.
    pub fn set_data(&self, path: &str, data: &[u8], version: Option<i32>) -> Result<Stat, Error> {
        self.blocking(|| self.set_data_async(path, Bytes::copy_from_slice(data), version))
    }

    /// [`Client::set_data`], without blocking.
    pub fn set_data_async(
        &self,
        path: &str,
        data: impl Into<Bytes>,
        version: Option<i32>,
    ) -> Completion<Stat> {
        let req = Request::SetData(SetDataRequest {
            path: path.to_owned(),
            data: data.into(),
            version: version.unwrap_or(-1),
        });
        self.call(req, |resp| match resp {
            Response::SetData(r) => Ok(r.stat),
            other => unexpected(other),
        })
    }

    /// The node's ACL and Stat.
    pub fn get_acl(&self, path: &str) -> Result<(Vec<Acl>, Stat), Error> {
        self.blocking(|| self.get_acl_async(path))
    }

    /// [`Client::get_acl`], without blocking.
    pub fn get_acl_async(&self, path: &str) -> Completion<(Vec<Acl>, Stat)> {
        let req = Request::GetAcl(GetAclRequest {
            path: path.to_owned(),
        });
        self.call(req, |resp| match resp {
            Response::GetAcl(r) => Ok((r.acl, r.stat)),
            other => unexpected(other),
        })
    }

    /// Set the node's ACL; `version` (the ACL version) `None` for any.
    pub fn set_acl(&self, path: &str, acl: Vec<Acl>, version: Option<i32>) -> Result<Stat, Error> {
        self.blocking(|| self.set_acl_async(path, acl, version))
    }

    /// [`Client::set_acl`], without blocking.
    pub fn set_acl_async(
        &self,
        path: &str,
        acl: Vec<Acl>,
        version: Option<i32>,
    ) -> Completion<Stat> {
        let req = Request::SetAcl(SetAclRequest {
            path: path.to_owned(),
            acl,
            version: version.unwrap_or(-1),
        });
        self.call(req, |resp| match resp {
            Response::SetAcl(r) => Ok(r.stat),
            other => unexpected(other),
        })
    }

    /// The node's children (names, unsorted).
    pub fn get_children(&self, path: &str) -> Result<Vec<String>, Error> {
        self.blocking(|| self.get_children_async(path))
    }

    /// [`Client::get_children`], without blocking.
    pub fn get_children_async(&self, path: &str) -> Completion<Vec<String>> {
        let req = Request::GetChildren(GetChildrenRequest {
            path: path.to_owned(),
            watch: false,
        });
        self.call(req, |resp| match resp {
            Response::GetChildren(r) => Ok(r.children),
            other => unexpected(other),
        })
    }

    /// The node's children and its Stat.
    pub fn get_children_with_stat(&self, path: &str) -> Result<(Vec<String>, Stat), Error> {
        self.blocking(|| self.get_children_with_stat_async(path))
    }

    /// [`Client::get_children_with_stat`], without blocking.
    pub fn get_children_with_stat_async(&self, path: &str) -> Completion<(Vec<String>, Stat)> {
        let req = Request::GetChildren2(GetChildren2Request {
            path: path.to_owned(),
            watch: false,
        });
        self.call(req, map_children2)
    }

    /// The node's children and Stat, leaving a watch for a child change or the node's delete.
    pub fn get_children_watch(
        &self,
        path: &str,
    ) -> Result<(Vec<String>, Stat, OneshotWatch), Error> {
        self.blocking(|| self.get_children_watch_async(path))
    }

    /// [`Client::get_children_watch`], without blocking.
    pub fn get_children_watch_async(
        &self,
        path: &str,
    ) -> Completion<(Vec<String>, Stat, OneshotWatch)> {
        let (watch, sink) = OneshotWatch::new(self.shared().clone());
        let req = Request::GetChildren2(GetChildren2Request {
            path: path.to_owned(),
            watch: true,
        });
        self.submit(req, Some(sink), false, move |r| {
            r.and_then(map_children2).map(|(c, s)| (c, s, watch))
        })
    }

    /// The number of all descendants of the node (3.6+).
    pub fn get_all_children_number(&self, path: &str) -> Result<i32, Error> {
        let req = Request::GetAllChildrenNumber(GetAllChildrenNumberRequest {
            path: path.to_owned(),
        });
        self.call(req, |resp| match resp {
            Response::GetAllChildrenNumber(r) => Ok(r.total_number),
            other => unexpected(other),
        })
        .wait()
    }

    /// This session's ephemeral nodes whose paths start with `prefix` ("/" for all; 3.6+).
    pub fn get_ephemerals(&self, prefix: &str) -> Result<Vec<String>, Error> {
        let req = Request::GetEphemerals(GetEphemeralsRequest {
            prefix_path: prefix.to_owned(),
        });
        self.call(req, |resp| match resp {
            Response::GetEphemerals(r) => Ok(r.ephemerals),
            other => unexpected(other),
        })
        .wait()
    }

    /// Wait until the server this client is connected to has caught up with the leader on
    /// `path`.
    pub fn sync(&self, path: &str) -> Result<(), Error> {
        self.blocking(|| self.sync_async(path))
    }

    /// [`Client::sync`], without blocking.
    pub fn sync_async(&self, path: &str) -> Completion<()> {
        let req = Request::Sync(SyncRequest {
            path: path.to_owned(),
        });
        self.call(req, |_| Ok(()))
    }

    /// Run `ops` atomically. On failure nothing is applied and the error is
    /// [`Error::MultiFailed`] naming the failing op.
    pub fn multi(&self, ops: Vec<Op>) -> Result<Vec<OpResult>, Error> {
        self.blocking(|| self.multi_async(ops))
    }

    /// [`Client::multi`], without blocking.
    pub fn multi_async(&self, ops: Vec<Op>) -> Completion<Vec<OpResult>> {
        let ops: Result<Vec<MultiOp>, Error> = ops.into_iter().map(Op::into_multi_op).collect();
        let ops = match ops {
            Ok(ops) => ops,
            Err(e) => return Completion::failed(e),
        };
        let req = Request::Multi(MultiRequest { ops });
        self.call(req, |resp| match resp {
            Response::Multi(m) => m
                .results
                .into_iter()
                .map(OpResult::from_multi_result)
                .collect(),
            other => unexpected(other),
        })
    }

    /// Run reads in one round trip (3.6+). Each read succeeds or fails on its own.
    pub fn multi_read(&self, ops: Vec<ReadOp>) -> Result<Vec<Result<ReadResult, Error>>, Error> {
        let ops = ops
            .into_iter()
            .map(|op| match op {
                ReadOp::GetData(path) => MultiOp::GetData(GetDataRequest { path, watch: false }),
                ReadOp::GetChildren(path) => {
                    MultiOp::GetChildren(GetChildrenRequest { path, watch: false })
                }
            })
            .collect();
        let req = Request::MultiRead(MultiRequest { ops });
        self.call(req, |resp| match resp {
            Response::Multi(m) => Ok(m
                .results
                .into_iter()
                .map(|r| match r {
                    MultiResult::GetData(d) => Ok(ReadResult::Data(d.data, d.stat)),
                    MultiResult::GetChildren(c) => Ok(ReadResult::Children(c.children)),
                    MultiResult::Error(code) => Err(Error::from(code)),
                    other => Err(Error::Protocol(format!("unexpected read result {other:?}"))),
                })
                .collect()),
            other => unexpected(other),
        })
        .wait()
    }

    /// Add a persistent watch on `path` (recursive: also every descendant; 3.6+). The node
    /// need not exist. Dropping the handle removes the watch.
    pub fn add_watch(&self, path: &str, recursive: bool) -> Result<PersistentWatch, Error> {
        let (watch, sink) = PersistentWatch::new(self.shared().clone());
        let mode = if recursive {
            AddWatchMode::PersistentRecursive
        } else {
            AddWatchMode::Persistent
        };
        let req = Request::AddWatch(AddWatchRequest {
            path: path.to_owned(),
            mode,
        });
        self.submit(req, Some(sink), false, move |r| r.map(|_| watch))
            .wait()
    }

    /// Remove this connection's watches of `kind` on `path` on the server (3.5+). Local
    /// handles stay valid but receive nothing more for that path.
    pub fn remove_watches(&self, path: &str, kind: WatcherType) -> Result<(), Error> {
        let req = Request::RemoveWatches(RemoveWatchesRequest {
            path: path.to_owned(),
            watcher_type: kind,
        });
        self.call(req, |_| Ok(())).wait()
    }

    /// The identities this connection has authenticated as (3.7+).
    pub fn who_am_i(&self) -> Result<Vec<ClientInfo>, Error> {
        self.call(Request::WhoAmI, |resp| match resp {
            Response::WhoAmI(r) => Ok(r.client_info),
            other => unexpected(other),
        })
        .wait()
    }

    /// The ensemble configuration (`/zookeeper/config`, outside any chroot) and its Stat.
    pub fn get_config(&self) -> Result<(Bytes, Stat), Error> {
        let req = Request::GetData(GetDataRequest {
            path: "/zookeeper/config".to_owned(),
            watch: false,
        });
        self.submit(req, None, true, |r| r.and_then(map_get_data))
            .wait()
    }

    /// Reconfigure the ensemble (needs `reconfigEnabled=true`); returns the new config.
    pub fn reconfig(
        &self,
        joining: &str,
        leaving: &str,
        new_members: &str,
        from_config: Option<i64>,
    ) -> Result<(Bytes, Stat), Error> {
        let req = Request::Reconfig(ReconfigRequest {
            joining_servers: joining.to_owned(),
            leaving_servers: leaving.to_owned(),
            new_members: new_members.to_owned(),
            cur_config_id: from_config.unwrap_or(-1),
        });
        self.call(req, |resp| match resp {
            Response::Reconfig(r) => Ok((r.data, r.stat)),
            other => unexpected(other),
        })
        .wait()
    }

    /// Add credentials (`digest`, `user:password`); replayed after every reconnect. A
    /// rejection ends the session ([`Error::AuthFailed`]).
    pub fn add_auth(&self, scheme: &str, credentials: &[u8]) -> Result<(), Error> {
        let slot = Arc::new(Slot::default());
        let cmd = Command::AddAuth {
            scheme: scheme.to_owned(),
            auth: Bytes::copy_from_slice(credentials),
            slot: slot.clone(),
        };
        match self.shared().push(cmd) {
            Ok(()) => Completion::<()>::new(slot, Box::new(|r| r.map(|_| ()))).wait(),
            Err(err) => Err(err),
        }
    }

    /// Create `path` and any missing ancestors as empty persistent nodes (like kazoo's
    /// `ensure_path`), in one pipelined round trip. Existing nodes are left alone.
    pub fn ensure_path(&self, path: &str) -> Result<(), Error> {
        crate::path::validate_path(path, false)?;
        if path == "/" {
            return Ok(());
        }
        let mut completions = Vec::new();
        for (i, _) in path.match_indices('/').skip(1) {
            completions.push(self.create_async(
                &path[..i],
                Bytes::new(),
                &CreateOptions::persistent(),
            ));
        }
        completions.push(self.create_async(path, Bytes::new(), &CreateOptions::persistent()));
        for c in completions {
            match c.wait() {
                Ok(_) | Err(Error::NodeExists) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Delete `path` and everything below it (children first). Nodes that vanish meanwhile
    /// are fine; a node that gains children meanwhile is retried a few times.
    pub fn delete_recursive(&self, path: &str) -> Result<(), Error> {
        crate::path::validate_path(path, false)?;
        for _ in 0..5 {
            let mut nodes = vec![path.to_owned()];
            let mut i = 0;
            while i < nodes.len() {
                let children = match self.get_children(&nodes[i]) {
                    Ok(c) => c,
                    Err(Error::NoNode) => Vec::new(),
                    Err(e) => return Err(e),
                };
                let base = if nodes[i] == "/" {
                    String::new()
                } else {
                    nodes[i].clone()
                };
                nodes.extend(children.into_iter().map(|c| format!("{base}/{c}")));
                i += 1;
            }
            if path == "/" {
                nodes.remove(0);
            }
            let completions: Vec<_> = nodes
                .iter()
                .rev()
                .filter(|p| !p.starts_with("/zookeeper"))
                .map(|p| self.delete_async(p, None))
                .collect();
            let mut retry = false;
            for c in completions {
                match c.wait() {
                    Ok(()) | Err(Error::NoNode) => {}
                    Err(Error::NotEmpty) => retry = true,
                    Err(e) => return Err(e),
                }
            }
            if !retry {
                return Ok(());
            }
        }
        Err(Error::NotEmpty)
    }
}

fn map_exists(r: Result<Response, Error>) -> Mapped<Option<Stat>> {
    match r {
        Ok(Response::Exists(e)) => Ok(Some(e.stat)),
        Ok(other) => unexpected(other),
        Err(Error::NoNode) => Ok(None),
        Err(e) => Err(e),
    }
}

fn map_get_data(resp: Response) -> Mapped<(Bytes, Stat)> {
    match resp {
        Response::GetData(r) => Ok((r.data, r.stat)),
        other => unexpected(other),
    }
}

fn map_children2(resp: Response) -> Mapped<(Vec<String>, Stat)> {
    match resp {
        Response::GetChildren2(r) => Ok((r.children, r.stat)),
        other => unexpected(other),
    }
}
