//! Unit tests for the model's trickier rules. The conformance suite
//! (`tests/tests/conformance.rs`) checks the same rules against a real 3.8 server; these pin
//! them down without one.

use zk_proto::{
    AddWatchRequest, AuthPacket, CheckVersionRequest, CheckWatchesRequest, CreateRequest,
    CreateTtlRequest, DeleteRequest, ExistsRequest, GetAclRequest, GetChildrenRequest,
    GetDataRequest, RemoveWatchesRequest, SetDataRequest,
};

use super::*;

const T0: i64 = 1_000_000;

fn create_req(path: &str, flags: i32) -> CreateRequest {
    CreateRequest {
        path: path.into(),
        data: Bytes::from_static(b"d"),
        acl: Acl::open_unsafe(),
        flags: CreateMode::from_raw(flags),
    }
}

fn create(path: &str, flags: i32) -> Request {
    Request::Create2(create_req(path, flags))
}

fn set(path: &str, data: &'static str) -> Request {
    Request::SetData(SetDataRequest {
        path: path.into(),
        data: Bytes::from_static(data.as_bytes()),
        version: -1,
    })
}

fn delete(path: &str) -> Request {
    Request::Delete(DeleteRequest {
        path: path.into(),
        version: -1,
    })
}

fn get(path: &str, watch: bool) -> Request {
    Request::GetData(GetDataRequest {
        path: path.into(),
        watch,
    })
}

fn exists(path: &str, watch: bool) -> Request {
    Request::Exists(ExistsRequest {
        path: path.into(),
        watch,
    })
}

fn children(path: &str, watch: bool) -> Request {
    Request::GetChildren(GetChildrenRequest {
        path: path.into(),
        watch,
    })
}

fn add_watch(path: &str, mode: AddWatchMode) -> Request {
    Request::AddWatch(AddWatchRequest {
        path: path.into(),
        mode,
    })
}

fn created_path(a: &Applied) -> String {
    match &a.result {
        Ok(Response::Create2(c)) => c.path.clone(),
        Ok(Response::Create(c)) => c.path.clone(),
        other => panic!("not a create: {other:?}"),
    }
}

fn events(notes: &[Notification], session: i64) -> Vec<(EventType, String)> {
    notes
        .iter()
        .filter(|n| n.session == session)
        .map(|n| (n.event.event_type, n.event.path.clone()))
        .collect()
}

fn setup() -> (Model, i64, i64) {
    let mut m = Model::new();
    let a = m.open_session(T0, 10_000).0;
    let b = m.open_session(T0, 10_000).0;
    (m, a, b)
}

#[test]
fn initial_tree_is_a_fresh_38_server() {
    let m = Model::new();
    assert_eq!(m.children("/"), Some(vec!["zookeeper".to_owned()]));
    assert_eq!(
        m.children("/zookeeper"),
        Some(vec!["config".to_owned(), "quota".to_owned()])
    );
    assert_eq!(m.node("/").map(|(_, s)| s.cversion), Some(-1));
    assert_eq!(m.node("/zookeeper").map(|(_, s)| s.cversion), Some(-2));
    assert_eq!(
        m.node("/zookeeper/config").map(|(_, s)| s.aversion),
        Some(-1)
    );
    assert_eq!(m.acl("/zookeeper/config"), Some(Acl::read_unsafe()));
    assert_eq!(m.last_zxid(), 0);
}

#[test]
fn sessions_timeouts_and_passwords() {
    let mut m = Model::new();
    let (a, pa) = m.open_session(T0, 1000);
    let (b, _) = m.open_session(T0, 100_000);
    assert_ne!(a, b);
    assert_eq!(m.last_zxid(), 2, "createSession is a transaction");
    assert_eq!(m.session_timeout(a), Some(4000));
    assert_eq!(m.session_timeout(b), Some(40_000));
    assert_eq!(pa.len(), 16);
    assert!(m.check_password(a, &pa));
    assert!(!m.check_password(b, &pa));
    // Deterministic: a second model hands out the same ids and passwords.
    let mut again = Model::new();
    assert_eq!(again.open_session(T0, 1000), (a, pa));
    m.close_session(T0, a);
    assert!(!m.is_alive(a));
    assert_eq!(
        m.apply(T0, a, &get("/", false)).result,
        Err(ErrorCode::SessionExpired)
    );
}

#[test]
fn every_write_consumes_a_zxid_even_when_it_fails() {
    let (mut m, a, _) = setup();
    let z = m.last_zxid();
    let ok = m.apply(T0, a, &create("/x", 0));
    assert_eq!(ok.zxid, z + 1);
    let dup = m.apply(T0, a, &create("/x", 0));
    assert_eq!((dup.zxid, dup.result), (z + 2, Err(ErrorCode::NodeExists)));
    let bad = m.apply(T0, a, &create("rel", 0));
    assert_eq!(
        (bad.zxid, bad.result),
        (z + 3, Err(ErrorCode::BadArguments))
    );
    let read = m.apply(T0, a, &get("/x", false));
    assert_eq!(read.zxid, z + 3, "reads report the last zxid");
    let empty = m.apply(T0, a, &Request::Multi(MultiRequest::default()));
    assert_eq!(empty.zxid, z + 4);
    let check = m.apply(
        T0,
        a,
        &Request::Check(CheckVersionRequest {
            path: "/x".into(),
            version: 9,
        }),
    );
    assert_eq!(
        (check.zxid, check.result),
        (z + 5, Err(ErrorCode::BadVersion))
    );
    let auth = m.apply(
        T0,
        a,
        &Request::Auth(AuthPacket {
            auth_type: 0,
            scheme: "digest".into(),
            auth: Bytes::from_static(b"u:p"),
        }),
    );
    assert_eq!((auth.zxid, auth.result), (0, Ok(Response::Empty)));
}

#[test]
fn path_checks_in_server_order() {
    let (mut m, a, _) = setup();
    let code = |m: &mut Model, r: Request| m.apply(T0, a, &r).result.err();
    m.apply(T0, a, &create("/a", 0));
    assert_eq!(code(&mut m, create("/a//b", 0)), Some(ErrorCode::NoNode));
    assert_eq!(
        code(&mut m, create("/a/", 0)),
        Some(ErrorCode::BadArguments)
    );
    assert_eq!(code(&mut m, create("/nope/", 0)), Some(ErrorCode::NoNode));
    assert_eq!(code(&mut m, create("/", 0)), Some(ErrorCode::NodeExists));
    assert_eq!(
        code(&mut m, delete("/zookeeper")),
        Some(ErrorCode::BadArguments)
    );
    assert_eq!(code(&mut m, delete("/a/")), Some(ErrorCode::NoNode));
    assert_eq!(code(&mut m, set("", "x")), Some(ErrorCode::BadArguments));
    assert_eq!(code(&mut m, get("rel", false)), Some(ErrorCode::NoNode));
    assert_eq!(
        code(&mut m, exists("/a\0", false)),
        Some(ErrorCode::BadArguments)
    );
    assert!(matches!(
        m.apply(T0, a, &exists("", false)).result,
        Ok(Response::Exists(_))
    ));
    let seq = m.apply(T0, a, &create("/a/", 2));
    assert_eq!(created_path(&seq), "/a/0000000000");
}

#[test]
fn sequence_numbers_count_creates_not_cversion() {
    let (mut m, a, _) = setup();
    m.apply(T0, a, &create("/q", 0));
    let first = created_path(&m.apply(T0, a, &create("/q/s-", 2)));
    m.apply(T0, a, &delete(&first));
    m.apply(T0, a, &create("/q/plain", 0));
    let next = created_path(&m.apply(T0, a, &create("/q/s-", 3)));
    assert_eq!(first, "/q/s-0000000000");
    assert_eq!(next, "/q/s-0000000002");
    let stat = m.node("/q").map(|(_, s)| s).unwrap_or_default();
    assert_eq!(
        (stat.cversion, stat.num_children),
        (4, 2),
        "2 × 3 creates − 2"
    );
}

#[test]
fn sequence_counter_sticks_at_i32_max() {
    let (mut m, a, _) = setup();
    m.apply(T0, a, &create("/q", 0));
    if let Some(n) = m.nodes.get_mut("/q") {
        n.cversion = i32::MAX;
    }
    let p = created_path(&m.apply(T0, a, &create("/q/s-", 2)));
    assert_eq!(p, "/q/s-2147483647");
    assert_eq!(
        m.apply(T0, a, &create("/q/s-", 2)).result,
        Err(ErrorCode::NodeExists)
    );
}

#[test]
fn create_opcode_decides_container_and_ttl_rules() {
    let (mut m, a, _) = setup();
    let code = |m: &mut Model, r: Request| m.apply(T0, a, &r).result.err();
    let ttl = |path: &str, flags: i32, ttl: i64| {
        Request::CreateTtl(CreateTtlRequest {
            path: path.into(),
            data: Bytes::new(),
            acl: Acl::open_unsafe(),
            flags: CreateMode::from_raw(flags),
            ttl,
        })
    };
    assert_eq!(code(&mut m, create("/x", 7)), Some(ErrorCode::BadArguments));
    assert_eq!(code(&mut m, create("/x", 5)), Some(ErrorCode::BadArguments));
    assert_eq!(code(&mut m, ttl("/x", 5, 0)), Some(ErrorCode::BadArguments));
    assert_eq!(
        code(&mut m, ttl("/x", 5, MAX_TTL + 1)),
        Some(ErrorCode::BadArguments)
    );
    assert_eq!(
        code(&mut m, ttl("/x", 0, 10)),
        Some(ErrorCode::BadArguments)
    );
    // The real server accepts this one and then crashes: refuse it.
    assert_eq!(
        code(&mut m, ttl("/x", 0, -1)),
        Some(ErrorCode::BadArguments)
    );
    assert_eq!(code(&mut m, ttl("/t", 5, MAX_TTL)), None);
    assert_eq!(code(&mut m, create("/flag4", 4)), None);
    assert_eq!(
        code(&mut m, Request::CreateContainer(create_req("/c", 1))),
        None
    );
    assert!(
        m.containers.contains("/c"),
        "createContainer makes a container"
    );
    assert!(!m.containers.contains("/flag4"), "flags 4 on create do not");
    assert!(m.ephemerals(a).is_empty());
    let mut off = Model::with_config(ModelConfig {
        extended_types: false,
        ..ModelConfig::default()
    });
    let s = off.open_session(T0, 10_000).0;
    assert_eq!(
        off.apply(T0, s, &ttl("/t", 5, 100)).result,
        Err(ErrorCode::Unimplemented)
    );
}

#[test]
fn failed_multi_rolls_back_everything() {
    let (mut m, a, b) = setup();
    m.apply(T0, a, &create("/n", 0));
    m.apply(T0, b, &get("/n", true));
    let before_paths = m.paths();
    let ops = vec![
        MultiOp::Create(create_req("/n/s-", 3)),
        MultiOp::SetData(SetDataRequest {
            path: "/n".into(),
            data: Bytes::from_static(b"x"),
            version: -1,
        }),
        MultiOp::Delete(DeleteRequest {
            path: "/missing".into(),
            version: -1,
        }),
        MultiOp::Check(CheckVersionRequest {
            path: "/n".into(),
            version: -1,
        }),
    ];
    let applied = m.apply(T0, a, &Request::Multi(MultiRequest { ops }));
    let Ok(Response::Multi(r)) = &applied.result else {
        panic!("{applied:?}");
    };
    assert_eq!(
        r.results,
        vec![
            MultiResult::Error(ErrorCode::Ok),
            MultiResult::Error(ErrorCode::Ok),
            MultiResult::Error(ErrorCode::NoNode),
            MultiResult::Error(ErrorCode::RuntimeInconsistency),
        ]
    );
    assert!(applied.notifications.is_empty());
    assert_eq!(m.paths(), before_paths);
    assert!(m.ephemerals(a).is_empty());
    assert_eq!(
        m.node("/n").map(|(d, s)| (d, s.version, s.cversion)),
        Some((Bytes::from_static(b"d"), 0, 0))
    );
    // The sequence counter was rolled back too, and b's watch is still there.
    assert_eq!(
        created_path(&m.apply(T0, a, &create("/n/s-", 2))),
        "/n/s-0000000000"
    );
    let n = m.apply(T0, a, &set("/n", "y"));
    assert_eq!(
        events(&n.notifications, b),
        vec![(EventType::NodeDataChanged, "/n".into())]
    );
}

#[test]
fn multi_results_follow_the_flags_not_the_opcode() {
    let (mut m, a, _) = setup();
    let ops = vec![
        MultiOp::Create2(create_req("/p", 0)),
        MultiOp::CreateContainer(create_req("/p/box", 4)),
        MultiOp::Create2(create_req("/p/c4", 4)),
        MultiOp::CreateContainer(create_req("/p/eph", 1)),
    ];
    let applied = m.apply(T0, a, &Request::Multi(MultiRequest { ops }));
    let Ok(Response::Multi(r)) = applied.result else {
        panic!("multi failed");
    };
    assert!(matches!(r.results[0], MultiResult::Create(_)));
    assert!(matches!(r.results[1], MultiResult::Create2(_)));
    assert!(matches!(r.results[2], MultiResult::Create2(_)));
    assert!(matches!(r.results[3], MultiResult::Create(_)));
    assert!(m.containers.contains("/p/c4"));
    assert_eq!(m.ephemerals(a), vec!["/p/eph".to_owned()]);
    let ttl_flags = vec![MultiOp::Create2(create_req("/t", 5))];
    let bad = m.apply(T0, a, &Request::Multi(MultiRequest { ops: ttl_flags }));
    assert_eq!(bad.result, Err(ErrorCode::MarshallingError));
    let read = vec![MultiOp::GetData(GetDataRequest {
        path: "/p".into(),
        watch: false,
    })];
    let z = m.last_zxid();
    let mixed = m.apply(T0, a, &Request::Multi(MultiRequest { ops: read.clone() }));
    assert_eq!(
        (mixed.zxid, mixed.result),
        (z + 1, Err(ErrorCode::MarshallingError))
    );
    let mr = m.apply(T0, a, &Request::MultiRead(MultiRequest { ops: read }));
    assert_eq!(mr.zxid, z + 1);
    assert!(matches!(mr.result, Ok(Response::Multi(_))));
}

#[test]
fn one_shot_watches_fire_once_and_before_the_reply() {
    let (mut m, a, b) = setup();
    m.apply(T0, b, &exists("/w", true));
    let c = m.apply(T0, a, &create("/w", 0));
    assert_eq!(
        events(&c.notifications, b),
        vec![(EventType::NodeCreated, "/w".into())]
    );
    m.apply(T0, b, &get("/w", true));
    m.apply(T0, b, &children("/w", true));
    m.apply(T0, a, &get("/w", true));
    let s = m.apply(T0, a, &set("/w", "1"));
    assert_eq!(
        events(&s.notifications, a),
        vec![(EventType::NodeDataChanged, "/w".into())]
    );
    assert_eq!(
        events(&s.notifications, b),
        vec![(EventType::NodeDataChanged, "/w".into())]
    );
    assert!(m.apply(T0, a, &set("/w", "2")).notifications.is_empty());
    // b still has its child watch: deleting /w gives one NodeDeleted, not two.
    m.apply(T0, b, &get("/w", true));
    let d = m.apply(T0, a, &delete("/w"));
    assert_eq!(
        events(&d.notifications, b),
        vec![(EventType::NodeDeleted, "/w".into())]
    );
}

#[test]
fn persistent_and_recursive_watches() {
    let (mut m, a, b) = setup();
    m.apply(T0, b, &add_watch("/r", AddWatchMode::PersistentRecursive));
    m.apply(T0, b, &add_watch("/p", AddWatchMode::Persistent));
    m.apply(T0, a, &create("/r", 0));
    let deep = m.apply(T0, a, &create("/r/x", 0));
    assert_eq!(
        events(&deep.notifications, b),
        vec![(EventType::NodeCreated, "/r/x".into())]
    );
    let p = m.apply(T0, a, &create("/p", 0));
    assert_eq!(
        events(&p.notifications, b),
        vec![(EventType::NodeCreated, "/p".into())]
    );
    let kid = m.apply(T0, a, &create("/p/k", 0));
    assert_eq!(
        events(&kid.notifications, b),
        vec![(EventType::NodeChildrenChanged, "/p".into())]
    );
    // 3.8: a one-shot registration replaces the persistent mode in that manager only.
    m.apply(T0, b, &get("/p", true));
    assert_eq!(m.apply(T0, a, &set("/p", "1")).notifications.len(), 1);
    assert!(m.apply(T0, a, &set("/p", "2")).notifications.is_empty());
    let kid2 = m.apply(T0, a, &create("/p/k2", 0));
    assert_eq!(
        kid2.notifications.len(),
        1,
        "the child manager is still persistent"
    );
}

#[test]
fn notifications_need_read_permission() {
    let (mut m, a, b) = setup();
    m.add_auth(a, "digest", b"alice:secret").unwrap();
    let acl = vec![Acl::new(
        Perms::ALL,
        "digest",
        "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=",
    )];
    m.apply(
        T0,
        a,
        &Request::Create2(CreateRequest {
            acl,
            ..create_req("/s", 0)
        }),
    );
    m.apply(T0, b, &exists("/s", true));
    assert_eq!(
        m.apply(T0, b, &get("/s", true)).result,
        Err(ErrorCode::NoAuth)
    );
    assert!(m.apply(T0, a, &set("/s", "x")).notifications.is_empty());
    // The filtered watch was consumed all the same.
    m.apply(
        T0,
        a,
        &Request::SetAcl(zk_proto::SetAclRequest {
            path: "/s".into(),
            acl: Acl::open_unsafe(),
            version: -1,
        }),
    );
    assert!(m.apply(T0, a, &set("/s", "y")).notifications.is_empty());
    let acl = m.apply(T0, b, &Request::GetAcl(GetAclRequest { path: "/s".into() }));
    assert!(matches!(acl.result, Ok(Response::GetAcl(_))));
}

#[test]
fn acl_masking_and_auth_schemes() {
    let (mut m, a, b) = setup();
    m.add_auth(a, "digest", b"alice:secret").unwrap();
    assert_eq!(m.add_auth(b, "ip", b"anything"), Ok(()));
    assert_eq!(m.add_auth(b, "nosuch", b"x"), Err(ErrorCode::AuthFailed));
    let acl = vec![
        Acl::new(Perms::ALL, "auth", ""),
        Acl::new(Perms::READ, "world", "anyone"),
    ];
    m.apply(
        T0,
        a,
        &Request::Create2(CreateRequest {
            acl,
            ..create_req("/m", 0)
        }),
    );
    let get_acl = Request::GetAcl(GetAclRequest { path: "/m".into() });
    let Ok(Response::GetAcl(mine)) = m.apply(T0, a, &get_acl).result else {
        panic!("getACL");
    };
    assert_eq!(mine.acl[0].id.id, "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=");
    let Ok(Response::GetAcl(theirs)) = m.apply(T0, b, &get_acl).result else {
        panic!("getACL");
    };
    assert_eq!(theirs.acl[0].id.id, "alice:x");
    let Ok(Response::WhoAmI(w)) = m.apply(T0, a, &Request::WhoAmI).result else {
        panic!("whoAmI");
    };
    let who: Vec<_> = w
        .client_info
        .iter()
        .map(|c| (c.auth_scheme.as_str(), c.user.as_str()))
        .collect();
    assert_eq!(who, [("digest", "alice"), ("ip", "127.0.0.1")]);
}

#[test]
fn check_watches_sees_any_sessions_watch() {
    let (mut m, a, b) = setup();
    m.apply(T0, a, &create("/c", 0));
    m.apply(T0, b, &get("/c", true));
    let check = Request::CheckWatches(CheckWatchesRequest {
        path: "/c".into(),
        watcher_type: WatcherType::Data,
    });
    let remove = |t| {
        Request::RemoveWatches(RemoveWatchesRequest {
            path: "/c".into(),
            watcher_type: t,
        })
    };
    assert_eq!(m.apply(T0, a, &check).result, Ok(Response::Empty));
    assert_eq!(
        m.apply(T0, a, &remove(WatcherType::Data)).result,
        Err(ErrorCode::NoWatcher)
    );
    assert_eq!(
        m.apply(T0, b, &remove(WatcherType::Persistent)).result,
        Err(ErrorCode::MarshallingError)
    );
    assert_eq!(
        m.apply(T0, b, &remove(WatcherType::Any)).result,
        Ok(Response::Empty)
    );
    assert!(m.apply(T0, a, &set("/c", "x")).notifications.is_empty());
}

#[test]
fn close_notifies_the_closer_expiry_does_not() {
    for expire in [false, true] {
        let (mut m, a, b) = setup();
        m.apply(T0, a, &create("/dir", 0));
        let e = created_path(&m.apply(T0, b, &create("/dir/e-", 3)));
        m.apply(T0, b, &create("/e2", 1));
        m.apply(T0, a, &children("/dir", true));
        m.apply(T0, b, &get(&e, true));
        let z = m.last_zxid();
        let notes = if expire {
            m.expire_session(T0 + 5, b)
        } else {
            m.close_session(T0 + 5, b)
        };
        assert_eq!(m.last_zxid(), z + 1, "one transaction");
        assert_eq!(
            events(&notes, a),
            vec![(EventType::NodeChildrenChanged, "/dir".into())]
        );
        let own = events(&notes, b);
        assert_eq!(own.is_empty(), expire, "{own:?}");
        assert!(m.node(&e).is_none() && m.node("/e2").is_none());
        assert_eq!(m.node("/dir").map(|(_, s)| s.pzxid), Some(z + 1));
        assert!(!m.is_alive(b));
        assert!(m.close_session(T0, b).is_empty());
    }
}

#[test]
fn reaper_rules() {
    let (mut m, a, b) = setup();
    let container = |p: &str| Request::CreateContainer(create_req(p, 4));
    m.apply(T0, a, &container("/never"));
    m.apply(T0, a, &container("/outer"));
    m.apply(T0, a, &container("/outer/inner"));
    m.apply(T0, a, &create("/outer/inner/k", 0));
    m.apply(T0, a, &delete("/outer/inner/k"));
    let ttl = Request::CreateTtl(CreateTtlRequest {
        path: "/t".into(),
        data: Bytes::new(),
        acl: Acl::open_unsafe(),
        flags: CreateMode::PersistentWithTtl,
        ttl: 100,
    });
    m.apply(T0, a, &ttl);
    m.apply(T0, b, &exists("/t", true));
    // Not modified for exactly the ttl: not yet.
    assert!(m.reap(T0 + 100).is_empty());
    assert!(m.node("/t").is_some());
    assert!(
        m.node("/outer/inner").is_none(),
        "the used, empty container went"
    );
    assert!(
        m.node("/outer").is_some(),
        "its parent goes in the next pass"
    );
    let notes = m.reap(T0 + 101);
    assert_eq!(
        events(&notes, b),
        vec![(EventType::NodeDeleted, "/t".into())]
    );
    assert!(m.node("/outer").is_none());
    assert!(m.node("/never").is_some());
}

#[test]
fn set_watches_catches_up() {
    let (mut m, a, b) = setup();
    for p in ["/data", "/same", "/gone", "/kids"] {
        m.apply(T0, a, &create(p, 0));
    }
    let seen = m.last_zxid();
    m.apply(T0, a, &set("/data", "x"));
    m.apply(T0, a, &delete("/gone"));
    m.apply(T0, a, &create("/kids/k", 0));
    m.apply(T0, a, &create("/born", 0));
    let req = SetWatches2 {
        relative_zxid: 0,
        data_watches: vec!["/data".into(), "/same".into(), "/gone".into()],
        exist_watches: vec!["/born".into(), "/unborn".into()],
        child_watches: vec!["/kids".into()],
        persistent_watches: vec!["/same".into()],
        persistent_recursive_watches: Vec::new(),
    };
    let notes = m.set_watches(b, seen, &req);
    assert_eq!(
        events(&notes, b),
        vec![
            (EventType::NodeDataChanged, "/data".into()),
            (EventType::NodeDeleted, "/gone".into()),
            (EventType::NodeCreated, "/born".into()),
            (EventType::NodeChildrenChanged, "/kids".into()),
        ]
    );
    // "/same" was re-registered, then made persistent by the later list.
    assert_eq!(m.apply(T0, a, &set("/same", "1")).notifications.len(), 1);
    assert_eq!(m.apply(T0, a, &set("/same", "2")).notifications.len(), 1);
    assert_eq!(m.apply(T0, a, &create("/unborn", 0)).notifications.len(), 1);
    m.drop_watches(b);
    assert!(m.apply(T0, a, &set("/same", "3")).notifications.is_empty());
}
