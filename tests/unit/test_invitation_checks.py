"""Rooms we did not ask for are checked four at a time; the others wait their turn, and none is lost unsaid.

The book (``RoomBook``) against a real ``RelayCore`` with real SQLite (``test_client_rooms.Client``); the
relay serves each log two entries a page (short pages are its right), so checks overlap. Each test was run
once against the old desk, which let the oldest check go without a word when a fifth started (and whose
next page then fetched it again from ``create``): the rooms past the fourth were never offered, and the
checks under way at a reconnect were forgotten.
"""

from __future__ import annotations

from dataclasses import replace

from susurro.client.render import event_to_json, event_to_text
from susurro.client.room_invites import (
    MAX_CHECKING_ROOMS,
    MAX_WAITING_CHECKS,
    CheckDropped,
    CheckWaiting,
    InvitationReceived,
    InviteDesk,
)
from susurro.crypto import EntryKind, IdentityKey, RoomPolicy
from susurro.protocol import Frame, RoomFetch, RoomLog
from susurro.relay import RelayCore
from tests.unit.test_client_rooms import Client, T, everyone
from tests.unit.test_room_invites import core

__all__ = ["core"]  # the fixture, shared


def short_pages(bob: Client, deaf: list[bool]) -> None:
    """bob hears nothing while ``deaf[0]``; then every log comes two entries a page."""

    def tamper(frame: Frame) -> Frame | None:
        if deaf[0]:
            return None
        if isinstance(frame, RoomLog) and len(frame.entries) > 2:
            return replace(frame, entries=frame.entries[:2])
        return frame

    bob.tamper = tamper


def rooms_adding(mallory: Client, bob: Client, count: int) -> list[bytes]:
    """``count`` rooms of mallory's, each adding bob and three others (five entries)."""
    rooms = []
    for n in range(count):
        mallory.send(mallory.book.create(f"r{n}", RoomPolicy.INVITE, T))
        mallory.pump()
        state = mallory.book.state(f"r{n}")
        assert state is not None
        for name, key in [("bob", bob.ik), *((f"x{k}", IdentityKey.generate().public) for k in range(3))]:
            mallory.send(mallory.book.change(state.room_id, EntryKind.ADD, name, key, T))
            mallory.pump()
        rooms.append(state.room_id)
    return rooms


def push_each(mallory: Client, rooms: list[bytes]) -> None:
    """One more entry in each room: the relay pushes each to bob, all before he reads any."""
    for room in rooms:
        mallory.send(mallory.book.change(room, EntryKind.ADD, "late", IdentityKey.generate().public, T))
        mallory.pump()


def test_rooms_past_the_checks_wait_their_turn_and_every_one_is_offered(core: RelayCore) -> None:
    mallory, bob = Client(core, "mallory"), Client(core, "bob")
    deaf = [True]
    short_pages(bob, deaf)
    rooms = rooms_adding(mallory, bob, MAX_CHECKING_ROOMS + 2)
    everyone(mallory, bob)
    deaf[0] = False
    push_each(mallory, rooms)
    everyone(mallory, bob)
    offered = [e.room_id for e in bob.events if isinstance(e, InvitationReceived)]
    assert sorted(offered) == sorted(rooms) and len(offered) == len(rooms)  # each once
    waiting = [e for e in bob.events if isinstance(e, CheckWaiting)]
    assert [(e.room_id, e.ahead) for e in waiting] == [(rooms[4], 4), (rooms[5], 5)]
    assert "waits to be checked" in (event_to_text(waiting[0]) or "")
    assert event_to_json(waiting[0])["event"] == "room_check_waiting"
    assert not bob.book.invites.checking and bob.book.rooms() == []
    assert not [e for e in bob.events if isinstance(e, CheckDropped)]


def test_checks_under_way_at_a_reconnect_are_fetched_again_not_forgotten(core: RelayCore) -> None:
    mallory, bob = Client(core, "mallory"), Client(core, "bob")
    deaf = [True]
    short_pages(bob, deaf)
    rooms = rooms_adding(mallory, bob, MAX_CHECKING_ROOMS + 1)
    everyone(mallory, bob)
    deaf[0] = False
    push_each(mallory, rooms)
    for _ in range(2):  # the pushes and the first pages: four checks under way, one waiting
        for frame in bob.outbox.new_frames():
            shown = bob.tamper(frame)
            assert shown is not None
            _events, out = bob.book.receive(shown, T)
            for request in out:
                bob.send(request)
    assert len(bob.book.invites.checking) == MAX_CHECKING_ROOMS
    bob.outbox.new_frames()  # the connection ends: the answers on their way are lost
    again = bob.book.rejoined()
    assert [f.room for f in again if isinstance(f, RoomFetch)] == rooms[:MAX_CHECKING_ROOMS]
    assert all(f.from_seq == 0 for f in again if isinstance(f, RoomFetch))
    for request in again:
        bob.send(request)
    everyone(mallory, bob)
    offered = [e.room_id for e in bob.events if isinstance(e, InvitationReceived)]
    assert sorted(offered) == sorted(rooms)


def test_past_every_place_to_wait_a_room_is_not_checked_and_the_user_is_told() -> None:
    desk = InviteDesk(IdentityKey.generate().public, lambda name, key: False)
    said = [desk.wait(bytes([n]) * 32, f"r{n}") for n in range(MAX_CHECKING_ROOMS + MAX_WAITING_CHECKS)]
    assert all(isinstance(e, CheckWaiting) for events in said for e in events)
    (dropped,) = desk.wait(b"\xff" * 32, "last")
    assert isinstance(dropped, CheckDropped) and dropped.room == "last"
    line = event_to_text(dropped) or ""
    assert "was not checked" in line and "/join last" in line
    assert event_to_json(dropped)["event"] == "room_check_dropped"
    assert not desk.wanted(bytes([0]) * 32)  # waiting: a push of it again is not queued twice
    assert desk.wanted(b"\xff" * 32)  # not checked: its next push tries again


def test_a_join_answered_while_its_room_is_checked_follows_it(core: RelayCore) -> None:
    # review S7c finding 9: the user types /join r0 while r0 is being checked as a room nobody asked for
    mallory, bob = Client(core, "mallory"), Client(core, "bob")
    deaf = [True]
    short_pages(bob, deaf)
    (room,) = rooms_adding(mallory, bob, 1)
    everyone(mallory, bob)
    deaf[0] = False
    push_each(mallory, [room])
    for _ in range(2):  # the push, then its first page: the check is under way
        for frame in bob.outbox.new_frames():
            shown = bob.tamper(frame)
            assert shown is not None
            _events, out = bob.book.receive(shown, T)
            for request in out:
                bob.send(request)
    assert room in bob.book.invites.checking
    bob.send(bob.book.find("r0"))
    everyone(mallory, bob)
    assert bob.book.state(room) is not None and bob.book.pinned_id("r0") == room
    assert room not in bob.book.invites.invitations and not bob.book.invites.checking
    assert not [e for e in bob.events if isinstance(e, InvitationReceived)]
