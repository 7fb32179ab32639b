"""The member loop's key-order memo: a member whose bytes repeat the key
the same position had in earlier documents skips the key scan and probe.
Whatever the documents' orders and spellings, values equal json.loads's.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rulejet import MISSING, PathSet, RawJSON

from .json_strategies import MISSING_MARK, to_expr, walk

# Keys that look alike where the memo compares: prefixes of each other, a
# 13-byte key (its pattern fills 16 bytes) and 14-byte ones (one byte
# over), a key holding a quote or a non-ASCII letter, the empty key.
KEYS = ["a", "ab", "b", "abcdefghijklm", "abcdefghijklmn", "abcdefghijklmX", 'q"', "é", ""]
PATHS: list[list[str | int]] = [[k] for k in KEYS]
PATHS += [["a", "a"], ["ab", "b"], ["abcdefghijklm", "é"], ["nope"]]
EXPRS = [to_expr(p) for p in PATHS]

scalars = st.one_of(
    st.integers(-5, 5), st.sampled_from(["x", "é", 'a"', "", True, None]), st.floats(0, 2)
)
values = st.recursive(
    scalars,
    lambda inner: st.dictionaries(st.sampled_from(KEYS), inner, max_size=4),
    max_leaves=6,
)


def spell(members: list[tuple[str, Any]], style: int) -> bytes:
    """An object with these members (duplicates kept) in one of the
    spellings the memo must tell apart: compact, spaced after the colon,
    keys \\u-escaped, or spaced before it."""
    parts = []
    for k, v in members:
        key = json.dumps(k, ensure_ascii=style == 2)
        if style == 2 and k:
            key = '"' + "".join(f"\\u{ord(ch):04x}" if ch != '"' else '\\"' for ch in k) + '"'
        sep = {1: ": ", 3: " :"}.get(style, ":")
        parts.append(f"{key}{sep}{json.dumps(v, ensure_ascii=False, separators=(',', ':'))}")
    return ("{" + ",".join(parts) + "}").encode()


@st.composite
def documents(draw: st.DrawFn) -> list[list[tuple[str, Any]]]:
    """Documents that mostly share one member order, as a producer's do,
    with reorderings, dropped and duplicated members among them."""
    base = draw(st.lists(st.tuples(st.sampled_from(KEYS), values), min_size=1, max_size=8))
    docs = []
    for _ in range(draw(st.integers(1, 12))):
        members = [(k, draw(values) if draw(st.booleans()) else v) for k, v in base]
        change = draw(st.integers(0, 4))
        if change == 1:
            members = draw(st.permutations(members))
        elif change == 2 and members:
            del members[draw(st.integers(0, len(members) - 1))]
        elif change == 3:
            members.append(draw(st.sampled_from(members)))
        docs.append(members)
    return docs


def plain(v: object) -> object:
    return bytes(v) if isinstance(v, RawJSON) else v


def check(lines: list[bytes]) -> None:
    ps = PathSet(EXPRS)
    r = ps.extract_lines(b"\n".join(lines))
    assert not r.errors
    for j, line in enumerate(lines):
        want_doc = json.loads(line)
        for i, path in enumerate(PATHS):
            want = walk(want_doc, path)
            got = r.columns[i][j]
            if want is MISSING_MARK:
                assert got is MISSING, (line, path, got)
            elif isinstance(want, (dict, list)):
                assert isinstance(got, RawJSON) and json.loads(bytes(got)) == want
            else:
                assert plain(got) == want and type(got) is type(want), (line, path, got)
        # Every document alone, through a fresh path set (an empty memo).
        alone = PathSet(EXPRS).extract(line)
        assert [plain(v) for v in alone] == [plain(r.columns[i][j]) for i in range(len(PATHS))]


@settings(max_examples=300)
@given(docs=documents(), styles=st.lists(st.integers(0, 3), min_size=12, max_size=12))
def test_memo_never_changes_values(
    kernel: str, docs: list[list[tuple[str, Any]]], styles: list[int]
) -> None:
    lines = [spell(m, styles[j]) for j, m in enumerate(docs)]
    check(lines)


def test_memo_told_apart_from_lookalikes(kernel: str) -> None:
    """After a position learned '"ab":', a document there with "a", an
    escaped "ab", a longer key or a space before the value still gets its
    own key's value (and the learned key still works after them)."""
    learned = [("ab", 1), ("abcdefghijklm", {"é": 2}), ("b", 3)]
    variants = [
        [("a", 4), ("abcdefghijklmn", 5), ("b", 6)],
        [("ab", 7), ("abcdefghijklmX", 8), ("b", 9)],
        [("b", 10), ("ab", 11), ("abcdefghijklm", {"é": 12})],
    ]
    docs = [learned] * 3 + variants + [learned] * 2
    for style in range(4):
        check([spell(m, style) for m in docs])
    mixed = [spell(m, s) for m, s in zip(docs, [0, 0, 0, 2, 1, 3, 0, 0], strict=True)]
    check(mixed)


def test_memo_near_the_buffer_end(kernel: str) -> None:
    """The last lines' members sit within 16 bytes of the buffer's end,
    where the memo's loads do not reach: the key is read as usual."""
    for tail in ['{"ab":1}', '{"ab":1,"b":2}', '{"ab":', '{"ab"']:
        lines = [b'{"ab":1,"b":2}'] * 4 + [tail.encode()]
        r = PathSet(["ab", "b"]).extract_lines(b"\n".join(lines))
        if tail.endswith("}"):
            assert not r.errors and r.columns[0] == [1] * 5
        else:
            assert [e.line for e in r.errors] == [5] and r.columns[0][:4] == [1] * 4
