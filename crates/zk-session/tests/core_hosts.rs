//! Host lists, shuffling, connect timeouts, backoff, and servers that refuse us.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod support;

use std::time::Duration;

use zk_proto::{ErrorCode, Response};
use zk_session::hosts::HostAddr;
use zk_session::session::{Action, Config, Event, SessionState, TimerReason};

use support::*;

const FIVE: &str = "h1:1,h2:2,h3:3,h4:4,h5:5/chroot";

fn hosts_for(seed: u64) -> Vec<String> {
    let mut config = Config::new(FIVE).unwrap();
    config.seed = seed;
    let h = Harness::new(config);
    h.session.hosts().iter().map(ToString::to_string).collect()
}

#[test]
fn connect_string_is_parsed_with_ports_and_chroot() {
    let config = Config::new(FIVE).unwrap();
    let parsed: Vec<String> = config.hosts.iter().map(ToString::to_string).collect();
    assert_eq!(parsed, ["h1:1", "h2:2", "h3:3", "h4:4", "h5:5"]);
    assert_eq!(config.chroot.prefix(), Some("/chroot"));
    let config = Config::new("a,b:7").unwrap();
    assert_eq!(
        config.hosts,
        [
            HostAddr {
                host: "a".into(),
                port: 2181
            },
            HostAddr {
                host: "b".into(),
                port: 7
            }
        ]
    );
}

#[test]
fn hosts_are_shuffled_from_the_seed() {
    let a = hosts_for(1);
    assert_eq!(a, hosts_for(1), "same seed, same order");
    let mut sorted = a.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ["h1:1", "h2:2", "h3:3", "h4:4", "h5:5"],
        "a permutation"
    );
    // Different seeds give different orders (5! = 120 orders: a few seeds must differ).
    let others: Vec<Vec<String>> = (2..6).map(hosts_for).collect();
    assert!(others.iter().any(|o| *o != a), "seeds 1..6 all gave {a:?}");
    assert_ne!(hosts_for(1), hosts_for(2));
}

#[test]
fn attempts_follow_the_shuffled_order_in_rotation() {
    let mut config = Config::new(FIVE).unwrap();
    config.seed = 42;
    let mut h = Harness::new(config);
    let order: Vec<HostAddr> = h.session.hosts().to_vec();
    let mut tried = Vec::new();
    for _ in 0..7 {
        let (conn, host) = h.expect_connect();
        tried.push(host);
        h.server_close(conn);
    }
    let expected: Vec<HostAddr> = (0..7).map(|i| order[i % 5].clone()).collect();
    assert_eq!(tried, expected);
}

#[test]
fn connect_timeout_is_the_session_timeout_over_the_host_count() {
    // 3 hosts, requested 9 s: 3 s per attempt before the first connect.
    let mut h = Harness::with("h1:1,h2:2,h3:3", 9000);
    assert_eq!(h.session.connect_timeout(), ms(3000));
    let (c1, _) = h.expect_connect();
    let t1 = h.now;
    assert_eq!(
        h.session.poll_timeout().unwrap(),
        (t1 + ms(3000), TimerReason::ConnectTimeout)
    );
    // TCP never completes: dropped at 3 s.
    h.advance(ms(2999));
    assert!(h.take_actions().is_empty());
    h.advance(ms(1));
    let (c, at) = h.expect_disconnect();
    assert_eq!((c, at - t1), (c1, ms(3000)));

    // TCP completes but the ConnectResponse never comes: the same budget covers both.
    let (c2, _) = h.expect_connect();
    let t2 = h.now;
    h.advance(ms(1000));
    h.tcp_connect(c2);
    h.advance(ms(1999));
    assert!(h.take_actions().is_empty());
    h.advance(ms(1));
    let (c, at) = h.expect_disconnect();
    assert_eq!((c, at - t2), (c2, ms(3000)));

    // After the first connect the negotiated timeout counts: 6 s / 3 = 2 s.
    let (c3, _) = h.expect_connect();
    h.establish(c3, 5, 6000);
    assert_eq!(h.session.connect_timeout(), ms(2000));
    h.server_close(c3);
    let (c4, _) = h.expect_connect();
    let t4 = h.now;
    assert_eq!(
        h.session.poll_timeout().unwrap(),
        (t4 + ms(2000), TimerReason::ConnectTimeout)
    );
    h.advance(ms(2000));
    let (c, at) = h.expect_disconnect();
    assert_eq!((c, at - t4), (c4, ms(2000)));
}

/// Attempts within a round follow each other quickly; after a full round with no success
/// the next attempt is delayed (and the delay does not shrink with more failed rounds).
#[test]
fn backoff_after_a_full_failed_round() {
    let mut h = Harness::with("h1:1,h2:2,h3:3", 9000);
    let mut starts = Vec::new();
    for _ in 0..9 {
        let (conn, _) = h.expect_connect();
        starts.push(h.now);
        h.server_close(conn); // connection refused at once
    }
    let gaps: Vec<Duration> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    // gaps[2] and gaps[5] follow the end of a round.
    let within: Vec<Duration> = [0, 1, 3, 4, 6, 7].iter().map(|i| gaps[*i]).collect();
    let after_round = [gaps[2], gaps[5]];
    let max_within = *within.iter().max().unwrap();
    for g in after_round {
        assert!(
            g > max_within,
            "a full failed round must delay the next attempt: gaps {gaps:?}"
        );
        assert!(g >= ms(100), "round backoff of at least 100 ms: {gaps:?}");
        assert!(g <= ms(2000), "bounded backoff: {gaps:?}");
    }
    assert!(
        gaps[5] >= gaps[2] - ms(100),
        "no shrinking beyond jitter: {gaps:?}"
    );
    // Many failed rounds later the delay stays bounded.
    let mut last = h.now;
    for _ in 0..30 {
        let (conn, _) = h.expect_connect();
        assert!(h.now - last <= ms(2000));
        last = h.now;
        h.server_close(conn);
    }
    // A working connection resets the backoff: once it has lived a second, its loss is
    // retried at once.
    let (conn, _) = h.expect_connect();
    h.establish(conn, 3, 9000);
    h.advance(ms(1000));
    h.server_close(conn);
    let before = h.now;
    h.expect_connect();
    assert_eq!(h.now, before, "reconnect right after a working connection");
}

/// A server that takes the session and drops the connection at once (or sends what we drop
/// it for) does not make a reconnect loop: a connection lost within a second of its
/// handshake counts as a failed attempt, and the backoff grows as for refused connects.
#[test]
fn a_connection_dropped_right_after_its_handshake_backs_off() {
    let mut h = Harness::with("h1:1", 9000);
    let mut gaps = Vec::new();
    let mut last = None;
    for _ in 0..8 {
        let (conn, _) = h.expect_connect();
        if let Some(t) = last {
            gaps.push(h.now - t);
        }
        h.establish(conn, 3, 9000);
        h.events();
        last = Some(h.now);
        h.server_close(conn);
    }
    assert!(gaps[0] >= ms(100), "the first flap already waits: {gaps:?}");
    assert!(gaps[3] >= ms(800), "the wait grows: {gaps:?}");
    assert!(
        gaps.iter().all(|g| *g <= ms(1100)),
        "bounded backoff: {gaps:?}"
    );
    // Still the same session, and a connection that lasts resets it all.
    let (conn, _) = h.expect_connect();
    let req = h.establish(conn, 3, 9000);
    assert_eq!(req.session_id, 3);
    h.advance(ms(1500));
    h.server_close(conn);
    let before = h.now;
    h.expect_connect();
    assert_eq!(h.now, before);
}

/// A server behind our last zxid closes the connection without a ConnectResponse: the
/// client moves on to the next host, keeping its session and zxid, and only one
/// Connected is reported.
#[test]
fn a_server_behind_our_zxid_is_refused_and_the_next_host_tried() {
    let mut h = Harness::with("h1:1,h2:2,h3:3", 9000);
    let (c1, first) = h.expect_connect();
    h.establish(c1, 0x77, 9000);
    assert_eq!(h.events(), [Event::State(SessionState::Connected)]);
    let op = h.submit(set_data("/x", b"v"));
    let reqs = h.take_requests();
    h.reply(
        reqs[0].0.xid,
        0x50,
        ErrorCode::Ok,
        Some(Response::SetData(zk_proto::SetDataResponse {
            stat: stat(0x50),
        })),
    );
    assert!(h.completion(op).is_ok());
    assert_eq!(h.session.last_zxid(), 0x50);
    h.events();

    h.server_close(c1);
    let (c2, second) = h.expect_connect();
    assert_ne!(second, first);
    let req = h.tcp_connect(c2);
    assert_eq!((req.session_id, req.last_zxid_seen), (0x77, 0x50));
    // The lagging server closes without answering.
    h.server_close(c2);
    let (c3, third) = h.expect_connect();
    assert_ne!(third, second, "the next host");
    assert_ne!(third, first);
    let req = h.establish(c3, 0x77, 9000);
    assert_eq!((req.session_id, req.last_zxid_seen), (0x77, 0x50));
    assert_eq!(
        h.events(),
        [
            Event::State(SessionState::Disconnected),
            Event::State(SessionState::Connected)
        ]
    );
    // The refusing attempt's Disconnect came out; nothing else pending.
    assert!(
        h.action_log
            .iter()
            .any(|(_, a)| *a == Action::Disconnect { conn: c2 })
    );
}
