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
placement, no advice), and `rulejet run` on rules_10 with one thread, with
the readahead helper (a thread that faults the input in ahead of a
one-thread scan) and without it (RULEJET_READAHEAD=0), runs alternating.
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
    cli_run,
    drop_from_page_cache,
    events_file,
    machine_facts,
    table,
    touch_pages,
)


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

    def run_mbs(before: Callable[[], object] | None) -> list[str]:
        """rules_10 on one thread: MB/s with the readahead helper and without
        (RULEJET_READAHEAD=0), runs of the two alternating."""
        speeds: dict[bool, list[float]] = {True: [], False: []}
        for i in range(2 * args.runs):
            helper = i % 2 == 0
            if before:
                before()
            stats = cli_run(rules, copy, 1, {"RULEJET_READAHEAD": "1" if helper else "0"})
            speeds[helper].append(stats["bytes"] / stats["seconds"] / 1e6)
        return [f"{statistics.median(speeds[h]):,.0f}" for h in (True, False)]

    def row(state: str, before: Callable[[], object] | None = None) -> list[str]:
        """Every measurement for the copy's cache state (before: what puts it
        back in that state ahead of each one)."""
        return [
            state,
            f"{median_ms(lambda: touch_with_mmap_module(copy), args.runs, before):.1f}",
            f"{median_ms(lambda: touch_pages(copy), args.runs, before):.1f}",
            *run_mbs(before),
        ]

    write_copy(src, copy)
    rows = [row("as written")]
    drop_from_page_cache(copy)
    with open(copy, "rb") as f:
        while f.read(1 << 20):
            pass
    rows.append(row("read back by read()"))
    drop_from_page_cache(copy)
    touch_pages(copy)
    rows.append(row("read back by MappedFile"))
    rows.append(row("cold", lambda: drop_from_page_cache(copy)))
    copy.unlink()
    print(machine_facts())
    print(f"file: {size / 1e6:.0f} MB; medians of {args.runs}\n")
    heads = ["page cache", "mmap module ms", "MappedFile ms", "rules_10 1t MB/s", "no readahead"]
    print(table(heads, rows))


if __name__ == "__main__":
    main()
