"""Route sinks are opened before any event is read: a sink that cannot be
opened fails the run before any action ran, leaving no file behind."""

from __future__ import annotations

import os
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
