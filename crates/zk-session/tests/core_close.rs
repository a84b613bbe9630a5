//! close(), and requests submitted while disconnected (queued, then sent or timed out).
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod support;

use zk_proto::{ErrorCode, OpCode, Request, xid};
use zk_session::Error;
use zk_session::session::{Action, Config, Event, SessionState};

use support::*;

#[test]
fn close_sends_close_session_and_finishes_on_its_reply() {
    let mut h = Harness::with("h1:1,h2:2", 6000);
    let conn = h.connect_new(1, 6000);
    let a = h.submit(get_data("/a", false));
    h.take_requests();
    h.session.close(h.now);
    h.pump();
    // G18's shape: closeSession with a normal xid and no body.
    assert_eq!(
        &h.take_wire(conn)[..],
        &hex("00000008 00000002 fffffff5")[..]
    );
    assert_eq!(
        h.session.submit(h.now, get_data("/b", false)),
        Err(Error::Closed),
        "nothing new after close"
    );
    assert_eq!(
        h.session.add_auth(h.now, "digest", "u:p".into()),
        Err(Error::Closed),
        "no new credentials after close"
    );
    // The earlier request's reply still arrives first, then G18's close reply.
    h.reply(1, 0xb7, ErrorCode::NoNode, None);
    h.feed(&hex("00000010 00000002 00000000000000b8 00000000"));
    assert_eq!(
        h.events(),
        [
            Event::Completed {
                op: a,
                result: Err(Error::NoNode)
            },
            Event::State(SessionState::Closed)
        ]
    );
    assert_eq!(h.take_actions(), [Action::Disconnect { conn }]);
    assert_eq!(h.session.state(), SessionState::Closed);
    h.server_close(conn);
    h.session.close(h.now);
    h.advance(ms(600_000));
    assert!(h.take_actions().is_empty(), "no reconnect after close");
    assert!(h.events().is_empty(), "Closed is reported once");
}

#[test]
fn close_without_a_reply_finishes_after_a_bounded_wait() {
    let mut h = Harness::with("h1:1", 6000);
    let conn = h.connect_new(1, 6000);
    let a = h.submit(get_data("/a", false));
    h.session.close(h.now);
    h.pump();
    let reqs = h.take_requests();
    assert_eq!(reqs[1].0.opcode, OpCode::CloseSession);
    let t0 = h.now;
    h.advance(ms(10_000));
    let (c, at) = h.expect_disconnect();
    assert_eq!(c, conn);
    assert!(at - t0 <= ms(2000), "bounded wait: {:?}", at - t0);
    assert_eq!(
        h.events(),
        [
            Event::Completed {
                op: a,
                result: Err(Error::Closed)
            },
            Event::State(SessionState::Closed)
        ]
    );
}

#[test]
fn the_server_closing_the_socket_after_close_session_finishes_the_close() {
    let mut h = Harness::with("h1:1", 6000);
    let conn = h.connect_new(1, 6000);
    h.session.close(h.now);
    h.pump();
    h.take_requests();
    h.server_close(conn);
    assert_eq!(h.events(), [Event::State(SessionState::Closed)]);
    h.advance(ms(10_000));
    assert!(
        h.take_actions()
            .iter()
            .all(|a| !matches!(a, Action::Connect { .. }))
    );
}

#[test]
fn close_while_disconnected_is_immediate_and_fails_queued_requests() {
    let mut h = Harness::with("h1:1,h2:2", 6000);
    let conn = h.connect_new(1, 6000);
    h.server_close(conn);
    h.events();
    let q1 = h.submit(get_data("/q1", false));
    let q2 = h.submit(set_data("/q2", b"x"));
    let auth = h.add_auth("digest", b"u:p");
    h.session.close(h.now);
    let events = h.events();
    assert!(events.contains(&Event::Completed {
        op: q1,
        result: Err(Error::Closed)
    }));
    assert!(events.contains(&Event::Completed {
        op: q2,
        result: Err(Error::Closed)
    }));
    assert!(events.contains(&Event::Completed {
        op: auth,
        result: Err(Error::Closed)
    }));
    assert_eq!(events.last(), Some(&Event::State(SessionState::Closed)));
    assert_eq!(events.len(), 4, "{events:?}");
    h.advance(ms(600_000));
    assert!(
        h.take_actions()
            .iter()
            .all(|a| !matches!(a, Action::Connect { .. })),
        "no connect after close"
    );
}

#[test]
fn close_during_connect_or_handshake_is_immediate() {
    // TCP connecting.
    let mut h = Harness::with("h1:1", 6000);
    let (c1, _) = h.expect_connect();
    let q = h.submit(get_data("/q", false));
    h.session.close(h.now);
    assert_eq!(
        h.events(),
        [
            Event::Completed {
                op: q,
                result: Err(Error::Closed)
            },
            Event::State(SessionState::Closed)
        ]
    );
    assert_eq!(h.take_actions(), [Action::Disconnect { conn: c1 }]);

    // Handshaking: requests submitted during the handshake are queued too.
    let mut h = Harness::with("h1:1", 6000);
    let (c1, _) = h.expect_connect();
    h.tcp_connect(c1);
    let q = h.submit(get_data("/q", false));
    h.session.close(h.now);
    assert_eq!(
        h.events(),
        [
            Event::Completed {
                op: q,
                result: Err(Error::Closed)
            },
            Event::State(SessionState::Closed)
        ]
    );
    assert_eq!(h.take_actions(), [Action::Disconnect { conn: c1 }]);
    assert!(h.take_requests_on(c1).is_empty());
}

#[test]
fn requests_submitted_while_disconnected_are_sent_after_the_connect() {
    let mut h = Harness::with("h1:1,h2:2", 6000);
    let c1 = h.connect_new(1, 6000);
    h.add_auth("digest", b"u:p");
    h.take_requests();
    h.reply(xid::AUTH, 0, ErrorCode::Ok, None);
    h.roundtrip_ok(get_data("/w", true), 4);
    h.events();
    h.server_close(c1);
    h.events();
    let ops: Vec<u64> = (0..3)
        .map(|i| h.submit(get_data(&format!("/q{i}"), false)))
        .collect();
    assert_eq!(h.session.queued(), 3);
    let (c2, _) = h.expect_connect();
    h.tcp_connect(c2);
    assert!(
        h.take_requests_on(c2).is_empty(),
        "nothing before the ConnectResponse"
    );
    h.establish_response(c2, 1, 6000);
    let reqs = h.take_requests();
    let kinds: Vec<OpCode> = reqs.iter().map(|(hdr, _)| hdr.opcode).collect();
    assert_eq!(
        kinds,
        [
            OpCode::Auth,
            OpCode::SetWatches,
            OpCode::GetData,
            OpCode::GetData,
            OpCode::GetData
        ]
    );
    for (i, (_, req)) in reqs[2..].iter().enumerate() {
        assert_eq!(*req, get_data(&format!("/q{i}"), false));
    }
    assert_eq!(h.session.queued(), 0);
    h.reply(xid::AUTH, 0, ErrorCode::Ok, None);
    for (hdr, _) in &reqs[1..] {
        h.reply(hdr.xid, 5, ErrorCode::NoNode, None);
    }
    let events = h.events();
    assert_eq!(events[0], Event::State(SessionState::Connected));
    // The SetWatches reply completes nothing; NoNode for each queued read, in order.
    let done: Vec<u64> = events[1..]
        .iter()
        .map(|e| match e {
            Event::Completed { op, .. } => *op,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(done, ops);
}

#[test]
fn unsent_requests_fail_with_connection_loss_after_the_unsent_timeout() {
    let mut config = Config::new("h1:1,h2:2").unwrap();
    config.session_timeout = ms(6000);
    config.unsent_timeout = Some(ms(1000));
    let mut h = Harness::new(config);
    let (c1, _) = h.expect_connect();
    let t0 = h.now;
    let a = h.submit(get_data("/a", false));
    h.advance(ms(500));
    let b = h.submit(get_data("/b", false));
    // Every server refuses the connection meanwhile.
    h.server_close(c1);
    h.advance(ms(499));
    assert!(h.events().is_empty());
    h.advance(ms(1));
    assert_eq!(h.now - t0, ms(1000));
    assert_eq!(
        h.events(),
        [Event::Completed {
            op: a,
            result: Err(Error::ConnectionLoss)
        }]
    );
    h.advance(ms(500));
    assert_eq!(
        h.events(),
        [Event::Completed {
            op: b,
            result: Err(Error::ConnectionLoss)
        }]
    );
    assert_eq!(h.session.queued(), 0);
    // They are never sent later.
    let (c, _) = h.expect_connect();
    h.establish(c, 1, 6000);
    assert!(h.take_requests().is_empty());
}

#[test]
fn the_unsent_timeout_defaults_to_the_session_timeout() {
    let mut h = Harness::with("h1:1", 6000);
    let (_c1, _) = h.expect_connect();
    let t0 = h.now;
    let a = h.submit(Request::Sync(zk_proto::SyncRequest { path: "/".into() }));
    // Connect attempts keep timing out (TCP never completes).
    h.advance(ms(5999));
    assert!(h.events().is_empty());
    h.advance(ms(1));
    assert_eq!(h.now - t0, ms(6000));
    assert_eq!(
        h.events(),
        [Event::Completed {
            op: a,
            result: Err(Error::ConnectionLoss)
        }]
    );
}
