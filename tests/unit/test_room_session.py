"""Rooms through whole client sessions: a real ``RelayCore``, real ``ClientSession`` objects, no sockets.

The relay can hide or rewrite any frame on its way to one client
(``SessionPair.intercept``). These are the defences that need the session
(sending, showing, keeping), not only the room book; each test was run once
with its defence switched off and failed (docs/threat-model.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from susurro.client import events as ev
from susurro.client import rooms as rooms_module
from susurro.client.counters import SendCounters
from susurro.client.errors import SendError
from susurro.client.history import SqliteHistory, history_conversation
from susurro.client.lobby import DEMO_ROOM, Lobby
from susurro.client.room_directory import RoomDirectory
from susurro.client.room_events import MemberAdded, MemberRemoved, RoomAlert, RoomMessage, RoomWarning
from susurro.client.room_hold import ROOM_LOG_WAIT
from susurro.client.rooms import RoomBook
from susurro.client.sending import seal_send
from susurro.client.session import ClientSession
from susurro.crypto import EntryKind, IdentityKey, RoomPolicy, entry_hash
from susurro.crypto.history import HistoryKey
from susurro.crypto.seal import SignedHead
from susurro.protocol import (
    CLIENT_FRAMES,
    Deliver,
    Frame,
    FrameDecoder,
    RoomIndex,
    RoomLog,
    RoomUpdate,
    Send,
    decode_frame,
)
from tests.helpers.session_pair import Item, SessionPair

Hidden = list[Frame]


def request(pair: SessionPair, label: str, build: object) -> dict[str, list[ev.Event]]:
    pair[label].room_request(build, pair.now)  # type: ignore[arg-type]
    return pair.pump()


def alerts(events: Sequence[ev.Event], kind: str) -> list[RoomAlert]:
    return [e for e in events if isinstance(e, RoomAlert) and e.kind == kind]


def sends(pair: SessionPair, label: str, hook_into: list[Any], kind: type[Frame] = Send) -> None:
    """Record every ``send`` (or other frame ``kind``) ``label`` writes (what it encrypted, to whom)."""
    session = pair[label]
    original = session.data_to_send

    def spy() -> bytes:
        data = original()
        decoder = FrameDecoder(16 * 1024 * 1024)
        decoder.feed(data)
        while (payload := decoder.next_payload()) is not None:
            frame = decode_frame(payload, CLIENT_FRAMES, max_bin_len=16 * 1024 * 1024)
            if isinstance(frame, kind):
                hook_into.append(frame)
        return data

    session.data_to_send = spy  # type: ignore[method-assign]


def ops(pair: SessionPair, *members: str) -> bytes:
    """alice's invite-only room "ops" with ``members`` added; its id."""
    request(pair, "alice", lambda book, now: book.create("ops", RoomPolicy.INVITE, now))
    state = pair["alice"].rooms.state("ops")
    assert state is not None
    for name in members:
        key = pair.identity(name).public
        request(pair, "alice", lambda book, now, n=name, k=key: book.change(state.room_id, EntryKind.ADD, n, k, now))
        pair.accept(name, state.room_id)
    return state.room_id


def hide_room_frames(pair: SessionPair, label: str, hidden: Hidden) -> None:
    """The relay stops telling ``label`` that the room changed: updates vanish, fetches answer the old head."""
    seen = pair[label].rooms
    frozen = {}

    def hook(frame: Frame) -> Sequence[Item]:
        if isinstance(frame, RoomUpdate):
            hidden.append(frame)
            return []
        if isinstance(frame, RoomLog):
            state = seen.state(frame.room)
            if state is not None:
                head = frozen.setdefault(frame.room, state.head)
                return [dataclasses.replace(frame, entries=(), head_seq=head.seq, head_hash=head.hash)]
        return [frame]

    pair.intercept(label, hook)


def carol_removed_behind_bobs_back(pair: SessionPair) -> bytes:
    """ops with bob and carol; alice removes carol, and the relay hides that from bob. The room's id."""
    room = ops(pair, "bob", "carol")
    hidden: Hidden = []
    hide_room_frames(pair, "bob", hidden)
    carol_key = pair.identity("carol").public
    request(pair, "alice", lambda book, now: book.change(room, EntryKind.REMOVE, "carol", carol_key, now))
    assert hidden, "the relay had a removal to hide from bob"
    return room


@pytest.fixture
def pair() -> SessionPair:
    pair = SessionPair()
    pair.join("alice", "bob", "carol")
    return pair


# --- a withheld removal must not keep the removed member receiving ----------------------


def test_a_sender_shown_a_newer_head_the_relay_withholds_sends_nothing(pair: SessionPair) -> None:
    room = carol_removed_behind_bobs_back(pair)
    pair["alice"].send_message("carol is out", pair.now, room=room)
    produced = pair.pump()
    # bob sees alice's message (she is a member) and that the relay withholds what it was signed at.
    assert [e.text for e in produced["bob"] if isinstance(e, RoomMessage)] == ["carol is out"]
    assert alerts(produced["bob"], RoomWarning.WITHHELD)
    assert not any(isinstance(e, ev.Message) for e in produced["carol"])
    # bob's log still lists carol; he must not seal to her: not sent, and he is told why.
    bob_sends: list[Send] = []
    sends(pair, "bob", bob_sends)
    with pytest.raises(SendError, match="removal withheld"):
        pair["bob"].send_message("bob to the room", pair.now, room=room)
    produced = pair.pump()
    assert not any("carol" in send.to for send in bob_sends)
    assert not any(isinstance(e, ev.Message) for e in produced["carol"])


def test_a_send_while_the_newer_log_is_fetched_waits_and_goes_out_at_the_new_head(pair: SessionPair) -> None:
    room = carol_removed_behind_bobs_back(pair)
    # alice's message reaches bob, signed at the removal; bob asks for the log, and the answer is slow.
    slow: list[Frame] = []

    def slow_logs(frame: Frame) -> Sequence[Item]:
        if isinstance(frame, (RoomLog, RoomUpdate)):
            slow.append(frame)
            return []
        return [frame]

    pair.intercept("bob", slow_logs)
    pair["alice"].send_message("carol is out", pair.now, room=room)
    pair.pump()
    bob_state = pair["bob"].rooms.state(room)
    assert bob_state is not None and bob_state.head.seq == 2 and slow
    bob_sends: list[Send] = []
    sends(pair, "bob", bob_sends)
    msg_id = pair["bob"].send_message("typed meanwhile", pair.now, room=room)
    pair.pump()
    assert not bob_sends  # held, not sealed to the old member list
    waits = [e for e in pair["bob"].tick(pair.now) if isinstance(e, ev.Warning) and e.kind == "room_stale_head"]
    assert waits and msg_id in waits[0].detail
    # The log arrives, the removal with it: the message goes out, sealed at the new head, without carol.
    pair.intercept("bob", None)
    produced = {"bob": pair.inject("bob", *slow)}
    for who, events in pair.pump().items():
        produced.setdefault(who, []).extend(events)
    assert any(isinstance(e, MemberRemoved) and e.name == "carol" for e in produced["bob"])
    assert [send.id for send in bob_sends] == [msg_id] and set(bob_sends[0].to) == {"alice"}
    assert "typed meanwhile" in [e.text for e in produced["alice"] if isinstance(e, RoomMessage)]
    assert not any(isinstance(e, ev.Message) for e in produced["carol"])


def test_a_held_send_whose_log_the_relay_will_not_serve_is_reported_not_delivered(pair: SessionPair) -> None:
    room = carol_removed_behind_bobs_back(pair)
    slow: list[Frame] = []
    hook = pair.nodes["bob"].hook
    assert hook is not None
    pair.intercept("bob", lambda f: slow.append(f) or [] if isinstance(f, RoomLog) else hook(f))  # type: ignore[func-returns-value]
    pair["alice"].send_message("carol is out", pair.now, room=room)
    pair.pump()
    msg_id = pair["bob"].send_message("typed meanwhile", pair.now, room=room)
    pair.pump()
    # The fetch's answer comes: the old head again. The held message is not sent, and bob learns why.
    pair.intercept("bob", hook)
    events = pair.inject("bob", *(hook(f)[0] for f in slow))  # type: ignore[misc]
    events += pair.pump()["bob"]
    (report,) = [e for e in events if isinstance(e, ev.Delivery) and e.msg_id == msg_id]
    assert report.delivered == () and {name for name, _ in report.not_delivered} == {"alice", "carol"}
    assert all("removal withheld" in why for _, why in report.not_delivered)
    assert any(isinstance(e, ev.Warning) and e.kind == "not_sent" and msg_id in e.detail for e in events)


# --- a message from a member added since our head is held, not dropped ----------------------


def test_a_message_from_a_member_added_since_our_head_waits_for_the_log_and_is_shown(pair: SessionPair) -> None:
    room = ops(pair, "bob")
    held: Hidden = []

    def late_updates(frame: Frame) -> Sequence[Item]:
        if isinstance(frame, RoomUpdate):  # the push of carol's add is slow to reach bob
            held.append(frame)
            return []
        return [frame]

    pair.intercept("bob", late_updates)
    carol_key = pair.identity("carol").public
    request(pair, "alice", lambda book, now: book.change(room, EntryKind.ADD, "carol", carol_key, now))
    pair.accept("carol", room)
    pair.intercept("bob", None)
    pair["carol"].send_message("hello, I am new", pair.now, room=room)
    produced = pair.pump()
    shown = [e for e in produced["bob"] if isinstance(e, RoomMessage)]
    assert [(e.sender, e.text, e.room_id) for e in shown] == [("carol", "hello, I am new", room)]
    assert not alerts(produced["bob"], RoomWarning.NOT_A_MEMBER)
    assert any(isinstance(e, MemberAdded) and e.name == "carol" for e in produced["bob"])


# --- labels are pinned; conversations are keyed by room id ----------------------------------


def test_the_relay_mapping_a_known_label_to_another_room_is_flagged_and_the_label_keeps_its_room(
    pair: SessionPair,
) -> None:
    room = ops(pair, "bob")
    # Another "ops" (made on another relay, or by the relay's own key) served to bob under the same label.
    other = RoomBook("mallory", IdentityKey.generate())
    create = other.create("ops", RoomPolicy.OPEN, int(pair.now))
    other_id = entry_hash(create.entry)
    fake = RoomLog(
        id=asked(pair["bob"]), room=other_id, label="ops", from_seq=0, entries=(create.entry,), head_seq=0,
        head_hash=other_id, online=(),
    )  # fmt: skip
    produced = pair.inject("bob", fake)
    (moved,) = alerts(produced, RoomWarning.LABEL_MOVED)
    assert moved.room_id == other_id and "kept apart" in moved.detail
    state = pair["bob"].rooms.state("ops")
    assert state is not None and state.room_id == room  # the label still names the room first seen
    assert pair["bob"].rooms.state(other_id) is not None  # the other is known by its id only


def test_a_message_dropped_in_a_room_labelled_main_is_a_gap_there_not_in_the_relay_wide_room(
    pair: SessionPair,
) -> None:
    request(pair, "alice", lambda book, now: book.create("main", RoomPolicy.OPEN, now))
    state = pair["alice"].rooms.state("main")
    assert state is not None
    bob_key = pair.identity("bob").public
    request(pair, "alice", lambda book, now: book.change(state.room_id, EntryKind.ADD, "bob", bob_key, now))
    pair.accept("bob", state.room_id)
    pair.intercept("bob", lambda frame: [] if isinstance(frame, Deliver) else [frame])  # the relay drops one
    pair["alice"].send_message("dropped, in the room called main", pair.now, room=state.room_id)
    pair.pump()
    pair.intercept("bob", None)
    pair["alice"].send_message("to everyone on the relay", pair.now)
    relay_wide = pair.pump()["bob"]
    assert [e.text for e in relay_wide if isinstance(e, ev.Message)] == ["to everyone on the relay"]
    assert not [e for e in relay_wide if isinstance(e, ev.Warning)]  # that conversation lost nothing
    pair["alice"].send_message("the room goes on", pair.now, room=state.room_id)
    in_room = pair.pump()["bob"]
    gaps = [e for e in in_room if isinstance(e, ev.Warning) and e.kind == "gap"]
    assert len(gaps) == 1 and "1 message(s) from alice" in gaps[0].detail


# --- names in the log are checked against the trust store -----------------------------------


def test_a_log_naming_a_pinned_name_with_another_key_is_flagged_and_gets_nothing(pair: SessionPair) -> None:
    assert pair["alice"].trust.contact("carol") is not None  # alice pinned carol's key when carol joined
    room = ops(pair, "bob")
    bob_key = pair.identity("bob").public
    request(pair, "alice", lambda book, now: book.change(room, EntryKind.PROMOTE, "bob", bob_key, now))
    # bob, an admin now, adds "carol" under a key that is not the one alice pinned for carol.
    impostor = IdentityKey.generate()
    produced = request(pair, "bob", lambda book, now: book.change(room, EntryKind.ADD, "carol", impostor.public, now))
    (flag,) = alerts(produced["alice"], RoomWarning.KEY_MISMATCH)
    assert flag.sender == "carol" and "another identity key than the one pinned" in flag.detail
    # Even presented by the relay under that key, "carol" is skipped like a changed key, and signed as skipped.
    addressing = pair["alice"].rooms.addressing(room, {impostor.public: "carol", bob_key: "bob"})
    assert [name for name, _ in addressing.recipients] == ["bob"]
    assert [name for name, _ in addressing.skipped] == ["carol"]


# --- room messages are kept in the local history, by room id ---------------------------------


def test_room_messages_are_kept_under_the_room_id_both_ways(tmp_path: Path) -> None:
    pair = SessionPair()
    histories = {}
    for name in ("alice", "bob"):
        identity = IdentityKey.generate()
        histories[name] = SqliteHistory(tmp_path / f"{name}.sqlite3", HistoryKey.derive(identity))
        pair.add(name, identity=identity, history=histories[name])
        pair.pump()
    room = ops(pair, "bob")
    pair["alice"].send_message("kept", pair.now, room=room)
    pair.pump()
    conversation = history_conversation(False, "alice", (), "alice", room)
    assert conversation == f"room:{room.hex()}"
    for name in ("alice", "bob"):
        page = histories[name].page(conversation, limit=10)
        assert [(e.record.sender, e.record.body) for e in page.entries] == [("alice", "kept")]
        assert not histories[name].page("room:main", limit=10).entries


# --- /rooms: the relay's index read against the verified logs -------------------------------


def directory(events: Sequence[ev.Event]) -> RoomDirectory:
    (found,) = [e for e in events if isinstance(e, RoomDirectory)]
    return found


def test_the_room_list_uses_the_verified_logs_and_marks_what_is_only_the_relays_word(pair: SessionPair) -> None:
    room = ops(pair, "bob")
    request(pair, "alice", lambda book, now: book.create("lounge", RoomPolicy.OPEN, now))
    listed = directory(request(pair, "bob", lambda book, now: book.list_rooms())["bob"])
    by_label = {r.label: r for r in listed.rooms}
    assert set(by_label) == {"ops", "lounge"}
    assert by_label["ops"].verified and by_label["ops"].member and by_label["ops"].members == 2
    assert by_label["ops"].online == 2  # alice and bob, from the verified roster
    assert not by_label["lounge"].verified and not by_label["lounge"].member and by_label["lounge"].open

    # A lying index: ops left out, lounge inflated and renamed to a label bob has pinned to ops.
    def lie(frame: Frame) -> Sequence[Item]:
        if isinstance(frame, RoomIndex):
            kept = [dataclasses.replace(r, label="ops", members=99) for r in frame.rooms if r.room != room]
            return [dataclasses.replace(frame, rooms=tuple(kept))]
        return [frame]

    pair.intercept("bob", lie)
    produced = request(pair, "bob", lambda book, now: book.list_rooms())["bob"]
    listed = directory(produced)
    ops_row = next(r for r in listed.rooms if r.room_id == room)
    assert ops_row.verified and not ops_row.listed and ops_row.members == 2  # the log's count, still shown
    assert alerts(produced, RoomWarning.LABEL_MOVED)  # "ops" is pinned here to alice's ops
    other = next(r for r in listed.rooms if r.room_id != room)
    assert not other.verified and other.members == 99  # the relay's word, and marked as such


# --- the demo's open room: no invite step ----------------------------------------------------


def test_two_demo_clients_starting_at_once_land_in_one_open_lobby() -> None:
    pair = SessionPair()
    pair.add("alice", lobby=Lobby())
    pair.add("bob", lobby=Lobby())
    produced = pair.pump()  # both look for the lobby, find none, create it; one loses the race and joins
    alice_room, bob_room = (pair[who].rooms.state(DEMO_ROOM) for who in ("alice", "bob"))
    assert alice_room is not None and bob_room is not None and alice_room.room_id == bob_room.room_id
    assert {m.name for m in pair["alice"].rooms.state(DEMO_ROOM).members.values()} == {"alice", "bob"}  # type: ignore[union-attr]
    assert alice_room.policy is RoomPolicy.OPEN
    assert not [e for who in produced for e in produced[who] if isinstance(e, RoomAlert)]  # no refusal shown
    pair["bob"].send_message("hola", pair.now, room=alice_room.room_id)
    got = [e for e in pair.pump()["alice"] if isinstance(e, RoomMessage)]
    assert [(e.sender, e.text, e.room) for e in got] == [("bob", "hola", DEMO_ROOM)]
    # A reconnect does not join again.
    renewed = pair["bob"].renewed()
    assert renewed.lobby is pair["bob"].lobby and renewed.lobby is not None
    assert renewed.lobby.start(renewed.rooms, int(pair.now)) == []


def test_what_waits_for_a_room_log_when_the_connection_ends_is_reported_not_dropped(pair: SessionPair) -> None:
    room = carol_removed_behind_bobs_back(pair)
    pair.intercept("bob", lambda frame: [] if isinstance(frame, (RoomLog, RoomUpdate)) else [frame])
    pair["alice"].send_message("carol is out", pair.now, room=room)  # held by bob: signed past his log
    pair.pump()
    msg_id = pair["bob"].send_message("typed meanwhile", pair.now, room=room)  # waits for that log
    ended = pair.hang_up("bob")
    (report,) = [e for e in ended if isinstance(e, ev.Delivery) and e.msg_id == msg_id]
    assert report.delivered == () and all("connection ended" in why for _, why in report.not_delivered)
    lost = [e for e in ended if isinstance(e, RoomAlert) and "were not shown" in e.detail]
    assert len(lost) == 1 and "alice" in lost[0].detail


def test_a_removed_member_quoting_the_head_before_its_removal_is_not_shown(pair: SessionPair) -> None:
    room = ops(pair, "bob", "carol")
    before = pair["carol"].rooms.state(room)
    assert before is not None
    carol_key = pair.identity("carol").public
    request(pair, "alice", lambda book, now: book.change(room, EntryKind.REMOVE, "carol", carol_key, now))
    # carol seals to bob by hand, signed at the head from before her removal (her client would refuse).
    carol = pair["carol"]
    bob_peer = carol.peers["bob"]
    data, _, _ = seal_send(
        carol.identity, carol._keys.boxes, "carol", [bob_peer], "still here", msg_id="c0ffee", now=pair.now,
        direct=False, max_frame=carol.max_frame, counters=SendCounters(), room="ops",
        head=SignedHead(room, before.head.seq, before.head.hash),
    )  # fmt: skip
    carol._outgoing += data
    produced = pair.pump()["bob"]
    assert not [e for e in produced if isinstance(e, ev.Message)]
    (flag,) = alerts(produced, RoomWarning.NOT_A_MEMBER)
    assert flag.sender == "carol" and "not shown" in flag.detail


def test_a_room_log_that_never_comes_does_not_keep_messages_waiting_for_ever(pair: SessionPair) -> None:
    room = carol_removed_behind_bobs_back(pair)
    pair.intercept("bob", lambda frame: [] if isinstance(frame, (RoomLog, RoomUpdate)) else [frame])  # never answered
    pair["alice"].send_message("carol is out", pair.now, room=room)
    assert not [e for e in pair.pump()["bob"] if isinstance(e, ev.Message)]  # held for the log
    msg_id = pair["bob"].send_message("typed meanwhile", pair.now, room=room)
    pair.pump()
    assert not [e for e in pair["bob"].tick(pair.now + 1) if isinstance(e, (ev.Message, ev.Delivery))]
    later = pair["bob"].tick(pair.now + ROOM_LOG_WAIT)
    assert len(alerts(later, RoomWarning.WITHHELD)) == 1
    assert [e.text for e in later if isinstance(e, RoomMessage)] == ["carol is out"]  # alice is a member here
    (report,) = [e for e in later if isinstance(e, ev.Delivery) and e.msg_id == msg_id]
    assert report.delivered == () and all("removal withheld" in why for _, why in report.not_delivered)
    produced = pair.pump()
    assert not any(isinstance(e, ev.Message) for e in produced["carol"])


# --- what a client keeps of its rooms between runs -------------------------------------------


def restarted(pair: SessionPair, label: str, old: str) -> ClientSession:
    """``old`` leaves; ``label`` comes back with its identity, name and what its rooms were."""
    remembered = pair[old].rooms.remember()
    identity = pair.identity(old)
    pair.hang_up(old)
    pair.pump()
    session = pair.add(label, name=old, identity=identity, remembered_rooms=remembered)
    pair.pump()
    return session


def test_a_relay_serving_less_of_a_room_than_an_earlier_run_verified_is_caught(pair: SessionPair) -> None:
    room = ops(pair, "bob", "carol")  # bob verified entries 0..2
    bob = restarted(pair, "bob again", "bob")

    def old_log(frame: Frame) -> Sequence[Item]:  # after the restart the relay serves entries 0..1 only
        if isinstance(frame, RoomLog) and frame.room == room:
            keep = max(0, 2 - frame.from_seq)
            entries = frame.entries[:keep]
            head = entry_hash(entries[-1]) if frame.from_seq + len(entries) == 2 else bytes(32)
            return [dataclasses.replace(frame, entries=entries, head_seq=1, head_hash=head)]
        return [frame]

    pair.intercept("bob again", old_log)
    produced = request(pair, "bob again", lambda book, now: book.fetch(room, 0))["bob again"]
    assert alerts(produced, RoomWarning.WITHHELD) and not alerts(produced, RoomWarning.FORK)
    with pytest.raises(SendError, match="removal withheld"):
        bob.send_message("to ops", pair.now, room=room)


def another_room(label: str, now: float, request_id: str = "f9") -> RoomLog:
    """The whole log of a room someone else (the relay, say) made under ``label``, as the answer to
    ``request_id`` (a find of ours: ``asked``; else it is a room nobody asked for, never followed)."""
    created = RoomBook("mallory", IdentityKey.generate()).create(label, RoomPolicy.OPEN, int(now))
    room_id = entry_hash(created.entry)
    return RoomLog(
        id=request_id, room=room_id, label=label, from_seq=0, entries=(created.entry,), head_seq=0,
        head_hash=room_id, online=(),
    )  # fmt: skip


def asked(session: ClientSession, label: str = "ops") -> str:
    """The id of a find of ``label`` ``session`` made (for a fake answer to it; the request itself is not sent)."""
    return session.rooms.find(label).id


def test_a_label_keeps_its_room_across_a_restart(pair: SessionPair) -> None:
    room = ops(pair, "bob")
    bob = restarted(pair, "bob again", "bob")
    assert bob.rooms.pinned_id("ops") == room
    fake = another_room("ops", pair.now, asked(bob))  # the relay answers bob's "ops" with another room of that label
    (moved,) = alerts(pair.inject("bob again", fake), RoomWarning.LABEL_MOVED)
    assert moved.room_id == fake.room and bob.rooms.pinned_id("ops") == room


def test_a_forgotten_label_pin_takes_the_room_the_relay_names_next(pair: SessionPair) -> None:
    # The relay lost its rooms: "ops" is pinned to a room that no longer exists there. Forgetting the
    # pin is the user's way out; until then another room under the label is only a warning.
    room = ops(pair, "bob")
    bob = restarted(pair, "bob again", "bob")
    assert bob.rooms.forget_label("ops") == room
    assert bob.rooms.pinned_id("ops") is None and room not in [r.room_id for r in bob.rooms.remember()]
    assert bob.rooms.forget_label("ops") is None
    log = another_room("ops", pair.now, asked(bob))
    assert not alerts(pair.inject("bob again", log), RoomWarning.LABEL_MOVED)
    assert bob.rooms.pinned_id("ops") == log.room


def test_a_client_follows_a_bounded_number_of_rooms(pair: SessionPair, monkeypatch: pytest.MonkeyPatch) -> None:
    # A relay may answer our finds with any number of rooms: past the bound one is refused, not kept
    # (rooms nobody asked for are invitations, bounded on their own: test_room_invites).
    monkeypatch.setattr(rooms_module, "MAX_KNOWN_ROOMS", 2)
    answers = [another_room(f"spam{n}", pair.now, asked(pair["bob"], f"spam{n}")) for n in range(3)]
    produced = pair.inject("bob", *answers)
    (refused,) = alerts(produced, RoomWarning.REFUSED)
    assert refused.room == "spam2" and len(pair["bob"].rooms.rooms()) == 2


def test_another_history_than_an_earlier_run_verified_is_a_fork(pair: SessionPair) -> None:
    room = ops(pair, "bob", "carol")
    remembered = [dataclasses.replace(r, hash=bytes(32)) for r in pair["bob"].rooms.remember()]  # "another" entry 2
    identity = pair.identity("bob")
    pair.hang_up("bob")
    pair.add("bob again", name="bob", identity=identity, remembered_rooms=remembered)
    pair.pump()
    produced = request(pair, "bob again", lambda book, now: book.fetch(room, 0))["bob again"]
    (fork,) = alerts(produced, RoomWarning.FORK)
    assert "earlier run" in fork.detail
