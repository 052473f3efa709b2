"""The hold queue for room messages whose log is behind: bounded in all and per sender (spec review S4, finding 1)."""

from __future__ import annotations

from typing import cast

from susurro.client.peer import Peer
from susurro.client.room_hold import MAX_HELD_PER_SENDER, HeldRoomMessages
from susurro.crypto import IdentityKey, IdentityPublicKey, OpenedMessage, SessionKey


def peer(name: str) -> Peer:
    session = SessionKey.generate()
    return Peer(
        name=name,
        identity_key=IdentityPublicKey(IdentityKey.generate().public),
        session_key=session.public,
        issued_at=0,
        fingerprint=name,
    )


def test_one_sender_cannot_take_every_place_in_the_hold() -> None:
    held = HeldRoomMessages()
    mallory, alice = peer("mallory"), peer("alice")
    opened = cast(OpenedMessage, object())  # the queue never looks inside
    taken = [held.add(bytes([n % 256]) * 32, mallory, opened, 0.0) for n in range(300)]  # rooms that do not exist
    assert sum(taken) == MAX_HELD_PER_SENDER
    assert held.add(bytes(32), alice, opened, 0.0)  # a member's message for a real room still waits
