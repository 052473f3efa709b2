"""A relay SIGKILLed and restarted on the same port and ``--data-dir``: rooms, logs and
membership are back, and the clients (which reconnect by themselves) chat in their room again."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from pathlib import Path

from susurro.client import events as ev
from susurro.client.connection import RelayConnection
from susurro.client.reconnect import Backoff
from susurro.client.room_events import Invited, RoomCreated
from susurro.client.room_invites import InvitationReceived
from susurro.client.session import ClientSession
from susurro.crypto import EntryKind, IdentityKey, RoomPolicy
from tests.helpers.processes import WAIT, RelayProcess
from tests.helpers.system import free_port


class Person:
    def __init__(self, name: str, port: int) -> None:
        self.events: queue.Queue[object] = queue.Queue()
        self.log: list[ev.Event] = []
        session = ClientSession(IdentityKey.generate(), name, relay=f"127.0.0.1:{port}")
        self.connection = RelayConnection.open(
            session, "127.0.0.1", port, self.events, backoff=Backoff(initial=0.1, cap=1.0)
        )

    def wait_for(self, match: Callable[[ev.Event], bool], what: str) -> ev.Event:
        deadline = time.monotonic() + WAIT
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no {what} within {WAIT} s; got {self.log}"
            try:
                event = self.events.get(timeout=remaining)
            except queue.Empty:
                continue
            assert isinstance(event, ev.Event)
            self.log.append(event)
            if match(event):
                return event


def test_rooms_survive_a_relay_crash_and_clients_chat_in_them_again(tmp_path: Path) -> None:
    port = free_port()
    data = str(tmp_path / "data")
    relay = RelayProcess(tmp_path, "--port", str(port), "--data-dir", data)
    people: list[Person] = []
    try:
        alice, bob = Person("alice", port), Person("bob", port)
        people += [alice, bob]
        # bob may join before or after alice's welcome: in her roster, or as a join after it.
        alice.wait_for(lambda e: _names_bob(e), "bob present")
        alice.connection.room_request(lambda book, now: book.create("ops", RoomPolicy.INVITE, now))
        alice.wait_for(lambda e: isinstance(e, RoomCreated), "room created")
        state = alice.connection.rooms().state("ops")
        assert state is not None
        bob_key = bob.connection.session.identity.public
        alice.connection.room_request(lambda book, now: book.change(state.room_id, EntryKind.ADD, "bob", bob_key, now))
        bob.wait_for(lambda e: isinstance(e, InvitationReceived), "the invitation")
        bob.connection.room_request(lambda book, now: book.accept(state.room_id))  # bob says yes
        bob.wait_for(lambda e: isinstance(e, Invited), "invited")

        relay.proc.kill()  # no shutdown frame: the clients reconnect by themselves
        relay.proc.wait(WAIT)
        relay.stop()
        for person in people:
            person.wait_for(lambda e: isinstance(e, ev.Reconnecting), "reconnecting")
        relay = RelayProcess(tmp_path, "--port", str(port), "--data-dir", data)
        for person in people:
            person.wait_for(lambda e: isinstance(e, ev.Connected), "connected again")
        alice.wait_for(lambda e: _names_bob(e), "bob back")

        # The verified log outlived the reconnect on the client, and the relay still has it.
        alice.connection.room_request(lambda book, now: book.fetch(state.room_id, 0))
        alice.connection.send_to_room("still in ops", "ops")
        message = bob.wait_for(lambda e: isinstance(e, ev.Message) and e.text == "still in ops", "room message")
        assert getattr(message, "room", None) == "ops"
        assert not [e for e in alice.log + bob.log if isinstance(e, ev.Warning) and e.kind.startswith("room_")]
        relay.stop()  # the log thread writes what it holds before the relay exits
        stored = relay.all_output()
        assert "rooms store=" in stored and "rooms=1" in stored  # the restarted relay loaded the room
    finally:
        for person in people:
            person.connection.close()
        relay.stop()


def _names_bob(event: ev.Event) -> bool:
    """bob is present: listed in a roster, or joined after it."""
    if isinstance(event, ev.Roster):
        return any(member.name == "bob" for member in event.members)
    return isinstance(event, ev.Joined) and event.member.name == "bob"
