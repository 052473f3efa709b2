"""Rooms someone else added us to, until the user accepts or declines them. Pure.

An admin's ``add`` needs no consent, so anyone (throwaway identities, or a
hostile relay with keys of its own) can put us into as many rooms as they
like, and the relay pushes each one. A room we did not create, ask for
(``/join``) or accept is therefore an **invitation**: ``rooms.RoomBook``
verifies its log once, to know that an admin of it really added us and who,
then lets the log go and keeps only an ``Invitation`` here (the room id, its
signed label, the inviter), in memory and nowhere else. No log, no heads, no
keys, no history, no label pin until the user accepts; accepting fetches and
verifies the log again, as ``/join`` would.

``Invitations`` is bounded: ``MAX_INVITATIONS`` pending at once and
``MAX_INVITATIONS_PER_INVITER`` from one identity key. Past either, the
oldest invitation from an inviter the trust store does not know goes first
(then the oldest), with a notice (``InvitationDropped``); an invitation
for a room already pending is not offered twice, and a declined room is not
offered again in this run (``MAX_DECLINED``, the oldest forgotten first).
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Callable, Container
from dataclasses import dataclass

from susurro.crypto import short_room_id
from susurro.protocol import name_key

from . import events as ev
from .events import WarningKind
from .room_events import Invited, RoomAlert, RoomEvent
from .room_log import KnownRoom

#: Invitations pending at once: a flood of adds costs at most this many small records.
MAX_INVITATIONS = 32
#: Of those, from one inviter (by identity key): one identity cannot take every place.
MAX_INVITATIONS_PER_INVITER = 4
#: Rooms declined in this run that are not offered again when their log grows.
MAX_DECLINED = 256
#: Logs of rooms we did not ask for, verified at once to tell an invitation from junk (each is let go
#: once decided): a relay pushing many rooms at once costs at most this many logs in memory.
MAX_CHECKING_ROOMS = 4


@dataclass(frozen=True, slots=True)
class Invitation:
    """A room an admin added us to, verified once; nothing else of it is kept."""

    room_id: bytes
    #: The label signed in the room's ``create`` entry.
    label: str
    #: The name the room's log gives the admin who signed our ``add``, and that admin's identity key.
    inviter: str
    inviter_key: bytes
    #: The trust store held exactly this key for the inviter's name when the invitation came.
    known_inviter: bool

    @property
    def short_id(self) -> str:
        return short_room_id(self.room_id)

    @property
    def shown(self) -> str:
        return f"{self.label}#{self.short_id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class InvitationReceived(RoomEvent):
    """``by`` (an admin of the room by its verified log) added us: accept or decline."""

    by: str
    #: The trust store knows ``by`` under this very key.
    known: bool


class DropReason(enum.Enum):
    """Why a pending invitation was let go."""

    #: ``MAX_INVITATIONS`` were pending.
    TOO_MANY = "too_many"
    #: ``MAX_INVITATIONS_PER_INVITER`` from the same inviter were pending.
    TOO_MANY_FROM_INVITER = "too_many_from_inviter"


@dataclass(frozen=True, slots=True, kw_only=True)
class InvitationDropped(RoomEvent):
    """A pending invitation was let go to make room for a newer one (``/join`` it to take it up)."""

    by: str
    reason: DropReason


class AmbiguousInvitation(ValueError):
    """Two pending invitations answer to one label: name the room as LABEL#SHORTID."""


class Invitations:
    """The pending invitations, oldest first, and the rooms declined in this run."""

    def __init__(self, limit: int = MAX_INVITATIONS, per_inviter: int = MAX_INVITATIONS_PER_INVITER) -> None:
        self.limit = limit
        self.per_inviter = per_inviter
        self._pending: OrderedDict[bytes, Invitation] = OrderedDict()
        self._declined: OrderedDict[bytes, None] = OrderedDict()

    def __contains__(self, room_id: object) -> bool:
        return room_id in self._pending

    def __len__(self) -> int:
        return len(self._pending)

    def pending(self) -> list[Invitation]:
        return list(self._pending.values())

    def declined(self, room_id: bytes) -> bool:
        return room_id in self._declined

    def wanted(self, room_id: bytes) -> bool:
        """Worth verifying as an invitation: neither pending already nor declined in this run."""
        return room_id not in self._pending and room_id not in self._declined

    def offer(self, invitation: Invitation) -> list[RoomEvent]:
        """Keep ``invitation`` (once), letting older ones go if the bounds say so; the events to show."""
        if not self.wanted(invitation.room_id):
            return []
        events: list[RoomEvent] = []
        same = [i for i in self._pending.values() if i.inviter_key == invitation.inviter_key]
        if len(same) >= self.per_inviter:
            events.append(self._drop(same, DropReason.TOO_MANY_FROM_INVITER))
        if len(self._pending) >= self.limit:
            events.append(self._drop(list(self._pending.values()), DropReason.TOO_MANY))
        self._pending[invitation.room_id] = invitation
        received = InvitationReceived(
            room=invitation.label,
            room_id=invitation.room_id,
            by=invitation.inviter,
            known=invitation.known_inviter,
        )
        return [*events, received]

    def _drop(self, among: list[Invitation], reason: DropReason) -> InvitationDropped:
        """The oldest of ``among`` from an inviter the trust store does not know, else the oldest."""
        victim = next((i for i in among if not i.known_inviter), among[0])
        del self._pending[victim.room_id]
        return InvitationDropped(room=victim.label, room_id=victim.room_id, by=victim.inviter, reason=reason)

    def find(self, room: bytes | str) -> Invitation | None:
        """The pending invitation for a room id, a label, or LABEL#SHORTID; AmbiguousInvitation if a
        label alone names two (a lookalike label is the cheapest way to pass one room for another)."""
        if isinstance(room, bytes):
            return self._pending.get(room)
        label, _, short = room.partition("#")
        matches = [
            i
            for i in self._pending.values()
            if name_key(i.label) == name_key(label) and (not short or i.short_id == short.lower())
        ]
        if len(matches) > 1:
            raise AmbiguousInvitation(", ".join(i.shown for i in matches))
        return matches[0] if matches else None

    def take(self, room_id: bytes) -> Invitation | None:
        """Accepted: no longer pending."""
        return self._pending.pop(room_id, None)

    def undecline(self, room_id: bytes) -> None:
        """Joined after all (``/join``): messages to it are judged by its log again."""
        self._declined.pop(room_id, None)

    def decline(self, room_id: bytes) -> Invitation | None:
        """Declined: no longer pending, and not offered again in this run."""
        invitation = self._pending.pop(room_id, None)
        if invitation is not None:
            self._declined[room_id] = None
            while len(self._declined) > MAX_DECLINED:
                self._declined.popitem(last=False)
        return invitation


class InviteDesk:
    """``rooms.RoomBook``'s part for rooms it did not ask for: check each once, keep an invitation or nothing.

    ``known_inviter(name, key)``: the trust store holds exactly this key for this name.
    """

    def __init__(self, own_key: bytes, known_inviter: Callable[[str, bytes], bool]) -> None:
        self._own = own_key
        self._known = known_inviter
        self.invitations = Invitations()
        #: Logs being verified only to tell an invitation from junk, then let go (oldest first).
        self.checking: dict[bytes, KnownRoom] = {}
        #: Rooms the user accepted (or our own key proved ours) whose log is on its way to be followed.
        self._consented: set[bytes] = set()
        #: Rooms checked whose log does not name us (the newest ``MAX_DECLINED``).
        self._strangers: OrderedDict[bytes, None] = OrderedDict()

    def consent(self, room_id: bytes) -> None:
        """The user asked for this room (by its id): its log is followed, not checked."""
        self._consented.add(room_id)
        self._strangers.pop(room_id, None)

    def consented(self, room_id: bytes, remembered: Container[bytes]) -> bool:
        """Accepted (now, or in an earlier run: ``remembered``): its log is followed, not checked."""
        return room_id in self._consented or room_id in remembered

    def wanted(self, room_id: bytes) -> bool:
        """Worth fetching: not pending, not declined, not being checked already."""
        return room_id not in self.checking and self.invitations.wanted(room_id)

    def check(self, room: KnownRoom) -> None:
        """Start checking an unasked-for room, letting the oldest check go past ``MAX_CHECKING_ROOMS``."""
        while len(self.checking) >= MAX_CHECKING_ROOMS:
            del self.checking[next(iter(self.checking))]
        self.checking[room.state.room_id] = room

    @staticmethod
    def alerts(events: list[ev.Event]) -> list[ev.Event]:
        """Of a checked room's events, the warnings only: a forged or broken log is still flagged, but its
        members, adds and presence are nobody's business until the user accepts."""
        return [e for e in events if isinstance(e, RoomAlert)]

    def checked(
        self, room: KnownRoom, events: list[ev.Event], *, done: bool
    ) -> tuple[list[ev.Event], list[bytes]]:
        """Entries of a checked room verified (``events`` theirs); ``done``: as far as the relay serves.

        Returns the events to show and, for a room our own key proves ours, the room
        id to fetch again and follow (a list of at most one).
        """
        shown = self.alerts(events)
        if not done:
            return shown, []
        state = room.state
        del self.checking[state.room_id]
        adds = [e for e in events if isinstance(e, Invited)]
        if self._own not in state.members:
            self._strangers[state.room_id] = None  # its messages to us are not addressed to us
            while len(self._strangers) > MAX_DECLINED:
                self._strangers.popitem(last=False)
            return shown, []
        if not adds:  # only our own create makes us a member without an add
            self._consented.add(state.room_id)
            return shown, [state.room_id]
        if state.creator == self._own or adds[-1].by_key == self._own:
            # Only our key signs our own create or self-add: a room we made or joined before (another
            # device, a lost state file) is ours, not an invitation.
            self._consented.add(state.room_id)
            return shown, [state.room_id]
        by, by_key = adds[-1].by, adds[-1].by_key
        invitation = Invitation(state.room_id, state.label, by, by_key, self._known(by, by_key))
        return shown + list(self.invitations.offer(invitation)), []

    def accept(self, room: bytes | str) -> bytes:
        """The room id to fetch and follow. KeyError: no such invitation; AmbiguousInvitation."""
        invitation = self.invitations.find(room)
        if invitation is None:
            raise KeyError("no pending invitation to that room")
        self.invitations.take(invitation.room_id)
        self.consent(invitation.room_id)
        return invitation.room_id

    def decline(self, room: bytes | str) -> Invitation:
        """Let an invitation go: nothing of the room is kept and nothing is sent (its log still names us a
        member until an admin removes us: accept, then ``/leave``, to tell the room). KeyError: none."""
        invitation = self.invitations.find(room)
        if invitation is None:
            raise KeyError("no pending invitation to that room")
        self.invitations.decline(invitation.room_id)
        return invitation

    def followed(self, room_id: bytes) -> None:
        """The room's log is followed now: no longer consented-to-be, nor an invitation, nor declined."""
        self._consented.discard(room_id)
        self.invitations.take(room_id)
        self.invitations.undecline(room_id)

    def invited(self, room_id: bytes) -> bool:
        """Added by someone else and not accepted (pending, or being checked as one)."""
        return room_id in self.invitations or room_id in self.checking

    def declined(self, room_id: bytes) -> bool:
        """Declined in this run (and not accepted since)."""
        return self.invitations.declined(room_id)

    def unfollowed(self, sender: str, label: str, room_id: bytes) -> ev.Event | None:
        """The warning for a message to a room we do not follow and know why (declined, or its log does
        not name us), or None. There is no log here to judge it by, and none is kept for it."""
        if self.declined(room_id):
            detail = f"{sender} sent a message to room {label[:40]!r}, whose invitation you declined; not shown"
            return RoomAlert(kind=WarningKind.ROOM_NOT_ACCEPTED, detail=detail, sender=sender, room=label,
                             room_id=room_id)
        if room_id in self._strangers:
            detail = (
                f"{sender} sent you a message to room {label[:40]!r}, of which you are not a member by its "
                "verified log; not shown"
            )
            return ev.Warning(kind=WarningKind.NOT_ADDRESSED_TO_ME, detail=detail, sender=sender)
        return None
