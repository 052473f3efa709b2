"""Member names held by one connection in the whole cluster, claimed atomically in Redis.

A name is claimed under its name key (``protocol.name_key``: casefolded
lookalike skeleton), so ``Alice`` on one node and a Cyrillic ``Аlice`` on
another are one claim. ``claim`` is one ``SET key holder NX PX ttl``: Redis
runs commands one at a time, so when two nodes claim the same name at the
same instant exactly one ``SET`` finds the key absent. The holder is
``<node id>/<connection token>``, so a second connection on the same node is
refused too, and only the holder can extend or release it: both are one
compare-and-act script, never a read then a write.

The claim carries a TTL (``CLAIM_TTL``) that the holding node refreshes
while the member stays connected (``refresh`` for all of a node's claims at
once): a node that dies frees its names by itself within the TTL, and its
members can join elsewhere. ``release`` frees a name at once on leave.
No threads, no clocks: the relay's timer calls ``refresh``.

A member's identity key is claimed beside its name, by the same holder and
with the same TTL (``identity_key``): one key holds one session in the whole
cluster, as on one relay (a second session of the key, under any name and on
any node, is refused ``identity_in_use``). Without it, two nodes each saw the
other's session of the key as a stand-in they could not add, and both stayed.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis

from susurro.protocol.limits import PUBLIC_KEY_SIZE

from .errors import RedisUnavailable
from .presence import PRESENCE_TTL

#: Seconds a claim outlives its holder's last refresh: as presence, so a dead node's members
#: disappear and become free to join elsewhere together.
CLAIM_TTL = PRESENCE_TTL
#: Bytes of a name key or holder id stored (names are at most 32 characters; ids are short).
MAX_CLAIM_PART = 256

#: KEYS: the keys of one claim (a name's, and its identity's). ARGV: holder, ttl ms.
#: 1 if the holder holds every one (their TTLs renewed), else 0 (those still its own are renewed anyway).
_EXTEND = """
local all = 1
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('PEXPIRE', key, ARGV[2]) else all = 0 end
end
return all
"""
#: KEYS: the keys of one claim whose TTL lapsed. ARGV: holder, ttl ms. 1 if every key was free or the
#: holder's (all now the holder's again), else 0: the claim is lost, and the keys still the holder's are
#: freed with it (kept, a lost member's name or key would lock its next session out for a whole TTL).
_RETAKE = """
for _, key in ipairs(KEYS) do
  local held = redis.call('GET', key)
  if held and held ~= ARGV[1] then
    for _, own in ipairs(KEYS) do
      if redis.call('GET', own) == ARGV[1] then redis.call('DEL', own) end
    end
    return 0
  end
end
for _, key in ipairs(KEYS) do redis.call('SET', key, ARGV[1], 'PX', ARGV[2]) end
return 1
"""
#: KEYS: the keys of one claim. ARGV: holder. 1 if the holder held the first (the name), else 0;
#: each key the holder still has is deleted.
_RELEASE = """
local had = 0
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('DEL', key)
    if i == 1 then had = 1 end
  end
end
return had
"""


class ClaimError(RedisUnavailable):
    """Redis could not be reached or refused; whether the name is free is unknown."""


def holder_id(node: str, token: str) -> str:
    """The value a claim holds: which node, which connection."""
    if not node or "/" in node or not token:
        raise ValueError("a node id is non-empty without '/', and a token is non-empty")
    return f"{node}/{token}"


class NameClaims:
    """Claims of one relay node."""

    def __init__(self, client: redis.Redis, node: str, *, ttl: float = CLAIM_TTL, prefix: str = "susurro:") -> None:
        self.client = client
        self.node = node
        self.ttl_ms = int(ttl * 1000)
        self._prefix = prefix
        self._extend = client.register_script(_EXTEND)
        self._retake = client.register_script(_RETAKE)
        self._release = client.register_script(_RELEASE)
        #: name key → holder, for the claims this node holds.
        self.held: dict[str, str] = {}
        #: name key → the identity key claimed with that name (by the same holder, renewed and freed with it).
        self.identities: dict[str, bytes] = {}

    def key(self, name_key: str) -> bytes:
        """The Redis key of ``name_key``'s claim."""
        key = name_key.encode()
        if not key or len(key) > MAX_CLAIM_PART:
            raise ValueError(f"a name key is 1 to {MAX_CLAIM_PART} bytes")
        return self._prefix.encode() + b"name:" + key

    def identity_key(self, identity: bytes) -> bytes:
        """The Redis key of the claim on ``identity`` (a member's Ed25519 identity key)."""
        if len(identity) != PUBLIC_KEY_SIZE:
            raise ValueError(f"an identity key is {PUBLIC_KEY_SIZE} bytes")
        return self._prefix.encode() + b"identity:" + identity.hex().encode()

    def keys(self, name_key: str) -> list[bytes]:
        """The Redis keys held under ``name_key``'s claim: the name's, and its identity's when there is one."""
        identity = self.identities.get(name_key)
        keys = [self.key(name_key)]
        return keys if identity is None else [*keys, self.identity_key(identity)]

    def claim(self, name_key: str, token: str) -> bool:
        """Take ``name_key`` for connection ``token`` of this node; False if anyone else holds it."""
        holder = holder_id(self.node, token)
        try:
            won = bool(self.client.set(self.key(name_key), holder.encode(), nx=True, px=self.ttl_ms))
            if not won:  # ours already (a retried claim), or someone else's
                won = bool(self._extend(keys=[self.key(name_key)], args=[holder.encode(), self.ttl_ms]))
        except redis.RedisError as exc:
            raise ClaimError(f"name claim: Redis: {exc}") from None
        if won:
            self.held[name_key] = holder
        return won

    def took(self, name_key: str, token: str, identity: bytes | None = None) -> str:
        """Record a claim taken for connection ``token`` (with ``identity``'s, if given) by a script of the
        caller's (``ClusterNode.admit`` claims and announces in one round trip); the holder id it was given."""
        holder = holder_id(self.node, token)
        self.held[name_key] = holder
        if identity is not None:
            self.identities[name_key] = identity
        return holder

    def release(self, name_key: str) -> bool:
        """Free ``name_key`` if this node holds it; False if the claim was no longer ours."""
        holder = self.held.get(name_key)
        if holder is None:
            return False
        keys = self.keys(name_key)
        del self.held[name_key]
        self.identities.pop(name_key, None)
        try:
            return bool(self._release(keys=keys, args=[holder.encode()]))
        except redis.RedisError as exc:
            raise ClaimError(f"name claim: Redis: {exc}") from None

    def refresh(self) -> list[str]:
        """Extend every claim this node holds; returns the name keys it lost (expired and taken, or gone).

        A lost claim is this node's cue to end that member's connection: someone
        else may hold the name now. A claim that merely expired (Redis restarted,
        or was out of reach past the TTL) and is still free is taken back.
        """
        held = list(self.held.items())
        if not held:
            return []
        # One round trip for all of them (and one more for any to take back), not one each: the node
        # refreshes while it holds its lock, and a few hundred members' round trips every refresh
        # held every cross-node send waiting behind them.
        # A claim is lost if any of its keys (the name's, the identity's) lapsed and went to someone else.
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for name_key, holder in held:
                    self._extend(keys=self.keys(name_key), args=[holder.encode(), self.ttl_ms], client=pipe)
                extended = pipe.execute()
            lapsed = [(name_key, holder) for (name_key, holder), ok in zip(held, extended, strict=True) if not ok]
            if not lapsed:
                return []
            with self.client.pipeline(transaction=False) as pipe:
                for name_key, holder in lapsed:
                    self._retake(keys=self.keys(name_key), args=[holder.encode(), self.ttl_ms], client=pipe)
                retaken = pipe.execute()
        except redis.RedisError as exc:
            raise ClaimError(f"name claim: Redis: {exc}") from None
        lost = [name_key for (name_key, _), ok in zip(lapsed, retaken, strict=True) if not ok]
        for name_key in lost:
            del self.held[name_key]
            self.identities.pop(name_key, None)
        return lost

    def holder(self, name_key: str) -> str | None:
        try:
            value = self.client.get(self.key(name_key))
        except redis.RedisError as exc:
            raise ClaimError(f"name claim: Redis: {exc}") from None
        return None if value is None else value.decode()

    def release_all(self, name_keys: Iterable[str] | None = None) -> None:
        """Release the given claims (all of this node's by default), e.g. on a clean shutdown."""
        for name_key in list(self.held if name_keys is None else name_keys):
            self.release(name_key)
