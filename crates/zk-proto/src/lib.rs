//! A sans-IO codec for the ZooKeeper client wire protocol (servers 3.4 – 3.9).
//!
//! `zk-proto` turns bytes into typed records and back, in both directions: client requests
//! and server responses, so the same crate serves a client session, a simulator and a scripted
//! test server. It does no IO and reads no clock.
//!
//! Two layers, as in rustls and h2:
//!
//! - **Framing** ([`FrameDecoder`], [`write_frame`]): every message is a big-endian `int32`
//!   length and that many payload bytes. The decoder splits complete frames off a [`BytesMut`]
//!   fed in any split, and rejects a length over the configured maximum before buffering it.
//! - **Records** ([`Record`]): jute records decoded from a complete frame. Byte fields are
//!   zero-copy slices of the frame. A length or count larger than what remains in the frame is
//!   an error, never an allocation, and every error names the record and field.
//!
//! ```
//! use bytes::{Bytes, BytesMut};
//! use zk_proto::{FrameDecoder, GetDataRequest, OpCode, Reply, Request, Response};
//!
//! // Client: encode a getData request with xid 4.
//! let mut out = BytesMut::new();
//! Request::GetData(GetDataRequest { path: "/app".into(), watch: true }).encode_frame(4, &mut out);
//!
//! // Server: decode it.
//! let mut decoder = FrameDecoder::default();
//! let frame = decoder.decode(&mut out).unwrap().unwrap();
//! let (header, request) = Request::decode_frame(&frame).unwrap();
//! assert_eq!(header.xid, 4);
//! assert_eq!(request.opcode(), OpCode::GetData);
//!
//! // Client: decode a reply by the opcode of the request with that xid.
//! let bytes = hex_frame("0000005d 00000004 00000000000000aa 00000000 00000005 68656c6c6f \
//!     00000000000000aa 00000000000000aa 000001a20fb2d2e7 000001a20fb2d2e7 00000000 00000000 \
//!     00000000 0000000000000000 00000005 00000000 00000000000000aa");
//! let mut input = BytesMut::from(&bytes[..]);
//! let frame = decoder.decode(&mut input).unwrap().unwrap();
//! let reply = Reply::parse(&frame).unwrap();
//! match reply.response(OpCode::GetData).unwrap() {
//!     Ok(Response::GetData(r)) => assert_eq!(&r.data[..], b"hello"),
//!     other => panic!("unexpected {other:?}"),
//! }
//! # fn hex_frame(s: &str) -> Vec<u8> {
//! #     let s: String = s.split_whitespace().collect();
//! #     (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod connect;
mod error;
mod frame;
mod message;
mod multi;
mod records;
mod types;
mod wire;

pub use connect::{ConnectRequest, ConnectResponse};
pub use error::{DecodeError, FrameError, Loc};
pub use frame::{
    DEFAULT_MAX_FRAME, FrameDecoder, check_frame_len, write_frame, write_record_frame,
};
pub use message::{DeleteContainerRequest, Reply, Request, Response};
pub use multi::{MultiOp, MultiRequest, MultiResponse, MultiResult};
pub use records::*;
pub use types::{
    Acl, AddWatchMode, CreateMode, ErrorCode, EventType, Id, KeeperState, OpCode, Perms, Stat,
    WatcherType, xid,
};
pub use wire::{Field, Reader, Record};
