//! The partition family (`zk_recipes::partitioner`, `zk_recipes::lease`) against a real
//! server: SetPartitioner and the leases, their node names and data (kazoo's), a real session
//! expiry mid-hold (FAULTS.md F7), and interoperation with kazoo processes
//! (`/usr/bin/python3`, Debian's kazoo 2.8) on the same paths.

#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use zk_integration_tests::expiry::{connect_expirable, expire};
use zk_integration_tests::kazoo::Kazoo as Py;
use zk_integration_tests::unique_path;
use zk_integration_tests::{
    connect_shared as connect, is_lower_hex as is_hex, sorted_children as children,
};
use zk_recipes::lease::{
    LeaseFence, LeaseRecord, MultiNonBlockingLease, NonBlockingLease, format_utc, parse_utc,
};
use zk_recipes::partitioner::{PartitionState, SetPartitioner};
use zk_recipes::{CreateOptions, Error, Fence, Op, sequence_of};
use zk_session::Client;

/// `<32 hex>__lock__<10 digits>` (kazoo's lock node name).
fn assert_kazoo_lock_name(name: &str) {
    assert!(
        name.len() == 32 + 8 + 10
            && is_hex(&name[..32])
            && &name[32..40] == "__lock__"
            && name[40..].bytes().all(|b| b.is_ascii_digit()),
        "not a kazoo lock node name: {name}"
    );
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

/// Drive `p` until acquired (releasing when asked), within `timeout`.
fn acquire(p: &mut SetPartitioner<Client>, timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        match p.state() {
            PartitionState::Acquired => return p.partition().to_vec(),
            PartitionState::Release => p.release_set().unwrap(),
            PartitionState::Allocating => {
                p.wait_for_acquire(Duration::from_millis(200)).unwrap();
            }
            PartitionState::Failure => panic!("partitioner failed"),
        }
    }
    panic!("not acquired within {timeout:?}: {p:?}");
}

// ---------------------------------------------------------------------------------------------
// SetPartitioner

#[test]
fn partitioner_party_of_one_layout_and_finish() {
    let zk = connect();
    let path = unique_path("part-one");
    let mut p = SetPartitioner::builder(&path, ["b", "c", "a"])
        .identifier("solo")
        .time_boundary(Duration::from_millis(200))
        .build(zk.clone())
        .unwrap();
    assert_eq!(p.state(), PartitionState::Allocating);
    // The party: one shallow-party node `<uuid hex>-solo`, data "solo", ephemeral.
    let party = children(&zk, &format!("{path}/party"));
    assert_eq!(party.len(), 1);
    let (uuid, ident) = party[0].split_once('-').unwrap();
    assert!(uuid.len() == 32 && is_hex(uuid), "{}", party[0]);
    assert_eq!(ident, "solo");
    let (data, stat) = zk.get_data(&format!("{path}/party/{}", party[0])).unwrap();
    assert_eq!(&data[..], b"solo");
    assert_eq!(stat.ephemeral_owner, zk.session_id());
    assert_eq!(p.party_node(), format!("{path}/party/{}", party[0]));

    let t0 = Instant::now();
    assert_eq!(
        p.wait_for_acquire(Duration::from_secs(10)).unwrap(),
        PartitionState::Acquired
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(200),
        "settled too early"
    );
    assert_eq!(p.partition(), strings(&["a", "b", "c"]));
    assert_eq!(
        (&p).into_iter().cloned().collect::<Vec<_>>(),
        strings(&["a", "b", "c"])
    );
    assert_eq!(p.members(), strings(&["solo"]));
    assert!(p.generation().is_some());
    // Per item a kazoo lock node under <path>/locks/<item>, empty data; the fence is it.
    for item in ["a", "b", "c"] {
        let kids = children(&zk, &format!("{path}/locks/{item}"));
        assert_eq!(kids.len(), 1, "{item}: {kids:?}");
        assert_kazoo_lock_name(&kids[0]);
        let node = format!("{path}/locks/{item}/{}", kids[0]);
        let (data, stat) = zk.get_data(&node).unwrap();
        assert!(data.is_empty());
        assert_eq!(stat.ephemeral_owner, zk.session_id());
        let fence = p.fence(item).unwrap();
        assert_eq!(fence.node, node);
        assert_eq!(Some(fence.token), sequence_of(&kids[0], "__lock__"));
    }
    // Fenced writes work while acquired.
    let target = format!("{path}-data");
    p.fence("a")
        .unwrap()
        .write(
            &zk,
            vec![Op::create(&target, &b"x"[..], CreateOptions::persistent())],
        )
        .unwrap();
    zk.delete(&target, None).unwrap();

    // Nothing changes: still acquired.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(p.state(), PartitionState::Acquired);

    p.finish().unwrap();
    assert_eq!(p.state(), PartitionState::Failure);
    assert!(p.partition().is_empty());
    assert!(children(&zk, &format!("{path}/party")).is_empty());
    for item in ["a", "b", "c"] {
        assert!(children(&zk, &format!("{path}/locks/{item}")).is_empty());
    }
    // Unusable afterwards, as kazoo's.
    assert_eq!(
        p.wait_for_acquire(Duration::from_millis(100)).unwrap(),
        PartitionState::Failure
    );
}

#[test]
fn partitioner_two_members_split_then_rebalance() {
    let path = unique_path("part-two");
    let items = ["0", "1", "2"];
    let mut threads = Vec::new();
    let (tx, rx) = channel();
    let mut go = Vec::new();
    for ident in ["0", "1"] {
        let (path, tx) = (path.clone(), tx.clone());
        let (go_tx, go_rx) = channel::<()>();
        go.push(go_tx);
        threads.push(std::thread::spawn(move || {
            let zk = connect();
            let mut p = SetPartitioner::builder(&path, items)
                .identifier(ident)
                .time_boundary(Duration::from_millis(300))
                .max_reaction_time(Duration::from_millis(100))
                .build(zk.clone())
                .unwrap();
            // Acquire with both members present (the other may join a little later).
            let mut got = acquire(&mut p, Duration::from_secs(20));
            while p.members().len() < 2 {
                if p.state() == PartitionState::Release {
                    p.release_set().unwrap();
                }
                got = acquire(&mut p, Duration::from_secs(20));
            }
            tx.send((ident, got, p.generation())).unwrap();
            go_rx.recv().unwrap();
            if ident == "0" {
                p.finish().unwrap();
                return None;
            }
            // "1" is told to release when "0" leaves, then gets everything.
            let deadline = Instant::now() + Duration::from_secs(10);
            while p.state() == PartitionState::Acquired {
                assert!(Instant::now() < deadline, "no release after the other left");
                std::thread::sleep(Duration::from_millis(20));
            }
            assert_eq!(p.state(), PartitionState::Release);
            p.release_set().unwrap();
            let all = acquire(&mut p, Duration::from_secs(20));
            let members = p.members().to_vec();
            p.finish().unwrap();
            Some((all, members))
        }));
    }
    let mut shares = [rx.recv().unwrap(), rx.recv().unwrap()];
    shares.sort();
    assert_eq!(shares[0].1, strings(&["0", "2"]));
    assert_eq!(shares[1].1, strings(&["1"]));
    assert_eq!(
        shares[0].2, shares[1].2,
        "both shares come from one generation"
    );
    for g in &go {
        g.send(()).unwrap();
    }
    let mut results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let (all, members) = results.pop().unwrap().unwrap();
    assert_eq!(all, strings(&["0", "1", "2"]));
    assert_eq!(members, strings(&["1"]));
}

#[test]
fn partitioner_custom_partition_function() {
    let zk = connect();
    let path = unique_path("part-func");
    // Everything to the member whose identifier sorts last.
    let mut p = SetPartitioner::builder(&path, ["x", "y"])
        .identifier("m")
        .time_boundary(Duration::from_millis(100))
        .partition_func(|id, members, items| {
            let last = members.iter().max().unwrap();
            if last == id {
                items.to_vec()
            } else {
                Vec::new()
            }
        })
        .build(zk)
        .unwrap();
    assert_eq!(
        acquire(&mut p, Duration::from_secs(10)),
        strings(&["x", "y"])
    );
    p.finish().unwrap();
}

#[test]
fn partitioner_reports_a_real_session_expiry() {
    let (zk, proxy) = connect_expirable();
    let path = unique_path("part-expiry");
    let mut p = SetPartitioner::builder(&path, ["a", "b"])
        .identifier("doomed")
        .time_boundary(Duration::from_millis(100))
        .build(zk.clone())
        .unwrap();
    assert_eq!(
        acquire(&mut p, Duration::from_secs(10)),
        strings(&["a", "b"])
    );
    let fence: Fence = p.fence("a").unwrap();
    let observer = connect();
    let target = format!("{path}-data");

    expire(&zk, &proxy);
    // The loss is reported: nothing owned, no fences (even before the state is polled),
    // failed.
    assert!(p.partition().is_empty() && p.fences().is_empty() && p.generation().is_none());
    assert_eq!(p.state(), PartitionState::Failure);
    assert!(p.partition().is_empty());
    assert!(p.fence("a").is_none());
    assert_eq!(
        p.wait_for_acquire(Duration::from_millis(100)).unwrap(),
        PartitionState::Failure
    );
    // Its nodes are gone; a stale fenced write fails (even through a live session).
    assert!(children(&observer, &format!("{path}/party")).is_empty());
    let err = fence
        .write(
            &observer,
            vec![Op::create(
                &target,
                &b"late"[..],
                CreateOptions::persistent(),
            )],
        )
        .unwrap_err();
    assert!(Fence::is_lost(&err), "{err:?}");
    assert!(observer.exists(&target).unwrap().is_none());
    // A new member takes everything over.
    let mut q = SetPartitioner::builder(&path, ["a", "b"])
        .identifier("next")
        .time_boundary(Duration::from_millis(100))
        .build(observer.clone())
        .unwrap();
    assert_eq!(
        acquire(&mut q, Duration::from_secs(10)),
        strings(&["a", "b"])
    );
    q.finish().unwrap();
    drop(p);
}

// ---------------------------------------------------------------------------------------------
// Leases

/// A settable clock (kazoo's tests' MockClock): seconds since the epoch.
#[derive(Clone)]
struct MockClock(Arc<AtomicU64>);

impl MockClock {
    fn new(secs: u64) -> MockClock {
        MockClock(Arc::new(AtomicU64::new(secs)))
    }
    fn forward(&self, secs: u64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.0.load(Ordering::SeqCst))
    }
}

fn lease(zk: &Client, path: &str, secs: u64, id: &str, clock: &MockClock) -> NonBlockingLease {
    NonBlockingLease::obtain(zk, path, Duration::from_secs(secs), id, &|| clock.now()).unwrap()
}

fn multi(
    zk: &Client,
    count: usize,
    path: &str,
    secs: u64,
    id: &str,
    clock: &MockClock,
) -> MultiNonBlockingLease {
    MultiNonBlockingLease::obtain(zk, count, path, Duration::from_secs(secs), id, &|| {
        clock.now()
    })
    .unwrap()
}

#[test]
fn lease_node_format_and_kazoos_rules() {
    let (zk, zk2) = (connect(), connect());
    let path = unique_path("lease-basic");
    let clock = MockClock::new(10);
    let l = lease(&zk, &path, 3, "host-1", &clock);
    assert!(l.obtained());
    // The node and its bytes, exactly kazoo's json.dumps.
    assert_eq!(
        children(&zk, &path),
        ["lease_holder"],
        "the lock node is cleaned up"
    );
    let (data, stat) = zk.get_data(&format!("{path}/lease_holder")).unwrap();
    assert_eq!(
        std::str::from_utf8(&data).unwrap(),
        r#"{"version": 1, "holder": "host-1", "end": "1970-01-01T00:00:13"}"#
    );
    assert_eq!(stat.ephemeral_owner, 0, "a lease outlives its session");
    assert_eq!(l.end(), parse_utc("1970-01-01T00:00:13"));
    assert_eq!(l.token(), Some(stat.czxid));

    // test_busy / test_renew_no_overtake
    clock.forward(2);
    let other = lease(&zk2, &path, 3, "some.other.host", &clock);
    assert!(!other.obtained());
    assert_eq!(other.record().unwrap().holder, "host-1");
    // test_renew: the same identity renews (from any session)
    let renewed = lease(&zk2, &path, 3, "host-1", &clock);
    assert!(renewed.obtained());
    assert_eq!(format_utc(renewed.end().unwrap()), "1970-01-01T00:00:15");
    assert!(renewed.token() > l.token());
    clock.forward(2);
    assert!(!lease(&zk2, &path, 3, "some.other.host", &clock).obtained());
    // test_overtake / test_overtaker_renews / test_overtake_refuse_first
    clock.forward(1);
    let over = lease(&zk2, &path, 3, "some.other.host", &clock);
    assert!(over.obtained());
    clock.forward(2);
    assert!(lease(&zk2, &path, 3, "some.other.host", &clock).obtained());
    assert!(!lease(&zk, &path, 3, "host-1", &clock).obtained());

    // test_old_version: a record of another format version is left alone.
    let other_version = LeaseRecord {
        version: 2,
        holder: "future".into(),
        end: UNIX_EPOCH,
    };
    zk.set_data(
        &format!("{path}/lease_holder"),
        &other_version.encode(),
        None,
    )
    .unwrap();
    clock.forward(100);
    let refused = lease(&zk, &path, 3, "host-1", &clock);
    assert!(!refused.obtained());
    assert_eq!(refused.record().unwrap().version, 2);
    assert_eq!(children(&zk, &path), ["lease_holder"]);
}

#[test]
fn lease_fence_fails_once_granted_again() {
    let (zk, zk2) = (connect(), connect());
    let path = unique_path("lease-fence");
    let target = format!("{path}-data");
    let clock = MockClock::new(1000);
    let a = lease(&zk, &path, 5, "a", &clock);
    let fence: LeaseFence = a.fence().unwrap().clone();
    a.write(
        &zk,
        vec![Op::create(&target, &b"a"[..], CreateOptions::persistent())],
    )
    .unwrap();
    // Past a's end, b takes the lease; a (stalled, say) can no longer write.
    clock.forward(6);
    let b = lease(&zk2, &path, 5, "b", &clock);
    assert!(b.obtained());
    let err = a
        .write(&zk, vec![Op::set_data(&target, &b"a-late"[..], None)])
        .unwrap_err();
    assert!(LeaseFence::is_lost(&err), "{err:?}");
    let err = fence
        .write(&zk2, vec![Op::set_data(&target, &b"a-late"[..], None)])
        .unwrap_err();
    assert!(LeaseFence::is_lost(&err), "{err:?}");
    b.write(&zk2, vec![Op::set_data(&target, &b"b"[..], None)])
        .unwrap();
    assert_eq!(&zk.get_data(&target).unwrap().0[..], b"b");
    // A renewal is a new grant too: the old fence of the same holder fails.
    let b2 = lease(&zk2, &path, 5, "b", &clock);
    assert!(b2.obtained() && b2.token() > b.token());
    assert!(b.write(&zk2, vec![Op::check(&target, None)]).is_err());
    b2.write(&zk2, vec![Op::check(&target, None)]).unwrap();
    // Not obtained: no fence.
    let c = lease(&zk, &path, 5, "c", &clock);
    assert!(!c.obtained() && c.fence().is_none());
    assert_eq!(
        c.write(&zk, vec![Op::check(&target, None)]).unwrap_err(),
        Error::InvalidUse("the lease was not obtained")
    );
    zk.delete(&target, None).unwrap();
}

#[test]
fn multi_lease_slots_like_kazoo() {
    let (zk, zk2, zk3) = (connect(), connect(), connect());
    // test_2_reject
    let path = unique_path("mlease-reject");
    let clock = MockClock::new(10);
    let l1 = multi(&zk, 2, &path, 7, "host1", &clock);
    assert_eq!(l1.slot(), Some(0));
    clock.forward(2);
    let l2 = multi(&zk2, 2, &path, 7, "host2", &clock);
    assert_eq!(l2.slot(), Some(1));
    clock.forward(2);
    let l3 = multi(&zk3, 2, &path, 7, "host3", &clock);
    assert!(!l3.obtained() && l3.slot().is_none());
    assert_eq!(children(&zk, &path), ["0", "1"]);
    // test_2_renew: host1 renews its own slot 0.
    let r1 = multi(&zk, 2, &path, 7, "host1", &clock);
    assert_eq!(r1.slot(), Some(0));
    assert!(r1.fence().unwrap().token > l1.fence().unwrap().token);

    // test_2_handover
    let path = unique_path("mlease-handover");
    let clock = MockClock::new(10);
    assert_eq!(multi(&zk, 2, &path, 4, "host1", &clock).slot(), Some(0));
    clock.forward(2);
    assert_eq!(multi(&zk2, 2, &path, 4, "host2", &clock).slot(), Some(1));
    clock.forward(3);
    assert_eq!(multi(&zk3, 2, &path, 4, "host3", &clock).slot(), Some(0));
    clock.forward(2);
    assert_eq!(multi(&zk, 2, &path, 4, "host1", &clock).slot(), Some(1));
}

#[test]
fn lease_survives_a_real_session_expiry_but_its_session_cannot_write() {
    // A lease is time-bounded, not session-bound (kazoo's semantics): expiry of the holder's
    // session neither releases it nor lets others in before its end; the holder can renew
    // from a new session, and the renewal fences off the old grant.
    let (zk, proxy) = connect_expirable();
    let path = unique_path("lease-expiry");
    let clock = MockClock::new(10_000);
    let target = format!("{path}-data");
    let l = lease(&zk, &path, 60, "holder", &clock);
    assert!(l.obtained());
    expire(&zk, &proxy);
    assert_eq!(
        l.write(
            &zk,
            vec![Op::create(&target, &b"x"[..], CreateOptions::persistent())]
        )
        .unwrap_err(),
        Error::SessionExpired
    );
    let zk2 = connect();
    clock.forward(30);
    assert!(!lease(&zk2, &path, 60, "intruder", &clock).obtained());
    let renewed = lease(&zk2, &path, 60, "holder", &clock);
    assert!(renewed.obtained());
    assert!(LeaseFence::is_lost(
        &l.write(&zk2, vec![Op::check(&path, None)]).unwrap_err()
    ));
    renewed
        .write(
            &zk2,
            vec![Op::create(&target, &b"x"[..], CreateOptions::persistent())],
        )
        .unwrap();
    zk2.delete(&target, None).unwrap();
}

#[test]
fn lease_with_the_real_clock() {
    let zk = connect();
    let path = unique_path("lease-realtime");
    let now = SystemTime::now;
    let l = NonBlockingLease::obtain(&zk, &path, Duration::from_secs(30), "me", &now).unwrap();
    assert!(l.obtained());
    assert!(l.is_valid_at(SystemTime::now()));
    assert!(!l.is_valid_at(SystemTime::now() + Duration::from_secs(31)));
    let other =
        NonBlockingLease::obtain_within(&zk, &path, Duration::from_secs(30), "you", &now, None)
            .unwrap();
    assert!(!other.obtained());
}

// ---------------------------------------------------------------------------------------------
// Interoperation with kazoo

/// Parse the kazoo partitioner's report `{"items": [...], "members": [...]}`.
fn kazoo_share(line: &str) -> (Vec<String>, Vec<String>) {
    fn list(line: &str, key: &str) -> Vec<String> {
        let start = line.find(&format!("\"{key}\": [")).unwrap() + key.len() + 5;
        let end = start + line[start..].find(']').unwrap();
        line[start..end]
            .split(", ")
            .filter(|s| !s.is_empty())
            .map(|s| s.trim_matches('"').to_owned())
            .collect()
    }
    (list(line, "items"), list(line, "members"))
}

#[test]
fn kazoo_and_our_partitioners_divide_one_set() {
    let path = unique_path("interop-part");
    let items = ["q0", "q1", "q2", "q3", "q4"];
    let mut py = Py::session(
        r#"
items = ["q0", "q1", "q2", "q3", "q4"]
qp = zk.SetPartitioner(path, set=items, identifier="kazoo", time_boundary=0.5,
                       max_reaction_time=0.2)
out("joined")
last = None
deadline = time.time() + 60
while time.time() < deadline:
    if poll_cmd() == "stop":
        qp.finish()
        out("finished")
        break
    if qp.failed:
        out("failed")
        break
    elif qp.release:
        qp.release_set()
    elif qp.acquired:
        share = (sorted(list(qp)), sorted(list(qp._party)))
        if share != last:
            out(json.dumps({"items": share[0], "members": share[1]}))
            last = share
    elif qp.allocating:
        qp.wait_for_acquire(0.2)
    time.sleep(0.05)
"#,
        &path,
    );
    py.expect("joined");
    let zk = connect();
    let mut ours = SetPartitioner::builder(&path, items)
        .identifier("rust")
        .time_boundary(Duration::from_millis(500))
        .max_reaction_time(Duration::from_millis(200))
        .build(zk.clone())
        .unwrap();
    // Both settle on the two-member membership: kazoo (index 0) gets q0, q2, q4; we get q1, q3.
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut kazoo = (Vec::new(), Vec::new());
    loop {
        assert!(
            Instant::now() < deadline,
            "no agreement; kazoo {kazoo:?}, ours {ours:?}"
        );
        while let Some(line) = py.try_line(Duration::from_millis(10)) {
            kazoo = kazoo_share(&line);
        }
        match ours.state() {
            PartitionState::Release => ours.release_set().unwrap(),
            PartitionState::Allocating => {
                ours.wait_for_acquire(Duration::from_millis(200)).unwrap();
            }
            PartitionState::Acquired
                if ours.members().len() == 2 && kazoo.1 == strings(&["kazoo", "rust"]) =>
            {
                break;
            }
            PartitionState::Acquired => std::thread::sleep(Duration::from_millis(50)),
            PartitionState::Failure => panic!("our partitioner failed"),
        }
    }
    assert_eq!(kazoo.0, strings(&["q0", "q2", "q4"]));
    assert_eq!(ours.partition(), strings(&["q1", "q3"]));
    // kazoo's lock nodes and ours share the item paths and naming.
    for item in items {
        let kids = children(&zk, &format!("{path}/locks/{item}"));
        assert_eq!(kids.len(), 1, "{item}: {kids:?}");
        assert_kazoo_lock_name(&kids[0]);
    }
    // kazoo leaves: we are told to release and then take the whole set (waiting on kazoo's
    // lock nodes where needed).
    py.send("stop");
    py.expect("finished");
    let all = acquire(&mut ours, Duration::from_secs(30));
    assert_eq!(all, strings(&items));
    assert_eq!(ours.members(), strings(&["rust"]));
    ours.finish().unwrap();
    py.finish();
}

#[test]
fn kazoo_partitioner_waits_for_our_locks() {
    // We hold the whole set; kazoo joins, so we must release; kazoo can only get its share
    // once our locks are gone, and while it cannot, it keeps allocating.
    let path = unique_path("interop-part-wait");
    let zk = connect();
    let mut ours = SetPartitioner::builder(&path, ["a", "b"])
        .identifier("rust")
        .time_boundary(Duration::from_millis(200))
        .max_reaction_time(Duration::from_millis(100))
        .build(zk.clone())
        .unwrap();
    assert_eq!(
        acquire(&mut ours, Duration::from_secs(10)),
        strings(&["a", "b"])
    );
    let mut py = Py::session(
        r#"
qp = zk.SetPartitioner(path, set=["a", "b"], identifier="kazoo", time_boundary=0.3,
                       max_reaction_time=0.1)
out("joined")
qp.wait_for_acquire(2.0)
out("acquired" if qp.acquired else "allocating")
wait_cmd()
while not qp.acquired and not qp.failed:
    if qp.release:
        qp.release_set()
    qp.wait_for_acquire(0.2)
out(json.dumps({"items": sorted(list(qp)), "members": sorted(list(qp._party))}))
wait_cmd()
qp.finish()
"#,
        &path,
    );
    py.expect("joined");
    // We keep our locks (not releasing yet): kazoo cannot acquire its share.
    py.expect("allocating");
    let deadline = Instant::now() + Duration::from_secs(10);
    while ours.state() == PartitionState::Acquired {
        assert!(Instant::now() < deadline, "we were not told to release");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(ours.state(), PartitionState::Release);
    ours.release_set().unwrap();
    py.send("go");
    let got = acquire(&mut ours, Duration::from_secs(20));
    let (kazoo_items, members) = kazoo_share(&py.line());
    assert_eq!(members, strings(&["kazoo", "rust"]));
    assert_eq!(kazoo_items, strings(&["a"]));
    assert_eq!(got, strings(&["b"]));
    py.send("done");
    py.finish();
    ours.finish().unwrap();
}

#[test]
fn kazoo_and_our_leases_interoperate() {
    let path = unique_path("interop-lease");
    let zk = connect();
    // 1. kazoo writes a lease (an awkward identifier, a fixed clock); we read the same bytes
    //    we would write, and are refused.
    let mut py = Py::session(
        r#"
l = NonBlockingLease(zk, path, datetime.timedelta(seconds=60), identifier="kazoo-h\u00f4st \"q\"",
                     utcnow=clock(1700000000))
out("obtained" if l else "refused")
data, _ = zk.get(path + "/lease_holder")
out(data.decode("ascii"))
wait_cmd()
# 3. our lease blocks kazoo; kazoo with our identifier renews it.
other = NonBlockingLease(zk, path, datetime.timedelta(seconds=60), identifier="kazoo",
                         utcnow=clock(1700000030))
out("obtained" if other else "refused")
same = NonBlockingLease(zk, path, datetime.timedelta(seconds=60), identifier="rust",
                        utcnow=clock(1700000040))
out("obtained" if same else "refused")
m = MultiNonBlockingLease(zk, 2, path + "-m", datetime.timedelta(seconds=60),
                          identifier="kazoo", utcnow=clock(1700000040))
out("obtained" if m else "refused")
"#,
        &path,
    );
    py.expect("obtained");
    let kazoo_bytes = py.line();
    let record = LeaseRecord {
        version: 1,
        holder: "kazoo-hôst \"q\"".into(),
        end: UNIX_EPOCH + Duration::from_secs(1_700_000_060),
    };
    assert_eq!(kazoo_bytes.as_bytes(), &record.encode()[..]);
    assert_eq!(
        LeaseRecord::decode(kazoo_bytes.as_bytes()).as_ref(),
        Some(&record)
    );
    let at = |secs: u64| move || UNIX_EPOCH + Duration::from_secs(secs);
    let refused = NonBlockingLease::obtain(
        &zk,
        &path,
        Duration::from_secs(60),
        "rust",
        &at(1_700_000_010),
    )
    .unwrap();
    assert!(!refused.obtained());
    assert_eq!(refused.record(), Some(&record));

    // 2. Past its end we take it over (kazoo's lock nodes and ours share the path).
    let ours = NonBlockingLease::obtain(
        &zk,
        &path,
        Duration::from_secs(60),
        "rust",
        &at(1_700_000_061),
    )
    .unwrap();
    assert!(ours.obtained());
    ours.write(&zk, vec![Op::check(&path, None)]).unwrap();
    py.send("go");
    // 3. kazoo is refused while ours runs; kazoo renewing as "rust" is a new grant, and our
    //    old fence notices (kazoo recreated the holder node).
    py.expect("refused");
    py.expect("obtained");
    let err = ours.write(&zk, vec![Op::check(&path, None)]).unwrap_err();
    assert!(LeaseFence::is_lost(&err), "{err:?}");
    let (data, _) = zk.get_data(&format!("{path}/lease_holder")).unwrap();
    let rec = LeaseRecord::decode(&data).unwrap();
    assert_eq!(rec.holder, "rust");
    assert_eq!(format_utc(rec.end), "2023-11-14T22:15:00");
    // 4. Multi: kazoo took slot 0; we get slot 1, a third party nothing.
    py.expect("obtained");
    let m = MultiNonBlockingLease::obtain(
        &zk,
        2,
        &format!("{path}-m"),
        Duration::from_secs(60),
        "rust",
        &at(1_700_000_041),
    )
    .unwrap();
    assert_eq!(m.slot(), Some(1));
    let third = MultiNonBlockingLease::obtain(
        &zk,
        2,
        &format!("{path}-m"),
        Duration::from_secs(60),
        "third",
        &at(1_700_000_042),
    )
    .unwrap();
    assert!(!third.obtained());
    py.finish();
}

#[test]
fn kazoo_lease_contenders_serialise_with_ours() {
    // Many kazoo and Rust clients race for one lease with the real clock: exactly one
    // identity obtains it.
    let path = unique_path("interop-lease-race");
    let winners = Arc::new(Mutex::new(Vec::new()));
    let mut py = Py::session(
        r#"
wait_cmd()
got = []
for i in range(5):
    l = NonBlockingLease(zk, path, datetime.timedelta(seconds=60), identifier="kazoo-%d" % i)
    if l:
        got.append(i)
out("won" if got else "lost")
"#,
        &path,
    );
    let mut threads = Vec::new();
    let start = Arc::new(AtomicBool::new(false));
    for i in 0..5 {
        let (path, winners, start) = (path.clone(), winners.clone(), start.clone());
        threads.push(std::thread::spawn(move || {
            let zk = connect();
            while !start.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
            let now = SystemTime::now;
            let id = format!("rust-{i}");
            let l =
                NonBlockingLease::obtain(&zk, &path, Duration::from_secs(60), &id, &now).unwrap();
            if l.obtained() {
                winners.lock().unwrap().push(id);
            }
        }));
    }
    py.send("go");
    start.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    let kazoo_won = py.line() == "won";
    let rust_winners = winners.lock().unwrap().len();
    assert_eq!(
        usize::from(kazoo_won) + rust_winners,
        1,
        "kazoo won: {kazoo_won}, rust winners: {rust_winners}"
    );
    py.finish();
    let zk = connect();
    assert_eq!(children(&zk, &path), ["lease_holder"]);
}
