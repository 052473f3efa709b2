"""Rooms against a hostile relay: real clients, the real relay, a tampering proxy between.

The relay can rewrite, drop or invent any room frame; it cannot sign an
entry. Each test names the defence it exercises; each was run once with that
defence switched off to see it fail (the column "fails without" in
docs/threat-model.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pytest

from susurro.client import events as ev
from susurro.client.errors import SendError
from susurro.client.room_events import (
    Invited,
    MemberAdded,
    MemberRemoved,
    RoomAlert,
    RoomCreated,
    RoomMessage,
    RoomReady,
    RoomWarning,
)
from susurro.crypto import EntryKind, IdentityKey, RoomPolicy
from susurro.protocol import Frame, RoomLog, RoomUpdate, Send
from tests.helpers.hostile_relay import TO_RELAY, Client, HostileRoom, Item

T = 1_764_000_000


def rooms(client: Client) -> list[RoomAlert]:
    return [e for e in client.log if isinstance(e, RoomAlert)]


def alert(client: Client, kind: str) -> RoomAlert:
    """Wait for the room warning of ``kind`` (a request's answer crosses the proxy on its own thread,
    so a barrier sent after it could overtake it; waiting for the event itself cannot)."""
    found = client.seen_or_wait(lambda e: isinstance(e, RoomAlert) and e.kind == kind, what=f"{kind} alert")
    assert isinstance(found, RoomAlert)
    return found


def event(client: Client, kind: type[ev.Event], **fields: object) -> ev.Event:
    def match(e: ev.Event) -> bool:
        return isinstance(e, kind) and all(getattr(e, k) == v for k, v in fields.items())

    return client.seen_or_wait(match, what=f"{kind.__name__}{fields}")


def ops_with_bob(hostile: HostileRoom) -> tuple[Client, Client, Client, bytes]:
    """alice's invite-only room "ops" with bob in it; carol is on the relay, not in the room."""
    alice, bob, carol = hostile.join("alice"), hostile.join("bob"), hostile.join("carol")
    alice.connection.room_request(lambda book, now: book.create("ops", RoomPolicy.INVITE, now))
    event(alice, RoomCreated, room="ops")
    state = alice.session.rooms.state("ops")
    assert state is not None
    alice.connection.room_request(
        lambda book, now: book.change(state.room_id, EntryKind.ADD, "bob", bob.identity.public, now)
    )
    event(alice, MemberAdded, name="bob")
    bob.accept_invitation("ops")
    event(bob, Invited, room="ops")
    assert bob.session.rooms.state(state.room_id) is not None
    return alice, bob, carol, state.room_id


def last_send(hostile: HostileRoom, label: str) -> Send:
    sends = [f for f in hostile.proxy.seen(label, TO_RELAY) if isinstance(f, Send)]
    assert sends, f"{label} sent nothing"
    return sends[-1]


def test_a_member_the_relay_announces_gets_no_ciphertext_and_a_warning(hostile: HostileRoom) -> None:
    alice, bob, carol, room = ops_with_bob(hostile)

    def ghost(label: str, frame: Frame) -> Sequence[Item]:
        if isinstance(frame, RoomLog):  # "carol is here too"
            return [dataclasses.replace(frame, online=(*frame.online, "carol"))]
        return [frame]

    hostile.proxy.set_hook("alice", ghost)
    alice.connection.room_request(lambda book, now: book.fetch(room, 0))
    assert "carol" in alert(alice, RoomWarning.NOT_A_MEMBER).detail
    alice.connection.send_to_room("only for ops", "ops")
    bob.wait_message("only for ops")
    assert set(last_send(hostile, "alice").to) == {"bob"}  # carol is on the roster, not in the log
    carol.barrier()
    assert "only for ops" not in carol.texts()


def test_a_forged_entry_is_refused_by_the_client(hostile: HostileRoom) -> None:
    _, bob, carol, room = ops_with_bob(hostile)
    state = bob.session.rooms.state(room)
    assert state is not None
    forged = state.next_entry(
        IdentityKey.generate(), kind=EntryKind.ADD, subject_name="carol", subject_ik=carol.identity.public, time=T
    ).to_bytes()
    hostile.proxy.inject(
        "bob",
        RoomUpdate(room=room, label="ops", from_seq=2, entries=(forged,), head_seq=2, head_hash=bytes(32), online=()),
    )
    assert "entry_not_permitted" in alert(bob, RoomWarning.BAD_LOG).detail
    bob.barrier()
    assert len([a for a in rooms(bob) if a.kind == RoomWarning.BAD_LOG]) == 1
    after = bob.session.rooms.state(room)
    assert after == state and carol.identity.public not in after.members


def test_a_withheld_removal_is_reported_and_the_removed_member_gets_nothing(hostile: HostileRoom) -> None:
    alice, bob, carol, room = ops_with_bob(hostile)
    state = alice.session.rooms.state(room)
    assert state is not None
    alice.connection.room_request(
        lambda book, now: book.change(room, EntryKind.ADD, "carol", carol.identity.public, now)
    )
    event(alice, MemberAdded, name="carol")
    event(bob, MemberAdded, name="carol")
    seen_by_bob = bob.session.rooms.state(room)
    assert seen_by_bob is not None and seen_by_bob.head.seq == 2

    # From now on the relay hides every room change from bob: new entries never reach him.
    def withhold(label: str, frame: Frame) -> Sequence[Item]:
        if isinstance(frame, RoomUpdate):
            return []
        if isinstance(frame, RoomLog):
            return [dataclasses.replace(frame, entries=(), head_seq=2, head_hash=seen_by_bob.head.hash)]
        return [frame]

    hostile.proxy.set_hook("bob", withhold)
    alice.connection.room_request(
        lambda book, now: book.change(room, EntryKind.REMOVE, "carol", carol.identity.public, now)
    )
    event(alice, MemberRemoved, name="carol")
    assert any(isinstance(e, MemberRemoved) and e.name == "carol" for e in alice.log)
    # The removal takes effect at alice's next message: carol gets no ciphertext.
    alice.connection.send_to_room("after carol left", "ops")
    bob.wait_message("after carol left")
    assert set(last_send(hostile, "alice").to) == {"bob"}
    assert "alice signed a message at entry 3" in alert(bob, RoomWarning.WITHHELD).detail
    # bob's log still lists carol, but he was shown a newer head: he seals nothing to the old member list.
    with pytest.raises(SendError, match="removal withheld"):
        bob.connection.send_to_room("bob answers", "ops")
    carol.barrier()
    assert "after carol left" not in carol.texts() and "bob answers" not in carol.texts()
    assert not [f for f in hostile.proxy.seen("bob", TO_RELAY) if isinstance(f, Send)]


def test_a_relay_that_renames_the_room_is_caught(hostile: HostileRoom) -> None:
    _, bob, _, room = ops_with_bob(hostile)

    def rename(label: str, frame: Frame) -> Sequence[Item]:
        if isinstance(frame, RoomLog):
            return [dataclasses.replace(frame, label="payroll")]
        return [frame]

    hostile.proxy.set_hook("bob", rename)
    bob.connection.room_request(lambda book, now: book.fetch(room, 0))
    assert "'payroll'" in alert(bob, RoomWarning.LABEL_CHANGED).detail
    event(bob, RoomReady, room="ops")
    ready = [e for e in bob.log if isinstance(e, RoomReady)]
    assert ready and ready[-1].room == "ops"


def test_a_removed_member_who_adds_itself_back_to_an_open_room_is_refused(hostile: HostileRoom) -> None:
    """The relay sides with bob, whom alice removed from her open room: it serves his own re-add."""
    alice, bob, carol = hostile.join("alice"), hostile.join("bob"), hostile.join("carol")
    alice.connection.room_request(lambda book, now: book.create("lobby", RoomPolicy.OPEN, now))
    event(alice, RoomCreated, room="lobby")
    state = alice.session.rooms.state("lobby")
    assert state is not None
    room = state.room_id
    for joiner in (bob, carol):
        joiner.connection.room_request(lambda book, now: book.fetch(room, 0))
        event(joiner, RoomReady, room="lobby")
        who, key = joiner.name, joiner.identity.public
        joiner.connection.room_request(
            lambda book, now, who=who, key=key: book.change(room, EntryKind.ADD, who, key, now)
        )
        event(alice, MemberAdded, name=joiner.name)
    bob_ik = bob.identity.public
    alice.connection.room_request(lambda book, now: book.change(room, EntryKind.REMOVE, "bob", bob_ik, now))
    event(alice, MemberRemoved, name="bob")  # alice is at the removal before the relay's lie reaches her
    event(bob, MemberRemoved, name="bob")
    removed = bob.session.rooms.state(room)
    assert removed is not None and bob.identity.public in removed.banned
    rejoin = removed.next_entry(
        bob.identity, kind=EntryKind.ADD, subject_name="bob", subject_ik=bob.identity.public, time=T
    ).to_bytes()
    head = removed.head.seq + 1
    hostile.proxy.inject(
        "alice",
        RoomUpdate(
            room=room, label="lobby", from_seq=head, entries=(rejoin,), head_seq=head, head_hash=bytes(32), online=()
        ),
    )
    assert "only an admin may add them back" in alert(alice, RoomWarning.BAD_LOG).detail
    after = alice.session.rooms.state(room)
    assert after is not None and bob.identity.public not in after.members
    # The relay claims a head it backs with an entry alice refuses: she seals nothing (fail closed).
    assert "withholding" in alert(alice, RoomWarning.WITHHELD).detail  # her fetch is answered
    with pytest.raises(SendError, match="removal withheld"):
        alice.connection.send_to_room("bob is out", "lobby")
    bob.barrier()
    assert "bob is out" not in bob.texts()
    assert not any(f for f in hostile.proxy.seen("alice", TO_RELAY) if isinstance(f, Send) and "bob" in f.to)


def test_a_message_from_a_member_the_relay_has_not_told_us_about_yet_waits_and_is_shown(
    hostile: HostileRoom,
) -> None:
    alice, bob, carol, room = ops_with_bob(hostile)
    # The relay never pushes bob the log's growth; he learns of it only by asking.
    hostile.proxy.set_hook("bob", lambda label, frame: [] if isinstance(frame, RoomUpdate) else [frame])
    carol_ik = carol.identity.public
    alice.connection.room_request(lambda book, now: book.change(room, EntryKind.ADD, "carol", carol_ik, now))
    carol.accept_invitation("ops")
    event(carol, Invited, room="ops")
    carol.connection.send_to_room("hola, soy nueva", "ops")
    shown = bob.wait_message("hola, soy nueva")
    assert isinstance(shown, RoomMessage) and shown.sender == "carol" and shown.room_id == room
    assert not [a for a in rooms(bob) if a.kind == RoomWarning.NOT_A_MEMBER]
    event(bob, MemberAdded, name="carol")


def test_a_refused_entry_before_a_removal_stops_sends_to_the_room(hostile: HostileRoom) -> None:
    """Spec review S4, finding 4: a log the client cannot follow past a refused entry fails closed.

    The relay serves bob a forged entry where alice's removal of carol stands; bob must not
    keep sealing at his stuck head, which still lists carol.
    """
    alice, bob, carol, room = ops_with_bob(hostile)
    alice.connection.room_request(
        lambda book, now: book.change(room, EntryKind.ADD, "carol", carol.identity.public, now)
    )
    event(alice, MemberAdded, name="carol")  # her book is at the add before she signs the removal
    event(bob, MemberAdded, name="carol")
    stuck = bob.session.rooms.state(room)
    assert stuck is not None and stuck.head.seq == 2
    forged = stuck.next_entry(
        IdentityKey.generate(), kind=EntryKind.REMOVE, subject_name="carol", subject_ik=carol.identity.public, time=T
    ).to_bytes()

    def forge(label: str, frame: Frame) -> Sequence[Item]:
        if isinstance(frame, (RoomLog, RoomUpdate)) and frame.from_seq <= 3 < frame.from_seq + len(frame.entries):
            entries = list(frame.entries)
            entries[3 - frame.from_seq] = forged  # alice's removal, replaced by an entry bob refuses
            return [dataclasses.replace(frame, entries=tuple(entries))]
        return [frame]

    hostile.proxy.set_hook("bob", forge)
    alice.connection.room_request(
        lambda book, now: book.change(room, EntryKind.REMOVE, "carol", carol.identity.public, now)
    )
    event(alice, MemberRemoved, name="carol")
    assert "entry 3" in alert(bob, RoomWarning.BAD_LOG).detail
    assert "withholding" in alert(bob, RoomWarning.WITHHELD).detail  # his fetch got the same refused entry
    with pytest.raises(SendError, match="removal withheld"):
        bob.connection.send_to_room("bob answers", "ops")
    carol.barrier()
    assert "bob answers" not in carol.texts()
    assert not [f for f in hostile.proxy.seen("bob", TO_RELAY) if isinstance(f, Send)]
