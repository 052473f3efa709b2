"""The user's own message history, on their own disk, sealed at rest.

One SQLite file per identity under ``$SUSURRO_HOME/history/`` (mode 0600, in
a 0700 directory). Each row holds a message sealed with SecretBox under the
history key (``crypto/history.py``: derived from the identity key, so it is
protected exactly as the identity key is); conversations and message ids are
kept only as keyed hashes, so the file names nobody and says nothing. Bounded
per conversation (the oldest rows go first), read in pages newest first, and
``forget`` deletes one conversation with ``secure_delete`` on, so the freed
pages are zeroed. ``NoHistory`` keeps nothing (``--no-history``).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from susurro.crypto.errors import CryptoError
from susurro.crypto.history import HistoryKey, HistoryRecord
from susurro.crypto.replay import ReplayGuard

from . import seen_store

#: Newest messages kept per conversation (a bound on the file, not a retention policy); older ones are deleted.
MAX_HISTORY_PER_CONVERSATION = 100_000
#: Sealed rows kept in all, client-wide (bytes): anyone may write to us, in as many conversations as
#: they like, so past this the oldest rows of any conversation go (down to nine tenths of it).
MAX_HISTORY_BYTES = 1 << 30
#: What ``/history`` and a view's first screen show, and the largest page one call reads.
DEFAULT_PAGE = 50
MAX_PAGE = 1_000
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    label BLOB PRIMARY KEY,
    box   BLOB NOT NULL,
    count INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS messages (
    seq   INTEGER PRIMARY KEY AUTOINCREMENT,
    conv  BLOB NOT NULL,
    msg   BLOB NOT NULL,
    box   BLOB NOT NULL,
    UNIQUE (conv, msg)
);
CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages (conv, seq);
"""


def history_conversation(
    direct: bool, sender: str, to: tuple[str, ...], own_name: str, room_id: bytes | None = None
) -> str:
    """The conversation a message is kept under: ``room:main`` (the relay-wide room), ``room:`` and a
    room's id in hex (never its label, which another room could take), or ``dm:`` and the other people."""
    if room_id is not None:
        return f"room:{room_id.hex()}"
    if not direct:
        return "room:main"
    others = sorted({*to, sender} - {own_name}, key=str.casefold)
    return "dm:" + ",".join(others)


class HistoryError(Exception):
    """The history file cannot be used (permissions, not ours, damaged)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryEntry:
    """A stored message and its position (``seq`` grows with every message stored)."""

    seq: int
    record: HistoryRecord


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryPage:
    """Up to ``limit`` entries, oldest first; ``older`` is whether more lie before them."""

    entries: tuple[HistoryEntry, ...]
    older: bool
    #: Rows that did not open (damaged or moved): counted, never shown.
    refused: int = 0


class History(Protocol):
    def add(self, record: HistoryRecord) -> bool: ...
    def add_many(self, records: Iterable[HistoryRecord]) -> int: ...
    def page(self, conversation: str, before: int | None = None, limit: int = DEFAULT_PAGE) -> HistoryPage: ...
    def forget(self, conversation: str) -> int: ...
    def conversations(self) -> list[str]: ...
    def count(self, conversation: str) -> int: ...
    def close(self) -> None: ...


class NoHistory:
    """``--no-history``: nothing is written anywhere."""

    def add(self, record: HistoryRecord) -> bool:
        return True

    def add_many(self, records: Iterable[HistoryRecord]) -> int:
        return sum(1 for _ in records)

    def page(self, conversation: str, before: int | None = None, limit: int = DEFAULT_PAGE) -> HistoryPage:
        return HistoryPage(entries=(), older=False)

    def forget(self, conversation: str) -> int:
        return 0

    def conversations(self) -> list[str]:
        return []

    def count(self, conversation: str) -> int:
        return 0

    def close(self) -> None:
        pass


def _prepare_file(path: Path) -> None:
    """Create ``path`` 0600 in a 0700 directory, or refuse one others can read or that is not ours."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | _NOFOLLOW, 0o600)
    except OSError as exc:
        raise HistoryError(f"cannot open history file {path}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
    finally:
        os.close(fd)
    if os.name == "posix":
        if info.st_uid != os.getuid():
            raise HistoryError(f"{path} belongs to another user; refusing to use it as your history")
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise HistoryError(f"{path} is readable by other users; run 'chmod 600 {path}'")
    if not stat.S_ISREG(info.st_mode):
        raise HistoryError(f"{path} is not a regular file")


class SqliteHistory:
    """The history of one identity in one SQLite file. Not thread-safe: one owner thread."""

    def __init__(
        self,
        path: Path,
        key: HistoryKey,
        max_per_conversation: int = MAX_HISTORY_PER_CONVERSATION,
        max_bytes: int = MAX_HISTORY_BYTES,
    ) -> None:
        self.path = Path(path)
        self._key = key
        self._max = max_per_conversation
        self._max_bytes = max_bytes
        _prepare_file(self.path)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA secure_delete = ON")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.executescript(_SCHEMA + seen_store.SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise HistoryError(f"{self.path} is not a usable history file: {exc}") from None
        #: The ids of messages accepted, written with the messages (``seen_store``).
        self._seen = seen_store.SeenRows(key)
        #: The sealed rows' bytes, counted once here and then as rows come and go.
        self._bytes = int(self._db.execute("SELECT coalesce(sum(length(box)), 0) FROM messages").fetchone()[0])

    def keep_seen(self, guard: ReplayGuard) -> None:
        """``guard`` starts from the ids this file kept and keeps every id it accepts here from now on."""
        guard.keep_seen_in(self._seen, self._seen.load(self._db))

    def _conversation_label(self, conversation: str) -> bytes:
        return self._key.label("conversation", conversation)

    def add(self, record: HistoryRecord) -> bool:
        """Store one message; False if it was already stored (same conversation and id)."""
        return self.add_many([record]) == 1

    def add_many(self, records: Iterable[HistoryRecord]) -> int:
        """Store messages in one transaction; returns how many were new."""
        added: dict[bytes, int] = {}
        boxes: dict[bytes, bytes] = {}
        db = self._db
        counted = self._bytes
        db.execute("BEGIN IMMEDIATE")
        try:
            for record in records:
                conv = self._conversation_label(record.conversation)
                sealed = self._key.seal(record)
                cursor = db.execute(
                    "INSERT OR IGNORE INTO messages (conv, msg, box) VALUES (?, ?, ?)",
                    (conv, self._key.label("message", record.msg_id), sealed),
                )
                if cursor.rowcount:
                    self._bytes += len(sealed)
                    added[conv] = added.get(conv, 0) + 1
                    if conv not in boxes:
                        boxes[conv] = self._key.seal(
                            HistoryRecord(
                                conversation=record.conversation, msg_id="", sender="", sent_at=0, outgoing=False,
                                body="",
                            )
                        )  # fmt: skip
            for conv, count in added.items():
                db.execute(
                    "INSERT INTO conversations (label, box, count) VALUES (?, ?, ?) "
                    "ON CONFLICT (label) DO UPDATE SET count = count + excluded.count",
                    (conv, boxes[conv], count),
                )
                self._trim(conv)
            if self._bytes > self._max_bytes:
                self._trim_oldest()
            self._seen.write(db)  # the ids with their messages: never one without the other
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            self._bytes = counted
            raise
        self._seen.committed()
        return sum(added.values())

    def _trim(self, conv: bytes) -> None:
        (count,) = self._db.execute("SELECT count FROM conversations WHERE label = ?", (conv,)).fetchone()
        excess = count - self._max
        if excess > 0:
            (freed,) = self._db.execute(
                "SELECT coalesce(sum(length(box)), 0) FROM messages WHERE seq IN "
                "(SELECT seq FROM messages WHERE conv = ? ORDER BY seq LIMIT ?)",
                (conv, excess),
            ).fetchone()
            self._db.execute(
                "DELETE FROM messages WHERE seq IN (SELECT seq FROM messages WHERE conv = ? ORDER BY seq LIMIT ?)",
                (conv, excess),
            )
            self._db.execute("UPDATE conversations SET count = ? WHERE label = ?", (self._max, conv))
            self._bytes -= int(freed)

    def _trim_oldest(self) -> None:
        """Delete the oldest rows of any conversation until the history holds nine tenths of its bytes."""
        excess, freed, cutoff = self._bytes - self._max_bytes * 9 // 10, 0, 0
        for seq, size in self._db.execute("SELECT seq, length(box) FROM messages ORDER BY seq"):
            freed, cutoff = freed + int(size), int(seq)
            if freed >= excess:
                break
        gone = self._db.execute("SELECT conv, count(*) FROM messages WHERE seq <= ? GROUP BY conv", (cutoff,))
        for conv, count in gone.fetchall():
            self._db.execute("UPDATE conversations SET count = count - ? WHERE label = ?", (count, conv))
        self._db.execute("DELETE FROM messages WHERE seq <= ?", (cutoff,))
        self._db.execute("DELETE FROM conversations WHERE count <= 0")
        self._bytes -= freed

    def page(self, conversation: str, before: int | None = None, limit: int = DEFAULT_PAGE) -> HistoryPage:
        """The ``limit`` newest messages stored before ``seq`` ``before`` (all, if None), oldest first."""
        limit = max(1, min(limit, MAX_PAGE))
        conv = self._conversation_label(conversation)
        bound = before if before is not None else 2**63 - 1
        rows = self._db.execute(
            "SELECT seq, box FROM messages WHERE conv = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
            (conv, bound, limit + 1),
        ).fetchall()
        older = len(rows) > limit
        entries: list[HistoryEntry] = []
        refused = 0
        for seq, box in reversed(rows[:limit]):
            try:
                entries.append(HistoryEntry(seq=seq, record=self._key.open(box, conversation)))
            except CryptoError:
                refused += 1
        return HistoryPage(entries=tuple(entries), older=older, refused=refused)

    def forget(self, conversation: str) -> int:
        """Delete every message of one conversation; returns how many."""
        conv = self._conversation_label(conversation)
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            deleted = db.execute("DELETE FROM messages WHERE conv = ?", (conv,)).rowcount
            db.execute("DELETE FROM conversations WHERE label = ?", (conv,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        # Push the zeroed pages out of the write-ahead log into the file, so
        # the deleted ciphertext does not linger in the -wal file either.
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return int(deleted)

    def conversations(self) -> list[str]:
        """The conversations with stored messages (their names are sealed in the index)."""
        names = []
        for (box,) in self._db.execute("SELECT box FROM conversations"):
            try:
                names.append(self._key.open(box, None).conversation)
            except CryptoError:
                continue
        return sorted(names)

    def count(self, conversation: str) -> int:
        row = self._db.execute(
            "SELECT count FROM conversations WHERE label = ?", (self._conversation_label(conversation),)
        ).fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):  # ids accepted since the last message stored (resends)
            self._db.execute("BEGIN IMMEDIATE")
            self._seen.write(self._db)
            self._db.execute("COMMIT")
            self._seen.committed()
        self._db.close()


def history_opens_under(path: Path, key: HistoryKey) -> bool:
    """Whether the history file at ``path`` is ``key``'s: empty, or one of its conversations opens.

    Leaves the file whole on its own (its write-ahead log folded in), so it can be moved.
    """
    try:
        db = sqlite3.connect(path, isolation_level=None)
        try:
            boxes = [box for (box,) in db.execute("SELECT box FROM conversations")]
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            db.close()
    except sqlite3.DatabaseError:
        return False  # not a history file (or not one of ours): never moved
    if not boxes:
        return True
    for box in boxes:
        try:
            key.open(box, None)
        except CryptoError:
            continue
        return True
    return False
