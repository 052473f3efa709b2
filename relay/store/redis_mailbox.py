"""Mailboxes and prekeys in Redis (``--cluster``): ``MailboxStore`` and ``PrekeyStore`` shared by every node.

The same behaviour as the SQLite stores in ``mailbox.py``, held to one
contract suite (``tests/unit/test_mailbox_store.py`` runs on both):

- a mailbox's bounds (items, bytes, items per sender) are checked and the
  item stored in one Lua script, so two nodes storing for one recipient at
  once cannot both squeeze past a bound, and item numbers grow in the order
  items were stored (a fetch paging ``after`` an item never skips one that
  commits later with a lower number);
- an item is deleted only by its recipient's confirm or by age, never to make
  room;
- a one-time prekey is popped (``ZPOPMIN``) and its data deleted in one
  script: handed out once, whichever node asks.

Scripts run atomically in Redis and name every key they touch in ``KEYS``.
Expiry has two layers: items older than the TTL are hidden by ``fetch`` and
deleted by ``expire`` (and before every ``put``, as the SQLite store does);
and every key of a mailbox carries a Redis TTL renewed on each store, so a
mailbox nobody writes to again disappears from Redis by itself once all its
items are past the TTL, even if no relay is left to call ``expire``.

Keys, under the store's prefix (``<r>`` is the recipient's identity key in hex):

- ``mbox:<r>``: sorted set of item numbers; ``mbox:<r>:data``: item number →
  msgpack ``[sender, sender_key, msg_id, kind, ct, stored_at]``;
  ``mbox:<r>:index``: item number → ciphertext length (10 digits) + sender key;
  ``mbox:<r>:stats``: ``bytes`` and ``s:<sender key>`` counts
- ``mail:next``: the last item number; ``mail:ages``: ``<r>:<item>`` by stored time
- ``prekey:<ik hex>:name``: the name the identity published under;
  ``prekey:<ik hex>:signed``: msgpack of the signed prekey;
  ``prekey:<ik hex>:one-time``: sorted set of key ids; ``prekey:<ik hex>:one-time:data``: id → msgpack

Every ciphertext is what a client sealed to a prekey: Redis sees the same
bytes the SQLite file would, never a plaintext.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import msgpack
import redis

from susurro.crypto.prekeys import MAX_STORED_ONE_TIME_PREKEYS

from .base import StoreError
from .mailbox import (
    MailboxLimits,
    MailboxStore,
    MailItem,
    MailKind,
    PrekeyStore,
    Put,
    Refusal,
    Refused,
    Stored,
    StoredBundle,
    StoredOneTimePrekey,
    StoredSignedPrekey,
    TooManyPrekeys,
)
from .redis import DEFAULT_PREFIX, MAX_TRANSACTION_ATTEMPTS

#: Expired items removed per round of ``expire`` (each round is one read and one script per mailbox).
EXPIRE_BATCH = 512
#: Added to a mailbox key's Redis TTL past the store's own TTL: the relays' clocks and Redis's
#: may differ, and the key must outlive every item the relays still consider fresh.
KEY_TTL_MARGIN = 86_400

#: KEYS: next, ages, then mbox, data, index, stats for each put.
#: ARGV: max_per_sender, stored_at, key_ttl, then recipient hex, sender key, ct length, record,
#: and the items and bytes the mailbox may hold with it in (``MailboxLimits.caps``: less for a
#: message than for a receipt) for each put. Returns per put: item number, or -1 full, -2 quota.
_PUT = """
local max_per_sender, stored_at, key_ttl = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local results = {}
for i = 0, (#KEYS - 2) / 4 - 1 do
  local mbox, data, index, stats = KEYS[3 + 4 * i], KEYS[4 + 4 * i], KEYS[5 + 4 * i], KEYS[6 + 4 * i]
  local at = 4 + 6 * i
  local recipient, sender, size, record = ARGV[at], ARGV[at + 1], tonumber(ARGV[at + 2]), ARGV[at + 3]
  local max_items, max_bytes = tonumber(ARGV[at + 4]), tonumber(ARGV[at + 5])
  local held = redis.call('ZCARD', mbox)
  local bytes = tonumber(redis.call('HGET', stats, 'bytes') or '0')
  if held >= max_items or bytes + size > max_bytes then
    results[#results + 1] = -1
  elseif tonumber(redis.call('HGET', stats, 's:' .. sender) or '0') >= max_per_sender then
    results[#results + 1] = -2
  else
    local item = redis.call('INCR', KEYS[1])
    redis.call('ZADD', mbox, item, item)
    redis.call('HSET', data, item, record)
    redis.call('HSET', index, item, string.format('%010d', size) .. sender)
    redis.call('HINCRBY', stats, 'bytes', size)
    redis.call('HINCRBY', stats, 's:' .. sender, 1)
    redis.call('ZADD', KEYS[2], stored_at, recipient .. ':' .. item)
    for _, key in ipairs({mbox, data, index, stats}) do redis.call('EXPIRE', key, key_ttl) end
    results[#results + 1] = item
  end
end
return results
"""

#: KEYS: mbox, data, index, stats, ages. ARGV: recipient hex, then item numbers. Returns how many went.
_REMOVE = """
local removed = 0
for i = 2, #ARGV do
  local item = ARGV[i]
  local entry = redis.call('HGET', KEYS[3], item)
  if entry then
    local size, sender = tonumber(string.sub(entry, 1, 10)), string.sub(entry, 11)
    redis.call('ZREM', KEYS[1], item)
    redis.call('HDEL', KEYS[2], item)
    redis.call('HDEL', KEYS[3], item)
    redis.call('HINCRBY', KEYS[4], 'bytes', -size)
    if redis.call('HINCRBY', KEYS[4], 's:' .. sender, -1) <= 0 then redis.call('HDEL', KEYS[4], 's:' .. sender) end
    removed = removed + 1
  end
  redis.call('ZREM', KEYS[5], ARGV[1] .. ':' .. item)
end
return removed
"""

#: KEYS: signed, one-time set, one-time data. ARGV: "1" to take a one-time prekey, "0" not to.
#: Returns {signed, key id or false, data or false, remaining}.
_TAKE = """
local signed = redis.call('GET', KEYS[1])
if not signed then return false end
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[2])
if expired[1] then
  redis.call('ZREM', KEYS[2], unpack(expired))
  redis.call('HDEL', KEYS[3], unpack(expired))
end
local popped = {}
if ARGV[1] == '1' then popped = redis.call('ZPOPMIN', KEYS[2]) end
local key_id, data = false, false
if popped[1] then
  key_id = popped[1]
  data = redis.call('HGET', KEYS[3], key_id)
  redis.call('HDEL', KEYS[3], key_id)
end
return {signed, key_id, data, redis.call('ZCARD', KEYS[2])}
"""


#: The held one-time prekeys are scored by their signed expiry: those expiring at or before ARGV[1] go.
_DROP_EXPIRED = """
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if expired[1] then
  redis.call('ZREM', KEYS[1], unpack(expired))
  redis.call('HDEL', KEYS[2], unpack(expired))
end
return redis.call('ZCARD', KEYS[1])
"""


def _pack(value: object) -> bytes:
    packed = msgpack.packb(value, use_bin_type=True)
    assert isinstance(packed, bytes)
    return packed


def _unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False)


class _Keys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix.encode()

    def __call__(self, *parts: str) -> bytes:
        return self.prefix + ":".join(parts).encode()


class RedisMailboxStore(MailboxStore):
    """``MailboxStore`` in Redis. Thread-safe (each call takes a pooled connection)."""

    def __init__(self, client: redis.Redis, limits: MailboxLimits | None = None, prefix: str = DEFAULT_PREFIX) -> None:
        self.client = client
        self.limits = limits or MailboxLimits()
        self._key = _Keys(prefix)
        self._put = client.register_script(_PUT)
        self._remove = client.register_script(_REMOVE)

    def _mailbox_keys(self, recipient: bytes) -> list[bytes]:
        r = recipient.hex()
        return [
            self._key("mbox", r),
            self._key("mbox", r, "data"),
            self._key("mbox", r, "index"),
            self._key("mbox", r, "stats"),
        ]

    def put(self, puts: Sequence[Put], now: float) -> list[Stored | Refused]:
        if not puts:
            return []
        self.expire(now)
        limits = self.limits
        keys = [self._key("mail", "next"), self._key("mail", "ages")]
        args: list[bytes | int | float | str] = [
            limits.max_per_sender,
            repr(float(now)),
            math.ceil(limits.ttl) + KEY_TTL_MARGIN,
        ]
        for put in puts:
            keys += self._mailbox_keys(put.recipient)
            record = _pack([put.sender, put.sender_key, put.msg_id, put.kind.value, put.ct, float(now)])
            args += [put.recipient.hex(), put.sender_key, len(put.ct), record, *limits.caps(put.kind)]
        try:
            replies = self._put(keys=keys, args=args)
        except redis.RedisError as exc:
            raise StoreError(f"cannot store mail: Redis: {exc}") from None
        refusals = {-1: Refused(Refusal.MAILBOX_FULL), -2: Refused(Refusal.SENDER_QUOTA)}
        return [refusals[int(reply)] if int(reply) < 0 else Stored(int(reply)) for reply in replies]

    def fetch(self, recipient: bytes, *, after: int, max_items: int, max_bytes: int, now: float) -> list[MailItem]:
        if max_items <= 0:
            return []
        mbox, data, _, _ = self._mailbox_keys(recipient)
        cutoff = now - self.limits.ttl
        out: list[MailItem] = []
        total = 0
        try:
            # Page through the numbers: items past the TTL are skipped (not yet deleted), and the
            # page must still fill from the items after them, as the SQLite query does.
            while len(out) < max_items:
                numbers = self.client.zrangebyscore(mbox, f"({after}", "+inf", start=0, num=max_items)
                if not numbers:
                    return out
                after = int(numbers[-1])
                for number, record in zip(numbers, self.client.hmget(data, numbers), strict=True):
                    if record is None:
                        continue  # confirmed or expired by another node since the range was read
                    sender, sender_key, msg_id, kind, ct, stored_at = _unpack(record)
                    if stored_at < cutoff:
                        continue
                    if out and total + len(ct) > max_bytes:
                        return out
                    total += len(ct)
                    out.append(
                        MailItem(
                            item=int(number),
                            sender=sender,
                            sender_key=sender_key,
                            msg_id=msg_id,
                            kind=MailKind(kind),
                            ct=ct,
                            stored_at=stored_at,
                        )
                    )
                    if len(out) == max_items:
                        return out
        except redis.RedisError as exc:
            raise StoreError(f"cannot read mail: Redis: {exc}") from None
        return out

    def confirm(self, recipient: bytes, items: Sequence[int]) -> int:
        if not items:
            return 0
        return self._remove_items(recipient, [int(item) for item in items])

    def _remove_items(self, recipient: bytes, items: Sequence[int]) -> int:
        keys = [*self._mailbox_keys(recipient), self._key("mail", "ages")]
        try:
            return int(self._remove(keys=keys, args=[recipient.hex(), *items]))
        except redis.RedisError as exc:
            raise StoreError(f"cannot delete mail: Redis: {exc}") from None

    def usage(self, recipient: bytes) -> tuple[int, int]:
        mbox, _, _, stats = self._mailbox_keys(recipient)
        try:
            with self.client.pipeline(transaction=True) as pipe:
                items, size = pipe.zcard(mbox).hget(stats, "bytes").execute()
        except redis.RedisError as exc:
            raise StoreError(f"cannot read mail: Redis: {exc}") from None
        return int(items), int(size or 0)

    def expire(self, now: float) -> int:
        cutoff = now - self.limits.ttl
        ages = self._key("mail", "ages")
        removed = 0
        try:
            while True:
                # Strictly older than the cutoff, as the SQLite store's ``stored_at < ?``.
                batch = self.client.zrangebyscore(ages, "-inf", f"({cutoff!r}", start=0, num=EXPIRE_BATCH)
                if not batch:
                    return removed
                by_recipient: dict[bytes, list[int]] = {}
                for member in batch:
                    recipient_hex, _, item = member.decode().partition(":")
                    by_recipient.setdefault(bytes.fromhex(recipient_hex), []).append(int(item))
                for recipient, items in by_recipient.items():
                    removed += self._remove_items(recipient, items)
        except redis.RedisError as exc:
            raise StoreError(f"cannot expire mail: Redis: {exc}") from None


class RedisPrekeyStore(PrekeyStore):
    """``PrekeyStore`` in Redis. Thread-safe."""

    def __init__(
        self, client: redis.Redis, max_one_time: int = MAX_STORED_ONE_TIME_PREKEYS, prefix: str = DEFAULT_PREFIX
    ) -> None:
        self.client = client
        self.max_one_time = max_one_time
        self._key = _Keys(prefix)
        self._take = client.register_script(_TAKE)
        self._drop_expired = client.register_script(_DROP_EXPIRED)

    def _identity_keys(self, identity_key: bytes) -> tuple[bytes, bytes, bytes, bytes]:
        ik = identity_key.hex()
        return (
            self._key("prekey", ik, "signed"),
            self._key("prekey", ik, "one-time"),
            self._key("prekey", ik, "one-time", "data"),
            self._key("prekey", ik, "name"),
        )

    def publish(
        self,
        *,
        name: str,
        identity_key: bytes,
        signed: StoredSignedPrekey | None,
        one_time: Sequence[StoredOneTimePrekey],
        now: float,
    ) -> int:
        signed_key, one_time_key, data_key, name_key = self._identity_keys(identity_key)
        fresh = {key.key_id: key for key in one_time}
        try:
            self._drop_expired(keys=[one_time_key, data_key], args=[repr(now)])
            for _ in range(MAX_TRANSACTION_ATTEMPTS):
                with self.client.pipeline(transaction=True) as pipe:
                    try:
                        pipe.watch(one_time_key)  # every change to the held keys touches this set
                        held = pipe.zcard(one_time_key)
                        ids = list(fresh)
                        present = pipe.zmscore(one_time_key, ids) if ids else []
                        new = [key_id for key_id, score in zip(ids, present, strict=True) if score is None]
                        if held + len(new) > self.max_one_time:
                            raise TooManyPrekeys(
                                f"{held} one-time prekeys held and {len(fresh)} more published; "
                                f"at most {self.max_one_time}"
                            )
                        pipe.multi()
                        pipe.set(name_key, name.encode())
                        if signed is not None:
                            pipe.set(
                                signed_key, _pack([signed.key_id, signed.public, signed.created_at, signed.signature])
                            )
                        if new:  # keys already held stay as they are (the SQLite store's INSERT OR IGNORE)
                            # Scored by expiry: handed out soonest-expiring first, dropped once expired.
                            pipe.zadd(one_time_key, {str(k).encode(): fresh[k].expires_at for k in new})
                            pipe.hset(
                                data_key,
                                mapping={
                                    str(k).encode(): _pack([fresh[k].public, fresh[k].signature, fresh[k].expires_at])
                                    for k in new
                                },
                            )
                        pipe.execute()
                        break
                    except redis.WatchError:
                        continue
            else:
                raise StoreError(
                    f"cannot store prekeys: {MAX_TRANSACTION_ATTEMPTS} attempts lost to concurrent writers"
                )
            return int(self._drop_expired(keys=[one_time_key, data_key], args=[repr(now)]))
        except redis.RedisError as exc:
            raise StoreError(f"cannot store prekeys: Redis: {exc}") from None

    def take_bundle(self, identity_key: bytes, one_time: bool = True, *, now: float) -> StoredBundle | None:
        signed_key, one_time_key, data_key, name_key = self._identity_keys(identity_key)
        try:
            name = self.client.get(name_key)
            if name is None:
                return None
            reply = self._take(keys=[signed_key, one_time_key, data_key], args=["1" if one_time else "0", repr(now)])
        except redis.RedisError as exc:
            raise StoreError(f"cannot hand out prekeys: Redis: {exc}") from None
        if not reply:
            return None
        signed, key_id, data, remaining = reply
        signed_id, public, created_at, signature = _unpack(signed)
        taken = None
        if key_id and data:
            one_public, one_signature, expires_at = _unpack(data)
            taken = StoredOneTimePrekey(
                key_id=int(key_id), public=one_public, expires_at=int(expires_at), signature=one_signature
            )
        return StoredBundle(
            name=name.decode(),
            identity_key=identity_key,
            signed=StoredSignedPrekey(key_id=signed_id, public=public, created_at=created_at, signature=signature),
            one_time=taken,
            remaining=int(remaining),
        )

    def mailbox_owner(self, identity_key: bytes) -> str | None:
        signed_key, _, _, name_key = self._identity_keys(identity_key)
        try:
            name, signed = self.client.mget([name_key, signed_key])
        except redis.RedisError as exc:
            raise StoreError(f"cannot read prekeys: Redis: {exc}") from None
        return None if name is None or signed is None else str(name.decode())

    def one_time_count(self, identity_key: bytes, *, now: float) -> int:
        try:
            return int(self.client.zcount(self._identity_keys(identity_key)[1], f"({now!r}", "+inf"))
        except redis.RedisError as exc:
            raise StoreError(f"cannot read prekeys: Redis: {exc}") from None
