"""JSONLogic rule sets: native (translated to the VM) against JSONLogic in Python.

    python benchmarks/bench_jsonlogic.py [--runs 3] [--peer-events 100000]

The ten rules of ../shared/bench/rules_10.yaml written in JSONLogic (below; JSONLogic
has no startsWith/endsWith, so those tests are substring tests with "in", and has() is
"!== null"), over the 1M-event file:

- rulejet, the rule set as given to ``Engine`` (the translation to the VM decides
  most events; the rest go to the Python evaluator), ``Engine.run_file`` in process,
  1 thread, whole file, median of --runs;
- orjson plus rulejet's own JSONLogic evaluator (``rulejet.from_jsonlogic``) per event:
  what rulejet did before the translation, and still does for a rule set that does not
  translate;
- orjson plus panzi-json-logic (``json_logic.jsonLogic``), the JSONLogic package the
  issue's baseline table names.

The two Python contenders read the first --peer-events events; every contender's
per-rule counts must equal the others' on that sample.

A second table adds one rule with a part the VM cannot translate (a "some") to the
ten, alone or under an and, and runs the same sample both ways: as given (the part
left to Python on the events the rest of the rule cannot decide) and with a stop on
that rule, which keeps the whole set in Python (every event decoded; what any
untranslated part did before).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import rulejet
from _common import events_in_memory, machine_facts, sample_of, table

RULES: dict[str, Any] = {
    "r000": {"and": [{">=": [{"var": "user.age"}, 18]},
                     {"==": [{"var": "user.profile.country"}, "US"]}]},
    "r001": {"and": [{"==": [{"var": "event"}, "purchase"]},
                     {"!=": [{"var": "amount"}, None]}, {">": [{"var": "amount"}, 100.0]}]},
    "r002": {">=": [{"var": "http.status"}, 500]},
    "r003": {"and": [{"in": [{"var": "event"}, ["login", "password_reset"]]},
                     {"!==": [{"var": "flags.mfa"}, None]}, {"!": {"var": "flags.mfa"}}]},
    "r004": {"and": [{"in": ["admin", {"var": "user.roles"}]},
                     {"in": [{"var": "user.profile.country"}, ["RU", "CN", "NG"]]}]},
    "r005": {"or": [{"in": ["/api/", {"var": "http.path"}]},
                    {"==": [{"var": "http.method"}, "POST"]}]},
    "r006": {"or": [{"in": [".php", {"var": "http.path"}]},
                    {"in": ["/.env", {"var": "http.path"}]}]},
    "r007": {"and": [{"!==": [{"var": "http.ua"}, None]},
                     {"or": [{"in": ["bot", {"var": "http.ua"}]},
                             {"in": ["curl/", {"var": "http.ua"}]}]}]},
    "r008": {"or": [{"in": ["José", {"var": "user.name"}]},
                    {"in": ['O"Brien', {"var": "user.name"}]}]},
    "r009": {"and": [{"==": [{"var": "user.profile.tier"}, "diamond"]},
                     {">": [{"var": "http.latency_ms"}, 1000.0]}]},
}  # fmt: skip


def python_run(sample: bytes, matches: Any) -> dict[str, int]:
    """orjson per event, then each rule's truthiness from matches(rule, event)."""
    import orjson

    counts = dict.fromkeys(RULES, 0)
    for line in sample.split(b"\n"):
        if not line:
            continue
        event = orjson.loads(line)
        for name, test in matches.items():
            if test(event):
                counts[name] += 1
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--peer-events", type=int, default=100_000)
    args = ap.parse_args()

    import json_logic

    path, data = events_in_memory()
    engine = rulejet.Engine([rulejet.Rule(name, rule) for name, rule in RULES.items()])
    if engine._bulk is None:
        raise SystemExit("the benchmark's rules no longer translate to the VM")

    times, stats = [], None
    for _ in range(args.runs):
        t0 = time.perf_counter()
        stats = engine.run_file(path, actions=False)
        times.append(time.perf_counter() - t0)
    assert stats is not None
    native = len(data) / statistics.median(times)
    print(f"  rulejet (native JSONLogic): {native / 1e6:,.0f} MB/s", flush=True)

    sample = sample_of(data, args.peer_events)
    want = engine.run_buffer(sample).matches
    ours = {n: rulejet.from_jsonlogic(r).matches for n, r in RULES.items()}
    panzi = {n: (lambda e, r=r: bool(json_logic.jsonLogic(r, e))) for n, r in RULES.items()}
    rates = {}
    for label, tests in [("rulejet.from_jsonlogic", ours), ("panzi-json-logic", panzi)]:
        t0 = time.perf_counter()
        counts = python_run(sample, tests)
        secs = time.perf_counter() - t0
        if counts != want:
            diff = {k: (counts[k], want[k]) for k in want if counts[k] != want[k]}
            raise SystemExit(f"{label}: counts differ from the native run's: {diff}")
        rates[label] = len(sample) / secs
        print(f"  orjson + {label}: {rates[label] / 1e6:.1f} MB/s", flush=True)

    from importlib.metadata import version

    print()
    print(f"{len(data) / 1e6:.0f} MB, {stats.events:,} events, page cache")
    print(machine_facts())
    print(f"peers: orjson {version('orjson')}, panzi-json-logic {version('panzi-json-logic')}")
    print()
    rows = [["rulejet, JSONLogic rules on the VM (1 thread)", f"{native / 1e6:,.0f}",
             f"{stats.events:,}", "1.0x"]]  # fmt: skip
    for label, rate in rates.items():
        rows.append([f"orjson + {label}", f"{rate / 1e6:,.1f}", f"{args.peer_events:,}",
                     f"{native / rate:,.0f}x"])  # fmt: skip
    print(table(["contender", "MB/s", "events read", "rulejet ÷ contender"], rows))
    print(f"\nper-rule matches (whole file): {stats.matches}")
    print()
    heads = ["added rule", "part in Python", "whole set in Python", "ratio", "events to Python"]
    print(table(heads, hybrid_rows(sample, args.runs)))


SOME = {"some": [{"var": "tags"}, {"==": [{"var": ""}, "tor"]}]}
ADDED = {
    "and(event == purchase, some)": {"and": [{"==": [{"var": "event"}, "purchase"]}, SOME]},
    "some": SOME,
}


def hybrid_rows(sample: bytes, runs: int) -> list[list[str]]:
    """MB/s over sample of the ten rules plus each ADDED rule, the part left to Python
    against the whole set in Python (a stop on the added rule); counts must agree."""
    rows = []
    for label, rule in ADDED.items():
        rates, stats = [], []
        for then in ([], ["stop"]):
            rules = [rulejet.Rule(n, r) for n, r in RULES.items()]
            engine = rulejet.Engine([*rules, rulejet.Rule("added", rule, then=then)])
            assert (engine._bulk is None) == bool(then)
            times = []
            for _ in range(runs):
                t0 = time.perf_counter()
                stats.append(engine.run_buffer(sample, actions=False))
                times.append(time.perf_counter() - t0)
            rates.append(len(sample) / statistics.median(times))
        if stats[0].matches != stats[-1].matches:
            raise SystemExit(f"{label}: the two runs' counts differ")
        to_python = sum(stats[0].in_python.values())
        rows.append([label, f"{rates[0] / 1e6:,.1f}", f"{rates[1] / 1e6:,.1f}",
                     f"{rates[0] / rates[1]:,.1f}x", f"{to_python:,}"])  # fmt: skip
        print(f"  + {label}: {rates[0] / 1e6:,.1f} vs {rates[1] / 1e6:,.1f} MB/s", flush=True)
    return rows


if __name__ == "__main__":
    main()
