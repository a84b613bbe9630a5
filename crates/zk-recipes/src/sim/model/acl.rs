//! ACLs as the 3.8 server checks them: identities, `checkACL`, `fixupACL`, and the digest
//! scheme's SHA-1 (implemented here, so the model needs no crypto dependency).

use std::collections::BTreeSet;

use zk_proto::{Acl, ErrorCode, Id, Perms};

/// One authenticated identity of a session: `(scheme, id)`.
pub(crate) type Ident = (String, String);

/// The address every model session connects from (the server adds an `ip` identity to each
/// connection; the conformance tests connect over loopback).
pub(crate) const CLIENT_IP: &str = "127.0.0.1";

/// `ZooKeeperServer.checkACL`: whether `ids` hold any of the bits of `perm` on `acl`.
///
/// An empty ACL allows everything; a `super` identity allows everything; an entry counts when
/// it shares a bit with `perm` (so `READ | ADMIN` asks for either) and its id matches through
/// the scheme's provider (`world:anyone`, `digest` by equality, `ip` by address and mask).
pub(crate) fn check(acl: &[Acl], perm: Perms, ids: &BTreeSet<Ident>) -> bool {
    if acl.is_empty() || ids.iter().any(|(scheme, _)| scheme == "super") {
        return true;
    }
    acl.iter().any(|a| {
        if a.perms.0 & perm.0 == 0 {
            return false;
        }
        match a.id.scheme.as_str() {
            "world" => a.id.id == "anyone",
            "digest" => ids.iter().any(|(s, id)| s == "digest" && *id == a.id.id),
            "ip" => ids
                .iter()
                .any(|(s, id)| s == "ip" && ip_matches(id, &a.id.id)),
            _ => false,
        }
    })
}

/// `PrepRequestProcessor.fixupACL`: drop exact duplicates, expand `auth` into the session's
/// authenticated (digest) identities, and reject what no provider accepts.
pub(crate) fn fixup(acl: &[Acl], ids: &BTreeSet<Ident>) -> Result<Vec<Acl>, ErrorCode> {
    let mut unique: Vec<&Acl> = Vec::with_capacity(acl.len());
    for a in acl {
        if !unique.contains(&a) {
            unique.push(a);
        }
    }
    if unique.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut out = Vec::with_capacity(unique.len());
    for a in unique {
        let Id { scheme, id } = &a.id;
        if scheme == "world" && id == "anyone" {
            out.push(a.clone());
        } else if scheme == "auth" {
            // Only providers that say `isAuthenticated` count: digest yes, ip no.
            let mut any = false;
            for (s, i) in ids.iter().filter(|(s, _)| s == "digest") {
                any = true;
                out.push(Acl::new(a.perms, s, i));
            }
            if !any {
                return Err(ErrorCode::InvalidAcl);
            }
        } else if valid_id(scheme, id) {
            out.push(a.clone());
        } else {
            return Err(ErrorCode::InvalidAcl);
        }
    }
    Ok(out)
}

/// `isValid` of the providers a default 3.8 server registers (ip and digest).
fn valid_id(scheme: &str, id: &str) -> bool {
    match scheme {
        // `id.split(":").length == 2`, with Java's trailing-empty-string removal.
        "digest" => java_split_len(id, ':') == 2,
        "ip" => {
            let (addr, bits) = match id.split_once('/') {
                Some((a, b)) => (a, Some(b)),
                None => (id, None),
            };
            let bits_ok = match bits {
                None => true,
                Some(b) => b.parse::<i32>().is_ok_and(|b| (0..=32).contains(&b)),
            };
            v4_bytes(addr).is_some() && bits_ok
        }
        _ => false,
    }
}

/// The number of parts of Java's `s.split(sep)`: trailing empty strings are removed.
fn java_split_len(s: &str, sep: char) -> usize {
    if s.is_empty() {
        return 1;
    }
    let mut parts: Vec<&str> = s.split(sep).collect();
    while parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    parts.len()
}

/// `IPAuthenticationProvider.v4addr2Bytes`: four `Integer.parseInt` parts in 0..=255.
fn v4_bytes(addr: &str) -> Option<[u8; 4]> {
    let parts: Vec<&str> = addr.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut out = [0u8; 4];
    for (o, p) in out.iter_mut().zip(parts) {
        *o = u8::try_from(p.parse::<i32>().ok()?).ok()?;
    }
    Some(out)
}

/// `IPAuthenticationProvider.matches`: `addr` or `addr/bits` against a client address.
fn ip_matches(client: &str, expr: &str) -> bool {
    let (addr, bits) = match expr.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (expr, None),
    };
    let Some(want) = v4_bytes(addr) else {
        return false;
    };
    let bits = match bits {
        None => 32,
        Some(b) => match b.parse::<u32>() {
            Ok(b) if b <= 32 => b,
            _ => return false,
        },
    };
    let Some(have) = v4_bytes(client) else {
        return false;
    };
    let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
    u32::from_be_bytes(want) & mask == u32::from_be_bytes(have) & mask
}

/// The digest identity for `user:password` credentials: `user:base64(sha1(credentials))`
/// (`DigestAuthenticationProvider.generateDigest`; the user is the text before the first
/// colon, or all of it).
pub fn digest_id(credentials: &[u8]) -> String {
    // Java decodes the bytes with `new String(bytes)` and hashes the re-encoded string.
    let text = String::from_utf8_lossy(credentials);
    let user = text.split_once(':').map_or(&*text, |(u, _)| u);
    format!("{user}:{}", base64(&sha1(text.as_bytes())))
}

/// The user name whoAmI reports for an identity (`getUserName`).
pub(crate) fn user_name(scheme: &str, id: &str) -> String {
    match scheme {
        "digest" => id.split(':').next().unwrap_or_default().to_owned(),
        _ => id.to_owned(),
    }
}

/// SHA-1 (FIPS 180-4).
pub(crate) fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (hi, v) in h.iter_mut().zip([a, b, c, d, e]) {
            *hi = hi.wrapping_add(v);
        }
    }
    let mut out = [0u8; 20];
    for (o, v) in out.chunks_exact_mut(4).zip(h) {
        o.copy_from_slice(&v.to_be_bytes());
    }
    out
}

/// Standard base64 with padding.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[(&str, &str)]) -> BTreeSet<Ident> {
        list.iter()
            .map(|(s, i)| ((*s).to_owned(), (*i).to_owned()))
            .collect()
    }

    #[test]
    fn sha1_known_answers() {
        let hex = |b: [u8; 20]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert_eq!(hex(sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            hex(sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        let long = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        assert_eq!(hex(sha1(long)), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    }

    #[test]
    fn digest_ids_match_the_server() {
        // PROTOCOL.md §5 and the real 3.8 server.
        assert_eq!(
            digest_id(b"alice:secret"),
            "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E="
        );
        assert_eq!(digest_id(b"bob"), "bob:SBgazSKz7a68ikR4aKfffOYpkgo=");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"a"), "YQ==");
    }

    #[test]
    fn check_and_fixup() {
        let me = ids(&[("ip", CLIENT_IP), ("digest", "alice:x")]);
        let acl = vec![Acl::new(Perms::READ, "digest", "alice:x")];
        assert!(check(&acl, Perms::READ, &me));
        assert!(!check(&acl, Perms::WRITE, &me));
        assert!(check(&acl, Perms(Perms::READ.0 | Perms::ADMIN.0), &me));
        assert!(check(&[], Perms::ADMIN, &me));
        assert!(check(
            &[Acl::new(Perms::ALL, "ip", "127.0.0.0/8")],
            Perms::READ,
            &me
        ));
        assert!(!check(
            &[Acl::new(Perms::ALL, "ip", "10.0.0.1")],
            Perms::READ,
            &me
        ));
        assert_eq!(fixup(&[], &me), Err(ErrorCode::InvalidAcl));
        let expanded = fixup(&Acl::creator_all(), &me).unwrap();
        assert_eq!(expanded, vec![Acl::new(Perms::ALL, "digest", "alice:x")]);
        let anon = ids(&[("ip", CLIENT_IP)]);
        assert_eq!(
            fixup(&Acl::creator_all(), &anon),
            Err(ErrorCode::InvalidAcl)
        );
        for bad in ["alice", "a:b:c", ":", "a::"] {
            let acl = [Acl::new(Perms::ALL, "digest", bad)];
            assert_eq!(fixup(&acl, &anon), Err(ErrorCode::InvalidAcl), "{bad}");
        }
        for good in ["a:b", ":b", "a:b:"] {
            assert!(
                fixup(&[Acl::new(Perms::ALL, "digest", good)], &anon).is_ok(),
                "{good}"
            );
        }
        for bad in [
            ("world", "bob"),
            ("ip", "300.0.0.1"),
            ("ip", "1.2.3.4/33"),
            ("x", "y"),
        ] {
            let acl = [Acl::new(Perms::ALL, bad.0, bad.1)];
            assert_eq!(fixup(&acl, &anon), Err(ErrorCode::InvalidAcl), "{bad:?}");
        }
        let dup = [
            Acl::new(Perms::ALL, "world", "anyone"),
            Acl::new(Perms::ALL, "world", "anyone"),
        ];
        assert_eq!(fixup(&dup, &anon).unwrap().len(), 1);
    }
}
