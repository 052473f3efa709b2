"""Heads signed into room messages claim things; only a member's claim holds our sends, for a while
at most, and only two signed entries for one seq prove a fork (spec review S5, findings 1 and 6).
Real sessions and a real relay core (``tests.helpers.session_pair``)."""

from __future__ import annotations

import secrets

import pytest

from susurro.client import events as ev
from susurro.client.errors import SendError
from susurro.client.room_events import RoomAlert, RoomMessage
from susurro.client.room_heads import HEAD_CLAIM_WAIT
from susurro.crypto.seal import SignedHead
from tests.helpers.session_pair import SessionPair
from tests.unit.test_room_counters import forge
from tests.unit.test_room_session import ops


def room_alerts(events: list[ev.Event]) -> list[tuple[str, str | None]]:
    return [(str(a.kind), a.sender) for a in events if isinstance(a, RoomAlert)]


def shown(events: list[ev.Event]) -> list[str]:
    return [e.text for e in events if isinstance(e, RoomMessage)]


def test_a_stranger_signing_another_hash_at_a_seq_the_log_holds_forks_nothing() -> None:
    pair = SessionPair()
    pair.join("alice", "bob", "carol")
    room = ops(pair, "bob")  # carol is not in it, but knows its id
    forge(pair, "carol", "bob", SignedHead(room, 1, secrets.token_bytes(32)), 1, "not-a-fork")
    events = pair.pump()["bob"]
    assert room_alerts(events) == [("room_not_a_member", "carol")]
    assert shown(events) == []
    pair["bob"].send_message("the room is not muted", pair.now, room=room)
    assert shown(pair.pump()["alice"]) == ["the room is not muted"]


def test_a_members_other_hash_is_a_claimed_fork_not_shown_that_holds_sends_for_the_wait_only() -> None:
    pair = SessionPair()
    pair.join("alice", "bob", "carol")
    room = ops(pair, "bob", "carol")
    forge(pair, "carol", "bob", SignedHead(room, 2, secrets.token_bytes(32)), 1, "claims-a-fork")
    events = pair.pump()["bob"]
    assert room_alerts(events) == [("room_fork_claimed", "carol")]
    assert shown(events) == []
    t0 = pair.now
    with pytest.raises(SendError, match="another history"):
        pair["bob"].send_message("held", t0, room=room)
    pair.pump()
    pair["bob"].send_message("after the wait", t0 + HEAD_CLAIM_WAIT, room=room)
    assert shown(pair.pump()["alice"]) == ["after the wait"]
    # Her claim ran out unserved: her next claims are warnings, they hold nothing (finding 6).
    forge(pair, "carol", "bob", SignedHead(room, 2, secrets.token_bytes(32)), 2, "again")
    forge(pair, "carol", "bob", SignedHead(room, 10**6, secrets.token_bytes(32)), 3, "higher")
    pair.pump()
    pair["bob"].send_message("not held again", t0 + HEAD_CLAIM_WAIT + 1, room=room)
    assert shown(pair.pump()["alice"]) == ["not held again"]
