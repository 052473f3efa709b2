"""What the mailbox part remembers across restarts (``client/mailstate.py``), through
real sessions and a real relay core on a real SQLite data dir: a sender's
"waiting for bob" that becomes "delivered to bob" after the sender restarted,
and a first contact through the mailbox charged to the automatic pin budget.
"""

from __future__ import annotations

from pathlib import Path
from unittest.mock import patch

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from susurro.client import events as ev
from susurro.client import mailstate
from susurro.client.mailbox import Mailbox
from susurro.client.mailstate import (
    MAX_MAIL_AGE_MS,
    MAX_MAIL_SKEW_MS,
    MAX_SEEN_MAIL,
    MAX_SEEN_MAIL_PER_SENDER,
    STALE_MAIL_AGE_MS,
    DeliveryState,
    MailState,
    SeenMail,
)
from susurro.client.prekeyring import Duplicate
from susurro.crypto import IdentityKey, MalformedMessage, Replay
from susurro.crypto.errors import StaleMail
from susurro.crypto.prekeys import check_bundle, seal_to_prekey
from susurro.crypto.seal import MAX_SENT_AT, message_block, sign_message
from susurro.crypto.trust import MAX_AUTO_PINS_PER_DAY, PinSource
from susurro.protocol import Mail
from tests.helpers.offline import HOUR, T0, User, bob_away, relay
from tests.unit.test_offline_rooms import bundle_from_stored


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
    with pytest.raises(StaleMail):
        seen.check(ALICE_KEY, "m2", now - STALE_MAIL_AGE_MS - 1, now)
    seen.check(ALICE_KEY, "m2", now - STALE_MAIL_AGE_MS, now)
    seen = SeenMail()
    for n in range(MAX_SEEN_MAIL_PER_SENDER + 5):  # past her share her oldest go, and her floor rises
        seen.add(ALICE_KEY, f"x{n}", now - 10_000 + n, now)
    assert seen.floors[ALICE_KEY] == now - 10_000 + 4 and len(seen.export()[1]) == MAX_SEEN_MAIL_PER_SENDER
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


# --- review S5 finding 2: senders choose sent_at, so records and floors are per sender ----------


def test_one_sender_filling_the_records_raises_no_one_elses_floor() -> None:
    now = 100 * MAX_MAIL_AGE_MS
    seen = SeenMail()
    for n in range(5):
        seen.add(ALICE_KEY, f"a{n}", now - 50_000 + n, now)
    for i in range(MAX_SEEN_MAIL // MAX_SEEN_MAIL_PER_SENDER + 2):  # throwaway identities, each over its share
        mallory = bytes([0xF0, i]) * 16
        for n in range(MAX_SEEN_MAIL_PER_SENDER + 10):
            seen.add(mallory, f"m{n}", now - 1_000 + n % 500, now)
    entries = seen.export()[1]
    assert len(entries) <= MAX_SEEN_MAIL
    assert len([e for e in entries if e[0] == ALICE_KEY]) == 5  # alice keeps her records
    seen.check(ALICE_KEY, "delayed-but-genuine", now - 40_000, now)  # and her mail is taken
    with pytest.raises(Replay):
        seen.check(bytes([0xF0, 0]) * 16, "older", now - 2_000, now)  # mallory's own floor rose


def test_a_waiting_message_signed_in_the_future_is_refused_and_never_recorded_past_now() -> None:
    now = 100 * MAX_MAIL_AGE_MS
    seen = SeenMail()
    seen.check(ALICE_KEY, "skewed", now + MAX_MAIL_SKEW_MS, now)  # a clock a little fast is fine
    seen.add(ALICE_KEY, "skewed", now + MAX_MAIL_SKEW_MS, now)
    assert seen.export()[1] == [[ALICE_KEY, "skewed", now]]
    with pytest.raises(MalformedMessage, match="ahead"):
        seen.check(ALICE_KEY, "year-9999", MAX_SENT_AT, now)


@settings(max_examples=120, deadline=None)
@given(
    adds=st.lists(
        st.tuples(st.integers(0, 4), st.integers(-MAX_MAIL_AGE_MS - 5, 2 * MAX_MAIL_SKEW_MS), st.integers(0, 3)),
        max_size=80,
    )
)
def test_whatever_senders_sign_the_bounds_hold_and_the_state_round_trips(adds: list[tuple[int, int, int]]) -> None:
    now = 100 * MAX_MAIL_AGE_MS
    seen = SeenMail()
    with patch.object(mailstate, "MAX_SEEN_MAIL", 10), patch.object(mailstate, "MAX_SEEN_MAIL_PER_SENDER", 4):
        at = now
        for i, (sender, offset, later) in enumerate(adds):
            key, at = bytes([sender]) * 32, at + later * 1000  # time only moves on
            try:
                seen.check(key, f"m{i}", now + offset, at)
            except (Replay, MalformedMessage, StaleMail):
                continue
            seen.add(key, f"m{i}", now + offset, at)
            entries = seen.export()[1]
            assert len(entries) <= 10
            assert all(sum(e[0] == k for e in entries) <= 4 for k in {e[0] for e in entries})
            assert all(t <= at for _, _, t in entries) and all(f <= at for f in seen.floors.values())
    again = SeenMail.load(seen.export())
    assert again.export() == seen.export()


def test_a_waiting_message_dated_in_the_year_9999_is_refused_and_later_mail_still_comes(tmp_path: Path) -> None:
    room, _, bob, clock = bob_away(tmp_path)
    room.add("bob2", name="bob", **bob.session_options(clock))
    room.pump()  # bob's prekeys are on the relay
    mallory = IdentityKey.generate()
    signed = sign_message(
        identity=mallory, sender="mallory", recipients=[("bob", bob.identity.public)], body="from the future",
        msg_id="m-9999", sent_at=MAX_SENT_AT, direct=True,
    )  # fmt: skip
    bundle = room.relay.mailbox.prekeys.take_bundle(bob.identity.public, now=room.now)
    assert bundle is not None
    envelope = seal_to_prekey(mallory, check_bundle(bundle_from_stored(bundle), bob.identity.public),
                              message_block(signed, 1))  # fmt: skip
    events = room.inject(
        "bob2", Mail(item=10**6, sender="mallory", ik=mallory.public, id="m-9999", kind="message", ct=envelope,
                     at=int(clock[0])),
    )  # fmt: skip
    assert [e.kind for e in events if isinstance(e, ev.Warning)] == ["malformed_message"]
    assert not [e for e in events if isinstance(e, ev.Message)]
    room.hang_up("bob2")
    room.pump()
    room["alice"].send_message("an ordinary day", room.now, to=["bob"])
    room.pump()
    room.add("bob3", name="bob", **bob.session_options(clock))
    assert [e.text for e in room.pump()["bob3"] if isinstance(e, ev.Message)] == ["an ordinary day"]
