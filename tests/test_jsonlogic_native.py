"""JSONLogic rules on the native VM against the Python evaluator (rulejet.jsonlogic).

The translation (rulejet/jsonlogic_native.py) must be exact where it decides and hand
every other event to Python, so the per-line matches and the counts of a run equal what
JsonLogic.matches gives event by event, on every kernel, for random rules over random
events of every JSON type (numbers spelled oddly, strings that look like numbers,
arrays where strings are expected, fields missing or null).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from rulejet import Engine, Rule, from_jsonlogic, runner
from rulejet.jsonlogic_native import parts_in_python, truth_of

from .test_rules_differential import STRINGS, events

VARS = ["a", "b", "c", "user.age", "user.name", "user.id", "user", "tags", "flags.x", "flags"]
UNTRANSLATED_VARS = ["tags.0", "user.name.length", ""]
NUMBERS = [0, 1, -1, 7, 18, 99, 1.5, -0.0, 0.5, 2**53, -(2**53), 2**53 + 1, 1e300]
LITERALS = st.one_of(
    st.sampled_from(STRINGS[:30]),
    st.sampled_from(NUMBERS),
    st.integers(-100, 100),
    st.sampled_from([True, False, None]),
)


def var(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(st.sampled_from(VARS * 6 + UNTRANSLATED_VARS))
    return {"var": name} if draw(st.booleans()) else {"var": [name]}


def computed(draw: st.DrawFn) -> Any:
    """An operand that is neither a field nor a literal, reading a field."""
    v = var(draw)
    return draw(
        st.sampled_from(
            [{"+": [v]}, {"!": v}, {"!!": [v]}, {"if": [v, 1, 2]}, [v], {"cat": [v]},
             {"min": [v, 5]}, {"and": [v]}, {"or": [v, 0]}]
        )
    )  # fmt: skip


@st.composite
def comparison(draw: st.DrawFn) -> dict[str, Any]:
    op = draw(st.sampled_from(["==", "===", "!=", "!==", "<", "<=", ">", ">="]))
    pair = [var(draw), draw(LITERALS)]
    if draw(st.integers(0, 5)) == 0:  # a computed operand instead of the field
        pair[0] = computed(draw)
    if draw(st.booleans()):
        pair.reverse()
    if op in ("<", "<=") and draw(st.integers(0, 4)) == 0:  # between
        return {op: [draw(LITERALS), var(draw), draw(LITERALS)]}
    return {op: pair}


@st.composite
def membership(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.booleans()):
        items = draw(
            st.one_of(
                st.lists(st.sampled_from(STRINGS[:30]), max_size=4),
                st.lists(st.sampled_from(NUMBERS), max_size=4),
                st.lists(LITERALS, max_size=3),
            )
        )
        return {"in": [var(draw), items]}
    return {"in": [draw(st.sampled_from(["a", "ab", "1", "é", ""])), var(draw)]}


def conditions(depth: int = 3) -> st.SearchStrategy[Any]:
    leaves = st.one_of(
        comparison(),
        membership(),
        st.builds(lambda v: v, st.sampled_from(VARS).map(lambda n: {"var": n})),
        LITERALS,
    )
    return st.recursive(
        leaves,
        lambda kids: st.one_of(
            st.lists(kids, min_size=1, max_size=3).map(lambda a: {"and": a}),
            st.lists(kids, min_size=1, max_size=3).map(lambda a: {"or": a}),
            kids.map(lambda a: {"!": a}),
            kids.map(lambda a: {"!!": [a]}),
            st.lists(kids, min_size=0, max_size=5).map(lambda a: {"if": a}),
        ),
        max_leaves=depth * 2,
    )


def check(rules: list[Any], evs: list[bytes]) -> Engine:
    # A rule's condition is a mapping (a bare string would be an expression).
    rules = [r if isinstance(r, dict) else {"!!": [r]} for r in rules]
    engine = Engine([Rule(f"r{k}", rule) for k, rule in enumerate(rules)])
    decoded = [json.loads(e) for e in evs]
    want = [
        [k for k, rule in enumerate(rules) if from_jsonlogic(rule).matches(doc)] for doc in decoded
    ]
    data = b"".join(e + b"\n" for e in evs)
    part = runner.run_partition(engine, data, list(range(len(rules))))
    got = [[] for _ in evs]
    for line, _off, _n, ids in part.matches:
        got[line - 1] = list(ids)
    for raw, w, g in zip(evs, want, got, strict=True):
        assert g == w, f"event {raw!r}: Python {w}, run {g}, rules {rules}"
    stats = engine.run_buffer(data)
    assert stats.matches == {f"r{k}": sum(k in w for w in want) for k in range(len(rules))}
    assert set(stats.eval_errors.values()) <= {0}
    return engine


@given(rules=st.lists(conditions(), min_size=1, max_size=4), data=st.data())
@settings(max_examples=300)
def test_native_jsonlogic_equals_python(kernel: str, rules: list[Any], data: Any) -> None:
    engine = check(rules, data.draw(st.lists(events(), min_size=1, max_size=12), label="events"))
    event("translated" if engine._bulk is not None else "in Python")


@pytest.mark.parametrize(
    ("rule", "event", "want"),
    [
        # Loose equality: an array holding the string equals it; numbers in strings.
        ({"==": [{"var": "a"}, "US"]}, {"a": ["US"]}, True),
        ({"==": [{"var": "a"}, 1]}, {"a": "1"}, True),
        ({"==": [{"var": "a"}, "1"]}, {"a": 1}, True),
        ({"==": [{"var": "a"}, " 0x10 "]}, {"a": 16.0}, True),
        ({"==": [{"var": "a"}, "1"]}, {"a": True}, True),
        ({"==": [{"var": "a"}, "[object Object]"]}, {"a": {}}, True),
        ({"==": [{"var": "a"}, 1]}, {"a": True}, True),
        ({"===": [{"var": "a"}, 1]}, {"a": True}, False),
        # A missing or null field is null: null < 18 is 0 < 18.
        ({"<": [{"var": "a"}, 18]}, {}, True),
        ({"<": [{"var": "a"}, 18]}, {"a": None}, True),
        ({"==": [{"var": "a"}, None]}, {"a": None}, True),
        ({"===": [None, {"var": "a"}]}, {}, True),
        ({"!=": [{"var": "a.b"}, None]}, {"a": {"b": 0}}, True),
        ({">": [{"var": "a"}, 18]}, {"a": "20"}, True),
        # Integers beyond 2**53 are rounded as JavaScript reads them (a literal of
        # 2**53 or more keeps the rule in Python; below, the VM's exact order agrees).
        ({"==": [{"var": "a"}, 2**53]}, {"a": 2**53 + 1}, True),
        ({">": [{"var": "a"}, 2**53]}, {"a": 2**53 + 1}, False),
        ({">": [{"var": "a"}, 2**53 - 1]}, {"a": 2**53 + 1}, True),
        ({"==": [{"var": "a"}, 2**53 - 1]}, {"a": 2**53 + 1}, False),
        ({"==": [{"var": "a"}, True]}, {"a": 1.0}, True),
        ({"==": [{"var": "a"}, False]}, {"a": "0"}, True),
        ({"==": [{"var": "a"}, False]}, {"a": []}, True),
        ({"in": [{"var": "a"}, ["x", "y"]]}, {"a": "y"}, True),
        ({"in": ["adm", {"var": "a"}]}, {"a": "admin"}, True),
        ({"in": ["admin", {"var": "a"}]}, {"a": ["admin"]}, True),
        ({"in": ["admin", {"var": "a"}]}, {"a": {"admin": 1}}, False),
        ({"!": {"var": "a"}}, {"a": []}, True),
        ({"!!": {"var": "a"}}, {"a": "0"}, True),
        ({"if": [{"var": "a"}, {"==": [{"var": "b"}, 1]}, False]}, {"a": 1, "b": 1}, True),
    ],
)
def test_coercions_decided_in_python(kernel: str, rule: Any, event: Any, want: bool) -> None:
    literals = [a for a in next(iter(rule.values())) if isinstance(a, int)]
    assert bool(parts_in_python(rule)) == any(abs(v) >= 2**53 for v in literals)
    assert from_jsonlogic(rule).matches(event) is want
    check([rule], [json.dumps(event).encode()])


def test_untranslated_parts_run_in_python() -> None:
    """A rule the VM cannot translate is unknown there as a whole; its events all
    go to Python, and the rest of the set still runs on the VM."""
    for rule in [
        {"==": [{"var": "tags.0"}, "a"]},
        {"==": [{"var": ["a", 5]}, 5]},
        {"==": [{"var": "a"}, {"var": "b"}]},
        {"some": [{"var": "tags"}, {"==": [{"var": ""}, "a"]}]},
        {"<": [{"var": "a"}, "é"]},
        # A computed operand reads fields: no constant (found by review).
        {"==": [{"+": [{"var": "a"}]}, 5]},
        {"!=": [{"!": {"var": "a"}}, True]},
        {"==": [[{"var": "a"}], "5"]},
    ]:
        assert parts_in_python(rule)
        evs = [b'{"a": 5, "b": 5, "tags": ["a"]}', b"{}"]
        engine = check([rule, {"==": [{"var": "b"}, 5]}], evs)
        assert engine._bulk is not None
        stats = engine.run_buffer(b"".join(e + b"\n" for e in evs))
        assert list(stats.in_python.values()) == [2, 0]


def test_the_rest_of_a_rule_decides_without_its_unknown_part() -> None:
    # The some is left to Python; where a is not 1 the and is false on the VM
    # (JSONLogic never evaluates the some there either).
    some = {"some": [{"var": "tags"}, {"==": [{"var": ""}, "x"]}]}
    rules = [
        {"and": [{"==": [{"var": "a"}, 1]}, some]},
        {"or": [{"==": [{"var": "a"}, 1]}, some]},
        {"if": [some, {"==": [{"var": "a"}, 1]}, {"==": [{"var": "a"}, 1]}]},
        {"!": {"and": [{"==": [{"var": "a"}, 1]}, some]}},
    ]
    evs = [b'{"a": 1, "tags": ["x"]}', b'{"a": 1, "tags": ["y"]}', b'{"a": 2, "tags": ["x"]}']
    engine = check(rules, evs * 3)
    assert engine.python_part_reasons() == [f"rule 'r{i}': operator 'some'" for i in range(4)]
    stats = engine.run_buffer(b"".join(e + b"\n" for e in evs * 3))
    # and: decided natively where a != 1; or: where a == 1; if: where both branches
    # are false (Kleene's logic does not see that two true branches make it true);
    # !: as the and.
    assert list(stats.in_python.values()) == [6, 3, 6, 6]


def test_jsonlogic_stop_and_callables_keep_the_python_path() -> None:
    rule = {"==": [{"var": "a"}, 1]}
    assert Engine([Rule("r", rule, then=["stop"])])._bulk is None
    assert Engine([Rule("r", rule), Rule("c", lambda d: True)])._bulk is None
    assert Engine([Rule("r", rule), Rule("e", "a == 1")])._bulk is not None
    assert Engine([Rule("r", rule), Rule("e", "a == 1", then=["stop"])])._bulk is not None


def test_a_line_python_cannot_decode_is_an_evaluation_error() -> None:
    # Malformed where no rule reads: the scan skips it; Python, asked about the
    # undecided rule, cannot decode the line: an error of that rule, not a lost line.
    engine = Engine([Rule("r", {"==": [{"var": "a"}, 1]})])
    stats = engine.run_buffer(b'{"a": "1", "z": [01]}\n{"a": 1}\n')
    assert stats.matches == {"r": 1} and stats.eval_errors == {"r": 1}
    assert stats.events == 2 and stats.errors == 0


def test_program_run_lists_the_rules_that_err_per_event() -> None:
    # The native side of "cannot tell": collect_errors names rule r as n_rules + r in
    # the match record of each event where r's evaluation ended in an error.
    engine = Engine([Rule("m", "a == 1"), Rule("e", "b > 1")])
    assert engine.compiled is not None
    program = engine.compiled.program
    out = program.run(b'{"a":1,"b":"x"}\n{"a":2,"b":2}\n{"a":1}\n', collect=[0], collect_errors=[1])
    assert out[3] == [2, 1] and out[4] == [0, 2]
    assert [(m[0], m[3]) for m in out[6]] == [(1, (0, 3)), (3, (0, 3))]
    with pytest.raises(IndexError, match="collect_errors"):
        program.run(b"{}\n", collect_errors=[2])


def test_the_events_left_to_python_are_counted(tmp_path: Any) -> None:
    engine = Engine([Rule("r", {"==": [{"var": "a"}, 1]}), Rule("s", "a == 1")])
    stats = engine.run_buffer(b'{"a": "1"}\n{"a": 1}\n{"a": [1]}\n{}\n', threads=2)
    assert stats.matches == {"r": 3, "s": 1} and stats.eval_errors == {"r": 0, "s": 1}
    assert stats.in_python == {"r": 2, "s": 0}  # "1" and [1]: JavaScript coerces them
    assert stats.as_dict()["in_python"] == {"r": 2}
    path = tmp_path / "e.ndjson"
    path.write_bytes(b'{"a": "1"}\n{"a": 2}\n')
    assert Engine([Rule("r", {"==": [{"var": "a"}, 1]})]).run_file(path).in_python == {"r": 1}


@st.composite
def mixed_rule_sets(draw: st.DrawFn) -> list[Rule]:
    """JSONLogic rules among expression rules, some with stop, in random priorities."""
    rules = []
    for k in range(draw(st.integers(1, 5))):
        priority = draw(st.integers(0, 3))
        if draw(st.booleans()):
            cond = draw(conditions())
            rules.append(Rule(f"j{k}", cond if isinstance(cond, dict) else {"!!": [cond]},
                              priority=priority))  # fmt: skip
        else:
            text = draw(st.sampled_from(["a == 1", "b > 1", "has(user.age)", "a != null", "true"]))
            stop = "stop" if draw(st.booleans()) else None
            rules.append(Rule(f"e{k}", text, priority=priority, action=stop))
    return rules


@given(rules=mixed_rule_sets(), data=st.data())
@settings(max_examples=200)
def test_expression_stop_rules_mixed_with_jsonlogic(
    kernel: str, rules: list[Rule], data: Any
) -> None:
    # The reference: Engine.evaluate, event by event (native expressions, Python
    # JSONLogic, stop across both).
    engine = Engine(rules)
    evs = data.draw(st.lists(events(), min_size=1, max_size=10), label="events")
    part = runner.run_partition(
        engine, b"".join(e + b"\n" for e in evs), list(range(len(engine.rules)))
    )
    got = [[] for _ in evs]
    for line, _off, _n, ids in part.matches:
        got[line - 1] = [engine.rules[i].name for i in ids]
    for raw, g in zip(evs, got, strict=True):
        assert g == engine.evaluate(raw), raw
    event("translated" if engine._bulk is not None else "in Python")


def test_check_says_why_jsonlogic_rules_run_in_python(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from rulejet.cli import main

    path = tmp_path / "r.yaml"
    path.write_text(
        "rules:\n"
        '  - {name: a, when_jsonlogic: {"some": [{"var": "t"}, {"var": ""}]}}\n'
        '  - {name: b, when_jsonlogic: {"==": [{"var": "t.0"}, 1]}}\n'
        '  - {name: c, when_jsonlogic: {"==": [{"var": "x"}, 1]}, then: [stop]}\n'
    )
    assert main(["check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "every event decoded" in out and "rule 'c': a JSONLogic rule with stop" in out
    assert "parts of JSONLogic rules" not in out  # the whole set runs in Python
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:3]))
    assert main(["check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "every event decoded" not in out and "parts of JSONLogic rules run in Python" in out
    assert "rule 'a': operator 'some'" in out
    assert "rule 'b': a var path with an index or length step" in out
    path.write_text('rules:\n  - {name: a, when_jsonlogic: {"==": [{"var": "x"}, 1]}}\n')
    assert main(["check", str(path)]) == 0
    assert "note" not in capsys.readouterr().out
    assert Engine(
        [Rule("a", {"==": [{"var": "x"}, 1]}), Rule("f", bool)]
    ).python_path_reasons() == ["the rule set has callable conditions"]


def test_opcodes_and_type_bits_follow_the_c_enums() -> None:
    # The compiler numbers opcodes, and the type test its mask bits, as the C
    # enums do; a mismatch would silently test the wrong thing.
    import re
    from pathlib import Path

    from rulejet.compiler import OPCODES
    from rulejet.expr import TYPE_BITS

    # The sources beside the tests (an installed package has no C headers).
    core = Path(__file__).resolve().parents[1] / "src" / "rulejet" / "_native" / "core"

    def enum(text: str, name: str, prefix: str) -> list[str]:
        body = text[text.index(f"enum {name} {{") :].split("};")[0]
        body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
        return [m.lower() for m in re.findall(rf"\b{prefix}(\w+)", body)]

    ops = enum((core / "vm.h").read_text(), "rj_op", "RJ_OP_")
    assert ops == [o.lower() for o in OPCODES] + ["max_"]
    types = enum((core / "json.h").read_text(), "rj_vtype", "RJ_V_")
    assert types == list(TYPE_BITS)
    assert list(TYPE_BITS.values()) == [1 << k for k in range(len(TYPE_BITS))]


def test_nested_ifs_in_tests_translate_to_a_linear_size() -> None:
    # An if's test appears twice in (c && a) || (!c && b): an if nested in the test
    # of an if would double at each level. Large tests stay ?: (found by review).
    from rulejet.jsonlogic_native import _size

    rule: Any = {"var": "x"}
    for i in range(14):
        rule = {"if": [rule, {"var": f"a{i}"}, {"var": f"b{i}"}]}
    truth = truth_of(rule)
    assert truth is not None and _size(truth) < 60 * 14
    check([rule], [b'{"x": [1], "a0": 1}', b'{"x": 1, "a0": 0, "b1": 1}', b"{}"])
