"""Only the user's own act makes a room someone else added us to ours; nothing a relay or an admin does can.

The book (``RoomBook``) against a real ``RelayCore`` with real SQLite (``test_client_rooms.Client``), a
hostile relay's frames built by hand where it lies, and two real sessions (``SessionPair``) for held
messages and re-adds. Each defence was run once with it taken out, and its test failed: consent from
the last page's adds, a find answer taken as consent whatever its label, a followed room staying ours
after a leave and a re-add, invitation messages in the shared hold, pushes of a pending room ignored,
accept of a vanished invitation raising ``KeyError``, every alert of a checked room shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest

from susurro.client.errors import SendError
from susurro.client.render import event_to_json, event_to_text
from susurro.client.room_events import RoomAlert, RoomMessage, RoomWarning
from susurro.client.room_hold import MAX_HELD_INVITED, MAX_HELD_PER_INVITATION, MAX_HELD_ROOM_MESSAGES
from susurro.client.room_invites import (
    DropReason,
    Invitation,
    InvitationDropped,
    InvitationReceived,
    Invitations,
    NoInvitation,
)
from susurro.client.rooms import RoomBook
from susurro.crypto import EntryKind, IdentityKey, RoomPolicy, RoomState, create_entry, entry_hash
from susurro.crypto.membership import sign_entry
from susurro.protocol import Frame, RoomFetch, RoomLog, RoomUpdate
from susurro.relay import RelayConfig, RelayCore
from tests.helpers.session_pair import SessionPair
from tests.unit.test_client_rooms import Client, T, accept, everyone
from tests.unit.test_room_invites import alice_adds_bob, core
from tests.unit.test_room_session import ops, request

__all__ = ["core"]  # the fixture, shared


def created(client: Client, label: str) -> RoomState:
    """``client``'s new invite-only room, as its book verified it."""
    client.send(client.book.create(label, RoomPolicy.INVITE, T))
    client.pump()
    state = client.book.state(label)
    assert state is not None
    return state


def offered(events: Sequence[object]) -> list[InvitationReceived]:
    return [e for e in events if isinstance(e, InvitationReceived)]


def test_a_log_paged_past_our_add_is_still_an_invitation(core: RelayCore) -> None:
    # mallory adds bob while bob hears nothing, then writes 300 more entries: bob's first look at the
    # room fetches its log in pages, and the page that ends the check holds no add of him.
    mallory, bob = Client(core, "mallory"), Client(core, "bob")
    deaf = [True]
    bob.tamper = lambda frame: None if deaf[0] else frame
    state = created(mallory, "evil")
    room = state.room_id
    mallory.send(mallory.book.change(room, EntryKind.ADD, "bob", bob.ik, T))
    x = IdentityKey.generate().public
    mallory.send(mallory.book.change(room, EntryKind.ADD, "x", x, T))
    mallory.pump()
    for _ in range(150):
        for kind in (EntryKind.PROMOTE, EntryKind.DEMOTE):
            mallory.send(mallory.book.change(room, kind, "x", x, T))
            mallory.pump()
    everyone(mallory, bob)
    deaf[0] = False
    mallory.send(mallory.book.change(room, EntryKind.PROMOTE, "x", x, T))
    everyone(mallory, bob)
    assert bob.book.state(room) is None and bob.book.remember() == []
    assert [(i.room_id, i.inviter) for i in bob.book.invites.invitations.pending()] == [(room, "mallory")]


def test_a_relay_serving_the_same_page_again_gets_an_invitation_not_a_member() -> None:
    # A hostile relay's room (its own keys): pushed as [create, add bob] claiming a longer log, and
    # the fetch for the rest answered with the same two entries again.
    bob = IdentityKey.generate()
    book = RoomBook("bob", bob)
    invited = 0
    for n in range(40):
        admin = IdentityKey.generate()
        create = create_entry(admin, name=f"a{n}", label=f"spam{n}", policy=RoomPolicy.INVITE, time=T).to_bytes()
        room = entry_hash(create)
        add = sign_entry(admin, kind=EntryKind.ADD, room=room, seq=1, prev=room, time=T, subject_name="bob",
                         subject_ik=bob.public).to_bytes()  # fmt: skip
        queue: list[Frame] = [RoomUpdate(room=room, label=f"spam{n}", from_seq=0, entries=(create, add), head_seq=2,
                                         head_hash=bytes(32), online=())]  # fmt: skip
        for _ in range(10):
            if not queue:
                break
            events, out = book.receive(queue.pop(0), T)
            invited += len(offered(events))
            again = [r for r in out if isinstance(r, RoomFetch)]
            queue += [RoomLog(id=r.id, room=room, label=f"spam{n}", from_seq=0, entries=(create, add), head_seq=1,
                              head_hash=entry_hash(add), online=()) for r in again]  # fmt: skip
    assert book.rooms() == [] and book.remember() == []
    assert invited == 40 and len(book.invites.invitations) <= 40


def served_logs(bob: Client) -> list[RoomLog]:
    logs: list[RoomLog] = []

    def keep(frame: Frame) -> Frame:
        if isinstance(frame, RoomLog) and frame.from_seq == 0:
            logs.append(frame)
        return frame

    bob.tamper = keep
    return logs


@pytest.mark.parametrize("declined", [False, True])
def test_a_find_answered_with_a_room_of_another_label_is_not_consent(core: RelayCore, declined: bool) -> None:
    mallory, bob = Client(core, "mallory"), Client(core, "bob")
    logs = served_logs(bob)
    state = created(mallory, "evil")
    mallory.send(mallory.book.change(state.room_id, EntryKind.ADD, "bob", bob.ik, T))
    everyone(mallory, bob)
    if declined:
        bob.book.invites.decline(state.room_id)
    find = bob.book.find("ops")  # the user types /join ops; the relay answers with evil's log
    events, out = bob.book.receive(replace(logs[-1], id=find.id), T)
    for frame in out:
        bob.send(frame)
    bob.pump()
    assert bob.book.state(state.room_id) is None and bob.book.pinned_id("evil") is None
    assert [e.kind for e in events if isinstance(e, RoomAlert)] == [RoomWarning.LABEL_CHANGED]
    assert (state.room_id in bob.book.invites.invitations) is not declined  # still pending, or still declined
    again = bob.book.find("EVIL")  # the label asked for (folded as labels are): the user's consent
    bob.book.receive(replace(logs[-1], id=again.id), T)
    assert bob.book.state(state.room_id) is not None


@pytest.mark.parametrize("how", [EntryKind.LEAVE, EntryKind.REMOVE])
def test_an_add_after_a_leave_or_removal_is_an_invitation_again(how: EntryKind) -> None:
    pair = SessionPair(RelayConfig(rate_per_second=0))
    pair.join("alice", "bob")
    room = ops(pair, "bob")  # bob accepted alice's add
    bob_key = pair.identity("bob").public
    who = "bob" if how is EntryKind.LEAVE else "alice"
    request(pair, who, lambda b, now: b.change(room, how, "bob", bob_key, now))
    out = request(pair, "alice", lambda b, now: b.change(room, EntryKind.ADD, "bob", bob_key, now))["bob"]
    assert [(e.room_id, e.by) for e in offered(out)] == [(room, "alice")]
    assert pair["bob"].rooms.state(room) is None and pair["bob"].rooms.pinned_id("ops") is None
    assert room not in [r.room_id for r in pair["bob"].rooms.remember()]
    pair["alice"].send_message("welcome back, whether you like it or not", pair.now, room=room)
    assert not [e for e in pair.pump()["bob"] if isinstance(e, RoomMessage)]
    with pytest.raises(SendError):
        pair["bob"].send_message("typed", pair.now, room=room)
    pair["bob"].room_request(lambda b, now: b.accept(room), pair.now)  # the user's word makes it his again
    shown = pair.pump()["bob"] + pair["bob"].tick(pair.now)
    assert pair["bob"].rooms.state(room) is not None
    assert [e.text for e in shown if isinstance(e, RoomMessage)] == ["welcome back, whether you like it or not"]


@pytest.mark.parametrize("heard", [True, False])
def test_messages_of_unanswered_invitations_never_take_the_honest_rooms_hold(heard: bool) -> None:
    # heard: bob was pushed the add before the messages came; else they came first (held for the room's
    # log, which then turns out to be an invitation's).
    pair = SessionPair(RelayConfig(rate_per_second=0))
    flood = [f"m{i}" for i in range(MAX_HELD_ROOM_MESSAGES // 32)]
    pair.join("alice", "bob", "carol", *flood)
    bob_key = pair.identity("bob").public
    let_go: list[RoomAlert] = []
    for m in flood:
        request(pair, m, lambda b, now, label=f"spam-{m}": b.create(label, RoomPolicy.INVITE, now))
        state = pair[m].rooms.state(f"spam-{m}")
        assert state is not None
        if not heard:
            pair.intercept("bob", lambda frame: [] if isinstance(frame, RoomUpdate) else [frame])
        request(pair, m, lambda b, now, r=state.room_id: b.change(r, EntryKind.ADD, "bob", bob_key, now))
        pair.intercept("bob", None)
        for k in range(32):
            pair[m].send_message(f"spam {k}", pair.now, room=state.room_id)
        let_go += [e for e in pair.pump()["bob"] if isinstance(e, RoomAlert)]
    assert len(pair["bob"].rooms.invites.invitations) == len(flood)
    assert {e.kind for e in let_go} == {RoomWarning.WITHHELD} and len(let_go) == len(flood) * 32 - MAX_HELD_INVITED
    assert len(pair["bob"]._incoming.room_intake.held) == MAX_HELD_INVITED == len(flood) * MAX_HELD_PER_INVITATION
    room = ops(pair, "bob")
    # the relay withholds the push adding carol: alice's message is signed beyond bob's head, and waits
    pair.intercept("bob", lambda frame: [] if isinstance(frame, RoomUpdate) else [frame])
    carol_key = pair.identity("carol").public
    request(pair, "alice", lambda b, now: b.change(room, EntryKind.ADD, "carol", carol_key, now))
    pair.intercept("bob", None)
    pair["alice"].send_message("hello bob (honest)", pair.now, room=room)
    out = pair.pump()["bob"] + pair["bob"].tick(pair.now)
    assert [e.text for e in out if isinstance(e, RoomMessage)] == ["hello bob (honest)"]


def test_a_removal_before_the_answer_withdraws_the_invitation(core: RelayCore) -> None:
    alice, bob, room = alice_adds_bob(core)
    assert room in bob.book.invites.invitations
    seen = len(bob.events)
    alice.send(alice.book.change(room, EntryKind.REMOVE, "bob", bob.ik, T))
    everyone(alice, bob)
    (gone,) = [e for e in bob.events[seen:] if isinstance(e, InvitationDropped)]
    assert gone.room_id == room and gone.reason is DropReason.WITHDRAWN
    assert room not in bob.book.invites.invitations and bob.book.state(room) is None
    with pytest.raises(NoInvitation):
        bob.book.accept(room)


def test_an_invitation_accepted_as_the_removal_comes_is_not_followed(core: RelayCore) -> None:
    alice, bob, room = alice_adds_bob(core)
    fetch = bob.book.accept(room)  # the user accepts; alice's removal reaches the relay first
    alice.send(alice.book.change(room, EntryKind.REMOVE, "bob", bob.ik, T))
    alice.pump()
    bob.outbox.new_frames()  # the push of the removal is lost on the way
    seen = len(bob.events)
    bob.send(fetch)
    everyone(alice, bob)
    alerts = [e for e in bob.events[seen:] if isinstance(e, RoomAlert)]
    assert [e.kind for e in alerts] == [RoomWarning.NOT_A_MEMBER] and "no longer lists you" in alerts[0].detail
    assert bob.book.state(room) is None and bob.book.remember() == []


def test_an_invitation_gone_meanwhile_is_a_typed_error_in_words(core: RelayCore) -> None:
    _alice, bob, room = alice_adds_bob(core)
    accept(bob, room)  # accepted in one view while the other still shows it
    for act in (bob.book.accept, bob.book.invites.decline):
        with pytest.raises(NoInvitation) as raised:
            act(room)
        assert isinstance(raised.value, SendError) and "waiting" in str(raised.value)
        assert "KeyError" not in repr(raised.value)


def test_a_room_only_checked_shows_one_integrity_warning_and_no_key_mismatch(core: RelayCore) -> None:
    mallory, bob = Client(core, "mallory"), Client(core, "bob")
    contacts = {f"friend{i}": IdentityKey.generate().public for i in range(20)}
    bob.book._pinned = contacts.get  # bob's trust store: his friends, under their own keys
    state = created(mallory, "spam")
    for name in contacts:  # the friends' names, under keys mallory made
        mallory.send(mallory.book.change(state.room_id, EntryKind.ADD, name, IdentityKey.generate().public, T))
        mallory.pump()
    mallory.send(mallory.book.change(state.room_id, EntryKind.ADD, "bob", bob.ik, T))
    everyone(mallory, bob)
    assert [e for e in bob.events if isinstance(e, RoomAlert)] == []
    assert len(offered(bob.events)) == 1


def test_an_inviter_using_a_name_pinned_to_another_key_is_told_apart_and_goes_first(core: RelayCore) -> None:
    alice_known = IdentityKey.generate().public  # the alice bob knows, away
    impostor, bob = Client(core, "alice"), Client(core, "bob")
    bob.book._pinned = {"alice": alice_known}.get
    state = created(impostor, "payroll")
    impostor.send(impostor.book.change(state.room_id, EntryKind.ADD, "bob", bob.ik, T))
    everyone(impostor, bob)
    (invitation,) = offered(bob.events)
    assert invitation.other_key and not invitation.known
    line = event_to_text(invitation) or ""
    assert "NOT the alice you know" in line and "someone you have not met" not in line
    assert event_to_json(invitation)["inviter_key_mismatch"] is True
    pending = Invitations(limit=2)
    pending.offer(Invitation(b"a" * 32, "first", "carol", b"c" * 32, False))
    pending.offer(replace(bob.book.invites.invitations.pending()[0]))
    (dropped,) = [e for e in pending.offer(Invitation(b"b" * 32, "third", "dave", b"d" * 32, False))
                  if isinstance(e, InvitationDropped)]  # fmt: skip
    assert dropped.room == "payroll"  # before the older stranger's
