"""``open_message`` accepts and refuses exactly what the straightforward reading of the spec does.

``crypto/seal.py`` reads the two outer layers of a copy (``msgpack[sealed, n]`` and
``msgpack[inner, sig]``) directly when they are in the layout the sealer writes, and
writes the signed bytes from what it read. Here the straightforward path is spelled out
as docs/protocol.md lists the receiver's checks (general msgpack parses of each layer,
``signing_payload`` and ``verify_signature``), and Hypothesis builds copies that are
valid, or wrong at one or more layers: any inner map (fields of any msgpack value, keys
missing, added or repeated), any encoding of the two pairs (the shortest headers, longer
ones, a third element, trailing bytes, a str for a bin), any counter, any signature
(genuine, by another key, over other bytes, cut short), any bytes flipped at any layer,
any padding, and the wrong keys or names on the receiving side. Both paths must give
the same message, or the same error with the same words.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgpack
import nacl.exceptions
import nacl.public
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from susurro.crypto import (
    MESSAGE_PURPOSE,
    BoxCache,
    CryptoError,
    DecryptFailed,
    IdentityKey,
    IdentityPublicKey,
    MalformedMessage,
    NotAddressedToMe,
    SenderMismatch,
    SessionKey,
    fingerprint_bytes,
    open_message,
    pad,
    unpad,
    verify_signature,
)
from susurro.crypto.errors import BadSignature
from susurro.crypto.seal import (
    _MAX_CONTAINERS,
    MAX_COUNTER,
    MAX_PLAINTEXT,
    InnerMessage,
    OpenedMessage,
    content_digest,
    unpack_strict,
)


@dataclass
class Party:
    name: str
    ik: IdentityKey = field(default_factory=IdentityKey.generate)
    sk: SessionKey = field(default_factory=SessionKey.generate)

    @property
    def fp(self) -> bytes:
        return fingerprint_bytes(self.ik.public)


ALICE, BOB, CAROL = Party("alice"), Party("bob"), Party("carol")
BOB_BOXES = BoxCache(BOB.sk)
ALICE_TO_BOB = nacl.public.Box(ALICE.sk.private_key, nacl.public.PublicKey(BOB.sk.public))


def straightforward_open(
    block: bytes, *, relay_sender: str, sender_identity_key: bytes, own_name: str, own_identity_key: bytes
) -> OpenedMessage:
    """The receiver's checks after decryption, one general parse per layer, in the spec's order."""

    def pair(data: bytes, what: str) -> list[Any]:
        value = unpack_strict(data, what)
        if not isinstance(value, list) or len(value) != 2:
            raise MalformedMessage(f"{what} is not a pair")
        return value

    plaintext = unpad(block)
    if len(plaintext) > MAX_PLAINTEXT:
        raise MalformedMessage("plaintext larger than any valid message")
    sealed, counter = pair(plaintext, "envelope")
    if not isinstance(sealed, bytes) or type(counter) is not int:
        raise MalformedMessage("envelope fields have the wrong types")
    if not 0 < counter <= MAX_COUNTER:
        raise MalformedMessage("counter out of range")
    inner_bytes, signature = pair(sealed, "sealed message")
    if not isinstance(inner_bytes, bytes) or not isinstance(signature, bytes):
        raise MalformedMessage("sealed message fields have the wrong types")
    inner = InnerMessage.from_wire(unpack_strict(inner_bytes, "inner message"))

    def signed() -> bool:
        try:
            verify_signature(sender_identity_key, signature, MESSAGE_PURPOSE, inner_bytes)
        except BadSignature:
            return False
        return True

    own = (own_name, fingerprint_bytes(IdentityPublicKey(own_identity_key)))
    in_room = inner.head is not None
    checks: list[tuple[Callable[[], bool], type[CryptoError], str]] = [
        (
            lambda: inner.sender == relay_sender,
            SenderMismatch,
            f"relay says the message is from {relay_sender!r} but it is signed as from {inner.sender!r}",
        ),
        (signed, BadSignature, f"signature on a message from {relay_sender!r} does not verify"),
        (
            lambda: own not in inner.skipped if in_room else own in inner.to,
            NotAddressedToMe,
            f"room message from {relay_sender!r} says it skipped {own_name!r}"
            if in_room
            else f"message from {relay_sender!r} is not addressed to {own_name!r} under this identity",
        ),
    ]
    for passes, refusal, words in checks:
        if not passes():
            raise refusal(words)
    return OpenedMessage(inner=inner, counter=counter, digest=content_digest(inner_bytes))


# --- copies, right and wrong -----------------------------------------------------------

#: Any value msgpack can carry, as a field of a map that should have held something else.
VALUES: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.binary(max_size=40)
    | st.sampled_from(["main", "alice", "bob", "m1", "", "x" * 65]),
    lambda inside: st.lists(inside, max_size=3) | st.dictionaries(st.text(max_size=8), inside, max_size=3),
    max_leaves=6,
)

TO_ENTRIES = st.sampled_from(
    [["bob", BOB.fp], ["carol", CAROL.fp], ["bob", CAROL.fp], ["mallory", BOB.fp], ["bob", BOB.fp[:31]]]
)


def direct_inner() -> dict[str, Any]:
    return {
        "room": "main",
        "from": "alice",
        "sent_at": 1_732_000_000_000,
        "msg_id": "0123456789abcdef",
        "direct": False,
        "to": [["carol", CAROL.fp], ["bob", BOB.fp]],
        "body": "see you at nine",
    }


def room_inner() -> dict[str, Any]:
    inner = {k: v for k, v in direct_inner().items() if k != "to"}
    return {**inner, "room": "ops", "room_id": bytes(range(32)), "head": [3, bytes(32)], "skipped": []}


@st.composite
def inner_maps(draw: st.DrawFn) -> dict[str, Any]:
    inner: dict[str, Any] = draw(st.sampled_from([direct_inner, room_inner]))()
    for _ in range(draw(st.integers(0, 2))):
        change = draw(st.sampled_from(["value", "drop", "add", "to", "skipped", "direct"]))
        key = draw(st.sampled_from(sorted(inner) or ["body"]))
        if change == "value":
            inner[key] = draw(VALUES)
        elif change == "drop":
            inner.pop(key, None)
        elif change == "add":
            inner[draw(st.sampled_from(["to", "head", "skipped", "room_id", "extra"]))] = draw(VALUES)
        elif change in ("to", "skipped"):
            inner[change] = draw(st.lists(TO_ENTRIES, max_size=3))
        else:
            inner["direct"] = True
    return inner


def pack(value: Any) -> bytes:
    return bytes(msgpack.packb(value, use_bin_type=True))


def bin_header(length: int, width: int) -> bytes:
    """A msgpack bin header of ``width`` bytes of length (1, 2 or 4), shortest or not."""
    tag, fmt = {1: (0xC4, ">B"), 2: (0xC5, ">H"), 4: (0xC6, ">I")}[width]
    return bytes([tag]) + struct.pack(fmt, length)


@st.composite
def as_bin(draw: st.DrawFn, data: bytes, vary: bool) -> bytes:
    """``data`` as a msgpack bin with the shortest header; if ``vary``, a longer one, a str, or a
    header of the same size that is not a bin of this length."""
    if not vary:
        return pack(data)
    widths = [w for w in (1, 2, 4) if len(data) < 1 << (8 * w)]
    width = draw(st.sampled_from([*widths, 0, -1]))
    if width == -1:
        header = pack(data)[: len(pack(data)) - len(data)]
        tag = draw(st.sampled_from([0xD9, 0xDA, 0xDB, 0xC7, 0xC8, 0xC9, 0xDC, 0xDE, header[0]]))
        length = draw(st.sampled_from([len(data), len(data) - 1, len(data) + 1, 0]))
        return bytes([tag]) + (length % (1 << (8 * (len(header) - 1)))).to_bytes(len(header) - 1, "big") + data
    return bin_header(len(data), width) + data if width else pack(data.decode("latin-1"))


@st.composite
def pair_bytes(draw: st.DrawFn, head: bytes, second: bytes, vary: bool) -> bytes:
    """A msgpack array ``[head, second]`` (both packed), or if ``vary`` another shape or layout."""
    if not vary:
        return b"\x92" + head + second
    return draw(
        st.sampled_from(
            [
                b"\xdc\x00\x02" + head + second,
                b"\xdd\x00\x00\x00\x02" + head + second,
                b"\x91" + head,
                b"\x93" + head + second + second,
                b"\x92" + head + second + b"\x00",
                b"\x92" + head + second + b"\xc0\xc0",
                b"\x92" + head + second[:-1],
                b"\x81" + head + second,
                b"\x92" + head,
            ]
        )
    )


#: Counters in every msgpack form a reader might take for an integer in 1..2^63-1, and some it must not.
ODD_COUNTERS = [
    pack(v) for v in (0, -1, MAX_COUNTER, MAX_COUNTER + 1, 2**64 - 1, True, False, None, 1.0, "1", b"1", [1])
]
ODD_COUNTERS += [b"\xd3" + struct.pack(">q", 7), b"\xd0\x05", b"\xcc\x01", b"\xcf" + bytes(7) + b"\x01"]
ODD_COUNTERS += [b"\xc7\x00\x05", b"\xd4\x01\x01", b"\xc1", b"\xcf\x00", b"\x01\x01", b"\xcf" + bytes(8) + b"\x01"]
#: The unsigned forms read by index: each one byte short or long, and of every width.
ODD_COUNTERS += [
    b"\xcc",
    b"\xcd\x01",
    b"\xce\x00\x00\x01",
    b"\xcc\x01\x02",
    b"\xcd\x00\x01\x02",
    b"\xce" + bytes(4) + b"\x01",
]
ODD_COUNTERS += [
    b"\xcc\x00",
    b"\xcd\x00\x00",
    b"\xce" + bytes(4),
    b"\xcd\xff\xff",
    b"\xce\xff\xff\xff\xff",
    b"\x7f",
    b"\x80",
]
COUNTERS = st.one_of(
    st.sampled_from(ODD_COUNTERS),
    st.integers(-(2**63), 2**64 - 1).map(pack),
    st.binary(min_size=1, max_size=12),
)


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with one byte changed, or cut short, or a byte more."""
    if not data:
        return b"\x00"
    at = draw(st.integers(0, len(data) - 1))
    how = draw(st.sampled_from(["flip", "cut", "add"]))
    if how == "cut":
        return data[:at]
    if how == "add":
        return data[:at] + draw(st.binary(min_size=1, max_size=1)) + data[at:]
    return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]


@st.composite
def signatures(draw: st.DrawFn, inner_bytes: bytes, vary: bool) -> bytes:
    kind = draw(st.sampled_from(["other key", "other bytes", "short", "long", "random"])) if vary else "genuine"
    genuine = ALICE.ik.sign(MESSAGE_PURPOSE, inner_bytes)
    if kind == "other key":
        return CAROL.ik.sign(MESSAGE_PURPOSE, inner_bytes)
    if kind == "other bytes":
        return ALICE.ik.sign(MESSAGE_PURPOSE, inner_bytes + b"\x00")
    if kind == "short":
        return genuine[:63]
    if kind == "long":
        return genuine + b"\x00"
    return draw(st.binary(min_size=64, max_size=64)) if kind == "random" else genuine


#: Where a copy goes wrong, or is written unusually: none, one place, or several at once.
FAULTS = (
    "none",
    "inner map",
    "inner key twice",
    "inner bytes",
    "signature",
    "inner's bin",
    "signature's bin",
    "sealed pair",
    "sealed bytes",
    "sealed's bin",
    "counter",
    "envelope pair",
    "envelope bytes",
    "padding",
    "several",
)


@st.composite
def blocks(draw: st.DrawFn) -> bytes:
    """A padded plaintext as alice's client would seal it for bob, or wrong or unusual somewhere."""
    fault = draw(st.sampled_from(FAULTS))

    def at(place: str) -> bool:
        return fault == place or (fault == "several" and draw(st.booleans()))

    inner = draw(inner_maps()) if at("inner map") else draw(st.sampled_from([direct_inner, room_inner]))()
    inner_bytes = pack(inner)
    if at("inner key twice") and 0x80 <= inner_bytes[0] < 0x8F:  # a fixmap of one entry more
        inner_bytes = bytes([inner_bytes[0] + 1]) + inner_bytes[1:] + pack("body") + pack("another body")
    signature = draw(signatures(inner_bytes, at("signature")))
    if at("inner bytes"):
        inner_bytes = draw(mutated(inner_bytes))
    sealed = draw(
        pair_bytes(
            draw(as_bin(inner_bytes, at("inner's bin"))),
            draw(as_bin(signature, at("signature's bin"))),
            at("sealed pair"),
        )
    )
    if at("sealed bytes"):
        sealed = draw(mutated(sealed))
    counter = draw(COUNTERS) if at("counter") else pack(draw(st.integers(1, MAX_COUNTER)))
    envelope = draw(pair_bytes(draw(as_bin(sealed, at("sealed's bin"))), counter, at("envelope pair")))
    if at("envelope bytes"):
        envelope = draw(mutated(envelope))
    block = pad(envelope)
    if at("padding"):
        return draw(st.sampled_from([envelope, block[:-1] + b"\x01", block[:3], b"\xff" * 4 + block[4:]]))
    return block


RIGHT_RECEIVER: dict[str, Any] = {
    "relay_sender": "alice",
    "sender_identity_key": ALICE.ik.public,
    "own_name": "bob",
    "own_identity_key": BOB.ik.public,
}
#: The receiving side: right, or one thing wrong, or several.
WRONG_RECEIVERS = [
    {**RIGHT_RECEIVER, "relay_sender": "mallory"},
    {**RIGHT_RECEIVER, "relay_sender": "bob"},
    {**RIGHT_RECEIVER, "sender_identity_key": CAROL.ik.public},
    {**RIGHT_RECEIVER, "sender_identity_key": b"\x00" * 31},
    {**RIGHT_RECEIVER, "own_name": "carol"},
    {**RIGHT_RECEIVER, "own_name": "mallory"},
    {**RIGHT_RECEIVER, "own_identity_key": CAROL.ik.public},
    {**RIGHT_RECEIVER, "own_name": "carol", "own_identity_key": CAROL.ik.public},
]
RECEIVERS = st.one_of(
    st.just(RIGHT_RECEIVER),
    st.sampled_from(WRONG_RECEIVERS),
    st.fixed_dictionaries(
        {
            "relay_sender": st.sampled_from(["alice", "mallory", "bob"]),
            "sender_identity_key": st.sampled_from([ALICE.ik.public, CAROL.ik.public, b"\x00" * 31]),
            "own_name": st.sampled_from(["bob", "carol", "mallory"]),
            "own_identity_key": st.sampled_from([BOB.ik.public, CAROL.ik.public]),
        }
    ),
)


def outcome(open_: Any, *args: Any, **kwargs: Any) -> tuple[str, str] | OpenedMessage:
    try:
        return open_(*args, **kwargs)  # type: ignore[no-any-return]
    except CryptoError as exc:
        return type(exc).__name__, str(exc)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(block=blocks(), receiver=RECEIVERS, ciphertext_flip=st.sampled_from([-1] * 9 + [0, 30, 60]))
def test_open_message_decides_as_the_straightforward_path(
    block: bytes, receiver: dict[str, Any], ciphertext_flip: int
) -> None:
    ciphertext = bytes(ALICE_TO_BOB.encrypt(block))
    if 0 <= ciphertext_flip < len(ciphertext):  # the Box refuses it, as it must
        ciphertext = (
            ciphertext[:ciphertext_flip] + bytes([ciphertext[ciphertext_flip] ^ 1]) + ciphertext[ciphertext_flip + 1 :]
        )
    new = outcome(open_message, boxes=BOB_BOXES, ciphertext=ciphertext, sender_session_key=ALICE.sk.public, **receiver)
    try:
        opened_block = ALICE_TO_BOB.decrypt(ciphertext)
    except nacl.exceptions.CryptoError:
        assert isinstance(new, tuple) and new[0] == DecryptFailed.__name__
        return
    assert new == outcome(straightforward_open, opened_block, **receiver)


def test_the_copies_drawn_reach_every_check() -> None:
    """The strategy is worth its examples only if valid copies and each refusal come up."""
    seen: set[str] = set()

    @settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
    @given(block=blocks(), receiver=RECEIVERS)
    def sample(block: bytes, receiver: dict[str, Any]) -> None:
        result = outcome(straightforward_open, block, **receiver)
        seen.add("opened" if isinstance(result, OpenedMessage) else result[0])

    sample()
    assert seen >= {"opened", "MalformedMessage", "SenderMismatch", "BadSignature", "NotAddressedToMe"}


def test_the_layouts_read_directly_are_the_sealer_s() -> None:
    """A copy from ``seal_message``'s own helpers opens, and so does each unusual but valid layout."""
    inner_bytes = pack(direct_inner())
    signature = ALICE.ik.sign(MESSAGE_PURPOSE, inner_bytes)
    for sealed in (
        b"\x92" + pack(inner_bytes) + pack(signature),
        b"\x92" + bin_header(len(inner_bytes), 2) + inner_bytes + pack(signature),
        b"\xdc\x00\x02" + pack(inner_bytes) + bin_header(64, 4) + signature,
    ):
        for envelope in (
            b"\x92" + pack(sealed) + pack(7),
            b"\x92" + bin_header(len(sealed), 4) + sealed + b"\xd3" + struct.pack(">q", 7),
        ):
            opened = open_message(
                boxes=BOB_BOXES,
                ciphertext=bytes(ALICE_TO_BOB.encrypt(pad(envelope))),
                sender_session_key=ALICE.sk.public,
                **RIGHT_RECEIVER,
            )
            assert (opened.counter, opened.inner.body) == (7, "see you at nine")


def test_no_parse_of_more_than_the_container_budget_goes_uncounted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading a layer directly must not parse what follows it without the container budget (decision 12):
    an envelope whose counter is 2 KiB of nested arrays is counted, as every parse of more than the budget."""
    calls: list[tuple[int, bool]] = []
    unpackb = msgpack.unpackb

    def counted(data: bytes, **options: Any) -> Any:
        calls.append((len(data), "list_hook" in options))
        return unpackb(data, **options)

    monkeypatch.setattr(msgpack, "unpackb", counted)
    sealed = b"\x92" + pack(pack(direct_inner())) + pack(ALICE.ik.sign(MESSAGE_PURPOSE, pack(direct_inner())))
    arrays = b"\xdc\x04\x00" + b"\x91\x90" * 1024  # 2,048 lists in 2 KiB
    result = outcome(
        open_message,
        boxes=BOB_BOXES,
        ciphertext=bytes(ALICE_TO_BOB.encrypt(pad(b"\x92" + pack(sealed) + arrays))),
        sender_session_key=ALICE.sk.public,
        **RIGHT_RECEIVER,
    )
    assert isinstance(result, tuple) and result[0] == "MalformedMessage"
    assert calls and all(counted or size <= _MAX_CONTAINERS for size, counted in calls), calls


@pytest.mark.parametrize("cut", range(0, 80))
def test_a_copy_cut_short_without_padding_decides_as_the_straightforward_path(cut: int) -> None:
    """The direct reading reads the layout's headers by index in the padded block: a plaintext
    shorter than the shortest layout, with no padding after it (so the block ends where it does),
    must be refused in the general parser's words, not raise IndexError."""
    inner_bytes = pack(direct_inner())
    envelope = b"\x92" + pack(b"\x92" + pack(inner_bytes) + pack(ALICE.ik.sign(MESSAGE_PURPOSE, inner_bytes))) + pack(7)
    block = struct.pack(">I", cut) + envelope[:cut]
    new = outcome(
        open_message,
        boxes=BOB_BOXES,
        ciphertext=bytes(ALICE_TO_BOB.encrypt(block)),
        sender_session_key=ALICE.sk.public,
        **RIGHT_RECEIVER,
    )
    assert new == outcome(straightforward_open, block, **RIGHT_RECEIVER)


@pytest.mark.parametrize(
    "counter", [*ODD_COUNTERS, *(pack(v) for v in (1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32))]
)
def test_every_counter_form_decides_as_the_straightforward_path(counter: bytes) -> None:
    """A counter of up to four bytes is read by index in the sealer's layout: every form, and each
    one cut short or one byte long, gives what msgpack's reading gives."""
    inner_bytes = pack(direct_inner())
    sealed = b"\x92" + pack(inner_bytes) + pack(ALICE.ik.sign(MESSAGE_PURPOSE, inner_bytes))
    block = pad(b"\x92" + pack(sealed) + counter)
    new = outcome(
        open_message,
        boxes=BOB_BOXES,
        ciphertext=bytes(ALICE_TO_BOB.encrypt(block)),
        sender_session_key=ALICE.sk.public,
        **RIGHT_RECEIVER,
    )
    assert new == outcome(straightforward_open, block, **RIGHT_RECEIVER)
