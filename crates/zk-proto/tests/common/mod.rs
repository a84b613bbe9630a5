//! Shared test support: the golden frames of PROTOCOL.md §11, from `tests/data/golden.txt`.
#![allow(dead_code)]

/// Which side sent a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Client to server.
    C2s,
    /// Server to client.
    S2c,
}

/// One golden frame.
#[derive(Debug, Clone)]
pub struct Golden {
    /// Its name, e.g. `G7.resp.op=4`.
    pub name: String,
    /// Who sent it.
    pub dir: Dir,
    /// For replies: the opcode of the request answered (`op=N` in the name).
    pub op: Option<i32>,
    /// The whole frame, length prefix included.
    pub bytes: Vec<u8>,
}

impl Golden {
    /// The frame payload without the 4-byte length prefix.
    pub fn payload(&self) -> bytes::Bytes {
        bytes::Bytes::copy_from_slice(&self.bytes[4..])
    }
}

/// Decode a hex string with optional whitespace.
pub fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    hex::decode(s).expect("valid hex in golden data")
}

/// All golden frames, in file order.
pub fn golden() -> Vec<Golden> {
    include_str!("../data/golden.txt")
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|line| {
            let mut parts = line.splitn(3, ' ');
            let name = parts.next().expect("name").to_owned();
            let dir = match parts.next().expect("direction") {
                "c2s" => Dir::C2s,
                "s2c" => Dir::S2c,
                other => panic!("bad direction {other}"),
            };
            let bytes = hex(parts.next().expect("hex"));
            let op = name
                .split('.')
                .find_map(|p| p.strip_prefix("op="))
                .map(|n| n.parse().expect("op number"));
            Golden {
                name,
                dir,
                op,
                bytes,
            }
        })
        .collect()
}

/// The golden frame with this exact name.
pub fn frame(name: &str) -> Golden {
    golden()
        .into_iter()
        .find(|g| g.name == name)
        .unwrap_or_else(|| panic!("no golden frame {name}"))
}
