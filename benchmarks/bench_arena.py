"""Small allocations: Arena against bytearray and slicing, in one run.

    python benchmarks/bench_arena.py [--runs 5] [--count 1000000]

(a) of the arena issue: --count allocations of 64 B each, timed as a whole
(median of --runs), per call and per buffer: Arena.alloc one at a time,
Arena.alloc_many in one batch, bytearray(64), and a memoryview slice of a
preallocated buffer. The frame-pipeline half is bench_frames.py.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time

from _common import machine_facts, table
from rulejet import Arena


def timed(fn, runs: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--count", type=int, default=1_000_000)
    args = ap.parse_args()
    n = args.count
    arena = Arena()
    big = memoryview(bytearray(64 * n))

    def arena_single() -> None:
        alloc = arena.alloc
        keep = [alloc(64) for _ in range(n)]
        del keep
        arena.reset()

    def arena_batch() -> None:
        keep = arena.alloc_many(n, 64)
        del keep
        arena.reset()

    def arena_batch_cold() -> None:
        fresh = Arena()  # nothing to reuse: every page is touched for the first time
        keep = fresh.alloc_many(n, 64)
        del keep
        fresh.close()

    def py_bytearray() -> None:
        keep = [bytearray(64) for _ in range(n)]
        del keep

    def py_slice() -> None:
        keep = [big[i * 64 : i * 64 + 64] for i in range(n)]
        del keep

    rows = []
    base = None
    for name, fn in [
        ("bytearray(64)", py_bytearray),
        ("memoryview slice of a preallocated buffer", py_slice),
        ("Arena.alloc(64), one call each", arena_single),
        ("Arena.alloc_many(n, 64), one batch", arena_batch),
        ("Arena.alloc_many(n, 64), a fresh arena's first batch", arena_batch_cold),
    ]:
        secs = timed(fn, args.runs)
        base = base or secs
        rows.append([name, f"{secs * 1e9 / n:.0f}", f"{secs / base:.2f}x"])
        print(f"  {name}: {secs * 1e9 / n:.0f} ns per buffer", flush=True)
    print()
    print(f"{n:,} buffers of 64 B, median of {args.runs} runs (each keeps all buffers alive)")
    print(machine_facts())
    print()
    print(table(["contender", "ns per buffer", "time ÷ bytearray(64)"], rows))


if __name__ == "__main__":
    main()
