//! Reconnecting the same session, connection loss, abandoned connections and expiry.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod support;

use zk_proto::{ConnectResponse, ErrorCode, EventType, GetDataResponse, Response, SetDataResponse};
use zk_session::Error;
use zk_session::session::{Action, Event, SessionState};

use support::*;

/// Connect, then run one write so that lastZxidSeen is `zxid`.
fn connected_with_zxid(h: &mut Harness, session_id: i64, zxid: i64) -> u64 {
    let conn = h.connect_new(session_id, 6000);
    let op = h.submit(set_data("/a", b"x"));
    let reqs = h.take_requests();
    h.reply(
        reqs[0].0.xid,
        zxid,
        ErrorCode::Ok,
        Some(Response::SetData(SetDataResponse { stat: stat(zxid) })),
    );
    assert!(h.completion(op).is_ok());
    conn
}

#[test]
fn reconnect_resumes_with_session_id_password_and_last_zxid() {
    let mut h = Harness::with("h1:1,h2:2", 6000);
    let c1 = connected_with_zxid(&mut h, 0x0100_0002_19a3_0007, 0xb3);
    h.server_close(c1);
    assert_eq!(h.events(), [Event::State(SessionState::Disconnected)]);
    let (c2, _) = h.expect_connect();
    assert_ne!(c2, c1);
    let req = h.tcp_connect(c2);
    assert_eq!(req.protocol_version, 0);
    assert_eq!(req.session_id, 0x0100_0002_19a3_0007);
    assert_eq!(req.passwd, passwd_for(0x0100_0002_19a3_0007));
    assert_eq!(req.last_zxid_seen, 0xb3);
    assert_eq!(req.timeout, 6000, "the requested timeout again");
    // Byte-for-byte the shape of G4 (different password).
    let mut expected = bytes::BytesMut::new();
    zk_proto::write_record_frame(&mut expected, &req);
    assert_eq!(expected.len(), 4 + 45);
    h.send_connect_response(
        c2,
        ConnectResponse {
            protocol_version: 0,
            timeout: 6000,
            session_id: 0x0100_0002_19a3_0007,
            passwd: passwd_for(0x0100_0002_19a3_0007),
            read_only: Some(false),
        },
    );
    assert_eq!(h.events(), [Event::State(SessionState::Connected)]);
}

#[test]
fn lost_requests_fail_with_connection_loss_and_are_never_resent() {
    let mut h = Harness::with("h1:1,h2:2", 6000);
    let c1 = h.connect_new(9, 6000);
    let a = h.submit(create_req_op("/a"));
    let b = h.submit(get_data("/b", true));
    let c = h.submit(set_data("/c", b"1"));
    assert_eq!(h.take_requests().len(), 3);
    // One more submitted but not yet written when the connection dies.
    let d = h.session.submit(h.now, set_data("/d", b"2")).unwrap();
    h.session.handle_disconnected(h.now, c1);
    h.pump();
    let events = h.events();
    assert_eq!(
        events,
        [
            Event::Completed {
                op: a,
                result: Err(Error::ConnectionLoss)
            },
            Event::Completed {
                op: b,
                result: Err(Error::ConnectionLoss)
            },
            Event::Completed {
                op: c,
                result: Err(Error::ConnectionLoss)
            },
            Event::Completed {
                op: d,
                result: Err(Error::ConnectionLoss)
            },
            Event::State(SessionState::Disconnected),
        ]
    );
    assert!(
        h.take_wire(c1).is_empty(),
        "nothing more on the dead connection"
    );
    let (c2, _) = h.expect_connect();
    h.establish(c2, 9, 6000);
    h.events();
    // Nothing of them on the new connection, not even after a while (pings only).
    h.advance(ms(1000));
    assert!(h.take_requests_on(c2).is_empty());
    assert_eq!(h.session.in_flight(), 0);
    assert_eq!(h.session.queued(), 0);
    // The lost getData did not leave a watch behind.
    assert!(h.session.watches().is_empty());
}

fn create_req_op(path: &str) -> zk_proto::Request {
    zk_proto::Request::Create(create_req(path, b""))
}

#[test]
fn nothing_from_an_abandoned_connection_is_delivered() {
    let mut h = Harness::with("h1:1,h2:2", 6000);
    let c1 = h.connect_new(9, 6000);
    let w = h.submit(get_data("/w", true));
    let reqs = h.take_requests();
    h.reply(
        reqs[0].0.xid,
        5,
        ErrorCode::Ok,
        Some(Response::GetData(GetDataResponse {
            data: "x".into(),
            stat: stat(5),
        })),
    );
    assert!(h.completion(w).is_ok());
    let lost = h.submit(get_data("/lost", false));
    let lost_xid = h.take_requests()[0].0.xid;

    // The read timeout abandons c1; a new connection is made.
    h.advance(ms(4000));
    h.expect_disconnect();
    assert_eq!(
        h.events(),
        [
            Event::Completed {
                op: lost,
                result: Err(Error::ConnectionLoss)
            },
            Event::State(SessionState::Disconnected)
        ]
    );
    let (c2, _) = h.expect_connect();
    h.establish(c2, 9, 6000);
    h.events();
    h.take_requests_on(c2); // SetWatches

    // The old server finally speaks: the late reply, a notification, garbage, a close.
    h.reply_on(
        c1,
        lost_xid,
        6,
        ErrorCode::Ok,
        Some(Response::GetData(GetDataResponse {
            data: "late".into(),
            stat: stat(6),
        })),
    );
    h.notify_on(c1, EventType::NodeDataChanged, "/w");
    h.feed_on(c1, &[0xff; 64]);
    h.session.handle_connected(h.now, c1);
    h.server_close(c1);
    assert!(h.events().is_empty(), "nothing from c1");
    assert!(h.take_actions().is_empty(), "c1 cannot disturb c2");
    assert_eq!(
        h.session.last_zxid(),
        5,
        "the late reply's zxid is not adopted"
    );
    assert_eq!(h.session.state(), SessionState::Connected);
    assert_eq!(h.session.current_conn(), Some(c2));
    assert!(h.session.watches().contains(w), "the watch is still armed");

    // Bytes for a connection attempt that was never made are ignored too.
    h.feed_on(
        c2 + 100,
        &notification_frame(EventType::NodeDataChanged, "/w"),
    );
    assert!(h.events().is_empty());
}

/// G5: the server refuses to resume an expired session with timeout 0.
const G5: &str = "00000025 00000000 00000000 0000000000000000 00000010 \
                  00000000000000000000000000000000 00";

#[test]
fn expiry_is_detected_from_the_connect_response_once_and_is_terminal() {
    let mut h = Harness::with("h1:1,h2:2", 6000);
    let c1 = h.connect_new(0x42, 6000);
    let w = h.submit(exists("/w", true));
    let reqs = h.take_requests();
    h.reply(reqs[0].0.xid, 3, ErrorCode::NoNode, None);
    assert_eq!(h.completion(w), Err(Error::NoNode));
    assert!(h.session.watches().contains(w));
    h.server_close(c1);
    h.events();

    // Requests and credentials submitted while disconnected wait.
    let queued1 = h.submit(get_data("/q1", false));
    let queued2 = h.submit(create_req_op("/q2"));
    let auth = h.add_auth("digest", b"u:p");
    let (c2, _) = h.expect_connect();
    let req = h.tcp_connect(c2);
    assert_eq!(req.session_id, 0x42);
    // Submitted during the handshake: queued as well.
    let queued3 = h.submit(get_data("/q3", false));
    h.feed_on(c2, &hex(G5));

    let events = h.events();
    let expired: Vec<&Event> = events
        .iter()
        .filter(|e| **e == Event::State(SessionState::Expired))
        .collect();
    assert_eq!(
        expired.len(),
        1,
        "Expired reported exactly once: {events:?}"
    );
    assert_eq!(
        events.last(),
        Some(&Event::State(SessionState::Expired)),
        "the completions come first"
    );
    for op in [queued1, queued2, queued3, auth] {
        assert!(
            events.contains(&Event::Completed {
                op,
                result: Err(Error::SessionExpired)
            }),
            "op {op} must fail with SessionExpired: {events:?}"
        );
    }
    assert_eq!(events.len(), 5, "{events:?}");
    assert_eq!(h.session.state(), SessionState::Expired);
    assert!(h.session.watches().is_empty());
    assert_eq!(h.take_actions(), [Action::Disconnect { conn: c2 }]);
    assert!(
        h.take_requests_on(c2).is_empty(),
        "nothing sent after the G5"
    );

    // Terminal: later requests fail at once, no reconnect ever, no more events.
    assert_eq!(
        h.session.submit(h.now, get_data("/later", false)),
        Err(Error::SessionExpired)
    );
    assert_eq!(
        h.session.add_auth(h.now, "digest", "u:p".into()),
        Err(Error::SessionExpired)
    );
    h.server_close(c2);
    h.session.close(h.now);
    h.advance(ms(600_000));
    assert!(h.take_actions().is_empty(), "no further Connect");
    assert!(
        h.events().is_empty(),
        "Expired is not repeated, Closed not reported"
    );
    assert_eq!(h.session.poll_timeout(), None);
}

#[test]
fn expiry_with_bytes_behind_the_g5_in_the_same_read() {
    let mut h = Harness::with("h1:1", 6000);
    let c1 = h.connect_new(0x42, 6000);
    h.server_close(c1);
    h.events();
    let (c2, _) = h.expect_connect();
    h.tcp_connect(c2);
    let mut bytes = hex(G5);
    bytes.extend_from_slice(&notification_frame(EventType::NodeDeleted, "/x"));
    bytes.extend_from_slice(&[0xde, 0xad]);
    h.feed_on(c2, &bytes);
    assert_eq!(h.events(), [Event::State(SessionState::Expired)]);
    assert_eq!(h.take_actions(), [Action::Disconnect { conn: c2 }]);
}
