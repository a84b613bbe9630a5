//! Whole messages: a [`Request`] or [`Response`] body selected by opcode, with its header.

use bytes::{Bytes, BytesMut};

use crate::error::{DecodeError, Loc};
use crate::frame::write_frame;
use crate::multi::{MultiRequest, MultiResponse};
use crate::records::*;
use crate::types::{ErrorCode, OpCode, xid};
use crate::wire::{Field, Reader, Record};

/// deleteContainer (20): the path as raw UTF-8 filling the body, with no length prefix.
///
/// Server-internal (the container reaper); clients must never send it. Here for completeness.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeleteContainerRequest {
    /// The container's path.
    pub path: String,
}

impl Field for DeleteContainerRequest {
    const MIN_LEN: usize = 0;
    fn read_field(r: &mut Reader<'_>, _at: Loc) -> Result<Self, DecodeError> {
        Self::read(r)
    }
    fn write_field(&self, buf: &mut BytesMut) {
        buf.extend_from_slice(self.path.as_bytes());
    }
    fn field_len(&self) -> usize {
        self.path.len()
    }
}

impl Record for DeleteContainerRequest {
    const NAME: &'static str = "DeleteContainerRequest";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let at = Loc {
            record: Self::NAME,
            field: "path",
        };
        let raw = r.take(at, r.remaining())?;
        let path = String::from_utf8(raw.to_vec()).map_err(|_| DecodeError::InvalidUtf8 { at })?;
        Ok(DeleteContainerRequest { path })
    }
}

/// Generates `opcode`, `body_len`, `write_body` and `read_body` for a one-to-one
/// opcode ↔ variant enum.
macro_rules! request_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vm:meta])* $var:ident($ty:ty) = $op:ident, )*
            ;
            $( $(#[$um:meta])* $unit:ident = $uop:ident, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum $name {
            $( $(#[$vm])* $var($ty), )*
            $( $(#[$um])* $unit, )*
        }

        impl $name {
            /// The opcode written in the request header.
            pub fn opcode(&self) -> OpCode {
                match self {
                    $( $name::$var(_) => OpCode::$op, )*
                    $( $name::$unit => OpCode::$uop, )*
                }
            }

            /// The encoded size of the body (without header or length prefix).
            pub fn body_len(&self) -> usize {
                match self {
                    $( $name::$var(b) => b.encoded_len(), )*
                    $( $name::$unit => 0, )*
                }
            }

            /// Append the body's encoding.
            pub fn write_body(&self, buf: &mut BytesMut) {
                match self {
                    $( $name::$var(b) => b.encode(buf), )*
                    $( $name::$unit => {} )*
                }
            }

            /// Decode a body of the given opcode from the reader.
            pub fn read_body(op: OpCode, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok(match op {
                    $( OpCode::$op => $name::$var(<$ty>::read(r)?), )*
                    $( OpCode::$uop => $name::$unit, )*
                    other => return Err(DecodeError::UnsupportedOpCode {
                        record: stringify!($name),
                        opcode: other.to_raw(),
                    }),
                })
            }
        }
    };
}

request_enum! {
    /// A client request body, one variant per opcode.
    pub enum Request {
        /// create (1).
        Create(CreateRequest) = Create,
        /// create2 (15).
        Create2(CreateRequest) = Create2,
        /// createContainer (19); flags must be [`crate::CreateMode::Container`].
        CreateContainer(CreateRequest) = CreateContainer,
        /// createTTL (21).
        CreateTtl(CreateTtlRequest) = CreateTtl,
        /// delete (2).
        Delete(DeleteRequest) = Delete,
        /// exists (3).
        Exists(ExistsRequest) = Exists,
        /// getData (4).
        GetData(GetDataRequest) = GetData,
        /// setData (5).
        SetData(SetDataRequest) = SetData,
        /// getACL (6).
        GetAcl(GetAclRequest) = GetAcl,
        /// setACL (7).
        SetAcl(SetAclRequest) = SetAcl,
        /// getChildren (8).
        GetChildren(GetChildrenRequest) = GetChildren,
        /// sync (9).
        Sync(SyncRequest) = Sync,
        /// getChildren2 (12).
        GetChildren2(GetChildren2Request) = GetChildren2,
        /// check (13). Never send standalone: 3.8.0 sends no reply on success.
        Check(CheckVersionRequest) = Check,
        /// multi (14).
        Multi(MultiRequest) = Multi,
        /// reconfig (16).
        Reconfig(ReconfigRequest) = Reconfig,
        /// checkWatches (17).
        CheckWatches(CheckWatchesRequest) = CheckWatches,
        /// removeWatches (18).
        RemoveWatches(RemoveWatchesRequest) = RemoveWatches,
        /// deleteContainer (20): server-internal.
        DeleteContainer(DeleteContainerRequest) = DeleteContainer,
        /// multiRead (22).
        MultiRead(MultiRequest) = MultiRead,
        /// auth (100), sent with xid -4.
        Auth(AuthPacket) = Auth,
        /// setWatches (101).
        SetWatches(SetWatches) = SetWatches,
        /// sasl (102).
        Sasl(GetSaslRequest) = Sasl,
        /// getEphemerals (103).
        GetEphemerals(GetEphemeralsRequest) = GetEphemerals,
        /// getAllChildrenNumber (104).
        GetAllChildrenNumber(GetAllChildrenNumberRequest) = GetAllChildrenNumber,
        /// setWatches2 (105).
        SetWatches2(SetWatches2) = SetWatches2,
        /// addWatch (106).
        AddWatch(AddWatchRequest) = AddWatch,
        ;
        /// ping (11), sent with xid -2.
        Ping = Ping,
        /// whoAmI (107).
        WhoAmI = WhoAmI,
        /// closeSession (-11).
        CloseSession = CloseSession,
    }
}

impl Request {
    /// The payload size of this request's frame: header plus body.
    pub fn frame_len(&self) -> usize {
        8 + self.body_len()
    }

    /// Append a whole frame: length prefix, `RequestHeader{xid, opcode}` and body.
    pub fn encode_frame(&self, xid: i32, buf: &mut BytesMut) {
        buf.reserve(4 + self.frame_len());
        write_frame(buf, |b| {
            RequestHeader {
                xid,
                opcode: self.opcode(),
            }
            .encode(b);
            self.write_body(b);
        });
    }

    /// Decode a frame payload (after the length prefix) as header and request.
    pub fn decode_frame(frame: &Bytes) -> Result<(RequestHeader, Request), DecodeError> {
        let mut r = Reader::new(frame);
        let header = RequestHeader::read(&mut r)?;
        let req = Request::read_body(header.opcode, &mut r)?;
        r.finish("Request")?;
        Ok((header, req))
    }

    /// The xid this request must carry: -2 for ping, -4 for auth, else `next` (a normal xid).
    pub fn fixed_xid(&self) -> Option<i32> {
        match self {
            Request::Ping => Some(xid::PING),
            Request::Auth(_) => Some(xid::AUTH),
            _ => None,
        }
    }
}

/// A server reply body, decoded according to the request's opcode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// No body: delete, check, ping, auth, setWatches, setWatches2, checkWatches,
    /// removeWatches, closeSession.
    Empty,
    /// create (1).
    Create(CreateResponse),
    /// create2, createContainer, createTTL.
    Create2(Create2Response),
    /// exists.
    Exists(ExistsResponse),
    /// getData.
    GetData(GetDataResponse),
    /// setData.
    SetData(SetDataResponse),
    /// getACL.
    GetAcl(GetAclResponse),
    /// setACL.
    SetAcl(SetAclResponse),
    /// getChildren.
    GetChildren(GetChildrenResponse),
    /// getChildren2.
    GetChildren2(GetChildren2Response),
    /// sync.
    Sync(SyncResponse),
    /// multi and multiRead.
    Multi(MultiResponse),
    /// reconfig: the new config and the Stat of `/zookeeper/config`.
    Reconfig(GetDataResponse),
    /// addWatch: a 4-byte error code (0).
    AddWatch(ErrorResponse),
    /// sasl.
    Sasl(SetSaslResponse),
    /// getEphemerals.
    GetEphemerals(GetEphemeralsResponse),
    /// getAllChildrenNumber.
    GetAllChildrenNumber(GetAllChildrenNumberResponse),
    /// whoAmI.
    WhoAmI(WhoAmIResponse),
}

macro_rules! response_body {
    ($self:ident, $b:ident => $e:expr, $empty:expr) => {
        match $self {
            Response::Empty => $empty,
            Response::Create($b) => $e,
            Response::Create2($b) => $e,
            Response::Exists($b) => $e,
            Response::GetData($b) | Response::Reconfig($b) => $e,
            Response::SetData($b) => $e,
            Response::GetAcl($b) => $e,
            Response::SetAcl($b) => $e,
            Response::GetChildren($b) => $e,
            Response::GetChildren2($b) => $e,
            Response::Sync($b) => $e,
            Response::Multi($b) => $e,
            Response::AddWatch($b) => $e,
            Response::Sasl($b) => $e,
            Response::GetEphemerals($b) => $e,
            Response::GetAllChildrenNumber($b) => $e,
            Response::WhoAmI($b) => $e,
        }
    };
}

impl Response {
    /// The encoded size of the body.
    pub fn body_len(&self) -> usize {
        response_body!(self, b => b.encoded_len(), 0)
    }

    /// Append the body's encoding.
    pub fn write_body(&self, buf: &mut BytesMut) {
        response_body!(self, b => b.encode(buf), ())
    }

    /// Decode the body of a successful reply to a request of opcode `op`.
    pub fn read_body(op: OpCode, r: &mut Reader<'_>) -> Result<Response, DecodeError> {
        Ok(match op {
            OpCode::Create => Response::Create(CreateResponse::read(r)?),
            OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
                Response::Create2(Create2Response::read(r)?)
            }
            OpCode::Delete
            | OpCode::Check
            | OpCode::Ping
            | OpCode::Auth
            | OpCode::SetWatches
            | OpCode::SetWatches2
            | OpCode::CheckWatches
            | OpCode::RemoveWatches
            | OpCode::DeleteContainer
            | OpCode::CloseSession => Response::Empty,
            OpCode::Exists => Response::Exists(ExistsResponse::read(r)?),
            OpCode::GetData => Response::GetData(GetDataResponse::read(r)?),
            OpCode::SetData => Response::SetData(SetDataResponse::read(r)?),
            OpCode::GetAcl => Response::GetAcl(GetAclResponse::read(r)?),
            OpCode::SetAcl => Response::SetAcl(SetAclResponse::read(r)?),
            OpCode::GetChildren => Response::GetChildren(GetChildrenResponse::read(r)?),
            OpCode::GetChildren2 => Response::GetChildren2(GetChildren2Response::read(r)?),
            OpCode::Sync => Response::Sync(SyncResponse::read(r)?),
            OpCode::Multi | OpCode::MultiRead => Response::Multi(MultiResponse::read(r)?),
            OpCode::Reconfig => Response::Reconfig(GetDataResponse::read(r)?),
            // Tolerate a bare header from a server that sends no ErrorResponse body.
            OpCode::AddWatch if r.remaining() == 0 => {
                Response::AddWatch(ErrorResponse { err: ErrorCode::Ok })
            }
            OpCode::AddWatch => Response::AddWatch(ErrorResponse::read(r)?),
            OpCode::Sasl => Response::Sasl(SetSaslResponse::read(r)?),
            OpCode::GetEphemerals => Response::GetEphemerals(GetEphemeralsResponse::read(r)?),
            OpCode::GetAllChildrenNumber => {
                Response::GetAllChildrenNumber(GetAllChildrenNumberResponse::read(r)?)
            }
            OpCode::WhoAmI => Response::WhoAmI(WhoAmIResponse::read(r)?),
            other => {
                return Err(DecodeError::UnsupportedOpCode {
                    record: "Response",
                    opcode: other.to_raw(),
                });
            }
        })
    }

    /// Decode a body that must fill `body` exactly.
    pub fn decode(op: OpCode, body: &Bytes) -> Result<Response, DecodeError> {
        let mut r = Reader::new(body);
        let resp = Response::read_body(op, &mut r)?;
        r.finish("Response")?;
        Ok(resp)
    }

    /// Append a whole reply frame: length prefix, header and (when given) body.
    pub fn encode_frame(header: &ReplyHeader, body: Option<&Response>, buf: &mut BytesMut) {
        buf.reserve(4 + 16 + body.map_or(0, Response::body_len));
        write_frame(buf, |b| {
            header.encode(b);
            if let Some(body) = body {
                body.write_body(b);
            }
        });
    }
}

/// A server frame after the handshake: its header and the undecoded body.
///
/// The body is decoded once the caller knows what it answers: by xid -1 a [`WatcherEvent`],
/// otherwise the [`Response`] to the request with that xid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The reply header.
    pub header: ReplyHeader,
    /// The rest of the frame.
    pub body: Bytes,
}

impl Reply {
    /// Split a frame payload into header and body.
    pub fn parse(frame: &Bytes) -> Result<Reply, DecodeError> {
        let mut r = Reader::new(frame);
        let header = ReplyHeader::read(&mut r)?;
        Ok(Reply {
            header,
            body: r.rest(),
        })
    }

    /// Whether this frame is a watch notification (xid -1).
    pub fn is_notification(&self) -> bool {
        self.header.xid == xid::NOTIFICATION
    }

    /// Decode the body as a watch notification.
    pub fn watcher_event(&self) -> Result<WatcherEvent, DecodeError> {
        WatcherEvent::decode(&self.body)
    }

    /// The reply to a request of opcode `op`: `Ok(Err(code))` when the header carries an
    /// error (the body is then ignored, PROTOCOL.md §1), else the decoded body.
    pub fn response(&self, op: OpCode) -> Result<Result<Response, ErrorCode>, DecodeError> {
        if self.header.err != ErrorCode::Ok {
            return Ok(Err(self.header.err));
        }
        Response::decode(op, &self.body).map(Ok)
    }

    /// Append a notification frame (server direction): header `{-1, zxid, 0}` and the event.
    pub fn encode_notification(zxid: i64, event: &WatcherEvent, buf: &mut BytesMut) {
        buf.reserve(4 + 16 + event.encoded_len());
        write_frame(buf, |b| {
            ReplyHeader {
                xid: xid::NOTIFICATION,
                zxid,
                err: ErrorCode::Ok,
            }
            .encode(b);
            event.encode(b);
        });
    }
}
