"""``FlushPool``: a large pass's copies sent by the pool's threads while the I/O loop goes on.

Over non-blocking sockets (real socket pairs, and stand-ins that record which
thread sent and can hold a ``send``): every outbox's frames leave once and in
order, from the pool's threads and never from the loop's, split across them;
the loop does not wait for the sends (it used to), but waits once the pool is
``POOL_BEHIND`` shares behind; the meters (one per thread) add up to nothing
queued; a small pass is left to the loop alone; a connection's socket is
closed only after a pool thread's ``send`` to it has returned.

No test asserts on time: a held ``send`` is released by the test itself (or,
so that nothing hangs, by a safety timer); what is checked is the order in
which things happened.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from susurro.relay import outbox as outbox_module
from susurro.relay.budget import MemoryBudget
from susurro.relay.outbox import POOL_BEHIND, POOL_THRESHOLD, Batch, FlushPool, Outbox, use_batch

#: Longest any test lets a held ``send`` wait before its safety timer lets it go.
SAFETY = 10.0


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


class HeldSocket(ThreadSocket):
    """A ``send`` that does not return until ``release`` is set (a stand-in for a thread that has
    lost its core in the middle of a send); ``entered`` says it is inside."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()
        self.inside = False

    def send(self, data: bytes) -> int:
        self.inside = True
        self.entered.set()
        self.release.wait(SAFETY)
        self.inside = False
        return super().send(data)


@dataclass
class Pooled:
    """A loop's batch with a two-thread pool, made current for this thread as the I/O loop does."""

    budget: MemoryBudget
    pool: FlushPool
    batch: Batch


@pytest.fixture
def pooled() -> Iterator[Pooled]:
    budget = MemoryBudget()
    pool = FlushPool(2, budget.meter, "test")
    batch = Batch(budget.meter(), pool)
    use_batch(batch)
    try:
        yield Pooled(budget, pool, batch)
    finally:
        use_batch(Batch(budget.meter()))
        pool.stop()


def _pass(boxes: list[Outbox], batch: Batch, frames: range) -> None:
    batch.active = True
    for i in frames:
        for box in boxes:
            assert box.offer(b"<%03d>" % i)
    batch.flush()


def _frames(frames: range) -> bytes:
    return b"".join(b"<%03d>" % i for i in frames)


def test_a_large_pass_is_split_across_the_pool_threads_and_every_frame_leaves_once_in_order(pooled: Pooled) -> None:
    budget, batch = pooled.budget, pooled.batch
    sockets = [ThreadSocket() for _ in range(2 * POOL_THRESHOLD)]
    boxes = [Outbox(1 << 20, s.send) for s in sockets]
    _pass(boxes, batch, range(5))
    assert pooled.pool.wait_idle(SAFETY)
    assert all(bytes(s.written) == _frames(range(5)) for s in sockets)
    assert all(s.calls == 1 for s in sockets), "one send per outbox per pass"
    assert all(len(s.senders) == 1 for s in sockets)
    senders = {next(iter(s.senders)) for s in sockets}
    assert threading.get_ident() not in senders, "the loop's thread sends none of a large pass"
    assert len(senders) == 2, "both pool threads sent a share"
    assert budget.outbound == 0, "the threads' meters add up to nothing left queued"


def test_the_loop_does_not_wait_for_a_large_pass_to_be_sent(pooled: Pooled) -> None:
    held = HeldSocket()
    sockets: list[ThreadSocket] = [held, *(ThreadSocket() for _ in range(POOL_THRESHOLD))]
    boxes = [Outbox(1 << 20, s.send) for s in sockets]
    safety = threading.Timer(5.0, held.release.set)  # only so that a waiting flush cannot hang the test
    safety.start()
    try:
        _pass(boxes, pooled.batch, range(1))
        returned_first = not held.release.is_set()
        assert held.entered.wait(SAFETY)
        assert returned_first, "the flush returned while a share's send was held"
    finally:
        held.release.set()
        safety.cancel()
    assert pooled.pool.wait_idle(SAFETY)
    assert all(bytes(s.written) == _frames(range(1)) for s in sockets)


def test_the_loop_waits_once_the_pool_is_behind(pooled: Pooled) -> None:
    pool = pooled.pool
    held = [HeldSocket(), HeldSocket()]  # one at the head of each thread's share
    sockets: list[ThreadSocket] = [*held, *(ThreadSocket() for _ in range(POOL_THRESHOLD))]
    boxes = [Outbox(1 << 20, s.send) for s in sockets]
    # Pass 0 reaches the held sends; the next passes are new outboxes each (a pending
    # outbox is not handed over again), queued behind them.
    later = [[Outbox(1 << 20, ThreadSocket().send) for _ in range(POOL_THRESHOLD)] for _ in range(POOL_BEHIND)]
    _pass(boxes, pooled.batch, range(1))
    for socket_ in held:
        assert socket_.entered.wait(SAFETY)
    for boxes_ in later[:-1]:
        _pass(boxes_, pooled.batch, range(1))
        assert not held[0].release.is_set()
    released_by_timer = threading.Timer(1.0, lambda: [s.release.set() for s in held])
    released_by_timer.start()
    try:
        _pass(later[-1], pooled.batch, range(1))
        assert held[0].release.is_set(), f"with {POOL_BEHIND} shares not sent the loop waited for the pool"
    finally:
        for socket_ in held:
            socket_.release.set()
        released_by_timer.cancel()
    assert pool.wait_idle(SAFETY)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(passes=st.lists(st.lists(st.booleans(), min_size=12, max_size=12), min_size=1, max_size=12))
def test_copies_of_passes_handed_over_while_the_pool_sends_arrive_once_in_order(
    pooled: Pooled, passes: list[list[bool]]
) -> None:
    """Passes to overlapping sets of members, each handed over while the earlier ones may still
    be in the pool's threads: each member reads exactly its frames, in the order offered."""
    members = 12
    per_member = POOL_THRESHOLD // 4  # outboxes per member slot: each pass is large enough for the pool
    sockets = [[ThreadSocket() for _ in range(per_member)] for _ in range(members)]
    boxes = [[Outbox(1 << 20, s.send) for s in row] for row in sockets]
    expected: list[list[bytes]] = [[] for _ in range(members)]
    batch = pooled.batch
    for number, chosen in enumerate(passes):
        picked = [m for m in range(members) if chosen[m]]
        if len(picked) < 4:
            picked = list(range(members))
        batch.active = True
        for member in picked:
            for box in boxes[member]:
                assert box.offer(b"<%03d>" % number)
            expected[member].append(b"<%03d>" % number)
        batch.flush()
    assert pooled.pool.wait_idle(SAFETY)
    for member in range(members):
        for s in sockets[member]:
            assert bytes(s.written) == b"".join(expected[member])


def test_over_real_sockets_every_copy_arrives_once_in_order(pooled: Pooled) -> None:
    pairs = [socket.socketpair() for _ in range(POOL_THRESHOLD + 8)]
    try:
        for ours, _ in pairs:
            ours.setblocking(False)
        boxes = [Outbox(1 << 20, ours.send) for ours, _ in pairs]
        for number in range(20):
            _pass(boxes, pooled.batch, range(number, number + 1))
        assert pooled.pool.wait_idle(SAFETY)
        expected = _frames(range(20))
        for _, theirs in pairs:
            theirs.settimeout(SAFETY)
            got = b""
            while len(got) < len(expected):
                got += theirs.recv(65536)
            assert got == expected
    finally:
        for ours, theirs in pairs:
            ours.close()
            theirs.close()


def test_what_the_kernel_leaves_in_the_pool_waits_and_is_counted(pooled: Pooled) -> None:
    budget, batch = pooled.budget, pooled.batch
    blocked: list[Outbox] = []
    lock = threading.Lock()
    sockets = [ThreadSocket(window=3) for _ in range(POOL_THRESHOLD)]
    boxes = [Outbox(1 << 20, s.send) for s in sockets]

    def note(box: Outbox) -> None:
        with lock:
            blocked.append(box)

    for box in boxes:
        box.on_blocked = lambda box=box: note(box)  # type: ignore[misc]
    _pass(boxes, batch, range(2))
    assert pooled.pool.wait_idle(SAFETY)
    assert sorted(map(id, blocked)) == sorted(map(id, boxes)), "each outbox asks to be flushed again"
    assert budget.outbound == len(boxes) * (10 - 3)
    for s in sockets:
        s.window = 1 << 30
    batch.active = True
    for box in boxes:
        batch.dirty.append(box)
    batch.flush()
    assert pooled.pool.wait_idle(SAFETY)
    assert all(bytes(s.written) == b"<000><001>" for s in sockets)
    assert budget.outbound == 0


def test_a_small_pass_is_flushed_by_the_loop_alone(pooled: Pooled) -> None:
    batch = pooled.batch
    sockets = [ThreadSocket() for _ in range(POOL_THRESHOLD - 1)]
    _pass([Outbox(1 << 20, s.send) for s in sockets], batch, range(1))
    assert all(s.senders == {threading.get_ident()} for s in sockets)


def test_stopping_the_pool_sends_what_it_was_handed_and_ends_its_threads() -> None:
    budget = MemoryBudget()
    pool = FlushPool(2, budget.meter, "test-stop")
    threads = [t for t in threading.enumerate() if t.name.startswith("test-stop-flush")]
    assert len(threads) == 2
    batch = Batch(budget.meter(), pool)
    use_batch(batch)
    try:
        sockets = [ThreadSocket() for _ in range(POOL_THRESHOLD)]
        _pass([Outbox(1 << 20, s.send) for s in sockets], batch, range(3))
        pool.stop()
        for thread in threads:
            thread.join(SAFETY)
            assert not thread.is_alive()
        assert all(bytes(s.written) == _frames(range(3)) for s in sockets)
    finally:
        use_batch(Batch(budget.meter()))


def test_an_aborted_outbox_settles_only_once_a_send_in_progress_has_returned(pooled: Pooled) -> None:
    """Before its socket is closed (``Link.finish``) a connection's outbox is aborted and settled:
    a pool thread may still be inside its ``send``, and the descriptor must outlive that call."""
    held = HeldSocket()
    sockets: list[ThreadSocket] = [held, *(ThreadSocket() for _ in range(POOL_THRESHOLD))]
    boxes = [Outbox(1 << 20, s.send) for s in sockets]
    _pass(boxes, pooled.batch, range(1))
    assert held.entered.wait(SAFETY)
    boxes[0].abort("closed")
    assert not boxes[0].settle(timeout=0.05), "the send is still in progress"
    held.release.set()
    assert boxes[0].settle(timeout=SAFETY)
    assert not held.inside
    assert pooled.pool.wait_idle(SAFETY)


class BrokenSocket(ThreadSocket):
    """A ``send`` that raises what ``Outbox.flush`` does not expect (a bug's stand-in)."""

    def send(self, data: bytes) -> int:
        raise RuntimeError("a bug in a send path")


def test_an_outbox_whose_flush_raises_is_cut_and_the_rest_of_its_share_still_leaves(pooled: Pooled) -> None:
    sockets = [ThreadSocket() for _ in range(2 * POOL_THRESHOLD)]
    # Index 0 is in the first pool thread's share, 1 in the second's (interleaved
    # shares): both come before every other outbox of their share.
    sockets[0], sockets[1] = BrokenSocket(), BrokenSocket()
    boxes = [Outbox(1 << 20, s.send) for s in sockets]
    cut: list[Outbox] = []
    lock = threading.Lock()

    def note(box: Outbox) -> None:
        with lock:
            cut.append(box)

    for box in boxes:
        box.on_overflow = lambda box=box: note(box)  # type: ignore[misc]
    _pass(boxes, pooled.batch, range(2))
    assert pooled.pool.wait_idle(SAFETY)
    assert all(bytes(s.written) == b"<000><001>" for s in sockets[2:]), "every other outbox of both shares was sent"
    assert sorted(map(id, cut)) == sorted(map(id, boxes[:2])), "the two that raised were cut"
    assert boxes[0].aborted and boxes[1].aborted


def test_an_outbox_is_not_drained_while_a_pool_thread_is_inside_its_send(pooled: Pooled) -> None:
    """A closing link ends its connection once its outbox is drained (``Link.close``,
    ``on_writable``). While a pool thread is inside the outbox's ``send`` the frames are out of
    the queue and what the kernel will leave is not known yet: drained then ended a member's
    connection under the send and cut the frame (review-s8-fanout M1)."""
    held = HeldSocket()
    sockets: list[ThreadSocket] = [held, *(ThreadSocket() for _ in range(POOL_THRESHOLD))]
    boxes = [Outbox(1 << 20, s.send) for s in sockets]
    try:
        _pass(boxes, pooled.batch, range(3))
        assert held.entered.wait(SAFETY)
        assert not boxes[0].drained, "drained while a pool thread is inside the send"
    finally:
        held.release.set()
    assert pooled.pool.wait_idle(SAFETY)
    assert boxes[0].drained
    assert bytes(held.written) == _frames(range(3))


def test_the_loop_resumes_as_soon_as_a_thread_is_less_than_pool_behind_behind(pooled: Pooled) -> None:
    """The loop waits once a thread is POOL_BEHIND shares behind, and goes on as soon as one of
    them is sent, not only once the thread has sent them all (review-s8-fanout L1)."""
    assert POOL_BEHIND == 2, "the shares below are laid out for two"
    first = [HeldSocket(), HeldSocket()]  # the head of each thread's first share
    second = [HeldSocket(), HeldSocket()]  # the head of each thread's second share: held throughout
    first_boxes = [Outbox(1 << 20, s.send) for s in [*first, *(ThreadSocket() for _ in range(POOL_THRESHOLD))]]
    second_boxes = [Outbox(1 << 20, s.send) for s in [*second, *(ThreadSocket() for _ in range(POOL_THRESHOLD))]]
    third_boxes = [Outbox(1 << 20, ThreadSocket().send) for _ in range(POOL_THRESHOLD)]
    _pass(first_boxes, pooled.batch, range(1))
    for socket_ in first:
        assert socket_.entered.wait(SAFETY)
    _pass(second_boxes, pooled.batch, range(1))  # now each thread is POOL_BEHIND behind
    resumed = threading.Event()
    # Without the fix the loop hears only when a thread has nothing left, which here is when this
    # timer lets the second shares go (well before POOL_WAIT, so the wait's own limit is not it).
    second_released = threading.Timer(3.0, lambda: [s.release.set() for s in second])

    def loop_hands_over_the_third_pass() -> None:
        use_batch(pooled.batch)
        _pass(third_boxes, pooled.batch, range(1))
        resumed.set()

    loop = threading.Thread(target=loop_hands_over_the_third_pass)
    second_released.start()
    try:
        loop.start()
        for socket_ in first:
            socket_.release.set()  # each thread finishes its first share and starts on its second
        assert resumed.wait(SAFETY)
        assert not second[0].release.is_set(), "the loop waited until the threads had sent every share"
    finally:
        for socket_ in first + second:
            socket_.release.set()
        second_released.cancel()
        loop.join(SAFETY)
    assert pooled.pool.wait_idle(SAFETY)


def test_a_burst_over_the_budget_while_a_pool_thread_sends_that_outbox_waits_for_the_send(
    pooled: Pooled, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass over an outbox's budget is flushed and judged by what the kernel leaves (``_untried``),
    also while a pool thread is inside that outbox's ``send``: the bytes it sends were never refused
    by the reader either. Before, that member was evicted as a slow consumer on the spot
    (review-s8-fanout L2). The offer waits for the send to return, flushes and finds room."""
    held = HeldSocket()
    sockets: list[ThreadSocket] = [held, *(ThreadSocket() for _ in range(POOL_THRESHOLD))]
    boxes = [Outbox(4096, s.send) for s in sockets]
    # The wait's bound (50 ms) made long, so that the test's own release decides, not the machine's load.
    monkeypatch.setattr(outbox_module, "OFFER_WAIT", SAFETY, raising=False)
    _pass(boxes, pooled.batch, range(1))
    assert held.entered.wait(SAFETY)
    burst = [b"x" * 1000 for _ in range(6)]  # 6,000 bytes corked in one pass: over 4,096
    offered: list[bool] = []
    done = threading.Event()

    def loop_routes_the_burst() -> None:
        use_batch(pooled.batch)  # the loop's batch, in the loop's stand-in thread
        pooled.batch.active = True
        offered.extend(boxes[0].offer(frame, ("sender", str(i))) for i, frame in enumerate(burst))
        pooled.batch.flush()
        done.set()

    loop = threading.Thread(target=loop_routes_the_burst)
    loop.start()
    try:
        assert not done.wait(0.1), "the offer did not wait for the send in progress"
    finally:
        held.release.set()  # the send returns while the offer waits
        loop.join(SAFETY)
    assert offered == [True] * len(burst)
    assert not boxes[0].aborted, "evicted while the kernel had refused nothing"
    assert pooled.pool.wait_idle(SAFETY)
    assert boxes[0].drained
    assert bytes(held.written) == _frames(range(1)) + b"".join(burst)


def test_a_burst_over_the_budget_while_a_send_left_bytes_is_still_a_slow_consumer(pooled: Pooled) -> None:
    """The wait is only for bytes never refused: a reader whose kernel left part of a flush behind
    (pending bytes) and is sent to again while over budget is evicted, as before."""
    narrow = ThreadSocket(window=100)
    box = Outbox(4096, narrow.send)
    pooled.batch.active = True
    assert all(box.offer(b"a" * 1200) for _ in range(3))
    pooled.batch.flush()  # a small pass: the loop flushes it; the kernel takes 100 bytes
    assert box.queued_bytes == 3500
    pooled.batch.active = True
    assert not box.offer(b"b" * 1000), "3,500 refused and 1,000 more is past 4,096"
    pooled.batch.flush()
    assert box.aborted and box.close_reason == "slow_consumer"


class FailingHeldSocket(HeldSocket):
    """A held ``send`` that, once let go, fails as a socket closed under it does."""

    def send(self, data: bytes) -> int:
        super().send(data)
        raise OSError("the socket was closed under the send")


@pytest.mark.parametrize("ending", ["whole", "partial", "failed"])
def test_copies_inside_a_send_that_outlasts_settle_are_reported_dropped_once(pooled: Pooled, ending: str) -> None:
    """``Link.finish`` closes the socket after ``settle`` even if a pool thread's ``send`` has not
    returned by then (logged). Those copies are not known to have reached the member: they are
    reported dropped with the rest, so the sender hears of them (non-negotiable 4), and the flush,
    when it returns, does not count them a second time (review-s8-fanout L3): whether the kernel then
    takes it whole, in part (2 bytes) or the send fails."""
    held = FailingHeldSocket() if ending == "failed" else HeldSocket()
    if ending == "partial":
        held.window = 2
    sockets: list[ThreadSocket] = [held, *(ThreadSocket() for _ in range(POOL_THRESHOLD))]
    boxes = [Outbox(1 << 20, s.send) for s in sockets]
    pooled.batch.active = True
    for box in boxes:
        assert box.offer(b"<000>", ("alice", "m0"))
    pooled.batch.flush()
    assert held.entered.wait(SAFETY)
    pooled.batch.active = True
    assert boxes[0].offer(b"<001>", ("alice", "m1"))  # queued behind the send in progress
    try:
        boxes[0].abort("closed")
        assert not boxes[0].settle(timeout=0.05), "the send is still in progress"
        dropped = boxes[0].take_dropped()
        assert sorted(dropped) == [("alice", "m0"), ("alice", "m1")], "the copies in the send are reported"
    finally:
        held.release.set()
        pooled.batch.active = False
    assert pooled.pool.wait_idle(SAFETY)
    assert boxes[0].settle(timeout=SAFETY)
    assert boxes[0].take_dropped() == [], "reported once"
