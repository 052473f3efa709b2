"""Rooms against hostile members (and a relay that lets them): spec review S4, findings 1-3.

Real clients, the real relay and the tampering proxy of ``tests/helpers``. A
hostile member is a real client whose room book is told to sign something
else than the truth (a head that does not exist, an old head, extra
recipients, a membership it lost); everything it sends is sealed and signed
by its own key, as a modified client would. Each test was run once with its
defence switched off (the last column of the S4 table in
``docs/threat-model.md``).
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable

import pytest

from susurro.client import events as ev
from susurro.client import room_heads
from susurro.client import rooms as rooms_module
from susurro.client.errors import SendError
from susurro.client.events import WarningKind
from susurro.client.room_events import Invited, MemberAdded, MemberRemoved, RoomAlert, RoomCreated, RoomWarning
from susurro.client.room_sending import Addressing
from susurro.crypto import EntryKind, IdentityKey, RoomMember, RoomPolicy, RoomState, verify_log
from susurro.crypto.seal import SignedHead
from susurro.protocol import RoomLog, RoomUpdate, Send
from tests.adversarial.test_hostile_relay_rooms import alert, event, last_send
from tests.helpers.hostile_relay import TO_RELAY, Client, HostileRoom

T = 1_764_000_000


def room_of(hostile: HostileRoom, policy: RoomPolicy, *names: str) -> tuple[list[Client], bytes]:
    """alice's room "ops" with each of ``names`` added by her; every member's log is at the last add."""
    clients = [hostile.join("alice"), *(hostile.join(name) for name in names)]
    alice = clients[0]
    alice.connection.room_request(lambda book, now: book.create("ops", policy, now))
    event(alice, RoomCreated, room="ops")
    state = alice.session.rooms.state("ops")
    assert state is not None
    for other in clients[1:]:
        key = other.identity.public
        alice.connection.room_request(
            lambda book, now, name=other.name, key=key: book.change(state.room_id, EntryKind.ADD, name, key, now)
        )
        event(alice, MemberAdded, name=other.name)
        other.accept_invitation("ops")
        event(other, Invited, room="ops")
    for other in clients[1:-1]:  # the last one added was invited: its first log is the whole log
        event(other, MemberAdded, name=names[-1])
    return clients, state.room_id


def lie_about(client: Client, change: Callable[[Addressing], Addressing]) -> None:
    """The client's next room messages are addressed as ``change`` says (a modified client, its own key)."""
    book = client.session.rooms
    honest = book.addressing

    def addressing(*args: object, **kwargs: object) -> Addressing:
        return change(honest(*args, **kwargs))  # type: ignore[arg-type]

    book.addressing = addressing  # type: ignore[method-assign]


def at_head(seq: int, digest: bytes) -> Callable[[Addressing], Addressing]:
    return lambda a: dataclasses.replace(a, head=SignedHead(a.head.room_id, seq, digest))


def pretend_member(client: Client, state: RoomState) -> None:
    """The client's sends take it for a member of ``state``'s room (a modified client ignoring its removal)."""
    me = client.identity.public
    faked = dataclasses.replace(state, members={**state.members, me: RoomMember(client.name, me, admin=False)})
    client.session.rooms.state = lambda _room: faked  # type: ignore[method-assign]


def state_at(hostile: HostileRoom, label: str, room: bytes, seq: int) -> RoomState:
    """The room's log up to entry ``seq`` as the relay served it to ``label``, verified."""
    entries: dict[int, bytes] = {}
    for frame in hostile.proxy.seen(label):
        if isinstance(frame, (RoomLog, RoomUpdate)) and frame.room == room:
            for offset, data in enumerate(frame.entries):
                entries.setdefault(frame.from_seq + offset, data)
    return verify_log([entries[number] for number in range(seq + 1)], rooms_module.RULES)


def from_mallory(client: Client, kind: WarningKind) -> RoomAlert:
    """The room warning of ``kind`` about mallory's message (the relay's presence list may warn of her too)."""
    found = client.seen_or_wait(
        lambda e: isinstance(e, RoomAlert) and e.kind == kind and e.sender == "mallory", what=f"{kind} from mallory"
    )
    assert isinstance(found, RoomAlert)
    return found


def remove(alice: Client, room: bytes, member: Client, *watchers: Client) -> None:
    alice.connection.room_request(
        lambda book, now: book.change(room, EntryKind.REMOVE, member.name, member.identity.public, now)
    )
    for client in (alice, *watchers):
        event(client, MemberRemoved, name=member.name)


# --- finding 1: a head that does not exist --------------------------------------------------


def test_a_member_signing_a_head_that_does_not_exist_holds_sends_until_removed(hostile: HostileRoom) -> None:
    (alice, bob, mallory), room = room_of(hostile, RoomPolicy.INVITE, "bob", "mallory")
    lie_about(mallory, at_head(10**6, secrets.token_bytes(32)))
    mallory.connection.send_to_room("the room is mine", "ops")
    withheld = alert(bob, RoomWarning.WITHHELD)
    assert withheld.sender == "mallory" and "entry 1000000" in withheld.detail
    with pytest.raises(SendError, match="removal withheld"):
        bob.connection.send_to_room("held back", "ops")
    # The claim counts only while its signer is a member: alice removes mallory, bob's gate opens at once.
    remove(alice, room, mallory, bob)
    bob.connection.send_to_room("after mallory", "ops")
    alice.wait_message("after mallory")
    assert set(last_send(hostile, "bob").to) == {"alice"}


def test_a_claimed_head_the_relay_never_serves_stops_holding_sends_after_the_wait(
    hostile: HostileRoom, monkeypatch: pytest.MonkeyPatch
) -> None:
    (alice, bob, mallory), _ = room_of(hostile, RoomPolicy.INVITE, "bob", "mallory")
    monkeypatch.setattr(room_heads, "HEAD_CLAIM_WAIT", 0.0)  # the wait is over as soon as it starts
    lie_about(mallory, at_head(10**6, secrets.token_bytes(32)))
    mallory.connection.send_to_room("the room is mine", "ops")
    assert alert(bob, RoomWarning.WITHHELD).sender == "mallory"  # the warning stays
    bob.connection.send_to_room("sent at the verified head", "ops")
    alice.wait_message("sent at the verified head")


def removed_but_pretending(hostile: HostileRoom) -> tuple[Client, Client, Client, bytes]:
    """ops with bob and mallory; alice removes mallory, whose client goes on as if still a member."""
    (alice, bob, mallory), room = room_of(hostile, RoomPolicy.INVITE, "bob", "mallory")
    remove(alice, room, mallory, bob, mallory)
    removed = mallory.session.rooms.state(room)
    assert removed is not None
    pretend_member(mallory, removed)
    return alice, bob, mallory, room


def test_a_non_member_signing_a_head_that_does_not_exist_never_holds_sends(hostile: HostileRoom) -> None:
    alice, bob, mallory, _ = removed_but_pretending(hostile)
    lie_about(mallory, at_head(10**6, secrets.token_bytes(32)))
    mallory.connection.send_to_room("still here", "ops")
    from_mallory(bob, RoomWarning.NOT_A_MEMBER)
    bob.connection.send_to_room("not held", "ops")
    alice.wait_message("not held")
    assert "still here" not in bob.texts()


# --- finding 2: at which head the sender, and the recipient, must be members -------------------


def test_a_removed_member_quoting_the_head_before_its_removal_is_not_shown(hostile: HostileRoom) -> None:
    (alice, bob, mallory), room = room_of(hostile, RoomPolicy.INVITE, "bob", "mallory")
    before = bob.session.rooms.state(room)
    assert before is not None
    remove(alice, room, mallory, bob, mallory)
    removed = mallory.session.rooms.state(room)
    assert removed is not None
    pretend_member(mallory, removed)
    lie_about(mallory, at_head(before.head.seq, before.head.hash))  # a real entry: no fork to see
    mallory.connection.send_to_room("as if still in", "ops")
    refused = from_mallory(bob, RoomWarning.NOT_A_MEMBER)
    assert f"entry {before.head.seq}" in refused.detail
    bob.barrier()
    assert "as if still in" not in bob.texts()


def test_a_room_message_to_someone_not_in_the_room_is_not_shown(hostile: HostileRoom) -> None:
    """carol is on the relay, not in alice's open room; alice seals a room message to her too."""
    (alice, bob), _ = room_of(hostile, RoomPolicy.OPEN, "bob")
    carol = hostile.join("carol")
    extra = ("carol", carol.identity.public)
    lie_about(alice, lambda a: dataclasses.replace(a, recipients=(*a.recipients, extra)))
    alice.connection.send_to_room("members only", "ops")
    bob.wait_message("members only")
    found = carol.seen_or_wait(
        lambda e: getattr(e, "kind", None) == WarningKind.NOT_ADDRESSED_TO_ME, what="not_addressed_to_me"
    )
    assert "not a member" in getattr(found, "detail", "")
    carol.barrier()
    assert "members only" not in carol.texts()


def test_a_message_sealed_before_a_removal_is_shown_naming_who_may_have_got_it(hostile: HostileRoom) -> None:
    (alice, bob, mallory), room = room_of(hostile, RoomPolicy.INVITE, "bob", "mallory")
    before = bob.session.rooms.state(room)
    assert before is not None
    remove(alice, room, mallory, bob)
    lie_about(bob, at_head(before.head.seq, before.head.hash))  # bob sealed before he saw the removal
    bob.connection.send_to_room("crossed the removal", "ops")
    alice.wait_message("crossed the removal")
    stale = alert(alice, RoomWarning.STALE_SENDER_HEAD)
    assert stale.sender == "bob" and "mallory" in stale.detail


# --- finding 3: on a fork, stop sealing to the room --------------------------------------------


def test_after_a_fork_nothing_more_is_sealed_to_the_room(hostile: HostileRoom) -> None:
    """The relay serves bob a second, validly signed entry 2 (another branch): bob stops sending."""
    (alice, bob, carol), room = room_of(hostile, RoomPolicy.INVITE, "bob", "carol")
    # alice's signature on another entry 2: a branch the relay kept (say it accepted two appends at once).
    branch = (
        state_at(hostile, "bob", room, 1)
        .next_entry(
            alice.identity, kind=EntryKind.ADD, subject_name="dave", subject_ik=IdentityKey.generate().public, time=T
        )
        .to_bytes()
    )
    hostile.proxy.inject(
        "bob",
        RoomUpdate(room=room, label="ops", from_seq=2, entries=(branch,), head_seq=2, head_hash=bytes(32), online=()),
    )
    assert "two versions" in alert(bob, RoomWarning.FORK).detail
    with pytest.raises(SendError, match="forked"):
        bob.connection.send_to_room("after the fork", "ops")
    carol.barrier()
    assert "after the fork" not in carol.texts()
    assert not [f for f in hostile.proxy.seen("bob", TO_RELAY) if isinstance(f, Send)]


def test_after_a_fork_the_user_may_go_on_sending_at_the_history_verified_here(hostile: HostileRoom) -> None:
    """/resume-room: bob accepts the branch he verified; the same evidence again only warns, a new one stops him."""
    (alice, bob, carol), room = room_of(hostile, RoomPolicy.INVITE, "bob", "carol")
    one = state_at(hostile, "bob", room, 1)

    def branch(name: str) -> RoomUpdate:
        entry = one.next_entry(
            alice.identity, kind=EntryKind.ADD, subject_name=name, subject_ik=IdentityKey.generate().public, time=T
        ).to_bytes()
        return RoomUpdate(room=room, label="ops", from_seq=2, entries=(entry,), head_seq=2, head_hash=bytes(32),
                          online=())  # fmt: skip

    dave = branch("dave")
    hostile.proxy.inject("bob", dave)
    alert(bob, RoomWarning.FORK)
    assert bob.connection.with_rooms(lambda b: b.resume(room)).startswith("the relay served another entry 2 (")
    assert bob.connection.with_rooms(lambda b: b.resume(room)) == ""  # not forked now: nothing to resume
    bob.connection.send_to_room("after I chose", "ops")
    carol.wait_message("after I chose")
    hostile.proxy.inject("bob", dave)  # the very branch the user accepted: a warning, sends go on
    bob.wait_for(lambda e: isinstance(e, RoomAlert) and "you chose to go on" in e.detail, what="a fork noted")
    bob.connection.send_to_room("still going", "ops")
    carol.wait_message("still going")
    hostile.proxy.inject("bob", branch("erin"))  # another branch: new evidence stops sends again
    bob.wait_for(lambda e: isinstance(e, RoomAlert) and "nothing more is sent" in e.detail, what="a new fork")
    with pytest.raises(SendError, match="forked"):
        bob.connection.send_to_room("not after this one", "ops")


def test_a_member_signing_at_a_head_from_before_it_was_added_is_not_shown(hostile: HostileRoom) -> None:
    """mallory, added at entry 2, signs at entry 1, whose members never included her."""
    (alice, bob, mallory), room = room_of(hostile, RoomPolicy.INVITE, "bob", "mallory")
    one = state_at(hostile, "mallory", room, 1)
    lie_about(mallory, at_head(one.head.seq, one.head.hash))
    mallory.connection.send_to_room("from before my time", "ops")
    refused = from_mallory(bob, RoomWarning.NOT_A_MEMBER)
    assert "at entry 1" in refused.detail
    alice.barrier()
    assert "from before my time" not in bob.texts() and "from before my time" not in alice.texts()


# --- finding 11: after a reconnect, catch up before sealing ---------------------------------------


def test_after_a_reconnect_a_room_message_waits_for_the_log_and_skips_who_was_removed_meanwhile(
    hostile: HostileRoom,
) -> None:
    (alice, carol, mallory), room = room_of(hostile, RoomPolicy.INVITE, "carol", "mallory")
    session = carol.session
    hostile.leave("carol")
    remove(alice, room, mallory, mallory)  # carol is away: nobody tells her
    back = hostile.connect("carol2", session=session.renewed())
    back.wait_event(ev.Roster)
    back.connection.send_to_room("back again", "ops")  # typed at once: her log still lists mallory
    alice.wait_message("back again")
    sends = [f for f in hostile.proxy.seen("carol2", TO_RELAY) if isinstance(f, Send)]
    assert sends and all("mallory" not in send.to for send in sends)
    mallory.barrier()
    assert "back again" not in mallory.texts()


# --- finding 12: presence by identity key, not by name -------------------------------------------


def test_a_member_added_under_another_name_is_online_without_a_warning(hostile: HostileRoom) -> None:
    """alice adds bob to her room as "roberto"; the relay lists him online as "bob", the name he joined with."""
    alice, bob = hostile.join("alice"), hostile.join("bob")
    alice.connection.room_request(lambda book, now: book.create("ops", RoomPolicy.INVITE, now))
    event(alice, RoomCreated, room="ops")
    state = alice.session.rooms.state("ops")
    assert state is not None
    bob_ik = bob.identity.public
    alice.connection.room_request(lambda book, now: book.change(state.room_id, EntryKind.ADD, "roberto", bob_ik, now))
    event(alice, MemberAdded, name="roberto")
    bob.accept_invitation("ops")
    event(bob, Invited, room="ops")
    alice.connection.room_request(lambda book, now: book.fetch(state.room_id, 0))
    alice.barrier()
    fetched = [f for f in hostile.proxy.seen("alice") if isinstance(f, RoomLog) and f.room == state.room_id]
    assert fetched and "bob" in fetched[-1].online
    assert not [e for e in alice.log if isinstance(e, RoomAlert) and e.kind == RoomWarning.NOT_A_MEMBER]
