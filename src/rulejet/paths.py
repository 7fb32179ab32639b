"""Compiled JSON paths, matched on raw JSON bytes by the SIMD scanner.

``Path`` parses one expression: JSONPath dot and bracket notation
(``$.user.profile.name``, ``$['odd key'].x``, ``$.tags[0]``), the same
without the leading ``$.`` (``user.profile.name``), or an RFC 6901 JSON
Pointer (``/user/profile/name``). ``PathSet`` compiles many into one trie
and extracts them all in a single pass over a document; subtrees no path
enters are skipped without being decoded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple

from . import _native
from ._native import RawJSON
from ._sentinel import MISSING, Missing
from .errors import JSONError, PathError

if TYPE_CHECKING:
    from typing_extensions import Buffer

Step = str | int | tuple[str, int]
"""A key, an array index, or (for JSON Pointer digit tokens) either."""

_POINTER_INDEX = re.compile(r"0|[1-9][0-9]*")
_NAME_STOP = set(".[]'\"*") | {" ", "\t", "\n", "\r"}
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "/": "/", "b": "\b", "f": "\f", "n": "\n",
            "r": "\r", "t": "\t"}  # fmt: skip


def _error(expr: str, pos: int, message: str) -> PathError:
    caret = " " * (pos + 2) + "^"
    return PathError(f"{message} in path\n  {expr}\n{caret}", column=pos + 1)


def _parse_pointer(expr: str) -> tuple[Step, ...]:
    steps: list[Step] = []
    pos = 1
    for token in expr[1:].split("/"):
        i = token.find("~")
        while i != -1:
            if token[i + 1 : i + 2] not in ("0", "1"):
                raise _error(expr, pos + i, "'~' must be followed by 0 or 1")
            i = token.find("~", i + 2)
        key = token.replace("~1", "/").replace("~0", "~")
        # A digit token is a key, and an index too when it fits one (u64).
        is_index = _POINTER_INDEX.fullmatch(key) and int(key) < 1 << 64
        steps.append((key, int(key)) if is_index else key)
        pos += len(token) + 1
    return tuple(steps)


def _parse_quoted(expr: str, pos: int) -> tuple[str, int]:
    """Parse a quoted key starting at expr[pos] (the quote); return (key, next pos)."""
    quote = expr[pos]
    out: list[str] = []
    i = pos + 1
    while i < len(expr):
        ch = expr[i]
        if ch == quote:
            # \ud83d\ude00 spells one code point; pair surrogates as JSON does.
            key = "".join(out).encode("utf-16-le", "surrogatepass")
            return key.decode("utf-16-le", "surrogatepass"), i + 1
        if ch == "\\":
            nxt = expr[i + 1 : i + 2]
            if nxt == "u":
                digits = expr[i + 2 : i + 6]
                if not re.fullmatch(r"[0-9a-fA-F]{4}", digits):
                    raise _error(expr, i, "invalid \\u escape")
                out.append(chr(int(digits, 16)))
                i += 6
                continue
            if nxt not in _ESCAPES:
                raise _error(expr, i, "invalid escape")
            out.append(_ESCAPES[nxt])
            i += 2
            continue
        out.append(ch)
        i += 1
    raise _error(expr, pos, "unterminated quoted key")


def _parse_bracket(expr: str, pos: int) -> tuple[Step, int]:
    """Parse ``[...]`` starting at expr[pos] == '['; return (step, next pos)."""
    i = pos + 1
    if i < len(expr) and expr[i] in "'\"":
        key, i = _parse_quoted(expr, i)
        step: Step = key
    else:
        m = re.compile(r"-?[0-9]+").match(expr, i)
        if m is None:
            if expr[i : i + 1] == "*":
                raise _error(expr, i, "wildcards are not supported")
            raise _error(expr, i, "expected a quoted key or an array index")
        text = m.group()
        if text.startswith("-"):
            raise _error(expr, i, "negative array indexes are not supported")
        if len(text) > 1 and text.startswith("0"):
            raise _error(expr, i, "array index with a leading zero")
        step = int(text)
        if step >= 1 << 64:
            raise _error(expr, i, "array index too large")
        i = m.end()
    if expr[i : i + 1] != "]":
        raise _error(expr, i, "expected ']'")
    return step, i + 1


def _parse_name(expr: str, pos: int) -> tuple[str, int]:
    i = pos
    while i < len(expr) and expr[i] not in _NAME_STOP:
        i += 1
    if i == pos:
        if expr[pos : pos + 1] == "*":
            raise _error(expr, pos, "wildcards are not supported")
        if expr[pos : pos + 1] == ".":
            raise _error(expr, pos, "recursive descent '..' is not supported")
        raise _error(expr, pos, "expected a field name")
    return expr[pos:i], i


def _parse_jsonpath(expr: str) -> tuple[Step, ...]:
    steps: list[Step] = []
    pos = 0
    if expr.startswith("$"):
        pos = 1
    elif expr and expr[0] != "[":
        name, pos = _parse_name(expr, 0)
        steps.append(name)
    while pos < len(expr):
        ch = expr[pos]
        if ch == ".":
            name, pos = _parse_name(expr, pos + 1)
            steps.append(name)
        elif ch == "[":
            step, pos = _parse_bracket(expr, pos)
            steps.append(step)
        else:
            raise _error(expr, pos, f"unexpected {ch!r}; expected '.' or '['")
    return tuple(steps)


def parse_path(expr: str) -> tuple[Step, ...]:
    """The steps of a path expression. Raises PathError (a ValueError with
    ``column``) if it does not parse, TypeError if it is not a str."""
    if not isinstance(expr, str):
        raise TypeError(f"a path is a str, not {type(expr).__name__}")
    if expr.startswith("/") or expr == "":
        return _parse_pointer(expr) if expr else ()
    return _parse_jsonpath(expr)


class Path:
    """One compiled path expression. Raises PathError for bad syntax."""

    __slots__ = ("expr", "steps")

    def __init__(self, expr: str) -> None:
        self.expr = expr
        self.steps = parse_path(expr)

    def __repr__(self) -> str:
        return f"Path({self.expr!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Path) and other.steps == self.steps

    def __hash__(self) -> int:
        return hash(self.steps)


class LineError(NamedTuple):
    """A malformed line of an NDJSON buffer (line and column 1-based)."""

    line: int
    offset: int
    column: int
    message: str


class ExtractResult(NamedTuple):
    """``columns[i][j]``: path i's value on line j (MISSING where absent,
    on blank lines and on malformed lines, which are listed in ``errors``);
    ``present[i]``: how many lines have path i (counted natively)."""

    columns: list[list[object]]
    errors: list[LineError]
    lines: int
    blank_lines: int
    present: list[int]


class ScanSummary(NamedTuple):
    """What the native loop saw, without building Python values."""

    lines: int
    errors: int
    blank_lines: int
    present: list[int]


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def encode_json_text(text: str) -> bytes:
    """JSON text as UTF-8. A lone surrogate (which json.loads accepts in a
    str) has no UTF-8 form; in valid JSON it can only sit inside a string,
    where the escape ``\\udXXX`` means the same, so it is written so.
    Unless it meets another surrogate (a high one before a low one, raw or
    escaped): as escapes they would mean one character where json.loads
    sees two, and no bytes say what the str does, so that is a JSONError."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        escape = lambda m: f"\\u{ord(m.group()):04x}"  # noqa: E731
        escaped = _LONE_SURROGATE.sub(escape, text)
        try:
            same = repr(json.loads(text)) == repr(json.loads(escaped))
        except ValueError:
            same = True  # malformed either way: the native parser says where
        if not same:
            at = _LONE_SURROGATE.search(text).start()  # type: ignore[union-attr]
            raise JSONError(
                "a surrogate code point next to another surrogate in a str has no"
                " JSON bytes (pass the combined character, or bytes with \\u escapes)",
                offset=len(_LONE_SURROGATE.sub(escape, text[:at]).encode("utf-8")),
                line=text.count("\n", 0, at) + 1,
                column=at - (text.rfind("\n", 0, at) + 1) + 1,
            ) from None
        return escaped.encode("utf-8")


def _native_step(step: Step) -> Step | bytes:
    """A key with a lone surrogate (from a \\u escape) goes to the native
    side as the bytes documents unescape it to (WTF-8): str keys must be
    UTF-8."""
    if isinstance(step, str) and _LONE_SURROGATE.search(step):
        return step.encode("utf-8", "surrogatepass")
    return step


def _as_buffer(doc: Buffer | str) -> Buffer:
    return encode_json_text(doc) if isinstance(doc, str) else doc


class PathSet:
    """Many paths compiled into one trie, extracted in one pass per document.

    Values come out as ``json.loads`` would give them: str, int (any size),
    float (correctly rounded), True/False/None; objects and arrays as
    ``RawJSON`` (zero-copy views of their text; ``bytes(v)``, ``v.decode()``);
    ``MISSING`` where a document lacks the path. With duplicate keys the
    last one wins. Raises PathError for a bad expression.
    """

    __slots__ = ("_native", "paths")

    def __init__(self, paths: Iterable[str | Path]) -> None:
        self.paths = [p if isinstance(p, Path) else Path(p) for p in paths]
        self._native = _native.PathSet([[_native_step(s) for s in p.steps] for p in self.paths])

    def __len__(self) -> int:
        return len(self.paths)

    def __repr__(self) -> str:
        return f"PathSet({[p.expr for p in self.paths]!r})"

    def extract(self, doc: Buffer | str, *, validate: bool = False) -> list[object]:
        """One value per path from one JSON document (bytes-like or str).

        The scan validates everything it traverses; skipped subtrees are
        only checked for balanced brackets and closed strings, unless
        ``validate=True`` checks the whole document first (RFC 8259).
        Raises JSONError (a ValueError with offset, line, column).
        """
        return self._native.extract(_as_buffer(doc), validate=validate)

    def extract_lines(self, buffer: Buffer) -> ExtractResult:
        """Extract every line of an NDJSON buffer (bytes, mmap, a MappedFile
        lease...), with the GIL released while scanning. Malformed lines are
        reported in ``errors`` and the run goes on."""
        columns, errors, lines, blank, present = self._native.extract_lines(buffer)
        return ExtractResult(columns, [LineError(*e) for e in errors], lines, blank, present)

    def scan_lines(self, buffer: Buffer) -> ScanSummary:
        """Run the native NDJSON loop only: values stay in native memory and
        are counted, not converted (what the rule engine builds on)."""
        lines, errors, blank, present = self._native.scan_lines(buffer)
        return ScanSummary(lines, errors, blank, present)


def validate(doc: Buffer | str) -> None:
    """Check a whole document against RFC 8259 (strict UTF-8, no NaN or
    Infinity, nesting up to 1024 levels). Raises JSONError."""
    _native.validate(_as_buffer(doc))


__all__ = [
    "MISSING",
    "ExtractResult",
    "LineError",
    "Missing",
    "Path",
    "PathSet",
    "RawJSON",
    "ScanSummary",
    "Step",
    "parse_path",
    "validate",
]
