"""A lock-free ring of variable-length messages in shared memory, between
processes (and threads).

    ring = Ring.create("events", 1 << 24, mode="spsc")   # in one process
    ring = Ring.attach("events")                          # in another
    ring.put(b"hello"); ring.get()                        # -> b"hello"

The ring is a file under /dev/shm (``/dev/shm/rulejet-ring-NAME``) that
every process maps; see ``_native/core/ring.h`` for the algorithms (SPSC:
byte positions published with one release store per batch; MPMC: a
sequence word per 32-byte slot, Vyukov-style, a message taking k slots).
Blocking calls spin briefly, then sleep on a futex; ``timeout=None`` waits
without limit (Ctrl-C still works), a number of seconds raises
TimeoutError when it runs out, 0 never waits.

SPSC means one producer and one consumer in all (each may be any thread
of its process: the GIL serializes a process's calls). The file outlives
the processes: ``unlink()`` removes it; a ring left behind by a killed
process can be attached again (its messages are still there) or removed
with ``Ring.remove(name)``.
"""

from __future__ import annotations

import os
import re
from typing import Any, Literal

from ._native import RingBase
from .errors import RingError

SHM_DIR = "/dev/shm"
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,200}")
_MODES = {"spsc": 1, "mpmc": 2}


def ring_path(name: str) -> str:
    """The file that holds ring ``name``. Raises ValueError for names that
    are not plain (letters, digits, ``_ . -``)."""
    if not _NAME.fullmatch(name) or name in (".", ".."):
        raise ValueError(f"bad ring name {name!r}: use letters, digits, '_', '.', '-'")
    return os.path.join(SHM_DIR, f"rulejet-ring-{name}")


class Ring(RingBase):
    """A shared-memory ring; make one with ``Ring.create`` or ``Ring.attach``.

    ``put(data, timeout=None)``, ``put_many(items, timeout=None)``,
    ``get(timeout=None) -> bytes`` and ``get_many(max_items, timeout=None)
    -> list[bytes]`` (at least one message, at most max_items, no waiting
    for more once one is there) are native. A message larger than the ring
    takes raises ValueError at put."""

    name: str
    path: str

    @classmethod
    def create(cls, name: str, capacity_bytes: int, mode: Literal["spsc", "mpmc"] = "spsc") -> Ring:
        """A new ring of at least ``capacity_bytes`` (rounded up to a power of
        two, at least 4096). Raises FileError if the name is taken."""
        if mode not in _MODES:
            raise ValueError(f"mode must be 'spsc' or 'mpmc', not {mode!r}")
        if not 0 < capacity_bytes <= 1 << 40:  # the native side's RJ_RING_MAX_CAPACITY
            raise ValueError("capacity_bytes must be positive and at most 1 TiB")
        path = ring_path(name)
        ring = cls(path, True, capacity_bytes, _MODES[mode])
        ring.name, ring.path = name, path
        return ring

    @classmethod
    def attach(cls, name: str) -> Ring:
        """Map an existing ring. Raises FileError if there is none and
        RingError if the file is not a sound ring (bad magic, version,
        sizes or header checksum)."""
        path = ring_path(name)
        ring = cls(path, False)
        ring.name, ring.path = name, path
        return ring

    @staticmethod
    def remove(name: str) -> bool:
        """Delete ring ``name``'s file (processes that mapped it keep their
        mapping). Returns False if there was none."""
        try:
            os.unlink(ring_path(name))
        except FileNotFoundError:
            return False
        return True

    def unlink(self) -> None:
        """Delete this ring's file; the mapping stays usable until close()."""
        self.remove(self.name)

    @property
    def mode(self) -> str:
        return str(self.info()["mode"])

    @property
    def capacity(self) -> int:
        return int(self.info()["capacity"])

    def __enter__(self) -> Ring:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{self.mode}, {self.capacity} bytes"
        return f"<Ring {getattr(self, 'name', '?')!r} {state}>"

    def __reduce__(self) -> Any:
        # A ring travels to another process by name.
        return (Ring.attach, (self.name,))


__all__ = ["Ring", "RingError", "ring_path"]
