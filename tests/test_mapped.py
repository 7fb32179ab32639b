"""MappedFile lifecycle: leases, waiting close, no access to unmapped memory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import rulejet
from rulejet import BusyError, ClosedError, CloseTimeoutError, FileError, MappedFile


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "events.ndjson"
    path.write_bytes(b"".join(b'{"n": %d}\n' % i for i in range(1000)))
    return path


def test_lease_reads_file(data_file: Path) -> None:
    with MappedFile(data_file) as mf:
        assert mf.size == data_file.stat().st_size == len(mf)
        with mf.lease() as view:
            assert view.readonly
            assert bytes(view) == data_file.read_bytes()
            assert rulejet.line_offsets(view).tolist()[:3] == [0, 9, 18]
        with mf.lease(9, 8) as view:
            assert bytes(view) == b'{"n": 1}'
    assert mf.closed


def test_view_after_lease_raises(data_file: Path) -> None:
    mf = MappedFile(data_file)
    with mf.lease() as view:
        kept = view
    with pytest.raises(ValueError):
        kept[0]
    mf.close()
    with pytest.raises(ValueError):
        bytes(kept)


def test_lease_after_close_raises(data_file: Path) -> None:
    mf = MappedFile(data_file)
    mf.close()
    mf.close()  # idempotent
    with pytest.raises(ClosedError, match="closed"), mf.lease():
        pass
    with pytest.raises(ClosedError):
        mf.advise("sequential")
    with pytest.raises(ClosedError):
        memoryview(mf._map)


def test_escaped_slice_blocks_unmap(data_file: Path) -> None:
    mf = MappedFile(data_file)
    with mf.lease() as view:
        escaped = view[0:10]  # shares the export: outlives the lease
    with pytest.raises(BusyError):
        mf.close()
    assert not mf.closed
    assert bytes(escaped) == data_file.read_bytes()[:10]  # still mapped: safe
    escaped.release()
    mf.close()
    assert mf.closed


def test_numpy_style_export_blocks_unmap(data_file: Path) -> None:
    mf = MappedFile(data_file)
    with mf.lease() as view:
        pinned = memoryview(view)  # a second consumer of the export
    with pytest.raises(BusyError):
        mf.close()
    del pinned
    mf.close()


def test_close_waits_for_lease_in_other_thread(data_file: Path) -> None:
    mf = MappedFile(data_file)
    holding = threading.Event()
    release = threading.Event()
    seen: list[bytes] = []

    def reader() -> None:
        with mf.lease() as view:
            holding.set()
            release.wait()
            seen.append(bytes(view[:8]))  # must still be mapped here

    t = threading.Thread(target=reader)
    t.start()
    holding.wait()
    closer_done = threading.Event()

    def closer() -> None:
        mf.close()
        closer_done.set()

    c = threading.Thread(target=closer)
    c.start()
    time.sleep(0.05)
    assert not closer_done.is_set()  # close is waiting for the reader
    assert not mf.closed
    release.set()
    t.join()
    c.join(timeout=10)
    assert closer_done.is_set() and mf.closed
    assert seen == [b'{"n": 0}']


def test_close_timeout_leaves_map_intact(data_file: Path) -> None:
    mf = MappedFile(data_file)
    holding = threading.Event()
    release = threading.Event()

    def reader() -> None:
        with mf.lease():
            holding.set()
            release.wait()

    t = threading.Thread(target=reader)
    t.start()
    holding.wait()
    with pytest.raises(CloseTimeoutError):
        mf.close(timeout=0.05)
    assert not mf.closed
    with mf.lease() as view:  # usable again after the timeout
        assert bytes(view[:1]) == b"{"
    release.set()
    t.join()
    mf.close(timeout=5)
    assert mf.closed


def test_close_from_lease_holder_refuses(data_file: Path) -> None:
    mf = MappedFile(data_file)
    with mf.lease(), pytest.raises(RuntimeError, match="holds a lease"):
        mf.close()
    mf.close()


def _lease_until_closed(
    mf: MappedFile, start: threading.Barrier, expected: bytes, errors: list[BaseException]
) -> None:
    start.wait()
    for _ in range(200):
        try:
            with mf.lease() as v:
                assert v[0] == expected[0] and v[-1] == expected[-1]
        except ClosedError:
            return
        except BaseException as e:  # reported by the caller
            errors.append(e)
            return


def test_many_threads_lease_and_close(data_file: Path) -> None:
    expected = data_file.read_bytes()
    for _ in range(20):
        mf = MappedFile(data_file)
        errors: list[BaseException] = []
        start = threading.Barrier(9)
        threads = [
            threading.Thread(target=_lease_until_closed, args=(mf, start, expected, errors))
            for _ in range(8)
        ]
        for t in threads:
            t.start()
        start.wait()
        mf.close()
        for t in threads:
            t.join()
        assert not errors
        assert mf.closed


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    with MappedFile(path, populate=True, advice="sequential") as mf:
        assert mf.size == 0
        with mf.lease() as view:
            assert bytes(view) == b""
            assert rulejet.line_offsets(view).tolist() == []


def test_large_file_maps_whole(tmp_path: Path) -> None:
    # Files of 2 MiB or more are mapped on a 2 MiB boundary with huge-page
    # advice (tests/native checks the placement): the bytes are the file's.
    path = tmp_path / "big.ndjson"
    data = b"".join(b'{"n": %d}\n' % i for i in range(300_000))
    assert len(data) > 3 << 20
    path.write_bytes(data)
    for populate in (False, True):
        with MappedFile(path, populate=populate, advice="sequential") as mf, mf.lease() as view:
            assert bytes(view) == data
            assert len(rulejet.line_offsets(view)) == 300_000


def test_read_write_preallocated(tmp_path: Path) -> None:
    path = tmp_path / "rw.bin"
    with MappedFile(path.open("wb").name, "r+", size=8192) as mf:
        assert mf.size == 8192
        with mf.lease(4096, 5) as view:
            assert not view.readonly
            view[:] = b"hello"
        mf.flush()
    assert path.stat().st_size == 8192
    assert path.read_bytes()[4096:4101] == b"hello"


def test_read_only_view_is_not_writable(data_file: Path) -> None:
    with MappedFile(data_file) as mf, mf.lease() as view, pytest.raises(TypeError):
        view[0] = 1  # type: ignore[index]


@pytest.mark.parametrize("advice", ["normal", "sequential", "random", "willneed", "dontneed"])
def test_advice(data_file: Path, advice: str) -> None:
    with MappedFile(data_file) as mf:
        mf.advise(advice, 0, 100)  # type: ignore[arg-type]
        with mf.lease() as view:
            assert bytes(view[:1]) == b"{"


def test_bad_arguments(data_file: Path) -> None:
    with MappedFile(data_file) as mf:
        with pytest.raises(ValueError, match="unknown advice"):
            mf.advise("fast")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="outside"):
            mf.advise("random", 0, mf.size + 1)
        with pytest.raises(ValueError, match="outside"), mf.lease(mf.size, 1):
            pass
        with pytest.raises(ValueError, match="outside"), mf.lease(-1):
            pass
    with pytest.raises(ValueError, match="mode"):
        MappedFile(data_file, "w")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="size"):
        MappedFile(data_file, size=10)


def test_missing_file_names_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.ndjson"
    with pytest.raises(FileError) as info:
        MappedFile(missing)
    assert isinstance(info.value, OSError)
    assert info.value.errno == 2
    assert info.value.filename == str(missing)
    assert "nope.ndjson" in str(info.value)


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileError) as info:
        MappedFile(tmp_path)
    assert info.value.errno == 21  # EISDIR
    assert str(tmp_path) in str(info.value)


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_bytes(b"x")
    path.chmod(0)
    if os.geteuid() != 0:
        with pytest.raises(FileError) as info:
            MappedFile(path)
        assert info.value.errno == 13
        return
    # Root reads anything: retry in a child without the DAC-override
    # capabilities, which is root minus exactly the power to ignore modes.
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root and setpriv (util-linux) is not installed")
    drop = "-dac_override,-dac_read_search"
    code = (
        "import sys, rulejet\n"
        "try:\n    rulejet.MappedFile(sys.argv[1])\n"
        "except rulejet.FileError as e:\n    print('errno', e.errno, e.filename)\n"
    )
    out = subprocess.run(
        [
            setpriv,
            "--bounding-set",
            drop,
            "--inh-caps",
            drop,
            sys.executable,
            "-c",
            code,
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    if out.returncode != 0 and "setpriv" in out.stderr:
        pytest.skip(f"setpriv cannot drop capabilities here: {out.stderr.strip()}")
    assert out.stdout.strip() == f"errno 13 {path}", out.stderr


def test_native_mapping_reinit_refused(data_file: Path) -> None:
    from rulejet import _native

    m = _native.Mapping(str(data_file))
    with pytest.raises(RuntimeError):
        m.__init__(str(data_file))  # type: ignore[misc]
    m.close()


def test_uninitialised_native_mapping_is_closed() -> None:
    from rulejet import _native

    m = _native.Mapping.__new__(_native.Mapping)
    with pytest.raises(ClosedError):
        memoryview(m)
    m.close()


def test_a_timed_out_close_keeps_new_leases_refused_for_a_waiting_close(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    mf = MappedFile(path)
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with mf.lease():
            held.set()
            release.wait(10)

    t1 = threading.Thread(target=holder)
    t1.start()
    held.wait(10)
    t2 = threading.Thread(target=mf.close)  # waits for the holder
    t2.start()
    while not mf._closing:
        time.sleep(0.001)
    with pytest.raises(CloseTimeoutError):
        mf.close(timeout=0.05)
    with pytest.raises(ClosedError), mf.lease():  # t2 still waits: leases stay refused
        pass
    release.set()
    t1.join(10)
    t2.join(10)
    assert mf.closed
