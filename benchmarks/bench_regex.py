"""Regular-expression rules over the 1M-event NDJSON file: the matches()
memo on and off, against orjson plus Python's re, in the same run.

    python benchmarks/bench_regex.py [--runs 5] [--peer-events 200000]

benchmarks/rules/ua_regex.yaml classifies user agents with five patterns.
`rulejet run` (the CLI, --format json, its own timer) at one thread over
the whole file, with the memo of matches() results (per pattern and
string, across events) and with RULEJET_REGEX_MEMO=0; the Python peer
(orjson, then each pattern's compiled `re.search` on the field) reads the
first --peer-events events, and its counts must equal rulejet's there.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import rulejet
from _common import events_in_memory, machine_facts, sample_of, table

RULES = Path(__file__).parent / "rules" / "ua_regex.yaml"


def cli_run(path: Path, memo: bool) -> dict[str, Any]:
    env = {**os.environ, "RULEJET_REGEX_MEMO": "1" if memo else "0"}
    out = subprocess.run(
        [sys.executable, "-m", "rulejet.cli", "run", str(RULES), str(path),
         "--format", "json", "--threads", "1", "--quiet"],
        capture_output=True, text=True, check=True, env=env,
    )  # fmt: skip
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def orjson_re(sample: bytes, patterns: list[tuple[str, re.Pattern[str]]]) -> dict[str, int]:
    import orjson

    counts = dict.fromkeys((n for n, _ in patterns), 0)
    for line in sample.split(b"\n"):
        if not line:
            continue
        ua = orjson.loads(line).get("http", {}).get("ua")
        if isinstance(ua, str):
            for name, pattern in patterns:
                if pattern.search(ua):
                    counts[name] += 1
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--peer-events", type=int, default=200_000)
    args = ap.parse_args()

    path, data = events_in_memory()
    size = len(data)
    rows: list[list[str]] = []
    rate: dict[object, float] = {}
    for memo in (True, False):
        results = [cli_run(path, memo) for _ in range(args.runs)]
        if any(r["matches"] != results[0]["matches"] for r in results):
            raise SystemExit("counts differ between runs")
        if memo:
            counts = results[0]["matches"]
        elif results[0]["matches"] != counts:
            raise SystemExit("counts differ with the memo off")
        secs = statistics.median(r["seconds"] for r in results)
        label = "rulejet run" + ("" if memo else ", RULEJET_REGEX_MEMO=0")
        rate[memo] = size / secs
        rows.append([label, f"{size / secs / 1e6:,.0f}", f"{1e6 / secs:,.0f}", "1,000,000"])
        print(f"  {label}: {size / secs / 1e6:,.0f} MB/s", flush=True)

    specs = rulejet.load_rule_file(RULES).rules
    patterns = []
    for s in specs:  # the rule's pattern literal, as the rule file spells it
        m = re.fullmatch(r'http\.ua\.matches\("(.*)"\)', s.when or "")
        assert m, s.when
        patterns.append((s.name, re.compile(json.loads(f'"{m.group(1)}"'))))
    sample = sample_of(data, args.peer_events)
    want = rulejet.Engine.from_file(RULES).run_buffer(sample).matches
    t0 = time.perf_counter()
    got = orjson_re(sample, patterns)
    secs = time.perf_counter() - t0
    if got != want:
        raise SystemExit(f"orjson + re counts differ from rulejet's: {got} {want}")
    rate["peer"] = len(sample) / secs
    rows.append(["orjson + Python re", f"{len(sample) / secs / 1e6:,.1f}",
                 f"{args.peer_events / secs:,.0f}", f"{args.peer_events:,}"])  # fmt: skip

    print()
    print(f"{size / 1e6:.0f} MB, 1,000,000 events, page cache, median of {args.runs} CLI runs")
    print(machine_facts())
    print()
    print(table(["contender", "MB/s", "events/s", "events read"], rows))
    print()
    print(f"memo on ÷ memo off: {rate[True] / rate[False]:.2f}x; "
          f"memo on ÷ orjson + re: {rate[True] / rate['peer']:.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()
