"""Line indexing over the 1M-event NDJSON file, against named peers.

    python benchmarks/bench_lines.py [--runs 5] [--file PATH]

Single core (the process is pinned to one CPU, children included), file in
the page cache. Every contender must find the same number of lines; the
table gives GB/s (median of --runs) and rulejet's speed as a ratio.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import rulejet
from _common import events_file, machine_facts, median_time, pin_to_one_core, table, warm_page_cache


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--file", type=Path, default=None)
    args = ap.parse_args()

    path = args.file or events_file()
    size = path.stat().st_size
    cpu = pin_to_one_core()
    warm_page_cache(path)
    data = path.read_bytes()

    def mapped(kernel: str) -> int:
        with rulejet.use_kernel(kernel), rulejet.MappedFile(path) as mf, mf.lease() as view:
            return len(rulejet.line_offsets(view))

    def in_memory() -> int:
        return len(rulejet.line_offsets(data))

    def streamed() -> int:
        return sum(len(c) for c in rulejet.iter_line_offsets(path))

    def split_bytes() -> int:
        parts = data.split(b"\n")
        return len(parts) - (parts[-1] == b"")

    def read_and_split() -> int:
        return split_bytes_of(path.read_bytes())

    def for_line() -> int:
        n = 0
        with open(path, "rb") as f:
            for _ in f:
                n += 1
        return n

    def wc_l() -> int:
        out = subprocess.run(["wc", "-l", str(path)], capture_output=True, text=True, check=True)
        return int(out.stdout.split()[0]) + (not data.endswith(b"\n"))

    contenders: list[tuple[str, object]] = [
        (f"rulejet line_offsets, MappedFile ({k})", lambda k=k: mapped(k))
        for k in rulejet.available_kernels()
    ]
    contenders += [
        ("rulejet line_offsets, bytes in memory", in_memory),
        ("rulejet iter_line_offsets (16 MiB reads)", streamed),
        ("bytes.split(b'\\n'), bytes in memory", split_bytes),
        ("read() + bytes.split(b'\\n')", read_and_split),
        ("Python `for line in file`", for_line),
        ("wc -l", wc_l),
    ]
    results = []
    for name, fn in contenders:
        secs, count = median_time(fn, args.runs)  # type: ignore[arg-type]
        results.append((name, secs, count))
        print(f"  {name}: {size / secs / 1e9:.2f} GB/s ({count} lines)", flush=True)

    counts = {c for _, _, c in results}
    if len(counts) != 1:
        raise SystemExit(f"contenders disagree on the line count: {results}")
    best = min(s for n, s, _ in results if n.startswith("rulejet line_offsets, MappedFile"))
    rows = [
        [name, f"{size / secs / 1e9:.2f}", f"{secs * 1e3:.1f}", f"{secs / best:.2f}x"]
        for name, secs, _ in results
    ]
    print()
    print(f"{size / 1e6:.0f} MB, {counts.pop()} lines, {args.runs} runs (median), CPU {cpu}")
    print(machine_facts())
    print()
    print(table(["contender", "GB/s", "ms", "time ÷ rulejet mapped (best)"], rows))


def split_bytes_of(buf: bytes) -> int:
    parts = buf.split(b"\n")
    return len(parts) - (parts[-1] == b"")


if __name__ == "__main__":
    main()
