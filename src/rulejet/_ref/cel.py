"""Reference evaluator for the condition language: the AST walked in plain
Python over ``json.loads`` values. Slow and obvious; the native VM must
give exactly its results (tests/test_rules_differential.py).

Semantics (CEL's, for the subset rulejet supports):
- Reading an absent field, or a field below a non-object, is an error
  value; so is an integer outside int64 (CEL ints are 64-bit).
- ``&&``/``||`` absorb an error when the other side decides the result, in
  either order (``false && err`` is false, ``err || true`` is true); a
  non-bool operand is an error. ``!``, comparisons, arithmetic and
  functions of an error are errors.
- ``==``/``!=`` across types are false/true (``"1" == 1`` is false);
  numbers compare by exact value across int and double; ``null`` is a value.
  Equality of lists or objects read from events is not supported (error).
- Ordering: numbers with numbers, strings with strings (code points),
  bools with bools; anything else is an error.
- Arithmetic: int with int (overflow, division or modulo by zero are
  errors; ``/`` and ``%`` truncate toward zero), double with double, and
  ``+`` for strings; int mixed with double is an error.
- ``x in list`` tests membership with ``==``; ``k in object`` tests a key.
- ``has(a.b)`` is true when the whole path exists.
- ``s.matches(p)`` is ``re.search`` with ASCII classes (``\\d \\w \\s``
  match ASCII only, as in CEL's RE2), the subset compiler.translate_regex
  supports.
- A rule matches only when its condition is exactly ``true``.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any

from ..expr import (
    INT64_MAX,
    INT64_MIN,
    ISTYPE,
    TYPE_BITS,
    And,
    Binary,
    Call,
    Cond,
    Field,
    Has,
    ListLit,
    Literal,
    Node,
    Or,
    Unary,
)


class CelError:
    """An error value (not an exception: errors flow through expressions)."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message

    def __repr__(self) -> str:
        return f"CelError({self.message!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CelError)

    def __hash__(self) -> int:
        return 0


_ABSENT = object()


def lookup(event: Any, steps: tuple[str | int, ...]) -> Any:
    """The value at a path, or _ABSENT."""
    node = event
    for s in steps:
        if isinstance(s, int):
            if isinstance(node, list) and s < len(node):
                node = node[s]
            else:
                return _ABSENT
        elif isinstance(node, dict) and s in node:
            node = node[s]
        else:
            return _ABSENT
    return node


def _is_num(v: Any) -> bool:
    return type(v) in (int, float)


def _eq(a: Any, b: Any) -> Any:
    if isinstance(a, CelError):
        return a
    if isinstance(b, CelError):
        return b
    if _is_num(a) and _is_num(b):
        return a == b  # Python compares int and float exactly
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, dict)):
        return CelError("equality of lists or objects is not supported")
    return a == b


def _order(op: str, a: Any, b: Any) -> Any:
    if isinstance(a, CelError):
        return a
    if isinstance(b, CelError):
        return b
    ok = (_is_num(a) and _is_num(b)) or (type(a) is type(b) and type(a) in (str, bool))
    if not ok:
        return CelError(f"no such overload: {type(a).__name__} {op} {type(b).__name__}")
    if (isinstance(a, float) and math.isnan(a)) or (isinstance(b, float) and math.isnan(b)):
        return False
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b
    if op == ">":
        return a > b
    return a >= b


def _int_result(v: int) -> Any:
    return v if INT64_MIN <= v <= INT64_MAX else CelError("integer overflow")


def _arith(op: str, a: Any, b: Any) -> Any:
    if isinstance(a, CelError):
        return a
    if isinstance(b, CelError):
        return b
    ta, tb = type(a), type(b)
    if ta is int and tb is int:
        if op == "+":
            return _int_result(a + b)
        if op == "-":
            return _int_result(a - b)
        if op == "*":
            return _int_result(a * b)
        if b == 0:
            return CelError("division by zero" if op == "/" else "modulus by zero")
        q = abs(a) // abs(b)
        q = q if (a >= 0) == (b >= 0) else -q
        return _int_result(q) if op == "/" else _int_result(a - b * q)
    if ta is float and tb is float:
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            if b == 0.0:
                if a == 0.0 or math.isnan(a):
                    return math.nan
                return math.copysign(math.inf, a) * math.copysign(1.0, b)
            return a / b
        return CelError("no such overload: double % double")
    if op == "+" and ta is str and tb is str:
        return a + b
    return CelError(f"no such overload: {ta.__name__} {op} {tb.__name__}")


def _in(x: Any, container: Any) -> Any:
    if isinstance(x, CelError):
        return x
    if isinstance(container, CelError):
        return container
    if isinstance(container, list):
        # CEL's `exists(e, e == x)`: a true comparison decides; otherwise
        # an error among them (lists compared, an item out of int64 range)
        # makes the result an error, not false.
        error = None
        for item in container:
            r = _eq(x, _normalize(item))
            if r is True:
                return True
            if error is None and isinstance(r, CelError):
                error = r
        return error if error is not None else False
    if isinstance(container, dict):
        return isinstance(x, str) and x in container
    return CelError(f"no such overload: in {type(container).__name__}")


def _normalize(v: Any) -> Any:
    """An event value as a CEL value (big ints become errors)."""
    if type(v) is int and not INT64_MIN <= v <= INT64_MAX:
        return CelError("integer out of 64-bit range")
    return v


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.ASCII)


def format_double(d: float) -> str:
    """string(double): Python's repr, the shortest round-trip spelling."""
    if math.isnan(d):
        return "NaN"
    if math.isinf(d):
        return "Infinity" if d > 0 else "-Infinity"
    return repr(d)


def _type_name(v: Any) -> str:
    """The VM's type of an event value (an error is an absent field, or an
    integer beyond int64)."""
    if isinstance(v, CelError):
        return "bigint" if "64-bit" in v.message else "missing"
    if v is None or isinstance(v, bool):
        return {None: "null", False: "false", True: "true"}[v]
    names = {int: "int", float: "double", str: "string", dict: "object", list: "array"}
    return names[type(v)]


def _call(name: str, target: Any, args: list[Any]) -> Any:
    if name == ISTYPE:
        return bool(args[1] & TYPE_BITS[_type_name(args[0])])
    for v in (target, *args):
        if isinstance(v, CelError):
            return v
    if name in ("startsWith", "endsWith", "contains", "matches"):
        if not (isinstance(target, str) and isinstance(args[0], str)):
            return CelError(f"no such overload: {name}")
        if name == "startsWith":
            return target.startswith(args[0])
        if name == "endsWith":
            return target.endswith(args[0])
        if name == "contains":
            return args[0] in target
        return _regex(args[0]).search(target) is not None
    if name == "lowerAscii":
        if not isinstance(target, str):
            return CelError("no such overload: lowerAscii")
        return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in target)
    x = target if target is not _ABSENT else args[0]
    if name == "size":
        if isinstance(x, (str, list, dict)):
            return len(x)
        return CelError("no such overload: size")
    if name == "int":
        if type(x) is int:
            return x
        if type(x) is float:
            if math.isnan(x) or not -(2.0**63) <= x < 2.0**63:
                return CelError("double out of int range")
            return int(x)
        if isinstance(x, str) and re.fullmatch(r"[+-]?[0-9]+", x):
            return _int_result(int(x))
        return CelError("no such overload: int")
    if name == "double":
        if type(x) is float:
            return x
        if type(x) is int:
            return float(x)
        if isinstance(x, str) and re.fullmatch(
            r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", x
        ):
            # Digits only, so inf means the value overflowed: CEL makes a
            # conversion beyond the target's range an error, as int() does.
            d = float(x)
            return CelError("double out of range") if math.isinf(d) else d
        return CelError("no such overload: double")
    if name == "string":
        if isinstance(x, str):
            return x
        if type(x) is bool:
            return "true" if x else "false"
        if type(x) is int:
            return str(x)
        if type(x) is float:
            return format_double(x)
        return CelError("no such overload: string")
    return CelError(f"unknown function {name}")


def evaluate(node: Node, event: Any, trace: dict[str, Any] | None = None) -> Any:
    """The value of a condition over a decoded event (CelError for errors).
    ``trace`` collects the field values read, by path."""

    def ev(n: Node) -> Any:
        if isinstance(n, Literal):
            return n.value
        if isinstance(n, Field):
            v = lookup(event, n.steps)
            if trace is not None:
                trace[n.path] = "<absent>" if v is _ABSENT else v
            if v is _ABSENT:
                return CelError(f"no such field: {n.path}")
            return _normalize(v)
        if isinstance(n, Has):
            return lookup(event, n.field.steps) is not _ABSENT
        if isinstance(n, ListLit):
            items = [ev(i) for i in n.items]
            for i in items:
                if isinstance(i, CelError):
                    return i
            return items
        if isinstance(n, And):
            a = ev(n.left)
            if a is False:
                return False
            b = ev(n.right)
            if b is False:
                return False
            if isinstance(a, CelError):
                return a
            if isinstance(b, CelError):
                return b
            if a is True and b is True:
                return True
            return CelError("no such overload: && on non-bool")
        if isinstance(n, Or):
            a = ev(n.left)
            if a is True:
                return True
            b = ev(n.right)
            if b is True:
                return True
            if isinstance(a, CelError):
                return a
            if isinstance(b, CelError):
                return b
            if a is False and b is False:
                return False
            return CelError("no such overload: || on non-bool")
        if isinstance(n, Unary):
            v = ev(n.operand)
            if isinstance(v, CelError):
                return v
            if n.op == "!":
                return (not v) if type(v) is bool else CelError("no such overload: !")
            if type(v) is int:
                return _int_result(-v)
            if type(v) is float:
                return -v
            return CelError("no such overload: -")
        if isinstance(n, Binary):
            a, b = ev(n.left), ev(n.right)
            if n.op == "==":
                return _eq(a, b)
            if n.op == "!=":
                r = _eq(a, b)
                return r if isinstance(r, CelError) else not r
            if n.op in ("<", "<=", ">", ">="):
                return _order(n.op, a, b)
            if n.op == "in":
                return _in(a, b)
            return _arith(n.op, a, b)
        if isinstance(n, Cond):
            t = ev(n.test)
            if isinstance(t, CelError):
                return t
            if type(t) is not bool:
                return CelError("no such overload: ?: on non-bool")
            return ev(n.then) if t else ev(n.orelse)
        if isinstance(n, Call):
            # _ABSENT: a function call; None would be a JSON null receiver.
            target = ev(n.target) if n.target is not None else _ABSENT
            return _call(n.name, target, [ev(a) for a in n.args])
        raise TypeError(f"unknown node {n!r}")

    return ev(node)


def matches(node: Node, event: Any) -> bool:
    return evaluate(node, event) is True
