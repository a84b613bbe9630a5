//! Length-prefixed framing (PROTOCOL.md §1): incremental decoding from a [`BytesMut`] and
//! frame encoding with the length patched in place.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::FrameError;
use crate::wire::Record;

/// Default maximum frame payload: `jute.maxbuffer` = 0xFFFFF (1,048,575 bytes).
pub const DEFAULT_MAX_FRAME: usize = 0xFFFFF;

/// Splits complete frames off the front of a receive buffer.
///
/// Feed it the bytes of a stream in any split; each call to [`FrameDecoder::decode`] returns
/// the next complete frame's payload (without its 4-byte length) as a zero-copy [`Bytes`].
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max_frame: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder::new(DEFAULT_MAX_FRAME)
    }
}

impl FrameDecoder {
    /// A decoder that rejects frames with a payload over `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        FrameDecoder { max_frame }
    }

    /// The configured maximum payload size.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Take the next complete frame from `buf`, or `Ok(None)` if more bytes are needed.
    ///
    /// A length prefix that is negative or over the maximum is an error; the stream cannot be
    /// resynchronised after it, so the caller should drop the connection. Nothing is allocated
    /// on the strength of a length prefix: the buffer grows only with bytes received.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        let Some(prefix) = buf.get(..4) else {
            return Ok(None);
        };
        let len = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        let len = usize::try_from(len).map_err(|_| FrameError::NegativeLength { len })?;
        if len > self.max_frame {
            return Err(FrameError::TooLarge {
                len,
                max: self.max_frame,
            });
        }
        if buf.len() < 4 + len {
            // No reservation from the length prefix: memory follows the bytes received.
            return Ok(None);
        }
        buf.advance(4);
        Ok(Some(buf.split_to(len).freeze()))
    }
}

/// Append one frame: a 4-byte length, then whatever `body` writes. Returns the payload length.
pub fn write_frame(buf: &mut BytesMut, body: impl FnOnce(&mut BytesMut)) -> usize {
    let start = buf.len();
    buf.put_i32(0);
    body(buf);
    let len = buf.len() - start - 4;
    let prefix = i32::try_from(len).unwrap_or(i32::MAX).to_be_bytes();
    buf[start..start + 4].copy_from_slice(&prefix);
    len
}

/// Append a record as a whole frame (the connect handshake frames have no header).
pub fn write_record_frame<R: Record>(buf: &mut BytesMut, record: &R) {
    buf.reserve(4 + record.encoded_len());
    write_frame(buf, |b| record.encode(b));
}

/// Check a payload size against a limit before encoding it.
pub fn check_frame_len(len: usize, max: usize) -> Result<(), FrameError> {
    if len > max {
        Err(FrameError::TooLarge { len, max })
    } else {
        Ok(())
    }
}
