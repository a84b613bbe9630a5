//! The client's error type: the server's codes plus client-side conditions.

use zk_proto::{DecodeError, ErrorCode, FrameError};

/// Every way an operation can fail.
///
/// Server error codes map one-to-one onto variants (codes without a name here arrive as
/// [`Error::Server`]); the rest are raised by the client itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The node does not exist.
    #[error("no node")]
    NoNode,
    /// The node already exists.
    #[error("node exists")]
    NodeExists,
    /// The expected version did not match.
    #[error("bad version")]
    BadVersion,
    /// The node has children.
    #[error("node not empty")]
    NotEmpty,
    /// Ephemeral nodes cannot have children.
    #[error("ephemeral nodes cannot have children")]
    NoChildrenForEphemerals,
    /// The ACL does not allow the operation.
    #[error("not authorized")]
    NoAuth,
    /// The ACL is empty or invalid, or uses `auth` without credentials.
    #[error("invalid ACL")]
    InvalidAcl,
    /// The server rejected the arguments (path, flags, TTL, ACL).
    #[error("bad arguments")]
    BadArguments,
    /// The server does not implement the operation (or TTLs are disabled).
    #[error("unimplemented by the server")]
    Unimplemented,
    /// The server could not decode the request.
    #[error("server could not decode the request")]
    MarshallingError,
    /// The server is read-only.
    #[error("server is read-only")]
    NotReadOnly,
    /// No such watch on the server.
    #[error("no such watcher")]
    NoWatcher,
    /// reconfig is disabled on the server.
    #[error("reconfig disabled")]
    ReconfigDisabled,
    /// A reconfig is in progress.
    #[error("reconfig in progress")]
    ReconfigInProgress,
    /// The new configuration has no quorum.
    #[error("new config has no quorum")]
    NewConfigNoQuorum,
    /// A quota was exceeded.
    #[error("quota exceeded")]
    QuotaExceeded,
    /// The server throttled the request without executing it.
    #[error("request throttled by the server")]
    Throttled,
    /// An ephemeral create on a local session.
    #[error("ephemeral on local session")]
    EphemeralOnLocalSession,
    /// The server requires SASL authentication.
    #[error("server requires SASL authentication")]
    SaslAuthRequired,
    /// Another server code.
    #[error("server error {0:?}")]
    Server(ErrorCode),
    /// A multi failed atomically: no op was applied. `index` is the op that failed.
    #[error("multi op {index} failed: {code:?}")]
    MultiFailed {
        /// The failing op's position.
        index: usize,
        /// Its error code.
        code: ErrorCode,
    },

    /// The connection was lost while the request was in flight: it may or may not have been
    /// applied.
    #[error("connection lost (the outcome of an in-flight write is unknown)")]
    ConnectionLoss,
    /// The session expired; a new client is needed.
    #[error("session expired")]
    SessionExpired,
    /// Authentication failed; the client is terminal.
    #[error("authentication failed")]
    AuthFailed,
    /// The caller's deadline passed before the reply arrived.
    #[error("timed out waiting for the reply")]
    Timeout,
    /// A blocking recipe call (a lock's or semaphore's acquire) was cancelled from another
    /// thread by the recipe's `cancel()`.
    #[error("cancelled")]
    Cancelled,
    /// The path breaks ZooKeeper's path rules.
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath {
        /// The offending path.
        path: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// The request would exceed the frame size limit.
    #[error("request of {len} bytes exceeds the frame limit of {max} bytes")]
    TooLarge {
        /// The encoded size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The API was used in a way the protocol does not allow.
    #[error("invalid use: {0}")]
    InvalidUse(&'static str),
    /// The client was closed.
    #[error("client closed")]
    Closed,
    /// A watch was dropped without firing: the client moved to a new session (after
    /// read-only mode), which has none of the old session's watches. Read again and set a new
    /// watch.
    #[error("watch lost with its session (a new session replaced it)")]
    WatchLost,
    /// The server sent bytes that do not decode; the connection was dropped.
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl Error {
    /// Whether retrying the same call may succeed: connection loss (the outcome of a write is
    /// then unknown, so retry only idempotent operations or recover by inspection), server-side
    /// throttling and client timeouts.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::ConnectionLoss | Error::Throttled | Error::Timeout | Error::ReconfigInProgress
        )
    }

    /// Whether the session is gone for good (expired, auth failed or closed).
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Error::SessionExpired | Error::AuthFailed | Error::Closed
        )
    }

    /// The wire code of this error, where it has one.
    pub fn code(&self) -> Option<ErrorCode> {
        Some(match self {
            Error::NoNode => ErrorCode::NoNode,
            Error::NodeExists => ErrorCode::NodeExists,
            Error::BadVersion => ErrorCode::BadVersion,
            Error::NotEmpty => ErrorCode::NotEmpty,
            Error::NoChildrenForEphemerals => ErrorCode::NoChildrenForEphemerals,
            Error::NoAuth => ErrorCode::NoAuth,
            Error::InvalidAcl => ErrorCode::InvalidAcl,
            Error::BadArguments => ErrorCode::BadArguments,
            Error::Unimplemented => ErrorCode::Unimplemented,
            Error::MarshallingError => ErrorCode::MarshallingError,
            Error::NotReadOnly => ErrorCode::NotReadOnly,
            Error::NoWatcher => ErrorCode::NoWatcher,
            Error::ReconfigDisabled => ErrorCode::ReconfigDisabled,
            Error::ReconfigInProgress => ErrorCode::ReconfigInProgress,
            Error::NewConfigNoQuorum => ErrorCode::NewConfigNoQuorum,
            Error::QuotaExceeded => ErrorCode::QuotaExceeded,
            Error::Throttled => ErrorCode::ThrottledOp,
            Error::EphemeralOnLocalSession => ErrorCode::EphemeralOnLocalSession,
            Error::SaslAuthRequired => ErrorCode::SessionClosedRequireSaslAuth,
            Error::Server(code) => *code,
            Error::MultiFailed { code, .. } => *code,
            Error::ConnectionLoss => ErrorCode::ConnectionLoss,
            Error::SessionExpired => ErrorCode::SessionExpired,
            Error::AuthFailed => ErrorCode::AuthFailed,
            Error::Timeout => ErrorCode::OperationTimeout,
            _ => return None,
        })
    }
}

impl From<ErrorCode> for Error {
    fn from(code: ErrorCode) -> Error {
        match code {
            ErrorCode::NoNode => Error::NoNode,
            ErrorCode::NodeExists => Error::NodeExists,
            ErrorCode::BadVersion => Error::BadVersion,
            ErrorCode::NotEmpty => Error::NotEmpty,
            ErrorCode::NoChildrenForEphemerals => Error::NoChildrenForEphemerals,
            ErrorCode::NoAuth => Error::NoAuth,
            ErrorCode::InvalidAcl => Error::InvalidAcl,
            ErrorCode::BadArguments => Error::BadArguments,
            ErrorCode::Unimplemented => Error::Unimplemented,
            ErrorCode::MarshallingError => Error::MarshallingError,
            ErrorCode::NotReadOnly => Error::NotReadOnly,
            ErrorCode::NoWatcher => Error::NoWatcher,
            ErrorCode::ReconfigDisabled => Error::ReconfigDisabled,
            ErrorCode::ReconfigInProgress => Error::ReconfigInProgress,
            ErrorCode::NewConfigNoQuorum => Error::NewConfigNoQuorum,
            ErrorCode::QuotaExceeded => Error::QuotaExceeded,
            ErrorCode::ThrottledOp => Error::Throttled,
            ErrorCode::EphemeralOnLocalSession => Error::EphemeralOnLocalSession,
            ErrorCode::SessionClosedRequireSaslAuth => Error::SaslAuthRequired,
            ErrorCode::ConnectionLoss => Error::ConnectionLoss,
            ErrorCode::SessionExpired => Error::SessionExpired,
            ErrorCode::AuthFailed => Error::AuthFailed,
            ErrorCode::OperationTimeout | ErrorCode::RequestTimeout => Error::Timeout,
            other => Error::Server(other),
        }
    }
}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Error {
        Error::Protocol(e.to_string())
    }
}

impl From<FrameError> for Error {
    fn from(e: FrameError) -> Error {
        Error::Protocol(e.to_string())
    }
}
