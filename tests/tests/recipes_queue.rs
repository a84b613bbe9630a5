//! The queue family (`zk_recipes::queue`, `counter`, `barrier`) against a real server: Queue,
//! LockingQueue, Counter (kazoo text int/float, Curator 4-byte), Barrier and DoubleBarrier;
//! their node names and data (kazoo's); a real session expiry mid-hold (FAULTS.md F7); and
//! interoperation with kazoo processes (`/usr/bin/python3`, Debian's kazoo 2.8) on the same
//! paths.

#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use zk_integration_tests::expiry::{connect_expirable, expire};
use zk_integration_tests::kazoo::Kazoo;
use zk_integration_tests::unique_path;
use zk_integration_tests::{
    connect_shared as connect, is_lower_hex as is_hex, sorted_children as children,
};
use zk_recipes::barrier::{Barrier, DoubleBarrier, READY_NODE};
use zk_recipes::counter::{Counter, Update};
use zk_recipes::queue::{LockingQueue, Queue, Taken, entry_key};
use zk_recipes::{CreateOptions, Error, Fence, Op};

/// `entry-PPP-SSSSSSSSSS` (kazoo's entry names).
fn assert_entry_name(name: &str, priority: u16) {
    assert_eq!(name.len(), "entry-".len() + 3 + 1 + 10, "{name}");
    assert!(name.starts_with(&format!("entry-{priority:03}-")), "{name}");
    assert!(name[10..].bytes().all(|b| b.is_ascii_digit()), "{name}");
    assert_eq!(entry_key(name).map(|k| k.0), Some(priority));
}

// ---------------------------------------------------------------------------------------
// Session expiry for real (F7), through a proxy that holds the victim's reconnect back.

// ---------------------------------------------------------------------------------------
// kazoo processes.

const KAZOO_PRELUDE: &str = r#"
import sys, time, threading
from kazoo.client import KazooClient
def client():
    zk = KazooClient(hosts=sys.argv[1], timeout=10.0)
    zk.start(timeout=10)
    return zk
"#;

/// A kazoo script after [`KAZOO_PRELUDE`]: `argv[1]` is the server, the rest `args`.
fn py(script: &str, args: &[&str]) -> Kazoo {
    Kazoo::script(&format!("{KAZOO_PRELUDE}\n{script}"), args)
}

/// Run a kazoo script to completion (within `timeout`) and return its stdout lines.
fn py_run(script: &str, args: &[&str], timeout: Duration) -> Vec<String> {
    py(script, args).output_within(timeout)
}

const SEC: Duration = Duration::from_secs(1);

// ---------------------------------------------------------------------------------------
// Queue

#[test]
fn queue_names_priorities_fifo_and_length() {
    let zk = connect();
    let path = unique_path("queue-basic");
    let q = Queue::new(zk.clone(), &path);
    assert_eq!(q.length().unwrap(), 0);
    assert_eq!(q.get().unwrap(), None);
    assert_eq!(
        q.put(b"x", 1000),
        Err(Error::InvalidUse("priority must be between 0 and 999"))
    );

    let four = q.put(b"four", 101).unwrap();
    let one = q.put(b"one", 0).unwrap();
    q.put(b"two", 0).unwrap();
    q.put(b"three", 10).unwrap();
    assert_entry_name(&four, 101);
    assert_entry_name(&one, 0);
    let names = q.put_all(&[&b"five"[..], b"six"], 999).unwrap();
    assert_eq!(names.len(), 2);
    assert_entry_name(&names[0], 999);
    let kids = children(&zk, &path);
    assert_eq!(kids.len(), 6);
    let (data, stat) = zk.get_data(&format!("{path}/{four}")).unwrap();
    assert_eq!(&data[..], b"four");
    assert_eq!(stat.ephemeral_owner, 0, "entries are persistent");
    assert_eq!(q.length().unwrap(), 6);

    // Priority first, then FIFO.
    let mut got = Vec::new();
    while let Some(v) = q.get().unwrap() {
        got.push(String::from_utf8(v.to_vec()).unwrap());
    }
    assert_eq!(got, ["one", "two", "three", "four", "five", "six"]);
    assert_eq!(q.length().unwrap(), 0);
    q.put(b"seven", 100).unwrap();
    assert_eq!(
        q.take().unwrap(),
        Some(Taken::Item(bytes::Bytes::from_static(b"seven")))
    );
    assert_eq!(q.take().unwrap(), None);
    zk.delete(&path, None).unwrap();
}

#[test]
fn queue_consumers_never_share_an_item() {
    let zk = connect();
    let path = unique_path("queue-race");
    let q = Queue::new(zk.clone(), &path);
    for i in 0..60 {
        q.put(format!("{i}").as_bytes(), 100).unwrap();
    }
    let consumers: Vec<_> = (0..3)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || {
                let q = Queue::new(connect(), &path);
                let mut got = Vec::new();
                while let Some(v) = q.get().unwrap() {
                    got.push(
                        String::from_utf8(v.to_vec())
                            .unwrap()
                            .parse::<u32>()
                            .unwrap(),
                    );
                }
                got
            })
        })
        .collect();
    let mut all: Vec<u32> = consumers
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    assert_eq!(all.len(), 60);
    all.sort_unstable();
    assert_eq!(all, (0..60).collect::<Vec<_>>());
    zk.delete(&path, None).unwrap();
}

// ---------------------------------------------------------------------------------------
// LockingQueue

#[test]
fn locking_queue_get_consume_release_and_names() {
    let zk = connect();
    let path = unique_path("lq-basic");
    let a = LockingQueue::new(zk.clone(), &path);
    assert_eq!(a.id().len(), 32);
    assert!(is_hex(a.id()));
    assert!(!a.holds_lock().unwrap());
    assert!(!a.consume().unwrap());
    assert!(!a.release().unwrap());
    assert_eq!(a.get(Some(Duration::from_millis(100))).unwrap(), None);

    let name = a.put(b"job1", 100).unwrap();
    assert_entry_name(&name, 100);
    assert_eq!(
        children(&zk, &format!("{path}/entries")),
        std::slice::from_ref(&name)
    );
    assert_eq!(children(&zk, &path), ["entries", "taken"]);
    a.put_all(&[&b"job2"[..]], 100).unwrap();
    assert_eq!(a.length().unwrap(), 2);

    let job = a.get(Some(SEC)).unwrap().unwrap();
    assert_eq!(&job[..], b"job1");
    assert_eq!(a.held_entry().as_deref(), Some(name.as_str()));
    // The lock: taken/<entry name>, ephemeral, our id as data.
    let lock = format!("{path}/taken/{name}");
    let (data, stat) = zk.get_data(&lock).unwrap();
    assert_eq!(&data[..], a.id().as_bytes());
    assert_eq!(stat.ephemeral_owner, zk.session_id());
    assert!(a.holds_lock().unwrap());
    // Asked again before consuming: the same item.
    assert_eq!(&a.get(Some(SEC)).unwrap().unwrap()[..], b"job1");
    let fence = a.fence().unwrap();
    assert_eq!(fence.node, lock);
    assert_eq!(fence.token, stat.czxid);
    let target = format!("{path}-fenced");
    fence
        .write(
            &zk,
            vec![Op::create(&target, &b"w"[..], CreateOptions::persistent())],
        )
        .unwrap();

    // Another consumer gets the next item, not the held one.
    let zk2 = connect();
    let b = LockingQueue::new(zk2.clone(), &path);
    assert_eq!(&b.get(Some(SEC)).unwrap().unwrap()[..], b"job2");
    let c = LockingQueue::new(connect(), &path);
    let t0 = Instant::now();
    assert_eq!(c.get(Some(Duration::from_millis(300))).unwrap(), None);
    assert!(t0.elapsed() >= Duration::from_millis(300));

    // A blocked consumer gets an item as soon as one is released.
    let waiter = std::thread::spawn(move || {
        let v = c.get(Some(Duration::from_secs(10))).unwrap();
        (v, c.consume().unwrap())
    });
    std::thread::sleep(Duration::from_millis(200));
    assert!(b.release().unwrap());
    let (v, consumed) = waiter.join().unwrap();
    assert_eq!(&v.unwrap()[..], b"job2");
    assert!(consumed);

    assert!(a.consume().unwrap());
    assert!(!a.holds_lock().unwrap());
    assert!(children(&zk, &format!("{path}/entries")).is_empty());
    assert!(children(&zk, &format!("{path}/taken")).is_empty());
    assert_eq!(a.length().unwrap(), 0);
    zk.delete(&target, None).unwrap();
}

#[test]
fn locking_queue_reports_a_lost_hold_after_real_expiry() {
    let (zk, proxy) = connect_expirable();
    let path = unique_path("lq-expiry");
    let a = LockingQueue::new(zk.clone(), &path);
    a.put(b"job", 100).unwrap();
    assert_eq!(&a.get(Some(SEC)).unwrap().unwrap()[..], b"job");
    let fence = a.fence().unwrap();
    assert!(a.holds_lock().unwrap());

    expire(&zk, &proxy);

    // The hold is gone with the session: not held, fenced writes fail, nothing consumed.
    let watcher = connect();
    let target = format!("{path}-late");
    let err = fence
        .write(
            &zk,
            vec![Op::create(
                &target,
                &b"late"[..],
                CreateOptions::persistent(),
            )],
        )
        .unwrap_err();
    assert!(Fence::is_lost(&err), "{err:?}");
    assert!(!a.holds_lock().unwrap());
    assert!(!a.consume().unwrap());
    assert_eq!(watcher.exists(&target).unwrap(), None);
    // The lock node vanished with the session, so another consumer gets the item
    // (at-least-once).
    let b = LockingQueue::new(watcher.clone(), &path);
    assert_eq!(&b.get(Some(SEC)).unwrap().unwrap()[..], b"job");
    // A fenced write of the new holder, through its own session, goes through.
    b.fence()
        .unwrap()
        .write(
            &watcher,
            vec![Op::create(&target, &b"b"[..], CreateOptions::persistent())],
        )
        .unwrap();
    assert!(b.consume().unwrap());
    assert_eq!(b.length().unwrap(), 0);
    watcher.delete(&target, None).unwrap();
}

// ---------------------------------------------------------------------------------------
// Counter

#[test]
fn counters_int_float_curator_encodings() {
    let zk = connect();
    let path = unique_path("counter");

    let c = Counter::new(zk.clone(), &format!("{path}-int"));
    assert_eq!(c.get().unwrap(), 0);
    // kazoo creates the node empty; an empty node reads as the default.
    assert_eq!(&zk.get_data(c.path()).unwrap().0[..], b"");
    assert_eq!(c.increment(5).unwrap(), Update::Applied { pre: 0, post: 5 });
    assert_eq!(&zk.get_data(c.path()).unwrap().0[..], b"5");
    assert_eq!(
        c.decrement(7).unwrap(),
        Update::Applied { pre: 5, post: -2 }
    );
    assert_eq!(&zk.get_data(c.path()).unwrap().0[..], b"-2");
    assert_eq!(c.set(40).unwrap().applied(), Some(40));
    assert_eq!(c.reset().unwrap(), Update::Applied { pre: 40, post: 0 });

    let f = Counter::new_float(zk.clone(), &format!("{path}-float"), 1.0);
    assert_eq!(f.get().unwrap(), 1.0);
    assert_eq!(f.increment(2.0).unwrap().applied(), Some(3.0));
    assert_eq!(&zk.get_data(f.path()).unwrap().0[..], b"3.0");
    assert_eq!(f.increment(0.25).unwrap().applied(), Some(3.25));
    assert_eq!(&zk.get_data(f.path()).unwrap().0[..], b"3.25");
    // An int counter cannot read a float's text (kazoo: ValueError).
    assert!(matches!(
        Counter::new(zk.clone(), f.path()).get(),
        Err(Error::Protocol(_))
    ));

    let k = Counter::new_curator(zk.clone(), &format!("{path}-curator"));
    assert_eq!(k.increment(258).unwrap().applied(), Some(258));
    assert_eq!(&zk.get_data(k.path()).unwrap().0[..], [0, 0, 1, 2]);
    assert_eq!(k.decrement(260).unwrap().applied(), Some(-2));
    assert_eq!(
        &zk.get_data(k.path()).unwrap().0[..],
        [0xff, 0xff, 0xff, 0xfe]
    );
    assert_eq!(k.set(1).unwrap(), Update::Applied { pre: -2, post: 1 });
    assert_eq!(
        k.increment(i32::MAX),
        Err(Error::InvalidUse("counter change overflows"))
    );
    for p in [c.path(), f.path(), k.path()] {
        zk.delete(p, None).unwrap();
    }
}

#[test]
fn counter_concurrent_increments_are_all_counted() {
    let path = unique_path("counter-race");
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || {
                let c = Counter::new(connect(), &path);
                (0..25)
                    .map(|_| c.increment(1).unwrap().applied().unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut posts: Vec<i64> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    posts.sort_unstable();
    assert_eq!(posts, (1..=100).collect::<Vec<_>>(), "distinct results");
    let zk = connect();
    assert_eq!(Counter::new(zk.clone(), &path).get().unwrap(), 100);
    zk.delete(&path, None).unwrap();
}

#[test]
fn counter_after_real_expiry_fails_and_changes_nothing() {
    let (zk, proxy) = connect_expirable();
    let path = unique_path("counter-expiry");
    let c = Counter::new(zk.clone(), &path);
    assert_eq!(c.increment(3).unwrap().applied(), Some(3));
    expire(&zk, &proxy);
    assert_eq!(c.increment(1), Err(Error::SessionExpired));
    let other = connect();
    assert_eq!(Counter::new(other.clone(), &path).get().unwrap(), 3);
    other.delete(&path, None).unwrap();
}

// ---------------------------------------------------------------------------------------
// Barrier and DoubleBarrier

#[test]
fn barrier_create_wait_remove() {
    let zk = connect();
    let path = unique_path("barrier");
    let b = Barrier::new(zk.clone(), &path);
    assert!(
        b.wait(Some(Duration::from_millis(10))).unwrap(),
        "no barrier: passes"
    );
    assert!(!b.remove().unwrap());
    b.create().unwrap();
    b.create().unwrap();
    assert!(zk.exists(&path).unwrap().is_some());
    let t0 = Instant::now();
    assert!(!b.wait(Some(Duration::from_millis(200))).unwrap());
    assert!(t0.elapsed() >= Duration::from_millis(200));

    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || {
                let b = Barrier::new(connect(), &path);
                let r = b.wait(Some(Duration::from_secs(10))).unwrap();
                (r, Instant::now())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    // A write to the barrier node is not its removal.
    zk.set_data(&path, b"still up", None).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let removed_at = Instant::now();
    assert!(b.remove().unwrap());
    for w in waiters {
        let (passed, at) = w.join().unwrap();
        assert!(passed);
        assert!(at >= removed_at);
    }
    assert!(!b.remove().unwrap());
}

#[test]
fn double_barrier_enter_and_leave_together() {
    let path = unique_path("dbarrier");
    let n = 3;
    let (tx, rx) = channel();
    let participants: Vec<_> = (0..n)
        .map(|i| {
            let (path, tx) = (path.clone(), tx.clone());
            std::thread::spawn(move || {
                let zk = connect();
                std::thread::sleep(Duration::from_millis(100 * i as u64));
                let b = DoubleBarrier::with_identifier(zk.clone(), &path, n, &format!("p{i}"));
                tx.send(("enter", i, Instant::now())).unwrap();
                b.enter(Some(Duration::from_secs(10))).unwrap();
                tx.send(("entered", i, Instant::now())).unwrap();
                assert!(b.participating());
                assert!(b.is_present().unwrap());
                let (data, stat) = zk.get_data(&format!("{path}/{}", b.node_name())).unwrap();
                assert_eq!(&data[..], format!("p{i}").as_bytes());
                assert_eq!(stat.ephemeral_owner, zk.session_id());
                assert_eq!(b.node_name().len(), 32);
                assert!(is_hex(b.node_name()));
                std::thread::sleep(Duration::from_millis(100 * (n - i) as u64));
                tx.send(("leave", i, Instant::now())).unwrap();
                b.leave(Some(Duration::from_secs(10))).unwrap();
                tx.send(("left", i, Instant::now())).unwrap();
                assert!(!b.participating());
            })
        })
        .collect();
    for p in participants {
        p.join().unwrap();
    }
    drop(tx);
    let events: Vec<_> = rx.iter().collect();
    let last = |kind: &str| {
        events
            .iter()
            .filter(|e| e.0 == kind)
            .map(|e| e.2)
            .max()
            .unwrap()
    };
    let first = |kind: &str| {
        events
            .iter()
            .filter(|e| e.0 == kind)
            .map(|e| e.2)
            .min()
            .unwrap()
    };
    assert!(
        first("entered") >= last("enter"),
        "nobody passes enter before all entered"
    );
    assert!(
        first("left") >= last("leave"),
        "nobody passes leave before all left"
    );
    let zk = connect();
    assert!(
        children(&zk, &path).is_empty(),
        "ready and the participants are gone"
    );
    zk.delete(&path, None).unwrap();
}

#[test]
fn double_barrier_timeout_cleans_up_and_expiry_means_leaving() {
    let path = unique_path("dbarrier-expiry");
    let zk = connect();
    let lonely = DoubleBarrier::new(zk.clone(), &path, 2);
    assert_eq!(
        lonely.enter(Some(Duration::from_millis(200))),
        Err(Error::Timeout)
    );
    assert!(
        children(&zk, &path).is_empty(),
        "a timed-out participant leaves no node"
    );
    assert!(!lonely.participating());

    let (victim_zk, proxy) = connect_expirable();
    let victim = DoubleBarrier::new(victim_zk.clone(), &path, 2);
    let other = DoubleBarrier::new(zk.clone(), &path, 2);
    let t = std::thread::spawn(move || {
        victim.enter(Some(Duration::from_secs(10))).unwrap();
        victim
    });
    other.enter(Some(Duration::from_secs(10))).unwrap();
    let victim = t.join().unwrap();
    assert!(children(&zk, &path).contains(&READY_NODE.to_owned()));

    expire(&victim_zk, &proxy);
    // The expired participant is no longer present: it has left.
    assert!(!victim.is_present().unwrap());
    assert_eq!(victim.leave(Some(SEC)), Err(Error::SessionExpired));
    // The other leaves without waiting for it.
    other.leave(Some(Duration::from_secs(5))).unwrap();
    assert!(children(&zk, &path).is_empty());
    zk.delete(&path, None).unwrap();
}

// ---------------------------------------------------------------------------------------
// Interoperation with kazoo

#[test]
fn kazoo_queue_and_ours_share_items_in_order() {
    let zk = connect();
    let path = unique_path("interop-queue");
    let out = py_run(
        r#"
zk = client()
q = zk.Queue(sys.argv[2])
q.put(b"k-four", priority=101)
q.put(b"k-one", priority=0)
q.put(b"k-two", priority=0)
q.put(b"k-three", priority=10)
print(len(q))
print(sorted(zk.get_children(sys.argv[2]))[0])
zk.stop()
"#,
        &[&path],
        Duration::from_secs(30),
    );
    assert_eq!(out[0], "4");
    assert_entry_name(&out[1], 0);
    let q = Queue::new(zk.clone(), &path);
    assert_eq!(q.length().unwrap(), 4);
    assert_eq!(&q.get().unwrap().unwrap()[..], b"k-one");
    assert_eq!(&q.get().unwrap().unwrap()[..], b"k-two");
    // Ours put, kazoo gets them in (priority, FIFO) order, after kazoo's remaining ones.
    q.put(b"r-low", 500).unwrap();
    q.put(b"r-high", 5).unwrap();
    q.put_all(&[&b"r-a"[..], b"r-b"], 500).unwrap();
    let out = py_run(
        r#"
zk = client()
q = zk.Queue(sys.argv[2])
while True:
    v = q.get()
    if v is None:
        break
    print(v.decode())
print(len(q))
zk.stop()
"#,
        &[&path],
        Duration::from_secs(30),
    );
    assert_eq!(
        out,
        ["r-high", "k-three", "k-four", "r-low", "r-a", "r-b", "0"]
    );
    zk.delete(&path, None).unwrap();
}

#[test]
fn kazoo_locking_queue_and_ours_exclude_each_other() {
    let zk = connect();
    let path = unique_path("interop-lq");
    let ours = LockingQueue::new(zk.clone(), &path);
    ours.put(b"first", 100).unwrap();
    ours.put(b"second", 100).unwrap();
    // kazoo holds the head; ours gets the next one.
    let py = py(
        r#"
zk = client()
q = zk.LockingQueue(sys.argv[2])
v = q.get(5)
print(v.decode())
sys.stdout.flush()
time.sleep(1.0)
print(q.holds_lock())
print(q.consume())
sys.stdout.flush()
# Wait for ours to release "second"; then take, consume it.
v = q.get(10)
print(v.decode() if v is not None else "None")
print(q.consume())
q.put_all([b"k1", b"k2"], priority=50)
print(len(q))
zk.stop()
"#,
        &[&path],
    );
    py.expect_within("first", Duration::from_secs(20));
    assert_eq!(
        &ours.get(Some(Duration::from_secs(5))).unwrap().unwrap()[..],
        b"second"
    );
    // Nothing else is available while kazoo holds "first".
    let other = LockingQueue::new(connect(), &path);
    assert_eq!(other.get(Some(Duration::from_millis(300))).unwrap(), None);
    py.expect_within("True", Duration::from_secs(10));
    py.expect_within("True", Duration::from_secs(10));
    assert!(ours.release().unwrap());
    py.expect_within("second", Duration::from_secs(10));
    py.expect_within("True", Duration::from_secs(10));
    py.expect_within("2", Duration::from_secs(10));
    py.finish_within(Duration::from_secs(10));
    // kazoo's put_all, our get/consume.
    assert_eq!(&ours.get(Some(SEC)).unwrap().unwrap()[..], b"k1");
    assert!(ours.consume().unwrap());
    assert_eq!(&ours.get(Some(SEC)).unwrap().unwrap()[..], b"k2");
    assert!(ours.consume().unwrap());
    assert_eq!(ours.length().unwrap(), 0);
    assert!(children(&zk, &format!("{path}/taken")).is_empty());
}

#[test]
fn kazoo_counters_and_ours_count_together() {
    let zk = connect();
    let path = unique_path("interop-counter");
    let int_path = format!("{path}-int");
    let cur_path = format!("{path}-curator");
    let float_path = format!("{path}-float");
    let py = py(
        r#"
zk = client()
c = zk.Counter(sys.argv[2])
k = zk.Counter(sys.argv[3], support_curator=True)
for _ in range(100):
    c += 1
    k += 1
f = zk.Counter(sys.argv[4], default=0.0)
f += 1.5
print("done")
zk.stop()
"#,
        &[&int_path, &cur_path, &float_path],
    );
    let c = Counter::new(zk.clone(), &int_path);
    let k = Counter::new_curator(zk.clone(), &cur_path);
    for _ in 0..100 {
        assert!(c.increment(1).unwrap().applied().is_some());
        assert!(k.increment(1).unwrap().applied().is_some());
    }
    py.expect_within("done", Duration::from_secs(60));
    py.finish_within(Duration::from_secs(10));
    assert_eq!(c.get().unwrap(), 200);
    assert_eq!(k.get().unwrap(), 200);
    let f = Counter::new_float(zk.clone(), &float_path, 0.0);
    assert_eq!(f.get().unwrap(), 1.5);
    assert_eq!(
        f.increment(1e16).unwrap().applied(),
        Some(1.0000000000000002e16)
    );
    // kazoo reads what we wrote (Python's repr, read back by float()).
    let out = py_run(
        r#"
zk = client()
print(zk.Counter(sys.argv[2]).value)
print(zk.Counter(sys.argv[3], support_curator=True).value)
print(repr(zk.Counter(sys.argv[4], default=0.0).value))
print(zk.get(sys.argv[4])[0].decode())
zk.stop()
"#,
        &[&int_path, &cur_path, &float_path],
        Duration::from_secs(30),
    );
    assert_eq!(out[0], "200");
    assert_eq!(out[1], "200");
    assert_eq!(out[2], out[3], "our text is Python's repr");
    for p in [&int_path, &cur_path, &float_path] {
        zk.delete(p, None).unwrap();
    }
}

#[test]
fn kazoo_barrier_and_ours_wait_for_each_other() {
    let zk = connect();
    let path = unique_path("interop-barrier");
    let ours = Barrier::new(zk.clone(), &path);
    ours.create().unwrap();
    // kazoo waits on our barrier; we remove it.
    let py = py(
        r#"
zk = client()
b = zk.Barrier(sys.argv[2])
print("waiting")
sys.stdout.flush()
print(b.wait(20))
sys.stdout.flush()
b.create()
print("created")
sys.stdout.flush()
time.sleep(0.5)
print(b.remove())
zk.stop()
"#,
        &[&path],
    );
    py.expect_within("waiting", Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(300));
    assert!(ours.remove().unwrap());
    py.expect_within("True", Duration::from_secs(10));
    // kazoo creates it again; we wait until kazoo removes it.
    py.expect_within("created", Duration::from_secs(10));
    assert!(ours.wait(Some(Duration::from_secs(10))).unwrap());
    py.expect_within("True", Duration::from_secs(10));
    py.finish_within(Duration::from_secs(10));
}

#[test]
fn kazoo_double_barrier_participants_and_ours() {
    let zk = connect();
    let path = unique_path("interop-dbarrier");
    // Two kazoo participants (threads with their own clients) and ours: 3 in all.
    let py = py(
        r#"
path = sys.argv[2]
lock = threading.Lock()
def say(s):
    with lock:
        print(s)
        sys.stdout.flush()
def run(i):
    zk = client()
    b = zk.DoubleBarrier(path, 3, identifier="kazoo-%d" % i)
    b.enter()
    say("entered %d %d" % (i, len(zk.get_children(path))))
    time.sleep(0.3)
    b.leave()
    say("left %d" % i)
    zk.stop()
ts = [threading.Thread(target=run, args=(i,)) for i in range(2)]
for t in ts:
    t.start()
for t in ts:
    t.join()
"#,
        &[&path],
    );
    // The kazoo participants cannot pass before ours enters.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        py.try_line(Duration::ZERO).is_none(),
        "a kazoo participant passed enter early"
    );
    let kids = children(&zk, &path);
    assert_eq!(kids.len(), 2, "{kids:?}");
    assert!(kids.iter().all(|k| k.len() == 32 && is_hex(k)));
    let ours = DoubleBarrier::new(zk.clone(), &path, 3);
    ours.enter(Some(Duration::from_secs(10))).unwrap();
    let mut lines = vec![
        py.line_within(Duration::from_secs(10)),
        py.line_within(Duration::from_secs(10)),
    ];
    lines.sort();
    assert!(
        lines[0].starts_with("entered 0 ") && lines[1].starts_with("entered 1 "),
        "{lines:?}"
    );
    // The kazoo participants leave first; they wait for ours to leave.
    std::thread::sleep(Duration::from_millis(1000));
    assert!(
        py.try_line(Duration::ZERO).is_none(),
        "a kazoo participant passed leave early"
    );
    ours.leave(Some(Duration::from_secs(10))).unwrap();
    let mut lines = vec![
        py.line_within(Duration::from_secs(10)),
        py.line_within(Duration::from_secs(10)),
    ];
    lines.sort();
    assert_eq!(lines, ["left 0", "left 1"]);
    py.finish_within(Duration::from_secs(10));
    assert!(children(&zk, &path).is_empty());
    zk.delete(&path, None).unwrap();
}
