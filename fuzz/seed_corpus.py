#!/usr/bin/env python3
"""Seed the fuzz corpora from the golden frames (crates/zk-proto/tests/data/golden.txt).

Writes, under fuzz/corpus/ (gitignored; safe to run repeatedly):
  response_decode/  each server->client frame's payload (without the 4-byte length prefix)
  request_decode/   each client->server frame's payload
  frame_chunking/   whole streams (all frames, each direction, and everything) behind a few
                    chunk-size headers, in the input layout frame_chunking.rs expects
  roundtrip/        created empty (its inputs are `arbitrary` byte strings, not wire bytes)
"""

import hashlib
import pathlib
import sys

FUZZ = pathlib.Path(__file__).resolve().parent
GOLDEN = FUZZ.parent / "crates" / "zk-proto" / "tests" / "data" / "golden.txt"
CORPUS = FUZZ / "corpus"

# frame_chunking header byte 0: low 4 bits = chunk-size count - 1; bit 7 = a tiny max frame
# taken from the next byte. Then the chunk sizes.
CHUNK_HEADERS = {
    "whole": bytes([0x00, 0xFF]),
    "bytewise": bytes([0x00, 0x01]),
    "mixed": bytes([0x04, 3, 1, 0, 17, 64]),
    "tinymax": bytes([0x81, 0x40, 5, 9]),
}


def frames():
    for n, line in enumerate(GOLDEN.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, direction, hexpart = line.split(" ", 2)
        data = bytes.fromhex("".join(hexpart.split()))
        if direction not in ("c2s", "s2c"):
            sys.exit(f"{GOLDEN}:{n}: bad direction {direction!r}")
        length = int.from_bytes(data[:4], "big")
        if length != len(data) - 4:
            sys.exit(f"{GOLDEN}:{n}: {name}: prefix says {length}, payload is {len(data) - 4}")
        yield name, direction, data


def write(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
    (d / f"{safe}-{hashlib.sha1(data).hexdigest()[:8]}").write_bytes(data)


def main():
    all_frames = list(frames())
    if not all_frames:
        sys.exit(f"{GOLDEN}: no frames")
    for target in ("response_decode", "request_decode", "frame_chunking", "roundtrip"):
        (CORPUS / target).mkdir(parents=True, exist_ok=True)

    counts = {"request_decode": 0, "response_decode": 0, "frame_chunking": 0}
    for name, direction, data in all_frames:
        target = "request_decode" if direction == "c2s" else "response_decode"
        write(target, name, data[4:])
        counts[target] += 1

    streams = {
        "all": b"".join(d for _, _, d in all_frames),
        "c2s": b"".join(d for _, dr, d in all_frames if dr == "c2s"),
        "s2c": b"".join(d for _, dr, d in all_frames if dr == "s2c"),
    }
    for sname, stream in streams.items():
        for hname, header in CHUNK_HEADERS.items():
            write("frame_chunking", f"{sname}-{hname}", header + stream)
            counts["frame_chunking"] += 1

    summary = ", ".join(f"{t}: {c}" for t, c in counts.items())
    print(f"seeded {CORPUS} from {len(all_frames)} golden frames ({summary})")


if __name__ == "__main__":
    main()
