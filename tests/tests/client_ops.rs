//! Every `Client` operation and its error paths against a real server (the shared one, each
//! test under its own `unique_path`), plus chroot, auth/ACLs, TTL and container nodes, the
//! `_async` forms and a heavily pipelined load.

#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use zk_integration_tests::connect_to as connect;
use zk_integration_tests::{DedicatedServer, shared_server, unique_path};
use zk_proto::ErrorCode;
use zk_session::{
    Acl, Client, CreateMode, CreateOptions, Error, EventType, Op, OpResult, Perms, ReadOp,
    ReadResult, SessionState, Stat, WatcherType,
};

/// A connected client and a fresh persistent node to work under.
fn setup(prefix: &str) -> (Client, String) {
    let zk = connect(&shared_server().addr);
    let root = unique_path(prefix);
    zk.create(&root, b"", &CreateOptions::persistent()).unwrap();
    (zk, root)
}

fn opts(mode: CreateMode) -> CreateOptions {
    CreateOptions::new(mode)
}

/// The 10-digit sequence suffix of a sequential node's name after `prefix`.
fn seq_suffix(created: &str, prefix: &str) -> u32 {
    let suffix = created
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{created} does not start with {prefix}"));
    assert_eq!(suffix.len(), 10, "suffix of {created}");
    assert!(suffix.bytes().all(|b| b.is_ascii_digit()), "{created}");
    suffix.parse().unwrap()
}

/// The `digest` scheme id for `user:password`: `user:base64(sha1("user:password"))`, as the
/// simulator's model computes it (its SHA-1 has known-answer tests).
fn digest_id(user: &str, password: &str) -> String {
    zk_recipes::sim::model::digest_id(format!("{user}:{password}").as_bytes())
}

#[test]
fn digest_helper_matches_the_protocol_example() {
    assert_eq!(
        digest_id("alice", "secret"),
        "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E="
    );
}

// ------------------------------------------------------------------ a tiny block_on

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

// ------------------------------------------------------------------ create

#[test]
fn create_in_every_mode() {
    let (zk, root) = setup("ops-create");
    let sid = zk.session_id();

    // persistent: the returned Stat describes the new node
    let p = format!("{root}/persistent");
    let (created, stat) = zk
        .create(&p, b"data", &CreateOptions::persistent())
        .unwrap();
    assert_eq!(created, p);
    assert_eq!(stat.version, 0);
    assert_eq!(stat.cversion, 0);
    assert_eq!(stat.aversion, 0);
    assert_eq!(stat.data_length, 4);
    assert_eq!(stat.num_children, 0);
    assert_eq!(stat.ephemeral_owner, 0);
    assert_eq!(stat.czxid, stat.mzxid);
    assert_eq!(stat.czxid, stat.pzxid);
    assert!(stat.ctime > 0 && stat.ctime == stat.mtime);
    assert_eq!(zk.exists(&p).unwrap(), Some(stat));
    let (data, stat2) = zk.get_data(&p).unwrap();
    assert_eq!(&data[..], b"data");
    assert_eq!(stat2, stat);

    // ephemeral: owned by this session
    let e = format!("{root}/ephemeral");
    let (created, stat) = zk.create(&e, b"", &CreateOptions::ephemeral()).unwrap();
    assert_eq!(created, e);
    assert_eq!(stat.ephemeral_owner, sid);
    assert_eq!(stat.data_length, 0);

    // sequential, both kinds: a 10-digit suffix from the parent's create counter (2 children
    // created so far)
    let prefix = format!("{root}/ps-");
    let (created, stat) = zk
        .create(&prefix, b"", &opts(CreateMode::PersistentSequential))
        .unwrap();
    assert_eq!(seq_suffix(&created, &prefix), 2);
    assert_eq!(stat.ephemeral_owner, 0);
    let prefix = format!("{root}/es-");
    let (created, stat) = zk
        .create(&prefix, b"", &opts(CreateMode::EphemeralSequential))
        .unwrap();
    assert_eq!(seq_suffix(&created, &prefix), 3);
    assert_eq!(stat.ephemeral_owner, sid);
    // a trailing slash: the name is just the number
    let seq_parent = format!("{root}/persistent/");
    let (created, _) = zk
        .create(&seq_parent, b"", &opts(CreateMode::PersistentSequential))
        .unwrap();
    assert_eq!(seq_suffix(&created, &seq_parent), 0);

    // container: reported like a persistent node
    let c = format!("{root}/container");
    let (created, stat) = zk.create(&c, b"c", &opts(CreateMode::Container)).unwrap();
    assert_eq!(created, c);
    assert_eq!(stat.ephemeral_owner, 0);
    assert_eq!(stat.data_length, 1);

    // TTL, both kinds (the shared server has extendedTypesEnabled=true)
    let t = format!("{root}/ttl");
    let ttl = opts(CreateMode::PersistentWithTtl).with_ttl(Duration::from_secs(3600));
    let (created, stat) = zk.create(&t, b"t", &ttl).unwrap();
    assert_eq!(created, t);
    assert_eq!(stat.ephemeral_owner, 0, "the server hides the TTL marker");
    let prefix = format!("{root}/ttls-");
    let ttl_seq = opts(CreateMode::PersistentSequentialWithTtl).with_ttl(Duration::from_secs(3600));
    let (created, _) = zk.create(&prefix, b"", &ttl_seq).unwrap();
    assert_eq!(seq_suffix(&created, &prefix), 6);

    // TTL options are checked client-side
    assert!(matches!(
        zk.create(
            &format!("{root}/x"),
            b"",
            &opts(CreateMode::PersistentWithTtl)
        ),
        Err(Error::InvalidUse(_))
    ));
    assert!(matches!(
        zk.create(
            &format!("{root}/x"),
            b"",
            &CreateOptions::persistent().with_ttl(Duration::from_secs(1))
        ),
        Err(Error::InvalidUse(_))
    ));

    let (children, stat) = zk.get_children_with_stat(&root).unwrap();
    assert_eq!(children.len(), 7, "{children:?}");
    assert_eq!(stat.num_children, 7);
    zk.delete_recursive(&root).unwrap();
}

#[test]
fn create_errors() {
    let (zk, root) = setup("ops-create-err");
    let p = format!("{root}/n");
    zk.create(&p, b"", &CreateOptions::persistent()).unwrap();
    assert_eq!(
        zk.create(&p, b"", &CreateOptions::persistent()),
        Err(Error::NodeExists)
    );
    assert_eq!(
        zk.create(
            &format!("{root}/missing/n"),
            b"",
            &CreateOptions::persistent()
        ),
        Err(Error::NoNode)
    );
    let e = format!("{root}/eph");
    zk.create(&e, b"", &CreateOptions::ephemeral()).unwrap();
    assert_eq!(
        zk.create(&format!("{e}/child"), b"", &CreateOptions::persistent()),
        Err(Error::NoChildrenForEphemerals)
    );
    assert_eq!(
        zk.create(
            &format!("{root}/noacl"),
            b"",
            &CreateOptions::persistent().with_acl(vec![])
        ),
        Err(Error::InvalidAcl)
    );
    // `auth` ACL without credentials
    assert_eq!(
        zk.create(
            &format!("{root}/noauth"),
            b"",
            &CreateOptions::persistent().with_acl(Acl::creator_all())
        ),
        Err(Error::InvalidAcl)
    );
    // the session is still fine after all these
    assert!(zk.exists(&p).unwrap().is_some());
    zk.delete_recursive(&root).unwrap();
}

#[test]
fn invalid_paths_are_rejected_before_sending() {
    // Against a port nobody listens on: a request that were sent would wait for a
    // connection; an invalid path fails at once.
    let dead = Client::builder("127.0.0.1:1")
        .unwrap()
        .session_timeout(Duration::from_secs(30))
        .connect_lazy()
        .unwrap();
    let bad = [
        "",
        "relative",
        "/trailing/",
        "//double",
        "/a//b",
        "/a/./b",
        "/a/../b",
        "/nul\0",
        "/ctl\u{1}",
    ];
    let t0 = Instant::now();
    for path in bad {
        let r = dead.create(path, b"", &CreateOptions::persistent());
        assert!(
            matches!(r, Err(Error::InvalidPath { .. })),
            "{path:?}: {r:?}"
        );
        for r in [
            dead.exists(path).map(|_| ()),
            dead.get_data(path).map(|_| ()),
            dead.delete(path, None),
            dead.set_data(path, b"", None).map(|_| ()),
            dead.get_children(path).map(|_| ()),
            dead.get_acl(path).map(|_| ()),
            dead.sync(path),
            dead.multi(vec![Op::check(path, None)]).map(|_| ()),
        ] {
            assert!(
                matches!(r, Err(Error::InvalidPath { .. })),
                "{path:?}: {r:?}"
            );
        }
    }
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    assert_eq!(dead.state(), SessionState::Connecting);
    drop(dead);

    // and on a live session, which stays usable
    let (zk, root) = setup("ops-badpath");
    assert!(matches!(
        zk.create(&format!("{root}/x/"), b"", &CreateOptions::persistent()),
        Err(Error::InvalidPath { .. })
    ));
    assert!(zk.exists(&root).unwrap().is_some());
    zk.delete(&root, None).unwrap();
}

// ------------------------------------------------------------------ delete, exists, data

#[test]
fn delete_exists_and_data_versions() {
    let (zk, root) = setup("ops-data");
    let p = format!("{root}/n");
    assert_eq!(zk.exists(&p).unwrap(), None);
    assert_eq!(zk.delete(&p, None), Err(Error::NoNode));
    assert_eq!(zk.get_data(&p).map(|_| ()), Err(Error::NoNode));
    assert_eq!(zk.set_data(&p, b"x", None).map(|_| ()), Err(Error::NoNode));

    let (_, s0) = zk.create(&p, b"v0", &CreateOptions::persistent()).unwrap();
    let s1 = zk.set_data(&p, b"v1", Some(0)).unwrap();
    assert_eq!(s1.version, 1);
    assert_eq!(s1.czxid, s0.czxid);
    assert!(s1.mzxid > s0.mzxid);
    assert_eq!(s1.data_length, 2);
    assert_eq!(zk.set_data(&p, b"v?", Some(0)), Err(Error::BadVersion));
    let s2 = zk.set_data(&p, b"v22", None).unwrap();
    assert_eq!(s2.version, 2);
    let (data, stat) = zk.get_data(&p).unwrap();
    assert_eq!(&data[..], b"v22");
    assert_eq!(stat, s2);
    assert_eq!(zk.exists(&p).unwrap(), Some(s2));

    // empty data reads back empty
    zk.set_data(&p, b"", None).unwrap();
    assert!(zk.get_data(&p).unwrap().0.is_empty());

    // delete: NotEmpty, BadVersion, then success
    let child = format!("{p}/c");
    zk.create(&child, b"", &CreateOptions::persistent())
        .unwrap();
    assert_eq!(zk.delete(&p, None), Err(Error::NotEmpty));
    zk.delete(&child, Some(0)).unwrap();
    assert_eq!(zk.delete(&p, Some(1)), Err(Error::BadVersion));
    zk.delete(&p, Some(3)).unwrap();
    assert_eq!(zk.exists(&p).unwrap(), None);
    zk.delete(&root, None).unwrap();
}

#[test]
fn acl_get_and_set() {
    let (zk, root) = setup("ops-acl");
    let (acl, stat) = zk.get_acl(&root).unwrap();
    assert_eq!(acl, Acl::open_unsafe());
    assert_eq!(stat.aversion, 0);
    let stat = zk.set_acl(&root, Acl::open_unsafe(), Some(0)).unwrap();
    assert_eq!(stat.aversion, 1);
    assert_eq!(stat.version, 0, "setACL leaves the data version alone");
    assert_eq!(
        zk.set_acl(&root, Acl::open_unsafe(), Some(0)),
        Err(Error::BadVersion)
    );
    let read_only = Acl::read_unsafe();
    let stat = zk.set_acl(&root, read_only.clone(), Some(1)).unwrap();
    assert_eq!(stat.aversion, 2);
    let (acl, stat) = zk.get_acl(&root).unwrap();
    assert_eq!(acl, read_only);
    assert_eq!(stat.aversion, 2);
    // READ only: writes are denied
    assert_eq!(zk.set_data(&root, b"x", None), Err(Error::NoAuth));
    assert_eq!(
        zk.create(&format!("{root}/c"), b"", &CreateOptions::persistent()),
        Err(Error::NoAuth)
    );
    // ADMIN is missing too, so the ACL cannot be changed back
    assert_eq!(
        zk.set_acl(&root, Acl::open_unsafe(), None),
        Err(Error::NoAuth)
    );
    assert_eq!(
        zk.get_acl("/nonexistent-acl-node").map(|_| ()),
        Err(Error::NoNode)
    );
    assert_eq!(
        zk.set_acl("/nonexistent-acl-node", Acl::open_unsafe(), None),
        Err(Error::NoNode)
    );
    // an empty ACL is rejected
    let (zk2, root2) = setup("ops-acl2");
    assert_eq!(zk2.set_acl(&root2, vec![], None), Err(Error::InvalidAcl));
    zk2.delete(&root2, None).unwrap();
    // the READ-only root stays behind (no DELETE on its parent is needed: "/" is open)
    zk.delete(&root, None).unwrap();
}

#[test]
fn children_counts_and_ephemerals() {
    let (zk, root) = setup("ops-children");
    assert_eq!(zk.get_children(&root).unwrap(), Vec::<String>::new());
    for name in ["a", "b", "c"] {
        zk.create(&format!("{root}/{name}"), b"", &CreateOptions::persistent())
            .unwrap();
    }
    zk.create(&format!("{root}/a/x"), b"", &CreateOptions::persistent())
        .unwrap();
    zk.create(&format!("{root}/a/x/y"), b"", &CreateOptions::ephemeral())
        .unwrap();
    zk.create(&format!("{root}/b/e"), b"", &CreateOptions::ephemeral())
        .unwrap();

    let mut children = zk.get_children(&root).unwrap();
    children.sort();
    assert_eq!(children, ["a", "b", "c"]);
    let (mut children, stat) = zk.get_children_with_stat(&root).unwrap();
    children.sort();
    assert_eq!(children, ["a", "b", "c"]);
    assert_eq!(stat.num_children, 3);
    assert_eq!(stat.cversion, 3);
    assert_eq!(zk.get_children(&format!("{root}/zz")), Err(Error::NoNode));
    assert_eq!(
        zk.get_children_with_stat(&format!("{root}/zz")).map(|_| ()),
        Err(Error::NoNode)
    );

    assert_eq!(zk.get_all_children_number(&root).unwrap(), 6);
    assert_eq!(zk.get_all_children_number(&format!("{root}/a")).unwrap(), 2);
    assert_eq!(zk.get_all_children_number(&format!("{root}/c")).unwrap(), 0);
    assert_eq!(
        zk.get_all_children_number(&format!("{root}/zz")),
        Err(Error::NoNode)
    );

    let mut eph = zk.get_ephemerals(&root).unwrap();
    eph.sort();
    assert_eq!(eph, [format!("{root}/a/x/y"), format!("{root}/b/e")]);
    assert_eq!(
        zk.get_ephemerals(&format!("{root}/b")).unwrap(),
        [format!("{root}/b/e")]
    );
    assert!(zk.get_ephemerals(&format!("{root}/c")).unwrap().is_empty());
    // another session sees none of them as its own
    let other = connect(&shared_server().addr);
    assert!(other.get_ephemerals(&root).unwrap().is_empty());

    zk.sync(&root).unwrap();
    zk.sync("/").unwrap();
    zk.delete_recursive(&root).unwrap();
    assert_eq!(zk.exists(&root).unwrap(), None);
}

// ------------------------------------------------------------------ multi

#[test]
fn multi_success_and_atomic_failure() {
    let (zk, root) = setup("ops-multi");
    let n = format!("{root}/n");
    zk.create(&n, b"n0", &CreateOptions::persistent()).unwrap();
    let m = format!("{root}/m");
    let seq = format!("{root}/s-");
    let results = zk
        .multi(vec![
            Op::create(&m, "m0", CreateOptions::persistent()),
            Op::check(&n, Some(0)),
            Op::set_data(&m, "m1", Some(0)),
            Op::create(&seq, "", opts(CreateMode::PersistentSequential)),
            Op::set_data(&n, "n1", None),
            Op::delete(&m, Some(1)),
        ])
        .unwrap();
    assert_eq!(results.len(), 6);
    match &results[0] {
        OpResult::Create { path, stat } => {
            assert_eq!(path, &m);
            if let Some(stat) = stat {
                assert_eq!(stat.version, 0);
            }
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(results[1], OpResult::Check);
    match &results[2] {
        OpResult::SetData(stat) => assert_eq!(stat.version, 1),
        other => panic!("{other:?}"),
    }
    let seq_name = match &results[3] {
        OpResult::Create { path, .. } => {
            seq_suffix(path, &seq);
            path.clone()
        }
        other => panic!("{other:?}"),
    };
    assert!(matches!(&results[4], OpResult::SetData(s) if s.version == 1));
    assert_eq!(results[5], OpResult::Delete);
    assert_eq!(zk.exists(&m).unwrap(), None);
    assert!(zk.exists(&seq_name).unwrap().is_some());
    assert_eq!(&zk.get_data(&n).unwrap().0[..], b"n1");

    // an empty multi is legal
    assert_eq!(zk.multi(vec![]).unwrap(), vec![]);

    // a failing op: nothing applied, the error names it
    let before = zk.get_children_with_stat(&root).unwrap();
    let (_, n_before) = zk.get_data(&n).unwrap();
    let x = format!("{root}/x");
    let r = zk.multi(vec![
        Op::create(&x, "x", CreateOptions::persistent()),
        Op::set_data(&n, "n2", None),
        Op::delete(&format!("{root}/nope"), None),
        Op::create(&format!("{root}/y"), "", CreateOptions::persistent()),
    ]);
    assert_eq!(
        r,
        Err(Error::MultiFailed {
            index: 2,
            code: ErrorCode::NoNode
        })
    );
    let r = zk.multi(vec![
        Op::create(&x, "x", CreateOptions::persistent()),
        Op::check(&n, Some(0)),
    ]);
    assert_eq!(
        r,
        Err(Error::MultiFailed {
            index: 1,
            code: ErrorCode::BadVersion
        })
    );
    let r = zk.multi(vec![Op::create(&n, "", CreateOptions::persistent())]);
    assert_eq!(
        r,
        Err(Error::MultiFailed {
            index: 0,
            code: ErrorCode::NodeExists
        })
    );
    assert_eq!(
        zk.exists(&x).unwrap(),
        None,
        "the failed multi created nothing"
    );
    assert_eq!(
        zk.get_data(&n).unwrap(),
        (Bytes::from_static(b"n1"), n_before)
    );
    let after = zk.get_children_with_stat(&root).unwrap();
    assert_eq!(before.0, after.0);
    assert_eq!(before.1.cversion, after.1.cversion);

    // multi_async
    let c = zk.multi_async(vec![Op::check(&n, Some(1))]);
    assert_eq!(c.wait().unwrap(), vec![OpResult::Check]);
    zk.delete_recursive(&root).unwrap();
}

#[test]
fn multi_read_mixes_results() {
    let (zk, root) = setup("ops-multiread");
    let a = format!("{root}/a");
    let (_, stat_a) = zk.create(&a, b"A", &CreateOptions::persistent()).unwrap();
    zk.create(&format!("{a}/kid"), b"", &CreateOptions::persistent())
        .unwrap();
    let stat_a = Stat {
        cversion: 1,
        num_children: 1,
        pzxid: zk.exists(&a).unwrap().unwrap().pzxid,
        ..stat_a
    };
    let results = zk
        .multi_read(vec![
            ReadOp::GetData(a.clone()),
            ReadOp::GetChildren(a.clone()),
            ReadOp::GetData(format!("{root}/missing")),
            ReadOp::GetChildren(format!("{root}/missing")),
            ReadOp::GetChildren(root.clone()),
        ])
        .unwrap();
    assert_eq!(results.len(), 5);
    assert_eq!(
        results[0],
        Ok(ReadResult::Data(Bytes::from_static(b"A"), stat_a))
    );
    assert_eq!(results[1], Ok(ReadResult::Children(vec!["kid".into()])));
    assert_eq!(results[2], Err(Error::NoNode));
    assert_eq!(results[3], Err(Error::NoNode));
    assert_eq!(results[4], Ok(ReadResult::Children(vec!["a".into()])));
    assert_eq!(zk.multi_read(vec![]).unwrap(), vec![]);
    zk.delete_recursive(&root).unwrap();
}

// ------------------------------------------------------------------ watches API, whoami, config

#[test]
fn add_and_remove_watches() {
    let (zk, root) = setup("ops-watchapi");
    // nothing registered: NoWatcher, for every kind
    for kind in [WatcherType::Children, WatcherType::Data, WatcherType::Any] {
        assert_eq!(zk.remove_watches(&root, kind), Err(Error::NoWatcher));
    }
    // addWatch does not need the node to exist
    let missing = format!("{root}/later");
    let w = zk.add_watch(&missing, false).unwrap();
    zk.create(&missing, b"", &CreateOptions::persistent())
        .unwrap();
    let ev = w.next_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(ev.event_type, EventType::NodeCreated);
    assert_eq!(ev.path, missing);
    // removing it on the server stops events; the handle stays usable
    zk.remove_watches(&missing, WatcherType::Any).unwrap();
    assert_eq!(
        zk.remove_watches(&missing, WatcherType::Any),
        Err(Error::NoWatcher)
    );
    zk.set_data(&missing, b"x", None).unwrap();
    assert_eq!(
        w.next_timeout(Duration::from_millis(300)),
        Err(Error::Timeout)
    );

    // a data watch from get_data, removed as Data
    let (_, _, dw) = zk.get_data_watch(&missing).unwrap();
    assert_eq!(
        zk.remove_watches(&missing, WatcherType::Children),
        Err(Error::NoWatcher)
    );
    zk.remove_watches(&missing, WatcherType::Data).unwrap();
    zk.set_data(&missing, b"y", None).unwrap();
    assert_eq!(
        dw.wait_timeout(Duration::from_millis(300)),
        Err(Error::Timeout)
    );
    // a child watch, removed as Children
    let (_, _, cw) = zk.get_children_watch(&root).unwrap();
    zk.remove_watches(&root, WatcherType::Children).unwrap();
    zk.create(&format!("{root}/other"), b"", &CreateOptions::persistent())
        .unwrap();
    assert_eq!(
        cw.wait_timeout(Duration::from_millis(300)),
        Err(Error::Timeout)
    );
    assert!(matches!(
        zk.remove_watches("bad", WatcherType::Any),
        Err(Error::InvalidPath { .. })
    ));
    zk.delete_recursive(&root).unwrap();
}

#[test]
fn who_am_i_and_get_config() {
    let zk = connect(&shared_server().addr);
    let ids = zk.who_am_i().unwrap();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(ids[0].auth_scheme, "ip");
    assert_eq!(ids[0].user, "127.0.0.1");

    zk.add_auth("digest", b"carol:pw").unwrap();
    let mut ids = zk.who_am_i().unwrap();
    ids.sort_by(|a, b| a.auth_scheme.cmp(&b.auth_scheme));
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert_eq!(ids[0].auth_scheme, "digest");
    assert_eq!(ids[0].user, "carol");
    assert_eq!(ids[1].auth_scheme, "ip");

    // A standalone 3.8 server without dynamic reconfig keeps an empty /zookeeper/config.
    let (config, stat) = zk.get_config().unwrap();
    assert!(config.is_empty(), "{config:?}");
    assert_eq!(stat.data_length, 0);
    // from a chrooted client the config path is not chrooted
    let chroot = unique_path("ops-config-chroot");
    zk.create(&chroot, b"", &CreateOptions::persistent())
        .unwrap();
    let zc = connect(&format!("{}{chroot}", shared_server().addr));
    assert_eq!(zc.get_config().unwrap().1, stat);
    assert_eq!(
        zc.get_data("/zookeeper/config").map(|_| ()),
        Err(Error::NoNode)
    );
    zk.delete(&chroot, None).unwrap();
}

// ------------------------------------------------------------------ close, helpers

#[test]
fn close_removes_ephemerals_and_ends_the_handle() {
    let (zk, root) = setup("ops-close");
    let other = connect(&shared_server().addr);
    let e = format!("{root}/eph");
    zk.create(&e, b"", &CreateOptions::ephemeral()).unwrap();
    let sw = zk.state_watch();
    let clone = zk.clone();
    zk.close().unwrap();
    assert_eq!(zk.state(), SessionState::Closed);
    assert_eq!(
        sw.next_timeout(Duration::from_secs(1)),
        Some(SessionState::Closed)
    );
    // gone at once: close waits for the server's reply
    assert_eq!(other.exists(&e).unwrap(), None);
    assert_eq!(zk.exists(&root), Err(Error::Closed));
    assert_eq!(clone.get_data(&root).map(|_| ()), Err(Error::Closed));
    assert_eq!(
        clone
            .create(&e, b"", &CreateOptions::ephemeral())
            .map(|_| ()),
        Err(Error::Closed)
    );
    assert_eq!(clone.add_auth("digest", b"a:b"), Err(Error::Closed));
    assert!(matches!(clone.add_watch(&root, true), Err(Error::Closed)));
    let mut c = clone.exists_async(&root);
    assert_eq!(c.wait_timeout(Duration::from_secs(1)), Err(Error::Closed));
    // closing twice is fine
    zk.close().unwrap();
    other.delete_recursive(&root).unwrap();
}

#[test]
fn ensure_path_and_delete_recursive() {
    let zk = connect(&shared_server().addr);
    let root = unique_path("ops-ensure");
    let deep = format!("{root}/a/b/c");
    zk.ensure_path(&deep).unwrap();
    assert!(zk.exists(&deep).unwrap().is_some());
    zk.ensure_path(&deep).unwrap();
    zk.ensure_path(&format!("{root}/a/d")).unwrap();
    zk.ensure_path("/").unwrap();
    assert!(matches!(
        zk.ensure_path("no/slash"),
        Err(Error::InvalidPath { .. })
    ));
    let mut children = zk.get_children(&format!("{root}/a")).unwrap();
    children.sort();
    assert_eq!(children, ["b", "d"]);
    assert_eq!(zk.get_all_children_number(&root).unwrap(), 4);
    zk.delete_recursive(&root).unwrap();
    assert_eq!(zk.exists(&root).unwrap(), None);
    // deleting what is not there is fine
    zk.delete_recursive(&root).unwrap();
}

// ------------------------------------------------------------------ async forms

#[test]
fn async_forms_wait_and_await() {
    let (zk, root) = setup("ops-async");
    let p = format!("{root}/n");

    // wait_timeout on a live server
    let mut c = zk.create_async(&p, "v0", &CreateOptions::persistent());
    let (created, stat) = c.wait_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(created, p);
    assert_eq!(stat.version, 0);
    // a consumed completion says so
    assert!(matches!(
        c.wait_timeout(Duration::from_millis(10)),
        Err(Error::InvalidUse(_))
    ));

    // .await through a hand-written block_on
    let out = block_on(async {
        let s1 = zk.set_data_async(&p, "v1", Some(0)).await?;
        let (data, s2) = zk.get_data_async(&p).await?;
        let exists = zk.exists_async(&format!("{root}/none")).await?;
        let bad = zk.set_data_async(&p, "v?", Some(0)).await;
        let children = zk.get_children_async(&root).await?;
        let (c2, cstat) = zk.get_children_with_stat_async(&root).await?;
        let (acl, _) = zk.get_acl_async(&p).await?;
        let astat = zk.set_acl_async(&p, acl, Some(0)).await?;
        zk.sync_async(&p).await?;
        Ok::<_, Error>((s1, data, s2, exists, bad, children, c2, cstat, astat))
    })
    .unwrap();
    let (s1, data, s2, exists, bad, children, c2, cstat, astat) = out;
    assert_eq!(s1.version, 1);
    assert_eq!(&data[..], b"v1");
    assert_eq!(s1, s2);
    assert_eq!(exists, None);
    assert_eq!(bad, Err(Error::BadVersion));
    assert_eq!(children, ["n"]);
    assert_eq!(c2, ["n"]);
    assert_eq!(cstat.num_children, 1);
    assert_eq!(astat.aversion, 1);

    // many futures in flight at once, awaited in order
    let futs: Vec<_> = (0..50)
        .map(|i| {
            zk.create_async(
                &format!("{p}/c{i}"),
                format!("{i}"),
                &CreateOptions::persistent(),
            )
        })
        .collect();
    let created = block_on(async {
        let mut v = Vec::new();
        for f in futs {
            v.push(f.await.unwrap().0);
        }
        v
    });
    assert_eq!(created.len(), 50);
    assert_eq!(created[49], format!("{p}/c49"));

    // watches through the async forms
    let (_, w) = zk.exists_watch_async(&format!("{root}/w")).wait().unwrap();
    let (_, _, dw) = zk.get_data_watch_async(&p).wait().unwrap();
    let (_, _, cw) = zk.get_children_watch_async(&root).wait().unwrap();
    zk.create(&format!("{root}/w"), b"", &CreateOptions::persistent())
        .unwrap();
    zk.set_data(&p, b"v2", None).unwrap();
    let timeout = Duration::from_secs(5);
    assert_eq!(
        w.wait_timeout(timeout).unwrap().event_type,
        EventType::NodeCreated
    );
    assert_eq!(
        dw.wait_timeout(timeout).unwrap().event_type,
        EventType::NodeDataChanged
    );
    assert_eq!(
        cw.wait_timeout(timeout).unwrap().event_type,
        EventType::NodeChildrenChanged
    );

    let d = zk.delete_async(&format!("{root}/w"), Some(0));
    assert_eq!(block_on(d), Ok(()));
    zk.delete_recursive(&root).unwrap();

    // wait_timeout when no reply can come: Timeout, and the handle can be waited on again
    let dead = Client::builder("127.0.0.1:1")
        .unwrap()
        .session_timeout(Duration::from_secs(30))
        .unsent_timeout(Duration::from_millis(600))
        .connect_lazy()
        .unwrap();
    let mut c = dead.get_data_async("/x");
    let t0 = Instant::now();
    assert_eq!(
        c.wait_timeout(Duration::from_millis(100)).map(|_| ()),
        Err(Error::Timeout)
    );
    assert!(t0.elapsed() >= Duration::from_millis(100));
    assert!(c.try_take().is_none());
    // the unsent timeout ends it with ConnectionLoss (it was never sent)
    assert_eq!(
        c.wait_timeout(Duration::from_secs(5)).map(|_| ()),
        Err(Error::ConnectionLoss)
    );
    assert_eq!(
        block_on(dead.exists_async("/x")).map(|_| ()),
        Err(Error::ConnectionLoss)
    );
}

// ------------------------------------------------------------------ pipelining under load

#[test]
fn ten_thousand_pipelined_requests_from_eight_threads() {
    const THREADS: usize = 8;
    const PAIRS: usize = 625; // set + get = 1,250 requests per thread, 10,000 in all
    let (zk, root) = setup("ops-pipeline");
    let t0 = Instant::now();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let zk = zk.clone();
            let node = format!("{root}/t{t}");
            std::thread::spawn(move || {
                zk.create(&node, b"", &CreateOptions::persistent()).unwrap();
                let mut pending = Vec::with_capacity(PAIRS);
                for i in 0..PAIRS {
                    let data = format!("t{t}-i{i}-{}", "x".repeat(i % 37));
                    let set = zk.set_data_async(&node, data.clone(), Some(i as i32));
                    let get = zk.get_data_async(&node);
                    pending.push((data, set, get));
                }
                for (i, (data, set, get)) in pending.into_iter().enumerate() {
                    let stat = set.wait().unwrap();
                    assert_eq!(stat.version, i as i32 + 1, "thread {t} op {i}");
                    assert_eq!(stat.data_length as usize, data.len());
                    let (got, gstat) = get.wait().unwrap();
                    assert_eq!(&got[..], data.as_bytes(), "thread {t} op {i}");
                    assert_eq!(gstat, stat, "thread {t} op {i}");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let elapsed = t0.elapsed();
    eprintln!("10,000 pipelined requests from {THREADS} threads: {elapsed:?}");
    for t in 0..THREADS {
        let (_, stat) = zk.get_data(&format!("{root}/t{t}")).unwrap();
        assert_eq!(stat.version, PAIRS as i32);
    }
    zk.delete_recursive(&root).unwrap();
}

/// Blocking calls on an idle connection run on the caller's thread (the driver's inline path);
/// with several threads, some calls take it and some go through the driver, and they race
/// for the engine. Every reply must still reach its caller, in order per thread, and every
/// event read on any thread must reach the watch exactly once.
#[test]
fn blocking_calls_from_many_threads_mix_with_pipelined_ones_and_watches() {
    const THREADS: usize = 6;
    const ROUNDS: usize = 300;
    let (zk, root) = setup("ops-inline-mix");
    let watch = zk.add_watch(&root, true).unwrap();
    // on an idle connection, sequential blocking calls take the inline path (all of them,
    // unless the driver thread holds the engine at that moment, e.g. for a ping)
    let before = zk.inline_calls();
    for _ in 0..100 {
        zk.get_data(&root).unwrap();
    }
    let inline = zk.inline_calls() - before;
    assert!((90..=100).contains(&inline), "{inline} of 100 ran inline");
    let before = zk.inline_calls();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let zk = zk.clone();
            let node = format!("{root}/t{t}");
            std::thread::spawn(move || {
                zk.create(&node, b"", &CreateOptions::persistent()).unwrap();
                for i in 0..ROUNDS {
                    let data = format!("t{t}-i{i}");
                    if t % 2 == 0 || i % 10 != 0 {
                        // blocking: inline when the connection happens to be idle
                        let stat = zk.set_data(&node, data.as_bytes(), Some(i as i32)).unwrap();
                        assert_eq!(stat.version, i as i32 + 1, "thread {t} round {i}");
                        let (got, _) = zk.get_data(&node).unwrap();
                        assert_eq!(&got[..], data.as_bytes(), "thread {t} round {i}");
                    } else {
                        // a small pipelined burst from an odd thread now and then
                        let set = zk.set_data_async(&node, data.clone(), Some(i as i32));
                        let gets: Vec<_> = (0..5).map(|_| zk.get_data_async(&node)).collect();
                        assert_eq!(set.wait().unwrap().version, i as i32 + 1);
                        for g in gets {
                            assert_eq!(&g.wait().unwrap().0[..], data.as_bytes());
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    // how many raced into the inline path depends on timing; the point is that whichever
    // path each call took, the results below hold
    eprintln!(
        "{} of the blocking calls ran inline",
        zk.inline_calls() - before
    );
    // one NodeCreated and ROUNDS NodeDataChanged per node, each in order
    let mut seen = std::collections::HashMap::<String, Vec<EventType>>::new();
    for _ in 0..THREADS * (ROUNDS + 1) {
        let ev = watch.next_timeout(Duration::from_secs(10)).unwrap();
        seen.entry(ev.path.clone()).or_default().push(ev.event_type);
    }
    assert_eq!(
        watch.next_timeout(Duration::from_millis(200)),
        Err(Error::Timeout),
        "no event twice"
    );
    for t in 0..THREADS {
        let events = &seen[&format!("{root}/t{t}")];
        assert_eq!(events.len(), ROUNDS + 1, "thread {t}");
        assert_eq!(events[0], EventType::NodeCreated);
        assert!(events[1..].iter().all(|e| *e == EventType::NodeDataChanged));
    }
    drop(watch);
    zk.delete_recursive(&root).unwrap();
}

// ------------------------------------------------------------------ chroot

#[test]
fn chroot_paths_are_relative() {
    let server = shared_server();
    let plain = connect(&server.addr);
    let chroot = unique_path("ops-chroot");
    plain
        .create(&chroot, b"root", &CreateOptions::persistent())
        .unwrap();
    let zk = connect(&format!("{}{chroot}", server.addr));

    // "/" is the chroot itself
    let (data, stat) = zk.get_data("/").unwrap();
    assert_eq!(&data[..], b"root");
    assert_eq!(stat, plain.exists(&chroot).unwrap().unwrap());

    let (created, _) = zk.create("/a", b"A", &CreateOptions::persistent()).unwrap();
    assert_eq!(created, "/a");
    assert_eq!(&plain.get_data(&format!("{chroot}/a")).unwrap().0[..], b"A");
    let (created, _) = zk
        .create("/a/s-", b"", &opts(CreateMode::EphemeralSequential))
        .unwrap();
    assert_eq!(seq_suffix(&created, "/a/s-"), 0);
    assert_eq!(zk.get_children("/").unwrap(), ["a"]);
    assert_eq!(zk.get_ephemerals("/").unwrap(), vec![created.clone()]);
    assert_eq!(zk.get_ephemerals("/a").unwrap(), vec![created.clone()]);
    assert_eq!(zk.get_all_children_number("/").unwrap(), 2);
    let results = zk
        .multi(vec![
            Op::create("/m", "", CreateOptions::persistent()),
            Op::create("/m/q-", "", opts(CreateMode::PersistentSequential)),
            Op::check("/a", Some(0)),
        ])
        .unwrap();
    assert!(matches!(&results[0], OpResult::Create { path, .. } if path == "/m"));
    assert!(matches!(&results[1], OpResult::Create { path, .. } if path == "/m/q-0000000000"));
    let reads = zk
        .multi_read(vec![
            ReadOp::GetData("/a".into()),
            ReadOp::GetChildren("/m".into()),
        ])
        .unwrap();
    assert!(matches!(&reads[0], Ok(ReadResult::Data(d, _)) if &d[..] == b"A"));
    assert_eq!(
        reads[1],
        Ok(ReadResult::Children(vec!["q-0000000000".into()]))
    );

    // watch events carry chroot-relative paths
    let (_, _, dw) = zk.get_data_watch("/a").unwrap();
    let (_, ew) = zk.exists_watch("/new").unwrap();
    let (_, _, cw) = zk.get_children_watch("/").unwrap();
    plain.set_data(&format!("{chroot}/a"), b"B", None).unwrap();
    plain
        .create(&format!("{chroot}/new"), b"", &CreateOptions::persistent())
        .unwrap();
    let timeout = Duration::from_secs(5);
    let ev = dw.wait_timeout(timeout).unwrap();
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (EventType::NodeDataChanged, "/a")
    );
    let ev = ew.wait_timeout(timeout).unwrap();
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (EventType::NodeCreated, "/new")
    );
    let ev = cw.wait_timeout(timeout).unwrap();
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (EventType::NodeChildrenChanged, "/")
    );
    // (a 3.8 server keeps one watch mode per path and connection, so the recursive watch on
    // "/" comes after the child watch on "/" has fired)
    let rw = zk.add_watch("/", true).unwrap();
    plain.set_data(&format!("{chroot}/a"), b"C", None).unwrap();
    plain
        .create(
            &format!("{chroot}/new/x"),
            b"",
            &CreateOptions::persistent(),
        )
        .unwrap();
    let ev = rw.next_timeout(timeout).unwrap();
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (EventType::NodeDataChanged, "/a")
    );
    let ev = rw.next_timeout(timeout).unwrap();
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (EventType::NodeCreated, "/new/x")
    );
    // an event on the chroot node itself is reported as "/"
    plain.set_data(&chroot, b"root2", None).unwrap();
    let ev = rw.next_timeout(timeout).unwrap();
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (EventType::NodeDataChanged, "/")
    );

    zk.delete_recursive("/a").unwrap();
    zk.delete_recursive("/m").unwrap();
    zk.delete_recursive("/new").unwrap();
    assert_eq!(zk.get_children("/").unwrap(), Vec::<String>::new());
    drop(rw);
    zk.close().unwrap();
    plain.delete(&chroot, None).unwrap();

    // a chroot that does not exist: operations fail NoNode
    let missing = connect(&format!("{}{}", server.addr, unique_path("ops-nochroot")));
    assert_eq!(
        missing.create("/x", b"", &CreateOptions::persistent()),
        Err(Error::NoNode)
    );
}

// ------------------------------------------------------------------ auth and ACL denial

#[test]
fn digest_acl_denies_other_clients() {
    let server = shared_server();
    let (owner, root) = setup("ops-auth");
    owner.add_auth("digest", b"alice:secret").unwrap();
    let id = digest_id("alice", "secret");

    // an explicit digest ACL
    let p = format!("{root}/digest");
    let acl = vec![Acl::new(Perms::ALL, "digest", &id)];
    owner
        .create(
            &p,
            b"secret data",
            &CreateOptions::persistent().with_acl(acl.clone()),
        )
        .unwrap();
    assert_eq!(owner.get_acl(&p).unwrap().0, acl);
    assert_eq!(&owner.get_data(&p).unwrap().0[..], b"secret data");

    // the creator ACL resolves to the same identity
    let q = format!("{root}/creator");
    owner
        .create(
            &q,
            b"",
            &CreateOptions::persistent().with_acl(Acl::creator_all()),
        )
        .unwrap();
    assert_eq!(owner.get_acl(&q).unwrap().0, acl);

    // a client without credentials is denied every ACL-checked operation
    let stranger = connect(&server.addr);
    for node in [&p, &q] {
        assert_eq!(stranger.get_data(node).map(|_| ()), Err(Error::NoAuth));
        assert_eq!(
            stranger.set_data(node, b"x", None).map(|_| ()),
            Err(Error::NoAuth)
        );
        assert_eq!(stranger.get_children(node).map(|_| ()), Err(Error::NoAuth));
        assert_eq!(
            stranger.create(&format!("{node}/c"), b"", &CreateOptions::persistent()),
            Err(Error::NoAuth)
        );
        assert_eq!(
            stranger.set_acl(node, Acl::open_unsafe(), None),
            Err(Error::NoAuth)
        );
        // exists is not ACL-checked
        assert!(stranger.exists(node).unwrap().is_some());
    }
    // the wrong password is another identity
    let mallory = connect(&server.addr);
    mallory.add_auth("digest", b"alice:wrong").unwrap();
    assert_eq!(mallory.get_data(&p).map(|_| ()), Err(Error::NoAuth));
    // the right one, given at connect time through the builder, works
    let friend = Client::builder(&server.addr)
        .unwrap()
        .auth("digest", Bytes::from_static(b"alice:secret"))
        .connect()
        .unwrap();
    assert_eq!(&friend.get_data(&p).unwrap().0[..], b"secret data");
    friend.set_data(&q, b"ok", None).unwrap();
    // added later on a running session, too
    stranger.add_auth("digest", b"alice:secret").unwrap();
    assert_eq!(&stranger.get_data(&q).unwrap().0[..], b"ok");

    owner.delete_recursive(&root).unwrap();
}

#[test]
fn unknown_auth_scheme_is_terminal() {
    let zk = connect(&shared_server().addr);
    let sw = zk.state_watch();
    assert_eq!(zk.add_auth("nosuchscheme", b"x"), Err(Error::AuthFailed));
    assert_eq!(zk.state(), SessionState::AuthFailed);
    assert_eq!(
        sw.next_timeout(Duration::from_secs(2)),
        Some(SessionState::AuthFailed)
    );
    assert_eq!(zk.exists("/").map(|_| ()), Err(Error::AuthFailed));
    assert_eq!(zk.add_auth("digest", b"a:b"), Err(Error::AuthFailed));
    assert!(Error::AuthFailed.is_terminal());
    // also when given to the builder: the first connection fails the handshake's auth
    let r = Client::builder(&shared_server().addr)
        .unwrap()
        .auth("nosuchscheme", Bytes::from_static(b"x"))
        .connect();
    match r {
        Err(Error::AuthFailed) => {}
        Ok(zk) => {
            // connected before the auth reply: the rejection ends it right after
            let r = zk.exists("/");
            assert!(
                matches!(r, Err(Error::AuthFailed)) || zk.state() == SessionState::AuthFailed,
                "{r:?}"
            );
        }
        Err(e) => panic!("{e:?}"),
    }
}

// ------------------------------------------------------------------ TTL and container reaping

#[test]
fn ttl_and_container_nodes_are_reaped() {
    // The container/TTL reaper period is a JVM system property (read by ZooKeeperServerMain),
    // not a zoo.cfg key.
    let server =
        DedicatedServer::start_with_jvm(200, &[], &["-Dznode.container.checkIntervalMs=100"]);
    let zk = connect(server.addr());

    let container = "/container";
    zk.create(container, b"", &opts(CreateMode::Container))
        .unwrap();
    let never_used = "/container-never-used";
    zk.create(never_used, b"", &opts(CreateMode::Container))
        .unwrap();
    let child = format!("{container}/child");
    zk.create(&child, b"", &CreateOptions::persistent())
        .unwrap();
    // with a child it stays
    std::thread::sleep(Duration::from_millis(400));
    assert!(zk.exists(container).unwrap().is_some());

    let ttl_opts = opts(CreateMode::PersistentWithTtl).with_ttl(Duration::from_millis(500));
    let t0 = Instant::now();
    zk.create("/ttl", b"", &ttl_opts).unwrap();
    let (seq, _) = zk
        .create(
            "/ttls-",
            b"",
            &opts(CreateMode::PersistentSequentialWithTtl).with_ttl(Duration::from_millis(500)),
        )
        .unwrap();
    let (_, ttl_watch) = zk.exists_watch("/ttl").unwrap();
    let (_, seq_watch) = zk.exists_watch(&seq).unwrap();

    let (_, container_watch) = zk.exists_watch(container).unwrap();
    let t1 = Instant::now();
    zk.delete(&child, None).unwrap();
    let ev = container_watch
        .wait_timeout(Duration::from_secs(5))
        .unwrap();
    assert_eq!(ev.event_type, EventType::NodeDeleted);
    assert_eq!(ev.path, container);
    eprintln!("container reaped {:?} after its last child", t1.elapsed());
    assert_eq!(zk.exists(container).unwrap(), None);

    let ev = ttl_watch.wait_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(ev.event_type, EventType::NodeDeleted);
    let ev = seq_watch.wait_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(ev.event_type, EventType::NodeDeleted);
    let ttl_gone = t0.elapsed();
    eprintln!("TTL 500 ms nodes reaped after {ttl_gone:?}");
    assert!(ttl_gone >= Duration::from_millis(500), "{ttl_gone:?}");
    assert_eq!(zk.exists("/ttl").unwrap(), None);

    // a container that never had a child is kept
    assert!(zk.exists(never_used).unwrap().is_some());
    // a TTL node that is modified lives on; one with a child too
    zk.create("/ttl-kept", b"", &ttl_opts).unwrap();
    zk.create("/ttl-kept/kid", b"", &CreateOptions::persistent())
        .unwrap();
    std::thread::sleep(Duration::from_millis(900));
    assert!(zk.exists("/ttl-kept").unwrap().is_some());
    zk.close().unwrap();
}

/// `Client::batch` sends its requests back to back: on an idle connection as one inline
/// exchange (so the completions are done when it returns), in issue order, and the listing
/// behind a create sees the created node.
#[test]
fn batch_sends_requests_back_to_back_in_order() {
    let (zk, root) = setup("ops-batch");
    let seq = opts(CreateMode::EphemeralSequential);
    // idle connection: the whole batch runs on this thread, once
    let mut inline = 0;
    for _ in 0..20 {
        let before = zk.inline_calls();
        let (created, listed) = zk.batch(|c| {
            (
                c.create_async(&format!("{root}/n-"), &b"x"[..], &seq),
                c.get_children_async(&root),
            )
        });
        inline += zk.inline_calls() - before;
        let (path, stat) = created.wait().unwrap();
        assert!(stat.czxid > 0);
        let name = path.rsplit('/').next().unwrap().to_owned();
        assert!(listed.wait().unwrap().contains(&name), "{name} listed");
        zk.delete(&path, None).unwrap();
    }
    // (a ping may hold the engine at one moment; all but that ran inline)
    assert!(
        (18..=20).contains(&inline),
        "{inline} of 20 batches ran inline"
    );

    // order: a set, then reads of it, then a second set with the version the first made
    let node = format!("{root}/v");
    zk.create(&node, b"0", &CreateOptions::persistent())
        .unwrap();
    let (set1, get1, set2, get2) = zk.batch(|c| {
        (
            c.set_data_async(&node, &b"1"[..], Some(0)),
            c.get_data_async(&node),
            c.set_data_async(&node, &b"2"[..], Some(1)),
            c.get_data_async(&node),
        )
    });
    assert_eq!(set1.wait().unwrap().version, 1);
    assert_eq!(&get1.wait().unwrap().0[..], b"1");
    assert_eq!(set2.wait().unwrap().version, 2);
    assert_eq!(&get2.wait().unwrap().0[..], b"2");

    // a failing request in a batch fails alone; the others still run
    let (bad, good) = zk.batch(|c| {
        (
            c.set_data_async(&node, &b"3"[..], Some(99)),
            c.get_data_async(&node),
        )
    });
    assert_eq!(bad.wait(), Err(Error::BadVersion));
    assert_eq!(&good.wait().unwrap().0[..], b"2");
    zk.delete_recursive(&root).unwrap();
}

/// Inside a batch, a blocking call or a wait on a batched completion first sends what was
/// batched before it (neither may wait on a request that was never sent), and a batch on a
/// busy connection goes through the driver.
#[test]
fn batch_sends_what_it_holds_before_anything_waits() {
    let (zk, root) = setup("ops-batch-wait");
    let node = format!("{root}/v");
    zk.create(&node, b"0", &CreateOptions::persistent())
        .unwrap();
    let other = connect(&shared_server().addr);
    let (seen, waited) = zk.batch(|c| {
        let set = c.set_data_async(&node, &b"1"[..], None);
        // blocking call of the same client: the set above must be on the wire before it
        let (seen, _) = c.get_data(&node).unwrap();
        let set2 = c.set_data_async(&node, &b"2"[..], None);
        // waiting on a batched completion inside the batch must not hang
        let waited = set2.wait().unwrap();
        set.wait().unwrap();
        // another client's calls are not collected by this batch
        assert_eq!(&other.get_data(&node).unwrap().0[..], b"2");
        (seen, waited)
    });
    assert_eq!(&seen[..], b"1");
    assert_eq!(waited.version, 2);

    // busy: many requests in flight, so the batch cannot run inline; still correct
    let gets: Vec<_> = (0..500).map(|_| zk.get_data_async(&node)).collect();
    let (set, get) = zk.batch(|c| {
        (
            c.set_data_async(&node, &b"3"[..], Some(2)),
            c.get_data_async(&node),
        )
    });
    for g in gets {
        assert_eq!(&g.wait().unwrap().0[..], b"2");
    }
    assert_eq!(set.wait().unwrap().version, 3);
    assert_eq!(&get.wait().unwrap().0[..], b"3");
    // nested: the inner batch's requests join the outer one
    let (a, b) = zk.batch(|c| {
        let a = c.get_data_async(&node);
        let b = c.batch(|c| c.exists_async(&node));
        (a, b)
    });
    assert_eq!(&a.wait().unwrap().0[..], b"3");
    assert_eq!(b.wait().unwrap().unwrap().version, 3);
    zk.delete_recursive(&root).unwrap();
}
