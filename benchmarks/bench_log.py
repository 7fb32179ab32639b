"""Durable appends: rulejet.Log against the usual ways, in one run.

    python benchmarks/bench_log.py [--quick]

On the project's own disk (benchmarks/.data), records of 128 B and 4 KiB:
per-record write + fsync; per-record O_DIRECT write + fdatasync (one
4 KiB block per record); 1,000 records per write + one fdatasync (the raw
group-commit ceiling); SQLite in WAL mode with synchronous=FULL, one
insert per transaction and 1,000 per transaction; Python logging with an
fsync per record. rulejet: (a) one thread appending as fast as it can with
sync="group" (each back end), durable records/s counted up to the final
flush(); (b) 1, 8 and 64 threads each appending with durable=True,
records/s and acknowledgement latency p50/p99.
"""

from __future__ import annotations

import argparse
import logging
import mmap
import os
import shutil
import sqlite3
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from _common import machine_facts, table
from rulejet import Log

DATA = Path(__file__).resolve().parent / ".data"


def fresh_dir(base: Path = DATA) -> Path:
    d = base / f"bench-log-{uuid.uuid4().hex[:8]}"
    d.mkdir(parents=True)
    return d


def timed(fn: Callable[[Path], int]) -> tuple[float, int]:
    d = fresh_dir()
    try:
        t0 = time.perf_counter()
        n = fn(d)
        return time.perf_counter() - t0, n
    finally:
        shutil.rmtree(d, ignore_errors=True)


def per_record_fsync(rec: bytes, n: int, lat: list[float]) -> Callable[[Path], int]:
    def run(d: Path) -> int:
        fd = os.open(d / "f", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        for _ in range(n):
            t0 = time.perf_counter()
            os.write(fd, rec)
            os.fsync(fd)
            lat.append(time.perf_counter() - t0)
        os.close(fd)
        return n

    return run


def per_record_odirect(rec: bytes, n: int) -> Callable[[Path], int]:
    def run(d: Path) -> int:
        size = (len(rec) + 4095) // 4096 * 4096
        buf = mmap.mmap(-1, size)  # page-aligned, as O_DIRECT needs
        buf[: len(rec)] = rec
        fd = os.open(d / "f", os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o644)
        os.posix_fallocate(fd, 0, size * n)
        for i in range(n):
            os.pwrite(fd, buf, i * size)
            os.fdatasync(fd)
        os.close(fd)
        return n

    return run


def batched_fdatasync(rec: bytes, n: int, per: int = 1000) -> Callable[[Path], int]:
    def run(d: Path) -> int:
        fd = os.open(d / "f", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        block = rec * per
        for _ in range(n // per):
            os.write(fd, block)
            os.fdatasync(fd)
        os.close(fd)
        return n // per * per

    return run


def sqlite_wal(rec: bytes, n: int, per: int) -> Callable[[Path], int]:
    def run(d: Path) -> int:
        db = sqlite3.connect(d / "db.sqlite", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE log (seq INTEGER PRIMARY KEY, payload BLOB)")
        rows = [(rec,)] * per
        for _ in range(n // per):
            db.execute("BEGIN")
            db.executemany("INSERT INTO log (payload) VALUES (?)", rows)
            db.execute("COMMIT")
        db.close()
        return n // per * per

    return run


def logging_fsync(rec: bytes, n: int) -> Callable[[Path], int]:
    class FsyncHandler(logging.FileHandler):
        def flush(self) -> None:
            super().flush()
            if self.stream:
                os.fsync(self.stream.fileno())

    def run(d: Path) -> int:
        logger = logging.getLogger(f"bench-{uuid.uuid4().hex}")
        logger.propagate = False
        h = FsyncHandler(d / "app.log")
        logger.addHandler(h)
        msg = rec.decode("latin-1")
        for _ in range(n):
            logger.warning(msg)
        h.close()
        return n

    return run


def rulejet_stream(rec: bytes, n: int, backend: str) -> Callable[[Path], int]:
    def run(d: Path) -> int:
        with Log.open(d, "group", backend=backend) as log:  # type: ignore[arg-type]
            append = log.append
            for _ in range(n):
                append(rec)
            log.flush()  # durable up to here: the clock stops after this
        return n

    return run


def rulejet_waiters(
    rec: bytes, threads: int, per_thread: int, base: Path = DATA
) -> tuple[float, float, float]:
    d = fresh_dir(base)
    lat: list[list[float]] = [[] for _ in range(threads)]
    try:
        with Log.open(d, "group") as log:
            start = threading.Barrier(threads + 1)

            def work(k: int) -> None:
                mine = lat[k]
                start.wait()
                for _ in range(per_thread):
                    t0 = time.perf_counter()
                    log.append(rec, durable=True)
                    mine.append(time.perf_counter() - t0)

            ts = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
            for t in ts:
                t.start()
            start.wait()
            t0 = time.perf_counter()
            for t in ts:
                t.join()
            secs = time.perf_counter() - t0
    finally:
        shutil.rmtree(d, ignore_errors=True)
    flat = sorted(x for m in lat for x in m)
    p50, p99 = flat[len(flat) // 2], flat[int(len(flat) * 0.99)]
    return threads * per_thread / secs, p50 * 1e6, p99 * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer records (a smoke run)")
    args = ap.parse_args()
    q = 10 if args.quick else 1
    DATA.mkdir(parents=True, exist_ok=True)
    rows = []
    summary: dict[tuple[str, int], float] = {}
    fsync_lat: list[float] = []
    for size in (128, 4096):
        rec = (b"r" * (size - 1)) + b"\n"
        slow = 2000 // q
        fast = (1_000_000 if size == 128 else 200_000) // q
        contenders: list[tuple[str, Callable[[Path], int]]] = [
            ("write + fsync per record", per_record_fsync(rec, slow, fsync_lat)),
            ("O_DIRECT write + fdatasync per record", per_record_odirect(rec, slow)),
            ("1,000 per write + fdatasync (raw ceiling)", batched_fdatasync(rec, fast)),
            ("SQLite WAL, synchronous=FULL, 1 per txn", sqlite_wal(rec, slow, 1)),
            ("SQLite WAL, synchronous=FULL, 1,000 per txn", sqlite_wal(rec, fast // 2, 1000)),
            ("logging + fsync per record", logging_fsync(rec, slow)),
            ("rulejet Log, group, 1 thread (O_DIRECT)", rulejet_stream(rec, fast, "write")),
            ("rulejet Log, group, 1 thread (mmap+msync)", rulejet_stream(rec, fast, "mmap")),
            ("rulejet Log, group, 1 thread (io_uring)", rulejet_stream(rec, fast, "io_uring")),
        ]
        for name, fn in contenders:
            secs, n = timed(fn)
            rate = n / secs
            summary[name, size] = rate
            print(f"  {size} B {name}: {rate:,.0f} records/s", flush=True)
            rows.append([f"{size} B", name, f"{rate:,.0f}", f"{rate * size / 1e6:,.1f}", "", ""])
        for threads in (1, 8, 64):
            per = max(20, (3000 if threads == 1 else 40_000 // threads) // q)
            rate, p50, p99 = rulejet_waiters(rec, threads, per)
            name = f"rulejet Log, {threads} thread(s), durable=True each"
            summary[name, size] = rate
            print(f"  {size} B {name}: {rate:,.0f} records/s p50 {p50:.0f} µs", flush=True)
            rows.append([f"{size} B", name, f"{rate:,.0f}", f"{rate * size / 1e6:,.1f}",
                         f"{p50:,.0f}", f"{p99:,.0f}"])  # fmt: skip
    # The same waiters with the disk taken away (tmpfs: fdatasync returns at
    # once): what is left is waking threads and handing them the GIL.
    shm = Path("/dev/shm")
    if shm.is_dir():
        rec = (b"r" * 127) + b"\n"
        for threads in (1, 64):
            per = max(20, (3000 if threads == 1 else 40_000 // threads) // q)
            rate, p50, p99 = rulejet_waiters(rec, threads, per, shm)
            name = f"same on tmpfs (no disk), {threads} thread(s)"
            summary[name, 128] = rate
            print(f"  128 B {name}: {rate:,.0f} records/s p99 {p99:.0f} µs", flush=True)
            rows.append(["128 B", name, f"{rate:,.0f}", f"{rate * 128 / 1e6:,.1f}",
                         f"{p50:,.0f}", f"{p99:,.0f}"])  # fmt: skip
    fsync_lat.sort()
    f50 = statistics.median(fsync_lat) * 1e6
    f99 = fsync_lat[int(len(fsync_lat) * 0.99)] * 1e6
    print()
    print(f"on {DATA} (the project's disk); one fsync: p50 {f50:.0f} µs, p99 {f99:.0f} µs")
    print(machine_facts())
    print()
    print(table(["record", "contender", "records/s", "MB/s", "ack p50 µs", "ack p99 µs"], rows))
    print()
    base = summary["write + fsync per record", 128]
    a = summary["rulejet Log, group, 1 thread (O_DIRECT)", 128]
    sq = summary["SQLite WAL, synchronous=FULL, 1,000 per txn", 128]
    ceiling4k = summary["1,000 per write + fdatasync (raw ceiling)", 4096]
    a4k = max(summary["rulejet Log, group, 1 thread (O_DIRECT)", 4096],
              summary["rulejet Log, group, 1 thread (mmap+msync)", 4096])  # fmt: skip
    w64 = summary["rulejet Log, 64 thread(s), durable=True each", 128]
    print(f"(a) 128 B: {a:,.0f} durable records/s = {a / base:.0f}x per-record fsync, "
          f"{a / sq:.1f}x SQLite batched")  # fmt: skip
    print(f"    4 KiB: {a4k / ceiling4k:.0%} of the raw ceiling's MB/s")
    print(f"(b) 64 waiting threads, 128 B: {w64 / base:.1f}x per-record fsync")


if __name__ == "__main__":
    main()
