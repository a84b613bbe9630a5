//! multi (14) and multiRead (22) records (PROTOCOL.md §6).

use bytes::BytesMut;

use crate::error::{DecodeError, Loc};
use crate::records::{
    CheckVersionRequest, Create2Response, CreateRequest, CreateResponse, CreateTtlRequest,
    DeleteRequest, ErrorResponse, GetChildrenRequest, GetChildrenResponse, GetDataRequest,
    GetDataResponse, MultiHeader, SetDataRequest, SetDataResponse,
};
use crate::types::{ErrorCode, OpCode};
use crate::wire::{Field, Reader, Record};

/// One operation of a multi or multiRead request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiOp {
    /// create (1): result [`MultiResult::Create`].
    Create(CreateRequest),
    /// create2 (15): result [`MultiResult::Create2`].
    Create2(CreateRequest),
    /// createContainer (19).
    CreateContainer(CreateRequest),
    /// createTTL (21).
    CreateTtl(CreateTtlRequest),
    /// delete (2).
    Delete(DeleteRequest),
    /// check (13).
    Check(CheckVersionRequest),
    /// setData (5).
    SetData(SetDataRequest),
    /// getChildren (8), multiRead only.
    GetChildren(GetChildrenRequest),
    /// getData (4), multiRead only.
    GetData(GetDataRequest),
}

impl MultiOp {
    /// The opcode written in this op's header.
    pub fn opcode(&self) -> OpCode {
        match self {
            MultiOp::Create(_) => OpCode::Create,
            MultiOp::Create2(_) => OpCode::Create2,
            MultiOp::CreateContainer(_) => OpCode::CreateContainer,
            MultiOp::CreateTtl(_) => OpCode::CreateTtl,
            MultiOp::Delete(_) => OpCode::Delete,
            MultiOp::Check(_) => OpCode::Check,
            MultiOp::SetData(_) => OpCode::SetData,
            MultiOp::GetChildren(_) => OpCode::GetChildren,
            MultiOp::GetData(_) => OpCode::GetData,
        }
    }

    /// The path the op acts on.
    pub fn path(&self) -> &str {
        match self {
            MultiOp::Create(c) | MultiOp::Create2(c) | MultiOp::CreateContainer(c) => &c.path,
            MultiOp::CreateTtl(c) => &c.path,
            MultiOp::Delete(d) => &d.path,
            MultiOp::Check(c) => &c.path,
            MultiOp::SetData(s) => &s.path,
            MultiOp::GetChildren(g) => &g.path,
            MultiOp::GetData(g) => &g.path,
        }
    }

    /// The op's path, mutably (the session layer prepends a chroot).
    pub fn path_mut(&mut self) -> &mut String {
        match self {
            MultiOp::Create(c) | MultiOp::Create2(c) | MultiOp::CreateContainer(c) => &mut c.path,
            MultiOp::CreateTtl(c) => &mut c.path,
            MultiOp::Delete(d) => &mut d.path,
            MultiOp::Check(c) => &mut c.path,
            MultiOp::SetData(s) => &mut s.path,
            MultiOp::GetChildren(g) => &mut g.path,
            MultiOp::GetData(g) => &mut g.path,
        }
    }

    fn write_body(&self, buf: &mut BytesMut) {
        match self {
            MultiOp::Create(c) | MultiOp::Create2(c) | MultiOp::CreateContainer(c) => c.encode(buf),
            MultiOp::CreateTtl(c) => c.encode(buf),
            MultiOp::Delete(d) => d.encode(buf),
            MultiOp::Check(c) => c.encode(buf),
            MultiOp::SetData(s) => s.encode(buf),
            MultiOp::GetChildren(g) => g.encode(buf),
            MultiOp::GetData(g) => g.encode(buf),
        }
    }

    fn body_len(&self) -> usize {
        match self {
            MultiOp::Create(c) | MultiOp::Create2(c) | MultiOp::CreateContainer(c) => {
                c.encoded_len()
            }
            MultiOp::CreateTtl(c) => c.encoded_len(),
            MultiOp::Delete(d) => d.encoded_len(),
            MultiOp::Check(c) => c.encoded_len(),
            MultiOp::SetData(s) => s.encoded_len(),
            MultiOp::GetChildren(g) => g.encoded_len(),
            MultiOp::GetData(g) => g.encoded_len(),
        }
    }

    fn read_body(op: OpCode, r: &mut Reader<'_>) -> Result<MultiOp, DecodeError> {
        Ok(match op {
            OpCode::Create => MultiOp::Create(CreateRequest::read(r)?),
            OpCode::Create2 => MultiOp::Create2(CreateRequest::read(r)?),
            OpCode::CreateContainer => MultiOp::CreateContainer(CreateRequest::read(r)?),
            OpCode::CreateTtl => MultiOp::CreateTtl(CreateTtlRequest::read(r)?),
            OpCode::Delete => MultiOp::Delete(DeleteRequest::read(r)?),
            OpCode::Check => MultiOp::Check(CheckVersionRequest::read(r)?),
            OpCode::SetData => MultiOp::SetData(SetDataRequest::read(r)?),
            OpCode::GetChildren => MultiOp::GetChildren(GetChildrenRequest::read(r)?),
            OpCode::GetData => MultiOp::GetData(GetDataRequest::read(r)?),
            other => {
                return Err(DecodeError::UnsupportedOpCode {
                    record: "MultiOp",
                    opcode: other.to_raw(),
                });
            }
        })
    }
}

/// The result of one op in a [`MultiResponse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiResult {
    /// create (1) succeeded.
    Create(CreateResponse),
    /// create2, createContainer or createTTL succeeded.
    Create2(Create2Response),
    /// delete succeeded.
    Delete,
    /// check succeeded.
    Check,
    /// setData succeeded.
    SetData(SetDataResponse),
    /// getChildren (multiRead) succeeded.
    GetChildren(GetChildrenResponse),
    /// getData (multiRead) succeeded.
    GetData(GetDataResponse),
    /// The op failed, or (code Ok / RuntimeInconsistency) was rolled back with a failed multi.
    Error(ErrorCode),
}

impl MultiResult {
    fn opcode(&self) -> OpCode {
        match self {
            MultiResult::Create(_) => OpCode::Create,
            MultiResult::Create2(_) => OpCode::Create2,
            MultiResult::Delete => OpCode::Delete,
            MultiResult::Check => OpCode::Check,
            MultiResult::SetData(_) => OpCode::SetData,
            MultiResult::GetChildren(_) => OpCode::GetChildren,
            MultiResult::GetData(_) => OpCode::GetData,
            MultiResult::Error(_) => OpCode::Error,
        }
    }

    fn header_err(&self) -> i32 {
        match self {
            MultiResult::Error(code) => code.to_raw(),
            _ => 0,
        }
    }

    fn write_body(&self, buf: &mut BytesMut) {
        match self {
            MultiResult::Create(c) => c.encode(buf),
            MultiResult::Create2(c) => c.encode(buf),
            MultiResult::Delete | MultiResult::Check => {}
            MultiResult::SetData(s) => s.encode(buf),
            MultiResult::GetChildren(g) => g.encode(buf),
            MultiResult::GetData(g) => g.encode(buf),
            MultiResult::Error(code) => ErrorResponse { err: *code }.encode(buf),
        }
    }

    fn body_len(&self) -> usize {
        match self {
            MultiResult::Create(c) => c.encoded_len(),
            MultiResult::Create2(c) => c.encoded_len(),
            MultiResult::Delete | MultiResult::Check => 0,
            MultiResult::SetData(s) => s.encoded_len(),
            MultiResult::GetChildren(g) => g.encoded_len(),
            MultiResult::GetData(g) => g.encoded_len(),
            MultiResult::Error(_) => 4,
        }
    }

    fn read_body(op: OpCode, r: &mut Reader<'_>) -> Result<MultiResult, DecodeError> {
        Ok(match op {
            OpCode::Create => MultiResult::Create(CreateResponse::read(r)?),
            OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
                MultiResult::Create2(Create2Response::read(r)?)
            }
            OpCode::Delete => MultiResult::Delete,
            OpCode::Check => MultiResult::Check,
            OpCode::SetData => MultiResult::SetData(SetDataResponse::read(r)?),
            OpCode::GetChildren => MultiResult::GetChildren(GetChildrenResponse::read(r)?),
            OpCode::GetData => MultiResult::GetData(GetDataResponse::read(r)?),
            OpCode::Error => MultiResult::Error(ErrorResponse::read(r)?.err),
            other => {
                return Err(DecodeError::UnsupportedOpCode {
                    record: "MultiResult",
                    opcode: other.to_raw(),
                });
            }
        })
    }
}

/// The body of a multi or multiRead request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultiRequest {
    /// The ops, in order.
    pub ops: Vec<MultiOp>,
}

/// The body of a multi or multiRead reply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultiResponse {
    /// One result per op, in order.
    pub results: Vec<MultiResult>,
}

impl MultiResponse {
    /// The first failing result's code, if any op failed (the error of a failed multi).
    pub fn first_error(&self) -> Option<ErrorCode> {
        self.results.iter().find_map(|r| match r {
            MultiResult::Error(code) if *code != ErrorCode::Ok => Some(*code),
            _ => None,
        })
    }
}

const HEADER_LEN: usize = 9;

const TERMINATOR: MultiHeader = MultiHeader {
    op_type: OpCode::Error,
    done: true,
    err: -1,
};

/// Read headers until the terminator, calling `item` for each non-terminal header.
fn read_items<T>(
    r: &mut Reader<'_>,
    record: &'static str,
    mut item: impl FnMut(OpCode, &mut Reader<'_>) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    let mut out = Vec::new();
    loop {
        let header = MultiHeader::read(r).map_err(|e| match e {
            // Name the containing record: a missing terminator is the multi's fault.
            DecodeError::Truncated {
                needed, available, ..
            } => DecodeError::Truncated {
                at: Loc {
                    record,
                    field: "header",
                },
                needed,
                available,
            },
            other => other,
        })?;
        if header.done {
            return Ok(out);
        }
        out.push(item(header.op_type, r)?);
    }
}

impl Field for MultiRequest {
    const MIN_LEN: usize = HEADER_LEN;
    fn read_field(r: &mut Reader<'_>, _at: Loc) -> Result<Self, DecodeError> {
        Self::read(r)
    }
    fn write_field(&self, buf: &mut BytesMut) {
        for op in &self.ops {
            MultiHeader {
                op_type: op.opcode(),
                done: false,
                err: -1,
            }
            .encode(buf);
            op.write_body(buf);
        }
        TERMINATOR.encode(buf);
    }
    fn field_len(&self) -> usize {
        HEADER_LEN
            + self
                .ops
                .iter()
                .map(|op| HEADER_LEN + op.body_len())
                .sum::<usize>()
    }
}

impl Record for MultiRequest {
    const NAME: &'static str = "MultiOperationRecord";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let ops = read_items(r, Self::NAME, MultiOp::read_body)?;
        Ok(MultiRequest { ops })
    }
}

impl Field for MultiResponse {
    const MIN_LEN: usize = HEADER_LEN;
    fn read_field(r: &mut Reader<'_>, _at: Loc) -> Result<Self, DecodeError> {
        Self::read(r)
    }
    fn write_field(&self, buf: &mut BytesMut) {
        for result in &self.results {
            MultiHeader {
                op_type: result.opcode(),
                done: false,
                err: result.header_err(),
            }
            .encode(buf);
            result.write_body(buf);
        }
        TERMINATOR.encode(buf);
    }
    fn field_len(&self) -> usize {
        HEADER_LEN
            + self
                .results
                .iter()
                .map(|res| HEADER_LEN + res.body_len())
                .sum::<usize>()
    }
}

impl Record for MultiResponse {
    const NAME: &'static str = "MultiResponse";
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let results = read_items(r, Self::NAME, MultiResult::read_body)?;
        Ok(MultiResponse { results })
    }
}
