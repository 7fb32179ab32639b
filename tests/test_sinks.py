"""Route sinks are opened before any event is read: a sink that cannot be
opened fails the run before any action ran, removing the files it created
unless another writer has used them meanwhile."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from array import array
from pathlib import Path
from typing import Any

import pytest

from rulejet import BusyError, Engine, Log, Rule, sinks


def _events(tmp_path: Path) -> Path:
    path = tmp_path / "e.ndjson"
    path.write_bytes(b'{"a": 1}\n{"a": 2}\n{"a": 0}\n')
    return path


def _engine(calls: list[Any], sink_specs: dict[str, Any]) -> Engine:
    then = [*({"route": name} for name in sink_specs), calls.append]
    return Engine([Rule("r", "a > 0", then=then)], sinks=sink_specs)


def test_an_unopenable_sink_fails_before_actions_and_removes_what_it_created(
    tmp_path: Path,
) -> None:
    (tmp_path / "blocker").write_text("a file where a directory should be")
    calls: list[Any] = []
    e = _engine(
        calls,
        {
            "first": {"path": str(tmp_path / "first.ndjson")},
            "bad": {"path": str(tmp_path / "blocker" / "x.ndjson")},
        },
    )
    with pytest.raises(OSError):
        e.run_file(_events(tmp_path))
    assert calls == []
    assert not (tmp_path / "first.ndjson").exists()


def test_an_existing_sink_file_is_kept_when_the_run_cannot_start(tmp_path: Path) -> None:
    first = tmp_path / "first.ndjson"
    first.write_bytes(b"kept\n")
    (tmp_path / "blocker").write_text("")
    calls: list[Any] = []
    e = _engine(
        calls,
        {"first": {"path": str(first)}, "bad": {"log": str(tmp_path / "blocker" / "log")}},
    )
    with pytest.raises(OSError):
        e.run_file(_events(tmp_path))
    assert calls == [] and first.read_bytes() == b"kept\n"


def test_a_log_sink_held_by_another_writer_fails_before_actions(tmp_path: Path) -> None:
    calls: list[Any] = []
    e = _engine(calls, {"hits": {"log": str(tmp_path / "hits")}})
    with Log.open(tmp_path / "hits"), pytest.raises(BusyError):
        e.run_file(_events(tmp_path))
    assert calls == []


def test_routes_sharing_a_log_share_its_writer(tmp_path: Path) -> None:
    log_dir = str(tmp_path / "shared")
    e = _engine([], {"one": {"log": log_dir}, "two": {"log": f"{tmp_path}/./shared"}})
    stats = e.run_file(_events(tmp_path))
    assert stats.routed == {"one": 2, "two": 2}
    one, two = b'{"a": 1}', b'{"a": 2}'
    assert [bytes(p) for _, p in Log.read(log_dir)] == [one, two, one, two]  # route by route


def test_sinks_are_created_empty_when_nothing_is_routed(tmp_path: Path) -> None:
    e = _engine([], {"hits": {"path": str(tmp_path / "out" / "hits.ndjson")}})
    (tmp_path / "none.ndjson").write_bytes(b'{"a": 0}\n')
    assert e.run_file(tmp_path / "none.ndjson").routed == {}
    assert (tmp_path / "out" / "hits.ndjson").read_bytes() == b""


def test_no_actions_opens_no_sinks(tmp_path: Path) -> None:
    e = _engine([], {"hits": {"path": str(tmp_path / "hits.ndjson")}})
    assert e.run_file(_events(tmp_path), actions=False).matches == {"r": 2}
    assert not (tmp_path / "hits.ndjson").exists()


def test_make_parents_syncs_each_new_directory_into_its_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    sinks.make_parents(str(tmp_path / "a" / "b" / "file"))
    assert (tmp_path / "a" / "b").is_dir()
    assert synced == [str(tmp_path), str(tmp_path / "a")]
    synced.clear()
    sinks.make_parents(str(tmp_path / "a" / "b" / "other"))  # nothing new: nothing to sync
    assert synced == []


def test_a_busy_log_fails_before_any_sink_file_is_created(tmp_path: Path) -> None:
    # Logs open first: a path sink another run appends to is never created
    # (and so never removed) by a run that cannot start.
    calls: list[Any] = []
    e = _engine(
        calls,
        {
            "first": {"path": str(tmp_path / "first.ndjson")},
            "hits": {"log": str(tmp_path / "hits")},
        },
    )
    with Log.open(tmp_path / "hits"), pytest.raises(BusyError):
        e.run_file(_events(tmp_path))
    assert calls == [] and not (tmp_path / "first.ndjson").exists()


def test_a_failed_start_keeps_a_file_another_run_opened_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Run A creates out.ndjson, then fails on a later sink; in between, run B
    # opens the same (empty) file. A must not remove it: B's lines go there.
    out, blocker = tmp_path / "out.ndjson", tmp_path / "blocker"
    blocker.write_text("a file where a directory should be")
    real = sinks.make_parents
    b: list[sinks.Sinks] = []

    def make_parents(path: str) -> None:
        if path.startswith(str(blocker)) and not b:
            b.append(sinks.Sinks(iter([("keep", {"path": str(out)})]), None))
        real(path)

    monkeypatch.setattr(sinks, "make_parents", make_parents)
    specs = [("a", {"path": str(out)}), ("z", {"path": str(blocker / "x")})]
    with pytest.raises(OSError):
        sinks.Sinks(iter(specs), None)
    line = b'{"id":1}\n'
    with b[0] as kept:
        kept.write("keep", memoryview(line), array("Q", [0, len(line) - 1]))
    assert out.read_bytes() == line


def test_a_file_removed_before_its_lock_is_opened_again(tmp_path: Path) -> None:
    path = str(tmp_path / "out.ndjson")
    fd, made = sinks._open_shared(path)
    assert made
    sinks._remove_if_unshared(path, fd)  # nobody else holds it: removed
    assert not os.path.exists(path)
    os.close(fd)
    fd, made = sinks._open_shared(path)
    other, other_made = sinks._open_shared(path)
    assert made and not other_made
    sinks._remove_if_unshared(path, fd)  # the other holder keeps it
    assert os.path.exists(path)
    os.close(fd)
    os.close(other)


def test_a_failed_start_creates_no_log(tmp_path: Path) -> None:
    # Directories first: a path sink that cannot have its directory fails the
    # run before a new log is made (a log cannot safely be removed again).
    (tmp_path / "blocker").write_text("")
    specs = [
        ("p", {"path": str(tmp_path / "blocker" / "x.ndjson")}),
        ("l", {"log": str(tmp_path / "new.log")}),
    ]
    with pytest.raises(OSError):
        sinks.Sinks(iter(specs), None)
    assert not (tmp_path / "new.log").exists()


def test_one_path_as_a_file_and_a_log_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="as a file and as a log"):
        sinks.Sinks(iter([("x", {}), ("l", {"log": "x.ndjson"})]), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_routes_to_one_log_through_a_symlink_share_its_writer(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    e = _engine(
        [],
        {
            "one": {"log": str(tmp_path / "real" / "log")},
            "two": {"log": str(tmp_path / "alias" / "log")},
        },
    )
    assert e.run_file(_events(tmp_path)).routed == {"one": 2, "two": 2}
    assert len(list(Log.read(tmp_path / "real" / "log"))) == 4


def test_sinks_naming_one_log_must_agree_on_sync(tmp_path: Path) -> None:
    calls: list[Any] = []
    log_dir = str(tmp_path / "log")
    e = _engine(calls, {"one": {"log": log_dir}, "two": {"log": log_dir, "sync": "always"}})
    with pytest.raises(ValueError, match="different sync settings"):
        e.run_file(_events(tmp_path))
    assert calls == [] and not os.path.exists(log_dir)


@pytest.mark.skipif(sys.platform != "linux" or os.geteuid() != 0, reason="needs root to setuid")
def test_sinks_open_under_a_parent_that_cannot_be_read() -> None:
    # A parent directory with mode -wx (write and search, no read) cannot be
    # opened to fsync; the sinks open anyway, as they did before that fsync.
    # Run as an unprivileged user in a child process (root reads everything),
    # in a directory of its own that user can reach (pytest's are 0700).
    base = Path(tempfile.mkdtemp(prefix="rulejet-wx-"))
    try:
        os.chmod(base, 0o711)
        events = _events(base)
        os.chmod(events, 0o644)
        top = base / "wx"
        top.mkdir()
        os.chown(top, 65534, 65534)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through its exit code
            code = 1
            try:
                os.setgid(65534)
                os.setuid(65534)
                os.chmod(top, 0o300)
                # The log's directory is made by the native open, the file's by make_parents.
                specs = {"log": {"log": str(top / "log")}, "file": {"path": str(top / "new" / "f")}}
                stats = _engine([], specs).run_file(events)
                code = 0 if stats.routed == {"log": 2, "file": 2} else 2
            except BaseException as exc:
                os.write(2, f"child: {exc!r}\n".encode())
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        os.chmod(top, 0o700)
        assert os.waitstatus_to_exitcode(status) == 0
        assert len(list(Log.read(top / "log"))) == 2
        assert (top / "new" / "f").read_bytes().count(b"\n") == 2
    finally:
        shutil.rmtree(base)
