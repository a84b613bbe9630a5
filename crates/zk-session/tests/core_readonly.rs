//! Read-only mode: the readOnly flag, ConnectedReadOnly, probing, moving to a read-write
//! server, and session id 0 until a read-write server has been seen.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod support;

use zk_proto::{ConnectResponse, ErrorCode};
use zk_session::Error;
use zk_session::hosts::HostAddr;
use zk_session::session::{Action, Config, ConnId, Event, SessionState, TimerReason};

use support::*;

fn ro_config(connect: &str) -> Config {
    let mut config = Config::new(connect).unwrap();
    config.session_timeout = std::time::Duration::from_millis(6000);
    config.can_be_read_only = true;
    config
}

fn establish_ro(h: &mut Harness, conn: ConnId, session_id: i64) -> zk_proto::ConnectRequest {
    let req = h.tcp_connect(conn);
    h.send_connect_response(
        conn,
        ConnectResponse {
            protocol_version: 0,
            timeout: 6000,
            session_id,
            passwd: passwd_for(session_id),
            read_only: Some(true),
        },
    );
    req
}

fn expect_probe(h: &mut Harness) -> (u64, HostAddr) {
    match h.take_actions().as_slice() {
        [Action::Probe { probe, host }] => (*probe, host.clone()),
        other => panic!("expected one Probe, got {other:?}"),
    }
}

#[test]
fn can_be_read_only_sets_the_flag_and_a_read_only_server_gives_connected_read_only() {
    let mut h = Harness::new(ro_config("h1:1"));
    let (conn, _) = h.expect_connect();
    let req = establish_ro(&mut h, conn, 0x55);
    assert_eq!(req.read_only, Some(true));
    // 45-byte body with the flag set.
    let mut raw = bytes::BytesMut::new();
    zk_proto::write_record_frame(&mut raw, &req);
    assert_eq!(raw.len(), 4 + 45);
    assert_eq!(raw[raw.len() - 1], 1);
    assert_eq!(h.events(), [Event::State(SessionState::ConnectedReadOnly)]);
    assert!(h.session.state().is_connected());

    // Reads work, writes get NotReadOnly from the server.
    let op = h.submit(set_data("/a", b"x"));
    let reqs = h.take_requests();
    h.reply(reqs[0].0.xid, 3, ErrorCode::NotReadOnly, None);
    assert_eq!(h.completion(op), Err(Error::NotReadOnly));

    // With one host there is nobody to probe.
    h.advance(ms(1000));
    assert!(
        h.take_actions()
            .iter()
            .all(|a| !matches!(a, Action::Probe { .. })),
        "no probe with a single host"
    );
}

#[test]
fn probing_finds_a_read_write_server_and_moves_to_it() {
    let mut h = Harness::new(ro_config("h1:1,h2:2,h3:3"));
    let (c1, ro_host) = h.expect_connect();
    let req = establish_ro(&mut h, c1, 0x55);
    assert_eq!(req.session_id, 0);
    h.events();
    let t0 = h.now;
    assert_eq!(
        h.session.poll_timeout().unwrap(),
        (t0 + ms(100), TimerReason::ReadOnlyProbe)
    );
    h.advance(ms(99));
    assert!(h.take_actions().is_empty());
    h.advance(ms(1));
    let (p1, host1) = expect_probe(&mut h);
    assert_ne!(host1, ro_host, "never probe the server we are on");
    assert_eq!(h.now - t0, ms(100));

    // Not read-write: probe again later, somewhere else, with a growing interval.
    h.session.handle_probe_result(h.now, p1, false);
    let t1 = h.now;
    let (at, why) = h.session.poll_timeout().unwrap();
    assert_eq!(why, TimerReason::ReadOnlyProbe);
    assert!(at - t1 >= ms(100), "the interval does not shrink");
    h.advance_to(at);
    let (p2, host2) = expect_probe(&mut h);
    assert_ne!(host2, ro_host);
    assert_ne!(p2, p1);
    // A stale result is ignored.
    h.session.handle_probe_result(h.now, p1, true);
    assert!(h.take_actions().is_empty());
    assert_eq!(h.session.state(), SessionState::ConnectedReadOnly);

    // Read-write: drop the read-only connection and connect to that host.
    h.session.handle_probe_result(h.now, p2, true);
    h.pump();
    assert_eq!(h.expect_disconnect().0, c1);
    assert_eq!(h.events(), [Event::State(SessionState::Disconnected)]);
    let (c2, host) = h.expect_connect();
    assert_eq!(host, host2, "connect to the host that answered rw");
    let req = h.establish(c2, 0x66, 6000);
    assert_eq!(
        req.session_id, 0,
        "no read-write server seen yet: a new session"
    );
    assert_eq!(&req.passwd[..], &[0u8; 16]);
    assert_eq!(req.read_only, Some(true));
    assert_eq!(h.events(), [Event::State(SessionState::Connected)]);
    assert_eq!(h.session.session_id(), 0x66);
    // No more probing on a read-write server.
    h.advance(ms(1000));
    assert!(
        h.take_actions()
            .iter()
            .all(|a| !matches!(a, Action::Probe { .. })),
        "no probe once read-write"
    );

    // From now on reconnects resume the session.
    let conn = h.conn();
    h.server_close(conn);
    let (c3, _) = h.expect_connect();
    let req = h.tcp_connect(c3);
    assert_eq!(req.session_id, 0x66);
    assert_eq!(req.passwd, passwd_for(0x66));
}

#[test]
fn session_id_zero_on_every_reconnect_until_a_read_write_server() {
    let mut h = Harness::new(ro_config("h1:1,h2:2"));
    let (c1, _) = h.expect_connect();
    establish_ro(&mut h, c1, 0x55);
    h.events();
    // A data watch set on the read-only session.
    let (watch_op, _) = h.roundtrip_ok(get_data("/d", true), 3);
    h.server_close(c1);
    let (c2, _) = h.expect_connect();
    h.events();
    let req = establish_ro(&mut h, c2, 0x56);
    assert_eq!(req.session_id, 0, "still no read-write server seen");
    assert_eq!(&req.passwd[..], &[0u8; 16]);
    assert_eq!(h.session.session_id(), 0x56);
    // Its owner learns that the watch is gone.
    let events = h.events();
    assert!(
        events.contains(&Event::WatchLost { watcher: watch_op }),
        "{events:?}"
    );
    assert!(h.session.watches().is_empty());
    // A new session: the old session's watches cannot be re-registered.
    assert!(
        h.take_requests().is_empty(),
        "no SetWatches for another session"
    );
    h.server_close(c2);
    let (c3, _) = h.expect_connect();
    let req = h.establish(c3, 0x57, 6000);
    assert_eq!(req.session_id, 0);
    assert_eq!(h.session.state(), SessionState::Connected);
    h.server_close(c3);
    let (c4, _) = h.expect_connect();
    let req = h.tcp_connect(c4);
    assert_eq!(req.session_id, 0x57, "after a read-write server: resume");
}

#[test]
fn a_read_write_server_may_answer_a_can_be_read_only_client() {
    let mut h = Harness::new(ro_config("h1:1,h2:2"));
    let (c1, _) = h.expect_connect();
    let req = h.establish(c1, 0x70, 6000);
    assert_eq!(req.read_only, Some(true));
    assert_eq!(h.events(), [Event::State(SessionState::Connected)]);
    h.advance(ms(500));
    assert!(h.take_actions().is_empty(), "no probing");
    h.server_close(c1);
    let (c2, _) = h.expect_connect();
    assert_eq!(h.tcp_connect(c2).session_id, 0x70);
}
