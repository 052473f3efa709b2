"""The relay's fast path keeps its meaning: batched writes, one-pass deliver
packing, bulk validation and exact-name lookup behave like the slow forms.
"""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from susurro.protocol import Ack, Deliver, DeliverEncoder, LocalProtocolError, Member, Send, encode
from susurro.protocol.frames import MAX_RAW_NAME_CHARS
from susurro.protocol.limits import ABSOLUTE_MAX_FRAME
from susurro.relay import Outbox, Roster
from susurro.relay.outbox import MAX_BATCH_BYTES

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


# --- Outbox direct path: producers write to an idle socket themselves ---------------------


class FakeSocket:
    """``send_now`` stand-in: takes at most ``window`` bytes per call, or raises what it is told."""

    def __init__(self, window: int = 1 << 30) -> None:
        self.window = window
        self.raise_next: BaseException | None = None
        self.written = bytearray()
        self.calls = 0
        self.lock = threading.Lock()

    def send(self, data: bytes) -> int:
        with self.lock:
            self.calls += 1
            if self.raise_next is not None:
                exc, self.raise_next = self.raise_next, None
                raise exc
            taken = data[: self.window]
            self.written += taken
            return len(taken)


def test_idle_outbox_sends_directly_and_queues_nothing() -> None:
    sock = FakeSocket()
    box = Outbox(max_bytes=100, send_now=sock.send)
    assert box.offer(b"hello") and box.offer(b"world")
    assert bytes(sock.written) == b"helloworld"
    assert box.queued_bytes == 0


def test_what_the_kernel_does_not_take_is_queued_first_in_order() -> None:
    sock = FakeSocket(window=3)
    box = Outbox(max_bytes=100, send_now=sock.send)
    assert box.offer(b"abcdef")  # 3 bytes go out, "def" waits
    assert box.offer(b"ghi")  # queued behind it, not sent around it
    assert bytes(sock.written) == b"abc"
    assert box.take_all() == b"defghi"
    sock.raise_next = BlockingIOError()
    # While the writer is busy with its batch, producers queue rather than write.
    assert box.offer(b"jkl")
    assert sock.calls == 1
    assert box.take_all() == b"jkl"


def test_a_full_kernel_buffer_queues_the_whole_frame() -> None:
    sock = FakeSocket()
    sock.raise_next = BlockingIOError()
    box = Outbox(max_bytes=100, send_now=sock.send)
    assert box.offer(b"frame")
    assert box.queued_bytes == 5 and box.take_all() == b"frame"


def test_a_failed_direct_write_gives_up_on_the_connection() -> None:
    cut = []
    sock = FakeSocket()
    sock.raise_next = ConnectionResetError()
    box = Outbox(max_bytes=100, on_overflow=lambda: cut.append(1), send_now=sock.send)
    assert box.offer(b"frame")  # accepted, then the write failed
    assert box.close_reason == "write failed" and cut == [1]
    assert box.offer(b"more") is False
    assert box.take_all() is None


def test_budget_counts_what_waits_for_a_slow_reader() -> None:
    sock = FakeSocket(window=0)  # a client that reads nothing
    box = Outbox(max_bytes=100, send_now=sock.send)
    assert box.offer(b"a" * 60) and box.offer(b"b" * 40)
    assert box.offer(b"c") is False
    assert box.close_reason == "slow_consumer"


def test_concurrent_producers_and_writer_never_interleave_frames() -> None:
    sock = FakeSocket(window=7)  # partial writes all the time
    box = Outbox(max_bytes=1 << 24, send_now=sock.send)
    producers, per_producer = 4, 300

    def produce(p: int) -> None:
        for i in range(per_producer):
            assert box.offer(b"<%d:%04d>" % (p, i))

    def write() -> None:
        while (block := box.take_all()) is not None:
            with sock.lock:
                sock.written += block

    writer = threading.Thread(target=write)
    writer.start()
    threads = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    box.close("done")
    writer.join(30)
    assert not writer.is_alive()
    frames = bytes(sock.written).split(b">")[:-1]
    assert len(frames) == producers * per_producer
    for p in range(producers):
        mine = [f for f in frames if f.startswith(b"<%d:" % p)]
        assert mine == [b"<%d:%04d" % (p, i) for i in range(per_producer)]


def test_a_frame_offered_during_a_direct_send_waits_behind_its_remainder() -> None:
    box: Outbox

    def send_now(data: bytes) -> int:
        if data == b"first-frame":
            assert box.offer(b"second")  # another producer, mid-send: it must queue
            return 5  # the kernel took "first"
        raise AssertionError("only one direct send at a time")

    box = Outbox(max_bytes=100, send_now=send_now)
    assert box.offer(b"first-frame")
    assert box.take_all() == b"-framesecond"


# --- the writer's own send timeout on plain sockets -----------------------------------------


def test_writer_send_gives_up_when_the_client_stops_reading() -> None:
    import socket

    from susurro.relay.server import _sender_within

    ours, theirs = socket.socketpair()
    try:
        send_all = _sender_within(ours, 0.3)
        with pytest.raises(TimeoutError):
            send_all(b"x" * (64 * 1024 * 1024))  # far more than both kernel buffers hold
        assert ours.gettimeout() is None  # still blocking mode, for the producers' MSG_DONTWAIT
    finally:
        ours.close()
        theirs.close()


def test_writer_send_delivers_everything_to_a_reader() -> None:
    import socket

    from susurro.relay.server import _sender_within

    ours, theirs = socket.socketpair()
    data = bytes(range(256)) * 8192  # 2 MiB: several rounds of waiting for room
    received = bytearray()

    def read() -> None:
        while len(received) < len(data) and (chunk := theirs.recv(65536)):
            received.extend(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        _sender_within(ours, 30.0)(data)
        reader.join(30)
        assert bytes(received) == data
    finally:
        ours.close()
        theirs.close()


# --- sealing: the shortcuts produce the same bytes -----------------------------------------


@given(data=st.binary(max_size=3000), more=st.lists(st.binary(max_size=300), max_size=3))
def test_pad_of_parts_equals_pad_of_their_concatenation(data: bytes, more: list[bytes]) -> None:
    from susurro.crypto import pad, unpad

    joined = data + b"".join(more)
    assert pad(data, *more) == pad(joined)
    assert unpad(pad(data, *more)) == joined


@given(sealed=st.binary(max_size=5000), counter=st.integers(1, 2**63 - 1))
def test_envelope_head_plus_counter_is_the_packed_pair(sealed: bytes, counter: int) -> None:
    import msgpack

    head = b"\x92" + msgpack.packb(sealed, use_bin_type=True)
    assert head + msgpack.packb(counter) == msgpack.packb([sealed, counter], use_bin_type=True)


@given(block=st.binary(min_size=4, max_size=600))
def test_unpad_refuses_any_nonzero_padding_byte(block: bytes) -> None:
    from susurro.crypto import MalformedMessage, pad, unpad

    padded = bytearray(pad(block))
    end = 4 + len(block)
    if end < len(padded):
        padded[-1] = 1
        with pytest.raises(MalformedMessage):
            unpad(bytes(padded))


def test_seal_encryption_is_box_encrypt_layout_and_fresh_nonces() -> None:
    import nacl.public

    from susurro.crypto.seal import _encrypt

    ours, theirs = nacl.public.PrivateKey.generate(), nacl.public.PrivateKey.generate()
    box = nacl.public.Box(ours, theirs.public_key)
    first, second = _encrypt(box, b"block"), _encrypt(box, b"block")
    assert nacl.public.Box(theirs, ours.public_key).decrypt(first) == b"block"
    assert len(first) == len(bytes(box.encrypt(b"block")))
    assert first[:24] != second[:24]  # a new random nonce every time
