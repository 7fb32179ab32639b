"""The Engine API: rules of every kind, actions, explain, and file runs."""

from __future__ import annotations

import errno
import json
import math
import runpy
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rulejet import Engine, ExprError, FileError, JSONError, Rule, runner
from rulejet.rules import Explanation

from .conftest import require_shared


def test_seed_example(capsys: pytest.CaptureFixture[str]) -> None:
    fired = Engine(
        rules=[
            Rule(
                name="adult",
                cond=lambda d: d["age"] > 18,
                action=lambda d: print("grant access"),
            )
        ]
    ).execute({"age": 25})
    assert fired == ["adult"]
    assert capsys.readouterr().out == "grant access\n"


def test_seed_example_no_match_runs_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    engine = Engine(
        rules=[Rule(name="adult", cond=lambda d: d["age"] > 18, action=lambda d: print("grant"))]
    )
    assert engine.execute({"age": 12}) == []
    assert capsys.readouterr().out == ""


@dataclass
class Visitor:
    Age: int
    name: str = "Ann"


def test_dataclass_event_with_callable_condition() -> None:
    seen: list[Visitor] = []
    engine = Engine([Rule("adult", cond=lambda v: v.Age > 18, action=seen.append)])
    visitor = Visitor(Age=30)
    assert engine.execute(visitor) == ["adult"]
    assert seen == [visitor]  # actions get the object itself
    assert seen[0] is visitor
    assert engine.execute(Visitor(Age=18)) == []


def test_expression_conditions_on_dicts_and_dataclasses() -> None:
    engine = Engine(
        [
            Rule("adult", "Age >= 18"),
            Rule("ann", 'name == "Ann" && name.startsWith("A")'),
            Rule("nested", "user.profile.level > 2"),
        ]
    )
    assert engine.evaluate(Visitor(Age=40)) == ["adult", "ann"]
    assert engine.evaluate(Visitor(Age=4, name="Bob")) == []
    doc = {"Age": 18, "name": "Ann", "user": {"profile": {"level": 3}}}
    assert engine.evaluate(doc) == ["adult", "ann", "nested"]
    assert engine.execute(doc) == ["adult", "ann", "nested"]


def test_mixed_kinds_in_priority_order() -> None:
    engine = Engine(
        [
            Rule("expr", "a > 1", priority=1),
            Rule("call", lambda d: d["a"] > 1, priority=3),
            Rule("logic", {">": [{"var": "a"}, 1]}, priority=2),
            Rule("tie", "a > 1", priority=1),
            Rule("off", "true", enabled=False),
        ]
    )
    assert engine.names == ["call", "logic", "expr", "tie"]
    assert engine.evaluate({"a": 2}) == ["call", "logic", "expr", "tie"]
    assert engine.evaluate(b'{"a": 2}') == ["call", "logic", "expr", "tie"]
    assert engine.evaluate('{"a": 0}') == []


def test_stop_skips_lower_priority_rules() -> None:
    order: list[str] = []
    engine = Engine(
        [
            Rule("low", "true", action=lambda d: order.append("low"), priority=0),
            Rule("mid", "x > 1", action=["stop", lambda d: order.append("mid")], priority=5),
            Rule("top", "true", action=lambda d: order.append("top"), priority=9),
        ]
    )
    assert engine.execute({"x": 2}) == ["top", "mid"]
    assert order == ["top", "mid"]
    assert engine.execute({"x": 0}) == ["top", "low"]
    stats = engine.run_buffer(b'{"x": 2}\n{"x": 0}\n{"x": 3}\n')
    assert stats.matches == {"top": 3, "mid": 2, "low": 1}


def test_on_handlers_run_after_actions() -> None:
    calls: list[tuple[str, Any]] = []
    engine = Engine([Rule("big", "amount > 100.0", action=lambda d: calls.append(("act", d)))])

    @engine.on("big")
    def handler(event: Any) -> None:
        calls.append(("on", event))

    assert engine.execute(b'{"amount": 150.5}') == ["big"]
    assert calls == [("act", {"amount": 150.5}), ("on", {"amount": 150.5})]
    with pytest.raises(KeyError):
        engine.on("nope")


def test_handlers_run_during_file_runs(tmp_path: Path) -> None:
    seen: list[int] = []
    engine = Engine([Rule("odd", "n % 2 == 1")])
    engine.on("odd")(lambda ev: seen.append(ev["n"]))
    path = tmp_path / "n.ndjson"
    path.write_text("".join(json.dumps({"n": n}) + "\n" for n in range(7)))
    stats = engine.run_file(path)
    assert stats.matches == {"odd": 3}
    assert seen == [1, 3, 5]
    assert engine.run_file(path, actions=False).matches == {"odd": 3}
    assert seen == [1, 3, 5]


def test_evaluate_forms_and_malformed_json() -> None:
    engine = Engine([Rule("vip", 'tier in ["gold", "platinum"]'), Rule("any", "true")])
    doc = {"tier": "gold"}
    assert engine.evaluate(json.dumps(doc).encode()) == ["vip", "any"]
    assert engine.evaluate(bytearray(json.dumps(doc).encode())) == ["vip", "any"]
    assert engine.evaluate(json.dumps(doc)) == ["vip", "any"]
    assert engine.evaluate(doc) == ["vip", "any"]
    with pytest.raises(JSONError) as info:
        engine.evaluate(b'{"tier": }')
    assert info.value.offset == 9


def test_dict_events_with_nan_or_infinity() -> None:
    """No JSON spelling: the expression rules still evaluate (as the
    reference does), not a JSONError about text the caller never wrote."""
    engine = Engine(
        [Rule("big", "x > 1e308"), Rule("nan", "x != x"), Rule("err", "y > 1"), Rule("c", bool)]
    )
    assert engine.evaluate({"x": math.inf}) == ["big", "c"]
    assert engine.evaluate({"x": math.nan}) == ["nan", "c"]
    assert engine.execute({"x": -math.inf}) == ["c"]
    assert [e.matched for e in engine.explain({"x": math.inf})] == [True, False, False, True]
    assert engine.evaluate(b'{"x": 1e400}') == ["big", "c"]


def test_bad_conditions_raise_at_construction() -> None:
    with pytest.raises(ExprError) as info:
        Engine([Rule("r", "a >")])
    assert info.value.column == 4
    with pytest.raises(ValueError, match="duplicate rule names"):
        Engine([Rule("r", "true"), Rule("r", "false")])
    with pytest.raises(TypeError):
        Engine([Rule("r", 42)])  # type: ignore[arg-type]


def test_explain_shows_results_and_field_values() -> None:
    engine = Engine(
        [
            Rule("adult", 'user.age >= 18 && user.name.startsWith("J")'),
            Rule("missing", "score > 1"),
            Rule("logic", {"==": [{"var": "user.age"}, 30]}),
            Rule("call", lambda d: d["user"]["age"] < 5),
        ]
    )
    got = engine.explain({"user": {"age": 30, "name": "Jo"}})
    assert [e.rule for e in got] == ["adult", "missing", "logic", "call"]
    assert [e.matched for e in got] == [True, False, True, False]
    adult, missing, logic, call = got
    assert adult.result is True
    assert adult.fields == {'$["user"]["age"]': 30, '$["user"]["name"]': "Jo"}
    assert missing.result == 'error: no such field: $["score"]'
    assert missing.fields == {'$["score"]': "<absent>"}
    assert logic.fields == {"$.user.age": 30}
    assert call.result is False
    assert str(adult) == """MATCH adult: True   [$["user"]["age"]=30, $["user"]["name"]='Jo']"""
    assert str(missing).startswith("no    missing: error: no such field")
    assert all(isinstance(e, Explanation) for e in got)
    # JSON text explains the same, and the matched flags follow the native VM.
    assert engine.explain(b'{"user": {"age": 30, "name": "Jo"}}') == got
    with pytest.raises(JSONError):
        engine.explain(b'{"user": ')


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


EVENTS = [
    '{"user": {"age": 30, "name": "José"}, "amount": 250.0}',
    '{"user": {"age": 12}, "amount": null}',
    "",
    '{"user": {"age": 44}, "amount": 99.5',  # malformed
    '{"user": {"age": 19, "name": "Jo"}, "amount": 1000.25}',
    "not json",
]


def test_run_file_counts(tmp_path: Path, kernel: str) -> None:
    path = _write(tmp_path / "ev.ndjson", EVENTS)
    engine = Engine(
        [
            Rule("adult", "user.age >= 18"),
            Rule("big", "amount != null && amount > 100.0"),
            Rule("named", 'user.name.startsWith("Jo")'),
        ]
    )
    stats = engine.run_file(path)
    assert stats.events == 3
    assert stats.errors == 2
    assert stats.lines == 6
    assert stats.blank_lines == 1
    assert stats.bytes == path.stat().st_size
    assert stats.matches == {"adult": 2, "big": 2, "named": 2}
    assert stats.eval_errors == {"adult": 0, "big": 0, "named": 1}
    assert [e.line for e in stats.error_samples] == [4, 6]
    second = stats.error_samples[1]
    assert second.offset == len("".join(line + "\n" for line in EVENTS[:5]).encode())
    assert second.column == 1
    assert stats.kernel == kernel
    assert stats.as_dict()["matches"] == stats.matches
    with pytest.raises(JSONError) as info:
        engine.run_file(path, strict=True)
    assert info.value.line == 4
    # The map closed cleanly after the error: the file runs again.
    assert engine.run_file(path, threads=2).matches == stats.matches


def test_more_threads_than_lines_cut_no_more_partitions() -> None:
    # A huge --threads must not cut a small file into millions of pieces.
    buf = b"".join(line.encode() + b"\n" for line in EVENTS)
    assert len(runner.split_points(memoryview(buf), 10**8)) == 2  # one piece
    engine = Engine([Rule("r", "true")])
    assert engine.run_buffer(buf, threads=10**8).matches == engine.run_buffer(buf).matches


def test_run_file_missing_path(tmp_path: Path) -> None:
    with pytest.raises(FileError) as info:
        Engine([Rule("r", "true")]).run_file(tmp_path / "absent.ndjson")
    assert info.value.errno == errno.ENOENT
    assert isinstance(info.value, OSError)


def test_scan_yields_matches_in_file_order(tmp_path: Path) -> None:
    path = _write(tmp_path / "ev.ndjson", EVENTS)
    engine = Engine([Rule("named", 'user.name.contains("J")'), Rule("adult", "user.age >= 18")])
    got = list(engine.scan(path))
    assert got == [
        ("named", 1, EVENTS[0].encode()),
        ("adult", 1, EVENTS[0].encode()),
        ("named", 5, EVENTS[4].encode()),
        ("adult", 5, EVENTS[4].encode()),
    ]


def test_routes_tags_and_sinks(tmp_path: Path) -> None:
    lines = [
        '{"n": 1, "s": "a\\nb"}',
        '{"n": 5,  "s": "é"}',
        '{"n": 2}',
        '  {"n": 9}\r',
        '{"n": 7}',
    ]
    src = tmp_path / "in.ndjson"
    src.write_bytes("\n".join(lines).encode())  # the last line has no newline
    out = tmp_path / "out"
    engine = Engine(
        [
            Rule("big", "n > 4", then=[{"route": "alerts"}, {"tag": "large"}, "count"]),
            Rule("odd", "n % 2 == 1", then=[{"tag": "large"}, {"tag": "odd"}, {"route": "odd"}]),
        ],
        sinks={"alerts": {"path": "sub/alerts.ndjson"}},
    )
    stats = engine.run_file(src, out_dir=out)
    assert stats.matches == {"big": 3, "odd": 4}
    assert stats.tags == {"large": 7, "odd": 4}
    assert stats.routed == {"alerts": 3, "odd": 4}
    alerts = (out / "sub" / "alerts.ndjson").read_bytes()
    assert alerts == (lines[1] + "\n" + lines[3] + "\n" + lines[4] + "\n").encode()
    odd = (out / "odd.ndjson").read_bytes()  # undeclared sink: NAME.ndjson in out_dir
    assert odd == "".join(line + "\n" for i, line in enumerate(lines) if i != 2).encode()


def test_route_without_sink_or_out_dir_is_an_error(tmp_path: Path) -> None:
    src = _write(tmp_path / "in.ndjson", ['{"n": 1}'])
    engine = Engine([Rule("r", "n == 1", then=[{"route": "nowhere"}])])
    with pytest.raises(ValueError, match="has no sink"):
        engine.run_file(src)


def test_engine_from_file_with_stop_and_routes(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "sinks:\n  hits: {path: hits.ndjson}\n"
        "rules:\n"
        "  - name: big\n    when: 'amount > 10.0'\n    then: [{route: hits}, {tag: money}]\n"
        "  - name: first\n    when: 'amount > 0.0'\n    priority: 5\n    then: [stop]\n"
    )
    engine = Engine.from_file(rules)
    assert engine.names == ["first", "big"]
    assert engine.evaluate({"amount": 50.0}) == ["first"]
    src = _write(tmp_path / "ev.ndjson", ['{"amount": 50.0}', '{"amount": -1.0}'])
    stats = engine.run_file(src, out_dir=tmp_path)
    assert stats.matches == {"first": 1, "big": 0}
    # The sink was opened before the run; "stop" kept every line out of it.
    assert (tmp_path / "hits.ndjson").read_bytes() == b""


def test_native_and_python_conditions_agree_on_partitions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [json.dumps({"n": n, "s": "x" * (n % 7)}) for n in range(300)]
    src = _write(tmp_path / "ev.ndjson", lines)
    monkeypatch.setattr(runner, "PARTITION_BYTES", 512)
    native = Engine([Rule("r", "n % 3 == 0 && s.size() > 2"), Rule("t", "n > 100")])
    python = Engine(
        [
            Rule("r", lambda d: d["n"] % 3 == 0 and len(d["s"]) > 2),
            Rule("t", lambda d: d["n"] > 100),
        ]
    )
    want = {"r": sum(1 for n in range(300) if n % 3 == 0 and n % 7 > 2), "t": 199}
    for threads in (1, 2):
        assert native.run_file(src, threads=threads).matches == want
        assert python.run_file(src, threads=threads).matches == want


def _chunk_crossing_buffer() -> bytes:
    """Lines whose newlines fall just before, on and just after each of the
    native line finder's 16 KiB chunk edges, blank and malformed lines
    among them."""
    out = bytearray()
    for i in range(60):
        edge = (len(out) // 16384 + 1) * 16384
        want_nl = edge - 1 + i % 3  # the newline's offset, when the edge is near
        fill = want_nl - len(out) - len(b'{"a": 0, "p": ""}')
        pad = fill if 0 <= fill < 16384 and i % 4 else 10
        line = b'{"a": %d, "p": "%s"}' % (i % 7 - 3, b"x" * pad)
        out += (b"" if i % 9 == 0 else b'{"a": x}' if i % 5 == 0 else line) + b"\n"
    return bytes(out)


@pytest.mark.parametrize(
    "buf",
    [
        b'{"a": 1}',
        b'{"a": 1}\n\n',
        b'{"a": 1}\r\n{"a": 2}\r\n',
        b'\n{"a": 1}\n  {"a": x}\n{"a": 0}',
        b"",
        b"\n",
        b'  {"a": 1} junk\n',
        _chunk_crossing_buffer(),
    ],
    ids=lambda buf: f"{len(buf)} bytes",
)
def test_native_and_python_runs_count_lines_alike(buf: bytes) -> None:
    """Expression rules run natively; a callable makes the run go event by
    event in Python: lines, blanks, errors and their positions agree."""
    native = Engine([Rule("r", "a > 0")]).run_buffer(buf)
    python = Engine([Rule("r", lambda d: d["a"] > 0)]).run_buffer(buf)
    mixed = Engine([Rule("r", "a > 0"), Rule("p", lambda d: True)]).run_buffer(buf)
    for stats in (python, mixed):
        assert (stats.lines, stats.blank_lines, stats.events, stats.errors) == (
            native.lines,
            native.blank_lines,
            native.events,
            native.errors,
        )
        assert stats.matches["r"] == native.matches["r"]
        assert stats.error_samples == native.error_samples
    assert mixed.matches["p"] == native.events


# ---- the shared benchmark ----


def test_benchmark_rules_10_counts(tmp_path: Path) -> None:
    bench = require_shared("bench")
    events = tmp_path / "events.ndjson"
    subprocess.run([sys.executable, str(bench / "gen_events.py"), "20000", str(events)], check=True)
    engine = Engine.from_file(bench / "rules_10.yaml")
    stats = engine.run_file(events, threads=2)
    assert stats.events == 20000
    assert stats.errors == 0

    rules = runpy.run_path(str(bench / "rules_10_python.py"))["RULES"]
    want = dict.fromkeys((name for name, _ in rules), 0)
    with events.open("rb") as f:
        for line in f:
            event = json.loads(line)
            for name, cond in rules:
                try:
                    hit = cond(event)
                except Exception:  # a missing field: no match, as in the rule language
                    hit = False
                want[name] += bool(hit)
    assert stats.matches == want
    assert sum(want.values()) > 0
    assert engine.names == [name for name, _ in rules]


def test_evaluate_str_with_lone_surrogate() -> None:
    text = json.dumps({"a": "\ud800"}, ensure_ascii=False)
    assert json.loads(text) == {"a": "\ud800"}
    assert Engine([Rule("r", 'a == "\\ud800"')]).evaluate(text) == ["r"]


@pytest.mark.parametrize(
    "text",
    [
        '{"a": "\ud83d\ude00"}',  # two raw code points: json.loads keeps two
        '{"a": "\ud83d\\ude00"}',  # a raw high one, then an escaped low one
        '{"a": "\\ud83d\ude00"}',
    ],
)
def test_evaluate_str_with_surrogates_that_would_pair_is_refused(text: str) -> None:
    # As \u escapes they would be one character; json.loads sees two.
    assert len(json.loads(text)["a"]) == 2
    with pytest.raises(JSONError) as e:
        Engine([Rule("r", "size(a) == 2")]).evaluate(text)
    first_raw = next(i for i, c in enumerate(text) if "\ud800" <= c <= "\udfff")
    assert (e.value.line, e.value.column) == (1, first_raw + 1)


def test_native_loop_allocations_do_not_grow_with_events() -> None:
    # Escaped strings, lowerAscii and concatenation all need scratch memory;
    # the per-event arena reset means the count stays flat as events grow.
    rules = [
        Rule("a", 'name.lowerAscii().contains("o\\"b")'),
        Rule("b", 'name + "!" == "x!"'),
        Rule("c", "size(name) > 3"),
    ]
    engine = Engine(rules)
    one = b'{"name": "O\\"Brien \\u00e9 ' + b"x" * 100 + b'"}\n'
    small = engine.run_buffer(one * 1_000)
    large = engine.run_buffer(one * 50_000)
    assert small.matches["a"] == 1_000 and large.matches["a"] == 50_000
    assert large.native_allocations == small.native_allocations
    assert large.native_allocations <= 2


def test_stop_from_any_rule_kind_drops_lower_rules_errors(tmp_path: Path) -> None:
    path = tmp_path / "e.ndjson"
    path.write_bytes(b'{"s": "x"}\n')
    for cond in (lambda d: d["s"] == "x", {"==": [{"var": "s"}, "x"]}, 's == "x"'):
        e = Engine([Rule("stopper", cond, then=["stop"], priority=10), Rule("low", "a > 50")])
        assert e.run_file(path).eval_errors == {"stopper": 0, "low": 0}, cond


@pytest.mark.parametrize("mixed", [False, True])
def test_whitespace_that_is_not_json_is_malformed_for_every_rule_kind(
    tmp_path: Path, mixed: bool
) -> None:
    path = tmp_path / "e.ndjson"
    path.write_bytes(b"\x0c\n\x0b\n \t\r\n")
    rules = [Rule("r", "a > 0")] + ([Rule("c", lambda d: False)] if mixed else [])
    stats = Engine(rules).run_file(path)
    assert (stats.events, stats.blank_lines, stats.errors) == (0, 1, 2)


def test_routes_without_a_sink_fail_before_any_action(tmp_path: Path) -> None:
    path = tmp_path / "e.ndjson"
    path.write_bytes(b'{"a": 1}\n{"a": 2}\n')
    calls: list[Any] = []
    then = [{"route": "ok"}, {"route": "nosink"}, calls.append]
    e = Engine([Rule("r", "a > 0", then=then)], sinks={"ok": {"path": str(tmp_path / "ok")}})
    with pytest.raises(ValueError, match="'nosink' has no sink"):
        e.run_file(path)
    assert calls == [] and not (tmp_path / "ok").exists()
    assert e.run_file(path, out_dir=tmp_path / "out").routed == {"ok": 2, "nosink": 2}


def test_stdout_routes_need_a_real_stdout(tmp_path: Path) -> None:
    import contextlib
    import io

    path = tmp_path / "e.ndjson"
    path.write_bytes(b'{"a": 1}\n')
    e = Engine([Rule("r", "a > 0", then=[{"route": "c"}])], sinks={"c": {"stdout": True}})
    with contextlib.redirect_stdout(io.StringIO()), pytest.raises(ValueError, match="stdout"):
        e.run_file(path)


def test_explain_shows_errors_of_raising_callables() -> None:
    e = Engine([Rule("cb", lambda d: d["age"] > 18), Rule("ex", "age > 18")])
    got = e.explain(b'{"x": 1}')
    assert [x.matched for x in got] == [False, False]
    assert str(got[0].result).startswith("error: KeyError")
    with pytest.raises(KeyError):  # evaluate keeps on_error="raise"
        e.evaluate(b'{"x": 1}')


def test_actions_any_mapping_and_misspellings_refused(tmp_path: Path) -> None:
    import types

    path = tmp_path / "e.ndjson"
    path.write_bytes(b'{"a": 1}\n')
    proxy = types.MappingProxyType
    e = Engine([Rule("r", "a > 0", then=[proxy({"route": "s"}), proxy({"tag": "t"})])])
    stats = e.run_file(path, out_dir=tmp_path)
    assert (stats.tags, stats.routed) == ({"t": 1}, {"s": 1})
    for bad in ("stpo", {"rout": "s"}, {"tag": 1}, {"tag": "a", "route": "b"}, 3):
        with pytest.raises(ValueError, match="unknown action"):
            Rule("r", "a > 0", then=[bad])  # type: ignore[list-item]


def test_in_a_list_with_an_erroring_comparison_is_an_error(kernel: str) -> None:
    # CEL's exists(e, e == x): true decides; else an error among the
    # comparisons is the result, so a negated membership does not match.
    event = b'{"a":[[1]],"b":{"k":1},"c":[{"k":1}],"d":[9223372036854775808],"e":[1,[2]]}'
    engine = Engine(
        [
            Rule("not_in", "!([1] in a)"),
            Rule("obj", "!(b in c)"),
            Rule("big", "!(2 in d)"),
            Rule("found", "1 in e"),  # a true comparison absorbs the error
            Rule("literal", '!("x" in ["y", 1])'),
            Rule("list_in_literal", "!(a in [1, 2])"),
        ]
    )
    assert engine.evaluate(event) == ["found", "literal", "list_in_literal"]
    explained = {x.rule: x.result for x in engine.explain(event)}
    assert str(explained["big"]).startswith("error: integer out of 64-bit range")
    assert str(explained["obj"]).startswith("error: equality of lists or objects")
