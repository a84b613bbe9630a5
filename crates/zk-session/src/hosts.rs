//! Connect strings (`h1:p1,h2:p2/chroot`) and the seeded random source.

use crate::error::Error;
use crate::path::Chroot;

/// One server address as given in the connect string (resolved by the driver on every
/// attempt).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostAddr {
    /// Host name or IP literal (without brackets).
    pub host: String,
    /// Port (default 2181).
    pub port: u16,
}

impl std::fmt::Display for HostAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Parse `h1:p1,h2:p2[/chroot]`. The port defaults to 2181; IPv6 literals go in brackets.
pub fn parse_connect_string(s: &str) -> Result<(Vec<HostAddr>, Chroot), Error> {
    let bad = |reason: &'static str| Error::InvalidPath {
        path: s.to_owned(),
        reason,
    };
    let (hosts_part, chroot) = match s.find('/') {
        Some(i) => (&s[..i], Chroot::new(&s[i..])?),
        None => (s, Chroot::none()),
    };
    let mut hosts = Vec::new();
    for item in hosts_part.split(',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let (host, port) = if let Some(rest) = item.strip_prefix('[') {
            let end = rest
                .find(']')
                .ok_or_else(|| bad("unclosed [ in an IPv6 host"))?;
            let host = &rest[..end];
            let port = match rest[end + 1..].strip_prefix(':') {
                Some(p) => p,
                None if rest.len() == end + 1 => "2181",
                None => return Err(bad("junk after ]")),
            };
            (host, port)
        } else {
            match item.rsplit_once(':') {
                Some((h, p)) => (h, p),
                None => (item, "2181"),
            }
        };
        if host.is_empty() {
            return Err(bad("empty host name in the connect string"));
        }
        let port: u16 = port.parse().map_err(|_| bad("invalid port"))?;
        hosts.push(HostAddr {
            host: host.to_owned(),
            port,
        });
    }
    if hosts.is_empty() {
        return Err(bad("the connect string names no host"));
    }
    Ok((hosts, chroot))
}

/// SplitMix64: a small seeded generator, enough for shuffling hosts and jitter.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (0 when n is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_ports_and_chroot() {
        let (hosts, chroot) = parse_connect_string("a:1,b,[::1]:3,[fe80::1]/app/x").unwrap();
        assert_eq!(
            hosts.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["a:1", "b:2181", "[::1]:3", "[fe80::1]:2181"]
        );
        assert_eq!(chroot.prefix(), Some("/app/x"));
        assert!(parse_connect_string("").is_err());
        assert!(parse_connect_string("a:x").is_err());
        assert!(parse_connect_string("a:1/bad/").is_err());
        assert_eq!(parse_connect_string("a:1/").unwrap().1, Chroot::none());
    }

    #[test]
    fn shuffle_is_seeded() {
        let mut a: Vec<u32> = (0..10).collect();
        let mut b = a.clone();
        Rng::new(7).shuffle(&mut a);
        Rng::new(7).shuffle(&mut b);
        assert_eq!(a, b);
        let mut c: Vec<u32> = (0..10).collect();
        Rng::new(8).shuffle(&mut c);
        assert_ne!(a, c);
    }
}
