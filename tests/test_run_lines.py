"""A rule run finds each NDJSON line's end with the scan that reads its
fields (no separate newline pass), so the scan must never read a value
across a line's newline: not in whitespace, not in a skipped container,
not after the last wanted key. Every line of a run must give exactly what
evaluating that line alone gives (matches, or the JSONError and its
position), on every kernel.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rulejet import Engine, JSONError, Rule

RULES = [
    Rule("a-is-1", "a == 1"),
    Rule("has-b-c", "has(b.c)"),
    Rule("b-c-x", 'b.c == "x"'),
    Rule("deep", "b.d.e > 0"),
]


Sample = tuple[int, int, int, str]  # line, offset, column, message


def expected(engine: Engine, buf: bytes) -> tuple[Counter[str], list[Sample], int]:
    """Matches, error samples (line, offset, column, message) and blank
    lines, from evaluating each line on its own."""
    matches: Counter[str] = Counter()
    errors: list[Sample] = []
    blank = 0
    start = 0
    lines = buf.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for number, line in enumerate(lines, 1):
        if not line.strip(b" \t\r"):
            blank += 1
        else:
            try:
                matches.update(engine.evaluate(line))
            except JSONError as e:
                errors.append((number, start + e.offset, e.offset + 1, str(e).split(" (line")[0]))
        start += len(line) + 1
    return matches, errors, blank


def check(buf: bytes) -> None:
    engine = Engine(RULES)
    stats = engine.run_buffer(buf)
    matches, errors, blank = expected(engine, buf)
    assert stats.matches == {r.name: matches[r.name] for r in RULES}
    assert [(e.line, e.offset, e.column, e.message) for e in stats.error_samples] == errors
    assert stats.errors == len(errors)
    assert stats.blank_lines == blank


LONG = "x" * 80  # past one 64-byte block: the skip's block loop, not its one-window path

SPLIT_LINES = [
    b'{"a":\n1}',  # whitespace newline inside the object
    b'{"a":1,\n"b":{"c":"x"}}',
    b'{"geo":{"x":"a\nb"},"a":1}',  # a newline in a small skipped container's string
    b'{"geo":{"x":"' + LONG.encode() + b'\n"},"a":1}',  # ... in a large one's
    b'{"t":[1,\n2],"a":1}',  # outside strings in a skipped array
    b'{"t":[1,2,' + b"3," * 40 + b'\n4],"a":1}',
    b'{"a":1,"z":2,"y":3,"w":{"k":\n"v"}}',  # after every wanted key: the rest's skip
    b'{"a":1,"z":2,"y":3,"w":{"k":"' + LONG.encode() + b'"\n}}',
    b'{"b":{"c":"x\ny"}}',  # a wanted string
    b'{"b":{"d":{"e":\n2}}}',
    b'{"a":1}\n\n',
    b"[1,\n2]",
    b'"ab\ncd"',
    b'{"a":1} x',
    b'{"a":1}{"a":1}',
    b'{"a":1}  \r',
    b"  \r",
    b"\n",
    b'{"a":1',
    b'{"a":1,"geo":[' + b"[" * 70,
    b'{"geo":"' + LONG.encode(),
]


@pytest.mark.parametrize("text", SPLIT_LINES)
def test_no_value_is_read_across_a_newline(kernel: str, text: bytes) -> None:
    good = b'{"a":1,"b":{"c":"x","d":{"e":1}}}'
    check(good + b"\n" + text + b"\n" + good + b"\n")
    check(text)  # the last line without its newline, at the buffer's end
    check(text + b"\n" + good)


def test_a_blank_first_line(kernel: str) -> None:
    check(b'\n{"a":1}\n')
    check(b' \r\n{"a":1}\n')


# ---- random documents, cut by random newlines ----

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet=st.sampled_from('ax"\\\n\té/{}[]'), max_size=12),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["a", "b", "c", "d", "e", "geo", "t"]), inner, max_size=5)
    ),
    max_leaves=12,
)
documents = st.dictionaries(st.sampled_from(["a", "b", "geo", "t", "z", "y"]), values, max_size=6)


@st.composite
def ndjson_with_stray_newlines(draw: Any) -> bytes:
    docs = draw(st.lists(documents, min_size=1, max_size=6))
    spaced = draw(st.booleans())
    text = "\n".join(json.dumps(d, separators=(", ", ": ") if spaced else (",", ":")) for d in docs)
    buf = bytearray(text.encode())
    for at in draw(st.lists(st.integers(0, len(buf)), max_size=3)):
        buf[at:at] = draw(st.sampled_from([b"\n", b" \n", b"\r\n", b"\n\n"]))
    if draw(st.booleans()):
        buf += b"\n"
    return bytes(buf)


@given(buf=ndjson_with_stray_newlines())
@settings(max_examples=150, deadline=None)
def test_random_lines_agree_with_one_line_at_a_time(kernel: str, buf: bytes) -> None:
    check(buf)
