"""Shared benchmark helpers: the event file, timing, machine facts, tables."""

from __future__ import annotations

import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SHARED_BENCH = HERE.parent.parent / "shared" / "bench"
DATA = HERE / ".data"


def events_file(count: int = 1_000_000) -> Path:
    """The generator's NDJSON file (made on first use; about 1.5 min for 1M)."""
    name = "events_1m.ndjson" if count == 1_000_000 else f"events_{count}.ndjson"
    path = DATA / name
    if not path.exists():
        gen = SHARED_BENCH / "gen_events.py"
        if not gen.exists():
            sys.exit(f"{gen} not found: benchmarks need ../shared/bench beside the repo")
        DATA.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        print(f"generating {path} ...", file=sys.stderr)
        subprocess.run([sys.executable, str(gen), str(count), str(tmp)], check=True)
        tmp.rename(path)
    return path


def lines_of(path: Path, events: int) -> Iterator[bytes]:
    """The first events lines of the file at path, read as Python reads a
    file (the peers' input: they read the events file, as `rulejet run`
    does, not bytes already in memory)."""
    with open(path, "rb") as f:
        yield from itertools.islice(f, events)


def cli_run(
    rules: Path, path: Path, threads: int = 1, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """`rulejet run --format json` in a fresh interpreter (its own timer, so
    start-up is excluded); env: variables set for that run only."""
    out = subprocess.run(
        [sys.executable, "-m", "rulejet.cli", "run", str(rules), str(path),
         "--format", "json", "--threads", str(threads), "--quiet"],
        capture_output=True, text=True, check=True, env={**os.environ, **(env or {})},
    )  # fmt: skip
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def sample_of(data: bytes, events: int) -> bytes:
    """The first events lines of data."""
    end = 0
    for _ in range(events):
        end = data.index(b"\n", end) + 1
    return data[:end]


def drop_from_page_cache(path: Path) -> None:
    """Evict path's cached pages (written back first), as if never read."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def touch_pages(path: Path) -> None:
    """Read one byte of every page of path through a MappedFile."""
    import rulejet

    with rulejet.MappedFile(path) as mf, mf.lease() as view:
        view[::4096].tobytes()


def warm_page_cache(path: Path) -> None:
    """Put path in the page cache as a file read from disk is: evicted,
    then read back through a MappedFile, as a first `rulejet run` reads it.
    How a file entered the cache decides what mapping it costs (on Linux
    6.x a file read back sits in large folios, one just written in small
    ones: see bench_mapping.py), so every benchmark starts from this one
    state instead of whatever the file's history left."""
    drop_from_page_cache(path)
    touch_pages(path)


def events_in_memory() -> tuple[Path, bytes]:
    """The 1M-event file (made on first use), in the page cache, and its bytes."""
    path = events_file()
    warm_page_cache(path)
    return path, path.read_bytes()


def pin_to_one_core() -> int | None:
    """Pin this process (and children) to one CPU; returns it, or None."""
    try:
        cpu = sorted(os.sched_getaffinity(0))[-1]
        os.sched_setaffinity(0, {cpu})
        return cpu
    except (AttributeError, OSError):
        return None


def median_time(fn: Callable[[], object], runs: int) -> tuple[float, object]:
    """Median wall time of ``runs`` calls (after one warm-up) and the last result."""
    result = fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def machine_facts() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import rulejet

    return (
        f"{cpu}; Linux {platform.release()}; Python {platform.python_version()}; "
        f"rulejet {rulejet.__version__} (kernel {rulejet.active_kernel()})"
    )


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    out = ["| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"]
    out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        out.append("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |")
    return "\n".join(out)
