//! The election family in the simulator: the fault-checked workloads over ranges of seeds
//! (0 violations for the recipes, some for the deliberately broken variants), and the
//! recipes' API on a deterministic, fault-free or scripted server.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use zk_recipes::election::{Election, LeadershipState};
use zk_recipes::party::{Party, ShallowParty};
use zk_recipes::sim::{Faults, Sim, SimConfig};
use zk_recipes::watchers::{ChildrenWatch, DataWatch};
use zk_recipes::workloads::{self, election_family, run_seed};
use zk_recipes::{CreateMode, CreateOptions, Error, Fence, Op, Session, SessionExt};

/// The seeds each workload runs (a few seconds in a debug build).
fn seeds() -> std::ops::Range<u64> {
    0..200
}

fn violations(name: &str) -> (usize, Vec<String>) {
    let w = workloads::find(name).unwrap_or_else(|| panic!("workload {name} is registered"));
    let mut found = Vec::new();
    let range = seeds();
    let n = range.clone().count();
    for seed in range {
        let r = run_seed(w, seed, false);
        assert!(
            !r.report.timed_out || r.verdict.is_err(),
            "{name} seed {seed}: hit the time limit"
        );
        if let Err(e) = r.verdict {
            found.push(format!("seed {seed}: {e}"));
        }
    }
    (n, found)
}

#[test]
fn election_holds_under_faults() {
    let _ = election_family::election_stats();
    let (n, found) = violations("election");
    assert!(
        found.is_empty(),
        "{} of {n} seeds: {:#?}",
        found.len(),
        found
    );
    let stats = election_family::election_stats();
    println!("election: {n} seeds, 0 violations; {stats:?}");
    // The unfenced log shows what the fence prevents: stalled leaders do write late.
    assert!(
        stats.unfenced_violations > 0,
        "the unfenced log never caught a stale leader"
    );
    assert!(stats.crashes > 0 && stats.lost_terms > 0, "{stats:?}");
}

#[test]
fn broken_election_is_caught() {
    let (n, found) = violations("election-broken");
    println!("election-broken: caught on {} of {n} seeds", found.len());
    assert!(!found.is_empty());
}

#[test]
fn party_holds_under_faults() {
    for name in ["party", "shallow-party"] {
        let (n, found) = violations(name);
        assert!(
            found.is_empty(),
            "{name}: {} of {n} seeds: {:#?}",
            found.len(),
            found
        );
    }
}

#[test]
fn broken_parties_are_caught() {
    for name in ["party-broken", "shallow-party-broken"] {
        let (n, found) = violations(name);
        println!("{name}: caught on {} of {n} seeds", found.len());
        assert!(!found.is_empty(), "{name} was never caught");
    }
}

#[test]
fn workloads_are_deterministic() {
    for name in ["election", "party", "shallow-party"] {
        let w = workloads::find(name).unwrap();
        for seed in 0..3 {
            let a = run_seed(w, seed, false).report.trace_hash;
            let b = run_seed(w, seed, false).report.trace_hash;
            assert_eq!(a, b, "{name} seed {seed}");
        }
    }
}

fn quiet(seed: u64) -> Sim {
    Sim::new(SimConfig {
        seed,
        ..SimConfig::default()
    })
}

type Seen<T> = Arc<Mutex<Vec<T>>>;

#[test]
fn data_watch_reports_value_changes_deletion_and_recreation() {
    let mut sim = quiet(1);
    let seen: Seen<Option<Vec<u8>>> = Arc::default();
    let s = seen.clone();
    sim.spawn("watcher", move |ctx| {
        let zk = ctx.connect();
        let mut w = DataWatch::new(zk, "/dw");
        // Absent at first.
        while let Some((data, stat)) = w.next(Some(ctx.now() + Duration::from_secs(5))).unwrap() {
            assert_eq!(data.is_some(), stat.is_some());
            s.lock().unwrap().push(data.map(|d| d.to_vec()));
        }
    });
    sim.spawn("writer", |ctx| {
        let zk = ctx.connect();
        ctx.sleep(Duration::from_millis(100));
        zk.create("/dw", b"a", &CreateOptions::persistent())
            .unwrap();
        ctx.sleep(Duration::from_millis(100));
        zk.set_data("/dw", b"b", None).unwrap();
        ctx.sleep(Duration::from_millis(100));
        // The same bytes again are a change (a new mzxid), as in kazoo.
        zk.set_data("/dw", b"b", None).unwrap();
        ctx.sleep(Duration::from_millis(100));
        zk.delete("/dw", None).unwrap();
        ctx.sleep(Duration::from_millis(100));
        zk.create("/dw", b"c", &CreateOptions::persistent())
            .unwrap();
    });
    let report = sim.run();
    assert!(report.panics.is_empty(), "{:?}", report.panics);
    let seen = seen.lock().unwrap().clone();
    let b = |s: &str| Some(s.as_bytes().to_vec());
    assert_eq!(seen, vec![None, b("a"), b("b"), b("b"), None, b("c")]);
}

#[test]
fn data_watch_survives_disconnects_and_moves_to_a_new_session() {
    for seed in 0..20 {
        let mut sim = Sim::new(SimConfig {
            seed,
            faults: Faults {
                disconnect: 0.2,
                drop_reply: 0.05,
                ..Faults::none()
            },
            ..SimConfig::default()
        });
        let last: Seen<Option<Vec<u8>>> = Arc::default();
        let l = last.clone();
        sim.spawn("watcher", move |ctx| {
            let mut w = DataWatch::new(ctx.connect(), "/dw");
            let end = ctx.now() + Duration::from_secs(20);
            while ctx.now() < end {
                match w.next(Some(end)) {
                    Ok(Some((data, _))) => l.lock().unwrap().push(data.map(|d| d.to_vec())),
                    Ok(None) => break,
                    Err(e) if e.is_terminal() => w.rebind(ctx.connect()),
                    Err(e) => panic!("{e}"),
                }
            }
        });
        sim.spawn("writer", |ctx| {
            let zk = ctx.connect();
            while zk.ensure_path("/dw").is_err() && !ctx.stopped() {
                ctx.sleep(Duration::from_millis(50));
            }
            for i in 0..10u32 {
                ctx.sleep(Duration::from_millis(200));
                let _ = zk.set_data("/dw", i.to_string().as_bytes(), None);
            }
            // Make sure the last value is written.
            while zk.set_data("/dw", b"end", None).is_err() && !ctx.stopped() {
                ctx.sleep(Duration::from_millis(50));
            }
        });
        let report = sim.run();
        assert!(report.panics.is_empty(), "seed {seed}: {:?}", report.panics);
        let last = last.lock().unwrap().clone();
        assert_eq!(
            last.last(),
            Some(&Some(b"end".to_vec())),
            "seed {seed}: the final value is always seen: {last:?}"
        );
    }
}

#[test]
fn children_watch_reports_changes_and_ends_with_the_node() {
    let mut sim = quiet(2);
    let seen: Seen<Vec<String>> = Arc::default();
    let end: Seen<String> = Arc::default();
    let (s, e) = (seen.clone(), end.clone());
    sim.spawn("watcher", move |ctx| {
        let zk = ctx.connect();
        zk.create("/cw", b"", &CreateOptions::persistent()).unwrap();
        let mut w = ChildrenWatch::new(zk, "/cw");
        loop {
            match w.next(None) {
                Ok(Some(mut c)) => {
                    c.sort();
                    s.lock().unwrap().push(c);
                }
                Ok(None) => unreachable!("no deadline"),
                Err(err) => {
                    e.lock().unwrap().push(err.to_string());
                    assert_eq!(w.next(None).unwrap_err(), Error::NoNode);
                    break;
                }
            }
        }
    });
    sim.spawn("writer", |ctx| {
        let zk = ctx.connect();
        ctx.sleep(Duration::from_millis(100));
        zk.create("/cw/a", b"", &CreateOptions::persistent())
            .unwrap();
        ctx.sleep(Duration::from_millis(100));
        zk.create("/cw/b", b"", &CreateOptions::persistent())
            .unwrap();
        ctx.sleep(Duration::from_millis(100));
        zk.delete("/cw/a", None).unwrap();
        ctx.sleep(Duration::from_millis(100));
        zk.delete("/cw/b", None).unwrap();
        ctx.sleep(Duration::from_millis(100));
        zk.delete("/cw", None).unwrap();
    });
    let report = sim.run();
    assert!(report.panics.is_empty(), "{:?}", report.panics);
    let seen = seen.lock().unwrap().clone();
    let v = |names: &[&str]| names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        seen,
        vec![v(&[]), v(&["a"]), v(&["a", "b"]), v(&["b"]), v(&[])]
    );
    assert_eq!(end.lock().unwrap().len(), 1);
}

#[test]
fn election_elects_in_order_and_lists_contenders() {
    let mut sim = quiet(3);
    let order: Seen<(String, i64)> = Arc::default();
    for i in 0..3u64 {
        let order = order.clone();
        sim.spawn(&format!("c{i}"), move |ctx| {
            ctx.sleep(Duration::from_millis(50 * i));
            let zk = ctx.connect();
            let election = Election::new(zk, "/el", &format!("c{i}"));
            let r = election.run(|lead| {
                assert!(lead.is_leader());
                assert_eq!(lead.state(), LeadershipState::Leader);
                let contenders = election.contenders().unwrap();
                assert_eq!(
                    contenders.first().map(String::as_str),
                    Some(election.identifier())
                );
                if i == 0 {
                    // Everyone is queued behind the first leader by now.
                    ctx.sleep(Duration::from_millis(300));
                    assert_eq!(election.contenders().unwrap(), vec!["c0", "c1", "c2"]);
                }
                order
                    .lock()
                    .unwrap()
                    .push((election.identifier().to_owned(), lead.token()));
            });
            assert_eq!(r, Ok(Some(())));
        });
    }
    let report = sim.run();
    assert!(report.panics.is_empty(), "{:?}", report.panics);
    let order = order.lock().unwrap().clone();
    let names: Vec<&str> = order.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, vec!["c0", "c1", "c2"]);
    assert!(
        order.windows(2).all(|w| w[0].1 < w[1].1),
        "tokens rise: {order:?}"
    );
}

#[test]
fn cancelled_or_timed_out_contenders_leave_no_node() {
    let mut sim = quiet(4);
    sim.spawn("leader", |ctx| {
        let election = Election::new(ctx.connect(), "/el", "leader");
        election.run(|_| ctx.sleep(Duration::from_secs(2))).unwrap();
    });
    sim.spawn("other", |ctx| {
        ctx.sleep(Duration::from_millis(100));
        let zk = ctx.connect();
        let election = Election::new(zk.clone(), "/el", "other");
        // A cancel before running cancels the next run (kazoo's semantics).
        election.cancel();
        assert_eq!(election.run(|_| ()), Ok(None));
        // Timed out while the leader leads: withdrawn.
        let r = election.run_within(Some(Duration::from_millis(300)), |_| ());
        assert_eq!(r, Err(Error::Timeout));
        let (children, _) = zk.get_children("/el").unwrap();
        assert_eq!(children.len(), 1, "only the leader's node: {children:?}");
        assert_eq!(election.contenders().unwrap(), vec!["leader"]);
        // And it can contend again afterwards.
        assert_eq!(election.run(|lead| lead.token() > 0), Ok(Some(true)));
    });
    let report = sim.run();
    assert!(report.panics.is_empty(), "{:?}", report.panics);
}

#[test]
fn a_stalled_leader_is_told_it_lost_and_its_fence_holds() {
    let mut sim = Sim::new(SimConfig {
        seed: 5,
        faults: Faults {
            stall: 1.0,
            ..Faults::none()
        },
        ..SimConfig::default()
    });
    let times: Seen<(&'static str, std::time::Instant)> = Arc::default();
    let t = times.clone();
    sim.spawn("stalls", move |ctx| {
        let zk = ctx.connect();
        zk.ensure_path("/log").unwrap();
        let election = Election::new(zk.clone(), "/el", "stalls");
        let r = election.run(|lead| {
            assert!(lead.is_leader());
            assert!(ctx.stall(), "stalls past the session timeout");
            t.lock().unwrap().push(("woke", ctx.now()));
            // The session expired while we were frozen: we are told.
            assert!(!lead.is_leader());
            assert_eq!(lead.state(), LeadershipState::Lost);
            assert_eq!(lead.wait_lost(None), Ok(true));
            assert_eq!(lead.check(None), Ok(false));
            let err = lead
                .write(vec![Op::create(
                    "/log/x-",
                    "late",
                    CreateOptions::new(CreateMode::PersistentSequential),
                )])
                .unwrap_err();
            assert!(Fence::is_lost(&err), "{err}");
        });
        assert_eq!(r, Ok(Some(())));
    });
    let t = times.clone();
    sim.spawn("next", move |ctx| {
        ctx.sleep(Duration::from_millis(100));
        let election = Election::new(ctx.connect(), "/el", "next");
        let r = election.run(|lead| {
            t.lock().unwrap().push(("elected", ctx.now()));
            lead.token()
        });
        assert!(matches!(r, Ok(Some(tok)) if tok > 0), "{r:?}");
    });
    let report = sim.run();
    assert!(report.panics.is_empty(), "{:?}", report.panics);
    let times = times.lock().unwrap().clone();
    // Elected once the stalled leader's session expired (6 s), before it woke (9 s).
    assert_eq!(
        times.iter().map(|t| t.0).collect::<Vec<_>>(),
        vec!["elected", "woke"]
    );
}

#[test]
fn wait_lost_returns_when_the_leader_node_is_deleted() {
    let mut sim = quiet(6);
    sim.spawn("leader", |ctx| {
        let zk = ctx.connect();
        let election = Election::new(zk, "/el", "l");
        election
            .run(|lead| {
                assert_eq!(
                    lead.wait_lost(Some(ctx.now() + Duration::from_millis(50))),
                    Ok(false)
                );
                assert_eq!(lead.wait_lost(None), Ok(true));
                assert!(!lead.is_leader());
            })
            .unwrap();
    });
    sim.spawn("admin", |ctx| {
        ctx.sleep(Duration::from_millis(500));
        let zk = ctx.connect();
        let (children, _) = zk.get_children("/el").unwrap();
        for c in children {
            zk.delete(&format!("/el/{c}"), None).unwrap();
        }
    });
    let report = sim.run();
    assert!(report.panics.is_empty(), "{:?}", report.panics);
}

#[test]
fn parties_list_members_and_tell_a_member_it_left() {
    let mut sim = Sim::new(SimConfig {
        seed: 7,
        faults: Faults {
            stall: 1.0,
            ..Faults::none()
        },
        ..SimConfig::default()
    });
    sim.spawn("a", |ctx| {
        let zk = ctx.connect();
        let mut p = Party::new(zk.clone(), "/p", "alice");
        let mut sp = ShallowParty::new(zk, "/sp", "alice");
        p.join().unwrap();
        sp.join().unwrap();
        assert!(p.is_member() && sp.is_member());
        assert!(p.node().ends_with("__party__"), "{}", p.node());
        assert!(sp.node().ends_with("-alice"), "{}", sp.node());
        let mut members = p.wait_for_members(2, Some(Duration::from_secs(5))).unwrap();
        members.sort();
        assert_eq!(members, vec!["alice", "bob"]);
        let mut members = sp
            .wait_for_members(2, Some(Duration::from_secs(5)))
            .unwrap();
        members.sort();
        assert_eq!(members, vec!["alice", "bob"]);
        assert_eq!(p.len(), Ok(2));
        assert_eq!(
            p.wait_for_members(3, Some(Duration::from_millis(200))),
            Err(Error::Timeout)
        );
        // A GC pause longer than the session: told it left.
        assert!(ctx.stall());
        assert!(!p.is_member() && !sp.is_member());
        assert_eq!(p.check_member(None), Ok(false));
        assert_eq!(p.wait_left(None), Ok(true));
        assert_eq!(p.leave(), Ok(false));
    });
    sim.spawn("b", |ctx| {
        let zk = ctx.connect();
        let mut p = Party::new(zk.clone(), "/p", "bob");
        let mut sp = ShallowParty::new(zk, "/sp", "bob");
        p.join().unwrap();
        sp.join().unwrap();
        // Joining twice is harmless.
        p.join().unwrap();
        // After alice's session expired, only bob is left.
        ctx.sleep(Duration::from_secs(8));
        assert_eq!(p.members().unwrap(), vec!["bob"]);
        assert_eq!(sp.members().unwrap(), vec!["bob"]);
        assert_eq!(p.check_member(None), Ok(true));
        assert_eq!(p.leave(), Ok(true));
        assert!(!p.is_member());
        assert_eq!(p.is_empty(), Ok(true));
        assert_eq!(sp.len(), Ok(1));
    });
    let report = sim.run();
    assert!(report.panics.is_empty(), "{:?}", report.panics);
}

#[test]
fn lost_replies_leave_no_contender_or_member_behind() {
    for seed in 0..40 {
        let mut sim = Sim::new(SimConfig {
            seed,
            faults: Faults {
                drop_reply: 0.2,
                drop_request: 0.05,
                ..Faults::none()
            },
            ..SimConfig::default()
        });
        for i in 0..2 {
            sim.spawn(&format!("c{i}"), move |ctx| {
                let zk = ctx.connect();
                let election = Election::new(zk.clone(), "/el", &format!("c{i}"));
                for _ in 0..5 {
                    assert_eq!(election.run(|lead| lead.token() >= 0), Ok(Some(true)));
                }
                let mut party = Party::new(zk.clone(), "/p", &format!("c{i}"));
                for _ in 0..5 {
                    party.join().unwrap();
                    assert!(party.is_member());
                    assert_eq!(party.leave(), Ok(true));
                }
                // Our session is alive and owns nothing under either path.
                for path in ["/el", "/p"] {
                    let (children, _) = loop {
                        match zk.get_children(path) {
                            Ok(c) => break c,
                            Err(e) if e.is_retryable() => ctx.sleep(Duration::from_millis(20)),
                            Err(e) => panic!("{e}"),
                        }
                    };
                    for c in children {
                        let stat = loop {
                            match zk.exists(&format!("{path}/{c}")) {
                                Ok(s) => break s,
                                Err(e) if e.is_retryable() => {
                                    ctx.sleep(Duration::from_millis(20));
                                }
                                Err(e) => panic!("{e}"),
                            }
                        };
                        assert!(
                            stat.is_none_or(|s| s.ephemeral_owner != zk.session_id()),
                            "seed {seed}: {path}/{c} left behind"
                        );
                    }
                }
            });
        }
        let report = sim.run();
        assert!(report.panics.is_empty(), "seed {seed}: {:?}", report.panics);
        assert!(!report.timed_out, "seed {seed}");
    }
}
