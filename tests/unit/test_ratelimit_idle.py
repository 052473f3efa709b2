"""The relay's flood and idle rules as pure objects: time is passed in."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from susurro.relay.idle import IdleAction, IdleWatch
from susurro.relay.ratelimit import RateLimiter, Verdict


def test_burst_then_delays_then_disconnect_only_after_the_grace() -> None:
    limiter = RateLimiter(burst=20, rate=10.0, now=0.0, grace=5.0)
    verdicts = [limiter.take(0.0) for _ in range(21)]
    assert verdicts[:20] == [Verdict.ALLOW] * 20
    assert verdicts[20] is Verdict.DELAY  # held, not dropped
    # A flood: one frame allowed per token, the rest held, the bucket never refills.
    now = 0.0
    while now < 4.9:
        now += 0.1
        assert limiter.take(now) is Verdict.ALLOW
        assert limiter.take(now) is Verdict.DELAY
    assert limiter.take(5.05) is Verdict.DISCONNECT  # throttled for the whole grace


def test_tokens_refill_at_the_rate_and_delay_says_when() -> None:
    limiter = RateLimiter(burst=5, rate=10.0, now=0.0)
    assert [limiter.take(0.0) for _ in range(5)] == [Verdict.ALLOW] * 5
    assert limiter.take(0.0) is Verdict.DELAY
    assert limiter.delay(0.0) == pytest.approx(0.1)
    assert limiter.delay(0.05) == pytest.approx(0.05)
    assert limiter.take(0.1) is Verdict.ALLOW  # one token back after 1/rate seconds
    assert limiter.take(0.1) is Verdict.DELAY


def test_honest_catch_up_is_delayed_and_a_full_bucket_forgives_it() -> None:
    """100 held messages after a reconnect: 20 at once, 80 paced, never cut; a quiet moment resets."""
    limiter = RateLimiter(burst=20, rate=10.0, now=0.0, grace=9.0)
    now, handled = 0.0, 0
    while handled < 100:
        allowed = limiter.allowance(now)
        if allowed:
            step = min(allowed, 100 - handled)
            limiter.spend(step)
            handled += step
        else:
            assert limiter.hold(now) is Verdict.DELAY
            now += limiter.delay(now)
    assert now == pytest.approx(8.0)
    assert limiter.throttled
    # Two quiet seconds refill the bucket: the next burst starts a new episode.
    assert limiter.allowance(now + 2.0) == 20
    assert not limiter.throttled
    limiter.spend(20)
    assert limiter.hold(now + 2.0) is Verdict.DELAY


def test_a_sender_the_relay_catches_up_with_is_never_cut_though_its_bucket_never_fills() -> None:
    """Steps of 10 frames, each sent as soon as the last was answered: every token is spent as it comes,
    so the bucket never fills again, but the relay catches up after every step: no spell lasts the grace."""
    limiter = RateLimiter(burst=5, rate=50.0, now=0.0, grace=1.0)
    now = 0.0
    for _ in range(100):  # 20 s of it
        handled = 0
        while handled < 10:
            if limiter.allowance(now) >= 1:
                limiter.spend(1)
                handled += 1
            else:
                assert limiter.hold(now) is Verdict.DELAY
                now += limiter.delay(now)
        assert limiter.throttled and limiter.allowance(now) < limiter.burst
        limiter.caught_up()  # the step's last frame handled, nothing more on the socket
    # Without the relay ever catching up, the same sender is cut once the grace is over.
    assert limiter.hold(now) is Verdict.DELAY
    assert limiter.hold(now + 1.0) is Verdict.DISCONNECT


def test_rate_zero_turns_limiting_off() -> None:
    limiter = RateLimiter(burst=1, rate=0.0, now=0.0)
    assert all(limiter.take(0.0) is Verdict.ALLOW for _ in range(10_000))


def test_a_clock_going_backwards_refills_nothing() -> None:
    limiter = RateLimiter(burst=1, rate=10.0, now=100.0)
    assert limiter.take(100.0) is Verdict.ALLOW
    assert limiter.take(50.0) is Verdict.DELAY


@given(st.lists(st.floats(min_value=0.0, max_value=0.5), min_size=1, max_size=300))
def test_a_client_sending_at_the_rate_is_never_delayed(gaps: list[float]) -> None:
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


def test_idle_watch_a_complete_frame_resets_it() -> None:
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


def test_idle_watch_a_draining_socket_is_alive_but_still_probed() -> None:
    """A member behind on a backlog cannot answer yet; its socket taking bytes keeps it."""
    watch = IdleWatch(ping_after=60.0, drop_after=120.0, now=0.0)
    assert watch.due(60.0)[0] is IdleAction.PING
    watch.draining(100.0)
    assert watch.due(150.0) == (IdleAction.WAIT, 70.0)  # not dropped at 120: it drained at 100
    watch.draining(200.0)
    assert watch.due(319.0)[0] is IdleAction.WAIT
    assert watch.due(320.0)[0] is IdleAction.DROP  # the socket stopped taking bytes at 200
    watch.heard(330.0)  # an answer, at last
    assert watch.due(389.0)[0] is IdleAction.WAIT
    assert watch.due(390.0)[0] is IdleAction.PING
