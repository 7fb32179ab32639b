"""Raw UTF-8 inside JSON strings: every kernel accepts exactly what
Python's strict decoder accepts, and reports a bad sequence at the same
offset as the scalar kernel. The AVX2 kernel validates by table lookups
32 bytes at a time (kernels/avx2.c), so strings are built to cross block
boundaries, to end right at the buffer's end (the padded last load) and
to cut sequences short just before the closing quote."""

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from rulejet import JSONError, PathSet
from rulejet.kernels import use_kernel

# Valid sequences of every length, and the invalid kinds the tables tell
# apart: overlong, surrogate, past U+10FFFF, stray and doubled
# continuations, leads cut short, bytes that never occur.
VALID = [
    b"a", b"~", b"\xc2\x80", b"\xc3\xa9", b"\xdf\xbf", b"\xe0\xa0\x80", b"\xe4\xb8\x80",
    b"\xed\x9f\xbf", b"\xee\x80\x80", b"\xef\xbf\xbf", b"\xf0\x90\x80\x80",
    b"\xf0\x9f\x98\x80", b"\xf4\x8f\xbf\xbf",
]  # fmt: skip
INVALID = [
    b"\xc0\x80", b"\xc1\xbf", b"\xe0\x80\x80", b"\xe0\x9f\xbf", b"\xed\xa0\x80", b"\xed\xbf\xbf",
    b"\xf0\x80\x80\x80", b"\xf0\x8f\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80",
    b"\xf8\x88\x80\x80\x80", b"\x80", b"\xbf", b"\xc3", b"\xe4\xb8", b"\xf0\x9f\x98", b"\xff",
    b"\xfe", b"\xc3\xa9\x80", b"\xe4\x80",
]  # fmt: skip

pieces = st.one_of(
    st.sampled_from(VALID),
    st.sampled_from(INVALID),
    st.integers(1, 40).map(lambda n: b"x" * n),  # ASCII runs move the rest across blocks
    st.text(max_size=8).map(lambda s: s.replace('"', "").replace("\\", "")).map(str.encode),
)


def outcome(ps: PathSet, doc: bytes) -> tuple[Any, ...]:
    try:
        return ("ok", ps.extract(doc))
    except JSONError as e:
        return ("error", e.offset, str(e))
    except UnicodeDecodeError as e:  # let through by the scan: a defect to report
        return ("undecodable", str(e))


def check(kernel: str, ps: PathSet, raw: bytes, doc: bytes) -> None:
    with use_kernel("scalar"):
        want = outcome(ps, doc)
    with use_kernel(kernel):
        got = outcome(ps, doc)
    assert got == want, (raw, doc)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        assert got[0] == "error" and "invalid UTF-8" in got[2], (raw, got)
    else:
        assert got == ("ok", [text]), raw


def test_every_sequence_at_every_offset(kernel: str) -> None:
    """Each valid and invalid sequence at every position of the first two
    32-byte blocks, then the quote, ASCII or another sequence."""
    ps = PathSet(["a"])
    for piece in VALID + INVALID:
        for at in range(66):
            for after in (b"", b"z", b"\xc3\xa9", b"\x80", b"\xf0\x9f\x98\x80"):
                raw = b"y" * at + piece + after
                check(kernel, ps, raw, b'{"a":"' + raw + b'"}')


@given(
    parts=st.lists(pieces, max_size=12),
    lead=st.integers(0, 40),
    tail=st.sampled_from([b"}", b"} ", b', "b": 1}']),
)
def test_strings_validate_like_python(
    kernel: str, parts: list[bytes], lead: int, tail: bytes
) -> None:
    raw = b"".join(b for b in parts if b not in (b'"', b"\\") and not any(c < 0x20 for c in b))
    check(kernel, PathSet(["a"]), raw, b"{" + b" " * lead + b'"a":"' + raw + b'"' + tail)


@given(parts=st.lists(st.sampled_from(VALID + INVALID), min_size=1, max_size=20))
def test_unwanted_strings_in_lines_are_checked_too(kernel: str, parts: list[bytes]) -> None:
    """A string the paths do not want is validated all the same, in an
    NDJSON buffer where the next line's bytes follow the quote."""
    raw = b"".join(parts)
    lines = b'{"skip":"' + raw + b'","a":1}\n{"a":"\xc3\xa9\xff"}\n{"a":2}'
    ps = PathSet(["a"])
    with use_kernel("scalar"):
        want = ps.extract_lines(lines)
    with use_kernel(kernel):
        got = ps.extract_lines(lines)
    assert (got.columns, got.errors) == (want.columns, want.errors)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        assert [e.line for e in got.errors] == [1, 2]
    else:
        assert got.columns[0][0] == 1 and [e.line for e in got.errors] == [2]
