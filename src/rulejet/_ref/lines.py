"""Reference line indexing: the documented rule, written the plain way."""

from __future__ import annotations


def line_offsets(data: bytes) -> list[int]:
    """Line starts: 0 (if non-empty) and after each newline, except after a
    newline that ends the data."""
    if not data:
        return []
    starts = [0]
    for i, byte in enumerate(data):
        if byte == 0x0A and i + 1 < len(data):
            starts.append(i + 1)
    return starts
