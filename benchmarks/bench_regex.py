"""Regular-expression rules over the 1M-event NDJSON file: the matches()
memo on and off, against orjson plus Python's re, in the same run.

    python benchmarks/bench_regex.py [--runs 5] [--peer-events 200000]

benchmarks/rules/ua_regex.yaml classifies user agents (a field of few
values) with five patterns; ts_regex.yaml runs three over the timestamp
(never the same twice: the memo's worst case). For each, `rulejet run`
(the CLI, --format json, its own timer) at one thread over the whole
file, with the memo of matches() results (per pattern and string, across
events) and with RULEJET_REGEX_MEMO=0; the Python peer (orjson, then
each pattern's compiled `re.search` on the field) reads the first
--peer-events lines of the same file, and its counts must equal rulejet's there.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from pathlib import Path

import rulejet
from _common import cli_run, events_in_memory, lines_of, machine_facts, sample_of, table

RULE_SETS = [Path(__file__).parent / "rules" / f"{n}_regex.yaml" for n in ("ua", "ts")]


def orjson_re(
    path: Path, events: int, field: list[str], patterns: list[tuple[str, re.Pattern[str]]]
) -> dict[str, int]:
    """The first events lines of path, decoded by orjson, field tested by each pattern."""
    import orjson

    counts = dict.fromkeys((n for n, _ in patterns), 0)
    for line in lines_of(path, events):
        value = orjson.loads(line)
        for key in field:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, str):
            for name, pattern in patterns:
                if pattern.search(value):
                    counts[name] += 1
    return counts


def python_patterns(rules: Path) -> tuple[list[str], list[tuple[str, re.Pattern[str]]]]:
    """The rule set's field (one for all) and each rule's pattern, as spelled."""
    fields, patterns = set(), []
    for spec in rulejet.load_rule_file(rules).rules:
        m = re.fullmatch(r'([a-z_.]+)\.matches\("(.*)"\)', spec.when or "")
        assert m, spec.when
        fields.add(m.group(1))
        patterns.append((spec.name, re.compile(json.loads(f'"{m.group(2)}"'))))
    assert len(fields) == 1, fields
    return fields.pop().split("."), patterns


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--peer-events", type=int, default=200_000)
    args = ap.parse_args()

    path, data = events_in_memory()
    size = len(data)
    rows: list[list[str]] = []
    ratios: list[list[str]] = []
    for rules in RULE_SETS:
        rate: dict[object, float] = {}
        for memo in (True, False):
            memo_env = {"RULEJET_REGEX_MEMO": "1" if memo else "0"}
            results = [cli_run(rules, path, 1, memo_env) for _ in range(args.runs)]
            if any(r["matches"] != results[0]["matches"] for r in results):
                raise SystemExit("counts differ between runs")
            if memo:
                counts = results[0]["matches"]
            elif results[0]["matches"] != counts:
                raise SystemExit("counts differ with the memo off")
            secs = statistics.median(r["seconds"] for r in results)
            label = "rulejet run" + ("" if memo else ", RULEJET_REGEX_MEMO=0")
            rate[memo] = size / secs
            rows.append([rules.stem, label, f"{size / secs / 1e6:,.0f}", f"{1e6 / secs:,.0f}",
                         "1,000,000"])  # fmt: skip
            print(f"  {rules.stem} {label}: {size / secs / 1e6:,.0f} MB/s", flush=True)

        field, patterns = python_patterns(rules)
        sample = sample_of(data, args.peer_events)
        want = rulejet.Engine.from_file(rules).run_buffer(sample).matches
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            got = orjson_re(path, args.peer_events, field, patterns)
            times.append(time.perf_counter() - t0)
        secs = statistics.median(times)
        if got != want:
            raise SystemExit(f"orjson + re counts differ from rulejet's: {got} {want}")
        rate["peer"] = len(sample) / secs
        rows.append([rules.stem, "orjson + Python re", f"{len(sample) / secs / 1e6:,.1f}",
                     f"{args.peer_events / secs:,.0f}", f"{args.peer_events:,}"])  # fmt: skip
        ratios.append([rules.stem, f"{rate[True] / rate[False]:.2f}x",
                       f"{rate[True] / rate['peer']:.1f}x"])  # fmt: skip

    print()
    print(f"{size / 1e6:.0f} MB, 1,000,000 events, page cache (read back), median of {args.runs}")
    print(machine_facts())
    print()
    print(table(["rules", "contender", "MB/s", "events/s", "events read"], rows))
    print()
    print(table(["rules", "memo on ÷ memo off", "memo on ÷ orjson + re"], ratios))


if __name__ == "__main__":
    main()
