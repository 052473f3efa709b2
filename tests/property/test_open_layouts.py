"""A sender's kept layout reads an inner map exactly as the general reading does, or not at all.

``crypto/seal.py`` keeps, per sender, the bytes of the inner map's fields that do not change
from one message to the next (a layout), and reads a new copy by slicing when it holds those
bytes around new ``sent_at``, ``msg_id`` and ``body`` items. Here, for layouts made from real
sealed inner maps of both forms, Hypothesis builds inner maps that differ in those fields (any
value of any type, any msgpack header for them), or in any byte: the layout reader must give
``None`` or the very message ``InnerMessage.from_wire(unpack_strict(...))`` gives, and must not
give ``None`` for a valid map in the sealer's layout (else the fast path would be dead code).
"""

from __future__ import annotations

import dataclasses
import struct
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from susurro.crypto import CryptoError, IdentityKey, IdentityPublicKey, fingerprint_bytes
from susurro.crypto import seal as seal_module
from susurro.crypto.seal import (
    LAYOUTS_PER_SENDER,
    MAX_LAYOUT_BYTES,
    MAX_LAYOUT_SENDERS,
    MAX_SENT_AT,
    InnerMessage,
    SignedHead,
    _layout_of,
    _read_in_layout,
    _remember_layout,
    unpack_strict,
)

FP = [fingerprint_bytes(IdentityKey.from_seed(bytes([i]) * 32).public) for i in range(12)]

INNERS = [
    InnerMessage(
        room="main",
        sender="alice",
        sent_at=1_732_000_000_000,
        msg_id="0123456789abcdef",
        direct=False,
        to=tuple((f"member{i}", FP[i]) for i in range(10)),
        body="see you at the station at nine, bring the map",
    ),
    InnerMessage(
        room="main",
        sender="alice",
        sent_at=1_732_000_000_001,
        msg_id="x" * 64,
        direct=True,
        to=(("bob", FP[1]),),
        body="",
    ),
    InnerMessage(
        room="ops",
        sender="alice",
        sent_at=MAX_SENT_AT,
        msg_id="m-1_a",
        direct=False,
        to=(),
        body="ünïcode " * 40,
        head=SignedHead(bytes(range(32)), 7, bytes(32)),
        skipped=(("carol", FP[2]),),
    ),
]


def pack(value: Any) -> bytes:
    return bytes(msgpack.packb(value, use_bin_type=True))


def general(data: bytes) -> InnerMessage | None:
    try:
        return InnerMessage.from_wire(unpack_strict(data, "inner message"))
    except CryptoError:
        return None


LAYOUTS = [_layout_of(inner, pack(inner.to_wire())) for inner in INNERS]


def test_a_sealer_written_inner_has_a_layout_and_reads_back_as_itself() -> None:
    for inner, layout in zip(INNERS, LAYOUTS, strict=True):
        assert layout is not None
        assert _read_in_layout(pack(inner.to_wire()), (layout,)) == inner


def test_bytes_the_sealer_would_not_write_have_no_layout() -> None:
    inner = INNERS[0]
    wire = inner.to_wire()
    small_clock = InnerMessage.from_wire({**wire, "sent_at": 1000})
    assert _layout_of(small_clock, pack(small_clock.to_wire())) is None  # sent_at not a uint64
    reordered = {"from": wire["from"], **{k: v for k, v in wire.items() if k != "from"}}
    assert _layout_of(inner, pack(reordered)) is None
    longer_header = b"\xde\x00\x07" + pack(wire)[1:]  # a map16 header for seven entries
    assert general(longer_header) == inner and _layout_of(inner, longer_header) is None
    big = InnerMessage.from_wire({**wire, "to": [[f"m{i}", FP[i % 12]] for i in range(60)]})
    assert len(pack(big.to_wire())) > MAX_LAYOUT_BYTES and _layout_of(big, pack(big.to_wire())) is None


#: Anything a field could hold instead: every msgpack type, and the edges of each field's tests.
ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.sampled_from([0, 1, MAX_SENT_AT, MAX_SENT_AT + 1, 2**32, 2**32 - 1, 2**64 - 1]),
    st.floats(allow_nan=False),
    st.text(max_size=70),
    st.text(alphabet="0123456789abcdefXYZ_-", min_size=0, max_size=70),
    st.binary(max_size=40),
    st.lists(st.integers(-5, 5), max_size=2),
    st.sampled_from(["", "a", "é", "x" * 31, "x" * 32, "x" * 64, "x" * 65, "\u202e", "a b", "\x00"]),
)
BODIES = st.one_of(
    st.text(max_size=300),
    st.sampled_from(["", "x" * 31, "x" * 32, "x" * 255, "x" * 256, "é" * 8192, "é" * 8193, "x" * 16384]),
)


@st.composite
def str_item(draw: st.DrawFn, text: str) -> bytes:
    """``text`` as a msgpack str, with the shortest header or any other that holds it, or a bin."""
    data = text.encode("utf-8", "surrogatepass")
    choice = draw(st.sampled_from(["shortest"] * 4 + ["str8", "str16", "str32", "bin", "cut", "long"]))
    if choice == "str8" and len(data) < 256:
        return b"\xd9" + bytes([len(data)]) + data
    if choice == "str16" and len(data) < 65536:
        return b"\xda" + struct.pack(">H", len(data)) + data
    if choice == "str32":
        return b"\xdb" + struct.pack(">I", len(data)) + data
    if choice == "bin":
        return pack(data)
    if choice in ("cut", "long") and data:
        header = pack(text)[: len(pack(text)) - len(data)]
        return header + (data[:-1] if choice == "cut" else data + b"x")
    return pack(text)


@st.composite
def variants(draw: st.DrawFn) -> tuple[bytes, int]:
    """The inner map of one of ``INNERS`` with new values for its changing fields, any of them
    odd, or with any byte changed; and which of ``LAYOUTS`` it came from."""
    which = draw(st.integers(0, len(INNERS) - 1))
    wire = INNERS[which].to_wire()

    # Mostly valid values (so that copies in the layout come up), each odd one time in four.
    def field(valid: st.SearchStrategy[Any]) -> Any:
        return draw(ODD_VALUES if draw(st.integers(0, 3)) == 3 else valid)

    sent_at = field(st.integers(2**32, MAX_SENT_AT))
    msg_id = field(
        st.text(alphabet="0123456789abcdefXYZ_-", min_size=1, max_size=64) | st.sampled_from(["x" * 64, "y" * 65])
    )
    body = field(BODIES)
    items = []
    for key, value in wire.items():
        value = {"sent_at": sent_at, "msg_id": msg_id, "body": body}.get(key, value)
        item = draw(str_item(value)) if isinstance(value, str) and key in ("msg_id", "body") else pack(value)
        items.append(pack(key) + item)
    data = bytes([0x80 + len(items)]) + b"".join(items)
    how = draw(st.sampled_from(["none"] * 6 + ["flip", "cut", "add", "tail"]))
    at = draw(st.integers(0, len(data) - 1))
    if how == "flip":
        data = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]
    elif how == "cut":
        data = data[:at]
    elif how == "add":
        data = data[:at] + draw(st.binary(min_size=1, max_size=3)) + data[at:]
    elif how == "tail":
        data += draw(st.binary(min_size=1, max_size=3))
    return data, which


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(variant=variants(), all_layouts=st.booleans())
def test_a_layout_reads_as_the_general_reading_or_not_at_all(variant: tuple[bytes, int], all_layouts: bool) -> None:
    data, which = variant
    layouts = tuple(layout for layout in LAYOUTS if layout is not None)
    held = layouts if all_layouts else (layouts[which],)
    fast = _read_in_layout(data, held)
    expected = general(data)
    if fast is not None:
        assert fast == expected  # every field, the dataclass's equality
    elif expected is not None and pack(expected.to_wire()) == data and expected.sent_at >= 2**32:
        # Valid, in the sealer's layout, around one of the held layouts: it must be read by slicing.
        assert _layout_of(expected, data) not in held, "a copy in a held layout went to the general reading"


def test_the_layouts_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(seal_module, "_LAYOUTS", {})
    # One layout more than a sender keeps: rooms of other names.
    inners = [*INNERS, *(dataclasses.replace(INNERS[2], room=f"ops{i}") for i in range(LAYOUTS_PER_SENDER))]
    data = [pack(inner.to_wire()) for inner in inners]
    for sender in range(MAX_LAYOUT_SENDERS + 50):
        key = sender.to_bytes(32, "big")
        for inner, inner_bytes in zip(inners, data, strict=True):
            _remember_layout(key, inner, inner_bytes, seal_module._LAYOUTS.get(key, ()))
    kept = seal_module._LAYOUTS
    assert len(kept) == MAX_LAYOUT_SENDERS
    assert all(len(layouts) == LAYOUTS_PER_SENDER for layouts in kept.values())
    newest = (MAX_LAYOUT_SENDERS + 49).to_bytes(32, "big")
    assert kept[newest][0] == _layout_of(inners[-1], data[-1])  # the last one kept first
    assert (0).to_bytes(32, "big") not in kept  # the oldest sender let go


def test_open_message_keeps_a_layout_only_from_a_copy_that_passed_every_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """A layout is made from a copy that opened (signature, sender and recipient checks passed),
    and the next copy in it opens through it to the same message the general reading gives."""
    from susurro.crypto import BadSignature, BoxCache, Recipient, SessionKey, open_message, seal_message

    monkeypatch.setattr(seal_module, "_LAYOUTS", {})
    alice, mallory, bob = (IdentityKey.from_seed(bytes([s]) * 32) for s in (41, 42, 43))
    alice_sk, bob_sk = SessionKey.generate(), SessionKey.generate()
    to_bob = [Recipient(name="bob", identity_key=bob.public, session_key=bob_sk.public, counter=1)]

    def copy(signer: IdentityKey, msg_id: str, body: str) -> bytes:
        return seal_message(
            identity=signer,
            boxes=BoxCache(alice_sk),
            sender="alice",
            recipients=to_bob,
            body=body,
            msg_id=msg_id,
            sent_at=1_732_000_000_000,
        )["bob"]

    def open_(ciphertext: bytes) -> Any:
        return open_message(
            boxes=BoxCache(bob_sk),
            ciphertext=ciphertext,
            relay_sender="alice",
            sender_identity_key=alice.public,
            sender_session_key=alice_sk.public,
            own_name="bob",
            own_identity_key=bob.public,
        )

    with pytest.raises(BadSignature):
        open_(copy(mallory, "m1", "forged"))
    assert seal_module._LAYOUTS == {}
    first = open_(copy(alice, "m1", "first"))
    assert len(seal_module._LAYOUTS[alice.public]) == 1
    second = open_(copy(alice, "m2", "second, a longer body than the first one was"))
    assert seal_module._LAYOUTS[alice.public][0] == _layout_of(first.inner, pack(first.inner.to_wire()))
    assert (second.inner.msg_id, second.inner.body, second.inner.to) == (
        "m2",
        "second, a longer body than the first one was",
        first.inner.to,
    )
    assert second.inner.to is first.inner.to  # read through the layout, not parsed again
    with pytest.raises(BadSignature):
        open_(copy(mallory, "m3", "forged in the layout"))


def _sealer_bytes_with(inner: InnerMessage, **raw: bytes) -> bytes:
    """``inner``'s bytes as the sealer writes them, with the items named in ``raw`` (key and value
    already packed) put in their place instead."""
    items = [raw.get(key, pack(key) + pack(value)) for key, value in inner.to_wire().items()]
    return bytes([0x80 + len(items)]) + b"".join(items)


@pytest.mark.parametrize(
    "data",
    [
        # The id's key changed at the same length: another map, which the general reading refuses.
        _sealer_bytes_with(INNERS[0], msg_id=pack("msg_iD") + pack("0123456789abcdef")),
        _sealer_bytes_with(INNERS[0], msg_id=pack("msg_ix") + pack("0123456789abcdef")),
        # Cut right after the key ``body``, and within the body's header.
        pack(INNERS[0].to_wire())[: -len(pack(INNERS[0].body))],
        pack(INNERS[2].to_wire())[: -len(pack(INNERS[2].body)) + 1],
        pack(INNERS[2].to_wire())[: -len(pack(INNERS[2].body)) + 2],
        # Encoded surrogates (UTF-8 forbids them; ``surrogatepass`` would read them) and other bytes
        # strict UTF-8 refuses, in a body of each header form.
        *(
            _sealer_bytes_with(INNERS[0], body=pack("body") + header + body)
            for body in (b"\xed\xa0\x80", b"\xed\xb0\x80", b"a\xed\xa0\x80\xed\xb0\x80", b"\xc0\x80", b"\xff")
            for header in (bytes([0xA0 + len(body)]), b"\xd9" + bytes([len(body)]), b"\xda\x00" + bytes([len(body)]))
        ),
    ],
)
def test_copies_that_only_look_like_a_layout_go_to_the_general_reading(data: bytes) -> None:
    """Each of the layout reader's checks that a drawn copy rarely reaches, pinned by a copy that
    fails only it: the general reading refuses each, and the layout reader must not read it (nor
    raise: an ``IndexError`` out of open would be no typed refusal)."""
    layouts = tuple(layout for layout in LAYOUTS if layout is not None)
    assert general(data) is None
    assert _read_in_layout(data, layouts) is None


def test_a_sender_in_four_conversations_is_read_through_her_layouts(monkeypatch: pytest.MonkeyPatch) -> None:
    """The relay-wide room, direct messages and two rooms, interleaved: after each one's first copy,
    every copy is read through a layout (with two kept, three conversations never hit one)."""
    from susurro.crypto import BoxCache, Recipient, SessionKey, open_message, seal_message

    monkeypatch.setattr(seal_module, "_LAYOUTS", {})
    general_reads: list[bytes] = []
    read_inner = seal_module._read_inner

    def counted(data: bytes) -> InnerMessage:
        general_reads.append(data)
        return read_inner(data)

    monkeypatch.setattr(seal_module, "_read_inner", counted)
    alice, bob, carol = (IdentityKey.from_seed(bytes([s]) * 32) for s in (51, 52, 53))
    alice_sk, bob_sk, carol_sk = SessionKey.generate(), SessionKey.generate(), SessionKey.generate()
    bob_r = Recipient(name="bob", identity_key=bob.public, session_key=bob_sk.public, counter=1)
    carol_r = Recipient(name="carol", identity_key=carol.public, session_key=carol_sk.public, counter=1)
    conversations: list[dict[str, Any]] = [
        {"recipients": [bob_r, carol_r]},
        {"recipients": [bob_r], "direct": True},
        {"recipients": [bob_r], "room": "r1", "head": SignedHead(bytes(32), 1, bytes(32))},
        {"recipients": [bob_r], "room": "r2", "head": SignedHead(bytes([1]) * 32, 4, bytes(32))},
    ]
    for round_ in range(3):
        for n, conversation in enumerate(conversations):
            ciphertext = seal_message(
                identity=alice,
                boxes=BoxCache(alice_sk),
                sender="alice",
                body=f"round {round_}",
                msg_id=f"m{round_}-{n}",
                sent_at=1_732_000_000_000 + round_,
                **conversation,
            )["bob"]
            opened = open_message(
                boxes=BoxCache(bob_sk),
                ciphertext=ciphertext,
                relay_sender="alice",
                sender_identity_key=alice.public,
                sender_session_key=alice_sk.public,
                own_name="bob",
                own_identity_key=bob.public,
            )
            assert (opened.inner.body, opened.inner.msg_id) == (f"round {round_}", f"m{round_}-{n}")
    assert len(general_reads) == len(conversations)  # the first round only


def test_a_session_key_of_the_wrong_type_is_decrypt_failed() -> None:
    """The Box is looked up inside the decryption's ``try`` (review-s8-opener finding 5)."""
    from susurro.crypto import BoxCache, DecryptFailed, SessionKey, open_message

    with pytest.raises(DecryptFailed):
        open_message(
            boxes=BoxCache(SessionKey.generate()),
            ciphertext=bytes(80),
            relay_sender="alice",
            sender_identity_key=IdentityPublicKey(bytes(32)),
            sender_session_key=bytearray(32),  # type: ignore[arg-type]
            own_name="bob",
            own_identity_key=IdentityPublicKey(bytes(32)),
        )
