"""A relay that misbehaves at the socket level cannot hang or crash the client.

A fake relay on a real loopback socket completes the join and then stops
reading; the client's sends must fail within the send timeout, the messages
must be reported (never silently lost), and quitting must not hang.
"""

from __future__ import annotations

import queue
import socket
import threading

import pytest

from susurro.client import events as ev
from susurro.client.connection import RelayConnection
from susurro.client.session import ClientSession, SendError
from susurro.crypto import IdentityKey, SessionCertificate, SessionKey
from susurro.protocol import Challenge, Member, Welcome, encode
from tests.helpers.system import next_event

WAIT = 10.0


def fake_relay_that_stops_reading(listener: socket.socket, stop: threading.Event) -> None:
    conn, _ = listener.accept()
    with conn:
        conn.sendall(encode(Challenge(nonce=b"\x01" * 32, max_frame=1 << 20, max_recipients=8)))
        conn.recv(4096)  # the hello
        bob, bob_session = IdentityKey.generate(), SessionKey.generate()
        cert = SessionCertificate.issue(bob, "bob", bob_session.public, 1)
        member = Member(name="bob", ik=bob.public, sk=bob_session.public, cert=cert.signature, issued_at=1)
        conn.sendall(encode(Welcome(name="alice", roster=(member,))))
        stop.wait(WAIT * 3)  # ...and never read again


def next_of(events: queue.Queue[object], kind: type, timeout: float = WAIT) -> object:
    return next_event(events, lambda event: isinstance(event, kind), kind.__name__, timeout)


@pytest.mark.timeout(60)
def test_a_relay_that_stops_reading_cannot_freeze_the_client() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    relay = threading.Thread(target=fake_relay_that_stops_reading, args=(listener, stop), daemon=True)
    relay.start()
    events: queue.Queue[object] = queue.Queue()
    host, port = listener.getsockname()[:2]
    connection = RelayConnection.open(
        # Unpaced: this is about the socket send, which pacing would only put off.
        ClientSession(IdentityKey.generate(), "alice"), host, port, events, send_timeout=0.5, reconnect=False,
        pace=False,
    )  # fmt: skip
    try:
        next_of(events, ev.Connected)
        sent: list[str] = []
        with pytest.raises(SendError, match="connection to the relay lost"):
            for _ in range(10_000):  # far more than the socket buffers hold
                sent.append(connection.send_message("x" * 16_000))
        assert sent, "some messages fit in the socket buffers before the relay stalled"
        reported: list[ev.Warning] = []
        ending = (ev.Warning, ev.Disconnected)
        while not isinstance(event := next_event(events, lambda e: isinstance(e, ending), "a report"), ev.Disconnected):
            assert isinstance(event, ev.Warning) and event.kind == "delivery_unknown"
            reported.append(event)
        assert len(reported) == len(sent) + 1  # each message on its own line, the failed one too
        assert all(msg_id in w.detail for msg_id, w in zip(sent, reported, strict=False))
        closer = threading.Thread(target=connection.close, daemon=True)
        closer.start()
        closer.join(WAIT)
        assert not closer.is_alive(), "close() hung on a relay that stopped reading"
    finally:
        stop.set()
        listener.close()
