"""JSONLogic: the official shared test vectors, plus errors, fields() and JavaScript corners."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

from rulejet import Engine, Rule
from rulejet.errors import InputError
from rulejet.jsonlogic import (
    SUPPORTED_OPERATORS,
    UNSUPPORTED_OPERATORS,
    UNSUPPORTED_REASONS,
    JsonLogic,
    JSONLogicError,
    from_jsonlogic,
)

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
OFFICIAL = SHARED / "testdata" / "jsonlogic" / "tests.json"
OFFICIAL_COUNT = 277  # test cases in the file (the other 24 entries are comment strings)


def _official_cases() -> list[Any]:
    if not OFFICIAL.is_file():
        # One placeholder, so that the absence shows as a skip with its reason, not as nothing.
        return [pytest.param(None, None, None, id="absent")]
    entries = json.loads(OFFICIAL.read_text(encoding="utf-8"))
    cases = [entry for entry in entries if isinstance(entry, list)]  # strings are comments
    return [pytest.param(*case, id=str(index)) for index, case in enumerate(cases)]


def _require_official() -> None:
    if not OFFICIAL.is_file():
        pytest.skip(f"official JSONLogic tests absent: {OFFICIAL} (../shared is beside the repo)")


def _operators(rule: Any) -> set[str]:
    """Every operator name used anywhere in a rule."""
    if isinstance(rule, list):
        return set().union(*map(_operators, rule)) if rule else set()
    if isinstance(rule, dict):
        return set(rule).union(*map(_operators, rule.values()))
    return set()


def js_equal(actual: Any, expected: Any) -> bool:
    """Equality of JSON values as JavaScript sees them: numbers compare by value (1 == 1.0),
    but a bool is never a number, and types must otherwise match exactly."""
    if isinstance(actual, bool) or isinstance(expected, bool):
        return type(actual) is type(expected) and actual == expected
    if isinstance(actual, int | float) and isinstance(expected, int | float):
        both_nan = math.isnan(actual) and math.isnan(expected)
        return both_nan or float(actual) == float(expected)
    if isinstance(actual, list) and isinstance(expected, list):
        return len(actual) == len(expected) and all(map(js_equal, actual, expected))
    if isinstance(actual, dict) and isinstance(expected, dict):
        return actual.keys() == expected.keys() and all(
            js_equal(actual[key], expected[key]) for key in actual
        )
    return type(actual) is type(expected) and actual == expected


def test_js_equal_is_type_aware() -> None:
    assert js_equal(1, 1.0)
    assert js_equal([1, {"a": 2.0}], [1.0, {"a": 2}])
    assert not js_equal(True, 1)
    assert not js_equal(0, False)
    assert not js_equal([1], [True])
    assert not js_equal("1", 1)
    assert not js_equal(None, [])


@pytest.mark.parametrize(("rule", "data", "expected"), _official_cases())
def test_official(rule: Any, data: Any, expected: Any) -> None:
    _require_official()
    unsupported = _operators(rule) & UNSUPPORTED_OPERATORS
    if unsupported:
        with pytest.raises(JSONLogicError, match=re.escape(repr(min(unsupported)))):
            from_jsonlogic(rule)
        return
    actual = from_jsonlogic(rule).apply(data)
    assert js_equal(actual, expected), f"got {actual!r}, expected {expected!r}"


def test_official_suite_is_complete() -> None:
    _require_official()
    entries = json.loads(OFFICIAL.read_text(encoding="utf-8"))
    cases = [entry for entry in entries if isinstance(entry, list)]
    assert len(cases) == OFFICIAL_COUNT
    used = set().union(*(_operators(rule) for rule, _, _ in cases))
    assert used <= SUPPORTED_OPERATORS | UNSUPPORTED_OPERATORS


def test_operator_sets() -> None:
    assert not SUPPORTED_OPERATORS & UNSUPPORTED_OPERATORS
    assert set(UNSUPPORTED_REASONS) == UNSUPPORTED_OPERATORS
    assert all(UNSUPPORTED_REASONS.values())


def test_unknown_operator_is_named_with_the_supported_ones() -> None:
    with pytest.raises(JSONLogicError) as caught:
        from_jsonlogic({"and": [True, {"frobnicate": [1]}]})
    message = str(caught.value)
    assert "'frobnicate'" in message
    assert "/and/1" in message  # where it is
    assert "supported operators:" in message
    assert all(op in message for op in ("var", "missing_some", "reduce", "=="))
    assert isinstance(caught.value, InputError)
    assert isinstance(caught.value, ValueError)


def test_unknown_operator_in_an_untaken_branch_is_still_an_error() -> None:
    with pytest.raises(JSONLogicError, match="'nope'"):
        from_jsonlogic({"if": [True, 1, {"map": [[1], {"nope": []}]}]})


@pytest.mark.parametrize(
    ("rule", "pattern"),
    [
        ({"==": [1, 1], "!=": [1, 2]}, "exactly one key.*got 2 keys"),
        ({}, "exactly one key.*got 0 keys"),
        ({"var": {"a": 1, "b": 2}}, "exactly one key"),
        ({1: [1]}, "unknown JSONLogic operator 1"),
        ({"==": [1, object()]}, "JSON values"),
        ({"==": [1]}, "'==' takes 2 argument"),
        ({">": [3, 2, 1]}, "'>' takes 2 argument"),
        ({"<": [1, 2, 3, 4]}, "'<' takes 2-3 argument"),
        ({"!": []}, "'!' takes 1 argument"),
        ({"missing_some": [1]}, "'missing_some' takes 2"),
        ({"map": [[1, 2]]}, "'map' takes 2"),
        ({"and": []}, "'and' takes at least 1"),
        ({"var": ["a", 1, 2]}, "'var' takes 0-2"),
    ],
)
def test_malformed_rules(rule: Any, pattern: str) -> None:
    with pytest.raises(JSONLogicError, match=pattern):
        from_jsonlogic(rule)


def test_too_deep_a_rule_is_an_error_not_a_crash() -> None:
    rule: Any = 1
    for _ in range(1000):
        rule = {"!": [rule]}
    with pytest.raises(JSONLogicError, match="nested"):
        from_jsonlogic(rule)


def test_deep_rules_within_the_limit_work() -> None:
    rule: Any = {"var": "x"}
    for _ in range(49):
        rule = {"!": [[rule]]}  # two levels each: an operation and an array
    assert from_jsonlogic(rule).apply({"x": 1}) is False


def test_fields() -> None:
    rule = {
        "and": [
            {"<": [{"var": "temp"}, 110]},
            {"==": [{"var": "pie.filling"}, "apple"]},
            {"var": ["temp", 0]},  # repeated: listed once
            {"var": 1},
            {"missing": ["a.b", "temp"]},
            {"missing_some": [1, ["c", "d"]]},
            {"all": [{"var": "items"}, {">": [{"var": "qty"}, 0]}]},  # qty addresses an item
            {"var": {"cat": ["x", "y"]}},  # dynamic: left out
            {"var": ""},  # the whole document: left out
            {"var": ["e", {"var": "f"}]},
        ]
    }
    logic = from_jsonlogic(rule)
    assert logic.fields() == ["temp", "pie.filling", "1", "a.b", "c", "d", "items", "e", "f"]
    assert logic.rule is rule
    assert isinstance(logic, JsonLogic)


@pytest.mark.parametrize(
    ("value", "truthy"),
    [
        ([], False),
        ([0], True),
        ("", False),
        ("0", True),
        (0, False),
        (0.0, False),
        (math.nan, False),
        (-1, True),
        (None, False),
        ({}, True),
        (False, False),
        (True, True),
    ],
)
def test_matches_uses_jsonlogic_truthiness(value: Any, truthy: bool) -> None:
    assert from_jsonlogic({"var": "v"}).matches({"v": value}) is truthy


def test_matches_a_realistic_rule() -> None:
    rule = from_jsonlogic(
        {"and": [{">=": [{"var": "age"}, 18]}, {"in": [{"var": "country"}, ["FR", "DE"]]}]}
    )
    assert rule.matches({"age": "21", "country": "FR"})
    assert not rule.matches({"age": 17, "country": "FR"})
    assert not rule.matches({"country": "DE"})  # null >= 18 is false


# Expected values checked against json-logic-js (JavaScript semantics).
@pytest.mark.parametrize(
    ("rule", "data", "expected"),
    [
        ({"===": [True, 1]}, None, False),
        ({"==": [True, 1]}, None, True),
        ({"==": [True, "1"]}, None, True),
        ({"==": [None, 0]}, None, False),
        ({"==": [None, {"var": "nothing"}]}, {}, True),
        ({"==": [[1, 2], "1,2"]}, None, True),
        ({"==": [[], 0]}, None, True),
        ({"==": [{"var": "a"}, {"var": "a"}]}, {"a": [1]}, True),  # the same array object
        ({"==": [[1], [1]]}, None, False),  # two array literals are two objects
        ({"==": ["0x10", 16]}, None, True),
        ({"in": [1, [True]]}, None, False),
        ({"in": [1, "a1"]}, None, True),
        ({"in": ["", ""]}, None, False),
        ({"<": ["10", "9"]}, None, True),  # both strings: compared as text
        ({"<": ["10", 9]}, None, False),
        ({"<": [None, 1]}, None, True),
        ({">": ["a", 1]}, None, False),  # NaN
        ({"<=": [1, 1, 1]}, None, True),
        (
            {"cat": [1.0, 3.14, 1e21, 0.000001, 1e-7, -0.0, None, True, [1, [2, 3]]]},
            None,
            "13.141e+210.0000011e-70true1,2,3",
        ),
        ({"cat": [0.1, {"+": [0.1, 0.2]}]}, None, "0.10.30000000000000004"),
        ({"cat": [123456789012345680000, 2**60]}, None, "1234567890123456800001152921504606847000"),
        ({"+": "3"}, None, 3),
        ({"+": ["3px", 1]}, None, 4),  # parseFloat
        ({"+": [True, 1]}, None, math.nan),  # parseFloat("true")
        ({"-": ["5", True]}, None, 4),
        ({"*": ["2", "3.5"]}, None, 7),
        ({"/": [1, 0]}, None, math.inf),
        ({"/": [-1, {"-": [0]}]}, None, math.inf),
        ({"/": [0, 0]}, None, math.nan),
        ({"%": [-7, 2]}, None, -1),
        ({"%": [7.5, -2]}, None, 1.5),
        ({"%": [1, 0]}, None, math.nan),
        ({"+": [2**53, 1]}, None, 2**53),  # rounded like a double
        ({"max": [1, "3", True]}, None, 3),
        ({"min": [1, "x"]}, None, math.nan),
        ({"substr": ["h\u00e9llo", 1, 3]}, None, "\u00e9ll"),
        ({"substr": ["jsonlogic", 2, "-3"]}, None, ""),  # json-logic-js: 7 + "-3" is "7-3"
        ({"substr": [12345, 1, None]}, None, ""),
        ({"var": "items.length"}, {"items": [1, 2]}, 2),
        ({"var": "s.1"}, {"s": "abc"}, "b"),
        ({"var": "items.01"}, {"items": [1, 2]}, None),
        ({"var": ["a", 5]}, {"a": None}, None),  # present null is not missing
        ({"var": ["a.b", 5]}, {"a": None}, 5),
        ({"missing": ["a", "b"]}, {"a": "", "b": 0}, ["a"]),
        ({"merge": [[1], [[2]], 3]}, None, [1, [2], 3]),
        (
            {"reduce": [{"var": "xs"}, {"+": [{"var": "current"}, {"var": "accumulator"}]}]},
            {"xs": [1, 2]},
            math.nan,
        ),  # no initial value: null, and parseFloat(null) is NaN
        ({"none": [{"var": "missing"}, True]}, {}, True),
        ({"map": [{"var": "xs"}, {"var": ""}]}, {"xs": "not an array"}, []),
    ],
)
def test_javascript_semantics(rule: Any, data: Any, expected: Any) -> None:
    actual = from_jsonlogic(rule).apply(data)
    assert js_equal(actual, expected), f"got {actual!r}, expected {expected!r}"


def test_division_is_float_and_integer_arithmetic_stays_int() -> None:
    assert type(from_jsonlogic({"/": [4, 2]}).apply()) is float
    assert type(from_jsonlogic({"+": [1, "2"]}).apply()) is int
    assert type(from_jsonlogic({"*": [2, 1.5]}).apply()) is float


def test_apply_does_not_share_literal_arrays_between_calls() -> None:
    logic = from_jsonlogic({"merge": [[1], [2]]})
    first = logic.apply()
    first.append(3)
    assert logic.apply() == [1, 2]


def test_an_int_too_large_for_a_double_is_infinity() -> None:
    # JavaScript reads 1e400 as Infinity; converting it to float raised OverflowError.
    above = {">": [{"var": "a"}, 1]}
    assert from_jsonlogic(above).apply({"a": 10**400}) is True
    assert from_jsonlogic({"<": [{"var": "a"}, 1]}).apply({"a": -(10**400)}) is True
    assert from_jsonlogic({"cat": [{"var": "a"}]}).apply({"a": -(10**400)}) == "-Infinity"
    engine = Engine([Rule("big", above)])
    assert engine.evaluate(b'{"a": 1' + b"0" * 400 + b"}") == ["big"]


def test_deeply_nested_data_converts_without_recursion() -> None:
    # String([[["x"]]]) is "x" in JavaScript; 1,024 levels is the engine's nesting limit,
    # and a recursive conversion ran out of Python stack at about 340.
    deep: Any = "x"
    for _ in range(1024):
        deep = [deep]
    for rule, expected in [
        ({"==": [{"var": "d"}, "x"]}, True),
        ({"cat": [{"var": "d"}, "y"]}, "xy"),
        ({"in": ["x", {"cat": [{"var": "d"}]}]}, True),
        ({"<": [{"var": "d"}, "y"]}, True),
    ]:
        assert from_jsonlogic(rule).apply({"d": deep}) == expected
    engine = Engine([Rule("deep", {"==": [{"var": "d"}, "x"]})])
    assert engine.evaluate(b'{"d": ' + b"[" * 400 + b'"x"' + b"]" * 400 + b"}") == ["deep"]


def test_array_to_string_matches_javascript_join() -> None:
    cyclic: list[Any] = [1]
    cyclic += [cyclic, 2]
    shared = [3]
    for value, text in [
        ([[], 1], ",1"),
        ([1, []], "1,"),
        ([[1, 2], 3, None, [None, [4, {}]]], "1,2,3,,,4,[object Object]"),
        ([[]], ""),
        (cyclic, "1,,2"),  # JavaScript's join prints an array inside itself as ""
        ([shared, [shared]], "3,3"),
    ]:
        assert from_jsonlogic({"cat": [{"var": "v"}]}).apply({"v": value}) == text


@pytest.mark.parametrize(
    ("op", "args", "sign"),
    [
        ("max", [-0.0, 0], 1.0),
        ("max", [0, -0.0], 1.0),
        ("min", [0, -0.0], -1.0),
        ("min", [-0.0, 0.0], -1.0),
        ("max", [-0.0, -0.0], -1.0),
    ],
)
def test_max_and_min_order_negative_zero_below_zero(op: str, args: list[Any], sign: float) -> None:
    # Math.max(-0, 0) is +0 and Math.min(0, -0) is -0; Python's max/min keep the first.
    result = from_jsonlogic({op: args}).apply()
    assert result == 0 and math.copysign(1.0, result) == sign


def test_max_of_negative_zero_and_zero_divides_to_infinity() -> None:
    rule = {">": [{"/": [1, {"max": [{"var": "a"}, 0]}]}, 0]}
    assert from_jsonlogic(rule).matches({"a": -0.0})
    assert Engine([Rule("pos", rule)]).evaluate(b'{"a": -0.0}') == ["pos"]
