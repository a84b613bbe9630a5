//! Corrupted golden frames (PROTOCOL.md §11): truncation at every length, single-byte
//! corruption at every position, absurd length prefixes and trailing garbage. Decoding must
//! never panic, and must fail exactly where the frame is incomplete, with the error naming the
//! record and field.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};

use bytes::{BufMut, Bytes, BytesMut};

use common::{Dir, Golden, frame, golden};
use zk_proto::*;

// ---------------------------------------------------------------------------------------------
// Decoding a golden frame with the decoder its position in a session calls for

/// Which decoder a golden frame needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The first client frame: no header.
    ConnectRequest,
    /// The first server frame: no header.
    ConnectResponse,
    /// A later client frame: `Request::decode_frame`.
    Request,
    /// A server frame with xid -1: `Reply::parse` + `watcher_event`.
    Event,
    /// A server reply to a request of this opcode: `Reply::parse` + `response(op)`.
    Reply(OpCode),
}

fn kind(g: &Golden) -> Kind {
    match (g.name.as_str(), g.dir, g.op) {
        ("G1" | "G3.req" | "G4", Dir::C2s, _) => Kind::ConnectRequest,
        ("G2" | "G3.resp" | "G5", Dir::S2c, _) => Kind::ConnectResponse,
        (_, Dir::C2s, _) => Kind::Request,
        (_, Dir::S2c, Some(op)) => Kind::Reply(OpCode::from_raw(op)),
        (_, Dir::S2c, None) => Kind::Event,
    }
}

/// A decoded frame.
#[derive(Debug, Clone, PartialEq)]
enum Decoded {
    ConnectRequest(ConnectRequest),
    ConnectResponse(ConnectResponse),
    Request(RequestHeader, Request),
    Event(ReplyHeader, WatcherEvent),
    Reply(ReplyHeader, Result<Response, ErrorCode>),
}

fn decode(kind: Kind, payload: &Bytes) -> Result<Decoded, DecodeError> {
    Ok(match kind {
        Kind::ConnectRequest => Decoded::ConnectRequest(ConnectRequest::decode(payload)?),
        Kind::ConnectResponse => Decoded::ConnectResponse(ConnectResponse::decode(payload)?),
        Kind::Request => {
            let (h, r) = Request::decode_frame(payload)?;
            Decoded::Request(h, r)
        }
        Kind::Event => {
            let reply = Reply::parse(payload)?;
            let event = reply.watcher_event()?;
            Decoded::Event(reply.header, event)
        }
        Kind::Reply(op) => {
            let reply = Reply::parse(payload)?;
            let response = reply.response(op)?;
            Decoded::Reply(reply.header, response)
        }
    })
}

/// Decode, turning a panic into a test failure that says which input caused it.
fn decode_checked(kind: Kind, payload: &Bytes, what: &str) -> Result<Decoded, DecodeError> {
    match catch_unwind(AssertUnwindSafe(|| decode(kind, payload))) {
        Ok(result) => result,
        Err(_) => panic!("decoder panicked on {what}: payload {}", hex(payload)),
    }
}

/// Every decoder in the crate, on any payload, must return rather than panic.
fn decode_every_way(payload: &Bytes, what: &str) -> Vec<DecodeError> {
    let run = || {
        let mut errors = Vec::new();
        let mut keep = |r: Result<(), DecodeError>| {
            if let Err(e) = r {
                errors.push(e);
            }
        };
        keep(ConnectRequest::decode(payload).map(drop));
        keep(ConnectResponse::decode(payload).map(drop));
        keep(Request::decode_frame(payload).map(drop));
        keep(MultiRequest::decode(payload).map(drop));
        keep(MultiResponse::decode(payload).map(drop));
        keep(WatcherEvent::decode(payload).map(drop));
        let ops = OpCode::KNOWN.iter().copied().chain([OpCode::Unknown(50)]);
        for op in ops.clone() {
            keep(Response::decode(op, payload).map(drop));
        }
        match Reply::parse(payload) {
            Err(e) => keep(Err(e)),
            Ok(reply) => {
                keep(reply.watcher_event().map(drop));
                for op in ops {
                    keep(reply.response(op).map(drop));
                }
            }
        }
        errors
    };
    match catch_unwind(AssertUnwindSafe(run)) {
        Ok(errors) => errors,
        Err(_) => panic!("a decoder panicked on {what}: payload {}", hex(payload)),
    }
}

/// Encode a decoded frame again (payload only, no length prefix).
fn reencode(decoded: &Decoded) -> Bytes {
    let mut buf = BytesMut::new();
    match decoded {
        Decoded::ConnectRequest(c) => write_record_frame(&mut buf, c),
        Decoded::ConnectResponse(c) => write_record_frame(&mut buf, c),
        Decoded::Request(h, r) => r.encode_frame(h.xid, &mut buf),
        Decoded::Event(h, e) => {
            write_frame(&mut buf, |b| {
                h.encode(b);
                e.encode(b);
            });
        }
        Decoded::Reply(h, Ok(r)) => Response::encode_frame(h, Some(r), &mut buf),
        Decoded::Reply(h, Err(_)) => Response::encode_frame(h, None, &mut buf),
    }
    buf.freeze().slice(4..)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn golden_with_kinds() -> Vec<(Golden, Kind)> {
    let all: Vec<_> = golden()
        .into_iter()
        .map(|g| (g.clone(), kind(&g)))
        .collect();
    assert!(all.len() >= 40, "golden.txt has {} frames", all.len());
    all
}

// ---------------------------------------------------------------------------------------------
// (a) truncation

/// What a strictly shorter prefix (`len` bytes) of a payload that decodes to `full` must give:
/// `Some(value)` = it must decode to `value`, `None` = it must be an error.
///
/// Jute records have no terminators, so a prefix can only decode when what was cut is optional:
/// - **Connect records**: the trailing readOnly byte is optional (PROTOCOL.md §2), so dropping
///   exactly that byte decodes to the same record with `read_only: None`. Any shorter prefix cuts
///   into `passwd` or a fixed field: error.
/// - **Replies with err ≠ 0**: the body is skipped (PROTOCOL.md §1), so once the 16-byte header
///   is complete every prefix decodes to the same `Err(code)`.
/// - **addWatch replies**: the 4-byte ErrorResponse body is tolerated missing, so the bare
///   header decodes to `AddWatch(Ok)`; 1–3 body bytes are a truncated ErrorResponse.
/// - **deleteContainer requests**: the path fills the body with no length prefix, so any prefix
///   past the header is a (shorter) path if it is valid UTF-8. (No golden frame has one.)
/// - Everything else ends in a fixed-size or length-prefixed field, or (multi) a terminator
///   header, so cutting anything is an error.
fn expected_prefix(full: &Decoded, payload: &Bytes, len: usize) -> Option<Decoded> {
    assert!(len < payload.len());
    match full {
        Decoded::ConnectRequest(c) if c.read_only.is_some() && len == payload.len() - 1 => {
            Some(Decoded::ConnectRequest(ConnectRequest {
                read_only: None,
                ..c.clone()
            }))
        }
        Decoded::ConnectResponse(c) if c.read_only.is_some() && len == payload.len() - 1 => {
            Some(Decoded::ConnectResponse(ConnectResponse {
                read_only: None,
                ..c.clone()
            }))
        }
        Decoded::Reply(h, Err(code)) if len >= 16 => Some(Decoded::Reply(h.clone(), Err(*code))),
        Decoded::Reply(h, Ok(Response::AddWatch(_))) if len == 16 => Some(Decoded::Reply(
            h.clone(),
            Ok(Response::AddWatch(ErrorResponse { err: ErrorCode::Ok })),
        )),
        Decoded::Request(h, Request::DeleteContainer(_)) if len >= 8 => {
            let path = std::str::from_utf8(&payload[8..len]).ok()?.to_owned();
            Some(Decoded::Request(
                h.clone(),
                Request::DeleteContainer(DeleteContainerRequest { path }),
            ))
        }
        _ => None,
    }
}

#[test]
fn golden_frames_decode_except_the_unknown_opcode() {
    let mut failing = Vec::new();
    for (g, k) in golden_with_kinds() {
        let payload = g.payload();
        assert_eq!(
            g.bytes.len(),
            4 + payload.len(),
            "{}: length prefix mismatch",
            g.name
        );
        match decode(k, &payload) {
            Ok(d) => {
                // The golden bytes are canonical: re-encoding gives them back exactly.
                assert_eq!(reencode(&d), payload, "{} re-encodes differently", g.name);
            }
            Err(e) => failing.push((g.name.clone(), e)),
        }
    }
    // G19.req sends opcode 50, which no server knows (the reply is err -6).
    assert_eq!(
        failing,
        vec![(
            "G19.req".to_owned(),
            DecodeError::UnsupportedOpCode {
                record: "Request",
                opcode: 50
            }
        )]
    );
}

#[test]
fn every_truncation_fails_unless_only_an_optional_part_is_cut() {
    // Frame name → the strictly shorter prefix lengths that decode.
    let mut decodable_cuts: Vec<(String, Vec<usize>)> = Vec::new();
    for (g, k) in golden_with_kinds() {
        let payload = g.payload();
        let full = decode_checked(k, &payload, &g.name);
        let mut ok_lens = Vec::new();
        for len in 0..payload.len() {
            let prefix = payload.slice(..len);
            let what = format!("{} truncated to {len} of {} bytes", g.name, payload.len());
            let got = decode_checked(k, &prefix, &what);
            decode_every_way(&prefix, &what);
            match &full {
                // A frame that does not decode whole (G19.req, opcode 50) does not decode cut
                // either: a short header is truncated, a whole one names the same opcode.
                Err(_) => assert!(got.is_err(), "{what}: decoded to {got:?}"),
                Ok(full) => match expected_prefix(full, &payload, len) {
                    None => assert!(got.is_err(), "{what}: decoded to {got:?}"),
                    Some(expected) => {
                        assert_eq!(got.as_ref(), Ok(&expected), "{what}");
                        ok_lens.push(len);
                    }
                },
            }
        }
        if !ok_lens.is_empty() {
            decodable_cuts.push((g.name.clone(), ok_lens));
        }
    }
    // Exactly these cuts decode: the readOnly byte of the connect frames that have one
    // (G3.req/G3.resp have none), and the 4-byte addWatch body (20 → 16 bytes). The failed
    // replies (G9.resp, G14.bad-resp, G19.resp) are bare 16-byte headers, so every cut of them
    // cuts the header; their ignored bodies are covered by the trailing-garbage test.
    let expected: Vec<(String, Vec<usize>)> = [
        ("G1", 44),
        ("G2", 36),
        ("G4", 44),
        ("G5", 36),
        ("G17.resp.op=106", 16),
    ]
    .into_iter()
    .map(|(n, l)| (n.to_owned(), vec![l]))
    .collect();
    assert_eq!(decodable_cuts, expected);
}

#[test]
fn truncated_errors_name_the_field_that_was_cut() {
    // A few exact errors: cut in the middle of a Stat, of a path, of the multi terminator.
    let cases: &[(&str, usize, DecodeError)] = &[
        (
            "G7.resp.op=4",
            0x5d - 1,
            DecodeError::Truncated {
                at: Loc {
                    record: "Stat",
                    field: "pzxid",
                },
                needed: 8,
                available: 7,
            },
        ),
        (
            "G7.req",
            20,
            DecodeError::LengthExceedsFrame {
                at: Loc {
                    record: "GetDataRequest",
                    field: "path",
                },
                len: 0x12,
                needed: 0x12,
                available: 8,
            },
        ),
        (
            "G7.req",
            30,
            DecodeError::Truncated {
                at: Loc {
                    record: "GetDataRequest",
                    field: "watch",
                },
                needed: 1,
                available: 0,
            },
        ),
        (
            "G10.resp.op=14",
            0x40 - 9,
            DecodeError::Truncated {
                at: Loc {
                    record: "MultiResponse",
                    field: "header",
                },
                needed: 4,
                available: 0,
            },
        ),
        (
            "G13.resp.op=11",
            15,
            DecodeError::Truncated {
                at: Loc {
                    record: "ReplyHeader",
                    field: "err",
                },
                needed: 4,
                available: 3,
            },
        ),
        (
            "G13.req",
            7,
            DecodeError::Truncated {
                at: Loc {
                    record: "RequestHeader",
                    field: "opcode",
                },
                needed: 4,
                available: 3,
            },
        ),
        (
            "G3.req",
            43,
            DecodeError::LengthExceedsFrame {
                at: Loc {
                    record: "ConnectRequest",
                    field: "passwd",
                },
                len: 16,
                needed: 16,
                available: 15,
            },
        ),
        (
            "G17.resp.op=106",
            18,
            DecodeError::Truncated {
                at: Loc {
                    record: "ErrorResponse",
                    field: "err",
                },
                needed: 4,
                available: 2,
            },
        ),
    ];
    for (name, len, expected) in cases {
        let g = frame(name);
        let k = kind(&g);
        let got = decode(k, &g.payload().slice(..*len));
        assert_eq!(got.as_ref().err(), Some(expected), "{name} cut to {len}");
    }
}

// ---------------------------------------------------------------------------------------------
// (b) single-byte corruption

/// A named way to corrupt one byte.
type Corruption = (&'static str, fn(u8) -> u8);

const CORRUPTIONS: [Corruption; 5] = [
    ("xor ff", |b| b ^ 0xff),
    ("= 7f", |_| 0x7f),
    ("= 80", |_| 0x80),
    ("= ff", |_| 0xff),
    ("= 00", |_| 0x00),
];

/// Run one corrupted whole frame (length prefix included) through the frame decoder and the
/// frame's decoder. Returns the decode errors seen.
fn run_corrupted(g: &Golden, k: Kind, pos: usize, how: &str, bytes: &[u8]) -> Vec<DecodeError> {
    let what = format!("{} with byte {pos} {how}", g.name);
    let mut errors = Vec::new();
    let mut buf = BytesMut::from(bytes);
    let mut decoder = FrameDecoder::default();
    let framed = match catch_unwind(AssertUnwindSafe(|| decoder.decode(&mut buf))) {
        Ok(r) => r,
        Err(_) => panic!("frame decoder panicked on {what}"),
    };
    match framed {
        // Only a corrupted length prefix can make the frame unacceptable or incomplete.
        Err(_) | Ok(None) => assert!(pos < 4, "{what}: {framed:?}"),
        Ok(Some(payload)) => {
            if pos >= 4 {
                assert_eq!(&payload[..], &bytes[4..], "{what}");
                assert!(buf.is_empty(), "{what}");
            }
            match decode_checked(k, &payload, &what) {
                Err(e) => errors.push(e),
                Ok(d) => {
                    // Whatever a corrupted frame decodes to is a fixed point of
                    // encode → decode.
                    let again = reencode(&d);
                    assert_eq!(
                        decode_checked(k, &again, &what).as_ref(),
                        Ok(&d),
                        "{what}: re-encoding"
                    );
                }
            }
            errors.extend(decode_every_way(&payload, &what));
        }
    }
    errors
}

#[test]
fn every_single_byte_corruption_is_handled() {
    let mut positions = 0;
    for (g, k) in golden_with_kinds() {
        for pos in 0..g.bytes.len() {
            for (how, f) in CORRUPTIONS {
                let mut bytes = g.bytes.clone();
                bytes[pos] = f(bytes[pos]);
                run_corrupted(&g, k, pos, how, &bytes);
                positions += 1;
            }
        }
    }
    assert!(positions > 10_000, "{positions} corruptions");
}

// ---------------------------------------------------------------------------------------------
// (c) absurd lengths inside golden frames, (d) huge counts in tiny frames

/// A length or count field of a golden frame.
struct LengthField {
    frame: &'static str,
    /// Offset of the `int` in the payload (after the frame's length prefix).
    offset: usize,
    /// The value there in the golden frame (checks the offset).
    original: i32,
    record: &'static str,
    field: &'static str,
    /// The fewest bytes one element takes (1 for strings and buffers).
    min_len: usize,
}

const fn lf(
    frame: &'static str,
    offset: usize,
    original: i32,
    record: &'static str,
    field: &'static str,
    min_len: usize,
) -> LengthField {
    LengthField {
        frame,
        offset,
        original,
        record,
        field,
        min_len,
    }
}

const LENGTH_FIELDS: &[LengthField] = &[
    // create2: path, data, acl vector, and the ACL's Id strings.
    lf("G6.req", 8, 0x12, "CreateRequest", "path", 1),
    lf("G6.req", 30, 5, "CreateRequest", "data", 1),
    lf("G6.req", 39, 1, "CreateRequest", "acl", 12),
    lf("G6.req", 47, 5, "Id", "scheme", 1),
    lf("G6.req", 56, 6, "Id", "id", 1),
    // multiRead reply: children vector and a child name, then getData's data buffer.
    lf(
        "G12.resp.op=22",
        25,
        1,
        "GetChildrenResponse",
        "children",
        4,
    ),
    lf(
        "G12.resp.op=22",
        29,
        2,
        "GetChildrenResponse",
        "children",
        1,
    ),
    lf("G12.resp.op=22", 44, 5, "GetDataResponse", "data", 1),
    // whoAmI reply: the ClientInfo vector and both strings of both entries.
    lf("G20.resp.op=107", 16, 2, "WhoAmIResponse", "client_info", 8),
    lf("G20.resp.op=107", 20, 6, "ClientInfo", "auth_scheme", 1),
    lf("G20.resp.op=107", 30, 5, "ClientInfo", "user", 1),
    lf("G20.resp.op=107", 39, 2, "ClientInfo", "auth_scheme", 1),
    lf("G20.resp.op=107", 45, 9, "ClientInfo", "user", 1),
    // A few more: getData's data, setWatches2 vectors, auth, connect passwords.
    lf("G7.resp.op=4", 16, 5, "GetDataResponse", "data", 1),
    lf("G15.req", 16, 1, "SetWatches2", "data_watches", 4),
    lf("G15.req", 42, 1, "SetWatches2", "exist_watches", 4),
    lf("G15.req", 73, 0, "SetWatches2", "child_watches", 4),
    lf(
        "G15.req",
        103,
        1,
        "SetWatches2",
        "persistent_recursive_watches",
        4,
    ),
    lf("G14.req", 12, 6, "AuthPacket", "scheme", 1),
    lf("G14.req", 22, 12, "AuthPacket", "auth", 1),
    lf("G1", 24, 16, "ConnectRequest", "passwd", 1),
    lf("G2", 16, 16, "ConnectResponse", "passwd", 1),
];

fn with_i32(payload: &Bytes, offset: usize, value: i32) -> Bytes {
    let mut v = payload.to_vec();
    v[offset..offset + 4].copy_from_slice(&value.to_be_bytes());
    Bytes::from(v)
}

#[test]
fn huge_and_negative_lengths_in_golden_frames() {
    for f in LENGTH_FIELDS {
        let g = frame(f.frame);
        let k = kind(&g);
        let payload = g.payload();
        let original =
            i32::from_be_bytes(payload[f.offset..f.offset + 4].try_into().expect("4 bytes"));
        assert_eq!(original, f.original, "{} offset {}", f.frame, f.offset);
        let at = Loc {
            record: f.record,
            field: f.field,
        };
        let what = format!("{} {at}", f.frame);

        let huge = decode(k, &with_i32(&payload, f.offset, i32::MAX));
        assert_eq!(
            huge,
            Err(DecodeError::LengthExceedsFrame {
                at,
                len: i32::MAX,
                needed: i32::MAX as usize * f.min_len,
                available: payload.len() - f.offset - 4,
            }),
            "{what} = 0x7fffffff"
        );

        let negative = decode(k, &with_i32(&payload, f.offset, -2));
        assert_eq!(
            negative,
            Err(DecodeError::InvalidLength { at, len: -2 }),
            "{what} = -2"
        );
        assert_eq!(
            decode(k, &with_i32(&payload, f.offset, i32::MIN)),
            Err(DecodeError::InvalidLength { at, len: i32::MIN }),
            "{what} = i32::MIN"
        );

        // Sanity on the error itself: matched by variant and location.
        match huge {
            Err(DecodeError::LengthExceedsFrame { at: got, .. }) => {
                assert_eq!((got.record, got.field), (f.record, f.field));
            }
            other => panic!("{what}: {other:?}"),
        }
    }
}

fn request_payload(xid: i32, op: OpCode, body: &[u8]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i32(xid);
    b.put_i32(op.to_raw());
    b.put_slice(body);
    b.freeze()
}

fn reply_payload(body: &[u8]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i32(7);
    b.put_i64(0xaa);
    b.put_i32(0);
    b.put_slice(body);
    b.freeze()
}

/// A count of 0x7FFFFFFF in a frame of a few bytes fails before anything is allocated for it
/// (the error is raised from the count alone, against the bytes left).
#[test]
fn huge_counts_in_tiny_frames() {
    const MAX: i32 = i32::MAX;
    const N: usize = i32::MAX as usize;
    let huge = MAX.to_be_bytes();
    let at = |record, field| Loc { record, field };

    // setWatches: relativeZxid then a data_watches count, nothing else.
    let mut body = vec![0u8; 8];
    body.extend_from_slice(&huge);
    let req = request_payload(1, OpCode::SetWatches, &body);
    assert_eq!(req.len(), 20);
    assert_eq!(
        Request::decode_frame(&req),
        Err(DecodeError::LengthExceedsFrame {
            at: at("SetWatches", "data_watches"),
            len: MAX,
            needed: N * 4,
            available: 0,
        })
    );

    let replies: [(OpCode, Vec<u8>, Loc, usize, usize); 6] = [
        (
            OpCode::GetChildren,
            huge.to_vec(),
            at("GetChildrenResponse", "children"),
            4,
            0,
        ),
        (
            OpCode::GetAcl,
            [&huge[..], &[0, 0, 0, 1]].concat(),
            at("GetACLResponse", "acl"),
            12,
            4,
        ),
        (
            OpCode::WhoAmI,
            huge.to_vec(),
            at("WhoAmIResponse", "client_info"),
            8,
            0,
        ),
        (
            OpCode::GetEphemerals,
            [&huge[..], b"abc"].concat(),
            at("GetEphemeralsResponse", "ephemerals"),
            4,
            3,
        ),
        (
            OpCode::GetData,
            [&huge[..], b"abc"].concat(),
            at("GetDataResponse", "data"),
            1,
            3,
        ),
        (
            OpCode::Sasl,
            huge.to_vec(),
            at("SetSASLResponse", "token"),
            1,
            0,
        ),
    ];
    for (op, body, loc, min_len, available) in replies {
        // Through the whole pipeline: frame decoder, reply header, body.
        let mut stream = BytesMut::new();
        write_frame(&mut stream, |b| b.put_slice(&reply_payload(&body)));
        let payload = FrameDecoder::default()
            .decode(&mut stream)
            .expect("small frame")
            .expect("whole frame");
        let reply = Reply::parse(&payload).expect("header");
        assert_eq!(
            reply.response(op),
            Err(DecodeError::LengthExceedsFrame {
                at: loc,
                len: MAX,
                needed: N * min_len,
                available,
            }),
            "{op:?}"
        );
    }

    // A multi whose only op is a create with a huge ACL count.
    let mut multi = BytesMut::new();
    MultiHeader {
        op_type: OpCode::Create,
        done: false,
        err: -1,
    }
    .encode(&mut multi);
    multi.put_i32(1);
    multi.put_u8(b'/');
    multi.put_i32(0);
    multi.put_i32(MAX);
    let req = request_payload(2, OpCode::Multi, &multi);
    assert_eq!(
        Request::decode_frame(&req),
        Err(DecodeError::LengthExceedsFrame {
            at: at("CreateRequest", "acl"),
            len: MAX,
            needed: N * 12,
            available: 0,
        })
    );
}

// ---------------------------------------------------------------------------------------------
// (e) trailing garbage

const GARBAGE: [&[u8]; 4] = [&[0x00], &[0x01], &[0xde, 0xad, 0xbe, 0xef], &[0xff; 9]];

/// What a golden payload that decodes to `full` gives with `garbage` appended.
fn expected_with_garbage(full: &Decoded, garbage: &[u8]) -> Result<Decoded, DecodeError> {
    let k = garbage.len();
    let trailing = |record, trailing| Err(DecodeError::TrailingBytes { record, trailing });
    match full {
        // Without a readOnly byte, the first extra byte *is* the readOnly byte.
        Decoded::ConnectRequest(c) if c.read_only.is_none() => {
            if k == 1 {
                Ok(Decoded::ConnectRequest(ConnectRequest {
                    read_only: Some(garbage[0] != 0),
                    ..c.clone()
                }))
            } else {
                trailing("ConnectRequest", k - 1)
            }
        }
        Decoded::ConnectResponse(c) if c.read_only.is_none() => {
            if k == 1 {
                Ok(Decoded::ConnectResponse(ConnectResponse {
                    read_only: Some(garbage[0] != 0),
                    ..c.clone()
                }))
            } else {
                trailing("ConnectResponse", k - 1)
            }
        }
        Decoded::ConnectRequest(_) => trailing("ConnectRequest", k),
        Decoded::ConnectResponse(_) => trailing("ConnectResponse", k),
        Decoded::Request(_, Request::DeleteContainer(_)) => {
            panic!("no golden deleteContainer frame expected")
        }
        Decoded::Request(..) => trailing("Request", k),
        Decoded::Event(..) => trailing("WatcherEvent", k),
        // err ≠ 0: the body, garbage included, is skipped.
        Decoded::Reply(_, Err(_)) => Ok(full.clone()),
        Decoded::Reply(_, Ok(_)) => trailing("Response", k),
    }
}

#[test]
fn trailing_garbage_after_a_valid_body() {
    let mut checked = 0;
    for (g, k) in golden_with_kinds() {
        let payload = g.payload();
        let Ok(full) = decode(k, &payload) else {
            continue;
        };
        for garbage in GARBAGE {
            let mut b = BytesMut::from(&payload[..]);
            b.put_slice(garbage);
            let what = format!("{} + {}", g.name, hex(garbage));
            let got = decode_checked(k, &b.freeze(), &what);
            assert_eq!(got, expected_with_garbage(&full, garbage), "{what}");
            checked += 1;
        }
    }
    assert!(checked >= 4 * 40);
}

// ---------------------------------------------------------------------------------------------
// Error messages

fn location(e: &DecodeError) -> Option<Loc> {
    match e {
        DecodeError::Truncated { at, .. }
        | DecodeError::InvalidLength { at, .. }
        | DecodeError::LengthExceedsFrame { at, .. }
        | DecodeError::InvalidUtf8 { at } => Some(*at),
        _ => None,
    }
}

fn variant(e: &DecodeError) -> &'static str {
    match e {
        DecodeError::Truncated { .. } => "Truncated",
        DecodeError::InvalidLength { .. } => "InvalidLength",
        DecodeError::LengthExceedsFrame { .. } => "LengthExceedsFrame",
        DecodeError::InvalidUtf8 { .. } => "InvalidUtf8",
        DecodeError::TrailingBytes { .. } => "TrailingBytes",
        DecodeError::UnsupportedOpCode { .. } => "UnsupportedOpCode",
        _ => "other",
    }
}

/// Every decode error the golden truncations, corruptions, length edits and trailing garbage
/// above produce, plus a hand-made invalid UTF-8 path.
fn all_errors() -> Vec<DecodeError> {
    let mut errors = Vec::new();
    for (g, k) in golden_with_kinds() {
        let payload = g.payload();
        for len in 0..=payload.len() {
            let prefix = payload.slice(..len);
            if let Err(e) = decode(k, &prefix) {
                errors.push(e);
            }
            errors.extend(decode_every_way(&prefix, &g.name));
        }
        for pos in 0..g.bytes.len() {
            for (how, f) in CORRUPTIONS {
                let mut bytes = g.bytes.clone();
                bytes[pos] = f(bytes[pos]);
                errors.extend(run_corrupted(&g, k, pos, how, &bytes));
            }
        }
        for garbage in GARBAGE {
            let mut b = BytesMut::from(&payload[..]);
            b.put_slice(garbage);
            if let Err(e) = decode(k, &b.freeze()) {
                errors.push(e);
            }
        }
    }
    for f in LENGTH_FIELDS {
        let g = frame(f.frame);
        let k = kind(&g);
        for v in [i32::MAX, -2] {
            if let Err(e) = decode(k, &with_i32(&g.payload(), f.offset, v)) {
                errors.push(e);
            }
        }
    }
    // Invalid UTF-8 in a path.
    let bad_utf8 = request_payload(3, OpCode::Sync, &[0, 0, 0, 2, 0xc3, 0x28]);
    errors.push(Request::decode_frame(&bad_utf8).expect_err("invalid UTF-8"));
    errors
}

#[test]
fn located_errors_display_record_dot_field_first() {
    let errors = all_errors();
    let mut seen = std::collections::BTreeSet::new();
    for e in &errors {
        seen.insert(variant(e));
        if let Some(at) = location(e) {
            let msg = e.to_string();
            let want = format!("{}.{}: ", at.record, at.field);
            assert!(msg.starts_with(&want), "{e:?} displays as {msg:?}");
            assert!(!at.record.is_empty() && !at.field.is_empty(), "{e:?}");
        }
    }
    // The corruptions reach every variant that carries a location, and both location-free
    // ones.
    for v in [
        "Truncated",
        "InvalidLength",
        "LengthExceedsFrame",
        "InvalidUtf8",
        "TrailingBytes",
        "UnsupportedOpCode",
    ] {
        assert!(seen.contains(v), "no {v} error produced; saw {seen:?}");
    }
}

/// Every error's message names a record and a field, as `record.field`.
#[test]
fn every_error_display_names_record_and_field() {
    let mut offenders = std::collections::BTreeMap::new();
    for e in all_errors() {
        let msg = e.to_string();
        if !msg.contains('.') {
            offenders.entry(variant(&e)).or_insert(msg);
        }
    }
    assert!(
        offenders.is_empty(),
        "errors whose Display names no field (variant → example): {offenders:#?}"
    );
}
