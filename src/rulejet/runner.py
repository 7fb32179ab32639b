"""Running a rule set over NDJSON: partitions, threads, stats, actions.

The unit of work is a (buffer, byte range) partition cut at line starts;
its result (PartialResult) merges with others by addition, line numbers
shifted by the lines before it, so partitions can run on threads here and
on other machines later. The native loop runs with the GIL released, so
threads use every core; only matched events that have Python work to do
(callable actions, tags, handlers) become Python objects, and routed
lines go to their sinks with vectored writes straight from the map.
"""

from __future__ import annotations

import errno
import itertools
import os
import sys
import time
from array import array
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import _native
from .errors import FileError, JSONError
from .mapped import MappedFile
from .rules import decode_event
from .sinks import Sinks, routes
from .workers import WorkerPool

if TYPE_CHECKING:
    from typing_extensions import Buffer

    from .rules import Engine

MAX_ERRORS = 100
MIN_PARTITION_BYTES = 64 << 10  # below this, a partition is not worth a thread
PARTITION_BYTES = 32 << 20  # small enough to balance threads and show progress
SCAN_BATCH = 1024  # matched lines scan() copies out between yields


@dataclass
class LineErrorInfo:
    line: int
    offset: int
    column: int
    message: str


@dataclass
class PartialResult:
    """What one partition found; partitions merge by addition."""

    lines: int = 0
    blank: int = 0
    bad: int = 0
    bytes: int = 0
    counts: list[int] = field(default_factory=list)
    eval_errors: list[int] = field(default_factory=list)
    errors: list[LineErrorInfo] = field(default_factory=list)
    matches: list[tuple[int, int, int, tuple[int, ...]]] = field(default_factory=list)
    allocations: int = 0  # inside the native loop, after set-up (flat, not per event)
    in_python: list[int] = field(default_factory=list)  # see RunStats.in_python

    def shifted(self, lines_before: int, offset_before: int) -> PartialResult:
        """Line numbers and offsets as seen from the whole input."""
        return PartialResult(
            self.lines,
            self.blank,
            self.bad,
            self.bytes,
            self.counts,
            self.eval_errors,
            [
                LineErrorInfo(e.line + lines_before, e.offset + offset_before, e.column, e.message)
                for e in self.errors
            ],
            [(ln + lines_before, off + offset_before, n, r) for ln, off, n, r in self.matches],
            self.allocations,
            self.in_python,
        )

    def merge(self, other: PartialResult) -> PartialResult:
        """self followed by other (other already shifted)."""
        return PartialResult(
            self.lines + other.lines,
            self.blank + other.blank,
            self.bad + other.bad,
            self.bytes + other.bytes,
            _add(self.counts, other.counts),
            _add(self.eval_errors, other.eval_errors),
            (self.errors + other.errors)[:MAX_ERRORS],
            self.matches + other.matches,
            self.allocations + other.allocations,
            _add(self.in_python, other.in_python),
        )


def _add(a: list[int], b: list[int]) -> list[int]:
    if not (a and b):
        return list(a or b)
    return [x + y for x, y in zip(a, b, strict=True)]


@dataclass
class RunStats:
    """The outcome of a run. ``events`` counts well-formed events evaluated;
    ``errors`` malformed lines (the first 100 in ``error_samples``)."""

    events: int
    bytes: int
    errors: int
    seconds: float
    matches: dict[str, int]
    eval_errors: dict[str, int]
    error_samples: list[LineErrorInfo]
    lines: int
    blank_lines: int
    threads: int
    kernel: str
    tags: dict[str, int] = field(default_factory=dict)
    routed: dict[str, int] = field(default_factory=dict)
    native_allocations: int = 0  # heap/mmap calls inside the native loops (not per event)
    actions_run: dict[str, int] = field(default_factory=dict)  # events given to Python actions
    workers: int = 0  # worker processes that ran the Python actions (0: this process)
    # JSONLogic rules on the VM: the events each one's translation left to Python.
    in_python: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "bytes": self.bytes,
            "errors": self.errors,
            "seconds": round(self.seconds, 6),
            "matches": self.matches,
            "eval_errors": {k: v for k, v in self.eval_errors.items() if v},
            "lines": self.lines,
            "blank_lines": self.blank_lines,
            "threads": self.threads,
            "kernel": self.kernel,
            "mb_per_s": round(self.bytes / self.seconds / 1e6, 1) if self.seconds else None,
            "events_per_s": round(self.events / self.seconds) if self.seconds else None,
            "tags": self.tags,
            "routed": self.routed,
            "native_allocations": self.native_allocations,
            "actions_run": {k: v for k, v in self.actions_run.items() if v},
            "workers": self.workers,
            "in_python": {k: v for k, v in self.in_python.items() if v},
            "error_samples": [vars(e) for e in self.error_samples],
        }


def split_points(view: memoryview, parts: int, target: int | None = None) -> list[int]:
    """Offsets that cut view into pieces of about ``target`` bytes (default
    PARTITION_BYTES, read at call time; at least ``parts`` pieces when big
    enough), each cut just after a newline."""
    target = PARTITION_BYTES if target is None else target
    size = len(view)
    # More threads than pieces worth a thread's start-up get none.
    parts = min(parts, max(1, size // MIN_PARTITION_BYTES))
    pieces = max(parts, -(-size // target)) if size else 1
    cuts = [0]
    for k in range(1, pieces):
        guess = max(size * k // pieces, cuts[-1])
        nl = bytes(view[guess : guess + (1 << 20)]).find(b"\n")
        while nl < 0 and guess + (1 << 20) < size:  # a very long line
            guess += 1 << 20
            nl = bytes(view[guess : guess + (1 << 20)]).find(b"\n")
        cut = size if nl < 0 else guess + nl + 1
        if cut > cuts[-1] and cut < size:
            cuts.append(cut)
    cuts.append(size)
    return cuts


def run_partition(
    engine: Engine,
    view: Buffer,
    collect: list[int] | None,
    max_errors: int = MAX_ERRORS,
    readahead: tuple[_native.Readahead, int] | None = None,
) -> PartialResult:
    """Evaluate one partition (a bytes-like of whole lines); lines are
    numbered from 1 and offsets from the partition's start. Counts and
    match records use rule positions (engine.rules order). ``readahead``:
    a helper faulting in the buffer the partition lies in, and the
    partition's offset there (native rule sets tell it their progress)."""
    if engine._bulk is not None:
        return _bulk_partition(engine, view, collect, max_errors)
    if engine.compiled is None or len(engine._native_rules) != len(engine.rules):
        return _python_partition(engine, view, collect, max_errors)
    # Native rule j is engine rule engine._native_rules[j]; here all rules
    # are native, in the same order, so the indexes coincide.
    ahead, offset = readahead or (None, 0)
    return _partial(
        view,
        engine.compiled.program.run(
            view, collect=collect, max_errors=max_errors, readahead=ahead, offset=offset
        ),
    )


def _readahead(engine: Engine, view: memoryview, threads: int) -> _native.Readahead | None:
    """A helper that faults the input in ahead of a one-thread native scan,
    on a CPU the scan leaves idle (it waits for the disk and fills page
    tables, which the scan would otherwise stop for): for inputs of 16 MiB
    or more (see core/ahead.h). Scans on several threads get none (their
    helpers would compete with them for the CPUs), and so do rule sets
    evaluated partly in Python (too slow for the helper to matter)."""
    native = engine._bulk is None and engine.compiled is not None
    if not native or len(engine._native_rules) != len(engine.rules):
        return None
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if threads != 1 or (cpus or 1) < 2 or len(view) < _native.READAHEAD_MIN:
        return None
    return _native.Readahead(view)


def _partial(view: Buffer, run_out: tuple[Any, ...]) -> PartialResult:
    """A PartialResult from what Program.run returns (lines, blank, bad, counts,
    eval errors, line errors, matches, allocations)."""
    lines, blank, bad, counts, errs, errors, matches, allocations = run_out
    return PartialResult(
        lines,
        blank,
        bad,
        len(memoryview(view)),
        list(counts),
        list(errs),
        [LineErrorInfo(*e) for e in errors],
        matches,
        allocations,
    )


def _bulk_partition(
    engine: Engine, view: Buffer, collect: list[int] | None, max_errors: int
) -> PartialResult:
    """Rule sets whose JSONLogic rules translate: every rule runs natively, and only
    the events a translation could not decide (an error of that rule on the VM, listed
    as rule n + r in the event's match record) are decoded and given to that JSONLogic
    rule in Python. The native error such an event counted for the rule is taken back;
    an event Python cannot decode (malformed where no rule read, or nested too deep)
    keeps it, as an evaluation error of that rule."""
    assert engine._bulk is not None
    n = len(engine.rules)
    wanted = set(collect or ())
    part = _partial(
        view,
        engine._bulk.program.run(
            view,
            collect=sorted(wanted),
            max_errors=max_errors,
            collect_errors=sorted(engine._jsonlogic),
        ),
    )
    counts, errs = part.counts, part.eval_errors
    part.in_python = in_python = [0] * n
    kept: list[tuple[int, int, int, tuple[int, ...]]] = []
    for line, off, length, ids in part.matches:
        hits = [i for i in ids if i < n]
        open_rules = [i - n for i in ids if i >= n]
        if open_rules:
            try:
                value = decode_event(bytes(memoryview(view)[off : off + length]))
            except JSONError:
                open_rules = []  # their native errors stand
            for pos in open_rules:
                errs[pos] -= 1
                in_python[pos] += 1
                if engine._jsonlogic[pos].matches(value):
                    counts[pos] += 1
                    if pos in wanted:
                        hits.append(pos)
            hits.sort()
        if hits:
            kept.append((line, off, length, tuple(hits)))
    part.matches = kept
    return part


def _python_partition(
    engine: Engine, view: Buffer, collect: list[int] | None, max_errors: int = MAX_ERRORS
) -> PartialResult:
    """Rule sets with callable or JSONLogic conditions: every event is
    decoded and evaluated in Python (expression rules still run natively,
    one event at a time), so priorities and stop hold across all kinds."""
    data = bytes(view)
    n = len(engine.rules)
    res = PartialResult(bytes=len(data), counts=[0] * n, eval_errors=[0] * n)
    wanted = set(collect or ())
    offset = 0
    starts = _native.line_starts(data).tolist()
    for number, start in enumerate(starts, 1):
        end = starts[number] - 1 if number < len(starts) else len(data)
        if end > start and data[end - 1 : end] == b"\n":
            end -= 1
        line = data[start:end]
        offset = start
        res.lines += 1
        if not line.strip(b" \t\r\n"):  # JSON's whitespace, as the native loop has it
            res.blank += 1
            continue
        try:
            positions, errored = engine._matches(line)
        except JSONError as e:
            res.bad += 1
            if len(res.errors) < max_errors:
                off = offset + (e.offset or 0)
                res.errors.append(LineErrorInfo(number, off, (e.offset or 0) + 1, e.args[0]))
            continue
        for p in positions:
            res.counts[p] += 1
        for p in errored:
            res.eval_errors[p] += 1
        hits = tuple(p for p in positions if p in wanted)
        if hits:
            res.matches.append((number, offset, len(line), hits))
    return res


class _Progress:
    """A progress line on stderr, only when it is a terminal."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.done = total, 0
        self.enabled = enabled and sys.stderr.isatty() and total > (64 << 20)
        self.start = time.perf_counter()

    def advance(self, n: int) -> None:
        if not self.enabled:
            return
        self.done += n
        secs = time.perf_counter() - self.start
        rate = self.done / secs / 1e6 if secs else 0.0
        pct = 100 * self.done // max(self.total, 1)
        bar = "#" * (pct // 4)
        sys.stderr.write(f"\r[{bar:<25}] {pct:3d}%  {rate:,.0f} MB/s")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\r" + " " * 60 + "\r")
            sys.stderr.flush()


def _needs_collect(engine: Engine) -> list[int]:
    """Rule positions whose matches need per-event work: Python actions,
    tags or routes."""
    python = _python_actions(engine)
    return [
        pos
        for pos, rule in enumerate(engine.rules)
        if (python and python[pos])
        or any(isinstance(a, dict) and set(a) & {"tag", "route"} for a in rule.actions)
    ]


def run_buffer(
    engine: Engine,
    buffer: Buffer,
    *,
    threads: int = 1,
    strict: bool = False,
    out_dir: str | os.PathLike[str] | None = None,
    progress: bool = False,
    actions: bool = True,
    workers: int = 0,
) -> RunStats:
    """Evaluate every line of an NDJSON buffer. See run_file."""
    if threads < 1:
        raise ValueError("threads must be >= 1")
    if workers < 0:
        raise ValueError("workers must be >= 0")
    # Release the views even on errors: a traceback keeping them alive would
    # stop run_file from closing its map (BusyError, hiding the real error).
    base = memoryview(buffer)
    view = base.cast("B") if base.ndim else base
    # Workers are forked before any evaluation thread starts.
    pool = WorkerPool(engine, workers) if workers and actions and _python_actions(engine) else None
    # Sinks open after the fork (workers must not inherit a log's lock) and
    # before any event is read.
    routed = routes(engine) if actions else iter(())
    with base, view, pool or nullcontext(), Sinks(routed, out_dir) as sinks:
        return _run_view(engine, view, threads, strict, sinks, progress, actions, pool)


def _run_view(
    engine: Engine,
    view: memoryview,
    threads: int,
    strict: bool,
    sinks: Sinks,
    progress: bool,
    actions: bool,
    pool: WorkerPool | None,
) -> RunStats:
    from .kernels import active_kernel

    t0 = time.perf_counter()
    cuts = split_points(view, threads)
    collect = _needs_collect(engine) if actions else []
    bar = _Progress(len(view), progress)

    ahead = _readahead(engine, view, threads)

    def work(k: int) -> PartialResult:
        part = view[cuts[k] : cuts[k + 1]]
        try:
            return run_partition(
                engine, part, collect or None, readahead=(ahead, cuts[k]) if ahead else None
            )
        finally:
            part.release()
            bar.advance(cuts[k + 1] - cuts[k])

    pieces = range(len(cuts) - 1)
    with ahead or nullcontext():
        if threads == 1:
            results = [work(k) for k in pieces]
        else:
            with ThreadPoolExecutor(max_workers=min(threads, len(pieces))) as executor:
                results = list(executor.map(work, pieces))
    bar.close()
    total = PartialResult()
    lines_before = 0
    for k, r in enumerate(results):
        total = total.merge(r.shifted(lines_before, cuts[k]))
        lines_before += r.lines
    if collect and (strict or pool is not None):
        _reject_undecodable(engine, view, total)
    if strict and total.bad:
        first = total.errors[0]
        raise JSONError(first.message, offset=first.offset, line=first.line, column=first.column)
    tags, routed, ran = _act(engine, view, total, sinks, pool) if collect else ({}, {}, [])
    seconds = time.perf_counter() - t0
    names = engine.names
    matches = (
        dict(zip(names, total.counts, strict=True)) if total.counts else dict.fromkeys(names, 0)
    )
    return RunStats(
        events=total.lines - total.blank - total.bad,
        bytes=len(view),
        errors=total.bad,
        seconds=seconds,
        matches=matches,
        eval_errors=dict(zip(names, total.eval_errors, strict=True)) if total.eval_errors else {},
        error_samples=total.errors,
        lines=total.lines,
        blank_lines=total.blank,
        threads=threads,
        kernel=active_kernel(),
        tags=tags,
        routed=routed,
        native_allocations=total.allocations,
        actions_run=dict(zip(names, ran, strict=True)) if ran else {},
        workers=len(pool.procs) if pool else 0,
        in_python=dict(zip(names, total.in_python, strict=True)) if total.in_python else {},
    )


def _python_actions(engine: Engine) -> list[bool]:
    """Per rule position: does a match run Python code (callables, handlers)?"""
    has = [
        bool(engine._handlers.get(r.name))
        or any(callable(a) and not isinstance(a, (str, dict)) for a in r.actions)
        for r in engine.rules
    ]
    return has if any(has) else []


def _reject_undecodable(engine: Engine, view: memoryview, total: PartialResult) -> None:
    """Matched lines whose Python actions need the whole event, but which
    are malformed where no rule read (``{"geo": [01]}``), become malformed
    lines: counted and reported as such, their matches taken back, their
    actions, tags and routes not run. Ahead of any action: for strict runs
    (which must fail before one runs) and worker pools (which decode in
    their own processes); otherwise _act finds them as it decodes."""
    python = _python_actions(engine)
    if not python:
        return
    # Lines with fewer brackets (an upper bound on their nesting) and fewer
    # bytes than Python's json limits allow cannot fail to decode once the
    # native check passes; others are decoded here too. The recursion
    # budget is shared with the caller's frames: keep a wide margin.
    digits = sys.get_int_max_str_digits() or sys.maxsize
    deep = sys.getrecursionlimit() // 2
    kept = []
    for match in total.matches:
        line, off, length, rule_ids = match
        if any(python[p] for p in rule_ids):
            raw = bytes(view[off : off + length])
            try:
                _native.validate(raw)
                if length >= digits or raw.count(b"[") + raw.count(b"{") >= deep:
                    decode_event(raw)
            except JSONError as e:
                _take_back(engine, total, line, off, raw, e)
                continue
        kept.append(match)
    if len(kept) != len(total.matches):
        total.matches = kept


def _take_back(
    engine: Engine, total: PartialResult, line: int, off: int, raw: bytes, e: JSONError
) -> None:
    """Count a matched line as malformed after all (see _reject_undecodable)."""
    positions, errored = engine._matches(raw)
    for p in positions:
        total.counts[p] -= 1
    for p in errored:
        total.eval_errors[p] -= 1
    total.bad += 1
    at = e.offset or 0
    total.errors.append(LineErrorInfo(line, off + at, at + 1, e.args[0]))
    total.errors = sorted(total.errors, key=lambda e: e.line)[:MAX_ERRORS]


def _act(
    engine: Engine,
    view: memoryview,
    total: PartialResult,
    sinks: Sinks,
    pool: WorkerPool | None = None,
) -> tuple[dict[str, int], dict[str, int], list[int]]:
    """Run tags, routes and Python actions for the collected matches, in
    file order and, within an event, in priority order; with a worker pool,
    the Python actions run in its processes. Returns tags, routed counts
    and, per rule, the events given to its Python actions."""
    tags: dict[str, int] = {}
    spans: dict[str, array[int]] = {}
    python = _python_actions(engine)
    ran = [0] * len(engine.rules)
    to_workers: list[tuple[list[int], int, int]] = []
    for line, off, length, rule_ids in total.matches:
        positions = [p for p in rule_ids if python and python[p]]
        value = None
        if positions and pool is None:
            raw = bytes(view[off : off + length])
            try:
                value = decode_event(raw)
            except JSONError as e:  # malformed where no rule read: no actions, tags or routes
                _take_back(engine, total, line, off, raw, e)
                continue
        for pos in rule_ids:
            rule = engine.rules[pos]
            for act in rule.actions:
                if isinstance(act, dict) and "tag" in act:
                    tags[act["tag"]] = tags.get(act["tag"], 0) + 1
                elif isinstance(act, dict) and "route" in act:
                    spans.setdefault(act["route"], array("Q")).extend((off, length))
        if not positions:
            continue
        if pool is not None:
            to_workers.append((positions, off, length))
            continue
        for pos in positions:
            ran[pos] += 1
            engine.run_actions(pos, value)
    if pool is not None:
        pool.submit(lambda: ((p, bytes(view[o : o + n])) for p, o, n in to_workers))
        ran = pool.finish()
    routed = {name: sinks.write(name, view, sp) for name, sp in spans.items()}
    return tags, routed, ran if python else []


def run_file(
    engine: Engine, path: str | os.PathLike[str], *, threads: int = 1, **kwargs: Any
) -> RunStats:
    """Evaluate every line of an NDJSON file: memory-mapped, split at line
    boundaries, partitions evaluated on ``threads`` threads with the GIL
    released. Results are identical for every thread count and kernel.
    Malformed lines are counted (the first 100 kept with line numbers)
    unless ``strict=True``, which raises JSONError for the first one.
    ``workers=N`` runs the rules' Python actions in N forked processes fed
    over a shared-memory ring (see rulejet.workers); counts are the same.
    Raises FileError for missing, unreadable or directory paths."""
    with MappedFile(path, advice="sequential") as mf, mf.lease() as view:
        return run_buffer(engine, view, threads=threads, **kwargs)


def scan_file(engine: Engine, path: str | os.PathLike[str]) -> Iterator[tuple[str, int, bytes]]:
    """(rule name, line number, raw line) for every match, in file order.

    Matched lines are copied out SCAN_BATCH at a time before any of them is
    yielded: no map is read while the caller's code runs (it may rotate or
    truncate the file), and before each batch a file found shorter than
    when it was opened raises FileError instead of faulting on pages past
    its end."""
    every = list(range(len(engine.rules)))
    with MappedFile(path) as mf:
        first = os.stat(path)

        def check_size(end: int) -> None:
            now = os.stat(path)
            if (now.st_dev, now.st_ino) == (first.st_dev, first.st_ino) and now.st_size < end:
                raise FileError(errno.EIO, "the file shrank while it was scanned", str(path))

        with mf.lease() as view:
            cuts = split_points(view, 1)
        lines_before = 0
        for start, end in itertools.pairwise(cuts):
            check_size(end)
            with mf.lease(start, end - start) as view:
                part = run_partition(engine, view, every)
            for k in range(0, len(part.matches), SCAN_BATCH):
                batch = part.matches[k : k + SCAN_BATCH]
                if k:
                    check_size(end)
                with mf.lease(start, end - start) as view:
                    raws = [bytes(view[off : off + n]) for _, off, n, _ in batch]
                for (line, _, _, rule_ids), raw in zip(batch, raws, strict=True):
                    for pos in rule_ids:
                        yield engine.rules[pos].name, line + lines_before, raw
            lines_before += part.lines
