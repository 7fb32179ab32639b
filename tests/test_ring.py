"""Ring: the shared-memory message ring, within a process and across real
processes (stress with checksums, SIGKILL of a producer and a consumer,
attach to garbage, rings left behind)."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Iterator

import pytest

from rulejet import ClosedError, FileError, Ring, RingError
from rulejet.ring import ring_path

CTX = mp.get_context("fork")
# Messages per mode in the cross-process stress; RULEJET_RING_STRESS
# overrides (the sanitized run of the suite uses fewer).
STRESS = int(os.environ.get("RULEJET_RING_STRESS", "10000000"))
HEAD = struct.Struct("<IQI")  # producer, sequence number, crc32 of the payload


@pytest.fixture
def name() -> Iterator[str]:
    n = f"test-{uuid.uuid4().hex[:12]}"
    yield n
    Ring.remove(n)


@pytest.mark.parametrize("mode", ["spsc", "mpmc"])
def test_put_get_in_order(name: str, mode: str) -> None:
    with Ring.create(name, 4096, mode=mode) as r:  # type: ignore[arg-type]
        assert r.mode == mode and r.capacity == 4096
        r.put(b"hello")
        r.put_many([b"", bytearray(b"abc"), memoryview(b"xyz")])
        assert r.get() == b"hello"
        assert r.get_many(10) == [b"", b"abc", b"xyz"]
        with pytest.raises(TimeoutError):
            r.get(timeout=0.01)
        with pytest.raises(TimeoutError):
            r.get_many(5, timeout=0)
        # Wrap around the end many times with lengths that do not divide it.
        for i in range(3000):
            m = bytes([i % 251]) * (i % 301)
            r.put(m)
            assert r.get() == m


@pytest.mark.parametrize("mode", ["spsc", "mpmc"])
def test_full_ring_times_out_and_oversize_is_rejected(name: str, mode: str) -> None:
    with Ring.create(name, 4096, mode=mode) as r:  # type: ignore[arg-type]
        biggest = r.info()["max_message"]
        with pytest.raises(ValueError, match="larger than the ring"):
            r.put(b"x" * (biggest + 1))
        r.put(b"y" * biggest)
        with pytest.raises(TimeoutError):
            r.put(b"z", timeout=0.01)
        with pytest.raises(TimeoutError, match="put 0 of 2"):
            r.put_many([b"a", b"b"], timeout=0.01)
        assert r.get() == b"y" * biggest
        r.put(b"z")
        assert r.get() == b"z"


def test_attach_sees_the_same_ring_and_close_is_final(name: str) -> None:
    a = Ring.create(name, 1 << 16, mode="mpmc")
    b = Ring.attach(name)
    a.put(b"from a")
    assert b.get() == b"from a"
    assert b.mode == "mpmc"
    a.close()
    assert a.closed
    with pytest.raises(ClosedError):
        a.put(b"x")
    b.close()


def test_names_and_missing_rings(name: str) -> None:
    for bad in ["", "a/b", "..", "x" * 300, "sp ace"]:
        with pytest.raises(ValueError):
            Ring.create(bad, 4096)
    with pytest.raises(FileError):
        Ring.attach(name)  # nothing there
    r = Ring.create(name, 4096)
    with pytest.raises(FileError):
        Ring.create(name, 4096)  # taken
    r.unlink()
    assert not os.path.exists(ring_path(name))
    r.put(b"still mapped")
    assert r.get() == b"still mapped"
    r.close()
    assert Ring.remove(name) is False
    with pytest.raises(ValueError):
        Ring.create(name, 4096, mode="lifo")  # type: ignore[arg-type]


def _corrupt(name: str, offset: int, data: bytes) -> None:
    with open(ring_path(name), "r+b") as f:
        f.seek(offset)
        f.write(data)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda n: _corrupt(n, 0, b"NOTARING"), "bad magic"),
        (lambda n: _corrupt(n, 8, b"\x09"), "version"),
        (lambda n: _corrupt(n, 16, b"\x00\x20"), "checksum"),
        (lambda n: os.truncate(ring_path(n), 8192), "size"),
        (lambda n: os.truncate(ring_path(n), 100), "too small"),
    ],
)
def test_attach_rejects_damaged_rings(name: str, damage, message: str) -> None:  # type: ignore[no-untyped-def]
    Ring.create(name, 1 << 14).close()
    damage(name)
    with pytest.raises(RingError, match=message):
        Ring.attach(name)


def test_attach_to_garbage(name: str) -> None:
    with open(ring_path(name), "wb") as f:
        f.write(os.urandom(1 << 16))
    with pytest.raises(RingError):
        Ring.attach(name)
    with open(ring_path(name), "wb") as f:
        f.write(b"")
    with pytest.raises(RingError, match="too small"):
        Ring.attach(name)


# ---- across processes ----


def _message(producer: int, seq: int) -> bytes:
    payload = bytes([(seq + producer) % 256]) * (seq % 97)
    return HEAD.pack(producer, seq, zlib.crc32(payload)) + payload


def _produce(name: str, producer: int, count: int, batch: int) -> None:
    r = Ring.attach(name)
    for start in range(0, count, batch):
        r.put_many([_message(producer, s) for s in range(start, min(count, start + batch))])
    r.close()
    os._exit(0)


def _consume(name: str, out: mp.Queue, timeout: float) -> None:  # type: ignore[type-arg]
    """Check every message until an empty one (the end), and report
    (messages, next sequence number per producer, errors)."""
    r = Ring.attach(name)
    nxt: dict[int, int] = {}
    errors: list[str] = []
    got = 0
    try:
        while True:
            batch = r.get_many(512, timeout=timeout)
            for k, m in enumerate(batch):
                if m == b"":
                    # Another consumer's end marks taken with ours go back.
                    r.put_many([e for e in batch[k + 1 :] if e == b""])
                    raise StopIteration
                got += 1
                producer, seq, crc = HEAD.unpack_from(m)
                if zlib.crc32(memoryview(m)[HEAD.size :]) != crc or m != _message(producer, seq):
                    errors.append(f"corrupt message {producer}/{seq}")
                if seq < nxt.get(producer, 0):
                    errors.append(f"producer {producer}: {seq} after {nxt[producer] - 1}")
                nxt[producer] = seq + 1
    except StopIteration:
        pass
    except TimeoutError:
        errors.append("timed out waiting for the end")
    out.put((got, nxt, errors[:10]))
    r.close()


def _run_stress(name: str, mode: str, producers: int, consumers: int, count: int) -> None:
    Ring.create(name, 1 << 20, mode=mode).close()  # type: ignore[arg-type]
    out: mp.Queue = CTX.Queue()  # type: ignore[type-arg]
    per = count // producers
    cons = [CTX.Process(target=_consume, args=(name, out, 60.0)) for _ in range(consumers)]
    prods = [CTX.Process(target=_produce, args=(name, p, per, 256)) for p in range(producers)]
    for p in cons + prods:
        p.start()
    for p in prods:
        p.join(300)
        assert p.exitcode == 0
    with Ring.attach(name) as r:
        r.put_many([b""] * consumers)  # one end mark per consumer
    results = [out.get(timeout=300) for _ in cons]
    for p in cons:
        p.join(60)
    total = sum(g for g, _, _ in results)
    errors = [e for _, _, es in results for e in es]
    assert not errors
    assert total == per * producers  # exactly once: no loss, no duplicates
    if consumers == 1:
        assert results[0][1] == dict.fromkeys(range(producers), per)


def test_stress_spsc_across_processes(name: str) -> None:
    _run_stress(name, "spsc", 1, 1, STRESS)


def test_stress_mpmc_two_producers_two_consumers(name: str) -> None:
    # Each consumer checks order per producer within what it got; together
    # they must have exactly count messages (a duplicate or a loss changes it).
    _run_stress(name, "mpmc", 2, 2, STRESS)


def _produce_forever(name: str, ready: mp.Event) -> None:  # type: ignore[type-arg]
    r = Ring.attach(name)
    seq = 0
    ready.set()
    while True:
        r.put(_message(0, seq))
        seq += 1


@pytest.mark.parametrize("mode", ["spsc", "mpmc"])
def test_killed_producer_leaves_everything_committed_readable(name: str, mode: str) -> None:
    r = Ring.create(name, 1 << 16, mode=mode)  # type: ignore[arg-type]
    ready = CTX.Event()
    p = CTX.Process(target=_produce_forever, args=(name, ready))
    p.start()
    assert ready.wait(30)
    got = 0
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline:  # read while it writes, then kill it mid-stream
        for m in r.get_many(256, timeout=5):
            assert m == _message(0, got)
            got += 1
    os.kill(p.pid, signal.SIGKILL)
    p.join()
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        while True:
            for m in r.get_many(256, timeout=0.5):
                assert m == _message(0, got)  # intact, in order, none lost
                got += 1
    assert time.monotonic() - t0 < 30
    assert got > 0
    r.close()


def _consume_forever(name: str, ready: mp.Event) -> None:  # type: ignore[type-arg]
    r = Ring.attach(name)
    ready.set()
    while True:
        r.get()


def test_killed_consumer_makes_producers_time_out(name: str) -> None:
    r = Ring.create(name, 4096, mode="mpmc")
    ready = CTX.Event()
    c = CTX.Process(target=_consume_forever, args=(name, ready))
    c.start()
    assert ready.wait(30)
    r.put(b"x" * 100)
    os.kill(c.pid, signal.SIGKILL)
    c.join()
    with pytest.raises(TimeoutError):
        for _ in range(1000):
            r.put(b"y" * 100, timeout=0.2)
    r.close()


def _leave_a_ring(name: str) -> None:
    r = Ring.create(name, 1 << 14, mode="spsc")
    r.put_many([b"left", b"behind"])
    os.kill(os.getpid(), signal.SIGKILL)


def test_ring_left_by_a_killed_process_can_be_attached_or_removed(name: str) -> None:
    p = CTX.Process(target=_leave_a_ring, args=(name,))
    p.start()
    p.join()
    assert p.exitcode == -signal.SIGKILL
    r = Ring.attach(name)
    assert r.get_many(10) == [b"left", b"behind"]
    r.close()
    assert Ring.remove(name)
    with pytest.raises(FileError):
        Ring.attach(name)


def test_a_ring_pickles_by_name(name: str) -> None:
    import pickle

    r = Ring.create(name, 4096)
    r.put(b"through pickle")
    r2 = pickle.loads(pickle.dumps(r))
    assert r2.get() == b"through pickle"
    r.close()
    r2.close()


# ---- a stateful model: the ring against a deque with the same room rules ----

from collections import deque  # noqa: E402

from hypothesis import settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule  # noqa: E402


def _room(mode: str, length: int) -> int:
    """Bytes (SPSC) or 32-byte slots (MPMC) a message takes: ring.h."""
    if mode == "spsc":
        return 8 + (length + 7) // 8 * 8
    return (8 + length + 31) // 32


class RingModel(RuleBasedStateMachine):
    """Within one process, every put/get/put_many/get_many on a 4 KiB ring
    agrees with a deque holding the same messages, where a put succeeds
    exactly when the ring has room by the layout's own accounting."""

    @initialize(mode=st.sampled_from(["spsc", "mpmc"]))
    def start(self, mode: str) -> None:
        self.mode = mode
        self.name = f"model-{uuid.uuid4().hex[:12]}"
        self.ring = Ring.create(self.name, 4096, mode=mode)  # type: ignore[arg-type]
        self.capacity = 4096 if mode == "spsc" else 4096 // 32
        self.model: deque[bytes] = deque()
        self.used = 0

    def teardown(self) -> None:
        if hasattr(self, "ring"):
            self.ring.close()
            Ring.remove(self.name)

    @rule(data=st.binary(max_size=600))
    def put(self, data: bytes) -> None:
        need = _room(self.mode, len(data))
        if self.used + need <= self.capacity:
            self.ring.put(data, timeout=0)
            self.model.append(data)
            self.used += need
        else:
            with pytest.raises(TimeoutError):
                self.ring.put(data, timeout=0)

    @rule(items=st.lists(st.binary(max_size=200), max_size=20))
    def put_many(self, items: list[bytes]) -> None:
        fits = 0
        used = self.used
        for it in items:
            if used + _room(self.mode, len(it)) > self.capacity:
                break
            used += _room(self.mode, len(it))
            fits += 1
        if fits == len(items):
            self.ring.put_many(items, timeout=0)
        else:
            with pytest.raises(TimeoutError) as info:
                self.ring.put_many(items, timeout=0)
            assert info.value.put_count == fits  # type: ignore[attr-defined]
        self.model.extend(items[:fits])
        self.used = used

    @rule()
    def get(self) -> None:
        if self.model:
            want = self.model.popleft()
            assert self.ring.get(timeout=0) == want
            self.used -= _room(self.mode, len(want))
        else:
            with pytest.raises(TimeoutError):
                self.ring.get(timeout=0)

    @rule(n=st.integers(1, 30))
    def get_many(self, n: int) -> None:
        if not self.model:
            with pytest.raises(TimeoutError):
                self.ring.get_many(n, timeout=0)
            return
        got = self.ring.get_many(n, timeout=0)
        want = [self.model.popleft() for _ in range(min(n, len(self.model)))]
        assert got == want
        self.used -= sum(_room(self.mode, len(w)) for w in want)

    @invariant()
    def biggest_message_is_capacity_minus_header(self) -> None:
        if hasattr(self, "ring"):
            assert self.ring.info()["max_message"] == 4096 - 8


TestRingModel = RingModel.TestCase
TestRingModel.settings = settings(max_examples=60, stateful_step_count=60, deadline=None)


def test_closing_during_put_many_iteration_is_closed_error(name: str) -> None:
    r = Ring.create(name, 4096)

    def items() -> Iterator[bytes]:
        r.close()  # Python code run while put_many takes its items
        yield b"x"

    with pytest.raises(ClosedError):
        r.put_many(items())


def test_a_signal_handler_closing_a_waiting_ring(name: str) -> None:
    r = Ring.create(name, 4096)
    old = signal.signal(signal.SIGALRM, lambda *a: r.close())
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(ClosedError):
            r.get(timeout=5)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize("side", ["get", "get_many", "put"])
def test_close_wakes_calls_waiting_in_other_threads(name: str, side: str) -> None:
    r = Ring.create(name, 4096)
    if side == "put":
        r.put(b"x" * 3000)  # no room for another
    raised: list[BaseException] = []

    def wait() -> None:
        try:
            if side == "get":
                r.get()  # no timeout: only close() can end it
            elif side == "get_many":
                r.get_many(10)
            else:
                r.put(b"y" * 3000)
        except BaseException as e:  # the test inspects it
            raised.append(e)

    t = threading.Thread(target=wait, daemon=True)  # a failure must not hang the run
    t.start()
    time.sleep(0.2)  # let it fall asleep (if not yet, it raises ClosedError anyway)
    r.close()  # before, BusyError: the waiting call could not be woken
    t.join(timeout=10)
    assert not t.is_alive()
    assert len(raised) == 1 and isinstance(raised[0], ClosedError)
    with pytest.raises(ClosedError):
        r.get(timeout=0)


def test_damaged_lengths_and_positions_are_ring_errors(name: str) -> None:
    r = Ring.create(name, 4096)
    r.put(b"hello")
    r.close()
    with open(ring_path(name), "r+b") as f:
        f.seek(4096)  # the first record's length word
        f.write(struct.pack("<Q", 1 << 20))
    with pytest.raises(RingError, match="length"):
        Ring.attach(name).get(timeout=0)
    with open(ring_path(name), "r+b") as f:
        f.seek(128)  # tail
        f.write(struct.pack("<Q", 4092))
    with pytest.raises(RingError, match="positions"):
        Ring.attach(name)


def test_nan_timeouts_and_oversized_capacities_are_refused(name: str) -> None:
    r = Ring.create(name, 4096)
    with pytest.raises(ValueError, match="NaN"):
        r.get(timeout=float("nan"))
    with pytest.raises(ValueError, match="1 TiB"):
        Ring.create(name + "x", 1 << 64)


def test_closing_one_side_keeps_the_other_sides_position(name: str) -> None:
    """SPSC: each side publishes only its own position; a consumer's close
    must not rewind the tail, nor a producer's the head."""
    prod, cons = Ring.create(name, 4096), Ring.attach(name)
    for m in (b"one", b"two", b"three"):
        prod.put(m)
    assert cons.get(timeout=0) == b"one"
    cons.close()
    again = Ring.attach(name)  # a consumer restarting while the producer lives
    assert again.get_many(10, timeout=0) == [b"two", b"three"]
    again.close()
    prod.close()
    last = Ring.attach(name)
    with pytest.raises(TimeoutError):
        last.get(timeout=0)  # nothing redelivered


def test_put_many_keeps_its_items_while_another_thread_changes_the_list(name: str) -> None:
    import threading

    r = Ring.create(name, 1 << 20)
    items = [bytes([65 + i]) * 200_000 for i in range(12)]  # more than fits: put_many waits
    want = list(items)
    got: list[bytes] = []

    def meddle() -> None:
        time.sleep(0.2)
        items.clear()  # frees the list's item array under a put_many that borrowed it
        while len(got) < len(want):
            got.extend(r.get_many(1000, timeout=5))

    t = threading.Thread(target=meddle)
    t.start()
    r.put_many(items, timeout=10)
    t.join(20)
    assert got == want


def test_mpmc_damaged_sequence_words_are_ring_errors(name: str) -> None:
    Ring.create(name, 4096, "mpmc").close()
    with open(ring_path(name), "r+b") as f:
        f.seek(4096 + 8)  # seq[1]: a later lap than the tail says
        f.write(struct.pack("<Q", 1000))
    r = Ring.attach(name)
    with pytest.raises(RingError, match="damaged"):
        r.put(b"x" * 100, timeout=1)  # it spun forever with the GIL held
