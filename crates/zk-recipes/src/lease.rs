//! NonBlockingLease and MultiNonBlockingLease: time-bounded exclusive leases (kazoo's
//! `kazoo.recipe.lease`, byte for byte on the wire).
//!
//! A lease lives at `<path>/lease_holder`, a persistent node whose data is the JSON document
//! kazoo writes, e.g. `{"version": 1, "holder": "host-1", "end": "2024-01-01T00:10:00"}`
//! (`json.dumps` with its default separators and ASCII escaping; `end` in UTC, whole seconds,
//! `%Y-%m-%dT%H:%M:%S`). Obtaining happens under a kazoo-compatible lock on `<path>` itself
//! (ephemeral sequential `<uuid hex>__lock__<seq>` children whose data is the identifier): a
//! lease is obtained if there is no holder node, the holder is this identifier (a renewal),
//! or the holder's end has passed; it is refused if another identifier's lease has not ended
//! or the record has another format version. A [`MultiNonBlockingLease`] tries the slots
//! `<path>/0`, `<path>/1`, … `<path>/<count-1>` in turn and keeps the first it obtains.
//!
//! # Time
//!
//! Leases compare wall-clock times written by different clients, so the caller supplies the
//! clock, as kazoo's `utcnow` parameter: a function returning the current UTC time as a
//! [`SystemTime`]. The recipe reads no clock of its own (`SystemTime::now` is not allowed in
//! recipes, and a simulated run must not depend on the real time). Real clients pass
//! `SystemTime::now`; simulations and tests pass a [`VirtualUtc`] over session time, which
//! must be shared by every simulated process so their clocks agree. (Anchoring each lease at
//! its own first `now()` would give every process a different clock.) As in kazoo, leases
//! are only as good as the agreement between the clients' clocks.
//!
//! # Fencing
//!
//! A lease ends by time, not with a session, so a holder that stalls past its end may still
//! act on it. [`NonBlockingLease::write`] fences writes: every grant made by this crate bumps
//! the data version of `<path>` and leaves the holder node at data version 1 (create, then
//! set the same data), so `multi[check(<path>, version of our grant), check(lease_holder,
//! 1), ops…]` fails once anyone — this crate or kazoo (whose grants recreate the holder node
//! at version 0) — has granted the lease again. [`NonBlockingLease::token`] (the holder
//! node's czxid) increases with every grant.
//!
//! Where this differs from kazoo: the grant is one multi checked against our own lock node
//! (a contender that lost its lock cannot grant), an ambiguous grant (connection loss) is
//! resolved by reading the version it would have set, a record this crate cannot read is
//! never overwritten (kazoo raises), and waiting for the lock can be bounded
//! ([`NonBlockingLease::obtain_within`], which fails with [`Error::Timeout`]).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use zk_proto::ErrorCode;

use crate::partitioner::{
    HeldLock, acquire_lock, delete_retrying, ensure_path_retrying, pause, retryable, terminal_error,
};
use crate::session::{Session, SessionExt, join};
use crate::{CreateOptions, Error, Op, OpResult, Stat};

/// The lease record's format version (kazoo's `_version`).
pub const LEASE_FORMAT_VERSION: i64 = 1;
/// The holder node's name under the lease path.
pub const HOLDER_NODE: &str = "lease_holder";

/// A deterministic UTC clock over session time for simulations and tests:
/// `epoch + (now - anchor)`. Share one value between all processes of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VirtualUtc {
    /// The session instant that corresponds to `epoch`.
    pub anchor: Instant,
    /// The UTC time at `anchor`.
    pub epoch: SystemTime,
}

impl VirtualUtc {
    /// The UTC time at session instant `now` (`epoch` for instants before `anchor`).
    pub fn at(&self, now: Instant) -> SystemTime {
        self.epoch + now.saturating_duration_since(self.anchor)
    }

    /// A clock function reading `session`'s time.
    pub fn clock<S: Session>(self, session: S) -> impl Fn() -> SystemTime {
        move || self.at(session.now())
    }
}

/// What a lease holder node says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    /// The format version (1).
    pub version: i64,
    /// The holder's identifier.
    pub holder: String,
    /// When the lease ends (UTC, whole seconds).
    pub end: SystemTime,
}

impl LeaseRecord {
    /// The node data, exactly as kazoo's `json.dumps(...).encode('utf-8')` writes it.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = String::with_capacity(64 + self.holder.len());
        out.push_str("{\"version\": ");
        out.push_str(&self.version.to_string());
        out.push_str(", \"holder\": ");
        json_string(&self.holder, &mut out);
        out.push_str(", \"end\": ");
        json_string(&format_utc(self.end), &mut out);
        out.push('}');
        out.into_bytes()
    }

    /// Read node data; `None` if it is not a record this crate understands (not JSON, or a
    /// field missing or of the wrong type).
    pub fn decode(data: &[u8]) -> Option<LeaseRecord> {
        let text = std::str::from_utf8(data).ok()?;
        let fields = json::parse_object(text)?;
        let mut version = None;
        let mut holder = None;
        let mut end = None;
        for (k, v) in fields {
            match (k.as_str(), v) {
                ("version", json::Value::Number(n)) => version = Some(n),
                ("holder", json::Value::String(s)) => holder = Some(s),
                ("end", json::Value::String(s)) => end = Some(parse_utc(&s)?),
                _ => {}
            }
        }
        // Python compares `data["version"] != 1`, so 1.0 is version 1 too.
        let version = version?;
        let version = if version.fract() == 0.0 && version.abs() < 9.0e15 {
            version as i64
        } else {
            i64::MIN
        };
        Some(LeaseRecord {
            version,
            holder: holder?,
            end: end?,
        })
    }
}

/// The proof of an obtained lease: the grant it came from. See the module's "Fencing".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseFence {
    /// The lease path (its data version moves with every grant by this crate).
    pub path: String,
    /// The lease path's data version our grant set.
    pub path_version: i32,
    /// The holder node.
    pub holder: String,
    /// The holder node's czxid: increases with every grant.
    pub token: i64,
}

impl LeaseFence {
    /// Run `ops` atomically only if nobody has granted the lease since: a multi of
    /// `check(path, path_version)`, `check(lease_holder, 1)`, then `ops`. Returns the results
    /// of `ops`. Fails with [`Error::MultiFailed`] at index 0 or 1 once the lease was granted
    /// again ([`LeaseFence::is_lost`]).
    pub fn write<S: Session>(&self, session: &S, ops: Vec<Op>) -> Result<Vec<OpResult>, Error> {
        let mut all = Vec::with_capacity(ops.len() + 2);
        all.push(Op::check(&self.path, Some(self.path_version)));
        all.push(Op::check(&self.holder, Some(1)));
        all.extend(ops);
        let mut results = session.multi(all)?;
        results.drain(..2.min(results.len()));
        Ok(results)
    }

    /// Whether an error from [`LeaseFence::write`] means the lease was granted again (or the
    /// session is gone).
    pub fn is_lost(err: &Error) -> bool {
        matches!(
            err,
            Error::MultiFailed { index: 0 | 1, .. } | Error::SessionExpired | Error::Closed
        )
    }
}

/// An attempt to obtain an exclusive lease (kazoo's `NonBlockingLease`): obtained or not,
/// never waiting for the lease itself. Renew by obtaining again with the same identifier.
#[derive(Debug, Clone)]
pub struct NonBlockingLease {
    path: String,
    identifier: String,
    obtained: bool,
    record: Option<LeaseRecord>,
    fence: Option<LeaseFence>,
}

impl NonBlockingLease {
    /// Try to obtain the lease at `path` for `duration` as `identifier`, waiting as long as
    /// it takes for the lease's lock (as kazoo does). `utcnow` is the clock (see the module's
    /// "Time"). `Ok` with [`NonBlockingLease::obtained`] false if another identifier holds an
    /// unexpired lease (or the record is of another format).
    pub fn obtain<S: Session>(
        session: &S,
        path: &str,
        duration: Duration,
        identifier: &str,
        utcnow: &dyn Fn() -> SystemTime,
    ) -> Result<NonBlockingLease, Error> {
        Self::obtain_within(session, path, duration, identifier, utcnow, None)
    }

    /// [`NonBlockingLease::obtain`], waiting at most `lock_timeout` for the lease's lock
    /// (a contender that stalls while holding it can hold it up to its session timeout);
    /// [`Error::Timeout`] if the lock was not acquired in time (nothing was changed).
    pub fn obtain_within<S: Session>(
        session: &S,
        path: &str,
        duration: Duration,
        identifier: &str,
        utcnow: &dyn Fn() -> SystemTime,
        lock_timeout: Option<Duration>,
    ) -> Result<NonBlockingLease, Error> {
        ensure_path_retrying(session, path)?;
        let deadline = session.deadline(lock_timeout);
        let Some(lock) = acquire_lock(session, path, identifier.as_bytes(), deadline)? else {
            return Err(Error::Timeout);
        };
        let result = grant(session, path, &lock, duration, identifier, utcnow);
        if terminal_error(session.state()).is_none() {
            let _ = delete_retrying(session, &lock.node);
        }
        result
    }

    /// Whether the lease was obtained (kazoo's `bool(lease)`).
    pub fn obtained(&self) -> bool {
        self.obtained
    }

    /// The lease path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The identifier it was tried for.
    pub fn identifier(&self) -> &str {
        &self.identifier
    }

    /// The record found or written: ours if obtained; the current holder's if refused
    /// (`None` if there was no record, or one this crate cannot read).
    pub fn record(&self) -> Option<&LeaseRecord> {
        self.record.as_ref()
    }

    /// When our lease ends (whole seconds, UTC), if obtained.
    pub fn end(&self) -> Option<SystemTime> {
        if self.obtained {
            self.record.as_ref().map(|r| r.end)
        } else {
            None
        }
    }

    /// Whether the lease is obtained and has not ended at `now` (by the same clock).
    pub fn is_valid_at(&self, now: SystemTime) -> bool {
        self.end().is_some_and(|end| now < end)
    }

    /// The grant's fence, if obtained.
    pub fn fence(&self) -> Option<&LeaseFence> {
        self.fence.as_ref()
    }

    /// The grant's token (the holder node's czxid), if obtained.
    pub fn token(&self) -> Option<i64> {
        self.fence.as_ref().map(|f| f.token)
    }

    /// A fenced write ([`LeaseFence::write`]); [`Error::InvalidUse`] if not obtained.
    pub fn write<S: Session>(&self, session: &S, ops: Vec<Op>) -> Result<Vec<OpResult>, Error> {
        match &self.fence {
            Some(f) => f.write(session, ops),
            None => Err(Error::InvalidUse("the lease was not obtained")),
        }
    }
}

fn retry_read<T, S: Session>(s: &S, mut f: impl FnMut() -> Result<T, Error>) -> Result<T, Error> {
    loop {
        match f() {
            Err(e) if retryable(&e) => pause(s)?,
            other => return other,
        }
    }
}

/// Decide and write the lease under our lock (kazoo's `_attempt_obtaining` body).
fn grant<S: Session>(
    s: &S,
    path: &str,
    lock: &HeldLock,
    duration: Duration,
    identifier: &str,
    utcnow: &dyn Fn() -> SystemTime,
) -> Result<NonBlockingLease, Error> {
    let holder_path = join(path, HOLDER_NODE);
    let refused = |record: Option<LeaseRecord>| NonBlockingLease {
        path: path.to_owned(),
        identifier: identifier.to_owned(),
        obtained: false,
        record,
        fence: None,
    };
    loop {
        let (path_data, path_stat) = retry_read(s, || s.get_data(path))?;
        let now = utcnow();
        let current: Option<(Option<LeaseRecord>, Stat)> =
            match retry_read(s, || s.get_data(&holder_path)) {
                Ok((data, stat)) => Some((LeaseRecord::decode(&data), stat)),
                Err(Error::NoNode) => None,
                Err(e) => return Err(e),
            };
        if let Some((record, _)) = &current {
            match record {
                None => return Ok(refused(None)),
                Some(r) if r.version != LEASE_FORMAT_VERSION => {
                    return Ok(refused(Some(r.clone())));
                }
                Some(r) if r.holder != identifier && now < r.end => {
                    return Ok(refused(Some(r.clone())));
                }
                Some(_) => {}
            }
        }
        let record = LeaseRecord {
            version: LEASE_FORMAT_VERSION,
            holder: identifier.to_owned(),
            end: truncate_to_second(now + duration),
        };
        let data = Bytes::from(record.encode());
        let mut ops = vec![Op::check(&lock.node, None)];
        if let Some((_, stat)) = &current {
            ops.push(Op::delete(&holder_path, Some(stat.version)));
        }
        ops.push(Op::create(
            &holder_path,
            data.clone(),
            CreateOptions::persistent(),
        ));
        ops.push(Op::set_data(&holder_path, data, Some(0)));
        ops.push(Op::set_data(path, path_data, Some(path_stat.version)));
        let expected_version = path_stat.version.wrapping_add(1);
        let obtained = |holder: &Stat, path_version: i32| NonBlockingLease {
            path: path.to_owned(),
            identifier: identifier.to_owned(),
            obtained: true,
            record: Some(record.clone()),
            fence: Some(LeaseFence {
                path: path.to_owned(),
                path_version,
                holder: holder_path.clone(),
                token: holder.czxid,
            }),
        };
        match s.multi(ops) {
            Ok(results) => {
                let n = results.len();
                let (Some(OpResult::SetData(holder)), Some(OpResult::SetData(p))) = (
                    results.get(n.wrapping_sub(2)),
                    results.get(n.wrapping_sub(1)),
                ) else {
                    return Err(Error::Protocol("unexpected lease multi results".into()));
                };
                return Ok(obtained(holder, p.version));
            }
            Err(Error::MultiFailed { index: 0, .. }) => {
                // Our lock node is gone: the session was lost, or someone deleted it.
                return Err(terminal_error(s.state()).unwrap_or(Error::NoNode));
            }
            Err(Error::MultiFailed {
                code: ErrorCode::NoNode | ErrorCode::NodeExists | ErrorCode::BadVersion,
                ..
            }) => continue, // changed under us (by a writer that skipped the lock): decide again
            Err(e) if retryable(&e) => {
                // Unknown outcome. While our lock node lives nobody else grants, so the
                // lease path's version tells whether our multi was applied.
                loop {
                    pause(s)?;
                    match s.exists(&lock.node) {
                        Ok(Some(st)) if st.ephemeral_owner == s.session_id() => {}
                        Ok(_) => return Err(terminal_error(s.state()).unwrap_or(e)),
                        Err(e2) if retryable(&e2) => continue,
                        Err(e2) => return Err(e2),
                    }
                    let p = match s.exists(path) {
                        Ok(Some(p)) => p,
                        Ok(None) => return Err(Error::NoNode),
                        Err(e2) if retryable(&e2) => continue,
                        Err(e2) => return Err(e2),
                    };
                    if p.version != expected_version {
                        break; // not applied: decide again
                    }
                    match s.exists(&holder_path) {
                        Ok(Some(h)) => return Ok(obtained(&h, p.version)),
                        Ok(None) => return Err(Error::NoNode),
                        Err(e2) if retryable(&e2) => continue,
                        Err(e2) => return Err(e2),
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// One of `count` leases (kazoo's `MultiNonBlockingLease`): tries the slots `<path>/0` …
/// `<path>/<count-1>` in order and keeps the first obtained.
#[derive(Debug, Clone)]
pub struct MultiNonBlockingLease {
    count: usize,
    slot: Option<(usize, NonBlockingLease)>,
}

impl MultiNonBlockingLease {
    /// Try to obtain one of `count` leases under `path`; see [`NonBlockingLease::obtain`].
    pub fn obtain<S: Session>(
        session: &S,
        count: usize,
        path: &str,
        duration: Duration,
        identifier: &str,
        utcnow: &dyn Fn() -> SystemTime,
    ) -> Result<MultiNonBlockingLease, Error> {
        Self::obtain_within(session, count, path, duration, identifier, utcnow, None)
    }

    /// [`MultiNonBlockingLease::obtain`] waiting at most `lock_timeout` for each slot's lock.
    /// A slot whose lock is busy past the timeout is skipped; if no slot was obtained and
    /// one was skipped, fails with [`Error::Timeout`].
    pub fn obtain_within<S: Session>(
        session: &S,
        count: usize,
        path: &str,
        duration: Duration,
        identifier: &str,
        utcnow: &dyn Fn() -> SystemTime,
        lock_timeout: Option<Duration>,
    ) -> Result<MultiNonBlockingLease, Error> {
        let mut skipped = false;
        for num in 0..count {
            let slot_path = format!("{path}/{num}");
            match NonBlockingLease::obtain_within(
                session,
                &slot_path,
                duration,
                identifier,
                utcnow,
                lock_timeout,
            ) {
                Ok(lease) if lease.obtained() => {
                    return Ok(MultiNonBlockingLease {
                        count,
                        slot: Some((num, lease)),
                    });
                }
                Ok(_) => {}
                Err(Error::Timeout) => skipped = true,
                Err(e) => return Err(e),
            }
        }
        if skipped {
            return Err(Error::Timeout);
        }
        Ok(MultiNonBlockingLease { count, slot: None })
    }

    /// Whether one of the leases was obtained.
    pub fn obtained(&self) -> bool {
        self.slot.is_some()
    }

    /// The number of slots.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The slot obtained.
    pub fn slot(&self) -> Option<usize> {
        self.slot.as_ref().map(|(n, _)| *n)
    }

    /// The lease obtained.
    pub fn lease(&self) -> Option<&NonBlockingLease> {
        self.slot.as_ref().map(|(_, l)| l)
    }

    /// The obtained lease's fence.
    pub fn fence(&self) -> Option<&LeaseFence> {
        self.lease().and_then(NonBlockingLease::fence)
    }

    /// A fenced write through the obtained lease; [`Error::InvalidUse`] if none.
    pub fn write<S: Session>(&self, session: &S, ops: Vec<Op>) -> Result<Vec<OpResult>, Error> {
        match self.lease() {
            Some(l) => l.write(session, ops),
            None => Err(Error::InvalidUse("no lease was obtained")),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Time formatting: `%Y-%m-%dT%H:%M:%S` in UTC, whole seconds (Python truncates microseconds).
// ---------------------------------------------------------------------------------------------

fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => {
            let d = e.duration();
            let s = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            if d.subsec_nanos() > 0 { -s - 1 } else { -s }
        }
    }
}

fn from_unix_seconds(s: i64) -> SystemTime {
    if s >= 0 {
        UNIX_EPOCH + Duration::from_secs(s.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_secs(s.unsigned_abs())
    }
}

fn truncate_to_second(t: SystemTime) -> SystemTime {
    from_unix_seconds(unix_seconds(t))
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m as u32, d as u32)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `t` as kazoo writes lease ends: `%Y-%m-%dT%H:%M:%S` (UTC, truncated to the second).
pub fn format_utc(t: SystemTime) -> String {
    let secs = unix_seconds(t);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Parse `%Y-%m-%dT%H:%M:%S` (UTC), as kazoo reads lease ends.
pub fn parse_utc(s: &str) -> Option<SystemTime> {
    let (date, time) = s.split_once('T')?;
    let mut date = date.splitn(3, '-');
    let y: i64 = num(date.next()?, 4)?;
    let mo: u32 = num(date.next()?, 2)?;
    let d: u32 = num(date.next()?, 2)?;
    let mut time = time.splitn(3, ':');
    let h: i64 = num(time.next()?, 2)?;
    let mi: i64 = num(time.next()?, 2)?;
    let se: i64 = num(time.next()?, 2)?;
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&mo) || d < 1 || d > month_days[(mo - 1) as usize] {
        return None;
    }
    if h > 23 || mi > 59 || se > 61 {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    Some(from_unix_seconds(days * 86_400 + h * 3600 + mi * 60 + se))
}

fn num<T: std::str::FromStr>(s: &str, max_len: usize) -> Option<T> {
    if s.is_empty() || s.len() > max_len || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A JSON string as Python's `json.dumps` writes it (`ensure_ascii=True`).
fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
}

/// A minimal JSON reader: enough to read a flat object written by any JSON library.
mod json {
    pub(super) enum Value {
        String(String),
        Number(f64),
        Other,
    }

    struct P<'a> {
        s: &'a [u8],
        i: usize,
        depth: usize,
    }

    pub(super) fn parse_object(text: &str) -> Option<Vec<(String, Value)>> {
        let mut p = P {
            s: text.as_bytes(),
            i: 0,
            depth: 0,
        };
        p.ws();
        let fields = p.object()?;
        p.ws();
        (p.i == p.s.len()).then_some(fields)
    }

    impl P<'_> {
        fn ws(&mut self) {
            while self
                .s
                .get(self.i)
                .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
            {
                self.i += 1;
            }
        }

        fn eat(&mut self, b: u8) -> Option<()> {
            self.ws();
            (self.s.get(self.i) == Some(&b)).then(|| self.i += 1)
        }

        fn object(&mut self) -> Option<Vec<(String, Value)>> {
            self.depth += 1;
            if self.depth > 64 {
                return None;
            }
            self.eat(b'{')?;
            let mut out = Vec::new();
            self.ws();
            if self.s.get(self.i) == Some(&b'}') {
                self.i += 1;
                self.depth -= 1;
                return Some(out);
            }
            loop {
                self.ws();
                let k = self.string()?;
                self.eat(b':')?;
                let v = self.value()?;
                out.push((k, v));
                self.ws();
                match self.s.get(self.i)? {
                    b',' => self.i += 1,
                    b'}' => {
                        self.i += 1;
                        self.depth -= 1;
                        return Some(out);
                    }
                    _ => return None,
                }
            }
        }

        fn array(&mut self) -> Option<()> {
            self.depth += 1;
            if self.depth > 64 {
                return None;
            }
            self.eat(b'[')?;
            self.ws();
            if self.s.get(self.i) == Some(&b']') {
                self.i += 1;
                self.depth -= 1;
                return Some(());
            }
            loop {
                self.value()?;
                self.ws();
                match self.s.get(self.i)? {
                    b',' => self.i += 1,
                    b']' => {
                        self.i += 1;
                        self.depth -= 1;
                        return Some(());
                    }
                    _ => return None,
                }
            }
        }

        fn value(&mut self) -> Option<Value> {
            self.ws();
            match *self.s.get(self.i)? {
                b'"' => self.string().map(Value::String),
                b'{' => self.object().map(|_| Value::Other),
                b'[' => self.array().map(|()| Value::Other),
                b't' => self.word("true"),
                b'f' => self.word("false"),
                b'n' => self.word("null"),
                _ => self.number(),
            }
        }

        fn word(&mut self, w: &str) -> Option<Value> {
            if self.s[self.i..].starts_with(w.as_bytes()) {
                self.i += w.len();
                Some(Value::Other)
            } else {
                None
            }
        }

        fn number(&mut self) -> Option<Value> {
            let start = self.i;
            while self
                .s
                .get(self.i)
                .is_some_and(|b| matches!(b, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'))
            {
                self.i += 1;
            }
            let text = std::str::from_utf8(&self.s[start..self.i]).ok()?;
            if text.is_empty() {
                return None;
            }
            text.parse::<f64>().ok().map(Value::Number)
        }

        fn hex4(&mut self) -> Option<u32> {
            let h = self.s.get(self.i..self.i + 4)?;
            let v = u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()?;
            self.i += 4;
            Some(v)
        }

        fn string(&mut self) -> Option<String> {
            if self.s.get(self.i) != Some(&b'"') {
                return None;
            }
            self.i += 1;
            let mut out: Vec<u8> = Vec::new();
            loop {
                let b = *self.s.get(self.i)?;
                self.i += 1;
                match b {
                    b'"' => return String::from_utf8(out).ok(),
                    b'\\' => {
                        let e = *self.s.get(self.i)?;
                        self.i += 1;
                        let c = match e {
                            b'"' => '"',
                            b'\\' => '\\',
                            b'/' => '/',
                            b'b' => '\u{8}',
                            b'f' => '\u{c}',
                            b'n' => '\n',
                            b'r' => '\r',
                            b't' => '\t',
                            b'u' => {
                                let hi = self.hex4()?;
                                if (0xD800..0xDC00).contains(&hi)
                                    && self.s.get(self.i..self.i + 2) == Some(b"\\u")
                                {
                                    self.i += 2;
                                    let lo = self.hex4()?;
                                    if !(0xDC00..0xE000).contains(&lo) {
                                        return None;
                                    }
                                    char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))?
                                } else {
                                    // A lone surrogate (Python accepts it) has no UTF-8 form.
                                    char::from_u32(hi).unwrap_or('\u{fffd}')
                                }
                            }
                            _ => return None,
                        };
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    }
                    b if b < 0x20 => return None,
                    b => out.push(b),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_kazoo() {
        // python3 -c 'import json; print(json.dumps({"version": 1, "holder": "h", "end":
        //   "2024-01-02T03:04:05"}))'
        let r = LeaseRecord {
            version: 1,
            holder: "host-1".into(),
            end: parse_utc("2024-01-02T03:04:05").unwrap(),
        };
        assert_eq!(
            String::from_utf8(r.encode()).unwrap(),
            r#"{"version": 1, "holder": "host-1", "end": "2024-01-02T03:04:05"}"#
        );
        let odd = LeaseRecord {
            holder: "é\"\\\n\u{1}\u{7f}😀/".into(),
            ..r.clone()
        };
        assert_eq!(
            String::from_utf8(odd.encode()).unwrap(),
            r#"{"version": 1, "holder": "\u00e9\"\\\n\u0001\u007f\ud83d\ude00/", "end": "2024-01-02T03:04:05"}"#
        );
        assert_eq!(LeaseRecord::decode(&odd.encode()), Some(odd));
        assert_eq!(LeaseRecord::decode(&r.encode()), Some(r));
    }

    #[test]
    fn decodes_other_writers() {
        let r = LeaseRecord::decode(
            br#" { "end" : "1999-12-31T23:59:59", "holder":"x", "version":1.0, "extra":[1,{"a":null}] } "#,
        )
        .unwrap();
        assert_eq!(r.version, 1);
        assert_eq!(r.holder, "x");
        assert_eq!(format_utc(r.end), "1999-12-31T23:59:59");
        assert!(LeaseRecord::decode(b"not json").is_none());
        assert!(
            LeaseRecord::decode(br#"{"version": 1, "holder": 5, "end": "2024-01-01T00:00:00"}"#)
                .is_none()
        );
        assert!(
            LeaseRecord::decode(br#"{"version": 1, "holder": "x", "end": "2024-13-01T00:00:00"}"#)
                .is_none()
        );
        assert_eq!(
            LeaseRecord::decode(br#"{"version": 2, "holder": "x", "end": "2024-01-01T00:00:00"}"#)
                .unwrap()
                .version,
            2
        );
    }

    #[test]
    fn utc_formatting() {
        assert_eq!(format_utc(UNIX_EPOCH), "1970-01-01T00:00:00");
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_999);
        assert_eq!(format_utc(t), "2023-11-14T22:13:20");
        assert_eq!(
            parse_utc("2023-11-14T22:13:20"),
            Some(truncate_to_second(t))
        );
        assert_eq!(
            format_utc(parse_utc("2000-02-29T12:00:00").unwrap()),
            "2000-02-29T12:00:00"
        );
        assert!(parse_utc("2001-02-29T12:00:00").is_none());
        assert_eq!(
            format_utc(UNIX_EPOCH - Duration::from_millis(1)),
            "1969-12-31T23:59:59"
        );
        for days in [-800_000i64, -1, 0, 1, 11_016, 19_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
