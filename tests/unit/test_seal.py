"""Sealing a message for many recipients and opening it, with every check that can fail."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, dataclass, field, fields
from typing import Any

import msgpack
import nacl.public
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from susurro.crypto import (
    MAX_BODY_BYTES,
    MESSAGE_PURPOSE,
    BadSignature,
    BoxCache,
    DecryptFailed,
    IdentityKey,
    MalformedMessage,
    MessageTooLarge,
    NotAddressedToMe,
    OpenedMessage,
    Recipient,
    SenderMismatch,
    SessionKey,
    fingerprint_bytes,
    open_message,
    pad,
    padded_length,
    seal_message,
)
from susurro.crypto.limits import MSG_ID_ALPHABET
from susurro.crypto.padding import MIN_PADDED
from susurro.crypto.seal import MAX_COUNTER, InnerMessage

T0 = 1_700_000_000
BOX_OVERHEAD = nacl.public.Box.NONCE_SIZE + 16  # nonce + Poly1305 tag


@dataclass
class Party:
    name: str
    ik: IdentityKey = field(default_factory=IdentityKey.generate)
    sk: SessionKey = field(default_factory=SessionKey.generate)
    boxes: BoxCache = field(init=False)

    def __post_init__(self) -> None:
        self.boxes = BoxCache(self.sk)

    def recipient(self, counter: int = 1) -> Recipient:
        return Recipient(name=self.name, identity_key=self.ik.public, session_key=self.sk.public, counter=counter)


ALICE, BOB, CAROL, MALLORY = Party("alice"), Party("bob"), Party("carol"), Party("mallory")


def seal(
    sender: Party = ALICE,
    recipients: list[Party] | None = None,
    body: str = "hello",
    msg_id: str = "m1",
    **kwargs: Any,
) -> dict[str, bytes]:
    recipients = [BOB] if recipients is None else recipients
    return seal_message(
        identity=sender.ik,
        boxes=sender.boxes,
        sender=sender.name,
        recipients=[r.recipient() for r in recipients],
        body=body,
        msg_id=msg_id,
        sent_at=T0,
        **kwargs,
    )


def open_as(receiver: Party, ciphertext: bytes, sender: Party = ALICE, **overrides: Any) -> OpenedMessage:
    arguments: dict[str, Any] = {
        "boxes": receiver.boxes,
        "ciphertext": ciphertext,
        "relay_sender": sender.name,
        "sender_identity_key": sender.ik.public,
        "sender_session_key": sender.sk.public,
        "own_name": receiver.name,
        "own_identity_key": receiver.ik.public,
    }
    arguments.update(overrides)
    return open_message(**arguments)


def flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


# --- round trips -------------------------------------------------------------


def test_one_recipient_round_trip() -> None:
    ct = seal(body="hi bob", direct=True)
    assert set(ct) == {"bob"}
    opened = open_as(BOB, ct["bob"])
    assert opened.counter == 1
    inner = opened.inner
    assert inner.body == "hi bob"
    assert inner.sender == "alice"
    assert inner.room == "main"
    assert inner.direct is True
    assert inner.sent_at == T0
    assert inner.msg_id == "m1"
    assert inner.to == (("bob", fingerprint_bytes(BOB.ik.public)),)
    assert inner.recipient_names == ("bob",)


def test_counter_is_carried_per_recipient() -> None:
    ct = seal_message(
        identity=ALICE.ik,
        boxes=ALICE.boxes,
        sender="alice",
        recipients=[BOB.recipient(counter=7), CAROL.recipient(counter=MAX_COUNTER)],
        body="x",
        msg_id="m-counter",
        sent_at=T0,
    )
    assert open_as(BOB, ct["bob"]).counter == 7
    assert open_as(CAROL, ct["carol"]).counter == MAX_COUNTER


def test_each_seal_uses_a_fresh_nonce() -> None:
    first, second = seal()["bob"], seal()["bob"]
    assert first != second
    assert first[:24] != second[:24]
    assert open_as(BOB, first).inner == open_as(BOB, second).inner


def test_body_of_exactly_max_bytes_round_trips() -> None:
    body = "é" * (MAX_BODY_BYTES // 2)  # two UTF-8 bytes each
    assert len(body.encode()) == MAX_BODY_BYTES
    assert open_as(BOB, seal(body=body)["bob"]).inner.body == body


@settings(max_examples=25, deadline=None)
@given(
    count=st.integers(1, 50),
    body=st.text(max_size=300),
    msg_id=st.text(alphabet=sorted(MSG_ID_ALPHABET), min_size=1, max_size=64),
    direct=st.booleans(),
)
def test_every_recipient_opens_the_same_inner(count: int, body: str, msg_id: str, direct: bool) -> None:
    sender = Party("sender")
    recipients = [Party(f"user{i}") for i in range(count)]
    direct = direct and count == 1  # a direct message has one recipient
    cts = seal(sender, recipients, body=body, msg_id=msg_id, direct=direct)
    assert sorted(cts) == sorted(r.name for r in recipients)
    expected_to = tuple((r.name, fingerprint_bytes(r.ik.public)) for r in recipients)
    inners = set()
    for r in recipients:
        opened = open_as(r, cts[r.name], sender=sender)
        assert opened.counter == 1
        assert opened.inner.body == body
        assert opened.inner.msg_id == msg_id
        assert opened.inner.room == "main"
        assert opened.inner.direct is direct
        assert opened.inner.to == expected_to
        inners.add(opened.inner)
    assert len(inners) == 1  # identical signed content for everyone
    assert len(set(cts.values())) == count  # but a distinct ciphertext each


# --- tampering and wrong keys ------------------------------------------------

CT = seal(body="tamper with me")["bob"]


@settings(max_examples=50, deadline=None)
@given(bit=st.integers(0, len(CT) * 8 - 1))
def test_any_flipped_bit_fails_to_decrypt(bit: int) -> None:
    with pytest.raises(DecryptFailed):
        open_as(BOB, flip(CT, bit))


@pytest.mark.parametrize(
    "ciphertext",
    [b"", CT[:24], CT[:39], CT[:-1], CT + b"\x00", CT[24:]],
    ids=["empty", "nonce only", "39 bytes", "one short", "one long", "no nonce"],
)
def test_truncated_or_extended_ciphertext_fails_to_decrypt(ciphertext: bytes) -> None:
    with pytest.raises(DecryptFailed):
        open_as(BOB, ciphertext)


def test_wrong_recipient_cannot_decrypt() -> None:
    with pytest.raises(DecryptFailed):
        open_as(CAROL, CT)


def test_wrong_sender_session_key_cannot_decrypt() -> None:
    with pytest.raises(DecryptFailed):
        open_as(BOB, CT, sender_session_key=MALLORY.sk.public)


def test_signed_by_another_identity_than_claimed() -> None:
    # Sealed and signed by alice's identity key, but bob has pinned mallory's key for alice.
    with pytest.raises(BadSignature):
        open_as(BOB, CT, sender_identity_key=MALLORY.ik.public)


def test_forged_message_with_session_key_but_not_identity_key() -> None:
    # Mallory holds alice's session key (e.g. a relay that issued it) but signs with her own identity.
    forged = seal_message(
        identity=MALLORY.ik,
        boxes=ALICE.boxes,
        sender="alice",
        recipients=[BOB.recipient()],
        body="send money",
        msg_id="m-forged",
        sent_at=T0,
    )["bob"]
    with pytest.raises(BadSignature):
        open_as(BOB, forged)


def test_relay_sender_differs_from_signed_sender() -> None:
    with pytest.raises(SenderMismatch):
        open_as(BOB, CT, relay_sender="carol")


def test_reflection_attack_is_sender_mismatch() -> None:
    # The relay hands alice her own ciphertext for bob, claiming it comes from bob.
    # Box(SK_alice, SK_bob) is symmetric, so it decrypts; the signed sender gives it away.
    with pytest.raises(SenderMismatch):
        open_as(ALICE, CT, sender=BOB)


def test_own_identity_key_missing_from_to() -> None:
    with pytest.raises(NotAddressedToMe):
        open_as(BOB, CT, own_identity_key=MALLORY.ik.public)


def test_own_name_missing_from_to() -> None:
    with pytest.raises(NotAddressedToMe):
        open_as(BOB, CT, own_name="bobby")


def test_encrypted_to_me_but_signed_for_someone_else() -> None:
    # A ciphertext under bob's session key whose signed recipient list names only carol.
    misaddressed = seal_message(
        identity=ALICE.ik,
        boxes=ALICE.boxes,
        sender="alice",
        recipients=[Recipient(name="carol", identity_key=CAROL.ik.public, session_key=BOB.sk.public, counter=1)],
        body="for carol",
        msg_id="m-mis",
        sent_at=T0,
    )["carol"]
    with pytest.raises(NotAddressedToMe):
        open_as(BOB, misaddressed)


def test_name_listed_with_another_identity_key() -> None:
    # bob is named, but with mallory's key: bob must not accept it as addressed to him.
    ct = seal_message(
        identity=ALICE.ik,
        boxes=ALICE.boxes,
        sender="alice",
        recipients=[Recipient(name="bob", identity_key=MALLORY.ik.public, session_key=BOB.sk.public, counter=1)],
        body="x",
        msg_id="m-other-key",
        sent_at=T0,
    )["bob"]
    with pytest.raises(NotAddressedToMe):
        open_as(BOB, ct)


# --- sealing refusals --------------------------------------------------------


def test_body_over_max_bytes_is_too_large() -> None:
    with pytest.raises(MessageTooLarge):
        seal(body="x" * (MAX_BODY_BYTES + 1))


def test_body_limit_counts_utf8_bytes_not_characters() -> None:
    body = "é" * (MAX_BODY_BYTES // 2 + 1)
    assert len(body) < MAX_BODY_BYTES
    with pytest.raises(MessageTooLarge):
        seal(body=body)


def test_body_with_a_lone_surrogate_is_refused() -> None:
    with pytest.raises(MalformedMessage):
        seal(body="hi \ud800")


def test_seal_needs_a_recipient() -> None:
    with pytest.raises(ValueError, match="recipient"):
        seal(recipients=[])


@pytest.mark.parametrize("counter", [0, -1, MAX_COUNTER + 1])
def test_seal_refuses_counters_out_of_range(counter: int) -> None:
    with pytest.raises(ValueError, match="counter"):
        seal_message(
            identity=ALICE.ik,
            boxes=ALICE.boxes,
            sender="alice",
            recipients=[BOB.recipient(counter=counter)],
            body="x",
            msg_id="m",
            sent_at=T0,
        )


# --- malformed plaintexts inside a genuine Box ---------------------------------


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def inner_map(**changes: Any) -> dict[str, Any]:
    inner: dict[str, Any] = {
        "room": "main",
        "from": "alice",
        "sent_at": T0,
        "msg_id": "m-hand",
        "direct": False,
        "to": [["bob", fingerprint_bytes(BOB.ik.public)]],
        "body": "handmade",
    }
    inner.update(changes)
    return inner


def _room_inner_map() -> dict[str, Any]:
    """A room message's inner: a signed head and the skipped list instead of ``to``."""
    inner = {k: v for k, v in inner_map().items() if k != "to"}
    return {**inner, "room_id": bytes(32), "head": [1, bytes(32)], "skipped": []}


def sealed_from(inner: Any) -> bytes:
    return sealed_from_bytes(pack(inner))


def sealed_from_bytes(inner_bytes: bytes) -> bytes:
    """A sealed pair with alice's genuine signature over exactly these inner bytes."""
    return pack([inner_bytes, ALICE.ik.sign(MESSAGE_PURPOSE, inner_bytes)])


def _inner_with_duplicate_body() -> bytes:
    packed = pack(inner_map())
    assert packed[0] == 0x87  # fixmap of 7 entries
    return b"\x88" + packed[1:] + pack("body") + pack("a different body")


def envelope(inner: Any = None, counter: Any = 1) -> bytes:
    return pack([sealed_from(inner_map() if inner is None else inner), counter])


def box_to_bob(block: bytes) -> bytes:
    """Encrypt an arbitrary block exactly as alice's client would, with the real pairwise Box."""
    return bytes(ALICE.boxes.box_for(BOB.sk.public).encrypt(block))


def test_hand_built_message_opens() -> None:
    # The control case: the helpers build a valid message, so each malformed case below fails for one reason.
    opened = open_as(BOB, box_to_bob(pad(envelope(counter=3))))
    assert opened.counter == 3
    assert opened.inner.body == "handmade"


def _bad_padding() -> bytes:
    block = bytearray(pad(envelope()))
    block[-1] = 1
    return bytes(block)


def _length_past_end() -> bytes:
    block = bytearray(pad(envelope()))
    block[:4] = (len(block)).to_bytes(4, "big")
    return bytes(block)


MALFORMED_BLOCKS: dict[str, bytes] = {
    "empty block": b"",
    "block shorter than its length": b"\x00\x00\x00",
    "nonzero padding": _bad_padding(),
    "length past end": _length_past_end(),
    "not msgpack": pad(b"\xc1"),
    "truncated msgpack": pad(envelope()[:-1]),
    "trailing bytes": pad(envelope() + b"\x00"),
    "envelope is a map": pad(pack({"sealed": sealed_from(inner_map()), "n": 1})),
    "envelope of one": pad(pack([sealed_from(inner_map())])),
    "envelope of three": pad(pack([sealed_from(inner_map()), 1, 1])),
    "sealed is str": pad(pack(["sealed", 1])),
    "counter is str": pad(envelope(counter="1")),
    "counter is float": pad(envelope(counter=1.0)),
    "counter is nil": pad(envelope(counter=None)),
    "counter 0": pad(envelope(counter=0)),
    "counter negative": pad(envelope(counter=-1)),
    "counter over max": pad(envelope(counter=MAX_COUNTER + 1)),
    "counter True": pad(envelope(counter=True)),
    "ext type in envelope": pad(pack([sealed_from(inner_map()), msgpack.ExtType(1, b"x")])),
    "sealed not a pair": pad(pack([pack([pack(inner_map())]), 1])),
    "sealed not msgpack": pad(pack([b"\xc1", 1])),
    "signature is str": pad(pack([pack([pack(inner_map()), "sig"]), 1])),
    "inner bytes not msgpack": pad(pack([pack([b"\xc1", bytes(64)]), 1])),
    "inner is a list": pad(pack([sealed_from(list(inner_map().values())), 1])),
    "inner missing body": pad(envelope({k: v for k, v in inner_map().items() if k != "body"})),
    "inner missing from": pad(envelope({k: v for k, v in inner_map().items() if k != "from"})),
    "inner missing to": pad(envelope({k: v for k, v in inner_map().items() if k != "to"})),
    "inner int key": pad(envelope({**inner_map(), 1: 2})),
    # Each form has exactly its keys (spec review S4, finding 17): readers would file a mixed map differently.
    "direct inner with a head": pad(envelope(inner_map(head=[1, bytes(32)]))),
    "direct inner with skipped": pad(envelope(inner_map(skipped=[]))),
    "direct inner with an unknown key": pad(envelope(inner_map(extra=1))),
    "room inner with to": pad(envelope({**_room_inner_map(), "to": inner_map()["to"]})),
    "room inner without skipped": pad(envelope({k: v for k, v in _room_inner_map().items() if k != "skipped"})),
    "room inner with an unknown key": pad(envelope({**_room_inner_map(), "extra": 1})),
    "sent_at bool": pad(envelope(inner_map(sent_at=True))),
    "sent_at negative": pad(envelope(inner_map(sent_at=-1))),
    "sent_at str": pad(envelope(inner_map(sent_at="now"))),
    "direct int": pad(envelope(inner_map(direct=1))),
    "from empty": pad(envelope(inner_map(**{"from": ""}))),
    "from bin": pad(envelope(inner_map(**{"from": b"alice"}))),
    "msg_id empty": pad(envelope(inner_map(msg_id=""))),
    "msg_id oversize": pad(envelope(inner_map(msg_id="m" * 65))),
    "msg_id with a bidi control": pad(envelope(inner_map(msg_id="m1\u202e"))),
    "msg_id with a newline": pad(envelope(inner_map(msg_id="m1\nforged line"))),
    "room oversize": pad(envelope(inner_map(room="r" * 65))),
    "body bin": pad(envelope(inner_map(body=b"hi"))),
    "body oversize": pad(envelope(inner_map(body="x" * (MAX_BODY_BYTES + 1)))),
    "to empty": pad(envelope(inner_map(to=[]))),
    "to a map": pad(envelope(inner_map(to={"bob": fingerprint_bytes(BOB.ik.public)}))),
    "to entry of three": pad(envelope(inner_map(to=[["bob", fingerprint_bytes(BOB.ik.public), 1]]))),
    "to entry str": pad(envelope(inner_map(to=["bob"]))),
    "to fingerprint 31 bytes": pad(envelope(inner_map(to=[["bob", fingerprint_bytes(BOB.ik.public)[:31]]]))),
    "to fingerprint str": pad(envelope(inner_map(to=[["bob", "f" * 32]]))),
    "to name empty": pad(envelope(inner_map(to=[["", fingerprint_bytes(BOB.ik.public)]]))),
    "inner bin key": pad(envelope({**inner_map(), b"extra": 1})),
    "inner duplicate key": pad(pack([sealed_from_bytes(_inner_with_duplicate_body()), 1])),
    "zero-length ext counter": pad(b"\x92" + pack(sealed_from(inner_map())) + b"\xc7\x00\x05"),
    "zero-length ext in inner": pad(envelope({**inner_map(), "x": msgpack.ExtType(5, b"")})),
}


@pytest.mark.parametrize("block", list(MALFORMED_BLOCKS.values()), ids=list(MALFORMED_BLOCKS))
def test_malformed_plaintext_is_malformed_message(block: bytes) -> None:
    with pytest.raises(MalformedMessage):
        open_as(BOB, box_to_bob(block))


TWO_TO = [["bob", fingerprint_bytes(BOB.ik.public)], ["carol", fingerprint_bytes(CAROL.ik.public)]]


@settings(max_examples=60, deadline=None)
@given(room=st.text(max_size=64).filter(lambda room: room != "main"), direct=st.booleans())
def test_a_message_in_the_to_form_is_to_the_main_room_whatever_else_it_names(room: str, direct: bool) -> None:
    # A receiver filing by ``room`` would show an outsider's "ops" message in room ops, past its checks.
    with pytest.raises(MalformedMessage):
        open_as(BOB, box_to_bob(pad(envelope(inner_map(room=room, direct=direct)))))


@settings(max_examples=20, deadline=None)
@given(extra=st.integers(1, 20))
def test_a_direct_message_names_exactly_one_recipient(extra: int) -> None:
    to = [*TWO_TO, *([n, bytes(32)] for n in (f"u{i}" for i in range(extra - 1)))]
    with pytest.raises(MalformedMessage):
        open_as(BOB, box_to_bob(pad(envelope(inner_map(direct=True, to=to)))))
    assert open_as(BOB, box_to_bob(pad(envelope(inner_map(to=to))))).inner.to[0][0] == "bob"  # relay-wide: any number
    with pytest.raises(ValueError):
        seal(recipients=[BOB, CAROL], direct=True)
    with pytest.raises(ValueError):
        seal(room="ops")


def test_unpadded_envelope_is_malformed() -> None:
    # Without the length header the first bytes are read as a huge length.
    with pytest.raises(MalformedMessage):
        open_as(BOB, box_to_bob(envelope() + bytes(300)))


# --- sizes -------------------------------------------------------------------


def test_short_bodies_share_one_ciphertext_length() -> None:
    lengths = {len(seal(body="x" * n)["bob"]) for n in range(1, 65)}
    assert lengths == {MIN_PADDED + BOX_OVERHEAD}


def test_ciphertext_lengths_of_1_and_200_byte_bodies() -> None:
    # Padmé hides the exact size inside a bucket. Note: the 256-byte minimum bucket covers the whole
    # envelope (~170 bytes of signature, fingerprint and framing), so a 200-byte body lands one bucket up.
    short, longer = len(seal(body="a")["bob"]), len(seal(body="b" * 200)["bob"])
    assert short == MIN_PADDED + BOX_OVERHEAD
    assert longer > short
    assert padded_length(longer - BOX_OVERHEAD) == longer - BOX_OVERHEAD


@pytest.mark.parametrize("size", [1, 100, 200, 1000, 5000, MAX_BODY_BYTES])
def test_plaintext_block_is_always_a_padding_bucket(size: int) -> None:
    block_length = len(seal(body="z" * size)["bob"]) - BOX_OVERHEAD
    assert padded_length(block_length) == block_length
    assert block_length >= MIN_PADDED


def test_bodies_in_the_same_bucket_have_the_same_length() -> None:
    base = len(seal(body="q" * 1000)["bob"])
    same = [n for n in range(900, 1100) if len(seal(body="q" * n)["bob"]) == base]
    assert len(same) > 1
    assert 1000 in same


# --- Box cache ---------------------------------------------------------------


def test_box_cache_reuses_one_box_per_peer() -> None:
    cache = BoxCache(SessionKey.generate())
    peer = SessionKey.generate().public
    box = cache.box_for(peer)
    assert cache.box_for(peer) is box
    cache.forget(peer)
    assert cache.box_for(peer) is not box


def test_box_cache_is_bounded() -> None:
    cache = BoxCache(SessionKey.generate(), max_entries=2)
    peers = [SessionKey.generate().public for _ in range(3)]
    first = cache.box_for(peers[0])
    second = cache.box_for(peers[1])
    cache.box_for(peers[2])
    assert len(cache._boxes) == 2
    assert cache.box_for(peers[1]) is second, "past the bound only the oldest Box goes, not every one"
    assert cache.box_for(peers[0]) is not first


def test_each_field_of_an_opened_inner_is_the_one_sent() -> None:
    # Written out by hand, not rebuilt from the opened object: a setter bound to the wrong field
    # (the fields reordered) would swap two values here.
    opened = open_as(BOB, box_to_bob(pad(envelope(inner_map()))))
    expected = InnerMessage(
        room="main",
        sender="alice",
        sent_at=T0,
        msg_id="m-hand",
        direct=False,
        to=(("bob", fingerprint_bytes(BOB.ik.public)),),
        body="handmade",
    )
    assert opened.inner == expected
    assert (opened.inner.body, opened.inner.msg_id, opened.inner.sender) == ("handmade", "m-hand", "alice")


def test_an_opened_inner_is_the_dataclass_s_own_object() -> None:
    # from_wire and open_block build the checked fields through the slots' setters, not __init__:
    # the result must be indistinguishable from it, every field set, and still frozen.
    for inner in (inner_map(), _room_inner_map()):
        opened = open_as(BOB, box_to_bob(pad(envelope(inner))))
        built = InnerMessage(**{f.name: getattr(opened.inner, f.name) for f in fields(InnerMessage)})
        assert opened.inner == built and hash(opened.inner) == hash(built)
        assert type(opened.inner) is InnerMessage
        with pytest.raises(FrozenInstanceError):
            opened.inner.body = "changed"  # type: ignore[misc]
        # The same for the OpenedMessage around it.
        again = OpenedMessage(**{f.name: getattr(opened, f.name) for f in fields(OpenedMessage)})
        assert opened == again and hash(opened) == hash(again) and type(opened) is OpenedMessage
        with pytest.raises(FrozenInstanceError):
            opened.counter = 2  # type: ignore[misc]


class _EntryThatRaises:
    """Not a msgpack value: iterating it raises what no ``to`` check expects."""

    def __iter__(self) -> Any:
        raise RuntimeError("iterated")


def test_a_to_entry_that_is_not_an_array_is_malformed_before_it_is_unpacked() -> None:
    with pytest.raises(MalformedMessage, match="to entry"):
        InnerMessage.from_wire(inner_map(to=[_EntryThatRaises()]))
