//! Tests of the real-server harness itself (`scripts/zk-server` and `zk_integration_tests`).

#![allow(clippy::disallowed_methods)]

use std::io;
use std::time::{Duration, Instant};

use zk_integration_tests::{
    DedicatedServer, Ensemble, four_letter, four_letter_timeout, shared_server, wait_for_imok,
};

#[test]
fn shared_server_answers_ruok() {
    let server = shared_server();
    let reply = server
        .four_letter("ruok")
        .expect("ruok to the shared server");
    assert_eq!(reply, "imok", "shared server {}", server.addr);
}

#[test]
fn dedicated_server_freeze_thaw_kill_restart() {
    let t0 = Instant::now();
    let server = DedicatedServer::start(200);
    let addr = server.addr().to_string();
    assert_eq!(server.four_letter("ruok"), "imok");
    let srvr = server.four_letter("srvr");
    assert!(srvr.contains("Mode: standalone"), "srvr: {srvr}");
    assert!(server.dir().join("zoo.cfg").is_file());

    server.freeze();
    let frozen = four_letter_timeout(&addr, "ruok", Duration::from_millis(500));
    assert!(
        !matches!(&frozen, Ok(r) if r == "imok"),
        "a frozen server answered: {frozen:?}"
    );
    server.thaw();
    assert!(
        wait_for_imok(&addr, Duration::from_secs(5)),
        "no imok after thaw"
    );

    let old_pid = server.pid();
    server.kill();
    let err = four_letter(&addr, "ruok").expect_err("a killed server answered");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");

    server.restart();
    assert_eq!(server.addr(), addr, "restart keeps the port");
    assert_ne!(server.pid(), old_pid, "restart runs a new process");
    assert_eq!(
        four_letter(&addr, "ruok").expect("ruok after restart"),
        "imok"
    );

    // restart also works on a running (here: frozen) server, and after a graceful stop
    server.freeze();
    server.restart();
    assert_eq!(server.four_letter("ruok"), "imok");
    server.stop();
    assert!(
        four_letter(&addr, "ruok").is_err(),
        "a stopped server answered"
    );
    server.restart();
    assert_eq!(server.four_letter("ruok"), "imok");

    let dir = server.dir().to_path_buf();
    drop(server);
    assert!(!dir.exists(), "drop removes {}", dir.display());
    assert!(four_letter(&addr, "ruok").is_err(), "server survived drop");
    eprintln!("dedicated server test took {:?}", t0.elapsed());
}

#[test]
fn ensemble_elects_a_new_leader_and_rejoins_a_node() {
    let t0 = Instant::now();
    let ensemble = Ensemble::start(false);
    assert_eq!(ensemble.connect_string().split(',').count(), 3);
    assert_eq!(ensemble.node_dirs().len(), 3);
    let leader = ensemble.leader_index().expect("a leader right after start");
    for i in 0..3 {
        assert_eq!(ensemble.four_letter(i, "ruok"), "imok", "node {i}");
    }

    ensemble.kill_node(leader);
    let new_leader = ensemble
        .wait_for_leader(Duration::from_secs(10))
        .expect("a new leader after killing the old one");
    assert_ne!(new_leader, leader);

    ensemble.restart_node(leader);
    assert!(
        ensemble.wait_for_mode(leader, &["follower"], Duration::from_secs(10)),
        "restarted node {leader} did not rejoin as a follower: {:?}",
        ensemble.node_mode(leader)
    );
    let dir = ensemble.dir().to_path_buf();
    drop(ensemble);
    assert!(!dir.exists(), "drop removes {}", dir.display());
    eprintln!("ensemble test took {:?}", t0.elapsed());
}
