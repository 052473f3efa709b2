"""Rooms someone else added us to are invitations: the book keeps nothing of them until the user accepts.

The book (``RoomBook``) against a real ``RelayCore`` with real SQLite, as in
``test_client_rooms``; the bounded list itself (``Invitations``) also under
hypothesis. Each defence was run once with it taken out: with every room
taken as consented, the unasked-for rooms are followed (state, label pin,
remembered head) and these tests fail.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from susurro.client import events as ev
from susurro.client.room_events import Invited, RoomAlert, RoomMessage, RoomReady, RoomWarning
from susurro.client.room_invites import (
    MAX_CHECKING_ROOMS,
    MAX_INVITATIONS,
    MAX_INVITATIONS_PER_INVITER,
    AmbiguousInvitation,
    DropReason,
    Invitation,
    InvitationDropped,
    InvitationReceived,
    Invitations,
)
from susurro.client.room_log import RULES
from susurro.client.rooms import RoomBook
from susurro.crypto import EntryKind, IdentityKey, RoomPolicy, create_entry, entry_hash, verify_log
from susurro.protocol import Frame, RoomFetch, RoomLog
from susurro.relay import RelayConfig, RelayCore
from tests.helpers.session_pair import SessionPair
from tests.unit.test_client_rooms import Client, T, accept, everyone
from tests.unit.test_room_session import ops


@pytest.fixture
def core() -> RelayCore:
    return RelayCore(RelayConfig(rate_per_second=0))


def invitation(n: int, inviter: int, known: bool = False, label: str = "") -> Invitation:
    return Invitation(bytes([n % 256, n // 256]) * 16, label or f"r{n}", f"i{inviter}", bytes([inviter]) * 32, known)


# --- the bounded list ------------------------------------------------------------------------


@given(st.lists(st.tuples(st.integers(0, 300), st.integers(0, 9), st.booleans()), max_size=200))
def test_the_pending_invitations_never_pass_their_bounds(offers: list[tuple[int, int, bool]]) -> None:
    pending = Invitations()
    for n, inviter, known in offers:
        events = pending.offer(invitation(n, inviter, known))
        assert len(pending) <= MAX_INVITATIONS
        per = [i for i in pending.pending() if i.inviter_key == bytes([inviter]) * 32]
        assert len(per) <= MAX_INVITATIONS_PER_INVITER
        assert len({i.room_id for i in pending.pending()}) == len(pending)  # each room once
        received = [e for e in events if isinstance(e, InvitationReceived)]
        assert len(received) <= 1  # a room already pending is not offered twice


def test_one_inviter_lets_its_own_oldest_go_and_a_stranger_goes_before_a_known_inviter() -> None:
    pending = Invitations()
    for n in range(MAX_INVITATIONS_PER_INVITER):
        pending.offer(invitation(n, inviter=1))
    events = pending.offer(invitation(100, inviter=1))
    (dropped,) = [e for e in events if isinstance(e, InvitationDropped)]
    assert dropped.room == "r0" and dropped.reason is DropReason.TOO_MANY_FROM_INVITER
    full = Invitations(limit=3)
    full.offer(invitation(1, inviter=1, known=True))
    full.offer(invitation(2, inviter=2))
    full.offer(invitation(3, inviter=3, known=True))
    (dropped,) = [e for e in full.offer(invitation(4, inviter=4)) if isinstance(e, InvitationDropped)]
    assert dropped.room == "r2" and dropped.reason is DropReason.TOO_MANY  # the stranger's, not the oldest


def test_an_invitation_is_found_by_label_and_two_lookalike_labels_must_be_told_apart() -> None:
    pending = Invitations()
    first, second = invitation(1, 1, label="plans"), invitation(2, 2, label="Plans")
    pending.offer(first)
    assert pending.find("PLANS") == first and pending.find(first.room_id) == first
    pending.offer(second)
    try:
        pending.find("plans")
    except AmbiguousInvitation as exc:
        assert first.shown in str(exc) and second.shown in str(exc)
    else:
        raise AssertionError("two rooms called plans: the label alone must not pick one")
    assert pending.find(f"plans#{second.short_id}") == second
    assert pending.decline(second.room_id) == second and not pending.wanted(second.room_id)
    assert pending.offer(second) == []  # declined: not offered again


# --- the book against a real relay core ------------------------------------------------------------


def alice_adds_bob(core: RelayCore, served: list[RoomLog] | None = None) -> tuple[Client, Client, bytes]:
    """alice's ops with bob added (an invitation to him); ``served`` gets each whole log the relay serves bob."""
    alice, bob = Client(core, "alice"), Client(core, "bob")

    def keep(frame: Frame) -> Frame:
        if served is not None and isinstance(frame, RoomLog) and frame.from_seq == 0:
            served.append(frame)
        return frame

    bob.tamper = keep
    alice.send(alice.book.create("ops", RoomPolicy.INVITE, T))
    alice.pump()
    state = alice.book.state("ops")
    assert state is not None
    alice.send(alice.book.change(state.room_id, EntryKind.ADD, "bob", bob.ik, T))
    everyone(alice, bob)
    return alice, bob, state.room_id


def test_an_add_is_an_invitation_nothing_of_the_room_kept_until_accepted(core: RelayCore) -> None:
    alice, bob, room = alice_adds_bob(core)
    (offered,) = [e for e in bob.events if isinstance(e, InvitationReceived)]
    assert (offered.room, offered.room_id, offered.by) == ("ops", room, "alice")
    assert not [e for e in bob.events if isinstance(e, Invited | RoomReady)]
    assert bob.book.state(room) is None and bob.book.rooms() == []
    assert bob.book.pinned_id("ops") is None and bob.book.remember() == []  # no label pin, nothing saved
    assert not bob.book.invites.checking  # its log was verified once, then let go
    accept(bob, room)
    everyone(alice, bob)
    assert bob.book.state(room) is not None and bob.book.pinned_id("ops") == room
    assert any(isinstance(e, Invited) and e.by == "alice" for e in bob.events)
    assert room not in bob.book.invites.invitations


def test_a_declined_room_keeps_nothing_and_is_not_offered_again_when_it_grows(core: RelayCore) -> None:
    alice, bob, room = alice_adds_bob(core)
    carol = Client(core, "carol")
    assert bob.book.invites.decline("ops").room_id == room
    alice.send(alice.book.change(room, EntryKind.ADD, "carol", carol.ik, T))
    fresh = []
    for _ in range(5):
        fresh += bob.pump()
        alice.pump()
    assert not [e for e in fresh if isinstance(e, InvitationReceived)]
    assert bob.book.state(room) is None and bob.book.remember() == [] and not bob.book.invites.checking


def test_a_flood_of_rooms_from_throwaway_identities_is_bounded(core: RelayCore) -> None:
    bob = Client(core, "bob")
    for n in range(MAX_INVITATIONS + 8):
        spammer = Client(core, f"t{n}")
        spammer.send(spammer.book.create(f"spam{n}", RoomPolicy.INVITE, T))
        spammer.pump()
        state = spammer.book.state(f"spam{n}")
        assert state is not None
        spammer.send(spammer.book.change(state.room_id, EntryKind.ADD, "bob", bob.ik, T))
        spammer.pump()
        bob.pump()
        assert len(bob.book.invites.checking) <= MAX_CHECKING_ROOMS
    assert len(bob.book.invites.invitations) == MAX_INVITATIONS
    assert len([e for e in bob.events if isinstance(e, InvitationDropped)]) == 8
    assert bob.book.rooms() == [] and bob.book.remember() == []


def whole_log(core: RelayCore) -> tuple[Client, Client, RoomLog]:
    """alice's ops with bob added, and the whole log as the relay served it to bob."""
    served: list[RoomLog] = []
    alice, bob, _room = alice_adds_bob(core, served)
    assert served and len(served[-1].entries) == 2
    return alice, bob, served[-1]


def test_our_own_create_elsewhere_is_ours_not_an_invitation(core: RelayCore) -> None:
    # The same key on another device (or after a lost state file): only it signs its own create.
    alice, _bob, log = whole_log(core)
    elsewhere = RoomBook("alice", alice.identity)
    pushed = replace(log, id="zz")  # nobody asked for it here
    events, out = elsewhere.receive(pushed, T)
    assert not [e for e in events if isinstance(e, InvitationReceived)] and elsewhere.state(log.room) is None
    (fetch,) = out  # ours: asked for again, to be followed
    assert isinstance(fetch, RoomFetch) and fetch.room == log.room
    elsewhere.receive(replace(log, id=fetch.id), T)
    assert elsewhere.state(log.room) is not None


def test_a_forged_add_the_relay_serves_is_flagged_and_no_invitation(core: RelayCore) -> None:
    _alice, bob, log = whole_log(core)
    bob.book.invites.decline(log.room)
    # mallory's own room, where eve (no admin, no member) "adds" bob: the relay serves it as is.
    mallory, eve = IdentityKey.generate(), IdentityKey.generate()
    create = create_entry(mallory, name="mallory", label="trap", policy=RoomPolicy.INVITE, time=T).to_bytes()
    state = verify_log([create], RULES)
    forged = state.next_entry(eve, kind=EntryKind.ADD, subject_name="bob", subject_ik=bob.ik, time=T).to_bytes()
    served = RoomLog(
        id="zz",
        room=state.room_id,
        label="trap",
        from_seq=0,
        entries=(create, forged),
        head_seq=1,
        head_hash=entry_hash(forged),
        online=(),
    )
    events, out = bob.book.receive(served, T)
    assert [e.kind for e in events if isinstance(e, RoomAlert)] == [RoomWarning.BAD_LOG]
    assert not [e for e in events if isinstance(e, InvitationReceived)] and out == []
    assert state.room_id not in bob.book.invites.invitations and bob.book.state(state.room_id) is None


def test_a_room_message_in_an_invitation_waits_and_after_a_decline_is_not_shown() -> None:
    pair = SessionPair()
    pair.join("alice", "bob")
    room = ops(pair)
    bob_key = pair.identity("bob").public
    pair["alice"].room_request(lambda book, now: book.change(room, EntryKind.ADD, "bob", bob_key, now), pair.now)
    produced = pair.pump()
    assert [e.room_id for e in produced["bob"] if isinstance(e, InvitationReceived)] == [room]
    pair["alice"].send_message("before bob answers", pair.now, room=room)
    produced = pair.pump()
    assert not [e for e in produced["bob"] if isinstance(e, ev.Message | ev.Warning)]  # it waits, unseen
    pair["bob"].rooms.invites.decline(room)
    later = pair["bob"].tick(pair.now)  # the held message is judged: the room was declined
    pair["alice"].send_message("after bob declined", pair.now, room=room)
    later += pair.pump()["bob"]
    later += pair["bob"].tick(pair.now)  # judged at the next tick: no log of a declined room is fetched
    assert [e.kind for e in later if isinstance(e, RoomAlert)] == [RoomWarning.NOT_ACCEPTED] * 2
    assert not [e for e in later if isinstance(e, RoomMessage)]
