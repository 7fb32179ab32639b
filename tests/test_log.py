"""The durable log: appends, sync modes, back ends, segments, recovery,
corruption, concurrency, tailing, and a SIGKILL crash test across real
processes."""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
import threading
import time
from pathlib import Path

import pytest

from rulejet import Log, LogCorruptionError, ReadReport, _native
from rulejet.log import list_segments, verify

CTX = mp.get_context("fork")
# The project's own disk (O_DIRECT works there; tmpfs refuses it).
DISK = Path(__file__).resolve().parent.parent / "benchmarks" / ".data"


@pytest.fixture
def logdir(tmp_path: Path) -> Path:
    return tmp_path / "log"


@pytest.fixture
def diskdir(tmp_path: Path) -> Path:
    import shutil
    import uuid

    DISK.mkdir(parents=True, exist_ok=True)
    d = DISK / f"test-log-{uuid.uuid4().hex[:10]}"
    yield d  # type: ignore[misc]
    shutil.rmtree(d, ignore_errors=True)


def _payload(seq: int) -> bytes:
    return bytes([seq % 251]) * (seq % 300) + f"#{seq}".encode()


def _read_all(d: Path, **kw: object) -> list[tuple[int, bytes]]:
    return [(s, bytes(p)) for s, p in Log.read(d, **kw)]  # type: ignore[arg-type]


def test_crc32c_known_values_and_table_twin() -> None:
    assert _native.crc32c(b"123456789") == 0xE3069283  # the standard check value
    rng = random.Random(5)
    for n in [0, 1, 7, 8, 9, 63, 64, 65, 1000, 4099]:
        data = rng.randbytes(n)
        assert _native.crc32c(data) == _native.crc32c(data, 0, True)
        half = n // 2
        assert _native.crc32c(data[half:], _native.crc32c(data[:half])) == _native.crc32c(data)


@pytest.mark.parametrize("sync", ["group", "always", "interval", "none"])
@pytest.mark.parametrize("backend", ["write", "mmap", "io_uring"])
def test_append_read_reopen(diskdir: Path, sync: str, backend: str) -> None:
    with Log.open(diskdir, sync, backend=backend, interval=0.01) as log:  # type: ignore[arg-type]
        assert [log.append(_payload(i)) for i in range(500)] == list(range(500))
        assert log.append(b"now", durable=True) == 500
        assert log.stats()["durable"] >= 501
        assert log.append_many([_payload(i) for i in range(501, 900)]) == (501, 900)
        log.flush()
        st = log.stats()
        assert st["durable"] == 900 and st["sync"] == sync and st["backend"] == backend
    got = _read_all(diskdir)
    assert [s for s, _ in got] == list(range(900))
    assert all(p == (b"now" if s == 500 else _payload(s)) for s, p in got)
    with Log.open(diskdir, sync) as log:  # type: ignore[arg-type]
        assert log.recovery["torn_bytes"] == 0
        assert log.append(b"after") == 900
    assert _read_all(diskdir, from_seq=899) == [(899, _payload(899)), (900, b"after")]


def test_o_direct_where_the_file_system_takes_it(diskdir: Path) -> None:
    # The fallback to buffered writes + fdatasync happens where opening with
    # O_DIRECT fails (EINVAL); the probe sees the same thing the log does.
    shm = Path("/dev/shm") / f"rulejet-test-log-{os.getpid()}"
    try:
        for d in (diskdir, shm):
            with Log.open(d) as log:
                log.append(b"x", durable=True)
                assert log.stats()["o_direct"] is _native.probe_odirect(str(d))
            with Log.open(d, direct=False) as log:
                log.append(b"y", durable=True)
                assert log.stats()["o_direct"] is False
            assert _read_all(d) == [(0, b"x"), (1, b"y")]
    finally:
        import shutil

        shutil.rmtree(shm, ignore_errors=True)


def test_segments_roll_and_retention(logdir: Path) -> None:
    with Log.open(logdir, segment_bytes=64 << 10, buffer_bytes=16 << 10) as log:
        for i in range(3000):
            log.append(_payload(i))
        log.flush()
        assert log.stats()["segments_rolled"] >= 5
    segs = list_segments(logdir)
    assert len(segs) >= 6 and segs[0][0] == 0
    assert all(os.path.getsize(p) == 64 << 10 for _, p in segs)  # preallocated
    assert [s for s, _ in _read_all(logdir)] == list(range(3000))
    assert _read_all(logdir, from_seq=2500)[0][0] == 2500
    with Log.open(logdir, segment_bytes=64 << 10, buffer_bytes=16 << 10,
                  retain_bytes=4 * (64 << 10)) as log:  # fmt: skip
        for i in range(3000, 4000):
            log.append(_payload(i))
        log.flush()
        assert log.stats()["segments_removed"] > 0
    segs = list_segments(logdir)
    assert len(segs) <= 5
    got = _read_all(logdir)
    assert got[-1][0] == 3999 and [s for s, _ in got] == list(range(got[0][0], 4000))


def test_one_writer_per_log(logdir: Path) -> None:
    from rulejet import BusyError

    with Log.open(logdir) as log:
        with pytest.raises(BusyError, match="open for writing elsewhere"):
            Log.open(logdir)
        log.append(b"x")
    with Log.open(logdir) as log:  # closed: the lock went with it
        assert log.append(b"y") == 1


def test_records_too_large_and_closed_log(logdir: Path) -> None:
    log = Log.open(logdir, segment_bytes=64 << 10, buffer_bytes=16 << 10)
    with pytest.raises(ValueError, match="too large"):
        log.append(b"x" * (20 << 10))
    log.close()
    log.close()
    with pytest.raises(Exception, match="closed"):
        log.append(b"x")
    with pytest.raises(ValueError):
        Log.open(logdir, "sometimes")  # type: ignore[arg-type]


def test_threads_get_unique_dense_sequence_numbers(diskdir: Path) -> None:
    seen: list[list[int]] = [[] for _ in range(8)]

    with Log.open(diskdir, "group") as log:

        def work(t: int) -> None:
            for i in range(2000):
                seen[t].append(log.append(f"{t}:{i}".encode(), durable=(i % 50 == 0)))

        threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        stats = log.stats()
    allseqs = sorted(s for ss in seen for s in ss)
    assert allseqs == list(range(16000))
    assert all(ss == sorted(ss) for ss in seen)  # each thread's own appends in order
    assert stats["max_batch"] > 1  # concurrent appends shared commits
    records = dict(_read_all(diskdir))
    for t in range(8):
        for i, s in enumerate(seen[t]):
            assert records[s] == f"{t}:{i}".encode()


def test_tail_follows_a_log_being_written(logdir: Path) -> None:
    got: list[int] = []
    with Log.open(logdir, segment_bytes=64 << 10, buffer_bytes=16 << 10) as log:
        reader = Log.read(logdir, follow=True, poll=0.01)

        def follow() -> None:
            for seq, payload in reader:
                assert bytes(payload) == _payload(seq)
                got.append(seq)
                if seq == 1999:
                    return

        t = threading.Thread(target=follow)
        t.start()
        for i in range(2000):
            log.append(_payload(i))
            if i % 100 == 0:
                log.flush()
                time.sleep(0.002)
        log.flush()
        t.join(30)
    assert got == list(range(2000))


# ---- corruption ----


def _make(d: Path, n: int = 400, seg: int = 64 << 10) -> None:
    with Log.open(d, segment_bytes=seg, buffer_bytes=16 << 10) as log:
        for i in range(n):
            log.append(_payload(i))


def _check_never_wrong(d: Path) -> ReadReport:
    rep = ReadReport()
    for seq, payload in Log.read(d, strict=False, report=rep):
        assert bytes(payload) == _payload(seq), f"wrong payload for {seq}"
    return rep


@pytest.mark.parametrize("trial", range(12))
def test_random_damage_never_yields_a_wrong_payload(logdir: Path, trial: int) -> None:
    _make(logdir, 1500)
    rng = random.Random(trial)
    segs = list_segments(logdir)
    _, victim = segs[rng.randrange(len(segs) - 1)]  # a sealed segment
    with open(victim, "r+b") as f:
        size = os.path.getsize(victim)
        kind = trial % 3
        if kind == 0:  # flip random bytes in the data
            for _ in range(rng.randint(1, 5)):
                off = rng.randrange(4096, 4096 + 20000)
                f.seek(off)
                b = f.read(1)
                f.seek(off)
                f.write(bytes([b[0] ^ (1 << rng.randrange(8))]))
        elif kind == 1:  # zero a whole block
            f.seek(4096 * rng.randint(1, 4))
            f.write(b"\0" * 4096)
        else:  # truncate the segment at a random offset
            f.truncate(rng.randrange(4096, size))
    rep = _check_never_wrong(logdir)
    assert rep.problems  # and the report says where
    seg, off, what = rep.problems[0]
    assert seg == victim and off >= 0 and what
    with pytest.raises(LogCorruptionError) as info:
        for _ in Log.read(logdir):
            pass
    assert info.value.segment == victim
    assert verify(logdir).problems


def test_torn_tail_is_truncated_on_open_and_reported(logdir: Path) -> None:
    _make(logdir, 300)
    (_, path), *_ = list_segments(logdir)[-1:]
    good = _read_all(logdir)
    end = Log.open(logdir).recovery["offset"]
    # A crash mid-write: garbage after the last record.
    with open(path, "r+b") as f:
        f.seek(end)
        f.write(b"\x13" * 700)
    rep = ReadReport()
    assert [(s, bytes(p)) for s, p in Log.read(logdir, report=rep)] == good
    assert rep.torn_tail == (path, end)
    with Log.open(logdir) as log:
        assert log.recovery["torn_bytes"] == 700 and log.recovery["offset"] == end
        assert log.append(b"next") == 300
    assert _read_all(logdir)[-1] == (300, b"next")


def test_corruption_mid_last_segment_strict_and_lenient(logdir: Path) -> None:
    _make(logdir, 300, seg=1 << 20)
    (_, path), *_ = list_segments(logdir)
    with open(path, "r+b") as f:
        f.seek(4096 + 40)
        f.write(b"\xff\xff")
    with pytest.raises(LogCorruptionError) as info:
        Log.open(logdir)
    assert info.value.segment == path and 4096 < info.value.offset <= 4096 + 40
    with Log.open(logdir, strict=False) as log:
        assert log.recovery["corrupt_middle"] and log.recovery["lost_records"] > 0
        assert log.append(b"fresh") == 1  # record 0 stays; from the damage on, dropped


# ---- crash test ----


def _appender(d: str, conn: object, start: int, backend: str) -> None:
    log = Log.open(d, "group", segment_bytes=1 << 20, buffer_bytes=64 << 10, backend=backend)  # type: ignore[arg-type]
    i = start
    while True:
        _first, end = log.append_many([_payload(s) for s in range(i, i + 20)], durable=True)
        conn.send(end - 1)  # type: ignore[attr-defined]
        i = end


@pytest.mark.parametrize("backend, kills", [("write", 50), ("io_uring", 20)])
def test_sigkill_loses_no_acknowledged_record(diskdir: Path, backend: str, kills: int) -> None:
    rng = random.Random(7)
    acked = -1
    for _kill in range(kills):
        nxt = acked + 1
        with Log.open(diskdir, segment_bytes=1 << 20, buffer_bytes=64 << 10) as log:
            nxt = log.stats()["appended"]
        mine, theirs = CTX.Pipe(duplex=False)
        p = CTX.Process(target=_appender, args=(str(diskdir), theirs, nxt, backend))
        p.start()
        theirs.close()
        deadline = time.monotonic() + rng.uniform(0.02, 0.12)
        while time.monotonic() < deadline or acked < nxt:
            if mine.poll(1):
                acked = max(acked, mine.recv())
            assert p.is_alive() or acked >= nxt
        os.kill(p.pid, signal.SIGKILL)
        p.join()
        try:
            while mine.poll():
                acked = max(acked, mine.recv())
        except EOFError:  # the pipe's end (or a message cut by the kill)
            pass
        mine.close()
        got = _read_all(diskdir)
        assert [s for s, _ in got] == list(range(len(got)))
        assert len(got) > acked  # every acknowledged record survived
        assert all(payload == _payload(s) for s, payload in got)  # byte-exact
    with Log.open(diskdir) as log:  # and the log takes new appends
        n = log.append(b"still fine", durable=True)
    assert _read_all(diskdir, from_seq=n) == [(n, b"still fine")]


# ---- the engine and the CLI ----


def test_route_to_a_log_and_the_log_commands(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    from rulejet.cli import main

    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "sinks:\n  keep: {log: kept.log}\n"
        "rules:\n  - name: adults\n    when: 'age >= 18'\n    then: [{route: keep}]\n"
    )
    events = tmp_path / "ev.ndjson"
    lines = [f'{{"id": {i}, "age": {i % 40}}}' for i in range(1000)]
    events.write_text("\n".join(lines) + "\n")
    assert main(["run", str(rules), str(events), "--out", str(tmp_path), "--quiet"]) == 0
    want = [ln.encode() for ln in lines if int(ln.split('"age": ')[1][:-1]) >= 18]
    assert [p for _, p in _read_all(tmp_path / "kept.log")] == want
    capsysbinary.readouterr()
    assert main(["log", "read", str(tmp_path / "kept.log"), "--from", "2", "--with-seq"]) == 0
    out = capsysbinary.readouterr().out.splitlines()
    assert out[0] == b"2\t" + want[2] and len(out) == len(want) - 2
    assert main(["log", "verify", str(tmp_path / "kept.log")]) == 0
    # Damage a record: verify reports it (exit 1) with the segment and offset.
    (_, seg), *_ = list_segments(tmp_path / "kept.log")
    with open(seg, "r+b") as f:
        f.seek(4096 + 20)
        f.write(b"\xff")
    capsysbinary.readouterr()
    assert main(["log", "verify", str(tmp_path / "kept.log"), "--format", "json"]) == 1
    import json as _json

    report = _json.loads(capsysbinary.readouterr().out)
    assert report["problems"][0]["segment"] == seg and report["problems"][0]["offset"] == 4096
    assert main(["log", "verify", str(tmp_path / "missing")]) == 1


def test_a_bad_log_sink_is_a_rule_file_error(tmp_path: Path) -> None:
    from rulejet import RuleFileError, load_rule_file

    rules = tmp_path / "rules.yaml"
    rules.write_text("sinks:\n  keep: {log: 5}\nrules:\n  - name: a\n    when: 'true'\n")
    with pytest.raises(RuleFileError, match="log: DIR"):
        load_rule_file(str(rules))


@pytest.mark.parametrize("trial", range(6))
def test_native_reader_matches_the_reference(logdir: Path, trial: int) -> None:
    from rulejet._ref.log import read_lenient

    _make(logdir, 600, seg=32 << 10)
    rng = random.Random(100 + trial)
    for _, victim in list_segments(logdir)[:-1]:
        with open(victim, "r+b") as f:
            for _ in range(rng.randint(0, 3)):
                off = rng.randrange(4096, 20000)
                f.seek(off)
                f.write(rng.randbytes(rng.randint(1, 40)) if trial % 2 else b"\0" * 64)
    native = [(s, bytes(p)) for s, p in Log.read(logdir, strict=False)]
    assert native == read_lenient(str(logdir))


@pytest.mark.parametrize("backend", ["write", "mmap"])
@pytest.mark.parametrize("payload", [5, 4080])  # a cut mid-block, and one at a block's end
def test_reopen_after_a_cut_at_a_record_boundary(logdir: Path, backend: str, payload: int) -> None:
    """A crash can leave the segment cut exactly after a record (nothing
    torn): it must grow back, or writes fail (EEXIST) or fault (SIGBUS)."""
    with Log.open(logdir, backend=backend) as log:
        log.append(b"a" * payload)
    seg = logdir / "00000000000000000000.rjlog"
    # The header block, the record's 16-byte header, its payload padded to 8.
    os.truncate(seg, 4096 + 16 + -(-payload // 8) * 8)
    assert _read_all(logdir) == [(0, b"a" * payload)]
    with Log.open(logdir, backend=backend) as log:
        assert log.append(b"after") == 1
    assert _read_all(logdir) == [(0, b"a" * payload), (1, b"after")]


def test_sync_always_appends_return_once_durable(logdir: Path) -> None:
    with Log.open(logdir, sync="always") as log:
        for _ in range(50):
            seq = log.append(b"x")
            assert log.stats()["durable"] > seq
            first, end = log.append_many([b"y", b"z"])
            assert log.stats()["durable"] >= end > first


def test_append_many_records_are_consecutive_under_threads(logdir: Path) -> None:
    results: list[tuple[int, int, int]] = []
    with Log.open(logdir, buffer_bytes=64 << 10) as log:

        def work(t: int) -> None:
            items = [f"{t}:{i}:".encode() + b"p" * 40 for i in range(2000)]
            first, end = log.append_many(items, durable=True)
            results.append((t, first, end))

        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    records = dict(_read_all(logdir))
    for t, first, end in results:
        assert end - first == 2000
        assert all(records[first + i].startswith(f"{t}:{i}:".encode()) for i in range(2000))
