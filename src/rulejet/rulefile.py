"""Rule files: YAML or JSON with a ``rules:`` list, checked whole.

    sinks:                      # optional: where route actions write
      alerts: {path: alerts.ndjson}
      console: {stdout: true}
      durable: {log: matches.log}  # a durable log directory (rulejet.Log)
    rules:
      - name: adult-us
        when: 'user.age >= 18 && user.profile.country == "US"'
        then: [count, {tag: adults}, {route: alerts}, stop]
        priority: 10            # higher runs first; ties keep file order
        tags: [demo]
        enabled: true
      - name: from-jsonlogic
        when_jsonlogic: {">": [{"var": "http.status"}, 499]}

Every problem in a file is collected before anything runs: each comes
with its file, line and column and, for conditions, the offending source
line with a caret under the spot.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import InputError
from .expr import ExprError

RULE_KEYS = {"name", "when", "when_jsonlogic", "then", "priority", "tags", "enabled"}
BUILTIN_ACTIONS = {"count", "stop"}


def is_builtin_action(action: Any) -> bool:
    """``count``, ``stop``, ``{tag: NAME}`` or ``{route: NAME}``."""
    return (isinstance(action, str) and action in BUILTIN_ACTIONS) or (
        isinstance(action, dict)
        and len(action) == 1
        and next(iter(action)) in ("tag", "route")
        and isinstance(next(iter(action.values())), str)
    )


@dataclass
class Problem:
    file: str
    line: int  # 1-based; 0 when unknown
    column: int
    message: str
    source: str = ""  # the source line, for the caret
    caret: int = 0  # 0-based position of the caret in source

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        text = f"{where}: error: {self.message}"
        if self.source:
            text += f"\n  {self.source}\n  {' ' * self.caret}^"
        return text


class RuleFileError(InputError):
    """A rule file with problems; ``problems`` lists every one of them."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        first = problems[0]
        super().__init__(
            "\n".join(str(p) for p in problems), line=first.line or None, column=first.column
        )

    def __str__(self) -> str:
        return self.args[0]  # type: ignore[no-any-return]


@dataclass
class RuleSpec:
    """One rule as written in a file (before compilation)."""

    name: str
    when: str | None
    when_jsonlogic: Any
    then: list[str | dict[str, str]]
    priority: int
    tags: list[str]
    enabled: bool
    line: int
    column: int


@dataclass
class RuleFile:
    path: str
    rules: list[RuleSpec]
    sinks: dict[str, dict[str, Any]] = field(default_factory=dict)


# JSON numbers that YAML 1.1 reads as strings: an exponent without a dot or
# without a sign (1e3, 1.5e3, 1E+3).
_JSON_NUMBER_TAG = "tag:rulejet,2026:json-number"
_JSON_NUMBER_RE = re.compile(r"^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?[eE][-+]?[0-9]+$")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


class _JsonNumber(str):
    """A plain scalar spelled as a JSON number that YAML 1.1 calls a string:
    a number inside when_jsonlogic (as in a .json rule file), a string
    everywhere else (names, tags and routes such as 123e4567 stay as they
    were)."""


class _RuleLoader(yaml.SafeLoader):
    """SafeLoader reading JSONLogic numbers and escapes as JSON does, so that a
    rule means the same in a .yaml and a .json file. Its own resolver and
    constructor tables: yaml's global state and other SafeLoader users are
    untouched."""

    json_numbers = 0

    def construct_yaml_str(self, node: yaml.Node) -> str:
        text = super().construct_yaml_str(node)
        if not _SURROGATE_RE.search(text):
            return text
        # YAML decodes "\ud83d\ude00" as two lone surrogates, JSON as one character: join
        # the pairs; a lone surrogate stays as it is, as in JSON.
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")

    def construct_json_number(self, node: yaml.Node) -> str:
        self.json_numbers += 1
        return _JsonNumber(self.construct_scalar(node))  # type: ignore[arg-type]


_RuleLoader.add_constructor("tag:yaml.org,2002:str", _RuleLoader.construct_yaml_str)
_RuleLoader.add_constructor(_JSON_NUMBER_TAG, _RuleLoader.construct_json_number)
# Tried after YAML's own resolvers, so it only takes what they leave as strings.
_RuleLoader.add_implicit_resolver(_JSON_NUMBER_TAG, _JSON_NUMBER_RE, list("-0123456789"))


def _settle_json_numbers(data: Any) -> Any:
    """_JsonNumber values as floats inside when_jsonlogic, plain strings
    elsewhere (walked with a stack: rule files may nest deeply)."""
    root = [data]
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        container, numbers = stack.pop()
        items = container.items() if isinstance(container, dict) else enumerate(container)
        for key, value in list(items):
            if isinstance(value, _JsonNumber):
                container[key] = float(value) if numbers else str(value)
            elif isinstance(value, (dict, list)):
                inner = numbers or (key == "when_jsonlogic" and isinstance(container, dict))
                stack.append((value, inner))
    return root[0]


@dataclass
class _Pos:
    line: int
    column: int
    style: str | None = None  # YAML scalar style (None: plain, ' " | >); '"' for a JSON string


# Where each rule and its keys' values start: {None: the rule, key: that key's value}.
RulePositions = list[dict[str | None, _Pos]]
# Where top-level keys, (key,), and sink names, ("sinks", name), are written.
KeyPositions = dict[tuple[Any, ...], _Pos]

# JSON tokens: a string, a number or literal, or one structural character.
_JSON_TOKEN_RE = re.compile(r'"(?:[^"\\]|\\.)*"|[^\s{}\[\]:,"]+|\S')


def _yaml_rule_positions(root: yaml.Node | None) -> tuple[RulePositions, KeyPositions]:
    """Rule and key positions from the YAML node tree; a duplicate key's last value counts,
    as it does for the loaded data."""

    def pos(node: yaml.Node) -> _Pos:
        style = node.style if isinstance(node, yaml.ScalarNode) else None
        return _Pos(node.start_mark.line + 1, node.start_mark.column + 1, style)

    # Keys as the loaded data has them: yes: is True, 1: is 1 and "1": is "1".
    loader = _RuleLoader("")

    def key(node: yaml.ScalarNode) -> Any:
        value = loader.construct_object(node)
        return str(value) if isinstance(value, _JsonNumber) else value

    rules: list[yaml.Node] = []
    keys: KeyPositions = {}
    if isinstance(root, yaml.MappingNode):
        for k, v in root.value:
            if not isinstance(k, yaml.ScalarNode):
                continue
            name = key(k)
            keys[(name,)] = pos(k)
            if name == "rules":
                rules = list(v.value) if isinstance(v, yaml.SequenceNode) else []
            if name == "sinks" and isinstance(v, yaml.MappingNode):
                keys.update(
                    (("sinks", key(sink)), pos(sink))
                    for sink, _ in v.value
                    if isinstance(sink, yaml.ScalarNode)
                )
    found: RulePositions = []
    for rule in rules:
        at: dict[str | None, _Pos] = {None: pos(rule)}
        if isinstance(rule, yaml.MappingNode):
            at.update((key(k), pos(v)) for k, v in rule.value if isinstance(k, yaml.ScalarNode))
        found.append(at)
    return found, keys


def _json_rule_positions(text: str) -> tuple[RulePositions, KeyPositions]:
    """Rule and key positions in valid JSON text, from a scan of its tokens that tracks the
    open containers; a duplicate key's last value counts, as it does for json.loads."""
    found: RulePositions = []
    keys: KeyPositions = {}
    stack: list[list[Any]] = []  # per open container: its bracket and, for objects, the key
    expect_key = False
    for m in _JSON_TOKEN_RE.finditer(text):
        token = m.group()
        if token in ("}", "]"):
            stack.pop()
        elif token == ",":
            expect_key = stack[-1][0] == "{"
        elif token == ":":
            pass
        elif expect_key:
            stack[-1][1] = key = json.loads(token)
            expect_key = False
            if len(stack) == 1:
                keys[(key,)] = _json_pos(text, m.start(), token)
            elif len(stack) == 2 and stack[0] == ["{", "sinks"]:
                keys[("sinks", key)] = _json_pos(text, m.start(), token)
        else:  # a value starts here
            in_rules = len(stack) >= 2 and stack[0] == ["{", "rules"] and stack[1][0] == "["
            if len(stack) == 1 and stack[0] == ["{", "rules"]:
                found = []  # a later "rules" key replaces an earlier one
            elif len(stack) == 2 and in_rules:
                found.append({None: _json_pos(text, m.start(), token)})
            elif len(stack) == 3 and in_rules and stack[2][0] == "{":
                found[-1][stack[2][1]] = _json_pos(text, m.start(), token)
            if token in ("{", "["):
                stack.append([token, None])
                expect_key = token == "{"
    return found, keys


def _json_pos(text: str, offset: int, token: str) -> _Pos:
    # Lines and columns as json's error messages count them: after "\n", in characters.
    line_start = text.rfind("\n", 0, offset) + 1
    style = '"' if token.startswith('"') else None
    return _Pos(text.count("\n", 0, offset) + 1, offset - line_start + 1, style)


class _Locator:
    """Line/column of rules and their values, of top-level keys and sink names, and a text
    search for the rest."""

    def __init__(self, text: str, positions: tuple[RulePositions, KeyPositions]) -> None:
        self.lines = text.splitlines()
        self.rules, self.keys = positions

    def key(self, *path: Any) -> _Pos:
        """Where the key at path (a top-level key, or "sinks" and a sink's name, as loaded)
        is written."""
        return self.keys.get(tuple(path)) or self.find(str(path[-1]))

    def rule(self, i: int) -> _Pos:
        return self.rules[i][None] if i < len(self.rules) else _Pos(0, 0)

    def value(self, i: int, key: Any, fallback: _Pos) -> _Pos:
        """Where rule i's value for key starts, else fallback."""
        found = self.rules[i].get(key) if i < len(self.rules) and isinstance(key, str) else None
        return found or fallback

    def find(self, needle: str, start_line: int = 1) -> _Pos:
        for i in range(max(start_line - 1, 0), len(self.lines)):
            col = self.lines[i].find(needle)
            if col >= 0:
                return _Pos(i + 1, col + 1, '"')
        return _Pos(0, 0)


def _read(
    path: str | os.PathLike[str],
) -> tuple[str, Any, tuple[RulePositions, KeyPositions]]:
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        column = len(raw[raw.rfind(b"\n", 0, e.start) + 1 : e.start].decode("utf-8", "replace")) + 1
        problem = Problem(str(path), line, column, f"not UTF-8: byte 0x{raw[e.start]:02x}")
        raise RuleFileError([problem]) from None
    try:
        return _parse(path, text)
    except RecursionError:  # the parsers recurse per level of nesting
        problem = Problem(str(path), 1, 1, "nested too deeply to read")
        raise RuleFileError([problem]) from None


class _NotJson(Exception):
    pass


def _refuse_constant(name: str) -> None:
    raise _NotJson(name)


# A JSON string, or one of the constants json.loads accepts outside strings.
_CONSTANT_RE = re.compile(r'"(?:[^"\\]|\\.)*"|(-?Infinity|NaN)')


def _json_loads(text: str) -> Any:
    """json.loads, refusing NaN and Infinity: they are not JSON, and other tools reading the
    same file would reject it. Raises JSONDecodeError at the constant."""
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except _NotJson:
        # json.loads stops at the first constant without saying where; everything before
        # it parsed, so a scan that skips strings finds it.
        match = next(m for m in _CONSTANT_RE.finditer(text) if m.group(1))
        raise json.JSONDecodeError(f"{match.group(1)} is not JSON", text, match.start(1)) from None


def _parse(
    path: str | os.PathLike[str], text: str
) -> tuple[str, Any, tuple[RulePositions, KeyPositions]]:
    if str(path).endswith(".json"):
        try:
            data = _json_loads(text)
        except json.JSONDecodeError as e:
            problem = Problem(str(path), e.lineno, e.colno, f"invalid JSON: {e.msg}")
            raise RuleFileError([problem]) from None
        return text, data, _json_rule_positions(text)
    try:
        loader = _RuleLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
            if loader.json_numbers:
                data = _settle_json_numbers(data)
        finally:
            loader.dispose()
    except yaml.reader.ReaderError as e:
        raise RuleFileError([_unreadable_yaml(str(path), text, e)]) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        raise RuleFileError([Problem(str(path), line, col, f"invalid YAML: {e}")]) from None
    return text, data, _yaml_rule_positions(node)


_YAML_LINE_BREAK_RE = re.compile("[\n\r\x85\u2028\u2029]")


def _unreadable_yaml(file: str, text: str, e: yaml.reader.ReaderError) -> Problem:
    """A character YAML refuses: its reader gives only an offset into the text."""
    # Every character before the offset is printable, so none of the breaks splitlines
    # knows beyond YAML's own (\v, \f, \x1c-\x1e) can be among them. The "^" stands for
    # the refused character: after a line break it starts a row of its own.
    rows = (text[: e.position] + "^").splitlines()
    line, column = len(rows), len(rows[-1])
    rest = _YAML_LINE_BREAK_RE.split(text[e.position :], maxsplit=1)[0]
    # Shown replaced: a control character would shift the caret on a terminal.
    source = yaml.reader.Reader.NON_PRINTABLE.sub("\ufffd", rows[-1][:-1] + rest)
    message = f"invalid YAML: {str(e).splitlines()[0]}"
    return Problem(file, line, column, message, source, column - 1)


def load_rule_file(path: str | os.PathLike[str]) -> RuleFile:
    """Read and check a rule file. Raises RuleFileError listing every
    problem, FileNotFoundError/IsADirectoryError/PermissionError for paths."""
    from .rules import check_condition

    name = str(path)
    text, data, positions = _read(path)
    loc = _Locator(text, positions)
    problems: list[Problem] = []

    def problem(pos: _Pos, message: str) -> None:
        problems.append(Problem(name, pos.line, pos.column, message))

    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise RuleFileError([Problem(name, 1, 1, "a rule file is a mapping with a 'rules:' list")])
    unknown_top = set(data) - {"rules", "sinks", "settings"}
    for key in sorted(unknown_top, key=str):
        problem(loc.key(key), f"unknown top-level key {key!r}")
    sinks = _check_sinks(data.get("sinks"), loc, problem)

    specs: list[RuleSpec] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(data["rules"]):
        rpos = loc.rule(i)
        if not isinstance(raw, dict):
            problem(rpos, f"rule {i + 1} is not a mapping")
            continue
        for key in sorted(set(raw) - RULE_KEYS, key=str):
            problem(loc.value(i, key, rpos), f"unknown key {key!r} in rule {i + 1}")
        rname = raw.get("name")
        if not isinstance(rname, str) or not rname:
            problem(rpos, f"rule {i + 1} needs a non-empty string 'name'")
            rname = f"#{i + 1}"
        elif rname in seen:
            problem(rpos, f"duplicate rule name {rname!r} (first at rule {seen[rname]})")
        else:
            seen[rname] = i + 1
        when, jl = raw.get("when"), raw.get("when_jsonlogic")
        if (when is None) == (jl is None):
            problem(rpos, f"rule {rname!r} needs exactly one of 'when' and 'when_jsonlogic'")
        elif when is not None:
            wpos = loc.value(i, "when", rpos)
            if not isinstance(when, str):
                problem(wpos, f"rule {rname!r}: 'when' must be a string")
            else:
                try:
                    check_condition(when)
                except ExprError as e:
                    problems.append(_expr_problem(name, loc, wpos, when, e, rname))
        else:
            jpos = loc.value(i, "when_jsonlogic", rpos)
            try:
                from .jsonlogic import from_jsonlogic

                if not isinstance(jl, dict):  # a bare constant is no condition
                    problem(jpos, f"rule {rname!r}: 'when_jsonlogic' must be a JSONLogic mapping")
                else:
                    from_jsonlogic(jl)
            except InputError as e:
                problem(jpos, f"rule {rname!r}: {e}")
        then = raw.get("then", [])
        tpos = loc.value(i, "then", rpos)
        then = _check_then(then, sinks, tpos, rname, problem)
        priority = raw.get("priority", 0)
        if not isinstance(priority, int) or isinstance(priority, bool):
            problem(loc.value(i, "priority", rpos), "priority must be an integer")
            priority = 0
        tags = raw.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            problem(loc.value(i, "tags", rpos), "tags must be a list of strings")
            tags = []
        enabled = raw.get("enabled", True)
        if not isinstance(enabled, bool):
            problem(loc.value(i, "enabled", rpos), "enabled must be true or false")
            enabled = True
        specs.append(
            RuleSpec(rname, when, jl, then, priority, tags, enabled, rpos.line, rpos.column)
        )
    if problems:
        raise RuleFileError(problems)
    return RuleFile(name, specs, sinks)


def _expr_problem(
    file: str, loc: _Locator, pos: _Pos, when: str, e: ExprError, rname: str
) -> Problem:
    """Point into the file at the error; where escapes moved characters, at the scalar's
    start, quoting the condition's own line that holds the error."""
    offset = e.offset or 0
    message = f"rule {rname!r}: {e.message}"
    spot = _spot_in_file(loc, pos, when, offset)
    if spot is not None:
        row, col = spot
        return Problem(file, row + 1, col + 1, message, loc.lines[row], col)
    line_start = when.rfind("\n", 0, offset) + 1
    line_end = when.find("\n", offset)
    source = when[line_start : line_end if line_end >= 0 else len(when)]
    return Problem(file, pos.line, pos.column, message, source, offset - line_start)


def _spot_in_file(loc: _Locator, pos: _Pos, when: str, offset: int) -> tuple[int, int] | None:
    """0-based row and column in the file of the condition's character at offset, or None
    when the file does not spell the condition character for character."""
    row = pos.line - 1
    if not 0 <= row < len(loc.lines):
        return None
    start = pos.column - 1 + (1 if pos.style in ("'", '"') else 0)
    if loc.lines[row][start : start + len(when)] == when:  # one line, as written
        return row, start + offset
    if pos.style in ("|", ">"):  # the content starts on the line after the block's header
        row, start = row + 1, 0
    return _aligned_spot(loc.lines, row, start, pos.style, when, offset)


def _aligned_spot(
    lines: list[str], row: int, col: int, style: str | None, when: str, offset: int
) -> tuple[int, int] | None:
    """Match the condition's non-blank characters one by one against the scalar's source
    from (row, col): line folding and indentation change only blanks. An offset at a blank
    or at the end points just past the non-blank character before it."""
    wanted = [c for c in when[: offset + 1] if not c.isspace()]
    if not wanted:
        return None
    chars = _source_chars(lines, row, col, style)
    for expected in wanted:
        r, c, width, char = next(chars, (0, 0, 0, ""))  # "": the source ended first
        # A backslash in a double-quoted scalar starts an escape: the spelling differs.
        if char != expected or (style == '"' and char == "\\"):
            return None
    at_blank = offset >= len(when) or when[offset].isspace()
    return (r, c + width) if at_blank else (r, c)


def _source_chars(
    lines: list[str], row: int, col: int, style: str | None
) -> Iterator[tuple[int, int, int, str]]:
    """Row, column, width and character of each non-blank character from (row, col) on;
    in a single-quoted scalar '' is one quote, two columns wide."""
    for r in range(row, len(lines)):
        line = lines[r]
        c = col if r == row else 0
        while c < len(line):
            width = 2 if style == "'" and line.startswith("''", c) else 1
            if not line[c].isspace():
                yield r, c, width, line[c]
            c += width


def _check_sinks(sinks: Any, loc: _Locator, problem: Any) -> dict[str, dict[str, Any]]:
    if sinks is None:
        return {}
    if not isinstance(sinks, dict):
        problem(
            loc.key("sinks"),
            "'sinks' must be a mapping of name to {path: FILE}, {stdout: true} or {log: DIR}",
        )
        return {}
    out: dict[str, dict[str, Any]] = {}
    for name, spec in sinks.items():
        if not isinstance(name, str):
            problem(
                loc.key("sinks", name),
                f"sink name {name!r} is not a string (YAML reads on, off, yes, no,"
                " numbers and ~ as other types): quote it",
            )
            continue
        ok = isinstance(spec, dict) and (
            (set(spec) == {"path"} and isinstance(spec["path"], str))
            or (set(spec) == {"stdout"} and spec["stdout"] is True)
            or (
                set(spec) <= {"log", "sync"}
                and isinstance(spec.get("log"), str)
                and spec.get("sync", "group") in ("group", "always", "interval", "none")
            )
        )
        if not ok:
            problem(
                loc.key("sinks", name),
                f"sink {name!r} must be {{path: FILE}}, {{stdout: true}} or {{log: DIR}}"
                " (with an optional sync: group|always|interval|none)",
            )
            continue
        out[name] = spec
    return out


def _check_then(
    then: Any, sinks: dict[str, Any], pos: _Pos, rname: str, problem: Any
) -> list[str | dict[str, str]]:
    if not isinstance(then, list):
        problem(pos, f"rule {rname!r}: 'then' must be a list of actions")
        return []
    out: list[str | dict[str, str]] = []
    for action in then:
        if is_builtin_action(action):
            out.append(action)
        else:
            problem(
                pos,
                f"rule {rname!r}: unknown action {action!r} "
                "(use count, stop, {tag: NAME} or {route: NAME})",
            )
    return out
