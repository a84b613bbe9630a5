//! The driver against a scripted TCP server (zk-proto frames, no real ZooKeeper), for
//! orderings a real server rarely produces on demand.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use zk_proto::{
    ConnectRequest, ConnectResponse, ErrorCode, EventType, FrameDecoder, GetDataResponse,
    KeeperState, OpCode, Record, Reply, ReplyHeader, Request, Response, Stat, WatcherEvent,
    write_record_frame,
};
use zk_session::Client;

struct Peer {
    stream: TcpStream,
    buf: BytesMut,
    decoder: FrameDecoder,
}

impl Peer {
    fn frame(&mut self) -> Option<Bytes> {
        loop {
            if let Some(f) = self.decoder.decode(&mut self.buf).unwrap() {
                return Some(f);
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

/// A successful getData reply to `xid` carrying `data`, appended to `out`.
fn encode_get_data_reply(xid: i32, data: &'static [u8], out: &mut BytesMut) {
    let header = ReplyHeader {
        xid,
        zxid: 5,
        err: ErrorCode::Ok,
    };
    let body = Response::GetData(GetDataResponse {
        data: Bytes::from_static(data),
        stat: Stat::default(),
    });
    Response::encode_frame(&header, Some(&body), out);
}

#[test]
fn a_notification_in_the_same_read_as_its_watch_reply_is_delivered() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut peer = Peer {
            stream,
            buf: BytesMut::new(),
            decoder: FrameDecoder::default(),
        };
        ConnectRequest::decode(&peer.frame().unwrap()).unwrap();
        let mut out = BytesMut::new();
        write_record_frame(
            &mut out,
            &ConnectResponse {
                protocol_version: 0,
                timeout: 10_000,
                session_id: 0x42,
                passwd: Bytes::from(vec![7; 16]),
                read_only: Some(false),
            },
        );
        peer.stream.write_all(&out).unwrap();
        while let Some(f) = peer.frame() {
            let (h, req) = Request::decode_frame(&f).unwrap();
            let mut out = BytesMut::new();
            match req {
                Request::GetData(g) => {
                    assert!(g.watch);
                    encode_get_data_reply(h.xid, b"v1", &mut out);
                    // The change lands right behind the reply: both in one write.
                    Reply::encode_notification(
                        -1,
                        &WatcherEvent {
                            event_type: EventType::NodeDataChanged,
                            state: KeeperState::SyncConnected,
                            path: g.path,
                        },
                        &mut out,
                    );
                }
                other => {
                    let header = ReplyHeader {
                        xid: h.xid,
                        zxid: 6,
                        err: ErrorCode::Ok,
                    };
                    Response::encode_frame(&header, None, &mut out);
                    if other.opcode() == OpCode::CloseSession {
                        peer.stream.write_all(&out).unwrap();
                        return;
                    }
                }
            }
            peer.stream.write_all(&out).unwrap();
        }
    });
    let zk = Client::connect(&addr).unwrap();
    let (data, _, watch) = zk.get_data_watch("/w").unwrap();
    assert_eq!(&data[..], b"v1");
    let event = watch
        .wait_timeout(Duration::from_secs(5))
        .expect("the notification that arrived with the reply must reach the watch");
    assert_eq!(event.event_type, EventType::NodeDataChanged);
    assert_eq!(event.path, "/w");
    zk.close().unwrap();
    server.join().unwrap();
}

/// A watch set on a read-only server's session cannot survive the move to a read-write
/// server, which gives the client a new session: its handle is told (WatchLost) instead of
/// waiting forever.
#[test]
fn a_watch_lost_with_a_replaced_session_is_reported_to_its_handle() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = std::thread::spawn(move || {
        for (session_id, read_only) in [(0x55, true), (0x56, false)] {
            let (stream, _) = listener.accept().unwrap();
            let mut peer = Peer {
                stream,
                buf: BytesMut::new(),
                decoder: FrameDecoder::default(),
            };
            let req = ConnectRequest::decode(&peer.frame().unwrap()).unwrap();
            assert_eq!(req.session_id, 0, "no read-write server seen yet");
            let mut out = BytesMut::new();
            write_record_frame(
                &mut out,
                &ConnectResponse {
                    protocol_version: 0,
                    timeout: 10_000,
                    session_id,
                    passwd: Bytes::from(vec![7; 16]),
                    read_only: Some(read_only),
                },
            );
            peer.stream.write_all(&out).unwrap();
            if !read_only {
                // the new session: nothing to re-register; keep the connection until closed
                while let Some(f) = peer.frame() {
                    let (h, req) = Request::decode_frame(&f).unwrap();
                    assert_ne!(req.opcode(), OpCode::SetWatches2, "no old watches sent");
                    let mut out = BytesMut::new();
                    let header = ReplyHeader {
                        xid: h.xid,
                        zxid: 9,
                        err: ErrorCode::Ok,
                    };
                    Response::encode_frame(&header, None, &mut out);
                    peer.stream.write_all(&out).unwrap();
                    if req.opcode() == OpCode::CloseSession {
                        return;
                    }
                }
                return;
            }
            // the read-only session: answer one getData with a watch, then drop the connection
            let f = peer.frame().unwrap();
            let (h, req) = Request::decode_frame(&f).unwrap();
            assert!(matches!(req, Request::GetData(ref g) if g.watch));
            let mut out = BytesMut::new();
            encode_get_data_reply(h.xid, b"ro", &mut out);
            peer.stream.write_all(&out).unwrap();
        }
    });
    let zk = Client::builder(&addr)
        .unwrap()
        .can_be_read_only(true)
        .connect()
        .unwrap();
    let (data, _, watch) = zk.get_data_watch("/w").unwrap();
    assert_eq!(&data[..], b"ro");
    // the read-only server goes away; the client reconnects and gets a new session
    assert_eq!(
        watch.wait_timeout(Duration::from_secs(10)),
        Err(zk_session::Error::WatchLost)
    );
    assert_eq!(zk.session_id(), 0x56);
    zk.close().unwrap();
    server.join().unwrap();
}
