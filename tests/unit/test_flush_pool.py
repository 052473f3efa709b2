"""``FlushPool``: a large pass's flush shared with other threads, as the I/O loop runs it.

Over fake non-blocking sockets that record which thread sent: every outbox's
frames leave once and in order, part of them from the pool's thread, the
meters (one per thread) add up to nothing queued, and a small pass is left
to the loop alone.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from susurro.relay.budget import MemoryBudget
from susurro.relay.outbox import POOL_THRESHOLD, Batch, FlushPool, Outbox, use_batch


class ThreadSocket:
    """A non-blocking ``send`` that takes at most ``window`` bytes a call and notes the calling thread."""

    def __init__(self, window: int = 1 << 30) -> None:
        self.window = window
        self.written = bytearray()
        self.calls = 0
        self.senders: set[int] = set()

    def send(self, data: bytes) -> int:
        self.senders.add(threading.get_ident())
        self.calls += 1
        self.written += data[: self.window]
        return min(len(data), self.window)


@dataclass
class Pooled:
    """A loop's batch with a one-thread pool, made current for this thread as the I/O loop does."""

    budget: MemoryBudget
    pool: FlushPool
    batch: Batch


@pytest.fixture
def pooled() -> Iterator[Pooled]:
    budget = MemoryBudget()
    pool = FlushPool(1, budget.meter, "test")
    batch = Batch(budget.meter(), pool)
    use_batch(batch)
    try:
        yield Pooled(budget, pool, batch)
    finally:
        use_batch(Batch(budget.meter()))
        pool.stop()


def _pass(boxes: list[Outbox], batch: Batch, frames: int) -> None:
    batch.active = True
    for i in range(frames):
        for box in boxes:
            assert box.offer(b"<%03d>" % i)
    batch.flush()


def test_a_large_pass_is_shared_with_the_pool_and_every_frame_leaves_once_in_order(pooled: Pooled) -> None:
    budget, batch = pooled.budget, pooled.batch
    sockets = [ThreadSocket() for _ in range(2 * POOL_THRESHOLD)]
    boxes = [Outbox(1 << 20, s.send) for s in sockets]
    _pass(boxes, batch, 5)
    expected = b"".join(b"<%03d>" % i for i in range(5))
    assert all(bytes(s.written) == expected for s in sockets)
    assert all(s.calls == 1 for s in sockets), "one send per outbox per pass, pool or not"
    me = threading.get_ident()
    by_pool = sum(1 for s in sockets if s.senders and me not in s.senders)
    assert by_pool == len(sockets) // 2, "the pool's thread sent every other outbox"
    assert budget.outbound == 0, "the threads' meters add up to nothing left queued"


def test_what_the_kernel_leaves_in_the_pool_waits_and_is_counted(pooled: Pooled) -> None:
    budget, batch = pooled.budget, pooled.batch
    blocked: list[Outbox] = []
    sockets = [ThreadSocket(window=3) for _ in range(POOL_THRESHOLD)]
    boxes = [Outbox(1 << 20, s.send) for s in sockets]
    for box in boxes:
        box.on_blocked = lambda box=box: blocked.append(box)  # type: ignore[misc]
    _pass(boxes, batch, 2)
    assert sorted(map(id, blocked)) == sorted(map(id, boxes)), "each outbox asks to be flushed again"
    assert budget.outbound == len(boxes) * (10 - 3)
    for s in sockets:
        s.window = 1 << 30
    batch.active = True
    for box in boxes:
        batch.dirty.append(box)
    batch.flush()
    assert all(bytes(s.written) == b"<000><001>" for s in sockets)
    assert budget.outbound == 0


def test_a_small_pass_is_flushed_by_the_loop_alone(pooled: Pooled) -> None:
    batch = pooled.batch
    sockets = [ThreadSocket() for _ in range(POOL_THRESHOLD - 1)]
    _pass([Outbox(1 << 20, s.send) for s in sockets], batch, 1)
    assert all(s.senders == {threading.get_ident()} for s in sockets)


def test_stopping_the_pool_ends_its_threads() -> None:
    budget = MemoryBudget()
    pool = FlushPool(2, budget.meter, "test-stop")
    threads = [t for t in threading.enumerate() if t.name.startswith("test-stop-flush")]
    assert len(threads) == 2
    pool.stop()
    for thread in threads:
        thread.join(10.0)
        assert not thread.is_alive()


class BrokenSocket(ThreadSocket):
    """A ``send`` that raises what ``Outbox.flush`` does not expect (a bug's stand-in)."""

    def send(self, data: bytes) -> int:
        raise RuntimeError("a bug in a send path")


def test_an_outbox_whose_flush_raises_is_cut_and_the_rest_of_its_share_still_leaves(pooled: Pooled) -> None:
    sockets = [ThreadSocket() for _ in range(2 * POOL_THRESHOLD)]
    # Index 0 is in the loop's own share, 1 in the pool thread's (interleaved shares):
    # both come before every other outbox of their share.
    sockets[0], sockets[1] = BrokenSocket(), BrokenSocket()
    boxes = [Outbox(1 << 20, s.send) for s in sockets]
    cut: list[Outbox] = []
    for box in boxes:
        box.on_overflow = lambda box=box: cut.append(box)  # type: ignore[misc]
    _pass(boxes, pooled.batch, 2)
    assert all(bytes(s.written) == b"<000><001>" for s in sockets[2:]), "every other outbox of both shares was sent"
    assert sorted(map(id, cut)) == sorted(map(id, boxes[:2])), "the two that raised were cut"
    assert boxes[0].aborted and boxes[1].aborted
