"""Reference log reader: the segment format of README "Durable log",
parsed the plain way (a bitwise CRC-32C, struct, no native code). Tests
compare the native reader with it record for record."""

from __future__ import annotations

import os
import struct

HEADER = 4096
REC = struct.Struct("<IIQ")  # crc, length, seq
MAGIC = b"RJLOGSEG"


def crc32c(data: bytes, crc: int = 0) -> int:
    c = crc ^ 0xFFFFFFFF
    for byte in data:
        c ^= byte
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    return c ^ 0xFFFFFFFF


def header_ok(seg: bytes) -> int | None:
    """The first sequence number of a sound segment header, else None."""
    if len(seg) < HEADER or seg[:8] != MAGIC:
        return None
    version, size = struct.unpack_from("<II", seg, 8)
    (crc,) = struct.unpack_from("<I", seg, 40)
    if crc != crc32c(seg[:40]) or version != 1 or size != HEADER:
        return None
    return int(struct.unpack_from("<Q", seg, 16)[0])


def record_at(seg: bytes, off: int, expect: int | None) -> tuple[int, bytes, int] | None:
    """(seq, payload, next offset) of a valid record at off (with seq ==
    expect when given), else None."""
    if off + 16 > len(seg):
        return None
    crc, n, seq = REC.unpack_from(seg, off)
    if (expect is not None and seq != expect) or n > len(seg) - off - 16:
        return None
    payload = seg[off + 16 : off + 16 + n]
    if crc32c(seg[off + 4 : off + 16], crc32c(payload)) != crc:
        return None
    return seq, payload, off + 16 + (n + 7) // 8 * 8


def read_lenient(directory: str) -> list[tuple[int, bytes]]:
    """Every record a lenient read yields: per segment, records in
    sequence from the header's first; at bytes that are not the expected
    record (and not the all-zero end), skip to the next valid record whose
    seq is at least the expected one (and plausibly close: within
    size / 16), as the native reader does."""
    out: list[tuple[int, bytes]] = []
    names = sorted(n for n in os.listdir(directory) if n.endswith(".rjlog"))
    for name in names:
        with open(os.path.join(directory, name), "rb") as f:
            seg = f.read()
        first = header_ok(seg)
        if first is None:
            continue
        off, expect = HEADER, first
        while True:
            rec = record_at(seg, off, expect)
            if rec is not None:
                out.append((rec[0], rec[1]))
                expect, off = rec[0] + 1, rec[2]
                continue
            found = None
            limit = expect + len(seg) // 16
            o = (off + 1 + 7) // 8 * 8
            while o + 16 <= len(seg):
                (seq,) = struct.unpack_from("<Q", seg, o + 8)
                if expect <= seq <= limit:
                    rec = record_at(seg, o, None)
                    if rec is not None:
                        found = rec
                        break
                o += 8
            if found is None:
                break
            out.append((found[0], found[1]))
            expect, off = found[0] + 1, found[2]
    return out
