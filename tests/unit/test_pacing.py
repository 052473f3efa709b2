"""The client's send pacing (``client/pacing.py``): a burst, then a steady rate under the relay's, in order."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from susurro.client.pacing import PACE_BURST, PACE_PER_SECOND, SendPacer


def _frames(data: bytes) -> list[bytes]:
    return [data[i : i + 4] for i in range(0, len(data), 4)]


def test_a_hundred_held_messages_go_as_a_burst_then_at_the_steady_rate_in_order() -> None:
    pacer = SendPacer()
    for n in range(100):
        pacer.queue(f"m{n}", b"%04d" % n)
    sent = _frames(pacer.take(0.0))
    assert len(sent) == PACE_BURST
    for second in range(1, 20):
        sent += _frames(pacer.take(float(second)))
        assert len(sent) <= PACE_BURST + second * PACE_PER_SECOND
    assert sent == [b"%04d" % n for n in range(100)] and len(pacer) == 0


def test_what_never_went_out_is_named_when_the_session_ends() -> None:
    pacer = SendPacer(burst=1, per_second=1)
    for n in range(3):
        pacer.queue(f"m{n}", b"%04d" % n)
    assert pacer.take(100.0) == b"0000"
    assert pacer.take(99.0) == b""  # a clock that went back refills nothing
    assert pacer.take_unsent() == ["m1", "m2"] and len(pacer) == 0


@given(st.lists(st.floats(min_value=0, max_value=1000), max_size=50), st.integers(0, 200))
def test_never_more_than_the_burst_plus_the_rate_over_any_run(times: list[float], count: int) -> None:
    pacer = SendPacer()
    for n in range(count):
        pacer.queue(str(n), b"%04d" % n)
    sent = 0
    start = None
    for now in sorted(times):
        start = now if start is None else start
        sent += len(_frames(pacer.take(now)))
        assert sent <= PACE_BURST + (now - start) * PACE_PER_SECOND
