"""Arena allocation: memory for hot paths without allocator churn.

``Arena(chunk_size=1 MiB)`` hands out writable buffers carved from large
mmap'd chunks: ``alloc(n, align=16)`` (an ``ArenaBuffer``: buffer protocol,
``len()``, ``.address``) and ``alloc_many(count, n)`` (one block carved
into ``count`` buffers, returned to its free list when the last of them is
dropped; their objects are one array, which the arena keeps for its next
batch; with ``separate=True`` each buffer is its own block and the
allocation loop runs with the GIL released, so threads allocate in
parallel). Reserving memory is one CAS on the chunk cursor, with
pause/backoff on contention.
Requests round up to size classes in three tiers: small (16..256 B),
medium (512 B..64 KiB) and large (their own page-aligned mappings).

``reset()`` frees everything at once and ``close()`` unmaps; both raise
BusyError while any buffer from the arena is still referenced (directly or
through a memoryview or numpy array), so no view can point at freed memory.
``stats()`` reports chunks, bytes in use, the high-water mark, allocations
per tier and CAS retries.

What an arena does not fix: garbage-collector pauses caused by an
application's own cyclic garbage. It removes allocation churn, not
collection of other objects.
"""

from __future__ import annotations

from ._native import Arena, ArenaBuffer

__all__ = ["Arena", "ArenaBuffer"]
