//! W1 without a client library: zk-proto frames over a blocking std socket, one thread, no
//! session layer. It is the ceiling a library can approach on this machine; run it beside
//! `zk-bench --workload W1` against the same server to see how close the client comes.
//!
//! `cargo run --release -p zk-bench --example raw_w1 -- 127.0.0.1:2181` (needs `/bench-get`,
//! which `zk-bench --workload W1` creates).
#![allow(clippy::unwrap_used, clippy::disallowed_methods, missing_docs)]
use bytes::{Bytes, BytesMut};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;
use zk_proto::*;

fn main() {
    let addr = std::env::args().nth(1).unwrap();
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_nodelay(true).unwrap();
    let mut out = BytesMut::new();
    write_record_frame(
        &mut out,
        &ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout: 30000,
            session_id: 0,
            passwd: Bytes::from(vec![0; 16]),
            read_only: Some(false),
        },
    );
    s.write_all(&out).unwrap();
    let mut dec = FrameDecoder::default();
    let mut inbuf = BytesMut::new();
    let mut next = |s: &mut TcpStream, inbuf: &mut BytesMut| loop {
        if let Some(f) = dec.decode(inbuf).unwrap() {
            return f;
        }
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).unwrap();
        inbuf.extend_from_slice(&chunk[..n]);
    };
    next(&mut s, &mut inbuf);
    let n = 20000;
    for round in 0..2 {
        let t = Instant::now();
        for i in 0..n {
            out.clear();
            let req = Request::GetData(GetDataRequest {
                path: "/bench-get".into(),
                watch: false,
            });
            req.encode_frame(i + 1, &mut out);
            s.write_all(&out).unwrap();
            let f = next(&mut s, &mut inbuf);
            let r = Reply::parse(&f).unwrap();
            assert_eq!(r.header.err, ErrorCode::Ok);
        }
        let secs = t.elapsed().as_secs_f64();
        if round == 1 {
            println!("raw W1: {:.0} ops/s", n as f64 / secs);
        }
    }
}
