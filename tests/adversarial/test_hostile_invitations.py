"""A relay that holds an accepted room's log back: session 8's invitation review leftovers (review-s8-ifix).

Real clients (``ClientSession`` over ``RelayConnection``), the real relay on an ephemeral loopback port
and the tampering proxy of ``tests/helpers``: the proxy empties every answer of the room's log to bob.
Run once with each defence taken out (``docs/threat-model.md``, *session 8's invitation review leftovers*).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence

from susurro.client.commands import RoomCommand, RoomWord
from susurro.client.room_commands import RoomCommands
from susurro.client.room_events import MemberAdded, RoomCreated, RoomWarning
from susurro.client.room_invites import InvitationReceived
from susurro.crypto import EntryKind, RoomPolicy
from susurro.protocol import Frame, RoomFetch, RoomLog
from tests.adversarial.test_hostile_relay_rooms import alert, event
from tests.helpers.hostile_relay import TO_RELAY, HostileRoom, Item


def test_an_accepted_room_whose_log_is_served_empty_is_said_once_listed_and_not_fetched_again_and_again(
    hostile: HostileRoom,
) -> None:
    alice, bob = hostile.join("alice"), hostile.join("bob")
    alice.connection.room_request(lambda book, now: book.create("ops", RoomPolicy.INVITE, now))
    event(alice, RoomCreated, room="ops")
    state = alice.session.rooms.state("ops")
    assert state is not None
    room = state.room_id

    holding = threading.Event()  # set once bob was offered the invitation: the accept's answers are emptied

    def empty(label: str, frame: Frame) -> Sequence[Item]:
        if isinstance(frame, RoomLog) and frame.room == room and holding.is_set():
            return [dataclasses.replace(frame, entries=())]
        return [frame]

    hostile.proxy.set_hook("bob", empty)
    key = bob.identity.public
    alice.connection.room_request(lambda book, now: book.change(room, EntryKind.ADD, "bob", key, now))
    event(alice, MemberAdded, name="bob")
    event(bob, InvitationReceived, room="ops")
    holding.set()
    bob.accept_invitation("ops")
    withheld = alert(bob, RoomWarning.WITHHELD)
    assert withheld.room_id == room and withheld.room == "ops" and "no entry from its create" in withheld.detail
    bob.barrier()
    fetches = [f for f in hostile.proxy.seen("bob", TO_RELAY) if isinstance(f, RoomFetch) and f.room == room]
    assert len(fetches) == 2, f"{len(fetches)} fetches"  # the check of the invitation, then the accept's one
    assert len([e for e in bob.log if getattr(e, "kind", None) == RoomWarning.WITHHELD]) == 1, "said once"
    listed = RoomCommands().run(RoomCommand(word=RoomWord.INVITES), bob.connection)
    assert [(record["event"], record["room"]) for record, _ in listed] == [("invitation_accepted_waiting", "ops")]
    assert "its log has not come from the relay yet" in listed[0][1]
