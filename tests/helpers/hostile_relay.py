"""A hostile relay for tests: the real relay behind a tampering man in the middle.

A relay that wants to lie has exactly the powers of someone who sits between
the clients and an honest relay and rewrites the byte stream, so that is what
this module builds, on real loopback sockets:

    RelayConnection (client) <-> TamperingProxy <-> RelayServer (the real relay)

``TamperingProxy`` accepts each client on its own ephemeral port, opens a
connection to the real relay for it, and runs one pump thread per direction.
Each pump decodes the length-prefixed frames it reads and hands every frame to
the test's hook for that client and direction, which may pass it, drop it,
replace it, duplicate it, or hold it and hand it on later (reorder, delay).
``inject`` puts frames, raw payloads or raw stream bytes in front of one
client (or the relay) at any time.

``HostileRoom`` wraps it with real ``ClientSession``/``RelayConnection``
clients, each with its event queue, and a *barrier*: the proxy sends a ``ping``
to the relay on the client's behalf and turns the relay's ``pong`` into an
``error`` frame the client reports as a ``relay_error`` warning. Because the
relay answers in order and queues every ``deliver`` before the sender's
``ack``, once a client has shown the barrier it has processed everything the
relay sent it before; tests then assert on the complete event list without
sleeping.

Everything is bounded: socket timeouts, daemon threads, a deadline on every
wait, and ``close()`` (called by the fixture) cuts every socket and joins
every thread. An exception in a hook is recorded and fails the test.

This is a helper module, not a test module.
"""

from __future__ import annotations

import contextlib
import itertools
import queue
import socket
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from susurro.client import events as ev
from susurro.client.connection import RelayConnection
from susurro.client.room_invites import InvitationReceived
from susurro.client.session import ClientSession
from susurro.crypto import IdentityKey, SessionCertificate
from susurro.protocol import (
    CLIENT_FRAMES,
    RELAY_FRAMES,
    Deliver,
    Error,
    Frame,
    FrameDecoder,
    Member,
    Ping,
    Pong,
    ProtocolError,
    Send,
    decode_frame,
    encode,
)
from susurro.protocol.framing import encode_frame
from susurro.protocol.limits import ABSOLUTE_MAX_FRAME
from susurro.relay import RelayConfig, RelayServer
from tests.helpers.system import arrivals

#: Generous: the machine running the suite is shared and may be slow.
WAIT = 15.0
RECV_SIZE = 64 * 1024
#: How often the acceptor looks at its stop flag.
ACCEPT_POLL = 0.25
#: The error code of barrier frames; never used by a real relay.
BARRIER_CODE = "test_barrier"

Direction = Literal["to_client", "to_relay"]
TO_CLIENT: Direction = "to_client"
TO_RELAY: Direction = "to_relay"


@dataclass(frozen=True, slots=True)
class Raw:
    """Bytes put on the stream exactly as given: no length prefix is added."""

    data: bytes


#: What a hook may hand on in place of a frame: a frame (re-encoded), a payload
#: (``bytes``: the proxy adds the length prefix) or ``Raw`` stream bytes.
Item = Frame | bytes | Raw
#: ``hook(label, frame) -> items``. ``[frame]`` passes it, ``[]`` drops it.
Hook = Callable[[str, Frame], Sequence[Item]]


def to_stream(item: Item) -> bytes:
    """The bytes an item becomes on the wire."""
    if isinstance(item, Raw):
        return item.data
    if isinstance(item, bytes):
        return encode_frame(item, max_frame=ABSOLUTE_MAX_FRAME)
    return encode(item, max_frame=ABSOLUTE_MAX_FRAME)


def _cut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


@dataclass(eq=False)
class Link:
    """One client's two connections (client side, relay side) and their pumps."""

    label: str
    client_sock: socket.socket
    relay_sock: socket.socket
    #: One lock per destination, so hooks and ``inject`` never interleave half-frames.
    locks: dict[Direction, threading.Lock] = field(
        default_factory=lambda: {TO_CLIENT: threading.Lock(), TO_RELAY: threading.Lock()}
    )
    #: Who is owed each ``pong`` the relay will send, in order: ``None`` for a
    #: ping the client sent itself, else a barrier token.
    pongs_owed: deque[str | None] = field(default_factory=deque)
    threads: list[threading.Thread] = field(default_factory=list)
    #: Frames as the relay or client sent them, before any hook (for tests to look at).
    seen: dict[Direction, list[Frame]] = field(default_factory=lambda: {TO_CLIENT: [], TO_RELAY: []})

    def send(self, direction: Direction, data: bytes) -> None:
        sock = self.client_sock if direction == TO_CLIENT else self.relay_sock
        with self.locks[direction]:
            sock.sendall(data)


class TamperingProxy:
    """A man in the middle in front of a relay: every frame passes a per-client hook."""

    def __init__(self, relay_address: tuple[str, int]) -> None:
        self.relay_address = relay_address
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(ACCEPT_POLL)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._labels: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._links: dict[str, Link] = {}
        self._linked = threading.Condition(self._lock)
        self._hooks: dict[tuple[str, Direction], Hook] = {}
        self._unlabelled = itertools.count(1)
        self._tokens = itertools.count(1)
        #: Exceptions raised in pump threads (a broken hook): the fixture fails on them.
        self.errors: list[BaseException] = []
        self._acceptor = threading.Thread(target=self._accept_loop, name="proxy-acceptor", daemon=True)
        self._acceptor.start()

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._listener.getsockname()[:2]
        return host, port

    # --- the test's side ------------------------------------------------------------

    def expect(self, label: str) -> None:
        """Name the next accepted connection (connections are labelled in accept order)."""
        self._labels.put(label)

    def link(self, label: str, timeout: float = WAIT) -> Link:
        """The link of ``label``, once the proxy has accepted it."""
        with self._linked:
            if not self._linked.wait_for(lambda: label in self._links, timeout):
                raise AssertionError(f"the proxy never accepted a connection for {label!r}")
            return self._links[label]

    def set_hook(self, label: str, hook: Hook | None, direction: Direction = TO_CLIENT) -> None:
        """Route every frame going ``direction`` on ``label``'s link through ``hook``."""
        with self._lock:
            if hook is None:
                self._hooks.pop((label, direction), None)
            else:
                self._hooks[(label, direction)] = hook

    def inject(self, label: str, *items: Item, direction: Direction = TO_CLIENT) -> bool:
        """Put frames, payloads or raw bytes on ``label``'s stream, as if the other end sent them.

        Returns False if the receiver hung up part way (a client that a
        ``shutdown`` or a broken frame disconnected): the rest is not sent.
        """
        link = self.link(label)
        for item in items:
            if direction == TO_RELAY and isinstance(item, Ping):
                raise ValueError("use barrier(); a ping injected here would desynchronize pong accounting")
            try:
                link.send(direction, to_stream(item))
            except OSError:
                return False
        return True

    def seen(self, label: str, direction: Direction = TO_CLIENT) -> list[Frame]:
        """A snapshot of the frames that arrived on ``label``'s link, before any hook."""
        link = self.link(label)
        with self._lock:
            return list(link.seen[direction])

    def start_barrier(self, label: str) -> str:
        """Ask the relay for a ``pong`` on ``label``'s link; it reaches the client as a barrier.

        Returns the token the client's ``relay_error`` warning will carry.
        """
        link = self.link(label)
        token = f"barrier-{next(self._tokens)}"
        with link.locks[TO_RELAY]:  # record and send under one lock: owed pongs stay in stream order
            with self._lock:
                link.pongs_owed.append(token)
            link.relay_sock.sendall(encode(Ping()))
        return token

    def end_stream(self, label: str) -> None:
        """Close the stream to ``label`` after what was sent so far (a half-close).

        The client reads everything, then the end of the stream: its
        ``Disconnected`` is a barrier that works even after a partial frame.
        """
        with contextlib.suppress(OSError):
            self.link(label).client_sock.shutdown(socket.SHUT_WR)

    def cut(self, label: str) -> None:
        """Break ``label``'s connections in both directions, as a relay that hangs up does."""
        link = self.link(label)
        _cut(link.client_sock)
        _cut(link.relay_sock)

    def close(self) -> None:
        self._stop.set()
        self._acceptor.join(WAIT)
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            links = list(self._links.values())
        for link in links:
            _cut(link.client_sock)
            _cut(link.relay_sock)
        for link in links:
            for thread in link.threads:
                thread.join(WAIT)
            link.client_sock.close()
            link.relay_sock.close()

    # --- threads ---------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client_sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                label = self._labels.get_nowait()
            except queue.Empty:
                label = f"unlabelled-{next(self._unlabelled)}"
            try:
                relay_sock = socket.create_connection(self.relay_address, timeout=WAIT)
            except OSError as exc:
                self.errors.append(exc)
                _cut(client_sock)
                client_sock.close()
                continue
            for sock in (client_sock, relay_sock):
                sock.settimeout(None)  # pumps block in recv; close() cuts the sockets to wake them
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            link = Link(label=label, client_sock=client_sock, relay_sock=relay_sock)
            for direction in (TO_CLIENT, TO_RELAY):
                thread = threading.Thread(
                    target=self._pump, args=(link, direction), name=f"proxy-{label}-{direction}", daemon=True
                )
                link.threads.append(thread)
            with self._linked:
                self._links[label] = link
                self._linked.notify_all()
            for thread in link.threads:
                thread.start()

    def _pump(self, link: Link, direction: Direction) -> None:
        source = link.relay_sock if direction == TO_CLIENT else link.client_sock
        destination = link.client_sock if direction == TO_CLIENT else link.relay_sock
        decoder = FrameDecoder(ABSOLUTE_MAX_FRAME)
        try:
            while True:
                try:
                    data = source.recv(RECV_SIZE)
                except OSError:
                    break
                if not data:
                    break
                decoder.feed(data)
                while (payload := decoder.next_payload()) is not None:
                    out = b"".join(to_stream(item) for item in self._process(link, direction, payload))
                    if out:
                        link.send(direction, out)
        except OSError:
            pass  # the other side went away while we wrote; the link is over
        except BaseException as exc:  # a broken hook or a framing bug: fail the test, not silently
            self.errors.append(exc)
            _cut(source)
            _cut(destination)
        finally:
            # Pass the end of the stream on (half-close), as a transparent relay would.
            with contextlib.suppress(OSError):
                destination.shutdown(socket.SHUT_WR)

    def _process(self, link: Link, direction: Direction, payload: bytes) -> Sequence[Item]:
        allowed = RELAY_FRAMES if direction == TO_CLIENT else CLIENT_FRAMES
        try:
            frame = decode_frame(payload, allowed, max_bin_len=ABSOLUTE_MAX_FRAME)
        except ProtocolError:
            return [payload]  # not ours to judge: hand it on untouched
        with self._lock:
            link.seen[direction].append(frame)
            if direction == TO_RELAY and isinstance(frame, Ping):
                link.pongs_owed.append(None)
            owed = None
            if direction == TO_CLIENT and isinstance(frame, Pong) and link.pongs_owed:
                owed = link.pongs_owed.popleft()
            hook = self._hooks.get((link.label, direction))
        if owed is not None:
            return [Error(code=BARRIER_CODE, detail=owed)]
        if hook is None:
            return [frame]
        return hook(link.label, frame)


# --- clients ---------------------------------------------------------------------------


@dataclass(eq=False)
class Client:
    """A real client (session, connection, event queue) of the hostile room."""

    label: str
    identity: IdentityKey
    session: ClientSession
    connection: RelayConnection
    events: queue.Queue[object]
    proxy: TamperingProxy
    #: Every event taken from the queue so far, barriers excluded, in order.
    log: list[ev.Event] = field(default_factory=list)
    #: Closed by the test (``HostileRoom.leave``).
    gone: bool = False

    @property
    def name(self) -> str:
        return self.session.name

    def wait_for(self, match: Callable[[ev.Event], bool], timeout: float = WAIT, what: str = "event") -> ev.Event:
        """Take events until one matches (it and all before it are logged); fail after ``timeout``."""
        for event in arrivals(self.events, timeout):
            assert isinstance(event, ev.Event), event
            if is_barrier(event):
                continue
            self.log.append(event)
            if match(event):
                return event
        raise AssertionError(f"{self.label}: no {what} within {timeout} s; got {describe(self.log)}")

    def seen_or_wait(self, match: Callable[[ev.Event], bool], timeout: float = WAIT, what: str = "event") -> ev.Event:
        """The first logged event that matches, or else the next one to arrive."""
        for event in self.log:
            if match(event):
                return event
        return self.wait_for(match, timeout, what)

    def wait_event(self, kind: type[ev.Event], timeout: float = WAIT) -> ev.Event:
        return self.wait_for(lambda e: isinstance(e, kind), timeout, kind.__name__)

    def accept_invitation(self, label: str, timeout: float = WAIT) -> bytes:
        """Wait for the invitation to the room ``label`` and accept it (its log is then fetched); the room id."""
        found = self.seen_or_wait(
            lambda e: isinstance(e, InvitationReceived) and e.room == label, timeout, f"invitation to {label}"
        )
        assert isinstance(found, InvitationReceived)
        self.connection.room_request(lambda book, now: book.accept(found.room_id))
        return found.room_id

    def wait_warning(self, kind: str, timeout: float = WAIT) -> ev.Warning:
        event = self.wait_for(lambda e: isinstance(e, ev.Warning) and e.kind == kind, timeout, f"{kind} warning")
        assert isinstance(event, ev.Warning)
        return event

    def wait_message(self, text: str, timeout: float = WAIT) -> ev.Message:
        event = self.wait_for(lambda e: isinstance(e, ev.Message) and e.text == text, timeout, f"message {text!r}")
        assert isinstance(event, ev.Message)
        return event

    def barrier(self, timeout: float = WAIT) -> None:
        """Return once this client has processed every frame the relay sent it so far.

        One direction only: the proxy's ping goes straight to the relay, so a
        frame this client wrote just before may not have reached the proxy yet
        (``proxy.seen(label, TO_RELAY)`` can still lack it). To know the relay
        got a frame, wait for the relay's answer to it (a ``Delivery``).
        """
        token = self.proxy.start_barrier(self.label)
        for event in arrivals(self.events, timeout):
            assert isinstance(event, ev.Event), event
            if is_barrier(event):
                assert isinstance(event, ev.Warning)
                if event.detail.endswith(token):
                    return
                continue
            self.log.append(event)
            if isinstance(event, ev.Disconnected):
                raise AssertionError(f"{self.label} disconnected before barrier {token}: {event.reason}")
        raise AssertionError(f"{self.label}: barrier {token} not seen within {timeout} s")

    def send(self, text: str, to: list[str] | None = None) -> str:
        return self.connection.send_message(text, to)

    def messages(self) -> list[ev.Message]:
        return [e for e in self.log if isinstance(e, ev.Message)]

    def texts(self) -> list[str]:
        return [e.text for e in self.messages()]

    def warnings(self) -> list[str]:
        return [e.kind for e in self.log if isinstance(e, ev.Warning)]

    def kinds(self) -> list[str]:
        return describe(self.log)


def is_barrier(event: object) -> bool:
    return isinstance(event, ev.Warning) and event.kind == "relay_error" and event.detail.startswith(BARRIER_CODE)


def describe(events: Iterable[ev.Event]) -> list[str]:
    """A compact picture of an event list: type names, with a warning's kind."""
    return [f"Warning:{e.kind}" if isinstance(e, ev.Warning) else type(e).__name__ for e in events]


class HostileRoom:
    """A real relay, a tampering proxy in front of it, and real clients behind it."""

    def __init__(self, **relay_overrides: object) -> None:
        settings: dict[str, object] = {"host": "127.0.0.1", "port": 0, "handshake_timeout": WAIT}
        # Barriers are pings the proxy adds, many per second under Hypothesis:
        # the relay's flood control is not what these tests are about.
        settings["rate_per_second"] = 0
        settings.update(relay_overrides)
        self.relay = RelayServer(RelayConfig(**settings))  # type: ignore[arg-type]
        self.relay.start()
        try:
            self.proxy = TamperingProxy(self.relay.address)
        except BaseException:
            self.relay.stop()
            raise
        self.clients: dict[str, Client] = {}
        self._connect_lock = threading.Lock()
        #: Exceptions that escaped any thread (a client's reader above all): a failure.
        self.thread_errors: list[threading.ExceptHookArgs] = []
        self._previous_hook = threading.excepthook
        threading.excepthook = self._record_thread_error

    def _record_thread_error(self, args: threading.ExceptHookArgs) -> None:
        self.thread_errors.append(args)
        self._previous_hook(args)

    def check(self) -> None:
        """Fail if a hook broke or any thread died of an unhandled exception."""
        assert not self.proxy.errors, f"the proxy failed: {self.proxy.errors!r}"
        died = [f"{a.thread.name if a.thread else '?'}: {a.exc_value!r}" for a in self.thread_errors]
        assert not died, died

    def connect(
        self,
        label: str,
        *,
        name: str | None = None,
        identity: IdentityKey | None = None,
        session: ClientSession | None = None,
        send_timeout: float | None = None,
    ) -> Client:
        """Open a real client through the proxy; does not wait for the join."""
        if label in self.clients:
            raise ValueError(f"there is already a client labelled {label!r}")
        identity = identity or (session.identity if session else IdentityKey.generate())
        session = session or ClientSession(identity, name or label, relay="hostile")
        events: queue.Queue[object] = queue.Queue()
        host, port = self.proxy.address
        with self._connect_lock:  # accept order == connect order, so labels match
            self.proxy.expect(label)
            options = {} if send_timeout is None else {"send_timeout": send_timeout}
            # One connection per label through the proxy: no automatic reconnect (a reconnect
            # would be a second connection the proxy cannot label).
            connection = RelayConnection.open(session, host, port, events, reconnect=False, **options)
        client = Client(
            label=label, identity=identity, session=session, connection=connection, events=events, proxy=self.proxy
        )
        self.clients[label] = client
        return client

    def join(self, label: str, *, others_see_it: bool = True, **kwargs: object) -> Client:
        """Connect ``label`` and wait until it has its roster (and, by default, everyone saw it join)."""
        present = [c for c in self.clients.values() if not c.gone]
        client = self.connect(label, **kwargs)  # type: ignore[arg-type]
        client.wait_event(ev.Roster)
        if others_see_it:
            for other in present:
                other.wait_for(
                    lambda e: isinstance(e, ev.Joined) and e.member.name == client.name,
                    what=f"Joined({client.name})",
                )
        return client

    def leave(self, label: str) -> None:
        """Close ``label`` cleanly (a ``bye``); everyone else present waits for its ``Left``."""
        client = self.clients[label]
        client.connection.close()  # bounded; a user's close emits no Disconnected
        client.gone = True
        for other in self.clients.values():
            if not other.gone:
                other.wait_for(lambda e: isinstance(e, ev.Left) and e.name == client.name, what=f"Left({client.name})")

    def forget_events(self) -> None:
        """Start every client's log afresh (after the set-up a test does not assert on)."""
        for client in self.clients.values():
            client.log.clear()

    def close(self) -> None:
        for client in self.clients.values():
            with contextlib.suppress(Exception):
                client.connection.close()
        self.proxy.close()
        self.relay.stop()
        threading.excepthook = self._previous_hook


# --- helpers for attack tests ----------------------------------------------------------------------------


def certified(identity: IdentityKey, name: str, session_public: bytes, issued_at: int = 1) -> Member:
    """A roster record whose certificate genuinely verifies under ``identity``."""
    cert = SessionCertificate.issue(identity, name, session_public, issued_at)
    return Member(name=name, ik=identity.public, sk=session_public, cert=cert.signature, issued_at=issued_at)


def delivers(frames: Sequence[Frame]) -> list[Deliver]:
    return [f for f in frames if isinstance(f, Deliver)]


def sends(frames: Sequence[Frame]) -> list[Send]:
    return [f for f in frames if isinstance(f, Send)]


def send_and_wait(sender: Client, text: str, recipients: Sequence[Client], to: list[str] | None = None) -> str:
    """Send ``text`` and wait until every recipient shows it: the baseline before an attack."""
    msg_id = sender.send(text, to)
    sender.wait_for(lambda e: isinstance(e, ev.Delivery) and e.msg_id == msg_id, what=f"Delivery({msg_id})")
    for recipient in recipients:
        recipient.wait_message(text)
    return msg_id


def assert_no_forgery(client: Client, genuine: dict[str, str]) -> None:
    """Every ``Message`` the client showed is a genuine ``{text: sender}``, and none twice."""
    seen_ids = set()
    for message in client.messages():
        assert message.text in genuine, f"{client.label} showed a forged text {message.text!r}"
        assert message.sender == genuine[message.text], f"{message.text!r} attributed to {message.sender}"
        assert message.msg_id not in seen_ids, f"{client.label} showed {message.msg_id} twice"
        seen_ids.add(message.msg_id)


def after_barrier(*clients: Client) -> None:
    for client in clients:
        client.barrier()
