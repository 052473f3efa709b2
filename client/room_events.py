"""The rooms' events and warning kinds: what the views show; every decision was made in ``rooms``. Pure.

``describe`` turns verified membership-log entries into these events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from susurro.crypto import EntryKind, RoomEntry, RoomPolicy, RoomState, short_room_id

from . import events as ev
from .events import WarningKind


class RoomWarning:
    """The room checks' warning kinds (members of ``WarningKind``) by their short names."""

    BAD_LOG: Final = WarningKind.ROOM_BAD_LOG
    FORK: Final = WarningKind.ROOM_FORK
    FORK_CLAIMED: Final = WarningKind.ROOM_FORK_CLAIMED
    WITHHELD: Final = WarningKind.ROOM_WITHHELD
    NOT_A_MEMBER: Final = WarningKind.ROOM_NOT_A_MEMBER
    LABEL_CHANGED: Final = WarningKind.ROOM_LABEL_CHANGED
    REFUSED: Final = WarningKind.ROOM_REFUSED
    STALE_HEAD: Final = WarningKind.ROOM_STALE_HEAD
    LABEL_MOVED: Final = WarningKind.ROOM_LABEL_MOVED
    KEY_MISMATCH: Final = WarningKind.ROOM_KEY_MISMATCH
    STALE_SENDER_HEAD: Final = WarningKind.ROOM_STALE_SENDER_HEAD
    NOT_ACCEPTED: Final = WarningKind.ROOM_NOT_ACCEPTED


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomEvent(ev.Event):
    room: str
    room_id: bytes

    @property
    def short_id(self) -> str:
        return short_room_id(self.room_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomCreated(RoomEvent):
    """A room we created is on the relay."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomReady(RoomEvent):
    """A room's log is verified up to the relay's head; ``members`` from the log."""

    members: tuple[str, ...]
    policy: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Invited(RoomEvent):
    """We were added to a room (``by`` signed it, with the identity key ``by_key``)."""

    by: str
    by_key: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberAdded(RoomEvent):
    name: str
    by: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberRemoved(RoomEvent):
    """``name`` is no longer a member: removed by ``by``, or left (``by == name``)."""

    name: str
    by: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomNotice(RoomEvent):
    """A promotion, a demotion or a policy change: ``kind`` says which, ``by`` signed it.

    The parts, not a sentence, so each view says it in its own language; ``text`` is the English one.
    """

    kind: EntryKind
    by: str
    #: Whom a promotion or demotion is about ("" for a policy change).
    name: str = ""
    #: The room's new policy, for ``EntryKind.POLICY``.
    policy: RoomPolicy | None = None

    @property
    def text(self) -> str:
        if self.kind is EntryKind.POLICY:
            return f"{self.by} made the room {self.policy.value if self.policy is not None else '?'}"
        if self.kind is EntryKind.PROMOTE:
            return f"{self.by} made {self.name} an admin"
        return f"{self.by} removed {self.name} as admin"


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomMessage(ev.Message):
    """A message to a room, from a member of its verified log; ``to`` from the log at the signed head."""

    room: str
    room_id: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomAlert(ev.Warning):
    """A room check failed; ``kind`` is one of ``RoomWarning``'s kinds."""

    room: str
    room_id: bytes


def describe(before: RoomState, entries: list[bytes], own_ik: bytes) -> list[ev.Event]:
    """The events for verified ``entries`` appended to ``before`` (``own_ik``: ours, for ``Invited``)."""
    events: list[ev.Event] = []
    names = {ik: m.name for ik, m in before.members.items()}
    label, room_id = before.label, before.room_id
    for data in entries:
        entry = RoomEntry.from_bytes(data)
        names.setdefault(entry.subject_ik, entry.subject_name)
        by = names.get(entry.signer, "?")
        if entry.kind is EntryKind.ADD:
            if entry.subject_ik == own_ik:
                events.append(Invited(room=label, room_id=room_id, by=by, by_key=entry.signer))
            else:
                events.append(MemberAdded(room=label, room_id=room_id, name=entry.subject_name, by=by))
        elif entry.kind in (EntryKind.REMOVE, EntryKind.LEAVE):
            events.append(MemberRemoved(room=label, room_id=room_id, name=entry.subject_name, by=by))
        elif entry.kind is EntryKind.POLICY:
            events.append(
                RoomNotice(room=label, room_id=room_id, kind=entry.kind, by=by, policy=RoomPolicy(entry.policy))
            )  # verified: a known policy
        else:
            events.append(RoomNotice(room=label, room_id=room_id, kind=entry.kind, by=by, name=entry.subject_name))
    return events
