"""MappedFile: memory-mapped input with a safe lifecycle.

Readers take counted leases; ``close`` waits until every lease is back and
only then unmaps. Safety does not rest on the lease count alone: the native
map counts every live buffer export (each memoryview, slice or numpy array
over it) and refuses to unmap while any remains, so no sequence of calls
from any number of threads can read unmapped memory. A view used after its
lease ended raises ValueError (it has been released).
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Literal

from . import _native
from .errors import ClosedError, CloseTimeoutError, FileError

Advice = Literal["normal", "sequential", "random", "willneed", "dontneed", "hugepage"]
_ADVICE: dict[str, int] = {
    "normal": 0,
    "sequential": 1,
    "random": 2,
    "willneed": 3,
    "dontneed": 4,
    "hugepage": 5,
}


class MappedFile:
    """A whole file mapped into memory, read through leases.

    ``MappedFile(path)`` maps read-only; ``mode="r+"`` maps read-write and
    shared (stores reach the file), extending the file to ``size`` bytes
    first if it is smaller (preallocated with fallocate). ``populate=True``
    faults every page in at open; ``advice`` applies an madvise hint.
    Empty files work (leases give an empty view). Nothing is read until
    used, so files larger than memory are fine.

    Raises FileError (an OSError: errno and filename set) for missing,
    unreadable or directory paths; ValueError for bad arguments.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        mode: Literal["r", "r+"] = "r",
        *,
        size: int | None = None,
        populate: bool = False,
        advice: Advice | None = None,
    ) -> None:
        if mode not in ("r", "r+"):
            raise ValueError(f"mode must be 'r' or 'r+', got {mode!r}")
        if size is not None and (mode != "r+" or size < 0):
            raise ValueError("size is for mode='r+' and must be >= 0")
        self._path = os.fspath(path)
        self._cond = threading.Condition()
        self._leases = 0
        self._holders: dict[int, int] = {}  # thread id -> leases held
        self._closing = 0  # close() calls waiting: leases are refused while any is
        try:
            self._map = _native.Mapping(
                self._path, write=mode == "r+", populate=populate, size=size or 0
            )
        except FileError as e:
            if e.errno != errno.ENODEV:
                raise
            why = "not a regular file with a size (a pipe, a device, /proc): cannot be mapped"
            raise FileError(errno.ENODEV, why, self._path) from None
        if advice is not None:
            self.advise(advice)

    @property
    def path(self) -> str:
        return self._path

    @property
    def size(self) -> int:
        return self._map.size

    def __len__(self) -> int:
        return self._map.size

    @property
    def closed(self) -> bool:
        return self._map.closed

    @property
    def leases(self) -> int:
        """Leases currently held."""
        return self._leases

    @contextmanager
    def lease(self, offset: int = 0, length: int | None = None) -> Iterator[memoryview]:
        """Borrow a memoryview of ``[offset, offset + length)`` for a ``with`` block.

        The view is released when the block ends; a copy kept past it
        raises ValueError on use. Raises ClosedError if the map is closed
        or closing, ValueError if the range is outside the file.
        """
        size = self._map.size
        if length is None:
            length = size - offset if 0 <= offset <= size else -1
        if offset < 0 or length < 0 or offset + length > size:
            raise ValueError(f"range {offset}+{length} is outside the file ({size} bytes)")
        me = threading.get_ident()
        with self._cond:
            if self._closing or self._map.closed:
                raise ClosedError(f"MappedFile {self._path!r} is closed")
            whole = memoryview(self._map)  # pins the map: close() must wait
            self._leases += 1
            self._holders[me] = self._holders.get(me, 0) + 1
        view = whole[offset : offset + length] if (offset or length != size) else whole
        try:
            yield view
        finally:
            # Release ours; a view the caller exported further (numpy) stays
            # pinned, and the native map then refuses to close (BusyError).
            for v in (view, whole):
                with suppress(BufferError):
                    v.release()
            with self._cond:
                self._leases -= 1
                left = self._holders[me] - 1
                if left:
                    self._holders[me] = left
                else:
                    del self._holders[me]
                self._cond.notify_all()

    def advise(self, advice: Advice, offset: int = 0, length: int | None = None) -> None:
        """Apply an madvise hint to a range (the whole file by default).

        Raises ValueError for an unknown hint or a range outside the file,
        ClosedError after close, FileError if the kernel refuses.
        """
        code = _ADVICE.get(advice)
        if code is None:
            raise ValueError(f"unknown advice {advice!r}; choose from {sorted(_ADVICE)}")
        if length is None:
            length = self.size - offset
        if offset < 0 or length < 0 or offset + length > self.size:
            raise ValueError(f"range {offset}+{length} is outside the file ({self.size} bytes)")
        self._map.advise(code, offset, length)

    def flush(self) -> None:
        """Write dirty pages of a read-write map to the file (msync MS_SYNC)."""
        self._map.sync()

    def close(self, timeout: float | None = None) -> None:
        """Wait for every lease to end, then unmap. Idempotent.

        With a timeout, raises CloseTimeoutError when it runs out and leaves
        the map open and usable. New leases are refused while close waits.
        Raises RuntimeError if the calling thread itself holds a lease (it
        would wait forever) and BusyError if views outlived their leases.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            if self._map.closed:
                return
            if self._holders.get(threading.get_ident()):
                raise RuntimeError("close() called by a thread that holds a lease")
            self._closing += 1
            try:
                while self._leases:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        raise CloseTimeoutError(
                            f"{self._leases} lease(s) on {self._path!r} still held "
                            f"after {timeout} s; the map stays open"
                        )
                    self._cond.wait(remaining)
                self._map.close()  # BusyError if views outlived their leases
            finally:
                self._closing -= 1  # a timed-out close leaves the others waiting

    def __enter__(self) -> MappedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{self.size} bytes, {self._leases} lease(s)"
        return f"<MappedFile {self._path!r} {state}>"
