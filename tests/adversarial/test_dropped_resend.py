"""A ``dropped`` for a recipient who is still connected: the copies go again to that session, at once.

The relay says which copies it acked as queued and then threw away. When the
recipient came back in a new session they are sealed again to it; when it is
still connected in the very session they were sealed to (another node lost
them, or the relay lost them and says so), the sender resends them to that
session at once instead of waiting for a session that may not come. Real
relay, real clients, the tampering proxy in front of the relay (it eats the
copy on its way to bob and tells alice, as a relay that lost it would).
"""

from __future__ import annotations

from susurro.client import events as ev
from susurro.protocol import Deliver, Dropped, DropReason, Frame
from tests.helpers.hostile_relay import HostileRoom, send_and_wait
from tests.helpers.system import wait_until


def test_a_copy_lost_for_a_recipient_still_connected_is_sent_again_to_that_session_and_shown_once(
    hostile: HostileRoom,
) -> None:
    alice = hostile.join("alice")
    bob = hostile.join("bob")
    send_and_wait(alice, "the first arrives", [bob])
    eaten: list[Deliver] = []

    def lose_the_next_copy(label: str, frame: Frame) -> list[Frame]:
        if isinstance(frame, Deliver) and not eaten:
            eaten.append(frame)
            return []
        return [frame]

    hostile.proxy.set_hook("bob", lose_the_next_copy)
    msg_id = alice.send("lost after queued", ["bob"])
    queued = alice.wait_for(lambda e: isinstance(e, ev.Delivery) and e.msg_id == msg_id, what="its ack")
    assert isinstance(queued, ev.Delivery) and queued.delivered == ("bob",)
    wait_until(lambda: bool(eaten), "the copy eaten on its way to bob")
    hostile.proxy.set_hook("bob", None)
    hostile.proxy.inject("alice", Dropped(name="bob", ids=(msg_id,), reason=DropReason.SLOW_READER.value))
    warning = alice.wait_warning("dropped")
    assert "at once" in warning.detail
    shown = bob.wait_message("lost after queued")
    assert shown.msg_id == msg_id
    bob.barrier()
    assert [m.msg_id for m in bob.messages()].count(msg_id) == 1
    assert not [e for e in bob.log if isinstance(e, ev.Warning)], bob.kinds()
