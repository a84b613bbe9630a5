//! Property tests: every record, message and typed enum survives encode → decode unchanged,
//! decoding then re-encoding gives back the same bytes, frames survive any chunking of the
//! stream, and the frame decoder rejects bad length prefixes.

mod strategies;

use std::fmt::Debug;

use bytes::{BufMut, Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;

use strategies::*;
use zk_proto::*;

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(256)
}

fn loc() -> Loc {
    Loc {
        record: "Test",
        field: "value",
    }
}

// ---------------------------------------------------------------------------------------------
// Records

/// record → bytes → record, and the decoded record re-encodes to the very same bytes.
fn check_record<R: Record + PartialEq + Debug>(value: &R) -> Result<(), TestCaseError> {
    let bytes = value.to_bytes();
    prop_assert_eq!(
        value.encoded_len(),
        bytes.len(),
        "encoded_len of {:?}",
        value
    );
    prop_assert_eq!(value.field_len(), bytes.len());
    prop_assert!(
        bytes.len() >= R::MIN_LEN,
        "{} shorter than MIN_LEN",
        R::NAME
    );

    // encode appends after what is already in the buffer.
    let mut buf = BytesMut::from(&b"prefix"[..]);
    value.encode(&mut buf);
    prop_assert_eq!(&buf[6..], &bytes[..]);

    let decoded = R::decode(&bytes)?;
    prop_assert_eq!(&decoded, value);
    prop_assert_eq!(decoded.to_bytes(), bytes.clone());

    // Record::read leaves the reader right after the record.
    let mut extended = BytesMut::from(&bytes[..]);
    extended.put_slice(b"\x01\x02\x03");
    let extended = extended.freeze();
    let mut r = Reader::new(&extended);
    let read = R::read(&mut r)?;
    if !matches!(
        R::NAME,
        "ConnectRequest" | "ConnectResponse" | "DeleteContainerRequest"
    ) {
        prop_assert_eq!(&read, value);
        prop_assert_eq!(r.remaining(), 3);
        // … and decode, which must consume everything, reports the leftover bytes.
        prop_assert_eq!(
            R::decode(&extended),
            Err(DecodeError::TrailingBytes {
                record: R::NAME,
                trailing: 3
            })
        );
    }
    Ok(())
}

/// One edit of an encoding.
#[derive(Debug, Clone)]
enum Mutation {
    Set(Index, u8),
    Truncate(Index),
    Insert(Index, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
    ]
}

fn mutate(bytes: &[u8], m: &Mutation) -> Bytes {
    let mut v = bytes.to_vec();
    match m {
        Mutation::Set(i, b) if !v.is_empty() => {
            let i = i.index(v.len());
            v[i] = *b;
        }
        Mutation::Truncate(i) if !v.is_empty() => v.truncate(i.index(v.len())),
        Mutation::Insert(i, b) => v.insert(i.index(v.len() + 1), *b),
        _ => {}
    }
    Bytes::from(v)
}

/// Whatever a mutated encoding decodes to (if anything) is a fixed point of encode → decode.
fn check_mutated<R: Record + PartialEq + Debug>(
    value: &R,
    m: &Mutation,
) -> Result<(), TestCaseError> {
    let bytes = mutate(&value.to_bytes(), m);
    if let Ok(decoded) = R::decode(&bytes) {
        let again = decoded.to_bytes();
        prop_assert_eq!(decoded.encoded_len(), again.len());
        prop_assert_eq!(R::decode(&again)?, decoded);
    }
    Ok(())
}

macro_rules! record_roundtrips {
    ($($name:ident: $ty:ty = $strategy:expr;)+) => {
        proptest! {
            #![proptest_config(config())]
            $(
                #[test]
                fn $name(value in $strategy, m in mutation()) {
                    check_record::<$ty>(&value)?;
                    check_mutated::<$ty>(&value, &m)?;
                }
            )+
        }
    };
}

record_roundtrips! {
    record_stat: Stat = stat();
    record_id: Id = id();
    record_acl: Acl = acl();
    record_request_header: RequestHeader = request_header();
    record_reply_header: ReplyHeader = reply_header();
    record_create_request: CreateRequest = create_request();
    record_create_ttl_request: CreateTtlRequest = create_ttl_request();
    record_create_response: CreateResponse = create_response();
    record_create2_response: Create2Response = create2_response();
    record_delete_request: DeleteRequest = delete_request();
    record_check_version_request: CheckVersionRequest = check_version_request();
    record_exists_request: ExistsRequest = exists_request();
    record_exists_response: ExistsResponse = exists_response();
    record_get_data_request: GetDataRequest = get_data_request();
    record_get_data_response: GetDataResponse = get_data_response();
    record_set_data_request: SetDataRequest = set_data_request();
    record_set_data_response: SetDataResponse = set_data_response();
    record_get_acl_request: GetAclRequest = get_acl_request();
    record_get_acl_response: GetAclResponse = get_acl_response();
    record_set_acl_request: SetAclRequest = set_acl_request();
    record_set_acl_response: SetAclResponse = set_acl_response();
    record_get_children_request: GetChildrenRequest = get_children_request();
    record_get_children_response: GetChildrenResponse = get_children_response();
    record_get_children2_request: GetChildren2Request = get_children2_request();
    record_get_children2_response: GetChildren2Response = get_children2_response();
    record_sync_request: SyncRequest = sync_request();
    record_sync_response: SyncResponse = sync_response();
    record_reconfig_request: ReconfigRequest = reconfig_request();
    record_check_watches_request: CheckWatchesRequest = check_watches_request();
    record_remove_watches_request: RemoveWatchesRequest = remove_watches_request();
    record_add_watch_request: AddWatchRequest = add_watch_request();
    record_error_response: ErrorResponse = error_response();
    record_set_watches: SetWatches = set_watches();
    record_set_watches2: SetWatches2 = set_watches2();
    record_watcher_event: WatcherEvent = watcher_event();
    record_auth_packet: AuthPacket = auth_packet();
    record_get_sasl_request: GetSaslRequest = get_sasl_request();
    record_set_sasl_response: SetSaslResponse = set_sasl_response();
    record_get_ephemerals_request: GetEphemeralsRequest = get_ephemerals_request();
    record_get_ephemerals_response: GetEphemeralsResponse = get_ephemerals_response();
    record_get_all_children_number_request: GetAllChildrenNumberRequest =
        get_all_children_number_request();
    record_get_all_children_number_response: GetAllChildrenNumberResponse =
        get_all_children_number_response();
    record_client_info: ClientInfo = client_info();
    record_who_am_i_response: WhoAmIResponse = who_am_i_response();
    record_multi_header: MultiHeader = multi_header();
    record_delete_container_request: DeleteContainerRequest = delete_container_request();
    record_connect_request: ConnectRequest = connect_request();
    record_connect_response: ConnectResponse = connect_response();
    record_multi_request: MultiRequest = multi_request();
    record_multi_response: MultiResponse = multi_response();
}

// ---------------------------------------------------------------------------------------------
// Connect records, with and without the trailing readOnly byte

proptest! {
    #![proptest_config(config())]

    #[test]
    fn connect_request_without_read_only(req in connect_request_with(Just(None))) {
        check_record(&req)?;
        let bytes = req.to_bytes();
        prop_assert_eq!(bytes.len(), 28 + req.passwd.len());
        // One more byte is the readOnly flag (any non-zero byte is true) …
        for (byte, flag) in [(0u8, false), (1, true), (0x80, true)] {
            let mut b = BytesMut::from(&bytes[..]);
            b.put_u8(byte);
            let with = ConnectRequest::decode(&b.freeze())?;
            prop_assert_eq!(with, ConnectRequest { read_only: Some(flag), ..req.clone() });
        }
        // … two more are trailing garbage.
        let mut b = BytesMut::from(&bytes[..]);
        b.put_slice(&[1, 2]);
        prop_assert_eq!(
            ConnectRequest::decode(&b.freeze()),
            Err(DecodeError::TrailingBytes { record: "ConnectRequest", trailing: 1 })
        );
    }

    #[test]
    fn connect_request_with_read_only(req in connect_request_with(any::<bool>().prop_map(Some))) {
        check_record(&req)?;
        let bytes = req.to_bytes();
        prop_assert_eq!(bytes.len(), 29 + req.passwd.len());
        // Without its last byte it is the same request with no readOnly byte.
        let short = ConnectRequest::decode(&bytes.slice(..bytes.len() - 1))?;
        prop_assert_eq!(short, ConnectRequest { read_only: None, ..req.clone() });
        let mut b = BytesMut::from(&bytes[..]);
        b.put_u8(0);
        prop_assert_eq!(
            ConnectRequest::decode(&b.freeze()),
            Err(DecodeError::TrailingBytes { record: "ConnectRequest", trailing: 1 })
        );
    }

    #[test]
    fn connect_response_without_read_only(resp in connect_response_with(Just(None))) {
        check_record(&resp)?;
        let bytes = resp.to_bytes();
        prop_assert_eq!(bytes.len(), 20 + resp.passwd.len());
        for (byte, flag) in [(0u8, false), (1, true), (0xff, true)] {
            let mut b = BytesMut::from(&bytes[..]);
            b.put_u8(byte);
            let with = ConnectResponse::decode(&b.freeze())?;
            prop_assert_eq!(with, ConnectResponse { read_only: Some(flag), ..resp.clone() });
        }
        let mut b = BytesMut::from(&bytes[..]);
        b.put_slice(&[1, 2, 3]);
        prop_assert_eq!(
            ConnectResponse::decode(&b.freeze()),
            Err(DecodeError::TrailingBytes { record: "ConnectResponse", trailing: 2 })
        );
    }

    #[test]
    fn connect_response_with_read_only(
        resp in connect_response_with(any::<bool>().prop_map(Some)),
    ) {
        check_record(&resp)?;
        let bytes = resp.to_bytes();
        prop_assert_eq!(bytes.len(), 21 + resp.passwd.len());
        let short = ConnectResponse::decode(&bytes.slice(..bytes.len() - 1))?;
        prop_assert_eq!(short, ConnectResponse { read_only: None, ..resp.clone() });
    }

    /// The handshake frames have no header: write_record_frame is a length prefix + record.
    #[test]
    fn connect_frames(req in connect_request(), resp in connect_response()) {
        let mut buf = BytesMut::new();
        write_record_frame(&mut buf, &req);
        write_record_frame(&mut buf, &resp);
        let mut dec = FrameDecoder::default();
        let f1 = dec.decode(&mut buf)?.expect("first frame");
        let f2 = dec.decode(&mut buf)?.expect("second frame");
        prop_assert!(buf.is_empty());
        prop_assert_eq!(ConnectRequest::decode(&f1)?, req);
        prop_assert_eq!(ConnectResponse::decode(&f2)?, resp);
    }
}

// ---------------------------------------------------------------------------------------------
// Typed enums and Perms (fields, not records)

fn check_field<F: Field + PartialEq + Debug>(value: &F) -> Result<(), TestCaseError> {
    let mut buf = BytesMut::new();
    value.write_field(&mut buf);
    prop_assert_eq!(buf.len(), value.field_len());
    prop_assert_eq!(buf.len(), F::MIN_LEN);
    let bytes = buf.freeze();
    let mut r = Reader::new(&bytes);
    let back = F::read_field(&mut r, loc())?;
    prop_assert_eq!(r.remaining(), 0);
    prop_assert_eq!(&back, value);
    Ok(())
}

macro_rules! enum_roundtrips {
    ($($name:ident: $ty:ident = $strategy:expr;)+) => {
        proptest! {
            #![proptest_config(config())]
            $(
                #[test]
                fn $name(value in $strategy, raw in any::<i32>()) {
                    check_field(&value)?;
                    prop_assert_eq!($ty::from_raw(value.to_raw()), value);
                    prop_assert_eq!(i32::from(value), value.to_raw());
                    prop_assert_eq!($ty::from(value.to_raw()), value);
                    // Unknown only ever holds an unnamed code.
                    if let $ty::Unknown(k) = value {
                        prop_assert!($ty::KNOWN.iter().all(|v| v.to_raw() != k));
                    } else {
                        prop_assert!($ty::KNOWN.contains(&value));
                    }
                    // Any raw code: from_raw then to_raw is the identity.
                    prop_assert_eq!($ty::from_raw(raw).to_raw(), raw);
                }
            )+
        }
    };
}

enum_roundtrips! {
    enum_opcode: OpCode = opcode();
    enum_error_code: ErrorCode = error_code();
    enum_event_type: EventType = event_type();
    enum_keeper_state: KeeperState = keeper_state();
    enum_create_mode: CreateMode = create_mode();
    enum_watcher_type: WatcherType = watcher_type();
    enum_add_watch_mode: AddWatchMode = add_watch_mode();
}

macro_rules! known_values_are_distinct {
    ($($ty:ident),+) => {
        $(
            for (i, v) in $ty::KNOWN.iter().enumerate() {
                assert!(!matches!(v, $ty::Unknown(_)), "{v:?} in KNOWN");
                assert_eq!($ty::from_raw(v.to_raw()), *v);
                for w in &$ty::KNOWN[i + 1..] {
                    assert_ne!(v.to_raw(), w.to_raw(), "{v:?} and {w:?} share a code");
                }
            }
        )+
    };
}

#[test]
fn enum_known_values_round_trip_and_are_distinct() {
    known_values_are_distinct!(
        OpCode,
        ErrorCode,
        EventType,
        KeeperState,
        CreateMode,
        WatcherType,
        AddWatchMode
    );
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn field_perms(p in perms()) {
        check_field(&p)?;
    }
}

// ---------------------------------------------------------------------------------------------
// MultiOp and MultiResult, each variant inside a multi record

macro_rules! multi_op_roundtrips {
    ($($name:ident => $op:ident,)+) => {
        proptest! {
            #![proptest_config(config())]
            $(
                #[test]
                fn $name(op in multi_op_for(OpCode::$op), others in small_vec(multi_op())) {
                    prop_assert_eq!(op.opcode(), OpCode::$op);
                    check_record(&MultiRequest { ops: vec![op.clone()] })?;
                    let mut ops = others;
                    ops.push(op);
                    check_record(&MultiRequest { ops })?;
                }
            )+
        }
    };
}

multi_op_roundtrips! {
    multi_op_create => Create,
    multi_op_create2 => Create2,
    multi_op_create_container => CreateContainer,
    multi_op_create_ttl => CreateTtl,
    multi_op_delete => Delete,
    multi_op_check => Check,
    multi_op_set_data => SetData,
    multi_op_get_children => GetChildren,
    multi_op_get_data => GetData,
}

macro_rules! multi_result_roundtrips {
    ($($name:ident => $kind:ident,)+) => {
        proptest! {
            #![proptest_config(config())]
            $(
                #[test]
                fn $name(result in multi_result_for(OpCode::$kind), others in small_vec(multi_result())) {
                    check_record(&MultiResponse { results: vec![result.clone()] })?;
                    let mut results = others;
                    results.push(result);
                    check_record(&MultiResponse { results })?;
                }
            )+
        }
    };
}

multi_result_roundtrips! {
    multi_result_create => Create,
    multi_result_create2 => Create2,
    multi_result_delete => Delete,
    multi_result_check => Check,
    multi_result_set_data => SetData,
    multi_result_get_children => GetChildren,
    multi_result_get_data => GetData,
    multi_result_error => Error,
}

#[test]
fn empty_multi_is_just_the_terminator() {
    let req = MultiRequest { ops: vec![] }.to_bytes();
    let resp = MultiResponse { results: vec![] }.to_bytes();
    let terminator = [0xff, 0xff, 0xff, 0xff, 0x01, 0xff, 0xff, 0xff, 0xff];
    assert_eq!(&req[..], &terminator);
    assert_eq!(&resp[..], &terminator);
}

// ---------------------------------------------------------------------------------------------
// Request frames, every variant

fn check_request_frame(xid: i32, request: &Request) -> Result<(), TestCaseError> {
    let mut buf = BytesMut::new();
    request.encode_frame(xid, &mut buf);
    prop_assert_eq!(buf.len(), 4 + request.frame_len());
    prop_assert_eq!(request.frame_len(), 8 + request.body_len());

    let mut dec = FrameDecoder::default();
    let frame = dec.decode(&mut buf)?.expect("a whole frame");
    prop_assert!(buf.is_empty());
    let (header, decoded) = Request::decode_frame(&frame)?;
    prop_assert_eq!(
        header,
        RequestHeader {
            xid,
            opcode: request.opcode()
        }
    );
    prop_assert_eq!(&decoded, request);

    // The body alone, through read_body, is the same request and fills the body exactly.
    let body = frame.slice(8..);
    let mut written = BytesMut::new();
    request.write_body(&mut written);
    prop_assert_eq!(&written[..], &body[..]);
    let mut r = Reader::new(&body);
    prop_assert_eq!(&Request::read_body(request.opcode(), &mut r)?, request);
    prop_assert_eq!(r.remaining(), 0);
    Ok(())
}

macro_rules! request_frame_roundtrips {
    ($($name:ident => $op:ident,)+) => {
        proptest! {
            #![proptest_config(config())]
            $(
                #[test]
                fn $name(xid in any::<i32>(), request in request_for(OpCode::$op)) {
                    prop_assert_eq!(request.opcode(), OpCode::$op);
                    check_request_frame(xid, &request)?;
                }
            )+
        }
    };
}

request_frame_roundtrips! {
    request_create => Create,
    request_create2 => Create2,
    request_create_container => CreateContainer,
    request_create_ttl => CreateTtl,
    request_delete => Delete,
    request_exists => Exists,
    request_get_data => GetData,
    request_set_data => SetData,
    request_get_acl => GetAcl,
    request_set_acl => SetAcl,
    request_get_children => GetChildren,
    request_sync => Sync,
    request_get_children2 => GetChildren2,
    request_check => Check,
    request_multi => Multi,
    request_reconfig => Reconfig,
    request_check_watches => CheckWatches,
    request_remove_watches => RemoveWatches,
    request_delete_container => DeleteContainer,
    request_multi_read => MultiRead,
    request_auth => Auth,
    request_set_watches => SetWatches,
    request_sasl => Sasl,
    request_get_ephemerals => GetEphemerals,
    request_get_all_children_number => GetAllChildrenNumber,
    request_set_watches2 => SetWatches2,
    request_add_watch => AddWatch,
    request_ping => Ping,
    request_who_am_i => WhoAmI,
    request_close_session => CloseSession,
}

/// The strategies cover exactly the opcodes the codec has a request (and response) for.
#[test]
fn strategies_cover_every_decodable_opcode() {
    let empty = Bytes::new();
    for op in OpCode::KNOWN.iter().copied().chain([OpCode::Unknown(50)]) {
        let unsupported = |e: &DecodeError| matches!(e, DecodeError::UnsupportedOpCode { .. });

        let req = Request::read_body(op, &mut Reader::new(&empty));
        assert_eq!(
            req.as_ref().is_err_and(unsupported),
            !REQUEST_OPS.contains(&op),
            "request {op:?}: {req:?}"
        );
        let resp = Response::read_body(op, &mut Reader::new(&empty));
        assert_eq!(
            resp.as_ref().is_err_and(unsupported),
            !RESPONSE_OPS.contains(&op),
            "response {op:?}: {resp:?}"
        );

        // A multi with one header of this type and nothing after it.
        let mut item = BytesMut::new();
        MultiHeader {
            op_type: op,
            done: false,
            err: -1,
        }
        .encode(&mut item);
        let item = item.freeze();
        let ops = MultiRequest::decode(&item);
        assert_eq!(
            ops.as_ref().is_err_and(unsupported),
            !MULTI_OPS.contains(&op),
            "multi op {op:?}: {ops:?}"
        );
        let results = MultiResponse::decode(&item);
        let result_type = matches!(
            op,
            OpCode::CreateContainer | OpCode::CreateTtl // decoded as Create2 results
        ) || MULTI_RESULTS.contains(&op);
        assert_eq!(
            results.as_ref().is_err_and(unsupported),
            !result_type,
            "multi result {op:?}: {results:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Response frames, every variant

fn check_response_frame(
    header: &ReplyHeader,
    response: &Response,
    op: OpCode,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(header.err, ErrorCode::Ok);
    let mut buf = BytesMut::new();
    Response::encode_frame(header, Some(response), &mut buf);
    prop_assert_eq!(buf.len(), 4 + 16 + response.body_len());

    let mut dec = FrameDecoder::default();
    let frame = dec.decode(&mut buf)?.expect("a whole frame");
    prop_assert!(buf.is_empty());
    let reply = Reply::parse(&frame)?;
    prop_assert_eq!(&reply.header, header);
    prop_assert_eq!(reply.body.len(), response.body_len());
    prop_assert_eq!(reply.is_notification(), header.xid == -1);
    prop_assert_eq!(reply.response(op)?, Ok(response.clone()));
    prop_assert_eq!(&Response::decode(op, &reply.body)?, response);

    let mut written = BytesMut::new();
    response.write_body(&mut written);
    prop_assert_eq!(&written[..], &reply.body[..]);
    Ok(())
}

macro_rules! response_frame_roundtrips {
    ($($name:ident => $op:ident,)+) => {
        proptest! {
            #![proptest_config(config())]
            $(
                #[test]
                fn $name(header in ok_reply_header(), response in response_for(OpCode::$op)) {
                    prop_assert_eq!(answering_op(&response), OpCode::$op);
                    for op in answering_ops(&response) {
                        check_response_frame(&header, &response, *op)?;
                    }
                }
            )+
        }
    };
}

// One test per Response variant, named after it, keyed by the opcode answering_op gives.
response_frame_roundtrips! {
    response_empty => Delete,
    response_create => Create,
    response_create2 => Create2,
    response_exists => Exists,
    response_get_data => GetData,
    response_set_data => SetData,
    response_get_acl => GetAcl,
    response_set_acl => SetAcl,
    response_get_children => GetChildren,
    response_get_children2 => GetChildren2,
    response_sync => Sync,
    response_multi => Multi,
    response_reconfig => Reconfig,
    response_add_watch => AddWatch,
    response_sasl => Sasl,
    response_get_ephemerals => GetEphemerals,
    response_get_all_children_number => GetAllChildrenNumber,
    response_who_am_i => WhoAmI,
}

proptest! {
    #![proptest_config(config())]

    /// Every opcode with a reply, through the union strategy.
    #[test]
    fn response_any_opcode(header in ok_reply_header(), (op, response) in response_with_op()) {
        prop_assert!(answering_ops(&response).contains(&op));
        check_response_frame(&header, &response, op)?;
    }

    /// The addWatch body is always the 4-byte ErrorResponse; a bare header also decodes.
    #[test]
    fn response_add_watch_body_is_four_bytes(header in ok_reply_header(), err in error_code()) {
        let response = Response::AddWatch(ErrorResponse { err });
        prop_assert_eq!(response.body_len(), 4);
        check_response_frame(&header, &response, OpCode::AddWatch)?;
        let mut buf = BytesMut::new();
        Response::encode_frame(&header, None, &mut buf);
        let frame = FrameDecoder::default().decode(&mut buf)?.expect("frame");
        prop_assert_eq!(
            Reply::parse(&frame)?.response(OpCode::AddWatch)?,
            Ok(Response::AddWatch(ErrorResponse { err: ErrorCode::Ok }))
        );
    }

    /// With a non-zero err in the header the body is ignored, whatever it holds.
    #[test]
    fn failed_reply_ignores_body(
        xid in any::<i32>(),
        zxid in any::<i64>(),
        err in failure_code(),
        op in opcode(),
        body in prop_oneof![
            Just(None),
            response().prop_map(Some),
        ],
        garbage in vec(any::<u8>(), 0..16),
    ) {
        let header = ReplyHeader { xid, zxid, err };
        let mut buf = BytesMut::new();
        Response::encode_frame(&header, body.as_ref(), &mut buf);
        write_frame(&mut buf, |b| {
            header.encode(b);
            b.put_slice(&garbage);
        });
        let mut dec = FrameDecoder::default();
        for _ in 0..2 {
            let frame = dec.decode(&mut buf)?.expect("frame");
            let reply = Reply::parse(&frame)?;
            prop_assert_eq!(&reply.header, &header);
            prop_assert_eq!(reply.response(op)?, Err(err));
        }
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn notification_frames(zxid in any::<i64>(), event in watcher_event()) {
        let mut buf = BytesMut::new();
        Reply::encode_notification(zxid, &event, &mut buf);
        prop_assert_eq!(buf.len(), 4 + 16 + event.encoded_len());
        let frame = FrameDecoder::default().decode(&mut buf)?.expect("frame");
        prop_assert!(buf.is_empty());
        let reply = Reply::parse(&frame)?;
        prop_assert!(reply.is_notification());
        prop_assert_eq!(&reply.header, &ReplyHeader { xid: -1, zxid, err: ErrorCode::Ok });
        prop_assert_eq!(reply.watcher_event()?, event);
    }
}

// ---------------------------------------------------------------------------------------------
// Framing under arbitrary chunking

/// A frame of either direction, with what it must decode back to.
#[derive(Debug, Clone)]
enum Frame {
    ConnectRequest(ConnectRequest),
    ConnectResponse(ConnectResponse),
    Request(i32, Request),
    Reply(ReplyHeader, OpCode, Response),
    Failed(ReplyHeader),
    Notification(i64, WatcherEvent),
}

fn any_frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        connect_request().prop_map(Frame::ConnectRequest),
        connect_response().prop_map(Frame::ConnectResponse),
        (any::<i32>(), request()).prop_map(|(x, r)| Frame::Request(x, r)),
        (ok_reply_header(), response_with_op()).prop_map(|(h, (op, r))| Frame::Reply(h, op, r)),
        (any::<i32>(), any::<i64>(), failure_code())
            .prop_map(|(xid, zxid, err)| Frame::Failed(ReplyHeader { xid, zxid, err })),
        (any::<i64>(), watcher_event()).prop_map(|(z, e)| Frame::Notification(z, e)),
    ]
}

fn encode_frame(frame: &Frame, buf: &mut BytesMut) {
    match frame {
        Frame::ConnectRequest(c) => write_record_frame(buf, c),
        Frame::ConnectResponse(c) => write_record_frame(buf, c),
        Frame::Request(xid, r) => r.encode_frame(*xid, buf),
        Frame::Reply(h, _, r) => Response::encode_frame(h, Some(r), buf),
        Frame::Failed(h) => Response::encode_frame(h, None, buf),
        Frame::Notification(zxid, e) => Reply::encode_notification(*zxid, e, buf),
    }
}

fn check_decoded(frame: &Frame, payload: &Bytes) -> Result<(), TestCaseError> {
    match frame {
        Frame::ConnectRequest(c) => prop_assert_eq!(&ConnectRequest::decode(payload)?, c),
        Frame::ConnectResponse(c) => prop_assert_eq!(&ConnectResponse::decode(payload)?, c),
        Frame::Request(xid, r) => {
            let (h, d) = Request::decode_frame(payload)?;
            prop_assert_eq!(h.xid, *xid);
            prop_assert_eq!(&d, r);
        }
        Frame::Reply(h, op, r) => {
            let reply = Reply::parse(payload)?;
            prop_assert_eq!(&reply.header, h);
            prop_assert_eq!(reply.response(*op)?, Ok(r.clone()));
        }
        Frame::Failed(h) => {
            let reply = Reply::parse(payload)?;
            prop_assert_eq!(&reply.header, h);
            prop_assert!(reply.body.is_empty());
        }
        Frame::Notification(zxid, e) => {
            let reply = Reply::parse(payload)?;
            prop_assert_eq!(reply.header.zxid, *zxid);
            prop_assert!(reply.is_notification());
            prop_assert_eq!(&reply.watcher_event()?, e);
        }
    }
    Ok(())
}

/// Feed `stream` to a fresh decoder in chunks of the given sizes (cycled), collecting frames.
fn feed(
    stream: &[u8],
    chunks: impl Iterator<Item = usize>,
) -> Result<(Vec<Bytes>, BytesMut), FrameError> {
    let mut dec = FrameDecoder::default();
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut pos = 0;
    // Decoding an empty buffer needs more bytes.
    assert_eq!(dec.decode(&mut buf), Ok(None));
    for n in chunks {
        if pos >= stream.len() {
            break;
        }
        let end = (pos + n.max(1)).min(stream.len());
        buf.extend_from_slice(&stream[pos..end]);
        pos = end;
        while let Some(frame) = dec.decode(&mut buf)? {
            frames.push(frame);
        }
    }
    assert_eq!(pos, stream.len(), "the chunk iterator ran out");
    Ok((frames, buf))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn framing_under_arbitrary_chunking(
        frames in vec(any_frame(), 0..6),
        sizes in vec(1usize..=48, 1..12),
        cuts in vec(any::<Index>(), 0..8),
    ) {
        let mut stream = BytesMut::new();
        let mut expected = Vec::new();
        for f in &frames {
            let mut one = BytesMut::new();
            encode_frame(f, &mut one);
            let len = u32::from_be_bytes([one[0], one[1], one[2], one[3]]) as usize;
            prop_assert_eq!(len + 4, one.len());
            expected.push(Bytes::copy_from_slice(&one[4..]));
            // Appending to a buffer that already holds frames gives the same bytes.
            let before = stream.len();
            encode_frame(f, &mut stream);
            prop_assert_eq!(&stream[before..], &one[..]);
        }
        let stream = stream.freeze();
        let total = stream.len().max(1);

        // Chunkings: 1-byte, all at once, the given sizes cycled, and random cut points.
        let mut cut_points: Vec<usize> = cuts.iter().map(|c| c.index(total + 1)).collect();
        cut_points.push(0);
        cut_points.push(stream.len());
        cut_points.sort_unstable();
        cut_points.dedup();
        let cut_sizes: Vec<usize> = cut_points.windows(2).map(|w| w[1] - w[0]).collect();

        let chunkings: Vec<(&str, Box<dyn Iterator<Item = usize>>)> = vec![
            ("1-byte", Box::new(std::iter::repeat(1))),
            ("all at once", Box::new(std::iter::once(total))),
            ("cycled sizes", Box::new(sizes.clone().into_iter().cycle())),
            ("cut points", Box::new(cut_sizes.into_iter().chain(std::iter::once(total)))),
        ];
        for (how, chunks) in chunkings {
            let (got, leftover) = feed(&stream, chunks)?;
            prop_assert_eq!(&got, &expected, "chunking: {}", how);
            prop_assert!(leftover.is_empty(), "chunking {}: {} bytes left", how, leftover.len());
        }
        for (f, payload) in frames.iter().zip(&expected) {
            check_decoded(f, payload)?;
        }
    }

    /// A partial frame stays in the buffer untouched until the rest arrives.
    #[test]
    fn partial_frame_is_kept(frame in any_frame(), cut in any::<Index>()) {
        let mut whole = BytesMut::new();
        encode_frame(&frame, &mut whole);
        let cut = cut.index(whole.len());
        let mut buf = BytesMut::from(&whole[..cut]);
        let mut dec = FrameDecoder::default();
        prop_assert_eq!(dec.decode(&mut buf)?, None);
        prop_assert_eq!(&buf[..], &whole[..cut]);
        buf.extend_from_slice(&whole[cut..]);
        let payload = dec.decode(&mut buf)?.expect("complete now");
        prop_assert!(buf.is_empty());
        prop_assert_eq!(&payload[..], &whole[4..]);
    }
}

// ---------------------------------------------------------------------------------------------
// Length prefixes the frame decoder must reject

fn prefix(len: i32, extra: &[u8]) -> BytesMut {
    let mut buf = BytesMut::new();
    buf.put_i32(len);
    buf.put_slice(extra);
    buf
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn frame_negative_length_rejected(
        len in i32::MIN..0,
        max in prop_oneof![Just(DEFAULT_MAX_FRAME), 0usize..=(1 << 24), Just(usize::MAX)],
        extra in vec(any::<u8>(), 0..16),
    ) {
        let mut buf = prefix(len, &extra);
        prop_assert_eq!(
            FrameDecoder::new(max).decode(&mut buf),
            Err(FrameError::NegativeLength { len })
        );
    }

    #[test]
    fn frame_length_over_max_rejected(
        max in prop_oneof![Just(DEFAULT_MAX_FRAME), 0usize..=(1 << 24)],
        over in any::<u32>(),
        extra in vec(any::<u8>(), 0..16),
    ) {
        // max < len <= i32::MAX
        let len = max + 1 + (over as usize) % (i32::MAX as usize - max);
        let raw = i32::try_from(len).expect("fits");
        let mut buf = prefix(raw, &extra);
        prop_assert_eq!(
            FrameDecoder::new(max).decode(&mut buf),
            Err(FrameError::TooLarge { len, max })
        );
    }

    #[test]
    fn frame_length_within_max_waits_for_payload(
        (max, len) in (0usize..=4096).prop_flat_map(|max| (Just(max), 0..=max)),
        have in any::<Index>(),
    ) {
        let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let have = have.index(len + 1);
        let raw = i32::try_from(len).expect("fits");
        let mut buf = prefix(raw, &payload[..have]);
        let mut dec = FrameDecoder::new(max);
        prop_assert_eq!(dec.max_frame(), max);
        if have < len {
            prop_assert_eq!(dec.decode(&mut buf)?, None);
            prop_assert_eq!(buf.len(), 4 + have);
            buf.put_slice(&payload[have..]);
        }
        prop_assert_eq!(dec.decode(&mut buf)?, Some(Bytes::from(payload)));
        prop_assert!(buf.is_empty());
    }
}

#[test]
fn frame_decoder_limits() {
    let mut dec = FrameDecoder::default();
    assert_eq!(dec.max_frame(), DEFAULT_MAX_FRAME);
    assert_eq!(DEFAULT_MAX_FRAME, 0xFFFFF);

    // Fewer than 4 bytes is never an error, even if they start a negative or huge prefix.
    for partial in [&[][..], &[0xff], &[0xff, 0xff], &[0x7f, 0xff, 0xff]] {
        let mut buf = BytesMut::from(partial);
        assert_eq!(dec.decode(&mut buf), Ok(None));
        assert_eq!(&buf[..], partial);
    }

    let cases: [(i32, Result<Option<Bytes>, FrameError>); 7] = [
        (0, Ok(Some(Bytes::new()))),
        (0xFFFFF, Ok(None)),
        (
            0x100000,
            Err(FrameError::TooLarge {
                len: 0x100000,
                max: 0xFFFFF,
            }),
        ),
        (
            0x100001,
            Err(FrameError::TooLarge {
                len: 0x100001,
                max: 0xFFFFF,
            }),
        ),
        (
            i32::MAX,
            Err(FrameError::TooLarge {
                len: i32::MAX as usize,
                max: 0xFFFFF,
            }),
        ),
        (-1, Err(FrameError::NegativeLength { len: -1 })),
        (i32::MIN, Err(FrameError::NegativeLength { len: i32::MIN })),
    ];
    for (len, expected) in cases {
        let mut buf = prefix(len, &[]);
        assert_eq!(dec.decode(&mut buf), expected, "length {len:#x}");
    }

    // A zero maximum still accepts empty frames.
    let mut zero = FrameDecoder::new(0);
    assert_eq!(zero.decode(&mut prefix(0, &[])), Ok(Some(Bytes::new())));
    assert_eq!(
        zero.decode(&mut prefix(1, &[0])),
        Err(FrameError::TooLarge { len: 1, max: 0 })
    );

    assert_eq!(check_frame_len(0xFFFFF, DEFAULT_MAX_FRAME), Ok(()));
    assert_eq!(
        check_frame_len(0x100000, DEFAULT_MAX_FRAME),
        Err(FrameError::TooLarge {
            len: 0x100000,
            max: DEFAULT_MAX_FRAME
        })
    );

    // The frame errors' messages carry the numbers.
    assert_eq!(
        FrameError::NegativeLength { len: -2 }.to_string(),
        "frame length -2 is negative"
    );
    assert!(
        FrameError::TooLarge { len: 5, max: 4 }
            .to_string()
            .contains("exceeds")
    );
}
