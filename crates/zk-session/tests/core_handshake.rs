//! Handshake, negotiated timeout, pings and the receive-side dead-connection timer.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod support;

use zk_proto::{ConnectResponse, ErrorCode, OpCode, Request, xid};
use zk_session::Error;
use zk_session::session::{Action, Event, SessionState, TimerReason};

use support::*;

#[test]
fn connect_request_carries_every_field_and_the_response_is_adopted() {
    let mut h = Harness::with("h1:2181", 10_000);
    let (conn, host) = h.expect_connect();
    assert_eq!(host.to_string(), "h1:2181");
    assert_eq!(h.session.state(), SessionState::Connecting);

    let req = h.tcp_connect(conn);
    assert_eq!(req.protocol_version, 0);
    assert_eq!(req.last_zxid_seen, 0);
    assert_eq!(req.timeout, 10_000, "the requested timeout");
    assert_eq!(req.session_id, 0, "a new session");
    assert_eq!(
        &req.passwd[..],
        &[0u8; 16],
        "16 zero bytes for a new session"
    );
    assert_eq!(
        req.read_only,
        Some(false),
        "the readOnly byte is always sent"
    );

    // Nothing else is written until the ConnectResponse arrives, even if asked.
    let op = h.session.submit(h.now, get_data("/a", false)).unwrap();
    h.pump();
    assert!(h.take_requests_on(conn).is_empty());

    // G2, verbatim: negotiated 6000, session 0x100000219a30007.
    h.feed_on(
        conn,
        &hex("00000025 00000000 00001770 0100000219a30007 00000010 \
              786bbf1c4031b0e99533eca324f04590 00"),
    );
    assert_eq!(h.events(), [Event::State(SessionState::Connected)]);
    assert_eq!(h.session.session_id(), 0x0100_0002_19a3_0007);
    assert_eq!(
        &h.session.password()[..],
        &hex("786bbf1c4031b0e99533eca324f04590")[..]
    );
    assert_eq!(h.session.negotiated_timeout(), Some(ms(6000)));
    assert_eq!(
        h.session.read_timeout(),
        ms(4000),
        "2/3 of the negotiated timeout"
    );

    // The queued request follows the handshake.
    let reqs = h.take_requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].0.xid, 1);
    h.reply(1, 0x10, ErrorCode::NoNode, None);
    assert_eq!(h.completion(op), Err(Error::NoNode));
}

#[test]
fn connect_response_without_the_read_only_byte_is_accepted() {
    let mut h = Harness::with("h1:2181", 10_000);
    let (conn, _) = h.expect_connect();
    h.tcp_connect(conn);
    // G3's response: 36-byte body, no readOnly byte.
    h.feed_on(
        conn,
        &hex("00000024 00000000 00002710 0100000219a3000a 00000010 \
              b1cead1c20144eb875fc21269f8a83f7"),
    );
    assert_eq!(h.session.state(), SessionState::Connected);
    assert_eq!(h.session.negotiated_timeout(), Some(ms(10_000)));
}

#[test]
fn the_negotiated_timeout_drives_ping_and_read_timers() {
    // Requested 30 s (read timeout 20 s, ping 10 s), negotiated 6 s (read 4 s, ping 2 s).
    let mut h = Harness::with("h1:2181", 30_000);
    assert_eq!(
        h.session.read_timeout(),
        ms(20_000),
        "before the first connect"
    );
    let t0 = {
        h.connect_new(7, 6000);
        h.now
    };
    assert_eq!(h.session.read_timeout(), ms(4000));
    assert_eq!(h.session.connect_timeout(), ms(6000), "6 s / 1 host");
    let (at, why) = h.session.poll_timeout().unwrap();
    assert_eq!((at - t0, why), (ms(2000), TimerReason::Ping));

    // The ping goes out at 2 s, not before.
    h.advance(ms(1999));
    assert!(h.take_requests().is_empty());
    h.advance(ms(1));
    let reqs = h.take_requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].0.xid, xid::PING);
    assert_eq!(reqs[0].0.opcode, OpCode::Ping);
    assert_eq!(reqs[0].1, Request::Ping);

    // The server never answers: dead at 4 s after the last receive.
    let (at, why) = h.session.poll_timeout().unwrap();
    assert_eq!((at - t0, why), (ms(4000), TimerReason::ReadTimeout));
    h.advance(ms(5000));
    let (_, at) = h.expect_disconnect();
    assert_eq!(at - t0, ms(4000));
    assert_eq!(h.events(), [Event::State(SessionState::Disconnected)]);
}

#[test]
fn ping_after_half_the_read_timeout_with_nothing_sent() {
    let mut h = Harness::with("h1:2181", 6000);
    h.connect_new(7, 6000);
    let t0 = h.now;
    let mut pings = Vec::new();
    // The server answers every ping at once: a ping goes out every 2 s of send silence.
    for _ in 0..10 {
        h.advance(ms(500));
        for (hdr, _) in h.take_requests() {
            assert_eq!(hdr.xid, xid::PING);
            pings.push(h.now - t0);
            h.reply(xid::PING, 0x99, ErrorCode::Ok, None);
        }
    }
    assert_eq!(pings, [ms(2000), ms(4000)]);
    assert!(h.events().is_empty(), "pings produce no events");
    assert_eq!(h.session.last_zxid(), 0, "ping zxids are ignored");
    assert_eq!(h.session.state(), SessionState::Connected);
}

#[test]
fn no_ping_while_sends_keep_happening() {
    let mut h = Harness::with("h1:2181", 6000);
    h.connect_new(7, 6000);
    // A request every 1.5 s (< the 2 s ping interval), each answered at once, for 20 s.
    for i in 0..14 {
        h.advance(ms(1500));
        let op = h.submit(exists("/a", false));
        let reqs = h.take_requests();
        assert_eq!(
            reqs.len(),
            1,
            "round {i}: only our request, no ping: {reqs:?}"
        );
        assert_ne!(reqs[0].0.xid, xid::PING);
        h.reply(reqs[0].0.xid, 5, ErrorCode::NoNode, None);
        assert_eq!(h.completion(op), Err(Error::NoNode));
    }
    assert_eq!(h.session.state(), SessionState::Connected);
}

#[test]
fn ping_interval_is_capped_at_ten_seconds() {
    let mut h = Harness::with("h1:2181", 40_000);
    h.connect_new(7, 40_000);
    let t0 = h.now;
    // read timeout 26.7 s, half of it 13.3 s: capped to 10 s.
    h.advance(ms(9999));
    assert!(h.take_requests().is_empty());
    h.advance(ms(1));
    let reqs = h.take_requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].0.xid, xid::PING);
    assert_eq!(h.now - t0, ms(10_000));
}

/// The dead-connection check must not depend on load: a client that keeps sending every
/// 100 ms to a server that answers nothing drops the connection exactly at the read timeout.
#[test]
fn busy_client_detects_a_silent_server_at_the_read_timeout() {
    let mut h = Harness::with("h1:2181", 6000);
    h.connect_new(7, 6000);
    let t0 = h.now;
    let mut ops = Vec::new();
    let mut disconnect_at = None;
    for _ in 0..100 {
        if h.session.state() == SessionState::Connected {
            ops.push(h.submit(get_data("/busy", false)));
            let reqs = h.take_requests();
            assert!(
                reqs.iter().all(|(hdr, _)| hdr.xid != xid::PING),
                "no ping while requests keep being sent"
            );
        }
        h.advance(ms(100));
        for (at, a) in h.take_timed_actions() {
            if let Action::Disconnect { .. } = a {
                disconnect_at.get_or_insert(at);
            }
        }
        if disconnect_at.is_some() {
            break;
        }
    }
    let at = disconnect_at.expect("the silent server was never detected");
    assert_eq!(
        at - t0,
        h.session.read_timeout(),
        "at readTimeout, not later"
    );
    assert_eq!(at - t0, ms(4000));
    assert_eq!(ops.len(), 40, "requests kept flowing until the end");

    // Every request in flight fails with ConnectionLoss, then Disconnected.
    let events = h.events();
    let mut failed = Vec::new();
    for e in &events {
        match e {
            Event::Completed { op, result } => {
                assert_eq!(result, &Err(Error::ConnectionLoss));
                failed.push(*op);
            }
            Event::State(s) => assert_eq!(*s, SessionState::Disconnected),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(failed, ops);
}

#[test]
fn a_reply_resets_the_read_timer() {
    let mut h = Harness::with("h1:2181", 6000);
    h.connect_new(7, 6000);
    h.advance(ms(3000));
    let op = h.submit(get_data("/a", false));
    let reqs = h.take_requests();
    // The ping from 2 s and our request.
    assert_eq!(reqs.len(), 2);
    h.reply(xid::PING, 1, ErrorCode::Ok, None);
    h.reply(reqs[1].0.xid, 1, ErrorCode::NoNode, None);
    assert_eq!(h.completion(op), Err(Error::NoNode));
    let t1 = h.now;
    h.advance(ms(3999));
    assert_eq!(h.session.state(), SessionState::Connected);
    h.advance(ms(1));
    let (_, at) = h.expect_disconnect();
    assert_eq!(at - t1, ms(4000));
}

#[test]
fn handshake_responses_decode_with_any_split() {
    let mut h = Harness::with("h1:2181", 6000);
    let (conn, _) = h.expect_connect();
    h.tcp_connect(conn);
    let mut buf = bytes::BytesMut::new();
    zk_proto::write_record_frame(
        &mut buf,
        &ConnectResponse {
            protocol_version: 0,
            timeout: 6000,
            session_id: 9,
            passwd: passwd_for(9),
            read_only: Some(false),
        },
    );
    buf.extend_from_slice(&notification_frame(zk_proto::EventType::NodeCreated, "/x"));
    // One byte at a time.
    for b in buf.iter() {
        h.feed_on(conn, &[*b]);
    }
    assert_eq!(h.session.session_id(), 9);
    assert_eq!(h.events(), [Event::State(SessionState::Connected)]);
    assert!(h.take_actions().is_empty(), "no disconnect");
}
