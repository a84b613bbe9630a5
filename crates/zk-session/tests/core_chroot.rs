//! Chroot: applied to every outgoing path, stripped from every incoming one.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod support;

use bytes::Bytes;
use zk_proto::{
    Acl, CheckVersionRequest, CheckWatchesRequest, Create2Response, CreateMode, CreateResponse,
    CreateTtlRequest, DeleteRequest, ErrorCode, EventType, GetAclRequest,
    GetAllChildrenNumberRequest, GetChildren2Request, GetEphemeralsRequest, GetEphemeralsResponse,
    MultiOp, MultiRequest, MultiResponse, MultiResult, Request, Response, SetAclRequest,
    SetDataRequest, SyncRequest, SyncResponse, WatcherType,
};
use zk_session::session::{Event, WatchedEvent};

use support::*;

fn chrooted() -> Harness {
    let mut h = Harness::with("h1:1,h2:2/app/x", 6000);
    h.connect_new(0x10, 6000);
    h
}

fn multi() -> Request {
    Request::Multi(MultiRequest {
        ops: vec![
            MultiOp::Create(create_req("/m1", b"x")),
            MultiOp::Create2(create_req("/m2", b"")),
            MultiOp::Delete(DeleteRequest {
                path: "/nope".into(),
                version: -1,
            }),
            MultiOp::SetData(SetDataRequest {
                path: "/".into(),
                data: Bytes::new(),
                version: -1,
            }),
            MultiOp::Check(CheckVersionRequest {
                path: "/n1".into(),
                version: 1,
            }),
        ],
    })
}

#[test]
fn every_outgoing_path_gets_the_chroot_and_slash_is_the_chroot() {
    let mut h = chrooted();
    let requests = vec![
        Request::Create(create_req("/a", b"")),
        Request::Create2(zk_proto::CreateRequest {
            flags: CreateMode::PersistentSequential,
            ..create_req("/a/", b"")
        }),
        Request::CreateContainer(zk_proto::CreateRequest {
            flags: CreateMode::Container,
            ..create_req("/c", b"")
        }),
        Request::CreateTtl(CreateTtlRequest {
            path: "/t".into(),
            data: Bytes::new(),
            acl: Acl::open_unsafe(),
            flags: CreateMode::PersistentWithTtl,
            ttl: 1000,
        }),
        Request::Delete(DeleteRequest {
            path: "/a".into(),
            version: -1,
        }),
        exists("/", true),
        get_data("/a", true),
        set_data("/a", b"v"),
        Request::GetAcl(GetAclRequest { path: "/a".into() }),
        Request::SetAcl(SetAclRequest {
            path: "/a".into(),
            acl: Acl::open_unsafe(),
            version: -1,
        }),
        get_children("/", true),
        Request::GetChildren2(GetChildren2Request {
            path: "/a".into(),
            watch: false,
        }),
        Request::Sync(SyncRequest { path: "/".into() }),
        Request::GetAllChildrenNumber(GetAllChildrenNumberRequest { path: "/a".into() }),
        Request::CheckWatches(CheckWatchesRequest {
            path: "/a".into(),
            watcher_type: WatcherType::Data,
        }),
        Request::RemoveWatches(zk_proto::RemoveWatchesRequest {
            path: "/a".into(),
            watcher_type: WatcherType::Any,
        }),
        add_watch("/w", true),
        Request::GetEphemerals(GetEphemeralsRequest {
            prefix_path: "/e".into(),
        }),
    ];
    for r in &requests {
        h.submit(r.clone());
    }
    let sent = h.take_requests();
    assert_eq!(sent.len(), requests.len());
    for ((_, server), client) in sent.iter().zip(&requests) {
        let c = request_path(client).unwrap();
        let expected = if c == "/" {
            "/app/x".to_owned()
        } else {
            format!("/app/x{c}")
        };
        assert_eq!(request_path(server), Some(expected.as_str()), "{client:?}");
    }

    h.submit(multi());
    let sent = h.take_requests();
    match &sent[0].1 {
        Request::Multi(m) => {
            let paths: Vec<&str> = m.ops.iter().map(MultiOp::path).collect();
            assert_eq!(
                paths,
                [
                    "/app/x/m1",
                    "/app/x/m2",
                    "/app/x/nope",
                    "/app/x",
                    "/app/x/n1"
                ]
            );
        }
        other => panic!("{other:?}"),
    }

    // getEphemerals with an empty prefix means "all": the chroot itself.
    h.submit(Request::GetEphemerals(GetEphemeralsRequest {
        prefix_path: String::new(),
    }));
    let sent = h.take_requests();
    assert_eq!(request_path(&sent[0].1), Some("/app/x"));

    // submit_unrooted bypasses the chroot.
    h.session
        .submit_unrooted(h.now, get_data("/zookeeper/config", false))
        .unwrap();
    let sent = h.take_requests();
    assert_eq!(request_path(&sent[0].1), Some("/zookeeper/config"));
}

#[test]
fn set_watches_and_remove_watches_paths_get_the_chroot() {
    let mut h = chrooted();
    h.roundtrip_ok(get_data("/d", true), 5);
    h.roundtrip_ok(get_data("/", true), 5);
    let (p, _) = h.roundtrip_ok(add_watch("/p", false), 5);
    let conn = h.conn();
    h.server_close(conn);
    let (c2, _) = h.expect_connect();
    h.establish(c2, 0x10, 6000);
    let reqs = h.take_requests();
    match &reqs[0].1 {
        Request::SetWatches2(sw) => {
            let mut data = sw.data_watches.clone();
            data.sort();
            assert_eq!(data, ["/app/x", "/app/x/d"]);
            assert_eq!(sw.persistent_watches, ["/app/x/p"]);
        }
        other => panic!("{other:?}"),
    }
    h.reply(reqs[0].0.xid, 6, ErrorCode::Ok, None);
    h.session.remove_watcher(h.now, p);
    let reqs = h.take_requests();
    assert_eq!(request_path(&reqs[0].1), Some("/app/x/p"));
}

#[test]
fn every_incoming_path_is_stripped() {
    let mut h = chrooted();
    let (d, _) = h.roundtrip_ok(get_data("/d", true), 5);
    let (root, _) = h.roundtrip_ok(get_children("/", true), 5);
    let (r, _) = h.roundtrip_ok(add_watch("/", true), 5);
    h.events();

    // Notifications.
    h.notify(EventType::NodeDataChanged, "/app/x/d");
    h.notify(EventType::NodeChildrenChanged, "/app/x");
    let ev = |watcher, event_type, path: &str| Event::Watch {
        watcher,
        event: WatchedEvent {
            event_type,
            path: path.into(),
        },
    };
    assert_eq!(
        h.events(),
        [
            ev(d, EventType::NodeDataChanged, "/d"),
            ev(r, EventType::NodeDataChanged, "/d"),
            ev(root, EventType::NodeChildrenChanged, "/"),
        ]
    );

    // create / create2 results.
    let op = h.submit(Request::Create(zk_proto::CreateRequest {
        flags: CreateMode::EphemeralSequential,
        ..create_req("/es-", b"")
    }));
    let reqs = h.take_requests();
    h.reply(
        reqs[0].0.xid,
        6,
        ErrorCode::Ok,
        Some(Response::Create(CreateResponse {
            path: "/app/x/es-0000000002".into(),
        })),
    );
    assert_eq!(
        h.completion(op),
        Ok(Response::Create(CreateResponse {
            path: "/es-0000000002".into()
        }))
    );
    let op = h.submit(Request::Create2(create_req("/n", b"")));
    let reqs = h.take_requests();
    h.reply(
        reqs[0].0.xid,
        7,
        ErrorCode::Ok,
        Some(Response::Create2(Create2Response {
            path: "/app/x/n".into(),
            stat: stat(7),
        })),
    );
    assert_eq!(
        h.completion(op),
        Ok(Response::Create2(Create2Response {
            path: "/n".into(),
            stat: stat(7)
        }))
    );

    // multi create results.
    let op = h.submit(multi());
    let reqs = h.take_requests();
    let results = vec![
        MultiResult::Create(CreateResponse {
            path: "/app/x/m1".into(),
        }),
        MultiResult::Create2(zk_proto::Create2Response {
            path: "/app/x/m2".into(),
            stat: stat(8),
        }),
        MultiResult::Delete,
        MultiResult::SetData(zk_proto::SetDataResponse { stat: stat(8) }),
        MultiResult::Check,
    ];
    h.reply(
        reqs[0].0.xid,
        8,
        ErrorCode::Ok,
        Some(Response::Multi(MultiResponse { results })),
    );
    match h.completion(op) {
        Ok(Response::Multi(m)) => {
            assert_eq!(
                m.results[0],
                MultiResult::Create(CreateResponse { path: "/m1".into() })
            );
            assert_eq!(
                m.results[1],
                MultiResult::Create2(Create2Response {
                    path: "/m2".into(),
                    stat: stat(8)
                })
            );
        }
        other => panic!("{other:?}"),
    }

    // sync echoes the path; "/app/x" is "/".
    let op = h.submit(Request::Sync(SyncRequest { path: "/".into() }));
    let reqs = h.take_requests();
    h.reply(
        reqs[0].0.xid,
        8,
        ErrorCode::Ok,
        Some(Response::Sync(SyncResponse {
            path: "/app/x".into(),
        })),
    );
    assert_eq!(
        h.completion(op),
        Ok(Response::Sync(SyncResponse { path: "/".into() }))
    );

    // getEphemerals returns full paths.
    let op = h.submit(Request::GetEphemerals(GetEphemeralsRequest {
        prefix_path: "/".into(),
    }));
    let reqs = h.take_requests();
    h.reply(
        reqs[0].0.xid,
        8,
        ErrorCode::Ok,
        Some(Response::GetEphemerals(GetEphemeralsResponse {
            ephemerals: vec!["/app/x/e1".into(), "/app/x/a/e2".into(), "/app/x".into()],
        })),
    );
    assert_eq!(
        h.completion(op),
        Ok(Response::GetEphemerals(GetEphemeralsResponse {
            ephemerals: vec!["/e1".into(), "/a/e2".into(), "/".into()]
        }))
    );
}

#[test]
fn paths_outside_the_chroot_pass_through() {
    let mut h = chrooted();
    let op = h.submit(Request::Sync(SyncRequest { path: "/a".into() }));
    let reqs = h.take_requests();
    h.reply(
        reqs[0].0.xid,
        8,
        ErrorCode::Ok,
        Some(Response::Sync(SyncResponse {
            path: "/app/xy".into(),
        })),
    );
    assert_eq!(
        h.completion(op),
        Ok(Response::Sync(SyncResponse {
            path: "/app/xy".into()
        })),
        "a sibling sharing the prefix is not inside the chroot"
    );
}
