//! The ZooKeeper session layer.
//!
//! - [`session`]: a sans-IO state machine for one session — handshake, pings, timeouts,
//!   reconnects, the in-flight FIFO, watches, auth replay, chroot, read-only mode. No IO, no
//!   clock, no threads: time is an argument, bytes go in and out through buffers.
//! - `driver`: one thread per client that owns a mio `Poll`, the socket and the core; the only
//!   code that touches sockets or reads the clock.
//! - [`Client`]: the thread-safe handle (`Clone + Send + Sync`) with every operation, each in
//!   a blocking form and an `_async` form returning a [`Completion`] that can be waited on
//!   with a deadline or `.await`ed.
//!
//! ```no_run
//! use std::time::Duration;
//! use zk_session::{Client, CreateOptions, Error};
//!
//! let zk = Client::builder("127.0.0.1:2181/app")?
//!     .session_timeout(Duration::from_secs(10))
//!     .connect()?;
//! zk.ensure_path("/config")?;
//! let (_, _, watch) = zk.get_data_watch("/config")?;
//! zk.set_data("/config", b"v2", None)?;
//! let event = watch.wait()?;
//! println!("{:?} on {}", event.event_type, event.path);
//! # Ok::<(), Error>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod client;
mod completion;
mod driver;
pub mod error;
pub mod hosts;
pub mod path;
pub mod session;
mod watch;

pub use client::{Client, ClientBuilder, CreateOptions, Op, OpResult, ReadOp, ReadResult};
pub use completion::Completion;
pub use error::Error;
pub use session::{Config, Event, SessionState, WatchedEvent};
pub use watch::{OneshotWatch, PersistentWatch, StateWatch};
pub use zk_proto::{
    Acl, ClientInfo, CreateMode, ErrorCode, EventType, Id, Perms, Stat, WatcherType,
};
