"""Arena: alignment per tier, reset safety, counters, threads."""

from __future__ import annotations

import itertools
import os
import threading

import pytest

from rulejet import Arena, BusyError, ClosedError


def test_alloc_is_writable_and_sized() -> None:
    arena = Arena()
    buf = arena.alloc(64)
    view = memoryview(buf)
    assert len(buf) == 64 and not view.readonly
    view[:5] = b"hello"
    assert bytes(view[:5]) == b"hello"


TIER_CASES = [
    (1, 16, "small"),
    (64, 64, "small"),
    (256, 16, "small"),
    (257, 16, "medium"),
    (4096, 4096, "medium"),
    (65536, 64, "medium"),
    (65537, 16, "large"),
    (1 << 20, 4096, "large"),
]


@pytest.mark.parametrize(("size", "align", "tier"), TIER_CASES)
def test_alignment_every_tier(size: int, align: int, tier: str) -> None:
    arena = Arena()
    bufs = [arena.alloc(size, align=align) for _ in range(5)]
    assert all(b.address % align == 0 for b in bufs)
    assert arena.stats()[tier] == 5
    for b in bufs:
        memoryview(b)[-1] = 7  # the whole length is usable


def test_reset_refuses_while_buffers_live() -> None:
    arena = Arena()
    buf = arena.alloc(32)
    view = memoryview(buf)
    del buf  # the view keeps the buffer alive
    with pytest.raises(BusyError):
        arena.reset()
    with pytest.raises(BufferError):  # BusyError is a BufferError
        arena.close()
    view.release()
    arena.reset()
    assert arena.stats()["bytes_in_use"] == 0
    arena.close()
    arena.close()  # idempotent
    with pytest.raises(ClosedError):
        arena.alloc(8)


def test_bad_arguments() -> None:
    arena = Arena()
    for kwargs in ({"size": -1}, {"size": 8, "align": 3}, {"size": 8, "align": 0}):
        with pytest.raises(ValueError):
            arena.alloc(**kwargs)
    with pytest.raises(ValueError):
        arena.alloc(8, align=1 << 20)  # beyond a page: bad input, not a failed call
    with pytest.raises(ValueError):
        Arena(chunk_size=0)


def test_chunks_grow_and_reset_keeps_one() -> None:
    arena = Arena(chunk_size=65536)
    bufs = arena.alloc_many(10_000, 64)
    stats = arena.stats()
    assert stats["chunks"] > 1 and stats["bytes_in_use"] == 640_000
    assert stats["high_water"] >= 640_000
    del bufs
    arena.reset()
    again = arena.alloc_many(100, 64)
    assert len(again) == 100


def _fill_and_check(
    arena: Arena, tag: int, out: list[tuple[list[tuple[int, int]], list[object]]]
) -> None:
    bufs = []
    for size in (16, 64, 200, 1000, 5000):
        bufs += arena.alloc_many(2_000, size, separate=True)  # GIL released, one CAS each
    pattern = bytes([tag]) * 5000
    for b in bufs:
        memoryview(b)[:] = pattern[: len(b)]
    spans = []
    for b in bufs:
        assert bytes(memoryview(b)) == pattern[: len(b)]
        spans.append((b.address, len(b)))
    out.append((spans, list(bufs)))  # the buffers stay alive until checked


def test_threads_allocate_without_overlap() -> None:
    arena = Arena(chunk_size=1 << 18)  # small chunks: many chunk switches under contention
    results: list[tuple[list[tuple[int, int]], list[object]]] = []
    threads = [
        threading.Thread(target=_fill_and_check, args=(arena, t + 1, results)) for t in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    spans = sorted(s for r, _ in results for s in r)
    assert len(spans) == 4 * 5 * 2_000
    for (a, n), (b, _) in itertools.pairwise(spans):
        assert a + n <= b, "two allocations overlap"
    stats = arena.stats()
    assert stats["small"] + stats["medium"] == 40_000


def test_freed_buffers_are_reused_by_size_class() -> None:
    arena = Arena()
    first = arena.alloc(100)
    addr = first.address
    del first
    again = arena.alloc(120)  # same 128-byte class
    assert again.address == addr
    assert arena.stats()["reused"] == 1
    wide = arena.alloc(100, align=64)  # wider alignment: never from a free list
    assert wide.address % 64 == 0


def _churn(arena: Arena, tag: int, errors: list[str]) -> None:
    pattern = bytes([tag]) * 4096
    for _ in range(50):
        bufs = arena.alloc_many(500, 16 << (tag % 5), separate=True)
        for b in bufs:
            memoryview(b)[:] = pattern[: len(b)]
        for b in bufs:
            if bytes(memoryview(b)) != pattern[: len(b)]:
                errors.append(f"thread {tag}: a block was shared")
        del bufs  # back to the free lists, for the other threads too


def test_threads_reuse_without_sharing() -> None:
    arena = Arena(chunk_size=1 << 16)
    errors: list[str] = []
    threads = [threading.Thread(target=_churn, args=(arena, t + 1, errors)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert arena.stats()["reused"] > 0


def test_alloc_many_carves_one_block() -> None:
    """A batch is one block: buffers side by side at the aligned stride,
    each its own writable view; the block returns to its free list only
    when the last buffer of the batch is dropped."""
    arena = Arena()
    bufs = arena.alloc_many(10, 60, align=32)
    addrs = [b.address for b in bufs]
    assert all(a % 32 == 0 for a in addrs)
    assert [b - a for a, b in itertools.pairwise(addrs)] == [64] * 9
    for i, b in enumerate(bufs):
        memoryview(b)[:] = bytes([i]) * 60
    assert [bytes(memoryview(b)) for b in bufs] == [bytes([i]) * 60 for i in range(10)]
    del b
    assert arena.alloc_many(0, 64) == []
    assert [len(b) for b in arena.alloc_many(3, 0)] == [0, 0, 0]

    small = arena.alloc_many(10, 64)
    first = small[0].address
    last = small.pop()
    del small
    assert arena.alloc_many(10, 64)[0].address != first  # one buffer still holds the block
    with pytest.raises(BusyError, match="11 buffer"):  # bufs and last: the block is not one
        arena.reset()
    del last
    assert arena.alloc_many(10, 64)[0].address == first  # now reused whole
    del bufs
    arena.reset()


def test_alloc_many_object_array_is_reused_and_outlives_the_arena_name() -> None:
    """A batch's buffer objects live in one array that the arena keeps
    for its next batch (no fresh pages to fault in), and buffers keep
    their arena alive even when nothing else refers to it."""
    arena = Arena()
    first = arena.alloc_many(1000, 32)
    where = id(first[0])
    del first
    arena.reset()
    again = arena.alloc_many(500, 32)  # fits in the kept array
    assert id(again[0]) == where
    # Drop the buffers in any order; the last one frees the batch.
    middle = again[250]
    del again[:250]
    del again
    memoryview(middle)[:] = b"m" * 32
    del middle
    bigger = arena.alloc_many(5000, 16)  # larger than the kept array: a new one
    assert len({b.address for b in bigger}) == 5000
    del arena
    memoryview(bigger[-1])[:] = b"x" * 16  # the buffers hold the arena
    assert bytes(memoryview(bigger[-1])) == b"x" * 16
    del bigger


def test_bad_alignments_and_chunk_sizes_are_value_errors() -> None:
    arena = Arena()
    page = os.sysconf("SC_PAGESIZE")
    with pytest.raises(ValueError, match="page size"):
        arena.alloc(8, align=2 * page)
    with pytest.raises(ValueError, match="page size"):
        arena.alloc_many(3, 16, align=2 * page)
    with pytest.raises(ValueError, match="1 TiB"):
        Arena(chunk_size=1 << 41)
    arena.close()
