"""What mapping an input file costs, by how the file entered the page cache.

    python benchmarks/bench_mapping.py [--runs 5]

The same bytes (a copy of the 1M-event file) in four states: "as
written" (just written by a program, line by line: on Linux 6.x the page
cache holds it in small folios), "read back by read()" (evicted, then
read with plain read() calls, as cat does), "read back by MappedFile"
(evicted, then read through a MappedFile as a first `rulejet run` reads
it: its MADV_HUGEPAGE asks readahead for 2 MiB folios, which a 2 MiB-
aligned map covers with 2 MiB page-table entries) and "cold" (evicted
before each run: read from disk during the run). For each: the page-table
set-up alone (map, touch one byte per 4 KiB, unmap) through a MappedFile
and, as the peer, through Python's mmap module (the kernel's own
placement, no advice), and `rulejet run` on rules_10 with one thread.
"""

from __future__ import annotations

import argparse
import mmap
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from _common import (
    DATA,
    SHARED_BENCH,
    drop_from_page_cache,
    events_file,
    machine_facts,
    table,
    touch_pages,
)
from bench_rules import cli_run


def write_copy(src: Path, dst: Path) -> None:
    """dst := src, written the way a program writes a log: line by line."""
    dst.unlink(missing_ok=True)  # its cached pages go with it
    with open(src, "rb") as f, open(dst, "w", encoding="utf-8") as out:
        for line in f:
            out.write(line.decode())


def touch_with_mmap_module(path: Path) -> None:
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        memoryview(mm)[::4096].tobytes()


def median_ms(
    fn: Callable[[], object], runs: int, before: Callable[[], object] | None = None
) -> float:
    times = []
    for _ in range(runs):
        if before:
            before()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    src = events_file()
    copy = DATA / "events_1m_copy.ndjson"
    rules = SHARED_BENCH / "rules_10.yaml"
    size = src.stat().st_size

    def run_mbs(before: Callable[[], object] | None = None) -> float:
        speeds = []
        for _ in range(args.runs):
            if before:
                before()
            stats = cli_run(rules, copy, 1)
            speeds.append(stats["bytes"] / stats["seconds"] / 1e6)
        return statistics.median(speeds)

    rows = []
    write_copy(src, copy)
    rows.append([
        "as written",
        f"{median_ms(lambda: touch_with_mmap_module(copy), args.runs):.1f}",
        f"{median_ms(lambda: touch_pages(copy), args.runs):.1f}",
        f"{run_mbs():,.0f}",
    ])  # fmt: skip
    drop_from_page_cache(copy)
    with open(copy, "rb") as f:
        while f.read(1 << 20):
            pass
    rows.append([
        "read back by read()",
        f"{median_ms(lambda: touch_with_mmap_module(copy), args.runs):.1f}",
        f"{median_ms(lambda: touch_pages(copy), args.runs):.1f}",
        f"{run_mbs():,.0f}",
    ])  # fmt: skip
    drop_from_page_cache(copy)
    touch_pages(copy)
    rows.append([
        "read back by MappedFile",
        f"{median_ms(lambda: touch_with_mmap_module(copy), args.runs):.1f}",
        f"{median_ms(lambda: touch_pages(copy), args.runs):.1f}",
        f"{run_mbs():,.0f}",
    ])  # fmt: skip

    def evict() -> None:
        drop_from_page_cache(copy)

    rows.append([
        "cold",
        f"{median_ms(lambda: touch_with_mmap_module(copy), args.runs, evict):.1f}",
        f"{median_ms(lambda: touch_pages(copy), args.runs, evict):.1f}",
        f"{run_mbs(evict):,.0f}",
    ])  # fmt: skip
    copy.unlink()
    print(machine_facts())
    print(f"file: {size / 1e6:.0f} MB; medians of {args.runs}\n")
    print(table(["page cache", "mmap module ms", "MappedFile ms", "rules_10 1 thread MB/s"], rows))


if __name__ == "__main__":
    main()
