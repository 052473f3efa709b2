"""Redis storage for the relay (``--cluster``): the ``RoomStore`` interface, shared by every node.

The same semantics as ``sqlite.py``, held to one contract suite
(``tests/cluster/test_room_store_contract.py``): a label key is claimed by
one room only, even when two nodes create at the same instant; an append
lands only on the head it expected (``HeadMoved`` otherwise), all or
nothing. Both are optimistic transactions: ``WATCH`` the keys the decision
reads, check, then ``MULTI``/``EXEC`` the writes; if another node wrote a
watched key in between, ``EXEC`` does nothing and we decide again on what is
stored now. A transaction touches only keys computed before it, so the
layout also suits a Redis that checks declared keys.

Keys, under a prefix (``susurro:`` unless the operator shares one Redis
between relays):

- ``room:<id hex>``: hash of label, label key, creator, open, head seq and hash
- ``room:<id hex>:log``: list of entries, index = sequence number
- ``room:<id hex>:members``: hash identity key → admin flag byte + name (current members)
- ``room:<id hex>:ever``: set of identity keys that were ever members (they may read the log)
- ``label:<label key>``: the room id holding that label key
- ``rooms``: set of room ids; ``rooms:open``: label keys of open rooms (sorted set, by bytes)
- ``ik:<hex>:rooms``: label keys of the rooms an identity is in now; ``ik:<hex>:created``: room ids it created

Like the SQLite file, this is metadata (labels, names, identity keys, signed
log entries), never a message.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import redis

from .base import HeadMoved, LabelTaken, MemberRecord, RoomStore, StoredRoom, StoreError

DEFAULT_PREFIX = "susurro:"
#: How often a write decides again after another node changed what it read.
#: Each retry means someone else's write succeeded, so this bounds time, not correctness.
MAX_TRANSACTION_ATTEMPTS = 32

T = TypeVar("T")


class RedisRoomStore(RoomStore):
    """``RoomStore`` in Redis. Thread-safe: each call takes its own connection from the client's pool."""

    def __init__(self, client: redis.Redis, prefix: str = DEFAULT_PREFIX) -> None:
        self.client = client
        self.prefix = prefix.encode()

    # --- keys -------------------------------------------------------------------------

    def _key(self, *parts: str) -> bytes:
        return self.prefix + ":".join(parts).encode()

    def _room_key(self, room_id: bytes, part: str = "") -> bytes:
        return self._key("room", room_id.hex(), part) if part else self._key("room", room_id.hex())

    def _label_key(self, label_key: str) -> bytes:
        return self._key("label", label_key)

    def _ik_key(self, identity_key: bytes, part: str) -> bytes:
        return self._key("ik", identity_key.hex(), part)

    # --- writes -----------------------------------------------------------------------

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
        room_key, claim = self._room_key(room_id), self._label_key(label_key)

        def attempt(pipe: redis.client.Pipeline) -> None:
            pipe.watch(claim, room_key)
            holder = pipe.get(claim)
            if holder is not None:
                raise LabelTaken(_text(pipe.hget(self._room_key(holder), "label")) or label)
            if pipe.exists(room_key):  # the same create entry twice: its id is taken
                raise LabelTaken(label)
            pipe.multi()
            pipe.set(claim, room_id)
            pipe.hset(
                room_key,
                mapping={
                    "label": label.encode(),
                    "label_key": label_key.encode(),
                    "creator": creator,
                    "open": b"1" if open else b"0",
                    "head_seq": b"0",
                    "head_hash": room_id,
                },
            )
            pipe.rpush(self._room_key(room_id, "log"), entry)
            pipe.sadd(self._key("rooms"), room_id)
            pipe.sadd(self._ik_key(creator, "created"), room_id)
            if open:
                pipe.zadd(self._key("rooms:open"), {label_key.encode(): 0})
            self._record_members(pipe, room_id, label_key, old=(), new=members)
            pipe.execute()

        self._transaction(attempt, "cannot store room")

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
        room_key = self._room_key(room_id)

        def attempt(pipe: redis.client.Pipeline) -> None:
            # Every append rewrites the room's hash, so watching it catches any append in between.
            pipe.watch(room_key)
            head, label_key = pipe.hmget(room_key, ["head_seq", "label_key"])
            if head is None or label_key is None or int(head) != expected_seq:
                raise HeadMoved(None if head is None else int(head))
            old = pipe.hkeys(self._room_key(room_id, "members"))
            pipe.multi()
            if entries:
                pipe.rpush(self._room_key(room_id, "log"), *entries)
            pipe.hset(
                room_key,
                mapping={
                    "head_seq": str(expected_seq + len(entries)).encode(),
                    "head_hash": head_hash,
                    "open": b"1" if open else b"0",
                },
            )
            if open:
                pipe.zadd(self._key("rooms:open"), {label_key: 0})
            else:
                pipe.zrem(self._key("rooms:open"), label_key)
            self._record_members(pipe, room_id, label_key.decode(), old=old, new=members)
            pipe.execute()

        self._transaction(attempt, "cannot store room entries")

    def _record_members(
        self,
        pipe: redis.client.Pipeline,
        room_id: bytes,
        label_key: str,
        *,
        old: Sequence[bytes],
        new: Sequence[MemberRecord],
    ) -> None:
        """Queue: the current members become ``new``; everyone in ``new`` was ever a member."""
        members_key = self._room_key(room_id, "members")
        pipe.delete(members_key)
        if new:
            pipe.hset(members_key, mapping={m.identity_key: _member_value(m) for m in new})
            pipe.sadd(self._room_key(room_id, "ever"), *(m.identity_key for m in new))
        staying = {m.identity_key for m in new}
        for identity_key in old:
            if identity_key not in staying:
                pipe.zrem(self._ik_key(identity_key, "rooms"), label_key.encode())
        for member in new:
            pipe.zadd(self._ik_key(member.identity_key, "rooms"), {label_key.encode(): 0})

    def _transaction(self, attempt: Callable[[redis.client.Pipeline], None], what: str) -> None:
        try:
            for _ in range(MAX_TRANSACTION_ATTEMPTS):
                with self.client.pipeline(transaction=True) as pipe:
                    try:
                        attempt(pipe)
                        return
                    except redis.WatchError:
                        continue  # another node wrote what we read: decide again
            raise StoreError(f"{what}: {MAX_TRANSACTION_ATTEMPTS} attempts lost to concurrent writers")
        except redis.RedisError as exc:
            raise StoreError(f"{what}: Redis: {exc}") from None

    # --- reads ------------------------------------------------------------------------

    def _read(self, what: Callable[[], T]) -> T:
        try:
            return what()
        except redis.RedisError as exc:
            raise StoreError(f"cannot read rooms: Redis: {exc}") from None

    def _rooms(self, room_ids: Sequence[bytes]) -> list[StoredRoom]:
        """The rooms with these ids, in this order (ids no longer stored are skipped)."""
        with self.client.pipeline(transaction=True) as pipe:  # one consistent snapshot of each room
            for room_id in room_ids:
                pipe.hmget(self._room_key(room_id), ["label", "creator", "open", "head_seq", "head_hash"])
                pipe.hlen(self._room_key(room_id, "members"))
            replies = pipe.execute()
        rooms = []
        for room_id, fields, members in zip(room_ids, replies[::2], replies[1::2], strict=True):
            label, creator, is_open, head_seq, head_hash = fields
            if label is None or creator is None or head_seq is None or head_hash is None:
                continue
            rooms.append(
                StoredRoom(room_id, label.decode(), creator, is_open == b"1", int(head_seq), head_hash, members)
            )
        return rooms

    def _rooms_by_label_keys(self, label_keys: Sequence[bytes]) -> list[StoredRoom]:
        if not label_keys:
            return []
        room_ids = self.client.mget([self._label_key(key.decode()) for key in label_keys])
        return self._rooms([room_id for room_id in room_ids if room_id is not None])

    def room(self, room_id: bytes) -> StoredRoom | None:
        rooms = self._read(lambda: self._rooms([room_id]))
        return rooms[0] if rooms else None

    def room_by_label(self, label_key: str) -> StoredRoom | None:
        rooms = self._read(lambda: self._rooms_by_label_keys([label_key.encode()]))
        return rooms[0] if rooms else None

    def entries(self, room_id: bytes, from_seq: int, limit: int) -> list[bytes]:
        if limit <= 0:
            return []
        start = max(from_seq, 0)  # a negative LRANGE index would count from the head
        return self._read(lambda: list(self.client.lrange(self._room_key(room_id, "log"), start, start + limit - 1)))

    def was_member(self, room_id: bytes, identity_key: bytes) -> bool:
        return self._read(lambda: bool(self.client.sismember(self._room_key(room_id, "ever"), identity_key)))

    def rooms_of(self, identity_key: bytes, limit: int) -> list[StoredRoom]:
        return self._by_label_index(self._ik_key(identity_key, "rooms"), limit)

    def open_rooms(self, limit: int) -> list[StoredRoom]:
        return self._by_label_index(self._key("rooms:open"), limit)

    def _by_label_index(self, index: bytes, limit: int) -> list[StoredRoom]:
        """Rooms named in a sorted set of label keys, in byte order of the label key (as SQLite sorts)."""
        if limit <= 0:
            return []
        return self._read(
            lambda: self._rooms_by_label_keys(self.client.zrangebylex(index, b"-", b"+", start=0, num=limit))
        )

    def rooms_created_by(self, identity_key: bytes) -> int:
        return self._read(lambda: int(self.client.scard(self._ik_key(identity_key, "created"))))

    def room_count(self) -> int:
        return self._read(lambda: int(self.client.scard(self._key("rooms"))))

    def members(self, room_id: bytes) -> list[MemberRecord]:
        stored = self._read(lambda: self.client.hgetall(self._room_key(room_id, "members")))
        return [MemberRecord(ik, value[1:].decode(), value[:1] == b"1") for ik, value in stored.items()]

    def close(self) -> None:
        self.client.close()


def _member_value(member: MemberRecord) -> bytes:
    return (b"1" if member.admin else b"0") + member.name.encode()


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode()
