//! Feed a byte stream to a `FrameDecoder` in fuzzer-chosen chunks and check that the frames
//! (or the error) are exactly those of feeding it all at once.
//!
//! Input layout: byte 0 = `n` (low 4 bits: `n & 15` + 1 chunk sizes follow; bit 7: use a tiny
//! maximum frame size taken from byte 1 instead of 64 KiB), then the chunk sizes (one byte each,
//! 0 = an empty feed), then the stream. Chunk sizes are used cyclically.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use zk_proto::{FrameDecoder, FrameError};

const MAX_FRAME: usize = 64 * 1024;

#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    frames: Vec<Bytes>,
    error: Option<FrameError>,
    /// Bytes still buffered at the end (only meaningful without an error).
    leftover: Bytes,
}

/// Decode every complete frame now in `buf`; `false` once an error stops the stream.
fn drain(dec: &mut FrameDecoder, buf: &mut BytesMut, out: &mut Outcome) -> bool {
    loop {
        match dec.decode(buf) {
            Ok(Some(frame)) => {
                assert!(frame.len() <= dec.max_frame(), "frame over the maximum");
                out.frames.push(frame);
            }
            Ok(None) => return true,
            Err(e) => {
                out.error = Some(e);
                return false;
            }
        }
    }
}

fn run(max_frame: usize, chunks: &[u8], stream: &[u8]) {
    // Reference: everything at once.
    let mut whole = Outcome {
        frames: Vec::new(),
        error: None,
        leftover: Bytes::new(),
    };
    let mut dec = FrameDecoder::new(max_frame);
    let mut buf = BytesMut::from(stream);
    if drain(&mut dec, &mut buf, &mut whole) {
        // Idempotent once it needs more bytes.
        assert_eq!(dec.decode(&mut buf), Ok(None));
        whole.leftover = buf.freeze();
    }

    // Chunked.
    let mut chunked = Outcome {
        frames: Vec::new(),
        error: None,
        leftover: Bytes::new(),
    };
    let mut dec = FrameDecoder::new(max_frame);
    let mut buf = BytesMut::new();
    let mut rest = stream;
    let mut sizes = chunks.iter().cycle();
    let mut ok = true;
    // A size of 0 feeds nothing (decode is still called); after a whole cycle of zeros one
    // byte is fed, so the loop always ends.
    let mut zero_run = 0usize;
    while !rest.is_empty() {
        let mut n = usize::from(*sizes.next().expect("non-empty cycle")).min(rest.len());
        if n == 0 {
            zero_run += 1;
            if zero_run > chunks.len() {
                n = 1;
                zero_run = 0;
            }
        } else {
            zero_run = 0;
        }
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        if !drain(&mut dec, &mut buf, &mut chunked) {
            ok = false;
            break;
        }
    }
    if ok {
        chunked.leftover = buf.freeze();
    }

    assert_eq!(
        whole, chunked,
        "chunked decoding differs from one-shot decoding"
    );

    // Frames split off are exactly the stream's bytes minus their prefixes.
    let consumed: usize = whole.frames.iter().map(|f| 4 + f.len()).sum();
    assert!(consumed <= stream.len());
    let mut pos = 0;
    for f in &whole.frames {
        assert_eq!(&stream[pos + 4..pos + 4 + f.len()], &f[..]);
        pos += 4 + f.len();
    }
    if whole.error.is_none() {
        assert_eq!(&stream[consumed..], &whole.leftover[..]);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let (max_frame, rest) = if n & 0x80 != 0 {
        match rest.split_first() {
            Some((&m, rest)) => (usize::from(m), rest),
            None => return,
        }
    } else {
        (MAX_FRAME, rest)
    };
    let count = usize::from(n & 15) + 1;
    if rest.len() < count {
        return;
    }
    let (chunks, stream) = rest.split_at(count);
    run(max_frame, chunks, stream);
});
