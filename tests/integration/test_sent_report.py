"""The terminal's ``sent`` line names whom a message was sealed to, even when the ack beats it.

The relay can answer a send before the typing thread gets the lock back; a
settled message no longer says whom it was for, so the ``sent`` record once
printed ``"to": []`` on a loaded machine (test_three_users and the strict-mode
trust test failed that way). A real relay on a loopback port and real
``RelayConnection``s; the connection here only waits, after each send, until
its reader has settled the ack, which is the order that used to go wrong.
"""

from __future__ import annotations

import io
import json
import queue

from susurro.client import events as ev
from susurro.client.connection import RelayConnection
from susurro.client.live_calls import Sent
from susurro.client.render import Output
from susurro.client.session import ClientSession
from susurro.client.typed_lines import handle_line
from susurro.crypto import IdentityKey
from susurro.relay import RelayServer
from tests.helpers.system import next_event, wait_until


class AckedFirst(RelayConnection):
    """Returns from a send only once the relay's ack for it was settled by the reader thread."""

    def send(self, text: str, to: list[str] | None = None, *, room: str | bytes | None = None) -> Sent:
        sent = super().send(text, to, room=room)
        wait_until(lambda: self.session.recipients_of(sent.msg_id) == ((), ()), "the ack settled")
        return sent


def open_member(
    server: RelayServer, name: str, events: queue.Queue[object], cls: type[RelayConnection]
) -> RelayConnection:
    host, port = server.address
    session = ClientSession(IdentityKey.generate(), name, relay=f"{host}:{port}")
    return cls.open(session, host, port, events, reconnect=False)


def test_the_sent_record_names_the_recipients_when_the_ack_came_first(relay_server: RelayServer) -> None:
    alice_events: queue.Queue[object] = queue.Queue()
    bob_events: queue.Queue[object] = queue.Queue()
    alice = open_member(relay_server, "alice", alice_events, AckedFirst)
    try:
        next_event(alice_events, lambda e: isinstance(e, ev.Roster), "alice's roster")
        bob = open_member(relay_server, "bob", bob_events, RelayConnection)
        try:
            next_event(alice_events, lambda e: isinstance(e, ev.Joined) and e.member.name == "bob", "bob joined")
            stream = io.StringIO()
            assert handle_line("hello bob", alice, Output(True, stream))
            next_event(bob_events, lambda e: isinstance(e, ev.Message) and e.text == "hello bob", "bob's message")
            (line,) = stream.getvalue().splitlines()
            record = json.loads(line)
            assert record["event"] == "sent" and record["to"] == ["bob"] and record["skipped"] == []
            assert alice.session.recipients_of(record["msg_id"]) == ((), ()), "settled: asking now finds nobody"
        finally:
            bob.close()
    finally:
        alice.close()
