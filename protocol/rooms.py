"""Frames for rooms: creating them, appending to and fetching their membership logs.

The relay stores each room's signed membership log and hands it out; it
cannot forge it (``crypto/membership.py`` verifies every entry, on the relay
and again on every client). Log entries travel as opaque ``bin`` values of
at most ``MAX_ENTRY_BYTES``; their format is in docs/protocol.md, *Rooms*.

Every request carries a client-chosen ``id`` token, echoed in the answer
(``room_log``, ``room_index``) or in a ``room_error``, so a client can match
a refusal with what it asked. ``room_update`` is pushed, without an id, to
the online members of a room whose log has grown.

Importing this module registers the frames in ``CLIENT_FRAMES`` and
``RELAY_FRAMES``; ``protocol/__init__`` does so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .frames import (
    CLIENT_FRAMES,
    MAX_RAW_NAME_CHARS,
    RELAY_FRAMES,
    Frame,
    _check_bytes,
    _check_int,
    _check_msg_id,
    _check_names,
    _check_str,
    _fail,
    _take,
    _wire_list,
)
from .limits import (
    MAX_APPEND_ENTRIES,
    MAX_CODE_CHARS,
    MAX_DETAIL_CHARS,
    MAX_ENTRY_BYTES,
    MAX_LOG_BATCH,
    MAX_ROOM_INDEX,
    MAX_ROOM_ONLINE,
    PROTOCOL_VERSION,
    ROOM_ID_SIZE,
)

#: Sequence numbers of log entries (msgpack's signed 64-bit range).
MAX_SEQ = 2**63 - 1


def _check_entries(name: str, value: object, low: int, high: int) -> None:
    if not isinstance(value, tuple) or not low <= len(value) <= high:
        raise _fail(f"{name} must be a list of {low}..{high} entries")
    for entry in value:
        _check_bytes(f"{name} entry", entry, max_size=MAX_ENTRY_BYTES)
        if not entry:
            raise _fail(f"{name} entries must not be empty")


# --- client -> relay ---------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomCreate(Frame):
    """A new room: its signed ``create`` entry. The room id is that entry's hash."""

    TYPE: ClassVar[str] = "room_create"
    id: str
    entry: bytes

    def __post_init__(self) -> None:
        _check_msg_id(self.id)
        _check_entries("entry", (self.entry,), 1, 1)


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomAppend(Frame):
    """Entries that continue a room's log from its current head, in order."""

    TYPE: ClassVar[str] = "room_append"
    id: str
    room: bytes
    entries: tuple[bytes, ...]

    def __post_init__(self) -> None:
        _check_msg_id(self.id)
        _check_bytes("room", self.room, size=ROOM_ID_SIZE)
        _check_entries("entries", self.entries, 1, MAX_APPEND_ENTRIES)

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> Frame:
        values = _take(raw, ("id", "room", "entries"))
        return cls(id=values["id"], room=values["room"], entries=_wire_list(values["entries"], "entries"))


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomFetch(Frame):
    """A room's log from entry ``from_seq`` on (0: from its create entry)."""

    TYPE: ClassVar[str] = "room_fetch"
    id: str
    room: bytes
    from_seq: int

    def __post_init__(self) -> None:
        _check_msg_id(self.id)
        _check_bytes("room", self.room, size=ROOM_ID_SIZE)
        _check_int("from_seq", self.from_seq, 0, MAX_SEQ)


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomFind(Frame):
    """The room with this label on this relay; answered with its log from the start."""

    TYPE: ClassVar[str] = "room_find"
    id: str
    label: str

    def __post_init__(self) -> None:
        _check_msg_id(self.id)
        _check_str("label", self.label, MAX_RAW_NAME_CHARS)


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomList(Frame):
    """The rooms this member belongs to, and the open rooms it could join."""

    TYPE: ClassVar[str] = "room_list"
    id: str

    def __post_init__(self) -> None:
        _check_msg_id(self.id)


# --- relay -> client ---------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _LogBatch(Frame):
    """Entries ``from_seq`` .. ``from_seq + len(entries) - 1`` of a room's log, and its head.

    ``head_seq``/``head_hash`` are the relay's word for where the whole log
    ends (clients fetch on if the batch stops short); ``online`` is its
    presence hint: members of the room who are connected now.
    """

    room: bytes
    label: str
    from_seq: int
    entries: tuple[bytes, ...]
    head_seq: int
    head_hash: bytes
    online: tuple[str, ...]

    def _check(self) -> None:
        _check_bytes("room", self.room, size=ROOM_ID_SIZE)
        _check_str("label", self.label, MAX_RAW_NAME_CHARS)
        _check_int("from_seq", self.from_seq, 0, MAX_SEQ)
        _check_entries("entries", self.entries, 0, MAX_LOG_BATCH)
        _check_int("head_seq", self.head_seq, 0, MAX_SEQ)
        _check_bytes("head_hash", self.head_hash, size=ROOM_ID_SIZE)
        _check_names("online", self.online, MAX_ROOM_ONLINE)

    @classmethod
    def _values(cls, raw: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
        values = _take(raw, names)
        values["entries"] = _wire_list(values["entries"], "entries")
        values["online"] = _wire_list(values["online"], "online")
        return values


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomLog(_LogBatch):
    """The answer to ``room_create``, ``room_append`` (no entries, the new head), ``room_fetch``, ``room_find``."""

    TYPE: ClassVar[str] = "room_log"
    id: str

    def __post_init__(self) -> None:
        _check_msg_id(self.id)
        self._check()

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> Frame:
        names = ("id", "room", "label", "from_seq", "entries", "head_seq", "head_hash", "online")
        return cls(**cls._values(raw, names))


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomUpdate(_LogBatch):
    """Pushed to a room's online members (and to anyone just removed) when its log grows."""

    TYPE: ClassVar[str] = "room_update"

    def __post_init__(self) -> None:
        self._check()

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> Frame:
        names = ("room", "label", "from_seq", "entries", "head_seq", "head_hash", "online")
        return cls(**cls._values(raw, names))


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomInfo:
    """One line of a ``room_index``: the relay's summary, to be checked against the log."""

    room: bytes
    label: str
    open: bool
    members: int
    online: int
    head_seq: int

    def __post_init__(self) -> None:
        _check_bytes("room", self.room, size=ROOM_ID_SIZE)
        _check_str("label", self.label, MAX_RAW_NAME_CHARS)
        if not isinstance(self.open, bool):
            raise _fail("open must be a boolean")
        _check_int("members", self.members, 0, MAX_ROOM_ONLINE)
        _check_int("online", self.online, 0, MAX_ROOM_ONLINE)
        _check_int("head_seq", self.head_seq, 0, MAX_SEQ)

    def to_wire(self) -> dict[str, Any]:
        return {
            "room": self.room,
            "label": self.label,
            "open": self.open,
            "members": self.members,
            "online": self.online,
            "head_seq": self.head_seq,
        }

    @classmethod
    def from_wire(cls, raw: object) -> RoomInfo:
        if not isinstance(raw, Mapping):
            raise _fail("a room entry must be a map")
        return cls(**_take(raw, ("room", "label", "open", "members", "online", "head_seq")))


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomIndex(Frame):
    """The answer to ``room_list``."""

    TYPE: ClassVar[str] = "room_index"
    id: str
    rooms: tuple[RoomInfo, ...]

    def __post_init__(self) -> None:
        _check_msg_id(self.id)
        if not isinstance(self.rooms, tuple) or len(self.rooms) > MAX_ROOM_INDEX:
            raise _fail(f"rooms must be a list of at most {MAX_ROOM_INDEX} rooms")
        if not all(isinstance(room, RoomInfo) for room in self.rooms):
            raise _fail("rooms entries must be room records")

    def to_wire(self) -> dict[str, Any]:
        return {"v": PROTOCOL_VERSION, "t": self.TYPE, "id": self.id, "rooms": [r.to_wire() for r in self.rooms]}

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> Frame:
        values = _take(raw, ("id", "rooms"))
        rooms = _wire_list(values["rooms"], "rooms")
        return cls(id=values["id"], rooms=tuple(RoomInfo.from_wire(room) for room in rooms))


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomError(Frame):
    """A room request refused; ``code`` is an ``ErrorCode`` value. The connection stays."""

    TYPE: ClassVar[str] = "room_error"
    id: str
    code: str
    detail: str

    def __post_init__(self) -> None:
        _check_msg_id(self.id)
        _check_str("code", self.code, MAX_CODE_CHARS)
        _check_str("detail", self.detail, MAX_DETAIL_CHARS, allow_empty=True)


ROOM_REQUESTS: tuple[type[Frame], ...] = (RoomCreate, RoomAppend, RoomFetch, RoomFind, RoomList)
for _request in ROOM_REQUESTS:
    CLIENT_FRAMES[_request.TYPE] = _request
for _answer in (RoomLog, RoomUpdate, RoomIndex, RoomError):
    RELAY_FRAMES[_answer.TYPE] = _answer
