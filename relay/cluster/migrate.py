"""Moving a one-process relay's data into a cluster: ``susurro-relay --cluster URL --import-sqlite DIR``.

A relay that ran with ``--data-dir DIR`` kept its rooms (their signed
membership logs), published prekeys and waiting mail in ``DIR/relay.sqlite3``;
a clustered relay keeps them in Redis. ``copy`` reads the SQLite file and
writes everything through the Redis stores' own interfaces, as the relay
would have:

- each room is verified (``crypto.membership``, as the relay verifies every
  entry it stores) and written entry by entry, so the Redis store records
  who was ever a member (a removed member still reads up to its removal);
  a log that does not verify is left out and named;
- prekeys are published under the name and identity key they were published with;
- each mail item is stored in its mailbox in order, with the time it was
  first stored (it expires when it would have), within the cluster's bounds.

Copying twice would store mail twice, so ``copy`` refuses a Redis that
already holds rooms, mailboxes or prekeys. Nothing is deleted from the
SQLite file. Run it with the single relay stopped (its file does not change
meanwhile) and before the cluster's relays take members.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import redis

from susurro.crypto import LogRules, RoomLogError, RoomPolicy, RoomState, short_room_id, verify_log
from susurro.protocol import name_key

from ..config import RelayConfig
from ..mailbox import mailbox_limits
from ..rooms import member_records, valid_name
from ..store.base import LabelTaken, RoomStore, StoreError
from ..store.mailbox import (
    MailboxStore,
    MailKind,
    PrekeyStore,
    Put,
    Stored,
    StoredOneTimePrekey,
    StoredSignedPrekey,
    TooManyPrekeys,
)
from ..store.redis import RedisRoomStore
from ..store.redis_mailbox import RedisMailboxStore, RedisPrekeyStore
from ..store.sqlite import DATABASE_FILE
from .connect import open_redis, read_password

#: The widest logs any relay's flags allow (``--max-room-members``, ``--max-room-entries``): a log
#: a relay stored under its own limits verifies here whatever they were.
_RULES = LogRules(max_members=1024, max_entries=100_000, name_key=name_key, name_ok=valid_name)
#: Key patterns that mean the cluster's Redis already holds stored data (presence and names do not count).
_STORED = ("room:*", "mbox:*", "prekey:*")


class SQLiteImportError(StoreError):
    """The import cannot start or go on; the message says why and what to do."""


@dataclass
class Copied:
    """What ``copy`` moved, and what it left out with why."""

    rooms: int = 0
    entries: int = 0
    prekey_owners: int = 0
    one_time_prekeys: int = 0
    mail: int = 0
    left_out: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"copied {self.rooms} rooms ({self.entries} log entries), prekeys of {self.prekey_owners} identities "
            f"({self.one_time_prekeys} one-time), {self.mail} mail items; left out: {len(self.left_out)}"
        )


def open_source(data_dir: str) -> sqlite3.Connection:
    """``DIR/relay.sqlite3``, read-only; ``SQLiteImportError`` if it is not there."""
    path = Path(data_dir) / DATABASE_FILE
    if not path.is_file():
        raise SQLiteImportError(f"--import-sqlite: no relay database at {path} (give the relay's --data-dir)")
    try:
        return sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise SQLiteImportError(f"--import-sqlite: cannot open {path}: {exc}") from None


def check_empty(client: redis.Redis, prefix: str = "susurro:") -> None:
    """``SQLiteImportError`` if the cluster's Redis already holds rooms, mailboxes or prekeys."""
    try:
        for pattern in _STORED:
            for _ in client.scan_iter(match=f"{prefix}{pattern}", count=1000):
                raise SQLiteImportError(
                    "--import-sqlite: the cluster's Redis already holds rooms, mailboxes or prekeys; "
                    "import into an empty one (copying twice would store every waiting message twice)"
                )
    except redis.RedisError as exc:
        raise SQLiteImportError(f"--import-sqlite: Redis: {exc}") from None


def copy(
    source: sqlite3.Connection,
    rooms: RoomStore,
    mailboxes: MailboxStore,
    prekeys: PrekeyStore,
    *,
    clock: Callable[[], float] = time.time,
) -> Copied:
    """Everything in ``source`` into the three stores (the cluster's Redis ones); see the module's docstring."""
    copied = Copied()
    try:
        with closing(source.cursor()) as cursor:
            # A database from before mailboxes (or one never given prekeys) lacks their tables.
            tables = {row[0] for row in cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "rooms" in tables:
                _copy_rooms(cursor, rooms, copied)
            if {"prekey_names", "signed_prekeys", "one_time_prekeys"} <= tables:
                _copy_prekeys(cursor, prekeys, clock(), copied)
            if "mail" in tables:
                _copy_mail(cursor, mailboxes, copied)
    except sqlite3.Error as exc:
        raise SQLiteImportError(f"--import-sqlite: reading the relay database: {exc}") from None
    return copied


def _copy_rooms(cursor: sqlite3.Cursor, rooms: RoomStore, copied: Copied) -> None:
    for (room_id,) in cursor.execute("SELECT room_id FROM rooms ORDER BY room_id").fetchall():
        entries = [
            row[0]
            for row in cursor.execute("SELECT entry FROM room_entries WHERE room_id = ? ORDER BY seq", (room_id,))
        ]
        try:
            state = verify_log(entries[:1], _RULES)
            states = [state]
            for entry in entries[1:]:
                states.append(states[-1].extend([entry]))
        except RoomLogError as exc:
            copied.left_out.append(f"room {short_room_id(room_id)}: its log does not verify ({exc.detail})")
            continue
        if state.room_id != room_id:
            copied.left_out.append(f"room {short_room_id(room_id)}: stored under another id than its log's")
            continue
        try:
            rooms.create_room(
                room_id=state.room_id,
                label=state.label,
                label_key=name_key(state.label),
                creator=state.creator,
                open=state.policy is RoomPolicy.OPEN,
                entry=entries[0],
                members=member_records(state),
            )
        except LabelTaken:
            copied.left_out.append(f"room {state.short_id}: its label {state.label!r} is taken in the cluster")
            continue
        _append_one_by_one(rooms, entries, states)
        copied.rooms += 1
        copied.entries += len(entries)


def _append_one_by_one(rooms: RoomStore, entries: list[bytes], states: list[RoomState]) -> None:
    # One append per entry, each with the membership after it, as the relay stored them: the store
    # records everyone who was ever a member, so a member removed along the way keeps reading its removal.
    for seq in range(1, len(entries)):
        after = states[seq]
        rooms.append_entries(
            room_id=after.room_id,
            expected_seq=seq - 1,
            entries=[entries[seq]],
            head_hash=after.head.hash,
            open=after.policy is RoomPolicy.OPEN,
            members=member_records(after),
        )


def _copy_prekeys(cursor: sqlite3.Cursor, prekeys: PrekeyStore, now: float, copied: Copied) -> None:
    for identity_key, name in cursor.execute(
        "SELECT identity_key, name FROM prekey_names ORDER BY identity_key"
    ).fetchall():
        row = cursor.execute(
            "SELECT key_id, public, created_at, signature FROM signed_prekeys WHERE identity_key = ?", (identity_key,)
        ).fetchone()
        signed = (
            None
            if row is None
            else StoredSignedPrekey(key_id=row[0], public=row[1], created_at=row[2], signature=row[3])
        )
        # One-time prekeys signed with their expiry (prekeys schema 3); those of before carry none, no
        # sender takes them now, and their owners publish new ones when told they hold none.
        one_time = (
            [
                StoredOneTimePrekey(key_id=key_id, public=public, expires_at=expires_at, signature=signature)
                for key_id, public, expires_at, signature in cursor.execute(
                    "SELECT key_id, public, expires_at, signature FROM one_time_prekeys "
                    "WHERE identity_key = ? AND expires_at > ? ORDER BY key_id",
                    (identity_key, now),
                )
            ]
            if "expires_at" in _columns(cursor, "one_time_prekeys")
            else []
        )
        try:
            prekeys.publish(name=name, identity_key=identity_key, signed=signed, one_time=one_time, now=now)
        except TooManyPrekeys:
            copied.left_out.append(f"prekeys of {name}: more one-time keys than the cluster holds per identity")
            continue
        copied.prekey_owners += 1
        copied.one_time_prekeys += len(one_time)


def _columns(cursor: sqlite3.Cursor, table: str) -> set[str]:
    return {row[1] for row in cursor.execute(f"PRAGMA table_info({table})")}


def _copy_mail(cursor: sqlite3.Cursor, mailboxes: MailboxStore, copied: Copied) -> None:
    rows = cursor.execute("SELECT recipient, sender, sender_key, msg_id, kind, ct, stored_at FROM mail ORDER BY item")
    for recipient, sender, sender_key, msg_id, kind, ct, stored_at in rows.fetchall():
        put = Put(recipient=recipient, sender=sender, sender_key=sender_key, msg_id=msg_id, kind=MailKind(kind), ct=ct)
        (result,) = mailboxes.put([put], stored_at)  # its first time: it expires when it would have
        if isinstance(result, Stored):
            copied.mail += 1
        else:
            copied.left_out.append(f"mail item {msg_id} for {recipient.hex()[:16]}: {result.reason.value}")


def import_sqlite(data_dir: str, url: str, password_file: str | None, config: RelayConfig) -> Copied:
    """``--import-sqlite DIR`` with ``--cluster URL``: DIR's relay database into that Redis, within
    ``config``'s mailbox bounds. Raises ``SQLiteImportError`` or ``ClusterConfigError`` with what to fix."""
    client = open_redis(url, read_password(password_file))
    check_empty(client)
    with closing(open_source(data_dir)) as source:
        return copy(
            source,
            RedisRoomStore(client),
            RedisMailboxStore(client, mailbox_limits(config)),
            RedisPrekeyStore(client),
        )
