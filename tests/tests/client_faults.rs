//! Real faults (FAULTS.md): a session expired by the server (F7), a server stopped and
//! restarted within the session timeout (F1/F8 on one server), and a frozen server under load
//! (F3). The last two own a `DedicatedServer`.

#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use zk_integration_tests::expiry::Proxy;
use zk_integration_tests::{DedicatedServer, shared_server, unique_path};
use zk_session::{Client, CreateOptions, Error, EventType, SessionState, StateWatch};

fn connect(addr: &str, session_timeout: Duration) -> Client {
    Client::builder(addr)
        .unwrap()
        .session_timeout(session_timeout)
        .connect()
        .unwrap()
}

/// States seen until `want` (included), or panic after `timeout`.
fn states_until(states: &StateWatch, want: SessionState, timeout: Duration) -> Vec<SessionState> {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match states.next_timeout(left) {
            Some(s) => {
                seen.push(s);
                if s == want {
                    return seen;
                }
            }
            None => panic!("no {want:?} within {timeout:?}; saw {seen:?}"),
        }
    }
}

#[test]
fn expired_session_is_reported_once_and_is_terminal() {
    let addr = shared_server().addr;
    let observer = connect(&addr, Duration::from_secs(10));
    let root = unique_path("faults-expiry");
    observer
        .create(&root, b"", &CreateOptions::persistent())
        .unwrap();
    let watched = format!("{root}/watched");
    observer
        .create(&watched, b"", &CreateOptions::persistent())
        .unwrap();

    let proxy = Proxy::start(&addr);
    let a = connect(&proxy.addr, Duration::from_secs(4));
    assert_eq!(a.negotiated_timeout(), Some(Duration::from_secs(4)));
    let sid = a.session_id();
    let states = a.state_watch();
    let eph = format!("{root}/eph");
    a.create(&eph, b"", &CreateOptions::ephemeral()).unwrap();
    let (_, _, data_watch) = a.get_data_watch(&watched).unwrap();
    let (_, exists_watch) = a.exists_watch(&format!("{root}/missing")).unwrap();
    let persistent = a.add_watch(&root, true).unwrap();
    let waiter = std::thread::spawn(move || data_watch.wait());

    // Expire A for real (FAULTS.md F7): attach a second client B to A's session and close
    // it. The server drops A's connection when B attaches; A reconnects at once and could win
    // the session back before B's closeSession arrives, so A reaches the server through a
    // proxy that holds new connections until B is done.
    proxy.hold(true);
    let b = Client::builder(&addr)
        .unwrap()
        .session_timeout(Duration::from_secs(4))
        .resume(sid, a.session_password())
        .connect()
        .unwrap();
    assert_eq!(b.session_id(), sid);
    b.close().unwrap();
    // the server's effects are immediate: A's ephemeral is gone
    assert_eq!(observer.exists(&eph).unwrap(), None);
    let t0 = Instant::now();
    proxy.hold(false);
    let seen = states_until(&states, SessionState::Expired, Duration::from_secs(8));
    let detected = t0.elapsed();
    eprintln!("A saw Expired {detected:?} after its reconnect was let through; states {seen:?}");
    assert!(detected < Duration::from_secs(1), "{detected:?}");
    // Disconnected when B took the session over, then Expired exactly once
    assert_eq!(seen, [SessionState::Disconnected, SessionState::Expired]);
    assert_eq!(
        states.next_timeout(Duration::from_millis(300)),
        None,
        "Expired is terminal"
    );

    // pending watches end with SessionExpired
    assert_eq!(waiter.join().unwrap(), Err(Error::SessionExpired));
    assert_eq!(
        exists_watch.wait_timeout(Duration::from_secs(1)),
        Err(Error::SessionExpired)
    );
    assert_eq!(
        persistent.next_timeout(Duration::from_secs(1)),
        Err(Error::SessionExpired)
    );
    assert_eq!((&persistent).next(), None);
    // every later operation fails the same way
    assert_eq!(a.state(), SessionState::Expired);
    assert_eq!(a.exists(&root).map(|_| ()), Err(Error::SessionExpired));
    assert_eq!(a.get_data(&watched).map(|_| ()), Err(Error::SessionExpired));
    assert_eq!(
        a.create(&eph, b"", &CreateOptions::ephemeral()).map(|_| ()),
        Err(Error::SessionExpired)
    );
    assert_eq!(
        a.set_data_async(&watched, "x", None)
            .wait_timeout(Duration::from_secs(1))
            .map(|_| ()),
        Err(Error::SessionExpired)
    );
    assert!(matches!(
        a.add_watch(&root, false),
        Err(Error::SessionExpired)
    ));
    assert_eq!(a.add_auth("digest", b"u:p"), Err(Error::SessionExpired));
    assert_eq!(
        a.wait_connected(Duration::from_millis(100)),
        Err(Error::SessionExpired)
    );
    assert!(Error::SessionExpired.is_terminal());
    // the session's data is untouched for everyone else
    assert!(observer.exists(&watched).unwrap().is_some());
    observer.delete_recursive(&root).unwrap();
}

#[test]
fn server_restart_within_the_session_timeout_keeps_the_session() {
    let server = DedicatedServer::start(200);
    // A goes through a proxy, so that the test decides when A's reconnect reaches the server
    let proxy = Proxy::start(server.addr());
    let a = connect(&proxy.addr, Duration::from_secs(8));
    assert_eq!(a.negotiated_timeout(), Some(Duration::from_secs(8)));
    let sid = a.session_id();
    a.create("/eph", b"", &CreateOptions::ephemeral()).unwrap();
    for node in ["/watched", "/quiet", "/parent", "/tree"] {
        a.create(node, b"0", &CreateOptions::persistent()).unwrap();
    }
    let (_, _, data_watch) = a.get_data_watch("/watched").unwrap();
    let (_, _, quiet_watch) = a.get_data_watch("/quiet").unwrap();
    let (_, exists_watch) = a.exists_watch("/appears").unwrap();
    let (_, _, child_watch) = a.get_children_watch("/parent").unwrap();
    let recursive = a.add_watch("/tree", true).unwrap();
    let states = a.state_watch();

    // 1. Stop; restart; another client changes what A watches while A is still away; then A
    //    reconnects and re-registers its watches, and the server reports the changes.
    proxy.hold(true);
    let t_stop = Instant::now();
    server.stop();
    let seen = states_until(&states, SessionState::Disconnected, Duration::from_secs(5));
    assert_eq!(seen, [SessionState::Disconnected]);
    eprintln!("Disconnected {:?} after stop began", t_stop.elapsed());
    // a request made while disconnected waits for the next connection
    let queued = a.set_data_async("/tree", "queued", None);

    server.restart();
    let b = connect(server.addr(), Duration::from_secs(8));
    b.set_data("/watched", b"1", None).unwrap();
    b.create("/appears", b"", &CreateOptions::persistent())
        .unwrap();
    b.create("/parent/kid", b"", &CreateOptions::persistent())
        .unwrap();
    b.create("/tree/while-away", b"", &CreateOptions::persistent())
        .unwrap();
    assert_eq!(a.state(), SessionState::Disconnected, "A is still away");

    let t_release = Instant::now();
    proxy.hold(false);
    let seen = states_until(&states, SessionState::Connected, Duration::from_secs(8));
    eprintln!(
        "reconnected {:?} after A's held connection was let through ({:?} after stop began)",
        t_release.elapsed(),
        t_stop.elapsed()
    );
    assert_eq!(seen, [SessionState::Connected]);
    assert_eq!(a.session_id(), sid, "same session");
    assert!(t_stop.elapsed() < Duration::from_secs(8));

    let wait = Duration::from_secs(5);
    let ev = data_watch.wait_timeout(wait).unwrap();
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (EventType::NodeDataChanged, "/watched")
    );
    let ev = exists_watch.wait_timeout(wait).unwrap();
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (EventType::NodeCreated, "/appears")
    );
    let ev = child_watch.wait_timeout(wait).unwrap();
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (EventType::NodeChildrenChanged, "/parent")
    );
    // the queued request went out after the reconnect
    let stat = queued.wait().unwrap();
    assert_eq!(stat.version, 1);
    // the persistent watch is re-registered without replaying what changed while away: its
    // first event is the queued write, not /tree/while-away
    let ev = recursive.next_timeout(wait).unwrap();
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (EventType::NodeDataChanged, "/tree")
    );
    b.create("/tree/x", b"", &CreateOptions::persistent())
        .unwrap();
    let ev = recursive.next_timeout(wait).unwrap();
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (EventType::NodeCreated, "/tree/x")
    );
    // an unchanged watch was re-registered and fires on a later change
    assert_eq!(quiet_watch.try_take(), None);
    b.set_data("/quiet", b"1", None).unwrap();
    let ev = quiet_watch.wait_timeout(wait).unwrap();
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (EventType::NodeDataChanged, "/quiet")
    );

    // 2. Once more, with nothing held: how long the reconnect takes once the server is back.
    let (_, _, data_watch) = a.get_data_watch("/watched").unwrap();
    server.stop();
    let seen = states_until(&states, SessionState::Disconnected, Duration::from_secs(5));
    assert_eq!(seen, [SessionState::Disconnected]);
    let t_restart = Instant::now();
    server.restart();
    let restart_took = t_restart.elapsed();
    let seen = states_until(&states, SessionState::Connected, Duration::from_secs(8));
    // (restart() returns once the server answers imok, polled every 50 ms, so A may already
    // be back by then; A's reconnect backoff while the server is down grows to ~1 s)
    eprintln!(
        "reconnected {:?} after restart() began; restart() took {restart_took:?}",
        t_restart.elapsed()
    );
    assert_eq!(seen, [SessionState::Connected]);
    assert_eq!(a.session_id(), sid, "same session");
    let b = connect(server.addr(), Duration::from_secs(8));
    b.set_data("/watched", b"2", None).unwrap();
    let ev = data_watch.wait_timeout(wait).unwrap();
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (EventType::NodeDataChanged, "/watched")
    );

    // the ephemeral survived both restarts and still belongs to A
    let stat = b.exists("/eph").unwrap().unwrap();
    assert_eq!(stat.ephemeral_owner, sid);
    assert_eq!(a.get_ephemerals("/").unwrap(), ["/eph"]);
    assert_eq!(&a.get_data("/watched").unwrap().0[..], b"2");
    a.close().unwrap();
    assert_eq!(b.exists("/eph").unwrap(), None);
}

#[test]
fn frozen_server_is_detected_under_load() {
    let server = DedicatedServer::start(200);
    let a = connect(server.addr(), Duration::from_secs(6));
    let tn = a.negotiated_timeout().unwrap();
    assert_eq!(tn, Duration::from_secs(6));
    let sid = a.session_id();
    a.create("/load", b"payload", &CreateOptions::persistent())
        .unwrap();
    let states = a.state_watch();

    // a busy client: a getData every 20 ms, so the connection never idles
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let a = a.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut pending = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                pending.push(a.get_data_async("/load"));
                std::thread::sleep(Duration::from_millis(20));
            }
            let (mut ok, mut lost) = (0, 0);
            for c in pending {
                match c.wait() {
                    Ok((data, _)) => {
                        assert_eq!(&data[..], b"payload");
                        ok += 1;
                    }
                    Err(Error::ConnectionLoss) => lost += 1,
                    Err(e) => panic!("unexpected {e:?}"),
                }
            }
            (ok, lost)
        })
    };
    std::thread::sleep(Duration::from_millis(500));

    let t0 = Instant::now();
    server.freeze();
    let seen = states_until(&states, SessionState::Disconnected, tn);
    let detected = t0.elapsed();
    let read_timeout = tn * 2 / 3;
    let bound = read_timeout * 11 / 10;
    eprintln!(
        "frozen server detected after {detected:?} (read timeout {read_timeout:?}, bound {bound:?})"
    );
    assert_eq!(seen, [SessionState::Disconnected]);
    assert!(detected <= bound, "{detected:?} > {bound:?}");
    assert!(
        detected + Duration::from_millis(500) >= read_timeout,
        "detected {detected:?}, before the read timeout {read_timeout:?}"
    );

    server.thaw();
    let t_thaw = Instant::now();
    let seen = states_until(&states, SessionState::Connected, tn);
    eprintln!("reconnected {:?} after thaw", t_thaw.elapsed());
    assert_eq!(seen, [SessionState::Connected]);
    assert_eq!(a.session_id(), sid, "the session survived");
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let (ok, lost) = load.join().unwrap();
    eprintln!("load: {ok} ok, {lost} lost to the disconnect");
    assert!(ok > 20, "{ok}");
    assert!(
        lost > 0,
        "requests in flight at the disconnect fail with ConnectionLoss"
    );
    assert_eq!(&a.get_data("/load").unwrap().0[..], b"payload");
    a.close().unwrap();
}

/// Sequential blocking calls on an idle connection run on the caller's thread (the driver's
/// inline path). A frozen server must still be detected within the read timeout: the caller
/// hands its wait back to the driver after a short budget, and its call fails with
/// ConnectionLoss once the driver declares the connection dead, not later.
#[test]
fn frozen_server_is_detected_during_a_blocking_call() {
    let server = DedicatedServer::start(200);
    let a = connect(server.addr(), Duration::from_secs(6));
    let tn = a.negotiated_timeout().unwrap();
    let sid = a.session_id();
    a.create("/sync", b"payload", &CreateOptions::persistent())
        .unwrap();
    for _ in 0..200 {
        assert_eq!(&a.get_data("/sync").unwrap().0[..], b"payload");
    }
    let states = a.state_watch();

    // the read timeout runs from the last reply, just before the freeze
    let t0 = Instant::now();
    server.freeze();
    let r = a.get_data("/sync");
    let failed_after = t0.elapsed();
    let read_timeout = tn * 2 / 3;
    let bound = read_timeout * 11 / 10;
    eprintln!("blocking call on a frozen server failed after {failed_after:?}: {r:?}");
    assert_eq!(r.map(|_| ()), Err(Error::ConnectionLoss));
    assert!(failed_after <= bound, "{failed_after:?} > {bound:?}");
    assert!(
        failed_after + Duration::from_millis(500) >= read_timeout,
        "failed after {failed_after:?}, before the read timeout {read_timeout:?}"
    );
    assert_eq!(
        states_until(&states, SessionState::Disconnected, tn),
        [SessionState::Disconnected]
    );

    server.thaw();
    assert_eq!(
        states_until(&states, SessionState::Connected, tn),
        [SessionState::Connected]
    );
    assert_eq!(a.session_id(), sid, "the session survived");
    for _ in 0..200 {
        assert_eq!(&a.get_data("/sync").unwrap().0[..], b"payload");
    }
    a.close().unwrap();
}
