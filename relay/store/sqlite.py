"""SQLite storage for the relay: one file, ``relay.sqlite3``, under ``--data-dir``.

``Database`` is the file: one connection shared by the relay's threads
behind one lock (room changes are rare next to messages, which never touch
it), WAL journal, ``synchronous=FULL`` so an acknowledged room change
survives a power cut, and a ``schema_versions`` table so each part of the
relay (rooms here; mailboxes and prekeys later) creates and upgrades its own
tables. Without a data dir the database lives in memory and rooms last as
long as the process; the relay says so when it starts.

The file and its directory are created private (0600, 0700): it holds who
is in which room, which is metadata worth protecting, though never a message.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .base import HeadMoved, LabelTaken, MemberRecord, RoomStore, StoredRoom, StoreError

log = logging.getLogger("susurro.relay")

DATABASE_FILE = "relay.sqlite3"
#: Seconds a statement waits for another process holding the file (a second relay on one data dir).
BUSY_TIMEOUT = 5.0
ROOMS_SCHEMA = ("rooms", 1)


class Database:
    """One SQLite database, shared by the relay's stores."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        try:
            if path is None:
                target = ":memory:"
            else:
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                # Create it private before SQLite opens it with the process umask.
                os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
                target = str(path)
            self._connection = sqlite3.connect(
                target, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
            )
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute("PRAGMA synchronous=FULL")
            self._connection.execute(
                "CREATE TABLE IF NOT EXISTS schema_versions (module TEXT PRIMARY KEY, version INTEGER NOT NULL)"
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the relay database {path or ':memory:'}: {exc}") from None
        self._lock = threading.RLock()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run the block as one immediate transaction, under the lock; ``StoreError`` on failure."""
        with self._lock:
            try:
                self._connection.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"the relay database is unavailable: {exc}") from None
            try:
                yield self._connection
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            try:
                self._connection.execute("COMMIT")
            except sqlite3.Error as exc:
                self._connection.execute("ROLLBACK")
                raise StoreError(f"the relay database could not commit: {exc}") from None

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._connection

    def migrate(self, module: str, version: int, statements: Sequence[str]) -> None:
        """Create ``module``'s tables if this database has none at ``version``; refuse a newer schema."""
        try:
            with self.transaction() as db:
                row = db.execute("SELECT version FROM schema_versions WHERE module = ?", (module,)).fetchone()
                current = 0 if row is None else int(row[0])
                if current > version:
                    raise StoreError(
                        f"the relay database {self.path} holds {module} schema {current}; this relay knows {version}"
                    )
                if current < version:
                    for statement in statements:
                        db.execute(statement)
                    db.execute("INSERT OR REPLACE INTO schema_versions VALUES (?, ?)", (module, version))
        except sqlite3.Error as exc:
            raise StoreError(f"cannot prepare the relay database {self.path}: {exc}") from None

    def close(self) -> None:
        with self._lock:
            self._connection.close()


_ROOM_TABLES = (
    """CREATE TABLE rooms (
        room_id BLOB PRIMARY KEY,
        label TEXT NOT NULL,
        label_key TEXT NOT NULL UNIQUE,
        creator BLOB NOT NULL,
        open INTEGER NOT NULL,
        head_seq INTEGER NOT NULL,
        head_hash BLOB NOT NULL
    )""",
    "CREATE INDEX rooms_by_creator ON rooms (creator)",
    """CREATE TABLE room_entries (
        room_id BLOB NOT NULL,
        seq INTEGER NOT NULL,
        entry BLOB NOT NULL,
        PRIMARY KEY (room_id, seq)
    ) WITHOUT ROWID""",
    # One row per identity that was ever a member; ``current`` says whether it still is.
    """CREATE TABLE room_members (
        room_id BLOB NOT NULL,
        identity_key BLOB NOT NULL,
        name TEXT NOT NULL,
        admin INTEGER NOT NULL,
        current INTEGER NOT NULL,
        PRIMARY KEY (room_id, identity_key)
    ) WITHOUT ROWID""",
    "CREATE INDEX room_members_by_identity ON room_members (identity_key, current)",
)

_ROOM_COLUMNS = (
    "r.room_id, r.label, r.creator, r.open, r.head_seq, r.head_hash, "
    "(SELECT count(*) FROM room_members m WHERE m.room_id = r.room_id AND m.current = 1)"
)


def _room(row: tuple[Any, ...] | None) -> StoredRoom | None:
    if row is None:
        return None
    room_id, label, creator, is_open, head_seq, head_hash, members = row
    assert isinstance(room_id, bytes) and isinstance(label, str) and isinstance(creator, bytes)
    assert isinstance(head_seq, int) and isinstance(head_hash, bytes) and isinstance(members, int)
    return StoredRoom(room_id, label, creator, bool(is_open), head_seq, head_hash, members)


class SQLiteRoomStore(RoomStore):
    """``RoomStore`` in a ``Database``."""

    def __init__(self, database: Database) -> None:
        self.database = database
        database.migrate(*ROOMS_SCHEMA, _ROOM_TABLES)

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
        try:
            with self.database.transaction() as db:
                taken = db.execute("SELECT label FROM rooms WHERE label_key = ?", (label_key,)).fetchone()
                if taken is not None:
                    raise LabelTaken(taken[0])
                db.execute(
                    "INSERT INTO rooms VALUES (?, ?, ?, ?, ?, 0, ?)",
                    (room_id, label, label_key, creator, int(open), room_id),
                )
                db.execute("INSERT INTO room_entries VALUES (?, 0, ?)", (room_id, entry))
                self._record_members(db, room_id, members)
        except sqlite3.IntegrityError as exc:  # the same create entry twice: its id is taken
            raise LabelTaken(label) from exc
        except sqlite3.Error as exc:
            raise StoreError(f"cannot store room: {exc}") from None

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
        try:
            with self.database.transaction() as db:
                row = db.execute("SELECT head_seq FROM rooms WHERE room_id = ?", (room_id,)).fetchone()
                if row is None or row[0] != expected_seq:
                    raise HeadMoved(None if row is None else row[0])
                db.executemany(
                    "INSERT INTO room_entries VALUES (?, ?, ?)",
                    [(room_id, expected_seq + 1 + i, entry) for i, entry in enumerate(entries)],
                )
                db.execute(
                    "UPDATE rooms SET head_seq = ?, head_hash = ?, open = ? WHERE room_id = ?",
                    (expected_seq + len(entries), head_hash, int(open), room_id),
                )
                db.execute("UPDATE room_members SET current = 0, admin = 0 WHERE room_id = ?", (room_id,))
                self._record_members(db, room_id, members)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot store room entries: {exc}") from None

    @staticmethod
    def _record_members(db: sqlite3.Connection, room_id: bytes, members: Sequence[MemberRecord]) -> None:
        db.executemany(
            "INSERT INTO room_members VALUES (?, ?, ?, ?, 1) ON CONFLICT (room_id, identity_key) "
            "DO UPDATE SET name = excluded.name, admin = excluded.admin, current = 1",
            [(room_id, m.identity_key, m.name, int(m.admin)) for m in members],
        )

    def _query(self, sql: str, args: tuple[object, ...]) -> list[tuple[Any, ...]]:
        try:
            with self.database.reading() as db:
                return list(db.execute(sql, args).fetchall())
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read rooms: {exc}") from None

    def room(self, room_id: bytes) -> StoredRoom | None:
        rows = self._query(f"SELECT {_ROOM_COLUMNS} FROM rooms r WHERE r.room_id = ?", (room_id,))  # noqa: S608
        return _room(rows[0] if rows else None)

    def room_by_label(self, label_key: str) -> StoredRoom | None:
        rows = self._query(f"SELECT {_ROOM_COLUMNS} FROM rooms r WHERE r.label_key = ?", (label_key,))  # noqa: S608
        return _room(rows[0] if rows else None)

    def entries(self, room_id: bytes, from_seq: int, limit: int) -> list[bytes]:
        rows = self._query(
            "SELECT entry FROM room_entries WHERE room_id = ? AND seq >= ? ORDER BY seq LIMIT ?",
            (room_id, from_seq, limit),
        )
        return [bytes(row[0]) for row in rows]

    def was_member(self, room_id: bytes, identity_key: bytes) -> bool:
        rows = self._query("SELECT 1 FROM room_members WHERE room_id = ? AND identity_key = ?", (room_id, identity_key))
        return bool(rows)

    def rooms_of(self, identity_key: bytes, limit: int) -> list[StoredRoom]:
        rows = self._query(
            f"SELECT {_ROOM_COLUMNS} FROM rooms r JOIN room_members j ON j.room_id = r.room_id "  # noqa: S608
            "WHERE j.identity_key = ? AND j.current = 1 ORDER BY r.label_key LIMIT ?",
            (identity_key, limit),
        )
        return [room for row in rows if (room := _room(row)) is not None]

    def open_rooms(self, limit: int) -> list[StoredRoom]:
        rows = self._query(
            f"SELECT {_ROOM_COLUMNS} FROM rooms r WHERE r.open = 1 ORDER BY r.label_key LIMIT ?",  # noqa: S608
            (limit,),
        )
        return [room for row in rows if (room := _room(row)) is not None]

    def rooms_created_by(self, identity_key: bytes) -> int:
        rows = self._query("SELECT count(*) FROM rooms WHERE creator = ?", (identity_key,))
        return int(rows[0][0])

    def room_count(self) -> int:
        rows = self._query("SELECT count(*) FROM rooms", ())
        return int(rows[0][0])

    def members(self, room_id: bytes) -> list[MemberRecord]:
        rows = self._query(
            "SELECT identity_key, name, admin FROM room_members WHERE room_id = ? AND current = 1", (room_id,)
        )
        return [MemberRecord(bytes(ik), str(name), bool(admin)) for ik, name, admin in rows]

    def close(self) -> None:
        self.database.close()


def open_room_store(data_dir: str | None) -> SQLiteRoomStore:
    """The room store under ``data_dir`` (``DATABASE_FILE`` in it), or in memory for ``None``."""
    path = None if data_dir is None else Path(data_dir) / DATABASE_FILE
    store = SQLiteRoomStore(Database(path))
    if path is None:
        log.info("rooms store=memory (no --data-dir: rooms last until the relay stops)")
    else:
        log.info("rooms store=%s rooms=%d", path, store.room_count())
    return store
