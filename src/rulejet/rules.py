"""Rules and the Engine: the simple API and the compiled one, together.

    from rulejet import Engine, Rule
    e = Engine(rules=[Rule(name="adult", cond=lambda d: d["age"] > 18,
                           action=lambda d: print("grant access"))])
    e.execute({"age": 25})              # runs the action; returns ["adult"]

A condition is a Python callable (given the event: a dict, or any object
such as a dataclass), an expression string in the rule language, or a
JSONLogic mapping. Expression rules compile into one native program that
scans each event once; callable and JSONLogic rules run in Python on
decoded events.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import _native
from ._ref.cel import CelError, evaluate
from .compiler import CompiledRules, compile_rules
from .errors import JSONError
from .expr import ExprError, Node, parse_expr
from .jsonlogic import JsonLogic, from_jsonlogic
from .jsonlogic_native import parts_in_python, truth_of
from .paths import encode_json_text
from .rulefile import is_builtin_action

if TYPE_CHECKING:
    import os

    from typing_extensions import Buffer

    from .runner import RunStats

Action = Callable[[Any], Any] | str | Mapping[str, str]
_CALLABLE, _EXPR, _JSONLOGIC = "callable", "expr", "jsonlogic"


def check_condition(text: str) -> Node:
    """Parse and compile one condition; raises ExprError if it cannot run."""
    node = parse_expr(text)
    compile_rules([node], [text], [False])
    return node


@dataclass
class Rule:
    """A named condition with actions.

    ``cond`` is a callable (truthy result = match), an expression string, or
    a JSONLogic mapping. ``action`` (or ``then``) lists what runs on a match:
    callables get the event; ``"count"``, ``"stop"``, ``{"tag": NAME}`` and
    ``{"route": NAME}`` are built in. Higher ``priority`` runs first.
    """

    name: str
    cond: Callable[[Any], Any] | str | Mapping[str, Any]
    action: Action | Sequence[Action] | None = None
    priority: int = 0
    tags: Sequence[str] = ()
    enabled: bool = True
    then: Sequence[Action] = ()

    def __post_init__(self) -> None:
        for act in self.actions:  # a misspelled action must not be ignored silently
            if (callable(act) and not isinstance(act, (str, Mapping))) or is_builtin_action(act):
                continue
            raise ValueError(
                f"rule {self.name!r}: unknown action {act!r} (a callable, 'count', 'stop',"
                " {'tag': NAME} or {'route': NAME})"
            )

    @property
    def actions(self) -> list[Action]:
        acts: list[Action] = list(self.then)
        if self.action is not None:
            if isinstance(self.action, (str, Mapping)) or callable(self.action):
                acts.append(self.action)
            else:
                acts.extend(self.action)
        # Any mapping as a plain dict: the runner recognises built-ins by that.
        return [a if isinstance(a, dict) or not isinstance(a, Mapping) else dict(a) for a in acts]


@dataclass
class Explanation:
    """Why a rule did or did not match one event."""

    rule: str
    matched: bool
    result: Any  # True/False, another value, or "error: ..."
    fields: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        mark = "MATCH" if self.matched else "no"
        values = ", ".join(f"{k}={v!r}" for k, v in self.fields.items())
        return f"{mark:5} {self.rule}: {self.result}" + (f"   [{values}]" if values else "")


def _json_path(path: str) -> str:
    """JSONPath spelling of a dotted JSONLogic var for explain output."""
    return "$." + path if path else "$"


def to_jsonable(data: Any) -> Any:
    """An event as JSON-ready data: dataclasses and attribute objects become
    dicts, so expression rules can read them too. Raises ValueError for a
    reference cycle or nesting too deep to convert."""
    try:
        return _jsonable(data)
    except RecursionError:
        pass
    # Only now look for the cycle: the bookkeeping would slow every event.
    with suppress(RecursionError):
        _check_acyclic(data, set())
    raise ValueError("the event is nested too deeply to convert to JSON")


def _children(data: Any) -> Iterator[Any] | None:
    """The values inside a container as to_jsonable sees it (None for a leaf)."""
    if isinstance(data, (str, int, float, bool)) or data is None:
        return None
    if isinstance(data, Mapping):
        return iter(data.values())
    if isinstance(data, (list, tuple)):
        return iter(data)
    if dataclasses.is_dataclass(data) and not isinstance(data, type):
        return (getattr(data, f.name) for f in dataclasses.fields(data))
    if hasattr(data, "__dict__"):
        return (v for k, v in vars(data).items() if not k.startswith("_"))
    return None


def _jsonable(data: Any) -> Any:
    if isinstance(data, (str, int, float, bool)) or data is None:
        return data
    if isinstance(data, Mapping):
        return {str(k): _jsonable(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_jsonable(v) for v in data]
    if dataclasses.is_dataclass(data) and not isinstance(data, type):
        return {f.name: _jsonable(getattr(data, f.name)) for f in dataclasses.fields(data)}
    if hasattr(data, "__dict__"):
        return {k: _jsonable(v) for k, v in vars(data).items() if not k.startswith("_")}
    return str(data)


def _check_acyclic(data: Any, path: set[int]) -> None:
    """ValueError if a container holds itself; ``path``: the ones entered."""
    children = _children(data)
    if children is None:
        return
    if id(data) in path:
        raise ValueError(f"the event contains a reference cycle (through a {type(data).__name__})")
    path.add(id(data))
    for child in children:
        _check_acyclic(child, path)
    path.discard(id(data))


def decode_event(raw: bytes) -> Any:
    """The Python value of a JSON event for callables, JSONLogic and actions.
    The native scan checks only what the rules read, so a line it accepted
    may still be malformed elsewhere (``{"geo": [01]}``): that, nesting
    past what Python's json decodes, and integers past
    ``sys.get_int_max_str_digits()`` are JSONErrors with a position."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as e:
        _native.validate(raw)  # malformed: a JSONError at the native parser's position
        pos = e.pos if isinstance(e, json.JSONDecodeError) else 0
        raise JSONError(
            f"valid JSON that Python's json module cannot decode: {e}", offset=pos, column=pos + 1
        ) from None


class Engine:
    """A compiled rule set. Raises ExprError/JSONLogicError for bad
    conditions and ValueError for duplicate rule names."""

    def __init__(
        self,
        rules: Iterable[Rule],
        *,
        sinks: Mapping[str, Mapping[str, Any]] | None = None,
        on_error: str = "raise",
    ) -> None:
        if on_error not in ("raise", "skip"):
            raise ValueError("on_error is 'raise' or 'skip'")
        all_rules = list(rules)
        names = [r.name for r in all_rules]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"duplicate rule names: {sorted(dupes)}")
        # Priority order: higher first, ties in the order given.
        order = sorted(range(len(all_rules)), key=lambda i: -all_rules[i].priority)
        self.rules: list[Rule] = [all_rules[i] for i in order if all_rules[i].enabled]
        self.sinks = dict(sinks or {})
        self.on_error = on_error
        self._handlers: dict[str, list[Callable[[Any], Any]]] = {}
        self._kind: list[str] = []
        self._ast: dict[int, Node] = {}
        self._jsonlogic: dict[int, JsonLogic] = {}
        texts: list[str] = []
        nodes: list[Node] = []
        stops: list[bool] = []
        self._native_index: dict[int, int] = {}  # rule position -> native rule index
        for i, r in enumerate(self.rules):
            if isinstance(r.cond, str):
                node = parse_expr(r.cond)
                self._kind.append(_EXPR)
                self._ast[i] = node
                self._native_index[i] = len(nodes)
                texts.append(r.cond)
                nodes.append(node)
                stops.append("stop" in r.actions)
            elif isinstance(r.cond, Mapping):
                self._kind.append(_JSONLOGIC)
                self._jsonlogic[i] = from_jsonlogic(dict(r.cond))
            elif callable(r.cond):
                self._kind.append(_CALLABLE)
            else:
                raise TypeError(f"rule {r.name!r}: cond must be a callable, str or mapping")
        self._native_rules = [i for i, k in enumerate(self._kind) if k == _EXPR]
        self.compiled: CompiledRules | None = compile_rules(nodes, texts, stops) if nodes else None
        self._bulk = self._compile_bulk()

    def python_path_reasons(self) -> list[str]:
        """Why run_file evaluates this rule set's JSONLogic rules event by event in
        Python instead of on the VM (empty when they run on the VM, or there are none)."""
        if not self._jsonlogic or self._bulk is not None:
            return []
        reasons = []
        if _CALLABLE in self._kind:
            reasons.append("the rule set has callable conditions")
        for i in sorted(self._jsonlogic):
            if "stop" in self.rules[i].actions:
                reasons.append(f"rule {self.rules[i].name!r}: a JSONLogic rule with stop")
        return reasons or ["the VM's compiler refused the translation"]

    def python_part_reasons(self) -> list[str]:
        """The parts of JSONLogic rules the VM leaves to Python when the rule set runs on
        it: each such rule is decoded and evaluated in Python on the events the rest of
        it cannot decide (empty when nothing is left, or the set runs in Python)."""
        if self._bulk is None:
            return []
        return [
            f"rule {self.rules[i].name!r}: {why}"
            for i in sorted(self._jsonlogic)
            for why in parts_in_python(self._jsonlogic[i].rule)
        ]

    def _compile_bulk(self) -> CompiledRules | None:
        """For runs over many events, one program of every rule when the JSONLogic ones
        translate (rulejet/jsonlogic_native.py): an error of a JSONLogic rule there
        means its translation could not decide the event, which the run then evaluates
        in Python. Expression rules keep their stop: the VM skips what a matching one
        stops, undecided JSONLogic rules included. None for rule sets without
        JSONLogic, with callables, with a JSONLogic rule that has stop (undecided, it
        could stop rules the VM has already counted). A JSONLogic part the VM cannot
        evaluate is unknown in the translation: the events it leaves undecided go to
        Python like any other."""
        if not self._jsonlogic or _CALLABLE in self._kind:
            return None
        if any("stop" in self.rules[i].actions for i in self._jsonlogic):
            return None
        nodes: list[Node] = []
        texts: list[str] = []
        for i, r in enumerate(self.rules):
            jl = self._jsonlogic.get(i)
            nodes.append(truth_of(jl.rule) if jl is not None else self._ast[i])
            texts.append(r.cond if isinstance(r.cond, str) else json.dumps(r.cond))
        try:
            return compile_rules(nodes, texts, ["stop" in r.actions for r in self.rules])
        except ExprError:  # a limit of the VM's: the rule set still runs, in Python
            return None

    # ---- configuration ----

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **kwargs: Any) -> Engine:
        """An Engine from a YAML/JSON rule file (see rulefile.py)."""
        from .rulefile import load_rule_file

        rf = load_rule_file(path)
        rules = [
            Rule(
                name=s.name,
                cond=s.when if s.when is not None else s.when_jsonlogic,
                then=s.then,
                priority=s.priority,
                tags=s.tags,
                enabled=s.enabled,
            )
            for s in rf.rules
        ]
        kwargs.setdefault("sinks", rf.sinks)
        return cls(rules, **kwargs)

    def on(self, rule_name: str) -> Callable[[Callable[[Any], Any]], Callable[[Any], Any]]:
        """Decorator: run ``fn(event)`` whenever ``rule_name`` matches."""
        if rule_name not in {r.name for r in self.rules}:
            raise KeyError(f"no enabled rule named {rule_name!r}")

        def register(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
            self._handlers.setdefault(rule_name, []).append(fn)
            return fn

        return register

    @property
    def names(self) -> list[str]:
        """Enabled rule names in priority order."""
        return [r.name for r in self.rules]

    # ---- one event ----

    def _decode(self, event: Any) -> tuple[bytes | None, Any]:
        """(JSON bytes, Python value) for an event given in any form."""
        if isinstance(event, (bytes, bytearray, memoryview)):
            raw = bytes(event)
            return raw, None
        if isinstance(event, str):
            return encode_json_text(event), None
        return None, event

    def _matches(self, event: Any, on_error: str | None = None) -> tuple[list[int], dict[int, str]]:
        """Positions of the rules that match, in priority order, honouring
        stop; and the rules whose evaluation ended in an error."""
        raw, obj = self._decode(event)
        native: set[int] = set()
        errored: dict[int, str] = {}
        # The event as JSON data, for expression and JSONLogic rules.
        plain: Any = None
        if obj is not None and (self.compiled is not None or self._jsonlogic):
            plain = to_jsonable(obj)
        if self.compiled is not None:
            try:
                doc = raw if raw is not None else json.dumps(plain, allow_nan=False)
            except ValueError:  # NaN or infinity has no JSON spelling: ask the reference
                for i in self._native_rules:
                    result = evaluate(self._ast[i], plain)
                    if result is True:
                        native.add(i)
                    elif isinstance(result, CelError):
                        errored[i] = "error"
            else:
                matched_idx, err_idx = self.compiled.program.eval(
                    doc if isinstance(doc, bytes) else doc.encode()
                )
                native = {self._native_rules[j] for j in matched_idx}
                errored = {self._native_rules[j]: "error" for j in err_idx}
        value: Any = None
        if obj is not None:
            value = obj
        elif raw is not None and len(self._native_rules) != len(self.rules):
            if self.compiled is None:
                _native.validate(raw)  # JSONError with an offset, as native rules give
            value = plain = decode_event(raw)
        out: list[int] = []
        for i, r in enumerate(self.rules):
            kind = self._kind[i]
            if kind == _EXPR:
                hit = i in native
            elif kind == _JSONLOGIC:
                hit = self._jsonlogic[i].matches(plain)
            else:
                try:
                    hit = bool(r.cond(value))  # type: ignore[operator]
                except Exception as e:
                    if (on_error or self.on_error) == "raise":
                        raise
                    errored[i] = f"error: {e!r}"
                    hit = False
            if hit:
                out.append(i)
                if "stop" in r.actions:  # lower-priority rules are skipped, errors too
                    errored = {k: why for k, why in errored.items() if k <= i}
                    break
        return out, errored

    def evaluate(self, event: Any) -> list[str]:
        """Names of the rules an event matches, in priority order (no
        actions run). ``event``: JSON bytes or str, a dict, or an object.
        Raises JSONError for malformed JSON."""
        return [self.rules[i].name for i in self._matches(event)[0]]

    def execute(self, data: Any) -> list[str]:
        """Evaluate, then run the matched rules' actions in priority order;
        returns the names that fired. Callables receive the event as given
        (decoded from JSON when given as bytes/str)."""
        positions, _ = self._matches(data)
        value = data
        if isinstance(data, (bytes, bytearray, memoryview, str)) and positions:
            value = decode_event(self._decode(data)[0] or b"")
        for i in positions:
            self.run_actions(i, value)
        return [self.rules[i].name for i in positions]

    def run_actions(self, position: int, value: Any) -> None:
        """Run rule ``position``'s callable actions and handlers on value."""
        rule = self.rules[position]
        for act in rule.actions:
            if callable(act) and not isinstance(act, (str, Mapping)):
                act(value)
        for fn in self._handlers.get(rule.name, ()):
            fn(value)

    def explain(self, event: Any) -> list[Explanation]:
        """For each rule: did it match, its condition's value, and the field
        values it read (by the reference evaluator, checked against the
        native result)."""
        raw, obj = self._decode(event)
        if raw is not None:
            _native.validate(raw)
            value = decode_event(raw)
        else:
            value = to_jsonable(obj)
        matched = set(self._matches(event, on_error="skip")[0])  # errors are shown, not raised
        out = []
        for i, r in enumerate(self.rules):
            trace: dict[str, Any] = {}
            kind = self._kind[i]
            if kind == _EXPR:
                result = evaluate(self._ast[i], value, trace)
                shown: Any = f"error: {result.message}" if isinstance(result, CelError) else result
            elif kind == _JSONLOGIC:
                jl = self._jsonlogic[i]
                shown = jl.apply(value)
                for p in jl.fields():
                    trace[_json_path(p)] = _dig(value, p)
            else:
                try:
                    shown = r.cond(obj if obj is not None else value)  # type: ignore[operator]
                except Exception as e:
                    shown = f"error: {e!r}"
            out.append(Explanation(r.name, i in matched, shown, trace))
        return out

    # ---- files ----

    def run_file(self, path: str | os.PathLike[str], **kwargs: Any) -> RunStats:
        """Evaluate every line of an NDJSON file; see runner.run_file."""
        from .runner import run_file

        return run_file(self, path, **kwargs)

    def scan(self, path: str | os.PathLike[str]) -> Iterator[tuple[str, int, bytes]]:
        """Yield (rule name, line number, raw line) for every match."""
        from .runner import scan_file

        return scan_file(self, path)

    def run_buffer(self, buffer: Buffer, **kwargs: Any) -> RunStats:
        """Like run_file, over bytes already in memory."""
        from .runner import run_buffer

        return run_buffer(self, buffer, **kwargs)


def _dig(value: Any, dotted: str) -> Any:
    node = value
    for part in dotted.split(".") if dotted else []:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return "<absent>"
    return node
