//! A scripted server for the sans-IO session core: virtual time, decoded client frames and
//! hand-written server frames, so that tests read as scripts.
//!
//! The harness plays the driver's part: after every input it drains the core's outputs
//! (actions, coalesced bytes, events), "writes" every transmitted byte at the current virtual
//! time onto a per-connection wire buffer, and keeps the actions (with the time they came
//! out) and the events for the test to inspect.
#![allow(dead_code, clippy::unwrap_used, clippy::disallowed_methods)]

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use zk_proto::{
    Acl, ConnectRequest, ConnectResponse, CreateMode, CreateRequest, ErrorCode, EventType,
    ExistsRequest, FrameDecoder, GetChildrenRequest, GetDataRequest, KeeperState, Record,
    ReplyHeader, Request, RequestHeader, Response, SetDataRequest, Stat, WatcherEvent,
    write_record_frame,
};
use zk_session::Error;
use zk_session::hosts::HostAddr;
use zk_session::session::{Action, Config, ConnId, Event, OpId, Session, SessionState};

/// The scripted server and virtual clock around one [`Session`].
pub struct Harness {
    /// The core under test.
    pub session: Session,
    /// When the test started (virtual time zero).
    pub start: Instant,
    /// The current virtual time.
    pub now: Instant,
    /// Bytes the client "wrote" to each connection and the test has not yet read.
    wire: HashMap<ConnId, BytesMut>,
    /// Actions not yet taken by the test, with the virtual time they came out.
    actions: VecDeque<(Instant, Action)>,
    /// Events not yet taken by the test.
    events: VecDeque<Event>,
    /// Every action ever emitted, with its time.
    pub action_log: Vec<(Instant, Action)>,
}

impl Harness {
    /// A harness around a session built from `config`, at virtual time zero.
    pub fn new(config: Config) -> Harness {
        let start = Instant::now();
        Harness {
            session: Session::new(config, start),
            start,
            now: start,
            wire: HashMap::new(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
            action_log: Vec::new(),
        }
    }

    /// A harness for a connect string with the given requested session timeout.
    pub fn with(connect: &str, session_timeout_ms: u64) -> Harness {
        let mut config = Config::new(connect).unwrap();
        config.session_timeout = Duration::from_millis(session_timeout_ms);
        Harness::new(config)
    }

    /// Virtual time elapsed since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Drain every output of the core, as a driver must after each input.
    pub fn pump(&mut self) {
        while let Some(a) = self.session.poll_action() {
            self.action_log.push((self.now, a.clone()));
            self.actions.push_back((self.now, a));
        }
        let n = self.session.transmit().len();
        if n > 0 {
            let conn = self
                .session
                .current_conn()
                .expect("bytes to transmit without a current connection");
            self.wire
                .entry(conn)
                .or_default()
                .extend_from_slice(self.session.transmit());
            self.session.advance_transmit(self.now, n);
        }
        while let Some(e) = self.session.poll_event() {
            self.events.push_back(e);
        }
    }

    /// Move virtual time forward by `dur`, calling `handle_timeout` at every deadline the
    /// core announces on the way (exactly at the deadline, as a precise driver would).
    pub fn advance(&mut self, dur: Duration) {
        let target = self.now + dur;
        self.advance_to(target);
    }

    /// Like [`Harness::advance`], up to an absolute virtual time.
    pub fn advance_to(&mut self, target: Instant) {
        self.pump();
        let mut spins = 0;
        while let Some((at, _)) = self.session.poll_timeout() {
            if at > target {
                break;
            }
            spins += 1;
            assert!(
                spins < 100_000,
                "the core keeps asking for a timeout at {:?} without progress",
                at - self.start
            );
            self.now = self.now.max(at);
            self.session.handle_timeout(self.now);
            self.pump();
        }
        self.now = self.now.max(target);
    }

    /// Advance to the next deadline the core announces and fire it; returns why it fired.
    pub fn fire_next_timer(&mut self) -> zk_session::session::TimerReason {
        self.pump();
        let (at, why) = self.session.poll_timeout().expect("no timer pending");
        self.now = self.now.max(at);
        self.session.handle_timeout(self.now);
        self.pump();
        why
    }

    // ------------------------------------------------------------------ actions

    /// Take every pending action.
    pub fn take_actions(&mut self) -> Vec<Action> {
        self.pump();
        self.actions.drain(..).map(|(_, a)| a).collect()
    }

    /// Take every pending action with the virtual time it came out.
    pub fn take_timed_actions(&mut self) -> Vec<(Instant, Action)> {
        self.pump();
        self.actions.drain(..).collect()
    }

    /// The next Connect action: pending Disconnect actions are skipped, and when none is
    /// pending, time runs to the next deadline (which must be a reconnect). Panics on a probe
    /// or if no connect comes within 10 virtual minutes.
    pub fn expect_connect(&mut self) -> (ConnId, HostAddr) {
        let limit = self.now + Duration::from_secs(600);
        loop {
            self.pump();
            while let Some((_, a)) = self.actions.pop_front() {
                match a {
                    Action::Connect { conn, host } => return (conn, host),
                    Action::Disconnect { .. } => {}
                    other => panic!("expected a Connect action, got {other:?}"),
                }
            }
            let (at, _) = self
                .session
                .poll_timeout()
                .expect("no Connect action and no timer pending");
            assert!(at <= limit, "no Connect action within 10 minutes");
            self.now = self.now.max(at);
            self.session.handle_timeout(self.now);
        }
    }

    /// The next pending action must be Disconnect; returns its connection and time.
    pub fn expect_disconnect(&mut self) -> (ConnId, Instant) {
        self.pump();
        match self.actions.pop_front() {
            Some((at, Action::Disconnect { conn })) => (conn, at),
            other => panic!("expected a Disconnect action, got {other:?}"),
        }
    }

    // ------------------------------------------------------------------ connecting

    /// Report TCP connected on `conn` and return the ConnectRequest the client wrote.
    pub fn tcp_connect(&mut self, conn: ConnId) -> ConnectRequest {
        self.session.handle_connected(self.now, conn);
        self.pump();
        self.take_connect_request(conn)
    }

    /// Decode the ConnectRequest (the first frame written to `conn`).
    pub fn take_connect_request(&mut self, conn: ConnId) -> ConnectRequest {
        let buf = self.wire.entry(conn).or_default();
        let frame = FrameDecoder::new(usize::MAX >> 1)
            .decode(buf)
            .unwrap()
            .expect("no ConnectRequest written");
        ConnectRequest::decode(&frame).unwrap()
    }

    /// TCP connect `conn`, read its ConnectRequest and answer a read-write ConnectResponse
    /// with `session_id` and the negotiated timeout. Returns the ConnectRequest.
    pub fn establish(&mut self, conn: ConnId, session_id: i64, timeout_ms: i32) -> ConnectRequest {
        let req = self.tcp_connect(conn);
        self.send_connect_response(
            conn,
            ConnectResponse {
                protocol_version: 0,
                timeout: timeout_ms,
                session_id,
                passwd: passwd_for(session_id),
                read_only: req.read_only.map(|_| false),
            },
        );
        req
    }

    /// Answer the ConnectRequest already read on `conn` with a read-write ConnectResponse.
    pub fn establish_response(&mut self, conn: ConnId, session_id: i64, timeout_ms: i32) {
        self.send_connect_response(
            conn,
            ConnectResponse {
                protocol_version: 0,
                timeout: timeout_ms,
                session_id,
                passwd: passwd_for(session_id),
                read_only: Some(false),
            },
        );
    }

    /// Send a ConnectResponse on `conn`.
    pub fn send_connect_response(&mut self, conn: ConnId, resp: ConnectResponse) {
        let mut buf = BytesMut::new();
        write_record_frame(&mut buf, &resp);
        self.feed_on(conn, &buf);
    }

    /// The first connection of a fresh harness: connect and establish `session_id` with the
    /// negotiated timeout; events of the handshake are discarded.
    pub fn connect_new(&mut self, session_id: i64, timeout_ms: i32) -> ConnId {
        let (conn, _) = self.expect_connect();
        self.establish(conn, session_id, timeout_ms);
        assert_eq!(self.session.state(), SessionState::Connected);
        self.events.clear();
        conn
    }

    /// The connection currently in use.
    pub fn conn(&self) -> ConnId {
        self.session.current_conn().expect("no current connection")
    }

    // ------------------------------------------------------------------ client frames

    /// Decode every complete frame the client wrote to the current connection.
    pub fn take_requests(&mut self) -> Vec<(RequestHeader, Request)> {
        let conn = self.conn();
        self.take_requests_on(conn)
    }

    /// Decode every complete frame the client wrote to `conn`.
    pub fn take_requests_on(&mut self, conn: ConnId) -> Vec<(RequestHeader, Request)> {
        self.pump();
        let buf = self.wire.entry(conn).or_default();
        let mut decoder = FrameDecoder::new(usize::MAX >> 1);
        let mut out = Vec::new();
        while let Some(frame) = decoder.decode(buf).unwrap() {
            out.push(Request::decode_frame(&frame).unwrap());
        }
        assert!(buf.is_empty(), "a partial frame was written");
        out
    }

    /// The raw bytes written to `conn` and not yet read.
    pub fn take_wire(&mut self, conn: ConnId) -> BytesMut {
        self.pump();
        self.wire.remove(&conn).unwrap_or_default()
    }

    // ------------------------------------------------------------------ server frames

    /// Feed raw bytes on the current connection.
    pub fn feed(&mut self, bytes: &[u8]) {
        let conn = self.conn();
        self.feed_on(conn, bytes);
    }

    /// Feed raw bytes on `conn` (which may be an abandoned connection).
    pub fn feed_on(&mut self, conn: ConnId, bytes: &[u8]) {
        self.session.handle_bytes(self.now, conn, bytes);
        self.pump();
    }

    /// Send a reply frame on the current connection.
    pub fn reply(&mut self, xid: i32, zxid: i64, err: ErrorCode, body: Option<Response>) {
        let conn = self.conn();
        self.reply_on(conn, xid, zxid, err, body);
    }

    /// Send a reply frame on `conn`.
    pub fn reply_on(
        &mut self,
        conn: ConnId,
        xid: i32,
        zxid: i64,
        err: ErrorCode,
        body: Option<Response>,
    ) {
        self.feed_on(conn, &reply_frame(xid, zxid, err, body.as_ref()));
    }

    /// Send a watch notification on the current connection.
    pub fn notify(&mut self, event_type: EventType, path: &str) {
        let conn = self.conn();
        self.notify_on(conn, event_type, path);
    }

    /// Send a watch notification on `conn`.
    pub fn notify_on(&mut self, conn: ConnId, event_type: EventType, path: &str) {
        self.feed_on(conn, &notification_frame(event_type, path));
    }

    /// Report that the server closed `conn`.
    pub fn server_close(&mut self, conn: ConnId) {
        self.session.handle_disconnected(self.now, conn);
        self.pump();
    }

    // ------------------------------------------------------------------ commands

    /// Submit a request now (and write whatever it produces).
    pub fn submit(&mut self, request: Request) -> OpId {
        let op = self.session.submit(self.now, request).unwrap();
        self.pump();
        op
    }

    /// Add credentials now.
    pub fn add_auth(&mut self, scheme: &str, auth: &[u8]) -> OpId {
        let op = self
            .session
            .add_auth(self.now, scheme, Bytes::copy_from_slice(auth))
            .unwrap();
        self.pump();
        op
    }

    // ------------------------------------------------------------------ events

    /// Take every pending event.
    pub fn events(&mut self) -> Vec<Event> {
        self.pump();
        self.events.drain(..).collect()
    }

    /// Take every pending event; each must be a completion.
    pub fn completions(&mut self) -> Vec<(OpId, Result<Response, Error>)> {
        self.events()
            .into_iter()
            .map(|e| match e {
                Event::Completed { op, result } => (op, result),
                other => panic!("expected only completions, got {other:?}"),
            })
            .collect()
    }

    /// Take every pending event; exactly one must be op's completion, which is returned.
    pub fn completion(&mut self, op: OpId) -> Result<Response, Error> {
        let mut found = None;
        for e in self.events() {
            match e {
                Event::Completed { op: o, result } if o == op => {
                    assert!(found.is_none(), "op {op} completed twice");
                    found = Some(result);
                }
                other => panic!("unexpected event {other:?} while waiting for op {op}"),
            }
        }
        found.unwrap_or_else(|| panic!("op {op} did not complete"))
    }
}

// ---------------------------------------------------------------------- frames

/// The password the scripted server hands out for a session.
pub fn passwd_for(session_id: i64) -> Bytes {
    let mut p = vec![0u8; 16];
    p[..8].copy_from_slice(&session_id.to_be_bytes());
    p[8..].copy_from_slice(&(!session_id).to_be_bytes());
    Bytes::from(p)
}

/// A reply frame (length prefix included).
pub fn reply_frame(xid: i32, zxid: i64, err: ErrorCode, body: Option<&Response>) -> BytesMut {
    let mut buf = BytesMut::new();
    Response::encode_frame(&ReplyHeader { xid, zxid, err }, body, &mut buf);
    buf
}

/// A notification frame (length prefix included), zxid -1 as servers up to 3.8 send.
pub fn notification_frame(event_type: EventType, path: &str) -> BytesMut {
    let mut buf = BytesMut::new();
    zk_proto::Reply::encode_notification(
        -1,
        &WatcherEvent {
            event_type,
            state: KeeperState::SyncConnected,
            path: path.to_owned(),
        },
        &mut buf,
    );
    buf
}

/// Bytes from PROTOCOL.md §11 hex (spaces ignored).
pub fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A Stat with recognisable zxids.
pub fn stat(zxid: i64) -> Stat {
    Stat {
        czxid: zxid,
        mzxid: zxid,
        pzxid: zxid,
        ..Stat::default()
    }
}

// ---------------------------------------------------------------------- requests

/// getData.
pub fn get_data(path: &str, watch: bool) -> Request {
    Request::GetData(GetDataRequest {
        path: path.into(),
        watch,
    })
}

/// exists.
pub fn exists(path: &str, watch: bool) -> Request {
    Request::Exists(ExistsRequest {
        path: path.into(),
        watch,
    })
}

/// getChildren.
pub fn get_children(path: &str, watch: bool) -> Request {
    Request::GetChildren(GetChildrenRequest {
        path: path.into(),
        watch,
    })
}

/// setData, any version.
pub fn set_data(path: &str, data: &[u8]) -> Request {
    Request::SetData(SetDataRequest {
        path: path.into(),
        data: Bytes::copy_from_slice(data),
        version: -1,
    })
}

/// A persistent create with OPEN_ACL_UNSAFE.
pub fn create_req(path: &str, data: &[u8]) -> CreateRequest {
    CreateRequest {
        path: path.into(),
        data: Bytes::copy_from_slice(data),
        acl: Acl::open_unsafe(),
        flags: CreateMode::Persistent,
    }
}

/// The path a request acts on, if it has exactly one.
pub fn request_path(req: &Request) -> Option<&str> {
    Some(match req {
        Request::Create(r) | Request::Create2(r) | Request::CreateContainer(r) => &r.path,
        Request::CreateTtl(r) => &r.path,
        Request::Delete(r) => &r.path,
        Request::Exists(r) => &r.path,
        Request::GetData(r) => &r.path,
        Request::SetData(r) => &r.path,
        Request::GetAcl(r) => &r.path,
        Request::SetAcl(r) => &r.path,
        Request::GetChildren(r) => &r.path,
        Request::GetChildren2(r) => &r.path,
        Request::Sync(r) => &r.path,
        Request::GetAllChildrenNumber(r) => &r.path,
        Request::CheckWatches(r) => &r.path,
        Request::RemoveWatches(r) => &r.path,
        Request::AddWatch(r) => &r.path,
        Request::GetEphemerals(r) => &r.prefix_path,
        _ => return None,
    })
}

/// Milliseconds as a Duration.
pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A plausible successful reply body for a request (as a server would send it).
pub fn ok_response(req: &Request, zxid: i64) -> Option<Response> {
    use zk_proto::{
        Create2Response, CreateResponse, ErrorResponse, ExistsResponse, GetChildren2Response,
        GetChildrenResponse, GetDataResponse, SetDataResponse, SyncResponse,
    };
    Some(match req {
        Request::Create(r) => Response::Create(CreateResponse {
            path: r.path.clone(),
        }),
        Request::Create2(r) | Request::CreateContainer(r) => Response::Create2(Create2Response {
            path: r.path.clone(),
            stat: stat(zxid),
        }),
        Request::Exists(_) => Response::Exists(ExistsResponse { stat: stat(zxid) }),
        Request::GetData(_) => Response::GetData(GetDataResponse {
            data: Bytes::from_static(b"data"),
            stat: stat(zxid),
        }),
        Request::SetData(_) => Response::SetData(SetDataResponse { stat: stat(zxid) }),
        Request::GetChildren(_) => Response::GetChildren(GetChildrenResponse {
            children: vec!["c".into()],
        }),
        Request::GetChildren2(_) => Response::GetChildren2(GetChildren2Response {
            children: vec!["c".into()],
            stat: stat(zxid),
        }),
        Request::Sync(r) => Response::Sync(SyncResponse {
            path: r.path.clone(),
        }),
        Request::AddWatch(_) => Response::AddWatch(ErrorResponse { err: ErrorCode::Ok }),
        _ => return None,
    })
}

impl Harness {
    /// Answer every request written so far on the current connection with success, in
    /// order; returns the decoded requests.
    pub fn answer_all(&mut self, zxid: i64) -> Vec<(RequestHeader, Request)> {
        let reqs = self.take_requests();
        for (hdr, req) in &reqs {
            self.reply(hdr.xid, zxid, ErrorCode::Ok, ok_response(req, zxid));
        }
        reqs
    }

    /// Submit a request, answer it with success and return the op and its (successful)
    /// response (a setup helper: events pending before the call are discarded).
    pub fn roundtrip_ok(&mut self, request: Request, zxid: i64) -> (OpId, Response) {
        self.events();
        let op = self.submit(request);
        self.answer_all(zxid);
        (op, self.completion(op).unwrap())
    }
}

/// addWatch.
pub fn add_watch(path: &str, recursive: bool) -> Request {
    Request::AddWatch(zk_proto::AddWatchRequest {
        path: path.into(),
        mode: if recursive {
            zk_proto::AddWatchMode::PersistentRecursive
        } else {
            zk_proto::AddWatchMode::Persistent
        },
    })
}
