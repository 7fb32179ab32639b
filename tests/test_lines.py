"""Line indexing: documented semantics, every kernel against the reference."""

from __future__ import annotations

import array
import io
import random
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import rulejet
from rulejet import _native
from rulejet._ref.lines import line_offsets as ref_line_offsets

from .conftest import ticks_while

EDGE_SIZES = [0, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 1000]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", []),
        (b"a", [0]),
        (b"\n", [0]),
        (b"\n\n", [0, 1]),
        (b"a\nb", [0, 2]),
        (b"a\nb\n", [0, 2]),
        (b"a\r\nb\r\n", [0, 3]),
        (b"a\n\nb", [0, 2, 3]),
        (b"\r\n", [0]),
    ],
)
def test_semantics(data: bytes, expected: list[int]) -> None:
    assert rulejet.line_offsets(data).tolist() == expected
    assert ref_line_offsets(data) == expected


def test_result_is_a_compact_buffer() -> None:
    offsets = rulejet.line_offsets(b"x\ny\nz")
    view = memoryview(offsets)
    assert view.format == "Q" and view.itemsize == 8 and view.readonly
    assert view.tolist() == [0, 2, 4]
    assert array.array("Q", view.tobytes()).tolist() == [0, 2, 4]
    assert len(offsets) == 3 and offsets[2] == 4
    with pytest.raises(IndexError):
        offsets[3]
    assert memoryview(rulejet.line_offsets(b"")).tolist() == []


def test_accepts_any_bytes_like() -> None:
    data = b"one\ntwo\nthree"
    expected = [0, 4, 8]
    for buf in (data, bytearray(data), memoryview(data), array.array("B", data)):
        assert rulejet.line_offsets(buf).tolist() == expected
    # A non-contiguous view is refused, not misread.
    with pytest.raises((TypeError, BufferError)):
        rulejet.line_offsets(memoryview(data)[::2])


@pytest.mark.parametrize("bad", [None, 42, "text\n", ["a"], object()])
def test_rejects_non_buffers(bad: object) -> None:
    with pytest.raises(TypeError):
        rulejet.line_offsets(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", EDGE_SIZES)
@pytest.mark.parametrize("fill", [b"\n", b"x", b"\r\n", b"\n\x00"])
def test_edge_sizes(kernel: str, size: int, fill: bytes) -> None:
    data = (fill * (size // len(fill) + 1))[:size]
    assert rulejet.line_offsets(data).tolist() == ref_line_offsets(data)


@given(data=st.binary(max_size=700), pos=st.sampled_from(EDGE_SIZES))
@example(data=b"\n" * 65, pos=0)
def test_kernel_matches_reference(kernel: str, data: bytes, pos: int) -> None:
    # Shift content across vector boundaries by prefixing pos bytes.
    data = b"y" * pos + data
    assert rulejet.line_offsets(data).tolist() == ref_line_offsets(data)


@given(
    data=st.lists(
        st.sampled_from([b"\n", b"\r", b"a", b"\x0a\x0a", b"\xff", b"\x8a"]), max_size=300
    )
)
def test_newline_dense_matches_reference(kernel: str, data: list[bytes]) -> None:
    buf = b"".join(data)
    assert rulejet.line_offsets(buf).tolist() == ref_line_offsets(buf)


def test_all_kernels_agree_on_large_random_buffer() -> None:
    rng = random.Random(1234)
    data = bytes(rng.choice(b"\nabc\r\x00\xff") for _ in range(300_000))
    expected = _native.line_starts(data, kernel="scalar").tolist()
    assert expected == ref_line_offsets(data)
    for name in rulejet.available_kernels():
        assert _native.line_starts(data, kernel=name).tolist() == expected, name


def test_byte_values_near_newline_do_not_match(kernel: str) -> None:
    # Every byte value in every lane: only 0x0A may match (SWAR borrow bugs
    # show up as 0x0B/0x09 or 0x8A matching).
    data = bytes(range(256)) * 3
    assert rulejet.line_offsets(data).tolist() == ref_line_offsets(data)


@given(
    data=st.binary(max_size=2000),
    chunk=st.integers(min_value=1, max_value=300),
)
def test_iter_matches_whole(data: bytes, chunk: int) -> None:
    parts = list(rulejet.iter_line_offsets(io.BytesIO(data), chunk_size=chunk))
    flat = [x for p in parts for x in p.tolist()]
    assert flat == ref_line_offsets(data)


def test_iter_from_path(tmp_path: Path) -> None:
    path = tmp_path / "e.ndjson"
    data = b"".join(b'{"i": %d}\n' % i for i in range(10_000))
    path.write_bytes(data)
    parts = list(rulejet.iter_line_offsets(path, chunk_size=4096))
    assert len(parts) > 1
    assert [x for p in parts for x in p.tolist()] == ref_line_offsets(data)


def test_iter_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        list(rulejet.iter_line_offsets(tmp_path / "missing"))
    with pytest.raises(IsADirectoryError):
        list(rulejet.iter_line_offsets(tmp_path))
    with pytest.raises(ValueError, match="chunk_size"):
        list(rulejet.iter_line_offsets(io.BytesIO(b""), chunk_size=0))


def test_large_scan_releases_gil() -> None:
    data = (b"x" * 99 + b"\n") * 2_000_000  # 200 MB
    result: list[object] = []
    assert ticks_while(lambda: result.append(rulejet.line_offsets(data)), 0.25) > 0
    assert len(result[0]) == 2_000_000  # type: ignore[arg-type]
