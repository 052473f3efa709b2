"""What the mailbox part remembers across restarts (``client/mailstate.py``), through
real sessions and a real relay core on a real SQLite data dir: a sender's
"waiting for bob" that becomes "delivered to bob" after the sender restarted,
and a first contact through the mailbox charged to the automatic pin budget.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from susurro.client import events as ev
from susurro.client.mailbox import Mailbox
from susurro.client.mailstate import MAX_MAIL_AGE_MS, MAX_SEEN_MAIL, DeliveryState, MailState, SeenMail
from susurro.client.prekeyring import Duplicate
from susurro.crypto import IdentityKey, Replay
from susurro.crypto.trust import MAX_AUTO_PINS_PER_DAY, PinSource
from tests.helpers.offline import HOUR, T0, User, bob_away, relay


def test_a_receipt_after_the_senders_restart_still_turns_waiting_into_delivered(tmp_path: Path) -> None:
    room, alice, bob, clock = bob_away(tmp_path)
    msg_id = room["alice"].send_message("see you at noon", room.now, to=["bob"])
    assert [e.waiting for e in room.pump()["alice"] if isinstance(e, ev.Delivery)] == [("bob",)]
    room.hang_up("alice")  # alice closes her client; bob comes back while she is away
    room.pump()
    clock[0] += 3 * HOUR
    room.add("bob2", name="bob", **bob.session_options(clock))
    assert [e.text for e in room.pump()["bob2"] if isinstance(e, ev.Message)] == ["see you at noon"]
    clock[0] += 3 * HOUR
    options = alice.session_options(clock)  # alice starts again: only her saved state knows the message
    room.add("alice2", name="alice", **options)
    receipts = [e for e in room.pump()["alice2"] if isinstance(e, ev.Receipt)]
    assert receipts == [ev.Receipt(sender="bob", msg_ids=(msg_id,), waited=(msg_id,))]
    mailbox = options["mailbox"]
    assert isinstance(mailbox, Mailbox)
    assert mailbox.state.deliveries.report(msg_id) == {"bob": DeliveryState.DELIVERED}


def test_a_first_contact_through_the_mailbox_spends_the_automatic_pin_budget(tmp_path: Path) -> None:
    # The relay decides who mails bob; pinning them must cost what a relay-introduced name
    # costs (the daily automatic budget), not the reserve kept for bob's own acts.
    clock = [T0]
    alice, bob = User("alice", tmp_path), User("bob", tmp_path)
    room = relay(tmp_path / "relay")
    room.add("bob", **bob.session_options(clock))
    room.pump()
    room.hang_up("bob")
    room.pump()
    alice.trust.remember("bob", bob.identity.public)  # alice knows bob's key (from elsewhere); bob never met her
    room.add("alice", **alice.session_options(clock))
    room.pump()
    room["alice"].send_message("hello stranger", room.now, to=["bob"])
    room.pump()
    room.hang_up("alice")  # gone before bob is back: he meets her only through his mailbox
    room.pump()
    assert bob.trust.contact("alice") is None
    left = bob.trust.auto_pins_left(clock[0])
    room.add("bob2", name="bob", **bob.session_options(clock))
    shown = [e for e in room.pump()["bob2"] if isinstance(e, ev.Message)]
    assert [m.text for m in shown] == ["hello stranger"]
    contact = bob.trust.contact("alice")
    assert contact is not None and contact.source is PinSource.SEEN
    assert bob.trust.auto_pins_left(clock[0]) == left - 1 < MAX_AUTO_PINS_PER_DAY


ALICE_KEY = b"A" * 32


def test_seen_mail_refuses_repeats_and_what_is_too_old_and_keeps_its_bound() -> None:
    now = 100 * MAX_MAIL_AGE_MS
    seen = SeenMail()
    seen.check(ALICE_KEY, "m1", now - 1000, now)
    seen.add(ALICE_KEY, "m1", now - 1000, now)
    with pytest.raises(Duplicate):
        seen.check(ALICE_KEY, "m1", now - 1000, now)
    with pytest.raises(Replay):
        seen.check(ALICE_KEY, "m2", now - MAX_MAIL_AGE_MS - 1, now)
    seen = SeenMail()
    for n in range(MAX_SEEN_MAIL + 5):  # past the bound the oldest go, and the floor rises with them
        seen.add(ALICE_KEY, f"x{n}", now - 10_000 + n, now)
    assert seen.floor == now - 10_000 + 4 and len(seen.export()[1]) == MAX_SEEN_MAIL
    with pytest.raises(Replay):
        seen.check(ALICE_KEY, "never-seen", now - 10_000 + 4, now)  # its record might have been let go
    seen.check(ALICE_KEY, "fresh", now, now)


def test_the_mail_state_survives_sealing_and_opens_only_under_its_identity() -> None:
    identity = IdentityKey.generate()
    state = MailState.empty()
    state.seen.add(ALICE_KEY, "m1", 5, 10)
    state.deliveries.waiting("m1", [("bob", b"B" * 32)])
    again = MailState.unseal(identity, state.seal(identity))
    assert again.export() == state.export()
    with pytest.raises(Exception, match="does not open"):
        MailState.unseal(IdentityKey.generate(), state.seal(identity))
