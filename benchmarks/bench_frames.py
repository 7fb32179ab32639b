"""A frame pipeline: FramePool against fresh buffers, in one run.

    python benchmarks/bench_frames.py [--frames 5000]

(b) of the arena issue: 1280x720 YUV420 frames (1,382,400 bytes), each
allocated, written and released, in two pipelines: a light write (a
64-byte header) and a whole write (a copy of a source frame); each without
and with a background load of cyclic garbage (1,000 self-referencing
dicts per frame). Reported per contender: frames/s, per-frame latency
p50/p99/max, minor page faults (getrusage) and garbage-collector runs and
pause time during the loop (gc.callbacks). Each contender first runs 100
untimed frames, so the figures are steady state.

glibc hands a freed 1.4 MB block straight back to the next allocation of
that size (its mmap threshold rises after the first free), so in this
process "fresh" buffers are in fact recycled memory. The whole-copy
pipeline is therefore run a second time in a child process with glibc's
mmap threshold pinned at its 128 KiB default (MALLOC_MMAP_THRESHOLD_),
where each buffer is mapped fresh from the OS and faulted in, as in a
process whose allocator does not keep the block: both regimes are shown.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import time
from array import array
from collections.abc import Callable
from typing import Any

import numpy as np

from _common import machine_facts, table
from rulejet import FramePool

FRAME = 1280 * 720 * 3 // 2  # YUV420


class GcWatch:
    def __init__(self) -> None:
        self.runs, self.pause, self._t = 0, 0.0, 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._t = time.perf_counter()
        else:
            self.runs += 1
            self.pause += time.perf_counter() - self._t


def run(step: Callable[[], None], frames: int, garbage: bool) -> list[float]:
    for _ in range(100):  # steady state: first touches of pool pages are not counted
        step()
    gc.collect()
    watch = GcWatch()
    gc.callbacks.append(watch)
    # Latencies go into a preallocated array: growing a list of floats
    # would itself take page faults and count them against the contender.
    lat = array("d", bytes(8 * frames))
    faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t_all = time.perf_counter()
    try:
        for k in range(frames):
            if garbage:
                for _ in range(1000):
                    d: dict[str, Any] = {}
                    d["self"] = d
            t0 = time.perf_counter()
            step()
            lat[k] = time.perf_counter() - t0
    finally:
        gc.callbacks.remove(watch)
    total = time.perf_counter() - t_all
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0
    lat = array("d", sorted(lat))
    return [
        frames / total,
        lat[len(lat) // 2] * 1e6,
        lat[int(len(lat) * 0.99)] * 1e6,
        lat[-1] * 1e3,
        faults,
        watch.runs,
        watch.pause * 1e3,
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=5000)
    ap.add_argument("--fresh-pages-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    src = np.random.default_rng(1).integers(0, 256, FRAME, dtype=np.uint8)
    header = src[:64]
    pool = FramePool((FRAME,), np.uint8, 4)

    def contenders(copy: bool) -> list[tuple[str, Callable[[], None]]]:
        part = src if copy else header
        n = len(part)

        def frame_pool() -> None:
            with pool.lease() as f:
                f[:n] = part

        def np_empty() -> None:
            a = np.empty(FRAME, np.uint8)
            a[:n] = part

        def np_zeros() -> None:
            a = np.zeros(FRAME, np.uint8)
            a[:n] = part

        def py_bytearray() -> None:
            b = bytearray(FRAME)
            memoryview(b)[:n] = memoryview(part)

        return [
            ("FramePool (4 frames)", frame_pool),
            ("numpy.empty", np_empty),
            ("numpy.zeros", np_zeros),
            ("bytearray(n)", py_bytearray),
        ]

    if args.fresh_pages_child:  # the whole-copy rows only, as JSON
        print(json.dumps({name: run(fn, args.frames, False) for name, fn in contenders(True)}))
        return
    rows = []
    results: dict[tuple[str, bool, bool], list[float]] = {}
    for copy in (False, True):
        for garbage in (False, True):
            for name, fn in contenders(copy):
                r = run(fn, args.frames, garbage)
                results[name, copy, garbage] = r
                print(f"  {name} copy={copy} garbage={garbage}: {r[0]:,.0f} frames/s", flush=True)
                rows.append([name, "whole copy" if copy else "64-byte header",
                             "yes" if garbage else "no", f"{r[0]:,.0f}", f"{1e6 / r[0]:.1f}",
                             f"{r[1]:.1f}", f"{r[2]:.1f}", f"{r[3]:.2f}", f"{r[4]:,}",
                             f"{r[5]}", f"{r[6]:.0f}"])  # fmt: skip
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(128 * 1024))
    child = subprocess.run(
        [sys.executable, __file__, "--frames", str(args.frames), "--fresh-pages-child"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    fresh = json.loads(child.stdout.strip().splitlines()[-1])
    for name, r in fresh.items():
        results[name + " [fresh pages]", True, False] = r
        rows.append([name + " [fresh pages]", "whole copy", "no", f"{r[0]:,.0f}",
                     f"{1e6 / r[0]:.1f}", f"{r[1]:.1f}", f"{r[2]:.1f}", f"{r[3]:.2f}",
                     f"{int(r[4]):,}", f"{int(r[5])}", f"{r[6]:.0f}"])  # fmt: skip
    print()
    print(f"{args.frames:,} frames of {FRAME:,} bytes each")
    print(machine_facts() + f"; numpy {np.__version__}")
    print()
    print(table(["contender", "write", "cyclic garbage", "frames/s", "µs per frame", "p50 µs",
                 "p99 µs", "max ms", "minor faults", "gc runs", "gc pause ms"], rows))  # fmt: skip
    print()
    pool_name = "FramePool (4 frames)"
    for copy in (False, True):
        mine = results[pool_name, copy, False]
        what = "whole copy" if copy else "64-byte header"
        for other in ("numpy.zeros", "bytearray(n)", "numpy.empty"):
            theirs = results[other, copy, False]
            print(f"{what}: FramePool is {mine[0] / theirs[0]:.2f}x the frames/s of {other}; "
                  f"max latency {theirs[3] / mine[3]:.2f}x lower")  # fmt: skip
    mine = results[pool_name + " [fresh pages]", True, False]
    for other in ("numpy.zeros", "bytearray(n)", "numpy.empty"):
        theirs = results[other + " [fresh pages]", True, False]
        print(f"whole copy, fresh pages: FramePool's max latency is {theirs[3] / mine[3]:.2f}x "
              f"lower than {other}'s")  # fmt: skip


if __name__ == "__main__":
    main()
