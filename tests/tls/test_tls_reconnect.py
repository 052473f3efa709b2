"""A TLS relay killed and restarted: clients reconnect over TLS by themselves
(a new handshake and session key each time) and chat again."""

from __future__ import annotations

import queue
import signal
import time
from pathlib import Path

from susurro.client import events as ev
from susurro.client.connection import RelayConnection
from susurro.client.reconnect import Backoff
from susurro.client.session import ClientSession
from susurro.client.tls import client_context
from susurro.crypto import IdentityKey
from tests.helpers.certs import make_pki, needs_openssl
from tests.helpers.processes import WAIT, RelayProcess
from tests.helpers.system import free_port

pytestmark = needs_openssl


def wait_for(events: queue.Queue[object], match: type[ev.Event], name: str | None = None) -> ev.Event:
    deadline = time.monotonic() + WAIT
    while True:
        event = events.get(timeout=max(0.01, deadline - time.monotonic()))
        if isinstance(event, match) and (name is None or getattr(getattr(event, "member", None), "name", None) == name):
            return event
        if isinstance(event, ev.Message) and match is ev.Message:
            return event


def test_clients_come_back_over_tls_after_the_relay_restarts(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    port = free_port()
    tls_flags = ("--tls-cert", str(pki.cert), "--tls-key", str(pki.key), "--port", str(port))
    (tmp_path / "first").mkdir()
    relay = RelayProcess(tmp_path / "first", *tls_flags)
    context = client_context(str(pki.ca))
    inboxes: dict[str, queue.Queue[object]] = {}
    connections = {}
    try:
        for name in ("lea", "max"):
            inboxes[name] = queue.Queue()
            session = ClientSession(IdentityKey.generate(), name, relay=f"127.0.0.1:{port}")
            connections[name] = RelayConnection.open(
                session, "127.0.0.1", port, inboxes[name], tls=context, backoff=Backoff(initial=0.1, cap=1.0)
            )
            wait_for(inboxes[name], ev.Connected)
        wait_for(inboxes["lea"], ev.Joined, "max")

        relay.proc.send_signal(signal.SIGKILL)  # a crash: no shutdown frame, so clients retry
        relay.stop()
        for name in ("lea", "max"):
            wait_for(inboxes[name], ev.Reconnecting)
        (tmp_path / "second").mkdir()
        relay = RelayProcess(tmp_path / "second", *tls_flags)
        for name in ("lea", "max"):
            wait_for(inboxes[name], ev.Connected)
        # Whoever joined second sees the other in its roster; wait until lea can address max.
        deadline = time.monotonic() + WAIT
        while not any(m.name == "max" for m in connections["lea"].members()):
            assert time.monotonic() < deadline, "max never reappeared for lea"
            time.sleep(0.05)
        connections["lea"].send_message("back over TLS", ["max"])
        message = wait_for(inboxes["max"], ev.Message)
        assert isinstance(message, ev.Message) and message.text == "back over TLS"
    finally:
        for connection in connections.values():
            connection.close()
        relay.stop()
    assert "tls=on" in relay.all_output() and "tls-fail" not in relay.all_output()
