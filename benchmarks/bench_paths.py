"""Path extraction over the 1M-event NDJSON file, against named peers.

    python benchmarks/bench_paths.py [--runs 3] [--limit-mb N]

Single core (pinned), file in the page cache. Each contender finds 3 and
then 10 fields in every event; peers parse each line whole and then look
the fields up (their line splitting is timed, as rulejet's is). rulejet
runs twice: extract_lines (values returned as Python objects) and
scan_lines (the native loop, values kept in native memory). A cross-check
compares every contender's results on the first 2,000 lines.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

import rulejet
from _common import events_file, machine_facts, median_time, pin_to_one_core, table, warm_page_cache

PATHS_3 = ["event", "user.age", "user.profile.country"]
PATHS_10 = [
    "event",
    "user.id",
    "user.age",
    "user.profile.country",
    "http.status",
    "http.method",
    "http.path",
    "amount",
    "flags.bot",
    "geo.lat",
]
_ABSENT = object()


def _lookup(doc: Any, steps: list[str]) -> Any:
    for s in steps:
        try:
            doc = doc[s]
        except (KeyError, TypeError, IndexError):
            return _ABSENT
    return doc


def python_peer(loads: Callable[[bytes], Any], paths: list[str]) -> Callable[[bytes], int]:
    split = [p.split(".") for p in paths]

    def run(data: bytes) -> int:
        found = 0
        for line in data.split(b"\n"):
            if not line:
                continue
            doc = loads(line)
            for steps in split:
                found += _lookup(doc, steps) is not _ABSENT
        return found

    return run


def simdjson_peer(paths: list[str]) -> Callable[[bytes], int]:
    import simdjson

    pointers = ["/" + p.replace(".", "/") for p in paths]
    parser = simdjson.Parser()

    def run(data: bytes) -> int:
        found = 0
        for line in data.split(b"\n"):
            if not line:
                continue
            doc = parser.parse(line)
            for ptr in pointers:
                try:
                    doc.at_pointer(ptr)
                    found += 1
                except (KeyError, ValueError):
                    pass
            del doc  # the parser reuses its buffers for the next line
        return found

    return run


def rulejet_python(paths: list[str]) -> Callable[[bytes], int]:
    ps = rulejet.PathSet(paths)

    def run(data: bytes) -> int:
        r = ps.extract_lines(data)
        # Found values, counted natively during the scan (the peers count
        # theirs inside their loop); the columns hold every value.
        return sum(r.present)

    return run


def rulejet_native(paths: list[str]) -> Callable[[bytes], int]:
    ps = rulejet.PathSet(paths)
    return lambda data: sum(ps.scan_lines(data).present)


def cross_check(data: bytes, paths: list[str]) -> None:
    """All peers must see the same values on a sample."""
    import msgspec
    import orjson
    import simdjson

    sample = b"\n".join(data.split(b"\n")[:2000])
    cols = rulejet.PathSet(paths).extract_lines(sample).columns
    parser = simdjson.Parser()
    for j, line in enumerate(sample.split(b"\n")):
        want = [_lookup(json.loads(line), p.split(".")) for p in paths]
        want = [rulejet.MISSING if w is _ABSENT else w for w in want]
        assert [c[j] for c in cols] == want, (j, line)
        for loads in (orjson.loads, msgspec.json.decode):
            got = [_lookup(loads(line), p.split(".")) for p in paths]
            assert [rulejet.MISSING if g is _ABSENT else g for g in got] == want
        doc = parser.parse(line)
        for p, w in zip(paths, want, strict=True):
            if w is not rulejet.MISSING:
                assert doc.at_pointer("/" + p.replace(".", "/")) == w
        del doc


def main() -> None:
    import msgspec
    import orjson

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--limit-mb", type=int, default=0, help="use only the first N MB")
    args = ap.parse_args()

    path = events_file()
    cpu = pin_to_one_core()
    warm_page_cache(path)
    data = path.read_bytes()
    if args.limit_mb:
        data = data[: data.rfind(b"\n", 0, args.limit_mb << 20) + 1]
    events = data.count(b"\n")
    size = len(data)

    decoder = msgspec.json.Decoder()
    tables = []
    for paths in (PATHS_3, PATHS_10):
        cross_check(data, paths)
        contenders: list[tuple[str, Callable[[bytes], int]]] = [
            ("rulejet scan_lines (native values)", rulejet_native(paths)),
            ("rulejet extract_lines (Python values)", rulejet_python(paths)),
            ("json.loads + lookups", python_peer(json.loads, paths)),
            ("orjson.loads + lookups", python_peer(orjson.loads, paths)),
            ("msgspec.json.decode + lookups", python_peer(decoder.decode, paths)),
            ("pysimdjson parse + at_pointer", simdjson_peer(paths)),
        ]
        results = []
        for name, fn in contenders:
            secs, found = median_time(lambda fn=fn: fn(data), args.runs)
            results.append((name, secs, found))
            print(f"  {len(paths)} paths, {name}: {size / secs / 1e6:.0f} MB/s", flush=True)
        counts = {f for _, _, f in results}
        if len(counts) != 1:
            raise SystemExit(f"contenders found different numbers of values: {results}")
        rj_py = results[1][1]
        rows = [
            [
                name,
                f"{size / secs / 1e6:,.0f}",
                f"{events / secs / 1e6:.2f}M",
                f"{secs / rj_py:.2f}x",
                f"{secs / results[0][1]:.2f}x",
            ]
            for name, secs, _ in results
        ]
        tables.append((paths, table(
            ["contender", "MB/s", "events/s", "÷ extract_lines", "÷ scan_lines"], rows
        )))  # fmt: skip

    print()
    print(f"{size / 1e6:.0f} MB, {events} events, {args.runs} runs (median), CPU {cpu}")
    print(machine_facts())
    vers = f"orjson {orjson.__version__}, msgspec {msgspec.__version__}"
    print(f"peers: {vers}, pysimdjson {_simdjson_version()}")
    for paths, text in tables:
        print(f"\n{len(paths)} paths: {', '.join(paths)}\n")
        print(text)


def _simdjson_version() -> str:
    from importlib.metadata import version

    return version("pysimdjson")


if __name__ == "__main__":
    main()
