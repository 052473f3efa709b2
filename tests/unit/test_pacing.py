"""The client's send pacing (``client/pacing.py``): a burst, then a steady rate under the relay's, in order."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from susurro.client import events as ev
from susurro.client.pacing import PACE_BURST, PACE_PER_SECOND, SendPacer
from susurro.relay import RelayConfig
from tests.helpers.session_pair import SessionPair


def test_a_hundred_held_messages_go_as_a_burst_then_at_the_steady_rate_in_order() -> None:
    pacer: SendPacer[int] = SendPacer()
    for n in range(100):
        pacer.queue(n)
    sent = pacer.take(0.0)
    assert len(sent) == PACE_BURST
    for second in range(1, 20):
        sent += pacer.take(float(second))
        assert len(sent) <= PACE_BURST + second * PACE_PER_SECOND
    assert sent == list(range(100)) and len(pacer) == 0


def test_what_never_went_out_is_named_when_the_session_ends() -> None:
    pacer: SendPacer[str] = SendPacer(burst=1, per_second=1)
    for n in range(3):
        pacer.queue(f"m{n}")
    assert pacer.take(100.0) == ["m0"]
    assert pacer.take(99.0) == []  # a clock that went back refills nothing
    assert pacer.take_unsent() == ["m1", "m2"] and len(pacer) == 0


@given(st.lists(st.floats(min_value=0, max_value=1000), max_size=50), st.integers(0, 200))
def test_never_more_than_the_burst_plus_the_rate_over_any_run(times: list[float], count: int) -> None:
    pacer: SendPacer[int] = SendPacer()
    for n in range(count):
        pacer.queue(n)
    sent = 0
    start = None
    for now in sorted(times):
        start = now if start is None else start
        sent += len(pacer.take(now))
        assert sent <= PACE_BURST + (now - start) * PACE_PER_SECOND


def test_a_session_that_paces_lets_a_burst_out_then_the_rest_in_order_as_time_passes() -> None:
    """What a reconnect's hundred held lines do: the relay sees at most the burst, then the steady rate."""
    room = SessionPair(RelayConfig(rate_burst=10_000))
    room.add("alice", pace=True)
    room.add("bob")
    room.pump()
    ids = [room["alice"].send_message(f"held {n}", room.now) for n in range(50)]
    shown: list[str] = []
    seconds = 0
    while len(shown) < len(ids):
        shown += [e.msg_id for e in room.pump()["bob"] if isinstance(e, ev.Message)]
        assert len(shown) <= PACE_BURST + seconds * PACE_PER_SECOND, f"{len(shown)} out after {seconds} s"
        seconds += 1
        assert seconds < 60, "the paced sends never all went out"
        room.now += 1.0
        room["alice"].tick(room.now)  # the connection's timer
    assert shown == ids  # in order, each once


def test_a_queued_copy_whose_recipient_left_is_reported_then_sent_to_their_next_session() -> None:
    """bob leaves while alice's paced sends wait their turn: the relay will never ack those copies, so
    alice's client says so itself (not delivered, and why), at once, and sends them when bob is back."""
    room = SessionPair(RelayConfig(rate_burst=10_000))
    room.add("alice", pace=True)
    room.add("bob")
    room.pump()
    ids = [room["alice"].send_message(f"queued {n}", room.now, to=["bob"]) for n in range(PACE_BURST + 5)]
    first = room.pump()
    reported = {e.msg_id: e for e in first["alice"] if isinstance(e, ev.Delivery)}
    assert set(reported) == set(ids[:PACE_BURST]) and all(d.delivered == ("bob",) for d in reported.values())
    room.hang_up("bob")
    room.pump()
    room.now += 10.0
    room["alice"].tick(room.now)  # the connection's timer, then what it sends: their turn has come
    assert room["alice"].data_to_send() == b"", "nothing went out for them"
    late = [e for e in room["alice"].tick(room.now + 1.0) if isinstance(e, ev.Delivery)]
    assert [d.msg_id for d in late] == ids[PACE_BURST:], "each unsent copy is reported, in order"
    for delivery in late:
        assert delivery.delivered == () and delivery.missing == ()
        assert [name for name, _ in delivery.not_delivered] == ["bob"]
        assert "sent when they are back" in delivery.not_delivered[0][1]
    room.rejoin("bob", "bob-again")
    shown: list[str] = []
    for _ in range(10):
        shown += [e.msg_id for e in room.pump()["bob-again"] if isinstance(e, ev.Message)]
        room.now += 1.0
        room["alice"].tick(room.now)
    assert shown == ids[PACE_BURST:], "sent to bob's next session, in order, once"
