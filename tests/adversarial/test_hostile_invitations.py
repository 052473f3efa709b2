"""A relay that holds an accepted room's log back: session 8's invitation review leftovers (review-s8-ifix).

Real clients (``ClientSession`` over ``RelayConnection``), the real relay on an ephemeral loopback port
and the tampering proxy of ``tests/helpers``: the proxy empties every answer of the room's log to bob.
Run once with each defence taken out (``docs/threat-model.md``, *session 8's invitation review leftovers*).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence

import pytest

from susurro.client import room_invites
from susurro.client.commands import RoomCommand, RoomWord
from susurro.client.room_commands import RoomCommands
from susurro.client.room_events import MemberAdded, RoomCreated, RoomWarning
from susurro.client.room_invites import InvitationReceived
from susurro.crypto import EntryKind, IdentityKey, RoomPolicy
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


def test_checks_the_relay_never_answers_free_their_places_on_the_clients_tick(
    hostile: HostileRoom, monkeypatch: pytest.MonkeyPatch
) -> None:
    """review-s8-hygiene L1 through a real connection: the session's tick gives up the checks the relay holds,
    says so, and checks the room that waited for a place."""
    monkeypatch.setattr(room_invites, "CHECK_WAIT", 0.0)  # overdue at the tick after the one that saw it
    alice, bob = hostile.join("alice"), hostile.join("bob")
    rooms: list[bytes] = []
    for n in range(room_invites.MAX_CHECKING_ROOMS + 1):
        alice.connection.room_request(lambda book, now, label=f"r{n}": book.create(label, RoomPolicy.INVITE, now))
        event(alice, RoomCreated, room=f"r{n}")
        state = alice.session.rooms.state(f"r{n}")
        assert state is not None
        rooms.append(state.room_id)
        x = IdentityKey.generate().public
        alice.connection.room_request(
            lambda book, now, r=state.room_id, k=x: book.change(r, EntryKind.ADD, "x", k, now)
        )
        event(alice, MemberAdded, name="x", room=f"r{n}")

    def hold_the_first_four(label: str, frame: Frame) -> Sequence[Item]:
        if not isinstance(frame, RoomLog) or frame.room == rooms[-1]:
            return [frame]
        return [dataclasses.replace(frame, entries=frame.entries[:2])] if frame.from_seq == 0 else []

    hostile.proxy.set_hook("bob", hold_the_first_four)
    key = bob.identity.public
    for n, room in enumerate(rooms):
        alice.connection.room_request(lambda book, now, r=room: book.change(r, EntryKind.ADD, "bob", key, now))
        event(alice, MemberAdded, name="bob", room=f"r{n}")
    given_up = alert(bob, RoomWarning.WITHHELD)
    assert given_up.room_id in rooms[:-1] and "it was not checked" in given_up.detail
    offered = event(bob, InvitationReceived, room=f"r{len(rooms) - 1}")
    assert offered.room_id == rooms[-1]
