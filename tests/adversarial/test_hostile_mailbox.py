"""A hostile relay and messages that wait: it replays, reorders, drops or
mis-serves mailbox items, and drains one-time prekeys. Real sessions and a real
relay core on a real SQLite data dir (``tests.helpers.session_pair``); the
relay's frames to the recipient pass a hook that does what a malicious relay
could. Each test asserts the exact warnings, and that nothing forged is shown.
"""

from __future__ import annotations

from pathlib import Path

from susurro.client import events as ev
from susurro.client.gap_hold import GAP_HOLD_SECONDS
from susurro.protocol import Frame, Mail
from tests.helpers.offline import T0, User, bob_away, relay
from tests.helpers.session_pair import SessionPair


def waiting_room(tmp_path: Path, texts: list[str]) -> tuple[SessionPair, User, User, list[float]]:
    """alice leaves ``texts`` for bob while he is away; bob is about to come back as ``bob2``."""
    room, alice, bob, clock = bob_away(tmp_path)
    for text in texts:
        room["alice"].send_message(text, room.now, to=["bob"])
        room.pump()
    return room, alice, bob, clock


def come_back(room: SessionPair, bob: User, clock: list[float], hook: object) -> list[ev.Event]:
    room.add("bob2", name="bob", **bob.session_options(clock))
    room.intercept("bob2", hook)  # type: ignore[arg-type]
    return room.pump()["bob2"]


def texts(events: list[ev.Event]) -> list[str]:
    return [e.text for e in events if isinstance(e, ev.Message)]


def kinds(events: list[ev.Event]) -> list[str]:
    return [str(e.kind) for e in events if isinstance(e, ev.Warning)]


def test_a_dropped_mailbox_item_is_a_gap(tmp_path: Path) -> None:
    room, _, bob, clock = waiting_room(tmp_path, ["one", "two", "three"])

    def drop_two(frame: Frame) -> list[Frame]:
        return [] if isinstance(frame, Mail) and frame.id == sent_ids[1] else [frame]

    sent_ids = [item.msg_id for item in room.relay.mailbox.mailboxes.fetch(
        bob.identity.public, after=0, max_items=10, max_bytes=1 << 20, now=T0)]  # fmt: skip
    events = come_back(room, bob, clock, drop_two)
    assert texts(events) == ["one", "three"]
    # The gap is held for the drain, which never ends: the relay sends mail_end only once every item
    # it sent is confirmed. Holding has a time bound, so the gap is warned all the same.
    assert kinds(events) == []
    assert kinds(room["bob2"].tick(room.now + GAP_HOLD_SECONDS)) == ["gap"]


def test_reordered_mailbox_items_are_each_shown_once_and_the_late_one_is_flagged(tmp_path: Path) -> None:
    room, _, bob, clock = waiting_room(tmp_path, ["one", "two"])
    held: list[Frame] = []

    def swap(frame: Frame) -> list[Frame]:
        if isinstance(frame, Mail) and not held:
            held.append(frame)
            return []
        if isinstance(frame, Mail):
            return [frame, held.pop()]
        return [frame]

    events = come_back(room, bob, clock, swap)
    assert texts(events) == ["two", "one"]
    # Mail is sent in order, so two waiting copies out of order are the relay reordering: late. Nothing
    # is missing once the late one came (the gap before it was held for the drain, then filled).
    assert kinds(events) == ["late"]


def test_a_replayed_mailbox_item_under_a_new_number_is_refused(tmp_path: Path) -> None:
    room, _, bob, clock = waiting_room(tmp_path, ["only once"])
    copies: list[Mail] = []

    def keep(frame: Frame) -> list[Frame]:
        if isinstance(frame, Mail):
            copies.append(frame)
        return [frame]

    events = come_back(room, bob, clock, keep)
    assert texts(events) == ["only once"]
    replayed = Mail(
        item=copies[0].item + 1000, sender="alice", ik=copies[0].ik, id="fresh-id", kind="message",
        ct=copies[0].ct, at=copies[0].at,
    )  # fmt: skip
    again = room.inject("bob2", replayed)
    assert texts(again) == [] and kinds(again) in ([], ["replay"])  # a duplicate envelope, or a replay


def test_someone_elses_mailbox_item_served_to_bob_is_refused(tmp_path: Path) -> None:
    clock = [T0]
    alice, bob, carol = User("alice", tmp_path), User("bob", tmp_path), User("carol", tmp_path)
    room = relay(tmp_path / "relay")
    for user in (alice, bob, carol):
        room.add(user.name, **user.session_options(clock))
    room.pump()
    room.hang_up("carol")
    room.pump()
    room["alice"].send_message("for carol only", room.now, to=["carol"])
    room.pump()
    (item,) = room.relay.mailbox.mailboxes.fetch(carol.identity.public, after=0, max_items=5, max_bytes=1 << 20, now=T0)
    events = room.inject(
        "bob",
        Mail(item=item.item, sender="alice", ik=item.sender_key, id=item.msg_id, kind="message", ct=item.ct, at=1),
    )
    assert texts(events) == []
    assert kinds(events) in (["unknown_prekey"], ["decrypt_failed"])


def test_drained_one_time_prekeys_make_the_sender_say_so(tmp_path: Path) -> None:
    room, _, bob, clock = bob_away(tmp_path)
    prekeys = room.relay.mailbox.prekeys
    while (bundle := prekeys.take_bundle(bob.identity.public, now=room.now)) and bundle.one_time is not None:
        pass  # someone (the relay, or a member fetching) drains bob's one-time prekeys
    room["alice"].send_message("still sent", room.now, to=["bob"])
    events = room.pump()["alice"]
    assert kinds(events) == ["prekey_exhausted"]
    assert [e.waiting for e in events if isinstance(e, ev.Delivery)] == [("bob",)]
    assert texts(come_back(room, bob, clock, lambda f: [f])) == ["still sent"]
