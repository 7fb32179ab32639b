"""The native rule VM against the reference evaluator (_ref/cel.py).

Random rule sets (CEL-style conditions over a small field vocabulary) run
over random events (JSON of every type, some fields missing, numbers in
odd spellings) on every kernel: Engine.evaluate, run_buffer's per-rule
match and error counts, and thread counts must all give exactly what the
reference gives. Explicit cases pin the CEL semantics the docstring of
_ref/cel.py states, and the native bugs found so far (xfail, strict).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import subprocess
import sys
from collections import Counter
from typing import Any, NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rulejet import Engine, ExprError, Rule, runner
from rulejet._native import format_double
from rulejet._ref.cel import CelError, evaluate
from rulejet.compiler import guards_of, translate_regex
from rulejet.expr import parse_expr

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

# ---- rule expressions ----

FIELDS = [
    "a",
    "b",
    "user.age",
    "user.name",
    "user.id",
    'user["é"]',
    "tags",
    "tags[0]",
    "flags.x",
    "$.a",
]
HAS_FIELDS = ["a", "b", "user", "user.age", "user.name", "tags[0]", "tags[1]", "flags.x", "flags"]
STRINGS = [
    "",
    "a",
    "A",
    "abc",
    "aXc",
    "a1c",
    "a\nc",
    "abc\n",
    "ABC def",
    "123",
    "-7",
    "+3",
    "1.5",
    ".5",
    "1e3",
    "x y",
    "é",
    "José",
    'O"Brien',
    "back\\slash",
    "tab\there",
    "日本",
    "😀",
    "a\x00b",
    "null",
    "true",
    "admin",
    "9007199254740993",
    "99999999999999999999",
    "1e400",
    "-1e400",
]
INTS = [0, 1, -1, 2, 3, -2, 7, 18, 100, 2**31, 2**53, 2**53 + 1, 2**62, INT64_MAX, INT64_MIN]
FLOATS = [
    0.0,
    -0.0,
    0.5,
    1.0,
    1.5,
    -2.5,
    0.1,
    18.0,
    100.0,
    1e16,
    1e-5,
    9007199254740992.0,
    9.223372036854776e18,
    -9.223372036854776e18,
    1.7976931348623157e308,
    5e-324,
]
# Patterns whose meaning agrees between Python's re and the POSIX
# translation (compiler.translate_regex) on the strings generated here.
PATTERNS = [
    "^a.c",
    "[0-9]+",
    "^a.c$",
    "c$",
    "^$",
    "b",
    "^[a-z]+$",
    "\\d",
    "\\w+",
    "\\s",
    "\\S",
    "[^a]",
    "a|b",
    "(ab)+",
    "^-?[0-9]+$",
    "x{2}",
    "\\.",
    "[.]",
    "a{",
    "é",
    "^.$",
    "[\\]a]",
    "[a\\-z]",
    "A",
    "^\\+",
    "(^a|b)",
    "a$|^b",
    "^(ab|c)\n?$",
]


def cel_str(s: str, quote: str = '"', escape_all: bool = False) -> str:
    """A string literal in the rule language that reads back as s."""
    out = []
    for ch in s:
        code = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif ch == quote:
            out.append("\\" + quote)
        elif ch == "\n":
            out.append("\\n")
        elif code < 0x20 or (escape_all and code > 0x7E):
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(ch)
    return quote + "".join(out) + quote


@st.composite
def int_literal(draw: st.DrawFn) -> str:
    v = draw(st.one_of(st.sampled_from(INTS), st.integers(-1000, 1000)))
    if v >= 0 and draw(st.integers(0, 5)) == 0:
        return hex(v)
    return str(v)


@st.composite
def float_literal(draw: st.DrawFn) -> str:
    v = draw(st.one_of(st.sampled_from(FLOATS), st.floats(-1e6, 1e6).map(lambda x: round(x, 2))))
    return draw(st.sampled_from([repr(v), repr(v), "1e400", "2.5E-3", "1e3"]))


@st.composite
def str_literal(draw: st.DrawFn) -> str:
    s = draw(st.one_of(st.sampled_from(STRINGS), st.text(max_size=6)))
    return cel_str(s, draw(st.sampled_from(['"', "'"])), draw(st.booleans()))


scalar_literal = st.one_of(
    st.sampled_from(["null", "true", "false"]), int_literal(), float_literal(), str_literal()
)


@st.composite
def list_literal(draw: st.DrawFn) -> str:
    return "[" + ", ".join(draw(st.lists(scalar_literal, max_size=4))) + "]"


def _value(draw: st.DrawFn, depth: int) -> str:
    """Any expression (its type is whatever it turns out to be)."""
    if depth <= 0 or draw(st.integers(0, 3)) == 0:
        return draw(st.one_of(st.sampled_from(FIELDS), scalar_literal))
    kinds = ["arith", "neg", "size", "size_m", "int", "double", "string", "lower", "cond"]
    kind = draw(st.sampled_from([*kinds, "list", "bool", "field", "field"]))
    if kind == "arith":
        op = draw(st.sampled_from(["+", "-", "*", "/", "%"]))
        return f"({_value(draw, depth - 1)} {op} {_value(draw, depth - 1)})"
    if kind == "neg":
        return f"-{_value(draw, depth - 1)}"
    if kind == "size":
        return f"size({_value(draw, depth - 1)})"
    if kind == "size_m":
        return f"{_value(draw, depth - 1)}.size()"
    if kind in ("int", "double"):
        return f"{kind}({_value(draw, depth - 1)})"
    if kind == "string":
        return f"string({_value(draw, depth - 1)})"
    if kind == "lower":
        return f"{_value(draw, depth - 1)}.lowerAscii()"
    if kind == "cond":
        return f"({_bool(draw, depth - 1)} ? {_value(draw, depth - 1)} : {_value(draw, depth - 1)})"
    if kind == "list":
        return draw(list_literal())
    if kind == "bool":
        return _bool(draw, depth - 1)
    return draw(st.sampled_from(FIELDS))


def _bool(draw: st.DrawFn, depth: int) -> str:
    """An expression meant to be a bool (errors and other types happen)."""
    kinds = ["cmp", "cmp", "has", "str", "matches", "in", "not", "and", "or", "cond", "leaf"]
    kind = draw(st.sampled_from(kinds if depth > 0 else ["cmp", "has", "leaf"]))
    sub = max(depth - 1, 0)
    if kind == "cmp":
        op = draw(st.sampled_from(["==", "!=", "<", "<=", ">", ">="]))
        left = draw(st.sampled_from(FIELDS)) if draw(st.booleans()) else _value(draw, sub)
        right = draw(scalar_literal) if draw(st.booleans()) else _value(draw, sub)
        if draw(st.booleans()):
            left, right = right, left
        return f"({left} {op} {right})"
    if kind == "has":
        return f"has({draw(st.sampled_from(HAS_FIELDS))})"
    if kind == "str":
        method = draw(st.sampled_from(["startsWith", "endsWith", "contains"]))
        arg = draw(str_literal()) if draw(st.booleans()) else _value(draw, sub)
        return f"{_value(draw, sub)}.{method}({arg})"
    if kind == "matches":
        return f"{_value(draw, sub)}.matches({cel_str(draw(st.sampled_from(PATTERNS)))})"
    if kind == "in":
        right = draw(st.one_of(list_literal(), st.sampled_from(FIELDS)))
        left = draw(st.one_of(st.sampled_from(FIELDS), scalar_literal))
        if depth > 1 and draw(st.booleans()):
            left = _value(draw, sub)
        return f"({left} in {right})"
    if kind == "not":
        return f"!{_bool(draw, sub)}"
    if kind in ("and", "or"):
        op = "&&" if kind == "and" else "||"
        return f"({_bool(draw, sub)} {op} {_bool(draw, sub)})"
    if kind == "cond":
        return f"({_bool(draw, sub)} ? {_bool(draw, sub)} : {_bool(draw, sub)})"
    return draw(st.one_of(st.sampled_from(FIELDS), st.sampled_from(["true", "false", "null"])))


@st.composite
def conditions(draw: st.DrawFn) -> str:
    return _bool(draw, draw(st.integers(0, 4)))


class Spec(NamedTuple):
    name: str
    text: str
    priority: int
    stop: bool


@st.composite
def rule_sets(draw: st.DrawFn, min_size: int = 1, max_size: int = 8) -> list[Spec]:
    """Rules with random conditions, priorities and, now and then, stop."""
    texts = draw(st.lists(conditions(), min_size=min_size, max_size=max_size))
    return [
        Spec(f"r{i}", t, draw(st.integers(-1, 2)), draw(st.integers(0, 5)) == 0)
        for i, t in enumerate(texts)
    ]


# ---- events ----


class Num:
    """A number spelled exactly so in the JSON text."""

    def __init__(self, text: str) -> None:
        self.text = text


NUM_SPELLINGS = ["1E2", "1e400", "-1e400", "-0", "0.0e0", "1.0", "100000000000000000000000"]
NUM_SPELLINGS += ["-9223372036854775809", "9223372036854775808", "18446744073709551616"]


# Any code point, NUL and lone surrogates included (these travel as \u escapes).
_strings = st.one_of(
    st.sampled_from([*STRINGS, "\ud800", "x\udfff", "\ude00\ud83d"]),
    st.text(st.characters(exclude_categories=()), max_size=12),
)


def _scalars() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.sampled_from(INTS),
        st.integers(-(10**30), 10**30),
        st.integers(-100, 100),
        st.sampled_from(FLOATS),
        st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from(NUM_SPELLINGS).map(Num),
        _strings,
    )


def _containers(kids: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    keys = st.sampled_from(["a", "x", "age", "name", "é", "0"])
    return st.one_of(st.lists(kids, max_size=4), st.dictionaries(keys, kids, max_size=4))


def _json_values() -> st.SearchStrategy[Any]:
    return st.recursive(_scalars(), _containers, max_leaves=12)


@st.composite
def events(draw: st.DrawFn) -> bytes:
    """One JSON object over the field vocabulary, as one NDJSON line."""
    values = _json_values()
    scalars = _scalars()
    obj: dict[str, Any] = {}
    for key in ["a", "b", "c"]:
        if draw(st.integers(0, 3)):
            obj[key] = draw(st.one_of(scalars, values))
    if draw(st.integers(0, 4)):
        user: dict[str, Any] = {}
        for key, strat in [
            ("age", st.one_of(st.integers(0, 99), scalars)),
            ("name", st.one_of(st.sampled_from(STRINGS[:20]), scalars)),
            ("id", st.one_of(st.sampled_from(INTS), scalars)),
            ("é", scalars),
        ]:
            if draw(st.integers(0, 3)):
                user[key] = draw(strat)
        obj["user"] = user if draw(st.integers(0, 5)) else draw(scalars)
    if draw(st.integers(0, 3)):
        obj["tags"] = draw(st.one_of(st.lists(scalars, max_size=4), values))
    if draw(st.integers(0, 3)):
        obj["flags"] = {"x": draw(scalars)} if draw(st.integers(0, 4)) else draw(values)
    keys = list(obj)
    keys = draw(st.permutations(keys)) if keys else keys
    return dump({k: obj[k] for k in keys}, draw(st.booleans()), draw(st.sampled_from(SPACING)))


SPACING = [(",", ":"), (", ", ": "), (" ,\t", " :\r ")]


def dump(value: Any, ascii_only: bool, spacing: tuple[str, str]) -> bytes:
    """json.dumps with Num spellings (one line)."""

    def enc(v: Any) -> str:
        if isinstance(v, Num):
            return v.text
        if isinstance(v, list):
            return "[" + spacing[0].join(enc(x) for x in v) + "]"
        if isinstance(v, dict):
            items = (
                json.dumps(k, ensure_ascii=ascii_only) + spacing[1] + enc(x) for k, x in v.items()
            )
            return "{" + spacing[0].join(items) + "}"
        # A lone surrogate travels only as a \\u escape (raw, it is invalid UTF-8).
        lone = isinstance(v, str) and any("\ud800" <= c <= "\udfff" for c in v)
        return json.dumps(v, ensure_ascii=ascii_only or lone)

    return enc(value).encode()


# ---- the reference ----


def reference(
    rules: list[Spec], events: list[bytes]
) -> tuple[list[list[str]], Counter[str], Counter[str], list[dict[str, Any]]]:
    """Expected matches per event (priority order, up to the first stop
    that matches), match counts, and error counts of the rules evaluated."""
    order = sorted(rules, key=lambda r: -r.priority)  # stable: ties keep their order
    asts = {r.name: parse_expr(r.text) for r in rules}
    per_event, counts, errors, values = [], Counter[str](), Counter[str](), []
    for raw in events:
        doc = json.loads(raw)
        results: dict[str, Any] = {}
        matched: list[str] = []
        for rule in order:
            result = results[rule.name] = evaluate(asts[rule.name], doc)
            if isinstance(result, CelError):
                errors[rule.name] += 1
            elif result is True:
                matched.append(rule.name)
                if rule.stop:
                    break
        values.append(results)
        per_event.append(matched)
        counts.update(matched)
    return per_event, counts, errors, values


def engine_of(rules: list[Spec]) -> Engine:
    return Engine(
        [
            Rule(r.name, r.text, priority=r.priority, action="stop" if r.stop else None)
            for r in rules
        ]
    )


def check(rules: list[Spec], evs: list[bytes]) -> None:
    engine = engine_of(rules)
    expected, counts, errors, values = reference(rules, evs)
    for raw, want, vals in zip(evs, expected, values, strict=True):
        got = engine.evaluate(raw)
        assert got == want, f"event {raw!r}\nrules {rules}\nreference {vals}"
    stats = engine.run_buffer(b"".join(e + b"\n" for e in evs))
    assert (stats.events, stats.errors) == (len(evs), 0)
    assert stats.matches == {r.name: counts[r.name] for r in rules}, rules
    assert stats.eval_errors == {r.name: errors[r.name] for r in rules}, rules


@given(rules=rule_sets(), data=st.data())
def test_native_equals_reference(kernel: str, rules: list[Spec], data: Any) -> None:
    evs = data.draw(st.lists(events(), min_size=1, max_size=10), label="events")
    check(rules, evs)


@given(data=st.data())
@settings(max_examples=10)
def test_many_rules_native_equals_reference(kernel: str, data: Any) -> None:
    """Past 64 rules (one word of the VM's rule bitsets), with many guards
    and atoms sharing fields."""
    rules = data.draw(rule_sets(min_size=65, max_size=150), label="rules")
    check(rules, data.draw(st.lists(events(), min_size=5, max_size=10), label="events"))


@st.composite
def atom(draw: st.DrawFn) -> str:
    """A test the compiler fuses into one instruction (an atom), maybe negated."""
    field = draw(st.sampled_from(FIELDS))
    lit = draw(scalar_literal)
    kinds = ["cmp", "cmp", "eq_rev", "in", "const_in", "str", "has", "bare", "matches"]
    kind = draw(st.sampled_from(kinds))
    if kind == "cmp":
        text = f"{field} {draw(st.sampled_from(['==', '!=', '<', '<=', '>', '>=']))} {lit}"
    elif kind == "eq_rev":
        text = f"{lit} {draw(st.sampled_from(['==', '!=']))} {field}"
    elif kind == "in":
        text = f"{field} in {draw(list_literal())}"
    elif kind == "const_in":
        text = f"{lit} in {field}"
    elif kind == "str":
        method = draw(st.sampled_from(["startsWith", "endsWith", "contains"]))
        text = f"{field}.{method}({draw(str_literal())})"
    elif kind == "bare":  # true only when the field holds true
        text = field
    elif kind == "matches":
        text = f"{field}.matches({cel_str(draw(st.sampled_from(PATTERNS)))})"
    else:
        text = f"has({draw(st.sampled_from(HAS_FIELDS))})"
    return f"!({text})" if draw(st.integers(0, 3)) == 0 else f"({text})"


@st.composite
def atom_rule(draw: st.DrawFn) -> str:
    """Atoms joined by && or || (one operator, or mixed with parentheses)."""
    atoms = draw(st.lists(atom(), min_size=1, max_size=6))
    if draw(st.booleans()):
        return draw(st.sampled_from([" && ", " || "])).join(atoms)
    text = atoms[0]
    for a in atoms[1:]:
        text = f"({text}{draw(st.sampled_from([' && ', ' || ']))}{a})"
        if draw(st.integers(0, 4)) == 0:  # negated subtrees, !(x && y)
            text = f"!{text}"
    return text


@given(data=st.data())
def test_atom_shaped_rules(kernel: str, data: Any) -> None:
    """Rules made only of fused tests under && || !: the VM decides them
    from memoized atoms shared across rules (per-field tables of cells,
    three-valued trees), without running their code."""
    texts = data.draw(st.lists(atom_rule(), min_size=1, max_size=10), label="rules")
    rules = [
        Spec(f"r{i}", t, data.draw(st.integers(0, 1)), data.draw(st.integers(0, 5)) == 0)
        for i, t in enumerate(texts)
    ]
    check(rules, data.draw(st.lists(events(), min_size=1, max_size=10), label="events"))


TABLE_FIELDS = ["a", "user.age", "user.name"]
# Strings `"s" in field` looks for: a few, so that one field's table gets
# some of them (a row per subset found), now and then more than it takes.
NEEDLES = ["admin", "x", "", "é", 'O"Brien', "1", "a b"]


@st.composite
def table_atom(draw: st.DrawFn) -> str:
    """A test the VM settles from its field's table of cells."""
    field = draw(st.sampled_from(TABLE_FIELDS))
    kind = draw(st.sampled_from(["cmp", "cmp", "cmp", "in", "starts", "has", "bare", "member"]))
    if kind == "bare":  # true only for true
        text = field
    elif kind == "member":
        lit = cel_str(draw(st.sampled_from(NEEDLES))) if draw(st.integers(0, 4)) else None
        text = f"{lit or draw(scalar_literal)} in {field}"
    elif kind == "cmp":
        op = draw(st.sampled_from(["==", "!=", "<", "<=", ">", ">="]))
        text = f"{field} {op} {draw(scalar_literal)}"
    elif kind == "in":
        text = f"{field} in {draw(list_literal())}"
    elif kind == "starts":
        text = f"{field}.startsWith({draw(str_literal())})"
    else:
        text = f"has({field})"
    return f"!({text})" if draw(st.integers(0, 4)) == 0 else text


@given(data=st.data())
def test_rules_settled_by_cells(kernel: str, data: Any) -> None:
    """Many conjunctions and disjunctions over the same few fields: each
    field gets a table (sorted thresholds, a row of atom results and rule
    bits per cell) that decides them without running code. Every cell kind
    (below, equal, between, above thresholds; numbers across int and
    double; strings by bytes and by prefix; missing; false, true, null;
    containers, and arrays by the subset of needles among their elements;
    values the table does not cover) must agree with the reference. Now
    and then past 64 rules (a second word of rule bits), and now and then
    with stop rules (then the VM meets the cells' verdicts rule by rule
    instead of word by word)."""
    joined = st.tuples(st.lists(table_atom(), min_size=1, max_size=3), st.booleans())
    wide = data.draw(st.integers(0, 3), label="wide") == 0
    texts = data.draw(
        st.lists(
            joined.map(lambda aj: (" && " if aj[1] else " || ").join(aj[0])),
            min_size=65 if wide else 8,
            max_size=80 if wide else 24,
        ),
        label="rules",
    )
    stops = data.draw(st.integers(0, 3), label="stops") == 0
    rules = [
        Spec(f"r{i}", t, 0, stops and data.draw(st.integers(0, 7)) == 0)
        for i, t in enumerate(texts)
    ]
    # Events that hit the constants themselves as often as values between.
    pool = st.one_of(
        st.sampled_from(INTS), st.sampled_from(FLOATS), st.sampled_from(STRINGS),
        st.integers(-3, 120), st.floats(-200, 200), st.text(max_size=4), _scalars(),
        st.booleans(), st.none(), st.lists(st.sampled_from([*NEEDLES, "y"]), max_size=4),
        st.lists(st.one_of(st.sampled_from(NEEDLES), _scalars()), max_size=3),
        st.dictionaries(st.sampled_from(NEEDLES), st.integers(0, 1), max_size=2),
    )  # fmt: skip
    evs = []
    for _ in range(data.draw(st.integers(1, 12), label="n_events")):
        doc: dict[str, Any] = {}
        if data.draw(st.integers(0, 4)):
            doc["a"] = data.draw(pool)
        user: dict[str, Any] = {}
        for key in ("age", "name"):
            if data.draw(st.integers(0, 4)):
                user[key] = data.draw(pool)
        doc["user"] = user
        evs.append(dump(doc, data.draw(st.booleans()), SPACING[0]))
    check(rules, evs)


def test_cells_on_strings_with_a_common_prefix(kernel: str) -> None:
    """Timestamp-like thresholds that share a long prefix: values below,
    inside and above the prefix, shorter than it, equal to a threshold,
    between two, and prefixes with their upper bounds."""
    stamps = ["2026-11-02T06:00:00", "2026-11-02T18:00:00", "2026-11-14T06:00:00"]
    texts = [f'a >= "{x}" && a < "{y}"' for x, y in itertools.pairwise(stamps)]
    texts += [f'a.startsWith("{p}")' for p in ("2026-11-02", "2026-11-1", "2026-11-14T0")]
    texts += ['a == "2026-11-02T18:00:00"', 'a in ["2026-11-", "2026-11-14"]', "has(a)"]
    texts += ['a > "2026-11-05"', 'a <= "2026-11-02T18:00:00"', '!(a < "2026-11-14T06:00:00")']
    values = [
        "", "2", "2026", "2026-11-", "2026-10-31T23:59:59", "2026-11-01", "2026-11-02",
        "2026-11-02T06:00:00", "2026-11-02T06:00:00.5Z", "2026-11-02T17:59:59",
        "2026-11-02T18:00:00", "2026-11-09", "2026-11-1", "2026-11-14", "2026-11-14T06",
        "2026-11-14T07", "2026-11-15", "2026-12-01", "3", 7, None,
    ]  # fmt: skip
    evs = [json.dumps({"a": v}).encode() for v in values] + [b"{}"]
    evs.append(rb'{"a": "2026-11-02\u0054\u0031\u0038:00:00"}')  # escaped: equal to a threshold
    check([Spec(f"r{i}", t, 0, False) for i, t in enumerate(texts)], evs)


def test_integer_fields_read_their_rows_from_a_table(kernel: str) -> None:
    """Thresholds that are all integers (ints, or doubles with integral
    values) within 4,096 of each other give the field a row per integer
    from one below the lowest to one above the highest, taken from the
    search itself: every integer in and around that range, integral and
    fractional doubles, and integers far outside it must agree with the
    reference. Also a field whose thresholds are too far apart (no table)
    and one with a fractional threshold (no table)."""
    texts = [
        "a >= -5 && a < 3", "a == 0", "a > 7.0", "a in [2, 4.0, 9]", "a <= -6", "a != 3",
        "b >= 0 && b < 5000", "b == 2500", "b > 1", "b < 4999",
        "c > 2.5", "c < 10", "c == 4", "c >= 0",
    ]  # fmt: skip
    values: list[Any] = [*range(-10, 15), -7.0, 2.0, 2.5, 7.5, 8.0, 1e300, -1e300]
    values += [4094, 4095, 4096, 4999, 5000, 5001, 2**53 + 1, -(2**63), 2**63 - 1, 10**30]
    evs = []
    for v in values:
        evs.append(json.dumps({"a": v, "b": v, "c": v}).encode())
    evs += [b'{"a": null, "b": "1", "c": true}', b"{}"]
    check([Spec(f"r{i}", t, 0, False) for i, t in enumerate(texts)], evs)


def test_double_fields_read_their_rows_from_unit_intervals(kernel: str) -> None:
    """Thresholds within 4,096 of each other give the field a row per unit
    interval [k, k + 1) that holds no threshold (the others search): values
    at, just below and just above each threshold, on interval edges, at
    -0.0, just below the top of the range from a negative start (where
    x - lo rounds up to the next interval), and far outside must agree
    with the reference."""
    import math

    cuts = [-2000.25, -40.0, -0.5, 0.0, 43.3, 63.3, 104.7, 1000.0, 2000.0]
    texts = [f"g > {c}" for c in cuts] + [f"g <= {c}" for c in cuts[::3]] + ["g == 43.3"]
    values: list[Any] = [-1e300, -3000.0, -2001.0, 1e300, 5000.5, 2001.0, 2000.999999]
    for c in cuts:
        for x in (c, math.nextafter(c, -math.inf), math.nextafter(c, math.inf)):
            values += [x, math.floor(x), math.floor(x) + 0.5, math.ceil(x)]
    values += [math.nextafter(2001.0, 0.0), math.nextafter(1.0, 0.0) - 2000.0, -0.0, 0.0]
    values += [-2000, 43, 2000, 7]  # ints: no int table here (fractional thresholds)
    evs = [json.dumps({"g": v}).encode() for v in values] + [b"{}", b'{"g": "1"}']
    check([Spec(f"r{i}", t, 0, False) for i, t in enumerate(texts)], evs)


NESTED = [
    'flags.x || (a == "a" && user.age < 20)',
    '!(a == "a" || b > 1) && !flags.x',
    "(flags.x && b) || !(user.age >= 18 && has(user.name))",
    '"admin" in tags || (user.name.contains("b") && !(b in [1, 2.5, "x"]))',
]


def test_nested_rules_are_decided_as_trees(kernel: str) -> None:
    """&& || ! over atoms (bare bool fields included) is decided in
    three-valued logic, never by running code; every value kind of each
    leaf (true, false, another type, missing) matches the reference."""
    from rulejet.compiler import SHAPE_TREE, compile_rules

    compiled = compile_rules([parse_expr(t) for t in NESTED], NESTED, [False] * len(NESTED))
    assert compiled.shapes == [SHAPE_TREE] * len(NESTED)
    leaves: list[Any] = [True, False, 0, 1.5, "a", "b", None, [], {}, "missing"]
    evs = []
    for i, x in enumerate(leaves):
        for j, y in enumerate(leaves):
            doc: dict[str, Any] = {"user": {"age": 10 + 5 * j, "name": "abc"}}
            doc["tags"] = ["admin"][: i % 2]
            for key, v in (("a", x), ("b", y), ("flags", {"x": leaves[(i + j) % len(leaves)]})):
                if v != "missing":
                    doc[key] = v
            evs.append(json.dumps(doc).encode())
    check([Spec(f"r{i}", t, 0, False) for i, t in enumerate(NESTED)], evs)


def test_constants_only_escaped_strings_hold(kernel: str) -> None:
    """A string constant holding '"', '\\' or a control byte can only be
    in a value that the event escapes: plain values settle such atoms at
    once (false; true for !=), escaped ones are decoded and tested."""
    consts = ['O"Brien', "back\\slash", "tab\there", "a\nb", '"', "x\x01"]
    names = [*consts, "O'Brien", "Brien", "back/slash", "tabhere", "", "a b", "x"]
    names += [f"{c} Jr." for c in consts] + [f"Mr {c}" for c in consts]
    rules = []
    for i, c in enumerate(consts):
        lit = cel_str(c)
        for j, text in enumerate(
            [
                f"user.name == {lit}",
                f"user.name != {lit}",
                f"user.name.startsWith({lit})",
                f"user.name.endsWith({lit})",
                f"user.name.contains({lit})",
                f"!user.name.contains({lit}) && user.age > 0",
                f"user.name.contains({lit}) || user.age > 50",
            ]
        ):
            rules.append(Spec(f"r{i}_{j}", text, 0, False))
    evs = [json.dumps({"user": {"name": n, "age": 10 * k}}).encode() for k, n in enumerate(names)]
    evs += [b'{"user":{"name":5,"age":1}}', b'{"user":{"age":1}}', b'{"user":{"name":null}}']
    check(rules, evs)


def regex_memo_events() -> list[bytes]:
    """Values that repeat (memo hits), many distinct ones (evictions from
    every set), ones differing only in their last byte or length, the
    memo's longest key (256 bytes) and past it, empty strings, escapes and
    lone surrogates (the decoded value is the key), and non-strings."""
    values: list[Any] = ["abc", "a1c", "b", "", "ab", "xx", "aXc", "é", "\ud800"]
    values += [f"v{i}c" for i in range(700)] + [f"{i}" for i in range(300)]
    values += ["a" * 255 + "c", "a" * 256 + "c", "a" * 257 + "c", "a" * 256, "b" * 400]
    values += ["a" * 127 + "c", "a" * 128 + "c", "b" * 200, "b" * 199 + "c"]
    values += ["ab\nc", "ab\\c", 'ab"c', "ab\tc", 5, None, ["abc"]]
    rounds = [values, values[::-1], values[::7] * 3, values[:9] * 20]
    pairs = [(v, w) for vs in rounds for v, w in zip(vs, vs[3:] + vs[:3], strict=True)]
    return [json.dumps({"a": v, "b": w}).encode() for v, w in pairs]


def test_regex_memo_keeps_results_exact(
    kernel: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """matches() results are remembered per (pattern, string) across the
    events of a run; with the memo on or off every event's result equals
    Python's re (per event through scan(), which runs one VM for all)."""
    texts = [f"{f}.matches({cel_str(p)})" for p in PATTERNS for f in ("a", "b")]
    texts += ['a.matches("c$") && b.matches("^a.c")', '!a.matches("[0-9]+") || b.matches("b")']
    rules = [Spec(f"r{i}", t, 0, False) for i, t in enumerate(texts)]
    evs = regex_memo_events()
    path = tmp_path / "events.ndjson"
    path.write_bytes(b"".join(e + b"\n" for e in evs))
    expected = reference(rules, evs)[0]
    want = sorted((name, line) for line, names in enumerate(expected, 1) for name in names)
    for memo in ("1", "0"):
        monkeypatch.setenv("RULEJET_REGEX_MEMO", memo)
        check(rules, evs)
        got = sorted((name, line) for name, line, _ in engine_of(rules).scan(path))
        assert got == want, f"memo {memo}"


def test_regex_memo_rests_and_returns(tmp_path: Any) -> None:
    """A pattern whose values never repeat stops consulting the memo for a
    while (RJ_RE_MEMO_REST calls after a trial of 1,024 lookups with few
    hits), then tries again; every event's result stays Python's."""
    values = [f"{i}x" for i in range(3000)]  # the first trial: no hits, a rest
    values += ["1x", "2y", "x3", "44x", "y"] * 14000  # the rest, then trials with hits
    pattern = re.compile("^[0-9]+x$")
    path = tmp_path / "events.ndjson"
    path.write_text("".join(json.dumps({"a": v}) + "\n" for v in values))
    engine = Engine([Rule("r", f"a.matches({cel_str(pattern.pattern)})")])
    got = [line for _, line, _ in engine.scan(path)]
    assert got == [i for i, v in enumerate(values, 1) if pattern.search(v)]


# Rules whose string tests have no order (contains, endsWith, matches)
# on one field: its value memo decides the AND/OR ones by bits (with the
# cells' atoms on n), the tree reads the memo's results.
VALUE_MEMO_RULES = [
    's.contains("bot") && n < 40', 's.contains("Safari") && n < 20',
    's.contains("bot") || s.endsWith(".php")', 's.endsWith("x") && has(s)',
    's.matches("^[A-Z]") && n > 5', '!s.contains("a") && s != "zz"',
    's.startsWith("Mo") || s.contains("é")', 'n >= 0 && !s.endsWith("x")',
    'has(s) && (s.contains("bot") || s.startsWith("curl/"))', 'n < 40 && s == "abc"',
]  # fmt: skip
MEMO_VALUES: list[Any] = [
    "Mozilla bot", "Safari x", "curl/7", "abc", "zz", "Émile", "a.php", "", "x",
    "Mozilla bot", "Safari x", "abc", "Mozilla bot", "x" * 127 + "bot", "x" * 129 + "bot",
]  # fmt: skip


def memo_events(values: list[Any], ns: list[Any]) -> list[bytes]:
    evs = [json.dumps({"s": v, "n": n}).encode() for v in values for n in ns]
    evs += [json.dumps({"n": n}).encode() for n in ns]  # s missing
    evs += [rb'{"s": "Safari \u0078", "n": 3}', rb'{"s": "bo\u0074", "n": 3}']  # escaped
    return evs


@pytest.mark.parametrize("memo", ["1", "0"])
def test_value_memo_decides_rules_as_the_reference(
    kernel: str, memo: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A field tested with contains/endsWith/matches by several rules gets
    a value memo: values seen again (in one run), values longer than it
    keeps, escaped strings, other types, the field missing, and the memo
    turned off (RULEJET_VALUE_MEMO=0) must all give the reference's
    matches and error counts."""
    monkeypatch.setenv("RULEJET_VALUE_MEMO", memo)
    rules = [Spec(f"r{i}", t, 0, False) for i, t in enumerate(VALUE_MEMO_RULES)]
    values = [*MEMO_VALUES, 5, None, True, ["bot"], {"a": 1}]
    check(rules, memo_events(values, [3, 10, 25, 50, 7.5]))


def test_value_memo_alone_without_cells(kernel: str) -> None:
    """A memo without any cells (no field has four rules of table atoms):
    the rule bitsets start from the memo alone."""
    texts = ['s.contains("bot") && n < 40', 's.endsWith("x") || s.contains("Saf")']
    rules = [Spec(f"r{i}", t, 0, False) for i, t in enumerate(texts)]
    check(rules, memo_events([*MEMO_VALUES, 7], [3, 50]))


def test_value_memo_rests_and_returns(kernel: str) -> None:
    """A field whose values rarely repeat puts its memo to rest after a
    trial (1,024 lookups), then it tries again; meanwhile its rules are
    evaluated alone, with and without cells on the other field."""
    values = [f"{i} bot" if i % 3 else f"{i}.php" for i in range(2500)]
    values += ["Mozilla bot", "Safari x", "abc", "zz"] * 500
    for texts in (VALUE_MEMO_RULES, VALUE_MEMO_RULES[:3]):
        rules = [Spec(f"r{i}", t, 0, False) for i, t in enumerate(texts)]
        evs = [json.dumps({"s": v, "n": i % 60}).encode() for i, v in enumerate(values)]
        engine = engine_of(rules)
        _, counts, errors, _ = reference(rules, evs)
        stats = engine.run_buffer(b"".join(e + b"\n" for e in evs))
        assert stats.matches == {r.name: counts[r.name] for r in rules}
        assert stats.eval_errors == {r.name: errors[r.name] for r in rules}


@given(data=st.data())
@settings(max_examples=20)
def test_threads_and_partitions_agree(
    kernel: str, data: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One buffer cut into many partitions, on 1 and 2 threads: the same
    stats, malformed lines numbered from the start of the whole buffer."""
    rules = data.draw(rule_sets(), label="rules")
    evs = data.draw(st.lists(events(), min_size=40, max_size=80), label="events")
    lines = list(evs)
    bad_at = data.draw(st.lists(st.integers(0, len(lines)), max_size=3), label="bad")
    for k in sorted(bad_at, reverse=True):
        lines.insert(k, b'{"a": 1,')
    lines.insert(len(lines) // 2, b"   ")
    buf = b"".join(line + b"\n" for line in lines)
    engine = engine_of(rules)
    monkeypatch.setattr(runner, "PARTITION_BYTES", len(buf) // 8)
    assert len(runner.split_points(memoryview(buf), 1)) > 5  # really cut up
    one = engine.run_buffer(buf, threads=1)
    two = engine.run_buffer(buf, threads=2)
    for stats in (one, two):
        assert stats.events == len(evs)
        assert stats.errors == len(bad_at)
        assert stats.blank_lines == 1
    assert one.matches == two.matches
    assert one.eval_errors == two.eval_errors
    bad_lines = [i + 1 for i, line in enumerate(lines) if line == b'{"a": 1,']
    assert [e.line for e in one.error_samples] == bad_lines
    assert [(e.line, e.offset) for e in two.error_samples] == [
        (e.line, e.offset) for e in one.error_samples
    ]
    _, counts, errors, _ = reference(rules, evs)
    assert one.matches == {r.name: counts[r.name] for r in rules}
    assert one.eval_errors == {r.name: errors[r.name] for r in rules}


# ---- explicit semantics ----

ERR = "missing.field"  # reading an absent field is an error value


def ref(text: str, event: Any = None) -> Any:
    return evaluate(parse_expr(text), {} if event is None else event)


def native(text: str, event: Any = None) -> tuple[bool, int]:
    """(matched, eval errors) for one rule over one event, natively."""
    engine = Engine([Rule("r", text)])
    raw = json.dumps({} if event is None else event).encode()
    matched = engine.evaluate(raw) == ["r"]
    stats = engine.run_buffer(raw + b"\n")
    assert stats.matches["r"] == int(matched)
    return matched, stats.eval_errors["r"]


CASES: list[tuple[str, Any, Any]] = [
    # (condition, event, reference value: True, False, or CelError)
    (f"false && {ERR}", {}, False),
    (f"{ERR} && false", {}, False),
    (f"{ERR} || true", {}, True),
    (f"true || {ERR}", {}, True),
    (f"true && {ERR}", {}, CelError),
    (f"{ERR} || false", {}, CelError),
    (f"!{ERR}", {}, CelError),
    (f"!!{ERR}", {}, CelError),
    ("a && true", {"a": 1}, CelError),  # non-bool operand
    ("a || false", {"a": "x"}, CelError),
    ("a && false", {"a": 1}, False),
    ('"1" == 1', {}, False),
    ('"1" != 1', {}, True),
    ("a == 1", {"a": "1"}, False),
    ("1 == 1.0", {}, True),
    ("a == 1.0", {"a": 1}, True),
    ("a == 1", {"a": 1.0}, True),
    ("9007199254740993 == 9007199254740993.0", {}, False),
    ("a == 9007199254740993.0", {"a": 9007199254740993}, False),
    ("a == 9007199254740992.0", {"a": 9007199254740992}, True),
    ("a < 9007199254740993.0", {"a": 9007199254740993}, False),  # the double is ...992
    ("a > 9007199254740992.0", {"a": 9007199254740993}, True),
    ("a == 9223372036854775807", {"a": 9223372036854775807}, True),
    ("a < 9223372036854775808.0", {"a": 9223372036854775807}, True),
    ("amount != null", {"amount": 12.5}, True),
    ("amount != null", {"amount": 0}, True),
    ("amount != null", {"amount": None}, False),
    ("amount == null", {"amount": None}, True),
    ("amount != null", {}, CelError),
    ('"a" < 1', {}, CelError),
    ('a < "b"', {"a": 1}, CelError),
    ("a < b", {"a": True, "b": 1}, CelError),
    ("false < true", {}, True),
    ('"a" < "b"', {}, True),
    ('"Z" < "a"', {}, True),
    ('"é" > "z"', {}, True),
    ("null < null", {}, CelError),
    ("9223372036854775807 + 1 > 0", {}, CelError),
    ("a + 1 > 0", {"a": INT64_MAX}, CelError),
    ("a - 1 < 0", {"a": INT64_MIN}, CelError),
    ("a * 2 > 0", {"a": 2**62}, CelError),
    ("-a > 0", {"a": INT64_MIN}, CelError),
    ("-9223372036854775808 < 0", {}, True),
    ("-9223372036854775808 == a", {"a": INT64_MIN}, True),
    ("-9223372036854775808 / -1 < 0", {}, CelError),
    ("-9223372036854775808 % -1 == 0", {}, True),
    ("-(-9223372036854775808) > 0", {}, CelError),
    ("7 / -2 == -3", {}, True),
    ("7 % -2 == 1", {}, True),
    ("-7 / 2 == -3", {}, True),
    ("-7 % 2 == -1", {}, True),
    ("a / b == -3", {"a": 7, "b": -2}, True),
    ("a % b == 1", {"a": 7, "b": -2}, True),
    ("1 / 0 == 0", {}, CelError),
    ("1 % 0 == 0", {}, CelError),
    ("a / b == 0", {"a": 1, "b": 0}, CelError),
    ("1.0 / 0.0 > 1e308", {}, True),
    ("-1.0 / 0.0 < 0.0", {}, True),
    ("a / b < 0.0", {"a": 1.0, "b": -0.0}, True),
    ("0.0 / 0.0 == 0.0 / 0.0", {}, False),  # NaN
    ("0.0 / 0.0 < 1.0", {}, False),
    ("1.5 % 1.0 == 0.5", {}, CelError),
    ("1 + 1.0 == 2.0", {}, CelError),
    ('"ab" + "c" == "abc"', {}, True),
    ("has(user.name)", {}, False),
    ("has(user.name)", {"user": 5}, False),
    ("has(user.name)", {"user": ["name"]}, False),
    ("has(user.name)", {"user": {"name": None}}, True),
    ("has(tags[1])", {"tags": [1]}, False),
    ("has(tags[0])", {"tags": {"0": 1}}, False),
    ("user.name == null", {}, CelError),
    ("a > 0", {"a": 2**63}, CelError),
    ("a < 0", {"a": -(2**63) - 1}, CelError),
    ("a == a", {"a": 10**30}, CelError),
    ("has(a)", {"a": 10**30}, True),
    ("1 in a", {"a": [10**30, 1]}, True),
    ("size(a) == 2", {"a": [10**30, 1]}, True),
    ("a == b", {"a": [1], "b": [1]}, CelError),
    ("a == [1]", {"a": [1]}, CelError),
    ("a == 1", {"a": [1]}, False),
    ("a != {}", {"a": 1}, None),  # "{}" is not in the language: ExprError
    ('"x" in a', {"a": {"x": 0}}, True),
    ("1 in a", {"a": {"1": 0}}, False),
    ("1 in a", {"a": [1.0]}, True),
    ("a in [1, 2]", {"a": 2.0}, True),
    ('a in ["x"]', {"a": ["x"]}, False),
    ("1 in a", {"a": "1"}, CelError),
    ("size(a) == 4", {"a": "aé😀b"}, True),
    ("a.size() == 2", {"a": {"x": 1, "y": [2]}}, True),
    ("size(a) == 0", {"a": 5}, CelError),
    ("a.size() == 0", {"a": None}, CelError),  # a null receiver, not a function call
    ("size(a) == 0", {"a": None}, CelError),
    ('int("-12") == -12', {}, True),
    ('int("9223372036854775808") > 0', {}, CelError),
    ('int("1.5") == 1', {}, CelError),
    ("int(-2.7) == -2", {}, True),
    ("int(9.3e18) > 0", {}, CelError),
    ('double(".5") == 0.5', {}, True),
    ('double("1e400") > 1e308', {}, CelError),  # beyond the double range
    ('double("x") > 0.0', {}, CelError),
    ("double(a) == 9007199254740992.0", {"a": 9007199254740993}, True),
    ('string(-0.0) == "-0.0"', {}, True),
    ('string(1e16) == "1e+16"', {}, True),
    ('string(0.0001) == "0.0001"', {}, True),
    ('string(1e-05) == "1e-05"', {}, True),
    ('string(true) == "true"', {}, True),
    ('string(a) == "-9223372036854775808"', {"a": INT64_MIN}, True),
    ("string(null) == 'null'", {}, CelError),
    ('a.lowerAscii() == "éa"', {"a": "éA"}, True),
    ('a.startsWith("")', {"a": ""}, True),
    ('a.endsWith("bc")', {"a": "abc"}, True),
    ("a == true", {"a": True}, True),
    ("a == true", {"a": False}, False),
    ("a == false", {"a": False}, True),
    ("a != false", {"a": True}, True),
    ("a != true", {"a": True}, False),
    ("a == true", {"a": 1}, False),
    ("a == true", {"a": "true"}, False),
    ("a != true", {"a": None}, True),
    ("a == true", {}, CelError),
    ('a.contains("b\\u0000")', {"a": "ab\x00c"}, True),
    ("a.contains(b)", {"a": "abc", "b": 1}, CelError),
    ("(a ? 1 : 2) == 1", {"a": True}, True),
    ("(a ? 1 : 2) == 1", {"a": 1}, CelError),
    ("(a ? 1 : 2) == 1 || true", {"a": 1}, True),
    ("a ? true : " + ERR, {"a": True}, True),
    ('a.matches("^a.c")', {"a": "abc"}, True),
    ('a.matches("^a.c")', {"a": "a\nc"}, False),
    ('a.matches("^a.c$")', {"a": "aéc"}, True),
    ('a.matches("c$")', {"a": "abc\n"}, True),
    ('a.matches("[0-9]+")', {"a": "x12"}, True),
    ('a.matches("\\\\w")', {"a": "é"}, False),  # ASCII classes, as in RE2
    ('a.matches("\\\\d")', {"a": "٣"}, False),
    ('a.matches("[a\\\\-z]")', {"a": "b"}, False),
    ('a.matches("[\\\\]]")', {"a": "]"}, True),
    ('a.matches("[\\\\^]")', {"a": "^"}, True),
    ('a.matches("a{")', {"a": "a{"}, True),
    ('a.matches("a{,2}b")', {"a": "b"}, True),
    ('a.matches("\\\\<")', {"a": "<"}, True),
    ("a.matches('x')", {"a": 1}, CelError),
    # CEL's octal (three digits, the code point) and \x \X (two hex digits).
    ('a == "\\012"', {"a": "\n"}, True),
    ('a == "\\101\\X41\\x41\\x7e"', {"a": "AAA~"}, True),
    ('a == "\\000\\377"', {"a": "\x00\xff"}, True),
    # double(s) beyond the double range is an error, as int() is; inf and
    # nan are not numbers it reads.
    ("double(a) > 0.0", {"a": "1e400"}, CelError),
    ("double(a) < 0.0", {"a": "-1e400"}, CelError),
    ("double(a) > 0.0", {"a": "1.7976931348623159e308"}, CelError),  # rounds to inf
    ("double(a) > 0.0", {"a": "1" * 400}, CelError),
    ("double(a) > 1e308", {"a": "1.7976931348623157e308"}, True),
    ("double(a) == 0.0", {"a": "1e-400"}, True),  # underflow is zero, not an error
    ("double(a) > 0.0", {"a": "inf"}, CelError),
    ("double(a) > 0.0", {"a": "Infinity"}, CelError),
    ("double(a) != 0.0", {"a": "nan"}, CelError),
]


@pytest.mark.parametrize(("text", "event", "want"), CASES)
def test_semantics(kernel: str, text: str, event: Any, want: Any) -> None:
    if want is None:
        with pytest.raises(ExprError):
            Engine([Rule("r", text)])
        return
    got = ref(text, event)
    if want is CelError:
        assert isinstance(got, CelError), got
    else:
        assert got is want
    assert native(text, event) == (want is True, int(want is CelError))


ARRAY_SPELLINGS = [
    '["ab"]',
    '[ "ab" ]',
    '["x","ab"]',
    '["x" ,\n\t"ab"]',
    '["abc"]',
    '["a"]',
    "[]",
    "[ ]",
    '["\\u0061b"]',
    '["a\\\\b"]',
    '["\u00e9","ab"]',
    '["\\u00e9"]',
    '[1,"ab"]',
    '[["ab"]]',
    '[{"ab":1}]',
    '["AB"]',
    '[""]',
    "[null]",
    '["ab\\""]',
    '["x", 2]',
]


@pytest.mark.parametrize(
    "array",
    ARRAY_SPELLINGS,
)
@pytest.mark.parametrize("needle", ["ab", ""])
def test_string_in_array_text(kernel: str, array: str, needle: str) -> None:
    """`"s" in field` over arrays as they are spelled in the event text: the
    direct path (plain ASCII strings) and the general walk agree with the
    reference on every spelling, whichever one decides."""
    text = f'"{needle}" in a'
    raw = ('{"a":' + array + "}").encode()
    want = ref(text, json.loads(raw))
    engine = Engine([Rule("r", text)])
    stats = engine.run_buffer(raw + b"\n")
    assert (engine.evaluate(raw) == ["r"], stats.eval_errors["r"]) == (want is True, 0), raw


def test_string_in_array_split_once_per_event(kernel: str) -> None:
    """Several `"s" in field` rules share one split of the field's array per
    event: each event (every spelling above, an array longer than the split
    holds, and two arrays in one event) gets its own answer."""
    texts = ['"ab" in a', '"x" in a', '"" in a', '"ab" in b', '"y299" in a', '"x" in b']
    # one event a line: the spelling with a newline between elements keeps a tab
    lines = [('{"a":' + array.replace("\n", "") + "}").encode() for array in ARRAY_SPELLINGS]
    more = [{"a": [f"y{i}" for i in range(300)] + ["ab"]}, {"a": ["x"], "b": ["ab", "q"]}]
    more += [{"a": ["ab"] * 200, "b": ["x"] * 100}]
    lines += [json.dumps(e, separators=(",", ":")).encode() for e in more]
    events = [json.loads(line) for line in lines]
    engine = Engine([Rule(f"r{i}", t) for i, t in enumerate(texts)])
    stats = engine.run_buffer(b"\n".join(lines) + b"\n")
    want = {f"r{i}": sum(ref(t, e) is True for e in events) for i, t in enumerate(texts)}
    assert stats.matches == want
    for line, event in zip(lines, events, strict=True):
        assert engine.evaluate(line) == [
            f"r{i}" for i, t in enumerate(texts) if ref(t, event) is True
        ]


@pytest.mark.parametrize(
    ("obj", "distinct"),
    [
        (b'{"b": 1, "b": 2}', 1),
        (b'{"\\u0062": 1, "b": 2, "c": {"b": 1, "b": 2}}', 2),  # an escaped spelling
        (b'{"x": 1, "y": 2, "x": 3, "y": 4, "z": [5]}', 3),
        (b'{"": 1, "": 2, " ": 3}', 2),
        (b"{}", 0),
    ],
)
def test_size_of_object_counts_keys_as_json_loads_keeps_them(
    kernel: str, obj: bytes, distinct: int
) -> None:
    """With duplicate keys the last one wins, so each counts once."""
    rules = [
        Spec("f", f"size(a) == {distinct}", 0, False),
        Spec("m", f"a.size() == {distinct}", 0, False),
    ]
    raw = b'{"a": ' + obj + b"}"
    assert len(json.loads(raw)["a"]) == distinct
    check(rules, [raw])
    assert engine_of(rules).evaluate(raw) == ["f", "m"]


BIG = ", ".join(f'"e{i}"' for i in range(300))  # past the per-event split's 256


@pytest.mark.parametrize(
    "inner",
    [
        *['["x",]', '["x" "y"]', '[01, "x"]', '["x", [01]]', '["x", {"k" 1}]', '["x", tru]'],
        *[f'["x", {BIG},]', f'["x", {BIG}, 01]'],
    ],
)
def test_rules_reading_malformed_containers_get_errors_not_matches(kernel: str, inner: str) -> None:
    """The scan only bracket-checks an array or object it returns whole: a
    rule that reads into malformed text gets an error, never a match."""
    doc = ('{"a": ' + inner + "}").encode()
    with pytest.raises(ValueError):
        json.loads(doc)
    engine = Engine([Rule("in", '"x" in a'), Rule("size", "size(a) >= 1"), Rule("n", "1 in a")])
    assert engine.evaluate(doc) == []
    stats = engine.run_buffer(doc + b"\n")
    assert stats.eval_errors == {"in": 1, "size": 1, "n": 1}
    good = ('{"a": ' + inner.replace(",]", "]").replace(", 01", "") + "}").encode()
    if inner.startswith('["x", "e0"') or inner == '["x",]':
        assert engine.evaluate(good) == ["in", "size"]


def test_trees_with_many_negations_run_as_code(kernel: str) -> None:
    """Each `!` is a tree token: past the VM's token limit the rule runs
    its code instead (it used to fail to compile)."""
    text = " && ".join(f"!!!(a{i} == 1)" for i in range(30))
    evs = [json.dumps({f"a{i}": i % 3 for i in range(30)}).encode(), b'{"a0": 2}', b"{}"]
    evs.append(json.dumps({f"a{i}": 0 for i in range(30)}).encode())
    check([Spec("r", text, 0, False), Spec("s", text.replace("&&", "||"), 0, False)], evs)


def test_error_absorption_on_both_sides_of_each_operator(kernel: str) -> None:
    """Every (left, right) pair of true/false/error/non-bool through && and ||."""
    operands = {"true": True, "false": False, ERR: CelError, "1": CelError}
    for op in ("&&", "||"):
        for left, lv in operands.items():
            for right, rv in operands.items():
                text = f"{left} {op} {right}"
                want = _and_or(op, lv, rv)
                got = ref(text)
                assert (got if want is not CelError else type(got)) is want, text
                assert native(text) == (want is True, int(want is CelError)), text


def _and_or(op: str, a: Any, b: Any) -> Any:
    decider = op == "||"  # true decides ||, false decides &&
    if a is decider or b is decider:
        return decider
    if a is CelError or b is CelError:
        return CelError
    return not decider


def test_priority_order_and_ties(kernel: str) -> None:
    rules = [
        Spec("low", "true", -1, False),
        Spec("first", "true", 0, False),
        Spec("high", "true", 5, False),
        Spec("second", "a", 0, False),
    ]
    engine = engine_of(rules)
    assert engine.evaluate(b'{"a": true}') == ["high", "first", "second", "low"]
    assert engine.evaluate(b'{"a": false}') == ["high", "first", "low"]


def test_guards_and_atoms_keep_errors_and_stop(kernel: str) -> None:
    """Rules with an ``f == literal`` guard or a fused atom are skipped
    early; the skip must not lose matches, errors, or stop."""
    engine = Engine(
        [
            Rule("g1", 'event == "login" && user.age > 18', priority=3),
            Rule("g2", 'event in ["login", "x"] && !has(flags.mfa)', priority=2),
            Rule("stopper", '1 == a && user.age >= 0 && "vip" in tags', action="stop", priority=1),
            Rule("after", "true"),
        ]
    )
    ev = {"event": "login", "user": {"age": 30}, "a": 1.0, "tags": ["vip"], "flags": {}}
    assert engine.evaluate(json.dumps(ev)) == ["g1", "g2", "stopper"]
    ev2 = {**ev, "tags": []}
    assert engine.evaluate(json.dumps(ev2)) == ["g1", "g2", "after"]
    ev3 = {"event": "logout", "a": 2}
    assert engine.evaluate(json.dumps(ev3)) == ["after"]
    stats = engine.run_buffer(b"\n".join(json.dumps(e).encode() for e in (ev, ev2, ev3)) + b"\n")
    assert stats.matches == {"g1": 2, "g2": 2, "stopper": 1, "after": 2}
    # ev3: g1 and g2 are guarded out (false, no error); stopper's atom
    # 1 == a is false. An absent guard field makes the rule run: an error.
    assert stats.eval_errors == {"g1": 0, "g2": 0, "stopper": 0, "after": 0}
    stats = engine.run_buffer(b'{"a": 1}\n')
    assert stats.eval_errors == {"g1": 1, "g2": 1, "stopper": 1, "after": 0}
    # The guard compares values, not spellings: an escaped "login" hits.
    raw = b'{"event": "\\u006cogin", "user": {"age": 30}, "flags": {"mfa": 1}}'
    assert engine.evaluate(raw) == ["g1", "after"]
    assert engine.evaluate(b'{"event": "logi", "user": {"age": 30}}') == ["after"]


def assert_rule_r_as_reference(engine: Engine, text: str, lines: list[bytes]) -> None:
    """Rule "r" (condition text) over the NDJSON lines: a run's matches and
    error count, and each line's evaluate(), are the reference's."""
    stats = engine.run_buffer(b"\n".join(lines) + b"\n")
    want = [ref(text, json.loads(line)) for line in lines]
    assert stats.matches["r"] == sum(w is True for w in want)
    assert stats.eval_errors["r"] == sum(isinstance(w, CelError) for w in want)
    for line, w in zip(lines, want, strict=True):
        assert (engine.evaluate(line) == ["r"]) == (w is True), line


@pytest.mark.parametrize(
    "text",
    [
        'bot || (event == "signup" && age < 18)',
        'event == "a" || kind in ["x", "y"]',
        '(event == "a" && age > 1) || bot || kind == 2',
        "bot || other",
        'event == "a" || event == "b" || bot',
        "kind == 2.0 || bot",
        'kind in [1, 2.0, "x", true] || event in ["a", "signup", "b", "c", "d", "e", "f", "g"]',
    ],
)
def test_disjunct_guards_match_the_reference(kernel: str, text: str) -> None:
    """A top-level || whose every disjunct is pinned (or a bare field) skips
    events where no disjunct can hold: matches and errors stay the
    reference's for every kind of value in the guarded fields."""
    assert guards_of(parse_expr(text)) is not None  # the rule is guarded
    values: list[Any] = [True, False, None, 1, "a", "b", "signup", "x", 2, 17, 30, [1], {}]
    engine = Engine([Rule("r", text)])
    events = []
    for i in range(400):
        ev: dict[str, Any] = {}
        for j, key in enumerate(("bot", "event", "age", "kind", "other")):
            pick = (i * (j + 3) + i // (j + 2)) % (len(values) + 1)
            if pick < len(values):
                ev[key] = values[pick]
        events.append(ev)
    assert_rule_r_as_reference(engine, text, [json.dumps(ev).encode() for ev in events])


@pytest.mark.parametrize(
    "text",
    [
        'name.endsWith("ab")',
        'name.endsWith("") && age > 1',
        'name.endsWith("é") || kind == 2',
        'name.endsWith("ab") || name.endsWith("xab") || bot',
        '!(name.endsWith("b")) && name.endsWith("ab")',
        'kind == "x" && name.endsWith("ab")',
    ],
)
def test_suffix_guards_match_the_reference(kernel: str, text: str) -> None:
    """A rule that needs a field to end with a constant skips events where
    it does not: matches and errors stay the reference's for strings with
    and without the ending (escaped, non-ASCII, shorter than the ending)
    and for every other kind of value, the field absent included."""
    assert guards_of(parse_expr(text)) is not None  # the rule is guarded
    names: list[Any] = ["ab", "xab", "b", "", "a", "xaé", "é", "abab", 1, None, True, [], {}]
    values: list[Any] = [True, False, None, 1, 2, "x", 17]
    engine = Engine([Rule("r", text)])
    lines = []
    for i in range(300):
        ev: dict[str, Any] = {}
        pick = i % (len(names) + 1)
        if pick < len(names):
            ev["name"] = names[pick]
        for j, key in enumerate(("age", "kind", "bot")):
            pick = (i * (j + 3) + i // (j + 2)) % (len(values) + 1)
            if pick < len(values):
                ev[key] = values[pick]
        raw = json.dumps(ev, ensure_ascii=i % 3 == 0)  # "é" escaped or not
        if i % 7 == 0 and isinstance(ev.get("name"), str) and ev["name"]:
            raw = raw.replace('"name": "', '"name": "\\u0078', 1)  # an escaped first char
        lines.append(raw.encode())
    assert_rule_r_as_reference(engine, text, lines)


def test_equality_only_cells_match_the_reference(kernel: str) -> None:
    """A field tested only for equality against strings (==, !=, in) has its
    cell found by hash; values equal to a threshold, near misses (prefixes,
    longer strings sharing the first 8 bytes, other types, escapes, absent)
    must give the reference's matches and errors."""
    texts = [
        'e == "purchase"',
        'e != "view"',
        'e in ["login", "password_reset", "purchase_order_x"]',
        '!(e in ["view", "a"]) && n > 1',
        'e == "purchase_order_y" || e == 3',
        'e == ""',
        "e > 2",
    ]
    engine = Engine([Rule(f"r{i}", t) for i, t in enumerate(texts)])
    values: list[Any] = [
        "purchase", "purchas", "purchasex", "purchase_order_x", "purchase_order_y",
        "purchase_order_z", "view", "vie", "a", "", "login", "password_reset", 3, 3.0, 2.5,
        None, True, ["view"], "\u0076iew", "é",
    ]  # fmt: skip
    events = [{"e": v, "n": i % 3} for i, v in enumerate(values)] + [{"n": 2}]
    lines = [json.dumps(ev).encode() for ev in events]
    lines.append(b'{"e": "\\u0076iew", "n": 2}')  # an escaped spelling of "view"
    events.append({"e": "view", "n": 2})
    stats = engine.run_buffer(b"\n".join(lines) + b"\n")
    for i, t in enumerate(texts):
        want = [ref(t, ev) for ev in events]
        assert stats.matches[f"r{i}"] == sum(w is True for w in want), t
        assert stats.eval_errors[f"r{i}"] == sum(isinstance(w, CelError) for w in want), t
    for raw, ev in zip(lines, events, strict=True):
        want_names = [f"r{i}" for i, t in enumerate(texts) if ref(t, ev) is True]
        assert engine.evaluate(raw) == want_names, raw


def test_evaluate_accepts_bytes_str_and_dict(kernel: str) -> None:
    engine = Engine([Rule("big", "a > 10"), Rule("named", 'user.name.startsWith("Jo")')])
    doc = {"a": 11, "user": {"name": "José"}}
    for form in (json.dumps(doc).encode(), json.dumps(doc, ensure_ascii=False), doc):
        assert engine.evaluate(form) == ["big", "named"]


@pytest.mark.parametrize("escape", ["\\0", "\\0a", "\\01", "\\09", "\\400", "\\8", "\\x4", "\\Xg1"])
def test_bad_octal_and_hex_escapes_are_refused_at_the_escape(escape: str) -> None:
    """A lone \\0 is no CEL escape (not NUL followed by digits)."""
    text = f'a == "x{escape}z"'
    with pytest.raises(ExprError) as info:
        Engine([Rule("r", text)])
    assert info.value.column == text.index("\\") + 1


# ---- native bugs found by these tests (fixed; kept as regressions) ----


def test_string_of_double_is_shortest_repr() -> None:
    assert format_double(2.0**-24) == repr(2.0**-24) == "5.960464477539063e-08"
    text = 'string(a) == "5.960464477539063e-08"'
    assert ref(text, {"a": 2.0**-24}) is True
    assert native(text, {"a": 2.0**-24}) == (True, 0)


def test_string_of_double_agrees_on_common_values() -> None:
    for d in [0.1, 1.5, 1e16, 1e-5, 123456.789, 5e-324, 1.7976931348623157e308, -0.0, 2.0**-23]:
        assert format_double(d) == repr(d)


def test_double_of_long_string() -> None:
    event = {"a": "1" * 130}
    assert ref("double(a) > 1e129", event) is True
    assert native("double(a) > 1e129", event) == (True, 0)


def test_matches_sees_past_nul() -> None:
    event = {"a": "a\x00b"}
    assert ref('a.matches("b$")', event) is True
    assert native('a.matches("b$")', event) == (True, 0)


def test_matches_dot_on_lone_surrogate() -> None:
    raw = b'{"a": "\\ud800"}'
    assert evaluate(parse_expr('a.matches("^.$")'), json.loads(raw)) is True
    assert Engine([Rule("r", 'a.matches("^.$")')]).evaluate(raw) == ["r"]


def test_lone_surrogate_string_constant() -> None:
    raw = b'{"a": "\\ud800"}'
    assert evaluate(parse_expr('a == "\\ud800"'), json.loads(raw)) is True
    assert Engine([Rule("r", 'a == "\\ud800"')]).evaluate(raw) == ["r"]


def test_matches_independent_of_locale() -> None:
    code = (
        "from rulejet import Engine, Rule;"
        "print(Engine([Rule('r', 'a.matches(\"^a.c$\")')]).evaluate('{\"a\": \"aéc\"}'))"
    )
    # The same rulejet this test imports (installed or in-place), in the C locale.
    env = {**os.environ, "LC_ALL": "C", "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "['r']"


def test_matches_lone_surrogate_is_not_replacement_char() -> None:
    raw = b'{"a": "\\ud800"}'
    assert evaluate(parse_expr('a.matches("\\ufffd")'), json.loads(raw)) is False
    assert Engine([Rule("r", 'a.matches("\\ufffd")')]).evaluate(raw) == []


# Literals and classes near the surrogate block: the VM matches a lone
# surrogate as a stand-in code point the pattern never names. (glibc
# refuses ranges with endpoints outside its collation tables, which is
# every range that could span the block: those patterns are ExprErrors.)
@pytest.mark.parametrize(
    "pattern",
    [
        "^\ue000$",
        "^\ud7ff$",
        "^[^\ue000]$",
        "^[^\ud7ff]$",
        "^[\ufffd]$",
        "^[^\ufffd]$",
        "^[^a]$",
        "^\\w$",
        "^\\W$",
        "^\\s$",
        "^\\S$",
        "^.$",
        "\ue000|\ud800x",
    ],
)
def test_matches_lone_surrogate_near_the_block(pattern: str) -> None:
    raw = b'{"a": "\\ud800"}'
    text = "a.matches(" + json.dumps(pattern) + ")"
    want = evaluate(parse_expr(text), json.loads(raw)) if "\ud800" not in pattern else None
    if want is None:  # patterns cannot name surrogates
        with pytest.raises(ExprError):
            Engine([Rule("r", text)])
        return
    assert (Engine([Rule("r", text)]).evaluate(raw) == ["r"]) is want


# Latin, Greek (\u03b1-\u03c9) and Cyrillic (\u0430-\u044f, \u0451) letters.
RANGE_SAMPLES = ["é", "a", "z", "ÿ", "à", "\u03b1", "\u03c9", "\u0430", "\u044f", "\u0451"]
RANGE_SAMPLES += ["~", "\x7f", "\x80", "!", "]", "-", "一", "\ue000", "\ud800", "x\u044f"]
NON_ASCII_RANGES = ["[à-ÿ]", "[\u03b1-\u03c9]", "^[\u0430-\u044f]+$", "[a-é]", "[^\u0430-\u044f]"]
NON_ASCII_RANGES += ["[x-z\u0430-\u044f]", "[!-é]", "[-é-ë]", "[é-ë-]", "[]-é]", "[^!-é]"]
NON_ASCII_RANGES += ["^[\u0430-\u044f\u0451]$"]


@pytest.mark.parametrize("pattern", NON_ASCII_RANGES)
def test_matches_non_ascii_ranges_agree_with_python(kernel: str, pattern: str) -> None:
    """glibc refuses ranges with a non-ASCII end: they are listed out."""
    engine = Engine([Rule("r", f"a.matches({json.dumps(pattern)})")])
    for s in RANGE_SAMPLES:
        want = re.search(pattern, s) is not None
        assert (engine.evaluate(json.dumps({"a": s})) == ["r"]) == want, (pattern, s)


@pytest.mark.parametrize("pattern", ["[é-a]", "[a-\u9fff]"])
def test_matches_reversed_or_huge_ranges_are_refused(pattern: str) -> None:
    with pytest.raises(ExprError, match="range"):
        Engine([Rule("r", f"a.matches({json.dumps(pattern)})")])


def test_matches_pattern_naming_both_standins_is_refused() -> None:
    with pytest.raises(ExprError, match="U\\+E000 and U\\+D7FF"):
        Engine([Rule("r", 'a.matches("[\\ud7ff\\ue000]")')])


# ---- regex translation (compiler.translate_regex) ----


@pytest.mark.parametrize(
    ("pattern", "posix"),
    [
        ("^a.c", "^a[^\n]c"),
        ("c$", "c\n?$"),
        ("[0-9]+", "[0-9]+"),
        ("\\d\\w", "[0-9][A-Za-z0-9_]"),
        ("[\\]a]", "[[.].]a]"),
        ("[a\\-z]", "[a[.-.]z]"),
        ("[[:x]", "[[.[.]:x]"),
        ("a{", "a\\{"),
        ("a{2}b{,3}c{1,}d{}", "a{2}b{0,3}c{1,}d\\{\\}"),
        ("\\<\\.\\$", "<\\.\\$"),
    ],
)
def test_translate_regex(pattern: str, posix: str) -> None:
    assert translate_regex(pattern) == posix


@pytest.mark.parametrize(
    "pattern", ["a*?", "a+?", "a{2}?", "a*+", "(?i)a", "\\bword", "a\\1", "a\x00", "\ud800"]
)
def test_unsupported_regex_is_an_expr_error(pattern: str) -> None:
    text = f"a.matches({cel_str(pattern, escape_all=True)})"
    with pytest.raises(ExprError) as info:
        Engine([Rule("r", text)])
    assert info.value.column == text.index("(") + 2  # at the pattern


# ^ and $ away from the pattern's edges, or in a repeated group: glibc
# matched these where Python does not (after or before a newline the
# pattern consumes; ^ again on a later round of the repeat).
MISPLACED_ANCHORS = ["x\n^y", "x$\ny", "\\s^", "\\W^", "[^a]^", "x^", "x(a|^b)", "(a)(^b)"]
MISPLACED_ANCHORS += ["(a$|b)c", "a$b", "$^", "a$$", "(a$|b)$"]
MISPLACED_ANCHORS += ["(^a){2}", "(x|^a){2}", "(^b?a){2}", "(^a|b){2}", "((^a))*", "(a$)+", "(^)*a"]
EDGE_ANCHORS = ["^a", "(^a|^b)", "^(a|b)", "a|^b", "^^a", "((^a))", "(^|x)a", "^$", "a$|b"]
EDGE_ANCHORS += ["(a|b)$", "(a$|b$)", "a(x|$)", "(^a)b", "^(a)*$", "^a$|^$", "\\^x\\$", "[$^]"]
ANCHOR_SAMPLES = ["".join(p) for n in range(4) for p in itertools.product("abx\n^$", repeat=n)]


@pytest.mark.parametrize("pattern", MISPLACED_ANCHORS)
def test_misplaced_anchors_are_refused(pattern: str) -> None:
    text = f"a.matches({cel_str(pattern)})"
    with pytest.raises(ExprError, match="glibc differs") as info:
        Engine([Rule("r", text)])
    assert info.value.column == text.index("(") + 2


@pytest.mark.parametrize("pattern", EDGE_ANCHORS)
def test_anchors_at_the_edges_agree_with_the_reference(kernel: str, pattern: str) -> None:
    text = f"a.matches({cel_str(pattern)})"
    engine, ast = Engine([Rule("r", text)]), parse_expr(text)
    for s in ANCHOR_SAMPLES:
        want = evaluate(ast, {"a": s})
        assert want is (re.search(pattern, s, re.ASCII) is not None)
        assert (engine.evaluate(json.dumps({"a": s})) == ["r"]) is want, (pattern, s)


@given(
    st.lists(
        st.sampled_from(["a", "x", "\\n", ".", "[^a]", "^", "$", "(", ")", "|", "*", "?", "{2}"])
    )
)
@settings(max_examples=300)
def test_accepted_anchors_agree_with_the_reference(parts: list[str]) -> None:
    """Any pattern matches() accepts means natively what it means in Python."""
    pattern = "".join(parts)
    try:
        re.compile(pattern)
        engine = Engine([Rule("r", f"a.matches({cel_str(pattern)})")])
    except (re.error, ExprError):
        return
    ast = parse_expr(f"a.matches({cel_str(pattern)})")
    for s in ANCHOR_SAMPLES:
        want = evaluate(ast, {"a": s}) is True
        assert (engine.evaluate(json.dumps({"a": s})) == ["r"]) is want, (pattern, s)


def test_regex_posix_rejects_is_an_expr_error() -> None:
    """A translation regcomp() refuses comes back as ExprError at the
    pattern, not a bare ValueError from the native module."""
    text = 'a == 1 || a.matches("x{99999}")'
    with pytest.raises(ExprError, match="unsupported in matches") as info:
        Engine([Rule("r", text)])
    assert info.value.column == text.index('"x') + 1


def test_reference_floats_stay_finite_for_dump() -> None:
    # Guard for the generator: NaN/inf never reach json.dumps.
    assert not any(math.isinf(f) or math.isnan(f) for f in FLOATS)
