"""What only the Redis mailbox adds to the contract (tests/unit/test_mailbox_store.py):
Redis itself deletes a mailbox nobody writes to, once every item in it is past the TTL."""

from __future__ import annotations

from susurro.relay.cluster.connect import open_redis
from susurro.relay.store.mailbox import MailboxLimits, MailKind, Put, Stored
from susurro.relay.store.redis_mailbox import KEY_TTL_MARGIN, RedisMailboxStore
from tests.helpers.redis_server import RedisServer

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
