"""Buffer and frame pools: fixed-size buffers leased and returned, never
reallocated.

``BufferPool(size, count, align=4096)`` preallocates ``count`` buffers of
``size`` bytes from an Arena (4096-byte alignment suits O_DIRECT writes).
``with pool.lease() as buf:`` lends a writable memoryview; ``take()`` and
``give_back(buf)`` do the same for buffers that outlive a block. When every
buffer is out, a lease waits up to ``timeout`` seconds (TimeoutError) or,
with ``grow=True``, adds a buffer.

Safety: each lease is a fresh proxy object over the buffer's memory, with
its own count of buffer exports, and the lent memoryview is released on
return: a copy of it kept past the return raises ValueError on use.
Returning twice, or returning what the pool never lent, raises
ValueError. If anything made during the lease still holds the memory (a
slice, a numpy array), the buffer is never reused while it does:
``BufferPool.give_back`` raises BusyError and keeps it aside until that
reference is gone (a later lease reclaims it).

``FramePool(shape, dtype, count)`` is the same over numpy arrays (numpy is
an optional dependency: ``pip install rulejet[frames]``). An array usually
outlives its ``with`` block (the name stays bound), so a returned frame is
lent again only once nothing else refers to it (see FramePool); a pool of
two or more frames covers the usual loop.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import EllipsisType
from typing import Any

from ._native import Arena, ArenaBuffer, Lease, Lender
from .errors import BusyError, ClosedError


class BufferPool:
    """Fixed-size aligned buffers, leased and returned. Raises ValueError
    for bad sizes; see the module docstring for the lease rules."""

    def __init__(
        self,
        size: int,
        count: int,
        align: int = 4096,
        *,
        grow: bool = False,
        timeout: float | None = None,
    ) -> None:
        if size <= 0 or count < 0:
            raise ValueError("size must be positive and count >= 0")
        self.size, self.align, self.grow, self.timeout = size, align, grow, timeout
        self._arena = Arena(chunk_size=max(1 << 20, size * min(max(count, 1), 64)))
        self._cond = threading.Condition()
        self._free: list[ArenaBuffer] = []
        # id(lent view) -> (buffer, the lease's proxy, the lent view)
        self._out: dict[int, tuple[ArenaBuffer, ArenaBuffer, memoryview]] = {}
        self._aside: list[tuple[ArenaBuffer, ArenaBuffer]] = []  # still referenced
        self._closed = False
        self.allocated = 0
        for _ in range(count):
            self._free.append(self._new_buffer())

    def _new_buffer(self) -> ArenaBuffer:
        self.allocated += 1
        return self._arena.alloc(self.size, align=self.align)

    @property
    def available(self) -> int:
        return len(self._free)

    def _reclaim(self) -> None:
        """Buffers whose late references are now gone go back in the pool."""
        still = []
        for buf, proxy in self._aside:
            if proxy.exports:
                still.append((buf, proxy))
            else:
                self._free.append(buf)
        self._aside = still

    def take(self, timeout: float | EllipsisType | None = ...) -> memoryview:
        """Lend a buffer (a writable memoryview of ``size`` bytes). Raises
        TimeoutError when none frees up in time, ClosedError after close."""
        limit = self.timeout if isinstance(timeout, EllipsisType) else timeout  # ...: the default
        deadline = None if limit is None else time.monotonic() + limit
        with self._cond:
            while True:
                if self._closed:
                    raise ClosedError("the pool is closed")
                if not self._free and self._aside:
                    self._reclaim()
                if self._free:
                    buf = self._free.pop()
                    break
                if self.grow:
                    buf = self._new_buffer()
                    break
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"no buffer free after {limit} s ({self.allocated} exist)")
                self._cond.wait(remaining)
            proxy = buf.proxy()
            view = memoryview(proxy)
            self._out[id(view)] = (buf, proxy, view)
            return view

    def give_back(self, view: memoryview, *, quiet: bool = False) -> None:
        """Return a lent buffer. Raises ValueError if it is not out (returned
        twice, or never lent); BusyError if something made during the lease
        still holds its memory (it is set aside until that is gone; with
        ``quiet=True`` it is set aside without raising)."""
        with self._cond:
            lease = self._out.get(id(view))
            if lease is None or lease[2] is not view:
                raise ValueError("this buffer is not lent out by this pool (returned twice?)")
            del self._out[id(view)]
            buf, proxy, _ = lease
            with suppress(BufferError):  # a view exported from it: the count below sees it
                view.release()
            proxy.revoke()  # a kept `view.obj` must not make a view of lent-again memory
            if proxy.exports:
                self._aside.append((buf, proxy))
                if quiet:
                    return
                raise BusyError(
                    "the buffer is still referenced (a slice or an array over it); "
                    "it stays out of the pool until that reference is gone"
                )
            self._free.append(buf)
            self._cond.notify()

    @contextmanager
    def lease(self, timeout: float | EllipsisType | None = ...) -> Iterator[memoryview]:
        """``with pool.lease() as buf:`` a buffer for the block's duration."""
        view = self.take(timeout)
        try:
            yield view
        finally:
            self.give_back(view)

    def close(self) -> None:
        """Free the memory. Raises BusyError while buffers are lent out."""
        with self._cond:
            if self._closed:
                return
            if self._out:
                raise BusyError(f"{len(self._out)} buffer(s) still lent out")
            self._reclaim()
            if self._aside:
                raise BusyError("buffers are still referenced after their return")
            self._closed = True
            self._free.clear()
            self._arena.close()
            self._cond.notify_all()

    def __enter__(self) -> BufferPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FramePool:
    """numpy arrays of ``shape`` and ``dtype`` backed by pool buffers:
    filled, handed on and returned, never reallocated.

    Each buffer has one array for the pool's whole life, lent again and
    again (making arrays is what a lease would otherwise cost). A frame is
    lent only while nothing outside the pool refers to it: the pool checks
    the reference counts of the array and of its base array (every numpy
    view made from it refers to that base), and of the memoryview and
    arena buffer under that base, so a frame still bound to a name, or
    sliced, or wrapped in a memoryview, is skipped until that reference is
    gone. The most recently returned idle frame is lent first
    (its memory is the warmest in cache). Lending and returning run in C
    (``_native.Lender``); waiting, growth and timeouts here."""

    def __init__(
        self,
        shape: tuple[int, ...],
        dtype: Any,
        count: int,
        *,
        grow: bool = False,
        timeout: float | None = None,
    ) -> None:
        import numpy as np

        self._np = np
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.nbytes = math.prod(self.shape) * self.dtype.itemsize
        if self.nbytes <= 0 or count < 0:
            raise ValueError("frames must have a positive size and count must be >= 0")
        self.grow, self.timeout = grow, timeout
        self._arena = Arena(chunk_size=max(1 << 20, self.nbytes * min(max(count, 1), 16)))
        self._cond = threading.Condition()
        self._lender = Lender()
        self._buffers: list[ArenaBuffer] = []
        self._closed = False
        for _ in range(count):
            self._new_frame()

    def _new_frame(self) -> None:
        buf = self._arena.alloc(self.nbytes, align=4096)
        self._buffers.append(buf)
        root = self._np.frombuffer(memoryview(buf), dtype=self.dtype)
        self._lender.add(root.reshape(self.shape), root)

    def take(self, timeout: float | EllipsisType | None = ...) -> Any:
        """An ndarray over a free pool buffer; give it back with give_back.
        Raises TimeoutError when none frees up in time, ClosedError after
        close()."""
        if self._closed:
            raise ClosedError("the frame pool is closed")
        frame = self._lender.take()
        return frame if frame is not None else self._wait(timeout)

    def _wait(self, timeout: float | EllipsisType | None) -> Any:
        limit = self.timeout if isinstance(timeout, EllipsisType) else timeout
        deadline = None if limit is None else time.monotonic() + limit
        with self._cond:
            while True:
                if self._closed:
                    raise ClosedError("the frame pool is closed")
                frame = self._lender.take()
                if frame is None and self.grow:
                    self._new_frame()
                    frame = self._lender.take()
                if frame is not None:
                    return frame
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(
                        f"no frame free after {limit} s ({len(self._buffers)} exist)"
                    )
                # Returns and dropped references notify no one: look again soon.
                self._cond.wait(0.005 if remaining is None else min(remaining, 0.005))

    def give_back(self, frame: Any) -> None:
        """Return a frame taken from this pool. Raises ValueError if it is not
        out (returned twice, or not from this pool). A frame still referenced
        elsewhere is not lent again until that reference is gone."""
        self._lender.give_back(frame)

    def lease(self, timeout: float | EllipsisType | None = ...) -> Lease:
        """``with frames.lease() as frame:`` an ndarray for the block."""
        if self._closed:
            raise ClosedError("the frame pool is closed")
        return self._lender.lease(self._wait, timeout)

    @property
    def available(self) -> int:
        """Frames that could be lent right now."""
        total, lent, busy = self._lender.counts()
        return total - lent - busy

    def close(self) -> None:
        """Free the memory. Raises BusyError while frames are lent out or
        still referenced."""
        with self._cond:
            if self._closed:
                return
            _, lent, busy = self._lender.counts()
            if lent or busy:
                raise BusyError(f"{lent + busy} frame(s) still lent out or referenced")
            self._closed = True
            self._lender.clear()
            self._buffers.clear()
            self._arena.close()
            self._cond.notify_all()
