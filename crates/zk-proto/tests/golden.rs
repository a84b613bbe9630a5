//! Every golden frame of PROTOCOL.md §11 decodes to the expected values and re-encodes to the
//! same bytes.

#![allow(clippy::unwrap_used)]

mod common;

use bytes::{Bytes, BytesMut};
use common::{Dir, frame, golden, hex};
use zk_proto::*;

const N1: &str = "/research-proto/n1";

fn b(s: &[u8]) -> Bytes {
    Bytes::copy_from_slice(s)
}

/// Decode a client frame (after the handshake), check header, then re-encode it.
fn request(name: &str, xid: i32) -> Request {
    let g = frame(name);
    let (header, req) = Request::decode_frame(&g.payload()).expect(name);
    assert_eq!(header.xid, xid, "{name}: xid");
    assert_eq!(header.opcode, req.opcode(), "{name}: opcode");
    let mut out = BytesMut::new();
    req.encode_frame(xid, &mut out);
    assert_eq!(
        hex_of(&out),
        hex_of(&g.bytes),
        "{name}: re-encoding differs"
    );
    req
}

/// Decode a server reply, check the header, re-encode it.
fn reply(name: &str, xid: i32, zxid: i64) -> Result<Response, ErrorCode> {
    let g = frame(name);
    let op = OpCode::from_raw(g.op.expect("op= in name"));
    let reply = Reply::parse(&g.payload()).expect(name);
    assert_eq!(reply.header.xid, xid, "{name}: xid");
    assert_eq!(reply.header.zxid, zxid, "{name}: zxid");
    let resp = reply.response(op).expect(name);
    let mut out = BytesMut::new();
    Response::encode_frame(&reply.header, resp.as_ref().ok(), &mut out);
    // A failed multiRead may carry a body after err != 0; none of the golden errors does.
    assert_eq!(
        hex_of(&out),
        hex_of(&g.bytes),
        "{name}: re-encoding differs"
    );
    resp
}

fn event(name: &str) -> WatcherEvent {
    let g = frame(name);
    let reply = Reply::parse(&g.payload()).expect(name);
    assert!(reply.is_notification());
    assert_eq!(reply.header.zxid, -1);
    let ev = reply.watcher_event().expect(name);
    let mut out = BytesMut::new();
    Reply::encode_notification(reply.header.zxid, &ev, &mut out);
    assert_eq!(
        hex_of(&out),
        hex_of(&g.bytes),
        "{name}: re-encoding differs"
    );
    ev
}

fn hex_of(b: &[u8]) -> String {
    hex::encode(b)
}

fn record_frame<R: Record + std::fmt::Debug>(name: &str) -> R {
    let g = frame(name);
    let rec = R::decode(&g.payload()).expect(name);
    let mut out = BytesMut::new();
    write_record_frame(&mut out, &rec);
    assert_eq!(
        hex_of(&out),
        hex_of(&g.bytes),
        "{name}: re-encoding differs"
    );
    rec
}

fn stat_g6() -> Stat {
    Stat {
        czxid: 0xaa,
        mzxid: 0xaa,
        ctime: 0x1a20fb2d2e7,
        mtime: 0x1a20fb2d2e7,
        version: 0,
        cversion: 0,
        aversion: 0,
        ephemeral_owner: 0,
        data_length: 5,
        num_children: 0,
        pzxid: 0xaa,
    }
}

fn stat_after_set() -> Stat {
    Stat {
        mzxid: 0xab,
        mtime: 0x1a20fb2dae4,
        version: 1,
        ..stat_g6()
    }
}

#[test]
fn every_golden_frame_is_covered_and_length_prefixed() {
    let all = golden();
    assert_eq!(all.len(), 43);
    for g in &all {
        let mut buf = BytesMut::from(&g.bytes[..]);
        let payload = FrameDecoder::default()
            .decode(&mut buf)
            .expect(&g.name)
            .expect("complete frame");
        assert_eq!(payload.len() + 4, g.bytes.len(), "{}", g.name);
        assert!(buf.is_empty(), "{}", g.name);
    }
    assert!(all.iter().any(|g| g.dir == Dir::C2s) && all.iter().any(|g| g.dir == Dir::S2c));
}

#[test]
fn g1_g2_connect_with_read_only_byte() {
    let req: ConnectRequest = record_frame("G1");
    assert_eq!(
        req,
        ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout: 6000,
            session_id: 0,
            passwd: Bytes::from(vec![0; 16]),
            read_only: Some(false),
        }
    );
    let resp: ConnectResponse = record_frame("G2");
    assert_eq!(resp.timeout, 6000);
    assert_eq!(resp.session_id, 0x0100000219a30007);
    assert_eq!(hex_of(&resp.passwd), "786bbf1c4031b0e99533eca324f04590");
    assert_eq!(resp.read_only, Some(false));
    assert!(!resp.is_expired());
}

#[test]
fn g3_connect_without_read_only_byte() {
    let req: ConnectRequest = record_frame("G3.req");
    assert_eq!(req.timeout, 10000);
    assert_eq!(req.read_only, None);
    let resp: ConnectResponse = record_frame("G3.resp");
    assert_eq!(resp.session_id, 0x0100000219a3000a);
    assert_eq!(resp.read_only, None);
}

#[test]
fn g4_reconnect_and_g5_expired() {
    let req: ConnectRequest = record_frame("G4");
    assert_eq!(req.last_zxid_seen, 0xb3);
    assert_eq!(req.session_id, 0x0100000219a30007);
    assert_eq!(hex_of(&req.passwd), "786bbf1c4031b0e99533eca324f04590");
    let resp: ConnectResponse = record_frame("G5");
    assert_eq!(resp.timeout, 0);
    assert_eq!(resp.session_id, 0);
    assert!(resp.is_expired());
}

#[test]
fn g6_create2() {
    let req = request("G6.req", 3);
    assert_eq!(
        req,
        Request::Create2(CreateRequest {
            path: N1.into(),
            data: b(b"hello"),
            acl: Acl::open_unsafe(),
            flags: CreateMode::Persistent,
        })
    );
    let resp = reply("G6.resp.op=15", 3, 0xaa);
    assert_eq!(
        resp,
        Ok(Response::Create2(Create2Response {
            path: N1.into(),
            stat: stat_g6()
        }))
    );
}

#[test]
fn g7_get_data_with_watch() {
    let req = request("G7.req", 4);
    assert_eq!(
        req,
        Request::GetData(GetDataRequest {
            path: N1.into(),
            watch: true
        })
    );
    let resp = reply("G7.resp.op=4", 4, 0xaa);
    assert_eq!(
        resp,
        Ok(Response::GetData(GetDataResponse {
            data: b(b"hello"),
            stat: stat_g6()
        }))
    );
}

#[test]
fn g7_data_is_a_zero_copy_slice_of_the_frame() {
    let payload = frame("G7.resp.op=4").payload();
    let reply = Reply::parse(&payload).unwrap();
    let Ok(Response::GetData(r)) = reply.response(OpCode::GetData).unwrap() else {
        panic!("not a GetData reply");
    };
    let frame_range = payload.as_ptr() as usize..payload.as_ptr() as usize + payload.len();
    assert!(frame_range.contains(&(r.data.as_ptr() as usize)));
}

#[test]
fn g8_set_data_notification_before_reply() {
    let req = request("G8.req", 8);
    assert_eq!(
        req,
        Request::SetData(SetDataRequest {
            path: N1.into(),
            data: b(b"world"),
            version: -1
        })
    );
    let ev = event("G8.event");
    assert_eq!(
        ev,
        WatcherEvent {
            event_type: EventType::NodeDataChanged,
            state: KeeperState::SyncConnected,
            path: N1.into()
        }
    );
    let resp = reply("G8.resp.op=5", 8, 0xab);
    assert_eq!(
        resp,
        Ok(Response::SetData(SetDataResponse {
            stat: stat_after_set()
        }))
    );
}

#[test]
fn g9_exists_missing_node_error_without_body() {
    let req = request("G9.req", 5);
    assert_eq!(
        req,
        Request::Exists(ExistsRequest {
            path: "/research-proto/missing".into(),
            watch: true
        })
    );
    assert_eq!(reply("G9.resp.op=3", 5, 0xaa), Err(ErrorCode::NoNode));
}

#[test]
fn g10_failing_multi() {
    let req = request("G10.req", 11);
    assert_eq!(
        req,
        Request::Multi(MultiRequest {
            ops: vec![
                MultiOp::Create(CreateRequest {
                    path: "/research-proto/m1".into(),
                    data: b(b"x"),
                    acl: Acl::open_unsafe(),
                    flags: CreateMode::Persistent,
                }),
                MultiOp::Delete(DeleteRequest {
                    path: "/research-proto/nope".into(),
                    version: -1
                }),
                MultiOp::SetData(SetDataRequest {
                    path: N1.into(),
                    data: b(b"y"),
                    version: -1
                }),
            ]
        })
    );
    let Ok(Response::Multi(resp)) = reply("G10.resp.op=14", 11, 0xad) else {
        panic!("not a multi reply")
    };
    assert_eq!(
        resp.results,
        vec![
            MultiResult::Error(ErrorCode::Ok),
            MultiResult::Error(ErrorCode::NoNode),
            MultiResult::Error(ErrorCode::RuntimeInconsistency),
        ]
    );
    assert_eq!(resp.first_error(), Some(ErrorCode::NoNode));
}

#[test]
fn g11_successful_multi() {
    let Ok(Response::Multi(resp)) = reply("G11.resp.op=14", 12, 0xae) else {
        panic!("not a multi reply")
    };
    let stat = Stat {
        czxid: 0xae,
        mzxid: 0xae,
        ctime: 0x1a20fb2e230,
        mtime: 0x1a20fb2e230,
        version: 1,
        data_length: 1,
        pzxid: 0xae,
        ..Stat::default()
    };
    assert_eq!(
        resp.results,
        vec![
            MultiResult::Create(CreateResponse {
                path: "/research-proto/m2".into()
            }),
            MultiResult::Check,
            MultiResult::SetData(SetDataResponse { stat }),
            MultiResult::Delete,
        ]
    );
    assert_eq!(resp.first_error(), None);
}

#[test]
fn g12_multi_read() {
    let req = request("G12.req", 13);
    assert_eq!(
        req,
        Request::MultiRead(MultiRequest {
            ops: vec![
                MultiOp::GetChildren(GetChildrenRequest {
                    path: "/research-proto".into(),
                    watch: false
                }),
                MultiOp::GetData(GetDataRequest {
                    path: N1.into(),
                    watch: false
                }),
                MultiOp::GetData(GetDataRequest {
                    path: "/research-proto/missing".into(),
                    watch: false
                }),
            ]
        })
    );
    let Ok(Response::Multi(resp)) = reply("G12.resp.op=22", 13, 0xae) else {
        panic!("not a multi reply")
    };
    assert_eq!(
        resp.results,
        vec![
            MultiResult::GetChildren(GetChildrenResponse {
                children: vec!["n1".into()]
            }),
            MultiResult::GetData(GetDataResponse {
                data: b(b"world"),
                stat: stat_after_set()
            }),
            MultiResult::Error(ErrorCode::NoNode),
        ]
    );
}

#[test]
fn g13_ping() {
    assert_eq!(request("G13.req", xid::PING), Request::Ping);
    assert_eq!(Request::Ping.fixed_xid(), Some(xid::PING));
    assert_eq!(
        reply("G13.resp.op=11", xid::PING, 0xb3),
        Ok(Response::Empty)
    );
}

#[test]
fn g14_auth_ok_and_failed() {
    assert_eq!(
        request("G14.req", xid::AUTH),
        Request::Auth(AuthPacket {
            auth_type: 0,
            scheme: "digest".into(),
            auth: b(b"alice:secret")
        })
    );
    assert_eq!(reply("G14.resp.op=100", xid::AUTH, 0), Ok(Response::Empty));
    assert_eq!(
        request("G14.bad-req", xid::AUTH),
        Request::Auth(AuthPacket {
            auth_type: 0,
            scheme: "nosuchscheme".into(),
            auth: b(b"x")
        })
    );
    assert_eq!(
        reply("G14.bad-resp.op=100", xid::AUTH, 0),
        Err(ErrorCode::AuthFailed)
    );
}

#[test]
fn g15_set_watches2() {
    assert_eq!(
        request("G15.req", 23),
        Request::SetWatches2(SetWatches2 {
            relative_zxid: 0xb3,
            data_watches: vec![N1.into()],
            exist_watches: vec!["/research-proto/missing".into()],
            child_watches: vec![],
            persistent_watches: vec![N1.into()],
            persistent_recursive_watches: vec!["/research-proto".into()],
        })
    );
    assert_eq!(reply("G15.resp.op=105", 23, 0xb3), Ok(Response::Empty));
}

#[test]
fn g16_set_watches_and_catch_up_events() {
    assert_eq!(
        request("G16.req", xid::SET_WATCHES),
        Request::SetWatches(SetWatches {
            relative_zxid: 0,
            data_watches: vec!["/research-proto/w".into()],
            exist_watches: vec!["/research-proto/w".into(), "/research-proto/none".into()],
            child_watches: vec!["/research-proto/gone".into()],
        })
    );
    let kinds: Vec<(EventType, String)> = ["G16.event1", "G16.event2", "G16.event3"]
        .iter()
        .map(|n| {
            let e = event(n);
            (e.event_type, e.path)
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            (EventType::NodeDataChanged, "/research-proto/w".to_owned()),
            (EventType::NodeCreated, "/research-proto/w".to_owned()),
            (EventType::NodeDeleted, "/research-proto/gone".to_owned()),
        ]
    );
    assert_eq!(
        reply("G16.resp.op=101", xid::SET_WATCHES, 0xfd),
        Ok(Response::Empty)
    );
}

#[test]
fn g17_add_watch_has_error_response_body() {
    assert_eq!(
        request("G17.req", 20),
        Request::AddWatch(AddWatchRequest {
            path: "/research-proto".into(),
            mode: AddWatchMode::PersistentRecursive
        })
    );
    assert_eq!(
        reply("G17.resp.op=106", 20, 0xb3),
        Ok(Response::AddWatch(ErrorResponse { err: ErrorCode::Ok }))
    );
}

#[test]
fn g18_close_session() {
    assert_eq!(request("G18.req", 0x25), Request::CloseSession);
    assert_eq!(reply("G18.resp.op=-11", 0x25, 0xb8), Ok(Response::Empty));
}

#[test]
fn g19_unknown_opcode() {
    let g = frame("G19.req");
    let err = Request::decode_frame(&g.payload()).unwrap_err();
    assert_eq!(
        err,
        DecodeError::UnsupportedOpCode {
            record: "Request",
            opcode: 50
        }
    );
    let header = RequestHeader::decode(&g.payload()).unwrap();
    assert_eq!(header.opcode, OpCode::Unknown(50));
    assert_eq!(
        reply("G19.resp.op=50", 0x13, -1),
        Err(ErrorCode::Unimplemented)
    );
}

#[test]
fn g20_who_am_i() {
    assert_eq!(request("G20.req", 0x1e), Request::WhoAmI);
    assert_eq!(
        reply("G20.resp.op=107", 0x1e, 0xb3),
        Ok(Response::WhoAmI(WhoAmIResponse {
            client_info: vec![
                ClientInfo {
                    auth_scheme: "digest".into(),
                    user: "alice".into()
                },
                ClientInfo {
                    auth_scheme: "ip".into(),
                    user: "127.0.0.1".into()
                },
            ]
        }))
    );
}

#[test]
fn g21_ephemeral_sequential_create() {
    assert_eq!(
        request("G21.req", 0x0e),
        Request::Create(CreateRequest {
            path: "/research-proto/es-".into(),
            data: b(b"e"),
            acl: Acl::open_unsafe(),
            flags: CreateMode::EphemeralSequential,
        })
    );
    assert_eq!(
        reply("G21.resp.op=1", 0x0e, 0xaf),
        Ok(Response::Create(CreateResponse {
            path: "/research-proto/es-0000000002".into()
        }))
    );
}

#[test]
fn a_failed_multi_read_may_carry_a_body_after_the_error() {
    // 3.8.0: a multiRead rejected with -5 still carries a MultiResponse terminator.
    let payload = Bytes::from(hex(
        "0000000d 00000000000000ae fffffffb ffffffff 01 ffffffff",
    ));
    let reply = Reply::parse(&payload).unwrap();
    assert_eq!(
        reply.response(OpCode::MultiRead).unwrap(),
        Err(ErrorCode::MarshallingError)
    );
}
