"""Python actions on every core: matched events travel over a shared-memory
Ring to worker processes, which run the rules' Python actions.

The main process evaluates the rules natively (as in any run) and, for
each event whose matched rules have Python actions, puts one message on an
MPMC ring: the positions of those rules, then the raw line. N forked
workers take messages as they are free (load balancing by the ring), decode
the event once and run the actions in priority order. At the end the main
process puts one empty message per worker; each worker answers, over a
pipe, with its per-rule action counts and the first action error.

Workers are forked, so actions may be any callables (lambdas, closures)
and see the module state of the moment the run started. Across workers,
actions run in no particular order; within an event, in priority order.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import struct
import traceback
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from .errors import RulejetError
from .ring import Ring
from .rules import Engine, decode_event

RING_BYTES = 16 << 20
LOCAL_BYTES = RING_BYTES // 4  # an event this large has its actions run in the parent
BATCH = 512
_COUNT = struct.Struct("<H")
_POLL = 1.0  # seconds between liveness checks of the workers while blocked


class ActionError(RulejetError):
    """A rule's Python action raised in a worker process; the message holds
    the worker's traceback. Counts of what ran are in ``counts``."""

    def __init__(self, message: str, counts: dict[str, int]) -> None:
        super().__init__(message)
        self.counts = counts


class WorkerError(RulejetError):
    """A worker process died or stopped answering."""


def encode(positions: Sequence[int], raw: bytes) -> bytes:
    """One message: the count and positions of the matched rules (u16 each),
    then the event's raw bytes."""
    return struct.pack(f"<H{len(positions)}H", len(positions), *positions) + raw


def decode(message: bytes) -> tuple[tuple[int, ...], bytes]:
    (n,) = _COUNT.unpack_from(message)
    positions = struct.unpack_from(f"<{n}H", message, 2)
    return positions, message[2 + 2 * n :]


def _run_event(engine: Engine, positions: Any, raw: bytes, counts: list[int]) -> str | None:
    """One event's actions, counting each rule's that completed; the first
    failure's traceback stops the rest (None if all ran). Raises nothing: a
    worker that died here would strand the end marks in its batch."""
    try:
        value = decode_event(raw)
    except Exception:  # the parent refuses undecodable lines first; this is the backstop
        return f"event not decodable for its actions: {traceback.format_exc()}"
    for pos in positions:
        try:
            engine.run_actions(pos, value)
            counts[pos] += 1
        except Exception:
            return f"rule {engine.rules[pos].name!r}: {traceback.format_exc()}"
    return None


def _worker(engine: Engine, ring_name: str, conn: Any) -> None:
    counts = [0] * len(engine.rules)
    error = None
    try:
        ring = Ring.attach(ring_name)
        done = False
        while not done:
            batch = ring.get_many(BATCH)
            for k, message in enumerate(batch):
                if not message:
                    # End marks come after every event: the rest of this
                    # batch are other workers' end marks; hand them back.
                    ring.put_many(batch[k + 1 :])
                    done = True
                    break
                if error is None:  # after a failure: drain the ring, run and count nothing
                    error = _run_event(engine, *decode(message), counts)
        ring.close()
    except BaseException:
        error = error or traceback.format_exc()
    conn.send((counts, error))
    conn.close()


class WorkerPool:
    """N forked workers fed by one MPMC ring. Use as a context manager:
    leaving it stops the workers and removes the ring, also on errors."""

    def __init__(self, engine: Engine, workers: int) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        if len(engine.rules) >= 1 << 16:
            raise ValueError("workers=N supports up to 65,535 rules")
        self.engine = engine
        self.local_counts = [0] * len(engine.rules)
        self.local_error: str | None = None
        self.name = f"run-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.ring = Ring.create(self.name, RING_BYTES, mode="mpmc")
        ctx = mp.get_context("fork")
        self.procs: list[Any] = []
        self.conns: list[Any] = []
        try:
            for _ in range(workers):
                mine, theirs = ctx.Pipe(duplex=False)
                p = ctx.Process(target=_worker, args=(engine, self.name, theirs), daemon=True)
                p.start()
                theirs.close()
                self.procs.append(p)
                self.conns.append(mine)
        except BaseException:
            self.close()
            raise

    def _result(self, i: int) -> tuple[list[int], str | None]:
        """Worker i's answer; WorkerError if it died without one."""
        p, conn = self.procs[i], self.conns[i]
        while not conn.poll(_POLL):
            if not p.is_alive() and not conn.poll():
                break
        try:
            return conn.recv()  # type: ignore[no-any-return]
        except (EOFError, OSError):
            p.join(5)
            raise WorkerError(f"worker {i} (pid {p.pid}) died, exit code {p.exitcode}") from None

    def _check_alive(self) -> None:
        """While events are being sent, every worker must still be running."""
        for i, p in enumerate(self.procs):
            if not p.is_alive():
                why = self._result(i)[1]
                raise WorkerError(f"worker {i} (pid {p.pid}) stopped early: {why}")

    def _put_many(self, messages: list[bytes]) -> None:
        while True:
            try:
                self.ring.put_many(messages, timeout=_POLL)
                return
            except TimeoutError as e:
                self._check_alive()
                messages = messages[getattr(e, "put_count", 0) :]  # resend only the rest

    def submit(self, events: Callable[[], Any]) -> None:
        """Send every (positions, raw bytes) pair that ``events()`` yields."""
        batch: list[bytes] = []
        for positions, raw in events():
            if len(raw) > LOCAL_BYTES:  # too big for the ring's messages
                self._run_here(positions, raw)
                continue
            batch.append(encode(positions, raw))
            if len(batch) == BATCH:
                self._put_many(batch)
                batch = []
        if batch:
            self._put_many(batch)

    def _run_here(self, positions: tuple[int, ...], raw: bytes) -> None:
        """An event's actions in this process, as a worker would run them."""
        if self.local_error is None:
            self.local_error = _run_event(self.engine, positions, raw, self.local_counts)

    def finish(self) -> list[int]:
        """Stop the workers; per-rule counts of events whose actions ran.
        Raises ActionError if an action raised, WorkerError if a worker
        died."""
        self._put_many([b""] * len(self.procs))
        totals = list(self.local_counts)
        errors = [f"parent: {self.local_error}"] if self.local_error else []
        for i in range(len(self.procs)):
            counts, error = self._result(i)
            totals = [a + b for a, b in zip(totals, counts, strict=True)]
            if error:
                errors.append(f"worker {i}: {error}")
        for p in self.procs:
            p.join(10)
        if errors:
            names = dict(zip(self.engine.names, totals, strict=True))
            raise ActionError(errors[0], names)
        return totals

    def close(self) -> None:
        for p in self.procs:
            if p.is_alive():
                p.kill()
            p.join(5)
        for c in self.conns:
            c.close()
        self.ring.unlink()
        self.ring.close()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
