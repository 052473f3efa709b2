"""The rooms this client verified, and what their logs say and allow. Pure.

``VerifiedRooms`` is what ``rooms.RoomBook`` holds and answers from: each
room's verified log (``room_log.KnownRoom``), the label pins, the heads an
earlier run verified; who is a member at which entry, whether a room forked,
whether a message may be sealed to it now (the send gate) and to whom.
``RoomBook`` adds the requests to the relay and reads its room frames.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable, Mapping

from susurro.crypto import IdentityKey, RoomState
from susurro.crypto.seal import SignedHead
from susurro.protocol import (
    name_key,
)

from . import events as ev
from . import room_checks as checks
from .room_heads import SendGate
from .room_invites import InviteDesk
from .room_log import MAX_REMEMBERED_ROOMS, KnownRoom, RememberedRoom
from .room_requests import RoomRequests
from .room_sending import Addressing, address, addressed_names


class VerifiedRooms:
    """The verified rooms, their pins, and what they allow (``RoomBook`` reads the relay into them)."""

    def __init__(
        self,
        own_name: str,
        identity: IdentityKey,
        pinned: Callable[[str], bytes | None] | None = None,
        remembered: Iterable[RememberedRoom] = (),
    ) -> None:
        """``pinned(name)`` is the identity key the trust store holds for a name (None: never seen);
        ``remembered``, the rooms an earlier run verified on this relay (``remember`` gives them)."""
        self.own_name = own_name
        self.identity = identity
        self._pinned = pinned if pinned is not None else (lambda name: None)
        #: The identity key the relay's roster has for a name now (None: not present), set by the session:
        #: ``online`` names are the names members joined with, which need not be their names in the log.
        self.roster_key: Callable[[str], bytes | None] = lambda name: None
        self._rooms: dict[bytes, KnownRoom] = {}
        #: name_key(label) -> the room id it named when first seen here (a pin; the relay cannot move it).
        self._by_label: dict[str, bytes] = {}
        self._requests = RoomRequests(identity, own_name, self.state)
        #: Rooms someone else added us to, until the user accepts or declines (``room_invites``).
        self.invites = InviteDesk(
            identity.public,
            lambda name, ik: self._pinned(name) is not None and self.pin_agrees(name, ik),
            lambda name, ik: not self.pin_agrees(name, ik),
        )
        #: Heads verified in an earlier run, until this run's log gets that far: a relay that serves
        #: less is withholding, one that serves another entry there has forked the room.
        self._remembered: dict[bytes, RememberedRoom] = {}
        for old in list(remembered)[:MAX_REMEMBERED_ROOMS]:
            self._remembered[old.room_id] = old
            self._by_label.setdefault(name_key(old.label), old.room_id)

    def remember(self) -> list[RememberedRoom]:
        """The rooms to keep for the next run: each label's pin and the newest head verified."""
        kept = dict(self._remembered)
        for room_id, room in self._rooms.items():
            kept[room_id] = RememberedRoom(room_id, room.state.label, room.state.head.seq, room.state.head.hash)
        return list(kept.values())[-MAX_REMEMBERED_ROOMS:]

    # --- queries ----------------------------------------------------------------------------------

    def state(self, room: bytes | str) -> RoomState | None:
        room_id = self._resolve(room)
        entry = self._rooms.get(room_id) if room_id is not None else None
        return entry.state if entry is not None else None

    def rooms(self) -> list[RoomState]:
        return sorted((r.state for r in self._rooms.values()), key=lambda s: name_key(s.label))

    def online(self, room: bytes | str) -> tuple[str, ...]:
        room_id = self._resolve(room)
        entry = self._rooms.get(room_id) if room_id is not None else None
        return entry.online if entry is not None else ()

    def pinned_id(self, label: str) -> bytes | None:
        """The room id this label named when first seen here (this run or a remembered one)."""
        return self._by_label.get(name_key(label))

    def forget_label(self, label: str) -> bytes | None:
        """Drop ``label``'s pin and what is known of its room (now and for the next run): the next
        ``/join`` takes the room the relay names then, as a label never seen. Returns the room id."""
        room_id = self._by_label.pop(name_key(label), None)
        if room_id is not None:
            self._rooms.pop(room_id, None)
            self._remembered.pop(room_id, None)
        return room_id

    def _resolve(self, room: bytes | str) -> bytes | None:
        if isinstance(room, bytes):
            return room
        return self._by_label.get(name_key(room))

    def display(self, state: RoomState) -> str:
        """How a room is shown: its signed label and short id, so two rooms cannot pass for one."""
        return checks.display(state)

    # --- what the log verified here says ----------------------------------------------------------

    def members_at(self, room_id: bytes, seq: int) -> dict[bytes, str]:
        """Identity key -> name of the members at entry ``seq`` (at most our verified head) of the log verified here."""
        room = self._rooms.get(room_id)
        return {} if room is None else room.members_at(seq)

    def forked(self, room_id: bytes) -> str:
        """Why the room's history is known to have forked here, or ""."""
        room = self._rooms.get(room_id)
        return "" if room is None else room.forked

    def resume(self, room_id: bytes) -> str:
        """After a fork, go on sealing at the history verified here (the user's word); the reason, or ""."""
        room = self._rooms.get(room_id)
        return "" if room is None or not room.forked else checks.resume(room)

    def conflicts(self, head: SignedHead) -> bool:
        """``head`` names an entry of the log verified here, with another hash than that entry's."""
        room = self._rooms.get(head.room_id)
        return room is not None and room.conflicts(head.seq, head.hash)

    # --- pins: labels to room ids, member names to pinned keys ------------------------------------

    def _pin_label(self, state: RoomState) -> list[ev.Event]:
        known = self._by_label.setdefault(name_key(state.label), state.room_id)
        return checks.label_moved(state, known, self._rooms[known].state if known in self._rooms else None)

    def pin_agrees(self, member_name: str, identity_key: bytes) -> bool:
        """The trust store has no key for this name, or exactly this one."""
        pinned = self._pinned(member_name)
        return pinned is None or hmac.compare_digest(pinned, identity_key)

    # --- our own sends: only at the newest head known ---------------------------------------------

    def send_gate(self, room_id: bytes, now: float) -> SendGate:
        """Whether a message to ``room_id`` may be sealed now (``room_heads.RoomHeads.gate``)."""
        room = self._rooms.get(room_id)
        if room is None:
            return SendGate.OPEN
        return room.heads.gate(
            room.state,
            now,
            forked=bool(room.forked),
            refreshing=bool(room.refreshing),
            catching_up=self.catching_up(room_id),
        )

    def newest_seq(self, room_id: bytes) -> int:
        room = self._rooms.get(room_id)
        return 0 if room is None else room.heads.newest_seq(room.state.head.seq)

    def catching_up(self, room_id: bytes) -> bool:
        """A fetch of this room's log is on its way (its answer may still bring the entries we lack)."""
        return self._requests.catching_up(room_id)

    def reached(self, room_id: bytes, seq: int) -> bool:
        """The log verified here reaches entry ``seq`` of this room."""
        room = self._rooms.get(room_id)
        return room is not None and seq <= room.state.head.seq

    def _listed_member(self, state: RoomState, name: str) -> bool:
        """A name the relay lists as online is a member: by its roster key, else by the log's name (spec S4, 12)."""
        key = self.roster_key(name)
        return key in state.members if key is not None else state.member_named(name) is not None

    # --- sending ----------------------------------------------------------------------------------

    def addressing(
        self,
        room: bytes | str,
        present: Mapping[bytes, str],
        may_encrypt: Iterable[bytes] | None = None,
    ) -> Addressing:
        """Whom a message to ``room`` goes to (``room_sending.address``); KeyError for a room not verified here."""
        room_id = self._resolve(room)
        entry = self._rooms.get(room_id) if room_id is not None else None
        if entry is None:
            raise KeyError("no verified room by that name here")
        allowed = set(present) if may_encrypt is None else set(may_encrypt)
        # A member whose (name, key) disagrees with the trust store's pin is skipped like a changed key.
        allowed = {ik for ik in allowed if (m := entry.state.member(ik)) is None or self.pin_agrees(m.name, ik)}
        return address(entry.state, self.identity.public, present, allowed)

    def addressed(self, head: SignedHead, skipped: Iterable[tuple[str, bytes]], sender_ik: bytes) -> tuple[str, ...]:
        """The names a room message was for: the members at its head (``room_sending.addressed_names``)."""
        return addressed_names(self.members_at(head.room_id, head.seq), skipped, sender_ik)

    def is_member(self, room_id: bytes, identity_key: bytes) -> bool:
        room = self._rooms.get(room_id)
        return room is not None and identity_key in room.state.members
