"""``room_fetch`` against a hostile relay (spec review S5, finding 10): an answer that serves
nothing ends the fetch, and an answer with another room's log is never filed as the room asked
for. Real sessions and a real relay core (``tests.helpers.session_pair``)."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Sequence

from susurro.client import events as ev
from susurro.client.room_events import RoomAlert, RoomWarning
from susurro.crypto import EntryKind, RoomPolicy, create_entry, entry_hash
from susurro.protocol import (
    Frame,
    RoomFetch,
    RoomLog,
    RoomUpdate,
)
from tests.helpers.session_pair import Item, SessionPair
from tests.unit.test_room_session import ops, request, sends


def fetches_of(pair: SessionPair, label: str) -> list[RoomFetch]:
    """Every ``room_fetch`` ``label`` writes from now on."""
    seen: list[RoomFetch] = []
    sends(pair, label, seen, RoomFetch)
    return seen


def alerts(events: Sequence[ev.Event], kind: str) -> list[RoomAlert]:
    return [e for e in events if isinstance(e, RoomAlert) and e.kind == kind]


def test_a_relay_that_claims_more_and_serves_nothing_gets_one_fetch_and_a_withheld_warning() -> None:
    pair = SessionPair()
    pair.join("alice", "bob", "carol")
    room = ops(pair, "bob")

    def nothing_but_a_high_head(frame: Frame) -> Sequence[Item]:
        if isinstance(frame, (RoomLog, RoomUpdate)) and frame.room == room:
            return [dataclasses.replace(frame, entries=(), head_seq=10**6, head_hash=secrets.token_bytes(32))]
        return [frame]

    pair.intercept("bob", nothing_but_a_high_head)
    fetches = fetches_of(pair, "bob")
    key = pair.identity("carol").public
    produced = request(pair, "alice", lambda book, now: book.change(room, EntryKind.ADD, "carol", key, now))
    assert len(fetches) == 1  # the update's head asked for the rest once; the empty answer ended it
    (withheld,) = alerts(produced["bob"], RoomWarning.WITHHELD)
    assert "1000000" in withheld.detail


def test_an_answer_with_another_rooms_log_is_not_filed_or_kept() -> None:
    pair = SessionPair()
    pair.join("alice", "bob", "carol")
    room = ops(pair, "bob")
    carol = pair.identity("carol")
    other = create_entry(carol, name="carol", label="lounge", policy=RoomPolicy.OPEN, time=1).to_bytes()
    other_id = entry_hash(other)

    def another_room(frame: Frame) -> Sequence[Item]:
        if isinstance(frame, RoomLog) and frame.room == room:
            return [RoomLog(id=frame.id, room=other_id, label="lounge", from_seq=0, entries=(other,), head_seq=0,
                            head_hash=other_id, online=())]  # fmt: skip
        return [frame]

    before = pair["bob"].rooms.state(room)
    pair.intercept("bob", another_room)
    produced = request(pair, "bob", lambda book, now: book.fetch(room, 0))
    (refused,) = alerts(produced["bob"], RoomWarning.BAD_LOG)
    assert refused.room_id == room and "another room" in refused.detail
    assert pair["bob"].rooms.state(other_id) is None  # never asked for, never kept
    assert pair["bob"].rooms.state(room) == before
