"""Cross-node delivery over Redis Streams: one entry per destination node per send, and reports back.

Each node reads one stream, ``stream:<node id>``. A ``send`` whose
recipients sit on other nodes becomes one ``XADD`` per destination node,
carrying only that node's recipients and their ready ``deliver`` frames
(ciphertext, as sealed by the sender), not one publish per recipient. The
destination node writes each frame to its member's outbox and answers with
one ``report`` entry on the sender's node stream: which of those
recipients it delivered to and which it did not.

Besides sends, a node tells another what its members must hear from here:
a ``notice`` carries one frame (a ``room_update``, a ``dropped``) for named
members of the destination node, once per node however many of them there
are; ``mail`` says mail was just posted for named members there, so that
node starts their drain now instead of at their next join. Neither has a
report: like a frame offered to a local outbox, it is the relay's best
effort, and a client that missed one catches up when it fetches.

Memory: a node trims its stream up to the last entry it handled at each
presence refresh (``XTRIM MINID``, every 3 s), so Redis holds little more than entries not read yet;
``STREAM_MAXLEN`` caps those too, and a dead node's stream expires
(``STREAM_TTL``), since node ids are never reused.

Recovery: a node reads its stream from the id of the last entry it
handled, so after losing Redis for a moment it picks up every entry added
meanwhile, in order, exactly once. What Redis itself lost (restarted
without persistence, or the stream trimmed at ``STREAM_MAXLEN`` past an
unread entry) has no report, and the sender's node reports those
recipients *not delivered* when ``REPORT_TIMEOUT`` passes (``Pending``):
never delivered on Redis's word alone.

``Pending`` is pure (``now`` passed in); ``NodeStreams`` is the Redis edge.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack
import redis

from susurro.protocol.limits import (
    ABSOLUTE_MAX_FRAME,
    MAX_MSG_ID_CHARS,
    MAX_NAME_CHARS,
    MAX_RECIPIENTS,
    PUBLIC_KEY_SIZE,
)

from .errors import RedisUnavailable

log = logging.getLogger("susurro.relay")

#: Entries a node's stream keeps; older ones are trimmed (exactly) as new ones come.
#: A hostile sender cannot grow another node's stream, or its memory, past this.
STREAM_MAXLEN = 10_000
#: Seconds a sender's node waits for a destination node's report before saying "not delivered".
REPORT_TIMEOUT = 10.0
#: Entries read per ``XREAD``.
READ_COUNT = 256
#: Seconds a stream outlives the last write or refresh to it: its reader refreshes it while alive
#: (``keep``), so only the stream of a node that died, and its unread entries, go away by themselves.
STREAM_TTL = 60.0
#: Bytes of one entry: a send's frames fit in one frame of the relay, plus per copy what the entry and
#: each deliver frame add to it: the recipient's name in the pair and the sender's name (the frame's
#: ``from``) and the message id, each at 4 UTF-8 bytes a character with its header, the recipient's
#: identity key (session 9) and framing; for as many copies as any relay may be configured to take
#: (``--max-recipients`` goes to ``MAX_RECIPIENTS``, 1,024: counted at the default 256, a maximal send to
#: 1,024 names on other nodes did not encode, and its recipients were said ``cluster_down``).
MAX_ENTRY_BYTES = (
    ABSOLUTE_MAX_FRAME
    + MAX_RECIPIENTS * (2 * (4 * MAX_NAME_CHARS + 3) + 4 * MAX_MSG_ID_CHARS + PUBLIC_KEY_SIZE + 32)
    + 1024
)
#: Version 2: a ``deliver`` entry names its sender's message and connection (for ``dropped``);
#: ``notice`` and ``mail`` entries. Every node of a cluster runs the same release; an entry of
#: another version is skipped, so its recipients are reported not delivered (``no_report``).
#: A notice for members may carry their identity keys as an eighth field (session 8); one of seven
#: is read as before, and a node of an earlier release skips one of eight (a notice is best effort).
#: A deliver entry carries its recipients' identity keys as a seventh field (session 9), one per
#: frame: one of six is read as before (by name only); a node of an earlier release skips one of
#: seven, so its recipients are reported not delivered (``no_report``), never handed to the wrong one.
VERSION = 2


class StreamError(RedisUnavailable):
    """Redis could not be reached or refused; the caller reports remote recipients not delivered."""


class BadEntry(Exception):
    """An entry that is not one this code writes (another version, or written by something else)."""


class Stored(enum.Enum):
    """What became of one entry handed to ``NodeStreams.publish_all``."""

    STORED = "stored"
    #: Redis answered the ``XADD`` with an error (out of memory, say): its recipients are ``cluster_down``.
    FAILED = "failed"
    #: It does not encode within ``MAX_ENTRY_BYTES`` (no send within the relay's limits does), so it was
    #: never sent: not Redis's doing, and its recipients are not said ``cluster_down``.
    TOO_LARGE = "too_large"


class Kind(enum.Enum):
    DELIVER = "deliver"
    REPORT = "report"
    NOTICE = "notice"
    MAIL = "mail"


@dataclass(frozen=True, slots=True)
class Sender:
    """Whose message a ``Deliveries`` carries: its name, the ``send``'s id and the sending connection
    on the origin node, so a copy the destination throws away is named back to that connection; and
    the sender's member record, so a destination that has not seen the sender arrive yet (it learns of
    other nodes' members at its next presence refresh) announces it before the message."""

    name: str
    msg_id: str
    session: int
    record: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class Deliveries:
    """Frames for members of one destination node, from one send on ``origin``; with ``keys``, one
    per frame, each only for the connection there that holds that identity key: the member the
    sending node routed to, not whoever holds the name there now (which that node may not have seen
    change yet: the member left, and another key took its name, before its next refresh)."""

    origin: str
    send_ref: int
    frames: tuple[tuple[str, bytes], ...]  # (recipient name, deliver frame)
    sender: Sender | None = None
    keys: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        if self.keys and len(self.keys) != len(self.frames):
            raise ValueError("a deliver entry's keys are one per frame, or none")


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """What a destination node did with one ``Deliveries``."""

    origin: str
    send_ref: int
    delivered: tuple[str, ...]
    missing: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Notice:
    """One frame for members of the destination node: to each of ``names`` that is connected there
    (with ``session``, only if that name's connection is the one with this id; with ``keys``, one per
    name, only if that name's connection holds that identity key: the member the frame was for, not
    whoever holds the name there now, which the sending node may not have seen change yet)."""

    origin: str
    names: tuple[str, ...]
    frame: bytes
    session: int | None = None
    keys: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        if self.keys and len(self.keys) != len(self.names):
            raise ValueError("a notice's keys are one per name, or none")


@dataclass(frozen=True, slots=True, kw_only=True)
class MailWaiting:
    """Mail was just posted for these members of the destination node: drain it to them now."""

    origin: str
    names: tuple[str, ...]


Entry = Deliveries | Report | Notice | MailWaiting


def encode_entry(entry: Entry) -> bytes:
    body: list[Any]
    if isinstance(entry, Deliveries):
        who = entry.sender
        sender = None if who is None else [who.name, who.msg_id, who.session, who.record]
        # The (name, frame) tuples pack as arrays as they are: no list per copy.
        body = [VERSION, Kind.DELIVER.value, entry.origin, entry.send_ref, entry.frames, sender]
        if entry.keys:
            body.append(entry.keys)
    elif isinstance(entry, Report):
        body = [VERSION, Kind.REPORT.value, entry.origin, entry.send_ref, list(entry.delivered), list(entry.missing)]
    elif isinstance(entry, Notice):
        body = [VERSION, Kind.NOTICE.value, entry.origin, 0, list(entry.names), entry.frame, entry.session]
        if entry.keys:
            body.append(list(entry.keys))
    else:
        body = [VERSION, Kind.MAIL.value, entry.origin, 0, list(entry.names)]
    packed = msgpack.packb(body, use_bin_type=True)
    assert isinstance(packed, bytes)
    if len(packed) > MAX_ENTRY_BYTES:
        raise ValueError(f"a stream entry is at most {MAX_ENTRY_BYTES} bytes, not {len(packed)}")
    return packed


def decode_entry(data: bytes) -> Entry:
    if len(data) > MAX_ENTRY_BYTES:
        raise BadEntry(f"entry of {len(data)} bytes")
    try:
        # Arrays as tuples: a deliver entry's (name, frame) pairs are then the Deliveries' own, not copied.
        body = msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=False)
        if not isinstance(body, tuple) or len(body) < 4:  # a map's body[:4] is a KeyError from Python 3.12
            raise BadEntry("an entry is an array of at least four fields")
        version, kind, origin, send_ref = body[:4]
        if version != VERSION or not isinstance(origin, str) or not isinstance(send_ref, int):
            raise BadEntry(f"not a version {VERSION} entry")
        if kind == Kind.DELIVER.value and len(body) in (6, 7):
            frames = body[4]
            if not isinstance(frames, tuple) or not all(
                type(pair) is tuple and len(pair) == 2 and type(pair[0]) is str and type(pair[1]) is bytes
                for pair in frames
            ):
                raise BadEntry("frames are (name, frame) pairs")
            keys = _keys(body[6], len(frames)) if len(body) == 7 else ()
            return Deliveries(origin=origin, send_ref=send_ref, frames=frames, sender=_sender(body[5]), keys=keys)
        if kind == Kind.NOTICE.value and len(body) in (7, 8):
            frame, session = body[5], body[6]
            if not isinstance(frame, bytes) or not (session is None or type(session) is int):
                raise BadEntry("a notice is a frame (bytes) and a session id or nil")
            names = _names(body[4])
            keys = _keys(body[7], len(names)) if len(body) == 8 else ()
            return Notice(origin=origin, names=names, frame=frame, session=session, keys=keys)
        if kind == Kind.MAIL.value and len(body) == 5:
            return MailWaiting(origin=origin, names=_names(body[4]))
        if kind == Kind.REPORT.value and len(body) == 6:
            return Report(
                origin=origin,
                send_ref=send_ref,
                delivered=_names(body[4]),
                missing=_names(body[5]),
            )
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise BadEntry(str(exc)) from None
    raise BadEntry(f"unknown entry kind {kind!r}")


def _names(raw: object) -> tuple[str, ...]:
    if not isinstance(raw, tuple) or not all(type(name) is str for name in raw):
        raise BadEntry("names are a list of strings")
    return raw


def _keys(raw: object, count: int) -> tuple[bytes, ...]:
    if (
        not isinstance(raw, tuple)
        or len(raw) != count
        or not all(type(key) is bytes and len(key) == PUBLIC_KEY_SIZE for key in raw)
    ):
        raise BadEntry(f"an entry's keys are {PUBLIC_KEY_SIZE}-byte identity keys, one per recipient")
    return raw


def _sender(raw: object) -> Sender | None:
    if raw is None:
        return None
    if not isinstance(raw, tuple) or len(raw) != 4:
        raise BadEntry("a sender is [name, id, session, record]")
    name, msg_id, session, record = raw
    if not (isinstance(name, str) and isinstance(msg_id, str) and type(session) is int and isinstance(record, bytes)):
        raise BadEntry("a sender is [name, id, session, record]")
    return Sender(name, msg_id, session, record)


@dataclass
class _Waiting:
    deadline: float
    names: set[str]


@dataclass
class Pending:
    """Remote recipients of this node's sends that no report has answered yet. Pure: ``now`` is given."""

    timeout: float = REPORT_TIMEOUT
    _waiting: dict[int, _Waiting] = field(default_factory=dict)

    def expect(self, send_ref: int, names: Sequence[str], now: float) -> None:
        if names:
            self._waiting.setdefault(send_ref, _Waiting(now + self.timeout, set())).names.update(names)

    def answer(self, report: Report) -> tuple[list[str], list[str]]:
        """(delivered, missing) of a report, only for names still waited for (a late or repeated report adds none)."""
        waiting = self._waiting.get(report.send_ref)
        if waiting is None:
            return [], []
        delivered = sorted(waiting.names.intersection(report.delivered))
        missing = sorted(waiting.names.intersection(report.missing))
        waiting.names.difference_update(delivered, missing)
        if not waiting.names:
            del self._waiting[report.send_ref]
        return delivered, missing

    def fail(self, send_ref: int, names: Sequence[str]) -> list[str]:
        """Names of a send that could not even be published: not delivered now."""
        waiting = self._waiting.get(send_ref)
        if waiting is None:
            return []
        gone = sorted(waiting.names.intersection(names))
        waiting.names.difference_update(gone)
        if not waiting.names:
            del self._waiting[send_ref]
        return gone

    def expired(self, now: float) -> dict[int, list[str]]:
        """Sends whose deadline passed: every name still waited for is not delivered."""
        late = {ref: sorted(w.names) for ref, w in self._waiting.items() if w.deadline <= now}
        for ref in late:
            del self._waiting[ref]
        return late

    def __len__(self) -> int:
        return sum(len(w.names) for w in self._waiting.values())


class NodeStreams:
    """This node's end of the streams: publish to other nodes, read its own."""

    def __init__(
        self, client: redis.Redis, node: str, *, prefix: str = "susurro:", maxlen: int = STREAM_MAXLEN
    ) -> None:
        self.client = client
        self.node = node
        self.maxlen = maxlen
        self._ttl_ms = int(STREAM_TTL * 1000)
        self._prefix = prefix
        #: The id of the last entry read from this node's stream; set by ``start`` (or the first ``read``).
        self.cursor: bytes | None = None

    def stream_key(self, node: str) -> bytes:
        return f"{self._prefix}stream:{node}".encode()

    def publish(self, entries: Mapping[str, Entry]) -> dict[str, Stored]:
        """One ``XADD`` per destination node, in one round trip; what became of each."""
        nodes = list(entries)
        return dict(zip(nodes, self.publish_all([(node, entries[node]) for node in nodes]), strict=True))

    def publish_all(self, entries: Sequence[tuple[str, Entry]]) -> list[Stored]:
        """Any number of entries (several to one node, in order) in one round trip; what became of each."""
        if not entries:
            return []
        # Each encoded first: one that does not (over MAX_ENTRY_BYTES) is not stored, and the rest of the
        # batch (other senders' copies, reports, notices) still goes.
        packed: list[tuple[str, bytes | None]] = []
        for node, entry in entries:
            try:
                packed.append((node, encode_entry(entry)))
            except ValueError as exc:
                log.warning("cluster-entry-too-large node=%s kind=%s error=%s", node, type(entry).__name__, exc)
                packed.append((node, None))
        sent = [(node, data) for node, data in packed if data is not None]
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for node, data in sent:
                    pipe.xadd(self.stream_key(node), {b"e": data}, maxlen=self.maxlen, approximate=False)
                    pipe.pexpire(self.stream_key(node), self._ttl_ms)
                replies = pipe.execute(raise_on_error=False) if sent else []
        except redis.RedisError as exc:
            raise StreamError(f"cross-node delivery: Redis: {exc}") from None
        stored = iter([Stored.FAILED if isinstance(reply, Exception) else Stored.STORED for reply in replies[0::2]])
        return [Stored.TOO_LARGE if data is None else next(stored) for _, data in packed]

    def keep(self) -> None:
        """This node is alive: its stream does not expire; and what it has read is handed over, so Redis
        need not keep it (the cursor's own entry stays, harmless). Called at each presence refresh, not per
        read: a trim per read would be one more round trip for every cross-node message."""
        key = self.stream_key(self.node)
        try:
            with self.client.pipeline(transaction=False) as pipe:
                pipe.pexpire(key, self._ttl_ms)
                if self.cursor is not None:
                    pipe.xtrim(key, minid=self.cursor, approximate=False)
                pipe.execute()
        except redis.RedisError as exc:
            raise StreamError(f"cross-node delivery: Redis: {exc}") from None

    def start(self) -> None:
        """Read from now on (what was added before this node started is not for it)."""
        try:
            info = self.client.xinfo_stream(self.stream_key(self.node))
            self.cursor = info["last-generated-id"]
        except redis.ResponseError:  # no stream yet: everything in it will be new
            self.cursor = b"0-0"
        except redis.RedisError as exc:
            raise StreamError(f"cross-node delivery: Redis: {exc}") from None

    def read(self, block_ms: int | None = None, count: int = READ_COUNT) -> list[Entry]:
        """Entries after the cursor, in order (waiting up to ``block_ms`` for the first); the cursor moves past them.

        A malformed entry is skipped (and the cursor moves past it): it cannot stall the node.
        """
        if self.cursor is None:
            self.start()
        assert self.cursor is not None
        try:
            reply = self.client.xread({self.stream_key(self.node): self.cursor}, count=count, block=block_ms)
        except redis.RedisError as exc:
            raise StreamError(f"cross-node delivery: Redis: {exc}") from None
        entries: list[Entry] = []
        for _, messages in reply or []:
            for entry_id, fields in messages:
                self.cursor = entry_id
                try:
                    entries.append(decode_entry(fields.get(b"e", b"")))
                except BadEntry:
                    continue
        return entries
