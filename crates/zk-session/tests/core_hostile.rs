//! Hostile bytes: oversized lengths, garbage, undecodable bodies — the connection is
//! dropped, in-flight requests fail with ConnectionLoss, and nothing panics.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod support;

use std::collections::HashSet;

use proptest::prelude::*;
use zk_proto::{ErrorCode, EventType, Response};
use zk_session::Error;
use zk_session::session::{Action, Config, Event, SessionState};

use support::*;

fn small_frames() -> Harness {
    let mut config = Config::new("h1:1,h2:2").unwrap();
    config.session_timeout = ms(6000);
    config.max_incoming_frame = 1024;
    Harness::new(config)
}

/// Feed `bytes` to a connected session with one request in flight; expect the connection to
/// be dropped, the request to fail with ConnectionLoss and a reconnect to follow.
fn assert_dropped_by(bytes: &[u8]) {
    let mut h = small_frames();
    let conn = h.connect_new(1, 6000);
    let op = h.submit(get_data("/a", true));
    h.take_requests();
    h.feed(bytes);
    assert_eq!(h.expect_disconnect().0, conn, "dropped on {bytes:02x?}");
    assert_eq!(
        h.events(),
        [
            Event::Completed {
                op,
                result: Err(Error::ConnectionLoss)
            },
            Event::State(SessionState::Disconnected)
        ]
    );
    assert!(
        h.session.watches().is_empty(),
        "no watch from a broken reply"
    );
    let (c2, _) = h.expect_connect();
    assert_ne!(c2, conn);
    h.establish(c2, 1, 6000);
    assert_eq!(h.session.state(), SessionState::Connected);
}

#[test]
fn a_frame_length_over_the_limit_drops_the_connection() {
    // Only the prefix arrives: the limit is enforced before the payload is buffered.
    assert_dropped_by(&1025i32.to_be_bytes());
    assert_dropped_by(&i32::MAX.to_be_bytes());
    // Exactly at the limit is fine (but the frame is then garbage for its xid).
    let mut h = small_frames();
    h.connect_new(1, 6000);
    h.feed(&1024i32.to_be_bytes());
    assert!(h.take_actions().is_empty(), "waiting for 1024 bytes");
}

#[test]
fn a_negative_length_drops_the_connection() {
    assert_dropped_by(&(-1i32).to_be_bytes());
    assert_dropped_by(&hex("80000000"));
}

#[test]
fn garbage_drops_the_connection() {
    // Too short for a reply header.
    assert_dropped_by(&hex("00000003 010203"));
    // A reply header for the right xid with an undecodable GetDataResponse body.
    assert_dropped_by(&hex(
        "00000016 00000001 0000000000000005 00000000 7fffffff 0000",
    ));
    // A reply with trailing junk after a valid body.
    let mut frame = reply_frame(
        1,
        5,
        ErrorCode::Ok,
        Some(&Response::GetData(zk_proto::GetDataResponse {
            data: "x".into(),
            stat: stat(5),
        })),
    )
    .to_vec();
    frame.push(0);
    let len = i32::try_from(frame.len() - 4).unwrap();
    frame[..4].copy_from_slice(&len.to_be_bytes());
    assert_dropped_by(&frame);
    // A truncated notification.
    assert_dropped_by(&hex("00000014 ffffffff ffffffffffffffff 00000000 00000003"));
    // A reply to nobody.
    assert_dropped_by(&reply_frame(99, 5, ErrorCode::Ok, None));
    // An auth reply nobody asked for.
    assert_dropped_by(&reply_frame(-4, 0, ErrorCode::Ok, None));
}

#[test]
fn garbage_instead_of_a_connect_response_fails_the_attempt() {
    for bytes in [
        hex("00000005 0102030405"),
        hex("ffffffff"),
        hex("00100000"),
        hex("00000015 00000000 00001770 0100000219a30007 7fffffff 00"),
    ] {
        let mut h = small_frames();
        let (c1, first) = h.expect_connect();
        h.tcp_connect(c1);
        h.feed_on(c1, &bytes);
        assert_eq!(h.expect_disconnect().0, c1, "{bytes:02x?}");
        assert_eq!(h.session.state(), SessionState::Connecting);
        let (c2, second) = h.expect_connect();
        assert_ne!(c2, c1);
        assert_ne!(second, first, "the next host");
        h.establish(c2, 1, 6000);
        assert_eq!(h.session.state(), SessionState::Connected);
    }
}

/// A connected session with watches and requests in flight.
fn busy_session() -> (Harness, Vec<u64>) {
    let mut h = small_frames();
    h.connect_new(1, 6000);
    h.roundtrip_ok(get_data("/d", true), 3);
    h.roundtrip_ok(add_watch("/", true), 3);
    h.events();
    let ops = vec![
        h.submit(get_data("/a", false)),
        h.submit(exists("/b", true)),
        h.submit(create_req_op("/c")),
        h.add_auth("digest", b"u:p"),
    ];
    h.take_requests();
    (h, ops)
}

fn create_req_op(path: &str) -> zk_proto::Request {
    zk_proto::Request::Create(create_req(path, b""))
}

/// Checks that hold after any input: no op completes twice, a dropped connection leaves
/// nothing in flight, and the session is still usable.
fn check_invariants(h: &mut Harness, ops: &[u64]) {
    let mut completed = HashSet::new();
    for e in h.events() {
        if let Event::Completed { op, .. } = e {
            assert!(completed.insert(op), "op {op} completed twice");
            assert!(ops.contains(&op) || op > *ops.iter().max().unwrap());
        }
    }
    let dropped = h
        .take_actions()
        .iter()
        .any(|a| matches!(a, Action::Disconnect { .. }));
    if dropped {
        // Every request was in flight on the dropped connection: each completed once.
        for op in ops {
            assert!(completed.contains(op), "op {op} lost with the connection");
        }
        assert_eq!(h.session.in_flight(), 0);
        assert!(!h.session.state().is_connected() || h.session.state().is_terminal());
    }
    assert!(h.session.poll_timeout().is_some() || h.session.state().is_terminal());
    // Time still moves without trouble.
    h.advance(ms(10_000));
    h.take_actions();
    h.events();
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_chunks_to_a_connected_session_never_panic(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..16)
    ) {
        let (mut h, ops) = busy_session();
        for chunk in &chunks {
            if let Some(conn) = h.session.current_conn() {
                h.feed_on(conn, chunk);
            }
        }
        check_invariants(&mut h, &ops);
    }

    /// Chunks that start with a plausible frame header, to get past the length check.
    #[test]
    fn arbitrary_frames_to_a_connected_session_never_panic(
        frames in proptest::collection::vec(
            (prop_oneof![Just(-1i32), Just(-2), Just(-4), Just(1), Just(2), Just(3), any::<i32>()],
             any::<i64>(),
             prop_oneof![Just(0i32), Just(-101), Just(-115), Just(-112), any::<i32>()],
             proptest::collection::vec(any::<u8>(), 0..80)),
            0..8)
    ) {
        let (mut h, ops) = busy_session();
        for (xid, zxid, err, body) in &frames {
            let mut frame = reply_frame(*xid, *zxid, ErrorCode::from_raw(*err), None).to_vec();
            frame.extend_from_slice(body);
            let len = i32::try_from(frame.len() - 4).unwrap();
            frame[..4].copy_from_slice(&len.to_be_bytes());
            if let Some(conn) = h.session.current_conn() {
                h.feed_on(conn, &frame);
            }
        }
        check_invariants(&mut h, &ops);
    }

    #[test]
    fn arbitrary_bytes_as_a_connect_response_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..64),
        timeout in any::<i32>(),
    ) {
        let mut h = small_frames();
        let (c1, _) = h.expect_connect();
        h.tcp_connect(c1);
        let mut frame = hex("00000025 00000000");
        frame.extend_from_slice(&timeout.to_be_bytes());
        frame.extend_from_slice(&bytes);
        let len = i32::try_from(frame.len() - 4).unwrap();
        frame[..4].copy_from_slice(&len.to_be_bytes());
        h.feed_on(c1, &frame);
        h.feed_on(c1, &bytes);
        h.advance(ms(60_000));
        h.take_actions();
        h.events();
    }

    /// Valid server traffic in any split gives the same outcome as in one piece.
    #[test]
    fn any_split_of_valid_traffic_gives_the_same_events(
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12)
    ) {
        let run = |cuts: &[prop::sample::Index]| {
            let (mut h, _) = busy_session();
            let mut stream = Vec::new();
            stream.extend_from_slice(&notification_frame(EventType::NodeDataChanged, "/d"));
            stream.extend_from_slice(&reply_frame(-4, 0, ErrorCode::Ok, None));
            stream.extend_from_slice(&reply_frame(3, 7, ErrorCode::NoNode, None));
            stream.extend_from_slice(&reply_frame(4, 7, ErrorCode::NoNode, None));
            stream.extend_from_slice(&notification_frame(EventType::NodeCreated, "/b"));
            stream.extend_from_slice(&reply_frame(
                5,
                8,
                ErrorCode::Ok,
                Some(&Response::Create(zk_proto::CreateResponse { path: "/c".into() })),
            ));
            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
            points.push(0);
            points.push(stream.len());
            points.sort_unstable();
            for w in points.windows(2) {
                h.feed(&stream[w[0]..w[1]]);
            }
            (h.events(), h.take_actions(), h.session.last_zxid())
        };
        let whole = run(&[]);
        prop_assert_eq!(whole.0.len(), 8);
        prop_assert!(whole.1.is_empty());
        prop_assert_eq!(whole.2, 8);
        prop_assert_eq!(run(&cuts), whole);
    }
}
