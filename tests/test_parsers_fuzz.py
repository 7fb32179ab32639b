"""The rule language's parsers on arbitrary input: a clean error with a
position, or a rule that agrees with the reference; never anything else."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rulejet import Engine, ExprError, Rule
from rulejet._ref.cel import CelError, evaluate
from rulejet.expr import parse_expr
from rulejet.rulefile import RuleFileError, load_rule_file

# Pieces of the language, so random text often parses (and then runs).
TOKENS = ["a", "b.c", "x", "1", "2.5", "-", "!", "&&", "||", "==", "!=", "<", ">=", "+", "*"]
TOKENS += ["(", ")", "[", "]", ",", '"s"', "'t'", "in", "has(", "size(", ".startsWith(", "?", ":"]
TOKENS += ["true", "null", "$", ".", "%", "/", '"\\u00e9"', '"\\"', "1e400", "9223372036854775808"]

EVENT = {"a": 1, "b": {"c": "s"}, "x": [1, "s"]}


@st.composite
def expression_text(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.sampled_from(TOKENS) | st.text(max_size=3), max_size=30))
    text = " ".join(parts)
    if draw(st.integers(0, 3)) == 0:  # deep nesting, or a long chain
        opener = draw(st.sampled_from(["(", "[", "!", "-", "size(", "a && ", "1 + "]))
        closer = {"(": ")", "[": "]", "size(": ")"}.get(opener, "")
        n = draw(st.integers(1, 300))
        text = opener * n + text + closer * n
    return text


@given(expression_text())
@settings(max_examples=400, deadline=None)
def test_expressions_parse_or_fail_cleanly(text: str) -> None:
    try:
        engine = Engine([Rule("r", text)])
    except ExprError as e:
        assert e.offset is not None and 0 <= e.offset <= len(text)
        return
    want = evaluate(parse_expr(text), EVENT)
    assert (engine.evaluate(json.dumps(EVENT)) == ["r"]) == (
        want is True and not isinstance(want, CelError)
    )


@given(st.binary(max_size=200) | expression_text().map(str.encode))
@settings(max_examples=300, deadline=None)
def test_rule_files_load_or_list_problems(tmp_path_factory: Any, blob: bytes) -> None:
    path: Path = tmp_path_factory.mktemp("rf") / "rules.yaml"
    path.write_bytes(b"rules:\n  - name: r\n    when: " + blob)
    try:
        load_rule_file(path)
    except RuleFileError as e:
        assert e.problems and all(p.line >= 0 and p.column >= 0 for p in e.problems)
