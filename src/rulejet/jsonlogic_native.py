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
told apart with the VM's internal iserror() (is x.startsWith("") an error?), which never
errs itself.

Rules with other operators, computed or dotted-index paths (``tags.0``, ``name.length``:
JavaScript indexes arrays and strings), ``var`` defaults, or scoped operators (map,
filter, ...) are not translated: they run in Python as before (None).
"""

from __future__ import annotations

import math
from typing import Any

from .expr import ISERROR, And, Binary, Call, Cond, Field, Has, ListLit, Literal, Node, Or, Unary
from .jsonlogic import from_jsonlogic

__all__ = ["truth_of", "why_untranslated"]

_SAFE = 2**53  # integers up to this are exact in a JavaScript number
_MIRROR = {">": "<", ">=": "<=", "<": ">", "<=": ">="}
_FALSE, _TRUE = Literal(0, False), Literal(0, True)


class _Untranslatable(Exception):
    pass


def truth_of(rule: Any) -> Node | None:
    """The rule's truthiness as a VM condition (see the module's doc), or None."""
    try:
        return _truth(rule)
    except _Untranslatable:
        return None


def why_untranslated(rule: Any) -> str | None:
    """What keeps the rule off the VM (for rulejet check), or None if nothing does."""
    try:
        _truth(rule)
    except _Untranslatable as e:
        return str(e)
    return None


def _truth(rule: Any) -> Node:
    if not isinstance(rule, dict):
        if isinstance(rule, list):
            return _TRUE if rule else _FALSE  # a literal array: truthy unless empty
        return _TRUE if from_jsonlogic(rule).matches(None) else _FALSE
    [(op, raw)] = rule.items()
    args = raw if isinstance(raw, list) else [raw]
    if op == "var":
        return _truthy_field(_field(rule))
    if op in ("and", "or"):
        parts = [_truth(a) for a in args]
        out = parts[0]
        for p in parts[1:]:
            out = And(0, out, p) if op == "and" else Or(0, out, p)
        return out
    if op == "!":
        return Unary(0, "!", _truth(args[0]))
    if op == "!!":
        return _truth(args[0])
    if op in ("if", "?:"):
        return _conditional(args)
    if op in ("==", "===", "!=", "!==", ">", ">=", "<", "<="):
        if len(args) == 3:  # a < b < c ("between")
            return And(0, _compare(op, args[0], args[1]), _compare(op, args[1], args[2]))
        return _compare(op, args[0], args[1])
    if op == "in":
        return _in(args[0], args[1])
    raise _Untranslatable(f"operator {op!r}")


def _conditional(args: list[Any]) -> Node:
    if not args:
        return _FALSE  # null
    if len(args) == 1:
        return _truth(args[0])  # the lone else value
    rest = _conditional(args[2:])
    return Cond(0, _truth(args[0]), _truth(args[1]), rest)


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
    _literal(args[0])
    return Field(0, tuple(steps))


def _is_var(rule: Any) -> bool:
    return isinstance(rule, dict) and list(rule) == ["var"]


def _literal(rule: Any) -> Any:
    if isinstance(rule, (dict, list)):
        raise _Untranslatable("an operand that is neither a var nor a literal")
    if isinstance(rule, str) and any("\ud800" <= c <= "\udfff" for c in rule):
        raise _Untranslatable("a string with a lone surrogate")  # no UTF-8 spelling to compare with
    return rule


def _is_string(x: Field) -> Node:
    """True for a string, an error for any other value."""
    return Call(0, "startsWith", x, (Literal(0, ""),))


def _in_range(x: Field) -> Node:
    """True for a number JavaScript holds exactly as the VM does, false for a larger
    one, an error for anything but a number."""
    return And(0, Binary(0, ">=", x, Literal(0, -_SAFE)), Binary(0, "<=", x, Literal(0, _SAFE)))


def _nullish(x: Field) -> Node:
    """Absent or null (never an error): where JSONLogic reads null."""
    return Or(0, Unary(0, "!", Has(0, x)), Binary(0, "==", x, Literal(0, None)))


def _at_null(op: str, args: list[Any]) -> Node:
    """The comparison's truthiness with its field null, from JSONLogic itself."""
    plain = [None if _is_var(a) else a for a in args]
    return _TRUE if from_jsonlogic({op: plain}).matches(None) else _FALSE


def _compare(op: str, a: Any, b: Any) -> Node:
    if not _is_var(a) and not _is_var(b):
        if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
            raise _Untranslatable(
                "a comparison of a computed operand"
            )  # it may read fields: no constant
        return _TRUE if from_jsonlogic({op: [a, b]}).matches(None) else _FALSE
    if _is_var(a) and _is_var(b):
        raise _Untranslatable("a comparison of two vars")
    if op in ("!=", "!=="):
        return Unary(0, "!", _compare("==" if op == "!=" else "===", a, b))
    x, lit = (_field(a), _literal(b)) if _is_var(a) else (_field(b), _literal(a))
    at_null = _at_null(op, [a, b])
    if not _is_var(a) and op in _MIRROR:
        op = _MIRROR[op]  # literal < field is field > literal
    return _atoms_compare(op, x, lit, at_null) or Cond(
        0, _nullish(x), at_null, _present_compare(op, x, lit)
    )


def _guarded(x: Field, at_null: Node, present: Node) -> Node:
    """at_null where x is absent or null, else present: in &&/|| form, which the VM
    decides from its atoms (a ?: runs the general interpreter)."""
    if at_null is _TRUE:
        return Or(0, Or(0, Unary(0, "!", Has(0, x)), Binary(0, "==", x, Literal(0, None))), present)
    return And(0, And(0, Has(0, x), Binary(0, "!=", x, Literal(0, None))), present)


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
    if lit is None and op in ("==", "==="):
        return Or(0, Unary(0, "!", Has(0, x)), Binary(0, "==", x, k))  # null == only null
    if op == "===" and (isinstance(lit, str) or _exact_number(lit)):
        # Strict: every other type is unequal, as in the VM; null too.
        return And(0, Has(0, x), Binary(0, "==", x, k))
    if op == "==" and (isinstance(lit, str) or _exact_number(lit)):
        # Loose: x == k as two orderings, an error for any type JavaScript coerces
        # (a number against "18", an array against "US").
        both = And(0, Binary(0, ">=", x, k), Binary(0, "<=", x, k))
        return _guarded(x, at_null, both)
    if op in _MIRROR and (_exact_number(lit) or (isinstance(lit, str) and lit.isascii())):
        return _guarded(x, at_null, Binary(0, op, x, k))
    return None


def _present_compare(op: str, x: Field, lit: Any) -> Node:
    """op against a present, non-null field value: decided where CEL and JavaScript agree."""
    cel_op = "==" if op in ("==", "===") else op
    if isinstance(lit, str):
        if op not in ("==", "===") and not lit.isascii():
            # JavaScript orders strings by UTF-16 code units, the VM by code points: they
            # agree while one side is ASCII at the first difference.
            raise _Untranslatable("ordering against a non-ASCII string")
        if op == "===":
            return Binary(0, "==", x, Literal(0, lit))  # other types are simply unequal
        return Cond(0, _is_string(x), Binary(0, cel_op, x, Literal(0, lit)), _FALSE)
    if isinstance(lit, bool):
        if op not in ("==", "==="):
            raise _Untranslatable("ordering against a boolean")
        is_bool = Or(0, Binary(0, "==", x, _TRUE), Binary(0, "==", x, _FALSE))
        same = Binary(0, "==", x, Literal(0, lit))
        if op == "===":
            return same  # other types are simply unequal
        # Loose equality with a boolean compares numbers and strings as numbers: unknown.
        return Cond(0, is_bool, same, _error(x))
    if isinstance(lit, (int, float)):
        if isinstance(lit, float) and not math.isfinite(lit):
            raise _Untranslatable("non-finite literal")
        if isinstance(lit, int) and abs(lit) > _SAFE:
            raise _Untranslatable("a literal beyond 2**53")
        return Cond(0, _in_range(x), Binary(0, cel_op, x, Literal(0, lit)), _error(x))
    if lit is None and op in ("==", "==="):
        return _FALSE  # a present non-null value is never null
    raise _Untranslatable("a comparison with this literal")


def _error(x: Field) -> Node:
    """An error for every value: lowerAscii() of a non-string is one, and ordering a
    string against a number another."""
    return Binary(0, "<", Call(0, "lowerAscii", x, ()), Literal(0, 0))


def _is_a(test: Node) -> Node:
    """True where test is no error, false where it is one: a type test that never errs."""
    return Unary(0, "!", Call(0, ISERROR, None, (test,)))


def _truthy_field(x: Field) -> Node:
    """JSONLogic truthiness of a field: decided for every value but an empty array or
    object (an empty array is falsy, an empty object truthy, and the VM cannot tell
    them apart)."""
    is_bool = Or(0, Binary(0, "==", x, _TRUE), Binary(0, "==", x, _FALSE))
    nonempty = Cond(0, Binary(0, ">", Call(0, "size", None, (x,)), Literal(0, 0)), _TRUE, _error(x))
    number = Cond(
        0, _is_a(Binary(0, ">=", x, Literal(0, 0))), Binary(0, "!=", x, Literal(0, 0)), nonempty
    )
    string = Cond(0, _is_a(_is_string(x)), Binary(0, "!=", x, Literal(0, "")), number)
    return Cond(0, _nullish(x), _FALSE, Cond(0, is_bool, Binary(0, "==", x, _TRUE), string))


def _in(needle: Any, haystack: Any) -> Node:
    if _is_var(needle) and isinstance(haystack, list) and not any(map(_is_var, haystack)):
        x = _field(needle)
        items = [_literal(h) for h in haystack]
        at_null = _at_null("in", [needle, haystack])
        if not items:
            return _FALSE
        if all(isinstance(i, str) for i in items) or all(map(_exact_number, items)):
            # indexOf is strict: only an equal string (number) is in the list, as in the VM.
            present: Node = Binary(0, "in", x, ListLit(0, tuple(Literal(0, i) for i in items)))
            return And(0, Has(0, x), present)
        if all(isinstance(i, (int, float)) and not isinstance(i, bool) for i in items):
            if any(not math.isfinite(i) or abs(i) > _SAFE for i in items):
                raise _Untranslatable("number beyond 2**53 in a list")
            within = Binary(0, "in", x, ListLit(0, tuple(Literal(0, i) for i in items)))
            present = Cond(0, _in_range(x), within, _error(x))
            return Cond(0, _nullish(x), at_null, present)
        raise _Untranslatable("in with a list of mixed types")
    if _is_var(haystack) and isinstance(needle, str) and needle:
        # A substring of a string; an item of an array (strict: a string equal to the
        # needle); never in anything else. CEL's `in` on an object asks for a key: a
        # member of that name tells an object from an array.
        x = _field(haystack)
        lit = Literal(0, _literal(needle))
        item = And(0, Binary(0, "in", lit, x), Unary(0, "!", Has(0, Field(0, (*x.steps, needle)))))
        container = Cond(0, _is_a(Call(0, "size", None, (x,))), item, _FALSE)
        present = Cond(0, _is_a(_is_string(x)), Call(0, "contains", x, (lit,)), container)
        return Cond(0, _nullish(x), _at_null("in", [needle, haystack]), present)
    raise _Untranslatable("this form of in")
