"""crypto/replay.py streams: counters per (sender identity, conversation) across sessions and mailboxes."""

from __future__ import annotations

import pytest

from susurro.crypto.errors import Replay
from susurro.crypto.replay import CounterCheck, ReplayGuard

ALICE = b"A" * 32
DM = (ALICE, "dm")


def test_a_drop_just_before_a_rotation_is_a_gap() -> None:
    guard = ReplayGuard()
    assert guard.check(b"key1", "alice", "m1", 1, DM) == CounterCheck(missed=0)
    # m2 (counter 2, last under key1) was dropped; m3 is the first under key2.
    assert guard.check(b"key2", "alice", "m3", 3, DM).missed == 1


def test_without_streams_a_new_session_starts_afresh() -> None:
    guard = ReplayGuard()
    guard.check(b"key1", "alice", "m1", 1)
    assert guard.check(b"key2", "alice", "m3", 3).missed == 2  # per session: counted from 0


def test_a_sender_that_lost_its_counters_is_a_reset_not_a_replay() -> None:
    guard = ReplayGuard()
    for n in (1, 2, 3):
        guard.check(b"key1", "alice", f"m{n}", n, DM)
    check = guard.check(b"key2", "alice", "m4", 1, DM)
    assert check.reset and not check.missed
    assert guard.check(b"key2", "alice", "m5", 2, DM) == CounterCheck(missed=0)


def test_a_waiting_copy_above_the_stream_is_shown_and_one_at_or_below_is_a_replay() -> None:
    guard = ReplayGuard()
    guard.check(None, "alice", "m1", 1, DM)
    assert guard.check(None, "alice", "m2", 2, DM) == CounterCheck(missed=0)
    with pytest.raises(Replay):
        guard.check(None, "alice", "m2-again", 2, DM)  # the relay replays an item under a new id


def test_a_copy_that_fills_a_gap_late_is_shown_once() -> None:
    guard = ReplayGuard()
    guard.check(b"key1", "alice", "m1", 1, DM)
    assert guard.check(b"key1", "alice", "m3", 3, DM).missed == 1  # m2 went to the mailbox
    assert guard.check(None, "alice", "m2", 2, DM).late
    with pytest.raises(Replay):
        guard.check(None, "alice", "m2b", 2, DM)


def test_streams_are_per_conversation_and_survive_in_a_shared_table() -> None:
    guard = ReplayGuard()
    guard.check(b"key1", "alice", "m1", 5, DM)
    guard.check(b"key1", "alice", "r1", 1, (ALICE, "room:main"))
    again = ReplayGuard(streams=guard.streams)  # what a state file gives a restarted client
    assert again.check(b"key2", "alice", "m9", 7, DM).missed == 1
