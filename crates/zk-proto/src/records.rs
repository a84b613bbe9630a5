//! Request and response bodies and headers with a fixed shape (PROTOCOL.md §3, §4, §7).
//!
//! Every struct here is a jute record: fields in declaration order, no tags or padding.

use bytes::Bytes;

use crate::types::{Acl, AddWatchMode, CreateMode, ErrorCode, EventType, KeeperState, OpCode};
use crate::types::{Stat, WatcherType};
use crate::wire::record;

record! {
    /// Header of every client frame after the handshake.
    pub struct RequestHeader "RequestHeader" {
        /// Request id; see [`crate::xid`] for the special values.
        pub xid: i32,
        /// The operation.
        pub opcode: OpCode,
    }
}

record! {
    /// Header of every server frame after the handshake.
    pub struct ReplyHeader "ReplyHeader" {
        /// The request's xid, or -1 for a notification.
        pub xid: i32,
        /// The transaction's zxid (writes) or the server's last zxid (reads).
        pub zxid: i64,
        /// The result; on a non-zero code the body is absent or ignored.
        pub err: ErrorCode,
    }
}

record! {
    /// create, create2 and createContainer.
    pub struct CreateRequest "CreateRequest" {
        /// Node path.
        pub path: String,
        /// Initial data.
        pub data: Bytes,
        /// The node's ACL.
        pub acl: Vec<Acl>,
        /// Create mode.
        pub flags: CreateMode,
    }
}

record! {
    /// createTTL.
    pub struct CreateTtlRequest "CreateTTLRequest" {
        /// Node path.
        pub path: String,
        /// Initial data.
        pub data: Bytes,
        /// The node's ACL.
        pub acl: Vec<Acl>,
        /// Create mode (5 or 6).
        pub flags: CreateMode,
        /// Time to live, ms (0 < ttl ≤ 2^40-1).
        pub ttl: i64,
    }
}

record! {
    /// Reply to create (opcode 1).
    pub struct CreateResponse "CreateResponse" {
        /// The created path, including any sequence suffix.
        pub path: String,
    }
}

record! {
    /// Reply to create2, createContainer and createTTL.
    pub struct Create2Response "Create2Response" {
        /// The created path, including any sequence suffix.
        pub path: String,
        /// The new node's Stat.
        pub stat: Stat,
    }
}

record! {
    /// delete.
    pub struct DeleteRequest "DeleteRequest" {
        /// Node path.
        pub path: String,
        /// Expected version, -1 for any.
        pub version: i32,
    }
}

record! {
    /// check (inside multi).
    pub struct CheckVersionRequest "CheckVersionRequest" {
        /// Node path.
        pub path: String,
        /// Expected version, -1 for any.
        pub version: i32,
    }
}

record! {
    /// exists.
    pub struct ExistsRequest "ExistsRequest" {
        /// Node path.
        pub path: String,
        /// Leave a data watch (node present) or exist watch (node missing).
        pub watch: bool,
    }
}

record! {
    /// Reply to exists.
    pub struct ExistsResponse "ExistsResponse" {
        /// The node's Stat.
        pub stat: Stat,
    }
}

record! {
    /// getData.
    pub struct GetDataRequest "GetDataRequest" {
        /// Node path.
        pub path: String,
        /// Leave a data watch.
        pub watch: bool,
    }
}

record! {
    /// Reply to getData and reconfig.
    pub struct GetDataResponse "GetDataResponse" {
        /// The node's data (a slice of the received frame).
        pub data: Bytes,
        /// The node's Stat.
        pub stat: Stat,
    }
}

record! {
    /// setData.
    pub struct SetDataRequest "SetDataRequest" {
        /// Node path.
        pub path: String,
        /// New data.
        pub data: Bytes,
        /// Expected version, -1 for any.
        pub version: i32,
    }
}

record! {
    /// Reply to setData.
    pub struct SetDataResponse "SetDataResponse" {
        /// The node's new Stat.
        pub stat: Stat,
    }
}

record! {
    /// getACL.
    pub struct GetAclRequest "GetACLRequest" {
        /// Node path.
        pub path: String,
    }
}

record! {
    /// Reply to getACL.
    pub struct GetAclResponse "GetACLResponse" {
        /// The node's ACL.
        pub acl: Vec<Acl>,
        /// The node's Stat.
        pub stat: Stat,
    }
}

record! {
    /// setACL.
    pub struct SetAclRequest "SetACLRequest" {
        /// Node path.
        pub path: String,
        /// The new ACL.
        pub acl: Vec<Acl>,
        /// Expected ACL version (aversion), -1 for any.
        pub version: i32,
    }
}

record! {
    /// Reply to setACL.
    pub struct SetAclResponse "SetACLResponse" {
        /// The node's new Stat.
        pub stat: Stat,
    }
}

record! {
    /// getChildren.
    pub struct GetChildrenRequest "GetChildrenRequest" {
        /// Node path.
        pub path: String,
        /// Leave a child watch.
        pub watch: bool,
    }
}

record! {
    /// Reply to getChildren.
    pub struct GetChildrenResponse "GetChildrenResponse" {
        /// Child names (not paths).
        pub children: Vec<String>,
    }
}

record! {
    /// getChildren2.
    pub struct GetChildren2Request "GetChildren2Request" {
        /// Node path.
        pub path: String,
        /// Leave a child watch.
        pub watch: bool,
    }
}

record! {
    /// Reply to getChildren2.
    pub struct GetChildren2Response "GetChildren2Response" {
        /// Child names (not paths).
        pub children: Vec<String>,
        /// The listed node's Stat.
        pub stat: Stat,
    }
}

record! {
    /// sync.
    pub struct SyncRequest "SyncRequest" {
        /// Node path.
        pub path: String,
    }
}

record! {
    /// Reply to sync (echoes the path).
    pub struct SyncResponse "SyncResponse" {
        /// The path.
        pub path: String,
    }
}

record! {
    /// reconfig (answered with a [`GetDataResponse`]).
    pub struct ReconfigRequest "ReconfigRequest" {
        /// Servers joining, comma separated.
        pub joining_servers: String,
        /// Servers leaving, comma separated.
        pub leaving_servers: String,
        /// A whole new membership (non-incremental reconfig).
        pub new_members: String,
        /// The expected current config version, -1 for any.
        pub cur_config_id: i64,
    }
}

record! {
    /// checkWatches.
    pub struct CheckWatchesRequest "CheckWatchesRequest" {
        /// Node path.
        pub path: String,
        /// Which kind of watch.
        pub watcher_type: WatcherType,
    }
}

record! {
    /// removeWatches.
    pub struct RemoveWatchesRequest "RemoveWatchesRequest" {
        /// Node path.
        pub path: String,
        /// Which kind of watch.
        pub watcher_type: WatcherType,
    }
}

record! {
    /// addWatch.
    pub struct AddWatchRequest "AddWatchRequest" {
        /// Node path (need not exist).
        pub path: String,
        /// Persistent or persistent-recursive.
        pub mode: AddWatchMode,
    }
}

record! {
    /// A bare error code: the addWatch reply body and a failed multi result.
    pub struct ErrorResponse "ErrorResponse" {
        /// The code.
        pub err: ErrorCode,
    }
}

record! {
    /// setWatches (101): re-register watches after a reconnect.
    pub struct SetWatches "SetWatches" {
        /// The client's last zxid seen; changes after it fire at once.
        pub relative_zxid: i64,
        /// Data watch paths.
        pub data_watches: Vec<String>,
        /// Exist watch paths.
        pub exist_watches: Vec<String>,
        /// Child watch paths.
        pub child_watches: Vec<String>,
    }
}

record! {
    /// setWatches2 (105): as [`SetWatches`] plus persistent watches.
    pub struct SetWatches2 "SetWatches2" {
        /// The client's last zxid seen.
        pub relative_zxid: i64,
        /// Data watch paths.
        pub data_watches: Vec<String>,
        /// Exist watch paths.
        pub exist_watches: Vec<String>,
        /// Child watch paths.
        pub child_watches: Vec<String>,
        /// Persistent watch paths.
        pub persistent_watches: Vec<String>,
        /// Persistent recursive watch paths.
        pub persistent_recursive_watches: Vec<String>,
    }
}

record! {
    /// A watch notification (frames with xid -1).
    pub struct WatcherEvent "WatcherEvent" {
        /// What happened.
        pub event_type: EventType,
        /// Always SyncConnected from a server.
        pub state: KeeperState,
        /// The node's path (server-side, chroot included).
        pub path: String,
    }
}

record! {
    /// auth (xid -4).
    pub struct AuthPacket "AuthPacket" {
        /// Always 0.
        pub auth_type: i32,
        /// The scheme, e.g. `digest`.
        pub scheme: String,
        /// The credentials, e.g. `user:password` for digest.
        pub auth: Bytes,
    }
}

record! {
    /// sasl request.
    pub struct GetSaslRequest "GetSASLRequest" {
        /// The SASL token.
        pub token: Bytes,
    }
}

record! {
    /// sasl reply; a server without SASL answers with a null token.
    pub struct SetSaslResponse "SetSASLResponse" {
        /// The SASL token, `None` when null.
        pub token: Option<Bytes>,
    }
}

record! {
    /// getEphemerals.
    pub struct GetEphemeralsRequest "GetEphemeralsRequest" {
        /// Plain string prefix; "/" or empty for all.
        pub prefix_path: String,
    }
}

record! {
    /// Reply to getEphemerals.
    pub struct GetEphemeralsResponse "GetEphemeralsResponse" {
        /// Full paths of the session's ephemerals.
        pub ephemerals: Vec<String>,
    }
}

record! {
    /// getAllChildrenNumber.
    pub struct GetAllChildrenNumberRequest "GetAllChildrenNumberRequest" {
        /// Node path.
        pub path: String,
    }
}

record! {
    /// Reply to getAllChildrenNumber.
    pub struct GetAllChildrenNumberResponse "GetAllChildrenNumberResponse" {
        /// All descendants, not counting the node itself.
        pub total_number: i32,
    }
}

record! {
    /// One identity of the connection, in a whoAmI reply.
    pub struct ClientInfo "ClientInfo" {
        /// The scheme.
        pub auth_scheme: String,
        /// The user within the scheme.
        pub user: String,
    }
}

record! {
    /// Reply to whoAmI.
    pub struct WhoAmIResponse "WhoAmIResponse" {
        /// The connection's identities.
        pub client_info: Vec<ClientInfo>,
    }
}

record! {
    /// The header before each op and result in multi records.
    pub struct MultiHeader "MultiHeader" {
        /// The op's opcode, or -1 for the terminator and error results.
        pub op_type: OpCode,
        /// True only on the terminator.
        pub done: bool,
        /// -1 in requests; the result's code in responses.
        pub err: i32,
    }
}
