//! Jute primitives: the [`Reader`] cursor, the [`Field`] trait and the [`Record`] trait.
//!
//! Parsing uses nom's complete big-endian number parsers over the unread part of a frame;
//! byte fields are returned as zero-copy [`Bytes`] slices of that frame.

use bytes::{BufMut, Bytes, BytesMut};
use nom::number::complete::{be_i32, be_i64, be_u8};

use crate::error::{DecodeError, Loc};

type NomErr<'a> = nom::error::Error<&'a [u8]>;

/// A cursor over one complete frame (or a part of one).
///
/// Byte fields decode as slices of the frame's [`Bytes`], so node data is never copied.
#[derive(Debug)]
pub struct Reader<'a> {
    src: &'a Bytes,
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Start reading at the beginning of `src`.
    pub fn new(src: &'a Bytes) -> Self {
        Reader { src, pos: 0 }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.src.len() - self.pos
    }

    /// The unread bytes, as a zero-copy slice.
    pub fn rest(&self) -> Bytes {
        self.src.slice(self.pos..)
    }

    /// Fail with [`DecodeError::TrailingBytes`] unless every byte was read.
    pub fn finish(&self, record: &'static str) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            trailing => Err(DecodeError::TrailingBytes { record, trailing }),
        }
    }

    fn unread(&self) -> &'a [u8] {
        &self.src[self.pos..]
    }

    fn advance_to(&mut self, rest: &'a [u8]) {
        self.pos = self.src.len() - rest.len();
    }

    fn truncated(&self, at: Loc, needed: usize) -> DecodeError {
        DecodeError::Truncated {
            at,
            needed,
            available: self.remaining(),
        }
    }

    /// Read one byte.
    pub fn u8(&mut self, at: Loc) -> Result<u8, DecodeError> {
        let (rest, v) = be_u8::<_, NomErr<'a>>(self.unread()).map_err(|_| self.truncated(at, 1))?;
        self.advance_to(rest);
        Ok(v)
    }

    /// Read a big-endian `int`.
    pub fn i32(&mut self, at: Loc) -> Result<i32, DecodeError> {
        let (rest, v) =
            be_i32::<_, NomErr<'a>>(self.unread()).map_err(|_| self.truncated(at, 4))?;
        self.advance_to(rest);
        Ok(v)
    }

    /// Read a big-endian `long`.
    pub fn i64(&mut self, at: Loc) -> Result<i64, DecodeError> {
        let (rest, v) =
            be_i64::<_, NomErr<'a>>(self.unread()).map_err(|_| self.truncated(at, 8))?;
        self.advance_to(rest);
        Ok(v)
    }

    /// Read a jute `boolean` (any non-zero byte is true, as in Java).
    pub fn bool(&mut self, at: Loc) -> Result<bool, DecodeError> {
        Ok(self.u8(at)? != 0)
    }

    /// Read a length prefix of elements at least `min_len` bytes each.
    ///
    /// Returns `None` for -1 (null). A count the remaining bytes cannot back is an error, so a
    /// caller may allocate `count` elements safely.
    pub fn len_prefix(&mut self, at: Loc, min_len: usize) -> Result<Option<usize>, DecodeError> {
        let len = self.i32(at)?;
        if len == -1 {
            return Ok(None);
        }
        let n = usize::try_from(len).map_err(|_| DecodeError::InvalidLength { at, len })?;
        let needed = n.saturating_mul(min_len.max(1));
        if needed > self.remaining() {
            return Err(DecodeError::LengthExceedsFrame {
                at,
                len,
                needed,
                available: self.remaining(),
            });
        }
        Ok(Some(n))
    }

    /// Read `n` raw bytes as a zero-copy slice.
    pub fn take(&mut self, at: Loc, n: usize) -> Result<Bytes, DecodeError> {
        if n > self.remaining() {
            return Err(self.truncated(at, n));
        }
        let out = self.src.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(out)
    }

    /// Read a jute `buffer`; `None` for null (-1).
    pub fn buffer(&mut self, at: Loc) -> Result<Option<Bytes>, DecodeError> {
        match self.len_prefix(at, 1)? {
            None => Ok(None),
            Some(n) => self.take(at, n).map(Some),
        }
    }

    /// Read a jute `ustring`; `None` for null (-1).
    pub fn string(&mut self, at: Loc) -> Result<Option<String>, DecodeError> {
        let Some(n) = self.len_prefix(at, 1)? else {
            return Ok(None);
        };
        let raw = &self.unread()[..n];
        let s = core::str::from_utf8(raw).map_err(|_| DecodeError::InvalidUtf8 { at })?;
        self.pos += n;
        Ok(Some(s.to_owned()))
    }
}

/// A value that can appear as a field of a jute record.
///
/// Implemented for the jute primitives (`int`, `long`, `boolean`, `buffer`, `ustring`,
/// `vector`), for the protocol's typed enums and for every record.
pub trait Field: Sized {
    /// The fewest bytes one encoded value takes (bounds vector allocation).
    const MIN_LEN: usize;
    /// Decode one value; `at` names the field for errors.
    fn read_field(r: &mut Reader<'_>, at: Loc) -> Result<Self, DecodeError>;
    /// Append the encoding.
    fn write_field(&self, buf: &mut BytesMut);
    /// The number of bytes [`Field::write_field`] appends.
    fn field_len(&self) -> usize;
}

impl Field for i32 {
    const MIN_LEN: usize = 4;
    fn read_field(r: &mut Reader<'_>, at: Loc) -> Result<Self, DecodeError> {
        r.i32(at)
    }
    fn write_field(&self, buf: &mut BytesMut) {
        buf.put_i32(*self);
    }
    fn field_len(&self) -> usize {
        4
    }
}

impl Field for i64 {
    const MIN_LEN: usize = 8;
    fn read_field(r: &mut Reader<'_>, at: Loc) -> Result<Self, DecodeError> {
        r.i64(at)
    }
    fn write_field(&self, buf: &mut BytesMut) {
        buf.put_i64(*self);
    }
    fn field_len(&self) -> usize {
        8
    }
}

impl Field for bool {
    const MIN_LEN: usize = 1;
    fn read_field(r: &mut Reader<'_>, at: Loc) -> Result<Self, DecodeError> {
        r.bool(at)
    }
    fn write_field(&self, buf: &mut BytesMut) {
        buf.put_u8(u8::from(*self));
    }
    fn field_len(&self) -> usize {
        1
    }
}

/// `buffer`: null decodes as empty.
impl Field for Bytes {
    const MIN_LEN: usize = 4;
    fn read_field(r: &mut Reader<'_>, at: Loc) -> Result<Self, DecodeError> {
        Ok(r.buffer(at)?.unwrap_or_default())
    }
    fn write_field(&self, buf: &mut BytesMut) {
        put_len(buf, self.len());
        buf.put_slice(self);
    }
    fn field_len(&self) -> usize {
        4 + self.len()
    }
}

/// `buffer` where null (-1) is meaningful.
impl Field for Option<Bytes> {
    const MIN_LEN: usize = 4;
    fn read_field(r: &mut Reader<'_>, at: Loc) -> Result<Self, DecodeError> {
        r.buffer(at)
    }
    fn write_field(&self, buf: &mut BytesMut) {
        match self {
            None => buf.put_i32(-1),
            Some(b) => b.write_field(buf),
        }
    }
    fn field_len(&self) -> usize {
        4 + self.as_ref().map_or(0, Bytes::len)
    }
}

/// `ustring`: null decodes as empty.
impl Field for String {
    const MIN_LEN: usize = 4;
    fn read_field(r: &mut Reader<'_>, at: Loc) -> Result<Self, DecodeError> {
        Ok(r.string(at)?.unwrap_or_default())
    }
    fn write_field(&self, buf: &mut BytesMut) {
        put_len(buf, self.len());
        buf.put_slice(self.as_bytes());
    }
    fn field_len(&self) -> usize {
        4 + self.len()
    }
}

/// `vector<T>`: null decodes as empty.
impl<T: Field> Field for Vec<T> {
    const MIN_LEN: usize = 4;
    fn read_field(r: &mut Reader<'_>, at: Loc) -> Result<Self, DecodeError> {
        let Some(n) = r.len_prefix(at, T::MIN_LEN)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(T::read_field(r, at)?);
        }
        Ok(out)
    }
    fn write_field(&self, buf: &mut BytesMut) {
        put_len(buf, self.len());
        for item in self {
            item.write_field(buf);
        }
    }
    fn field_len(&self) -> usize {
        4 + self.iter().map(Field::field_len).sum::<usize>()
    }
}

/// Write a length prefix. Lengths above `i32::MAX` cannot be framed at all; they are clamped
/// here and always rejected earlier by the frame size check.
fn put_len(buf: &mut BytesMut, len: usize) {
    buf.put_i32(i32::try_from(len).unwrap_or(i32::MAX));
}

/// A complete jute record: a message body or a nested structure.
pub trait Record: Field {
    /// The record's name in `zookeeper.jute` (used in error messages).
    const NAME: &'static str;

    /// Decode the record from the reader's current position.
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Decode a record that must fill `bytes` exactly.
    fn decode(bytes: &Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let v = Self::read(&mut r)?;
        r.finish(Self::NAME)?;
        Ok(v)
    }

    /// Append the record's encoding to `buf`.
    fn encode(&self, buf: &mut BytesMut) {
        self.write_field(buf);
    }

    /// The record's encoded size in bytes.
    fn encoded_len(&self) -> usize {
        self.field_len()
    }

    /// Encode into a new buffer.
    fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(self.encoded_len());
        self.encode(&mut buf);
        buf.freeze()
    }
}

/// Define a record whose fields are all [`Field`]s, in declaration order.
macro_rules! record {
    (
        $(#[$meta:meta])*
        pub struct $name:ident $jute:literal {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl $crate::wire::Field for $name {
            const MIN_LEN: usize = 0 $( + <$ty as $crate::wire::Field>::MIN_LEN )*;
            #[allow(unused_variables)]
            fn read_field(
                r: &mut $crate::wire::Reader<'_>,
                at: $crate::error::Loc,
            ) -> Result<Self, $crate::error::DecodeError> {
                <Self as $crate::wire::Record>::read(r)
            }
            #[allow(unused_variables)]
            fn write_field(&self, buf: &mut bytes::BytesMut) {
                $( $crate::wire::Field::write_field(&self.$field, buf); )*
            }
            fn field_len(&self) -> usize {
                0 $( + $crate::wire::Field::field_len(&self.$field) )*
            }
        }

        impl $crate::wire::Record for $name {
            const NAME: &'static str = $jute;
            #[allow(unused_variables)]
            fn read(r: &mut $crate::wire::Reader<'_>) -> Result<Self, $crate::error::DecodeError> {
                Ok($name {
                    $( $field: <$ty as $crate::wire::Field>::read_field(
                        r,
                        $crate::error::Loc { record: $jute, field: stringify!($field) },
                    )?, )*
                })
            }
        }
    };
}
pub(crate) use record;
