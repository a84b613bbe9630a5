//! The codec proven against a real server before any session layer: plain blocking std
//! sockets, frames encoded and decoded by zk-proto only.

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use zk_integration_tests::{shared_server, unique_path};
use zk_proto::*;

/// A blocking connection speaking raw frames.
struct Raw {
    stream: TcpStream,
    decoder: FrameDecoder,
    inbuf: BytesMut,
}

impl Raw {
    fn connect(addr: &str) -> Raw {
        let stream = TcpStream::connect(addr).expect("connect to the shared server");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("set timeout");
        Raw {
            stream,
            decoder: FrameDecoder::default(),
            inbuf: BytesMut::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    fn next_frame(&mut self) -> Bytes {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.inbuf).expect("valid frame") {
                return frame;
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).expect("read");
            assert!(n > 0, "server closed the connection");
            self.inbuf.extend_from_slice(&chunk[..n]);
        }
    }

    fn handshake(&mut self) -> ConnectResponse {
        let mut out = BytesMut::new();
        write_record_frame(
            &mut out,
            &ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: 0,
                timeout: 6000,
                session_id: 0,
                passwd: Bytes::from(vec![0; 16]),
                read_only: Some(false),
            },
        );
        self.send(&out);
        ConnectResponse::decode(&self.next_frame()).expect("ConnectResponse")
    }

    fn call(&mut self, xid: i32, req: Request) -> (ReplyHeader, Result<Response, ErrorCode>) {
        let op = req.opcode();
        let mut out = BytesMut::new();
        req.encode_frame(xid, &mut out);
        self.send(&out);
        loop {
            let reply = Reply::parse(&self.next_frame()).expect("reply header");
            if reply.is_notification() {
                continue;
            }
            assert_eq!(reply.header.xid, xid, "replies come in request order");
            let resp = reply.response(op).expect("decodable body");
            return (reply.header, resp);
        }
    }
}

#[test]
fn handshake_create_read_delete_with_plain_sockets() {
    let server = shared_server();
    let mut conn = Raw::connect(&server.addr);

    let session = conn.handshake();
    assert!(
        session.timeout > 0,
        "negotiated timeout {}",
        session.timeout
    );
    assert_ne!(session.session_id, 0);
    assert_eq!(session.passwd.len(), 16);
    assert_eq!(session.read_only, Some(false));

    let path = unique_path("raw-proto");
    let (h, created) = conn.call(
        1,
        Request::Create2(CreateRequest {
            path: path.clone(),
            data: Bytes::from_static(b"hello"),
            acl: Acl::open_unsafe(),
            flags: CreateMode::Persistent,
        }),
    );
    let Ok(Response::Create2(created)) = created else {
        panic!("create2 failed: {created:?}");
    };
    assert_eq!(created.path, path);
    assert_eq!(
        created.stat.czxid, h.zxid,
        "a write's reply carries its zxid"
    );
    assert_eq!(created.stat.data_length, 5);

    let (_, got) = conn.call(
        2,
        Request::GetData(GetDataRequest {
            path: path.clone(),
            watch: false,
        }),
    );
    let Ok(Response::GetData(got)) = got else {
        panic!("getData failed: {got:?}");
    };
    assert_eq!(&got.data[..], b"hello");
    assert_eq!(got.stat, created.stat);

    // A second create of the same path fails with NodeExists and no body.
    let (_, dup) = conn.call(
        3,
        Request::Create(CreateRequest {
            path: path.clone(),
            data: Bytes::new(),
            acl: Acl::open_unsafe(),
            flags: CreateMode::Persistent,
        }),
    );
    assert_eq!(dup, Err(ErrorCode::NodeExists));

    let (_, deleted) = conn.call(
        4,
        Request::Delete(DeleteRequest {
            path: path.clone(),
            version: created.stat.version,
        }),
    );
    assert_eq!(deleted, Ok(Response::Empty));

    let (_, gone) = conn.call(
        5,
        Request::Exists(ExistsRequest {
            path: path.clone(),
            watch: false,
        }),
    );
    assert_eq!(gone, Err(ErrorCode::NoNode));

    let (_, pong) = conn.call(xid::PING, Request::Ping);
    assert_eq!(pong, Ok(Response::Empty));

    let (_, closed) = conn.call(6, Request::CloseSession);
    assert_eq!(closed, Ok(Response::Empty));
}

#[test]
fn pipelined_requests_right_behind_the_connect_request() {
    // The server holds frames sent before the ConnectResponse until the session exists.
    let server = shared_server();
    let mut conn = Raw::connect(&server.addr);
    let path = unique_path("raw-pipeline");
    let mut out = BytesMut::new();
    write_record_frame(
        &mut out,
        &ConnectRequest {
            timeout: 6000,
            passwd: Bytes::from(vec![0; 16]),
            read_only: Some(false),
            ..ConnectRequest::default()
        },
    );
    Request::Create(CreateRequest {
        path: path.clone(),
        data: Bytes::from_static(b"x"),
        acl: Acl::open_unsafe(),
        flags: CreateMode::Ephemeral,
    })
    .encode_frame(1, &mut out);
    for xid in 2..=50 {
        Request::Exists(ExistsRequest {
            path: path.clone(),
            watch: false,
        })
        .encode_frame(xid, &mut out);
    }
    conn.send(&out);
    let session = ConnectResponse::decode(&conn.next_frame()).expect("ConnectResponse");
    assert!(session.timeout > 0);
    let created = Reply::parse(&conn.next_frame()).unwrap();
    assert_eq!(created.header.xid, 1);
    assert_eq!(
        created.response(OpCode::Create).unwrap(),
        Ok(Response::Create(CreateResponse { path: path.clone() }))
    );
    for xid in 2..=50 {
        let reply = Reply::parse(&conn.next_frame()).unwrap();
        assert_eq!(reply.header.xid, xid);
        let Ok(Response::Exists(e)) = reply.response(OpCode::Exists).unwrap() else {
            panic!("exists failed");
        };
        assert_eq!(e.stat.ephemeral_owner, session.session_id);
    }
}
