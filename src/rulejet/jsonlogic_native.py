"""JSONLogic conditions for the native VM: a translation that is exact or undecided.

``truth_of(rule)`` gives a condition in the VM's language (an AST of rulejet.expr, never
written as text) that, for every event, is

- true only when the JSONLogic rule is truthy on that event,
- false only when it is falsy,
- an error when the VM cannot tell: a value of a type whose JavaScript coercions the VM
  does not follow (a string compared with a number, an array with a string, an integer
  beyond 2**53, the truthiness of an empty array or object, ...). The engine then
  evaluates that rule on that event in Python (rulejet.jsonlogic), so the result is
  always JSONLogic's.

Errors combine soundly: ``&&``, ``||``, ``!`` and ``?:`` are Kleene's three-valued logic
in the VM, where an error is "unknown", so a decided result holds for every value the
unknown parts could take. Each comparison of a field with a literal is settled the same
way: the field absent or null gives the value JSONLogic itself computes for null
(evaluated once here, with the real evaluator); a present value is compared natively only
for the types where CEL and JavaScript agree (strings with strings, numbers exact as
doubles with numbers, booleans with booleans), and anything else is an error. Types are
told apart with the VM's internal type test (an atom on the value's tag, never an
error), so the usual forms are &&/|| trees of atoms the VM decides from its tables.

Parts with other operators, computed or dotted-index paths (``tags.0``, ``name.length``:
JavaScript indexes arrays and strings), ``var`` defaults, or scoped operators (map,
filter, ...) are not translated: each such part is unknown in the VM (an error on every
event), wherever its truthiness is read (an operand of and, or, !, !!, if, or the whole
rule). Kleene's logic then still decides what the rest settles (``{"and": [{"==":
[{"var": "a"}, 1]}, {"some": ...}]}`` is false natively wherever a is not 1, which is
what JSONLogic gives too: it never evaluates the some), and leaves the other events to
Python. JSONLogic's evaluation never fails at run time, so a part skipped where the rest
decides changes nothing.
"""

from __future__ import annotations

import math
from typing import Any

from .expr import (
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
    children,
)
from .jsonlogic import from_jsonlogic

__all__ = ["parts_in_python", "truth_of"]

_SAFE = 2**53  # integers up to this are exact in a JavaScript number
_MIRROR = {">": "<", ">=": "<=", "<": ">", "<=": ">="}
_FALSE, _TRUE = Literal(0, False), Literal(0, True)
_SMALL_TEST = 24  # nodes: an if's test up to this size is repeated, see _conditional
# A part the VM cannot evaluate: an error on every event (a string ordered against a
# number; the compiler does not fold it), so the events it would decide go to Python.
_UNKNOWN = Binary(0, "<", Literal(0, ""), Literal(0, 0))


class _Untranslatable(Exception):
    pass


def truth_of(rule: Any) -> Node:
    """The rule's truthiness as a VM condition (see the module's doc); the parts
    parts_in_python names are unknown in it."""
    return _part(rule, [])


def parts_in_python(rule: Any) -> list[str]:
    """What the VM leaves to Python in the rule (for rulejet check): empty when the
    translation is whole."""
    why: list[str] = []
    _part(rule, why)
    return why


def _part(rule: Any, why: list[str]) -> Node:
    """The truthiness of rule, or the unknown node (with the reason in why)."""
    try:
        return _truth(rule, why)
    except _Untranslatable as e:
        why.append(str(e))
        return _UNKNOWN


def _truth(rule: Any, why: list[str]) -> Node:
    if not isinstance(rule, dict):
        if isinstance(rule, list):
            return _TRUE if rule else _FALSE  # a literal array: truthy unless empty
        return _constant(rule)
    [(op, raw)] = rule.items()
    args = raw if isinstance(raw, list) else [raw]
    if op == "var":
        return _truthy_field(_field(rule))
    if op in ("and", "or"):
        parts = [_part(a, why) for a in args]
        out = parts[0]
        for p in parts[1:]:
            out = And(0, out, p) if op == "and" else Or(0, out, p)
        return out
    if op == "!":
        return Unary(0, "!", _part(args[0], why))
    if op == "!!":
        return _part(args[0], why)
    if op in ("if", "?:"):
        return _conditional(args, why)
    if op in ("==", "===", "!=", "!==", ">", ">=", "<", "<="):
        if len(args) == 3:  # a < b < c ("between")
            return And(0, _compare(op, args[0], args[1]), _compare(op, args[1], args[2]))
        return _compare(op, args[0], args[1])
    if op == "in":
        return _in(args[0], args[1])
    raise _Untranslatable(f"operator {op!r}")


def _conditional(args: list[Any], why: list[str]) -> Node:
    if not args:
        return _FALSE  # null
    if len(args) == 1:
        return _part(args[0], why)  # the lone else value
    # test ? then : rest as (test && then) || (!test && rest): the same in Kleene's
    # logic, and a tree of atoms the VM decides from its tables. The test appears
    # twice there, so a large one (an if in an if's test, nested: it would double
    # at each level) stays a ?: for the general interpreter.
    test, then, rest = _part(args[0], why), _part(args[1], why), _conditional(args[2:], why)
    if _size(test) > _SMALL_TEST:
        return Cond(0, test, then, rest)
    return Or(0, And(0, test, then), And(0, Unary(0, "!", test), rest))


def _size(n: Node) -> int:
    return 1 + sum(_size(c) for c in children(n))


def _field(rule: Any) -> Field:
    """The Field a plain {"var": "a.b"} reads; anything else is untranslatable."""
    if not isinstance(rule, dict) or list(rule) != ["var"]:
        raise _Untranslatable("an operand that is neither a var nor a literal")
    raw = rule["var"]
    args = raw if isinstance(raw, list) else [raw]
    if len(args) == 2 and args[1] is None:
        args = args[:1]  # an explicit null default is no default
    if len(args) != 1 or not isinstance(args[0], str) or not args[0]:
        raise _Untranslatable("a var with a default, or a computed, empty or whole-data name")
    steps = args[0].split(".")
    # JavaScript finds "length" and digit keys on arrays and strings too; the VM's
    # paths read object members only.
    if any(not s or s == "length" or s.isdigit() for s in steps):
        raise _Untranslatable("a var path with an index or length step")
    _literal(args[0])  # a name with a lone surrogate has no UTF-8 key to find
    return Field(0, tuple(steps))


def _is_var(rule: Any) -> bool:
    return isinstance(rule, dict) and list(rule) == ["var"]


def _literal(rule: Any) -> Any:
    if isinstance(rule, (dict, list)):
        raise _Untranslatable("an operand that is neither a var nor a literal")
    if isinstance(rule, str) and any("\ud800" <= c <= "\udfff" for c in rule):
        raise _Untranslatable("a string with a lone surrogate")  # no UTF-8 spelling to compare with
    return rule


def _constant(rule: Any) -> Node:
    """The truthiness of a rule that reads no field, from JSONLogic itself."""
    return _TRUE if from_jsonlogic(rule).matches(None) else _FALSE


def _at_null(op: str, args: list[Any]) -> Node:
    """The comparison's truthiness with its field null."""
    return _constant({op: [None if _is_var(a) else a for a in args]})


def _compare(op: str, a: Any, b: Any) -> Node:
    if not _is_var(a) and not _is_var(b):
        # A computed operand may read fields: only two literals make a constant.
        if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
            raise _Untranslatable("a comparison of a computed operand")
        return _constant({op: [a, b]})
    if _is_var(a) and _is_var(b):
        raise _Untranslatable("a comparison of two vars")
    if op in ("!=", "!=="):
        return Unary(0, "!", _compare("==" if op == "!=" else "===", a, b))
    x, lit = (_field(a), _literal(b)) if _is_var(a) else (_field(b), _literal(a))
    at_null = _at_null(op, [a, b])
    if not _is_var(a) and op in _MIRROR:
        op = _MIRROR[op]  # literal < field is field > literal
    found = _atoms_compare(op, x, lit, at_null)
    if found is None:
        raise _Untranslatable("a comparison with this literal")
    return found


def _guarded(x: Field, at_null: Node, present: Node) -> Node:
    """at_null where x is absent or null, else present: in &&/|| form, which the VM
    decides from its atoms (a ?: runs the general interpreter)."""
    nullish = _is(x, "missing", "null")
    if at_null is _TRUE:
        return Or(0, nullish, present)
    return And(0, Unary(0, "!", nullish), present)


def _exact_number(lit: Any) -> bool:
    """A literal that every integer beyond 2**53 compares with as its rounded double
    does (so the VM's exact comparison agrees with JavaScript's)."""
    return (
        isinstance(lit, (int, float))
        and not isinstance(lit, bool)
        and math.isfinite(lit)
        and abs(lit) < _SAFE
    )


def _atoms_compare(op: str, x: Field, lit: Any, at_null: Node) -> Node | None:
    """The usual comparisons as atoms (field op literal). A present value of a type
    JavaScript would coerce makes an ordering an error in the VM: unknown, as needed.
    None where no such form is exact."""
    k = Literal(0, lit)
    if isinstance(lit, bool) and op in ("==", "==="):
        if op == "===":
            return And(0, Has(0, x), Binary(0, "==", x, k))  # other types are unequal
        # Loose: a boolean, or a number against 1 or 0; strings and the rest coerce
        # (x < 0 is an error for exactly those).
        return Or(
            0,
            Or(
                0,
                And(0, _is(x, "true", "false"), Binary(0, "==", x, k)),
                And(0, _is(x, "int", "double"), Binary(0, "==", x, Literal(0, int(lit)))),
            ),
            And(0, _is(x, "string", "array", "object", "bigint"), Binary(0, "<", x, Literal(0, 0))),
        )
    if lit is None and op in ("==", "==="):
        return Or(0, Unary(0, "!", Has(0, x)), Binary(0, "==", x, k))  # null == only null
    if op == "===" and (isinstance(lit, str) or _exact_number(lit)):
        # Strict: every other type is unequal, as in the VM; null too.
        return And(0, Has(0, x), Binary(0, "==", x, k))
    if op == "==" and isinstance(lit, str):
        # Loose: a string equal to k; unknown (x < "" is an error for each) where
        # JavaScript coerces: an array or object ("US" == ["US"]), and a number or
        # boolean when k reads as a number ("1" == 1, "1" == true).
        coerced = ["array", "object"]
        if not math.isnan(from_jsonlogic({"-": [lit]}).apply(None)):  # -ToNumber(k)
            coerced += ["int", "double", "bigint", "true", "false"]
        return Or(
            0,
            And(0, _is(x, "string"), Binary(0, "==", x, k)),
            And(0, _is(x, *coerced), Binary(0, "<", x, Literal(0, ""))),
        )
    if op == "==" and _exact_number(lit):
        # Loose: a number equal to k; unknown (x < 0 is an error for each) for the
        # types JavaScript converts to a number first.
        others = ["string", "true", "false", "array", "object", "bigint"]
        return Or(
            0,
            And(0, _is(x, "int", "double"), Binary(0, "==", x, k)),
            And(0, _is(x, *others), Binary(0, "<", x, Literal(0, 0))),
        )
    if op in _MIRROR and (_exact_number(lit) or (isinstance(lit, str) and lit.isascii())):
        return _guarded(x, at_null, Binary(0, op, x, k))
    return None


def _is(x: Field, *types: str) -> Node:
    """True where x holds one of the types (absent: "missing"), false elsewhere:
    an atom the VM decides from the value's tag, never an error."""
    mask = sum(TYPE_BITS[t] for t in types)
    return Call(0, ISTYPE, None, (x, Literal(0, mask)))


def _truthy_field(x: Field) -> Node:
    """JSONLogic truthiness of a field, as atoms: decided for every value but an array,
    an object (an empty array is falsy, an empty object truthy) or an integer beyond
    int64; x < "" is an error for exactly those."""
    return Or(
        0,
        Or(
            0,
            _is(x, "true"),
            And(0, _is(x, "string"), Binary(0, "!=", x, Literal(0, ""))),
        ),
        Or(
            0,
            And(0, _is(x, "int", "double"), Binary(0, "!=", x, Literal(0, 0))),
            And(0, _is(x, "array", "object", "bigint"), Binary(0, "<", x, Literal(0, ""))),
        ),
    )


def _in(needle: Any, haystack: Any) -> Node:
    if _is_var(needle) and isinstance(haystack, list) and not any(map(_is_var, haystack)):
        x = _field(needle)
        items = [_literal(h) for h in haystack]
        if not items:
            return _FALSE
        if all(isinstance(i, str) for i in items) or all(map(_exact_number, items)):
            # indexOf is strict: only an equal string (number) is in the list, as in the
            # VM; absent or null is in none.
            present: Node = Binary(0, "in", x, ListLit(0, tuple(Literal(0, i) for i in items)))
            return And(0, Has(0, x), present)
        raise _Untranslatable("in with a list of mixed types or numbers beyond 2**53")
    if _is_var(haystack) and isinstance(needle, str) and needle:
        # A substring of a string; an item of an array (strict: a string equal to the
        # needle); never in anything else. CEL's `in` on an object asks for a key: a
        # member of that name tells an object from an array.
        x = _field(haystack)
        lit = Literal(0, _literal(needle))
        item = And(0, Binary(0, "in", lit, x), Unary(0, "!", Has(0, Field(0, (*x.steps, needle)))))
        # Absent, null and every other type: never in (no indexOf), as the ands give.
        return Or(
            0,
            And(0, _is(x, "string"), Call(0, "contains", x, (lit,))),
            And(0, _is(x, "array", "object"), item),
        )
    raise _Untranslatable("this form of in")
