"""Gap judgements held while the mailbox drains (``client/gap_hold.py``), with the real replay guard
deciding each copy, and the same through real sessions and a real relay core
(``tests.helpers.session_pair``): an honest race between live and waiting copies warns nothing, a
copy never delivered is still a ``gap``, a reorder on one path is still ``late``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from susurro.client import events as ev
from susurro.client.gap_hold import GAP_HOLD_SECONDS, MAX_HELD_GAPS, GapHold
from susurro.client.room_events import RoomMessage
from susurro.crypto import ReplayGuard, SessionPublicKey
from susurro.crypto.replay import MAX_SKIPPED_PER_STREAM
from susurro.protocol import Deliver, Frame, Mail, MailEnd, RoomLog
from tests.adversarial.test_hostile_mailbox import come_back, waiting_room
from tests.helpers.offline import bob_away
from tests.helpers.session_pair import Item
from tests.unit.test_offline_rooms import invite_only_room

STREAM = (b"\x01" * 32, "dm")
NOW = 1_000.0
#: The sender session live copies come by.
_SESSION = SessionPublicKey(b"\x02" * 32)


class Receiver:
    """One recipient's replay guard and gap hold; ``copy`` is one accepted copy's warnings."""

    def __init__(self, *, draining: bool = True) -> None:
        self.guard = ReplayGuard()
        self.gaps = GapHold()
        if draining:
            self.gaps.open(NOW)

    def copy(self, n: int, *, waited: bool, stream: tuple[bytes, str] = STREAM) -> list[str]:
        # A live copy comes by one sender session; a waiting one by none (the mailbox).
        session = None if waited else _SESSION
        check = self.guard.check(session, "alice", f"{stream[1]}-{n}", n, stream)
        return [str(w.kind) for w in self.gaps.judge(check, "alice", stream, n, waited=waited)]

    def judged(self) -> list[str]:
        return [w.detail for w in self.gaps.take()]


def test_a_live_copy_before_the_waiting_one_it_follows_is_no_warning() -> None:
    bob = Receiver()
    assert bob.copy(2, waited=False) == []  # held: 1 may still come from the mailbox
    assert bob.copy(1, waited=True) == []  # the race, not a reorder
    bob.gaps.end()
    assert bob.judged() == []


def test_a_waiting_copy_before_a_live_resend_it_follows_is_no_warning() -> None:
    bob = Receiver()
    assert bob.copy(1, waited=True) == []
    assert bob.copy(3, waited=True) == []  # 2 was sent live to a session the relay cut; resent now
    assert bob.copy(2, waited=False) == []
    bob.gaps.end()
    assert bob.judged() == []


def test_a_copy_never_delivered_is_a_gap_at_mail_end() -> None:
    bob = Receiver()
    assert bob.copy(3, waited=False) == []
    assert bob.copy(1, waited=True) == []
    assert bob.judged() == []
    bob.gaps.end()
    assert bob.judged() == ["1 message(s) from alice addressed to you never arrived"]
    assert bob.copy(5, waited=False) == ["gap"]  # the drain is over: judged at once


def test_two_copies_reordered_on_one_path_are_late() -> None:
    bob = Receiver()
    assert bob.copy(2, waited=True) == []
    assert bob.copy(1, waited=True) == ["late"]  # mail is sent in order: the relay reordered it
    bob.gaps.end()
    assert bob.judged() == []  # nothing is missing


def test_a_live_copy_filling_a_gap_a_live_one_left_is_late() -> None:
    bob = Receiver()
    bob.guard.check(_SESSION, "alice", "first", 1, STREAM)
    assert bob.copy(3, waited=False) == []
    # A resend to our next session (another key of ours) may fill a live gap: still not the race.
    other = SessionPublicKey(b"\x03" * 32)
    check = bob.guard.check(other, "alice", "resent", 2, STREAM)
    assert [str(w.kind) for w in bob.gaps.judge(check, "alice", STREAM, 2, waited=False)] == ["late"]


def test_without_a_drain_gaps_and_late_copies_are_warned_at_once() -> None:
    bob = Receiver(draining=False)
    assert bob.copy(2, waited=False) == ["gap"]
    assert bob.copy(1, waited=True) == ["late"]


def test_a_relay_that_never_says_mail_end_holds_gaps_only_until_the_deadline() -> None:
    bob = Receiver()
    assert bob.copy(3, waited=False) == []
    bob.gaps.tick(NOW + GAP_HOLD_SECONDS - 1)
    assert bob.judged() == []
    bob.gaps.tick(NOW + GAP_HOLD_SECONDS)
    assert bob.judged() == ["2 message(s) from alice addressed to you never arrived"]
    assert not bob.gaps.holding
    assert bob.copy(5, waited=False) == ["gap"]
    assert bob.copy(1, waited=True) == ["late"]  # it was warned: its fill is late


def test_a_clock_stepped_back_while_holding_ends_the_hold_instead_of_stretching_it() -> None:
    bob = Receiver()
    assert bob.copy(3, waited=False) == []
    bob.gaps.tick(NOW - 3_600)  # the wall clock went back an hour: the deadline would be an hour later
    assert bob.judged() == ["2 message(s) from alice addressed to you never arrived"]
    assert not bob.gaps.holding


def test_mail_end_waits_for_waiting_room_messages_still_held_for_their_log() -> None:
    bob = Receiver()
    held = [True]  # a waiting room message, confirmed already, waits for its room's log
    bob.gaps.mail_held = lambda: held[0]
    assert bob.copy(2, waited=False) == []
    bob.gaps.end()
    assert bob.judged() == [] and bob.gaps.holding
    held[0] = False  # the log came: the waiting copy is judged, and fills the number
    assert bob.copy(1, waited=True) == []
    bob.gaps.settle()
    assert bob.judged() == [] and not bob.gaps.holding


def test_waiting_room_messages_held_for_their_log_hold_gaps_no_longer_than_the_deadline() -> None:
    bob = Receiver()
    bob.gaps.mail_held = lambda: True  # their log never comes
    assert bob.copy(2, waited=False) == []
    bob.gaps.end()
    bob.gaps.tick(NOW + GAP_HOLD_SECONDS)
    assert bob.judged() == ["1 message(s) from alice addressed to you never arrived"]


def test_the_connection_ending_mid_drain_warns_what_is_held() -> None:
    bob = Receiver()
    assert bob.copy(2, waited=False) == []
    bob.gaps.abandon()
    assert bob.judged() == ["1 message(s) from alice addressed to you never arrived"]


def test_past_the_bound_on_held_streams_the_oldest_is_judged_at_once() -> None:
    bob = Receiver()
    streams = [(STREAM[0], f"room:{i}") for i in range(MAX_HELD_GAPS + 1)]
    for stream in streams:
        assert bob.copy(2, waited=False, stream=stream) == []
    assert bob.judged() == ["1 message(s) from alice addressed to you never arrived"]  # the first stream's
    assert bob.copy(1, waited=True, stream=streams[0]) == ["late"]  # warned already: its fill is late
    assert bob.copy(1, waited=True, stream=streams[1]) == []  # still held
    bob.gaps.end()
    assert len(bob.judged()) == MAX_HELD_GAPS - 1


def test_a_gap_wider_than_a_stream_keeps_counts_every_number_it_skipped() -> None:
    bob = Receiver()
    skipped = 3 * MAX_SKIPPED_PER_STREAM
    assert bob.copy(skipped + 1, waited=False) == []
    assert bob.copy(skipped, waited=True) == []  # among the newest: it can still come, and fill its place
    bob.gaps.end()
    assert bob.judged() == [f"{skipped - 1} message(s) from alice addressed to you never arrived"]


@st.composite
def honest_arrivals(draw: st.DrawFn) -> tuple[list[tuple[int, bool]], int | None]:
    """A sender's copies 1..N, the first k waiting in the mailbox and the rest live, each path in
    order, interleaved as the network likes; and optionally one copy the relay drops."""
    total = draw(st.integers(min_value=1, max_value=30))
    waiting = draw(st.integers(min_value=0, max_value=total))
    mail = [(n, True) for n in range(1, waiting + 1)]
    live = [(n, False) for n in range(waiting + 1, total + 1)]
    order: list[tuple[int, bool]] = []
    while mail or live:
        source = mail if mail and (not live or draw(st.booleans())) else live
        order.append(source.pop(0))
    dropped = draw(st.none() | st.integers(min_value=1, max_value=total))
    return order, dropped


@given(honest_arrivals())
def test_an_honest_interleaving_warns_nothing_and_one_dropped_copy_is_one_gap(
    case: tuple[list[tuple[int, bool]], int | None],
) -> None:
    order, dropped = case
    bob = Receiver()
    shown: list[str] = []
    for n, waited in order:
        if n != dropped:
            shown += bob.copy(n, waited=waited)
    bob.gaps.end()
    judged = bob.judged()
    assert shown == []
    total = len(order)
    if dropped is None or dropped == total:  # the last copy dropped shows nowhere (no later counter)
        assert judged == []
    else:
        assert judged == ["1 message(s) from alice addressed to you never arrived"]


# --- through real sessions and a real relay core ------------------------------------------------------


def test_in_sessions_a_live_copy_that_overtakes_the_waiting_one_is_no_warning(tmp_path: Path) -> None:
    room, _, bob, clock = waiting_room(tmp_path, ["one"])
    held: list[Frame] = []
    live: list[Deliver] = []

    def mail_after_the_live_copy(frame: Frame) -> Sequence[Item]:
        """The relay's mail reaches bob only after alice's live copy (his prekeys went out late)."""
        if isinstance(frame, (Mail, MailEnd)) and not live:
            held.append(frame)
            return []
        if isinstance(frame, Deliver):
            live.append(frame)
            return [frame, *held]
        return [frame]

    come_back(room, bob, clock, mail_after_the_live_copy)
    room["alice"].send_message("two", room.now, to=["bob"])
    events = room.pump()["bob2"]
    assert [e.text for e in events if isinstance(e, ev.Message)] == ["two", "one"]
    assert [e.kind for e in events if isinstance(e, ev.Warning)] == []


def test_in_sessions_a_live_copy_lost_during_the_drain_is_a_gap_at_mail_end(tmp_path: Path) -> None:
    room, _, bob, clock = waiting_room(tmp_path, ["one"])
    held: list[Frame] = []
    delivers: list[Deliver] = []

    def lose_two_and_mail_after_three(frame: Frame) -> Sequence[Item]:
        if isinstance(frame, Deliver):
            delivers.append(frame)
            return [] if len(delivers) == 1 else [frame, *held]  # "two" lost; "three" before the mail
        if isinstance(frame, (Mail, MailEnd)) and len(delivers) < 2:
            held.append(frame)
            return []
        return [frame]

    come_back(room, bob, clock, lose_two_and_mail_after_three)
    room["alice"].send_message("two", room.now, to=["bob"])
    room["alice"].send_message("three", room.now, to=["bob"])
    events = room.pump()["bob2"]
    assert [e.text for e in events if isinstance(e, ev.Message)] == ["three", "one"]
    warnings = [e for e in events if isinstance(e, ev.Warning)]
    assert [(w.kind, w.detail) for w in warnings] == [
        (ev.WarningKind.GAP, "1 message(s) from alice addressed to you never arrived")
    ]
    assert events[-1] is warnings[0]  # judged at mail_end, after the read's messages


def test_in_sessions_a_waiting_room_message_judged_after_mail_end_still_fills_the_race(tmp_path: Path) -> None:
    """The waiting room message waits for its room's log (bob comes back knowing no rooms, and accepts
    the invitation), so it is confirmed, and ``mail_end`` comes, before it is judged; the live one that
    overtook it waits too."""
    room, _, bob, clock = bob_away(tmp_path)
    room_id = invite_only_room(room, "alice", ("bob", bob.identity.public))
    room["alice"].send_message("one", room.now, room=room_id)
    room.pump()
    held: list[Frame] = []
    logs: list[Frame] = []
    passed: set[type[Frame]] = set()

    def log_after_mail_end(frame: Frame) -> Sequence[Item]:
        """Mail after alice's live copy (bob's prekeys went out late), the room's log after mail_end."""
        if isinstance(frame, (Mail, MailEnd)) and Deliver not in passed:
            held.append(frame)
            return []
        if isinstance(frame, RoomLog) and MailEnd not in passed:
            logs.append(frame)
            return []
        passed.add(type(frame))
        if isinstance(frame, Deliver):
            return [frame, *held]
        return [frame, *logs] if isinstance(frame, MailEnd) else [frame]

    room.add("bob2", name="bob", **bob.session_options(clock))
    room.intercept("bob2", log_after_mail_end)
    room.pump()
    room["alice"].send_message("two", room.now, room=room_id)
    events = room.pump()["bob2"]
    events += room.accept("bob2", room_id)["bob2"]  # alice added him while he was away: an invitation
    assert [e.text for e in events if isinstance(e, RoomMessage)] == ["two", "one"]
    assert [e.kind for e in events if isinstance(e, ev.Warning)] == []
