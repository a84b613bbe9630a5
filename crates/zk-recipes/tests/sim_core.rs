//! The simulator's own behaviour: virtual time, determinism, and each fault's semantics.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zk_recipes::sim::{Faults, Sim, SimConfig};
use zk_recipes::{CreateMode, CreateOptions, Error, Session, SessionState};

fn config(seed: u64) -> SimConfig {
    SimConfig {
        seed,
        keep_trace: true,
        ..SimConfig::default()
    }
}

#[test]
fn virtual_time_costs_no_real_time() {
    let mut sim = Sim::new(config(1));
    let waited = Arc::new(Mutex::new(Duration::ZERO));
    let w = waited.clone();
    sim.spawn("sleeper", move |ctx| {
        let zk = ctx.connect();
        let t0 = zk.now();
        let (_, watch) = zk.exists_watch("/never").unwrap();
        // A 30-second wait for a watch that never fires.
        let r = zk
            .wait_watch(&watch, Some(t0 + Duration::from_secs(30)))
            .unwrap();
        assert!(r.is_none());
        *w.lock().unwrap() = zk.now() - t0;
    });
    let real = Instant::now();
    let report = sim.run();
    assert!(report.panics.is_empty(), "{:?}", report.panics);
    assert!(
        real.elapsed() < Duration::from_secs(2),
        "took {:?}",
        real.elapsed()
    );
    let v = *waited.lock().unwrap();
    assert!(
        v >= Duration::from_secs(30) && v < Duration::from_secs(31),
        "{v:?}"
    );
}

fn busy_workload(sim: &mut Sim) {
    for i in 0..3 {
        sim.spawn(&format!("w{i}"), move |ctx| {
            let zk = ctx.connect();
            for j in 0..20 {
                let _ = zk.create(
                    &format!("/n-{i}-{j}"),
                    b"x",
                    &CreateOptions::new(CreateMode::EphemeralSequential),
                );
                let _ = zk.get_children("/");
            }
        });
    }
}

#[test]
fn same_seed_same_trace_different_seed_different_trace() {
    let run = |seed| {
        let mut sim = Sim::new(SimConfig {
            faults: Faults::standard(),
            ..config(seed)
        });
        busy_workload(&mut sim);
        sim.run()
    };
    let (a, b, c) = (run(42), run(42), run(43));
    assert_eq!(a.trace_hash, b.trace_hash);
    let text = |r: &zk_recipes::sim::RunReport| {
        r.trace
            .iter()
            .map(|l| format!("{:?} {}", l.at, l.text))
            .collect::<Vec<_>>()
    };
    assert_eq!(text(&a), text(&b), "timelines must match line by line");
    assert_ne!(a.trace_hash, c.trace_hash);
}

#[test]
fn a_lost_request_is_not_applied_and_reports_connection_loss() {
    let mut sim = Sim::new(SimConfig {
        faults: Faults {
            drop_request: 1.0,
            ..Faults::none()
        },
        ..config(3)
    });
    let seen = Arc::new(Mutex::new(None));
    let s = seen.clone();
    sim.spawn("c", move |ctx| {
        let zk = ctx.connect();
        *s.lock().unwrap() = Some(zk.create("/x", b"", &CreateOptions::persistent()));
    });
    let report = sim.run();
    assert_eq!(
        seen.lock().unwrap().clone().unwrap(),
        Err(Error::ConnectionLoss)
    );
    assert!(
        report.model.node("/x").is_none(),
        "a lost request is not applied"
    );
    assert!(report.faults_injected >= 1);
}

#[test]
fn a_lost_reply_is_applied_but_reports_connection_loss() {
    let mut sim = Sim::new(SimConfig {
        faults: Faults {
            drop_reply: 1.0,
            ..Faults::none()
        },
        ..config(4)
    });
    let seen = Arc::new(Mutex::new(None));
    let s = seen.clone();
    sim.spawn("c", move |ctx| {
        let zk = ctx.connect();
        *s.lock().unwrap() = Some(zk.create("/x", b"v", &CreateOptions::persistent()));
    });
    let report = sim.run();
    assert_eq!(
        seen.lock().unwrap().clone().unwrap(),
        Err(Error::ConnectionLoss)
    );
    assert!(
        report.model.node("/x").is_some(),
        "the ambiguous case: it was applied"
    );
}

#[test]
fn a_long_partition_expires_the_session_and_the_client_learns_on_reconnect() {
    // Client a holds an ephemeral and is cut off for longer than its timeout; client b sees
    // the ephemeral vanish after the timeout while a is still partitioned; a learns of the
    // expiry only when it reconnects.
    let mut sim = Sim::new(config(5));
    let log = Arc::new(Mutex::new(Vec::new()));
    let (la, lb) = (log.clone(), log.clone());
    sim.spawn("a", move |ctx| {
        let zk = ctx.connect();
        zk.create("/eph", b"", &CreateOptions::ephemeral()).unwrap();
        zk.disconnect_for(Duration::from_secs(10)); // longer than the 6 s timeout
        la.lock()
            .unwrap()
            .push(format!("a cut off: {:?}", zk.state()));
        let t0 = zk.now();
        let s = zk.wait_state(
            SessionState::Disconnected,
            Some(t0 + Duration::from_secs(60)),
        );
        la.lock()
            .unwrap()
            .push(format!("a state {s:?} after {:?}", zk.now() - t0));
        la.lock()
            .unwrap()
            .push(format!("a next {:?}", zk.exists("/")));
    });
    sim.spawn("b", move |ctx| {
        let zk = ctx.connect();
        ctx.sleep(Duration::from_secs(1));
        lb.lock().unwrap().push(format!(
            "b sees {:?}",
            zk.exists("/eph").map(|s| s.is_some())
        ));
        ctx.sleep(Duration::from_secs(30));
        lb.lock().unwrap().push(format!(
            "b sees {:?}",
            zk.exists("/eph").map(|s| s.is_some())
        ));
    });
    let report = sim.run();
    let log = log.lock().unwrap().clone();
    assert!(report.panics.is_empty(), "{:?}", report.panics);
    assert!(
        log.iter().any(|l| l.starts_with("a state Expired")),
        "{log:#?}"
    );
    assert!(
        log.iter().any(|l| l == "a next Err(SessionExpired)"),
        "{log:#?}"
    );
    assert_eq!(
        log.last().map(String::as_str),
        Some("b sees Ok(false)"),
        "{log:#?}"
    );
    assert_eq!(log[0], "a cut off: Disconnected");
    assert_eq!(log[1], "b sees Ok(true)", "{log:#?}");
    assert!(report.model.paths().iter().all(|p| p != "/eph"));
}

#[test]
fn a_stalled_holder_loses_its_session_and_its_fenced_write_fails() {
    let mut sim = Sim::new(SimConfig {
        faults: Faults {
            stall: 1.0,
            ..Faults::none()
        },
        ..config(6)
    });
    let out = Arc::new(Mutex::new(Vec::new()));
    let o = out.clone();
    sim.spawn("holder", move |ctx| {
        let zk = ctx.connect();
        let (node, _) = zk
            .create(
                "/lock-",
                b"",
                &CreateOptions::new(CreateMode::EphemeralSequential),
            )
            .unwrap();
        let fence = zk_recipes::Fence {
            node: node.clone(),
            token: 0,
        };
        assert!(ctx.stall(), "stall probability 1.0");
        let r = fence.write(
            &zk,
            vec![zk_recipes::Op::create(
                "/log-",
                &b"x"[..],
                CreateOptions::new(CreateMode::PersistentSequential),
            )],
        );
        o.lock().unwrap().push(format!("{r:?}"));
    });
    let report = sim.run();
    assert_eq!(out.lock().unwrap().as_slice(), ["Err(SessionExpired)"]);
    assert!(
        report
            .model
            .children("/")
            .unwrap()
            .iter()
            .all(|c| !c.starts_with("log-"))
    );
}

#[test]
fn watches_survive_a_short_disconnect_and_catch_up() {
    let mut sim = Sim::new(config(7));
    let out = Arc::new(Mutex::new(Vec::new()));
    let o = out.clone();
    sim.spawn("watcher", move |ctx| {
        let zk = ctx.connect();
        zk.create("/w", b"1", &CreateOptions::persistent()).unwrap();
        let (_, _, watch) = zk.get_data_watch("/w").unwrap();
        let ev = zk.wait_watch(&watch, Some(zk.now() + Duration::from_secs(5)));
        o.lock().unwrap().push(format!("{ev:?}"));
    });
    sim.spawn("writer", move |ctx| {
        let zk = ctx.connect();
        ctx.sleep(Duration::from_millis(100));
        zk.set_data("/w", b"2", None).unwrap();
    });
    let report = sim.run();
    assert!(report.panics.is_empty(), "{:?}", report.panics);
    let out = out.lock().unwrap();
    assert!(
        out[0].contains("NodeDataChanged") && out[0].contains("\"/w\""),
        "{out:?}"
    );
}
