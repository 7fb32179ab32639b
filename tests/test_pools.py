"""BufferPool and FramePool: leases, exhaustion, reuse safety."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from rulejet import BusyError, ClosedError
from rulejet.pools import BufferPool, FramePool


def test_lease_is_aligned_and_writable() -> None:
    pool = BufferPool(8192, 2, align=4096)
    with pool.lease() as buf:
        assert len(buf) == 8192 and not buf.readonly
        buf[:5] = b"hello"
        # 4096-aligned, so O_DIRECT writes can use it
        import ctypes

        addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
        assert addr % 4096 == 0
    pool.close()


def test_use_after_return_raises() -> None:
    pool = BufferPool(64, 1)
    with pool.lease() as buf:
        kept = buf
    with pytest.raises(ValueError):
        kept[0]
    v = pool.take()
    pool.give_back(v)
    with pytest.raises(ValueError):
        v[0] = 1


def test_double_return_and_foreign_buffer() -> None:
    pool = BufferPool(64, 2)
    v = pool.take()
    pool.give_back(v)
    with pytest.raises(ValueError, match="returned twice"):
        pool.give_back(v)
    with pytest.raises(ValueError):
        pool.give_back(memoryview(bytearray(64)))


def test_lingering_slice_keeps_buffer_out_of_circulation() -> None:
    pool = BufferPool(64, 1, timeout=0.05)
    v = pool.take()
    part = v[:8]
    part[:] = b"12345678"
    with pytest.raises(BusyError):
        pool.give_back(v)
    with pytest.raises(TimeoutError):  # the only buffer is still referenced
        pool.take()
    assert bytes(part) == b"12345678"  # nobody else got the memory
    del part
    w = pool.take()  # reclaimed now that the slice is gone
    pool.give_back(w)


def test_exhausted_pool_blocks_then_times_out_or_grows() -> None:
    pool = BufferPool(64, 1, timeout=0.05)
    v = pool.take()
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        pool.take()
    assert time.monotonic() - t0 >= 0.04

    def give_back_soon() -> None:
        time.sleep(0.05)
        pool.give_back(v)

    t = threading.Thread(target=give_back_soon)
    t.start()
    w = pool.take(timeout=5)  # woken by the return
    t.join()
    pool.give_back(w)

    growing = BufferPool(64, 1, grow=True)
    a, b = growing.take(), growing.take()
    assert growing.allocated == 2
    growing.give_back(a)
    growing.give_back(b)


def test_close_rules() -> None:
    pool = BufferPool(64, 1)
    v = pool.take()
    with pytest.raises(BusyError):
        pool.close()
    pool.give_back(v)
    pool.close()
    pool.close()
    with pytest.raises(ClosedError):
        pool.take()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        BufferPool(0, 1)
    with pytest.raises(ValueError):
        BufferPool(64, -1)


np = pytest.importorskip("numpy", reason="FramePool needs numpy (pip install rulejet[frames])")


def test_frame_pool_reuses_memory() -> None:
    frames = FramePool((720, 1280), np.uint8, 2)
    seen = set()
    for i in range(20):
        with frames.lease() as frame:
            assert frame.shape == (720, 1280) and frame.dtype == np.uint8
            frame[:] = i
            seen.add(frame.__array_interface__["data"][0])
    assert len(seen) <= 2  # never reallocated: the same two buffers


def test_frame_not_reused_while_an_array_refers_to_it() -> None:
    frames = FramePool((4, 4), np.uint16, 1, timeout=0.05)
    f = frames.take()
    f[:] = 7
    keep = f[1:3]
    frames.give_back(f)
    del f
    with pytest.raises(TimeoutError):
        frames.take()  # the only frame is still referenced through `keep`
    assert int(keep.sum()) == 7 * 8
    del keep
    g = frames.take()
    frames.give_back(g)
    with pytest.raises(ValueError, match="returned twice"):
        frames.give_back(g)


def test_frame_pool_lends_the_same_array_again() -> None:
    frames = FramePool((8,), np.float32, 1)
    with frames.lease() as frame:
        first = id(frame)
    del frame
    with frames.lease() as frame:
        assert id(frame) == first  # no new array per lease
        assert frame.base is not None and not frame.flags.owndata
    del frame
    frames.close()


def test_frame_held_by_memoryview_or_view_is_not_lent_again() -> None:
    frames = FramePool((16,), np.uint8, 1, timeout=0.02)
    f = frames.take()
    mv = memoryview(f)
    frames.give_back(f)
    del f
    with pytest.raises(TimeoutError):
        frames.take()
    del mv
    f = frames.take()
    v = f.reshape((4, 4)).T  # a view of a view: still refers to the frame's base
    frames.give_back(f)
    del f
    with pytest.raises(TimeoutError):
        frames.take()
    del v
    frames.give_back(frames.take())


@pytest.mark.parametrize(
    "keep",
    [
        lambda f: f.base.base,  # numpy's memoryview under the frame's base
        lambda f: memoryview(f.base.base),  # another view of that buffer
        lambda f: f.base.base[1:],
        lambda f: f.base.base.obj,  # the arena buffer itself
        lambda f: memoryview(f.base.base.obj),
    ],
)
def test_frame_memory_kept_through_its_base_chain_is_not_lent_again(keep: Any) -> None:
    frames = FramePool((16,), np.uint8, 1, timeout=0.02)
    f = frames.take()
    kept = keep(f)
    frames.give_back(f)
    del f
    with pytest.raises(TimeoutError):
        frames.take()  # writing through `kept` would change the next lease
    del kept
    frames.give_back(frames.take())
    frames.close()


def test_frame_pool_close_refuses_while_lent_and_grow_adds_frames() -> None:
    frames = FramePool((4,), np.int64, 1, grow=True)
    a, b = frames.take(), frames.take()  # the second one grows the pool
    assert a.ctypes.data != b.ctypes.data
    with pytest.raises(BusyError):
        frames.close()
    frames.give_back(a)
    frames.give_back(b)
    with pytest.raises(BusyError):
        frames.close()  # returned, but `a` and `b` still refer to them
    del a, b
    assert frames.available == 2
    frames.close()
    with pytest.raises(ClosedError):
        frames.take()


def test_frame_pool_threads_never_share_a_frame() -> None:
    frames = FramePool((1024,), np.uint32, 3)
    errors: list[str] = []

    def worker(tag: int) -> None:
        for _ in range(300):
            with frames.lease(timeout=5) as f:
                f[:] = tag
                if not (f == tag).all():
                    errors.append(f"thread {tag} saw another thread's data")
            del f

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    frames.close()


def test_abandoned_lease_gives_its_frame_back() -> None:
    frames = FramePool((4,), np.uint8, 1, timeout=0.02)
    lease = frames.lease()
    f = lease.__enter__()
    with pytest.raises(RuntimeError):
        lease.__enter__()  # one frame per lease at a time
    del lease, f  # dropped without __exit__ (an abandoned generator does this)
    frames.give_back(frames.take())
    assert frames.available == 1


def test_a_kept_lease_proxy_cannot_view_memory_lent_again() -> None:
    pool = BufferPool(64, count=1, align=64)
    view = pool.take()
    keep = view.obj  # the lease's proxy object, kept past the lease
    pool.give_back(view)
    with pytest.raises(ValueError, match="given back"):
        memoryview(keep)
    other = pool.take()
    other[:5] = b"AAAAA"
    assert bytes(other[:5]) == b"AAAAA"
    pool.give_back(other)
    del keep, view, other  # the proxies pin the arena until they go
    pool.close()
