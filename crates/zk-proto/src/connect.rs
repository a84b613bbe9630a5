//! The connect handshake records (PROTOCOL.md §2), with and without the trailing readOnly byte.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{DecodeError, Loc};
use crate::wire::{Field, Reader, Record};

/// The first client frame (no request header).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectRequest {
    /// Always 0.
    pub protocol_version: i32,
    /// Highest zxid seen in replies; 0 for a new client.
    pub last_zxid_seen: i64,
    /// Requested session timeout, ms.
    pub timeout: i32,
    /// 0 for a new session, else the session to resume.
    pub session_id: i64,
    /// The session password (16 zero bytes for a new session).
    pub passwd: Bytes,
    /// The "can be read-only" byte; `None` when absent (clients ≤ 3.3).
    pub read_only: Option<bool>,
}

/// The first server frame (no reply header).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectResponse {
    /// Always 0.
    pub protocol_version: i32,
    /// Negotiated timeout, ms; ≤ 0 means the session is invalid (expired).
    pub timeout: i32,
    /// The session id.
    pub session_id: i64,
    /// The session password (16 bytes).
    pub passwd: Bytes,
    /// Whether the server is read-only; present only if the request had the byte.
    pub read_only: Option<bool>,
}

fn read_trailing_flag(r: &mut Reader<'_>, at: Loc) -> Result<Option<bool>, DecodeError> {
    if r.remaining() == 0 {
        Ok(None)
    } else {
        r.bool(at).map(Some)
    }
}

const REQ: &str = "ConnectRequest";
const RESP: &str = "ConnectResponse";

const fn at(record: &'static str, field: &'static str) -> Loc {
    Loc { record, field }
}

impl Field for ConnectRequest {
    const MIN_LEN: usize = 4 + 8 + 4 + 8 + 4;
    fn read_field(r: &mut Reader<'_>, _at: Loc) -> Result<Self, DecodeError> {
        Self::read(r)
    }
    fn write_field(&self, buf: &mut BytesMut) {
        buf.put_i32(self.protocol_version);
        buf.put_i64(self.last_zxid_seen);
        buf.put_i32(self.timeout);
        buf.put_i64(self.session_id);
        self.passwd.write_field(buf);
        if let Some(ro) = self.read_only {
            ro.write_field(buf);
        }
    }
    fn field_len(&self) -> usize {
        Self::MIN_LEN + self.passwd.len() + usize::from(self.read_only.is_some())
    }
}

impl Record for ConnectRequest {
    const NAME: &'static str = REQ;
    /// Reads the optional readOnly byte when a byte is left after the password; more than
    /// one byte left is then a trailing-bytes error from [`Record::decode`].
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ConnectRequest {
            protocol_version: r.i32(at(REQ, "protocol_version"))?,
            last_zxid_seen: r.i64(at(REQ, "last_zxid_seen"))?,
            timeout: r.i32(at(REQ, "timeout"))?,
            session_id: r.i64(at(REQ, "session_id"))?,
            passwd: Bytes::read_field(r, at(REQ, "passwd"))?,
            read_only: read_trailing_flag(r, at(REQ, "read_only"))?,
        })
    }
}

impl Field for ConnectResponse {
    const MIN_LEN: usize = 4 + 4 + 8 + 4;
    fn read_field(r: &mut Reader<'_>, _at: Loc) -> Result<Self, DecodeError> {
        Self::read(r)
    }
    fn write_field(&self, buf: &mut BytesMut) {
        buf.put_i32(self.protocol_version);
        buf.put_i32(self.timeout);
        buf.put_i64(self.session_id);
        self.passwd.write_field(buf);
        if let Some(ro) = self.read_only {
            ro.write_field(buf);
        }
    }
    fn field_len(&self) -> usize {
        Self::MIN_LEN + self.passwd.len() + usize::from(self.read_only.is_some())
    }
}

impl Record for ConnectResponse {
    const NAME: &'static str = RESP;
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ConnectResponse {
            protocol_version: r.i32(at(RESP, "protocol_version"))?,
            timeout: r.i32(at(RESP, "timeout"))?,
            session_id: r.i64(at(RESP, "session_id"))?,
            passwd: Bytes::read_field(r, at(RESP, "passwd"))?,
            read_only: read_trailing_flag(r, at(RESP, "read_only"))?,
        })
    }
}

impl ConnectResponse {
    /// Whether the server refused to resume the session (timeout ≤ 0): the session expired.
    pub fn is_expired(&self) -> bool {
        self.timeout <= 0
    }
}
