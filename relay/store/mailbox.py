"""Mailboxes and prekeys: what the relay keeps for members who are away.

``MailboxStore`` and ``PrekeyStore`` are the interfaces the relay's handlers
use; ``SQLiteMailboxStore`` and ``SQLitePrekeyStore`` keep them as tables of
the relay's one SQLite database (``relay/store/sqlite.py``), so a later
Redis backend is a second implementation of the same two interfaces.

Everything stored is what clients sent: ciphertexts (prekey envelopes, never
a plaintext), public prekeys with their signatures, names and identity keys.
Bounds are enforced here, inside the same transaction as the write, so two
connections racing cannot both squeeze past them:

- a mailbox holds at most ``max_items`` items and ``max_bytes`` bytes, and at
  most ``max_per_sender`` items from one sender; an item that does not fit is
  refused with its reason, never made room for by dropping an older one;
- the last ``1 / RECEIPT_RESERVE_DIVISOR`` of a mailbox's items and bytes is
  for items labelled ``receipt`` (``MailboxLimits.caps``), so messages from a
  few identities cannot leave the owner's receipts nowhere to go;
- items older than ``ttl`` seconds are deleted unread;
- an identity stores at most ``MAX_STORED_ONE_TIME_PREKEYS`` one-time
  prekeys: a publish that would go past it is refused whole;
- a one-time prekey is selected and deleted in one transaction, so it is
  handed out once.
"""

from __future__ import annotations

import enum
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from susurro.crypto.prekeys import MAX_STORED_ONE_TIME_PREKEYS

from .base import StoreError

#: Defaults of the relay's flags (``--mailbox-messages``, ``--mailbox-bytes``,
#: ``--mailbox-per-sender``, ``--mailbox-days``).
DEFAULT_MAILBOX_ITEMS = 1_000
DEFAULT_MAILBOX_BYTES = 10 * 1024 * 1024
DEFAULT_MAILBOX_PER_SENDER = 250
DEFAULT_MAILBOX_DAYS = 14.0
#: ``--mailbox-prekeys-per-day``: one-time prekeys of one identity handed to one other identity a
#: UTC day (the rest of a drain gets the signed prekey alone, and its client says so).
DEFAULT_ONE_TIME_PER_FETCHER = 20
#: Clients refuse a waiting message signed more than 15 days ago (``stale_mail``: a day of clock
#: margin past this), so a relay keeping mail longer would only keep what nobody opens.
MAX_MAILBOX_DAYS = 14
#: The last twentieth of a mailbox (50 items and 512 KiB by default) takes only items labelled
#: ``receipt``: four identities filling a mailbox with messages (250 each) still leave its
#: owner's receipts room. The relay cannot check the label, so junk labelled ``receipt`` stays
#: under its own hourly share (relay/mailbox.py) and takes at most this small part.
RECEIPT_RESERVE_DIVISOR = 20
MAILBOX_SCHEMA = ("mailbox", 1)
#: Schema 2 finds prekeys by identity key (``prekey_names``); schema 1 found them by name. Schema 3
#: keeps each one-time prekey's signed expiry (the keys of before, signed without one, are dropped).
PREKEY_SCHEMA = ("prekeys", 3)


class DatabaseLike(Protocol):
    """What these stores need of the relay's database (``relay.store.sqlite.Database``)."""

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]: ...
    def reading(self) -> AbstractContextManager[sqlite3.Connection]: ...
    def migrate(self, module: str, version: int, statements: Sequence[str]) -> None: ...


class MailKind(enum.Enum):
    MESSAGE = "message"
    RECEIPT = "receipt"


class Refusal(enum.Enum):
    """Why an item was not stored; the value is what the sender's report says."""

    MAILBOX_FULL = "mailbox_full"
    SENDER_QUOTA = "sender_quota"
    NO_MAILBOX = "no_mailbox"


@dataclass(frozen=True, slots=True)
class MailboxLimits:
    max_items: int = DEFAULT_MAILBOX_ITEMS
    max_bytes: int = DEFAULT_MAILBOX_BYTES
    max_per_sender: int = DEFAULT_MAILBOX_PER_SENDER
    ttl: float = DEFAULT_MAILBOX_DAYS * 86_400
    #: Read by the relay's mailbox service (relay/mailbox.py), not by the stores.
    one_time_per_fetcher: int = DEFAULT_ONE_TIME_PER_FETCHER

    def caps(self, kind: MailKind) -> tuple[int, int]:
        """(items, bytes) a mailbox may hold once an item of ``kind`` is in: all of it for a receipt,
        less the receipts' reserve for a message."""
        if kind is MailKind.RECEIPT:
            return self.max_items, self.max_bytes
        return (
            self.max_items - self.max_items // RECEIPT_RESERVE_DIVISOR,
            self.max_bytes - self.max_bytes // RECEIPT_RESERVE_DIVISOR,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class MailItem:
    """One stored item. ``item`` orders a mailbox (it grows across all of them)."""

    item: int
    sender: str
    sender_key: bytes
    msg_id: str
    kind: MailKind
    ct: bytes
    stored_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Put:
    """One item to store: for ``recipient`` (an identity key), sealed by ``sender``."""

    recipient: bytes
    sender: str
    sender_key: bytes
    msg_id: str
    kind: MailKind
    ct: bytes


@dataclass(frozen=True, slots=True)
class Stored:
    item: int


@dataclass(frozen=True, slots=True)
class Refused:
    reason: Refusal


class MailboxStore(ABC):
    """Mailboxes per identity key. Implementations are thread-safe."""

    limits: MailboxLimits

    @abstractmethod
    def put(self, puts: Sequence[Put], now: float) -> list[Stored | Refused]:
        """Store each item if it fits its mailbox, in one transaction; one result per item, in order."""

    @abstractmethod
    def fetch(self, recipient: bytes, *, after: int, max_items: int, max_bytes: int, now: float) -> list[MailItem]:
        """The oldest items of ``recipient``'s mailbox after item ``after`` (at least one if any)."""

    @abstractmethod
    def confirm(self, recipient: bytes, items: Sequence[int]) -> int:
        """Delete ``items`` from ``recipient``'s mailbox (never anyone else's); returns how many."""

    @abstractmethod
    def usage(self, recipient: bytes) -> tuple[int, int]:
        """(items, bytes) in ``recipient``'s mailbox."""

    @abstractmethod
    def expire(self, now: float) -> int:
        """Delete items older than the limit's ``ttl``; returns how many."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredSignedPrekey:
    key_id: int
    public: bytes
    created_at: int
    signature: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredOneTimePrekey:
    key_id: int
    public: bytes
    #: Signed: from then on it is not handed out (and is deleted).
    expires_at: int
    signature: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredBundle:
    name: str
    identity_key: bytes
    signed: StoredSignedPrekey
    #: None when the identity has no one-time prekey left.
    one_time: StoredOneTimePrekey | None
    #: One-time prekeys left after this one was handed out.
    remaining: int


class TooManyPrekeys(Exception):
    """A publish would store more one-time prekeys than an identity may hold."""


class PrekeyStore(ABC):
    """Published prekeys, by identity key (a sender asks for the key it pinned, not for a name)."""

    @abstractmethod
    def publish(
        self,
        *,
        name: str,
        identity_key: bytes,
        signed: StoredSignedPrekey | None,
        one_time: Sequence[StoredOneTimePrekey],
        now: float,
    ) -> int:
        """Record prekeys published by ``identity_key`` (joined as ``name``); returns the one-time keys held.

        ``TooManyPrekeys`` (nothing stored) if the one-time keys would exceed
        the bound. ``name`` is only what bundles and mail for this identity
        are labelled with; two identities under one name each keep their own.
        """

    @abstractmethod
    def take_bundle(self, identity_key: bytes, one_time: bool = True, *, now: float) -> StoredBundle | None:
        """The signed prekey and (if ``one_time``) the one-time prekey that expires first, deleted in the
        same transaction; expired ones are deleted, never handed out."""

    @abstractmethod
    def mailbox_owner(self, identity_key: bytes) -> str | None:
        """The name ``identity_key`` last published prekeys under, if it has a signed prekey here (a mailbox)."""

    @abstractmethod
    def one_time_count(self, identity_key: bytes, *, now: float) -> int:
        """One-time prekeys held that have not expired at ``now``."""


_MAIL_TABLES = (
    """CREATE TABLE mail (
        item INTEGER PRIMARY KEY AUTOINCREMENT,
        recipient BLOB NOT NULL,
        sender TEXT NOT NULL,
        sender_key BLOB NOT NULL,
        msg_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        ct BLOB NOT NULL,
        stored_at REAL NOT NULL
    )""",
    "CREATE INDEX mail_by_recipient ON mail (recipient, item)",
    "CREATE INDEX mail_by_sender ON mail (recipient, sender_key)",
    "CREATE INDEX mail_by_age ON mail (stored_at)",
)

_PREKEY_TABLES = (
    # Schema 1's tables; "IF NOT EXISTS" so that the same list upgrades a schema 1 database.
    """CREATE TABLE IF NOT EXISTS prekey_owners (
        name_key TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        identity_key BLOB NOT NULL,
        updated_at REAL NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS prekey_owners_by_identity ON prekey_owners (identity_key)",
    """CREATE TABLE IF NOT EXISTS signed_prekeys (
        identity_key BLOB PRIMARY KEY,
        key_id INTEGER NOT NULL,
        public BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        signature BLOB NOT NULL
    )""",
    # Schema 3: one-time prekeys carry their signed expiry. Those of before were signed without
    # one, and no sender takes them any more: they go, and their owners publish new ones.
    "DROP TABLE IF EXISTS one_time_prekeys",
    """CREATE TABLE one_time_prekeys (
        identity_key BLOB NOT NULL,
        key_id INTEGER NOT NULL,
        public BLOB NOT NULL,
        expires_at INTEGER NOT NULL,
        signature BLOB NOT NULL,
        PRIMARY KEY (identity_key, key_id)
    ) WITHOUT ROWID""",
    "CREATE INDEX one_time_prekeys_by_expiry ON one_time_prekeys (identity_key, expires_at)",
    # Schema 2: the name each identity published under, found by key (schema 1's
    # prekey_owners, by name, is no longer written or read).
    "CREATE TABLE IF NOT EXISTS prekey_names (identity_key BLOB PRIMARY KEY, name TEXT NOT NULL) WITHOUT ROWID",
    "INSERT OR IGNORE INTO prekey_names SELECT identity_key, name FROM prekey_owners ORDER BY updated_at DESC",
)


def _wrap(exc: sqlite3.Error) -> StoreError:
    return StoreError(f"the relay database failed: {exc}")


class SQLiteMailboxStore(MailboxStore):
    def __init__(self, database: DatabaseLike, limits: MailboxLimits | None = None) -> None:
        self.database = database
        self.limits = limits or MailboxLimits()
        database.migrate(*MAILBOX_SCHEMA, _MAIL_TABLES)

    def put(self, puts: Sequence[Put], now: float) -> list[Stored | Refused]:
        limits = self.limits
        results: list[Stored | Refused] = []
        try:
            with self.database.transaction() as db:
                db.execute("DELETE FROM mail WHERE stored_at < ?", (now - limits.ttl,))
                for put in puts:
                    items, size = db.execute(
                        "SELECT count(*), coalesce(sum(length(ct)), 0) FROM mail WHERE recipient = ?",
                        (put.recipient,),
                    ).fetchone()
                    max_items, max_bytes = limits.caps(put.kind)
                    if items >= max_items or size + len(put.ct) > max_bytes:
                        results.append(Refused(Refusal.MAILBOX_FULL))
                        continue
                    (from_sender,) = db.execute(
                        "SELECT count(*) FROM mail WHERE recipient = ? AND sender_key = ?",
                        (put.recipient, put.sender_key),
                    ).fetchone()
                    if from_sender >= limits.max_per_sender:
                        results.append(Refused(Refusal.SENDER_QUOTA))
                        continue
                    cursor = db.execute(
                        "INSERT INTO mail (recipient, sender, sender_key, msg_id, kind, ct, stored_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (put.recipient, put.sender, put.sender_key, put.msg_id, put.kind.value, put.ct, now),
                    )
                    assert cursor.lastrowid is not None
                    results.append(Stored(cursor.lastrowid))
        except sqlite3.Error as exc:
            raise _wrap(exc) from None
        return results

    def fetch(self, recipient: bytes, *, after: int, max_items: int, max_bytes: int, now: float) -> list[MailItem]:
        try:
            with self.database.reading() as db:
                rows: Iterator[tuple[int, str, bytes, str, str, bytes, float]] = db.execute(
                    "SELECT item, sender, sender_key, msg_id, kind, ct, stored_at FROM mail "
                    "WHERE recipient = ? AND item > ? AND stored_at >= ? ORDER BY item LIMIT ?",
                    (recipient, after, now - self.limits.ttl, max_items),
                )
                out: list[MailItem] = []
                total = 0
                for item, sender, sender_key, msg_id, kind, ct, stored_at in rows:
                    if out and total + len(ct) > max_bytes:
                        break
                    total += len(ct)
                    out.append(
                        MailItem(
                            item=item,
                            sender=sender,
                            sender_key=sender_key,
                            msg_id=msg_id,
                            kind=MailKind(kind),
                            ct=ct,
                            stored_at=stored_at,
                        )
                    )
                return out
        except sqlite3.Error as exc:
            raise _wrap(exc) from None

    def confirm(self, recipient: bytes, items: Sequence[int]) -> int:
        try:
            with self.database.transaction() as db:
                deleted = 0
                for item in items:
                    deleted += db.execute(
                        "DELETE FROM mail WHERE item = ? AND recipient = ?", (item, recipient)
                    ).rowcount
                return deleted
        except sqlite3.Error as exc:
            raise _wrap(exc) from None

    def usage(self, recipient: bytes) -> tuple[int, int]:
        try:
            with self.database.reading() as db:
                items, size = db.execute(
                    "SELECT count(*), coalesce(sum(length(ct)), 0) FROM mail WHERE recipient = ?", (recipient,)
                ).fetchone()
                return int(items), int(size)
        except sqlite3.Error as exc:
            raise _wrap(exc) from None

    def expire(self, now: float) -> int:
        try:
            with self.database.transaction() as db:
                return int(db.execute("DELETE FROM mail WHERE stored_at < ?", (now - self.limits.ttl,)).rowcount)
        except sqlite3.Error as exc:
            raise _wrap(exc) from None


class SQLitePrekeyStore(PrekeyStore):
    def __init__(self, database: DatabaseLike, max_one_time: int = MAX_STORED_ONE_TIME_PREKEYS) -> None:
        self.database = database
        self.max_one_time = max_one_time
        database.migrate(*PREKEY_SCHEMA, _PREKEY_TABLES)

    def publish(
        self,
        *,
        name: str,
        identity_key: bytes,
        signed: StoredSignedPrekey | None,
        one_time: Sequence[StoredOneTimePrekey],
        now: float,
    ) -> int:
        try:
            with self.database.transaction() as db:
                _drop_expired(db, identity_key, now)
                (held,) = db.execute(
                    "SELECT count(*) FROM one_time_prekeys WHERE identity_key = ?", (identity_key,)
                ).fetchone()
                fresh = {key.key_id: key for key in one_time}
                already = {
                    key_id
                    for (key_id,) in db.execute(
                        "SELECT key_id FROM one_time_prekeys WHERE identity_key = ?", (identity_key,)
                    )
                    if key_id in fresh
                }
                if held + len(fresh) - len(already) > self.max_one_time:
                    raise TooManyPrekeys(
                        f"{held} one-time prekeys held and {len(fresh)} more published; at most {self.max_one_time}"
                    )
                db.execute("INSERT OR REPLACE INTO prekey_names VALUES (?, ?)", (identity_key, name))
                if signed is not None:
                    db.execute(
                        "INSERT OR REPLACE INTO signed_prekeys VALUES (?, ?, ?, ?, ?)",
                        (identity_key, signed.key_id, signed.public, signed.created_at, signed.signature),
                    )
                db.executemany(
                    "INSERT OR IGNORE INTO one_time_prekeys VALUES (?, ?, ?, ?, ?)",
                    [(identity_key, k.key_id, k.public, k.expires_at, k.signature) for k in fresh.values()],
                )
                _drop_expired(db, identity_key, now)  # one published already expired is not kept
                (count,) = db.execute(
                    "SELECT count(*) FROM one_time_prekeys WHERE identity_key = ?", (identity_key,)
                ).fetchone()
                return int(count)
        except sqlite3.Error as exc:
            raise _wrap(exc) from None

    def take_bundle(self, identity_key: bytes, one_time: bool = True, *, now: float) -> StoredBundle | None:
        try:
            with self.database.transaction() as db:
                _drop_expired(db, identity_key, now)
                owner = db.execute("SELECT name FROM prekey_names WHERE identity_key = ?", (identity_key,)).fetchone()
                if owner is None:
                    return None
                (name,) = owner
                signed_row = db.execute(
                    "SELECT key_id, public, created_at, signature FROM signed_prekeys WHERE identity_key = ?",
                    (identity_key,),
                ).fetchone()
                if signed_row is None:
                    return None
                # Oldest first, and deleted in this same (immediate, so
                # write-locked) transaction: no other fetch, from any
                # connection or process, can select it before it is gone.
                row = (
                    db.execute(
                        "SELECT key_id, public, expires_at, signature FROM one_time_prekeys WHERE identity_key = ? "
                        "ORDER BY expires_at, key_id LIMIT 1",
                        (identity_key,),
                    ).fetchone()
                    if one_time
                    else None
                )
                taken = None
                if row is not None:
                    db.execute(
                        "DELETE FROM one_time_prekeys WHERE identity_key = ? AND key_id = ?", (identity_key, row[0])
                    )
                    taken = StoredOneTimePrekey(key_id=row[0], public=row[1], expires_at=row[2], signature=row[3])
                (remaining,) = db.execute(
                    "SELECT count(*) FROM one_time_prekeys WHERE identity_key = ?", (identity_key,)
                ).fetchone()
                key_id, public, created_at, signature = signed_row
                return StoredBundle(
                    name=name,
                    identity_key=identity_key,
                    signed=StoredSignedPrekey(key_id=key_id, public=public, created_at=created_at, signature=signature),
                    one_time=taken,
                    remaining=int(remaining),
                )
        except sqlite3.Error as exc:
            raise _wrap(exc) from None

    def mailbox_owner(self, identity_key: bytes) -> str | None:
        try:
            with self.database.reading() as db:
                row = db.execute(
                    "SELECT n.name FROM prekey_names n JOIN signed_prekeys s USING (identity_key) "
                    "WHERE n.identity_key = ?",
                    (identity_key,),
                ).fetchone()
                return None if row is None else str(row[0])
        except sqlite3.Error as exc:
            raise _wrap(exc) from None

    def one_time_count(self, identity_key: bytes, *, now: float) -> int:
        try:
            with self.database.reading() as db:
                (count,) = db.execute(
                    "SELECT count(*) FROM one_time_prekeys WHERE identity_key = ? AND expires_at > ?",
                    (identity_key, now),
                ).fetchone()
                return int(count)
        except sqlite3.Error as exc:
            raise _wrap(exc) from None


def _drop_expired(db: sqlite3.Connection, identity_key: bytes, now: float) -> None:
    """A one-time prekey is not handed out from its signed expiry on (senders would refuse it)."""
    db.execute("DELETE FROM one_time_prekeys WHERE identity_key = ? AND expires_at <= ?", (identity_key, now))
