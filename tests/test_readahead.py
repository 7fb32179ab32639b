"""The readahead helper: a thread that faults a one-thread run's input in
ahead of the scan (core/ahead.h). It only asks the kernel for pages, so a
run gives the same results with it and without it; it holds its buffer,
so a map cannot close under it; a closed or foreign one is refused."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from rulejet import BusyError, Engine, MappedFile, Rule, _native

MIB = 1 << 20


def wait_for(predicate: object, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.005)
    return False


def test_helper_asks_for_the_whole_buffer_and_closes() -> None:
    buf = bytes(20 * MIB)  # the reader never moves: 20 MiB is within one window
    with _native.Readahead(buf) as ahead:
        assert ahead.running
        assert wait_for(lambda: ahead.requested == len(buf))
    assert not ahead.running
    ahead.close()  # idempotent


def test_small_buffers_and_the_switch_get_no_helper(monkeypatch: pytest.MonkeyPatch) -> None:
    with _native.Readahead(bytes(_native.READAHEAD_MIN - 1)) as ahead:
        assert not ahead.running
        assert ahead.requested == 0
    monkeypatch.setenv("RULEJET_READAHEAD", "0")
    with _native.Readahead(bytes(_native.READAHEAD_MIN)) as ahead:
        assert not ahead.running


def test_run_refuses_a_closed_foreign_or_outside_readahead() -> None:
    engine = Engine([Rule("a", "a == 1")])
    assert engine.compiled is not None
    program = engine.compiled.program
    buf = b'{"a": 1}\n' * 10
    ahead = _native.Readahead(buf)
    with pytest.raises(ValueError, match="within"):
        program.run(buf, readahead=ahead, offset=1)
    with pytest.raises(ValueError, match="within"):
        program.run(buf, readahead=ahead, offset=-1)
    assert program.run(buf[9:], readahead=ahead, offset=9)[3] == [9]
    ahead.close()
    with pytest.raises(ValueError, match="closed"):
        program.run(buf, readahead=ahead)
    with pytest.raises(TypeError, match="Readahead"):
        program.run(buf, readahead=object())  # type: ignore[arg-type]


def test_a_map_cannot_close_under_a_live_helper(tmp_path: Path) -> None:
    path = tmp_path / "big.ndjson"
    path.write_bytes(b'{"a": 1}\n' * (2 * MIB))
    mf = MappedFile(path)
    with mf.lease() as view:
        ahead = _native.Readahead(view)
    with pytest.raises(BusyError):
        mf.close(timeout=0)
    ahead.close()
    del view  # the lease's view, which the helper's hold kept from being released
    mf.close()
    assert mf.closed


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 20 MiB of events, a malformed line and a blank one among them."""
    path = tmp_path_factory.mktemp("ahead") / "events.ndjson"
    lines = []
    for i in range(200_000):
        lines.append(b'{"id": %d, "user": {"age": %d, "country": "%s"}, "pad": "%s"}'
                     % (i, i % 90, b"US" if i % 7 else b"FR", b"x" * (i % 50)))  # fmt: skip
    lines[12_345] = b'{"id": 12345, "user": {"age": 01}}'
    lines[150_000] = b""
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert path.stat().st_size >= _native.READAHEAD_MIN
    return path


def test_runs_agree_with_and_without_the_helper(
    big_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = Engine([
        Rule("adult", "user.age >= 18"),
        Rule("fr", 'user.country == "FR"'),
        Rule("old-fr", 'user.age > 80 && user.country == "FR"'),
    ])  # fmt: skip
    with_helper = engine.run_file(big_file, threads=1)
    several = engine.run_file(big_file, threads=2)
    monkeypatch.setenv("RULEJET_READAHEAD", "0")
    without = engine.run_file(big_file, threads=1)
    for other in (several, without):
        assert with_helper.matches == other.matches
        assert with_helper.eval_errors == other.eval_errors
        assert with_helper.events == other.events == 199_998
        assert with_helper.errors == other.errors == 1
        assert with_helper.error_samples == other.error_samples
    assert [e.line for e in with_helper.error_samples] == [12_346]


def test_path_scans_agree_with_and_without_the_helper(
    big_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rulejet import PathSet

    paths = PathSet(["$.id", "$.user.country"])
    with MappedFile(big_file) as mf, mf.lease() as view:
        with_helper = paths.extract_lines(view)
        counted = paths.scan_lines(view)
        monkeypatch.setenv("RULEJET_READAHEAD", "0")
        without = paths.extract_lines(view)
    assert with_helper.columns == without.columns
    assert with_helper.errors == without.errors
    assert [e.line for e in with_helper.errors] == [12_346]
    assert counted.lines == 200_000


def test_only_one_thread_native_runs_get_a_helper() -> None:
    from rulejet.runner import _readahead

    view = memoryview(bytes(_native.READAHEAD_MIN))
    native = Engine([Rule("a", "a == 1")])
    python = Engine([Rule("a", lambda d: d["a"] == 1)])
    ahead = _readahead(native, view, 1)
    if len(os.sched_getaffinity(0)) < 2:  # no CPU for it to run on
        assert ahead is None
    else:
        assert ahead is not None
        ahead.close()
    assert _readahead(native, view, 2) is None
    assert _readahead(python, view, 1) is None
    assert _readahead(native, view[:-1], 1) is None
