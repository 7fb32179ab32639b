"""run_file(workers=N): Python actions in worker processes fed over a ring;
counts and action effects identical to the single-process run."""

from __future__ import annotations

import glob
import json
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rulejet import Engine, Rule
from rulejet.workers import ActionError, WorkerError, decode, encode


def _events(tmp_path: Path, n: int = 20_000) -> str:
    path = tmp_path / "events.ndjson"
    with open(path, "w") as f:
        for i in range(n):
            country = ["US", "FR", "DE"][i % 3]
            ev = {"id": i, "age": i % 90, "country": country, "name": "é" * (i % 5)}
            f.write(json.dumps(ev, ensure_ascii=False) + "\n")
        f.write("{not json}\n")
    return str(path)


def _recorder(out_dir: Path, tag: str) -> Callable[[Any], None]:
    def act(ev: Any) -> None:
        # O_APPEND writes of one short line do not interleave across processes.
        with open(out_dir / f"{tag}-{os.getpid()}.txt", "a") as f:
            f.write(f"{tag}\t{ev['id']}\t{ev['name']}\n")

    return act


def _collect(out_dir: Path) -> list[str]:
    lines = []
    for f in glob.glob(str(out_dir / "*.txt")):
        with open(f) as fh:
            lines.extend(fh)
        os.unlink(f)
    return sorted(lines)


def _engine(out_dir: Path) -> Engine:
    e = Engine(
        [
            Rule("adult-us", "age >= 18 && country == 'US'", _recorder(out_dir, "adult")),
            Rule("fr", "country == 'FR'", _recorder(out_dir, "fr")),
            Rule("young", lambda d: d["age"] < 10),  # a callable condition: mixed path
            Rule("counted", "age >= 0"),
        ]
    )
    e.on("young")(_recorder(out_dir, "young"))
    return e


@pytest.mark.parametrize("workers, threads", [(1, 1), (2, 1), (2, 2), (3, 2)])
def test_workers_give_the_same_counts_and_actions(
    tmp_path: Path, workers: int, threads: int
) -> None:
    path = _events(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    e = _engine(out)
    base = e.run_file(path)
    expected = _collect(out)
    assert base.workers == 0 and len(expected) > 10_000
    got = e.run_file(path, workers=workers, threads=threads)
    assert got.workers == workers
    assert got.matches == base.matches
    assert got.actions_run == base.actions_run
    assert got.errors == base.errors == 1
    assert _collect(out) == expected
    assert base.actions_run["counted"] == 0 and base.actions_run["fr"] > 0
    assert not glob.glob(f"/dev/shm/rulejet-ring-run-{os.getpid()}-*")  # ring removed


def test_an_action_error_in_a_worker_is_raised(tmp_path: Path) -> None:
    path = _events(tmp_path, 500)

    def boom(ev: Any) -> None:
        if ev["id"] == 300:
            raise KeyError("no such thing")

    e = Engine([Rule("r", "age >= 0", boom)])
    with pytest.raises(ActionError, match="no such thing") as info:
        e.run_file(path, workers=2)
    # Counts are of actions that ran: every event before the failing one
    # (each worker takes events in order), none after it in its worker.
    assert 300 <= info.value.counts["r"] < 500
    with pytest.raises(KeyError):
        e.run_file(path)  # in-process, the same error propagates


def test_a_worker_that_dies_is_reported(tmp_path: Path) -> None:
    path = _events(tmp_path, 2000)

    def die(ev: Any) -> None:
        if ev["id"] == 5:
            os.kill(os.getpid(), signal.SIGKILL)

    e = Engine([Rule("r", "age >= 0", die)])
    with pytest.raises(WorkerError, match=r"died|stopped early"):
        e.run_file(path, workers=1)
    assert not glob.glob(f"/dev/shm/rulejet-ring-run-{os.getpid()}-*")


def test_messages_round_trip() -> None:
    assert decode(encode([3, 0, 65535], b'{"a":1}')) == ((3, 0, 65535), b'{"a":1}')
    assert decode(encode([], b"")) == ((), b"")


def test_bad_worker_count(tmp_path: Path) -> None:
    e = Engine([Rule("r", "age >= 0", lambda d: None)])
    with pytest.raises(ValueError):
        e.run_file(_events(tmp_path, 10), workers=-1)


def test_an_event_too_big_for_the_ring_runs_its_actions_here(tmp_path: Path) -> None:
    """A matched line larger than the ring's messages: its actions run in
    the parent, with the same counts and routed lines as without workers."""
    from rulejet import workers

    path = tmp_path / "big.ndjson"
    big = b'{"a": 2, "pad": "' + b"x" * (workers.LOCAL_BYTES + 10) + b'"}'
    path.write_bytes(b'{"a": 1}\n' + big + b'\n{"a": 3}\n')
    seen: list[int] = []
    e = Engine([Rule("r", "a > 0", then=[{"route": "s"}, lambda d: seen.append(d["a"])])])
    base = e.run_file(path, out_dir=tmp_path / "o0")
    seen.clear()
    got = e.run_file(path, out_dir=tmp_path / "o1", workers=2)
    assert got.matches == base.matches == {"r": 3}
    assert got.actions_run == base.actions_run == {"r": 3}
    assert (tmp_path / "o1" / "s.ndjson").read_bytes() == path.read_bytes()
    assert seen == [2]  # only the big event ran here; the others in the workers' processes
