"""A live copy that honestly overtakes a waiting one raises no warning. A real relay (mailboxes in
SQLite), real ``RelayConnection`` clients on loopback sockets, the tampering proxy in between.

The relay sends a client its mail only after the client's ``prekeys`` frame. Here that frame is
slow to reach the relay (the proxy holds it, as a slow network would), so alice's live message
``two`` reaches bob before the waiting ``one``. Judged at once that is a ``gap`` and then a
``late`` for a conversation in which nothing was lost; the client holds the gap until the
relay's ``mail_end`` and then finds nothing missing.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from susurro.client import events as ev
from susurro.client.mailbox import Mailbox
from susurro.client.session import ClientSession
from susurro.crypto import IdentityKey, ReplayGuard
from susurro.crypto.trust import TrustStore
from susurro.protocol import Frame, MailEnd, Prekeys, name_key
from tests.helpers.hostile_relay import TO_RELAY, WAIT, HostileRoom, Item


def mailbox_session(name: str) -> ClientSession:
    """A client that publishes prekeys, so it leaves and fetches waiting messages."""
    identity = IdentityKey.generate()
    trust = TrustStore(None, key_of=name_key)
    replay = ReplayGuard()  # one guard: live and waiting copies count in the same streams
    mailbox = Mailbox(identity, name, trust, replay)
    return ClientSession(identity, name, relay="hostile", trust=trust, replay=replay, mailbox=mailbox)


def test_a_live_copy_that_overtakes_the_waiting_one_before_it_is_no_warning(tmp_path: Path) -> None:
    room = HostileRoom(data_dir=str(tmp_path / "relay"))
    try:
        alice = room.join("alice", session=mailbox_session("alice"))
        bob = room.join("bob", session=mailbox_session("bob"))
        room.leave("bob")
        alice.send("one", to=["bob"])
        alice.wait_for(lambda e: isinstance(e, ev.Delivery) and e.waiting == ("bob",), what="one waiting for bob")

        held: list[Frame] = []
        holding = threading.Event()
        holding.set()

        def slow_prekeys(label: str, frame: Frame) -> Sequence[Item]:
            if isinstance(frame, Prekeys) and holding.is_set():
                held.append(frame)
                return []
            return [frame]

        drained = threading.Event()

        def watch_mail_end(label: str, frame: Frame) -> Sequence[Item]:
            if isinstance(frame, MailEnd):
                drained.set()
            return [frame]

        room.proxy.set_hook("bob2", slow_prekeys, direction=TO_RELAY)
        room.proxy.set_hook("bob2", watch_mail_end)
        # bob comes back: the same identity, pins, counters, replay guard and mailbox, a new session.
        bob2 = room.join("bob2", session=bob.session.renewed())
        alice.send("two", to=["bob"])
        bob2.wait_message("two")
        assert len(held) == 1, "bob's prekeys went out before alice's live copy came"
        holding.clear()
        room.proxy.inject("bob2", *held, direction=TO_RELAY)
        assert bob2.wait_message("one").waited
        assert drained.wait(WAIT), "the relay never said mail_end"
        bob2.barrier()  # everything up to and after mail_end has been judged

        assert bob2.texts() == ["two", "one"]
        assert bob2.warnings() == []  # was ["gap", "late"] when judged at once (checked)
    finally:
        room.close()
    room.check()
