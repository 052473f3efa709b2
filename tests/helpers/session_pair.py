"""A socket-free room for client-session tests, in the style of h11's
``tests/helpers.py``: a real ``RelayCore`` and any number of real
``ClientSession`` objects, wired together in memory.

Each client's ``data_to_send()`` is fed to ``RelayCore.receive``; each
connection's outbox is fed to that client's ``receive_data``. ``pump()``
shuttles bytes both ways until nothing moves and returns what every client
produced. Nothing here is mocked: the relay routes, verifies proofs and writes
frames exactly as it does behind a socket, and the clients do real crypto.

The relay can be made hostile per client: ``intercept(label, hook)`` decodes
every frame on its way from the relay to that client and lets ``hook`` replace,
drop, duplicate or hold it (for reordering) before it is re-encoded, and
``inject(label, ...)`` hands a client frames or raw bytes the relay never sent.

This is a helper module, not a test module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from susurro.client import events as ev
from susurro.client.link import LinkState
from susurro.client.session import ClientSession
from susurro.crypto import IdentityKey
from susurro.protocol import RELAY_FRAMES, Frame, FrameDecoder, decode_frame, encode
from susurro.protocol.limits import ABSOLUTE_MAX_FRAME
from susurro.relay import Connection, RelayConfig, RelayCore
from tests.helpers.memory import MemoryOutbox

#: What a hook may hand on in place of one frame: frames (re-encoded) or raw bytes.
Item = Frame | bytes
#: ``hook(frame) -> items``: ``[frame]`` passes it, ``[]`` drops it, ``[frame, frame]``
#: duplicates it; a stateful hook can hold a frame and release it later (reorder).
Hook = Callable[[Frame], Sequence[Item]]

#: A fixed clock: tests that need time to move set ``pair.now`` themselves.
DEFAULT_NOW = 1_700_000_000.0
#: ``pump`` refuses to loop forever: a ping-pong between relay and client is a bug.
MAX_ROUNDS = 1_000


@dataclass(eq=False)
class Node:
    """One client of the room and its end of the in-memory "socket"."""

    label: str
    identity: IdentityKey
    session: ClientSession
    outbox: MemoryOutbox
    conn: Connection | None
    hook: Hook | None = None
    #: Decodes relay -> client bytes for the hook; only used while a hook is set.
    tap: FrameDecoder = field(default_factory=lambda: FrameDecoder(ABSOLUTE_MAX_FRAME))
    #: Both ends hung up: nothing more moves either way.
    gone: bool = False


def flip_bit(data: bytes, index: int = -1, bit: int = 0) -> bytes:
    """``data`` with one bit flipped (by default the lowest bit of the last byte)."""
    changed = bytearray(data)
    changed[index] ^= 1 << bit
    return bytes(changed)


class SessionPair:
    """A real relay and named clients in one process, with no sockets and no threads.

    ``chunk`` > 0 feeds every transfer in pieces of that many bytes (1 = byte by
    byte), in both directions, to prove that framing does not depend on how the
    network splits the stream.
    """

    def __init__(self, config: RelayConfig | None = None, *, now: float = DEFAULT_NOW, chunk: int = 0) -> None:
        # The relay's wall clock (mail and prekey expiry) is the harness's: clients here are told
        # ``now`` too, and prekeys they sign at a test's time must not have expired by the machine's.
        self.relay = RelayCore(config or RelayConfig(), wall_clock=lambda: self.now)
        self.now = now
        self.chunk = chunk
        self.nodes: dict[str, Node] = {}

    # --- building the room -------------------------------------------------------

    def add(
        self, label: str, *, name: str | None = None, identity: IdentityKey | None = None, **session_options: Any
    ) -> ClientSession:
        """Connect a new client (the relay queues its challenge); does not pump.

        ``label`` names the client in this harness; ``name`` is the name it asks
        the relay for (default: the label), so two clients may ask for one name.
        ``session_options`` go to ``ClientSession`` (a trust store, strict mode,
        rotation thresholds).
        """
        if label in self.nodes:
            raise ValueError(f"there is already a client labelled {label!r}")
        identity = identity or IdentityKey.generate()
        session = ClientSession(identity, name or label, relay="memory", **session_options)
        outbox = MemoryOutbox()
        conn = self.relay.connect(outbox, f"memory:{label}")
        node = Node(label=label, identity=identity, session=session, outbox=outbox, conn=conn)
        if conn is None:  # relay full: it wrote an error frame and will not read
            outbox.closed = True
        self.nodes[label] = node
        return session

    def rejoin(self, label: str, as_label: str) -> ClientSession:
        """``label``'s client connects again, as ``RelayConnection`` does after a break: ``renewed()`` (a new
        session key; the same identity, counters, replay guard and mailbox), on a new connection ``as_label``.
        Hang ``label`` up first; does not pump."""
        old = self.nodes[label]
        session = old.session.renewed()
        outbox = MemoryOutbox()
        conn = self.relay.connect(outbox, f"memory:{as_label}")
        self.nodes[as_label] = Node(label=as_label, identity=old.identity, session=session, outbox=outbox, conn=conn)
        return session

    def join(self, *labels: str) -> dict[str, list[ev.Event]]:
        """Add and fully join each client in turn; returns all events, merged per client."""
        merged: dict[str, list[ev.Event]] = {}
        for label in labels:
            self.add(label)
            for who, produced in self.pump().items():
                merged.setdefault(who, []).extend(produced)
        return merged

    def __getitem__(self, label: str) -> ClientSession:
        return self.nodes[label].session

    def accept(self, label: str, room_id: bytes) -> dict[str, list[ev.Event]]:
        """``label``'s user accepts the invitation to ``room_id`` (it must be waiting); pumps."""
        session = self[label]
        assert room_id in session.rooms.invites.invitations, f"no invitation to that room waits for {label}"
        session.room_request(lambda book, now: book.accept(room_id), self.now)
        return self.pump()

    def identity(self, label: str) -> IdentityKey:
        return self.nodes[label].identity

    # --- the hostile relay ------------------------------------------------------

    def intercept(self, label: str, hook: Hook | None) -> None:
        """Route every frame from the relay to ``label`` through ``hook`` (``None`` stops)."""
        self.nodes[label].hook = hook

    def inject(self, label: str, *items: Item) -> list[ev.Event]:
        """Hand ``label`` frames or raw bytes as if from the relay; returns its events.

        Anything the client answers (e.g. a ``hello``) stays queued for the next pump.
        """
        node = self.nodes[label]
        return self._feed_client(node, b"".join(_to_bytes(item) for item in items))

    # --- moving bytes -------------------------------------------------------------

    def pump(self) -> dict[str, list[ev.Event]]:
        """Shuttle bytes until quiescent; returns ``{label: events}`` for every client."""
        produced: dict[str, list[ev.Event]] = {label: [] for label in self.nodes}
        for _ in range(MAX_ROUNDS):
            moved = False
            for node in list(self.nodes.values()):
                if node.gone:
                    continue
                moved |= self._client_to_relay(node)
            for node in list(self.nodes.values()):
                if node.gone:
                    continue
                data = node.outbox.take_all()
                if data:
                    moved = True
                    produced[node.label].extend(self._relay_to_client(node, data))
                produced[node.label].extend(self._settle(node))
            if not moved:
                return produced
        raise AssertionError(f"pump did not settle within {MAX_ROUNDS} rounds")

    def hang_up(self, label: str, reason: str = "connection reset") -> list[ev.Event]:
        """The transport breaks under ``label``: the relay forgets it, the client is told."""
        node = self.nodes[label]
        if node.conn is not None:
            self.relay.disconnect(node.conn, reason)
        node.outbox.closed = True
        node.gone = True
        return node.session.connection_lost(reason)

    def _client_to_relay(self, node: Node) -> bool:
        data = node.session.data_to_send()
        if not data:
            return False
        if node.conn is None or node.outbox.closed:
            return False  # the relay stopped reading from this connection
        for piece in self._pieces(data):
            if not self.relay.receive(node.conn, piece):
                # As the server's reader does: stop reading, forget the connection;
                # the outbox still drains to the client before the socket closes.
                self.relay.disconnect(node.conn, "closed")
                node.outbox.closed = True
                break
        return True

    def _relay_to_client(self, node: Node, data: bytes) -> list[ev.Event]:
        if node.hook is None:
            return self._feed_client(node, data)
        node.tap.feed(data)
        rewritten = bytearray()
        while (payload := node.tap.next_payload()) is not None:
            frame = decode_frame(payload, RELAY_FRAMES, max_bin_len=ABSOLUTE_MAX_FRAME)
            for item in node.hook(frame):
                rewritten += _to_bytes(item)
        return self._feed_client(node, bytes(rewritten)) if rewritten else []

    def _feed_client(self, node: Node, data: bytes) -> list[ev.Event]:
        out: list[ev.Event] = []
        for piece in self._pieces(data):
            out.extend(node.session.receive_data(piece, self.now))
        return out

    def _settle(self, node: Node) -> list[ev.Event]:
        """Close whichever end has closed, as the two socket edges would."""
        if node.session.state is LinkState.CLOSED and not node.gone:
            # The client dropped the connection (it was refused, or said bye):
            # its last bytes (a bye) go out first, then the relay sees EOF.
            self._client_to_relay(node)
            node.gone = True
            if node.conn is not None:
                self.relay.disconnect(node.conn, "closed by client")
            node.outbox.closed = True
            return node.session.connection_lost("the connection closed")
        if (node.outbox.closed or (node.conn is not None and node.conn.closing)) and not node.outbox.data:
            # The relay hung up and everything it queued has been delivered.
            node.gone = True
            if node.conn is not None:
                self.relay.disconnect(node.conn, "closed by relay")
            return node.session.connection_lost("the relay closed the connection")
        return []

    def _pieces(self, data: bytes) -> Iterable[bytes]:
        if self.chunk <= 0:
            yield data
            return
        for start in range(0, len(data), self.chunk):
            yield data[start : start + self.chunk]


def _to_bytes(item: Item) -> bytes:
    if isinstance(item, bytes):
        return item
    return encode(item, max_frame=ABSOLUTE_MAX_FRAME)


def kinds(events: Iterable[ev.Event]) -> list[str]:
    """A compact picture of an event list: type names, with a warning's kind."""
    return [f"Warning:{e.kind}" if isinstance(e, ev.Warning) else type(e).__name__ for e in events]


def only(events: Sequence[ev.Event], kind: type[ev.Event]) -> list[ev.Event]:
    return [e for e in events if isinstance(e, kind)]
