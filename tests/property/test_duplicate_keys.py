"""A map with a key twice is refused wherever Susurro reads one: in frames, in a
message's signed inner and in a receipt's (``crypto.seal.unpack_strict``).

msgpack itself keeps the last value of a repeated key, so a signer could make
one signed byte string that two readers take for two different things (one
shows the first ``ids``, one the last). Hypothesis picks which key is repeated,
where, and with what value; the bytes are signed with the right key, so only
the strict decoder stands between them and acceptance.
"""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from susurro.crypto import IdentityKey, MalformedMessage
from susurro.crypto.encoding import MESSAGE_PURPOSE
from susurro.crypto.fingerprint import fingerprint_bytes
from susurro.crypto.padding import pad
from susurro.crypto.prekeys import RECEIPT_PURPOSE, open_receipt
from susurro.crypto.seal import open_block
from susurro.protocol import CLIENT_FRAMES, RemoteProtocolError, decode_frame

ALICE = IdentityKey.from_seed(bytes(range(32)))
BOB = IdentityKey.from_seed(bytes(range(32, 64)))

VALUES = st.one_of(
    st.integers(-(2**31), 2**31),
    st.text(max_size=8),
    st.binary(max_size=8),
    st.booleans(),
    st.lists(st.text(max_size=4), max_size=2),
)


def map_with_a_repeat(pairs: list[tuple[str, Any]], repeat: int, value: Any, at: int) -> bytes:
    """msgpack of a map of ``pairs`` with key ``pairs[repeat]`` once more (with ``value``) at ``at``."""
    entries = [msgpack.packb(k) + msgpack.packb(v, use_bin_type=True) for k, v in pairs]
    entries.insert(at, msgpack.packb(pairs[repeat][0]) + msgpack.packb(value, use_bin_type=True))
    count = len(entries)
    header = bytes([0x80 | count]) if count < 16 else b"\xde" + count.to_bytes(2, "big")
    return header + b"".join(entries)


def signed_pair(identity: IdentityKey, purpose: bytes, inner: bytes) -> bytes:
    packed: bytes = msgpack.packb([inner, identity.sign(purpose, inner)], use_bin_type=True)
    return packed


RECEIPT = [
    ("from", "bob"),
    ("to", ["alice", fingerprint_bytes(ALICE.public)]),
    ("ids", ["m1"]),
    ("at", 1),
]
MESSAGE = [
    ("room", "main"),
    ("from", "alice"),
    ("sent_at", 1_764_000_000_000),
    ("msg_id", "0123456789abcdef"),
    ("direct", True),
    ("to", [["bob", fingerprint_bytes(BOB.public)]]),
    ("body", "hola"),
]


@settings(max_examples=150, deadline=None)
@given(repeat=st.integers(0, len(RECEIPT) - 1), value=VALUES, at=st.integers(0, len(RECEIPT)))
def test_a_receipt_with_a_key_twice_is_refused(repeat: int, value: Any, at: int) -> None:
    inner = map_with_a_repeat(RECEIPT, repeat, value, at)
    block = pad(signed_pair(BOB, RECEIPT_PURPOSE, inner))
    with pytest.raises(MalformedMessage):
        open_receipt(
            block,
            relay_sender="bob",
            sender_identity_key=BOB.public,
            own_name="alice",
            own_fingerprint=fingerprint_bytes(ALICE.public),
        )


@settings(max_examples=150, deadline=None)
@given(repeat=st.integers(0, len(MESSAGE) - 1), value=VALUES, at=st.integers(0, len(MESSAGE)))
def test_a_message_inner_with_a_key_twice_is_refused(repeat: int, value: Any, at: int) -> None:
    inner = map_with_a_repeat(MESSAGE, repeat, value, at)
    block = pad(msgpack.packb([signed_pair(ALICE, MESSAGE_PURPOSE, inner), 1], use_bin_type=True))
    with pytest.raises(MalformedMessage):
        open_block(
            block, relay_sender="alice", sender_identity_key=ALICE.public, own_name="bob", own_identity_key=BOB.public
        )


@settings(max_examples=150, deadline=None)
@given(value=VALUES, at=st.integers(0, 4))
def test_a_frame_with_a_key_twice_is_refused(value: Any, at: int) -> None:
    fetch = [("v", 1), ("t", "bundle_fetch"), ("id", "f1"), ("keys", [b"k" * 32]), ("one_time", True)]
    payload = map_with_a_repeat(fetch, 3, value, at)
    with pytest.raises(RemoteProtocolError):
        decode_frame(payload, CLIENT_FRAMES)


def test_the_maps_without_a_repeat_are_accepted() -> None:
    """The same builder without the repeat gives what the readers accept (the tests above test the repeat)."""
    receipt = msgpack.packb(dict(RECEIPT), use_bin_type=True)
    opened = open_receipt(
        pad(signed_pair(BOB, RECEIPT_PURPOSE, receipt)),
        relay_sender="bob",
        sender_identity_key=BOB.public,
        own_name="alice",
        own_fingerprint=fingerprint_bytes(ALICE.public),
    )
    assert opened.msg_ids == ("m1",)
    message = msgpack.packb(dict(MESSAGE), use_bin_type=True)
    block = pad(msgpack.packb([signed_pair(ALICE, MESSAGE_PURPOSE, message), 1], use_bin_type=True))
    assert (
        open_block(
            block, relay_sender="alice", sender_identity_key=ALICE.public, own_name="bob", own_identity_key=BOB.public
        ).inner.body
        == "hola"
    )
