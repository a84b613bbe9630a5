//! Structured roundtrip: build requests, replies, notifications and handshake records from
//! arbitrary primitives, encode them into one byte stream, split it with a `FrameDecoder` and
//! decode every frame again: each value must come back unchanged.
//!
//! zk-proto's types do not implement `Arbitrary`, so the `Arb*` mirrors below are generated
//! and converted.
#![no_main]

use arbitrary::Arbitrary;
use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use zk_proto::*;

#[derive(Arbitrary, Debug)]
struct ArbStat {
    czxid: i64,
    mzxid: i64,
    ctime: i64,
    mtime: i64,
    version: i32,
    cversion: i32,
    aversion: i32,
    ephemeral_owner: i64,
    data_length: i32,
    num_children: i32,
    pzxid: i64,
}

impl ArbStat {
    fn build(self) -> Stat {
        Stat {
            czxid: self.czxid,
            mzxid: self.mzxid,
            ctime: self.ctime,
            mtime: self.mtime,
            version: self.version,
            cversion: self.cversion,
            aversion: self.aversion,
            ephemeral_owner: self.ephemeral_owner,
            data_length: self.data_length,
            num_children: self.num_children,
            pzxid: self.pzxid,
        }
    }
}

#[derive(Arbitrary, Debug)]
struct ArbAcl {
    perms: i32,
    scheme: String,
    id: String,
}

fn acls(v: Vec<ArbAcl>) -> Vec<Acl> {
    v.into_iter()
        .map(|a| Acl {
            perms: Perms(a.perms),
            id: Id {
                scheme: a.scheme,
                id: a.id,
            },
        })
        .collect()
}

#[derive(Arbitrary, Debug)]
struct ArbCreate {
    path: String,
    data: Vec<u8>,
    acl: Vec<ArbAcl>,
    flags: i32,
}

impl ArbCreate {
    fn build(self) -> CreateRequest {
        CreateRequest {
            path: self.path,
            data: self.data.into(),
            acl: acls(self.acl),
            flags: CreateMode::from_raw(self.flags),
        }
    }
    fn build_ttl(self, ttl: i64) -> CreateTtlRequest {
        CreateTtlRequest {
            path: self.path,
            data: self.data.into(),
            acl: acls(self.acl),
            flags: CreateMode::from_raw(self.flags),
            ttl,
        }
    }
}

#[derive(Arbitrary, Debug)]
enum ArbMultiOp {
    Create(ArbCreate),
    Create2(ArbCreate),
    CreateContainer(ArbCreate),
    CreateTtl(ArbCreate, i64),
    Delete(String, i32),
    Check(String, i32),
    SetData(String, Vec<u8>, i32),
    GetChildren(String, bool),
    GetData(String, bool),
}

impl ArbMultiOp {
    fn build(self) -> MultiOp {
        match self {
            ArbMultiOp::Create(c) => MultiOp::Create(c.build()),
            ArbMultiOp::Create2(c) => MultiOp::Create2(c.build()),
            ArbMultiOp::CreateContainer(c) => MultiOp::CreateContainer(c.build()),
            ArbMultiOp::CreateTtl(c, ttl) => MultiOp::CreateTtl(c.build_ttl(ttl)),
            ArbMultiOp::Delete(path, version) => MultiOp::Delete(DeleteRequest { path, version }),
            ArbMultiOp::Check(path, version) => {
                MultiOp::Check(CheckVersionRequest { path, version })
            }
            ArbMultiOp::SetData(path, data, version) => MultiOp::SetData(SetDataRequest {
                path,
                data: data.into(),
                version,
            }),
            ArbMultiOp::GetChildren(path, watch) => {
                MultiOp::GetChildren(GetChildrenRequest { path, watch })
            }
            ArbMultiOp::GetData(path, watch) => MultiOp::GetData(GetDataRequest { path, watch }),
        }
    }
}

fn multi(ops: Vec<ArbMultiOp>) -> MultiRequest {
    MultiRequest {
        ops: ops.into_iter().map(ArbMultiOp::build).collect(),
    }
}

#[derive(Arbitrary, Debug)]
struct ArbWatches {
    relative_zxid: i64,
    data: Vec<String>,
    exist: Vec<String>,
    child: Vec<String>,
    persistent: Vec<String>,
    recursive: Vec<String>,
}

#[derive(Arbitrary, Debug)]
enum ArbRequest {
    Create(ArbCreate),
    Create2(ArbCreate),
    CreateContainer(ArbCreate),
    CreateTtl(ArbCreate, i64),
    Delete(String, i32),
    Exists(String, bool),
    GetData(String, bool),
    SetData(String, Vec<u8>, i32),
    GetAcl(String),
    SetAcl(String, Vec<ArbAcl>, i32),
    GetChildren(String, bool),
    Sync(String),
    GetChildren2(String, bool),
    Check(String, i32),
    Multi(Vec<ArbMultiOp>),
    Reconfig(String, String, String, i64),
    CheckWatches(String, i32),
    RemoveWatches(String, i32),
    DeleteContainer(String),
    MultiRead(Vec<ArbMultiOp>),
    Auth(i32, String, Vec<u8>),
    SetWatches(ArbWatches),
    Sasl(Vec<u8>),
    GetEphemerals(String),
    GetAllChildrenNumber(String),
    SetWatches2(ArbWatches),
    AddWatch(String, i32),
    Ping,
    WhoAmI,
    CloseSession,
}

impl ArbRequest {
    fn build(self) -> Request {
        match self {
            ArbRequest::Create(c) => Request::Create(c.build()),
            ArbRequest::Create2(c) => Request::Create2(c.build()),
            ArbRequest::CreateContainer(c) => Request::CreateContainer(c.build()),
            ArbRequest::CreateTtl(c, ttl) => Request::CreateTtl(c.build_ttl(ttl)),
            ArbRequest::Delete(path, version) => Request::Delete(DeleteRequest { path, version }),
            ArbRequest::Exists(path, watch) => Request::Exists(ExistsRequest { path, watch }),
            ArbRequest::GetData(path, watch) => Request::GetData(GetDataRequest { path, watch }),
            ArbRequest::SetData(path, data, version) => Request::SetData(SetDataRequest {
                path,
                data: data.into(),
                version,
            }),
            ArbRequest::GetAcl(path) => Request::GetAcl(GetAclRequest { path }),
            ArbRequest::SetAcl(path, acl, version) => Request::SetAcl(SetAclRequest {
                path,
                acl: acls(acl),
                version,
            }),
            ArbRequest::GetChildren(path, watch) => {
                Request::GetChildren(GetChildrenRequest { path, watch })
            }
            ArbRequest::Sync(path) => Request::Sync(SyncRequest { path }),
            ArbRequest::GetChildren2(path, watch) => {
                Request::GetChildren2(GetChildren2Request { path, watch })
            }
            ArbRequest::Check(path, version) => {
                Request::Check(CheckVersionRequest { path, version })
            }
            ArbRequest::Multi(ops) => Request::Multi(multi(ops)),
            ArbRequest::Reconfig(joining, leaving, members, id) => {
                Request::Reconfig(ReconfigRequest {
                    joining_servers: joining,
                    leaving_servers: leaving,
                    new_members: members,
                    cur_config_id: id,
                })
            }
            ArbRequest::CheckWatches(path, t) => Request::CheckWatches(CheckWatchesRequest {
                path,
                watcher_type: WatcherType::from_raw(t),
            }),
            ArbRequest::RemoveWatches(path, t) => Request::RemoveWatches(RemoveWatchesRequest {
                path,
                watcher_type: WatcherType::from_raw(t),
            }),
            ArbRequest::DeleteContainer(path) => {
                Request::DeleteContainer(DeleteContainerRequest { path })
            }
            ArbRequest::MultiRead(ops) => Request::MultiRead(multi(ops)),
            ArbRequest::Auth(auth_type, scheme, auth) => Request::Auth(AuthPacket {
                auth_type,
                scheme,
                auth: auth.into(),
            }),
            ArbRequest::SetWatches(w) => Request::SetWatches(SetWatches {
                relative_zxid: w.relative_zxid,
                data_watches: w.data,
                exist_watches: w.exist,
                child_watches: w.child,
            }),
            ArbRequest::Sasl(token) => Request::Sasl(GetSaslRequest {
                token: token.into(),
            }),
            ArbRequest::GetEphemerals(prefix_path) => {
                Request::GetEphemerals(GetEphemeralsRequest { prefix_path })
            }
            ArbRequest::GetAllChildrenNumber(path) => {
                Request::GetAllChildrenNumber(GetAllChildrenNumberRequest { path })
            }
            ArbRequest::SetWatches2(w) => Request::SetWatches2(SetWatches2 {
                relative_zxid: w.relative_zxid,
                data_watches: w.data,
                exist_watches: w.exist,
                child_watches: w.child,
                persistent_watches: w.persistent,
                persistent_recursive_watches: w.recursive,
            }),
            ArbRequest::AddWatch(path, mode) => Request::AddWatch(AddWatchRequest {
                path,
                mode: AddWatchMode::from_raw(mode),
            }),
            ArbRequest::Ping => Request::Ping,
            ArbRequest::WhoAmI => Request::WhoAmI,
            ArbRequest::CloseSession => Request::CloseSession,
        }
    }
}

#[derive(Arbitrary, Debug)]
enum ArbMultiResult {
    Create(String),
    Create2(String, ArbStat),
    Delete,
    Check,
    SetData(ArbStat),
    GetChildren(Vec<String>),
    GetData(Vec<u8>, ArbStat),
    Error(i32),
}

impl ArbMultiResult {
    fn build(self) -> MultiResult {
        match self {
            ArbMultiResult::Create(path) => MultiResult::Create(CreateResponse { path }),
            ArbMultiResult::Create2(path, stat) => MultiResult::Create2(Create2Response {
                path,
                stat: stat.build(),
            }),
            ArbMultiResult::Delete => MultiResult::Delete,
            ArbMultiResult::Check => MultiResult::Check,
            ArbMultiResult::SetData(stat) => {
                MultiResult::SetData(SetDataResponse { stat: stat.build() })
            }
            ArbMultiResult::GetChildren(children) => {
                MultiResult::GetChildren(GetChildrenResponse { children })
            }
            ArbMultiResult::GetData(data, stat) => MultiResult::GetData(GetDataResponse {
                data: data.into(),
                stat: stat.build(),
            }),
            ArbMultiResult::Error(code) => MultiResult::Error(ErrorCode::from_raw(code)),
        }
    }
}

/// The response bodies; `u8` selectors choose among the opcodes that share a body shape.
#[derive(Arbitrary, Debug)]
enum ArbResponse {
    Empty(u8),
    Create(String),
    Create2(u8, String, ArbStat),
    Exists(ArbStat),
    GetData(Vec<u8>, ArbStat),
    SetData(ArbStat),
    GetAcl(Vec<ArbAcl>, ArbStat),
    SetAcl(ArbStat),
    GetChildren(Vec<String>),
    GetChildren2(Vec<String>, ArbStat),
    Sync(String),
    Multi(bool, Vec<ArbMultiResult>),
    Reconfig(Vec<u8>, ArbStat),
    AddWatch(i32),
    Sasl(Option<Vec<u8>>),
    GetEphemerals(Vec<String>),
    GetAllChildrenNumber(i32),
    WhoAmI(Vec<(String, String)>),
}

const EMPTY_OPS: &[OpCode] = &[
    OpCode::Delete,
    OpCode::Check,
    OpCode::Ping,
    OpCode::Auth,
    OpCode::SetWatches,
    OpCode::SetWatches2,
    OpCode::CheckWatches,
    OpCode::RemoveWatches,
    OpCode::DeleteContainer,
    OpCode::CloseSession,
];

const CREATE2_OPS: &[OpCode] = &[OpCode::Create2, OpCode::CreateContainer, OpCode::CreateTtl];

fn pick(ops: &[OpCode], i: u8) -> OpCode {
    ops[usize::from(i) % ops.len()]
}

impl ArbResponse {
    /// The response and the opcode of a request it answers.
    fn build(self) -> (OpCode, Response) {
        match self {
            ArbResponse::Empty(i) => (pick(EMPTY_OPS, i), Response::Empty),
            ArbResponse::Create(path) => {
                (OpCode::Create, Response::Create(CreateResponse { path }))
            }
            ArbResponse::Create2(i, path, stat) => (
                pick(CREATE2_OPS, i),
                Response::Create2(Create2Response {
                    path,
                    stat: stat.build(),
                }),
            ),
            ArbResponse::Exists(stat) => (
                OpCode::Exists,
                Response::Exists(ExistsResponse { stat: stat.build() }),
            ),
            ArbResponse::GetData(data, stat) => (
                OpCode::GetData,
                Response::GetData(GetDataResponse {
                    data: data.into(),
                    stat: stat.build(),
                }),
            ),
            ArbResponse::SetData(stat) => (
                OpCode::SetData,
                Response::SetData(SetDataResponse { stat: stat.build() }),
            ),
            ArbResponse::GetAcl(acl, stat) => (
                OpCode::GetAcl,
                Response::GetAcl(GetAclResponse {
                    acl: acls(acl),
                    stat: stat.build(),
                }),
            ),
            ArbResponse::SetAcl(stat) => (
                OpCode::SetAcl,
                Response::SetAcl(SetAclResponse { stat: stat.build() }),
            ),
            ArbResponse::GetChildren(children) => (
                OpCode::GetChildren,
                Response::GetChildren(GetChildrenResponse { children }),
            ),
            ArbResponse::GetChildren2(children, stat) => (
                OpCode::GetChildren2,
                Response::GetChildren2(GetChildren2Response {
                    children,
                    stat: stat.build(),
                }),
            ),
            ArbResponse::Sync(path) => (OpCode::Sync, Response::Sync(SyncResponse { path })),
            ArbResponse::Multi(read, results) => (
                if read {
                    OpCode::MultiRead
                } else {
                    OpCode::Multi
                },
                Response::Multi(MultiResponse {
                    results: results.into_iter().map(ArbMultiResult::build).collect(),
                }),
            ),
            ArbResponse::Reconfig(data, stat) => (
                OpCode::Reconfig,
                Response::Reconfig(GetDataResponse {
                    data: data.into(),
                    stat: stat.build(),
                }),
            ),
            ArbResponse::AddWatch(err) => (
                OpCode::AddWatch,
                Response::AddWatch(ErrorResponse {
                    err: ErrorCode::from_raw(err),
                }),
            ),
            ArbResponse::Sasl(token) => (
                OpCode::Sasl,
                Response::Sasl(SetSaslResponse {
                    token: token.map(Bytes::from),
                }),
            ),
            ArbResponse::GetEphemerals(ephemerals) => (
                OpCode::GetEphemerals,
                Response::GetEphemerals(GetEphemeralsResponse { ephemerals }),
            ),
            ArbResponse::GetAllChildrenNumber(total_number) => (
                OpCode::GetAllChildrenNumber,
                Response::GetAllChildrenNumber(GetAllChildrenNumberResponse { total_number }),
            ),
            ArbResponse::WhoAmI(infos) => (
                OpCode::WhoAmI,
                Response::WhoAmI(WhoAmIResponse {
                    client_info: infos
                        .into_iter()
                        .map(|(auth_scheme, user)| ClientInfo { auth_scheme, user })
                        .collect(),
                }),
            ),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum ArbFrame {
    Request(i32, ArbRequest),
    /// xid, zxid, err (an error header carries no body), body.
    Reply(i32, i64, i32, ArbResponse),
    Notification(i64, i32, i32, String),
    ConnectRequest(i32, i64, i32, i64, Vec<u8>, Option<bool>),
    ConnectResponse(i32, i32, i64, Vec<u8>, Option<bool>),
}

/// A built frame: what was encoded, to compare with what decodes.
#[derive(Debug)]
enum Expected {
    Request(i32, Request),
    Reply(ReplyHeader, OpCode, Response),
    Notification(i64, WatcherEvent),
    ConnectRequest(ConnectRequest),
    ConnectResponse(ConnectResponse),
}

impl ArbFrame {
    fn build(self) -> Expected {
        match self {
            ArbFrame::Request(xid, req) => Expected::Request(xid, req.build()),
            ArbFrame::Reply(xid, zxid, err, body) => {
                let (op, resp) = body.build();
                let header = ReplyHeader {
                    xid,
                    zxid,
                    err: ErrorCode::from_raw(err),
                };
                Expected::Reply(header, op, resp)
            }
            ArbFrame::Notification(zxid, t, state, path) => Expected::Notification(
                zxid,
                WatcherEvent {
                    event_type: EventType::from_raw(t),
                    state: KeeperState::from_raw(state),
                    path,
                },
            ),
            ArbFrame::ConnectRequest(v, zxid, timeout, session_id, passwd, read_only) => {
                Expected::ConnectRequest(ConnectRequest {
                    protocol_version: v,
                    last_zxid_seen: zxid,
                    timeout,
                    session_id,
                    passwd: passwd.into(),
                    read_only,
                })
            }
            ArbFrame::ConnectResponse(v, timeout, session_id, passwd, read_only) => {
                Expected::ConnectResponse(ConnectResponse {
                    protocol_version: v,
                    timeout,
                    session_id,
                    passwd: passwd.into(),
                    read_only,
                })
            }
        }
    }

    fn encode(e: &Expected, buf: &mut BytesMut) {
        match e {
            Expected::Request(xid, req) => req.encode_frame(*xid, buf),
            Expected::Reply(header, _, resp) => {
                // A server sends no body with an error header.
                let body = (header.err == ErrorCode::Ok).then_some(resp);
                Response::encode_frame(header, body, buf);
            }
            Expected::Notification(zxid, event) => Reply::encode_notification(*zxid, event, buf),
            Expected::ConnectRequest(r) => write_record_frame(buf, r),
            Expected::ConnectResponse(r) => write_record_frame(buf, r),
        }
    }
}

fn check(e: &Expected, frame: &Bytes) {
    match e {
        Expected::Request(xid, req) => {
            assert_eq!(frame.len(), req.frame_len());
            let (header, got) = Request::decode_frame(frame).expect("request decodes");
            assert_eq!(header.xid, *xid);
            assert_eq!(header.opcode, req.opcode());
            assert_eq!(&got, req);
        }
        Expected::Reply(header, op, resp) => {
            let reply = Reply::parse(frame).expect("reply header parses");
            assert_eq!(&reply.header, header);
            if header.err == ErrorCode::Ok {
                assert_eq!(frame.len(), 16 + resp.body_len());
                assert_eq!(reply.response(*op), Ok(Ok(resp.clone())));
            } else {
                assert!(reply.body.is_empty());
                assert_eq!(reply.response(*op), Ok(Err(header.err)));
            }
        }
        Expected::Notification(zxid, event) => {
            let reply = Reply::parse(frame).expect("notification header parses");
            assert!(reply.is_notification());
            assert_eq!(reply.header.zxid, *zxid);
            assert_eq!(reply.header.err, ErrorCode::Ok);
            assert_eq!(reply.watcher_event().as_ref(), Ok(event));
        }
        Expected::ConnectRequest(r) => {
            assert_eq!(frame.len(), r.encoded_len());
            assert_eq!(ConnectRequest::decode(frame).as_ref(), Ok(r));
        }
        Expected::ConnectResponse(r) => {
            assert_eq!(frame.len(), r.encoded_len());
            assert_eq!(ConnectResponse::decode(frame).as_ref(), Ok(r));
        }
    }
}

fuzz_target!(|frames: Vec<ArbFrame>| {
    let expected: Vec<Expected> = frames.into_iter().map(ArbFrame::build).collect();

    // One stream holding every frame, as on a connection.
    let mut stream = BytesMut::new();
    for e in &expected {
        ArbFrame::encode(e, &mut stream);
    }

    let mut decoder = FrameDecoder::default();
    for e in &expected {
        let frame = decoder
            .decode(&mut stream)
            .expect("encoded frame fits")
            .expect("encoded frame is complete");
        check(e, &frame);
    }
    assert!(stream.is_empty(), "bytes left after the last frame");
    assert_eq!(decoder.decode(&mut stream), Ok(None));
});
