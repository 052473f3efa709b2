"""The client's ``RoomBook`` against a real ``RelayCore``, with a relay that lies in between.

Each client's book talks to the real relay core (real SQLite, real
verification) through in-memory outboxes; a test may rewrite, drop or
invent any frame on its way to one client, as a hostile relay could. Each
attack must be detected, and each test was run once with its defence off.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from susurro.client import events as ev
from susurro.client.room_events import (
    Invited,
    MemberAdded,
    MemberRemoved,
    RoomAlert,
    RoomCreated,
    RoomReady,
    RoomWarning,
)
from susurro.client.rooms import RoomBook
from susurro.crypto import (
    BoxCache,
    EntryKind,
    IdentityKey,
    Recipient,
    RoomPolicy,
    SessionCertificate,
    SessionKey,
    join_proof,
    open_message,
    seal_message,
)
from susurro.crypto.seal import SignedHead
from susurro.protocol import Frame, Hello, RoomLog, RoomUpdate, encode
from susurro.relay import RelayConfig, RelayCore
from tests.helpers.memory import MemoryOutbox

T = 1_764_000_000
Tamper = Callable[[Frame], Frame | None]


class Client:
    """A room book joined to the relay core; frames flow both ways until quiet."""

    def __init__(self, core: RelayCore, name: str) -> None:
        self.core, self.name = core, name
        self.identity = IdentityKey.generate()
        self.book = RoomBook(name, self.identity)
        self.outbox = MemoryOutbox()
        conn = core.connect(self.outbox, "test:1")
        assert conn is not None
        self.conn = conn
        session = SessionKey.generate()
        cert = SessionCertificate.issue(self.identity, name, session.public, T)
        hello = Hello(
            name=name,
            ik=self.identity.public,
            sk=session.public,
            cert=cert.signature,
            issued_at=T,
            proof=join_proof(self.identity, conn.nonce, name, session.public),
        )
        assert core.receive(conn, encode(hello))
        self.outbox.new_frames()
        self.events: list[ev.Event] = []
        #: The hostile relay's hook for frames to this client: return a frame, or None to drop it.
        self.tamper: Tamper = lambda frame: frame

    @property
    def ik(self) -> bytes:
        return self.identity.public

    def send(self, frame: Frame) -> None:
        assert self.core.receive(self.conn, encode(frame, max_frame=16 * 1024 * 1024))

    def pump(self) -> list[ev.Event]:
        """Hand every frame the relay queued for us to the book, answering what it asks; new events."""
        fresh: list[ev.Event] = []
        for _ in range(100):
            frames = [
                f for f in self.outbox.new_frames() if isinstance(f, (RoomLog, RoomUpdate)) or f.TYPE == "room_error"
            ]
            if not frames:
                break
            for frame in frames:
                shown = self.tamper(frame)
                if shown is None:
                    continue
                events, out = self.book.receive(shown, T)
                fresh.extend(events)
                for request in out:
                    self.send(request)
        self.events.extend(fresh)
        return fresh

    def alerts(self, kind: RoomWarning) -> list[RoomAlert]:
        return [e for e in self.events if isinstance(e, RoomAlert) and e.kind == kind.value]


def everyone(*clients: Client) -> None:
    for _ in range(5):
        for client in clients:
            client.pump()


@pytest.fixture
def core() -> RelayCore:
    return RelayCore(RelayConfig(rate_per_second=0))


def room_with(core: RelayCore, policy: RoomPolicy = RoomPolicy.INVITE) -> tuple[Client, Client, Client, bytes]:
    """alice's room with bob in it; carol is on the relay, not in the room."""
    alice, bob, carol = Client(core, "alice"), Client(core, "bob"), Client(core, "carol")
    alice.send(alice.book.create("ops", policy, T))
    alice.pump()
    state = alice.book.state("ops")
    assert state is not None
    alice.send(alice.book.change(state.room_id, EntryKind.ADD, "bob", bob.ik, T))
    everyone(alice, bob, carol)
    accept(bob, state.room_id)
    everyone(alice, bob, carol)
    return alice, bob, carol, state.room_id


def accept(client: Client, room_id: bytes) -> None:
    """The user accepts the invitation to ``room_id`` (it must be pending)."""
    assert room_id in client.book.invites.invitations
    client.send(client.book.accept(room_id))


def test_create_invite_and_every_side_verifies_the_same_log(core: RelayCore) -> None:
    alice, bob, carol, room = room_with(core)
    assert any(isinstance(e, RoomCreated) and e.room == "ops" for e in alice.events)
    assert any(isinstance(e, MemberAdded) and e.name == "bob" and e.by == "alice" for e in alice.events)
    assert any(isinstance(e, Invited) and e.by == "alice" and e.room_id == room for e in bob.events)
    assert any(isinstance(e, RoomReady) and e.members == ("alice", "bob") for e in bob.events)
    assert alice.book.state(room) == bob.book.state(room)
    assert carol.book.state(room) is None and carol.events == []


def test_addressing_picks_only_members_of_the_verified_log_and_warns_of_relay_ghosts(core: RelayCore) -> None:
    alice, bob, carol, room = room_with(core)
    present = {bob.ik: "bob", carol.ik: "carol"}  # carol is on the relay's roster, in no room of ours
    addressing = alice.book.addressing(room, present)
    assert addressing.recipients == (("bob", bob.ik),)
    assert addressing.skipped == () and addressing.offline == ()
    # The relay claims carol is present in the room.
    alice.tamper = lambda f: replace(f, online=(*f.online, "carol")) if isinstance(f, RoomLog) else f  # type: ignore[arg-type]
    alice.send(alice.book.fetch(room, 0))
    alice.pump()
    (alert,) = alice.alerts(RoomWarning.NOT_A_MEMBER)
    assert "carol" in alert.detail and "nothing is encrypted to them" in alert.detail
    assert alice.book.addressing(room, present).recipients == (("bob", bob.ik),)


def test_a_forged_entry_is_refused_and_the_verified_state_stays(core: RelayCore) -> None:
    alice, bob, carol, room = room_with(core)
    state = bob.book.state(room)
    assert state is not None
    # The relay makes up "alice added carol", signed by a key of its own.
    forger = IdentityKey.generate()
    forged = state.next_entry(forger, kind=EntryKind.ADD, subject_name="carol", subject_ik=carol.ik, time=T)
    fake = RoomUpdate(
        room=room,
        label="ops",
        from_seq=2,
        entries=(forged.to_bytes(),),
        head_seq=2,
        head_hash=bytes(32),
        online=("alice", "bob", "carol"),
    )
    events, _ = bob.book.receive(fake, T)
    bob.events.extend(events)
    assert bob.alerts(RoomWarning.BAD_LOG) and "entry_not_permitted" in bob.alerts(RoomWarning.BAD_LOG)[0].detail
    assert bob.book.state(room) == state
    assert carol.ik not in state.members
    assert bob.book.addressing(room, {alice.ik: "alice", carol.ik: "carol"}).recipients == (("alice", alice.ik),)


def test_a_remove_signed_by_a_non_admin_is_refused(core: RelayCore) -> None:
    alice, bob, carol, room = room_with(core)
    state = alice.book.state(room)
    assert state is not None
    alice.send(alice.book.change(room, EntryKind.ADD, "carol", carol.ik, T))
    everyone(alice, bob, carol)
    state = alice.book.state(room)
    assert state is not None and carol.ik in state.members
    # bob (no admin) signs carol's removal; a relay that does not check passes it to alice.
    remove = state.next_entry(bob.identity, kind=EntryKind.REMOVE, subject_name="carol", subject_ik=carol.ik, time=T)
    push = RoomUpdate(
        room=room, label="ops", from_seq=3, entries=(remove.to_bytes(),), head_seq=3, head_hash=bytes(32), online=()
    )
    events, _ = alice.book.receive(push, T)
    alice.events.extend(events)
    (alert,) = alice.alerts(RoomWarning.BAD_LOG)
    assert "entry_not_permitted" in alert.detail
    assert carol.ik in alice.book.state(room).members  # type: ignore[union-attr]
    assert not any(isinstance(e, MemberRemoved) for e in events)


def test_a_replayed_old_head_is_withholding(core: RelayCore) -> None:
    _, bob, _, room = room_with(core)
    old = RoomLog(
        id="g999", room=room, label="ops", from_seq=1, entries=(), head_seq=0, head_hash=room, online=("alice",)
    )
    events, _ = bob.book.receive(old, T)
    bob.events.extend(events)
    (alert,) = bob.alerts(RoomWarning.WITHHELD)
    assert "ends at entry 0" in alert.detail and "entry 1 was verified" in alert.detail


def test_a_forked_history_is_detected_from_the_relay_and_from_a_message(core: RelayCore) -> None:
    alice, bob, carol, room = room_with(core)
    state = bob.book.state(room)
    assert state is not None
    # alice (an admin colluding with the relay, or her stolen key) signs two different entry 2s.
    one = state.next_entry(alice.identity, kind=EntryKind.ADD, subject_name="carol", subject_ik=carol.ik, time=T)
    two = state.next_entry(alice.identity, kind=EntryKind.PROMOTE, subject_name="bob", subject_ik=bob.ik, time=T)
    bob_state = state.extend([one.to_bytes()])
    events, _ = bob.book.receive(
        RoomUpdate(room=room, label="ops", from_seq=2, entries=(one.to_bytes(),), head_seq=2,
                   head_hash=bob_state.head.hash, online=()),
        T,
    )  # fmt: skip
    assert bob.book.state(room) == bob_state
    # Later the relay shows bob the other version of entry 2.
    events, _ = bob.book.receive(
        RoomLog(id="g1", room=room, label="ops", from_seq=2, entries=(two.to_bytes(),), head_seq=2,
                head_hash=state.extend([two.to_bytes()]).head.hash, online=()),
        T,
    )  # fmt: skip
    assert next(e.kind for e in events if isinstance(e, RoomAlert)) == RoomWarning.FORK.value
    # A member's message signed at the other version's head claims a fork (the entries above proved it);
    # a stranger's proves nothing.
    other = state.extend([two.to_bytes()])
    head = SignedHead(room, other.head.seq, other.head.hash)
    events, _ = bob.book.check_message_head(head, "alice", alice.ik)
    assert [e.kind for e in events] == [RoomWarning.FORK_CLAIMED.value] and events[0].sender == "alice"  # type: ignore[attr-defined]
    assert bob.book.check_message_head(head, "mallory", IdentityKey.generate().public) == ([], [])


def test_a_withheld_removal_shows_when_a_message_is_signed_past_it(core: RelayCore) -> None:
    alice, bob, carol, room = room_with(core)
    alice.send(alice.book.change(room, EntryKind.ADD, "carol", carol.ik, T))
    everyone(alice, bob, carol)
    # The relay stops passing bob any room frame: he never hears that carol is removed.
    bob.tamper = lambda frame: None
    alice.send(alice.book.change(room, EntryKind.REMOVE, "carol", carol.ik, T))
    everyone(alice, bob, carol)
    alice_state = alice.book.state(room)
    assert alice_state is not None and carol.ik not in alice_state.members
    # Removal takes effect at alice's next message: nothing is encrypted to carol.
    addressing = alice.book.addressing(room, {bob.ik: "bob", carol.ik: "carol"})
    assert addressing.recipients == (("bob", bob.ik),) and addressing.head.seq == 3
    # bob gets alice's message, signed at entry 3; he fetches; the relay serves up to entry 2 only.
    bob.tamper = lambda f: (
        replace(f, entries=f.entries[:0], head_seq=2, head_hash=bob.book.state(room).head.hash)
        if isinstance(f, RoomLog)
        else f
    )  # type: ignore[arg-type,union-attr]
    events, out = bob.book.check_message_head(addressing.head, "alice")
    assert out and events == []
    for request in out:
        bob.send(request)
    bob.pump()
    (alert,) = bob.alerts(RoomWarning.WITHHELD)
    assert "alice signed a message at entry 3" in alert.detail and "withholding" in alert.detail
    # With an honest relay the fetch brings the removal, and no warning.
    bob.tamper = lambda frame: frame
    bob.events.clear()
    _, out = bob.book.check_message_head(addressing.head, "alice")
    for request in out:
        bob.send(request)
    bob.pump()
    assert not bob.alerts(RoomWarning.WITHHELD)
    assert any(isinstance(e, MemberRemoved) and e.name == "carol" for e in bob.events)


def test_a_changed_label_is_detected(core: RelayCore) -> None:
    _, bob, _, room = room_with(core)
    bob.tamper = lambda f: replace(f, label="finance") if isinstance(f, RoomLog) else f  # type: ignore[arg-type]
    bob.send(bob.book.fetch(room, 0))
    bob.pump()
    (alert,) = bob.alerts(RoomWarning.LABEL_CHANGED)
    assert "'finance'" in alert.detail and "signed label is 'ops'" in alert.detail
    assert bob.book.state(room).label == "ops"  # type: ignore[union-attr]


def test_two_admins_racing_for_the_head_both_land(core: RelayCore) -> None:
    alice, bob, carol, room = room_with(core)
    alice.send(alice.book.change(room, EntryKind.PROMOTE, "bob", bob.ik, T))
    everyone(alice, bob, carol)
    dave = IdentityKey.generate()
    # Both sign on the same head; bob's lands first, alice's is re-signed after a conflict.
    bob_change = bob.book.change(room, EntryKind.ADD, "carol", carol.ik, T)
    alice_change = alice.book.change(room, EntryKind.ADD, "dave", dave.public, T)
    bob.send(bob_change)
    alice.send(alice_change)
    everyone(alice, bob, carol)
    final = alice.book.state(room)
    assert final is not None and {m.name for m in final.members.values()} == {"alice", "bob", "carol", "dave"}
    assert bob.book.state(room) == final


# --- room messages cost O(N) ---------------------------------------------------------------


def seal_for(size: int, head: SignedHead | None) -> tuple[dict[str, bytes], Any]:
    sender, sender_session = IdentityKey.generate(), SessionKey.generate()
    people = [(IdentityKey.generate(), SessionKey.generate()) for _ in range(size)]
    sealed = seal_message(
        identity=sender,
        boxes=BoxCache(sender_session),
        sender="alice",
        recipients=[
            Recipient(name=f"m{i}", identity_key=ik.public, session_key=sk.public, counter=1)
            for i, (ik, sk) in enumerate(people)
        ],
        body="hola a todos",
        msg_id="0123456789abcdef",
        sent_at=T * 1000,
        room="ops" if head is not None else "main",  # without a head: the relay-wide room's form
        head=head,
    )
    return sealed, (sender, sender_session, people)


#: Bytes of each copy of a short room message: one Padmé bucket above the
#: smallest, because the signed head (room id and hash) is 70 bytes.
ROOM_COPY_BYTES = 312


@pytest.mark.parametrize("size", [10, 100, 256])
def test_each_copy_of_a_room_message_has_the_same_size_whatever_the_room(size: int) -> None:
    head = SignedHead(bytes(32), 7, bytes(range(32)))
    sealed, (sender, sender_session, people) = seal_for(size, head)
    assert {len(ct) for ct in sealed.values()} == {ROOM_COPY_BYTES}
    # The signed list of every recipient that room messages no longer carry grew with N.
    listed, _ = seal_for(size, None)
    assert min(len(ct) for ct in listed.values()) > ROOM_COPY_BYTES + 30 * size
    ik, sk = people[-1]
    opened = open_message(
        boxes=BoxCache(sk),
        ciphertext=sealed[f"m{size - 1}"],
        relay_sender="alice",
        sender_identity_key=sender.public,
        sender_session_key=sender_session.public,
        own_name=f"m{size - 1}",
        own_identity_key=ik.public,
    )
    assert opened.inner.head == head and opened.inner.to == () and opened.inner.body == "hola a todos"


def test_a_member_the_sender_skipped_is_not_addressed() -> None:
    from susurro.crypto import NotAddressedToMe

    sender, sender_session = IdentityKey.generate(), SessionKey.generate()
    bob, bob_session = IdentityKey.generate(), SessionKey.generate()
    sealed = seal_message(
        identity=sender,
        boxes=BoxCache(sender_session),
        sender="alice",
        recipients=[Recipient(name="bob", identity_key=bob.public, session_key=bob_session.public, counter=1)],
        body="x",
        msg_id="m1",
        sent_at=0,
        room="ops",
        head=SignedHead(bytes(32), 1, bytes(32)),
        skipped=[("bob", bob.public)],
    )
    with pytest.raises(NotAddressedToMe):
        open_message(
            boxes=BoxCache(bob_session),
            ciphertext=sealed["bob"],
            relay_sender="alice",
            sender_identity_key=sender.public,
            sender_session_key=sender_session.public,
            own_name="bob",
            own_identity_key=bob.public,
        )
