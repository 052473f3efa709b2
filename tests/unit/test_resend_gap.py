"""A copy the relay lost, resent to the recipient's next session under its own counter, fills the
gap it left as ``late`` instead of being refused as a replay (spec review S5, finding 5). Real
sessions and a real relay core (``tests.helpers.session_pair``)."""

from __future__ import annotations

from collections.abc import Sequence

from susurro.client import events as ev
from susurro.client.counters import SendCounters
from susurro.client.sending import seal_send
from susurro.protocol import Deliver, Frame
from tests.helpers.session_pair import Item, SessionPair


def test_a_lost_copy_resent_to_the_next_session_fills_the_gap_late() -> None:
    pair = SessionPair()
    pair.join("alice", "bob")
    pair["alice"].send_message("one", pair.now, to=["bob"])
    pair.pump()
    lost: list[str] = []

    def eat_the_next(frame: Frame) -> Sequence[Item]:
        if isinstance(frame, Deliver) and not lost:
            lost.append(frame.id)
            return []
        return [frame]

    pair.intercept("bob", eat_the_next)
    pair["alice"].send_message("two", pair.now, to=["bob"])
    pair.pump()
    pair["alice"].send_message("three", pair.now, to=["bob"])
    assert [e.kind for e in pair.pump()["bob"] if isinstance(e, ev.Warning)] == ["gap"]
    pair.hang_up("bob")  # the relay cuts bob; he comes back with a new session key
    pair.rejoin("bob", "bob2")
    pair.pump()
    # alice resends "two" to bob's new session, same id and counter (what client/resend.py does).
    alice, bob_key = pair["alice"], pair.identity("bob").public
    data, _, _ = seal_send(
        alice.identity, alice._keys.boxes, "alice", [alice.peers["bob"]], "two", msg_id=lost[0], now=pair.now,
        direct=True, max_frame=alice.max_frame, counters=SendCounters({("dm", bob_key): 1}),
    )  # fmt: skip
    alice._outgoing += data
    events = pair.pump()["bob2"]
    assert [e.text for e in events if isinstance(e, ev.Message)] == ["two"]
    assert [e.kind for e in events if isinstance(e, ev.Warning)] == ["late"]
