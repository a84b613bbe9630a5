//! Watches: one-shot, exists, child, persistent, recursive, removal, and re-registration
//! with SetWatches / SetWatches2 after a reconnect.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod support;

use std::collections::BTreeSet;

use zk_proto::{ErrorCode, EventType, OpCode, Request, WatcherType, xid};
use zk_session::Error;
use zk_session::session::{Config, Event, SessionState, WatchKind, WatchedEvent};

use support::*;

fn watch_event(watcher: u64, event_type: EventType, path: &str) -> Event {
    Event::Watch {
        watcher,
        event: WatchedEvent {
            event_type,
            path: path.into(),
        },
    }
}

fn connected() -> Harness {
    let mut h = Harness::with("h1:1,h2:2", 6000);
    h.connect_new(0x10, 6000);
    h
}

#[test]
fn one_shot_data_watch_fires_once() {
    let mut h = connected();
    let (w, res) = h.roundtrip_ok(get_data("/d", true), 5);
    assert!(matches!(res, zk_proto::Response::GetData(_)));
    // The request asked the server for a watch.
    assert!(h.session.watches().contains(w));
    h.notify(EventType::NodeDataChanged, "/d");
    assert_eq!(
        h.events(),
        [watch_event(w, EventType::NodeDataChanged, "/d")]
    );
    assert!(!h.session.watches().contains(w), "one-shot");
    h.notify(EventType::NodeDataChanged, "/d");
    assert!(h.events().is_empty(), "fired once");
}

#[test]
fn the_watch_flag_is_sent_and_a_failed_read_sets_no_watch() {
    let mut h = connected();
    let w = h.submit(get_data("/missing", true));
    let reqs = h.take_requests();
    assert_eq!(
        reqs[0].1,
        get_data("/missing", true),
        "watch=true on the wire"
    );
    h.reply(reqs[0].0.xid, 5, ErrorCode::NoNode, None);
    assert_eq!(h.completion(w), Err(Error::NoNode));
    assert!(
        h.session.watches().is_empty(),
        "getData on a missing node sets no watch"
    );
    let c = h.submit(get_children("/missing", true));
    let reqs = h.take_requests();
    h.reply(reqs[0].0.xid, 5, ErrorCode::NoNode, None);
    assert_eq!(h.completion(c), Err(Error::NoNode));
    assert!(h.session.watches().is_empty());
    // A read without watch=true sets none either.
    h.roundtrip_ok(get_data("/d", false), 5);
    assert!(h.session.watches().is_empty());
}

#[test]
fn exists_on_a_present_node_sets_a_data_watch() {
    let mut h = connected();
    let (w, res) = h.roundtrip_ok(exists("/e", true), 5);
    assert!(matches!(res, zk_proto::Response::Exists(_)));
    assert_eq!(h.session.watches().paths(WatchKind::Data), ["/e"]);
    assert!(h.session.watches().paths(WatchKind::Exist).is_empty());
    h.notify(EventType::NodeDeleted, "/e");
    assert_eq!(h.events(), [watch_event(w, EventType::NodeDeleted, "/e")]);
    assert!(h.session.watches().is_empty());
}

#[test]
fn exists_on_a_missing_node_sets_an_exist_watch_fired_by_node_created() {
    let mut h = connected();
    let w = h.submit(exists("/e", true));
    let reqs = h.take_requests();
    // G9: the NoNode reply has no body, but the watch is set.
    h.reply(reqs[0].0.xid, 0xaa, ErrorCode::NoNode, None);
    assert_eq!(h.completion(w), Err(Error::NoNode));
    assert_eq!(h.session.watches().paths(WatchKind::Exist), ["/e"]);
    assert!(h.session.watches().paths(WatchKind::Data).is_empty());
    h.notify(EventType::NodeChildrenChanged, "/e");
    assert!(h.events().is_empty(), "an exist watch ignores child events");
    h.notify(EventType::NodeCreated, "/e");
    assert_eq!(h.events(), [watch_event(w, EventType::NodeCreated, "/e")]);
    assert!(h.session.watches().is_empty());
}

#[test]
fn child_watch_fires_on_children_changed_or_delete() {
    let mut h = connected();
    let (c1, _) = h.roundtrip_ok(get_children("/p", true), 5);
    let (c2, _) = h.roundtrip_ok(
        Request::GetChildren2(zk_proto::GetChildren2Request {
            path: "/q".into(),
            watch: true,
        }),
        5,
    );
    assert_eq!(h.session.watches().paths(WatchKind::Child), ["/p", "/q"]);
    h.notify(EventType::NodeDataChanged, "/p");
    assert!(h.events().is_empty(), "a child watch ignores data changes");
    h.notify(EventType::NodeChildrenChanged, "/p");
    assert_eq!(
        h.events(),
        [watch_event(c1, EventType::NodeChildrenChanged, "/p")]
    );
    h.notify(EventType::NodeChildrenChanged, "/p");
    assert!(h.events().is_empty(), "one-shot");
    h.notify(EventType::NodeDeleted, "/q");
    assert_eq!(h.events(), [watch_event(c2, EventType::NodeDeleted, "/q")]);
}

#[test]
fn persistent_watch_sees_every_event_on_its_path_and_survives() {
    let mut h = connected();
    let w = h.submit(add_watch("/p", false));
    let reqs = h.take_requests();
    assert_eq!(reqs[0].0.opcode, OpCode::AddWatch);
    // G17: the reply carries a 4-byte ErrorResponse{0}.
    let mut frame = hex("00000014 00000014 00000000000000b3 00000000 00000000");
    frame[4..8].copy_from_slice(&reqs[0].0.xid.to_be_bytes());
    h.feed(&frame);
    assert!(h.completion(w).is_ok());
    for ev in [
        EventType::NodeCreated,
        EventType::NodeDataChanged,
        EventType::NodeChildrenChanged,
        EventType::NodeDeleted,
        EventType::NodeCreated,
    ] {
        h.notify(ev, "/p");
        assert_eq!(h.events(), [watch_event(w, ev, "/p")]);
    }
    h.notify(EventType::NodeDataChanged, "/p/child");
    assert!(h.events().is_empty(), "not recursive");
    assert!(h.session.watches().contains(w));
}

#[test]
fn recursive_watch_sees_descendants_but_never_children_changed() {
    let mut h = connected();
    let (r, _) = h.roundtrip_ok(add_watch("/r", true), 5);
    // A standard child watch on the same path does not leak NodeChildrenChanged to it.
    let (c, _) = h.roundtrip_ok(get_children("/r", true), 5);
    h.notify(EventType::NodeChildrenChanged, "/r");
    assert_eq!(
        h.events(),
        [watch_event(c, EventType::NodeChildrenChanged, "/r")]
    );
    h.notify(EventType::NodeChildrenChanged, "/r/a");
    assert!(h.events().is_empty());
    for (ev, path) in [
        (EventType::NodeCreated, "/r/a"),
        (EventType::NodeDataChanged, "/r/a/b/c"),
        (EventType::NodeDeleted, "/r/a"),
        (EventType::NodeDataChanged, "/r"),
    ] {
        h.notify(ev, path);
        assert_eq!(h.events(), [watch_event(r, ev, path)], "{ev:?} {path}");
    }
    // Siblings sharing a name prefix are not descendants.
    h.notify(EventType::NodeCreated, "/rx");
    h.notify(EventType::NodeCreated, "/");
    assert!(h.events().is_empty());
}

#[test]
fn removing_the_last_persistent_watcher_sends_remove_watches() {
    let mut h = connected();
    let (p1, _) = h.roundtrip_ok(add_watch("/p", false), 5);
    let (p2, _) = h.roundtrip_ok(add_watch("/p", false), 5);
    let (r, _) = h.roundtrip_ok(add_watch("/r", true), 5);
    let (d, _) = h.roundtrip_ok(get_data("/d", true), 5);

    h.session.remove_watcher(h.now, p1);
    assert!(
        h.take_requests().is_empty(),
        "another watcher remains on /p"
    );
    h.notify(EventType::NodeDataChanged, "/p");
    assert_eq!(
        h.events(),
        [watch_event(p2, EventType::NodeDataChanged, "/p")]
    );

    h.session.remove_watcher(h.now, p2);
    let reqs = h.take_requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].0.opcode, OpCode::RemoveWatches);
    assert!(reqs[0].0.xid > 0);
    match &reqs[0].1 {
        Request::RemoveWatches(rw) => {
            assert_eq!(rw.path, "/p");
            assert_eq!(rw.watcher_type, WatcherType::Any);
        }
        other => panic!("{other:?}"),
    }
    h.reply(reqs[0].0.xid, 6, ErrorCode::Ok, None);
    h.notify(EventType::NodeDataChanged, "/p");
    assert!(h.events().is_empty(), "no local watcher left");

    h.session.remove_watcher(h.now, r);
    let reqs = h.take_requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].0.opcode, OpCode::RemoveWatches);
    // A NoWatcher reply to the internal request is harmless.
    h.reply(reqs[0].0.xid, 6, ErrorCode::NoWatcher, None);
    assert!(h.events().is_empty());
    assert_eq!(h.session.state(), SessionState::Connected);

    // A one-shot watcher is only forgotten locally.
    h.session.remove_watcher(h.now, d);
    assert!(h.take_requests().is_empty());
    h.notify(EventType::NodeDataChanged, "/d");
    assert!(h.events().is_empty());
    // Unknown ids are ignored.
    h.session.remove_watcher(h.now, 9999);
    assert!(h.take_requests().is_empty());
}

/// Arm one watch of every kind, then lose the connection.
fn armed_and_disconnected(h: &mut Harness) -> [u64; 5] {
    let (d, _) = h.roundtrip_ok(get_data("/d", true), 0x20);
    let e = h.submit(exists("/e", true));
    let reqs = h.take_requests();
    h.reply(reqs[0].0.xid, 0x21, ErrorCode::NoNode, None);
    h.completion(e).unwrap_err();
    let (c, _) = h.roundtrip_ok(get_children("/c", true), 0x22);
    let (p, _) = h.roundtrip_ok(add_watch("/p", false), 0x23);
    let (r, _) = h.roundtrip_ok(add_watch("/r", true), 0x24);
    assert_eq!(h.session.last_zxid(), 0x24);
    let conn = h.conn();
    h.server_close(conn);
    assert_eq!(h.events(), [Event::State(SessionState::Disconnected)]);
    [d, e, c, p, r]
}

#[test]
fn all_watches_are_re_registered_after_auth_and_before_queued_requests() {
    let mut h = connected();
    let auth = h.add_auth("digest", b"alice:secret");
    let reqs = h.take_requests();
    assert_eq!(reqs[0].0.xid, xid::AUTH);
    h.reply(xid::AUTH, 0, ErrorCode::Ok, None);
    assert!(h.completion(auth).is_ok());
    let [d, _, _, _, _] = armed_and_disconnected(&mut h);
    let queued = h.submit(get_data("/q", false));

    let (c2, _) = h.expect_connect();
    h.establish(c2, 0x10, 6000);
    let reqs = h.take_requests();
    assert_eq!(reqs.len(), 3, "{reqs:?}");
    // 1. auth replay.
    assert_eq!(reqs[0].0.xid, xid::AUTH);
    assert_eq!(reqs[0].0.opcode, OpCode::Auth);
    // 2. SetWatches2 with every path and relativeZxid = last zxid.
    assert_eq!(reqs[1].0.opcode, OpCode::SetWatches2);
    assert!(reqs[1].0.xid > 0, "a normal xid");
    match &reqs[1].1 {
        Request::SetWatches2(sw) => {
            assert_eq!(sw.relative_zxid, 0x24);
            assert_eq!(sw.data_watches, ["/d"]);
            assert_eq!(sw.exist_watches, ["/e"]);
            assert_eq!(sw.child_watches, ["/c"]);
            assert_eq!(sw.persistent_watches, ["/p"]);
            assert_eq!(sw.persistent_recursive_watches, ["/r"]);
        }
        other => panic!("{other:?}"),
    }
    // 3. the request queued while disconnected.
    assert_eq!(reqs[2].1, get_data("/q", false));
    assert!(reqs[2].0.xid > reqs[1].0.xid);

    // The server answers: auth, then a catch-up notification before the SetWatches reply
    // (G16 order), then the queued request.
    h.reply(xid::AUTH, 0, ErrorCode::Ok, None);
    h.notify(EventType::NodeDataChanged, "/d");
    h.reply(reqs[1].0.xid, 0x30, ErrorCode::Ok, None);
    h.reply(
        reqs[2].0.xid,
        0x30,
        ErrorCode::Ok,
        ok_response(&reqs[2].1, 0x30),
    );
    let events = h.events();
    assert_eq!(events[0], Event::State(SessionState::Connected));
    assert_eq!(events[1], watch_event(d, EventType::NodeDataChanged, "/d"));
    assert!(matches!(events[2], Event::Completed { op, result: Ok(_) } if op == queued));
    assert_eq!(events.len(), 3);
}

#[test]
fn set_watches_101_when_no_persistent_watches() {
    let mut h = connected();
    h.roundtrip_ok(get_data("/d", true), 0x20);
    h.roundtrip_ok(get_children("/c", true), 0x21);
    let conn = h.conn();
    h.server_close(conn);
    let (c2, _) = h.expect_connect();
    h.establish(c2, 0x10, 6000);
    let reqs = h.take_requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].0.opcode, OpCode::SetWatches);
    match &reqs[0].1 {
        Request::SetWatches(sw) => {
            assert_eq!(sw.relative_zxid, 0x21);
            assert_eq!(sw.data_watches, ["/d"]);
            assert!(sw.exist_watches.is_empty());
            assert_eq!(sw.child_watches, ["/c"]);
        }
        other => panic!("{other:?}"),
    }
    // No watches at all: no SetWatches.
    let mut h = connected();
    let conn = h.conn();
    h.server_close(conn);
    let (c2, _) = h.expect_connect();
    h.establish(c2, 0x10, 6000);
    assert!(h.take_requests().is_empty());
}

#[test]
fn catch_up_notification_after_reconnect_reaches_each_kind() {
    let mut h = connected();
    let [d, e, c, p, r] = armed_and_disconnected(&mut h);
    let (c2, _) = h.expect_connect();
    h.establish(c2, 0x10, 6000);
    let reqs = h.take_requests();
    assert_eq!(reqs.len(), 1);
    h.events();
    h.notify(EventType::NodeDeleted, "/d");
    h.notify(EventType::NodeCreated, "/e");
    h.notify(EventType::NodeChildrenChanged, "/c");
    h.notify(EventType::NodeDataChanged, "/p");
    h.notify(EventType::NodeCreated, "/r/new");
    h.reply(reqs[0].0.xid, 0x30, ErrorCode::Ok, None);
    assert_eq!(
        h.events(),
        [
            watch_event(d, EventType::NodeDeleted, "/d"),
            watch_event(e, EventType::NodeCreated, "/e"),
            watch_event(c, EventType::NodeChildrenChanged, "/c"),
            watch_event(p, EventType::NodeDataChanged, "/p"),
            watch_event(r, EventType::NodeCreated, "/r/new"),
        ]
    );
    assert_eq!(h.session.last_zxid(), 0x30);
}

#[test]
fn set_watches_are_split_into_batches() {
    let mut config = Config::new("h1:1/app").unwrap();
    config.set_watches_batch = 30;
    let mut h = Harness::new(config);
    h.connect_new(0x10, 6000);
    let mut expected: BTreeSet<(usize, String)> = BTreeSet::new();
    for i in 0..25 {
        h.roundtrip_ok(get_data(&format!("/d{i:02}"), true), 0x20);
        expected.insert((0, format!("/app/d{i:02}")));
    }
    for i in 0..7 {
        let e = h.submit(exists(&format!("/e{i}"), true));
        let reqs = h.take_requests();
        h.reply(reqs[0].0.xid, 0x21, ErrorCode::NoNode, None);
        h.completion(e).unwrap_err();
        expected.insert((1, format!("/app/e{i}")));
    }
    for i in 0..5 {
        h.roundtrip_ok(get_children(&format!("/c{i}"), true), 0x22);
        expected.insert((2, format!("/app/c{i}")));
    }
    for i in 0..4 {
        h.roundtrip_ok(add_watch(&format!("/p{i}"), false), 0x23);
        expected.insert((3, format!("/app/p{i}")));
    }
    for i in 0..3 {
        h.roundtrip_ok(add_watch(&format!("/r{i}"), true), 0x24);
        expected.insert((4, format!("/app/r{i}")));
    }
    let conn = h.conn();
    h.server_close(conn);
    let (c2, _) = h.expect_connect();
    h.establish(c2, 0x10, 6000);
    let reqs = h.take_requests();
    assert!(reqs.len() > 3, "several batches: {}", reqs.len());

    let mut seen: Vec<(usize, String)> = Vec::new();
    let mut last_xid = 0;
    for (hdr, req) in &reqs {
        assert!(hdr.xid > last_xid, "increasing normal xids");
        last_xid = hdr.xid;
        let lists: Vec<Vec<String>> = match req {
            Request::SetWatches(sw) => {
                assert_eq!(hdr.opcode, OpCode::SetWatches);
                assert_eq!(sw.relative_zxid, 0x24);
                vec![
                    sw.data_watches.clone(),
                    sw.exist_watches.clone(),
                    sw.child_watches.clone(),
                    vec![],
                    vec![],
                ]
            }
            Request::SetWatches2(sw) => {
                assert_eq!(hdr.opcode, OpCode::SetWatches2);
                assert_eq!(sw.relative_zxid, 0x24);
                assert!(
                    !sw.persistent_watches.is_empty()
                        || !sw.persistent_recursive_watches.is_empty(),
                    "105 only for batches with persistent paths"
                );
                vec![
                    sw.data_watches.clone(),
                    sw.exist_watches.clone(),
                    sw.child_watches.clone(),
                    sw.persistent_watches.clone(),
                    sw.persistent_recursive_watches.clone(),
                ]
            }
            other => panic!("only SetWatches expected, got {other:?}"),
        };
        let paths: Vec<&String> = lists.iter().flatten().collect();
        assert!(!paths.is_empty(), "no empty batch");
        let total: usize = paths.iter().map(|p| p.len()).sum();
        let last = paths.last().unwrap().len();
        assert!(
            total - last < 30,
            "a batch stops taking paths once it reaches the limit: {total} {paths:?}"
        );
        for (kind, list) in lists.into_iter().enumerate() {
            seen.extend(list.into_iter().map(|p| (kind, p)));
        }
    }
    let seen_set: BTreeSet<(usize, String)> = seen.iter().cloned().collect();
    assert_eq!(
        seen.len(),
        seen_set.len(),
        "every path in exactly one batch"
    );
    assert_eq!(
        seen_set, expected,
        "all watches re-registered, chroot applied"
    );
    // Every batch is answered; nothing goes wrong.
    for (hdr, _) in &reqs {
        h.reply(hdr.xid, 0x30, ErrorCode::Ok, None);
    }
    assert_eq!(
        h.events(),
        [
            Event::State(SessionState::Disconnected),
            Event::State(SessionState::Connected)
        ]
    );
    assert_eq!(h.session.watches().len(), 25 + 7 + 5 + 4 + 3);
}

#[test]
fn a_watcher_removed_while_disconnected_is_not_re_registered() {
    let mut h = connected();
    let (p, _) = h.roundtrip_ok(add_watch("/p", false), 5);
    let (d, _) = h.roundtrip_ok(get_data("/d", true), 5);
    let conn = h.conn();
    h.server_close(conn);
    h.session.remove_watcher(h.now, p);
    let (c2, _) = h.expect_connect();
    h.establish(c2, 0x10, 6000);
    let reqs = h.take_requests();
    assert_eq!(
        reqs.len(),
        1,
        "no removeWatches: the registration died with c1"
    );
    match &reqs[0].1 {
        Request::SetWatches(sw) => assert_eq!(sw.data_watches, ["/d"]),
        other => panic!("SetWatches (101) without persistent paths, got {other:?}"),
    }
    assert!(h.session.watches().contains(d));
    assert!(!h.session.watches().contains(p));
}

#[test]
fn watches_are_kept_across_several_reconnects() {
    let mut h = connected();
    let (r, _) = h.roundtrip_ok(add_watch("/r", true), 5);
    for _ in 0..3 {
        let conn = h.conn();
        h.server_close(conn);
        let (c, _) = h.expect_connect();
        h.establish(c, 0x10, 6000);
        let reqs = h.take_requests();
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0].0.opcode, OpCode::SetWatches2);
        h.reply(reqs[0].0.xid, 5, ErrorCode::Ok, None);
    }
    h.events();
    h.notify(EventType::NodeDeleted, "/r/x");
    assert_eq!(h.events(), [watch_event(r, EventType::NodeDeleted, "/r/x")]);
}

// ZOOKEEPER-4466: servers before 3.9 keep one mode per (connection, path) in each of their
// two watch managers, and the last registration wins. The session keeps every registration
// that would demote a persistent one off the wire.

/// The watch flag a read carried on the wire.
fn wire_watch(req: &Request) -> bool {
    match req {
        Request::GetData(r) => r.watch,
        Request::Exists(r) => r.watch,
        Request::GetChildren(r) => r.watch,
        Request::GetChildren2(r) => r.watch,
        other => panic!("not a read: {other:?}"),
    }
}

#[test]
fn a_one_shot_watch_that_a_persistent_one_serves_is_kept_locally() {
    let mut h = connected();
    let (p, _) = h.roundtrip_ok(add_watch("/p", false), 5);
    let (r, _) = h.roundtrip_ok(add_watch("/r", true), 5);
    let d = h.submit(get_data("/p", true));
    let e = h.submit(exists("/p", true));
    let c = h.submit(get_children("/p", true));
    let rd = h.submit(get_data("/r", true));
    // A recursive registration never sits in the child manager: a child watch beside it
    // goes to the server, as does any watch on a path without a persistent one.
    let rc = h.submit(get_children("/r", true));
    let other = h.submit(get_data("/o", true));
    let reqs = h.answer_all(6);
    let flags: Vec<bool> = reqs.iter().map(|(_, req)| wire_watch(req)).collect();
    assert_eq!(flags, [false, false, false, false, true, true]);
    let done: Vec<u64> = h
        .completions()
        .into_iter()
        .map(|(op, result)| {
            assert!(result.is_ok());
            op
        })
        .collect();
    assert_eq!(done, [d, e, c, rd, rc, other]);
    for op in done {
        assert!(h.session.watches().contains(op), "registered locally");
    }
    // The persistent registration's events reach the one-shot watchers.
    h.notify(EventType::NodeDataChanged, "/p");
    assert_eq!(
        h.events(),
        [
            watch_event(d, EventType::NodeDataChanged, "/p"),
            watch_event(e, EventType::NodeDataChanged, "/p"),
            watch_event(p, EventType::NodeDataChanged, "/p"),
        ]
    );
    h.notify(EventType::NodeChildrenChanged, "/p");
    assert_eq!(
        h.events(),
        [
            watch_event(c, EventType::NodeChildrenChanged, "/p"),
            watch_event(p, EventType::NodeChildrenChanged, "/p"),
        ]
    );
    h.notify(EventType::NodeDataChanged, "/r");
    assert_eq!(
        h.events(),
        [
            watch_event(rd, EventType::NodeDataChanged, "/r"),
            watch_event(r, EventType::NodeDataChanged, "/r"),
        ]
    );
    // An addWatch still in flight counts: the read behind it goes without its flag.
    let q = h.submit(add_watch("/q", false));
    let qd = h.submit(get_data("/q", true));
    let reqs = h.answer_all(7);
    assert_eq!(reqs[0].0.opcode, OpCode::AddWatch);
    assert!(!wire_watch(&reqs[1].1));
    let done: Vec<u64> = h.completions().into_iter().map(|(op, _)| op).collect();
    assert_eq!(done, [q, qd]);
}

#[test]
fn a_persistent_and_a_recursive_watch_on_one_path_share_the_recursive_registration() {
    let mut h = connected();
    let (r, _) = h.roundtrip_ok(add_watch("/x", true), 5);
    // The persistent watch goes on the wire as a recursive addWatch.
    let p = h.submit(add_watch("/x", false));
    let reqs = h.answer_all(6);
    assert_eq!(reqs[0].1, add_watch("/x", true));
    assert!(h.completion(p).is_ok());
    // A child's creation reaches the recursive watcher, and the persistent one as
    // NodeChildrenChanged on the path, after it (the server's order).
    h.notify(EventType::NodeCreated, "/x/a");
    assert_eq!(
        h.events(),
        [
            watch_event(r, EventType::NodeCreated, "/x/a"),
            watch_event(p, EventType::NodeChildrenChanged, "/x"),
        ]
    );
    // A server that reports NodeChildrenChanged as well (3.9+) does not deliver it twice.
    h.notify(EventType::NodeChildrenChanged, "/x");
    assert!(h.events().is_empty());
    // Grandchildren are not children; the path's own events reach both.
    h.notify(EventType::NodeCreated, "/x/a/b");
    assert_eq!(
        h.events(),
        [watch_event(r, EventType::NodeCreated, "/x/a/b")]
    );
    h.notify(EventType::NodeDataChanged, "/x");
    assert_eq!(
        h.events(),
        [
            watch_event(p, EventType::NodeDataChanged, "/x"),
            watch_event(r, EventType::NodeDataChanged, "/x"),
        ]
    );
    // A one-shot child watch there is kept locally and fed the same way.
    let (c, _) = h.roundtrip_ok(get_children("/x", true), 7);
    h.notify(EventType::NodeDeleted, "/x/a");
    assert_eq!(
        h.events(),
        [
            watch_event(r, EventType::NodeDeleted, "/x/a"),
            watch_event(c, EventType::NodeChildrenChanged, "/x"),
            watch_event(p, EventType::NodeChildrenChanged, "/x"),
        ]
    );

    // After a reconnect SetWatches2 lists the path as both, and the server again holds it
    // recursive only.
    let conn = h.conn();
    h.server_close(conn);
    h.events();
    let (c2, _) = h.expect_connect();
    h.establish(c2, 0x10, 6000);
    let reqs = h.answer_all(8);
    match &reqs[0].1 {
        Request::SetWatches2(sw) => {
            assert_eq!(sw.persistent_watches, ["/x"]);
            assert_eq!(sw.persistent_recursive_watches, ["/x"]);
        }
        other => panic!("{other:?}"),
    }
    h.events();
    h.notify(EventType::NodeCreated, "/x/b");
    assert_eq!(
        h.events(),
        [
            watch_event(r, EventType::NodeCreated, "/x/b"),
            watch_event(p, EventType::NodeChildrenChanged, "/x"),
        ]
    );
}

#[test]
fn a_recursive_watch_added_beside_a_persistent_one_takes_over_from_its_reply() {
    let mut h = connected();
    let (p, _) = h.roundtrip_ok(add_watch("/y", false), 5);
    let r = h.submit(add_watch("/y", true));
    let reqs = h.take_requests();
    assert_eq!(reqs[0].1, add_watch("/y", true));
    // Before the reply the server still held the persistent registration: its own
    // NodeChildrenChanged is delivered.
    h.notify(EventType::NodeChildrenChanged, "/y");
    assert_eq!(
        h.events(),
        [watch_event(p, EventType::NodeChildrenChanged, "/y")]
    );
    h.reply(reqs[0].0.xid, 6, ErrorCode::Ok, None);
    assert!(h.completion(r).is_ok());
    h.notify(EventType::NodeCreated, "/y/c");
    assert_eq!(
        h.events(),
        [
            watch_event(r, EventType::NodeCreated, "/y/c"),
            watch_event(p, EventType::NodeChildrenChanged, "/y"),
        ]
    );
    // The recursive watcher goes: the server's registration stays what it is, so the
    // persistent watcher is still fed from the children's events; when it goes too, the
    // registration is removed.
    h.session.remove_watcher(h.now, r);
    assert!(h.take_requests().is_empty());
    h.notify(EventType::NodeDeleted, "/y/c");
    assert_eq!(
        h.events(),
        [watch_event(p, EventType::NodeChildrenChanged, "/y")]
    );
    h.session.remove_watcher(h.now, p);
    let reqs = h.take_requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].0.opcode, OpCode::RemoveWatches);
    h.reply(reqs[0].0.xid, 7, ErrorCode::Ok, None);
    h.notify(EventType::NodeCreated, "/y/d");
    assert!(h.events().is_empty());
}

#[test]
fn a_registration_kept_for_one_shot_watchers_is_removed_when_the_last_one_goes() {
    let mut h = connected();
    // Fired: the one-shot watcher outlives the persistent one, then fires.
    let (p, _) = h.roundtrip_ok(add_watch("/p", false), 5);
    let (d, _) = h.roundtrip_ok(get_data("/p", true), 5);
    h.session.remove_watcher(h.now, p);
    assert!(
        h.take_requests().is_empty(),
        "the one-shot watcher needs it"
    );
    h.notify(EventType::NodeDataChanged, "/p");
    assert_eq!(
        h.events(),
        [watch_event(d, EventType::NodeDataChanged, "/p")]
    );
    let reqs = h.take_requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].0.opcode, OpCode::RemoveWatches);
    h.reply(reqs[0].0.xid, 6, ErrorCode::Ok, None);

    // Dropped: the same when the one-shot watcher is dropped instead.
    let (p, _) = h.roundtrip_ok(add_watch("/p", false), 7);
    let (c, _) = h.roundtrip_ok(get_children("/p", true), 7);
    h.session.remove_watcher(h.now, p);
    assert!(h.take_requests().is_empty());
    h.session.remove_watcher(h.now, c);
    let reqs = h.take_requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].0.opcode, OpCode::RemoveWatches);
    h.reply(reqs[0].0.xid, 8, ErrorCode::Ok, None);

    // Reconnected: the new connection holds only what SetWatches lists (a standard data
    // watch), which the server drops when it fires; nothing to remove then.
    let (p, _) = h.roundtrip_ok(add_watch("/p", false), 9);
    let (d, _) = h.roundtrip_ok(get_data("/p", true), 9);
    h.session.remove_watcher(h.now, p);
    let conn = h.conn();
    h.server_close(conn);
    let (c2, _) = h.expect_connect();
    h.establish(c2, 0x10, 6000);
    let reqs = h.answer_all(10);
    match &reqs[0].1 {
        Request::SetWatches(sw) => assert_eq!(sw.data_watches, ["/p"]),
        other => panic!("{other:?}"),
    }
    h.events();
    h.notify(EventType::NodeDataChanged, "/p");
    assert_eq!(
        h.events(),
        [watch_event(d, EventType::NodeDataChanged, "/p")]
    );
    assert!(h.take_requests().is_empty());
}

#[test]
fn a_user_remove_watches_forgets_the_watchers_it_leaves_without_events() {
    let mut h = connected();
    let (p, _) = h.roundtrip_ok(add_watch("/p", false), 5);
    let (c, _) = h.roundtrip_ok(get_children("/c", true), 5);
    let (k, _) = h.roundtrip_ok(get_data("/c", true), 5);
    let remove = |path: &str, watcher_type| {
        Request::RemoveWatches(zk_proto::RemoveWatchesRequest {
            path: path.into(),
            watcher_type,
        })
    };
    h.roundtrip_ok(remove("/p", WatcherType::Any), 6);
    assert!(!h.session.watches().contains(p));
    // A data watch set now is the server's only registration there: it goes with its flag.
    let d = h.submit(get_data("/p", true));
    let reqs = h.answer_all(7);
    assert!(wire_watch(&reqs[0].1));
    assert!(h.completion(d).is_ok());
    h.notify(EventType::NodeDataChanged, "/p");
    assert_eq!(
        h.events(),
        [watch_event(d, EventType::NodeDataChanged, "/p")]
    );
    // Children removes child watches and leaves data watches.
    h.roundtrip_ok(remove("/c", WatcherType::Children), 8);
    assert!(!h.session.watches().contains(c));
    assert!(h.session.watches().contains(k));
    // A reconnect re-registers only what is left.
    let conn = h.conn();
    h.server_close(conn);
    let (c2, _) = h.expect_connect();
    h.establish(c2, 0x10, 6000);
    let reqs = h.answer_all(9);
    match &reqs[0].1 {
        Request::SetWatches(sw) => {
            assert_eq!(sw.data_watches, ["/c"]);
            assert!(sw.child_watches.is_empty());
        }
        other => panic!("{other:?}"),
    }
}
