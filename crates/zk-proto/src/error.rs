//! Typed decode, frame and encode errors.

use thiserror::Error;

/// Where in a record a decode error happened: the record's name and the field's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loc {
    /// The jute record being decoded (e.g. `"Stat"`).
    pub record: &'static str,
    /// The field of that record (e.g. `"czxid"`).
    pub field: &'static str,
}

impl core::fmt::Display for Loc {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}.{}", self.record, self.field)
    }
}

/// A record could not be decoded from the bytes in hand.
///
/// Every variant names the record and field where decoding stopped.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The frame ended in the middle of a field.
    #[error("{at}: truncated: needs {needed} bytes, {available} left")]
    Truncated {
        /// Where.
        at: Loc,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left in the frame.
        available: usize,
    },
    /// A length or count prefix is negative (other than -1, which means null).
    #[error("{at}: invalid length {len}")]
    InvalidLength {
        /// Where.
        at: Loc,
        /// The length read.
        len: i32,
    },
    /// A length or count prefix claims more than the frame still holds.
    #[error("{at}: length {len} needs at least {needed} bytes but only {available} are left")]
    LengthExceedsFrame {
        /// Where.
        at: Loc,
        /// The length or element count read.
        len: i32,
        /// The smallest number of bytes that many elements take.
        needed: usize,
        /// Bytes left in the frame.
        available: usize,
    },
    /// A string field is not valid UTF-8.
    #[error("{at}: string is not valid UTF-8")]
    InvalidUtf8 {
        /// Where.
        at: Loc,
    },
    /// Bytes are left over after the record.
    #[error("{record}.<end>: {trailing} trailing bytes after the record")]
    TrailingBytes {
        /// The record that was decoded.
        record: &'static str,
        /// Bytes left over.
        trailing: usize,
    },
    /// A request or response with an opcode this codec cannot decode.
    #[error("{record}.opcode: opcode {opcode} has no {record}")]
    UnsupportedOpCode {
        /// The record kind expected (`"Request"`, `"Response"`, `"MultiOp"`, …).
        record: &'static str,
        /// The raw opcode.
        opcode: i32,
    },
}

/// The length prefix of a frame is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The length prefix is negative.
    #[error("frame length {len} is negative")]
    NegativeLength {
        /// The length read.
        len: i32,
    },
    /// The length prefix is larger than the configured maximum.
    #[error("frame length {len} exceeds the maximum frame size {max}")]
    TooLarge {
        /// The length read (or, when encoding, the payload size).
        len: usize,
        /// The configured maximum.
        max: usize,
    },
}
