//! Differential conformance: the simulator's data model (`zk_recipes::sim::model::Model`)
//! against a real ZooKeeper 3.8 server.
//!
//! Every scenario is a script of steps (a client index and a raw [`Request`], plus close,
//! expiry, reaper waits and tree dumps). It runs once against the model and once against
//! the real server over raw protocol connections (plain `TcpStream` + zk-proto frames), and
//! both runs must observe the same thing after normalisation:
//!
//! - replies and error codes exactly (child lists, getEphemerals and whoAmI sorted: the
//!   server returns them in hash order);
//! - zxids by order of first appearance within the scenario (`Z1`, `Z2`, ...), so the
//!   relations between czxid/mzxid/pzxid and reply zxids are compared, not the values; a read
//!   reply's zxid only as `latest` (≥ every zxid the scenario has seen) or `stale`;
//! - ctime/mtime by order of first appearance (`T1`, ...), i.e. "equal or not", and each run
//!   checks that they never go back;
//! - ephemeralOwner as the client index;
//! - paths with the scenario's unique root replaced by `~`;
//! - watch notifications: type, path and where they arrive relative to replies: before the
//!   acting client's reply, after it, or at another client (collected with a ping).
//!
//! Scenarios that need the container/TTL reaper run on a dedicated server started with
//! `-Dznode.container.checkIntervalMs=100`; the others use the shared server
//! (`ZK_TEST_SERVER`). `ZK_CONFORMANCE_DUMP=1` prints both traces, `ZK_CONFORMANCE_ONLY=name`
//! runs the scenarios whose name contains `name`.

#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use zk_integration_tests::{DedicatedServer, shared_server, unique_path};
use zk_proto::*;
use zk_recipes::sim::model::Model;

// ==================================================================================== DSL

/// The placeholder for the scenario's root in paths.
const ROOT: &str = "~";

/// One step of a scenario.
#[derive(Debug, Clone)]
enum Step {
    /// A request from client `.0`.
    Op(usize, Request),
    /// A request, then a wait for the reaper (`.2` ms) before collecting notifications.
    OpThenReap(usize, Request, u64),
    /// Wait for the reaper.
    Reap(u64),
    /// closeSession from the client (it is gone afterwards).
    Close(usize),
    /// The server expires the client's session (real server: FAULTS.md F7).
    Expire(usize),
    /// setWatches2 from client `.0` relative to the reply zxid of step `.1` (0 = root create).
    SetWatches(usize, usize, SetWatches2),
    /// Dump the subtree under the root as client `.0` sees it (getData + getChildren2).
    Tree(usize),
}

#[derive(Debug, Clone)]
struct Scenario {
    name: &'static str,
    clients: usize,
    reaper: bool,
    steps: Vec<Step>,
}

fn scenario(name: &'static str, clients: usize, steps: Vec<Step>) -> Scenario {
    Scenario {
        name,
        clients,
        reaper: false,
        steps,
    }
}

fn reaper_scenario(name: &'static str, clients: usize, steps: Vec<Step>) -> Scenario {
    Scenario {
        reaper: true,
        ..scenario(name, clients, steps)
    }
}

fn op(c: usize, r: Request) -> Step {
    Step::Op(c, r)
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn creq(path: &str, data: &str, acl: Vec<Acl>, flags: i32) -> CreateRequest {
    CreateRequest {
        path: path.into(),
        data: b(data),
        acl,
        flags: CreateMode::from_raw(flags),
    }
}

/// create2, OPEN_ACL_UNSAFE.
fn create(path: &str, data: &str) -> Request {
    Request::Create2(creq(path, data, Acl::open_unsafe(), 0))
}

fn create_flags(path: &str, flags: i32) -> Request {
    Request::Create2(creq(path, "", Acl::open_unsafe(), flags))
}

fn create_acl(path: &str, acl: Vec<Acl>) -> Request {
    Request::Create2(creq(path, "", acl, 0))
}

/// create (opcode 1): the reply has no Stat.
fn create1(path: &str, flags: i32) -> Request {
    Request::Create(creq(path, "", Acl::open_unsafe(), flags))
}

fn container(path: &str, flags: i32) -> Request {
    Request::CreateContainer(creq(path, "", Acl::open_unsafe(), flags))
}

fn ttl_req(path: &str, flags: i32, ttl: i64) -> CreateTtlRequest {
    CreateTtlRequest {
        path: path.into(),
        data: Bytes::new(),
        acl: Acl::open_unsafe(),
        flags: CreateMode::from_raw(flags),
        ttl,
    }
}

fn create_ttl(path: &str, flags: i32, ttl: i64) -> Request {
    Request::CreateTtl(ttl_req(path, flags, ttl))
}

fn delete(path: &str, version: i32) -> Request {
    Request::Delete(DeleteRequest {
        path: path.into(),
        version,
    })
}

fn set(path: &str, data: &str, version: i32) -> Request {
    Request::SetData(SetDataRequest {
        path: path.into(),
        data: b(data),
        version,
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

fn children2(path: &str, watch: bool) -> Request {
    Request::GetChildren2(GetChildren2Request {
        path: path.into(),
        watch,
    })
}

fn get_acl(path: &str) -> Request {
    Request::GetAcl(GetAclRequest { path: path.into() })
}

fn set_acl(path: &str, acl: Vec<Acl>, version: i32) -> Request {
    Request::SetAcl(SetAclRequest {
        path: path.into(),
        acl,
        version,
    })
}

fn add_watch(path: &str, mode: i32) -> Request {
    Request::AddWatch(AddWatchRequest {
        path: path.into(),
        mode: AddWatchMode::from_raw(mode),
    })
}

fn check_watches(path: &str, t: i32) -> Request {
    Request::CheckWatches(CheckWatchesRequest {
        path: path.into(),
        watcher_type: WatcherType::from_raw(t),
    })
}

fn remove_watches(path: &str, t: i32) -> Request {
    Request::RemoveWatches(RemoveWatchesRequest {
        path: path.into(),
        watcher_type: WatcherType::from_raw(t),
    })
}

fn auth(scheme: &str, credentials: &str) -> Request {
    Request::Auth(AuthPacket {
        auth_type: 0,
        scheme: scheme.into(),
        auth: b(credentials),
    })
}

fn multi(ops: Vec<MultiOp>) -> Request {
    Request::Multi(MultiRequest { ops })
}

fn multi_read(ops: Vec<MultiOp>) -> Request {
    Request::MultiRead(MultiRequest { ops })
}

fn m_create(path: &str, flags: i32) -> MultiOp {
    MultiOp::Create(creq(path, "x", Acl::open_unsafe(), flags))
}

fn m_create2(path: &str, flags: i32) -> MultiOp {
    MultiOp::Create2(creq(path, "x", Acl::open_unsafe(), flags))
}

fn m_delete(path: &str, version: i32) -> MultiOp {
    MultiOp::Delete(DeleteRequest {
        path: path.into(),
        version,
    })
}

fn m_check(path: &str, version: i32) -> MultiOp {
    MultiOp::Check(CheckVersionRequest {
        path: path.into(),
        version,
    })
}

fn m_set(path: &str, data: &str, version: i32) -> MultiOp {
    MultiOp::SetData(SetDataRequest {
        path: path.into(),
        data: b(data),
        version,
    })
}

fn m_get(path: &str) -> MultiOp {
    MultiOp::GetData(GetDataRequest {
        path: path.into(),
        watch: false,
    })
}

fn m_children(path: &str) -> MultiOp {
    MultiOp::GetChildren(GetChildrenRequest {
        path: path.into(),
        watch: false,
    })
}

fn digest_acl(perms: Perms, user_password: &str) -> Acl {
    // The digest id the server derives from `user:password`, computed by the model's rules
    // would hide a bug; these are the server's own values (PROTOCOL.md §5, observed).
    let id = match user_password {
        "alice:secret" => "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=",
        "bob:pw" => "bob:ikIaKsbtGweaHnb/jKn7OHqbunM=",
        other => panic!("no known digest for {other}"),
    };
    Acl::new(perms, "digest", id)
}

fn set_watches(data: &[&str], exist: &[&str], child: &[&str], persistent: &[&str]) -> SetWatches2 {
    let v = |l: &[&str]| l.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    SetWatches2 {
        relative_zxid: 0,
        data_watches: v(data),
        exist_watches: v(exist),
        child_watches: v(child),
        persistent_watches: v(persistent),
        persistent_recursive_watches: Vec::new(),
    }
}

// ============================================================================== scenarios

fn scenarios() -> Vec<Scenario> {
    let open = Acl::open_unsafe;
    vec![
        scenario(
            "create_variants_and_errors",
            1,
            vec![
                op(0, create("~/a", "hello")),
                op(0, create("~/a", "again")),
                op(0, create1("~/b", 0)),
                op(0, create("~/missing/x", "")),
                op(0, create("~//x", "")),
                op(0, create("~/a/", "")),
                op(0, create("~/nope/", "")),
                op(0, create("rel", "")),
                op(0, create("~/.", "")),
                op(0, create("~/./x", "")),
                op(0, create("~/x\0y", "")),
                op(0, create("/", "")),
                op(0, create("/zookeeper", "")),
                op(0, create_acl("~/x", vec![])),
                op(
                    0,
                    create_acl("~/x", vec![Acl::new(Perms::ALL, "world", "bob")]),
                ),
                op(0, create_acl("~/x", Acl::creator_all())),
                op(
                    0,
                    create_acl("~/x", vec![Acl::new(Perms::ALL, "digest", "alice")]),
                ),
                op(
                    0,
                    create_acl("~/x", vec![Acl::new(Perms::ALL, "ip", "300.1.1.1")]),
                ),
                op(
                    0,
                    create_acl("~/x", vec![Acl::new(Perms::ALL, "nosuch", "x")]),
                ),
                op(0, create_acl("~/missing/x", vec![])),
                op(
                    0,
                    create_acl("~/ip", vec![Acl::new(Perms::ALL, "ip", "127.0.0.0/8")]),
                ),
                op(
                    0,
                    create_acl("~/p0", vec![Acl::new(Perms(0), "world", "anyone")]),
                ),
                op(0, create_acl("~/dup", [open(), open()].concat())),
                op(0, get_acl("~/dup")),
                op(0, create_flags("~/x", 7)),
                op(0, create_flags("~/x", -1)),
                op(0, create_flags("~/x", 5)),
                op(0, create1("~/x", 6)),
                op(0, create_ttl("~/x", 5, 0)),
                op(0, create_ttl("~/x", 5, -5)),
                op(0, create_ttl("~/x", 5, 1 << 40)),
                op(0, create_ttl("~/x", 1, 100)),
                op(0, create_ttl("~/x", 4, 100)),
                op(0, create_ttl("~/x", 0, 100)),
                op(0, container("~/x", 5)),
                op(0, create_ttl("~/t", 5, (1 << 40) - 1)),
                op(0, create_flags("~/e", 1)),
                op(0, create("~/e/x", "")),
                op(0, create_flags("~/e/x", 2)),
                op(0, create("~/e", "")),
                op(0, create1("~/c1", 4)),
                op(0, container("~/c2", 0)),
                op(0, container("~/c3", 1)),
                op(0, container("~/c4-", 2)),
                Step::Tree(0),
            ],
        ),
        scenario(
            "sequential_naming",
            2,
            vec![
                op(0, create("~/q", "")),
                op(0, create_flags("~/q/s-", 2)),
                op(0, create_flags("~/q/s-", 2)),
                op(0, create("~/q/plain", "")),
                op(0, delete("~/q/s-0000000000", -1)),
                op(0, create_flags("~/q/s-", 2)),
                op(1, create_flags("~/q/e-", 3)),
                op(0, create_flags("~/q/", 2)),
                op(0, create1("~/q/x", 2)),
                op(0, create_flags("~/q/s-", 2)),
                op(0, children2("~/q", false)),
                op(0, create_flags("~/q/s-0000000008", 0)),
                op(0, create_flags("~/q/s-", 2)),
                op(0, create_flags("~/q/s-", 3)),
                op(0, create_flags("~/q/bad/", 2)),
                op(0, exists("~/q", false)),
                Step::Tree(1),
            ],
        ),
        scenario(
            "delete_rules",
            1,
            vec![
                op(0, create("~/a", "")),
                op(0, create("~/a/b", "")),
                op(0, delete("/", -1)),
                op(0, delete("/zookeeper", -1)),
                op(0, delete("/zookeeper/quota", -1)),
                op(0, delete("/zookeeper/config", -1)),
                op(0, delete("rel", -1)),
                op(0, delete("~/a\0", -1)),
                op(0, delete("~/missing", -1)),
                op(0, delete("~/missing/x", -1)),
                op(0, delete("~/a/", -1)),
                op(0, delete("~/a//b", -1)),
                op(0, delete("~/a", -1)),
                op(0, delete("~/a/b", 3)),
                op(0, set("~/a/b", "v1", -1)),
                op(0, delete("~/a/b", 0)),
                op(0, delete("~/a/b", 1)),
                op(0, delete("~/a/b", 1)),
                op(0, children2("~/a", false)),
                op(0, delete("~/a", 0)),
                op(0, exists("~/a", false)),
                op(0, children2("~", false)),
            ],
        ),
        scenario(
            "set_data_and_versions",
            1,
            vec![
                op(0, create("~/a", "v0")),
                op(0, set("~/a", "v1", 0)),
                op(0, set("~/a", "v2", 0)),
                op(0, set("~/a", "", -1)),
                op(0, get("~/a", false)),
                op(0, set("~/missing", "x", -1)),
                op(0, set("rel", "x", -1)),
                op(0, set("~/a/", "x", -1)),
                op(0, set("~//a", "x", -1)),
                op(0, set("", "x", -1)),
                op(0, set("/zookeeper/config", "x", -1)),
                op(0, set("~/missing", "x", 7)),
                op(0, exists("~/a", false)),
                op(0, get("~/missing", false)),
                op(0, get("rel", false)),
                op(0, get("~/a/", false)),
                Step::Tree(0),
            ],
        ),
        scenario(
            "acl_operations",
            1,
            vec![
                op(0, create("~/a", "")),
                op(0, get_acl("~/a")),
                op(0, set_acl("~/a", open(), 1)),
                op(0, set_acl("~/a", open(), 0)),
                op(0, set_acl("~/a", open(), -1)),
                op(0, set_acl("~/a", vec![], -1)),
                op(0, set_acl("~/missing", vec![], -1)),
                op(0, set_acl("~/missing", open(), -1)),
                op(0, set_acl("rel", open(), -1)),
                op(0, set_acl("~/a", Acl::creator_all(), -1)),
                op(
                    0,
                    set_acl("~/a", vec![Acl::new(Perms::ALL, "ip", "127.0.0.1")], -1),
                ),
                op(0, get_acl("~/a")),
                op(0, get_acl("~/missing")),
                op(0, get_acl("/zookeeper/config")),
                op(0, get_acl("/zookeeper")),
                op(
                    0,
                    create_acl("~/p0", vec![Acl::new(Perms(0), "world", "anyone")]),
                ),
                op(0, exists("~/p0", false)),
                op(0, get("~/p0", false)),
                op(0, children("~/p0", false)),
                op(0, children2("~/p0", true)),
                op(0, get_acl("~/p0")),
                op(0, set("~/p0", "x", -1)),
                op(0, create("~/p0/x", "")),
                op(0, set_acl("~/p0", open(), -1)),
                op(0, delete("~/p0", -1)),
                op(
                    0,
                    Request::GetAllChildrenNumber(GetAllChildrenNumberRequest {
                        path: "~/p0".into(),
                    }),
                ),
                op(0, create_acl("~/ro", Acl::read_unsafe())),
                op(0, create("~/ro/x", "")),
                op(0, get("~/ro", false)),
                op(0, get_acl("~/ro")),
                op(
                    0,
                    create_acl("~/nodel", vec![Acl::new(Perms(31 & !8), "world", "anyone")]),
                ),
                op(0, create("~/nodel/x", "")),
                op(0, delete("~/nodel/x", -1)),
                op(0, delete("~/nodel", -1)),
                op(
                    0,
                    create_acl("~/admin", vec![Acl::new(Perms::ADMIN, "world", "anyone")]),
                ),
                op(0, get_acl("~/admin")),
                op(0, get("~/admin", false)),
                op(0, set_acl("~/admin", open(), 0)),
                op(0, get("~/admin", false)),
            ],
        ),
        scenario(
            "digest_auth_and_acl_denial",
            3,
            vec![
                op(0, auth("digest", "alice:secret")),
                op(1, auth("digest", "bob:pw")),
                op(0, Request::WhoAmI),
                op(1, Request::WhoAmI),
                op(2, Request::WhoAmI),
                op(0, create_acl("~/priv", Acl::creator_all())),
                op(0, get_acl("~/priv")),
                op(1, get("~/priv", false)),
                op(1, exists("~/priv", false)),
                op(1, get_acl("~/priv")),
                op(1, set("~/priv", "x", -1)),
                op(1, create("~/priv/x", "")),
                op(2, create_acl("~/auth", Acl::creator_all())),
                op(
                    0,
                    set_acl(
                        "~/priv",
                        vec![
                            digest_acl(Perms::ALL, "alice:secret"),
                            Acl::new(Perms::READ, "digest", "bob:ikIaKsbtGweaHnb/jKn7OHqbunM="),
                        ],
                        0,
                    ),
                ),
                op(1, get("~/priv", false)),
                op(1, get_acl("~/priv")),
                op(2, get_acl("~/priv")),
                op(1, set("~/priv", "x", -1)),
                op(0, create("~/priv/kid", "")),
                op(1, delete("~/priv/kid", -1)),
                op(0, delete("~/priv/kid", -1)),
                op(
                    0,
                    create_acl(
                        "~/mixed",
                        vec![
                            Acl::new(Perms::READ, "world", "anyone"),
                            Acl::new(Perms::ALL, "auth", "ignored"),
                        ],
                    ),
                ),
                op(0, get_acl("~/mixed")),
                op(2, get_acl("~/mixed")),
                op(2, set("~/mixed", "x", -1)),
                op(0, set("~/mixed", "x", -1)),
                op(0, auth("digest", "alice:secret")),
                op(0, Request::WhoAmI),
                op(2, auth("ip", "whatever")),
                op(2, Request::WhoAmI),
                op(2, multi(vec![m_check("~/priv", -1)])),
                op(
                    1,
                    multi(vec![m_check("~/priv", 1), m_set("~/priv", "y", -1)]),
                ),
                op(1, auth("nosuchscheme", "x")),
            ],
        ),
        scenario(
            "reads_and_misc",
            1,
            vec![
                op(0, create("~/a", "data")),
                op(0, create_flags("~/a/e1", 1)),
                op(0, create_flags("~/e2", 1)),
                op(0, exists("~/a\0", false)),
                op(0, exists("~/a\0", true)),
                op(0, exists("rel", false)),
                op(0, exists("~/a/", false)),
                op(0, get("~/a", false)),
                op(0, children("~/missing", false)),
                op(0, children2("~/a", false)),
                op(
                    0,
                    Request::Sync(SyncRequest {
                        path: "whatever/not a path".into(),
                    }),
                ),
                op(0, Request::Sync(SyncRequest { path: "".into() })),
                op(0, Request::Sync(SyncRequest { path: "~/a".into() })),
                op(
                    0,
                    Request::GetAllChildrenNumber(GetAllChildrenNumberRequest { path: "~".into() }),
                ),
                op(
                    0,
                    Request::GetAllChildrenNumber(GetAllChildrenNumberRequest {
                        path: "~/a".into(),
                    }),
                ),
                op(
                    0,
                    Request::GetAllChildrenNumber(GetAllChildrenNumberRequest {
                        path: "~/missing".into(),
                    }),
                ),
                op(
                    0,
                    Request::GetEphemerals(GetEphemeralsRequest {
                        prefix_path: "~".into(),
                    }),
                ),
                op(
                    0,
                    Request::GetEphemerals(GetEphemeralsRequest {
                        prefix_path: "~/a".into(),
                    }),
                ),
                op(
                    0,
                    Request::GetEphemerals(GetEphemeralsRequest {
                        prefix_path: "~/e".into(),
                    }),
                ),
                op(
                    0,
                    Request::GetEphemerals(GetEphemeralsRequest {
                        prefix_path: "/".into(),
                    }),
                ),
                op(
                    0,
                    Request::GetEphemerals(GetEphemeralsRequest {
                        prefix_path: " ".into(),
                    }),
                ),
                op(
                    0,
                    Request::GetEphemerals(GetEphemeralsRequest {
                        prefix_path: "/nope".into(),
                    }),
                ),
                op(0, Request::WhoAmI),
                op(
                    0,
                    Request::Sasl(GetSaslRequest {
                        token: Bytes::new(),
                    }),
                ),
                op(0, Request::Ping),
                op(
                    0,
                    Request::Reconfig(ReconfigRequest {
                        joining_servers: String::new(),
                        leaving_servers: String::new(),
                        new_members: String::new(),
                        cur_config_id: -1,
                    }),
                ),
                op(
                    0,
                    Request::Check(CheckVersionRequest {
                        path: "~/missing".into(),
                        version: -1,
                    }),
                ),
                op(
                    0,
                    Request::Check(CheckVersionRequest {
                        path: "~/a".into(),
                        version: 5,
                    }),
                ),
                op(
                    0,
                    Request::Check(CheckVersionRequest {
                        path: "rel".into(),
                        version: 5,
                    }),
                ),
                op(0, create("~/after", "")),
            ],
        ),
        scenario(
            "multi_atomicity_and_results",
            2,
            vec![
                op(0, create("~/n1", "a")),
                // G10: create, delete missing, setData: rolled back, zxid consumed.
                op(
                    0,
                    multi(vec![
                        m_create("~/m1", 0),
                        m_delete("~/nope", -1),
                        m_set("~/n1", "y", -1),
                    ]),
                ),
                op(0, exists("~/m1", false)),
                op(0, get("~/n1", false)),
                // G11: create, check, setData, delete of the same node.
                op(
                    0,
                    multi(vec![
                        m_create("~/m2", 0),
                        m_check("~/n1", 0),
                        m_set("~/m2", "z", 0),
                        m_delete("~/m2", 1),
                    ]),
                ),
                op(
                    0,
                    multi(vec![
                        m_create2("~/p", 0),
                        m_create2("~/p/c", 0),
                        m_create2("~/p/s-", 2),
                        m_create2("~/p/s-", 2),
                        m_create("~/p/e", 1),
                        MultiOp::CreateContainer(creq("~/p/box", "", open(), 4)),
                        MultiOp::CreateTtl(ttl_req("~/p/ttl", 5, 60_000)),
                        m_set("~/p", "pp", -1),
                        m_set("~/p", "pq", 1),
                    ]),
                ),
                op(
                    0,
                    multi(vec![
                        m_delete("~/p/c", -1),
                        m_create2("~/p/c", 0),
                        m_check("~/p/c", 0),
                        m_create2("~/p/s-", 2),
                    ]),
                ),
                op(
                    0,
                    multi(vec![
                        m_create2("~/p/s-", 2),
                        m_create2("~/p/zz", 0),
                        m_create2("~/p/zz", 0),
                        m_delete("~/p/c", -1),
                    ]),
                ),
                op(0, create_flags("~/p/s-", 2)),
                op(0, multi(vec![])),
                op(0, multi(vec![m_check("~/n1", 5)])),
                op(0, multi(vec![m_check("~/n1", 0), m_check("~/missing", -1)])),
                op(0, multi(vec![m_delete("~/p", -1)])),
                op(0, multi(vec![m_create("~/e2", 1), m_create("~/e2/x", 0)])),
                op(0, multi(vec![m_create("rel", 0)])),
                op(0, multi(vec![m_set("~/n1", "q", -1), m_get("~/n1")])),
                op(0, get("~/n1", false)),
                op(0, multi_read(vec![m_get("~/n1"), m_delete("~/n1", -1)])),
                op(
                    0,
                    multi_read(vec![
                        m_children("~/p"),
                        m_get("~/n1"),
                        m_get("~/missing"),
                        m_children("~/missing"),
                    ]),
                ),
                op(0, multi_read(vec![])),
                // Inside a multi the server picks a create's opcode from its flags.
                op(0, multi(vec![m_create2("~/mttl", 5)])),
                op(
                    0,
                    multi(vec![m_check("~/missing", -1), m_create2("~/mttl", 5)]),
                ),
                op(0, multi(vec![m_create2("~/ok", 0), m_create2("~/mttl", 6)])),
                op(0, exists("~/ok", false)),
                op(
                    0,
                    multi(vec![MultiOp::CreateContainer(creq("~/mc", "", open(), 1))]),
                ),
                op(0, exists("~/mc", false)),
                op(
                    0,
                    multi(vec![MultiOp::CreateContainer(creq("~/mc0", "", open(), 0))]),
                ),
                op(0, multi(vec![MultiOp::CreateTtl(ttl_req("~/mt", 0, -1))])),
                op(0, multi(vec![MultiOp::CreateTtl(ttl_req("~/mt1", 1, 100))])),
                op(0, multi(vec![MultiOp::CreateTtl(ttl_req("~/mt2", 5, 0))])),
                op(
                    0,
                    multi(vec![MultiOp::CreateTtl(ttl_req("~/mt3", 6, 1000))]),
                ),
                op(0, multi(vec![m_create2("~/m7", 7)])),
                op(0, multi(vec![m_create2("~/mseq", 3)])),
                op(
                    0,
                    Request::GetEphemerals(GetEphemeralsRequest {
                        prefix_path: "/".into(),
                    }),
                ),
                op(1, children2("~/p", true)),
                op(1, get("~/n1", true)),
                op(
                    0,
                    multi(vec![
                        m_set("~/n1", "w", -1),
                        m_create("~/p/new", 0),
                        m_delete("~/p/new", -1),
                    ]),
                ),
                op(
                    0,
                    multi(vec![
                        m_set("~/n1", "w2", -1),
                        m_create("~/p/new", 0),
                        m_check("~/n1", 0),
                    ]),
                ),
                Step::Tree(0),
            ],
        ),
        scenario(
            "one_shot_watches",
            2,
            vec![
                op(0, create("~/a", "")),
                op(1, get("~/a", true)),
                op(1, exists("~/b", true)),
                op(1, children("~/a", true)),
                op(0, set("~/a", "1", -1)),
                op(0, set("~/a", "2", -1)),
                op(0, create("~/b", "")),
                op(0, create("~/a/k", "")),
                op(0, create("~/a/k2", "")),
                op(1, get("~/a", true)),
                op(1, children2("~/a", true)),
                op(1, exists("~/a/k", true)),
                op(0, delete("~/a/k", -1)),
                op(0, delete("~/a/k2", -1)),
                op(0, delete("~/a", -1)),
                // Own watches fire before the reply of the write that triggers them.
                op(0, exists("~/c", true)),
                op(0, create("~/c", "")),
                op(0, get("~/c", true)),
                op(1, get("~/c", true)),
                op(0, set("~/c", "x", -1)),
                op(0, children("~/c", true)),
                op(1, exists("~/c", true)),
                op(0, delete("~/c", -1)),
                // A failed write fires nothing and keeps the watch.
                op(1, exists("~/d", true)),
                op(0, create("~/missing/d", "")),
                op(0, create("~/d", "")),
                // exists on an existing node leaves a data watch.
                op(1, exists("~/d", true)),
                op(0, set("~/d", "1", -1)),
                op(0, set("~/d", "2", -1)),
                // Watches on bad paths are set but never fire.
                op(1, exists("rel", true)),
                op(1, get("~/d/", true)),
            ],
        ),
        scenario(
            "persistent_and_recursive_watches",
            3,
            vec![
                op(1, add_watch("~/p", 0)),
                op(2, add_watch("~", 1)),
                op(0, create("~/p", "")),
                op(0, set("~/p", "1", -1)),
                op(0, create("~/p/k", "")),
                op(0, create("~/p/k/deep", "")),
                op(0, set("~/p/k/deep", "x", -1)),
                op(0, delete("~/p/k/deep", -1)),
                op(0, delete("~/p/k", -1)),
                op(0, delete("~/p", -1)),
                op(0, create("~/p", "")),
                op(0, set("~/p", "2", -1)),
                // A standard watch on a recursively watched path: one notification.
                op(2, get("~/p", true)),
                op(0, set("~/p", "3", -1)),
                op(0, set("~/p", "4", -1)),
                // 3.8: the last registration wins per (session, path, manager).
                op(1, get("~/p", true)),
                op(0, set("~/p", "5", -1)),
                op(0, set("~/p", "6", -1)),
                op(0, create("~/p/k", "")),
                op(0, create("~/p/k2", "")),
                op(1, children("~/p", true)),
                op(0, delete("~/p/k2", -1)),
                op(0, delete("~/p/k", -1)),
                op(0, delete("~/p", -1)),
                op(0, create("~/p", "")),
                // addWatch over a pending one-shot watch makes it persistent.
                op(1, exists("~/q", true)),
                op(1, add_watch("~/q", 0)),
                op(0, create("~/q", "")),
                op(0, delete("~/q", -1)),
                op(0, create("~/q", "")),
                // Recursive + child watch on the same path: children changes still fire
                // for the child watch.
                op(2, children("~/q", true)),
                op(0, create("~/q/k", "")),
                op(0, create("~/q/k2", "")),
                // Own persistent watch.
                op(0, add_watch("~/own", 0)),
                op(0, create("~/own", "")),
                op(0, set("~/own", "x", -1)),
                op(0, add_watch("~/own", 5)),
            ],
        ),
        // What zk-session's ZOOKEEPER-4466 handling rests on (session/mod.rs, send_user).
        scenario(
            "one_watch_mode_per_path",
            2,
            vec![
                op(0, create("~/m", "")),
                op(0, create("~/r", "")),
                op(0, create("~/s", "")),
                // A persistent, then a recursive addWatch on one path: both managers end
                // recursive, so the subtree is reported and NodeChildrenChanged is not.
                op(1, add_watch("~/m", 0)),
                op(1, add_watch("~/m", 1)),
                op(0, create("~/m/k", "")),
                op(0, create("~/m/k/g", "")),
                op(0, set("~/m", "1", -1)),
                // And the other order: both managers end persistent, the subtree is lost.
                op(1, add_watch("~/m", 0)),
                op(0, create("~/m/k2", "")),
                op(0, create("~/m/k/g2", "")),
                // A one-shot data watch under a recursive one demotes the data manager: one
                // event, then neither the path nor its subtree is reported.
                op(1, add_watch("~/r", 1)),
                op(1, get("~/r", true)),
                op(0, set("~/r", "1", -1)),
                op(0, set("~/r", "2", -1)),
                op(0, create("~/r/k", "")),
                // A one-shot child watch under a recursive one: its NodeChildrenChanged
                // fires once, and the recursive watch still reports the subtree.
                op(1, add_watch("~/s", 1)),
                op(1, children("~/s", true)),
                op(0, create("~/s/k", "")),
                op(0, create("~/s/k2", "")),
                op(0, set("~/s/k", "x", -1)),
                op(0, delete("~/s/k2", -1)),
            ],
        ),
        scenario(
            "remove_and_check_watches",
            2,
            vec![
                op(0, create("~/a", "")),
                op(1, check_watches("~/a", 2)),
                op(1, remove_watches("~/a", 2)),
                op(1, get("~/a", true)),
                op(1, check_watches("~/a", 2)),
                op(1, check_watches("~/a", 1)),
                op(1, check_watches("~/a", 3)),
                op(0, check_watches("~/a", 2)),
                op(0, remove_watches("~/a", 2)),
                op(1, remove_watches("~/a", 1)),
                op(1, remove_watches("~/a", 2)),
                op(0, set("~/a", "1", -1)),
                op(1, remove_watches("~/a", 2)),
                op(1, children("~/a", true)),
                op(1, exists("~/a", true)),
                op(1, remove_watches("~/a", 3)),
                op(0, create("~/a/k", "")),
                op(0, set("~/a", "2", -1)),
                op(1, remove_watches("~/a", 3)),
                op(1, add_watch("~/a", 0)),
                op(1, remove_watches("~/a", 2)),
                op(0, set("~/a", "3", -1)),
                op(0, create("~/a/k2", "")),
                op(1, check_watches("~/a", 1)),
                op(1, remove_watches("~/a", 1)),
                op(0, create("~/a/k3", "")),
                op(1, add_watch("~/a", 1)),
                op(1, check_watches("~/a/k", 2)),
                op(1, check_watches("~/a", 2)),
                op(1, check_watches("~/a", 4)),
                op(1, remove_watches("~/a", 5)),
                op(1, remove_watches("~/a", 3)),
                op(0, set("~/a", "4", -1)),
                op(1, exists("~/missing", true)),
                op(1, check_watches("~/missing", 2)),
                op(1, remove_watches("~/missing", 2)),
            ],
        ),
        scenario(
            "set_watches_catch_up",
            2,
            vec![
                op(0, create("~/data", "")),
                op(0, create("~/same", "")),
                op(0, create("~/gone", "")),
                op(0, create("~/kids", "")),
                op(0, create("~/calm", "")),
                op(0, create("~/pers", "")),
                // Step 7: the point the client "last saw".
                op(1, Request::Sync(SyncRequest { path: "~".into() })),
                op(0, set("~/data", "new", -1)),
                op(0, delete("~/gone", -1)),
                op(0, create("~/kids/k", "")),
                op(0, create("~/born", "")),
                Step::SetWatches(
                    1,
                    6,
                    set_watches(
                        &["~/data", "~/same", "~/gone"],
                        &["~/born", "~/unborn"],
                        &["~/kids", "~/calm", "~/gone"],
                        &["~/pers"],
                    ),
                ),
                op(0, set("~/same", "1", -1)),
                op(0, set("~/data", "2", -1)),
                op(0, create("~/unborn", "")),
                op(0, create("~/calm/k", "")),
                op(0, set("~/pers", "x", -1)),
                op(0, set("~/pers", "y", -1)),
                op(0, create("~/kids/k2", "")),
                Step::SetWatches(1, 0, set_watches(&["~/calm"], &["~/calm"], &[], &[])),
                // The pre-3.6 form (101), relative to zxid 0: everything changed.
                op(
                    1,
                    Request::SetWatches(SetWatches {
                        relative_zxid: 0,
                        data_watches: vec!["~/same".into(), "~/nope".into()],
                        exist_watches: vec!["~/nope".into()],
                        child_watches: vec!["~/kids".into(), "~/same".into()],
                    }),
                ),
                op(0, create("~/nope", "")),
            ],
        ),
        scenario(
            "ephemerals_on_close",
            3,
            vec![
                op(0, create("~/dir", "")),
                op(1, create_flags("~/dir/e1", 1)),
                op(1, create_flags("~/dir/s-", 3)),
                op(1, create_flags("~/e3", 1)),
                op(1, create_flags("~/e3/x", 0)),
                op(2, create_flags("~/dir/other", 1)),
                op(0, exists("~/dir/e1", true)),
                op(0, children("~/dir", true)),
                op(1, get("~/dir/e1", true)),
                op(1, add_watch("~/e3", 0)),
                op(
                    1,
                    Request::GetEphemerals(GetEphemeralsRequest {
                        prefix_path: "/".into(),
                    }),
                ),
                op(
                    0,
                    Request::GetEphemerals(GetEphemeralsRequest {
                        prefix_path: "/".into(),
                    }),
                ),
                Step::Close(1),
                Step::Tree(0),
                op(
                    2,
                    Request::GetEphemerals(GetEphemeralsRequest {
                        prefix_path: "~".into(),
                    }),
                ),
                op(0, children2("~/dir", false)),
            ],
        ),
        scenario(
            "ephemerals_on_expiry",
            3,
            vec![
                op(0, create("~/dir", "")),
                op(1, create_flags("~/dir/e1", 1)),
                op(1, create_flags("~/dir/e2", 1)),
                op(1, create_flags("~/solo", 3)),
                op(0, exists("~/dir/e1", true)),
                op(0, children("~/dir", true)),
                op(2, add_watch("~", 1)),
                op(1, get("~/dir/e1", true)),
                Step::Expire(1),
                Step::Tree(0),
                op(0, children2("~/dir", false)),
                op(0, create_flags("~/dir/e1", 1)),
            ],
        ),
        scenario(
            "notifications_need_read",
            3,
            vec![
                op(0, auth("digest", "alice:secret")),
                op(2, auth("digest", "alice:secret")),
                op(
                    0,
                    create_acl("~/secret", vec![digest_acl(Perms::ALL, "alice:secret")]),
                ),
                op(1, exists("~/secret", true)),
                op(2, exists("~/secret", true)),
                op(1, add_watch("~", 1)),
                op(0, set("~/secret", "x", -1)),
                op(0, set_acl("~/secret", open(), -1)),
                op(0, set("~/secret", "y", -1)),
                op(1, exists("~/secret", true)),
                op(0, set("~/secret", "z", -1)),
                op(
                    0,
                    create_acl("~/secret/k", vec![digest_acl(Perms::ALL, "alice:secret")]),
                ),
                op(1, children("~/secret", true)),
                op(
                    0,
                    set_acl("~/secret", vec![digest_acl(Perms::ALL, "alice:secret")], -1),
                ),
                op(0, delete("~/secret/k", -1)),
                op(0, delete("~/secret", -1)),
            ],
        ),
        scenario(
            "delete_container_opcode",
            2,
            vec![
                op(
                    0,
                    create_acl("~/locked", vec![Acl::new(Perms::READ, "world", "anyone")]),
                ),
                op(0, create("~/full", "")),
                op(0, create("~/full/k", "")),
                op(1, create_flags("~/eph", 1)),
                op(1, exists("~/locked", true)),
                op(0, delete("~/locked", -1)),
                op(
                    0,
                    Request::DeleteContainer(DeleteContainerRequest {
                        path: "~/full".into(),
                    }),
                ),
                op(
                    0,
                    Request::DeleteContainer(DeleteContainerRequest {
                        path: "~/eph".into(),
                    }),
                ),
                op(
                    0,
                    Request::DeleteContainer(DeleteContainerRequest {
                        path: "~/missing".into(),
                    }),
                ),
                op(
                    0,
                    Request::DeleteContainer(DeleteContainerRequest {
                        path: "/zookeeper".into(),
                    }),
                ),
                op(
                    0,
                    Request::DeleteContainer(DeleteContainerRequest {
                        path: "~/locked".into(),
                    }),
                ),
                op(0, children2("~", false)),
            ],
        ),
        reaper_scenario(
            "containers_reaped",
            2,
            vec![
                op(0, container("~/used", 0)),
                op(0, container("~/never", 0)),
                op(0, create1("~/flag4", 4)),
                op(0, container("~/outer", 0)),
                op(0, container("~/outer/inner", 0)),
                op(1, exists("~/used", true)),
                op(1, children("~", true)),
                op(0, create("~/used/k", "")),
                op(0, create("~/flag4/k", "")),
                op(0, delete("~/flag4/k", -1)),
                op(0, create("~/outer/inner/k", "")),
                op(
                    0,
                    multi(vec![m_create2("~/mc4", 4), m_create2("~/mc4/k", 0)]),
                ),
                op(0, container("~/c1", 1)),
                op(0, create("~/c1/k", "")),
                Step::OpThenReap(0, delete("~/used/k", -1), 1500),
                op(0, children2("~", false)),
                Step::OpThenReap(0, delete("~/mc4/k", -1), 1500),
                op(0, children2("~", false)),
                Step::OpThenReap(0, delete("~/c1/k", -1), 1500),
                op(0, children2("~", false)),
                Step::OpThenReap(0, delete("~/outer/inner/k", -1), 1500),
                op(0, children2("~", false)),
                op(
                    0,
                    Request::GetEphemerals(GetEphemeralsRequest {
                        prefix_path: "/".into(),
                    }),
                ),
            ],
        ),
        reaper_scenario(
            "ttl_nodes_reaped",
            2,
            vec![
                op(0, create_ttl("~/short", 5, 300)),
                op(0, create_ttl("~/long", 5, 600_000)),
                op(0, create_ttl("~/parent", 5, 300)),
                op(0, create("~/parent/k", "")),
                op(0, create_ttl("~/seq-", 6, 300)),
                op(1, exists("~/short", true)),
                op(1, add_watch("~", 1)),
                Step::Reap(1500),
                op(0, children2("~", false)),
                Step::OpThenReap(0, delete("~/parent/k", -1), 1500),
                op(0, children2("~", false)),
                Step::Tree(0),
            ],
        ),
    ]
}

// ======================================================================= the two targets

/// A reply to one request as a target saw it.
struct Answer {
    zxid: i64,
    result: Result<Response, ErrorCode>,
    /// Notifications for the acting client that arrived before the reply.
    before: Vec<WatcherEvent>,
}

trait Target {
    /// Send a request from client `c` and wait for its reply.
    fn call(&mut self, c: usize, req: &Request) -> Answer;
    /// Every notification each client received since its last reply (real server: pinged).
    fn settle(&mut self) -> Vec<Vec<WatcherEvent>>;
    /// Let the reaper run for `ms`.
    fn reap(&mut self, ms: u64);
    /// Expire client `c`'s session; returns the zxid of the session's end.
    fn expire(&mut self, c: usize) -> i64;
    /// Client `c`'s session id.
    fn session(&self, c: usize) -> i64;
}

struct ModelTarget {
    model: Model,
    now: i64,
    sessions: Vec<i64>,
    pending: Vec<Vec<WatcherEvent>>,
}

impl ModelTarget {
    fn new(clients: usize) -> ModelTarget {
        let mut model = Model::new();
        let now = 1_700_000_000_000;
        let sessions = (0..clients)
            .map(|_| model.open_session(now, 10_000).0)
            .collect();
        ModelTarget {
            model,
            now,
            sessions,
            pending: vec![Vec::new(); clients],
        }
    }

    fn deliver(&mut self, notes: Vec<zk_recipes::sim::model::Notification>) {
        for n in notes {
            if let Some(i) = self.sessions.iter().position(|&s| s == n.session) {
                self.pending[i].push(n.event);
            }
        }
    }
}

impl Target for ModelTarget {
    fn call(&mut self, c: usize, req: &Request) -> Answer {
        self.now += 10;
        let applied = self.model.apply(self.now, self.sessions[c], req);
        let mut before = Vec::new();
        for n in applied.notifications {
            if n.session == self.sessions[c] {
                before.push(n.event);
            } else {
                self.deliver(vec![n]);
            }
        }
        Answer {
            zxid: applied.zxid,
            result: applied.result,
            before,
        }
    }

    fn settle(&mut self) -> Vec<Vec<WatcherEvent>> {
        self.pending.iter_mut().map(std::mem::take).collect()
    }

    fn reap(&mut self, ms: u64) {
        self.now += i64::try_from(ms).unwrap();
        loop {
            let before = self.model.last_zxid();
            let notes = self.model.reap(self.now);
            self.deliver(notes);
            if self.model.last_zxid() == before {
                break;
            }
        }
    }

    fn expire(&mut self, c: usize) -> i64 {
        self.now += 10;
        let notes = self.model.expire_session(self.now, self.sessions[c]);
        self.deliver(notes);
        self.model.last_zxid()
    }

    fn session(&self, c: usize) -> i64 {
        self.sessions[c]
    }
}

/// A raw protocol connection: std sockets and zk-proto frames only.
struct Conn {
    stream: TcpStream,
    decoder: FrameDecoder,
    inbuf: BytesMut,
    xid: i32,
    session: i64,
    passwd: Bytes,
    alive: bool,
}

impl Conn {
    fn connect(addr: &str, session: i64, passwd: Bytes) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect to the server");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        let mut conn = Conn {
            stream,
            decoder: FrameDecoder::default(),
            inbuf: BytesMut::new(),
            xid: 0,
            session,
            passwd: passwd.clone(),
            alive: true,
        };
        let mut out = BytesMut::new();
        write_record_frame(
            &mut out,
            &ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: 0,
                timeout: 10_000,
                session_id: session,
                passwd,
                read_only: Some(false),
            },
        );
        conn.stream.write_all(&out).unwrap();
        let resp = ConnectResponse::decode(&conn.next_frame().expect("a ConnectResponse"))
            .expect("ConnectResponse");
        assert!(resp.timeout > 0, "session refused: {resp:?}");
        conn.session = resp.session_id;
        conn.passwd = resp.passwd;
        conn
    }

    fn next_frame(&mut self) -> Option<Bytes> {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.inbuf).expect("valid frame") {
                return Some(frame);
            }
            let mut chunk = [0u8; 8192];
            let n = self.stream.read(&mut chunk).expect("read from the server");
            if n == 0 {
                return None;
            }
            self.inbuf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Send `req`, return the notifications before its reply and the reply.
    fn call(
        &mut self,
        req: &Request,
    ) -> (Vec<WatcherEvent>, ReplyHeader, Result<Response, ErrorCode>) {
        assert!(self.alive, "request on a closed connection: {req:?}");
        let xid = req.fixed_xid().unwrap_or_else(|| {
            self.xid += 1;
            self.xid
        });
        let mut out = BytesMut::new();
        req.encode_frame(xid, &mut out);
        self.stream.write_all(&out).unwrap();
        let mut events = Vec::new();
        loop {
            let frame = self
                .next_frame()
                .unwrap_or_else(|| panic!("connection closed before the reply to {req:?}"));
            let reply = Reply::parse(&frame).unwrap();
            if reply.is_notification() {
                events.push(reply.watcher_event().unwrap());
                continue;
            }
            assert_eq!(reply.header.xid, xid, "reply to {req:?} out of order");
            let result = reply.response(req.opcode()).expect("decodable reply");
            return (events, reply.header, result);
        }
    }
}

struct RealTarget {
    addr: String,
    conns: Vec<Conn>,
}

impl RealTarget {
    fn new(addr: &str, clients: usize) -> RealTarget {
        RealTarget {
            addr: addr.to_owned(),
            conns: (0..clients)
                .map(|_| Conn::connect(addr, 0, Bytes::from(vec![0; 16])))
                .collect(),
        }
    }
}

impl Target for RealTarget {
    fn call(&mut self, c: usize, req: &Request) -> Answer {
        let conn = &mut self.conns[c];
        let (before, header, result) = conn.call(req);
        let closes = matches!(req, Request::CloseSession)
            || (matches!(req, Request::Auth(_)) && result == Err(ErrorCode::AuthFailed));
        if closes {
            conn.alive = false;
        }
        // Keep every step in its own millisecond, so ctime/mtime relations are exact.
        std::thread::sleep(Duration::from_millis(3));
        Answer {
            zxid: header.zxid,
            result,
            before,
        }
    }

    fn settle(&mut self) -> Vec<Vec<WatcherEvent>> {
        self.conns
            .iter_mut()
            .map(|conn| {
                if !conn.alive {
                    return Vec::new();
                }
                let (events, _, pong) = conn.call(&Request::Ping);
                assert_eq!(pong, Ok(Response::Empty));
                events
            })
            .collect()
    }

    fn reap(&mut self, ms: u64) {
        std::thread::sleep(Duration::from_millis(ms));
    }

    fn expire(&mut self, c: usize) -> i64 {
        // FAULTS.md F7: take the session over on a second connection (the server drops the
        // first), then close it there: the server ends the session for real.
        let (session, passwd) = (self.conns[c].session, self.conns[c].passwd.clone());
        let mut second = Conn::connect(&self.addr, session, passwd);
        self.conns[c].alive = false;
        let (_, header, result) = second.call(&Request::CloseSession);
        assert_eq!(result, Ok(Response::Empty));
        std::thread::sleep(Duration::from_millis(3));
        header.zxid
    }

    fn session(&self, c: usize) -> i64 {
        self.conns[c].session
    }
}

// ============================================================================ the runner

/// What one step observed, before normalisation.
struct Observed {
    what: String,
    reply: Option<(i64, bool, Result<Response, ErrorCode>)>,
    before: Vec<WatcherEvent>,
    actor: Option<usize>,
    /// Per client: notifications after the acting client's reply, or at the other clients.
    later: Vec<Vec<WatcherEvent>>,
    unordered: bool,
}

/// Whether a request is a transaction (its reply zxid is its own).
fn is_write(req: &Request) -> bool {
    matches!(
        req,
        Request::Create(_)
            | Request::Create2(_)
            | Request::CreateContainer(_)
            | Request::CreateTtl(_)
            | Request::Delete(_)
            | Request::DeleteContainer(_)
            | Request::SetData(_)
            | Request::SetAcl(_)
            | Request::Check(_)
            | Request::Multi(_)
            | Request::Reconfig(_)
            | Request::CloseSession
    )
}

/// Replace the `~` placeholder with the scenario root in every path of a request.
fn rooted(req: &Request, root: &str) -> Request {
    let fix = |p: &mut String| {
        if let Some(rest) = p.strip_prefix(ROOT) {
            *p = format!("{root}{rest}");
        }
    };
    let mut r = req.clone();
    match &mut r {
        Request::Create(c) | Request::Create2(c) | Request::CreateContainer(c) => fix(&mut c.path),
        Request::CreateTtl(c) => fix(&mut c.path),
        Request::Delete(d) => fix(&mut d.path),
        Request::Exists(e) => fix(&mut e.path),
        Request::GetData(g) => fix(&mut g.path),
        Request::SetData(s) => fix(&mut s.path),
        Request::GetAcl(g) => fix(&mut g.path),
        Request::SetAcl(s) => fix(&mut s.path),
        Request::GetChildren(g) => fix(&mut g.path),
        Request::Sync(s) => fix(&mut s.path),
        Request::GetChildren2(g) => fix(&mut g.path),
        Request::Check(c) => fix(&mut c.path),
        Request::Multi(m) | Request::MultiRead(m) => {
            m.ops.iter_mut().for_each(|op| fix(op.path_mut()));
        }
        Request::CheckWatches(c) => fix(&mut c.path),
        Request::RemoveWatches(c) => fix(&mut c.path),
        Request::DeleteContainer(d) => fix(&mut d.path),
        Request::GetEphemerals(g) => fix(&mut g.prefix_path),
        Request::GetAllChildrenNumber(g) => fix(&mut g.path),
        Request::AddWatch(a) => fix(&mut a.path),
        Request::SetWatches(w) => {
            for list in [
                &mut w.data_watches,
                &mut w.exist_watches,
                &mut w.child_watches,
            ] {
                list.iter_mut().for_each(fix);
            }
        }
        Request::SetWatches2(w) => {
            for list in [
                &mut w.data_watches,
                &mut w.exist_watches,
                &mut w.child_watches,
                &mut w.persistent_watches,
                &mut w.persistent_recursive_watches,
            ] {
                list.iter_mut().for_each(fix);
            }
        }
        _ => {}
    }
    r
}

fn run(target: &mut dyn Target, sc: &Scenario, root: &str) -> Vec<Observed> {
    let mut out = Vec::new();
    let mut step_zxids = Vec::new();
    let steps = std::iter::once(op(0, create(ROOT, ""))).chain(sc.steps.iter().cloned());
    for (i, step) in steps.enumerate() {
        let mut obs = Observed {
            what: format!("#{i} {}", describe(&step)),
            reply: None,
            before: Vec::new(),
            actor: None,
            later: Vec::new(),
            unordered: false,
        };
        let mut zxid = 0;
        match &step {
            Step::Op(c, req) | Step::OpThenReap(c, req, _) => {
                let r = target.call(*c, &rooted(req, root));
                zxid = r.zxid;
                obs.actor = Some(*c);
                obs.before = r.before;
                obs.reply = Some((r.zxid, is_write(req), r.result));
                if let Step::OpThenReap(_, _, ms) = step {
                    target.reap(ms);
                    obs.unordered = true;
                }
            }
            Step::Reap(ms) => {
                target.reap(*ms);
                obs.unordered = true;
            }
            Step::Close(c) => {
                let r = target.call(*c, &Request::CloseSession);
                zxid = r.zxid;
                obs.actor = Some(*c);
                obs.before = r.before;
                obs.reply = Some((r.zxid, true, r.result));
                obs.unordered = true;
            }
            Step::Expire(c) => {
                zxid = target.expire(*c);
                obs.reply = Some((zxid, true, Ok(Response::Empty)));
                obs.unordered = true;
            }
            Step::SetWatches(c, at, w) => {
                let mut w = w.clone();
                w.relative_zxid = step_zxids[*at];
                let r = target.call(*c, &rooted(&Request::SetWatches2(w), root));
                zxid = r.zxid;
                obs.actor = Some(*c);
                obs.before = r.before;
                obs.reply = Some((r.zxid, false, r.result));
            }
            Step::Tree(c) => {
                obs.what.push_str(&tree(target, *c, root));
            }
        }
        step_zxids.push(zxid);
        obs.later = target.settle();
        out.push(obs);
    }
    out
}

/// Dump the subtree under `root` as client `c` sees it.
fn tree(target: &mut dyn Target, c: usize, root: &str) -> String {
    let mut text = String::new();
    let mut stack = vec![root.to_owned()];
    while let Some(path) = stack.pop() {
        let data = target.call(c, &get(&path, false));
        let kids = target.call(c, &children(&path, false));
        text.push_str(&format!("\n    {path}: "));
        match data.result {
            Ok(Response::GetData(d)) => text.push_str(&format!(
                "data={:?} {}",
                String::from_utf8_lossy(&d.data),
                raw_stat(&d.stat)
            )),
            other => text.push_str(&format!("{other:?}")),
        }
        if let Ok(Response::GetChildren(k)) = kids.result {
            let mut names = k.children;
            names.sort();
            for n in names.iter().rev() {
                stack.push(format!("{path}/{n}"));
            }
        }
    }
    text
}

fn raw_stat(s: &Stat) -> String {
    format!(
        "@STAT[{},{},{},{},{},{},{},{},{},{},{}]",
        s.czxid,
        s.mzxid,
        s.pzxid,
        s.ctime,
        s.mtime,
        s.version,
        s.cversion,
        s.aversion,
        s.ephemeral_owner,
        s.data_length,
        s.num_children
    )
}

fn describe(step: &Step) -> String {
    let short = |r: &Request| {
        let s = format!("{r:?}");
        if s.len() > 160 {
            format!("{}…", &s[..160])
        } else {
            s
        }
    };
    match step {
        Step::Op(c, r) => format!("c{c} {}", short(r)),
        Step::OpThenReap(c, r, ms) => format!("c{c} {} then reap {ms} ms", short(r)),
        Step::Reap(ms) => format!("reap {ms} ms"),
        Step::Close(c) => format!("c{c} closeSession"),
        Step::Expire(c) => format!("c{c} session expires"),
        Step::SetWatches(c, at, w) => format!("c{c} setWatches2 relative to #{at} {w:?}"),
        Step::Tree(c) => format!("c{c} tree"),
    }
}

// ========================================================================= normalisation

struct Norm<'a> {
    root: &'a str,
    sessions: Vec<i64>,
    zxids: BTreeMap<i64, usize>,
    max_zxid: i64,
    times: BTreeMap<i64, usize>,
    /// The latest time in the last write reply with times: the next must not be earlier.
    last_write_time: i64,
    reply_max_time: i64,
    in_write: bool,
    problems: Vec<String>,
}

impl Norm<'_> {
    fn path(&self, p: &str) -> String {
        if p == self.root {
            ROOT.to_owned()
        } else if let Some(rest) = p.strip_prefix(self.root).filter(|r| r.starts_with('/')) {
            format!("{ROOT}{rest}")
        } else {
            p.to_owned()
        }
    }

    fn zxid(&mut self, z: i64) -> String {
        if z <= 0 {
            return z.to_string();
        }
        let n = self.zxids.len() + 1;
        let idx = *self.zxids.entry(z).or_insert(n);
        self.max_zxid = self.max_zxid.max(z);
        format!("Z{idx}")
    }

    fn read_zxid(&mut self, z: i64) -> String {
        if z >= self.max_zxid {
            "latest".to_owned()
        } else {
            format!("stale({})", self.zxid(z))
        }
    }

    fn time(&mut self, t: i64) -> String {
        if t == 0 {
            return "0".to_owned();
        }
        if self.in_write {
            self.reply_max_time = self.reply_max_time.max(t);
        }
        if !self.times.contains_key(&t) {
            let n = self.times.len() + 1;
            self.times.insert(t, n);
        }
        format!("T{}", self.times[&t])
    }

    fn owner(&self, o: i64) -> String {
        match self.sessions.iter().position(|&s| s == o) {
            _ if o == 0 => "0".to_owned(),
            Some(i) => format!("c{i}"),
            None => format!("unknown session {o:#x}"),
        }
    }

    fn stat(&mut self, s: &Stat) -> String {
        format!(
            "{{cz={} mz={} pz={} ct={} mt={} v={} cv={} av={} owner={} len={} n={}}}",
            self.zxid(s.czxid),
            self.zxid(s.mzxid),
            self.zxid(s.pzxid),
            self.time(s.ctime),
            self.time(s.mtime),
            s.version,
            s.cversion,
            s.aversion,
            self.owner(s.ephemeral_owner),
            s.data_length,
            s.num_children
        )
    }

    fn sorted(mut v: Vec<String>) -> String {
        v.sort();
        format!("{v:?}")
    }

    fn data(d: &Bytes) -> String {
        format!("{:?}", String::from_utf8_lossy(d))
    }

    fn acl(&self, acl: &[Acl]) -> String {
        let v: Vec<String> = acl
            .iter()
            .map(|a| format!("{}:{}:{}", a.perms.0, a.id.scheme, a.id.id))
            .collect();
        format!("{v:?}")
    }

    fn response(&mut self, r: &Response) -> String {
        match r {
            Response::Empty => "Empty".to_owned(),
            Response::Create(c) => format!("Create({})", self.path(&c.path)),
            Response::Create2(c) => {
                format!("Create2({} {})", self.path(&c.path), self.stat(&c.stat))
            }
            Response::Exists(e) => format!("Exists({})", self.stat(&e.stat)),
            Response::GetData(g) | Response::Reconfig(g) => {
                format!("GetData({} {})", Self::data(&g.data), self.stat(&g.stat))
            }
            Response::SetData(s) => format!("SetData({})", self.stat(&s.stat)),
            Response::GetAcl(g) => format!("GetAcl({} {})", self.acl(&g.acl), self.stat(&g.stat)),
            Response::SetAcl(s) => format!("SetAcl({})", self.stat(&s.stat)),
            Response::GetChildren(g) => {
                format!("GetChildren({})", Self::sorted(g.children.clone()))
            }
            Response::GetChildren2(g) => format!(
                "GetChildren2({} {})",
                Self::sorted(g.children.clone()),
                self.stat(&g.stat)
            ),
            Response::Sync(s) => format!("Sync({:?})", self.path(&s.path)),
            Response::Multi(m) => {
                let parts: Vec<String> = m.results.iter().map(|r| self.multi_result(r)).collect();
                format!("Multi[{}]", parts.join(", "))
            }
            Response::AddWatch(e) => format!("AddWatch({:?})", e.err),
            Response::Sasl(s) => format!("Sasl({:?})", s.token),
            Response::GetEphemerals(g) => format!(
                "GetEphemerals({})",
                Self::sorted(g.ephemerals.iter().map(|p| self.path(p)).collect())
            ),
            Response::GetAllChildrenNumber(g) => {
                format!("GetAllChildrenNumber({})", g.total_number)
            }
            Response::WhoAmI(w) => format!(
                "WhoAmI({})",
                Self::sorted(
                    w.client_info
                        .iter()
                        .map(|c| format!("{}:{}", c.auth_scheme, c.user))
                        .collect()
                )
            ),
        }
    }

    fn multi_result(&mut self, r: &MultiResult) -> String {
        match r {
            MultiResult::Create(c) => format!("Create({})", self.path(&c.path)),
            MultiResult::Create2(c) => {
                format!("Create2({} {})", self.path(&c.path), self.stat(&c.stat))
            }
            MultiResult::Delete => "Delete".to_owned(),
            MultiResult::Check => "Check".to_owned(),
            MultiResult::SetData(s) => format!("SetData({})", self.stat(&s.stat)),
            MultiResult::GetChildren(g) => {
                format!("GetChildren({})", Self::sorted(g.children.clone()))
            }
            MultiResult::GetData(g) => {
                format!("GetData({} {})", Self::data(&g.data), self.stat(&g.stat))
            }
            MultiResult::Error(code) => format!("Error({code:?})"),
        }
    }

    fn events(&self, events: &[WatcherEvent], unordered: bool) -> String {
        let mut v: Vec<String> = events
            .iter()
            .map(|e| {
                let state = if e.state == KeeperState::SyncConnected {
                    String::new()
                } else {
                    format!(" state={:?}", e.state)
                };
                format!("{:?} {}{state}", e.event_type, self.path(&e.path))
            })
            .collect();
        if unordered {
            v.sort();
        }
        format!("[{}]", v.join(", "))
    }

    /// Rewrite the raw stats of a tree dump (`@STAT[...]`).
    fn tree_text(&mut self, text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(i) = rest.find("@STAT[") {
            out.push_str(&rest[..i]);
            let after = &rest[i + 6..];
            let end = after.find(']').unwrap();
            let f: Vec<i64> = after[..end]
                .split(',')
                .map(|x| x.parse().unwrap())
                .collect();
            let stat = Stat {
                czxid: f[0],
                mzxid: f[1],
                pzxid: f[2],
                ctime: f[3],
                mtime: f[4],
                version: i32::try_from(f[5]).unwrap(),
                cversion: i32::try_from(f[6]).unwrap(),
                aversion: i32::try_from(f[7]).unwrap(),
                ephemeral_owner: f[8],
                data_length: i32::try_from(f[9]).unwrap(),
                num_children: i32::try_from(f[10]).unwrap(),
            };
            out.push_str(&self.stat(&stat));
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        // Paths in the dump.
        out.replace(self.root, ROOT)
    }
}

fn normalise(root: &str, sessions: Vec<i64>, observed: &[Observed]) -> (Vec<String>, Vec<String>) {
    let mut n = Norm {
        root,
        sessions,
        zxids: BTreeMap::new(),
        max_zxid: 0,
        times: BTreeMap::new(),
        last_write_time: 0,
        reply_max_time: 0,
        in_write: false,
        problems: Vec::new(),
    };
    let mut lines = Vec::new();
    for o in observed {
        let mut line = n.tree_text(&o.what);
        if let Some((zxid, write, result)) = &o.reply {
            let z = if *write {
                n.zxid(*zxid)
            } else if *zxid == 0 {
                "0".into()
            } else {
                n.read_zxid(*zxid)
            };
            // Times in a creating or data-setting reply are that write's: never earlier.
            n.in_write = *write
                && matches!(
                    result,
                    Ok(Response::Create2(_) | Response::SetData(_) | Response::Multi(_))
                );
            let r = match result {
                Ok(r) => n.response(r),
                Err(code) => format!("Err({code:?})"),
            };
            n.in_write = false;
            if n.reply_max_time != 0 {
                if n.reply_max_time < n.last_write_time {
                    n.problems.push(format!(
                        "{}: time went back: {} after {}",
                        o.what, n.reply_max_time, n.last_write_time
                    ));
                }
                n.last_write_time = n.reply_max_time;
                n.reply_max_time = 0;
            }
            if !o.before.is_empty() {
                line.push_str(&format!(
                    "\n    events before reply: {}",
                    n.events(&o.before, o.unordered)
                ));
            }
            line.push_str(&format!("\n    reply zxid={z} {r}"));
        }
        for (c, events) in o.later.iter().enumerate() {
            if events.is_empty() {
                continue;
            }
            let whose = if o.actor == Some(c) {
                "after reply"
            } else {
                "at"
            };
            line.push_str(&format!(
                "\n    events {whose} c{c}: {}",
                n.events(events, o.unordered)
            ));
        }
        lines.push(line);
    }
    (lines, n.problems)
}

// ================================================================================ the test

fn compare(sc: &Scenario, addr: &str) -> Result<(), String> {
    let root = unique_path(&format!("conformance-{}", sc.name));

    let mut model = ModelTarget::new(sc.clients);
    let model_obs = run(&mut model, sc, &root);
    let model_sessions = (0..sc.clients).map(|c| model.session(c)).collect();
    let (model_lines, model_problems) = normalise(&root, model_sessions, &model_obs);

    let mut real = RealTarget::new(addr, sc.clients);
    let real_obs = run(&mut real, sc, &root);
    let real_sessions = (0..sc.clients).map(|c| real.session(c)).collect();
    let (real_lines, real_problems) = normalise(&root, real_sessions, &real_obs);
    // Leave nothing behind on the shared server.
    for conn in real.conns.iter_mut().filter(|c| c.alive) {
        let _ = conn.call(&Request::CloseSession);
    }

    if std::env::var_os("ZK_CONFORMANCE_DUMP").is_some() {
        eprintln!("===== {} (model)\n{}", sc.name, model_lines.join("\n"));
        eprintln!("===== {} (server)\n{}", sc.name, real_lines.join("\n"));
    }
    let mut report = String::new();
    for p in model_problems.iter().map(|p| format!("model: {p}")) {
        report.push_str(&format!("{p}\n"));
    }
    for p in real_problems.iter().map(|p| format!("server: {p}")) {
        report.push_str(&format!("{p}\n"));
    }
    for i in 0..model_lines.len().max(real_lines.len()) {
        let m = model_lines.get(i).map_or("<missing>", String::as_str);
        let r = real_lines.get(i).map_or("<missing>", String::as_str);
        if m != r {
            report.push_str(&format!("--- model:\n{m}\n+++ server:\n{r}\n"));
        }
    }
    if report.is_empty() {
        Ok(())
    } else {
        Err(format!("scenario {}:\n{report}", sc.name))
    }
}

#[test]
fn model_matches_a_real_server() {
    let t0 = Instant::now();
    let only = std::env::var("ZK_CONFORMANCE_ONLY").ok();
    let chosen: Vec<Scenario> = scenarios()
        .into_iter()
        .filter(|s| match only.as_deref() {
            Some(o) => s.name.contains(o),
            None => true,
        })
        .collect();
    let shared = shared_server();
    let dedicated = chosen.iter().any(|s| s.reaper).then(|| {
        DedicatedServer::start_with_jvm(200, &[], &["-Dznode.container.checkIntervalMs=100"])
    });
    let mut failures = Vec::new();
    for sc in &chosen {
        let addr = match &dedicated {
            Some(d) if sc.reaper => d.addr().to_owned(),
            _ => shared.addr.clone(),
        };
        if let Err(e) = compare(sc, &addr) {
            failures.push(e);
        }
    }
    eprintln!(
        "conformance: {} scenarios in {:.1} s",
        chosen.len(),
        t0.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} of {} scenarios differ:\n{}",
        failures.len(),
        chosen.len(),
        failures.join("\n")
    );
}
