"""The relay's flood and idle rules as pure objects: time is passed in."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from susurro.relay.idle import IdleAction, IdleWatch
from susurro.relay.ratelimit import RateLimiter, Verdict


def test_burst_then_refusals_then_disconnect_when_the_flood_goes_on() -> None:
    limiter = RateLimiter(burst=20, rate=10.0, now=0.0)
    verdicts = [limiter.take(0.0) for _ in range(20 + 21)]
    assert verdicts[:20] == [Verdict.ALLOW] * 20
    assert verdicts[20:40] == [Verdict.REFUSE] * 20
    assert verdicts[40] is Verdict.DISCONNECT


def test_tokens_refill_at_the_rate() -> None:
    limiter = RateLimiter(burst=5, rate=10.0, now=0.0)
    assert [limiter.take(0.0) for _ in range(5)] == [Verdict.ALLOW] * 5
    assert limiter.take(0.0) is Verdict.REFUSE
    assert limiter.take(0.1) is Verdict.ALLOW  # one token back after 1/rate seconds
    assert limiter.take(0.1) is Verdict.REFUSE


def test_a_brief_excess_is_forgiven_once_the_client_slows_down() -> None:
    limiter = RateLimiter(burst=4, rate=2.0, now=0.0)
    for _ in range(4):
        limiter.take(0.0)
    assert [limiter.take(0.0) for _ in range(4)] == [Verdict.REFUSE] * 4
    # Ten quiet seconds: the bucket is full again and the refusals are forgotten.
    assert [limiter.take(10.0) for _ in range(4)] == [Verdict.ALLOW] * 4
    assert [limiter.take(10.0) for _ in range(4)] == [Verdict.REFUSE] * 4
    assert limiter.take(10.0) is Verdict.DISCONNECT


def test_rate_zero_turns_limiting_off() -> None:
    limiter = RateLimiter(burst=1, rate=0.0, now=0.0)
    assert all(limiter.take(0.0) is Verdict.ALLOW for _ in range(10_000))


def test_a_clock_going_backwards_refills_nothing() -> None:
    limiter = RateLimiter(burst=1, rate=10.0, now=100.0)
    assert limiter.take(100.0) is Verdict.ALLOW
    assert limiter.take(50.0) is Verdict.REFUSE


@given(st.lists(st.floats(min_value=0.0, max_value=0.5), min_size=1, max_size=300))
def test_a_client_sending_at_the_rate_is_never_refused(gaps: list[float]) -> None:
    """Whatever the pattern, frames spaced at least 1/rate apart are all allowed."""
    limiter = RateLimiter(burst=20, rate=10.0, now=0.0)
    now = 0.0
    for gap in gaps:
        now += 0.1 + gap
        assert limiter.take(now) is Verdict.ALLOW


@given(st.lists(st.floats(min_value=0.0, max_value=2.0), min_size=1, max_size=400))
def test_allowed_frames_never_exceed_burst_plus_rate_times_time(gaps: list[float]) -> None:
    limiter = RateLimiter(burst=20, rate=10.0, now=0.0)
    now, allowed = 0.0, 0
    for gap in gaps:
        now += gap
        verdict = limiter.take(now)
        allowed += verdict is Verdict.ALLOW
        assert allowed <= 20 + 10.0 * now + 1e-6
        if verdict is Verdict.DISCONNECT:
            break


def test_idle_watch_pings_once_then_drops() -> None:
    watch = IdleWatch(ping_after=60.0, drop_after=120.0, now=0.0)
    assert watch.due(10.0) == (IdleAction.WAIT, 50.0)
    assert watch.due(60.0) == (IdleAction.PING, 60.0)
    assert watch.due(61.0) == (IdleAction.WAIT, 59.0)  # pinged once, not again
    assert watch.due(120.0) == (IdleAction.DROP, 0.0)


def test_idle_watch_any_bytes_reset_it() -> None:
    watch = IdleWatch(ping_after=60.0, drop_after=120.0, now=0.0)
    assert watch.due(70.0)[0] is IdleAction.PING
    watch.heard(100.0)
    assert watch.due(150.0) == (IdleAction.WAIT, 10.0)
    assert watch.due(160.0)[0] is IdleAction.PING
    assert watch.due(219.0)[0] is IdleAction.WAIT
    assert watch.due(220.0)[0] is IdleAction.DROP


@pytest.mark.parametrize(("ping", "drop"), [(0.0, 1.0), (2.0, 2.0), (3.0, 1.0)])
def test_idle_watch_refuses_nonsense(ping: float, drop: float) -> None:
    with pytest.raises(ValueError):
        IdleWatch(ping_after=ping, drop_after=drop, now=0.0)
