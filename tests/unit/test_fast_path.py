"""The relay's fast path keeps its meaning: batched writes, one-pass deliver
packing, bulk validation and exact-name lookup behave like the slow forms.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from susurro.protocol import Ack, Deliver, DeliverEncoder, LocalProtocolError, Member, Send, encode, encode_ack
from susurro.protocol.frames import MAX_RAW_NAME_CHARS
from susurro.protocol.limits import ABSOLUTE_MAX_FRAME
from susurro.relay import Roster

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


def test_deliver_encoder_checks_every_copy_not_only_the_first_of_a_size() -> None:
    encoder = DeliverEncoder("alice", "m1", max_frame=4096)
    assert encoder.frame(b"x" * 300) == encode(Deliver(sender="alice", id="m1", ct=b"x" * 300), max_frame=4096)
    with pytest.raises(LocalProtocolError):
        encoder.frame(bytearray(b"x" * 300))  # type: ignore[arg-type]  # same size, prefix cached: still refused
    with pytest.raises(LocalProtocolError):
        encoder.frame(b"x" * 4096)  # a new size is checked against the limit when first seen
    assert encoder.frame(b"y" * 300).endswith(b"y" * 300)


NAMES = st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=128), max_size=40)


@given(msg_id=TOKEN, delivered=NAMES, missing=NAMES)
def test_encode_ack_is_byte_identical_to_encode(msg_id: str, delivered: list[str], missing: list[str]) -> None:
    expected = encode(Ack(id=msg_id, delivered=tuple(delivered), missing=tuple(missing)), max_frame=ABSOLUTE_MAX_FRAME)
    assert encode_ack(msg_id, delivered, missing, max_frame=ABSOLUTE_MAX_FRAME) == expected


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
