"""Padmé length padding and the replay / drop guard."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from susurro.crypto import CounterCheck, MalformedMessage, Replay, ReplayGuard, pad, padded_length, unpad
from susurro.crypto.padding import MIN_PADDED

# --- padding -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "bucket"),
    [
        (0, 256),
        (1, 256),
        (255, 256),
        (256, 256),
        (257, 272),  # E=8: 4 low bits free -> multiples of 16
        (272, 272),
        (273, 288),
        (511, 512),
        (512, 512),
        (513, 544),  # E=9: multiples of 32
        (1000, 1024),
        (1025, 1088),  # E=10: multiples of 64
        (65_536, 65_536),
        (65_537, 67_584),  # E=16: bit_length(16)=5, 11 low bits -> multiples of 2048
        (1_000_000, 1_015_808),
    ],
)
def test_padded_length_known_buckets(length: int, bucket: int) -> None:
    assert padded_length(length) == bucket


def test_padded_length_is_monotonic_and_bounded_exhaustively() -> None:
    previous = padded_length(0)
    for length in range(1, 1 << 17):
        bucket = padded_length(length)
        assert bucket >= previous, length
        assert bucket >= length
        if length > MIN_PADDED:
            assert bucket <= length * 1.13, length
        else:
            assert bucket == MIN_PADDED
        previous = bucket


@given(a=st.integers(0, 2**40), b=st.integers(0, 2**40))
def test_padded_length_is_monotonic(a: int, b: int) -> None:
    low, high = sorted((a, b))
    assert padded_length(low) <= padded_length(high)


@given(length=st.integers(0, 2**48))
def test_padded_length_bounds_and_fixed_point(length: int) -> None:
    bucket = padded_length(length)
    assert bucket >= length
    assert bucket >= MIN_PADDED
    if length > MIN_PADDED:
        assert bucket <= length * 1.13
    assert padded_length(bucket) == bucket  # a bucket pads to itself


def test_few_distinct_buckets() -> None:
    # The point of Padmé: far fewer sizes than lengths.
    assert len({padded_length(n) for n in range(257, 65_537)}) < 200


@given(data=st.binary(max_size=5000))
def test_pad_unpad_round_trip(data: bytes) -> None:
    block = pad(data)
    assert len(block) == padded_length(len(data) + 4)
    assert int.from_bytes(block[:4], "big") == len(data)
    assert block[4 : 4 + len(data)] == data
    assert not any(block[4 + len(data) :])
    assert unpad(block) == data


def test_pad_empty() -> None:
    block = pad(b"")
    assert block == bytes(MIN_PADDED)
    assert unpad(block) == b""


@given(data=st.binary(max_size=600), where=st.integers(0, 10_000), value=st.integers(1, 255))
def test_unpad_rejects_any_nonzero_padding_byte(data: bytes, where: int, value: int) -> None:
    block = bytearray(pad(data))
    padding_start = 4 + len(data)
    position = padding_start + where % (len(block) - padding_start)
    block[position] = value
    with pytest.raises(MalformedMessage, match="padding"):
        unpad(bytes(block))


@pytest.mark.parametrize("claimed", [253, 257, 2**32 - 1])
def test_unpad_rejects_length_past_the_end(claimed: int) -> None:
    block = (claimed).to_bytes(4, "big") + bytes(252)  # 256 bytes: room for 252 of data
    with pytest.raises(MalformedMessage, match="past"):
        unpad(block)
    assert unpad((252).to_bytes(4, "big") + bytes(252)) == bytes(252)


@pytest.mark.parametrize("block", [b"", b"\x00", b"\x00\x00", b"\x00\x00\x00"])
def test_unpad_rejects_a_block_shorter_than_its_header(block: bytes) -> None:
    with pytest.raises(MalformedMessage, match="short"):
        unpad(block)


def test_unpad_accepts_unpadded_but_well_formed_blocks() -> None:
    # unpad checks structure, not bucket size: the exact framing is what matters.
    assert unpad(b"\x00\x00\x00\x02hi") == b"hi"
    assert unpad(b"\x00\x00\x00\x00") == b""


# --- replay guard --------------------------------------------------------------

S1 = b"\x01" * 32
S2 = b"\x02" * 32


def test_consecutive_counters_have_no_gap() -> None:
    guard = ReplayGuard()
    assert guard.check(S1, "alice", "m1", 1) == CounterCheck(missed=0)
    assert guard.check(S1, "alice", "m2", 2) == CounterCheck(missed=0)
    assert guard.check(S1, "alice", "m3", 3) == CounterCheck(missed=0)


def test_a_skipped_counter_is_reported() -> None:
    guard = ReplayGuard()
    assert guard.check(S1, "alice", "m1", 1).missed == 0
    assert guard.check(S1, "alice", "m3", 3).missed == 1
    assert guard.check(S1, "alice", "m10", 10).missed == 6


def test_first_message_seen_late_reports_the_earlier_ones() -> None:
    guard = ReplayGuard()
    assert guard.check(S1, "alice", "m5", 5).missed == 4


def test_repeated_counter_is_replay() -> None:
    guard = ReplayGuard()
    guard.check(S1, "alice", "m1", 1)
    guard.check(S1, "alice", "m2", 2)
    with pytest.raises(Replay):
        guard.check(S1, "alice", "m2-again", 2)


def test_lower_counter_is_replay() -> None:
    guard = ReplayGuard()
    guard.check(S1, "alice", "m1", 1)
    guard.check(S1, "alice", "m3", 3)
    with pytest.raises(Replay):
        guard.check(S1, "alice", "m2", 2)  # arrived late: reordering is refused too


def test_repeated_msg_id_with_higher_counter_is_replay() -> None:
    guard = ReplayGuard()
    guard.check(S1, "alice", "m1", 1)
    with pytest.raises(Replay):
        guard.check(S1, "alice", "m1", 2)


def test_msg_id_is_remembered_across_sender_sessions() -> None:
    guard = ReplayGuard()
    guard.check(S1, "alice", "m1", 1)
    with pytest.raises(Replay):
        guard.check(S2, "alice", "m1", 1)


def test_same_msg_id_from_different_senders_is_not_replay() -> None:
    guard = ReplayGuard()
    guard.check(S1, "alice", "m1", 1)
    assert guard.check(S2, "bob", "m1", 1).missed == 0


def test_refused_message_does_not_advance_the_counter() -> None:
    guard = ReplayGuard()
    guard.check(S1, "alice", "m1", 1)
    with pytest.raises(Replay):
        guard.check(S1, "alice", "m1", 5)  # replayed id with a forged-looking counter
    assert guard.check(S1, "alice", "m2", 2).missed == 0


def test_sender_sessions_have_independent_counters() -> None:
    guard = ReplayGuard()
    guard.check(S1, "alice", "a1", 1)
    guard.check(S1, "alice", "a2", 2)
    guard.check(S1, "alice", "a3", 3)
    assert guard.check(S2, "alice", "b1", 1).missed == 0  # a new session starts again at 1
    assert guard.check(S1, "alice", "a4", 4).missed == 0
    assert guard.check(S2, "alice", "b2", 2).missed == 0
    with pytest.raises(Replay):
        guard.check(S2, "alice", "b-old", 1)


def test_forget_session_resets_the_counter() -> None:
    guard = ReplayGuard()
    guard.check(S1, "alice", "m1", 1)
    guard.check(S1, "alice", "m2", 2)
    with pytest.raises(Replay):
        guard.check(S1, "alice", "m-new", 1)
    guard.forget_session(S1)
    assert guard.check(S1, "alice", "m-new", 1).missed == 0
    with pytest.raises(Replay):
        guard.check(S1, "alice", "m1", 3)  # ids stay remembered after forgetting the session
    guard.forget_session(b"never seen")  # forgetting an unknown session is harmless
    assert guard.check(S1, "alice", "m-next", 2).missed == 0


def test_remembered_ids_are_bounded() -> None:
    guard = ReplayGuard(remembered_ids=2)
    guard.check(S1, "alice", "m1", 1)
    guard.check(S1, "alice", "m2", 2)
    guard.check(S1, "alice", "m3", 3)
    # m1 fell out of the window; only the counter now stands in the way.
    assert guard.check(S2, "alice", "m1", 1).missed == 0
    with pytest.raises(Replay):
        guard.check(S2, "alice", "m3", 2)


@given(counters=st.lists(st.integers(1, 50), min_size=1, max_size=30))
def test_guard_accepts_exactly_the_strictly_increasing_counters(counters: list[int]) -> None:
    guard = ReplayGuard()
    last = 0
    for i, counter in enumerate(counters):
        if counter > last:
            assert guard.check(S1, "alice", f"m{i}", counter).missed == counter - last - 1
            last = counter
        else:
            with pytest.raises(Replay):
                guard.check(S1, "alice", f"m{i}", counter)


# --- resends: the same signed content under the same id, by another key -----------------

OURS_A = b"\xaa" * 32  # the key of ours that opened a copy
OURS_B = b"\xbb" * 32


def test_a_resend_of_the_same_content_by_another_key_is_a_duplicate_not_a_replay() -> None:
    guard = ReplayGuard()
    assert not guard.check(S1, "alice", "m1", 1, digest=b"content", via=OURS_A).duplicate
    again = guard.check(S1, "alice", "m1", 1, digest=b"content", via=OURS_B)  # resent to our next session
    assert again == CounterCheck(missed=0, duplicate=True)
    assert guard.check(S1, "alice", "m2", 2, digest=b"other", via=OURS_B) == CounterCheck(missed=0)


def test_the_same_copy_by_the_same_key_again_is_a_replay() -> None:
    guard = ReplayGuard()
    guard.check(S1, "alice", "m1", 1, digest=b"content", via=OURS_A)
    with pytest.raises(Replay):
        guard.check(S1, "alice", "m1", 1, digest=b"content", via=OURS_A)
    assert guard.check(S1, "alice", "m1", 1, digest=b"content", via=OURS_B).duplicate
    with pytest.raises(Replay):  # the resend, replayed
        guard.check(S1, "alice", "m1", 1, digest=b"content", via=OURS_B)


def test_other_content_under_a_seen_id_is_a_replay_whatever_the_key() -> None:
    guard = ReplayGuard()
    guard.check(S1, "alice", "m1", 1, digest=b"content", via=OURS_A)
    with pytest.raises(Replay):
        guard.check(S1, "alice", "m1", 2, digest=b"forged", via=OURS_B)
    with pytest.raises(Replay):  # no digest: nothing to compare, so never a duplicate
        guard.check(S1, "alice", "m1", 2, via=OURS_B)
