"""What the network sees: names and frames in the clear without TLS, nothing
readable with it. A recording TCP forwarder sits between clients and relay."""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time

import pytest

from susurro.client import events as ev
from susurro.client.connection import RelayConnection
from susurro.client.session import ClientSession
from susurro.client.tls import client_context
from susurro.crypto import IdentityKey
from susurro.relay import RelayServer
from tests.helpers.certs import TlsFiles, needs_openssl

pytestmark = needs_openssl
WAIT = 15.0


class Wiretap:
    """Forwards 127.0.0.1:port to the relay and keeps every byte, both ways."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.seen = bytearray()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self._listener.accept()
                upstream = socket.create_connection(self.target, timeout=WAIT)
                upstream.settimeout(None)
                self._sockets += [client, upstream]
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                with self._lock:
                    self.seen += data
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._listener.close()
        for sock in self._sockets:
            sock.close()


def chat_through(tap: Wiretap, tls: object) -> None:
    """alice and bob join through the tap and alice sends bob a message."""
    connections = []
    inboxes = {}
    for name in ("alice", "bob"):
        events: queue.Queue[object] = queue.Queue()
        session = ClientSession(IdentityKey.generate(), name)
        connections.append(RelayConnection.open(session, "127.0.0.1", tap.port, events, tls=tls))  # type: ignore[arg-type]
        inboxes[name] = events
        while not isinstance(event := events.get(timeout=WAIT), ev.Connected):
            assert not isinstance(event, ev.Disconnected), event
    while not (isinstance(event := inboxes["alice"].get(timeout=WAIT), ev.Joined) and event.member.name == "bob"):
        assert not isinstance(event, ev.Disconnected), event
    connections[0].send_message("meet at the usual place", ["bob"])
    deadline = time.monotonic() + WAIT
    while not isinstance(event := inboxes["bob"].get(timeout=max(0.01, deadline - time.monotonic())), ev.Message):
        pass
    assert event.text == "meet at the usual place"
    for connection in connections:
        connection.close()


@pytest.mark.parametrize("use_tls", [False, True], ids=["plain", "tls"])
def test_tls_hides_names_and_frames_from_the_network(use_tls: bool, pki: TlsFiles, relay_factory: object) -> None:
    if use_tls:
        server: RelayServer = relay_factory(tls_cert=str(pki.cert), tls_key=str(pki.key))  # type: ignore[operator]
    else:
        server = relay_factory()  # type: ignore[operator]
    tap = Wiretap(server.address)
    try:
        chat_through(tap, client_context(str(pki.ca)) if use_tls else None)
    finally:
        tap.close()
    seen = bytes(tap.seen)
    assert len(seen) > 1000
    assert b"meet at the usual place" not in seen  # end-to-end encryption, TLS or not
    if use_tls:
        for visible in (b"alice", b"bob", b"challenge", b"deliver", b"hello"):
            assert visible not in seen, visible
    else:  # the tap works: without TLS the metadata is there to read
        for visible in (b"alice", b"bob", b"challenge", b"deliver", b"hello"):
            assert visible in seen, visible
