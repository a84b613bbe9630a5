//! Coordination recipes over the [`Session`] trait, and a deterministic simulator.
//!
//! Every recipe is generic over [`Session`], implemented by the real client
//! ([`zk_session::Client`]) and by the simulator ([`sim::SimSession`]); node names, prefixes
//! and data encodings follow kazoo's recipes so Rust and Python processes share paths.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod barrier;
pub mod counter;
pub mod election;
pub mod fence;
pub mod lease;
pub mod lock;
pub mod partitioner;
pub mod party;
pub mod queue;
pub mod session;
pub mod sim;
pub mod watchers;
pub mod workloads;

pub use fence::{Fence, sequence_of};
pub use session::{Session, SessionExt, join, parent_of};
pub use zk_session::{CreateMode, CreateOptions, Error, Op, OpResult, SessionState, Stat};
