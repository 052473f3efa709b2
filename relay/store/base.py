"""What the relay keeps about rooms, as an interface its core depends on.

The store holds bytes it is given and answers queries; it does not verify
anything. ``relay/rooms.py`` verifies every entry (``crypto.membership``)
before it reaches ``create_room`` or ``append_entries``, and hands over the
membership the verified log proves, so queries such as "which rooms is this
identity in" need no log replay. A store holds ciphertext-free metadata only:
labels, names, identity keys and signed log entries; never a message.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass


class StoreError(Exception):
    """The backend failed (disk full, database locked or corrupt); the request can be retried."""


class LabelTaken(Exception):
    """Another room holds this label (under the name key); ``args[0]`` is its label."""


class HeadMoved(Exception):
    """The log is no longer at the sequence number the append expected (someone appended first)."""


@dataclass(frozen=True, slots=True)
class MemberRecord:
    identity_key: bytes
    name: str
    admin: bool


@dataclass(frozen=True, slots=True)
class StoredRoom:
    room_id: bytes
    label: str
    creator: bytes
    open: bool
    head_seq: int
    head_hash: bytes
    members: int


class RoomStore(ABC):
    """Rooms, their logs and who is in them. Implementations are thread-safe."""

    @abstractmethod
    def create_room(
        self,
        *,
        room_id: bytes,
        label: str,
        label_key: str,
        creator: bytes,
        open: bool,
        entry: bytes,
        members: Sequence[MemberRecord],
    ) -> None:
        """Store a new room with its create entry; ``LabelTaken`` if ``label_key`` is in use."""

    @abstractmethod
    def append_entries(
        self,
        *,
        room_id: bytes,
        expected_seq: int,
        entries: Sequence[bytes],
        head_hash: bytes,
        open: bool,
        members: Sequence[MemberRecord],
    ) -> None:
        """Append ``entries`` after entry ``expected_seq`` and record the membership after them.

        All or nothing; ``HeadMoved`` if the stored head is not ``expected_seq``.
        """

    @abstractmethod
    def room(self, room_id: bytes) -> StoredRoom | None: ...

    @abstractmethod
    def room_by_label(self, label_key: str) -> StoredRoom | None: ...

    @abstractmethod
    def entries(self, room_id: bytes, from_seq: int, limit: int) -> list[bytes]:
        """Entries ``from_seq`` .. ``from_seq + limit - 1`` (fewer at the head), in order."""

    @abstractmethod
    def was_member(self, room_id: bytes, identity_key: bytes) -> bool:
        """Whether the identity is, or ever was, a member (it may read the log)."""

    @abstractmethod
    def rooms_of(self, identity_key: bytes, limit: int) -> list[StoredRoom]:
        """Rooms the identity is a member of now."""

    @abstractmethod
    def open_rooms(self, limit: int) -> list[StoredRoom]: ...

    @abstractmethod
    def rooms_created_by(self, identity_key: bytes) -> int: ...

    @abstractmethod
    def room_count(self) -> int: ...

    @abstractmethod
    def members(self, room_id: bytes) -> list[MemberRecord]:
        """Current members, as the verified log last recorded them."""

    @abstractmethod
    def close(self) -> None: ...
