"""The relay's durable state behind one small interface.

``base`` defines what the routing core may ask of storage; ``sqlite`` keeps it
in one SQLite file under ``--data-dir`` (or in memory without one). Other
parts (mailboxes, prekeys) add their own tables to the same ``Database``;
another backend (Redis, for a cluster) implements the same interfaces:
``redis`` (rooms) and ``redis_mailbox`` (mailboxes, prekeys), imported by
name only when the relay is clustered, since they need the ``redis`` package.
"""

from .base import HeadMoved, LabelTaken, MemberRecord, RoomStore, StoredRoom, StoreError
from .sqlite import DATABASE_FILE, Database, SQLiteRoomStore, open_room_store

__all__ = [
    "DATABASE_FILE",
    "Database",
    "HeadMoved",
    "LabelTaken",
    "MemberRecord",
    "RoomStore",
    "SQLiteRoomStore",
    "StoreError",
    "StoredRoom",
    "open_room_store",
]
