"""Events that Python code needs whole: callables, JSONLogic and Python
actions decode the event, so a line malformed where no expression reads,
or beyond what Python's json decodes, is a malformed line, never a stray
exception that ends the run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rulejet import Engine, FileError, JSONError, Rule, runner

# Line 2 is malformed only inside "geo", which no expression reads.
GEO = b'{"a":1}\n{"a":1,"geo":[01]}\n{"a":1}\n'


def _engines() -> dict[str, Engine]:
    return {
        "mixed": Engine([Rule("x", "a == 1"), Rule("y", lambda d: True)]),
        "action": Engine([Rule("x", "a == 1", action=lambda d: None)]),
        # A stop on a JSONLogic rule keeps the set off the VM: it runs on the
        # decoded event.
        "jsonlogic": Engine([Rule("x", {"==": [{"var": ["a", 0]}, 1]}, then=["stop"])]),
    }


@pytest.mark.parametrize("kind", ["mixed", "action", "jsonlogic"])
@pytest.mark.parametrize("threads", [1, 2])
def test_a_line_malformed_where_no_rule_reads_is_a_malformed_line(
    tmp_path: Path, kind: str, threads: int
) -> None:
    path = tmp_path / "geo.ndjson"
    path.write_bytes(GEO)
    stats = _engines()[kind].run_file(path, threads=threads)
    assert (stats.events, stats.errors) == (2, 1)
    assert stats.matches["x"] == 2
    (err,) = stats.error_samples
    assert (err.line, err.offset) == (2, 8 + 15) and err.column == 16  # the "1" after "0"


def test_jsonlogic_on_the_vm_reads_lines_as_expressions_do(tmp_path: Path) -> None:
    # Translated to the VM, a JSONLogic rule set scans like an expression rule set:
    # what no rule reads is skipped, not checked.
    path = tmp_path / "geo.ndjson"
    path.write_bytes(GEO)
    for rule in [{"==": [{"var": "a"}, 1]}, "a == 1"]:
        stats = Engine([Rule("x", rule)]).run_file(path)
        assert (stats.events, stats.errors, stats.matches) == (3, 0, {"x": 3})


def _note(event: object) -> None:
    pass


def test_python_actions_do_not_run_for_such_a_line(tmp_path: Path) -> None:
    seen: list[object] = []
    path = tmp_path / "geo.ndjson"
    path.write_bytes(GEO)
    engine = Engine([Rule("x", "a == 1", action=seen.append, then=[{"tag": "t"}])])
    stats = engine.run_file(path)
    assert seen == [{"a": 1}, {"a": 1}] and stats.tags == {"t": 2}
    assert stats.actions_run == {"x": 2}
    assert (stats.errors, stats.matches, stats.error_samples[0].line) == (1, {"x": 2}, 2)
    # Worker processes decode for themselves: the line is refused before.
    pooled = Engine([Rule("x", "a == 1", action=_note, then=[{"tag": "t"}])])
    stats = pooled.run_file(path, workers=2)
    assert stats.workers == 2
    assert (stats.errors, stats.matches, stats.tags, stats.actions_run) == (
        1,
        {"x": 2},
        {"t": 2},
        {"x": 2},
    )
    with pytest.raises(JSONError):
        engine.run_file(path, strict=True)  # before any action runs
    assert len(seen) == 2


def test_evaluate_execute_and_scan_report_it_as_a_json_error(tmp_path: Path) -> None:
    line = GEO.splitlines()[1]
    for engine in _engines().values():
        with pytest.raises(JSONError) as info:
            engine.execute(line)
        assert info.value.offset == 15
    with pytest.raises(JSONError):
        _engines()["mixed"].evaluate(line)
    path = tmp_path / "geo.ndjson"
    path.write_bytes(GEO)
    assert [ln for _, ln, _ in _engines()["mixed"].scan(path)] == [1, 1, 3, 3]


def test_events_beyond_pythons_json_limits_are_malformed_lines(tmp_path: Path) -> None:
    deep = b"[" * 2000 + b"]" * 2000  # past the 1,024-level limit
    big = b'{"a":1,"big":1' + b"0" * (sys.get_int_max_str_digits() + 1) + b"}"
    path = tmp_path / "odd.ndjson"
    path.write_bytes(deep + b"\n" + big + b'\n{"a":1}\n')
    for kind, engine in _engines().items():
        stats = engine.run_file(path)
        if kind == "action":  # line 1 matches nothing: as for any expression rule, an event
            assert (stats.events, stats.errors, stats.matches["x"]) == (2, 1, 1)
            assert [e.line for e in stats.error_samples] == [2]
        else:
            assert (stats.events, stats.errors, stats.matches["x"]) == (1, 2, 1), kind
            assert [e.line for e in stats.error_samples] == [1, 2]


def test_jsonlogic_reads_events_nested_within_the_limit() -> None:
    event = b'{"x":1,"d":' + b"[" * 600 + b"]" * 600 + b"}"
    engine = Engine([Rule("j", {"==": [{"var": "x"}, 1]})])
    assert engine.evaluate(event) == ["j"]


def test_cyclic_objects_are_a_clear_error() -> None:
    event: dict[str, object] = {"a": 1}
    event["self"] = event
    assert Engine([Rule("y", lambda d: d["a"] == 1)]).evaluate(event) == ["y"]
    for cond in ("a == 1", {"==": [{"var": "a"}, 1]}):
        with pytest.raises(ValueError, match="cycle"):
            Engine([Rule("x", cond)]).evaluate(event)
    shared = [1]
    assert Engine([Rule("x", "size(a) == size(b)")]).evaluate({"a": shared, "b": shared}) == ["x"]


def test_scan_copies_matches_before_yielding_and_sees_a_shrunk_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "PARTITION_BYTES", 64)
    path = tmp_path / "ev.ndjson"
    path.write_bytes(b'{"a":1}\n{"a":2}\n' * 50)
    engine = Engine([Rule("x", "a == 1")])
    assert [ln for _, ln, _ in engine.scan(path)] == list(range(1, 100, 2))  # across pieces
    it = engine.scan(path)
    next(it)
    with open(path, "r+b") as f:
        f.truncate(0)  # before: the next read of the map was a SIGBUS
    with pytest.raises(FileError, match="shrank"):
        list(it)
    monkeypatch.setattr(runner, "PARTITION_BYTES", 1 << 20)  # one piece, batches of 4
    monkeypatch.setattr(runner, "SCAN_BATCH", 4)
    path.write_bytes(b'{"a":1}\n{"a":2}\n' * 50)
    assert [ln for _, ln, _ in engine.scan(path)] == list(range(1, 100, 2))
    it = engine.scan(path)
    next(it)
    with open(path, "r+b") as f:
        f.truncate(0)
    with pytest.raises(FileError, match="shrank"):
        list(it)


def _act_on(event: object) -> None:
    pass


@pytest.mark.parametrize("workers", [0, 1, 2])
def test_a_short_line_nested_past_pythons_json_limit(tmp_path: Path, workers: int) -> None:
    # Under 2,000 bytes, yet too deep for json.loads (its recursion budget
    # is shared with the caller's frames): a malformed line, for any pool.
    n = sys.getrecursionlimit() - 10
    deep = b'{"a":1,"x":' + b"[" * n + b"]" * n + b"}"
    path = tmp_path / "deep.ndjson"
    path.write_bytes(b'{"a":1}\n' + deep + b'\n{"a":1}\n')
    stats = Engine([Rule("r", "a == 1", action=_act_on)]).run_file(path, workers=workers)
    assert (stats.errors, stats.matches, stats.actions_run) == (1, {"r": 2}, {"r": 2})
    assert [e.line for e in stats.error_samples] == [2]


def test_a_worker_that_cannot_decode_an_event_does_not_hang_the_run(tmp_path: Path) -> None:
    # The parent refuses such lines first; the workers' own check is the
    # backstop: before, a worker died with the others' end marks in hand.
    script = tmp_path / "run.py"
    script.write_text(
        "import sys\n"
        "from rulejet import Engine, JSONError, Rule, workers\n"
        "from rulejet.workers import ActionError\n"
        "def refuse(raw):\n"
        "    raise JSONError('refused', offset=0)\n"
        "workers.decode_event = refuse  # forked workers inherit it\n"
        "def act(event): pass\n"
        f"path = {str(tmp_path / 'ev.ndjson')!r}\n"
        "open(path, 'w').write('{\"a\":1}\\n' * 100)\n"
        "try:\n"
        "    Engine([Rule('r', 'a == 1', action=act)]).run_file(path, workers=2)\n"
        "except ActionError as e:\n"
        "    print('ActionError', 'not decodable' in str(e))\n"
    )
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "ActionError True"
