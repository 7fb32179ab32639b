"""Compiling conditions into one native program.

Every field any rule reads goes into one PathSet (each event is scanned
once); each condition becomes bytecode for the VM in _native/core/vm.c.
Rules whose condition has a top-level conjunct ``field == literal`` or
``field in [literals]`` get a guard: when the event's field holds none of
those values, the rule is false without running (the conjunct is false,
so the conjunction is), which makes large rule sets cheap; without one, a
conjunct ``field.endsWith("literal")`` guards the rule the same way. A
top-level ``||`` whose every disjunct has such a conjunct, or is a bare
(bool) field, gets one guard per disjunct: when none holds, every
disjunct is false.
"""

from __future__ import annotations

import itertools
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from ._native import Program
from .expr import (
    ISTYPE,
    And,
    Binary,
    Call,
    Cond,
    ExprError,
    Field,
    Has,
    ListLit,
    Literal,
    Node,
    Or,
    Unary,
)
from .paths import PathSet

# Opcodes: the order of enum rj_op in _native/core/vm.h (a test checks).
OPCODES = [
    "LOAD", "HAS", "CONST", "NOT", "NEG", "EQ", "NE", "LT", "LE", "GT", "GE",
    "ADD", "SUB", "MUL", "DIV", "MOD", "IN", "AND_SC", "AND", "OR_SC", "OR",
    "TEST", "JUMP", "STARTS", "ENDS", "CONTAINS", "MATCHES", "LOWER", "SIZE",
    "TO_INT", "TO_DOUBLE", "TO_STRING", "RET",
    "F_EQ", "F_NE", "F_LT", "F_LE", "F_GT", "F_GE", "F_IN", "F_STARTS", "F_ENDS",
    "F_CONTAINS", "F_CONST_IN", "F_TYPE", "F_MATCHES",
]  # fmt: skip
OP = {name: i + 1 for i, name in enumerate(OPCODES)}

_BINARY = {"==": "EQ", "!=": "NE", "<": "LT", "<=": "LE", ">": "GT", ">=": "GE",
           "+": "ADD", "-": "SUB", "*": "MUL", "/": "DIV", "%": "MOD", "in": "IN"}  # fmt: skip
_CALLS = {"startsWith": "STARTS", "endsWith": "ENDS", "contains": "CONTAINS",
          "lowerAscii": "LOWER", "size": "SIZE", "int": "TO_INT", "double": "TO_DOUBLE",
          "string": "TO_STRING"}  # fmt: skip
_FUSED_CMP = {"==": "F_EQ", "!=": "F_NE", "<": "F_LT", "<=": "F_LE", ">": "F_GT", ">=": "F_GE"}
_FUSED_STR = {"startsWith": "F_STARTS", "endsWith": "F_ENDS", "contains": "F_CONTAINS"}
MAX_FUSED_SLOT = 0xFFFF
_ERE_SPECIAL = frozenset(".[]()*+?{}|^$\\")
Scalar = None | bool | int | float | str
GuardSpecs = tuple[tuple[int, int, int, int], ...]  # (slot, first const, count, kind) each


MAX_LISTED_RANGE = 4096


def _listed_range(lo: str, hi: str, fail: Callable[[str], ExprError]) -> str:
    """A bracket range with a non-ASCII end, for glibc: its UTF-8 locale
    refuses such ranges (it cannot collate them), so the non-ASCII code
    points are listed one by one (Python's ranges are by code point); an
    ASCII part stays a range."""
    if lo > hi:
        raise fail(f"bad character range {lo}-{hi}")
    if ord(hi) - max(ord(lo), 0x80) >= MAX_LISTED_RANGE:
        raise fail(f"a range of more than {MAX_LISTED_RANGE} non-ASCII characters ({lo}-{hi})")
    ascii_part = f"[.{lo}.]-[.\x7f.]" if lo <= "\x7f" else ""
    listed = (chr(c) for c in range(max(ord(lo), 0x80), ord(hi) + 1))
    return ascii_part + "".join(c for c in listed if not "\ud800" <= c <= "\udfff")


def _check_anchors(kinds: list[str], fail: Callable[[str], ExprError]) -> None:
    """Refuse ``^`` and ``$`` where glibc and Python disagree on them.

    kinds is the pattern as "(" ")" "|" "^" "$" "q" (a quantifier) and "a"
    (anything that consumes a character). glibc lets ``^`` match after a
    newline the pattern itself consumed (``x\\n^y``) and ``$`` before one,
    and a ``^`` in a repeated group matches again on later rounds
    (``(^a){2}`` on "aa"). So ``^`` may only follow ``(``, ``^`` or the
    ``|`` of a group that starts the pattern, ``$`` likewise before the
    end (but not before another ``$``), and no group holding an anchor may
    carry a quantifier."""
    holds_anchor = [False]  # per open group, innermost last
    for kind, after in itertools.pairwise([*kinds, ""]):
        if kind in "^$":
            holds_anchor[-1] = True
            if after == "q":
                raise fail(f"a quantifier on {kind}")
        elif kind == "(":
            holds_anchor.append(False)
        elif kind == ")" and len(holds_anchor) > 1:
            inner = holds_anchor.pop()
            if inner and after == "q":
                raise fail("a quantifier on a group holding ^ or $ (glibc differs there)")
            holds_anchor[-1] |= inner

    for anchor, kinds_in_order in (("^", kinds), ("$", _mirrored(kinds))):
        at_edge = True
        outer: list[bool] = []  # at_edge where each open group began
        for kind in kinds_in_order:
            if kind == "(":
                outer.append(at_edge)
            elif kind == "|":
                at_edge = outer[-1] if outer else True
            elif kind == anchor:
                if not at_edge:
                    where = "start" if anchor == "^" else "end, or before another $"
                    raise fail(f"{anchor} away from the pattern's {where} (glibc differs there)")
                # Each $ becomes "\n?$", so "$$" would let glibc take a
                # newline between the two ("a$$" on "a\n\n").
                at_edge = anchor == "^"
            else:
                at_edge = False
                if kind == ")" and outer:
                    outer.pop()


def _mirrored(kinds: list[str]) -> list[str]:
    """kinds read from the end, so ``$`` can be checked as ``^`` is."""
    flip = {"(": ")", ")": "("}
    return [flip.get(k, k) for k in reversed(kinds)]


def translate_regex(pattern: str, text: str = "", pos: int = 0) -> str:
    """A Python-style pattern as POSIX extended regex, for the supported
    subset: literals, ``. ^ $ | ( ) [ ] * + ? {m,n}``, escapes of
    punctuation, and the classes ``\\d \\w \\s`` (and ``\\D \\W \\S`` outside
    brackets). Lookarounds, lazy and possessive quantifiers, backreferences,
    ``(?...)`` groups, word boundaries, NUL, lone surrogates and ``^ $``
    away from the pattern's edges (_check_anchors) raise ExprError.
    Python's meaning is kept where POSIX differs: ``.`` does not match a
    newline, ``$`` also matches before a final newline, ``{`` is a literal
    unless it starts a quantifier, and escaped characters inside brackets
    (``[a\\]\\-]``) are literal (as POSIX collating symbols)."""
    classes = {"d": "0-9", "w": "A-Za-z0-9_", "s": " \t\n\r\f\v"}
    out: list[str] = []
    kinds: list[str] = []  # the pattern's outline, for _check_anchors
    i, in_bracket = 0, False

    def fail(why: str) -> ExprError:
        return ExprError(f"unsupported in matches(): {why}", text or pattern, pos)

    # regcomp() stops at NUL; the native module passes patterns as UTF-8.
    if "\0" in pattern or any("\ud800" <= c <= "\udfff" for c in pattern):
        raise fail("NUL or lone surrogate characters")
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            if i + 1 >= len(pattern):
                raise fail("trailing backslash")
            nxt = pattern[i + 1]
            i += 2
            kinds += [] if in_bracket else ["a"]
            if nxt in classes:
                out.append(classes[nxt] if in_bracket else f"[{classes[nxt]}]")
            elif nxt in "DWS" and not in_bracket:
                out.append(f"[^{classes[nxt.lower()]}]")
            elif nxt.isalnum():
                raise fail(f"the escape \\{nxt}")
            elif in_bracket:
                out.append(f"[.{nxt}.]")  # literal even where ] ^ - [ are special
            else:
                out.append("\\" + nxt if nxt in _ERE_SPECIAL else nxt)  # GNU: \< is a boundary
            continue
        if in_bracket:
            hi = pattern[i + 2 : i + 3]
            if (
                pattern[i + 1 : i + 2] == "-"
                and hi not in ("", "]", "\\")
                and max(ch, hi) > "\x7f"
                and (ch != "]" or out[-1] in ("[", "[^"))
            ):
                out.append(_listed_range(ch, hi, fail))
                i += 3
                continue
            if ch == "]" and out[-1] not in ("[", "[^"):
                in_bracket = False
            out.append("[.[.]" if ch == "[" else ch)  # "[:" would start a POSIX class
        elif ch == "[":
            in_bracket = True
            kinds.append("a")
            if pattern[i + 1 : i + 2] == "^":
                out.append("[^")
                i += 1
            else:
                out.append("[")
        elif ch == "(" and pattern[i + 1 : i + 2] == "?":
            raise fail("(?...) groups")
        elif ch in "*+?" and pattern[i + 1 : i + 2] in ("?", "+"):
            raise fail("lazy or possessive quantifiers")
        elif ch in "*+?":
            kinds.append("q")
            out.append(ch)
        elif ch == "{":
            # Python reads "{" as a quantifier only in these shapes, else
            # as a literal (which POSIX would reject).
            m = re.match(r"\{([0-9]*)(,?)([0-9]*)\}", pattern[i:])
            if m is None or m.group() == "{}":
                kinds.append("a")
                out.append("\\{")
            else:
                kinds.append("q")
                lo, comma, hi = m.groups()
                out.append("{" + (lo or "0") + comma + hi + "}")
                i += len(m.group())
                if pattern[i : i + 1] in ("?", "+"):
                    raise fail("lazy or possessive quantifiers")
                continue
        elif ch in "()|^$":
            kinds.append(ch)
            out.append("\n?$" if ch == "$" else ch)
        else:
            kinds.append("a")
            out.append({"}": "\\}", ".": "[^\n]"}.get(ch, ch))
        i += 1
    if in_bracket:
        raise fail("unterminated [")
    _check_anchors(kinds, fail)
    return "".join(out)


def surrogate_standin(pattern: str, text: str = "", pos: int = 0) -> int:
    """The code point the VM matches a lone surrogate as, for this pattern.

    glibc's matcher cannot see a lone surrogate (invalid UTF-8 to it). A
    code point right next to the surrogate block that the pattern never
    names is in exactly the pattern's classes and ranges that hold the
    surrogate in Python: patterns cannot name surrogates, so a range either
    spans the whole block (and reaches past it on both sides) or misses it,
    and only a range starting or ending exactly at the stand-in could tell
    them apart. Neither is a letter, digit or space."""
    for standin in ("\ue000", "\ud7ff"):
        if standin not in pattern:
            return ord(standin)
    raise ExprError(
        "unsupported in matches(): a pattern naming both U+E000 and U+D7FF", text or pattern, pos
    )


@dataclass
class _Emitter:
    text: str
    slot_of: dict[tuple[str | int, ...], int]
    consts: list[object] = field(default_factory=list)
    const_index: dict[tuple[str, object], int] = field(default_factory=dict)
    regexes: list[tuple[str, int]] = field(default_factory=list)  # (POSIX, stand-in)
    regex_at: list[tuple[str, int]] = field(default_factory=list)  # (condition, offset)
    regex_index: dict[tuple[str, int], int] = field(default_factory=dict)
    code: list[tuple[int, int, int]] = field(default_factory=list)  # (op, slot, arg)
    depth: int = 0
    max_depth: int = 0

    def emit(self, op: str, arg: int = 0, delta: int = 0, slot: int = 0) -> int:
        self.code.append((OP[op], slot, arg))
        self.depth += delta
        self.max_depth = max(self.max_depth, self.depth)
        return len(self.code) - 1

    def patch(self, at: int, target: int) -> None:
        op, slot, _ = self.code[at]
        self.code[at] = (op, slot, target)

    def fused(self, n: Node) -> bool:
        """Emit ``field op literal`` as one instruction, if n has that shape."""
        if isinstance(n, Call) and n.name == ISTYPE:  # always this shape (no syntax)
            f, mask = n.args
            assert isinstance(f, Field) and isinstance(mask, Literal)
            if self.slot_of[f.steps] > MAX_FUSED_SLOT:
                raise ExprError("too many fields for a type test", self.text, n.pos)
            self.emit("F_TYPE", self.const(mask.value), +1, self.slot_of[f.steps])
            return True
        if isinstance(n, Binary):
            f, lit, op = n.left, n.right, n.op
            if isinstance(f, Literal) and isinstance(lit, Field) and op in ("==", "!="):
                f, lit = lit, f
            if not isinstance(f, Field) or self.slot_of[f.steps] > MAX_FUSED_SLOT:
                return False
            slot = self.slot_of[f.steps]
            if op in _FUSED_CMP and isinstance(lit, Literal):
                self.emit(_FUSED_CMP[op], self.const(lit.value), +1, slot)
                return True
            if (
                op == "in"
                and isinstance(lit, ListLit)
                and all(isinstance(i, Literal) for i in lit.items)
            ):
                items: list[Scalar] = [i.value for i in lit.items]  # type: ignore[attr-defined]
                self.emit("F_IN", self.const_list(items), +1, slot)
                return True
            return False
        if isinstance(n, Binary) and n.op == "in":
            return False
        if (
            isinstance(n, Call)
            and n.name in _FUSED_STR
            and isinstance(n.target, Field)
            and isinstance(n.args[0], Literal)
            and self.slot_of[n.target.steps] <= MAX_FUSED_SLOT
        ):
            slot = self.slot_of[n.target.steps]
            self.emit(_FUSED_STR[n.name], self.const(n.args[0].value), +1, slot)
            return True
        if (
            isinstance(n, Call)
            and n.name == "matches"
            and isinstance(n.target, Field)
            and self.slot_of[n.target.steps] <= MAX_FUSED_SLOT
        ):  # the argument is a literal (the parser insists): arg is the regex's index
            self.emit("F_MATCHES", self.regex(n.args[0]), +1, self.slot_of[n.target.steps])
            return True
        return False

    def regex(self, pattern: Node) -> int:
        """The index of pattern's compiled form: one per distinct pattern, so
        rules testing a field against the same pattern share an atom."""
        assert isinstance(pattern, Literal) and isinstance(pattern.value, str)
        posix = translate_regex(pattern.value, self.text, pattern.pos)
        key = (posix, surrogate_standin(pattern.value, self.text, pattern.pos))
        if key not in self.regex_index:
            self.regex_index[key] = len(self.regexes)
            self.regexes.append(key)
            self.regex_at.append((self.text, pattern.pos))
        return self.regex_index[key]

    def const(self, value: Scalar) -> int:
        key = (type(value).__name__, repr(value) if isinstance(value, float) else value)
        if key not in self.const_index:
            self.const_index[key] = len(self.consts)
            self.consts.append(value)
        return self.const_index[key]

    def const_list(self, items: list[Scalar]) -> int:
        first = len(self.consts)
        self.consts.extend(items)  # a list's items sit side by side, not interned
        self.consts.append((first, len(items)))
        return len(self.consts) - 1

    def const_in(self, n: Node) -> tuple[int, int] | None:
        """(slot, const) if n is ``literal in field`` (one F_CONST_IN)."""
        if (
            isinstance(n, Binary)
            and n.op == "in"
            and isinstance(n.left, Literal)
            and isinstance(n.right, Field)
            and self.slot_of[n.right.steps] <= MAX_FUSED_SLOT
        ):
            return self.slot_of[n.right.steps], self.const(n.left.value)
        return None

    def node(self, n: Node) -> None:
        if self.fused(n):
            return
        if (slot_const := self.const_in(n)) is not None:
            self.emit("F_CONST_IN", slot_const[1], +1, slot_const[0])
            return
        if isinstance(n, Literal):
            self.emit("CONST", self.const(n.value), +1)
        elif isinstance(n, ListLit):
            if not all(isinstance(i, Literal) for i in n.items):
                raise ExprError("list literals may hold only literals", self.text, n.pos)
            items: list[Scalar] = [i.value for i in n.items]  # type: ignore[attr-defined]
            self.emit("CONST", self.const_list(items), +1)
        elif isinstance(n, Field):
            self.emit("LOAD", self.slot_of[n.steps], +1)
        elif isinstance(n, Has):
            self.emit("HAS", self.slot_of[n.field.steps], +1)
        elif isinstance(n, Unary):
            self.node(n.operand)
            self.emit("NOT" if n.op == "!" else "NEG")
        elif isinstance(n, Binary):
            self.node(n.left)
            self.node(n.right)
            self.emit(_BINARY[n.op], 0, -1)
        elif isinstance(n, (And, Or)):
            short, join = ("AND_SC", "AND") if isinstance(n, And) else ("OR_SC", "OR")
            self.node(n.left)
            jump = self.emit(short)
            self.node(n.right)
            self.emit(join, 0, -1)
            self.patch(jump, len(self.code))
        elif isinstance(n, Cond):
            self.node(n.test)
            test = self.emit("TEST", 0, -1)
            self.node(n.then)
            end_jump = self.emit("JUMP")
            self.depth -= 1  # the else branch starts from the same depth
            self.patch(test, len(self.code))
            self.node(n.orelse)
            self.patch(end_jump, len(self.code))
        elif isinstance(n, Call):
            self.call(n)
        else:  # pragma: no cover - the parser makes no other nodes
            raise TypeError(f"unknown node {n!r}")

    def call(self, n: Call) -> None:
        if n.target is not None:
            self.node(n.target)
        if n.name == "matches":
            self.emit("MATCHES", self.regex(n.args[0]))
            return
        for a in n.args:
            self.node(a)
        self.emit(_CALLS[n.name], 0, -len(n.args) + (1 if n.target is None else 0))


# Atoms most likely to be false first: equality and string tests pin a
# value, ranges cut less, presence and negations rarely.
_ATOM_RANK = {"F_EQ": 0, "F_IN": 0, "F_STARTS": 0, "F_ENDS": 0, "F_CONTAINS": 0,
              "F_CONST_IN": 0, "F_LT": 1, "F_LE": 1, "F_GT": 1, "F_GE": 1, "F_NE": 2,
              "HAS": 2}  # fmt: skip
MAX_ATOMS = 4  # RJ_MAX_ATOMS in vm.h


SHAPE_GENERAL, SHAPE_AND, SHAPE_OR, SHAPE_TREE = 0, 1, 2, 3  # RJ_SHAPE_* in vm.h


def _atom_key(em: _Emitter, c: Node) -> tuple[int, int, int, int] | None:
    """(op, slot, arg, negate) if c is a fusable test or its negation. A
    bare field counts too (op LOAD): true if it holds true, false if false,
    neither otherwise; the VM uses those only under && || !, where a value
    that is not a bool makes an error, as neither does."""
    negate = 0
    if isinstance(c, Unary) and c.op == "!":
        c, negate = c.operand, 1
    if isinstance(c, Has) and c.field.steps in em.slot_of:
        return (OP["HAS"], em.slot_of[c.field.steps], 0, negate)
    if isinstance(c, Field) and em.slot_of[c.steps] <= MAX_FUSED_SLOT:
        return (OP["LOAD"], em.slot_of[c.steps], 0, negate)
    if (slot_const := em.const_in(c)) is not None:
        return (OP["F_CONST_IN"], *slot_const, negate)
    mark = len(em.code)
    depth, max_depth = em.depth, em.max_depth
    if not em.fused(c):
        return None
    op, slot, arg = em.code.pop()
    assert len(em.code) == mark
    em.depth, em.max_depth = depth, max_depth
    return (op, slot, arg, negate)


# Tokens of a rule's decision tree (postfix over atoms, RJ_TREE_* in vm.h).
TREE_AND, TREE_OR, TREE_NOT, TREE_EXIT_FALSE, TREE_EXIT_TRUE = -1, -2, -3, -4, -5
MAX_TREE_ATOMS = 32  # RJ_TREE_MAX_ATOMS in vm.h
MAX_TREE_TOKENS = 4 * MAX_TREE_ATOMS  # RJ_TREE_MAX_TOKENS: each `!` adds one


def _tree_of(
    em: _Emitter, cond: Node, atoms: dict[tuple[int, int, int, int], int]
) -> tuple[int, ...] | None:
    """The rule as a postfix tree of atoms under && || !, if it is one.
    The VM evaluates it in three-valued logic (true, false, neither): CEL's
    && and || absorb an error exactly when the other side decides, which
    is Kleene's rule, so a definite result equals the interpreter's and
    "neither" is an error. Top-level conjuncts go likeliest-false first,
    each followed by an exit when the rule is already false (disjuncts:
    when it is already true); inner atoms are all evaluated."""
    names = {v: k for k, v in OP.items()}
    keys: list[tuple[int, int, int, int]] = []

    def walk(c: Node, top: bool) -> list[int] | None:
        if isinstance(c, (And, Or)):
            left, right = walk(c.left, False), walk(c.right, False)
            if left is None or right is None:
                return None
            return left + right + [TREE_AND if isinstance(c, And) else TREE_OR]
        key = _atom_key(em, c)
        if key is not None:
            if key[0] == OP["LOAD"] and not key[3] and top:
                return None  # alone, a non-bool field is a non-match, not an error
            keys.append(key)
            return [-100 - len(keys) + 1]  # placeholder, numbered below
        if isinstance(c, Unary) and c.op == "!":
            inner = walk(c.operand, False)
            return None if inner is None else [*inner, TREE_NOT]
        return None

    def rank(part: list[int]) -> int:
        if len(part) != 1:
            return 3
        key = keys[-100 - part[0]]
        return _ATOM_RANK.get(names[key[0]], 3) + 2 * key[3]

    for parts, join, exit_ in (
        (conjuncts(cond), TREE_AND, TREE_EXIT_FALSE),
        (disjuncts(cond), TREE_OR, TREE_EXIT_TRUE),
    ):
        if len(parts) < 2:
            continue
        trees = [walk(p, False) for p in parts]
        if any(t is None for t in trees):
            return None
        if join == TREE_AND:
            trees.sort(key=lambda t: rank(t or []))  # stable; && commutes under Kleene
        out: list[int] = []
        for i, t in enumerate(trees):
            out += t or []
            if i:
                out.append(join)
            if i < len(trees) - 1:
                out.append(exit_)
        break
    else:
        tree = walk(cond, True)
        if tree is None:
            return None
        out = tree
    if len(keys) > MAX_TREE_ATOMS or len(out) > MAX_TREE_TOKENS:
        return None  # the rule's code runs instead
    return tuple(atoms.setdefault(keys[-100 - t], len(atoms)) if t <= -100 else t for t in out)


def _atoms_of(
    em: _Emitter,
    cond: Node,
    atoms: dict[tuple[int, int, int, int], int],
    guard: tuple[Field, list[Scalar]] | None,
) -> tuple[tuple[int, ...], int]:
    """The rule's atoms and what they decide. If the condition is a
    conjunction (or disjunction) of at most MAX_ATOMS fusable tests, the
    atoms are all of them and decide the rule outright when they are all
    true or false (SHAPE_AND / SHAPE_OR). Otherwise they are necessary
    conjuncts, the guard's first, then likeliest-false first, and a false
    one rules the rule out (SHAPE_GENERAL)."""
    names = {v: k for k, v in OP.items()}

    def index(keys: list[tuple[int, int, int, int]]) -> tuple[int, ...]:
        return tuple(atoms.setdefault(k, len(atoms)) for k in keys)

    for parts, shape in ((conjuncts(cond), SHAPE_AND), (disjuncts(cond), SHAPE_OR)):
        if 1 < len(parts) <= MAX_ATOMS:
            keys = [_atom_key(em, c) for c in parts]
            if all(k is not None for k in keys):
                return index([k for k in keys if k is not None]), shape
    found: list[tuple[int, tuple[int, int, int, int]]] = []
    for c in conjuncts(cond):
        key = _atom_key(em, c)
        if key is None:
            continue
        # The guard's conjunct goes first: where its field has a table of
        # cells, the VM drops the hash guard once every guarded rule carries
        # the conjunct among its atoms (the cells' rule bits do its job).
        is_guard = guard is not None and guard_of(c) == guard
        found.append((-1 if is_guard else _ATOM_RANK.get(names[key[0]], 3) + 2 * key[3], key))
    found.sort(key=lambda rk: rk[0])
    return index([k for _, k in found[:MAX_ATOMS]]), SHAPE_GENERAL


def disjuncts(n: Node) -> list[Node]:
    """The top-level || chain of a condition, left to right."""
    if isinstance(n, Or):
        return disjuncts(n.left) + disjuncts(n.right)
    return [n]


def conjuncts(n: Node) -> list[Node]:
    """The top-level && chain of a condition, left to right."""
    if isinstance(n, And):
        return conjuncts(n.left) + conjuncts(n.right)
    return [n]


def guard_of(n: Node) -> tuple[Field, list[Scalar]] | None:
    """A conjunct that pins a field to literal values, if there is one."""
    for c in conjuncts(n):
        if isinstance(c, Binary) and c.op == "==":
            if isinstance(c.left, Field) and isinstance(c.right, Literal):
                return c.left, [c.right.value]
            if isinstance(c.right, Field) and isinstance(c.left, Literal):
                return c.right, [c.left.value]
        if (
            isinstance(c, Binary)
            and c.op == "in"
            and isinstance(c.left, Field)
            and isinstance(c.right, ListLit)
            and all(isinstance(i, Literal) for i in c.right.items)
        ):
            return c.left, [i.value for i in c.right.items]  # type: ignore[attr-defined]
    return None


GUARD_IN, GUARD_NOT_FALSE, GUARD_SUFFIX = 0, 1, 2  # as RJ_GUARD_* in vm.h
MAX_GUARDS = 4  # RJ_MAX_GUARDS

Guard = tuple[Field, list[Scalar], int]  # field, constants, GUARD_*


def suffix_guard_of(n: Node) -> Guard | None:
    """A conjunct ``field.endsWith("literal")``, if there is one: the rule
    can hold only where the field is a string with that ending (or is not
    a string: then its error counts)."""
    for c in conjuncts(n):
        if (
            isinstance(c, Call)
            and c.name == "endsWith"
            and isinstance(c.target, Field)
            and len(c.args) == 1
            and isinstance(c.args[0], Literal)
            and isinstance(c.args[0].value, str)
        ):
            return c.target, [c.args[0].value], GUARD_SUFFIX
    return None


def rule_guard_of(n: Node) -> Guard | None:
    """The guard a conjunction can carry: a field pinned to constants
    (guard_of) first, else a field that must end with a constant."""
    pinned = guard_of(n)
    return (pinned[0], pinned[1], GUARD_IN) if pinned is not None else suffix_guard_of(n)


def guards_of(n: Node) -> list[Guard] | None:
    """The guards a rule can carry: its conjunct guard, or one per
    disjunct of a top-level ``||`` (a conjunct guard of the disjunct, or a
    bare field, GUARD_NOT_FALSE: false unless it holds exactly false). None
    if any disjunct has neither."""
    one = rule_guard_of(n)
    if one is not None:
        return [one]
    parts = disjuncts(n)
    if len(parts) < 2 or len(parts) > MAX_GUARDS:
        return None
    out: list[Guard] = []
    for d in parts:
        g = rule_guard_of(d)
        if g is not None:
            out.append(g)
        elif isinstance(d, Field):
            out.append((d, [], GUARD_NOT_FALSE))
        else:
            return None
    return out


@dataclass
class CompiledRules:
    fields: list[Field]
    pathset: PathSet
    program: Program
    consts: list[object]
    code: list[tuple[int, int, int]]
    shapes: list[int]  # per rule: SHAPE_*, how the VM decides it


def compile_rules(
    conditions: list[Node], texts: list[str], stops: list[bool], *, use_guards: bool = True
) -> CompiledRules:
    """One native program for conditions (in evaluation order). Raises
    ExprError for what the native VM does not support."""
    from .expr import fields as fields_of

    distinct: dict[tuple[object, ...], Field] = {}
    for cond in conditions:
        for f in fields_of(cond):
            distinct.setdefault(f.steps, f)
    field_list = list(distinct.values())
    pathset = PathSet([f.path for f in field_list])
    slots = pathset._native.path_slots
    slot_of = {f.steps: slots[i] for i, f in enumerate(field_list)}

    rules: list[tuple[int, int, GuardSpecs, tuple[int, ...], int, tuple[int, ...]]] = []
    atoms: dict[tuple[int, int, int, int], int] = {}
    em = _Emitter(text="", slot_of=slot_of)
    for cond, text, stop in zip(conditions, texts, stops, strict=True):
        em.text = text
        entry = len(em.code)
        em.depth = 0
        em.node(cond)
        em.emit("RET")
        guard = guard_of(cond) if use_guards else None
        tree: tuple[int, ...] = ()
        pre, shape = _atoms_of(em, cond, atoms, guard) if use_guards else ((), SHAPE_GENERAL)
        if shape == SHAPE_GENERAL and use_guards:  # instead of running its code
            as_tree = _tree_of(em, cond, atoms)
            if as_tree is not None and len(as_tree) == 1:
                pre, shape = as_tree, SHAPE_AND  # one atom: a conjunction of one
            elif as_tree is not None:
                pre, shape, tree = (), SHAPE_TREE, as_tree
        specs: list[tuple[int, int, int, int]] = []
        for g_field, values, kind in (guards_of(cond) or []) if use_guards else []:
            specs.append((slot_of[g_field.steps], len(em.consts), len(values), kind))
            em.consts.extend(values)
        rules.append((entry, int(stop), tuple(specs), pre, shape, tree))
    code = b"".join(struct.pack("<HHi", op, slot, arg) for op, slot, arg in em.code)
    try:
        program = Program(
            pathset._native, code, em.consts, rules, em.regexes, em.max_depth + 1, list(atoms)
        )
    except ValueError as e:  # regcomp() refused a translated pattern: say where
        for (regex, _), (text, pos) in zip(em.regexes, em.regex_at, strict=True):
            if str(e).startswith(f"regex {regex}: "):
                raise ExprError(f"unsupported in matches(): {e}", text, pos) from None
        raise
    shapes = [r[4] for r in rules]
    return CompiledRules(field_list, pathset, program, em.consts, em.code, shapes)


__all__ = [
    "OP",
    "OPCODES",
    "CompiledRules",
    "compile_rules",
    "guard_of",
    "guards_of",
    "translate_regex",
]
