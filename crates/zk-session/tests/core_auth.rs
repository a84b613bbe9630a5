//! Digest auth: sending, replay after reconnect, AuthFailed, and xid -4 matching.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod support;

use zk_proto::{AuthPacket, ErrorCode, OpCode, Request, xid};
use zk_session::Error;
use zk_session::session::{Action, Event, SessionState};

use support::*;

fn digest(user_pass: &str) -> Request {
    Request::Auth(AuthPacket {
        auth_type: 0,
        scheme: "digest".into(),
        auth: bytes::Bytes::copy_from_slice(user_pass.as_bytes()),
    })
}

#[test]
fn add_auth_sends_an_auth_packet_with_xid_minus_4() {
    let mut h = Harness::with("h1:1", 6000);
    let conn = h.connect_new(1, 6000);
    let op = h.add_auth("digest", b"alice:secret");
    // Byte-for-byte G14.
    assert_eq!(
        &h.take_wire(conn)[..],
        &hex("00000026 fffffffc 00000064 00000000 00000006 646967657374 \
              0000000c 616c6963653a736563726574")[..]
    );
    h.feed(&hex("00000010 fffffffc 0000000000000000 00000000"));
    assert_eq!(h.completion(op), Ok(zk_proto::Response::Empty));
    assert_eq!(h.session.last_zxid(), 0, "auth zxids are ignored");
}

#[test]
fn credentials_are_replayed_first_after_every_reconnect() {
    let mut h = Harness::with("h1:1,h2:2", 6000);
    let c1 = h.connect_new(1, 6000);
    let a1 = h.add_auth("digest", b"alice:secret");
    let a2 = h.add_auth("digest", b"bob:pw");
    h.take_requests();
    h.reply(xid::AUTH, 0, ErrorCode::Ok, None);
    h.reply(xid::AUTH, 0, ErrorCode::Ok, None);
    assert_eq!(
        h.completions(),
        [
            (a1, Ok(zk_proto::Response::Empty)),
            (a2, Ok(zk_proto::Response::Empty))
        ]
    );
    h.roundtrip_ok(get_data("/w", true), 7);

    for round in 0..3 {
        let conn = h.conn();
        h.server_close(conn);
        let queued = h.submit(get_data("/q", false));
        let (c, _) = h.expect_connect();
        assert_ne!(c, c1);
        h.establish(c, 1, 6000);
        let reqs = h.take_requests();
        assert_eq!(reqs.len(), 4, "round {round}: {reqs:?}");
        // Auth packets first, in the order added, then SetWatches, then the queued read.
        assert_eq!(reqs[0].0.xid, xid::AUTH);
        assert_eq!(reqs[0].1, digest("alice:secret"));
        assert_eq!(reqs[1].0.xid, xid::AUTH);
        assert_eq!(reqs[1].1, digest("bob:pw"));
        assert_eq!(reqs[2].0.opcode, OpCode::SetWatches);
        assert_eq!(reqs[3].1, get_data("/q", false));
        // Replayed credentials complete nothing (their ops completed long ago).
        h.reply(xid::AUTH, 0, ErrorCode::Ok, None);
        h.reply(xid::AUTH, 0, ErrorCode::Ok, None);
        h.reply(reqs[2].0.xid, 7, ErrorCode::Ok, None);
        h.reply(reqs[3].0.xid, 7, ErrorCode::NoNode, None);
        let events = h.events();
        assert_eq!(
            events,
            [
                Event::State(SessionState::Disconnected),
                Event::State(SessionState::Connected),
                Event::Completed {
                    op: queued,
                    result: Err(Error::NoNode)
                }
            ]
        );
    }
}

#[test]
fn credentials_added_while_disconnected_are_sent_after_the_handshake() {
    let mut h = Harness::with("h1:1", 6000);
    let op = h.add_auth("digest", b"alice:secret");
    let (c, _) = h.expect_connect();
    let req = h.tcp_connect(c);
    assert_eq!(req.session_id, 0);
    assert!(
        h.take_requests_on(c).is_empty(),
        "nothing before the ConnectResponse"
    );
    h.establish_response(c, 1, 6000);
    let reqs = h.take_requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].1, digest("alice:secret"));
    h.reply(xid::AUTH, 0, ErrorCode::Ok, None);
    assert_eq!(
        h.events(),
        [
            Event::State(SessionState::Connected),
            Event::Completed {
                op,
                result: Ok(zk_proto::Response::Empty)
            }
        ]
    );
}

#[test]
fn auth_failed_is_terminal() {
    let mut h = Harness::with("h1:1,h2:2", 6000);
    let conn = h.connect_new(1, 6000);
    let pending = h.submit(get_data("/a", false));
    let op = h.add_auth("nosuchscheme", b"x");
    h.take_requests();
    // G14: -115, then the server closes the socket.
    h.feed(&hex("00000010 fffffffc 0000000000000000 ffffff8d"));
    let events = h.events();
    assert!(events.contains(&Event::Completed {
        op,
        result: Err(Error::AuthFailed)
    }));
    assert!(events.contains(&Event::Completed {
        op: pending,
        result: Err(Error::AuthFailed)
    }));
    assert_eq!(events.last(), Some(&Event::State(SessionState::AuthFailed)));
    assert_eq!(events.len(), 3);
    assert_eq!(h.session.state(), SessionState::AuthFailed);
    assert_eq!(h.take_actions(), [Action::Disconnect { conn }]);
    h.server_close(conn);
    assert_eq!(
        h.session.submit(h.now, get_data("/b", false)),
        Err(Error::AuthFailed)
    );
    h.advance(ms(600_000));
    assert!(h.take_actions().is_empty(), "no reconnect");
    assert!(h.events().is_empty());
}

#[test]
fn auth_failure_on_replay_is_terminal_too() {
    let mut h = Harness::with("h1:1", 6000);
    let conn = h.connect_new(1, 6000);
    h.add_auth("digest", b"alice:secret");
    h.take_requests();
    h.reply(xid::AUTH, 0, ErrorCode::Ok, None);
    h.events();
    h.server_close(conn);
    let queued = h.submit(get_data("/q", false));
    let (c2, _) = h.expect_connect();
    h.establish(c2, 1, 6000);
    h.take_requests();
    h.reply(xid::AUTH, 0, ErrorCode::AuthFailed, None);
    let events = h.events();
    assert!(events.contains(&Event::Completed {
        op: queued,
        result: Err(Error::AuthFailed)
    }));
    assert_eq!(events.last(), Some(&Event::State(SessionState::AuthFailed)));
}

/// The server answers auth packets at once, so their replies can overtake replies to
/// earlier requests: they are matched by xid -4, not against the FIFO head.
#[test]
fn auth_replies_overtake_earlier_replies() {
    let mut h = Harness::with("h1:1", 6000);
    h.connect_new(1, 6000);
    let r1 = h.submit(get_data("/a", false));
    let r2 = h.submit(exists("/b", false));
    let a1 = h.add_auth("digest", b"alice:secret");
    let r3 = h.submit(get_data("/c", false));
    let a2 = h.add_auth("digest", b"bob:pw");
    let reqs = h.take_requests();
    let xids: Vec<i32> = reqs.iter().map(|(hdr, _)| hdr.xid).collect();
    assert_eq!(
        xids,
        [1, 2, xid::AUTH, 3, xid::AUTH],
        "auth skips the xid sequence"
    );
    // Both auth replies first, then the others in order.
    h.reply(xid::AUTH, 0, ErrorCode::Ok, None);
    h.reply(xid::AUTH, 0, ErrorCode::Ok, None);
    h.reply(1, 9, ErrorCode::NoNode, None);
    h.reply(2, 9, ErrorCode::NoNode, None);
    h.reply(3, 9, ErrorCode::NoNode, None);
    assert_eq!(
        h.completions(),
        [
            (a1, Ok(zk_proto::Response::Empty)),
            (a2, Ok(zk_proto::Response::Empty)),
            (r1, Err(Error::NoNode)),
            (r2, Err(Error::NoNode)),
            (r3, Err(Error::NoNode)),
        ]
    );
    assert_eq!(h.session.state(), SessionState::Connected);
    assert!(h.take_actions().is_empty());
}
