//! The lock family (`zk_recipes::lock`) against a real server: Lock, WriteLock, ReadLock and
//! Semaphore, their node names and data (kazoo's), a real session expiry mid-hold (FAULTS.md
//! F7), and interoperation with kazoo processes (`/usr/bin/python3`, Debian's kazoo 2.8) on the
//! same paths.

#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use zk_integration_tests::expiry::{Proxy, connect_expirable, expire};
use zk_integration_tests::kazoo::Kazoo as Py;
use zk_integration_tests::unique_path;
use zk_integration_tests::{
    connect_shared as connect, is_lower_hex as is_hex, sorted_children as children,
};
use zk_recipes::lock::{Lock, LockGuard, LockNaming, ReadLock, Semaphore, WriteLock};
use zk_recipes::{CreateMode, CreateOptions, Error, Fence, Op, sequence_of};
use zk_session::Client;

/// `<32 hex>__lock__<10 digits>` (kazoo's node name).
fn assert_kazoo_name(name: &str, marker: &str) {
    assert!(
        name.len() == 32 + marker.len() + 10
            && is_hex(&name[..32])
            && &name[32..32 + marker.len()] == marker
            && name[32 + marker.len()..]
                .bytes()
                .all(|b| b.is_ascii_digit()),
        "not a kazoo {marker} node name: {name}"
    );
}

#[test]
fn lock_names_data_contenders_and_handoff() {
    let zk = connect();
    let path = unique_path("lock-basic");
    let a = Lock::new(zk.clone(), &path, "alice");
    let guard = a.acquire(Some(Duration::from_secs(5))).unwrap();
    let kids = children(&zk, &path);
    assert_eq!(kids.len(), 1);
    assert_kazoo_name(&kids[0], "__lock__");
    assert_eq!(guard.node(), format!("{path}/{}", kids[0]));
    assert_eq!(guard.sequence(), sequence_of(&kids[0], "__lock__"));
    let (data, stat) = zk.get_data(guard.node()).unwrap();
    assert_eq!(&data[..], b"alice");
    assert_eq!(stat.ephemeral_owner, zk.session_id());
    assert_eq!(guard.token(), stat.czxid);
    assert!(guard.is_held());

    // A second contender (own session): try fails and leaves nothing; a timed acquire times
    // out and leaves nothing.
    let zk2 = connect();
    let b = Lock::new(zk2.clone(), &path, "bob");
    assert!(b.try_acquire().unwrap().is_none());
    assert_eq!(children(&zk, &path).len(), 1);
    let t0 = Instant::now();
    assert_eq!(
        b.acquire(Some(Duration::from_millis(300))).unwrap_err(),
        Error::Timeout
    );
    assert!(t0.elapsed() >= Duration::from_millis(300));
    assert_eq!(children(&zk, &path).len(), 1);

    // A blocked waiter gets it when the holder releases.
    let waiter = std::thread::spawn(move || {
        let g = b.acquire(Some(Duration::from_secs(10))).unwrap();
        let held = g.is_held();
        let contenders = b.contenders().unwrap();
        g.release().unwrap();
        (held, contenders)
    });
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(a.contenders().unwrap(), ["alice", "bob"]);
    // Fenced write while held.
    let target = format!("{path}-data");
    guard
        .write(vec![Op::create(
            &target,
            &b"1"[..],
            CreateOptions::persistent(),
        )])
        .unwrap();
    guard.release().unwrap();
    let (held, contenders) = waiter.join().unwrap();
    assert!(held);
    assert_eq!(contenders, ["bob"]);
    assert!(children(&zk, &path).is_empty());
    assert!(a.contenders().unwrap().is_empty());
    zk.delete(&target, None).unwrap();

    // Dropping a guard releases.
    {
        let _g = a.acquire(None).unwrap();
        assert_eq!(children(&zk, &path).len(), 1);
    }
    assert!(children(&zk, &path).is_empty());
}

#[test]
fn lock_serialises_threads() {
    let path = unique_path("lock-threads");
    let counter = format!("{path}-counter");
    let zk = connect();
    zk.create(&counter, b"0", &CreateOptions::persistent())
        .unwrap();
    let mut threads = Vec::new();
    for i in 0..4 {
        let (path, counter) = (path.clone(), counter.clone());
        threads.push(std::thread::spawn(move || {
            let zk = connect();
            let lock = Lock::new(zk.clone(), &path, &format!("t{i}"));
            for _ in 0..10 {
                let g = lock.acquire(Some(Duration::from_secs(20))).unwrap();
                // Unversioned read-modify-write: only correct under mutual exclusion.
                let (d, _) = zk.get_data(&counter).unwrap();
                let v: u32 = std::str::from_utf8(&d).unwrap().parse().unwrap();
                g.write(vec![Op::set_data(
                    &counter,
                    (v + 1).to_string().into_bytes(),
                    None,
                )])
                .unwrap();
                g.release().unwrap();
            }
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(&zk.get_data(&counter).unwrap().0[..], b"40");
    assert!(children(&zk, &path).is_empty());
}

#[test]
fn curator_naming_and_extra_lock_patterns() {
    let zk = connect();
    let path = unique_path("lock-curator");
    let c = Lock::new(zk.clone(), &path, "cur").with_naming(LockNaming::Curator);
    let g = c.acquire(Some(Duration::from_secs(5))).unwrap();
    let kids = children(&zk, &path);
    let name = &kids[0];
    // _c_<8-4-4-4-12>-lock-<10 digits>
    assert!(name.starts_with("_c_"), "{name}");
    let uuid = &name[3..39];
    let groups: Vec<usize> = uuid.split('-').map(str::len).collect();
    assert_eq!(groups, [8, 4, 4, 4, 12], "{name}");
    assert_eq!(&name[39..45], "-lock-", "{name}");
    assert_eq!(sequence_of(name, "lock-"), g.sequence());

    // A kazoo-named lock ignores Curator nodes unless told about them.
    let zk2 = connect();
    let plain = Lock::new(zk2.clone(), &path, "plain");
    let g2 = plain
        .try_acquire()
        .unwrap()
        .expect("lock- nodes are not kazoo contenders");
    g2.release().unwrap();
    let aware = Lock::new(zk2.clone(), &path, "aware").with_extra_lock_patterns(["lock-"]);
    assert!(aware.try_acquire().unwrap().is_none());
    assert_eq!(aware.contenders().unwrap(), ["cur"]);
    let waiter = std::thread::spawn(move || {
        aware
            .acquire(Some(Duration::from_secs(10)))
            .unwrap()
            .release()
            .unwrap();
    });
    std::thread::sleep(Duration::from_millis(200));
    g.release().unwrap();
    waiter.join().unwrap();
    assert!(children(&zk, &path).is_empty());
}

#[test]
fn read_write_lock() {
    let path = unique_path("rwlock");
    let (z1, z2, z3) = (connect(), connect(), connect());
    let r1 = ReadLock::new(z1.clone(), &path, "r1");
    let r2 = ReadLock::new(z2.clone(), &path, "r2");
    let w = WriteLock::new(z3.clone(), &path, "w");
    let g1 = r1.acquire(Some(Duration::from_secs(5))).unwrap();
    let g2 = r2.try_acquire().unwrap().expect("readers share the lock");
    for n in children(&z1, &path) {
        assert_kazoo_name(&n, "__rlock__");
    }
    assert!(
        w.try_acquire().unwrap().is_none(),
        "a writer waits for readers"
    );
    assert_eq!(w.contenders().unwrap(), ["r1", "r2"]);
    let writer = std::thread::spawn(move || {
        let g = w.acquire(Some(Duration::from_secs(10))).unwrap();
        assert_kazoo_name(base(g.node()), "__lock__");
        std::thread::sleep(Duration::from_millis(300));
        g.release().unwrap();
    });
    std::thread::sleep(Duration::from_millis(200));
    // A reader arriving after the writer waits for it.
    let r3 = ReadLock::new(z1.clone(), &path, "r3");
    assert!(r3.try_acquire().unwrap().is_none());
    g1.release().unwrap();
    g2.release().unwrap();
    let t0 = Instant::now();
    let g3 = r3.acquire(Some(Duration::from_secs(10))).unwrap();
    assert!(
        t0.elapsed() >= Duration::from_millis(150),
        "{:?}",
        t0.elapsed()
    );
    writer.join().unwrap();
    g3.release().unwrap();
    assert!(children(&z1, &path).is_empty());
}

fn base(node: &str) -> &str {
    node.rsplit('/').next().unwrap()
}

#[test]
fn semaphore_leases() {
    let path = unique_path("sem");
    let (z1, z2, z3) = (connect(), connect(), connect());
    let s1 = Semaphore::new(z1.clone(), &path, "one", 2);
    let s2 = Semaphore::new(z2.clone(), &path, "two", 2);
    let s3 = Semaphore::new(z3.clone(), &path, "three", 2);
    let l1 = s1.acquire(Some(Duration::from_secs(5))).unwrap();
    let l2 = s2.acquire(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(&z1.get_data(&path).unwrap().0[..], b"2");
    let kids = children(&z1, &path);
    assert_eq!(kids.len(), 2);
    for k in &kids {
        assert!(k.len() == 32 && is_hex(k), "lease node {k}");
    }
    assert_eq!(l1.sequence(), None);
    assert_eq!(l1.token(), z1.exists(l1.node()).unwrap().unwrap().czxid);
    let mut holders = s3.lease_holders().unwrap();
    holders.sort();
    assert_eq!(holders, ["one", "two"]);
    assert!(s3.try_acquire().unwrap().is_none());
    assert_eq!(
        s3.acquire(Some(Duration::from_millis(300))).unwrap_err(),
        Error::Timeout
    );
    assert_eq!(children(&z1, &path).len(), 2, "no lease left behind");
    // The inner lock lives beside the path, as kazoo's `<path>-__lock__`.
    assert!(z1.exists(&format!("{path}-__lock__")).unwrap().is_some());
    assert!(children(&z1, &format!("{path}-__lock__")).is_empty());

    let waiter = std::thread::spawn(move || {
        let l = s3.acquire(Some(Duration::from_secs(10))).unwrap();
        l.release().unwrap();
    });
    std::thread::sleep(Duration::from_millis(200));
    l1.release().unwrap();
    waiter.join().unwrap();
    l2.release().unwrap();
    assert!(children(&z1, &path).is_empty());

    // A different max_leases is refused.
    let bad = Semaphore::new(z1.clone(), &path, "bad", 3);
    assert!(matches!(
        bad.acquire(Some(Duration::from_secs(1))),
        Err(Error::InvalidUse(_))
    ));
}

/// Start `acquire` on another thread, wait until `queued` says it waits, `cancel`, and check
/// that the acquire ends with `Cancelled` within a second.
fn cancel_while_waiting(
    acquire: impl FnOnce() -> Result<(), Error> + Send,
    queued: impl Fn() -> bool,
    cancel: impl FnOnce(),
) {
    std::thread::scope(|s| {
        let h = s.spawn(acquire);
        let t = Instant::now();
        while !queued() {
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "the waiter never queued"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let t = Instant::now();
        cancel();
        assert_eq!(h.join().unwrap(), Err(Error::Cancelled));
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    });
}

/// `cancel()` from another thread ends a waiting acquire with `Cancelled` and removes its
/// node (kazoo's `cancel`); a cancel with nothing waiting cancels the next blocking acquire,
/// and a try ignores it. The same for a semaphore, whose inner lock leaves nothing behind.
#[test]
fn cancel_ends_a_waiting_acquire_and_leaves_no_node() {
    // Long enough that a cancel that did not work shows as a timeout, not a hang.
    const LONG: Duration = Duration::from_secs(10);
    let path = unique_path("lock-cancel");
    let (z1, z2) = (connect(), connect());
    let holder = Lock::new(z1.clone(), &path, "holder");
    let waiter = Lock::new(z2.clone(), &path, "waiter");
    let held = holder.acquire(Some(Duration::from_secs(5))).unwrap();
    cancel_while_waiting(
        || waiter.acquire(Some(LONG)).map(|_| ()),
        || children(&z1, &path).len() == 2,
        || waiter.cancel(),
    );
    assert_eq!(children(&z1, &path).len(), 1, "the waiter's node is gone");
    waiter.cancel();
    assert!(
        waiter.try_acquire().unwrap().is_none(),
        "a try ignores the cancel"
    );
    assert_eq!(
        waiter.acquire(Some(LONG)).map(|_| ()),
        Err(Error::Cancelled)
    );
    assert_eq!(children(&z1, &path).len(), 1);
    held.release().unwrap();
    // Taken: the next acquire is not cancelled.
    waiter
        .acquire(Some(Duration::from_secs(5)))
        .unwrap()
        .release()
        .unwrap();

    let sem = unique_path("sem-cancel");
    let inner = format!("{sem}-__lock__");
    let s1 = Semaphore::new(z1.clone(), &sem, "one", 1);
    let s2 = Semaphore::new(z2.clone(), &sem, "two", 1);
    let lease = s1.acquire(Some(Duration::from_secs(5))).unwrap();
    cancel_while_waiting(
        || s2.acquire(Some(LONG)).map(|_| ()),
        // The waiter holds the inner lock while it waits for a free lease.
        || z1.exists(&inner).unwrap().is_some() && !children(&z1, &inner).is_empty(),
        || s2.cancel(),
    );
    assert!(children(&z1, &inner).is_empty(), "the inner lock is free");
    assert_eq!(s1.lease_holders().unwrap(), ["one"]);
    lease.release().unwrap();
    s2.acquire(Some(Duration::from_secs(5)))
        .unwrap()
        .release()
        .unwrap();
    assert!(children(&z1, &sem).is_empty());
}

fn check_loss_after_expiry<S>(zk: &Client, proxy: &Proxy, guard: &LockGuard<S>, target: &str)
where
    S: zk_recipes::Session,
{
    assert!(guard.is_held());
    expire(zk, proxy);
    assert!(!guard.is_held(), "reports held after the session expired");
    let err = guard
        .write(vec![Op::create(
            target,
            &b"late"[..],
            CreateOptions::persistent(),
        )])
        .unwrap_err();
    assert!(Fence::is_lost(&err), "{err:?}");
    let observer = connect();
    assert!(observer.exists(guard.node()).unwrap().is_none());
    assert!(observer.exists(target).unwrap().is_none());
}

#[test]
fn real_session_expiry_mid_hold() {
    // Lock: the holder's session expires; it reports the loss, its fenced write fails, the
    // next contender gets the lock.
    let path = unique_path("lock-expiry");
    let (a, pa) = connect_expirable();
    let lock = Lock::new(a.clone(), &path, "a");
    let guard = lock.acquire(Some(Duration::from_secs(5))).unwrap();
    let b = connect();
    let next = Lock::new(b.clone(), &path, "b");
    let waiter = std::thread::spawn(move || {
        let g = next.acquire(Some(Duration::from_secs(20))).unwrap();
        let ok = g.write(vec![]).is_ok();
        g.release().unwrap();
        ok
    });
    std::thread::sleep(Duration::from_millis(200));
    check_loss_after_expiry(&a, &pa, &guard, &format!("{path}-late"));
    assert!(waiter.join().unwrap());
    assert_eq!(guard.release().unwrap_err(), Error::SessionExpired);
    assert_eq!(
        lock.acquire(Some(Duration::from_secs(1))).unwrap_err(),
        Error::SessionExpired
    );

    // ReadLock and a semaphore lease alike.
    let path = unique_path("rlock-expiry");
    let (a, pa) = connect_expirable();
    let guard = ReadLock::new(a.clone(), &path, "a")
        .acquire(Some(Duration::from_secs(5)))
        .unwrap();
    check_loss_after_expiry(&a, &pa, &guard, &format!("{path}-late"));
    drop(guard); // best effort, must not hang

    let path = unique_path("sem-expiry");
    let (a, pa) = connect_expirable();
    let guard = Semaphore::new(a.clone(), &path, "a", 1)
        .acquire(Some(Duration::from_secs(5)))
        .unwrap();
    let b = connect();
    let sem_b = Semaphore::new(b.clone(), &path, "b", 1);
    assert!(sem_b.try_acquire().unwrap().is_none());
    check_loss_after_expiry(&a, &pa, &guard, &format!("{path}-late"));
    let lb = sem_b.acquire(Some(Duration::from_secs(5))).unwrap();
    assert!(lb.is_held());
    lb.release().unwrap();
}

/// The guard a waiter thread ends up with.
fn joined_guard<S: zk_recipes::Session + Send>(
    waiter: std::thread::JoinHandle<Result<LockGuard<S>, Error>>,
) -> LockGuard<S> {
    waiter.join().unwrap().unwrap()
}

#[test]
fn waiters_do_not_trust_abandoned_or_weaker_predecessors() {
    // A holds; B waits behind A; C waits behind B. B gives up (timeout: its node is deleted
    // without the release marker): C must go on waiting for A, not take the lock.
    let path = unique_path("lock-abandon");
    let a = Lock::new(connect(), &path, "a");
    let ga = a.acquire(Some(Duration::from_secs(5))).unwrap();
    let b = Lock::new(connect(), &path, "b");
    let tb = std::thread::spawn(move || b.acquire(Some(Duration::from_millis(600))));
    std::thread::sleep(Duration::from_millis(200));
    let c = Lock::new(connect(), &path, "c");
    let tc = std::thread::spawn(move || c.acquire(Some(Duration::from_secs(20))));
    assert_eq!(tb.join().unwrap().unwrap_err(), Error::Timeout);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!tc.is_finished(), "C took the lock while A holds it");
    assert!(ga.is_held());
    ga.release().unwrap();
    let gc = joined_guard(tc);
    assert!(gc.is_held());
    gc.release().unwrap();

    // A waiter whose predecessor's session expires while waiting goes on waiting too.
    let a = Lock::new(connect(), &path, "a");
    let ga = a.acquire(Some(Duration::from_secs(5))).unwrap();
    let (zb, pb) = connect_expirable();
    let b = Lock::new(zb.clone(), &path, "b");
    let tb = std::thread::spawn(move || b.acquire(Some(Duration::from_secs(20))));
    std::thread::sleep(Duration::from_millis(200));
    let c = Lock::new(connect(), &path, "c");
    let tc = std::thread::spawn(move || c.acquire(Some(Duration::from_secs(20))));
    std::thread::sleep(Duration::from_millis(200));
    expire(&zb, &pb);
    assert_eq!(tb.join().unwrap().unwrap_err(), Error::SessionExpired);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!tc.is_finished(), "C took the lock while A holds it");
    ga.release().unwrap();
    joined_guard(tc).release().unwrap();

    // A writer waiting behind the nearer of two readers: that reader's release (with the
    // marker) does not hand it the lock while the other reader holds.
    let path = unique_path("rw-weaker");
    let r1 = ReadLock::new(connect(), &path, "r1");
    let r2 = ReadLock::new(connect(), &path, "r2");
    let g1 = r1.acquire(Some(Duration::from_secs(5))).unwrap();
    let g2 = r2.acquire(Some(Duration::from_secs(5))).unwrap();
    let w = WriteLock::new(connect(), &path, "w");
    let tw = std::thread::spawn(move || w.acquire(Some(Duration::from_secs(20))));
    std::thread::sleep(Duration::from_millis(200));
    g2.release().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !tw.is_finished(),
        "the writer took the lock while a reader holds it"
    );
    g1.release().unwrap();
    joined_guard(tw).release().unwrap();
}

#[test]
fn nodes_and_path_deleted_under_the_lock() {
    // F15. The path deleted between uses: the next acquire recreates it.
    let path = unique_path("lock-f15");
    let a = connect();
    let lock = Lock::new(a.clone(), &path, "a");
    lock.acquire(None).unwrap().release().unwrap();
    a.delete(&path, None).unwrap();
    let g = lock.acquire(Some(Duration::from_secs(5))).unwrap();
    assert!(g.is_held());

    // The holder's node deleted by someone else: the loss shows, fenced writes fail.
    let admin = connect();
    admin.delete(g.node(), None).unwrap();
    assert!(!g.is_held());
    let err = g.write(vec![]).unwrap_err();
    assert!(Fence::is_lost(&err), "{err:?}");
    assert_eq!(g.release().unwrap_err(), Error::NoNode);

    // Everything deleted under a waiter (its own node, the holder's, then the path): whatever
    // the waiter ends up with, the guard tells the truth — held and writable, or neither.
    let g = lock.acquire(Some(Duration::from_secs(5))).unwrap();
    let b = connect();
    let lb = Lock::new(b.clone(), &path, "b");
    let waiter = std::thread::spawn(move || {
        let g = lb.acquire(Some(Duration::from_secs(10))).unwrap();
        let (held, writable) = (g.is_held(), g.write(vec![]).is_ok());
        let released = g.release();
        (held, writable, released)
    });
    std::thread::sleep(Duration::from_millis(200));
    let mut kids = children(&admin, &path);
    kids.sort_by_key(|k| std::cmp::Reverse(sequence_of(k, "__lock__")));
    for c in kids {
        admin.delete(&format!("{path}/{c}"), None).unwrap();
    }
    admin.delete(&path, None).unwrap();
    let (held, writable, released) = waiter.join().unwrap();
    assert_eq!(held, writable);
    assert_eq!(held, released.is_ok());
    assert!(!g.is_held());
    drop(g);
}

// ---------------------------------------------------------------------------------------------
// Interoperation with kazoo

#[test]
fn kazoo_lock_and_ours_exclude_each_other() {
    let path = unique_path("interop-lock");
    let zk = connect();
    let ours = Lock::new(zk.clone(), &path, "rust");

    // A kazoo holder makes our lock wait.
    let mut py = Py::session(
        r#"
lock = zk.Lock(path, "kazoo")
lock.acquire()
out("held")
wait_cmd()
lock.release()
out("released")
"#,
        &path,
    );
    py.expect("held");
    assert!(ours.try_acquire().unwrap().is_none());
    assert_eq!(ours.contenders().unwrap(), ["kazoo"]);
    let ours_waiter = std::thread::spawn(move || {
        let t0 = Instant::now();
        let g = ours.acquire(Some(Duration::from_secs(20))).unwrap();
        (t0.elapsed(), g.release())
    });
    std::thread::sleep(Duration::from_millis(300));
    py.send("go");
    py.expect("released");
    let (waited, released) = ours_waiter.join().unwrap();
    assert!(waited >= Duration::from_millis(250), "{waited:?}");
    released.unwrap();
    py.finish();

    // Our holder makes kazoo's lock wait; kazoo sees our identifier as a contender.
    let ours = Lock::new(zk.clone(), &path, "rust");
    let g = ours.acquire(Some(Duration::from_secs(5))).unwrap();
    let py = Py::session(
        r#"
lock = zk.Lock(path, "kazoo")
out("contenders", ",".join(lock.contenders()))
out("try", lock.acquire(blocking=False))
out("waiting")
t0 = time.time()
lock.acquire(timeout=20)
out("acquired")
lock.release()
"#,
        &path,
    );
    py.expect("contenders rust");
    py.expect("try False");
    py.expect("waiting");
    assert!(py.quiet_for(Duration::from_millis(400)));
    g.release().unwrap();
    py.expect("acquired");
    py.finish();
    assert!(children(&zk, &path).is_empty());
}

#[test]
fn kazoo_readers_share_with_ours_and_writers_exclude() {
    let path = unique_path("interop-rw");
    let zk = connect();
    let mut py = Py::session(
        r#"
r = zk.ReadLock(path, "kazoo-reader")
r.acquire()
out("reading")
wait_cmd()
r.release()
out("done reading")
w = zk.WriteLock(path, "kazoo-writer")
out("writer waiting")
w.acquire(timeout=20)
out("writing")
wait_cmd()
w.release()
out("done writing")
"#,
        &path,
    );
    py.expect("reading");
    // Our reader shares the lock with kazoo's reader; our writer waits for it.
    let reader = ReadLock::new(zk.clone(), &path, "rust-reader");
    let rg = reader.try_acquire().unwrap().expect("readers share");
    let writer = WriteLock::new(connect(), &path, "rust-writer");
    assert!(writer.try_acquire().unwrap().is_none());
    assert_eq!(
        writer.contenders().unwrap(),
        ["kazoo-reader", "rust-reader"]
    );
    py.send("go");
    py.expect("done reading");
    py.expect("writer waiting");
    // kazoo's writer waits for our reader.
    assert!(py.quiet_for(Duration::from_millis(400)));
    rg.release().unwrap();
    py.expect("writing");
    // Now our reader waits for kazoo's writer.
    let reader2 = ReadLock::new(zk.clone(), &path, "rust-reader-2");
    assert!(reader2.try_acquire().unwrap().is_none());
    let t = std::thread::spawn(move || {
        reader2
            .acquire(Some(Duration::from_secs(20)))
            .map(|g| g.release())
    });
    std::thread::sleep(Duration::from_millis(300));
    py.send("go");
    py.expect("done writing");
    assert!(matches!(t.join().unwrap(), Ok(Ok(()))));
    py.finish();
    assert!(children(&zk, &path).is_empty());
}

#[test]
fn kazoo_semaphore_and_ours_share_leases() {
    let path = unique_path("interop-sem");
    let zk = connect();
    let mut py = Py::session(
        r#"
s = zk.Semaphore(path, "kazoo", max_leases=2)
s.acquire()
out("leased")
wait_cmd()
out("holders", ",".join(sorted(s.lease_holders())))
wait_cmd()
s.release()
out("released")
bad = zk.Semaphore(path, "bad", max_leases=3)
try:
    bad.acquire(blocking=False)
    out("no error")
except ValueError:
    out("ValueError")
"#,
        &path,
    );
    py.expect("leased");
    let ours = Semaphore::new(zk.clone(), &path, "rust", 2);
    let l = ours.acquire(Some(Duration::from_secs(5))).unwrap();
    let other = Semaphore::new(connect(), &path, "rust-2", 2);
    assert!(other.try_acquire().unwrap().is_none(), "2 leases taken");
    let mut holders = ours.lease_holders().unwrap();
    holders.sort();
    assert_eq!(holders, ["kazoo", "rust"]);
    py.send("go");
    py.expect("holders kazoo,rust");
    let waiter = std::thread::spawn(move || {
        other
            .acquire(Some(Duration::from_secs(20)))
            .map(|g| g.release())
    });
    std::thread::sleep(Duration::from_millis(300));
    py.send("go");
    py.expect("released");
    assert!(matches!(waiter.join().unwrap(), Ok(Ok(()))));
    py.expect("ValueError");
    py.finish();
    l.release().unwrap();
    assert!(children(&zk, &path).is_empty());
}

#[test]
fn kazoo_sees_curator_contenders_with_extra_patterns() {
    let path = unique_path("interop-extra");
    let zk = connect();
    let ours = Lock::new(zk.clone(), &path, "curator-style").with_naming(LockNaming::Curator);
    let g = ours.acquire(Some(Duration::from_secs(5))).unwrap();
    let py = Py::session(
        r#"
lock = zk.Lock(path, "kazoo", extra_lock_patterns=["lock-"])
out("contenders", ",".join(lock.contenders()))
out("try", lock.acquire(blocking=False))
lock.acquire(timeout=20)
out("acquired")
wait_cmd()
"#,
        &path,
    );
    py.expect("contenders curator-style");
    py.expect("try False");
    assert!(py.quiet_for(Duration::from_millis(300)));
    g.release().unwrap();
    py.expect("acquired");
    // Our Curator-named lock, told about kazoo's names, waits for kazoo's holder.
    let aware = Lock::new(connect(), &path, "aware")
        .with_naming(LockNaming::Curator)
        .with_extra_lock_patterns(["__lock__"]);
    assert!(aware.try_acquire().unwrap().is_none());
    let mut py = py;
    py.send("go");
    py.finish();
    aware
        .acquire(Some(Duration::from_secs(10)))
        .unwrap()
        .release()
        .unwrap();
}

#[test]
fn foreign_children_are_not_contenders() {
    // A lock path holding other children (no contender pattern) is not confused by them.
    let zk = connect();
    let path = unique_path("lock-foreign");
    zk.ensure_path(&path).unwrap();
    zk.create(
        &format!("{path}/note-"),
        b"",
        &CreateOptions::new(CreateMode::PersistentSequential),
    )
    .unwrap();
    zk.create(&format!("{path}/readme"), b"", &CreateOptions::persistent())
        .unwrap();
    let lock = Lock::new(zk.clone(), &path, "x");
    let g = lock
        .try_acquire()
        .unwrap()
        .expect("foreign children are not contenders");
    assert_eq!(lock.contenders().unwrap(), ["x"]);
    g.release().unwrap();
}

/// The real client's `Session::create_and_list` (the lock's first step) sends the listing
/// behind the create: one inline exchange on an idle connection, the new node listed; a
/// failed create is the call's error.
#[test]
fn create_and_list_is_one_exchange_on_the_real_client() {
    use zk_recipes::Session;
    let zk = connect();
    let path = unique_path("create-and-list");
    zk.create(&path, b"", &CreateOptions::persistent()).unwrap();
    let opts = CreateOptions::new(CreateMode::EphemeralSequential);
    let before = zk.inline_calls();
    let ((created, stat), listed) =
        Session::create_and_list(&zk, &format!("{path}/n-"), b"me", &opts, &path).unwrap();
    let inline = zk.inline_calls() - before;
    // one exchange (a ping holding the engine at that moment would make it zero)
    assert!(inline <= 1, "{inline} inline runs for one batch");
    assert_eq!(stat.ephemeral_owner, zk.session_id());
    let (kids, parent) = listed.unwrap();
    assert_eq!(kids, vec![created.rsplit('/').next().unwrap().to_owned()]);
    assert_eq!(parent.num_children, 1);
    // a create under a missing parent fails, and that is the call's error
    let missing = format!("{path}/none/n-");
    assert_eq!(
        Session::create_and_list(&zk, &missing, b"", &opts, &format!("{path}/none")).err(),
        Some(Error::NoNode)
    );
    zk.delete_recursive(&path).unwrap();
}
