"""The rule condition language: a CEL-style expression parser.

    user.age > 18 && user.profile.country == "US"
    event in ["login", "password_reset"] && has(flags.mfa) && !flags.mfa
    http.path.startsWith("/api/") || $.http.method == "POST"

Grammar (lowest to highest precedence): ``c ? a : b``; ``||``; ``&&``;
``== != < <= > >= in``; ``+ -``; ``* / %``; unary ``! -``; postfix
``.name``, ``[literal]``, ``.method(args)``. Literals: integers, floats,
strings (double or single quotes; escapes ``\\n \\t \\r \\\\ \\" \\'``, ``\\ooo``
octal, ``\\xHH \\XHH \\uXXXX \\UXXXXXXXX``),
``true false null``, lists ``[a, b]``. Fields are dotted paths from the
event root, brackets for odd keys and indexes (``user["odd key"]``,
``tags[0]``), or JSONPath after ``$``. Functions: ``has(field)``,
``size(x)``, ``int(x)``, ``double(x)``, ``string(x)``; methods
``startsWith endsWith contains matches lowerAscii size``.

The parser is pure Python (compile time only); it produces the AST below,
which the reference evaluator (_ref/cel.py) and the native compiler share.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from .errors import InputError

Step = str | int


class ExprError(InputError):
    """A condition that does not parse or type-check; ``column`` (1-based)
    and ``offset`` (0-based) point into the expression text."""

    def __init__(self, message: str, text: str, offset: int) -> None:
        self.text = text
        self.message = message
        super().__init__(message, offset=offset, column=offset + 1)

    def __str__(self) -> str:
        return (
            f"{self.message} at column {self.column}\n  {self.text}\n  {' ' * (self.offset or 0)}^"
        )


# ---- AST ----


@dataclass(frozen=True)
class Node:
    pos: int  # offset of the node's first character in the expression


@dataclass(frozen=True)
class Literal(Node):
    value: bool | int | float | str | None


@dataclass(frozen=True)
class ListLit(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Field(Node):
    steps: tuple[Step, ...]

    @property
    def path(self) -> str:
        """The JSONPath spelling (what PathSet compiles)."""
        out = "$"
        for s in self.steps:
            out += f"[{s}]" if isinstance(s, int) else "[" + _quote(s) + "]"
        return out


@dataclass(frozen=True)
class Has(Node):
    field: Field


@dataclass(frozen=True)
class Unary(Node):
    op: str  # "!" or "-"
    operand: Node


@dataclass(frozen=True)
class Binary(Node):
    op: str  # == != < <= > >= + - * / % in
    left: Node
    right: Node


@dataclass(frozen=True)
class And(Node):
    left: Node
    right: Node


@dataclass(frozen=True)
class Or(Node):
    left: Node
    right: Node


@dataclass(frozen=True)
class Cond(Node):
    test: Node
    then: Node
    orelse: Node


@dataclass(frozen=True)
class Call(Node):
    name: str
    target: Node | None  # the receiver of a method call
    args: tuple[Node, ...]


# An internal function with no surface syntax (the parser never makes it):
# @istype(field, mask) is true when the field's value is of a type whose bit is
# set in mask (TYPE_BITS, in the order of enum rj_vtype; absent included), never
# an error. JSONLogic rules compiled to the VM test types with it.
ISTYPE = "@istype"
TYPE_BITS = {"missing": 1, "null": 2, "false": 4, "true": 8, "int": 16, "bigint": 32,
             "double": 64, "string": 128, "object": 256, "array": 512}  # fmt: skip
METHODS = {"startsWith": 1, "endsWith": 1, "contains": 1, "matches": 1, "lowerAscii": 0, "size": 0}
FUNCTIONS = {"size": 1, "int": 1, "double": 1, "string": 1}
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ---- Lexer ----

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<float>(?:[0-9]+\.[0-9]+(?:[eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+))
  | (?P<int>0[xX][0-9a-fA-F]+|[0-9]+)
  | (?P<str>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|&&|\|\||[<>!+\-*/%()\[\],.?:$])
    """,
    re.VERBOSE,
)
_ESC = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "/": "/",
        "b": "\b", "f": "\f", "a": "\a", "v": "\v", "`": "`", "?": "?"}  # fmt: skip
_HEX_WIDTH = {"u": 4, "x": 2, "X": 2, "U": 8}


@dataclass
class Token:
    kind: str  # float int str ident op end
    text: str
    pos: int
    value: object = None


def _unescape(body: str, text: str, start: int) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in "0123":
            # CEL's only octal form is three digits, \000-\377 (so a lone
            # \0 is refused rather than read as NUL before more digits).
            digits = body[i + 1 : i + 4]
            if not re.fullmatch("[0-3][0-7]{2}", digits):
                raise ExprError("invalid octal escape (needs \\000-\\377)", text, start + i)
            out.append(chr(int(digits, 8)))
            i += 4
        elif nxt in _HEX_WIDTH:
            width = _HEX_WIDTH[nxt]
            digits = body[i + 2 : i + 2 + width]
            if not re.fullmatch(f"[0-9a-fA-F]{{{width}}}", digits):
                raise ExprError(f"invalid \\{nxt} escape", text, start + i)
            code = int(digits, 16)
            if code > 0x10FFFF:
                raise ExprError("escape beyond U+10FFFF", text, start + i)
            out.append(chr(code))
            i += 2 + width
        elif nxt in _ESC:
            out.append(_ESC[nxt])
            i += 2
        else:
            raise ExprError(f"invalid escape \\{nxt}", text, start + i)
    # A \ud83d\ude00 pair spells one code point.
    joined = "".join(out)
    return joined.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ExprError(f"unexpected character {text[pos]!r}", text, pos)
        kind = m.lastgroup or ""
        tok = m.group()
        if kind == "ws":
            pass
        elif kind == "int":
            value = int(tok, 16) if tok[:2].lower() == "0x" else int(tok)
            if value > INT64_MAX + 1:  # +1: "-9223372036854775808" negates later
                raise ExprError("integer literal out of 64-bit range", text, pos)
            tokens.append(Token("int", tok, pos, value))
        elif kind == "float":
            tokens.append(Token("float", tok, pos, float(tok)))
        elif kind == "str":
            tokens.append(Token("str", tok, pos, _unescape(tok[1:-1], text, pos + 1)))
        else:
            tokens.append(Token(kind, tok, pos))
        pos = m.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


# ---- Parser ----

_RELATIONS = {"==", "!=", "<", "<=", ">", ">="}


MAX_NESTING = 64  # parentheses, lists, calls and prefix operators inside each other
MAX_DEPTH = 128  # of the syntax tree, whose walks (compiler, reference) recurse


def _balanced(make: type[And] | type[Or], items: list[Node]) -> Node:
    """A chain of && (or ||) as a balanced tree: the same value (both are
    associative, errors included), but a 5,000-term chain is 13 levels
    deep, not 5,000, for every recursive walk."""
    if len(items) == 1:
        return items[0]
    mid = len(items) // 2
    return make(items[0].pos, _balanced(make, items[:mid]), _balanced(make, items[mid:]))


def _depth(root: Node) -> tuple[int, Node]:
    """The tree's depth and its deepest node, without recursion."""
    deepest, at = 0, root
    stack = [(root, 1)]
    while stack:
        n, d = stack.pop()
        if d > deepest:
            deepest, at = d, n
        stack.extend((c, d + 1) for c in children(n))
    return deepest, at


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.nesting = 0

    def nested(self, tok: Token, parse: Callable[[], Node]) -> Node:
        """parse() one level deeper (tok opened the level)."""
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            raise self.error(f"nested more than {MAX_NESTING} levels deep", tok)
        node = parse()
        self.nesting -= 1
        return node

    def peek(self) -> Token:
        return self.tokens[self.i]

    def next(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def error(self, message: str, tok: Token | None = None) -> ExprError:
        tok = tok or self.peek()
        return ExprError(message, self.text, tok.pos)

    def expect(self, text: str) -> Token:
        tok = self.peek()
        if tok.kind == "op" and tok.text == text:
            return self.next()
        found = "end of expression" if tok.kind == "end" else repr(tok.text)
        raise self.error(f"expected {text!r}, found {found}")

    def at(self, *texts: str) -> bool:
        tok = self.peek()
        return (tok.kind == "op" or tok.kind == "ident") and tok.text in texts

    def parse(self) -> Node:
        node = self.conditional()
        if self.peek().kind != "end":
            raise self.error(f"unexpected {self.peek().text!r}")
        depth, at = _depth(node)
        if depth > MAX_DEPTH:
            raise ExprError(f"expression more than {MAX_DEPTH} levels deep", self.text, at.pos)
        return node

    def conditional(self) -> Node:
        test = self.or_()
        if self.at("?"):
            self.next()
            then = self.conditional()
            self.expect(":")
            orelse = self.conditional()
            return Cond(test.pos, test, then, orelse)
        return test

    def or_(self) -> Node:
        items = [self.and_()]
        while self.at("||"):
            self.next()
            items.append(self.and_())
        return _balanced(Or, items)

    def and_(self) -> Node:
        items = [self.relation()]
        while self.at("&&"):
            self.next()
            items.append(self.relation())
        return _balanced(And, items)

    def relation(self) -> Node:
        node = self.additive()
        while self.at(*_RELATIONS) or self.at("in"):
            op = self.next().text
            node = Binary(node.pos, op, node, self.additive())
        return node

    def additive(self) -> Node:
        node = self.multiplicative()
        while self.at("+", "-"):
            op = self.next().text
            node = Binary(node.pos, op, node, self.multiplicative())
        return node

    def multiplicative(self) -> Node:
        node = self.unary()
        while self.at("*", "/", "%"):
            op = self.next().text
            node = Binary(node.pos, op, node, self.unary())
        return node

    def unary(self) -> Node:
        if self.at("!", "-"):
            return self.nested(self.peek(), self.signed)
        return self.postfix()

    def signed(self) -> Node:
        if self.at("!"):
            tok = self.next()
            return Unary(tok.pos, "!", self.unary())
        if self.at("-"):
            tok = self.next()
            nxt = self.peek()
            if nxt.kind == "int" and nxt.value == INT64_MAX + 1:
                # "-9223372036854775808": the only literal whose magnitude
                # is beyond int64 (primary() would reject it unsigned).
                self.next()
                return self.postfix(Literal(tok.pos, INT64_MIN))
            operand = self.unary()
            if isinstance(operand, Literal) and type(operand.value) in (int, float):
                value = -operand.value  # type: ignore[operator]
                if type(value) is float or INT64_MIN <= value <= INT64_MAX:
                    return Literal(tok.pos, value)
            return Unary(tok.pos, "-", operand)
        return self.postfix()

    def postfix(self, node: Node | None = None) -> Node:
        node = self.primary() if node is None else node
        while True:
            if self.at("."):
                self.next()
                name_tok = self.next()
                if name_tok.kind != "ident":
                    raise self.error("expected a field or method name", name_tok)
                if self.at("("):
                    node = self.method(node, name_tok)
                elif isinstance(node, Field):
                    node = Field(node.pos, (*node.steps, name_tok.text))
                else:
                    raise self.error("fields can only be read from the event", name_tok)
            elif self.at("["):
                open_tok = self.next()
                key = self.next()
                if key.kind == "int" and isinstance(key.value, int) and key.value <= INT64_MAX:
                    step: Step = key.value
                elif key.kind == "str" and isinstance(key.value, str):
                    step = key.value
                else:
                    raise self.error("an index must be a string or integer literal", key)
                self.expect("]")
                if not isinstance(node, Field):
                    raise self.error("only event fields can be indexed", open_tok)
                node = Field(node.pos, (*node.steps, step))
            else:
                return node

    def method(self, target: Node, name_tok: Token) -> Node:
        name = name_tok.text
        if name not in METHODS:
            raise self.error(f"unknown method {name!r}", name_tok)
        args = self.arguments()
        if len(args) != METHODS[name]:
            raise self.error(f"{name}() takes {METHODS[name]} argument(s)", name_tok)
        if name == "matches":
            _check_regex(args[0], self.text)
        return Call(target.pos, name, target, tuple(args))

    def arguments(self) -> list[Node]:
        self.expect("(")
        args: list[Node] = []
        if not self.at(")"):
            args.append(self.conditional())
            while self.at(","):
                self.next()
                args.append(self.conditional())
        self.expect(")")
        return args

    def primary(self) -> Node:
        tok = self.next()
        if tok.kind in ("int", "float", "str"):
            if tok.kind == "int" and isinstance(tok.value, int) and tok.value > INT64_MAX:
                raise self.error("integer literal out of 64-bit range", tok)
            return Literal(tok.pos, tok.value)  # type: ignore[arg-type]
        if tok.kind == "op" and tok.text in ("(", "["):
            return self.nested(tok, lambda: self.group(tok))
        if tok.kind == "op" and tok.text == "$":
            return Field(tok.pos, ())
        if tok.kind == "ident":
            if tok.text in ("true", "false"):
                return Literal(tok.pos, tok.text == "true")
            if tok.text == "null":
                return Literal(tok.pos, None)
            if tok.text == "in":
                raise self.error("unexpected 'in'", tok)
            if self.at("("):
                return self.nested(tok, lambda: self.function(tok))
            return Field(tok.pos, (tok.text,))
        found = "end of expression" if tok.kind == "end" else repr(tok.text)
        raise self.error(f"expected a value, found {found}", tok)

    def group(self, tok: Token) -> Node:
        """A parenthesized expression or a list literal (tok opened it)."""
        if tok.text == "(":
            node = self.conditional()
            self.expect(")")
            return node
        items: list[Node] = []
        if not self.at("]"):
            items.append(self.conditional())
            while self.at(","):
                self.next()
                if self.at("]"):
                    break
                items.append(self.conditional())
        self.expect("]")
        return ListLit(tok.pos, tuple(items))

    def function(self, tok: Token) -> Node:
        name = tok.text
        if name == "has":
            self.expect("(")
            arg = self.conditional()
            self.expect(")")
            if not isinstance(arg, Field) or not arg.steps:
                raise self.error("has() takes a field, like has(user.email)", tok)
            return Has(tok.pos, arg)
        if name not in FUNCTIONS:
            raise self.error(f"unknown function {name!r}", tok)
        args = self.arguments()
        if len(args) != FUNCTIONS[name]:
            raise self.error(f"{name}() takes {FUNCTIONS[name]} argument(s)", tok)
        return Call(tok.pos, name, None, tuple(args))


def _check_regex(arg: Node, text: str) -> None:
    if not isinstance(arg, Literal) or not isinstance(arg.value, str):
        raise ExprError("matches() takes a string literal pattern", text, arg.pos)
    try:
        re.compile(arg.value, re.ASCII)  # as _ref/cel.py evaluates it
    except re.error as e:
        raise ExprError(f"invalid regular expression: {e}", text, arg.pos) from None


def parse_expr(text: str) -> Node:
    """Parse a condition. Raises ExprError (a ValueError with column)."""
    if not isinstance(text, str):
        raise TypeError(f"a condition is a str, not {type(text).__name__}")
    return _Parser(text).parse()


def fields(node: Node) -> list[Field]:
    """Every field a condition reads, in order of appearance."""
    out: list[Field] = []

    def visit(n: Node) -> None:
        if isinstance(n, Field):
            out.append(n)
        elif isinstance(n, Has):
            out.append(n.field)
        for child in children(n):
            visit(child)

    visit(node)
    return out


def children(n: Node) -> tuple[Node, ...]:
    if isinstance(n, ListLit):
        return n.items
    if isinstance(n, Unary):
        return (n.operand,)
    if isinstance(n, (Binary, And, Or)):
        return (n.left, n.right)
    if isinstance(n, Cond):
        return (n.test, n.then, n.orelse)
    if isinstance(n, Call):
        return ((n.target,) if n.target is not None else ()) + n.args
    return ()
