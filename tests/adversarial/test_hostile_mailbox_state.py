"""A hostile relay against what the mailbox part remembers across restarts
(``client/mailstate.py``) and against name-based lookups: replaying a confirmed
item to a recipient that restarted, serving an item too old to check, rolling a
sender back to an older signed prekey, and handing out an impostor's prekeys
under a member's name. Real sessions and a real relay core on a real SQLite
data dir (``tests.helpers.session_pair``); the clock is passed in.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from susurro.client import events as ev
from susurro.client.mailstate import MAX_MAIL_AGE_MS, STALE_MAIL_AGE_MS
from susurro.crypto import IdentityKey
from susurro.crypto.prekeys import ONE_TIME_PREKEY_LIFETIME, SIGNED_PREKEY_ROTATION
from susurro.crypto.trust import TrustStore
from susurro.protocol import Bundles, Frame, Mail, name_key
from tests.adversarial.test_hostile_mailbox import come_back, kinds, texts
from tests.helpers.offline import User, bob_away

DAY = 86_400.0


def drain_one_time_prekeys(room: object, identity_key: bytes) -> None:
    """Someone drains the one-time prekeys: what waits is sealed to the signed prekey alone."""
    prekeys = room.relay.mailbox.prekeys  # type: ignore[attr-defined]
    while (bundle := prekeys.take_bundle(identity_key, now=room.now)) and bundle.one_time is not None:
        pass


def test_a_confirmed_item_replayed_after_the_recipient_restarts_is_not_shown_again(tmp_path: Path) -> None:
    # Sealed to the signed prekey alone, the item leaves no used one-time key behind; and bob's
    # restarted session has lost its counters (a fresh replay guard). Only the saved record of
    # the mail he opened stands between the relay and a second "genuine" copy.
    room, _, bob, clock = bob_away(tmp_path)
    drain_one_time_prekeys(room, bob.identity.public)
    room["alice"].send_message("pay the baker", room.now, to=["bob"])
    room.pump()
    kept: list[Mail] = []

    def keep(frame: Frame) -> list[Frame]:
        if isinstance(frame, Mail):
            kept.append(frame)
        return [frame]

    assert texts(come_back(room, bob, clock, keep)) == ["pay the baker"]  # shown, then confirmed
    assert room.relay.mailbox.mailboxes.usage(bob.identity.public) == (0, 0)
    room.hang_up("bob2")
    room.pump()
    clock[0] += DAY  # bob restarts a day later: a new session, counters lost, saved state loaded
    room.add("bob3", name="bob", **bob.session_options(clock))
    room.pump()
    replayed = room.inject("bob3", dataclasses.replace(kept[0], item=kept[0].item + 10_000))
    assert texts(replayed) == [] and kinds(replayed) == []  # a duplicate: confirmed again, not shown


def test_a_waiting_message_older_than_the_client_can_check_is_refused(tmp_path: Path) -> None:
    room, _, bob, clock = bob_away(tmp_path)
    room["alice"].send_message("old news", room.now, to=["bob"])
    room.pump()
    clock[0] += MAX_MAIL_AGE_MS / 1000 + DAY  # the relay kept it past any mailbox's lifetime
    events = come_back(room, bob, clock, lambda frame: [frame])
    assert texts(events) == [] and kinds(events) == ["stale_mail"]


def test_a_waiting_message_held_back_past_any_mailbox_is_stale(tmp_path: Path) -> None:
    # Sealed to a one-time prekey and held back by the relay for 16 days: it would fill no gap
    # (bob's stream has nothing after it), so only its signed age gives it away.
    room, _, bob, clock = bob_away(tmp_path)
    room["alice"].send_message("held back", room.now, to=["bob"])
    room.pump()
    clock[0] += STALE_MAIL_AGE_MS / 1000 + DAY
    events = come_back(room, bob, clock, lambda frame: [frame])
    assert texts(events) == [] and kinds(events) == ["stale_mail"]
    # The same delivered 14 days after it was sent: within any mailbox's lifetime, shown.
    room2, _, bob2, clock2 = bob_away(tmp_path / "again")
    room2["alice"].send_message("in time", room2.now, to=["bob"])
    room2.pump()
    clock2[0] += STALE_MAIL_AGE_MS / 1000 - DAY
    assert texts(come_back(room2, bob2, clock2, lambda frame: [frame])) == ["in time"]


def test_a_relay_rolling_a_sender_back_to_an_older_signed_prekey_is_refused(tmp_path: Path) -> None:
    room, _, bob, clock = bob_away(tmp_path)
    old: list[Bundles] = []

    def keep_bundles(frame: Frame) -> list[Frame]:
        if isinstance(frame, Bundles):
            old.append(frame)
        return [frame]

    room.intercept("alice", keep_bundles)
    room["alice"].send_message("first", room.now, to=["bob"])
    room.pump()
    clock[0] += SIGNED_PREKEY_ROTATION + DAY  # bob comes back after a week: a new signed prekey
    room.intercept("alice", None)
    room.add("bob2", name="bob", **bob.session_options(clock))
    room.pump()
    room.hang_up("bob2")
    room.pump()
    room["alice"].send_message("second", room.now, to=["bob"])  # alice sees bob's new signed prekey
    room.pump()

    def roll_back(frame: Frame) -> list[Frame]:
        if isinstance(frame, Bundles) and frame.bundles:
            stale = dataclasses.replace(frame.bundles[0], spk=old[0].bundles[0].spk)
            return [dataclasses.replace(frame, bundles=(stale,))]
        return [frame]

    room.intercept("alice", roll_back)
    msg_id = room["alice"].send_message("third", room.now, to=["bob"])
    events = room.pump()["alice"]
    assert kinds(events) == ["bad_prekey"]
    reports = [e for e in events if isinstance(e, ev.Delivery) and e.msg_id == msg_id]
    assert [r.not_delivered for r in reports] == [(("bob", "bad_prekey"),)] and not reports[0].waiting


def test_someone_else_publishing_prekeys_under_a_members_name_does_not_get_their_mail(tmp_path: Path) -> None:
    # A relay without --registry lets anyone join as "bob" while bob is away. Prekeys are
    # fetched by the identity key alice pinned, so mallory's never come into it.
    room, _, bob, clock = bob_away(tmp_path)
    mallory = User("bob", tmp_path / "mallory")
    mallory.identity = IdentityKey.generate()
    mallory.trust = TrustStore(None, key_of=name_key)
    room.add("mallory", name="bob", **mallory.session_options(clock))
    room.pump()
    room.hang_up("mallory")
    room.pump()
    msg_id = room["alice"].send_message("for the real bob", room.now, to=["bob"])
    events = room.pump()["alice"]
    assert [e.waiting for e in events if isinstance(e, ev.Delivery) and e.msg_id == msg_id] == [("bob",)]
    assert kinds(events) == []
    assert room.relay.mailbox.mailboxes.usage(mallory.identity.public)[0] == 0
    assert texts(come_back(room, bob, clock, lambda frame: [frame])) == ["for the real bob"]


def test_a_one_time_prekey_served_past_its_expiry_is_not_sealed_to(tmp_path: Path) -> None:
    # The relay (its clock left behind here) keeps handing out bob's one-time prekeys a month
    # after they expired; alice's client refuses them, says so, and seals to the signed prekey.
    room, _, bob, clock = bob_away(tmp_path)
    clock[0] += ONE_TIME_PREKEY_LIFETIME + DAY
    msg_id = room["alice"].send_message("sealed anyway", clock[0], to=["bob"])
    events = room.pump()["alice"]
    assert kinds(events) == ["prekey_expired"]
    reports = [e for e in events if isinstance(e, ev.Delivery) and e.msg_id == msg_id]
    assert reports and reports[0].waiting == ("bob",)
    back = come_back(room, bob, clock, lambda frame: [frame])
    assert texts(back) == ["sealed anyway"], back
