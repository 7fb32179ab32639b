"""The durable append-only log: group commit, O_DIRECT, CRC-32C, recovery.

    with Log.open("matches.log", sync="group") as log:
        seq = log.append(b"payload")          # dense sequence numbers from 0
        log.append(b"important", durable=True)  # returns once it is on disk
        log.flush()                            # everything so far is on disk
    for seq, payload in Log.read("matches.log"):
        ...                                    # payload: a zero-copy view of the mapped segment

The format and the writer are described in ``_native/core/log.h`` and in
the README (a table per structure). Sync modes: ``group`` (a background
writer commits whatever arrived while its previous write was in flight,
with one write and one fdatasync), ``always`` (each append waits for its
commit; concurrent appends still share one), ``interval`` (a commit every
``interval`` seconds), ``none`` (writes when a buffer is half full; data
is durable only at flush() or close()).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from . import _native
from .errors import FileError, LogCorruptionError
from .pools import BufferPool

Sync = Literal["group", "always", "interval", "none"]
_SYNC = {"none": 0, "group": 1, "always": 2, "interval": 3}
_BACKEND = {"write": 0, "mmap": 1, "io_uring": 2}
SEGMENT_SUFFIX = ".rjlog"


def segment_name(first_seq: int) -> str:
    return f"{first_seq:020d}{SEGMENT_SUFFIX}"


def list_segments(directory: str | os.PathLike[str]) -> list[tuple[int, str]]:
    """(first sequence number, path) of each segment, in order."""
    try:
        names = os.listdir(directory)
    except OSError as e:
        raise FileError(e.errno, e.strerror, os.fspath(directory)) from None
    out = []
    for name in names:
        stem = name[: -len(SEGMENT_SUFFIX)]
        if name.endswith(SEGMENT_SUFFIX) and len(stem) == 20 and stem.isdigit():
            out.append((int(stem), os.path.join(directory, name)))
    return sorted(out)


@dataclass
class ReadReport:
    """What a read met: records yielded, and damage skipped (lenient mode)
    or found at the tail."""

    records: int = 0
    skipped_records: int = 0
    skipped_bytes: int = 0
    problems: list[tuple[str, int, str]] = field(default_factory=list)  # (segment, offset, what)
    torn_tail: tuple[str, int] | None = None


def read_log(
    directory: str | os.PathLike[str],
    from_seq: int = 0,
    *,
    strict: bool = True,
    follow: bool = False,
    poll: float = 0.05,
    report: ReadReport | None = None,
) -> Iterator[tuple[int, memoryview]]:
    """Yield ``(seq, payload)`` for every record from ``from_seq`` on, in
    order. Payloads are zero-copy views of the memory-mapped segment; a
    view keeps its segment's map alive (it is unmapped when the last view
    is gone), so keeping payloads is safe.

    Never yields a wrong payload: every record's CRC-32C and sequence
    number are checked. Damage in a sealed segment, or before valid
    records of the last one, raises LogCorruptionError with the segment
    and offset (``strict=True``) or is skipped, counted in ``report``
    (``strict=False``). Bytes that are not a record at the very end of the
    last segment are a torn tail (a crash mid-write): reading stops there
    (``report.torn_tail``). ``follow=True`` keeps polling for new records
    (a tail of a log being written) until the generator is closed."""
    rep = report if report is not None else ReadReport()
    expect_next: int | None = None
    segments = list_segments(directory)
    start = 0
    for i, (first, _) in enumerate(segments):
        if first <= from_seq:
            start = i
    i = start
    while True:
        if i >= len(segments):
            if not follow:
                return
            time.sleep(poll)
            segments = list_segments(directory)
            continue
        first, path = segments[i]
        last = i == len(segments) - 1
        if expect_next is not None and first != expect_next:
            _damage(
                rep,
                strict,
                path,
                0,
                f"sequence gap: expected {expect_next}, segment starts at {first}",
            )
        try:
            # The native map, not a MappedFile: yielded views keep it alive
            # and it unmaps when the last one is gone (list(read_log(...))).
            mapping = _native.Mapping(path)
        except FileError:
            if follow or not last:  # removed by retention meanwhile
                segments = list_segments(directory)
                continue
            raise
        view = memoryview(mapping)
        del mapping
        try:
            hfirst, _ = _native.log_header(view)
        except LogCorruptionError as e:
            if last and (follow or _native.log_zeros(view, 0)):
                # A segment being created (or whose creation a crash cut
                # short: it holds nothing). Following: look again soon.
                del view
                if not follow:
                    return
                time.sleep(poll)
                segments = list_segments(directory)
                continue
            _damage(rep, strict, path, 0, str(e))
            i += 1
            continue
        if hfirst != first:
            _damage(rep, strict, path, 16, "header's first sequence number differs from the name")
        off, expect = 4096, hfirst
        rescanned = False
        stuck = 0
        while True:
            triples, off, expect, status = _native.log_scan(view, off, expect, 4096)
            for k in range(0, len(triples), 3):
                seq = triples[k]
                if seq >= from_seq:
                    rep.records += 1
                    o = triples[k + 1]
                    yield seq, view[o : o + triples[k + 2]]
            if status == 1:
                continue
            found = _native.log_resync(view, off, expect)
            if found is not None and follow and last and stuck < 40:
                # A write in flight can show its later blocks before its
                # first: look again before calling it damage.
                stuck += 1
                time.sleep(poll)
                continue
            stuck = 0
            if found is not None:
                where, seq = found
                _damage(rep, strict, path, off, f"not record {expect}")
                rep.skipped_records += seq - expect
                rep.skipped_bytes += where - off
                off, expect = where, seq
                continue
            torn = status == -1 or not _native.log_zeros(view, off)
            if follow and last and not rescanned:
                # The writer may still append here, or roll to a new segment
                # after its last records here: scan once more after a roll.
                now = list_segments(directory)
                if len(now) > len(segments) or (now and now[-1][0] > first):
                    segments, rescanned = now, True
                else:
                    time.sleep(poll)
                continue
            if torn:
                if last:
                    rep.torn_tail = (path, off)
                else:
                    _damage(rep, strict, path, off, "damaged end of a sealed segment")
            break
        expect_next = expect
        i += 1


class Log:
    """A durable append-only log in a directory of segments. Open with
    ``Log.open``; a context manager (leaving it flushes and closes)."""

    def __init__(self, writer: Any, pool: BufferPool, buffers: tuple[Any, ...], path: str) -> None:
        self._w = writer
        self._pool = pool
        self._buffers = buffers
        self.path = path
        self.append = writer.append
        self.append_many = writer.append_many
        self.flush = writer.flush
        rec = writer.recovery()
        self.recovery: dict[str, Any] = {
            **rec,
            "segment": os.path.join(path, segment_name(rec["segment"])),
        }

    @classmethod
    def open(
        cls,
        directory: str | os.PathLike[str],
        sync: Sync = "group",
        *,
        backend: Literal["write", "mmap", "io_uring"] = "write",
        direct: bool = True,
        strict: bool = True,
        segment_bytes: int = 64 << 20,
        buffer_bytes: int = 4 << 20,
        interval: float = 0.05,
        retain_bytes: int | None = None,
        retain_seconds: float | None = None,
    ) -> Log:
        """Open (creating if needed) the log in ``directory``. One writer per
        log: BusyError if it is open for writing elsewhere (any process).

        Opening recovers: the last segment's tail is scanned and a torn or
        checksum-failing record there is truncated (see ``recovery``).
        Corruption followed by valid records raises LogCorruptionError
        unless ``strict=False``, which truncates there and counts the
        records dropped. ``direct=False`` skips O_DIRECT; where the file
        system refuses it the log falls back to buffered writes plus
        fdatasync by itself (``stats()["o_direct"]`` says which). Segments
        roll at ``segment_bytes`` (preallocated); ``retain_bytes`` and
        ``retain_seconds`` drop the oldest segments at each roll.
        ``backend``: ``write`` (pwrite + fdatasync), ``mmap`` (copy into a
        shared mapping + msync) or ``io_uring`` (the write and the sync as
        one linked submission; where the kernel refuses io_uring, the log
        uses ``write`` and ``stats()["backend"]`` says so)."""
        if sync not in _SYNC:
            raise ValueError(f"sync must be one of {sorted(_SYNC)}, not {sync!r}")
        if backend not in _BACKEND:
            raise ValueError(f"backend must be 'write', 'mmap' or 'io_uring', not {backend!r}")
        if buffer_bytes < 8192 or buffer_bytes % 4096 or segment_bytes % 4096:
            raise ValueError("buffer_bytes (>= 8192) and segment_bytes must be multiples of 4096")
        path = os.fspath(directory)
        pool = BufferPool(buffer_bytes, 2, align=4096)
        buffers = (pool.take(), pool.take())
        try:
            writer = _native.LogWriter(
                path,
                buffers,
                sync=_SYNC[sync],
                backend=_BACKEND[backend],
                direct=direct,
                strict=strict,
                segment_bytes=segment_bytes,
                interval=interval,
                retain_bytes=retain_bytes or 0,
                retain_seconds=int(retain_seconds or 0),
            )
        except BaseException:
            for b in buffers:
                pool.give_back(b)
            pool.close()
            raise
        return cls(writer, pool, buffers, path)

    def stats(self) -> dict[str, Any]:
        """Appended, durable and written record counts, commits, syncs,
        bytes written, segments rolled and removed, the largest batch, the
        current segment and offset, ``o_direct``, back end and sync mode."""
        return dict(self._w.stats())

    def close(self) -> None:
        """Write and sync everything, stop the writer. Idempotent."""
        self._w.close()
        if self._buffers:
            for b in self._buffers:
                self._pool.give_back(b)
            self._buffers = ()
            self._pool.close()

    def __enter__(self) -> Log:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    read = staticmethod(read_log)  # Log.read(dir, from_seq=0, ...)


def _damage(rep: ReadReport, strict: bool, segment: str, offset: int, what: str) -> None:
    if strict:
        raise LogCorruptionError(what, segment, offset)
    rep.problems.append((segment, offset, what))


def verify(directory: str | os.PathLike[str]) -> ReadReport:
    """Read the whole log leniently; the report lists every problem."""
    rep = ReadReport()
    for _ in read_log(directory, strict=False, report=rep):
        pass
    return rep


@dataclass
class LogRange:
    """Whole records of one segment, as raw bytes: ``length`` bytes at
    ``offset`` of ``segment``, holding records ``first_seq`` up to (not
    including) ``next_seq``."""

    segment: str
    offset: int
    length: int
    first_seq: int
    next_seq: int


class LogIndex:
    """Finds the byte range of records from a sequence number, for serving
    a log's raw records (sendfile) without reading them into Python. Keeps
    a sparse index per segment (every 1,024th record's offset), extended
    as the log grows, so a lookup scans at most 1,024 records."""

    EVERY = 1024

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = os.fspath(directory)
        self._marks: dict[str, list[tuple[int, int]]] = {}  # segment -> [(seq, offset)]

    def find(self, from_seq: int, max_bytes: int, upto: int | None = None) -> LogRange | None:
        """Records from ``from_seq`` (at least one, then as many as fit in
        ``max_bytes``), never at or past ``upto`` (e.g. the durable count).
        None if ``from_seq`` is not in the log yet; LogCorruptionError if
        the bytes there are not the record expected; KeyError if it is
        before the first record kept (retention removed it)."""
        segments = list_segments(self.directory)
        if not segments or from_seq < segments[0][0]:
            if segments and from_seq < segments[0][0]:
                raise KeyError(from_seq)
            return None
        first, path = segments[0]
        for f, p in segments:
            if f <= from_seq:
                first, path = f, p
        view = memoryview(_native.Mapping(path))
        marks = self._marks.setdefault(path, [(first, 4096)])
        seq, off = marks[0]
        for s, o in marks:
            if s <= from_seq:
                seq, off = s, o
        # Walk to from_seq, recording marks on the way.
        while seq < from_seq:
            step = min(from_seq - seq, self.EVERY)
            triples, noff, nseq, status = _native.log_scan(view, off, seq, step)
            if nseq == seq:
                if status == -1:
                    raise LogCorruptionError(f"not record {seq}", path, off)
                return None  # not written yet
            seq, off = nseq, noff
            if seq - marks[-1][0] >= self.EVERY:
                marks.append((seq, off))
        start, end, nxt = off, off, seq
        limit = upto if upto is not None else 1 << 63
        while nxt < limit:
            want = min(limit - nxt, 4096)
            triples, noff, nseq, status = _native.log_scan(view, end, nxt, want)
            taken = 0
            for k in range(0, len(triples), 3):
                rec_end = triples[k + 1] + (triples[k + 2] + 7) // 8 * 8
                if end - start and rec_end - start > max_bytes:
                    break
                end, nxt, taken = rec_end, triples[k] + 1, taken + 1
            if taken < len(triples) // 3 or status != 1:
                if nxt == from_seq and status == -1:
                    raise LogCorruptionError(f"not record {nxt}", path, end)
                break
        if nxt == from_seq:
            return None
        return LogRange(path, start, end - start, from_seq, nxt)
