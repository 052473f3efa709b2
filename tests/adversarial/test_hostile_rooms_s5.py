"""Rooms against hostile members, spec review S5: a head's hash, and who may claim with it.

Real clients, the real relay and the tampering proxy of ``tests/helpers``,
with the helpers of ``test_hostile_rooms_review`` (a modified client signs
at whatever head it is told, with its own key). Each test was run once with
its defence switched off (the S5 table in ``docs/threat-model.md``).
"""

from __future__ import annotations

import secrets

import pytest

from susurro.client import room_heads
from susurro.client.room_events import RoomAlert, RoomWarning
from susurro.crypto import RoomPolicy
from tests.adversarial.test_hostile_relay_rooms import alert
from tests.adversarial.test_hostile_rooms_review import (
    at_head,
    from_mallory,
    lie_about,
    removed_but_pretending,
    room_of,
)
from tests.helpers.hostile_relay import HostileRoom


def test_anyone_signing_another_hash_at_a_known_seq_does_not_stop_the_room(hostile: HostileRoom) -> None:
    """mallory, removed, signs a room message at entry 1 with 32 random bytes for its hash."""
    alice, bob, mallory, _ = removed_but_pretending(hostile)
    lie_about(mallory, at_head(1, secrets.token_bytes(32)))
    mallory.connection.send_to_room("the room is mine", "ops")
    from_mallory(bob, RoomWarning.NOT_A_MEMBER)
    bob.connection.send_to_room("not muted", "ops")  # no fork: bob still seals to the room
    alice.wait_message("not muted")
    bob.barrier()
    assert not [e for e in bob.log if isinstance(e, RoomAlert) and e.kind == RoomWarning.FORK]
    assert "the room is mine" not in bob.texts()


def test_a_members_claimed_fork_is_not_shown_and_holds_sends_only_for_the_wait(
    hostile: HostileRoom, monkeypatch: pytest.MonkeyPatch
) -> None:
    (alice, bob, mallory), _ = room_of(hostile, RoomPolicy.INVITE, "bob", "mallory")
    monkeypatch.setattr(room_heads, "HEAD_CLAIM_WAIT", 0.0)  # the wait is over as soon as it starts
    lie_about(mallory, at_head(2, secrets.token_bytes(32)))  # entry 2 added her
    mallory.connection.send_to_room("another history", "ops")
    assert alert(bob, RoomWarning.FORK_CLAIMED).sender == "mallory"
    bob.connection.send_to_room("sent all the same", "ops")  # claimed, not proved: the room is not forked
    alice.wait_message("sent all the same")
    bob.barrier()
    assert "another history" not in bob.texts()
