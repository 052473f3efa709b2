"""The relay's logic, with no sockets: bytes from a connection in, frames to
outboxes out.

``RelayCore`` owns the roster and decides who gets what. It never sees a
private key or a plaintext: a ``send`` carries one opaque ciphertext per
recipient, and each recipient is handed only its own. Every bad input becomes
an ``error`` frame for that connection alone, at one boundary (``receive``);
nothing a client sends can raise out of it.
"""

from __future__ import annotations

import ipaddress
import itertools
import logging
import os
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

from susurro.crypto import (
    BadCertificate,
    BadSignature,
    IdentityPublicKey,
    SessionCertificate,
    short_fingerprint,
    verify_join_proof,
)
from susurro.protocol import (
    CLIENT_FRAMES,
    Ack,
    Bye,
    Challenge,
    DeliverEncoder,
    Dropped,
    DropReason,
    Error,
    ErrorCode,
    Frame,
    FrameDecoder,
    Hello,
    Joined,
    Keepalive,
    KeepaliveAck,
    Left,
    Member,
    Ping,
    Pong,
    ProtocolError,
    Rekey,
    Rekeyed,
    RemoteProtocolError,
    Send,
    Shutdown,
    decode_frame,
    encode,
    encode_welcome,
    normalize_name,
)
from susurro.protocol.fastpath import encode_ack_packed, packed_names
from susurro.protocol.frames import MAX_DROPPED_IDS
from susurro.protocol.limits import ABSOLUTE_MAX_FRAME, CHALLENGE_SIZE, LENGTH_PREFIX_SIZE, MAX_HANDSHAKE_FRAME

from .config import RelayConfig
from .logsetup import info_line
from .mailbox import MailboxService, mailbox_limits
from .outbox import Outbox
from .peer import Peer
from .registry import NameRegistry
from .rooms import RoomService
from .roster import IdentityInUse, NameTaken, Roster, RosterEntry, SessionKeyInUse
from .store import RoomStore, open_room_store
from .store.mailbox import MailboxStore, PrekeyStore, SQLiteMailboxStore, SQLitePrekeyStore

log = logging.getLogger("susurro.relay")

#: Hex characters of each ciphertext shown in a ``deliver`` log line.
CIPHERTEXT_LOG_PREFIX = 32
_LENGTH = struct.Struct(">I")
#: Framing errors leave the byte stream out of sync: the connection must go.
_FATAL_CODES = frozenset({ErrorCode.BAD_FRAME, ErrorCode.FRAME_TOO_LARGE})
#: Timeouts end a connection whatever its state.
_CLOSING_CODES = frozenset({ErrorCode.HANDSHAKE_TIMEOUT, ErrorCode.IDLE_TIMEOUT})


class OutboxLike(Protocol):
    def offer(self, data: bytes, tag: Hashable | None = None) -> bool: ...


#: The senders whose last ``_Delivered`` the core keeps (``_delivered_for``); when as many are kept,
#: it starts over. More than the N = 100 benchmark's hundred senders, and at most
#: ``MEMO_SENDERS * MEMO_NAMES`` entries held (16,384 pointers and two short strings per memo).
MEMO_SENDERS = 128
#: The most names a kept ``_Delivered`` has: a larger room's ack costs little next to its copies.
MEMO_NAMES = 128

#: The outbox's reasons for giving up (``relay/outbox.py``) as the ``dropped`` frame says them.
_DROP_REASONS = {"slow_consumer": DropReason.SLOW_READER, "write failed": DropReason.WRITE_FAILED}


@dataclass(eq=False)
class Connection:
    """One client connection's protocol state. ``name`` is set once joined."""

    id: int
    address: str
    outbox: OutboxLike
    decoder: FrameDecoder
    nonce: bytes
    name: str | None = None
    closing: bool = False
    # The source address (for the per-address limit) and why the
    # relay chose to close (for the leave log line). Flood control paces
    # reads, so it lives with the sockets (relay/loop.py), not here.
    ip: str = ""
    close_reason: str | None = None
    # The identity key it joined with, for room presence.
    ik: bytes = b""
    # Set on the roster's stand-ins for members of another relay node (``--cluster``):
    # that node's id. Frames for them go through the ``Router``, never to ``outbox``.
    node: str | None = None
    # Set by the I/O layer: ends this connection from any thread (its own I/O thread closes it,
    # flushing what is queued first). The core stays socket-free: this is all it knows of the socket.
    end: Callable[[str], None] | None = None

    @property
    def joined(self) -> bool:
        return self.name is not None

    def label(self) -> str:
        return f"name={self.name}" if self.name else f"conn={self.id}"


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a ``Router`` will not admit a member: the error's code and the detail the joiner reads."""

    code: ErrorCode
    detail: str


class Router(Protocol):
    """Members beyond this process: the cluster (``relay/cluster/router.py``) implements it.

    The core calls it at the points where it admits, drops and routes, and
    knows nothing else of other nodes; ``LocalOnly`` (no ``--cluster``) does nothing.
    """

    def admit(self, conn: Connection, member: Member) -> Refusal | None:
        """Claim ``member``'s name and identity key for ``conn`` across the cluster; why not, or None."""
        ...

    def depart(self, conn: Connection, name: str) -> None:
        """``conn`` left (or failed to join after ``admit``): free its name and presence."""
        ...

    def changed(self, conn: Connection, member: Member) -> None:
        """``conn``'s member record changed (a rekey): tell the other nodes."""
        ...

    def forward(self, conn: Connection, frames: dict[str, tuple[str, bytes]], ack: Ack) -> None:
        """Hand ``deliver`` frames (roster name -> (name as sent, frame)) to the other nodes and send
        ``conn`` the ``ack`` once they report: ``ack`` holds what this node did, these names go to
        ``delivered`` or ``missing`` as the other nodes say (or ``missing`` after a timeout)."""
        ...

    def notify(self, stand_ins: Sequence[Connection], frame: bytes) -> None:
        """``frame`` (a room's news) for these members of other nodes: their nodes hand it on."""
        ...

    def mail_waiting(self, names: Sequence[str]) -> None:
        """Mail was just stored for these owners, who do not drain it here: if they are connected
        to another node, that node starts their drain."""
        ...


class LocalOnly:
    """One relay process: no other node holds a name or a member."""

    def admit(self, conn: Connection, member: Member) -> Refusal | None:
        return None

    def depart(self, conn: Connection, name: str) -> None:
        pass

    def changed(self, conn: Connection, member: Member) -> None:
        pass

    def forward(self, conn: Connection, frames: dict[str, tuple[str, bytes]], ack: Ack) -> None:
        # Unreachable without stand-ins in the roster; kept exact anyway.
        missing = ack.missing + tuple(wire for wire, _ in frames.values())
        conn.outbox.offer(
            encode(Ack(id=ack.id, delivered=ack.delivered, missing=missing), max_frame=ABSOLUTE_MAX_FRAME)
        )

    def notify(self, stand_ins: Sequence[Connection], frame: bytes) -> None:
        pass

    def mail_waiting(self, names: Sequence[str]) -> None:
        pass


@dataclass(frozen=True, slots=True)
class Backend:
    """Where the core keeps rooms, mailboxes and prekeys, and who else routes: SQLite and
    ``LocalOnly`` by default; Redis and the cluster's router with ``--cluster``."""

    rooms: RoomStore
    mailboxes: MailboxStore
    prekeys: PrekeyStore
    router: Router


def _ct_log(ct: bytes, whole: bool) -> str:
    if whole or len(ct) * 2 <= CIPHERTEXT_LOG_PREFIX:
        return ct.hex()
    return ct[: CIPHERTEXT_LOG_PREFIX // 2].hex() + "..."


def is_loopback(ip: str) -> bool:
    """True for 127.0.0.0/8, ::1 and IPv4-mapped loopback; False for anything unparsable."""
    try:
        address = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool(address.is_loopback or (mapped is not None and mapped.is_loopback))


#: A held send: (the send, its local copies as three parallel lists: the members, the names as
#: sent and the ciphertexts, then the missing names and the remote copies).
_HeldSend = tuple[Send, list[RosterEntry[Connection]], list[str], list[bytes], list[str], dict[str, tuple[str, bytes]]]


def _once_each(
    entries: list[RosterEntry[Connection]], asked: list[str], cts: list[bytes], missing: list[str]
) -> tuple[list[RosterEntry[Connection]], list[str], list[bytes]]:
    """The copies of a send that named a member twice ("bob" and "BOB"), the first of each member
    kept; each later name goes to ``missing``, in order."""
    kept: tuple[list[RosterEntry[Connection]], list[str], list[bytes]] = ([], [], [])
    reached: set[str] = set()
    for entry, name, ct in zip(entries, asked, cts, strict=True):
        if entry.name in reached:
            missing.append(name)
            continue
        reached.add(entry.name)
        kept[0].append(entry)
        kept[1].append(name)
        kept[2].append(ct)
    return kept


def _local_only(
    entries: list[RosterEntry[Connection]], asked: list[str], cts: list[bytes]
) -> tuple[list[RosterEntry[Connection]], list[str], list[bytes]]:
    """The copies among a send's whose member is on this node (not a stand-in for another's)."""
    here = [i for i in range(len(entries)) if entries[i].peer.node is None]
    return [entries[i] for i in here], [asked[i] for i in here], [cts[i] for i in here]


class _Delivered:
    """The members one send's copies reached, as its ``ack`` and its log line name them.

    A sender's messages to a room all reach the same members, so ``_settle``
    keeps the last of these for the run (``_Held.delivered``) and the core
    the last of each recent sender (``RelayCore._delivered_for``), and the
    names are packed and joined once: at N = 100, packing 99 names into
    every ``ack`` was a fortieth of a message. The core's are bounded
    (``MEMO_SENDERS`` of at most ``MEMO_NAMES`` names) and kept in the
    roster's ``kept``, which it empties at every change: they never keep a
    member who left.
    """

    __slots__ = ("_joined", "_packed", "entries", "names")

    def __init__(self, entries: list[RosterEntry[Connection]]) -> None:
        self.entries = entries
        self.names = [entry.name for entry in entries]
        # Each made when first asked for: a relay logging at WARNING, or auditing every
        # copy, never joins them, and a send with copies on other nodes never packs them.
        self._joined: str | None = None
        self._packed: bytes | None = None

    def joined(self) -> str:
        """The names as the log line's ``to=`` gives them."""
        if self._joined is None:
            self._joined = ",".join(self.names)
        return self._joined

    def packed(self) -> bytes:
        """The names as the ack's ``delivered``, msgpack."""
        if self._packed is None:
            self._packed = packed_names(self.names)
        return self._packed


class _Held:
    """The copies and acks of a run of sends read at once, offered together by ``_release``.

    Near saturation one read holds many frames (a 64 KiB read is twenty
    sends at N = 10), and offering each copy on its own was a sixth of the
    I/O loop: a recipient's copies of the run go out as one offer (one
    lock, one meter update, one frame string for the flush to join) and the
    sender's acks as another. Per run, not per core: the core serves every
    I/O thread.
    """

    __slots__ = ("copies", "delivered", "generation", "sends")

    def __init__(self) -> None:
        #: The roster's generation before the lookup of the first send held (-1: none yet).
        self.generation = -1
        #: The last send's ``_Delivered``, for the next one of the run that reached the same members.
        self.delivered: _Delivered | None = None
        #: outbox -> (its copies, their message ids), in the order first offered to.
        self.copies: dict[OutboxLike, tuple[list[bytes], list[str]]] = {}
        #: Per send, in order: (send, its local members, names as sent and ciphertexts, missing, remote).
        self.sends: list[_HeldSend] = []

    def hold(self, outbox: OutboxLike, frame: bytes, msg_id: str) -> None:
        group = self.copies.get(outbox)
        if group is None:
            self.copies[outbox] = ([frame], [msg_id])
        else:
            group[0].append(frame)
            group[1].append(msg_id)


class RelayCore:
    def __init__(
        self,
        config: RelayConfig,
        random_bytes: Callable[[int], bytes] = os.urandom,
        clock: Callable[[], float] = time.monotonic,
        backend: Backend | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """``clock`` times connections; ``wall_clock`` dates mail and prekey expiry (seconds since the epoch)."""
        self.config = config
        self.roster: Roster[Connection] = Roster()
        self._random_bytes = random_bytes
        self._clock = clock
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._connections: set[Connection] = set()
        # Raises RegistryError for an unreadable or corrupt file: the relay must not start without it.
        self.registry = NameRegistry(Path(config.registry), config.registry_max_names) if config.registry else None
        self._per_ip: Counter[str] = Counter()
        if backend is None:
            # Raises StoreError for a data dir or database it cannot open: the relay must not start without it.
            room_store = open_room_store(config.data_dir)
            # Mailboxes and prekeys live in the same database as the rooms.
            backend = Backend(
                room_store,
                SQLiteMailboxStore(room_store.database, mailbox_limits(config)),
                SQLitePrekeyStore(room_store.database),
                LocalOnly(),
            )
        self.router = backend.router
        self.rooms = RoomService(backend.rooms, config, self.roster.peers, self._notify)
        self.mailbox = MailboxService(
            backend.mailboxes,
            backend.prekeys,
            self._online,
            wall_clock,
            elsewhere=self.router.mail_waiting,
            address_of=self._counted_address,
            notify=self._notify,
        )
        #: One handler per client frame type; ``_dispatch`` refuses any other.
        self._handlers: dict[type[Frame], Callable[[Connection, Any], None]] = {
            Hello: self._handle_hello,
            Send: self._handle_send,
            Ping: self._handle_ping,
            KeepaliveAck: self._handle_keepalive_ack,
            Bye: self._handle_bye,
            Rekey: self._handle_rekey,
            # Room requests are the room service's (relay/rooms.py).
            **self.rooms.handlers(),
            # Mailbox and prekey requests are the mailbox service's (relay/mailbox.py).
            **self.mailbox.handlers(),
        }

    # --- connection lifecycle ---------------------------------------------

    @property
    def connection_count(self) -> int:
        with self._lock:
            return len(self._connections)

    def _counted_address(self, peer: object) -> str | None:
        """The source address per-address bounds count, as for connections (loopback exempt unless told)."""
        ip = getattr(peer, "ip", "")  # a cluster's stand-in, or a test's peer, has none
        return ip if ip and (self.config.limit_loopback or not is_loopback(ip)) else None

    def connect(self, outbox: OutboxLike, address: str, ip: str = "") -> Connection | None:
        """Admit a new connection and send its challenge; ``None`` if refused (full, or too many from ``ip``)."""
        counted = bool(ip) and (self.config.limit_loopback or not is_loopback(ip))
        refusal: Error | None = None
        with self._lock:
            if len(self._connections) >= self.config.max_clients:
                refusal = Error(code=ErrorCode.FULL.value, detail="the relay is full; try again later")
                log_detail = f"relay at max clients ({self.config.max_clients})"
            elif counted and self._per_ip[ip] >= self.config.max_per_ip:
                refusal = Error(
                    code=ErrorCode.TOO_MANY_CONNECTIONS.value,
                    detail=f"{self.config.max_per_ip} connections from your address already; close one and retry",
                )
                log_detail = f"{self.config.max_per_ip} connections from this address"
            else:
                conn = Connection(
                    id=next(self._ids),
                    address=address,
                    outbox=outbox,
                    # Until it joins, a peer is unauthenticated and may only send a hello.
                    decoder=FrameDecoder(min(MAX_HANDSHAKE_FRAME, self.config.max_frame)),
                    nonce=self._random_bytes(CHALLENGE_SIZE),
                    ip=ip if counted else "",
                )
                self._connections.add(conn)
                if counted:
                    self._per_ip[ip] += 1
        if refusal is not None:
            log.warning("reject addr=%s code=%s detail=%s", address, refusal.code, log_detail)
            outbox.offer(encode(refusal))
            return None
        log.info("connect conn=%d addr=%s", conn.id, address)
        self._send(
            conn,
            Challenge(nonce=conn.nonce, max_frame=self.config.max_frame, max_recipients=self.config.max_recipients),
        )
        return conn

    def disconnect(self, conn: Connection, reason: str) -> None:
        """Forget ``conn``; if it had joined, tell everyone else it left. Idempotent."""
        with self._lock:
            if conn not in self._connections:
                return
            self._connections.discard(conn)
            if conn.ip:
                self._per_ip[conn.ip] -= 1
                if self._per_ip[conn.ip] <= 0:
                    del self._per_ip[conn.ip]
        conn.closing = True
        if conn.name is None:
            log.info("close conn=%d addr=%s reason=%s", conn.id, conn.address, reason)
            return
        left = encode(Left(name=conn.name))

        def announce(others: list[RosterEntry[Connection]]) -> None:
            for entry in others:
                entry.peer.outbox.offer(left)

        self.mailbox.left(conn)
        if self.roster.leave(conn.name, conn, announce):
            self.router.depart(conn, conn.name)
            log.info("leave name=%s addr=%s reason=%s members=%d", conn.name, conn.address, reason, len(self.roster))

    def end(self, conn: Connection, code: ErrorCode, detail: str, reason: str) -> None:
        """End ``conn`` now from outside its I/O thread (the cluster's thread: its claim on the member's
        name was lost), telling it why first; not at its next frame, which a quiet member may never send.

        The ``error`` is offered like any frame to the member, and the I/O layer's ``end`` hook closes
        the connection from its own thread (the member leaves the roster there, as for any close)."""
        with self._lock:  # once: a second end (or one racing another close) does nothing
            if conn not in self._connections or conn.closing or conn.close_reason is not None:
                return
            conn.close_reason = reason
        log.warning("reject %s addr=%s code=%s detail=%s", conn.label(), conn.address, code.value, detail[:200])
        self._send(conn, Error(code=code.value, detail=detail))
        conn.closing = True  # after the error is queued: a frame read meanwhile ends it too
        if conn.end is not None:
            conn.end(reason)

    def report_dropped(self, conn: Connection, tags: list[Hashable], close_reason: str | None) -> None:
        """``conn`` is closed and its outbox threw away the copies tagged ``tags``: tell each sender which.

        The ack told them "queued"; without this they would learn of the
        loss only when no receipt comes. Senders that have gone (or the
        whole relay, shutting down) are told nothing.
        """
        if conn.name is None or not tags:
            return
        reason = _DROP_REASONS.get(close_reason or "", DropReason.CLOSED)
        by_sender: dict[Connection, dict[str, None]] = {}
        copies = 0
        # The tags _handle_send and _release gave: a message id, or the ids of one offer's copies.
        for sender, ids in cast("list[tuple[Connection, str | tuple[str, ...]]]", tags):
            for msg_id in (ids,) if isinstance(ids, str) else ids:
                by_sender.setdefault(sender, {})[msg_id] = None
                copies += 1
        told = 0
        for sender, held_ids in by_sender.items():
            if sender.closing or sender is conn:
                continue
            told += 1
            listed = list(held_ids)
            for start in range(0, len(listed), MAX_DROPPED_IDS):
                chunk = tuple(listed[start : start + MAX_DROPPED_IDS])
                self._send(sender, Dropped(name=conn.name, ids=chunk, reason=reason.value), limit=ABSOLUTE_MAX_FRAME)
        log.info("dropped name=%s copies=%d senders=%d reason=%s", conn.name, copies, told, reason.value)

    @staticmethod
    def _connections_of(peers: Iterable[Peer]) -> list[Connection]:
        # The services see the roster's peers through ``relay.peer.Peer``; every one is a Connection.
        return cast("list[Connection]", list(peers))

    def _notify(self, peers: Iterable[Peer], frame: bytes) -> None:
        """Offer ``frame`` to each of ``peers``; members of other nodes get it through the router,
        which hands it to each of their nodes once."""
        elsewhere = []
        for conn in self._connections_of(peers):
            if conn.node is None:
                conn.outbox.offer(frame)
            else:
                elsewhere.append(conn)
        if elsewhere:
            self.router.notify(elsewhere, frame)

    def _online(self, name: str) -> Connection | None:
        """The connection that holds ``name`` now (compared under the name rules), if any."""
        found, _ = self.roster.lookup([name])
        return found[0][2] if found else None

    def handshake_timed_out(self, conn: Connection) -> None:
        self._reject(conn, RemoteProtocolError(ErrorCode.HANDSHAKE_TIMEOUT, "no valid hello in time"))

    def keepalive(self, conn: Connection) -> None:
        """Probe a member that has been quiet for ``idle_ping`` seconds."""
        self._send(conn, Keepalive())

    def idle_timed_out(self, conn: Connection) -> None:
        detail = f"nothing heard for {self.config.idle_timeout:g} s"
        self._reject(conn, RemoteProtocolError(ErrorCode.IDLE_TIMEOUT, detail))
        conn.close_reason = "idle_timeout"

    def shutdown(self, reason: str) -> None:
        """Tell every connection the relay is going away."""
        frame = encode(Shutdown(reason=reason))
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            conn.outbox.offer(frame)
            conn.closing = True
        log.info("shutdown reason=%s connections=%d", reason, len(connections))

    # --- input --------------------------------------------------------------

    def receive(self, conn: Connection, data: bytes) -> bool:
        """Feed bytes from ``conn``; returns False when the connection must close.

        The single boundary where client errors become ``error`` frames.
        """
        if conn.closing:
            return False
        try:
            conn.decoder.feed(data)
            while (payload := conn.decoder.next_payload()) is not None:
                try:
                    frame = decode_frame(payload, CLIENT_FRAMES, max_bin_len=conn.decoder.max_frame)
                    self._dispatch(conn, frame)
                except ProtocolError as exc:
                    self._reject(conn, exc)
                if conn.closing:
                    return False
        except ProtocolError as exc:  # framing: the stream is out of sync
            self._reject(conn, exc)
            return False
        return not conn.closing

    def receive_frames(self, conn: Connection, data: bytes) -> bool:
        """``receive`` for bytes an I/O loop has split already: whole frames, each within the limit.

        Each payload is parsed where it lies (a ``memoryview`` of ``data``)
        instead of going through the decoder's buffer: a copy in, a copy out
        and two calls per frame less. The lengths are checked again here; from
        the first frame that is not whole and within ``max_frame`` (re-read
        after every frame: a hello raises it) the rest goes to ``receive``,
        which refuses or buffers it as it always has. Returns as ``receive``.
        """
        if conn.closing:
            return False
        if conn.decoder.buffered:  # part of a frame already waits there: keep the stream in order
            return self.receive(conn, data)
        view = memoryview(data)
        size = len(data)
        start = 0
        held: _Held | None = None  # a run of sends: their copies are offered together
        while start < size:
            limit = conn.decoder.max_frame
            length = _LENGTH.unpack_from(view, start)[0] if size - start >= LENGTH_PREFIX_SIZE else 0
            end = start + LENGTH_PREFIX_SIZE + length
            if not 0 < length <= limit or end > size:
                if held is not None:
                    self._release(conn, held)
                return self.receive(conn, data[start:])
            if held is None and end < size and conn.joined:
                held = _Held()
            try:
                frame = decode_frame(view[start + LENGTH_PREFIX_SIZE : end], CLIENT_FRAMES, max_bin_len=limit)
                if held is not None and type(frame) is Send:
                    self._handle_send(conn, frame, held)
                else:
                    if held is not None:  # what was held first goes first (a rekey, a bye, a room request)
                        self._release(conn, held)
                    self._dispatch(conn, frame)
            except ProtocolError as exc:
                if held is not None:  # the acks of the sends before it, then the error
                    self._release(conn, held)
                self._reject(conn, exc)
            if conn.closing:
                if held is not None:  # what was held still goes out, as one by one it would have
                    self._release(conn, held)
                return False
            start = end
        if held is not None:
            self._release(conn, held)
        return True

    def _reject(self, conn: Connection, exc: ProtocolError) -> None:
        log.warning("reject %s addr=%s code=%s detail=%s", conn.label(), conn.address, exc.code.value, exc.detail[:200])
        self._send(conn, Error.from_protocol_error(exc))
        # Before a join every error ends the attempt; after it, only errors that
        # desynchronize the stream do. One bad frame does not cost a member the room.
        if not conn.joined or exc.code in _FATAL_CODES or exc.code in _CLOSING_CODES:
            conn.closing = True

    def _dispatch(self, conn: Connection, frame: Frame) -> None:
        """Hand ``frame`` to the handler for its type (magic-wormhole's ``handle_<type>``).

        A type ``CLIENT_FRAMES`` decodes but no handler takes is refused with
        ``bad_type``: a frame the relay would drop unread must not look
        accepted to the client that sent it.
        """
        handler = self._handlers.get(type(frame))
        if handler is None:
            raise RemoteProtocolError(ErrorCode.BAD_TYPE, f"this relay does not handle {frame.TYPE!r} frames")
        if not conn.joined and not isinstance(frame, Hello):
            raise RemoteProtocolError(ErrorCode.NOT_JOINED, f"{frame.TYPE} before hello")
        handler(conn, frame)

    @property
    def handled_types(self) -> frozenset[type[Frame]]:
        """The client frame types this relay acts on."""
        return frozenset(self._handlers)

    # --- handlers -----------------------------------------------------------

    def _handle_hello(self, conn: Connection, hello: Hello) -> None:
        if conn.joined:
            raise RemoteProtocolError(ErrorCode.ALREADY_JOINED, "this connection has already joined")
        try:
            canonical = normalize_name(hello.name)
        except ProtocolError as exc:
            raise RemoteProtocolError(ErrorCode.BAD_NAME, exc.detail) from None
        if canonical != hello.name:
            raise RemoteProtocolError(ErrorCode.BAD_NAME, f"send the name in normalized form: {canonical!r}")
        try:
            verify_join_proof(hello.ik, hello.proof, conn.nonce, hello.name, hello.sk)
        except BadSignature:
            detail = "the join proof does not verify for this challenge"
            raise RemoteProtocolError(ErrorCode.BAD_PROOF, detail) from None
        try:
            SessionCertificate.of(hello).verify()
        except BadCertificate:
            raise RemoteProtocolError(ErrorCode.BAD_CERT, "the session certificate does not verify") from None
        if self.registry is not None and self.registry.admit(hello.name, hello.ik):
            log.info(
                "register name=%s fp=%s", hello.name, short_fingerprint(IdentityPublicKey(hello.ik)).replace(" ", "")
            )
        member = hello.member()
        joined = encode(Joined(member=member), max_frame=ABSOLUTE_MAX_FRAME)

        def announce(others: list[RosterEntry[Connection]]) -> None:
            # Under the roster lock, so the joiner's welcome is queued before any
            # later joined/left, and everyone else learns of it before it can send.
            conn.name = hello.name
            conn.ik = hello.ik
            conn.decoder.max_frame = self.config.max_frame
            # From each member's bytes packed when it joined: a welcome lists the whole room.
            welcome = encode_welcome(hello.name, [entry.packed for entry in others], max_frame=ABSOLUTE_MAX_FRAME)
            conn.outbox.offer(welcome)
            for entry in others:
                entry.peer.outbox.offer(joined)

        refusal = self.router.admit(conn, member)
        if refusal is not None:
            raise RemoteProtocolError(refusal.code, refusal.detail)
        try:
            self.roster.join(member, conn, announce)
        except IdentityInUse as held:
            self.router.depart(conn, member.name)
            detail = f"another session of this identity key is connected, as {held.args[0]!r}: one at a time"
            raise RemoteProtocolError(ErrorCode.IDENTITY_IN_USE, detail) from None
        except NameTaken as taken:
            self.router.depart(conn, member.name)
            present = taken.args[0]
            if present == hello.name:
                detail = f"the name {hello.name!r} is in use"
            else:
                detail = f"the name {hello.name!r} is in use: it looks like {present!r}, who is here"
            raise RemoteProtocolError(ErrorCode.NAME_TAKEN, detail) from None
        except SessionKeyInUse:
            self.router.depart(conn, member.name)
            raise RemoteProtocolError(ErrorCode.BAD_CERT, "that session key is in use by another member") from None
        log.info(
            "join name=%s fp=%s addr=%s members=%d",
            hello.name,
            short_fingerprint(IdentityPublicKey(hello.ik)).replace(" ", ""),
            conn.address,
            len(self.roster),
        )

    def _handle_ping(self, conn: Connection, ping: Ping) -> None:
        self._send(conn, Pong())

    def _handle_keepalive_ack(self, conn: Connection, ack: KeepaliveAck) -> None:
        pass  # hearing it at all reset the idle timer

    def _handle_bye(self, conn: Connection, bye: Bye) -> None:
        conn.closing = True

    def _handle_rekey(self, conn: Connection, rekey: Rekey) -> None:
        """A member rotates its session key: check the certificate, tell the others.

        The relay checks what it can (the certificate is signed by the identity
        key this connection joined with, and time moves forward) so a buggy or
        hostile client cannot make everyone else drop it; clients check again.
        """
        assert conn.name is not None
        current = self.roster.member(conn.name, conn)
        if current is None:
            raise RemoteProtocolError(ErrorCode.NOT_JOINED, "rekey from a connection that is not in the roster")
        if rekey.issued_at <= current.issued_at or rekey.sk == current.sk:
            raise RemoteProtocolError(
                ErrorCode.BAD_CERT, "a rekey needs a new session key certified later than the current one"
            )
        member = Member(name=conn.name, ik=current.ik, sk=rekey.sk, cert=rekey.cert, issued_at=rekey.issued_at)
        try:
            SessionCertificate.of(member).verify()
        except BadCertificate:
            raise RemoteProtocolError(ErrorCode.BAD_CERT, "the new session certificate does not verify") from None
        rekeyed = encode(Rekeyed(member=member), max_frame=ABSOLUTE_MAX_FRAME)

        def announce(others: list[RosterEntry[Connection]]) -> None:
            for entry in others:
                entry.peer.outbox.offer(rekeyed)

        try:
            replaced = self.roster.replace(conn.name, conn, member, announce)
        except SessionKeyInUse:
            raise RemoteProtocolError(ErrorCode.BAD_CERT, "that session key is in use by another member") from None
        if replaced is not None:
            self.router.changed(conn, member)
            log.info(
                "rekey name=%s fp=%s members=%d",
                conn.name,
                short_fingerprint(IdentityPublicKey(member.ik)).replace(" ", ""),
                len(self.roster),
            )

    def _handle_send(self, conn: Connection, send: Send, held: _Held | None = None) -> None:
        """Route ``send``: offer each recipient its copy and the sender its ``ack`` now, or, with
        ``held`` (a run of sends from one read), queue the copies there for ``_release``."""
        assert conn.name is not None
        if len(send.to) > self.config.max_recipients:
            raise RemoteProtocolError(
                ErrorCode.TOO_MANY_RECIPIENTS,
                f"send {send.id!r} names {len(send.to)} recipients; this relay allows {self.config.max_recipients}",
            )
        generation = self.roster.generation  # before the lookup: see _delivered_for
        entries, asked, cts, missing, folded = self.roster.split(send.to)
        if folded:  # "bob" and "BOB" are one member: one copy (only a folded name can repeat one)
            entries, asked, cts = _once_each(entries, asked, cts, missing)
        # The encoder itself, not its bound ``frame``: compiled, ``encoder.frame(ct)`` is a direct
        # call, where the bound method went through Python's call protocol once a copy.
        encoder = DeliverEncoder.for_send(conn.name, send, max_frame=ABSOLUTE_MAX_FRAME)
        remote: dict[str, tuple[str, bytes]] = {}
        offered: list[bool] = []  # now: whether each local copy was queued
        tag = (conn, send.id)  # comes back from the outbox of a recipient evicted before it was written
        for i in range(len(entries)):
            peer = entries[i].peer
            if peer.node is not None:  # on another relay node: the router hands it on
                remote[entries[i].name] = (asked[i], encoder.frame(cts[i]))
                continue
            if held is not None:
                held.hold(peer.outbox, encoder.frame(cts[i]), send.id)
                continue
            outbox = peer.outbox
            # The same call either way. Compiled, on the relay's own ``Outbox`` it is a direct
            # call into the compiled method; through ``OutboxLike`` it was a method lookup and
            # the call protocol, about 355 instructions a copy at N = 100 (callgrind). Nothing
            # here depends on which it is: the core still only offers bytes.
            if isinstance(outbox, Outbox):
                offered.append(outbox.offer(encoder.frame(cts[i]), tag))
            else:
                offered.append(outbox.offer(encoder.frame(cts[i]), tag))
        if remote:  # the local copies only, from here on
            entries, asked, cts = _local_only(entries, asked, cts)
        if held is not None:
            if not held.sends:  # the run's first: the oldest generation its lookups saw
                held.generation = generation
            held.sends.append((send, entries, asked, cts, missing, remote))
            return
        ack = self._settle(conn, send.id, entries, asked, cts, offered, missing, remote, generation=generation)
        if ack is not None:
            conn.outbox.offer(ack)

    def _release(self, conn: Connection, held: _Held) -> None:
        """Offer what ``held`` holds: each recipient the copies of the run in one frame string
        (in order, tagged with all their ids), then the sender the run's acks, in order, at once."""
        accepted: dict[OutboxLike, bool] = {}
        for outbox, (frames, ids) in held.copies.items():
            tag = (conn, ids[0] if len(ids) == 1 else tuple(ids))
            data = frames[0] if len(frames) == 1 else b"".join(frames)
            if isinstance(outbox, Outbox):  # a direct call, compiled (_handle_send says why)
                accepted[outbox] = outbox.offer(data, tag)
            else:
                accepted[outbox] = outbox.offer(data, tag)
        acks: list[bytes] = []
        for send, entries, asked, cts, missing, remote in held.sends:
            offered = [accepted[entry.peer.outbox] for entry in entries]
            ack = self._settle(conn, send.id, entries, asked, cts, offered, missing, remote, held)
            if ack is not None:
                acks.append(ack)
        held.copies.clear()
        held.sends.clear()
        if acks:
            conn.outbox.offer(acks[0] if len(acks) == 1 else b"".join(acks))

    def _settle(
        self,
        conn: Connection,
        msg_id: str,
        entries: list[RosterEntry[Connection]],
        asked: list[str],
        cts: list[bytes],
        offered: list[bool],
        missing: list[str],
        remote: dict[str, tuple[str, bytes]],
        held: _Held | None = None,
        generation: int = -1,
    ) -> bytes | None:
        """The log lines of one routed send and its ``ack`` (None: the router sends it, later).

        ``entries``, ``asked`` and ``cts`` are its local copies (the member, the name as
        sent, the ciphertext); ``offered`` says, for each, whether the outbox took it.
        ``held``: the run it was read in, whose sends may share what they reached.
        ``generation``: the roster's before this send's lookup (a run's: ``held.generation``).
        """
        audit = self.config.log_ciphertext
        if all(offered):  # the common case, at C speed
            reached = entries
            # A native loop, compiled: ``sum(map(len, cts))`` went through the iterator and call
            # protocols and boxed every length, about 400 instructions a copy (callgrind, N = 10).
            total_bytes = 0
            for ct in cts:
                total_bytes += len(ct)
            first_ct = cts[0] if cts else b""
        else:
            reached, total_bytes, first_ct = [], 0, b""
            for i in range(len(entries)):
                if offered[i]:
                    reached.append(entries[i])
                    total_bytes += len(cts[i])
                    first_ct = first_ct or cts[i]
                else:
                    missing.append(asked[i])
        # The same members as the run's send before (the same entries: a rekey or a rejoin
        # makes a new one, so the names are the same too): its names, packed and joined.
        memo = held.delivered if held is not None else None
        if memo is None or memo.entries != reached:
            memo = self._delivered_for(conn, reached, held.generation if held is not None else generation)
            if held is not None:
                held.delivered = memo
        delivered = memo.names
        if audit:  # --log-ciphertext: a line for every copy, whole, for a full audit
            for entry, ct, ok in zip(entries, cts, offered, strict=True):
                if ok:
                    name = entry.name
                    log.info("deliver from=%s to=%s id=%s bytes=%d ct=%s", conn.name, name, msg_id, len(ct), ct.hex())
        elif delivered and log.isEnabledFor(logging.INFO):
            # One line per send, not per copy: with a hundred recipients the
            # per-copy lines cost more CPU than the routing itself. Handed to
            # the log thread as a tuple, which it formats (relay/logsetup.py).
            info_line(
                "deliver from=%s to=%s id=%s bytes=%d ct=%s",
                conn.name,
                memo.joined(),
                msg_id,
                total_bytes,
                _ct_log(first_ct, False),
            )
        for name in missing:
            info_line("undeliverable from=%s to=%r id=%s", conn.name, name[:64], msg_id)
        if remote:  # the ack waits for the other nodes' reports
            self.router.forward(conn, remote, Ack(id=msg_id, delivered=tuple(delivered), missing=tuple(missing)))
            return None
        # Packed from bytes: the id and the missing names are the decoded send's, the
        # delivered ones roster names, all bounded already (no Ack object to check them again).
        return encode_ack_packed(msg_id, memo.packed(), missing, max_frame=ABSOLUTE_MAX_FRAME)

    def _delivered_for(self, conn: Connection, reached: list[RosterEntry[Connection]], generation: int) -> _Delivered:
        """``conn``'s last ``_Delivered`` if it names the same entries as ``reached`` (the same
        objects: a rekey or a rejoin makes a new entry); else a new one, kept for its next send
        in the roster's ``kept`` if the roster is still at ``generation``, the one read before
        the lookup that found ``reached``. The roster empties ``kept`` at every change, so what
        is kept never holds a member who left (review-s13 2)."""
        roster = self.roster
        memos = roster.kept  # read before the generation: see Roster.kept
        memo = memos.get(conn)
        if type(memo) is _Delivered and memo.entries == reached:
            return memo
        made = _Delivered(reached)
        if len(reached) <= MEMO_NAMES and generation == roster.generation:
            if len(memos) >= MEMO_SENDERS and conn not in memos:
                memos.clear()
            memos[conn] = made
        return made

    def _send(self, conn: Connection, frame: Frame, limit: int | None = None) -> None:
        conn.outbox.offer(encode(frame, max_frame=limit or self.config.max_frame))
