"""crypto/replay.py streams: counters per (sender identity, conversation) across sessions and mailboxes."""

from __future__ import annotations

from collections import OrderedDict
from unittest.mock import patch

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from susurro.crypto import replay
from susurro.crypto.errors import Replay
from susurro.crypto.replay import (
    MAX_LATE_DISTANCE,
    MAX_SKIPPED_PER_STREAM,
    MAX_SKIPPED_TOTAL,
    MAX_STREAMS,
    CounterCheck,
    ReplayGuard,
    StreamState,
)
from susurro.crypto.seal import MAX_COUNTER

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


# --- bounds: the sender chooses the counters, so what a stream remembers is bounded -----------


def test_a_jump_to_the_highest_counter_keeps_only_the_newest_skipped_numbers() -> None:
    guard = ReplayGuard()
    assert guard.check(b"key1", "alice", "m1", MAX_COUNTER, DM).missed == MAX_COUNTER - 1
    missing = guard.streams[DM].missing
    assert missing == set(range(MAX_COUNTER - MAX_SKIPPED_PER_STREAM, MAX_COUNTER))
    assert guard.check(None, "alice", "late", MAX_COUNTER - 1, DM).late  # the newest still fill the gap
    with pytest.raises(Replay, match="too late"):
        guard.check(None, "alice", "older", 2, DM)  # let go: a replay as far as anyone can tell


def test_every_other_counter_keeps_a_bounded_window_of_skipped_numbers() -> None:
    guard = ReplayGuard()
    for n in range(2, 4 * MAX_LATE_DISTANCE, 2):
        guard.check(b"key1", "alice", f"m{n}", n, DM)
        state = guard.streams[DM]
        assert len(state.missing) <= MAX_SKIPPED_PER_STREAM
        assert min(state.missing) >= state.last - MAX_LATE_DISTANCE
    with pytest.raises(Replay):
        guard.check(None, "alice", "first", 1, DM)  # skipped long ago and let go


def test_streams_and_their_skipped_numbers_are_bounded_across_senders() -> None:
    guard = ReplayGuard()
    guard.check(b"key1", "alice", "a1", 1, DM)
    guard.check(b"key1", "alice", "a3", 3, DM)  # alice's stream skipped one
    senders = MAX_SKIPPED_TOTAL // MAX_SKIPPED_PER_STREAM + 10
    for i in range(senders):  # each a new stream that skips the most it can keep
        guard.check(i.to_bytes(32, "big"), f"s{i}", "m", MAX_SKIPPED_PER_STREAM + 1, (i.to_bytes(32, "big"), "dm"))
    assert sum(len(s.missing) for s in guard.streams.values()) <= MAX_SKIPPED_TOTAL
    assert guard.streams[DM].missing == {2}  # who skips few keeps theirs: the biggest gave theirs up
    assert len(guard.streams) == senders + 1
    for i in range(MAX_STREAMS + 5):
        guard.check(b"s" * 32, "many", f"m{i}", 1, (b"S" * 32, f"room:{i:064x}"))  # a room each
    assert len(guard.streams) == MAX_STREAMS


def test_a_state_file_written_under_looser_bounds_is_held_to_these() -> None:
    loaded = OrderedDict(
        ((i.to_bytes(32, "big"), "dm"), StreamState(last=50_000, missing=set(range(1, 1_001)) | {49_999}))
        for i in range(300)
    )
    guard = ReplayGuard(streams=loaded)
    assert all(s.missing == {49_999} for s in guard.streams.values())  # the rest is too far below
    guard.streams = OrderedDict({DM: StreamState(last=2_000, missing=set(range(1_000, 2_000)))})
    assert guard.streams[DM].missing == set(range(2_000 - MAX_SKIPPED_PER_STREAM, 2_000))


@settings(max_examples=150, deadline=None)
@given(
    copies=st.lists(st.tuples(st.integers(0, 3), st.integers(1, MAX_COUNTER), st.booleans()), min_size=1, max_size=40)
)
def test_whatever_the_counters_every_bound_holds(copies: list[tuple[int, int, bool]]) -> None:
    guard = ReplayGuard()
    with patch.object(replay, "MAX_STREAMS", 3), patch.object(replay, "MAX_SKIPPED_TOTAL", 600):
        for i, (stream, counter, live) in enumerate(copies):
            key = bytes([stream]) * 32
            try:
                guard.check(key if live else None, "alice", f"m{i}", counter, (key, "dm"))
            except Replay:
                pass
            assert len(guard.streams) <= 3
            assert sum(len(s.missing) for s in guard.streams.values()) <= 600
            for state in guard.streams.values():
                assert len(state.missing) <= MAX_SKIPPED_PER_STREAM
                assert all(state.last - MAX_LATE_DISTANCE <= n < state.last for n in state.missing)


# --- a resend under a skipped number fills the gap (review S5 finding 5) ----------------------

OURS_A, OURS_B, OURS_C = b"\xaa" * 32, b"\xbb" * 32, b"\xcc" * 32  # keys of ours that opened copies


def test_a_resend_to_our_next_session_under_a_skipped_number_fills_the_gap_late() -> None:
    guard = ReplayGuard()
    guard.check(b"key1", "alice", "m4", 4, DM, via=OURS_A)
    assert guard.check(b"key1", "alice", "m6", 6, DM, via=OURS_A).missed == 1  # m5 was lost
    with pytest.raises(Replay):
        guard.check(b"key1", "alice", "m5", 5, DM, via=OURS_A)  # by the same key: the relay reordering
    assert guard.check(b"key1", "alice", "m5", 5, DM, via=OURS_B).late  # resent to our next session
    with pytest.raises(Replay):
        guard.check(b"key1", "alice", "m5-again", 5, DM, via=OURS_C)  # filled: no second copy
    with pytest.raises(Replay):
        guard.check(b"key1", "alice", "m4-again", 4, DM, via=OURS_C)  # received, not skipped: a replay
    assert guard.check(b"key1", "alice", "m7", 7, DM, via=OURS_B) == CounterCheck(missed=0)
