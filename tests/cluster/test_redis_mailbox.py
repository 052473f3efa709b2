"""What only the Redis mailbox adds to the contract (tests/unit/test_mailbox_store.py):
Redis itself deletes a mailbox nobody writes to, once every item in it is past the TTL."""

from __future__ import annotations

from susurro.relay.cluster.connect import open_redis
from susurro.relay.store.mailbox import MailboxLimits, MailKind, Put, Stored, StoredOneTimePrekey, StoredSignedPrekey
from susurro.relay.store.redis_mailbox import KEY_TTL_MARGIN, RedisMailboxStore
from tests.helpers.redis_server import RedisServer
from tests.helpers.stores import StoreBackend

TTL = 3600.0


def test_every_key_of_a_mailbox_expires_in_redis_after_the_ttl_and_a_margin(redis_server: RedisServer) -> None:
    store = RedisMailboxStore(open_redis(redis_server.url), MailboxLimits(ttl=TTL))
    put = Put(recipient=b"B" * 32, sender="alice", sender_key=b"A" * 32, msg_id="m1", kind=MailKind.MESSAGE, ct=b"x")
    (stored,) = store.put([put], now=0.0)
    assert isinstance(stored, Stored)
    with redis_server.client() as raw:
        keys = [key for key in raw.scan_iter() if key.startswith(b"susurro:mbox:")]
        assert len(keys) == 4
        for key in keys:
            assert (TTL + KEY_TTL_MARGIN - 60) * 1000 < raw.pttl(key) <= (TTL + KEY_TTL_MARGIN) * 1000
    store.client.close()


def test_a_bundle_without_a_one_time_prekey_leaves_them_all(store_backend: StoreBackend) -> None:
    """``bundle_fetch`` with ``one_time`` false (a receipt, sealed to the signed prekey only) spends none."""
    store = store_backend.prekeys()
    keys = [
        StoredOneTimePrekey(key_id=k, public=k.to_bytes(32, "big"), expires_at=4_000_000_000, signature=b"o" * 64)
        for k in (1, 2)
    ]
    signed = StoredSignedPrekey(key_id=1, public=b"s" * 32, created_at=5, signature=b"g" * 64)
    store.publish(name="bob", identity_key=b"b" * 32, signed=signed, one_time=keys, now=0.0)
    bundle = store.take_bundle(b"b" * 32, one_time=False, now=0.0)
    assert bundle is not None and bundle.one_time is None and bundle.signed == signed and bundle.remaining == 2
    assert store.one_time_count(b"b" * 32, now=0.0) == 2
