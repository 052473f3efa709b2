"""One relay node's view of the cluster: the few calls the relay's core makes, and the events it gets back.

``ClusterNode`` puts ``presence``, ``names`` and ``streams`` behind what
the core needs, so wiring ``--cluster`` into the relay is a handful of
calls at the points where it already admits, drops and routes:

- ``admit(name_key, name, token, record, identity)`` when a member joins:
  claims the name and the identity key cluster-wide (an ``Admission``: held
  by someone else, or unchecked while Redis is away) and announces the
  member; ``depart`` when it leaves.
- ``send(send_ref, frames, now)`` for the ``deliver`` frames of recipients
  that are not local: one stream entry per node they are on; returns the
  names that cannot be reached now (not present anywhere, or Redis down),
  which the core reports not delivered at once.
- ``answer(inbound, delivered, missing)`` after writing an ``Inbound``'s
  frames to local members.
- ``notice(by_node, frame)`` for a frame members of other nodes must hear
  from this one (a ``room_update``, a ``dropped``), and ``mail_waiting(by_node)``
  when mail was posted here for members connected there: one entry per node.
- ``poll(now, block_ms)`` from the node's cluster thread: frames for local
  members (``Inbound``), reports on this node's sends (``Outcome``, exact:
  delivered and missing as the other node said, or missing on a timeout),
  notices and mail news for members here (``Notice``, ``MailWaiting``),
  members arriving and leaving on other nodes, names this node lost, and
  ``ClusterDown``/``ClusterUp`` once per outage.

The core stays socket-free and Redis-free: it sees these calls and events only.

Threads: the relay's I/O threads call ``admit``, ``depart`` and ``send``; its
cluster thread calls ``poll`` and ``answer``. One lock keeps the local state
(presence list, claims, reports awaited, events) consistent between them; it is
never held across the blocking stream read. While Redis is known to be down,
``admit`` and ``send`` do not try it (an I/O thread must not wait on a dead
Redis for every member): the cluster thread's next successful poll brings it back.
"""

from __future__ import annotations

import enum
import itertools
import logging
import queue
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import redis

from .errors import RedisUnavailable
from .names import ClaimError, NameClaims, holder_id
from .presence import PRESENCE_TTL, REFRESH_INTERVAL, Presence, Present, arrivals, departures
from .streams import REPORT_TIMEOUT, Deliveries, MailWaiting, NodeStreams, Notice, Pending, Report, Sender, Stored

log = logging.getLogger("susurro.relay")


class Reason(enum.Enum):
    """Why remote recipients were not delivered to: the code the sender's ``ack`` gives each
    (``ack.reasons``, docs/protocol.md) and the relay's log line says."""

    #: In this node's roster as a member of another node, but no longer in the cluster's presence.
    NOT_PRESENT = "not_present"
    #: This node cannot reach the cluster's Redis, so nothing crosses to other nodes now.
    CLUSTER_DOWN = "cluster_down"
    #: The recipient's node did not answer within ``REPORT_TIMEOUT`` (it died, or Redis lost the entry).
    NO_REPORT = "no_report"
    #: The recipient's node could not queue the copy (the member's queue was full, or it had just left,
    #: or the name is held there now by another identity key than the member this node routed to); or
    #: the copies were too large to cross as one stream entry (no send within the relay's limits is).
    REFUSED = "refused"


#: Entries published in one round trip at most (a burst of sends is one pipeline, not one each).
PUBLISH_BATCH = 512

#: A join in one round trip (it runs on the I/O thread that handles the hello): claim the name and the
#: identity key for this holder if nobody else holds either (free, or already ours: a retried claim), and
#: announce the member. Atomic like the ``SET NX`` of ``NameClaims.claim``: of two nodes admitting one name,
#: or one key under two names, at once, one finds it held.
#: KEYS: the name's claim, this node's presence hash, the identity's claim. ARGV: holder, TTL ms, name, record.
#: An ``Admission`` value: 1 admitted, 0 the name is held, 2 the identity key is held.
_ADMIT = """
local held = redis.call('GET', KEYS[1])
if held and held ~= ARGV[1] then return 0 end
local holder = redis.call('GET', KEYS[3])
if holder and holder ~= ARGV[1] then return 2 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[2])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
"""
#: A leave in one round trip: the member leaves this node's hash, and its claims go if the holder still has them.
#: KEYS: this node's presence hash, then the claim's keys (the name's, the identity's). ARGV: holder, name.
_DEPART = """
redis.call('HDEL', KEYS[1], ARGV[2])
for i = 2, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('DEL', KEYS[i]) end
end
return 1
"""


class Admission(enum.Enum):
    """What ``ClusterNode.admit`` decided (the values are what the admit script returns)."""

    ADMITTED = 1
    #: Another connection, on this node or another, holds the name.
    NAME_HELD = 0
    #: Another connection holds the identity key (under any name): one session per key.
    IDENTITY_HELD = 2
    #: Redis cannot be reached, so neither can be checked: refused.
    UNCHECKED = -1


@dataclass(slots=True)
class _Out:
    """One entry on its way to a node's stream; ``names`` are the recipients a ``Deliveries`` is for."""

    node: str
    entry: Deliveries | Report
    names: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Inbound:
    """Frames another node sent for members of this one; ``keys`` (one per frame, or none from an
    older node) are the identity keys the sending node routed each to."""

    origin: str
    send_ref: int
    frames: tuple[tuple[str, bytes], ...]
    sender: Sender | None = None
    keys: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of remote recipients of one of this node's sends."""

    send_ref: int
    delivered: tuple[str, ...]
    missing: tuple[str, ...]
    reason: Reason | None


@dataclass(frozen=True, slots=True)
class RemoteJoined:
    name: str
    record: bytes


@dataclass(frozen=True, slots=True)
class RemoteLeft:
    name: str


@dataclass(frozen=True, slots=True)
class NameLost:
    """This node's claim on a member's name (or on its identity key) lapsed and someone else took it:
    end that connection."""

    name_key: str


@dataclass(frozen=True, slots=True)
class ClusterDown:
    reason: str


@dataclass(frozen=True, slots=True)
class ClusterUp:
    pass


Event = Inbound | Outcome | Notice | MailWaiting | RemoteJoined | RemoteLeft | NameLost | ClusterDown | ClusterUp


class ClusterNode:
    def __init__(
        self,
        client: redis.Redis,
        node: str,
        *,
        prefix: str = "susurro:",
        refresh_interval: float = REFRESH_INTERVAL,
        report_timeout: float = REPORT_TIMEOUT,
        ttl: float = PRESENCE_TTL,
        queued: bool = False,
    ) -> None:
        """``queued``: ``send`` and ``answer`` only queue their entries, and a publisher thread calls
        ``publish_queued`` (the relay: no Redis round trip on an I/O thread); otherwise they publish at once."""
        self.node = node
        self.presence = Presence(client, node, prefix=prefix, ttl=ttl)
        self.claims = NameClaims(client, node, prefix=prefix, ttl=ttl)
        self.streams = NodeStreams(client, node, prefix=prefix)
        self._admit = client.register_script(_ADMIT)
        self._depart = client.register_script(_DEPART)
        self.pending = Pending(timeout=report_timeout)
        self.refresh_interval = refresh_interval
        self._view: dict[str, Present] = {}
        #: The live nodes of the cluster as of the last poll (this one included).
        self._nodes: list[str] = []
        self._next_refresh = float("-inf")
        self._down: str | None = None
        self._events: list[Event] = []
        #: name key -> the name and identity key admitted under it here (presence is by name, claims by name key).
        self._named: dict[str, tuple[str, bytes]] = {}
        #: identity key -> the name key it was admitted under here: one session per key on this node too.
        self._keys_held: dict[bytes, str] = {}
        # Reentrant: the outage helpers take it too, from inside the calls that hold it.
        self._lock = threading.RLock()
        self._queue: queue.SimpleQueue[_Out] | None = queue.SimpleQueue() if queued else None

    @property
    def up(self) -> bool:
        return self._down is None

    @property
    def down_reason(self) -> str | None:
        """What Redis said when it went away, while it is away."""
        return self._down

    def _outage(self, exc: RedisUnavailable) -> None:
        with self._lock:
            if self._down is None:
                self._down = str(exc)
                log.error(
                    "cluster-down node=%s error=%s (check that Redis runs, that this machine reaches it, "
                    "and the password; members of this relay are still served)",
                    self.node,
                    exc,
                )
                self._events.append(ClusterDown(str(exc)))

    def _recovered(self) -> None:
        with self._lock:
            if self._down is not None:
                self._down = None
                log.info("cluster-up node=%s", self.node)
                self._events.append(ClusterUp())

    # --- the core's calls -------------------------------------------------------------

    def start(self) -> None:
        try:
            self.streams.start()
            self.presence.refresh()
        except RedisUnavailable as exc:
            self._outage(exc)

    def admit(self, name_key: str, name: str, token: str, record: bytes, identity: bytes) -> Admission:
        """Claim ``name`` and the ``identity`` key for this connection in the whole cluster, and announce it.

        While Redis is unreachable neither can be checked, so the join is refused (``UNCHECKED``): two
        nodes cut off from each other must not both admit one name, or one key twice.
        """
        with self._lock:
            # Held by a connection of this node: refused here, whatever Redis says. Redis may have lost the
            # claim (a restart without its append-only file) and call the name free; admitted, the joiner's
            # claim replaced the member's in ``claims`` and the roster's refusal then freed it for good, so
            # this node renewed nothing for the member still connected and another node could take the name.
            holder = holder_id(self.node, token)
            if self.claims.held.get(name_key, holder) != holder:
                return Admission.NAME_HELD
            if self.claims.held.get(self._keys_held.get(identity, name_key), holder) != holder:
                return Admission.IDENTITY_HELD
            if not self.up:
                return Admission.UNCHECKED
            try:
                keys = [self.claims.key(name_key), self.presence.key, self.claims.identity_key(identity)]
                won = self._admit(keys=keys, args=[holder.encode(), self.claims.ttl_ms, name.encode(), record])
            except redis.RedisError as exc:
                self._outage(ClaimError(f"name claim: Redis: {exc}"))
                return Admission.UNCHECKED
            admission = Admission(won)
            if admission is not Admission.ADMITTED:
                return admission
            self.claims.took(name_key, token, identity)
            self._named[name_key] = (name, identity)
            self._keys_held[identity] = name_key
            self.presence.remember(name, record)
            return admission

    def update(self, name: str, record: bytes) -> None:
        """A member's record changed (a rekey): other nodes see it at their next poll."""
        with self._lock:
            if name not in self.presence.local:
                return  # its claim was lost and its connection is ending: announced again, it stayed for good
            try:
                self.presence.join(name, record)
            except RedisUnavailable as exc:  # kept locally; written again at the next refresh
                self._outage(exc)

    def depart(self, name_key: str, name: str) -> None:
        with self._lock:
            self.presence.forget(name)
            self._unname(name_key)
            holder = self.claims.held.get(name_key)
            if holder is None:
                return
            keys = [self.presence.key, *self.claims.keys(name_key)]
            del self.claims.held[name_key]
            self.claims.identities.pop(name_key, None)
            try:
                self._depart(keys=keys, args=[holder.encode(), name.encode()])
            except redis.RedisError as exc:  # the TTLs free both soon anyway
                self._outage(ClaimError(f"name claim: Redis: {exc}"))

    def where(self, name: str) -> str | None:
        """The other node ``name`` is connected to, as of the last poll."""
        present = self._view.get(name)
        return None if present is None or present.node == self.node else present.node

    def send(
        self,
        send_ref: int,
        frames: Mapping[str, bytes],
        now: float,
        sender: Sender | None = None,
        keys: Mapping[str, bytes] | None = None,
    ) -> dict[str, Reason]:
        """Publish ``frames`` (recipient name → deliver frame) to the nodes those recipients are on.

        Returns the recipients that cannot be reached now, with why; the others are reported
        later by an ``Outcome``. ``sender`` names the message for a ``dropped`` coming back.
        ``keys`` (recipient name → identity key, for every one of ``frames``) go with the frames:
        the destination hands each only to the connection holding that key.
        """
        unreachable: dict[str, Reason] = {}
        by_node: dict[str, list[tuple[str, bytes]]] = {}
        for name, frame in frames.items():
            node = self.where(name)
            if node is None:
                unreachable[name] = Reason.NOT_PRESENT
            elif not self.up:
                unreachable[name] = Reason.CLUSTER_DOWN
            else:
                by_node.setdefault(node, []).append((name, frame))
        if not by_node:
            return unreachable
        with self._lock:
            # Awaited before it is published: the cluster thread may read the report
            # before ``publish`` returns, and a report for no one is dropped.
            self.pending.expect(send_ref, [name for items in by_node.values() for name, _ in items], now)
        batch = [
            _Out(
                node,
                Deliveries(
                    origin=self.node,
                    send_ref=send_ref,
                    frames=tuple(items),
                    sender=sender,
                    keys=() if keys is None else tuple(keys[n] for n, _ in items),
                ),
                [n for n, _ in items],
            )
            for node, items in by_node.items()
        ]
        if self._queue is not None:
            for out in batch:
                self._queue.put(out)  # the publisher thread reports a failure as an ``Outcome``
            return unreachable
        for out, reason in self._publish(batch):
            unreachable.update(dict.fromkeys(out.names, reason))
        return unreachable

    def answer(self, inbound: Inbound, delivered: Sequence[str], missing: Sequence[str]) -> None:
        """Report to ``inbound``'s node what became of its frames (lost with Redis: that node times out)."""
        report = Report(
            origin=inbound.origin, send_ref=inbound.send_ref, delivered=tuple(delivered), missing=tuple(missing)
        )
        out = _Out(inbound.origin, report, [])
        if self._queue is not None:
            self._queue.put(out)
        else:
            self._publish([out])

    def notice(
        self,
        by_node: Mapping[str, Sequence[str]],
        frame: bytes,
        session: int | None = None,
        keys: Mapping[str, Sequence[bytes]] | None = None,
    ) -> None:
        """``frame`` for these members of other nodes (node → names; ``keys``, node → their identity keys
        in the same order, for the members this node saw): one entry per node. While Redis is down it is
        not sent: as a frame for a member whose connection ended, it is lost, and the client catches up
        from what it fetches at its next join."""
        self._tell(
            [
                _Out(
                    node,
                    Notice(
                        origin=self.node,
                        names=tuple(names),
                        frame=frame,
                        session=session,
                        keys=() if keys is None else tuple(keys[node]),
                    ),
                )
                for node, names in by_node.items()
                if names
            ]
        )

    def mail_waiting(self, names: Sequence[str]) -> None:
        """Mail was posted for these owners, who are not draining here: the node each is connected to
        starts their drain now. One not seen anywhere at the last poll may have joined since (this
        node learns of it within ``refresh_interval``), so every other node is told of those."""
        by_node: dict[str, list[str]] = {}
        with self._lock:
            others = [node for node in self._nodes if node != self.node]
            for name in names:
                if name in self.presence.local:
                    continue  # here, and not draining (an older client): nobody else has it
                where = self.where(name)
                for node in [where] if where is not None else others:
                    by_node.setdefault(node, []).append(name)
        self._tell([_Out(node, MailWaiting(origin=self.node, names=tuple(names))) for node, names in by_node.items()])

    def _tell(self, batch: list[_Out]) -> None:
        if not batch or not self.up:
            return
        if self._queue is not None:
            for out in batch:
                self._queue.put(out)
        else:
            self._publish(batch)

    def _publish(self, batch: Sequence[_Out]) -> list[tuple[_Out, Reason]]:
        """Publish ``batch`` in one round trip; the deliveries that were not stored, their names no longer
        awaited, each with why: ``cluster_down`` when Redis did not take it, ``refused`` for one too large
        to be an entry (Redis is fine: no send within the relay's limits is, ``MAX_ENTRY_BYTES``)."""
        try:
            stored = self.streams.publish_all([(out.node, out.entry) for out in batch]) if self.up else []
        except RedisUnavailable as exc:
            self._outage(exc)
            stored = []
        failed = [
            (out, Reason.REFUSED if result is Stored.TOO_LARGE else Reason.CLUSTER_DOWN)
            for out, result in itertools.zip_longest(batch, stored, fillvalue=Stored.FAILED)
            if result is not Stored.STORED
        ]
        with self._lock:
            for out, _ in failed:
                if isinstance(out.entry, Deliveries):
                    out.names = self.pending.fail(out.entry.send_ref, out.names)
        return [(out, reason) for out, reason in failed if out.names]

    def publish_queued(self, timeout: float) -> None:
        """The publisher thread's step: wait up to ``timeout`` for sends and reports, publish all that are
        queued in one round trip. A send not stored becomes an ``Outcome`` (not delivered, and why)."""
        assert self._queue is not None, "made without a publish queue"
        try:
            batch = [self._queue.get(timeout=timeout)]
        except queue.Empty:
            return
        while len(batch) < PUBLISH_BATCH:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        failed = self._publish(batch)
        if failed:
            with self._lock:
                for out, reason in failed:
                    assert isinstance(out.entry, Deliveries)
                    self._events.append(Outcome(out.entry.send_ref, (), tuple(out.names), reason))

    # --- the cluster thread -----------------------------------------------------------

    def poll(self, now: float, block_ms: int | None = None) -> list[Event]:
        """Everything that happened since the last poll (waiting up to ``block_ms`` for stream entries)."""
        try:
            entries = self.streams.read(block_ms)  # without the lock: it may block
            refresh = False
            with self._lock:
                for entry in entries:
                    if isinstance(entry, Deliveries):
                        self._learn(entry)
                        self._events.append(
                            Inbound(entry.origin, entry.send_ref, entry.frames, entry.sender, entry.keys)
                        )
                    elif isinstance(entry, (Notice, MailWaiting)):
                        self._events.append(entry)
                    elif entry.origin == self.node:
                        delivered, missing = self.pending.answer(entry)
                        if delivered or missing:
                            reason = Reason.REFUSED if missing else None
                            self._events.append(Outcome(entry.send_ref, tuple(delivered), tuple(missing), reason))
                if now >= self._next_refresh:
                    refresh = True
                    self._next_refresh = now + self.refresh_interval
                    # Claims first: a claim and its member's presence share one TTL, so renewed first the
                    # claim lapses no later than the presence. When this node dies, its members are seen
                    # leaving only once their names are free: one reconnecting to another node at once is
                    # admitted, not refused as name_taken until a claim renewed later runs out too.
                    lost = self.claims.refresh()
                    self._forget(lost)
                    self._events += [NameLost(key) for key in lost]
                    self.presence.refresh()
            if refresh:
                # Outside the lock: an I/O thread's cross-node send waits for the lock, and reading the
                # whole cluster's presence is the refresh's biggest reply.
                self.streams.keep()
                view = self.presence.snapshot()
                with self._lock:
                    self._nodes = self.presence.nodes_seen
                    self._events += [RemoteLeft(name) for name in departures(self._view, view, self.node)]
                    self._events += [
                        RemoteJoined(name, view[name].record) for name in arrivals(self._view, view, self.node)
                    ]
                    self._view = view
            self._recovered()
        except RedisUnavailable as exc:
            self._outage(exc)
            self._next_refresh = now  # refresh again as soon as Redis answers
        with self._lock:
            for send_ref, names in self.pending.expired(now).items():
                self._events.append(Outcome(send_ref, (), tuple(names), Reason.NO_REPORT))
            events, self._events = self._events, []
        return events

    def _forget(self, lost: Sequence[str]) -> None:
        """Members whose claims were lost leave this node's presence now: their connections are ending,
        and ``depart`` will not run for them (the claim is not this node's to free). Kept, the refresh
        right after would write them again for good, and other nodes would keep listing a ghost (or,
        for a node id that sorts first, list the name on this node over its real holder)."""
        for key in lost:
            name = self._unname(key)
            if name is not None:
                self.presence.forget(name)  # the refresh below rewrites the hash without it

    def _unname(self, name_key: str) -> str | None:
        """Forget what this node admitted under ``name_key`` (lock held); the name, if any."""
        named = self._named.pop(name_key, None)
        if named is None:
            return None
        name, identity = named
        if self._keys_held.get(identity) == name_key:
            del self._keys_held[identity]
        return name

    def _learn(self, entry: Deliveries) -> None:
        """The sender of ``entry`` is on its node though the view here has not seen it arrive: count it
        present now and announce it ahead of its message (the next refresh finds it known, or gone).

        Decided here, as the entry is read and before this poll's refresh, because the view and the order
        of events must agree: judged later (when the message is handled) a refresh in the same poll has
        already put the sender in the view, while its ``RemoteJoined`` still comes after the message,
        and the recipient's client refuses the message as from someone not in the room."""
        sender = entry.sender
        if sender is None or not sender.record or entry.origin == self.node or sender.name in self._view:
            return
        self._view = {**self._view, sender.name: Present(entry.origin, sender.record)}  # ``where`` reads unlocked
        self._events.append(RemoteJoined(sender.name, sender.record))

    def close(self) -> None:
        """A clean shutdown: members leave and names are freed at once."""
        with self._lock:
            try:
                self.presence.withdraw()
                self.claims.release_all()
            except RedisUnavailable:
                pass
