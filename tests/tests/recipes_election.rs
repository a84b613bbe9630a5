//! The election family against a real server: DataWatch and ChildrenWatch, Election, Party and
//! ShallowParty; a real session expiry mid-leadership and mid-membership (FAULTS.md F7); and
//! interoperation with kazoo 2.8 (`/usr/bin/python3`) on the same paths.

#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use zk_integration_tests::connect_to as connect;
use zk_integration_tests::expiry::{Proxy, expire};
use zk_integration_tests::kazoo::Kazoo;
use zk_integration_tests::{shared_server, unique_path};
use zk_recipes::election::{Election, LeadershipState};
use zk_recipes::party::{Party, ShallowParty};
use zk_recipes::watchers::{ChildrenWatch, DataWatch};
use zk_recipes::{CreateMode, CreateOptions, Error, Fence, Op};
use zk_session::Client;

fn root(prefix: &str) -> (Client, String) {
    let zk = connect(&shared_server().addr);
    let root = unique_path(prefix);
    zk.create(&root, b"", &CreateOptions::persistent()).unwrap();
    (zk, root)
}

fn soon(secs: u64) -> Option<Instant> {
    Some(Instant::now() + Duration::from_secs(secs))
}

/// Poll `f` until it returns true, or panic after `timeout`.
fn eventually(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ------------------------------------------------------------------------------- watchers

#[test]
fn data_watch_follows_a_node_through_deletion_and_recreation() {
    let (zk, root) = root("recipes-datawatch");
    let path = format!("{root}/node");
    let mut w = DataWatch::new(zk.clone(), path.clone());
    assert_eq!(w.next(soon(5)).unwrap(), Some((None, None)));
    // Nothing changes: the deadline passes.
    let t = Instant::now();
    assert_eq!(w.next(Some(t + Duration::from_millis(200))).unwrap(), None);
    assert!(t.elapsed() >= Duration::from_millis(200));

    let writer = connect(&shared_server().addr);
    writer
        .create(&path, b"one", &CreateOptions::persistent())
        .unwrap();
    let (data, stat) = w.next(soon(5)).unwrap().unwrap();
    assert_eq!(data.as_deref(), Some(&b"one"[..]));
    assert_eq!(stat.unwrap().version, 0);
    assert_eq!(
        w.last_event().map(|e| e.event_type),
        Some(zk_proto::EventType::NodeCreated)
    );
    writer.set_data(&path, b"two", None).unwrap();
    let (data, stat) = w.next(soon(5)).unwrap().unwrap();
    assert_eq!(data.as_deref(), Some(&b"two"[..]));
    assert_eq!(stat.unwrap().version, 1);
    writer.delete(&path, None).unwrap();
    assert_eq!(w.next(soon(5)).unwrap(), Some((None, None)));
    writer
        .create(&path, b"three", &CreateOptions::persistent())
        .unwrap();
    let (data, _) = w.next(soon(5)).unwrap().unwrap();
    assert_eq!(data.as_deref(), Some(&b"three"[..]));

    // kazoo's callback form: stop by returning false.
    let mut seen = Vec::new();
    let mut again = DataWatch::new(zk.clone(), path.clone());
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        writer.set_data(&path, b"four", None).unwrap();
    });
    again
        .for_each(|data, _| {
            seen.push(data.map(|d| d.to_vec()));
            seen.len() < 2
        })
        .unwrap();
    t.join().unwrap();
    assert_eq!(seen, vec![Some(b"three".to_vec()), Some(b"four".to_vec())]);
    zk.delete_recursive(&root).unwrap();
}

#[test]
fn children_watch_reports_changes_and_ends_when_the_node_goes() {
    let (zk, root) = root("recipes-childrenwatch");
    let mut w = ChildrenWatch::new(zk.clone(), root.clone());
    assert_eq!(w.next(soon(5)).unwrap(), Some(vec![]));
    let writer = connect(&shared_server().addr);
    writer
        .create(&format!("{root}/a"), b"", &CreateOptions::persistent())
        .unwrap();
    assert_eq!(w.next(soon(5)).unwrap(), Some(vec!["a".to_owned()]));
    writer
        .create(&format!("{root}/b"), b"", &CreateOptions::persistent())
        .unwrap();
    let mut c = w.next(soon(5)).unwrap().unwrap();
    c.sort();
    assert_eq!(c, vec!["a", "b"]);
    assert_eq!(
        w.next(Some(Instant::now() + Duration::from_millis(200)))
            .unwrap(),
        None
    );
    writer.delete_recursive(&root).unwrap();
    // Children go first (one or more lists), then the node: the watch ends.
    loop {
        match w.next(soon(5)) {
            Ok(Some(_)) => {}
            Ok(None) => panic!("no end"),
            Err(e) => {
                assert_eq!(e, Error::NoNode);
                break;
            }
        }
    }
    assert_eq!(w.next(soon(1)), Err(Error::NoNode));
    // A missing node ends it at once.
    let mut missing = ChildrenWatch::new(zk, format!("{root}/none"));
    assert_eq!(missing.next(soon(1)), Err(Error::NoNode));
}

// ------------------------------------------------------------------------------- election

#[test]
fn election_runs_leaders_in_turn_and_lists_contenders() {
    let (zk, root) = root("recipes-election");
    let path = format!("{root}/election");
    let elected: Arc<std::sync::Mutex<Vec<(String, i64)>>> = Arc::default();
    let (queued_tx, queued_rx) = mpsc::channel::<()>();
    let mut threads = Vec::new();
    let first = Election::new(connect(&shared_server().addr), &path, "c0");
    let (go_tx, go_rx) = mpsc::channel::<()>();
    {
        let elected = elected.clone();
        threads.push(std::thread::spawn(move || {
            first
                .run(|lead| {
                    assert!(lead.is_leader());
                    elected
                        .lock()
                        .unwrap()
                        .push((first.identifier().to_owned(), lead.token()));
                    queued_tx.send(()).unwrap();
                    go_rx.recv().unwrap();
                })
                .unwrap()
                .unwrap();
        }));
    }
    queued_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    for i in 1..3 {
        let elected = elected.clone();
        let p = path.clone();
        threads.push(std::thread::spawn(move || {
            let e = Election::new(connect(&shared_server().addr), &p, &format!("c{i}"));
            e.run(|lead| {
                elected
                    .lock()
                    .unwrap()
                    .push((e.identifier().to_owned(), lead.token()));
                std::thread::sleep(Duration::from_millis(50));
            })
            .unwrap()
            .unwrap();
        }));
        // Queue them in order.
        let observer = Election::new(zk.clone(), &path, "observer");
        eventually("a contender queued", Duration::from_secs(5), || {
            observer.contenders().unwrap().len() == i + 1
        });
    }
    let observer = Election::new(zk.clone(), &path, "observer");
    assert_eq!(observer.contenders().unwrap(), vec!["c0", "c1", "c2"]);
    go_tx.send(()).unwrap();
    for t in threads {
        t.join().unwrap();
    }
    let elected = elected.lock().unwrap().clone();
    let names: Vec<&str> = elected.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(names, vec!["c0", "c1", "c2"]);
    assert!(elected.windows(2).all(|w| w[0].1 < w[1].1), "{elected:?}");
    assert_eq!(observer.contenders().unwrap(), Vec::<String>::new());
    zk.delete_recursive(&root).unwrap();
}

#[test]
fn cancel_and_timeout_withdraw_a_waiting_contender() {
    let (zk, root) = root("recipes-election-cancel");
    let path = format!("{root}/election");
    let leader = Election::new(connect(&shared_server().addr), &path, "leader");
    let waiter = Election::new(connect(&shared_server().addr), &path, "waiter");
    let (tx, rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    std::thread::scope(|s| {
        s.spawn(move || {
            leader
                .run(|_| {
                    tx.send(()).unwrap();
                    release_rx.recv().unwrap();
                })
                .unwrap();
        });
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
        // Timed out: withdrawn, no node left.
        let t = Instant::now();
        assert_eq!(
            waiter.run_within(Some(Duration::from_millis(300)), |_| ()),
            Err(Error::Timeout)
        );
        assert!(t.elapsed() < Duration::from_secs(2));
        assert_eq!(zk.get_children(&path).unwrap().len(), 1);
        // Cancelled from another thread while waiting.
        let h = s.spawn(|| waiter.run(|_| "led"));
        eventually("the waiter queued", Duration::from_secs(5), || {
            zk.get_children(&path).unwrap().len() == 2
        });
        let t = Instant::now();
        waiter.cancel();
        assert_eq!(h.join().unwrap(), Ok(None));
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        assert_eq!(zk.get_children(&path).unwrap().len(), 1);
        assert_eq!(waiter.contenders().unwrap(), vec!["leader"]);
        release_tx.send(()).unwrap();
    });
    // After the leader left, the waiter can run again.
    assert_eq!(waiter.run(|_| "led"), Ok(Some("led")));
    zk.delete_recursive(&root).unwrap();
}

#[test]
fn a_leader_is_told_it_lost_after_real_session_expiry_and_its_fence_holds() {
    let (zk, root) = root("recipes-election-expiry");
    let path = format!("{root}/election");
    let log = format!("{root}/log");
    zk.create(&log, b"", &CreateOptions::persistent()).unwrap();
    let proxy = Proxy::start(&shared_server().addr);
    let a = Client::builder(&proxy.addr)
        .unwrap()
        .session_timeout(Duration::from_secs(4))
        .connect()
        .unwrap();
    let leader = Election::new(a.clone(), &path, "a");
    let next = Election::new(connect(&shared_server().addr), &path, "next");
    let entry = |who: &str| {
        vec![Op::create(
            &format!("{log}/e-"),
            who.to_owned(),
            CreateOptions::new(CreateMode::PersistentSequential),
        )]
    };
    let (leading_tx, leading_rx) = mpsc::channel::<()>();
    let (expired_tx, expired_rx) = mpsc::channel::<()>();
    std::thread::scope(|s| {
        let led = s.spawn(move || {
            leader
                .run(|lead| {
                    lead.write(entry("a")).unwrap();
                    assert_eq!(lead.state(), LeadershipState::Leader);
                    // Not lost yet.
                    assert_eq!(
                        lead.wait_lost(Some(Instant::now() + Duration::from_millis(100))),
                        Ok(false)
                    );
                    leading_tx.send(()).unwrap();
                    expired_rx.recv().unwrap();
                    // Told: the session is gone, and with it leadership.
                    let t = Instant::now();
                    assert_eq!(lead.wait_lost(soon(10)), Ok(true));
                    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
                    assert!(!lead.is_leader());
                    assert_eq!(lead.state(), LeadershipState::Lost);
                    assert_eq!(lead.check(None), Ok(false));
                    let err = lead.write(entry("a-late")).unwrap_err();
                    assert!(Fence::is_lost(&err), "{err}");
                })
                .unwrap()
        });
        leading_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        let waiting = s.spawn(|| {
            next.run(|lead| {
                lead.write(entry("next")).unwrap();
                lead.token()
            })
        });
        eventually("next queued", Duration::from_secs(5), || {
            next.contenders().unwrap() == vec!["a", "next"]
        });
        let t = Instant::now();
        expire(&a, &proxy);
        expired_tx.send(()).unwrap();
        // The next contender takes over as soon as the server deleted the leader's node.
        let token = waiting.join().unwrap().unwrap().unwrap();
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        assert!(token > 0, "the first leader held token 0");
        led.join().unwrap();
    });
    let mut entries = zk.get_children(&log).unwrap();
    entries.sort();
    let data: Vec<String> = entries
        .iter()
        .map(|e| {
            let (d, _) = zk.get_data(&format!("{log}/{e}")).unwrap();
            String::from_utf8(d.to_vec()).unwrap()
        })
        .collect();
    assert_eq!(
        data,
        vec!["a", "next"],
        "the stale leader's write was fenced off"
    );
    zk.delete_recursive(&root).unwrap();
}

// ------------------------------------------------------------------------------- parties

#[test]
fn parties_join_list_wait_and_leave() {
    let (zk, root) = root("recipes-party");
    let (party_path, shallow_path) = (format!("{root}/party"), format!("{root}/shallow"));
    let mut a = Party::new(zk.clone(), &party_path, "alice");
    let mut sa = ShallowParty::new(zk.clone(), &shallow_path, "alice");
    assert_eq!(a.len(), Ok(0));
    assert_eq!(a.is_empty(), Ok(true));
    a.join().unwrap();
    sa.join().unwrap();
    a.join().unwrap(); // twice is harmless
    assert!(a.is_member() && sa.is_member());
    assert_eq!(a.members().unwrap(), vec!["alice"]);
    assert_eq!(sa.members().unwrap(), vec!["alice"]);
    assert_eq!(
        a.wait_for_members(2, Some(Duration::from_millis(200))),
        Err(Error::Timeout)
    );
    let bob = std::thread::spawn({
        let (party_path, shallow_path) = (party_path.clone(), shallow_path.clone());
        move || {
            std::thread::sleep(Duration::from_millis(200));
            let zk = connect(&shared_server().addr);
            let mut b = Party::new(zk.clone(), &party_path, "bob");
            let mut sb = ShallowParty::new(zk, &shallow_path, "bob");
            b.join().unwrap();
            sb.join().unwrap();
            (b, sb)
        }
    });
    let mut members = a.wait_for_members(2, Some(Duration::from_secs(5))).unwrap();
    members.sort();
    assert_eq!(members, vec!["alice", "bob"]);
    let mut members = sa
        .wait_for_members(2, Some(Duration::from_secs(5)))
        .unwrap();
    members.sort();
    assert_eq!(members, vec!["alice", "bob"]);
    let (mut b, sb) = bob.join().unwrap();
    assert_eq!(b.leave(), Ok(true));
    assert_eq!(b.leave(), Ok(false));
    assert!(!b.is_member());
    assert_eq!(a.members().unwrap(), vec!["alice"]);
    // Dropping a member leaves (best effort).
    drop(sb);
    assert_eq!(sa.members().unwrap(), vec!["alice"]);
    assert_eq!(a.leave(), Ok(true));
    assert_eq!(a.len(), Ok(0));
    zk.delete_recursive(&root).unwrap();
}

#[test]
fn a_member_is_told_it_left_after_real_session_expiry() {
    let (zk, root) = root("recipes-party-expiry");
    let path = format!("{root}/party");
    let proxy = Proxy::start(&shared_server().addr);
    let a = Client::builder(&proxy.addr)
        .unwrap()
        .session_timeout(Duration::from_secs(4))
        .connect()
        .unwrap();
    let mut member = Party::new(a.clone(), &path, "a");
    let mut shallow = ShallowParty::new(a.clone(), &format!("{root}/shallow"), "a");
    member.join().unwrap();
    shallow.join().unwrap();
    assert_eq!(member.check_member(None), Ok(true));
    let mut observer = Party::new(zk.clone(), &path, "observer");
    assert_eq!(observer.members().unwrap(), vec!["a"]);
    assert_eq!(
        member.wait_left(Some(Instant::now() + Duration::from_millis(100))),
        Ok(false)
    );
    expire(&a, &proxy);
    assert_eq!(observer.members().unwrap(), Vec::<String>::new());
    let t = Instant::now();
    assert_eq!(member.wait_left(soon(10)), Ok(true));
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(!member.is_member());
    assert!(!shallow.is_member(), "told without asking the server");
    assert_eq!(shallow.check_member(None), Ok(false));
    assert_eq!(member.join(), Err(Error::SessionExpired));
    zk.delete_recursive(&root).unwrap();
}

// ------------------------------------------------------------------------------- kazoo

/// How long a kazoo script may run.
const KAZOO_WAIT: Duration = Duration::from_secs(40);

/// A kazoo contender: runs `Election(path, ident)`; as leader creates `flags/elected-<ident>`,
/// then waits for `flags/release` (or 20 s).
const KAZOO_CONTENDER: &str = r#"
import sys, time
from kazoo.client import KazooClient
hosts, path, ident, flags = sys.argv[1:5]
zk = KazooClient(hosts=hosts, timeout=10)
zk.start(timeout=10)
def lead():
    zk.create(flags + "/elected-" + ident, b"", makepath=True)
    end = time.time() + 20
    while zk.exists(flags + "/release") is None and time.time() < end:
        time.sleep(0.02)
zk.Election(path, ident).run(lead)
print("done")
zk.stop()
"#;

#[test]
fn kazoo_and_rust_contenders_share_an_election() {
    let (zk, root) = root("recipes-election-kazoo");
    let path = format!("{root}/election");
    let flags = format!("{root}/flags");
    zk.create(&flags, b"", &CreateOptions::persistent())
        .unwrap();

    // A kazoo leader makes our contender wait.
    let kazoo = Kazoo::script(KAZOO_CONTENDER, &[&path, "kazoo", &flags]);
    eventually("the kazoo leader", Duration::from_secs(15), || {
        zk.exists(&format!("{flags}/elected-kazoo"))
            .unwrap()
            .is_some()
    });
    let ours = Election::new(connect(&shared_server().addr), &path, "rust");
    let elected = AtomicBool::new(false);
    std::thread::scope(|s| {
        let h = s.spawn(|| {
            ours.run(|lead| {
                elected.store(true, Ordering::SeqCst);
                lead.token()
            })
        });
        eventually("our contender queued", Duration::from_secs(5), || {
            ours.contenders().unwrap() == vec!["kazoo", "rust"]
        });
        std::thread::sleep(Duration::from_millis(300));
        assert!(!elected.load(Ordering::SeqCst), "elected while kazoo leads");
        zk.create(
            &format!("{flags}/release"),
            b"",
            &CreateOptions::persistent(),
        )
        .unwrap();
        assert!(h.join().unwrap().unwrap().is_some());
    });
    assert!(kazoo.output_within(KAZOO_WAIT).contains(&"done".to_owned()));
    zk.delete(&format!("{flags}/release"), None).unwrap();

    // Our leader makes a kazoo contender wait; kazoo sees our identifier.
    let (leading_tx, leading_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let ours_ref = &ours;
    std::thread::scope(|s| {
        s.spawn(move || {
            ours_ref
                .run(|_| {
                    leading_tx.send(()).unwrap();
                    release_rx.recv().unwrap();
                })
                .unwrap();
        });
        leading_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        let kazoo = Kazoo::script(KAZOO_CONTENDER, &[&path, "kazoo2", &flags]);
        eventually(
            "the kazoo contender queued",
            Duration::from_secs(15),
            || ours.contenders().unwrap() == vec!["rust", "kazoo2"],
        );
        let listed = Kazoo::script(
            "import sys, json\nfrom kazoo.client import KazooClient\nzk = KazooClient(hosts=sys.argv[1]); zk.start(timeout=10)\nprint(json.dumps(zk.Election(sys.argv[2]).contenders()))\nzk.stop()",
            &[&path],
        )
        .output_within(Duration::from_secs(20));
        assert_eq!(listed, [r#"["rust", "kazoo2"]"#]);
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            zk.exists(&format!("{flags}/elected-kazoo2"))
                .unwrap()
                .is_none(),
            "kazoo elected while we lead"
        );
        release_tx.send(()).unwrap();
        eventually("kazoo elected after us", Duration::from_secs(10), || {
            zk.exists(&format!("{flags}/elected-kazoo2"))
                .unwrap()
                .is_some()
        });
        zk.create(
            &format!("{flags}/release"),
            b"",
            &CreateOptions::persistent(),
        )
        .unwrap();
        assert!(kazoo.output_within(KAZOO_WAIT).contains(&"done".to_owned()));
    });
    zk.delete_recursive(&root).unwrap();
}

#[test]
fn kazoo_and_rust_members_share_parties() {
    let (zk, root) = root("recipes-party-kazoo");
    let (party, shallow, flags) = (
        format!("{root}/party"),
        format!("{root}/shallow"),
        format!("{root}/flags"),
    );
    zk.create(&flags, b"", &CreateOptions::persistent())
        .unwrap();
    let mut p = Party::new(zk.clone(), &party, "rust");
    let mut sp = ShallowParty::new(zk.clone(), &shallow, "rust");
    p.join().unwrap();
    sp.join().unwrap();
    let script = r#"
import sys, time, json
from kazoo.client import KazooClient
hosts, party, shallow, flags = sys.argv[1:5]
zk = KazooClient(hosts=hosts, timeout=10)
zk.start(timeout=10)
p = zk.Party(party, "kazoo")
sp = zk.ShallowParty(shallow, "kazoo")
p.join(); sp.join()
zk.create(flags + "/joined", b"")
end = time.time() + 20
while zk.exists(flags + "/release") is None and time.time() < end:
    time.sleep(0.02)
print(json.dumps([sorted(p), sorted(sp), len(p), len(sp)]))
p.leave(); sp.leave()
zk.stop()
"#;
    let kazoo = Kazoo::script(script, &[&party, &shallow, &flags]);
    eventually("kazoo joined", Duration::from_secs(15), || {
        zk.exists(&format!("{flags}/joined")).unwrap().is_some()
    });
    let mut members = p.members().unwrap();
    members.sort();
    assert_eq!(members, vec!["kazoo", "rust"]);
    let mut members = sp.members().unwrap();
    members.sort();
    assert_eq!(members, vec!["kazoo", "rust"]);
    assert_eq!(p.len(), Ok(2));
    zk.create(
        &format!("{flags}/release"),
        b"",
        &CreateOptions::persistent(),
    )
    .unwrap();
    let out = kazoo.output_within(KAZOO_WAIT).join("\n");
    assert_eq!(
        out.trim(),
        r#"[["kazoo", "rust"], ["kazoo", "rust"], 2, 2]"#
    );
    // kazoo left: only we remain.
    assert_eq!(p.members().unwrap(), vec!["rust"]);
    assert_eq!(sp.members().unwrap(), vec!["rust"]);
    zk.delete_recursive(&root).unwrap();
}

#[test]
fn kazoo_data_and_children_watches_see_our_changes() {
    let (zk, root) = root("recipes-watch-kazoo");
    let node = format!("{root}/node");
    // kazoo's DataWatch and ChildrenWatch record what they see until told to stop; ours
    // watch kazoo's writes.
    let script = r#"
import sys, time, json
from kazoo.client import KazooClient
hosts, root, node = sys.argv[1:4]
zk = KazooClient(hosts=hosts, timeout=10)
zk.start(timeout=10)
data, kids = [], []
@zk.DataWatch(node)
def d(value, stat):
    data.append(None if value is None else value.decode())
@zk.ChildrenWatch(root)
def c(children):
    kids.append(sorted(children))
zk.create(root + "/ready", b"")
end = time.time() + 20
while zk.exists(root + "/stop") is None and time.time() < end:
    time.sleep(0.02)
time.sleep(0.2)
zk.set(node, b"from-kazoo")
time.sleep(0.2)
print(json.dumps([data, kids[-1]]))
zk.stop()
"#;
    let mut ours = DataWatch::new(zk.clone(), node.clone());
    assert_eq!(ours.next(soon(5)).unwrap(), Some((None, None)));
    let kazoo = Kazoo::script(script, &[&root, &node]);
    eventually("kazoo ready", Duration::from_secs(15), || {
        zk.exists(&format!("{root}/ready")).unwrap().is_some()
    });
    zk.create(&node, b"one", &CreateOptions::persistent())
        .unwrap();
    let (d, _) = ours.next(soon(5)).unwrap().unwrap();
    assert_eq!(d.as_deref(), Some(&b"one"[..]));
    std::thread::sleep(Duration::from_millis(200));
    zk.set_data(&node, b"two", None).unwrap();
    let (d, _) = ours.next(soon(5)).unwrap().unwrap();
    assert_eq!(d.as_deref(), Some(&b"two"[..]));
    std::thread::sleep(Duration::from_millis(200));
    zk.create(&format!("{root}/stop"), b"", &CreateOptions::persistent())
        .unwrap();
    // kazoo's write reaches our watch.
    let (d, _) = ours.next(soon(10)).unwrap().unwrap();
    assert_eq!(d.as_deref(), Some(&b"from-kazoo"[..]));
    let out = kazoo.output_within(KAZOO_WAIT).join("\n");
    let line = out.lines().next().unwrap();
    assert!(
        line.starts_with(r#"[[null, "one", "two""#),
        "kazoo's DataWatch saw {line}"
    );
    assert!(
        line.ends_with(r#"["node", "ready", "stop"]]"#),
        "kazoo's ChildrenWatch saw {line}"
    );
    zk.delete_recursive(&root).unwrap();
}
