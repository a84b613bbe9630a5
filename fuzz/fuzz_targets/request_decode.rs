//! Raw bytes as a client frame payload (after the length prefix), decoded as a server or a
//! test server would: no panics, and every value that decodes survives encode → decode.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use zk_proto::{ConnectRequest, FrameDecoder, MultiRequest, OpCode, Reader, Record, Request};

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

/// Re-frame a request with its xid and decode the frame again.
fn request_roundtrip(xid: i32, req: &Request) {
    let mut buf = BytesMut::new();
    req.encode_frame(xid, &mut buf);
    assert_eq!(
        buf.len(),
        4 + req.frame_len(),
        "{:?}: frame_len",
        req.opcode()
    );
    let frame = FrameDecoder::default()
        .decode(&mut buf)
        .expect("re-encoded frame fits")
        .expect("re-encoded frame is complete");
    assert!(buf.is_empty());
    let (header, again) = Request::decode_frame(&frame).expect("re-encoded request decodes");
    assert_eq!(header.xid, xid);
    assert_eq!(header.opcode, req.opcode());
    assert_eq!(&again, req, "request roundtrip");
}

fuzz_target!(|data: &[u8]| {
    let frame = Bytes::copy_from_slice(data);

    if let Ok((header, req)) = Request::decode_frame(&frame) {
        assert_eq!(header.opcode, req.opcode());
        assert_eq!(req.frame_len(), frame.len());
        request_roundtrip(header.xid, &req);
    }

    // The whole input as a body of each opcode (covers every body without needing the fuzzer
    // to find the 8-byte header first).
    for &op in OpCode::KNOWN {
        let mut r = Reader::new(&frame);
        if let Ok(req) = Request::read_body(op, &mut r) {
            assert_eq!(req.opcode(), op);
            if r.finish("Request").is_ok() {
                assert_eq!(req.body_len(), frame.len());
                request_roundtrip(0, &req);
            }
        }
    }

    if let Ok(req) = ConnectRequest::decode(&frame) {
        record_roundtrip(&req);
    }
    if let Ok(multi) = MultiRequest::decode(&frame) {
        record_roundtrip(&multi);
    }
});
