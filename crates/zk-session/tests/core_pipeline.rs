//! Pipelining, FIFO reply matching, the frame size limit, multi failures and event order.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod support;

use bytes::{Bytes, BytesMut};
use zk_proto::{
    DeleteRequest, ErrorCode, EventType, FrameDecoder, MultiOp, MultiRequest, Request, Response,
    SetDataRequest,
};
use zk_session::Error;
use zk_session::session::{Action, Event, SessionState, WatchedEvent};

use support::*;

#[test]
fn a_thousand_requests_go_out_in_one_buffer_in_submit_order() {
    let mut h = Harness::with("h1:1", 6000);
    let conn = h.connect_new(1, 6000);
    let mut ops = Vec::new();
    for i in 0..1000 {
        ops.push(
            h.session
                .submit(h.now, get_data(&format!("/n{i}"), false))
                .unwrap(),
        );
    }
    assert_eq!(h.session.in_flight(), 1000);
    // One transmit buffer holds all 1000 frames.
    let mut buf = BytesMut::from(h.session.transmit());
    let mut decoder = FrameDecoder::default();
    let mut frames = Vec::new();
    while let Some(f) = decoder.decode(&mut buf).unwrap() {
        frames.push(Request::decode_frame(&f).unwrap());
    }
    assert!(buf.is_empty());
    assert_eq!(frames.len(), 1000);
    for (i, (hdr, req)) in frames.iter().enumerate() {
        assert_eq!(hdr.xid, i32::try_from(i).unwrap() + 1, "increasing xids");
        assert_eq!(*req, get_data(&format!("/n{i}"), false), "submit order");
    }
    h.pump();
    assert!(h.session.transmit().is_empty());
    assert_eq!(h.take_requests_on(conn).len(), 1000);

    // All replies in one read: matched in order.
    let mut replies = BytesMut::new();
    for (i, (hdr, _)) in frames.iter().enumerate() {
        let data = Bytes::from(format!("v{i}"));
        replies.extend_from_slice(&reply_frame(
            hdr.xid,
            100 + i64::from(hdr.xid),
            ErrorCode::Ok,
            Some(&Response::GetData(zk_proto::GetDataResponse {
                data,
                stat: stat(1),
            })),
        ));
    }
    h.feed(&replies);
    let done = h.completions();
    assert_eq!(done.len(), 1000);
    for (i, (op, result)) in done.into_iter().enumerate() {
        assert_eq!(op, ops[i]);
        match result {
            Ok(Response::GetData(r)) => assert_eq!(r.data, format!("v{i}").as_bytes()),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(h.session.in_flight(), 0);
    assert_eq!(h.session.last_zxid(), 1100);
}

#[test]
fn a_reply_with_an_unexpected_xid_drops_the_connection() {
    let mut h = Harness::with("h1:1,h2:2", 6000);
    let conn = h.connect_new(1, 6000);
    let a = h.submit(get_data("/a", false));
    let b = h.submit(get_data("/b", false));
    let c = h.submit(get_data("/c", false));
    let reqs = h.take_requests();
    assert_eq!(reqs.len(), 3);
    // The server answers xid 2 first: "xid out of order".
    h.reply(reqs[1].0.xid, 5, ErrorCode::NoNode, None);
    assert_eq!(h.expect_disconnect().0, conn);
    assert_eq!(
        h.events(),
        [
            Event::Completed {
                op: a,
                result: Err(Error::ConnectionLoss)
            },
            Event::Completed {
                op: b,
                result: Err(Error::ConnectionLoss)
            },
            Event::Completed {
                op: c,
                result: Err(Error::ConnectionLoss)
            },
            Event::State(SessionState::Disconnected),
        ],
        "every in-flight request fails, the mismatched head included"
    );
    assert_eq!(h.session.in_flight(), 0);
    // A reply with nothing in flight is just as fatal.
    let (c2, _) = h.expect_connect();
    h.establish(c2, 1, 6000);
    h.events();
    h.reply(77, 5, ErrorCode::Ok, None);
    assert_eq!(h.expect_disconnect().0, c2);
}

#[test]
fn oversized_requests_are_refused_before_sending() {
    let mut h = Harness::with("h1:1", 6000);
    let conn = h.connect_new(1, 6000);
    let big = set_data("/a", &vec![7u8; 2 << 20]);
    match h.session.submit(h.now, big.clone()) {
        Err(Error::TooLarge { len, max }) => {
            assert_eq!(len, big.frame_len());
            assert_eq!(max, 0xFFFFF);
        }
        other => panic!("{other:?}"),
    }
    assert!(h.session.transmit().is_empty(), "nothing transmitted");
    assert_eq!(h.session.in_flight(), 0);
    assert!(h.take_wire(conn).is_empty());
    assert!(h.events().is_empty());

    // The limit is the frame payload (header + body): exactly at the limit is accepted.
    let overhead = set_data("/a", b"").frame_len();
    let at_limit = set_data("/a", &vec![0u8; 0xFFFFF - overhead]);
    assert_eq!(at_limit.frame_len(), 0xFFFFF);
    h.session.submit(h.now, at_limit).unwrap();
    let over = set_data("/a", &vec![0u8; 0xFFFFF - overhead + 1]);
    assert!(matches!(
        h.session.submit(h.now, over),
        Err(Error::TooLarge { .. })
    ));

    // The chroot counts, and the check also applies while disconnected.
    let mut config = zk_session::session::Config::new("h1:1/chroot").unwrap();
    config.max_outgoing_frame = 100;
    let mut h = Harness::new(config);
    let fits = set_data("/a", &vec![0u8; 100 - overhead]);
    assert!(matches!(
        h.session.submit(h.now, fits),
        Err(Error::TooLarge { len, max: 100 }) if len == 100 + "/chroot".len()
    ));
    assert_eq!(h.session.queued(), 0);
}

const G10_REQUEST: &str = "000000a1 0000000b 0000000e \
    00000001 00 ffffffff 00000012 2f72657365617263682d70726f746f2f6d31 00000001 78 00000001 \
    0000001f 00000005 776f726c64 00000006 616e796f6e65 00000000 \
    00000002 00 ffffffff 00000014 2f72657365617263682d70726f746f2f6e6f7065 ffffffff \
    00000005 00 ffffffff 00000012 2f72657365617263682d70726f746f2f6e31 00000001 79 ffffffff \
    ffffffff 01 ffffffff";

const G10_REPLY: &str = "00000040 0000000b 00000000000000ad 00000000 \
    ffffffff 00 00000000 00000000 \
    ffffffff 00 ffffff9b ffffff9b \
    ffffffff 00 fffffffe fffffffe \
    ffffffff 01 ffffffff";

fn with_xid(hex_frame: &str, xid: i32) -> Vec<u8> {
    let mut b = hex(hex_frame);
    b[4..8].copy_from_slice(&xid.to_be_bytes());
    b
}

#[test]
fn a_failed_multi_reports_the_failing_op() {
    let mut h = Harness::with("h1:1/research-proto", 6000);
    let conn = h.connect_new(1, 6000);
    let op = h.submit(Request::Multi(MultiRequest {
        ops: vec![
            MultiOp::Create(create_req("/m1", b"x")),
            MultiOp::Delete(DeleteRequest {
                path: "/nope".into(),
                version: -1,
            }),
            MultiOp::SetData(SetDataRequest {
                path: "/n1".into(),
                data: Bytes::from_static(b"y"),
                version: -1,
            }),
        ],
    }));
    // Byte-for-byte G10's request (but for the xid).
    let wire = h.take_wire(conn);
    assert_eq!(&wire[..], &with_xid(G10_REQUEST, 1)[..]);
    h.feed(&with_xid(G10_REPLY, 1));
    assert_eq!(
        h.completion(op),
        Err(Error::MultiFailed {
            index: 1,
            code: ErrorCode::NoNode
        })
    );
    assert_eq!(
        h.session.last_zxid(),
        0xad,
        "a failed multi consumes a zxid"
    );

    // A header error rejects the whole request.
    let op = h.submit(Request::Multi(MultiRequest {
        ops: vec![MultiOp::Create(create_req("/m1", b"x"))],
    }));
    let reqs = h.take_requests();
    h.reply(reqs[0].0.xid, 0xae, ErrorCode::MarshallingError, None);
    assert_eq!(h.completion(op), Err(Error::MarshallingError));
}

#[test]
fn a_notification_is_delivered_before_the_reply_of_the_write_that_triggered_it() {
    let mut h = Harness::with("h1:1/research-proto", 6000);
    let conn = h.connect_new(1, 6000);
    let w = h.submit(get_data("/n1", true));
    let g7 = h.take_wire(conn);
    assert_eq!(
        &g7[..],
        &hex("0000001f 00000001 00000004 00000012 2f72657365617263682d70726f746f2f6e31 01")[..],
        "G7's getData (xid 1)"
    );
    h.feed(&with_xid(
        "0000005d 00000004 00000000000000aa 00000000 00000005 68656c6c6f \
         00000000000000aa 00000000000000aa 000001a20fb2d2e7 000001a20fb2d2e7 00000000 \
         00000000 00000000 0000000000000000 00000005 00000000 00000000000000aa",
        1,
    ));
    assert!(h.completion(w).is_ok());
    let s = h.submit(set_data("/n1", b"world"));
    h.take_requests();
    // G8: the notification, then the setData reply, in one read.
    let mut bytes = hex(
        "0000002e ffffffff ffffffffffffffff 00000000 00000003 00000003 \
         00000012 2f72657365617263682d70726f746f2f6e31",
    );
    bytes.extend_from_slice(&with_xid(
        "00000054 00000008 00000000000000ab 00000000 00000000000000aa 00000000000000ab \
         000001a20fb2d2e7 000001a20fb2dae4 00000001 00000000 00000000 0000000000000000 \
         00000005 00000000 00000000000000aa",
        2,
    ));
    h.feed(&bytes);
    let events = h.events();
    assert_eq!(events.len(), 2);
    assert_eq!(
        events[0],
        Event::Watch {
            watcher: w,
            event: WatchedEvent {
                event_type: EventType::NodeDataChanged,
                path: "/n1".into()
            }
        }
    );
    assert!(
        matches!(&events[1], Event::Completed { op, result: Ok(Response::SetData(_)) } if *op == s)
    );
    assert_eq!(h.session.last_zxid(), 0xab, "notification zxid -1 ignored");
    assert!(
        h.take_actions()
            .iter()
            .all(|a| !matches!(a, Action::Disconnect { .. }))
    );
}
