"""A message delivered online keeps its ticks after the sender restarts, as one that waited does.

The window draws an own message from the history as delivered when the core
says whose client confirmed it (``RelayConnection.delivery_reports``, read
from the mailbox state the sender keeps sealed). That record held only
messages that had waited in a mailbox, so one delivered online lost its ✓✓
at the sender's restart. Real sessions, a real relay core on a real SQLite
data dir, both users' files opened as the clients open them
(``open_local_state``) under their own ``$SUSURRO_HOME``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from susurro.client import events as ev
from susurro.client.localstate import open_local_state
from susurro.client.mailstate import DeliveryState
from susurro.crypto import IdentityKey
from susurro.crypto.trust import TrustStore
from susurro.protocol import Mail, name_key
from tests.helpers.session_pair import SessionPair
from tests.unit.test_offline_sessions import relay


class Person:
    """One user's identity, pins and home directory; ``start`` opens their files as a client does."""

    def __init__(self, name: str, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.name, self.home, self._env = name, home, monkeypatch
        self.identity, self.trust = IdentityKey.generate(), TrustStore(None, key_of=name_key)
        self.save: Any = None

    def start(self, room: SessionPair, label: str) -> None:
        self._env.setenv("SUSURRO_HOME", str(self.home))
        history, mailbox, counters = open_local_state(self.identity, self.name, self.trust)
        self.save = lambda: counters.save(time.time(), force=True)  # what closing the client does
        room.add(
            label, name=self.name, identity=self.identity, trust=self.trust, history=history, mailbox=mailbox,
            replay=counters.replay, counters=counters.counters, unconfirmed=counters.unconfirmed,
            save_state=lambda now, force: counters.save(now, force=force),
        )  # fmt: skip


def _report(room: SessionPair, label: str, msg_id: str) -> dict[str, DeliveryState]:
    mailbox = room[label].mailbox
    assert mailbox is not None
    return mailbox.state.deliveries.report(msg_id)


def _pair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[SessionPair, Person, Person]:
    alice, bob = Person("alice", tmp_path / "alice", monkeypatch), Person("bob", tmp_path / "bob", monkeypatch)
    room = relay(tmp_path / "relay")
    alice.start(room, "alice")
    bob.start(room, "bob")
    room.pump()
    return room, alice, bob


def test_a_message_confirmed_online_is_still_delivered_after_the_senders_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    room, alice, _ = _pair(tmp_path, monkeypatch)
    msg_id = room["alice"].send_message("delivered while both were here", room.now, to=["bob"])
    receipts = [e for e in room.pump()["alice"] if isinstance(e, ev.Receipt)]
    assert receipts and msg_id in receipts[0].msg_ids and receipts[0].waited == (), "online, not waited"
    alice.save()
    room.hang_up("alice")  # alice's client restarts
    room.pump()
    alice.start(room, "alice-again")
    room.pump()
    assert _report(room, "alice-again", msg_id) == {"bob": DeliveryState.DELIVERED}


def test_a_receipt_read_after_the_senders_restart_still_marks_an_online_delivery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    room, alice, _ = _pair(tmp_path, monkeypatch)
    room.intercept("alice", lambda frame: [] if isinstance(frame, Mail) and frame.kind == "receipt" else [frame])
    msg_id = room["alice"].send_message("confirmed while alice was away", room.now, to=["bob"])
    assert [m.msg_id for m in room.pump()["bob"] if isinstance(m, ev.Message)] == [msg_id]
    alice.save()  # /quit: unconfirmed, kept for the next start
    room.hang_up("alice")
    room.pump()
    alice.start(room, "alice-again")  # bob's receipt waited in her mailbox
    receipts = [e for e in room.pump()["alice-again"] if isinstance(e, ev.Receipt)]
    assert receipts and msg_id in receipts[0].msg_ids
    assert _report(room, "alice-again", msg_id) == {"bob": DeliveryState.DELIVERED}
