//! A shared counter, wire-compatible with kazoo's `kazoo.recipe.counter.Counter` and with
//! Curator's `SharedCount` / `DistributedAtomicInteger`.
//!
//! Every change is a read-modify-write: read the value and its version, compute, `setData`
//! with that version, and start again on `BadVersion` (someone else changed it meanwhile).
//!
//! A change whose `setData` was in flight when the connection dropped has an **unknown**
//! outcome. The counter first looks again: if the node still has the version (and czxid) it
//! was set against, the write did not apply and the change is retried; otherwise it reports
//! [`Update::Unknown`] — never a failure, and never retried blindly (which could apply it
//! twice). `Err` means the change did not apply.
//!
//! # Wire format
//!
//! * [`KazooInt`] / [`KazooFloat`] (kazoo's default): the value as ASCII text, `repr(value)`
//!   in Python: `5`, `-3`, `5.0`, `0.1`, `1e-05`, `1e+16`, `inf`. An empty node reads as the
//!   counter's default (kazoo creates the node empty).
//! * [`CuratorInt`] (kazoo's `support_curator=True`): a 4-byte big-endian `int`, as Curator's
//!   `SharedCount` and `DistributedAtomicInteger` store it.

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::Error;
use crate::queue::{MAX_RETRIES, await_connected, is_ambiguous, retry};
use crate::session::{Session, SessionExt};

/// How a counter's value is stored in its node.
pub trait Codec: Send + Sync + 'static {
    /// The value type.
    type Value: Copy + PartialEq + fmt::Debug + Send + Sync + 'static;
    /// The node's data for `value` (`None` when it cannot be encoded).
    fn encode(value: Self::Value) -> Option<Vec<u8>>;
    /// The value of non-empty node data (`None` when it does not decode).
    fn decode(data: &[u8]) -> Option<Self::Value>;
    /// `a + b` (`None` on overflow).
    fn add(a: Self::Value, b: Self::Value) -> Option<Self::Value>;
    /// `-v` (`None` on overflow).
    fn negate(v: Self::Value) -> Option<Self::Value>;
}

/// kazoo's integer counter: `repr(int)` as ASCII (`42`, `-7`).
#[derive(Debug, Clone, Copy)]
pub struct KazooInt;

impl Codec for KazooInt {
    type Value = i64;
    fn encode(value: i64) -> Option<Vec<u8>> {
        Some(value.to_string().into_bytes())
    }
    fn decode(data: &[u8]) -> Option<i64> {
        std::str::from_utf8(data).ok()?.trim().parse().ok()
    }
    fn add(a: i64, b: i64) -> Option<i64> {
        a.checked_add(b)
    }
    fn negate(v: i64) -> Option<i64> {
        v.checked_neg()
    }
}

/// kazoo's float counter: `repr(float)` as ASCII (`5.0`, `0.1`, `1e-05`, `1e+16`).
#[derive(Debug, Clone, Copy)]
pub struct KazooFloat;

impl Codec for KazooFloat {
    type Value = f64;
    fn encode(value: f64) -> Option<Vec<u8>> {
        Some(python_float_repr(value).into_bytes())
    }
    fn decode(data: &[u8]) -> Option<f64> {
        std::str::from_utf8(data).ok()?.trim().parse().ok()
    }
    fn add(a: f64, b: f64) -> Option<f64> {
        Some(a + b)
    }
    fn negate(v: f64) -> Option<f64> {
        Some(-v)
    }
}

/// Curator's `SharedCount` / `DistributedAtomicInteger` layout: a 4-byte big-endian `int`
/// (kazoo's `support_curator=True`).
#[derive(Debug, Clone, Copy)]
pub struct CuratorInt;

impl Codec for CuratorInt {
    type Value = i32;
    fn encode(value: i32) -> Option<Vec<u8>> {
        Some(value.to_be_bytes().to_vec())
    }
    fn decode(data: &[u8]) -> Option<i32> {
        Some(i32::from_be_bytes(data.try_into().ok()?))
    }
    fn add(a: i32, b: i32) -> Option<i32> {
        a.checked_add(b)
    }
    fn negate(v: i32) -> Option<i32> {
        v.checked_neg()
    }
}

/// Python's `repr(float)`: the shortest text that reads back as the same float, positional
/// when the decimal exponent is in -4..16, scientific (`1e-05`, `1.5e+16`) otherwise.
pub fn python_float_repr(v: f64) -> String {
    if v.is_nan() {
        return "nan".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0.0" } else { "0.0" }.to_owned();
    }
    // Rust's `{:e}` gives the shortest round-trip digits too: "-1.2345e-7".
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let sign = if mantissa.starts_with('-') { "-" } else { "" };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let decpt = exp + 1;
    let n = i32::try_from(digits.len()).unwrap_or(i32::MAX);
    let body = if -4 < decpt && decpt <= 16 {
        if decpt <= 0 {
            format!("0.{}{digits}", "0".repeat(decpt.unsigned_abs() as usize))
        } else if decpt >= n {
            format!("{digits}{}.0", "0".repeat((decpt - n) as usize))
        } else {
            let (int, frac) = digits.split_at(decpt as usize);
            format!("{int}.{frac}")
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{first}{frac}e{esign}{:02}", exp.unsigned_abs())
    };
    format!("{sign}{body}")
}

/// The outcome of a change that was sent (errors before it are `Err`).
#[must_use = "an Unknown change may or may not have applied"]
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Update<V> {
    /// The change applied: the value went from `pre` to `post`.
    Applied {
        /// The value it replaced.
        pre: V,
        /// The value it set.
        post: V,
    },
    /// The connection was lost with the write in flight and the node has changed since:
    /// the change may or may not have applied (if it did, the value went from `pre` to
    /// `post`).
    Unknown {
        /// The value read before the write.
        pre: V,
        /// The value the write would set.
        post: V,
    },
}

impl<V: Copy> Update<V> {
    /// The new value, when the change certainly applied.
    pub fn applied(&self) -> Option<V> {
        match self {
            Update::Applied { post, .. } => Some(*post),
            Update::Unknown { .. } => None,
        }
    }

    /// Whether the outcome is unknown.
    pub fn is_unknown(&self) -> bool {
        matches!(self, Update::Unknown { .. })
    }
}

/// A shared counter at a node (kazoo's `Counter`; see the module docs).
///
/// ```no_run
/// # fn demo(zk: zk_session::Client) -> Result<(), zk_recipes::Error> {
/// use zk_recipes::counter::{Counter, Update};
///
/// let c = Counter::new(zk, "/hits");
/// match c.increment(1)? {
///     Update::Applied { post, .. } => println!("now {post}"),
///     Update::Unknown { .. } => println!("maybe counted, maybe not"),
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Counter<S: Session, C: Codec = KazooInt> {
    zk: S,
    path: String,
    default: C::Value,
    ensured: AtomicBool,
    blind: bool,
    codec: PhantomData<C>,
}

impl<S: Session> Counter<S, KazooInt> {
    /// kazoo's integer counter (`Counter(client, path)`), default 0.
    pub fn new(zk: S, path: &str) -> Counter<S, KazooInt> {
        Counter::with_default(zk, path, 0)
    }
}

impl<S: Session> Counter<S, KazooFloat> {
    /// kazoo's float counter (`Counter(client, path, default=0.0)`).
    pub fn new_float(zk: S, path: &str, default: f64) -> Counter<S, KazooFloat> {
        Counter::with_default(zk, path, default)
    }
}

impl<S: Session> Counter<S, CuratorInt> {
    /// The Curator-compatible 4-byte counter (`Counter(client, path, support_curator=True)`),
    /// default 0.
    pub fn new_curator(zk: S, path: &str) -> Counter<S, CuratorInt> {
        Counter::with_default(zk, path, 0)
    }
}

impl<S: Session, C: Codec> Counter<S, C> {
    /// A counter with codec `C` and the value an empty (new) node reads as.
    pub fn with_default(zk: S, path: &str, default: C::Value) -> Counter<S, C> {
        Counter {
            zk,
            path: path.to_owned(),
            default,
            ensured: AtomicBool::new(false),
            blind: false,
            codec: PhantomData,
        }
    }

    /// Deliberately broken (for the simulator's broken variant): writes without the version
    /// check, so concurrent changes overwrite each other.
    #[doc(hidden)]
    pub fn broken_unversioned(mut self) -> Counter<S, C> {
        self.blind = true;
        self
    }

    /// The counter's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    fn ensure(&self) -> Result<(), Error> {
        if !self.ensured.load(Ordering::Relaxed) {
            retry(&self.zk, None, || self.zk.ensure_path(&self.path))?;
            self.ensured.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    fn decode(&self, data: &[u8]) -> Result<C::Value, Error> {
        if data.is_empty() {
            return Ok(self.default);
        }
        C::decode(data).ok_or_else(|| {
            Error::Protocol(format!(
                "counter {}: {:?} does not decode as its value type",
                self.path,
                String::from_utf8_lossy(data)
            ))
        })
    }

    fn read(&self) -> Result<(C::Value, crate::Stat), Error> {
        self.ensure()?;
        loop {
            match retry(&self.zk, None, || self.zk.get_data(&self.path)) {
                Ok((data, stat)) => return Ok((self.decode(&data)?, stat)),
                Err(Error::NoNode) => {
                    self.ensured.store(false, Ordering::Relaxed);
                    self.ensure()?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The current value (the default while the node is empty).
    pub fn get(&self) -> Result<C::Value, Error> {
        self.read().map(|(v, _)| v)
    }

    /// Add `by`.
    pub fn increment(&self, by: C::Value) -> Result<Update<C::Value>, Error> {
        self.change(|v| C::add(v, by))
    }

    /// Subtract `by`.
    pub fn decrement(&self, by: C::Value) -> Result<Update<C::Value>, Error> {
        let neg = C::negate(by).ok_or(Error::InvalidUse("counter decrement overflows"))?;
        self.increment(neg)
    }

    /// Set the value (through the same versioned write, so `pre` is exact).
    pub fn set(&self, value: C::Value) -> Result<Update<C::Value>, Error> {
        self.change(|_| Some(value))
    }

    /// Set the value back to the default.
    pub fn reset(&self) -> Result<Update<C::Value>, Error> {
        self.set(self.default)
    }

    fn change(&self, f: impl Fn(C::Value) -> Option<C::Value>) -> Result<Update<C::Value>, Error> {
        let mut unapplied = 0;
        loop {
            let (pre, stat) = self.read()?;
            let post = f(pre).ok_or(Error::InvalidUse("counter change overflows"))?;
            let data = C::encode(post).ok_or(Error::InvalidUse("counter value does not encode"))?;
            let version = if self.blind { None } else { Some(stat.version) };
            match self.zk.set_data(&self.path, &data, version) {
                Ok(_) => return Ok(Update::Applied { pre, post }),
                Err(Error::BadVersion) => continue,
                Err(Error::NoNode) => self.ensured.store(false, Ordering::Relaxed),
                Err(e) if is_ambiguous(&e) => {
                    // Unchanged node (same czxid and version): the write did not apply.
                    let now = await_connected(&self.zk, None)
                        .and_then(|()| retry(&self.zk, None, || self.zk.exists(&self.path)));
                    match now {
                        Ok(Some(s))
                            if s.czxid == stat.czxid
                                && s.version == stat.version
                                && unapplied < MAX_RETRIES =>
                        {
                            unapplied += 1;
                        }
                        _ => return Ok(Update::Unknown { pre, post }),
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_repr_matches_python() {
        for (v, text) in [
            (5.0, "5.0"),
            (-3.0, "-3.0"),
            (0.1, "0.1"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.2345678901234568e17, "1.2345678901234568e+17"),
            (123.456, "123.456"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
            (1e300, "1e+300"),
            (2.5e-300, "2.5e-300"),
            (0.30000000000000004, "0.30000000000000004"),
        ] {
            assert_eq!(python_float_repr(v), text, "{v:e}");
        }
    }

    #[test]
    fn codecs() {
        assert_eq!(KazooInt::encode(-42), Some(b"-42".to_vec()));
        assert_eq!(KazooInt::decode(b"17"), Some(17));
        assert_eq!(KazooInt::decode(b"5.0"), None);
        assert_eq!(KazooFloat::decode(b"1e+16"), Some(1e16));
        assert_eq!(KazooFloat::decode(b"inf"), Some(f64::INFINITY));
        assert_eq!(CuratorInt::encode(258), Some(vec![0, 0, 1, 2]));
        assert_eq!(CuratorInt::decode(&[0xff, 0xff, 0xff, 0xfe]), Some(-2));
        assert_eq!(CuratorInt::decode(&[1, 2]), None);
        assert_eq!(CuratorInt::add(i32::MAX, 1), None);
    }
}
