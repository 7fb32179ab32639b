"""Hypothesis strategies for JSON documents and paths into them."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

# Lone surrogates only travel as \u escapes (ensure_ascii=True); raw UTF-8
# text must be valid, surrogates excluded, as RFC 8259 requires.
_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=80)
_keys = st.one_of(
    st.sampled_from(["a", "b", "user", "x y", 'q"uote', "back\\slash", "é", "0", "1", ""]),
    _text,
)
_ints = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.integers(-(10**40), 10**40),
    st.sampled_from([0, -1, 2**63, -(2**63) - 1, 10**25]),
)
_floats = st.floats(allow_nan=False, allow_infinity=False)
_scalars = st.one_of(st.none(), st.booleans(), _ints, _floats, _text)

json_values = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=6), st.dictionaries(_keys, children, max_size=6)
    ),
    max_leaves=40,
)


@st.composite
def documents(draw: st.DrawFn) -> tuple[Any, bytes]:
    """A value and one of its many JSON spellings, shifted across vector widths."""
    value = draw(json_values)
    ensure_ascii = draw(st.booleans())
    indent = draw(st.sampled_from([None, None, 0, 2]))
    separators = draw(st.sampled_from([None, (",", ":"), (" , ", " : ")]))
    text = json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators)
    lead = draw(st.sampled_from(["", " ", "\n", " " * 31, "\t" * 63, " \r\n" * 11]))
    return value, (lead + text + draw(st.sampled_from(["", " ", "\r\n "]))).encode()


@st.composite
def paths_into(draw: st.DrawFn, value: Any) -> list[str | int]:
    """A path that exists in ``value`` (a random descent), maybe extended
    with a step that does not."""
    steps: list[str | int] = []
    node = value
    while draw(st.integers(0, 3)) > 0:
        if isinstance(node, dict) and node:
            key = draw(st.sampled_from(sorted(node)))
            steps.append(key)
            node = node[key]
        elif isinstance(node, list) and node:
            idx = draw(st.integers(0, len(node) - 1))
            steps.append(idx)
            node = node[idx]
        else:
            break
    if draw(st.integers(0, 4)) == 0:
        steps.append(draw(st.one_of(_keys, st.integers(0, 8))))
    return steps


def to_expr(steps: list[str | int]) -> str:
    """The JSONPath bracket spelling of steps (any key survives it)."""
    out = "$"
    for s in steps:
        if isinstance(s, int):
            out += f"[{s}]"
        else:
            out += "[" + json.dumps(s) + "]"
    return out


MISSING_MARK = object()


def walk(value: Any, steps: list[str | int]) -> Any:
    """Reference lookup over the json.loads result."""
    node = value
    for s in steps:
        if (isinstance(s, int) and isinstance(node, list) and s < len(node)) or (
            isinstance(s, str) and isinstance(node, dict) and s in node
        ):
            node = node[s]
        else:
            return MISSING_MARK
    return node
