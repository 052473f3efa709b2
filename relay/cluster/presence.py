"""Who is connected to which relay node, shared through Redis with a TTL each node refreshes.

Each node keeps one hash, ``presence:<node id>``: member name → the record
the node wants others to see (the member's announcement, opaque here), with
a Redis TTL of ``PRESENCE_TTL``. The node refreshes it every
``REFRESH_INTERVAL``; a node that dies stops refreshing, and Redis deletes
its hash by itself, so its members vanish from every other node's view
within ``PRESENCE_TTL`` of its last refresh, and other nodes see them leave
at their next poll: at most ``PRESENCE_TTL + REFRESH_INTERVAL`` (13 s, under
the 15 s within which a dead node's members must be seen leaving). A live
node whose hash expired anyway (Redis restarted, or unreachable for longer
than the TTL) writes its whole member list again at its next refresh: it
keeps the list locally.

``presence:nodes`` is a sorted set of node ids by the Redis clock time at
which their presence expires, so a node finds the others without
``KEYS``/``SCAN``; an id past that time is dead and is dropped from it.

A Redis that restarted empty (or was flushed) has lost every node's hash at
once, while the nodes live on: until each writes its list again (at its next
refresh, within ``REFRESH_INTERVAL``) a snapshot found none of their members,
and every other node announced them all leaving, and joining again 3 s later.
A node missing from ``presence:nodes`` before the expiry it announced is
missing for one of two reasons: it shut down cleanly (``withdraw``), or Redis
lost its data (restarted empty, restored from an older save, flushed, or a
fail-over to a replica behind). ``withdraw`` leaves a tombstone,
``presence:gone:<node id>``, for ``PRESENCE_TTL``; a Redis that lost its data
has lost the tombstones too. So a node seen before, missing now, unexpired and
without a tombstone counts as present, with the members it had, until that
expiry (``PRESENCE_TTL`` from its last refresh, kept on this process's
monotonic clock, since the Redis answering now may have another one; less
``HOLD_MARGIN``, the error of that clock): a live node writes itself again long
before, and one that died meanwhile leaves when it would have. A node that shut
down cleanly leaves at once, as before.

Nothing here runs a thread or keeps time: the relay's timer calls
``refresh`` and ``snapshot``; ``departures`` is a pure diff of two snapshots.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import redis

from .errors import RedisUnavailable

log = logging.getLogger("susurro.relay")

#: Seconds a node's presence outlives its last refresh.
PRESENCE_TTL = 10.0
#: Seconds between a node's refreshes (and polls of the others): a third of the TTL, so two
#: refreshes can be late before the node's members expire.
REFRESH_INTERVAL = 3.0
#: Members one node may announce; the hash is read whole by every other node.
MAX_MEMBERS_PER_NODE = 100_000
#: Bytes of one member's record (a ``member`` announcement is a few hundred bytes).
MAX_RECORD_BYTES = 2048
#: Seconds of its expiry a node missing from Redis must have left to be held over (``snapshot``): more
#: than the error of keeping it on this process's clock (a round trip), far less than the 7 s or more a
#: live node Redis lost has left.
HOLD_MARGIN = 0.5


class PresenceError(RedisUnavailable):
    """Redis could not be reached or refused the command; presence is stale until the next refresh."""


@dataclass(frozen=True, slots=True)
class Present:
    """One member connected somewhere in the cluster."""

    node: str
    record: bytes


class Presence:
    """This node's members in Redis, and everyone's members as Redis has them."""

    def __init__(
        self,
        client: redis.Redis,
        node: str,
        *,
        ttl: float = PRESENCE_TTL,
        prefix: str = "susurro:",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not node or ":" in node:
            raise ValueError("a node id is a non-empty string without ':'")
        self.client = client
        self.node = node
        self.ttl_ms = int(ttl * 1000)
        self._prefix = prefix
        #: This node's hash.
        self.key = f"{prefix}presence:{node}".encode()
        self._nodes_key = f"{prefix}presence:nodes".encode()
        self._clock = clock
        self._local: dict[str, bytes] = {}
        #: The live node ids the last ``snapshot`` found (members or not), those held over included.
        self.nodes_seen: list[str] = []
        #: Each node the last snapshot counted: when its presence expires (on ``clock``), and its members.
        self._seen: dict[str, tuple[float, dict[str, bytes]]] = {}
        #: Nodes the last snapshot held over: missing from a Redis that lost its data, not yet expired.
        self.held_over: list[str] = []

    @property
    def local(self) -> Mapping[str, bytes]:
        """This node's members, as it announces them."""
        return self._local

    def _node_key(self, node: str) -> bytes:
        return f"{self._prefix}presence:{node}".encode()

    def _gone_key(self, node: str) -> bytes:
        return f"{self._prefix}presence:gone:{node}".encode()

    # --- this node ----------------------------------------------------------------------

    def join(self, name: str, record: bytes) -> None:
        """Announce ``name`` on this node. Kept locally even if Redis fails (then ``PresenceError``)."""
        self.remember(name, record)
        self._write({name: record})

    def remember(self, name: str, record: bytes) -> None:
        """Keep ``name`` in this node's list (written at the next refresh), within the bounds; the caller
        writes it to Redis itself (``ClusterNode.admit``, with the name claim in one round trip)."""
        if len(record) > MAX_RECORD_BYTES:
            raise ValueError(f"a presence record is at most {MAX_RECORD_BYTES} bytes, not {len(record)}")
        if name not in self._local and len(self._local) >= MAX_MEMBERS_PER_NODE:
            raise ValueError(f"a node announces at most {MAX_MEMBERS_PER_NODE} members")
        self._local[name] = record

    def forget(self, name: str) -> None:
        """Drop ``name`` from this node's list; the caller deletes it from Redis (``ClusterNode.depart``)."""
        self._local.pop(name, None)

    def leave(self, name: str) -> None:
        self._local.pop(name, None)
        try:
            self.client.hdel(self.key, name.encode())
        except redis.RedisError as exc:
            raise PresenceError(f"presence: Redis: {exc}") from None

    def refresh(self) -> None:
        """Extend this node's TTL; write every local member again if Redis lost them."""
        self._write(self._local)

    def _write(self, members: Mapping[str, bytes]) -> None:
        try:
            with self.client.pipeline(transaction=True) as pipe:
                if members:
                    pipe.hset(self.key, mapping={name.encode(): record for name, record in members.items()})
                pipe.hlen(self.key)
                pipe.pexpire(self.key, self.ttl_ms)
                replies = pipe.execute()
                (seconds, micros) = self.client.time()
                expires = seconds + micros / 1e6 + self.ttl_ms / 1000
                self.client.zadd(self._nodes_key, {self.node.encode(): expires})
            if replies[-2] != len(self._local):
                # The hash expired or lost entries (Redis restarted, or we were cut off past the TTL),
                # or holds names this node no longer has: replace it with the local list.
                with self.client.pipeline(transaction=True) as pipe:
                    pipe.delete(self.key)
                    if self._local:
                        pipe.hset(self.key, mapping={n.encode(): r for n, r in self._local.items()})
                        pipe.pexpire(self.key, self.ttl_ms)
                    pipe.execute()
        except redis.RedisError as exc:
            raise PresenceError(f"presence: Redis: {exc}") from None

    def withdraw(self) -> None:
        """A clean shutdown: this node's members leave at once instead of after the TTL.

        A full Redis (``noeviction``, as deploy/redis.conf sets it) refuses the tombstone's ``SET``, and
        any command queued in a ``MULTI``: in one transaction the ``EXEC`` failed whole, so the hash stayed
        and the relay's claims were not released (``ClusterNode.close``). The tombstone goes first and
        alone (without it the others hold this node over until its expiry, 10 s, no more; set before the
        ``ZREM``, no snapshot finds the node gone and unmarked in between), then ``DEL`` and ``ZREM``,
        which need no memory, in a pipeline that is not a transaction (between the two, a snapshot finds
        the node with no members: the same)."""
        self._local.clear()
        try:
            try:
                self.client.set(self._gone_key(self.node), b"1", px=self.ttl_ms)  # not held over: it left
            except redis.ResponseError as exc:  # Redis answered (out of memory): the rest needs no memory
                log.warning(
                    "cluster-withdraw-no-tombstone node=%s error=%s (held over until it expires)", self.node, exc
                )
            with self.client.pipeline(transaction=False) as pipe:
                pipe.delete(self.key)
                pipe.zrem(self._nodes_key, self.node.encode())
                pipe.execute()
        except redis.RedisError as exc:
            raise PresenceError(f"presence: Redis: {exc}") from None

    # --- the cluster --------------------------------------------------------------------

    def nodes(self) -> list[str]:
        """Node ids refreshed within their TTL (by Redis's clock); the others are dropped."""
        return sorted(self._live()[2])

    def _live(self) -> tuple[float, float, dict[str, float]]:
        """Redis's clock now, this process's clock as it answered, and the live node ids with when each
        expires (by Redis's clock)."""
        try:
            seconds, micros = self.client.time()
            local = self._clock()  # before the next round trip, which would count as time left to a node
            cutoff = seconds + micros / 1e6
            with self.client.pipeline(transaction=True) as pipe:
                pipe.zremrangebyscore(self._nodes_key, "-inf", f"({cutoff!r}")
                pipe.zrange(self._nodes_key, 0, -1, withscores=True)
                _, members = pipe.execute()
        except redis.RedisError as exc:
            raise PresenceError(f"presence: Redis: {exc}") from None
        return cutoff, local, {member.decode(): float(score) for member, score in members}

    def snapshot(self) -> dict[str, Present]:
        """Every member present on any live node, this one included: name → where and what.

        A name on two nodes at once (only during a name claim's handover) is
        reported for the node that sorts first, so every node picks the same.
        A node seen before that is missing now, before its expiry and without a
        tombstone, is counted with the members it had (see the module's docstring).
        """
        redis_now, now, live = self._live()
        # A node that died expires from Redis just before its expiry as kept here (the two clocks were read
        # a round trip apart): not held in that moment (it would be said lost by Redis, untrue), only one with
        # more than HOLD_MARGIN left, which a node Redis lost has (it refreshed 3 s or less before).
        missing = sorted(
            n
            for n, (expires, _) in self._seen.items()
            if n not in live and n != self.node and expires > now + HOLD_MARGIN
        )
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for node in live:
                    pipe.hgetall(self._node_key(node))
                for node in missing:
                    pipe.exists(self._gone_key(node))
                replies = pipe.execute()
        except redis.RedisError as exc:
            raise PresenceError(f"presence: Redis: {exc}") from None
        hashes = dict(zip(live, replies[: len(live)], strict=True))
        held = [node for node, gone in zip(missing, replies[len(live) :], strict=True) if not gone]
        for node in held:
            if node not in self.held_over:
                log.info("cluster-presence-held node=%s (Redis lost it; kept until it expires or writes again)", node)
        seen: dict[str, tuple[float, dict[str, bytes]]] = {node: self._seen[node] for node in held}
        for node, score in live.items():
            seen[node] = (now + score - redis_now, {name.decode(): record for name, record in hashes[node].items()})
        nodes = sorted(seen)
        self._seen, self.held_over, self.nodes_seen = seen, held, nodes
        present: dict[str, Present] = {}
        for node in nodes:
            for name, record in seen[node][1].items():
                present.setdefault(name, Present(node, record))
        return present


def departures(before: Mapping[str, Present], after: Mapping[str, Present], node: str) -> list[str]:
    """Names on other nodes in ``before`` that are gone (or moved to this node) in ``after``: announce them as left.

    Members of this node come and go through its own connections, never through this diff.
    """
    return sorted(
        name for name, was in before.items() if was.node != node and (name not in after or after[name].node == node)
    )


def arrivals(before: Mapping[str, Present], after: Mapping[str, Present], node: str) -> list[str]:
    """Names on other nodes in ``after`` that were not there (or were elsewhere) in ``before``."""
    return sorted(
        name for name, now in after.items() if now.node != node and (name not in before or before[name] != now)
    )
