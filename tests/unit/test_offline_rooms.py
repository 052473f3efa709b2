"""Room messages wait for members who are away: real sessions, a real relay core on a
real SQLite data dir, the clock passed in. The waiting copy carries the same signed
message as the live ones (room id and log head inside), sealed to the absent
member's prekeys; the sender sees "waiting" per member; the recipient judges it
against the room's verified log, fetched if it has none yet.
"""

from __future__ import annotations

from pathlib import Path

from susurro.client import events as ev
from susurro.client.room_events import RoomAlert, RoomMessage, RoomWarning
from susurro.crypto import EntryKind, IdentityKey, RoomPolicy
from susurro.crypto.prekeys import OneTimePrekey, PrekeyBundle, SignedPrekey, check_bundle, seal_to_prekey
from susurro.crypto.seal import SignedHead, message_block, sign_message
from susurro.protocol import Mail
from susurro.relay.store.mailbox import StoredBundle
from tests.helpers.offline import HOUR, User, bob_away
from tests.helpers.session_pair import SessionPair


def invite_only_room(room: SessionPair, admin: str, *members: tuple[str, bytes]) -> bytes:
    """``admin``'s invite-only room "ops" with ``members`` (name, identity key) added; its id."""
    room[admin].room_request(lambda book, now: book.create("ops", RoomPolicy.INVITE, now), room.now)
    room.pump()
    state = room[admin].rooms.state("ops")
    assert state is not None
    for name, key in members:
        room[admin].room_request(
            lambda book, now, n=name, k=key: book.change(state.room_id, EntryKind.ADD, n, k, now), room.now
        )
        room.pump()
        if name in room.nodes and state.room_id in room[name].rooms.invites.invitations:
            # here: the member accepts the invitation (one away finds it when back)
            room.accept(name, state.room_id)
    return state.room_id


def test_a_room_message_waits_for_a_member_who_is_away_and_is_judged_by_the_log(tmp_path: Path) -> None:
    room, _, bob, clock = bob_away(tmp_path)
    carol = User("carol", tmp_path)
    room.add("carol", **carol.session_options(clock))
    room.pump()
    room_id = invite_only_room(room, "alice", ("bob", bob.identity.public), ("carol", carol.identity.public))
    msg_id = room["alice"].send_message("standup moved to ten", room.now, room=room_id)
    events = room.pump()
    reports = [e for e in events["alice"] if isinstance(e, ev.Delivery) and e.msg_id == msg_id]
    assert [(r.delivered, r.waiting) for r in reports] == [(("carol",), ()), ((), ("bob",))], reports
    assert not [e for e in events["alice"] if isinstance(e, ev.Warning)], events["alice"]
    assert [e.text for e in events["carol"] if isinstance(e, RoomMessage)] == ["standup moved to ten"]

    clock[0] += 5 * HOUR  # bob comes back hours later with a fresh room book: the log is fetched first
    room.add("bob2", name="bob", **bob.session_options(clock))
    produced = room.pump()
    assert not [e for e in produced["bob2"] if isinstance(e, ev.Message)]  # it waits for his answer
    produced = room.accept("bob2", room_id)
    shown = [e for e in produced["bob2"] if isinstance(e, ev.Message)]
    assert [(type(m), m.text, m.waited, getattr(m, "room_id", None)) for m in shown] == [
        (RoomMessage, "standup moved to ten", True, room_id)
    ]
    assert not [e for e in produced["bob2"] if isinstance(e, ev.Warning)], produced["bob2"]
    assert [e.waited for e in produced["alice"] if isinstance(e, ev.Receipt)] == [(msg_id,)]


def test_a_room_message_to_members_who_are_all_away_still_waits(tmp_path: Path) -> None:
    room, _, bob, clock = bob_away(tmp_path)
    room_id = invite_only_room(room, "alice", ("bob", bob.identity.public))
    msg_id = room["alice"].send_message("anyone?", room.now, room=room_id)
    reports = [e for e in room.pump()["alice"] if isinstance(e, ev.Delivery) and e.msg_id == msg_id]
    assert [r.waiting for r in reports] == [("bob",)]
    room.add("bob2", name="bob", **bob.session_options(clock))
    assert not [e for e in room.pump()["bob2"] if isinstance(e, RoomMessage)]  # an invitation: it waits
    assert [e.text for e in room.accept("bob2", room_id)["bob2"] if isinstance(e, RoomMessage)] == ["anyone?"]


def test_a_waiting_room_message_from_someone_not_in_the_log_is_not_shown(tmp_path: Path) -> None:
    # mallory is no member of "ops", but knows its id and head; she seals a room message to
    # bob's prekeys. From the mailbox it meets the same check as live: not a member, not shown.
    room, _, bob, clock = bob_away(tmp_path)
    room_id = invite_only_room(room, "alice", ("bob", bob.identity.public))
    state = room["alice"].rooms.state(room_id)
    assert state is not None
    mallory = IdentityKey.generate()
    signed = sign_message(
        identity=mallory, sender="mallory", recipients=[("bob", bob.identity.public)], body="wire me money",
        msg_id="m-forged", sent_at=int(clock[0] * 1000), room="ops",
        head=SignedHead(room_id, state.head.seq, state.head.hash),
    )  # fmt: skip
    room.add("bob2", name="bob", **bob.session_options(clock))
    room.pump()  # bob is back: his prekeys are on the relay again
    bundle = room.relay.mailbox.prekeys.take_bundle(bob.identity.public, now=room.now)
    assert bundle is not None
    checked = check_bundle(bundle_from_stored(bundle), bob.identity.public)
    envelope = seal_to_prekey(mallory, checked, message_block(signed, 1))
    events = room.inject(
        "bob2", Mail(item=10**6, sender="mallory", ik=mallory.public, id="m-forged", kind="message", ct=envelope,
                     at=int(clock[0])),
    )  # fmt: skip
    events += room.pump()["bob2"]  # bob fetches the log the message names: an invitation, it waits
    events += room.accept("bob2", room_id)["bob2"]  # then judged by the log
    assert not [e for e in events if isinstance(e, ev.Message)], events
    assert [e.kind for e in events if isinstance(e, RoomAlert)] == [RoomWarning.NOT_A_MEMBER]
    # Counted only once shown: mallory's message made no stream (review S5 finding 4).
    assert (mallory.public, f"room:{room_id.hex()}") not in room["bob2"]._replay.streams


def bundle_from_stored(bundle: StoredBundle) -> PrekeyBundle:
    opk = bundle.one_time
    return PrekeyBundle(
        name=bundle.name,
        identity_key=bundle.identity_key,
        signed=SignedPrekey(key_id=bundle.signed.key_id, public=bundle.signed.public,
                            created_at=bundle.signed.created_at, signature=bundle.signed.signature),
        one_time=None
        if opk is None
        else OneTimePrekey(key_id=opk.key_id, public=opk.public, expires_at=opk.expires_at, signature=opk.signature),
    )  # fmt: skip
