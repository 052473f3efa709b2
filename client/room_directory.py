"""The relay's room index (``room_index``) read against the verified logs. Pure.

``/rooms`` (and the window's room list) ask the relay which rooms there are:
ours and the open ones. Everything in the index is the relay's word. For a
room whose log is verified here the label, member count and policy come from
that log, and who is online from the verified roster; only rooms we have not
verified are shown with the relay's numbers, marked as such. A room verified
here that the index leaves out is still listed (the relay may hide a room, not
make it disappear), and an index that calls a verified room by another label,
or puts a pinned label on another room, is flagged.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from susurro.crypto import RoomPolicy, short_room_id
from susurro.protocol import RoomIndex, name_key

from . import events as ev
from .room_events import RoomAlert, RoomWarning
from .rooms import RoomBook


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomListing:
    """One room of the directory."""

    room_id: bytes
    #: The signed label when ``verified``, else the relay's.
    label: str
    members: int
    #: Members connected now, ourselves included.
    online: int
    open: bool
    #: The log is verified here: label, members and policy are the log's, online is the verified roster's.
    verified: bool
    #: We are a member by the verified log.
    member: bool
    #: The relay's index listed it (False: verified here, left out by the relay).
    listed: bool

    @property
    def short_id(self) -> str:
        return short_room_id(self.room_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomDirectory(ev.Event):
    """The answer to a room list: every room the relay listed or this client verified, by label."""

    rooms: tuple[RoomListing, ...]


def read_index(
    book: RoomBook, index: RoomIndex, present: Collection[bytes], own_key: bytes
) -> tuple[list[ev.Event], RoomDirectory]:
    """Alerts for what the index gets wrong, and the directory to show."""
    alerts: list[ev.Event] = []
    listings: dict[bytes, RoomListing] = {}
    for info in index.rooms:
        state = book.state(info.room)
        if state is not None:
            if info.label != state.label:
                detail = (
                    f"the relay's room list calls room {book.display(state)} {info.label[:40]!r}; "
                    f"its signed label is {state.label!r}"
                )
                alerts.append(_alert(RoomWarning.LABEL_CHANGED, state.label, state.room_id, detail))
            listings[state.room_id] = _verified(book, state.room_id, present, own_key, listed=True)
            continue
        pinned = book.state(info.label)
        if pinned is not None:  # the label is pinned here to a room the index does not put under it
            detail = (
                f"the relay's room list puts the label {info.label[:40]!r} on another room "
                f"({info.label[:40]}#{short_room_id(info.room)}) than {book.display(pinned)}; they are kept apart"
            )
            alerts.append(_alert(RoomWarning.LABEL_MOVED, info.label, info.room, detail))
        listings[info.room] = RoomListing(
            room_id=info.room,
            label=info.label,
            members=info.members,
            online=info.online,
            open=info.open,
            verified=False,
            member=False,
            listed=True,
        )
    for state in book.rooms():
        if state.room_id not in listings:
            listings[state.room_id] = _verified(book, state.room_id, present, own_key, listed=False)
    ordered = sorted(listings.values(), key=lambda r: (name_key(r.label), r.room_id))
    return alerts, RoomDirectory(rooms=tuple(ordered))


def _verified(
    book: RoomBook, room_id: bytes, present: Collection[bytes], own_key: bytes, *, listed: bool
) -> RoomListing:
    state = book.state(room_id)
    assert state is not None
    member = own_key in state.members
    online = sum(1 for ik in state.members if ik in present) + (1 if member else 0)
    return RoomListing(
        room_id=state.room_id,
        label=state.label,
        members=len(state.members),
        online=online,
        open=state.policy is RoomPolicy.OPEN,
        verified=True,
        member=member,
        listed=listed,
    )


def _alert(kind: ev.WarningKind, label: str, room_id: bytes, detail: str) -> RoomAlert:
    return RoomAlert(kind=kind, detail=detail, room=label, room_id=room_id)
