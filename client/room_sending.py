"""Whom a room message goes to, and whom a received one was for: members of the verified log only. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from susurro.crypto import IdentityPublicKey, RoomState
from susurro.crypto.fingerprint import fingerprint_bytes
from susurro.crypto.seal import SignedHead


@dataclass(frozen=True, slots=True)
class Addressing:
    """Whom a room message goes to, from the verified log and the roster."""

    head: SignedHead
    #: Members present on the relay, by the name the roster uses, and their identity keys.
    recipients: tuple[tuple[str, bytes], ...]
    #: Members the sender will not encrypt to (changed key, strict mode), signed into the message.
    skipped: tuple[tuple[str, bytes], ...]
    #: Members not connected now (they get nothing; the delivery report says so).
    offline: tuple[str, ...]


def address(
    state: RoomState,
    own_ik: bytes,
    present: Mapping[bytes, str],
    may_encrypt: Iterable[bytes] | None = None,
) -> Addressing:
    """Whom a message to the room of ``state`` goes to: members of the verified log, never anyone else.

    ``present`` maps the identity keys of verified roster entries to their
    roster names; ``may_encrypt`` (default: all) is the subset trust allows.
    Members present but not allowed are the signed ``skipped`` list.
    """
    allowed = set(present) if may_encrypt is None else set(may_encrypt)
    recipients, skipped, offline = [], [], []
    for ik, member in state.members.items():
        if ik == own_ik:
            continue
        if ik not in present:
            offline.append(member.name)
        elif ik in allowed:
            recipients.append((present[ik], ik))
        else:
            skipped.append((member.name, ik))
    return Addressing(
        head=SignedHead(state.room_id, state.head.seq, state.head.hash),
        recipients=tuple(recipients),
        skipped=tuple(skipped),
        offline=tuple(offline),
    )


def addressed_names(
    members: Mapping[bytes, str], skipped: Iterable[tuple[str, bytes]], sender_ik: bytes
) -> tuple[str, ...]:
    """The names a room message was for: the log's members at its head, but the sender and the signed exceptions."""
    skipped_keys = {fp for _, fp in skipped}
    return tuple(
        name
        for ik, name in members.items()
        if ik != sender_ik and fingerprint_bytes(IdentityPublicKey(ik)) not in skipped_keys
    )
