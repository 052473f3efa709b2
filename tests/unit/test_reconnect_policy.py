"""The reconnect policy, ack watch and held-message queue as pure objects; and how the CLI shows a reconnect."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from susurro.client import events as ev
from susurro.client.outgoing import AckWatch, HeldMessage, HeldMessages
from susurro.client.reconnect import NAME_TAKEN_RETRIES, Backoff, JoinWait, retry_after_refusal
from susurro.client.render import event_to_json, event_to_text
from susurro.protocol import ErrorCode


def test_backoff_doubles_from_one_second_to_thirty() -> None:
    top = Backoff(rng=lambda: 1.0)
    assert [top.next_delay() for _ in range(8)] == [1, 2, 4, 8, 16, 30, 30, 30]
    bottom = Backoff(rng=lambda: 0.0)
    assert [bottom.next_delay() for _ in range(7)] == [0.5, 1, 2, 4, 8, 15, 15]
    assert bottom.attempt == 7
    bottom.reset()
    assert bottom.next_delay() == 0.5 and bottom.attempt == 1


@given(st.lists(st.floats(min_value=0.0, max_value=1.0, exclude_max=True), min_size=1, max_size=80))
def test_backoff_jitter_stays_between_half_and_whole_step(draws: list[float]) -> None:
    values = iter(draws)
    backoff = Backoff(rng=lambda: next(values))
    for attempt in range(1, len(draws) + 1):
        step = min(30.0, 2.0 ** (attempt - 1))
        assert step / 2 <= backoff.next_delay() <= step


@pytest.mark.parametrize(
    ("code", "ever_joined", "seen", "retry"),
    [
        (None, True, 0, True),  # the connection was lost
        (None, False, 0, True),
        ("full", False, 0, True),
        ("cluster_down", False, 0, True),  # a cluster's node that cannot check anyone's name: a first join too
        ("too_many_connections", True, 0, True),
        ("rate_limited", True, 0, True),
        ("idle_timeout", True, 0, True),
        ("handshake_timeout", True, 0, True),
        ("bad_frame", True, 0, True),  # the relay sent garbage: start over
        ("frame_too_large", True, 0, True),
        ("shutdown", True, 0, True),  # a restart: ridden through like a crash
        ("bad_name", True, 0, False),
        ("bad_version", True, 0, False),
        ("bad_proof", True, 0, False),
        ("bad_cert", True, 0, False),
        ("name_taken", False, 1, False),  # someone else has the name
        ("name_taken", True, 1, True),  # probably our own old connection, not yet timed out
        ("name_taken", True, NAME_TAKEN_RETRIES, True),
        ("name_taken", True, NAME_TAKEN_RETRIES + 1, False),
    ],
)
def test_which_endings_are_retried(code: str | None, ever_joined: bool, seen: int, retry: bool) -> None:
    assert retry_after_refusal(code, ever_joined=ever_joined, name_taken_seen=seen) is retry


def test_ack_watch_reports_each_late_message_once_in_order() -> None:
    watch = AckWatch(timeout=30.0)
    watch.sent("a", 0.0)
    watch.sent("b", 10.0)
    watch.sent("c", 20.0)
    watch.settled("b")
    assert watch.overdue(29.9) == []
    assert watch.overdue(30.0) == ["a"]
    assert watch.overdue(100.0) == ["c"]
    assert watch.overdue(200.0) == []
    assert len(watch) == 0


def test_held_messages_are_bounded_and_kept_in_order() -> None:
    held = HeldMessages(limit=2)
    first = HeldMessage("m1", "one", None, ("bob",))
    second = HeldMessage("m2", "two", ("bob",), ("bob",))
    assert held.add(first) and held.add(second)
    assert not held.add(HeldMessage("m3", "three", None, ()))
    assert held.take_all() == [first, second]
    assert len(held) == 0


def test_the_terminal_shows_reconnecting_in_n_seconds() -> None:
    event = ev.Reconnecting(delay=3.6, attempt=2, reason="connection to the relay lost (reset)")
    assert event_to_text(event) == "* reconnecting in 4 s (attempt 2): the connection to the relay was lost"
    assert event_to_json(event) == {
        "event": "reconnecting",
        "delay": 3.6,
        "attempt": 2,
        "reason": "connection to the relay lost (reset)",
        "code": None,
    }


def test_the_terminal_says_why_a_cluster_s_relay_lets_nobody_join_in_words() -> None:
    detail = "this relay cannot reach the store it shares with the other relays of its cluster right now"
    event = ev.Reconnecting(
        delay=1.2, attempt=1, reason=f"the relay refused to let us join: {detail}", code=ErrorCode.CLUSTER_DOWN
    )
    assert event_to_text(event) == (
        "* reconnecting in 2 s (attempt 1): the relay cannot reach the store it shares with the other relays "
        "of its cluster, so it lets nobody join right now"
    )
    assert event_to_json(event)["code"] == "cluster_down"


# --- a first join's wait for its welcome ------------------------------------------------


def refused(delay: float, code: ErrorCode | None = ErrorCode.CLUSTER_DOWN) -> ev.Reconnecting:
    return ev.Reconnecting(delay=delay, attempt=1, reason="the relay's words", code=code)


def test_a_first_join_waits_its_timeout_for_an_answer() -> None:
    wait = JoinWait(100.0, timeout=20.0)
    assert wait.left(100.0) == 20.0 and not wait.expired(119.9) and wait.expired(120.0)
    assert wait.left(130.0) == 0.0
    assert wait.gave_up() == "no welcome from the relay within 20 s"


def test_each_cluster_down_refusal_starts_the_wait_again_from_the_next_attempt() -> None:
    """The relay answered (it lets nobody in for now) and the connection tries again after the delay:
    the 20 s are for that attempt, so an outage longer than 20 s is waited out, not given up on."""
    wait = JoinWait(0.0, timeout=20.0)
    now = 0.0
    for delay in (1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0):
        now += 1.0  # the attempt's refusal came a second in
        wait.seen(refused(delay), now)
        assert wait.deadline == now + delay + 20.0 and not wait.expired(now + delay + 19.9)
        now += delay
    assert now > 60.0 and not wait.expired(now)
    assert wait.refusal is not None and "the relay's words" in wait.gave_up()
    assert "did not let us in within 20 s of trying again" in wait.gave_up()


def test_another_ending_leaves_the_deadline_and_ends_the_refusal_it_followed() -> None:
    """The connection lost (or the relay full) after a refusal: the deadline stays where the refusal put
    it, and the words at the end are no longer that refusal's (a stale reason sent people the wrong way)."""
    wait = JoinWait(0.0, timeout=20.0)
    wait.seen(refused(2.0), 1.0)
    wait.seen(refused(4.0, code=None), 3.0)
    assert wait.deadline == 23.0 and wait.refusal is None
    assert wait.gave_up() == "no welcome from the relay within 20 s"
    wait.seen(refused(1.0, code=ErrorCode.FULL), 5.0)
    wait.seen(ev.Warning(kind=ev.WarningKind.PROTOCOL_ERROR, detail="x"), 6.0)
    assert wait.deadline == 23.0  # no other ending, and no other event, moves it


def test_a_refusal_never_brings_the_deadline_closer() -> None:
    wait = JoinWait(0.0, timeout=20.0)
    wait.seen(refused(30.0), 1.0)
    wait.seen(refused(0.5), 2.0)
    assert wait.deadline == 51.0


def test_refusals_never_keep_a_first_join_waiting_past_its_overall_bound() -> None:
    """A relay that only ever answers cluster_down (broken, or hostile) would otherwise keep a script
    waiting for ever; the wait ends at give_up from the start, in the refusal's words."""
    wait = JoinWait(0.0, timeout=20.0, give_up=100.0)
    now = 0.0
    while not wait.expired(now):
        wait.seen(refused(30.0), now)
        now += 30.0
    assert wait.deadline == 100.0 and 100.0 <= now <= 130.0
    assert wait.capped
    # review-s9-fixes 7: the cap may come a second after the latest attempt; the words say the whole wait.
    assert wait.gave_up() == "the relay refused the join for now (the relay's words) and did not let us in within 100 s"


def test_at_the_overall_bound_the_words_name_it_not_the_wait_for_one_attempt() -> None:
    """review-s9-fixes 7: a refusal at 599 s gave up at 600 s "within 20 s of trying again", after 1 s."""
    wait = JoinWait(0.0, timeout=20.0)
    wait.seen(refused(30.0), 1.0)
    assert not wait.capped and wait.gave_up().endswith("within 20 s of trying again")
    wait.seen(refused(0.5), 599.0)
    assert wait.deadline == 600.0 and wait.capped
    assert (
        wait.gave_up() == "the relay refused the join for now (the relay's words) and did not let us in within 10 min"
    )
    wait.seen(refused(0.5, code=None), 599.5)  # the connection lost after it: no refusal to name
    assert wait.gave_up() == "no welcome from the relay within 10 min"
