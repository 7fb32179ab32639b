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
import json
import mmap
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import (
    DATA,
    SHARED_BENCH,
    drop_from_page_cache,
    events_file,
    machine_facts,
    table,
    touch_pages,
)


def cli_run(rules: Path, path: Path, threads: int, env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "rulejet.cli", "run", str(rules), str(path),
         "--format", "json", "--threads", str(threads), "--quiet"],
        capture_output=True, text=True, check=True, env=env,
    )  # fmt: skip
    return json.loads(out.stdout)  # type: ignore[no-any-return]


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

    def run_mbs(before: Callable[[], object] | None = None) -> str:
        """rules_10 on one thread: MB/s with the readahead helper and without
        (RULEJET_READAHEAD=0), runs of the two alternating."""
        speeds: dict[bool, list[float]] = {True: [], False: []}
        for i in range(2 * args.runs):
            helper = i % 2 == 0
            if before:
                before()
            env = {**os.environ, "RULEJET_READAHEAD": "1" if helper else "0"}
            stats = cli_run(rules, copy, 1, env)
            speeds[helper].append(stats["bytes"] / stats["seconds"] / 1e6)
        on, off = (statistics.median(speeds[h]) for h in (True, False))
        return f"{on:,.0f} | {off:,.0f}"

    rows = []
    write_copy(src, copy)
    rows.append([
        "as written",
        f"{median_ms(lambda: touch_with_mmap_module(copy), args.runs):.1f}",
        f"{median_ms(lambda: touch_pages(copy), args.runs):.1f}",
        run_mbs(),
    ])  # fmt: skip
    drop_from_page_cache(copy)
    with open(copy, "rb") as f:
        while f.read(1 << 20):
            pass
    rows.append([
        "read back by read()",
        f"{median_ms(lambda: touch_with_mmap_module(copy), args.runs):.1f}",
        f"{median_ms(lambda: touch_pages(copy), args.runs):.1f}",
        run_mbs(),
    ])  # fmt: skip
    drop_from_page_cache(copy)
    touch_pages(copy)
    rows.append([
        "read back by MappedFile",
        f"{median_ms(lambda: touch_with_mmap_module(copy), args.runs):.1f}",
        f"{median_ms(lambda: touch_pages(copy), args.runs):.1f}",
        run_mbs(),
    ])  # fmt: skip

    def evict() -> None:
        drop_from_page_cache(copy)

    rows.append([
        "cold",
        f"{median_ms(lambda: touch_with_mmap_module(copy), args.runs, evict):.1f}",
        f"{median_ms(lambda: touch_pages(copy), args.runs, evict):.1f}",
        run_mbs(evict),
    ])  # fmt: skip
    copy.unlink()
    print(machine_facts())
    print(f"file: {size / 1e6:.0f} MB; medians of {args.runs}\n")
    heads = ["page cache", "mmap module ms", "MappedFile ms", "rules_10 1t MB/s", "no readahead"]
    print(table(heads, [r[:3] + r[3].split(" | ") for r in rows]))


if __name__ == "__main__":
    main()
