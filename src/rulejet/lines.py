"""Line indexing of NDJSON: where every line starts, at SIMD speed.

A line starts at offset 0 and after every ``\\n``. A final newline does not
create an empty last line; a missing final newline still counts the last
line; empty lines are lines; ``\\r`` before ``\\n`` stays part of the line's
bytes (strip it when decoding). An empty buffer has no lines.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from . import _native
from ._native import U64Array

if TYPE_CHECKING:
    from typing_extensions import Buffer

DEFAULT_CHUNK = 16 << 20


class Readable(Protocol):
    """A binary file object: anything with ``readinto`` (files, sockets, BytesIO)."""

    def readinto(self, buffer: memoryview, /) -> int | None: ...


def line_offsets(buffer: Buffer) -> U64Array:
    """Start offsets of every line of a bytes-like object.

    Returns a U64Array: native memory with the buffer protocol (format
    ``"Q"``), ``len()`` and indexing; ``memoryview(result)`` or
    ``numpy.frombuffer(result, "u8")`` read it without copying. The GIL
    is released while large buffers are scanned.

    Raises TypeError if ``buffer`` does not support the buffer protocol.
    """
    return _native.line_starts(buffer)


def iter_line_offsets(
    source: str | os.PathLike[str] | Readable, chunk_size: int = DEFAULT_CHUNK
) -> Iterator[U64Array]:
    """Yield the line start offsets of a file, a chunk at a time.

    Offsets are absolute (from the start of the file) and, concatenated,
    equal ``line_offsets`` of the whole content. Memory stays bounded by
    two chunks of ``chunk_size`` bytes whatever the file size. ``source``
    is a path or a binary file object open for reading.

    Raises FileNotFoundError/OSError for unreadable paths, ValueError for a
    non-positive chunk size.
    """
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            yield from _iter_file(f, chunk_size)
    else:
        yield from _iter_file(source, chunk_size)


def _iter_file(f: Readable, chunk_size: int) -> Iterator[U64Array]:
    # Two buffers: the chunk being indexed and the one after it. Reading one
    # ahead tells whether a newline at the chunk's end starts another line.
    buffers = [bytearray(chunk_size), bytearray(chunk_size)]
    views = [memoryview(b) for b in buffers]
    current = _fill(f, views[0])
    base, which = 0, 0
    while current:
        following = _fill(f, views[1 - which])
        yield _native.line_starts(
            views[which][:current], base=base, at_start=base == 0, at_end=following == 0
        )
        base += current
        which, current = 1 - which, following


def _fill(f: Readable, view: memoryview) -> int:
    """Read until ``view`` is full or EOF; return the byte count."""
    total = 0
    while total < len(view):
        n = f.readinto(view[total:])
        if not n:
            break
        total += n
    return total
