"""A run of copies offered to one outbox as one frame string ends as the same copies offered one by one.

The core offers a member the copies of a run of sends read at once as one
``offer`` (``RelayCore._release``), and when that offer fails it counts every
copy of the run as missing for that member. That is exact: the outbox then
gives up on the member, and one by one it would have given up too, at a
later copy, throwing away the first ones with everything else it held (a
``dropped`` notice after the fact, where the run's ``ack`` says so at once).
Over a fake non-blocking socket: the same bytes reach the reader, and the
member is evicted in the same cases, for any queue before the run, any
window the kernel gives and any run that fits the budget.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from susurro.relay.budget import Meter
from susurro.relay.outbox import Batch, Outbox, use_batch

BUDGET = 1000


class Window:
    """A non-blocking ``send`` that takes at most ``window`` bytes a call (0: the kernel buffer is full)."""

    def __init__(self, window: int) -> None:
        self.window = window
        self.written = bytearray()

    def send(self, data: bytes) -> int:
        if self.window == 0:
            raise BlockingIOError()
        taken = data[: self.window]
        self.written += taken
        return len(taken)


def _frames(sizes: list[int], first: int) -> list[bytes]:
    return [bytes([(first + i) % 256]) * size for i, size in enumerate(sizes)]


def _play(before: list[int], sent_before: int, window: int, run: list[int], joined: bool) -> tuple[bool, bytes, int]:
    """Frames queued (the kernel took ``sent_before`` bytes of them), then the run in one pass, then a
    reader that catches up: whether the member was evicted, what it read, and bytes still counted."""
    sock = Window(sent_before)
    box = Outbox(BUDGET, sock.send)
    batch = Batch(Meter())
    use_batch(batch)
    try:
        batch.active = True
        for frame in _frames(before, 0):
            box.offer(frame)
        batch.flush()
        sock.window = window
        batch.active = True
        frames = _frames(run, 100)
        if joined:
            box.offer(b"".join(frames))
        else:
            for frame in frames:
                if not box.offer(frame):
                    break
        batch.flush()
        sock.window = 1 << 30
        box.flush()
    finally:
        use_batch(Batch(Meter()))
    return box.aborted, bytes(sock.written), batch.meter.outbound


sizes = st.lists(st.integers(min_value=1, max_value=400), min_size=0, max_size=5)


@settings(max_examples=400, deadline=None)
@given(
    before=sizes,
    sent_before=st.integers(min_value=0, max_value=2000),
    window=st.integers(min_value=0, max_value=2000),
    run=st.lists(st.integers(min_value=1, max_value=400), min_size=2, max_size=5),
)
def test_a_run_offered_whole_ends_as_the_same_copies_offered_one_by_one(
    before: list[int], sent_before: int, window: int, run: list[int]
) -> None:
    if sum(run) > BUDGET:
        return  # larger than a whole budget: whole, it is taken into an empty outbox; one by one, maybe not
    assert _play(before, sent_before, window, run, joined=True) == _play(before, sent_before, window, run, joined=False)
