//! The protocol's numeric codes as typed enums that keep unknown values, and the small shared
//! records (`Stat`, `Id`, `ACL`).

use bytes::{BufMut, BytesMut};

use crate::error::{DecodeError, Loc};
use crate::wire::{Field, Reader, record};

/// Define an `i32`-coded enum with an `Unknown(i32)` variant that keeps any other value.
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $var:ident = $val:literal ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $var, )*
            /// A value this crate has no name for, kept as received.
            Unknown(i32),
        }

        impl $name {
            /// Every named value, in declaration order.
            pub const KNOWN: &'static [$name] = &[$($name::$var),*];

            /// The typed value for a raw code; unnamed codes become `Unknown`.
            pub const fn from_raw(v: i32) -> Self {
                match v {
                    $( $val => $name::$var, )*
                    other => $name::Unknown(other),
                }
            }

            /// The raw code.
            pub const fn to_raw(self) -> i32 {
                match self {
                    $( $name::$var => $val, )*
                    $name::Unknown(v) => v,
                }
            }
        }

        impl From<i32> for $name {
            fn from(v: i32) -> Self {
                $name::from_raw(v)
            }
        }

        impl From<$name> for i32 {
            fn from(v: $name) -> i32 {
                v.to_raw()
            }
        }

        impl Field for $name {
            const MIN_LEN: usize = 4;
            fn read_field(r: &mut Reader<'_>, at: Loc) -> Result<Self, DecodeError> {
                Ok($name::from_raw(r.i32(at)?))
            }
            fn write_field(&self, buf: &mut BytesMut) {
                buf.put_i32(self.to_raw());
            }
            fn field_len(&self) -> usize {
                4
            }
        }
    };
}

open_enum! {
    /// Request opcodes (PROTOCOL.md §4).
    pub enum OpCode {
        /// Watch notification (xid -1 frames).
        Notification = 0,
        /// create.
        Create = 1,
        /// delete.
        Delete = 2,
        /// exists.
        Exists = 3,
        /// getData.
        GetData = 4,
        /// setData.
        SetData = 5,
        /// getACL.
        GetAcl = 6,
        /// setACL.
        SetAcl = 7,
        /// getChildren.
        GetChildren = 8,
        /// sync.
        Sync = 9,
        /// ping (xid -2).
        Ping = 11,
        /// getChildren2 (children plus the parent's Stat).
        GetChildren2 = 12,
        /// check (version check; only inside multi).
        Check = 13,
        /// multi (atomic transaction).
        Multi = 14,
        /// create2 (create returning the Stat), 3.5.0.
        Create2 = 15,
        /// reconfig, 3.5.0.
        Reconfig = 16,
        /// checkWatches, 3.5.0.
        CheckWatches = 17,
        /// removeWatches, 3.5.0.
        RemoveWatches = 18,
        /// createContainer, 3.5.1.
        CreateContainer = 19,
        /// deleteContainer: server-internal, never sent by clients.
        DeleteContainer = 20,
        /// createTTL, 3.5.3.
        CreateTtl = 21,
        /// multiRead, 3.6.0.
        MultiRead = 22,
        /// auth (xid -4).
        Auth = 100,
        /// setWatches.
        SetWatches = 101,
        /// sasl.
        Sasl = 102,
        /// getEphemerals, 3.6.0.
        GetEphemerals = 103,
        /// getAllChildrenNumber, 3.6.0.
        GetAllChildrenNumber = 104,
        /// setWatches2, 3.6.0.
        SetWatches2 = 105,
        /// addWatch, 3.6.0.
        AddWatch = 106,
        /// whoAmI, 3.7.0.
        WhoAmI = 107,
        /// createSession: server-internal.
        CreateSession = -10,
        /// closeSession.
        CloseSession = -11,
        /// error: the result type of a failed op in a MultiResponse.
        Error = -1,
    }
}

open_enum! {
    /// Error codes (PROTOCOL.md §8).
    pub enum ErrorCode {
        /// Success.
        Ok = 0,
        /// Range marker; generic system error.
        SystemError = -1,
        /// A multi op after the failing one.
        RuntimeInconsistency = -2,
        /// Data inconsistency.
        DataInconsistency = -3,
        /// Request lost to a disconnect (client-side).
        ConnectionLoss = -4,
        /// The server could not decode the request.
        MarshallingError = -5,
        /// Unknown opcode, or TTL with extended types off.
        Unimplemented = -6,
        /// Operation timed out (client-side).
        OperationTimeout = -7,
        /// Bad path, flags, TTL or ACL arguments.
        BadArguments = -8,
        /// Session not tracked by the server.
        UnknownSession = -12,
        /// reconfig: the new config has no quorum.
        NewConfigNoQuorum = -13,
        /// Another reconfig is running.
        ReconfigInProgress = -14,
        /// Range marker for API errors.
        ApiError = -100,
        /// The node does not exist.
        NoNode = -101,
        /// ACL check failed.
        NoAuth = -102,
        /// Version mismatch.
        BadVersion = -103,
        /// The parent is ephemeral.
        NoChildrenForEphemerals = -108,
        /// The node already exists.
        NodeExists = -110,
        /// The node has children.
        NotEmpty = -111,
        /// The session expired.
        SessionExpired = -112,
        /// Invalid callback.
        InvalidCallback = -113,
        /// Empty or bad ACL.
        InvalidAcl = -114,
        /// Authentication failed.
        AuthFailed = -115,
        /// Session owned by another server.
        SessionMoved = -118,
        /// Write sent to a read-only server.
        NotReadOnly = -119,
        /// Ephemeral create on a local session.
        EphemeralOnLocalSession = -120,
        /// No such watch.
        NoWatcher = -121,
        /// Request timed out on the server side.
        RequestTimeout = -122,
        /// reconfig is disabled.
        ReconfigDisabled = -123,
        /// The server requires SASL authentication.
        SessionClosedRequireSaslAuth = -124,
        /// A hard quota was exceeded.
        QuotaExceeded = -125,
        /// Throttled and not executed.
        ThrottledOp = -127,
    }
}

open_enum! {
    /// Watch event types (PROTOCOL.md §7).
    pub enum EventType {
        /// A session state change (client-generated, no path).
        None = -1,
        /// The node was created.
        NodeCreated = 1,
        /// The node was deleted.
        NodeDeleted = 2,
        /// The node's data changed.
        NodeDataChanged = 3,
        /// A child was created or deleted.
        NodeChildrenChanged = 4,
        /// A data watch was removed (client-generated).
        DataWatchRemoved = 5,
        /// A child watch was removed (client-generated).
        ChildWatchRemoved = 6,
        /// A persistent watch was removed (client-generated).
        PersistentWatchRemoved = 7,
    }
}

open_enum! {
    /// Keeper (session) states carried by watch events. The deprecated `Unknown` state (-1)
    /// decodes as `Unknown(-1)`.
    pub enum KeeperState {
        /// Disconnected from the ensemble.
        Disconnected = 0,
        /// Deprecated.
        NoSyncConnected = 1,
        /// Connected; the state of every server notification.
        SyncConnected = 3,
        /// Authentication failed.
        AuthFailed = 4,
        /// Connected to a read-only server.
        ConnectedReadOnly = 5,
        /// SASL authentication succeeded.
        SaslAuthenticated = 6,
        /// The client was closed.
        Closed = 7,
        /// The session expired.
        Expired = -112,
    }
}

open_enum! {
    /// Create modes: the `flags` field of a create request (PROTOCOL.md §5).
    pub enum CreateMode {
        /// Persistent node.
        Persistent = 0,
        /// Deleted when the creating session ends.
        Ephemeral = 1,
        /// Persistent, with a 10-digit sequence suffix.
        PersistentSequential = 2,
        /// Ephemeral, with a sequence suffix.
        EphemeralSequential = 3,
        /// Container: deleted by the server once it had a child and is empty.
        Container = 4,
        /// Persistent with a time-to-live.
        PersistentWithTtl = 5,
        /// Persistent sequential with a time-to-live.
        PersistentSequentialWithTtl = 6,
    }
}

impl CreateMode {
    /// Whether the node dies with its session.
    pub const fn is_ephemeral(self) -> bool {
        matches!(
            self,
            CreateMode::Ephemeral | CreateMode::EphemeralSequential
        )
    }

    /// Whether the server appends a sequence number.
    pub const fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential
                | CreateMode::EphemeralSequential
                | CreateMode::PersistentSequentialWithTtl
        )
    }

    /// Whether this mode needs a TTL (and the createTTL opcode).
    pub const fn is_ttl(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl
        )
    }

    /// Whether this is a container node.
    pub const fn is_container(self) -> bool {
        matches!(self, CreateMode::Container)
    }
}

open_enum! {
    /// Watcher types for checkWatches and removeWatches (PROTOCOL.md §7).
    pub enum WatcherType {
        /// Child watches.
        Children = 1,
        /// Data (and exist) watches.
        Data = 2,
        /// Any watch.
        Any = 3,
        /// Persistent watches (3.9.0).
        Persistent = 4,
        /// Persistent recursive watches (3.9.0).
        PersistentRecursive = 5,
    }
}

open_enum! {
    /// addWatch modes.
    pub enum AddWatchMode {
        /// Fires for the node itself, survives firing.
        Persistent = 0,
        /// Fires for the node and all descendants (never NodeChildrenChanged).
        PersistentRecursive = 1,
    }
}

/// ACL permission bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Perms(pub i32);

impl Perms {
    /// Read data and list children.
    pub const READ: Perms = Perms(1);
    /// Set data.
    pub const WRITE: Perms = Perms(2);
    /// Create children.
    pub const CREATE: Perms = Perms(4);
    /// Delete children.
    pub const DELETE: Perms = Perms(8);
    /// Set ACLs.
    pub const ADMIN: Perms = Perms(16);
    /// All of the above.
    pub const ALL: Perms = Perms(31);

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: Perms) -> bool {
        self.0 & other.0 == other.0
    }
}

impl core::ops::BitOr for Perms {
    type Output = Perms;
    fn bitor(self, rhs: Perms) -> Perms {
        Perms(self.0 | rhs.0)
    }
}

impl Field for Perms {
    const MIN_LEN: usize = 4;
    fn read_field(r: &mut Reader<'_>, at: Loc) -> Result<Self, DecodeError> {
        Ok(Perms(r.i32(at)?))
    }
    fn write_field(&self, buf: &mut BytesMut) {
        buf.put_i32(self.0);
    }
    fn field_len(&self) -> usize {
        4
    }
}

/// Special xids (PROTOCOL.md §3).
pub mod xid {
    /// Watch notification (server → client).
    pub const NOTIFICATION: i32 = -1;
    /// Ping.
    pub const PING: i32 = -2;
    /// Auth packet.
    pub const AUTH: i32 = -4;
    /// SetWatches as sent by the C client.
    pub const SET_WATCHES: i32 = -8;
}

record! {
    /// A znode's metadata: 11 fields, always 68 bytes.
    #[derive(Default, Copy)]
    pub struct Stat "Stat" {
        /// zxid of the create.
        pub czxid: i64,
        /// zxid of the last setData.
        pub mzxid: i64,
        /// Create time, ms since the epoch.
        pub ctime: i64,
        /// Last modification time, ms since the epoch.
        pub mtime: i64,
        /// Number of setData calls.
        pub version: i32,
        /// Child version (creates + deletes of children).
        pub cversion: i32,
        /// ACL version.
        pub aversion: i32,
        /// Owning session of an ephemeral node, else 0.
        pub ephemeral_owner: i64,
        /// Data length.
        pub data_length: i32,
        /// Number of children.
        pub num_children: i32,
        /// zxid of the last child create or delete.
        pub pzxid: i64,
    }
}

record! {
    /// An identity: scheme and id (e.g. `world`/`anyone`, `digest`/`user:hash`).
    #[derive(Default, Hash)]
    pub struct Id "Id" {
        /// The auth scheme.
        pub scheme: String,
        /// The id within the scheme.
        pub id: String,
    }
}

record! {
    /// One access-control entry.
    pub struct Acl "ACL" {
        /// Permission bits.
        pub perms: Perms,
        /// Who they are granted to.
        pub id: Id,
    }
}

impl Acl {
    /// An ACL entry.
    pub fn new(perms: Perms, scheme: &str, id: &str) -> Acl {
        Acl {
            perms,
            id: Id {
                scheme: scheme.to_owned(),
                id: id.to_owned(),
            },
        }
    }

    /// `[{ALL, world, anyone}]`.
    pub fn open_unsafe() -> Vec<Acl> {
        vec![Acl::new(Perms::ALL, "world", "anyone")]
    }

    /// `[{ALL, auth, ""}]`: all permissions for the creator's authenticated identities.
    pub fn creator_all() -> Vec<Acl> {
        vec![Acl::new(Perms::ALL, "auth", "")]
    }

    /// `[{READ, world, anyone}]`.
    pub fn read_unsafe() -> Vec<Acl> {
        vec![Acl::new(Perms::READ, "world", "anyone")]
    }
}
