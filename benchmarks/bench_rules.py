"""Rule evaluation over the 1M-event NDJSON file, against named peers.

    python benchmarks/bench_rules.py [--runs 3] [--peer-events 200000] [--re-events 20000]

For ../shared/bench/rules_10.yaml and rules_100.yaml: `rulejet run` (the
CLI, --format json; its own timer, so interpreter start-up is excluded)
at 1 and 2 threads over the whole file, against, in the same run,
orjson plus the equivalent Python lambdas (../shared/bench/rules_*_python.py)
and the `rule-engine` package (rules translated from the same AST). The
Python peers read the first --peer-events / --re-events lines of the
same file (they are 20x to 2000x slower: `for line in file`, as the
issue's baselines read it) and are reported as MB/s over what they read;
the orjson peer is a median of --runs runs, rule-engine one run.
rulejet's per-rule counts must equal the expected_counts files, and each
peer's counts must equal rulejet's on its sample.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import time
from pathlib import Path
from typing import Any

import rulejet
from _common import (
    SHARED_BENCH,
    cli_run,
    events_in_memory,
    lines_of,
    machine_facts,
    sample_of,
    table,
)
from rulejet.expr import And, Binary, Call, Cond, Field, Has, ListLit, Literal, Node, Or, Unary


def load_python_rules(n: int) -> list[tuple[str, Any]]:
    spec = importlib.util.spec_from_file_location(f"r{n}", SHARED_BENCH / f"rules_{n}_python.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return list(mod.RULES)


def orjson_lambdas(path: Path, events: int, rules: list[tuple[str, Any]]) -> dict[str, int]:
    """The first events lines of path, each decoded by orjson and tested by each rule."""
    import orjson

    counts = dict.fromkeys((n for n, _ in rules), 0)
    for line in lines_of(path, events):
        event = orjson.loads(line)
        for name, cond in rules:
            try:
                if cond(event):
                    counts[name] += 1
            except (KeyError, TypeError, AttributeError):
                pass
    return counts


def to_rule_engine(n: Node) -> str:
    """The same condition in rule-engine's syntax (missing fields -> null)."""
    t = to_rule_engine
    if isinstance(n, Literal):
        return json.dumps(n.value)
    if isinstance(n, ListLit):
        return "[" + ", ".join(t(i) for i in n.items) + "]"
    if isinstance(n, Field):
        return ".".join(str(s) for s in n.steps)
    if isinstance(n, Has):
        return f"({t(n.field)} != null)"
    if isinstance(n, Unary):
        return f"(not {t(n.operand)})" if n.op == "!" else f"(-{t(n.operand)})"
    if isinstance(n, And):
        return f"({t(n.left)} and {t(n.right)})"
    if isinstance(n, Or):
        return f"({t(n.left)} or {t(n.right)})"
    if isinstance(n, Binary):
        return f"({t(n.left)} {n.op} {t(n.right)})"
    if isinstance(n, Cond):
        return f"({t(n.test)} ? {t(n.then)} : {t(n.orelse)})"
    if isinstance(n, Call) and n.target is not None:
        if n.name == "contains":
            return f"({t(n.args[0])} in {t(n.target)})"
        name = {"startsWith": "starts_with", "endsWith": "ends_with"}[n.name]
        return f"{t(n.target)}.{name}({t(n.args[0])})"
    raise ValueError(f"no rule-engine spelling for {n!r}")


def rule_engine_run(path: Path, events: int, rules: list[tuple[str, str]]) -> dict[str, int]:
    import rule_engine

    ctx = rule_engine.Context(default_value=None)
    compiled = [(name, rule_engine.Rule(text, context=ctx)) for name, text in rules]
    counts = dict.fromkeys((n for n, _ in rules), 0)
    for line in lines_of(path, events):
        event = json.loads(line)
        for name, rule in compiled:
            try:
                if rule.matches(event) is True:
                    counts[name] += 1
            except rule_engine.EngineError:
                pass
    return counts


def scan_only(pathset: rulejet.PathSet, path: Path, runs: int) -> float:
    """Seconds (median) for the native NDJSON loop to extract a rule set's
    fields from the whole file with no rule evaluated: the floor under
    `rulejet run` on one thread. The file is mapped afresh each run, as
    each `rulejet run` maps it (filling the page tables is part of both)."""

    def scan() -> None:
        with rulejet.MappedFile(path) as mf, mf.lease() as view:
            pathset.scan_lines(view)

    return timed(scan, runs)[0]


def timed(fn: Any, runs: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--peer-events", type=int, default=200_000)
    ap.add_argument("--re-events", type=int, default=20_000)
    args = ap.parse_args()

    path, data = events_in_memory()
    size = len(data)
    rows: list[list[str]] = []
    rate: dict[tuple[int, str], float] = {}
    for n in (10, 100):
        rules_file = SHARED_BENCH / f"rules_{n}.yaml"
        expected = json.loads((SHARED_BENCH / f"expected_counts_{n}.json").read_text())["matches"]
        for threads in (1, 2):
            results = [cli_run(rules_file, path, threads) for _ in range(args.runs)]
            for r in results:
                if r["matches"] != expected:
                    raise SystemExit(f"rules_{n}: counts differ from expected_counts_{n}.json")
            secs = statistics.median(r["seconds"] for r in results)
            rate[(n, f"rulejet {threads}t")] = size / secs
            mbs = f"{size / secs / 1e6:,.0f}"
            rows.append([f"rules_{n}", f"rulejet run --threads {threads}", mbs,
                         f"{1e6 / secs:,.0f}", "1,000,000"])  # fmt: skip
            print(f"  rules_{n} rulejet {threads}t: {size / secs / 1e6:,.0f} MB/s", flush=True)

        engine = rulejet.Engine.from_file(rules_file)
        assert engine.compiled is not None
        secs = scan_only(engine.compiled.pathset, path, args.runs)
        rate[(n, "scan")] = size / secs
        rows.append([f"rules_{n}", "rulejet scan only (its fields, no rules)",
                     f"{size / secs / 1e6:,.0f}", f"{1e6 / secs:,.0f}", "1,000,000"])  # fmt: skip
        print(f"  rules_{n} scan only: {size / secs / 1e6:,.0f} MB/s", flush=True)

        sample = sample_of(data, args.peer_events)
        want = engine.run_buffer(sample).matches
        py_rules = load_python_rules(n)
        peer = lambda r=py_rules: orjson_lambdas(path, args.peer_events, r)  # noqa: E731
        secs, counts = timed(peer, args.runs)
        if counts != want:
            raise SystemExit(f"rules_{n}: orjson+lambdas counts differ from rulejet's")
        rate[(n, "orjson")] = len(sample) / secs
        rows.append([f"rules_{n}", "orjson + Python lambdas", f"{len(sample) / secs / 1e6:,.1f}",
                     f"{args.peer_events / secs:,.0f}", f"{args.peer_events:,}"])  # fmt: skip
        print(f"  rules_{n} orjson+lambdas: {len(sample) / secs / 1e6:.1f} MB/s", flush=True)

        re_sample = sample_of(data, args.re_events)
        want = engine.run_buffer(re_sample).matches
        specs = rulejet.load_rule_file(rules_file).rules
        translated = [(s.name, to_rule_engine(rulejet.parse_expr(s.when or ""))) for s in specs]
        secs, counts = timed(lambda tr=translated: rule_engine_run(path, args.re_events, tr), 1)
        if counts != want:
            diff = {k: (counts[k], want[k]) for k in want if counts[k] != want[k]}
            raise SystemExit(f"rules_{n}: rule-engine counts differ from rulejet's: {diff}")
        rate[(n, "rule-engine")] = len(re_sample) / secs
        rows.append([f"rules_{n}", "rule-engine (Python package)",
                     f"{len(re_sample) / secs / 1e6:,.2f}", f"{args.re_events / secs:,.0f}",
                     f"{args.re_events:,}"])  # fmt: skip
        print(f"  rules_{n} rule-engine: {len(re_sample) / secs / 1e6:.2f} MB/s", flush=True)

    from importlib.metadata import version

    print()
    print(
        f"{size / 1e6:.0f} MB, 1,000,000 events, page cache (read back: see bench_mapping.py), "
        f"median of {args.runs} runs (rule-engine: one run)"
    )
    print(machine_facts())
    print(f"peers: orjson {version('orjson')}, rule-engine {version('rule-engine')}")
    print()
    print(table(["rules", "contender", "MB/s", "events/s", "events read"], rows))
    print()
    ratios = []
    for n in (10, 100):
        r1, r2 = rate[(n, "rulejet 1t")], rate[(n, "rulejet 2t")]
        ratios.append([f"rules_{n}", f"{r1 / rate[(n, 'orjson')]:.1f}x",
                       f"{r1 / rate[(n, 'rule-engine')]:,.0f}x", f"{r2 / r1:.2f}x"])  # fmt: skip
    print(table(["rules", "1 thread ÷ orjson+lambdas", "1 thread ÷ rule-engine",
                 "2 threads ÷ 1 thread"], ratios))  # fmt: skip
    cost = rate[(10, "rulejet 1t")] / rate[(100, "rulejet 1t")]
    print(f"\n100 rules cost {cost:.2f}x what 10 rules cost (1 thread)")
    print("\nPer event, one thread (ns): the scan alone, the rest of `rulejet run` (rules,")
    print("counting, the run), and what the issue's same-run ratio goal leaves for the rest\n")
    bound = []
    for n, goal in ((10, 20), (100, 40)):
        ns = 1e9 / 1e6 * size  # ns per event at 1 byte/s, over the file's 1M events
        scan, run = ns / rate[(n, "scan")], ns / rate[(n, "rulejet 1t")]
        target = ns / (goal * rate[(n, "orjson")])
        bound.append([f"rules_{n}", f"{scan:.0f}", f"{run - scan:.0f}", f"{goal}x: {target:.0f}",
                      f"{target - scan:.0f}"])  # fmt: skip
    print(table(["rules", "scan", "rest", "goal: whole event", "goal: rest"], bound))


if __name__ == "__main__":
    main()
