"""Every path through an ``Outbox`` lets its lock go exactly once.

``offer`` and ``flush`` take the outbox's lock through methods bound once and let it go in
``finally`` blocks, across a send that may raise, a seal that may raise and a kernel that takes
all, part or nothing. A path that forgets to let go leaves the next taker waiting for ever (the
relay's I/O thread, so every member on it); one that lets go twice raises ``RuntimeError`` away
from the bug. So this drives one outbox through any sequence of what the relay does to it
(offers inside a pass and outside one, a pass's flush, a pool thread's flush, a kernel that
takes all, part or nothing, a connection that fails, a seal that raises, close, abort, settle,
the dropped tags, the drained check) and checks the lock is free after every step. The takes
of ``offer`` and ``flush`` (the bound ``_acquire``) are bounded here, so a release missing there
fails the test instead of hanging it (checked by deleting the ``release`` of ``flush``'s first
round: the lock is found held after the first offer; and by doubling ``offer``'s: the second
raises). ``close``, ``abort``, ``settle``, ``take_dropped`` and ``drained`` take it with ``with``,
which cannot be bounded from outside: a leak followed by one of them hangs until pytest-timeout
ends the test (a failure too, after 120 s). Not reached from one thread: ``offer``'s wait for
another thread's send, ``flush``'s second round and the pool (``tests/unit/test_outbox.py`` and
``tests/unit/test_flush_pool.py`` run those with real threads).
"""

from __future__ import annotations

import contextlib
import functools

from hypothesis import given, settings
from hypothesis import strategies as st

from susurro.relay.budget import Meter
from susurro.relay.outbox import Batch, Outbox, use_batch

BUDGET = 600
#: How long a take waits for a lock a bug never let go of before the test fails.
TAKE_WAIT = 2.0


class InjectedBug(Exception):
    """What the broken seal and send raise here: only this is expected to reach the test."""


class Kernel:
    """A non-blocking ``send``: takes at most ``window`` bytes (0: refuses), or fails as told."""

    def __init__(self) -> None:
        self.window = 1 << 20
        self.fail: BaseException | None = None

    def send(self, data: bytes) -> int:
        if self.fail is not None:
            raise self.fail
        if self.window == 0:
            raise BlockingIOError()
        return min(self.window, len(data))


class Seal:
    """TLS's seal as the outbox sees it: the bytes unchanged, or a bug when told."""

    def __init__(self) -> None:
        self.broken = False

    def __call__(self, data: bytes) -> bytes:
        if self.broken:
            raise InjectedBug("a bug in the seal")
        return data


STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("offer"), st.integers(0, 400), st.booleans(), st.booleans()),
        st.tuples(st.just("window"), st.sampled_from([0, 1, 7, 100, 1 << 20])),
        st.tuples(st.just("fail"), st.sampled_from(["none", "reset", "bug"])),
        st.tuples(st.just("seal"), st.booleans()),
        st.tuples(st.sampled_from(["pass", "flush", "close", "abort", "settle", "dropped", "drained"])),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(STEPS, st.booleans())
def test_the_lock_is_free_after_every_step(steps: list[tuple[object, ...]], sealed: bool) -> None:
    kernel, seal = Kernel(), Seal()
    box = Outbox(BUDGET, kernel.send, seal=seal if sealed else None)
    # The same lock, taken with a bound (offer and flush take it through this bound method). A
    # take that times out goes on unheld: its release then raises if the lock is free, or lets
    # go of the leaked hold, which the check after the step (or a later one) finds held.
    box._acquire = functools.partial(box._lock.acquire, timeout=TAKE_WAIT)
    batch = Batch(Meter())
    use_batch(batch)
    try:
        for step in steps:
            _do(box, batch, kernel, seal, step)
            assert not box._lock.locked(), f"held after {step!r}"
    finally:
        use_batch(Batch(Meter()))


def _do(box: Outbox, batch: Batch, kernel: Kernel, seal: Seal, step: tuple[object, ...]) -> None:
    kind = step[0]
    # A seal or send that raises what is not a socket error is a bug: it reaches the caller of
    # flush (flush_each logs it and cuts the connection); the lock must be given back anyway.
    with contextlib.suppress(InjectedBug):
        if kind == "offer":
            _, size, in_pass, tagged = step
            assert isinstance(size, int)
            batch.active = bool(in_pass)
            box.offer(b"x" * size, "tag" if tagged else None)
        elif kind == "window":
            kernel.window = int(step[1])  # type: ignore[call-overload]
        elif kind == "fail":
            kernel.fail = {"none": None, "reset": ConnectionResetError(), "bug": InjectedBug("a bug")}[str(step[1])]
        elif kind == "seal":
            seal.broken = bool(step[1])
        elif kind == "pass":
            batch.flush()
        elif kind == "flush":
            box.flush()
        elif kind == "close":
            box.close("closing")
        elif kind == "abort":
            box.abort("aborted")
        elif kind == "settle":
            box.settle(1.0)
        elif kind == "dropped":
            box.take_dropped()
        elif kind == "drained":
            assert isinstance(box.drained, bool)
    batch.active = False
