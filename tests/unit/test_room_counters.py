"""A room message moves its sender's counters only once it is shown: one refused by the room checks
(a stranger's, or for a room that does not exist) creates no stream and skips no number. Real
sessions and a real relay core (``tests.helpers.session_pair``)."""

from __future__ import annotations

import secrets

from susurro.client import events as ev
from susurro.client.counters import SendCounters
from susurro.client.room_events import RoomAlert, RoomMessage, RoomWarning
from susurro.client.sending import seal_send
from susurro.crypto import EntryKind
from susurro.crypto.seal import SignedHead
from tests.helpers.session_pair import SessionPair
from tests.unit.test_room_session import ops, request


def forge(pair: SessionPair, sender: str, to: str, head: SignedHead, counter_start: int, msg_id: str) -> None:
    """``sender`` seals a room message to ``to`` by hand at ``head`` (its client would not), counter given."""
    session = pair[sender]
    counters = SendCounters({(f"room:{head.room_id.hex()}", pair.identity(to).public): counter_start - 1})
    data, _, _ = seal_send(
        session.identity, session._keys.boxes, sender, [session.peers[to]], "let me in", msg_id=msg_id,
        now=pair.now, direct=False, max_frame=session.max_frame, counters=counters, room="ops", head=head,
    )  # fmt: skip
    session._outgoing += data


def streams_of(pair: SessionPair, label: str, sender: str) -> set[str]:
    key = pair.identity(sender).public
    return {conversation for k, conversation in pair[label]._replay.streams if k == key}


def test_a_room_message_for_a_room_that_does_not_exist_creates_no_stream() -> None:
    pair = SessionPair()
    pair.join("alice", "bob", "carol")
    for i in range(3):  # each a room id nobody created: bob holds it, asks, and the relay knows none
        forge(pair, "carol", "bob", SignedHead(secrets.token_bytes(32), 5, secrets.token_bytes(32)), 1000, f"x{i}")
    events = pair.pump()["bob"] + pair["bob"].tick(pair.now + 60)
    assert not [e for e in events if isinstance(e, ev.Message)]
    assert not [w for w in events if isinstance(w, ev.Warning) and w.kind in ("gap", "replay")]
    assert streams_of(pair, "bob", "carol") == set()


def test_a_refused_room_message_skips_no_number_and_the_members_next_one_is_clean() -> None:
    pair = SessionPair()
    pair.join("alice", "bob", "carol")
    room = ops(pair, "bob", "carol")
    before = pair["carol"].rooms.state(room)
    assert before is not None
    carol_key = pair.identity("carol").public
    request(pair, "alice", lambda book, now: book.change(room, EntryKind.REMOVE, "carol", carol_key, now))
    # carol, removed, signs at the head before her removal with a counter far ahead: not shown.
    forge(pair, "carol", "bob", SignedHead(room, before.head.seq, before.head.hash), 500, "c0ffee")
    produced = pair.pump()["bob"]
    assert not [e for e in produced if isinstance(e, ev.Message)]
    assert [a.kind for a in produced if isinstance(a, RoomAlert)] == [RoomWarning.NOT_A_MEMBER]
    assert f"room:{room.hex()}" not in streams_of(pair, "bob", "carol")
    # alice adds her back; her client's first message to the room (counter 1) is shown with no gap or replay.
    request(pair, "alice", lambda book, now: book.change(room, EntryKind.ADD, "carol", carol_key, now))
    pair["carol"].room_request(lambda book, now: book.accept(room), pair.now)  # a re-add is an invitation again
    pair.pump()
    pair["carol"].send_message("back again", pair.now, room=room)
    shown = pair.pump()["bob"]
    assert [e.text for e in shown if isinstance(e, RoomMessage)] == ["back again"]
    assert not [w for w in shown if isinstance(w, ev.Warning) and not isinstance(w, RoomAlert)], shown
