//! Raw bytes as a server frame payload (after the length prefix): every decode path a client
//! uses must not panic, and every value that decodes must survive encode → decode unchanged.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use zk_proto::{
    ConnectResponse, ErrorCode, FrameDecoder, MultiResponse, OpCode, Record, Reply, ReplyHeader,
    Response,
};

/// Encode a record, check its length, decode it again: the same value.
fn record_roundtrip<R: Record + PartialEq + core::fmt::Debug>(value: &R) {
    let bytes = value.to_bytes();
    assert_eq!(bytes.len(), value.encoded_len(), "{}: encoded_len", R::NAME);
    assert_eq!(
        R::decode(&bytes).as_ref(),
        Ok(value),
        "{}: roundtrip",
        R::NAME
    );
}

/// Re-frame a reply, decode it as a client would, and compare with what the fuzzed bytes gave.
fn reply_roundtrip(header: &ReplyHeader, op: OpCode, resp: &Response) {
    let mut buf = BytesMut::new();
    Response::encode_frame(header, Some(resp), &mut buf);
    assert_eq!(buf.len(), 4 + 16 + resp.body_len(), "{op:?}: body_len");
    let frame = FrameDecoder::default()
        .decode(&mut buf)
        .expect("re-encoded frame fits")
        .expect("re-encoded frame is complete");
    assert!(buf.is_empty());
    let again = Reply::parse(&frame).expect("re-encoded header parses");
    assert_eq!(&again.header, header);
    assert_eq!(
        Response::decode(op, &again.body).as_ref(),
        Ok(resp),
        "{op:?}: response roundtrip"
    );
    let expected = if header.err == ErrorCode::Ok {
        Ok(resp.clone())
    } else {
        Err(header.err)
    };
    assert_eq!(again.response(op), Ok(expected), "{op:?}: Reply::response");
}

fuzz_target!(|data: &[u8]| {
    let frame = Bytes::copy_from_slice(data);

    if let Ok(reply) = Reply::parse(&frame) {
        record_roundtrip(&reply.header);
        assert_eq!(reply.body.len(), frame.len() - 16);
        assert_eq!(reply.is_notification(), reply.header.xid == -1);

        let ops = OpCode::KNOWN
            .iter()
            .copied()
            .chain([OpCode::Unknown(0x7fff_0000)]);
        for op in ops {
            // As a client decodes it: an error header short-circuits the body.
            match reply.response(op) {
                Ok(Ok(resp)) => {
                    assert_eq!(reply.header.err, ErrorCode::Ok);
                    reply_roundtrip(&reply.header, op, &resp);
                }
                Ok(Err(code)) => {
                    assert_eq!(code, reply.header.err);
                    assert_ne!(code, ErrorCode::Ok);
                }
                Err(_) => {}
            }
            // The body alone, whatever the header says.
            if let Ok(resp) = Response::decode(op, &reply.body) {
                reply_roundtrip(&reply.header, op, &resp);
            }
        }

        if let Ok(event) = reply.watcher_event() {
            record_roundtrip(&event);
            let mut buf = BytesMut::new();
            Reply::encode_notification(reply.header.zxid, &event, &mut buf);
            let frame = FrameDecoder::default()
                .decode(&mut buf)
                .expect("notification fits")
                .expect("notification is complete");
            let again = Reply::parse(&frame).expect("notification header parses");
            assert!(again.is_notification());
            assert_eq!(again.header.zxid, reply.header.zxid);
            assert_eq!(again.watcher_event(), Ok(event));
        }
    }

    if let Ok(resp) = ConnectResponse::decode(&frame) {
        record_roundtrip(&resp);
    }
    if let Ok(multi) = MultiResponse::decode(&frame) {
        record_roundtrip(&multi);
    }
});
