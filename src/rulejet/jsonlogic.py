"""JSONLogic rules (https://jsonlogic.com), validated once and evaluated in pure Python.

``from_jsonlogic(rule)`` checks a whole rule up front and returns a ``JsonLogic`` whose
``apply(data)`` follows the reference implementation, json-logic-js. The semantics are therefore
JavaScript's, not CEL's: ``==`` is loose equality (``1 == "1"``), ``===`` is strict (``true`` is
not ``1``), truthiness is JavaScript's except that an empty array is falsy (``"0"`` and ``{}`` are
truthy), ``and``/``or`` return one of their operands, comparisons and arithmetic coerce like
JavaScript (NaN and Infinity included), ``cat`` prints numbers as JavaScript does (1.0 -> "1"),
and strings are indexed in UTF-16 code units. Integer arithmetic stays a Python int while it is
exact (up to 2**53, like a JavaScript number); ``/`` always returns a float.

Deliberate differences from json-logic-js, all reported by ``from_jsonlogic``: an object inside
a rule must be a one-key operation (json-logic-js passes other objects through as data),
operators check their argument count instead of ignoring extra or missing arguments, and the
non-standard ``log`` and method-call operators do not exist. A unary ``*`` returns a number.
"""

from __future__ import annotations

import functools
import itertools
import math
import operator
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final

from rulejet.errors import InputError

__all__ = [
    "SUPPORTED_OPERATORS",
    "UNSUPPORTED_OPERATORS",
    "UNSUPPORTED_REASONS",
    "JSONLogicError",
    "JsonLogic",
    "from_jsonlogic",
]


class JSONLogicError(InputError):
    """A JSONLogic rule that is malformed or uses an unknown or unsupported operator."""


Number = int | float
Evaluator = Callable[[Any], Any]

_MAX_SAFE: Final = 2**53  # integers beyond this are not exact in a JavaScript number
_MAX_DEPTH: Final = 100  # nesting limit, so evaluation cannot exhaust Python's stack
_NAN: Final = math.nan
_ABSENT: Final = object()  # JavaScript's undefined, for a property lookup that finds nothing

# JavaScript's white space; Python's str.strip() differs (\x1c-\x1f, \x85, \ufeff).
_JS_SPACE: Final = (
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_INT_RE: Final = re.compile(r"[+-]?[0-9]+")
_UNSIGNED: Final = r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_DECIMAL_RE: Final = re.compile(rf"[+-]?{_UNSIGNED}")
_PARSE_FLOAT_RE: Final = re.compile(rf"[+-]?(?:Infinity|{_UNSIGNED})")
_RADIX_RE: Final = re.compile(r"0(?:[xX][0-9a-fA-F]+|[oO][0-7]+|[bB][01]+)")
_INDEX_RE: Final = re.compile(r"0|[1-9][0-9]{0,14}")


def _norm(n: int) -> Number:
    """An int as a JavaScript number holds it: exact up to 2**53, a rounded double beyond."""
    if -_MAX_SAFE <= n <= _MAX_SAFE:
        return n
    try:
        return float(n)
    except OverflowError:  # JavaScript reads such a literal as Infinity; copysign() would
        return math.inf if n > 0 else -math.inf  # convert n again and raise


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, str | int | float)  # bool is an int


def _truthy(v: Any) -> bool:
    """JSONLogic truthiness: JavaScript's, except that an empty array is falsy."""
    if isinstance(v, str | list):
        return len(v) > 0
    if isinstance(v, int | float):  # bool too
        return v == v and v != 0  # NaN is falsy
    return v is not None  # objects are truthy, even empty ones


def _kind(v: Any) -> str:
    """JavaScript's typeof, with null apart; arrays, dicts and anything else are objects."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int | float):
        return "number"
    return "string" if isinstance(v, str) else "object"


def _number_to_string(n: Number) -> str:
    """JavaScript's Number.prototype.toString(): shortest round-trip digits, JS layout."""
    if isinstance(n, int):
        return str(n)
    if math.isnan(n):
        return "NaN"
    if math.isinf(n):
        return "Infinity" if n > 0 else "-Infinity"
    if n == 0:
        return "0"  # -0 too
    # repr() gives the shortest digits that round-trip, as JavaScript does.
    _, digit_tuple, exponent = Decimal(repr(abs(n))).normalize().as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digit_tuple))
    k = len(digits)
    point = exponent + k  # the decimal point sits after this many digits
    if k <= point <= 21:
        body = digits + "0" * (point - k)
    elif 0 < point <= 21:
        body = f"{digits[:point]}.{digits[point:]}"
    elif -6 < point <= 0:
        body = "0." + "0" * -point + digits
    else:
        mantissa = digits[0] + (f".{digits[1:]}" if k > 1 else "")
        body = f"{mantissa}e{'+' if point > 0 else '-'}{abs(point - 1)}"
    return ("-" if n < 0 else "") + body


def _scalar_to_string(v: Any) -> str:
    if isinstance(v, str):
        return v
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return _number_to_string(_to_number(v))
    return "[object Object]"


def _to_string(v: Any) -> str:
    """JavaScript's String(v); arrays join with "," and show null elements as ""."""
    if not isinstance(v, list):
        return _scalar_to_string(v)
    # Iterative, with a stack of open arrays: data may nest deeper (the engine allows 1,024
    # levels) than Python's recursion limit. Like JavaScript's join, an array inside itself
    # prints as "", so a cyclic Python list cannot loop forever.
    out: list[str] = []
    stack, open_ids = [(iter(v), id(v))], {id(v)}
    first = True  # no element of the innermost open array is printed yet
    while stack:
        item = next(stack[-1][0], _ABSENT)
        if item is _ABSENT:
            open_ids.discard(stack.pop()[1])
            first = False
            continue
        if not first:
            out.append(",")
        first = False
        if isinstance(item, list):
            if id(item) not in open_ids:
                stack.append((iter(item), id(item)))
                open_ids.add(id(item))
                first = True
        elif item is not None:
            out.append(_scalar_to_string(item))
    return "".join(out)


def _to_primitive(v: Any) -> Any:
    return v if _is_scalar(v) else _to_string(v)


def _decimal(text: str) -> Number:
    # Short integer literals stay exact ints; int() of a huge literal could also raise.
    if len(text) <= 17 and _INT_RE.fullmatch(text):
        value = _norm(int(text))
        return -0.0 if value == 0 and text[0] == "-" else value
    return float(text)


def _string_to_number(s: str) -> Number:
    """JavaScript's Number(string): "" is 0, junk is NaN, hex/octal/binary literals parse."""
    s = s.strip(_JS_SPACE)
    if not s:
        return 0
    if _DECIMAL_RE.fullmatch(s):
        return _decimal(s)
    if s in ("Infinity", "+Infinity", "-Infinity"):
        return -math.inf if s[0] == "-" else math.inf
    return _norm(int(s, 0)) if _RADIX_RE.fullmatch(s) else _NAN


def _to_number(v: Any) -> Number:
    """JavaScript's ToNumber: null is 0, true is 1, arrays go through their string form."""
    if isinstance(v, int):  # bool included: True -> 1
        return _norm(int(v))
    if isinstance(v, float):
        return v
    if v is None:
        return 0
    if isinstance(v, str | list):
        return _string_to_number(_to_string(v))
    return _NAN


def _parse_float(v: Any) -> Number:
    """JavaScript's parseFloat: the longest numeric prefix of String(v), else NaN."""
    if isinstance(v, int | float) and not isinstance(v, bool):
        return _to_number(v) or 0  # the number itself, except that String(-0) is "0"
    match = _PARSE_FLOAT_RE.match(_to_string(v).lstrip(_JS_SPACE))
    if not match:
        return _NAN
    text = match.group()
    if text.endswith("Infinity"):
        return -math.inf if text[0] == "-" else math.inf
    return _decimal(text)


def _to_integer(v: Any) -> Number:
    """JavaScript's ToIntegerOrInfinity: NaN is 0, infinities stay, the rest truncates."""
    n = _to_number(v)
    return 0 if math.isnan(n) else n if math.isinf(n) else math.trunc(n)


def _strict_eq(a: Any, b: Any) -> bool:
    """JavaScript ===; unlike Python, true is not 1 and arrays are equal only to themselves."""
    kind = _kind(a)
    if kind != _kind(b):
        return False
    if kind == "object":
        return a is b
    if kind == "number":
        return _to_number(a) == _to_number(b)
    return bool(a == b)


def _loose_eq(a: Any, b: Any) -> bool:
    """JavaScript == (the abstract equality algorithm)."""
    ka, kb = _kind(a), _kind(b)
    if ka == kb:
        return _strict_eq(a, b)
    if "null" in (ka, kb):
        return False  # null == only null (and undefined)
    if ka == "boolean":
        return _loose_eq(int(a), b)
    if kb == "boolean":
        return _loose_eq(a, int(b))
    if ka == "object":
        return _loose_eq(_to_primitive(a), b)
    if kb == "object":
        return _loose_eq(a, _to_primitive(b))
    return _to_number(a) == _to_number(b)  # a number and a string


def _compare(a: Any, b: Any) -> int | None:
    """JavaScript's relational comparison: -1, 0 or 1, or None when NaN is involved."""
    pa, pb = _to_primitive(a), _to_primitive(b)
    if isinstance(pa, str) and isinstance(pb, str):
        ua, ub = pa.encode("utf-16-be", "surrogatepass"), pb.encode("utf-16-be", "surrogatepass")
        return (ua > ub) - (ua < ub)  # JavaScript orders strings by UTF-16 code units
    x, y = _to_number(pa), _to_number(pb)
    if math.isnan(x) or math.isnan(y):
        return None
    return (x > y) - (x < y)


def _arith(op: Callable[[Any, Any], Any], a: Number, b: Number) -> Number:
    # Int operands stay exact ints (rounded once past 2**53, as a double would be); a float
    # operand makes it float arithmetic, which is what JavaScript computes.
    if isinstance(a, int) and isinstance(b, int):
        exact = op(a, b)
        if exact == 0 and math.copysign(1.0, op(float(a), float(b))) < 0:
            return -0.0  # ints have no -0, yet 0 * -5 is -0 in JavaScript: 1 / -0 is -Infinity
        return _norm(exact)
    return float(op(float(a), float(b)))


def _add(a: Number, b: Number) -> Number:
    return _arith(operator.add, a, b)


def _div(a: Number, b: Number) -> float:
    x, y = float(a), float(b)
    if y != 0:
        return x / y
    # Python raises; JavaScript gives NaN or a signed infinity.
    return _NAN if x == 0 or math.isnan(x) else math.copysign(math.inf, x) * math.copysign(1, y)


def _mod(a: Number, b: Number) -> Number:
    """JavaScript %: the result has the sign of the dividend (Python's has the divisor's)."""
    if isinstance(a, int) and isinstance(b, int) and b != 0:
        rest = abs(a) % abs(b)
        return (-rest or -0.0) if a < 0 else rest
    x, y = float(a), float(b)
    if math.isnan(x) or math.isnan(y) or math.isinf(x) or y == 0:
        return _NAN
    return x if math.isinf(y) else math.fmod(x, y)


def _signed_zero_order(n: Number) -> tuple[Number, float]:
    return n, math.copysign(1.0, n)


def _extreme(args: list[Any], pick: Callable[..., Number]) -> Number:
    numbers = [_to_number(a) for a in args]
    if any(math.isnan(n) for n in numbers):
        return _NAN
    # Math.max/Math.min order -0 below +0; Python's max/min take the first of equal values.
    return pick(numbers, key=_signed_zero_order)


def _utf16(s: str) -> bytes:
    return s.encode("utf-16-le", "surrogatepass")


def _substr(text: str, start: Any, length: Any = _ABSENT) -> str:
    """JavaScript's String.prototype.substr(start, length) on UTF-16 code units."""
    units = _utf16(text)
    size = len(units) // 2
    begin = _to_integer(start)
    begin = min(max(size + begin, 0) if begin < 0 else begin, size)
    count = size if length is _ABSENT else min(max(_to_integer(length), 0), size)
    stop = min(begin + count, size)
    return units[2 * int(begin) : 2 * int(stop)].decode("utf-16-le", "surrogatepass")


def _get_property(node: Any, key: str) -> Any:
    """node[key] in JavaScript, or _ABSENT for undefined; arrays and strings have .length."""
    if isinstance(node, dict):
        return node.get(key, _ABSENT)
    if isinstance(node, list | str):
        size = len(node) if isinstance(node, list) else len(_utf16(node)) // 2
        if key == "length":
            return size
        if not _INDEX_RE.fullmatch(key) or int(key) >= size:
            return _ABSENT
        return node[int(key)] if isinstance(node, list) else _substr(node, int(key), 1)
    return _ABSENT


def _op_var(args: list[Any], data: Any) -> Any:
    """A dotted path into data; no name, "" or null is the data itself."""
    name, default = args[0] if args else None, args[1] if len(args) > 1 else None
    if name is None or name == "":
        return data
    for key in _to_string(name).split("."):
        if data is None:
            return default
        data = _get_property(data, key)
        if data is _ABSENT:
            return default
    return data  # a present null stays null; only an absent value takes the default


def _op_missing(args: list[Any], data: Any) -> list[Any]:
    keys = args[0] if args and isinstance(args[0], list) else args
    # Each key is looked up as {"var": key}, so a list key is a [name, default] pair.
    found = (_op_var(k if isinstance(k, list) else [k], data) for k in keys)
    return [key for key, v in zip(keys, found, strict=True) if v is None or v == ""]


def _op_missing_some(args: list[Any], data: Any) -> list[Any]:
    need, options = args
    options = options if isinstance(options, list) else [options]
    missing = _op_missing([options], data)
    return [] if _compare(len(options) - len(missing), need) in (0, 1) else missing


def _op_in(args: list[Any], _data: Any) -> bool:
    needle, haystack = args
    if isinstance(haystack, str):
        return haystack != "" and _to_string(needle) in haystack
    if isinstance(haystack, list):
        return any(_strict_eq(needle, item) for item in haystack)  # indexOf is strict
    return False


def _op_substr(args: list[Any], _data: Any) -> str:
    text = _to_string(args[0])
    if len(args) < 3:
        return _substr(text, args[1])
    end = args[2]
    if _compare(end, 0) != -1:
        return _substr(text, args[1], end)
    # A negative length counts back from the end, computed as json-logic-js does:
    # tail.length + end, which concatenates when end is a string.
    tail = _substr(text, args[1])
    size, end = len(_utf16(tail)) // 2, _to_primitive(end)
    length = f"{size}{end}" if isinstance(end, str) else _add(size, _to_number(end))
    return _substr(tail, 0, length)


def _op_minus(args: list[Any], _data: Any) -> Number:
    if len(args) == 1:
        n = _to_number(args[0])
        return -n if n else -float(n)  # -0 is -0.0
    return _arith(operator.sub, _to_number(args[0]), _to_number(args[1]))


def _op_times(args: list[Any], _data: Any) -> Number:
    # json-logic-js returns a lone argument unconverted; a number is more useful.
    numbers = [_parse_float(a) for a in args]
    return functools.reduce(lambda a, b: _arith(operator.mul, a, b), numbers)


_EAGER: Final[dict[str, Callable[[list[Any], Any], Any]]] = {
    "var": _op_var,
    "missing": _op_missing,
    "missing_some": _op_missing_some,
    "==": lambda a, _: _loose_eq(a[0], a[1]),
    "!=": lambda a, _: not _loose_eq(a[0], a[1]),
    "===": lambda a, _: _strict_eq(a[0], a[1]),
    "!==": lambda a, _: not _strict_eq(a[0], a[1]),
    ">": lambda a, _: _compare(a[0], a[1]) == 1,
    ">=": lambda a, _: _compare(a[0], a[1]) in (0, 1),
    # With three arguments, "<" and "<=" test a < b < c ("between").
    "<": lambda a, _: all(_compare(x, y) == -1 for x, y in itertools.pairwise(a)),
    "<=": lambda a, _: all(_compare(x, y) in (-1, 0) for x, y in itertools.pairwise(a)),
    "!": lambda a, _: not _truthy(a[0]),
    "!!": lambda a, _: _truthy(a[0]),
    "in": _op_in,
    "cat": lambda a, _: "".join("" if x is None else _to_string(x) for x in a),
    "substr": _op_substr,
    # json-logic-js sums with parseFloat, not ToNumber: "3px" is 3 but true is NaN.
    "+": lambda a, _: functools.reduce(_add, [0, *map(_parse_float, a)]),
    "-": _op_minus,
    "*": _op_times,
    "/": lambda a, _: _div(_to_number(a[0]), _to_number(a[1])),
    "%": lambda a, _: _mod(_to_number(a[0]), _to_number(a[1])),
    "min": lambda a, _: _extreme(a, min),
    "max": lambda a, _: _extreme(a, max),
    "merge": lambda a, _: [x for arg in a for x in (arg if isinstance(arg, list) else [arg])],
}

_SCOPED: Final = frozenset({"map", "filter", "reduce", "all", "some", "none"})

# (minimum, maximum) argument counts; None is unbounded. JavaScript would silently read missing
# arguments as undefined and drop extra ones, which hides mistakes such as {">": [a, b, c]}.
_ARITY: Final[dict[str, tuple[int, int | None]]] = {
    **dict.fromkeys(("==", "!=", "===", "!==", ">", ">=", "in", "/", "%"), (2, 2)),
    **dict.fromkeys(("<", "<=", "substr", "reduce"), (2, 3)),
    **dict.fromkeys(("map", "filter", "all", "some", "none", "missing_some"), (2, 2)),
    **dict.fromkeys(("!", "!!"), (1, 1)),
    **dict.fromkeys(("and", "or", "*", "min", "max"), (1, None)),
    **dict.fromkeys(("if", "?:", "cat", "+", "merge", "missing"), (0, None)),
    "-": (1, 2),
    "var": (0, 2),
}

SUPPORTED_OPERATORS: Final[frozenset[str]] = frozenset(_ARITY)
UNSUPPORTED_REASONS: Final[dict[str, str]] = {}  # every operator of the official suite works
UNSUPPORTED_OPERATORS: Final[frozenset[str]] = frozenset(UNSUPPORTED_REASONS)
assert {*_EAGER, *_SCOPED, "if", "?:", "and", "or"} == SUPPORTED_OPERATORS
_SUPPORTED: Final = "supported operators: " + " ".join(sorted(SUPPORTED_OPERATORS))


def _pointer(at: str, token: str | int) -> str:
    """Extend a JSON Pointer, for locating problems in error messages."""
    return f"{at}/{str(token).replace('~', '~0').replace('/', '~1')}"


def _where(at: str) -> str:
    return f" at {at}" if at else ""


class _Compiler:
    """Builds the evaluator of a rule and collects the static paths it reads."""

    def __init__(self) -> None:
        self.fields: dict[str, None] = {}  # an ordered set

    def node(self, rule: Any, at: str, depth: int, track: bool) -> Evaluator:
        # track is False inside map/filter/... bodies: their paths address array items.
        if depth > _MAX_DEPTH:
            raise JSONLogicError(f"rule is nested more than {_MAX_DEPTH} levels deep{_where(at)}")
        if isinstance(rule, dict):
            return self.operation(rule, at, depth, track)
        if isinstance(rule, list):
            items = [self.node(r, _pointer(at, i), depth + 1, track) for i, r in enumerate(rule)]
            return lambda data: [item(data) for item in items]  # a fresh array, as in JS
        if _is_scalar(rule):
            return lambda _data: rule
        raise JSONLogicError(
            f"a rule may only hold JSON values, not {type(rule).__name__}{_where(at)}"
        )

    def record(self, op: str, args: list[Any]) -> None:
        """Note the literal paths a var/missing/missing_some reads, for fields()."""
        if op == "var":
            keys = args[:1]
        elif op == "missing":
            keys = args[0] if args and isinstance(args[0], list) else args
        else:
            keys = args[1] if isinstance(args[1], list) else [args[1]]
        for key in keys:
            if key is not None and _is_scalar(key) and (path := _to_string(key)):
                self.fields.setdefault(path, None)

    def operation(self, rule: dict[Any, Any], at: str, depth: int, track: bool) -> Evaluator:
        if len(rule) != 1:
            keys = ", ".join(repr(k) for k in list(rule)[:5]) + (", ..." if len(rule) > 5 else "")
            raise JSONLogicError(
                "an object in a JSONLogic rule must have exactly one key, the operator; "
                f"got {len(rule)} keys ({keys}){_where(at)}"
            )
        [(op, raw)] = rule.items()
        if op in UNSUPPORTED_OPERATORS:
            reason = UNSUPPORTED_REASONS[op]
            raise JSONLogicError(
                f"JSONLogic operator {op!r} is not supported ({reason}){_where(at)}; {_SUPPORTED}"
            )
        if op not in SUPPORTED_OPERATORS:
            raise JSONLogicError(f"unknown JSONLogic operator {op!r}{_where(at)}; {_SUPPORTED}")
        at = _pointer(at, op)
        # A lone argument may be written bare: {"var": "x"} means {"var": ["x"]}.
        args: list[Any] = raw if isinstance(raw, list) else [raw]
        low, high = _ARITY[op]
        if len(args) < low or (high is not None and len(args) > high):
            count = f"at least {low}" if high is None else f"{low}-{high}" if low < high else low
            raise JSONLogicError(
                f"JSONLogic operator {op!r} takes {count} argument(s), got {len(args)}{_where(at)}"
            )
        if track and op in ("var", "missing", "missing_some"):
            self.record(op, args)

        def compile_arg(i: int, tracked: bool = track) -> Evaluator:
            where = _pointer(at, i) if isinstance(raw, list) else at
            return self.node(args[i], where, depth + 1, tracked)

        if op in _SCOPED:
            return _scoped(op, [compile_arg(i, i != 1) for i in range(len(args))])
        fns = [compile_arg(i) for i in range(len(args))]
        if op in ("if", "?:"):
            return _conditional(fns)
        if op in ("and", "or"):
            return _short_circuit(fns, stop_when=op == "or")
        impl = _EAGER[op]
        return lambda data: impl([f(data) for f in fns], data)


def _conditional(fns: list[Evaluator]) -> Evaluator:
    # if/?: take condition, value pairs and an optional final else value.
    pairs = list(zip(fns[0::2], fns[1::2], strict=False))
    otherwise = fns[-1] if len(fns) % 2 else None

    def run(data: Any) -> Any:
        for condition, value in pairs:
            if _truthy(condition(data)):
                return value(data)
        return otherwise(data) if otherwise is not None else None

    return run


def _short_circuit(fns: list[Evaluator], *, stop_when: bool) -> Evaluator:
    # "and" returns the first falsy operand, "or" the first truthy one; else the last operand.
    def run(data: Any) -> Any:
        value = None
        for f in fns:
            value = f(data)
            if _truthy(value) is stop_when:
                return value
        return value

    return run


def _scoped(op: str, fns: list[Evaluator]) -> Evaluator:
    """Array operators: fns[1] runs with each item (reduce: {current, accumulator}) as data."""
    source, body = fns[0], fns[1]

    def items(data: Any) -> list[Any]:
        found = source(data)
        return found if isinstance(found, list) else []  # json-logic-js ignores non-arrays

    if op == "map":
        return lambda data: [body(x) for x in items(data)]
    if op == "filter":
        return lambda data: [x for x in items(data) if _truthy(body(x))]
    if op == "all":  # false for an empty array, unlike Python's all()
        return lambda data: bool(found := items(data)) and all(_truthy(body(x)) for x in found)
    if op == "some":
        return lambda data: any(_truthy(body(x)) for x in items(data))
    if op == "none":
        return lambda data: not any(_truthy(body(x)) for x in items(data))
    initial = fns[2] if len(fns) > 2 else None

    def reduce(data: Any) -> Any:
        found = source(data)
        accumulator = initial(data) if initial is not None else None
        if not isinstance(found, list):
            return accumulator
        for current in found:
            accumulator = body({"current": current, "accumulator": accumulator})
        return accumulator

    return reduce


class JsonLogic:
    """A validated JSONLogic rule; build one with ``from_jsonlogic(rule)``."""

    __slots__ = ("_evaluate", "_fields", "rule")

    def __init__(self, rule: object) -> None:
        compiler = _Compiler()
        self._evaluate = compiler.node(rule, "", 0, True)
        self._fields = tuple(compiler.fields)
        self.rule = rule

    def apply(self, data: Any = None) -> Any:
        """Evaluate the rule against data (parsed JSON) with JSONLogic's JavaScript semantics."""
        return self._evaluate(data)

    def matches(self, data: Any = None) -> bool:
        """Whether apply(data) is truthy: [], "", 0, NaN and null are false; "0" and {} true."""
        return _truthy(self._evaluate(data))

    def fields(self) -> list[str]:
        """The distinct static paths the rule reads from the input (var, missing and
        missing_some names, dotted), in order of first appearance. Dynamic names, the whole
        document ("" or null) and paths inside map/filter/reduce/all/some/none bodies, which
        address array items, are left out."""
        return list(self._fields)

    def __repr__(self) -> str:
        return f"JsonLogic({self.rule!r})"


def from_jsonlogic(rule: object) -> JsonLogic:
    """Validate a JSONLogic rule (parsed JSON) and compile it.

    Raises JSONLogicError for an unknown or unsupported operator anywhere in the rule, a wrong
    argument count, an object that is not a one-key operation, or a non-JSON value.
    """
    return JsonLogic(rule)
