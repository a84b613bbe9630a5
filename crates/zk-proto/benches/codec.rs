//! Codec throughput: encode and decode of four typical frames, in ns per frame.
//!
//! `cargo bench -p zk-proto --bench codec [FILTER]` prints one line per case:
//! `codec/<case>/<encode|decode>: <ns> ns/frame (<MB/s>)`, the median of 5 batches of about
//! 0.15 s each after a warm-up. MB/s counts whole frames (length prefix included), 1 MB = 10^6 B.
//!
//! - encode: append the whole frame (prefix, header, body) to a reused `BytesMut`.
//! - decode: split the frame off a receive buffer holding many frames with a [`FrameDecoder`],
//!   then decode it as its receiver does (`Reply::parse` + `response(op)`, `watcher_event()`,
//!   or `Request::decode_frame`). Filling the receive buffer is not timed.
//!
//! Without `--bench` (as under `cargo test --benches`) every case runs once, checked, untimed.
// A benchmark measures wall-clock time by definition.
#![allow(clippy::disallowed_methods)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use zk_proto::{
    Acl, CreateMode, CreateRequest, ErrorCode, EventType, FrameDecoder, GetChildren2Response,
    GetDataResponse, KeeperState, OpCode, Reply, ReplyHeader, Request, Response, Stat,
    WatcherEvent,
};

/// Warm-up time per case (also estimates the iteration count).
const WARM_UP: Duration = Duration::from_millis(100);
/// Time per measured batch; 5 batches per case.
const BATCH: Duration = Duration::from_millis(150);
const BATCHES: usize = 5;
/// Bytes of frames queued in the receive buffer per timed decode segment.
const SEGMENT_BYTES: usize = 256 * 1024;

fn stat(data_length: i32, num_children: i32) -> Stat {
    Stat {
        czxid: 0x1_0000_00aa,
        mzxid: 0x1_0000_00ab,
        ctime: 1_700_000_000_000,
        mtime: 1_700_000_123_456,
        version: 3,
        cversion: num_children,
        aversion: 0,
        ephemeral_owner: 0,
        data_length,
        num_children,
        pzxid: 0x1_0000_00ac,
    }
}

fn ok_header(xid: i32) -> ReplyHeader {
    ReplyHeader {
        xid,
        zxid: 0x1_0000_00b0,
        err: ErrorCode::Ok,
    }
}

/// One benchmark case: how to encode the value and how to decode its frame payload.
struct Case {
    name: &'static str,
    encode: Box<dyn Fn(&mut BytesMut)>,
    /// Decodes one frame payload; returns something derived from it so nothing is elided.
    decode: Box<dyn Fn(Bytes) -> usize>,
    /// Decodes one frame payload and asserts it is the value encoded (run once, untimed).
    verify: Box<dyn Fn(Bytes)>,
}

fn cases() -> Vec<Case> {
    // getData reply: 100 bytes of data and the Stat.
    let get_data = Response::GetData(GetDataResponse {
        data: Bytes::from(vec![0x5a; 100]),
        stat: stat(100, 0),
    });
    let get_data_expected = get_data.clone();

    // create request: 100-byte payload, OPEN_ACL_UNSAFE, flags 0.
    let create = Request::Create(CreateRequest {
        path: "/bench/node-0000000001".to_owned(),
        data: Bytes::from(vec![0xa5; 100]),
        acl: Acl::open_unsafe(),
        flags: CreateMode::Persistent,
    });
    let create_expected = create.clone();

    // getChildren2 reply: 1,000 children and the parent's Stat.
    let children = Response::GetChildren2(GetChildren2Response {
        children: (0..1000).map(|i| format!("child-{i:010}")).collect(),
        stat: stat(0, 1000),
    });
    let children_expected = children.clone();

    // Watch notification: NodeDataChanged on a typical path.
    let event = WatcherEvent {
        event_type: EventType::NodeDataChanged,
        state: KeeperState::SyncConnected,
        path: "/services/payments/config/instance-0000000042".to_owned(),
    };
    let event_expected = event.clone();

    vec![
        Case {
            name: "get_data_reply",
            encode: Box::new(move |buf| {
                Response::encode_frame(&ok_header(42), Some(black_box(&get_data)), buf)
            }),
            decode: Box::new(move |frame| {
                let reply = Reply::parse(&frame).expect("reply header");
                match reply.response(OpCode::GetData) {
                    Ok(Ok(Response::GetData(r))) => r.data.len(),
                    other => panic!("getData reply decoded as {other:?}"),
                }
            }),
            verify: Box::new(move |frame| {
                let reply = Reply::parse(&frame).expect("reply header");
                assert_eq!(reply.header, ok_header(42));
                assert_eq!(
                    reply.response(OpCode::GetData),
                    Ok(Ok(get_data_expected.clone()))
                );
            }),
        },
        Case {
            name: "create_request",
            encode: Box::new(move |buf| black_box(&create).encode_frame(43, buf)),
            decode: Box::new(move |frame| {
                let (_, req) = Request::decode_frame(&frame).expect("create request");
                match req {
                    Request::Create(c) => c.path.len(),
                    other => panic!("create request decoded as {other:?}"),
                }
            }),
            verify: Box::new(move |frame| {
                let (header, req) = Request::decode_frame(&frame).expect("create request");
                assert_eq!((header.xid, header.opcode), (43, OpCode::Create));
                assert_eq!(req, create_expected);
            }),
        },
        Case {
            name: "get_children2_reply_1000",
            encode: Box::new(move |buf| {
                Response::encode_frame(&ok_header(44), Some(black_box(&children)), buf)
            }),
            decode: Box::new(move |frame| {
                let reply = Reply::parse(&frame).expect("reply header");
                match reply.response(OpCode::GetChildren2) {
                    Ok(Ok(Response::GetChildren2(r))) => r.children.len(),
                    other => panic!("getChildren2 reply decoded as {other:?}"),
                }
            }),
            verify: Box::new(move |frame| {
                let reply = Reply::parse(&frame).expect("reply header");
                assert_eq!(reply.header, ok_header(44));
                assert_eq!(
                    reply.response(OpCode::GetChildren2),
                    Ok(Ok(children_expected.clone()))
                );
            }),
        },
        Case {
            name: "watch_event",
            encode: Box::new(move |buf| Reply::encode_notification(-1, black_box(&event), buf)),
            decode: Box::new(move |frame| {
                let reply = Reply::parse(&frame).expect("notification header");
                let ev = reply.watcher_event().expect("watcher event");
                ev.path.len()
            }),
            verify: Box::new(move |frame| {
                let reply = Reply::parse(&frame).expect("notification header");
                assert!(reply.is_notification());
                assert_eq!(reply.watcher_event(), Ok(event_expected.clone()));
            }),
        },
    ]
}

/// Encode `iters` frames into one reused buffer.
fn encode_batch(case: &Case, iters: u64) -> Duration {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let start = Instant::now();
    for _ in 0..iters {
        buf.clear();
        (case.encode)(&mut buf);
        black_box(&buf);
    }
    start.elapsed()
}

/// Decode `iters` frames, a receive buffer of about [`SEGMENT_BYTES`] at a time; only the
/// decoding is timed.
fn decode_batch(case: &Case, wire: &[u8], iters: u64) -> Duration {
    let per_segment = (SEGMENT_BYTES / wire.len()).max(1) as u64;
    let mut decoder = FrameDecoder::default();
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(per_segment);
        let mut buf = BytesMut::with_capacity(wire.len() * n as usize);
        for _ in 0..n {
            buf.extend_from_slice(wire);
        }
        let start = Instant::now();
        for _ in 0..n {
            let frame = decoder
                .decode(&mut buf)
                .expect("frame within the limit")
                .expect("complete frame");
            black_box((case.decode)(frame));
        }
        total += start.elapsed();
        assert!(buf.is_empty());
        left -= n;
    }
    total
}

/// Warm up, size the batches, and return the median ns per frame of [`BATCHES`] batches.
fn measure(mut batch: impl FnMut(u64) -> Duration) -> f64 {
    let mut iters = 1u64;
    let mut spent = Duration::ZERO;
    let mut done = 0u64;
    while spent < WARM_UP {
        spent += batch(iters);
        done += iters;
        iters = iters.saturating_mul(2);
    }
    let per_iter = spent.as_secs_f64() / done as f64;
    let iters = ((BATCH.as_secs_f64() / per_iter) as u64).max(1);
    let mut ns: Vec<f64> = (0..BATCHES)
        .map(|_| batch(iters).as_secs_f64() * 1e9 / iters as f64)
        .collect();
    ns.sort_by(f64::total_cmp);
    ns[BATCHES / 2]
}

fn report(name: &str, dir: &str, ns: f64, frame_bytes: usize) {
    // bytes per ns = GB/s; × 1000 = MB/s.
    let mbps = frame_bytes as f64 / ns * 1000.0;
    println!("codec/{name}/{dir}: {ns:.1} ns/frame ({mbps:.1} MB/s)");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let bench_mode = args.iter().any(|a| a == "--bench");
    let filter = args.iter().find(|a| !a.starts_with('-'));

    for case in cases() {
        if filter.is_some_and(|f| !case.name.contains(f.as_str())) {
            continue;
        }
        let mut wire = BytesMut::new();
        (case.encode)(&mut wire);
        let wire = wire.freeze();
        // Check once that the frame decodes to the value encoded before timing anything.
        let frame_len = wire.len();
        let mut buf = BytesMut::from(&wire[..]);
        let payload = FrameDecoder::default()
            .decode(&mut buf)
            .expect("frame within the limit")
            .expect("complete frame");
        assert!(buf.is_empty());
        (case.verify)(payload);
        decode_batch(&case, &wire, 1);

        if !bench_mode {
            println!("codec/{}: ok ({frame_len} bytes)", case.name);
            continue;
        }
        report(
            case.name,
            "encode",
            measure(|n| encode_batch(&case, n)),
            frame_len,
        );
        report(
            case.name,
            "decode",
            measure(|n| decode_batch(&case, &wire, n)),
            frame_len,
        );
    }
}
