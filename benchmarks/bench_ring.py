"""Messages between two processes: rulejet.Ring against its peers, in one run.

    python benchmarks/bench_ring.py [--runs 3] [--quick]

One producer process and one consumer process; 64 B and 1 KiB messages;
single calls and batched calls (put_many/get_many, 256 per call). Peers:
multiprocessing.Queue, multiprocessing.Pipe (send_bytes/recv_bytes) and
faster-fifo (single, and put_many/get_many). Throughput is messages from
the producer's first put to the consumer's last get (median of --runs);
latency is one-way (the producer stamps each message with
time.perf_counter_ns, a system-wide monotonic clock, and the consumer
subtracts) at a modest rate (a 100 µs sleep between messages: about
7,000 messages/s), p50 and p99.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import struct
import time
from collections.abc import Callable
from typing import Any

from _common import machine_facts, table
from rulejet import Ring

BATCH = 256
CTX = mp.get_context("fork")


# Each transport: make() -> (send_end, recv_end) factories usable after fork.
class RingT:
    def __init__(self, mode: str, size: int) -> None:
        self.mode, self.name = mode, f"bench-{mode}-{size}-{time.monotonic_ns()}"
        self.ring = Ring.create(self.name, 1 << 22, mode=mode)  # type: ignore[arg-type]

    def put(self, m: bytes) -> None:
        self.ring.put(m)

    def put_many(self, ms: list[bytes]) -> None:
        self.ring.put_many(ms)

    def get(self) -> bytes:
        return self.ring.get()

    def get_many(self) -> list[bytes]:
        return self.ring.get_many(BATCH)

    def close(self) -> None:
        self.ring.unlink()
        self.ring.close()


class QueueT:
    def __init__(self) -> None:
        self.q: Any = CTX.Queue(maxsize=10_000)

    def put(self, m: bytes) -> None:
        self.q.put(m)

    def get(self) -> bytes:
        return bytes(self.q.get())

    def close(self) -> None:
        self.q.close()


class PipeT:
    def __init__(self) -> None:
        self.r, self.w = CTX.Pipe(duplex=False)

    def put(self, m: bytes) -> None:
        self.w.send_bytes(m)

    def get(self) -> bytes:
        return self.r.recv_bytes()

    def close(self) -> None:
        self.r.close()
        self.w.close()


class FifoT:
    def __init__(self) -> None:
        from faster_fifo import Queue

        self.q = Queue(max_size_bytes=1 << 22)

    def put(self, m: bytes) -> None:
        self.q.put(m)

    def put_many(self, ms: list[bytes]) -> None:
        self.q.put_many(ms)

    def get(self) -> bytes:
        return bytes(self.q.get())

    def get_many(self) -> list[bytes]:
        return self.q.get_many(max_messages_to_get=BATCH)  # type: ignore[no-any-return]

    def close(self) -> None:
        self.q.close()


def producer(t: Any, n: int, size: int, batched: bool, out: Any) -> None:
    msg = b"x" * size
    t0 = time.perf_counter()
    if batched:
        batch = [msg] * BATCH
        for _ in range(n // BATCH):
            t.put_many(batch)
    else:
        put = t.put
        for _ in range(n):
            put(msg)
    out.put(("t0", t0))


def consumer(t: Any, n: int, batched: bool, out: Any) -> None:
    got = 0
    if batched:
        get_many = t.get_many
        while got < n:
            got += len(get_many())
    else:
        get = t.get
        for _ in range(n):
            get()
    out.put(("t1", time.perf_counter()))


def throughput(make: Callable[[], Any], n: int, size: int, batched: bool) -> float:
    t = make()
    out = CTX.Queue()
    try:
        c = CTX.Process(target=consumer, args=(t, n, batched, out))
        c.start()
        p = CTX.Process(target=producer, args=(t, n, size, batched, out))
        p.start()
        p.join()
        c.join()
        stamps = dict([out.get(), out.get()])
    finally:
        t.close()
    return n / (stamps["t1"] - stamps["t0"])


def lat_producer(t: Any, n: int, size: int) -> None:
    pad = b"x" * (size - 8)
    for _ in range(n):
        # Sleep, not spin: a spinning producer would hold the GIL and starve
        # multiprocessing.Queue's feeder thread.
        time.sleep(0.0001)
        t.put(struct.pack("<q", time.perf_counter_ns()) + pad)


def lat_consumer(t: Any, n: int, out: Any) -> None:
    lat = []
    for _ in range(n):
        m = t.get()
        lat.append(time.perf_counter_ns() - struct.unpack_from("<q", m)[0])
    lat.sort()
    out.put((lat[len(lat) // 2] / 1e3, lat[int(len(lat) * 0.99)] / 1e3))


def latency(make: Callable[[], Any], n: int, size: int) -> tuple[float, float]:
    t = make()
    out = CTX.Queue()
    try:
        c = CTX.Process(target=lat_consumer, args=(t, n, out))
        c.start()
        p = CTX.Process(target=lat_producer, args=(t, n, size))
        p.start()
        p.join()
        c.join()
        return out.get()  # type: ignore[no-any-return]
    finally:
        t.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="fewer messages (a smoke run)")
    args = ap.parse_args()
    scale = 10 if args.quick else 1
    try:
        import faster_fifo  # noqa: F401

        have_fifo = True
    except ImportError:
        have_fifo = False

    rows = []
    results: dict[tuple[str, int], float] = {}
    for size in (64, 1024):
        contenders: list[tuple[str, Callable[[], Any], bool, int]] = [
            ("rulejet Ring spsc, put/get", lambda s=size: RingT("spsc", s), False, 2_000_000),
            ("rulejet Ring spsc, put_many/get_many", lambda s=size: RingT("spsc", s), True,
             8_000_000),
            ("rulejet Ring mpmc, put/get", lambda s=size: RingT("mpmc", s), False, 2_000_000),
            ("rulejet Ring mpmc, put_many/get_many", lambda s=size: RingT("mpmc", s), True,
             4_000_000),
            ("multiprocessing.Queue", QueueT, False, 200_000),
            ("multiprocessing.Pipe", PipeT, False, 400_000),
        ]  # fmt: skip
        if have_fifo:
            contenders += [
                ("faster-fifo, put/get", FifoT, False, 200_000),
                ("faster-fifo, put_many/get_many", FifoT, True, 1_000_000),
            ]
        for name, make, batched, n in contenders:
            n = max(BATCH, n // scale // BATCH * BATCH)
            rates = [throughput(make, n, size, batched) for _ in range(args.runs)]
            rate = statistics.median(rates)
            results[name, size] = rate
            p50, p99 = latency(make, 2000 if args.quick else 5000, size) if not batched else (0, 0)
            lat = (f"{p50:.1f}", f"{p99:.1f}") if not batched else ("", "")
            print(f"  {size} B {name}: {rate:,.0f} msg/s", flush=True)
            rows.append([f"{size} B", name, f"{rate:,.0f}", f"{rate * size / 1e6:,.0f}", *lat])
    for size in (64, 1024):
        q = results["multiprocessing.Queue", size]
        for row in rows:
            if row[0] == f"{size} B":
                row.append(f"{results[row[1], size] / q:.1f}x")
    print()
    print(f"one producer and one consumer process, median of {args.runs} runs; "
          f"batches of {BATCH}; latency with 100 µs sleeps between messages")  # fmt: skip
    print(machine_facts())
    print()
    print(table(["size", "contender", "msg/s", "MB/s", "p50 µs", "p99 µs",
                 "÷ mp.Queue"], rows))  # fmt: skip


if __name__ == "__main__":
    main()
