"""The relay's fast path keeps its meaning: batched writes, one-pass deliver
packing, bulk validation and exact-name lookup behave like the slow forms.
"""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import Ack, Deliver, DeliverEncoder, LocalProtocolError, Member, Send, encode
from protocol.frames import MAX_RAW_NAME_CHARS
from protocol.limits import ABSOLUTE_MAX_FRAME
from relay import Outbox, Roster
from relay.outbox import MAX_BATCH_BYTES

TOKEN = st.text(alphabet="0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-", min_size=1, max_size=64)
# Ciphertext sizes around msgpack's bin8/bin16/bin32 boundaries, and small ones.
SIZES = st.sampled_from([1, 2, 255, 256, 296, 65535, 65536, 70_000]) | st.integers(1, 600)


@given(
    sender=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=128),
    msg_id=TOKEN,
    size=SIZES,
    fill=st.integers(0, 255),
)
def test_deliver_encoder_is_byte_identical_to_encode(sender: str, msg_id: str, size: int, fill: int) -> None:
    ct = bytes([fill]) * size
    encoder = DeliverEncoder(sender, msg_id, max_frame=ABSOLUTE_MAX_FRAME)
    assert encoder.frame(ct) == encode(Deliver(sender=sender, id=msg_id, ct=ct), max_frame=ABSOLUTE_MAX_FRAME)


def test_deliver_encoder_checks_what_deliver_checks() -> None:
    with pytest.raises(LocalProtocolError):
        DeliverEncoder("alice", "not a token!")
    with pytest.raises(LocalProtocolError):
        DeliverEncoder("", "m1")
    encoder = DeliverEncoder("alice", "m1", max_frame=4096)
    with pytest.raises(LocalProtocolError):
        encoder.frame(b"")
    with pytest.raises(LocalProtocolError):
        encoder.frame(b"x" * 5000)  # over the frame limit, like encode()


@pytest.mark.parametrize(
    "to",
    [
        {"": b"x"},
        {"a" * (MAX_RAW_NAME_CHARS + 1): b"x"},
        {"bob": b""},
        {"bob": "text"},
        {"bob": b"x", "carol": bytearray(b"x")},
    ],
)
def test_send_bulk_check_still_refuses_each_bad_entry(to: dict[str, object]) -> None:
    with pytest.raises(LocalProtocolError):
        Send(id="m1", to=to)  # type: ignore[arg-type]


@pytest.mark.parametrize("names", [("",), ("a" * (MAX_RAW_NAME_CHARS + 1),), ("bob", 7)])
def test_ack_bulk_check_still_refuses_each_bad_name(names: tuple[object, ...]) -> None:
    with pytest.raises(LocalProtocolError):
        Ack(id="m1", delivered=names, missing=())  # type: ignore[arg-type]


# --- Outbox.take_all ------------------------------------------------------------------


def test_take_all_returns_everything_queued_in_order_as_one_block() -> None:
    box = Outbox(max_bytes=1000)
    for i in range(5):
        assert box.offer(bytes([i]) * 10)
    assert box.take_all() == b"".join(bytes([i]) * 10 for i in range(5))
    assert box.queued_bytes == 0
    box.offer(b"next")
    assert box.take_all() == b"next"


def test_take_all_hands_out_at_most_a_batch_of_whole_frames() -> None:
    frame = b"f" * 1000
    count = 3 * MAX_BATCH_BYTES // len(frame)
    box = Outbox(max_bytes=10 * MAX_BATCH_BYTES)
    for _ in range(count):
        assert box.offer(frame)
    sizes = []
    while box.queued_bytes:
        block = box.take_all()
        assert block is not None and len(block) % len(frame) == 0
        sizes.append(len(block))
    assert sum(sizes) == count * len(frame)
    assert max(sizes) <= MAX_BATCH_BYTES + len(frame)
    assert len(sizes) >= 3


def test_take_all_after_close_drains_then_none_and_budget_still_evicts() -> None:
    box = Outbox(max_bytes=100)
    assert box.offer(b"a" * 60) and box.offer(b"b" * 40)
    assert box.offer(b"c") is False  # over budget: slow consumer
    assert box.close_reason == "slow_consumer"
    assert box.take_all() is None
    other = Outbox(max_bytes=100)
    other.offer(b"one")
    other.close("bye")
    assert other.take_all() == b"one"
    assert other.take_all() is None


def test_take_all_wakes_for_an_offer_and_for_close() -> None:
    box = Outbox(max_bytes=100)
    got: list[bytes | None] = []
    started = threading.Event()

    def writer() -> None:
        started.set()
        got.append(box.take_all())
        got.append(box.take_all())

    thread = threading.Thread(target=writer)
    thread.start()
    started.wait(5)
    box.offer(b"frame")  # seen whether or not the writer was already waiting
    box.close("done")
    thread.join(10)
    assert not thread.is_alive()
    assert got == [b"frame", None]


# --- Roster exact-name lookup ---------------------------------------------------------


def _member(name: str) -> Member:
    return Member(name=name, ik=b"\x01" * 32, sk=b"\x02" * 32, cert=b"\x03" * 64, issued_at=1)


def test_exact_lookup_forgets_members_that_left_or_rekeyed() -> None:
    roster: Roster[str] = Roster()
    roster.join(_member("alice"), "conn-a", lambda others: None)
    assert roster.lookup(["alice", "ALICE"])[0] == [("alice", "alice", "conn-a"), ("ALICE", "alice", "conn-a")]
    assert roster.leave("alice", "conn-a", lambda others: None)
    assert roster.lookup(["alice"]) == ([], ["alice"])
    roster.join(_member("Alice"), "conn-b", lambda others: None)  # the name is free again, spelled otherwise
    assert roster.lookup(["alice", "Alice"])[0] == [("alice", "Alice", "conn-b"), ("Alice", "Alice", "conn-b")]
    replacement = Member(name="Alice", ik=b"\x01" * 32, sk=b"\x09" * 32, cert=b"\x03" * 64, issued_at=2)
    assert roster.replace("Alice", "conn-b", replacement, lambda others: None) is not None
    assert roster.lookup(["Alice"])[0] == [("Alice", "Alice", "conn-b")]
