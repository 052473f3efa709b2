"""``--cluster``: the relay core's ``Router`` over a ``ClusterNode``, and the node's cluster thread.

The core routes by its roster. Members of other nodes sit in it as stand-ins
(a ``Connection`` whose ``node`` is set and whose outbox drops everything), so
a local joiner's ``welcome`` lists them, a name they hold cannot be taken
here, and a ``send`` finds them like anyone else; the core hands their
``deliver`` frames to ``forward`` instead of an outbox.

What the core offers members of other nodes besides sends (a ``room_update``)
comes to ``notify``, and mail stored for them to ``mail_waiting``: one entry
per node either way, which that node hands to its members (the update; a
drain of the new mail). A copy this node delivered for another node's member
is tagged with a stand-in for its sender, so if this node then throws it away
(evicted, failed write) the core's ``dropped`` for that sender goes back to
its node, to the connection that sent it.

``forward`` publishes one stream entry per destination node and holds the
sender's ``ack`` until every such recipient is answered for. Each copy goes
with the identity key of the stand-in it was routed to, and the destination
hands it only to a member of that key: by name alone, a member who left and
whose name another key took there before this node's next refresh got a copy
sealed for someone else, and the sender's ``ack`` said delivered. Delivered or
not as the other node reports, or not delivered when the report does not
come within ``REPORT_TIMEOUT`` (10 s) or Redis is down. Each recipient not
delivered is logged with why (``Reason``), and the ``ack`` gives each its
reason code (``ack.reasons``).

A second thread publishes what the I/O threads queue (sends) and what the
cluster thread queues (reports), as many entries per round trip as are
waiting, so no I/O thread waits on Redis. The cluster thread polls the node: frames other nodes sent for members here
are offered to their outboxes and answered; members arriving on or leaving
other nodes become ``joined``/``left`` for the members here; a member whose
name claim this node lost is told and disconnected. While Redis is down the
thread retries every ``OUTAGE_RETRY`` seconds; the node logs the outage once.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import msgpack
import redis

from susurro.protocol import (
    Ack,
    ErrorCode,
    FrameDecoder,
    Joined,
    Left,
    Member,
    ProtocolError,
    Rekeyed,
    encode,
    name_key,
)
from susurro.protocol.limits import ABSOLUTE_MAX_FRAME

from ..config import RelayConfig
from ..core import Backend, Connection, Refusal, RelayCore
from ..mailbox import mailbox_limits
from ..outbox import own_batch
from ..roster import NameTaken, RosterEntry, SessionKeyInUse
from ..store.redis import RedisRoomStore
from ..store.redis_mailbox import RedisMailboxStore, RedisPrekeyStore
from .connect import open_redis, read_password
from .node import (
    Admission,
    ClusterDown,
    ClusterNode,
    ClusterUp,
    Event,
    Inbound,
    NameLost,
    Outcome,
    Reason,
    RemoteJoined,
    RemoteLeft,
)
from .streams import MailWaiting, Notice, Sender

log = logging.getLogger("susurro.relay")

#: Milliseconds the cluster thread waits for stream entries per poll: a new entry ends the wait at once,
#: so this bounds only how late a report timeout or a presence refresh can be. Under the 2 s reply timeout.
POLL_BLOCK_MS = 500
#: Seconds between attempts to reach Redis while it is down.
OUTAGE_RETRY = 1.0
#: Seconds ``close`` waits for the cluster thread.
STOP_TIMEOUT = 5.0
#: What a joiner reads while this node cannot reach Redis (``error`` cluster_down; its client tries again).
CLUSTER_DOWN_DETAIL = (
    "this relay cannot reach the store it shares with the other relays of its cluster right now, so it "
    "cannot check that your name and key are free; try again shortly"
)
#: What a member whose claim this node lost reads (``error`` name_taken, then the connection ends).
NAME_LOST_DETAIL = (
    "this relay could not renew its hold on your name and identity key in its cluster in time (its shared "
    "store lost them or was out of reach), and another session has taken one of them: this session ends now"
)
#: Senders on other nodes kept as tag holders for copies delivered here (the oldest go first):
#: a ``dropped`` for a sender no longer among them is not sent, as for a sender that has left.
MAX_REMOTE_SENDERS = 10_000


def node_id() -> str:
    """This process's id in the cluster: which machine and process, and a random part (a restart is a new node)."""
    host = socket.gethostname().replace("/", "-")[:64] or "relay"
    return f"{host}-{os.getpid()}-{os.urandom(3).hex()}"


def member_record(member: Member) -> bytes:
    """What other nodes learn of a member here: its roster entry, as clients see it in ``joined``."""
    packed = msgpack.packb(member.to_wire(), use_bin_type=True)
    assert isinstance(packed, bytes)
    return packed


def member_of(record: bytes) -> Member | None:
    try:
        return Member.from_wire(msgpack.unpackb(record, raw=False))
    except (ProtocolError, ValueError, TypeError, msgpack.UnpackException):
        return None


class _Elsewhere:
    """A stand-in's outbox: that member's own node tells it everything, so nothing is queued here."""

    def offer(self, data: bytes, tag: object = None) -> bool:
        return True


class _ToSender:
    """The outbox of a sender on another node, as the core sees it when it reports copies dropped
    here: what the core offers (its ``dropped``) goes to that node, for that one connection."""

    def __init__(self, router: ClusterRouter, node: str, name: str, session: int) -> None:
        self._router, self._node, self._name, self._session = router, node, name, session

    def offer(self, data: bytes, tag: object = None) -> bool:
        self._router.node.notice({self._node: [self._name]}, data, session=self._session)
        return True


@dataclass
class _HeldAck:
    """A send whose ``ack`` waits for other nodes' reports."""

    conn: Connection
    ack: Ack
    #: roster name -> the name as the sender wrote it, for each recipient not answered for yet.
    waiting: dict[str, str]
    delivered: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    #: name as the sender wrote it -> why it is missing (a ``Reason`` value).
    reasons: dict[str, str] = field(default_factory=dict)


class ClusterRouter:
    """``relay.core.Router`` for one node of a cluster; ``attach`` it to the core, then ``start``."""

    def __init__(self, node: ClusterNode, clock: Callable[[], float] = time.monotonic) -> None:
        self.node = node
        self._clock = clock
        self._core: RelayCore | None = None
        self._lock = threading.Lock()
        self._refs = itertools.count(1)
        self._held: dict[int, _HeldAck] = {}
        self._stand_ins: dict[str, Connection] = {}
        #: name key -> the local connection that claimed it (to end it if the claim is lost).
        self._claimed: dict[str, Connection] = {}
        #: (node, name, connection id there) -> the tag holder for that sender's copies delivered here.
        self._senders: OrderedDict[tuple[str, str, int], Connection] = OrderedDict()
        #: Nodes whose deliver entries came without their recipients' keys (an older release), said once each.
        self._unkeyed: set[str] = set()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._publisher: threading.Thread | None = None
        #: Milliseconds of the last ``PING`` to Redis, for ``--status-port``; None while down.
        self.latency_ms: float | None = None
        self._next_ping = float("-inf")

    def attach(self, core: RelayCore) -> None:
        self._core = core

    @property
    def core(self) -> RelayCore:
        assert self._core is not None, "attach the core first"
        return self._core

    # --- relay.core.Router ------------------------------------------------------------

    def admit(self, conn: Connection, member: Member) -> Refusal | None:
        key = name_key(member.name)
        admission = self.node.admit(key, member.name, str(conn.id), member_record(member), member.ik)
        if admission is Admission.ADMITTED:
            with self._lock:
                self._claimed[key] = conn
            # The claim proves no other node holds the name or the key now: a stand-in still under either
            # is stale (its member left or its node died, and this one has not polled since), and would
            # refuse the join (the roster allows one entry per identity key).
            with self._lock:
                stale = [name for name, conn in self._stand_ins.items() if conn.ik == member.ik]
            for name in {member.name, *stale}:
                self._remote_left(name)
            return None
        if admission is Admission.UNCHECKED:
            # Not name_taken: nobody holds the name as far as anyone knows, and a client takes name_taken on
            # a first join as final. The core logs the refusal (``reject ... code=cluster_down``).
            return Refusal(ErrorCode.CLUSTER_DOWN, CLUSTER_DOWN_DETAIL)
        if admission is Admission.IDENTITY_HELD:
            # As on one relay (decision 53): the session already connected keeps it, wherever it is.
            detail = "another session of this identity key is connected to this cluster: one at a time"
            return Refusal(ErrorCode.IDENTITY_IN_USE, detail)
        with self._lock:
            here = key in self._claimed
        where = "" if here else " on another relay of this cluster"
        return Refusal(ErrorCode.NAME_TAKEN, f"the name {member.name!r} is in use{where}")

    def depart(self, conn: Connection, name: str) -> None:
        key = name_key(name)
        with self._lock:
            if self._claimed.get(key) is not conn:
                return
            del self._claimed[key]
        self.node.depart(key, name)

    def changed(self, conn: Connection, member: Member) -> None:
        self.node.update(member.name, member_record(member))

    def forward(self, conn: Connection, frames: dict[str, tuple[str, bytes]], ack: Ack) -> None:
        ref = next(self._refs)
        with self._lock:  # held before the publish: a report can come back before it returns
            self._held[ref] = _HeldAck(conn, ack, {name: wire for name, (wire, _) in frames.items()})
        assert conn.name is not None
        member = self.core.roster.member(conn.name, conn)
        # The key of the stand-in each copy was routed to (the core looked them up just now). One that
        # left meanwhile is not present: its member is gone from here, whoever holds the name next.
        with self._lock:
            stand_ins = {name: self._stand_ins.get(name) for name in frames}
        keys = {name: stand_in.ik for name, stand_in in stand_ins.items() if stand_in is not None}
        unreachable = self.node.send(
            ref,
            {name: frame for name, (_, frame) in frames.items() if name in keys},
            self._clock(),
            Sender(conn.name, ack.id, conn.id, b"" if member is None else member_record(member)),
            keys=keys,
        )
        unreachable.update(dict.fromkeys((name for name in frames if name not in keys), Reason.NOT_PRESENT))
        by_reason: dict[Reason, list[str]] = {}
        for name, reason in unreachable.items():
            by_reason.setdefault(reason, []).append(name)
        for reason, names in by_reason.items():
            self._settle(ref, (), tuple(names), reason)

    def _settle(self, ref: int, delivered: tuple[str, ...], missing: tuple[str, ...], reason: Reason | None) -> None:
        with self._lock:
            held = self._held.get(ref)
            if held is None:
                return
            for name in delivered:
                if held.waiting.pop(name, None) is not None:
                    held.delivered.append(name)
            for name in missing:
                wire = held.waiting.pop(name, None)
                if wire is not None:
                    held.missing.append(wire)
                    held.reasons[wire] = (reason or Reason.REFUSED).value
                    log.info(
                        "undeliverable from=%s to=%r id=%s reason=%s",
                        held.conn.name,
                        wire[:64],
                        held.ack.id,
                        held.reasons[wire],
                    )
            if held.waiting:
                return
            del self._held[ref]
        ack = Ack(
            id=held.ack.id,
            delivered=held.ack.delivered + tuple(held.delivered),
            missing=held.ack.missing + tuple(held.missing),
            reasons={**held.ack.reasons, **held.reasons},
        )
        held.conn.outbox.offer(encode(ack, max_frame=ABSOLUTE_MAX_FRAME))

    def notify(self, stand_ins: Sequence[Connection], frame: bytes) -> None:
        # With each stand-in's key: the frame is for the member this node saw (a ``prekeys_held`` count
        # is one identity's), not for whoever holds the name on its node now.
        by_node, keys = _by_node(stand_ins)
        self.node.notice(by_node, frame, keys=keys)

    def mail_waiting(self, names: Sequence[str]) -> None:
        self.node.mail_waiting(names)

    # --- monitoring ---------------------------------------------------------------------

    @property
    def remote_members(self) -> int:
        return len(self._stand_ins)

    def status(self) -> dict[str, object]:
        """The ``cluster`` section of ``--status-port``: no names, as the rest of it."""
        up = self.node.up
        section: dict[str, object] = {
            "node": self.node.node,
            "state": "up" if up else "down",
            "redis_ms": None if self.latency_ms is None else round(self.latency_ms, 2),
            "remote_members": self.remote_members,
        }
        if not up:
            section["error"] = self.node.down_reason
        return section

    # --- the cluster thread -----------------------------------------------------------

    def start(self) -> None:
        self.node.start()
        self._thread = threading.Thread(target=self._run, name="relay-cluster", daemon=True)
        self._thread.start()
        self._publisher = threading.Thread(target=self._publish, name="relay-cluster-publish", daemon=True)
        self._publisher.start()

    def close(self) -> None:
        """Stop polling; this node's members leave and its names are freed at once (not after the TTL)."""
        self._stopping.set()
        for thread in (self._thread, self._publisher):
            if thread is not None:
                thread.join(STOP_TIMEOUT)
        self.node.close()

    def _publish(self) -> None:
        """The publisher thread: sends and reports reach Redis in batches, never from an I/O thread."""
        while not self._stopping.is_set():
            try:
                self.node.publish_queued(POLL_BLOCK_MS / 1000)
            except Exception:  # a bug here must not end cross-node delivery for good
                log.exception("cluster publish failed")
                self._stopping.wait(OUTAGE_RETRY)

    def _run(self) -> None:
        # Frames offered while handling one poll's events go out in one write per member, as an
        # I/O thread's pass does, not one system call per frame.
        batch = own_batch()
        while not self._stopping.is_set():
            try:
                events = self.node.poll(self._clock(), POLL_BLOCK_MS if self.node.up else None)
                batch.active = True
                try:
                    for event in events:
                        self.handle(event)
                finally:
                    batch.flush()
                self._measure()
            except Exception:  # a bug here must not end cross-node delivery for good
                log.exception("cluster poll failed")
                self._stopping.wait(OUTAGE_RETRY)
            if not self.node.up:
                self.latency_ms = None
                self._stopping.wait(OUTAGE_RETRY)

    def _measure(self) -> None:
        now = self._clock()
        if not self.node.up or now < self._next_ping:
            return
        self._next_ping = now + self.node.refresh_interval
        started = time.perf_counter()
        try:
            self.node.presence.client.ping()
        except redis.RedisError:
            self.latency_ms = None
            return
        self.latency_ms = (time.perf_counter() - started) * 1000

    def handle(self, event: Event) -> None:
        if isinstance(event, Inbound):
            self._inbound(event)
        elif isinstance(event, Outcome):
            self._settle(event.send_ref, event.delivered, event.missing, event.reason)
        elif isinstance(event, Notice):
            self._notice(event)
        elif isinstance(event, MailWaiting):
            for peer in self._here(event.names):
                self.core.mailbox.pump(peer)
        elif isinstance(event, RemoteJoined):
            self._remote_joined(event)
        elif isinstance(event, RemoteLeft):
            self._remote_left(event.name)
        elif isinstance(event, NameLost):
            self._name_lost(event.name_key)
        elif isinstance(event, (ClusterDown, ClusterUp)):
            pass  # the node logged it; sends meanwhile were reported not delivered as they came

    def _inbound(self, inbound: Inbound) -> None:
        # A sender this node had not seen arrive came as a ``RemoteJoined`` just before (``ClusterNode.poll``).
        frames = dict(inbound.frames)
        keys = dict(zip((name for name, _ in inbound.frames), inbound.keys, strict=True)) if inbound.keys else None
        if keys is None and inbound.frames and inbound.origin not in self._unkeyed:
            # A node of the release before (a rolling upgrade): its copies go by name, as they did then.
            self._unkeyed.add(inbound.origin)
            log.warning("cluster-unkeyed-deliveries origin=%s (copies matched by name only)", inbound.origin)
        found, missing = self.core.roster.lookup(frames)  # one lock for the whole entry
        delivered: list[str] = []
        tag = None if inbound.sender is None else (self._sender(inbound.origin, inbound.sender), inbound.sender.msg_id)
        for wire_name, _, peer in found:
            if keys is not None and peer.node is None and peer.ik != keys[wire_name]:
                # The name is held here by another key than the member the sender's node routed to (it
                # left, and another took the name before that node's refresh): not this member's copy.
                log.info("cluster-skip deliver name=%s reason=other_key", peer.name)
                missing.append(wire_name)
            elif peer.node is None and peer.outbox.offer(frames[wire_name], tag):
                delivered.append(wire_name)
            else:
                missing.append(wire_name)
        self.node.answer(inbound, delivered, missing)

    def _sender(self, node: str, sender: Sender) -> Connection:
        """The tag holder for ``sender``'s copies: one per sending connection, so the core's report of
        what one member's connection threw away names them in one ``dropped`` per sender, as here."""
        key = (node, sender.name, sender.session)
        with self._lock:
            held = self._senders.get(key)
            if held is not None:
                self._senders.move_to_end(key)
                return held
            held = Connection(
                id=0,
                address=f"node:{node}",
                outbox=_ToSender(self, node, sender.name, sender.session),
                decoder=FrameDecoder(1),
                nonce=b"",
                name=sender.name,
                node=node,
            )
            self._senders[key] = held
            while len(self._senders) > MAX_REMOTE_SENDERS:
                self._senders.popitem(last=False)
            return held

    def _here(self, names: Sequence[str]) -> list[Connection]:
        """The members of this node among ``names`` (a name held by a stand-in is another node's)."""
        found, _ = self.core.roster.lookup(names)
        return [peer for _, _, peer in found if peer.node is None]

    def _notice(self, notice: Notice) -> None:
        keys = dict(zip(notice.names, notice.keys, strict=True)) if notice.keys else None
        found, _ = self.core.roster.lookup(notice.names)
        for asked, _, peer in found:
            if peer.node is not None:  # a stand-in: that name is another node's member now
                continue
            if notice.session is not None and peer.id != notice.session:
                continue
            if keys is not None and peer.ik != keys[asked]:
                # The name is held here by another identity key than the member the sender's node saw
                # (it re-registered the name before that node's refresh): not this member's frame.
                log.info("cluster-skip notice name=%s reason=other_key", peer.name)
                continue
            peer.outbox.offer(notice.frame)

    def _local(self, others: list[RosterEntry[Connection]], frame: bytes) -> None:
        for entry in others:
            if entry.peer.node is None:
                entry.peer.outbox.offer(frame)

    def _remote_joined(self, event: RemoteJoined) -> None:
        member = member_of(event.record)
        where = self.node.where(event.name)
        if member is None or member.name != event.name or where is None:
            log.warning("cluster-bad-record name=%r", event.name[:64])
            return
        roster = self.core.roster
        with self._lock:
            current = self._stand_ins.get(member.name)
        if current is not None and current.node == where and current.ik == member.ik:  # a rekey over there
            rekeyed = encode(Rekeyed(member=member), max_frame=ABSOLUTE_MAX_FRAME)
            roster.replace(member.name, current, member, lambda others: self._local(others, rekeyed))
            return
        if current is not None:
            self._remote_left(member.name)
        stand_in = Connection(
            id=0,
            address=f"node:{where}",
            outbox=_Elsewhere(),
            decoder=FrameDecoder(1),
            nonce=b"",
            name=member.name,
            ik=member.ik,
            node=where,
        )
        joined = encode(Joined(member=member), max_frame=ABSOLUTE_MAX_FRAME)
        with self._lock:  # before the roster: a send routed to it as soon as it is joined finds its key
            self._stand_ins[member.name] = stand_in
        try:
            roster.join(member, stand_in, lambda others: self._local(others, joined))
        except (NameTaken, SessionKeyInUse):
            # Held here too: only while a name moves between nodes; the claim decides who keeps it.
            with self._lock:
                if self._stand_ins.get(member.name) is stand_in:
                    del self._stand_ins[member.name]
            log.info("cluster-skip name=%s node=%s reason=held_here", member.name, where)
            return
        with self._lock:
            # An admit on an I/O thread may have claimed the name (or the key) between the recording and the join,
            # and swept the stand-in while it was not joined yet (its roster.leave found nothing). Kept in the
            # roster but no longer in _stand_ins, no RemoteLeft could remove it: a ghost member, and the name
            # refused here until a restart. The claim says the event was stale: it leaves at once.
            swept = self._stand_ins.get(member.name) is not stand_in
        if swept:
            left = encode(Left(name=member.name))
            roster.leave(member.name, stand_in, lambda others: self._local(others, left))
            log.info("cluster-skip name=%s node=%s reason=claimed_here", member.name, where)
            return
        log.info("remote-join name=%s node=%s members=%d", member.name, where, len(roster))

    def _remote_left(self, name: str) -> None:
        with self._lock:  # from the cluster thread, or an I/O thread's admit
            stand_in = self._stand_ins.pop(name, None)
        if stand_in is None:
            return
        with self._lock:  # its sessions there have ended: nothing dropped here is theirs to hear of now
            for key in [key for key in self._senders if key[1] == name]:
                del self._senders[key]
        left = encode(Left(name=name))
        if self.core.roster.leave(name, stand_in, lambda others: self._local(others, left)):
            log.info("remote-leave name=%s node=%s members=%d", name, stand_in.node, len(self.core.roster))

    def _name_lost(self, key: str) -> None:
        with self._lock:
            conn = self._claimed.pop(key, None)
        if conn is None:
            return
        # Ended now, not at the member's next frame: until then two sessions of one name (or one key) were
        # connected to the cluster, and a quiet member sends nothing for a keepalive interval or more.
        self.core.end(conn, ErrorCode.NAME_TAKEN, NAME_LOST_DETAIL, "name_lost")


def _by_node(stand_ins: Sequence[Connection]) -> tuple[dict[str, list[str]], dict[str, list[bytes]]]:
    """Node → the stand-ins' names, and node → their identity keys in the same order."""
    by_node: dict[str, list[str]] = {}
    keys: dict[str, list[bytes]] = {}
    for conn in stand_ins:
        if conn.node is not None and conn.name is not None:
            by_node.setdefault(conn.node, []).append(conn.name)
            keys.setdefault(conn.node, []).append(conn.ik)
    return by_node, keys


def open_cluster(url: str, password_file: str | None, config: RelayConfig) -> tuple[Backend, ClusterRouter]:
    """The Redis stores and the router of one node for ``--cluster URL``; raises ``ClusterConfigError``."""
    client = open_redis(url, read_password(password_file))
    router = ClusterRouter(ClusterNode(client, node_id(), queued=True))
    backend = Backend(
        RedisRoomStore(client),
        RedisMailboxStore(client, mailbox_limits(config)),
        RedisPrekeyStore(client),
        router,
    )
    return backend, router
