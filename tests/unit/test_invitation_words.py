"""An invitation let go for newer ones says why and what to type, and so do its room's messages.

Review S7c finding 11, through two real sessions on a real ``RelayCore`` (``SessionPair``): mallory adds
bob to five rooms, one message each, and the fifth pushes the first out (four from one inviter). Run once
with the old words: the drop said "(/join r0 still takes it up)", and r0's held message came out as
``room_not_a_member`` ("the log verified here does not list them as a member"), which is not why.
"""

from __future__ import annotations

from susurro.client.events import WarningKind
from susurro.client.render import event_to_text
from susurro.client.room_events import RoomAlert, RoomMessage
from susurro.client.room_invites import MAX_INVITATIONS_PER_INVITER, InvitationDropped
from susurro.crypto import EntryKind, RoomPolicy
from susurro.relay import RelayConfig
from tests.helpers.session_pair import SessionPair
from tests.unit.test_room_session import request


def test_an_invitation_let_go_for_newer_ones_and_its_messages_say_so_and_how_to_accept() -> None:
    pair = SessionPair(RelayConfig(rate_per_second=0))
    pair.join("mallory", "bob")
    bob_key = pair.identity("bob").public
    seen = []
    for n in range(MAX_INVITATIONS_PER_INVITER + 1):
        request(pair, "mallory", lambda b, now, label=f"r{n}": b.create(label, RoomPolicy.INVITE, now))
        state = pair["mallory"].rooms.state(f"r{n}")
        assert state is not None
        seen += request(
            pair, "mallory", lambda b, now, r=state.room_id: b.change(r, EntryKind.ADD, "bob", bob_key, now)
        )["bob"]
        pair["mallory"].send_message(f"hello from r{n}", pair.now, room=state.room_id)
        seen += pair.pump()["bob"] + pair["bob"].tick(pair.now)
    (dropped,) = [e for e in seen if isinstance(e, InvitationDropped)]
    line = event_to_text(dropped) or ""
    assert dropped.room == "r0" and "to make room for newer ones" in line and "type /join r0" in line
    assert "takes it up" not in line
    (alert,) = [e for e in seen if isinstance(e, RoomAlert) and e.room == "r0"]
    assert alert.kind == WarningKind.ROOM_NOT_ACCEPTED and "let go for newer ones" in alert.detail
    assert "/join r0" in alert.detail
    assert not [e for e in seen if isinstance(e, RoomMessage)]  # none shown before an accept
