"""The relay's fast path keeps its meaning: batched writes, one-pass deliver
packing, bulk validation and exact-name lookup behave like the slow forms.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping
from types import MappingProxyType

import msgpack
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from susurro.protocol import (
    CLIENT_FRAMES,
    Ack,
    Deliver,
    DeliverEncoder,
    LocalProtocolError,
    Member,
    Send,
    Welcome,
    decode_frame,
    encode,
    encode_ack,
    encode_welcome,
)
from susurro.protocol.fastpath import (
    array_header,
    bin_header,
    encode_ack_packed,
    packed_names,
    packed_str,
    send_fields_ok,
)
from susurro.protocol.frames import _MSG_ID_CHARS, MAX_RAW_NAME_CHARS, _check_msg_id, packed_member
from susurro.protocol.framing import pack_payload
from susurro.protocol.limits import ABSOLUTE_MAX_FRAME, MAX_MAP_LEN, MAX_ROSTER, PROTOCOL_VERSION
from susurro.relay import Roster
from susurro.relay.roster import NameTaken

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
    expected = encode(Deliver(sender=sender, id=msg_id, ct=ct), max_frame=ABSOLUTE_MAX_FRAME)
    assert encoder.frame(ct) == expected
    send = Send(id=msg_id, to={"bob": ct})
    assert DeliverEncoder.for_send(sender, send, max_frame=ABSOLUTE_MAX_FRAME).frame(ct) == expected


def test_deliver_encoder_checks_what_deliver_checks() -> None:
    with pytest.raises(LocalProtocolError):
        DeliverEncoder("alice", "not a token!")
    with pytest.raises(LocalProtocolError):
        DeliverEncoder("", "m1")
    with pytest.raises(LocalProtocolError):
        DeliverEncoder.for_send("", Send(id="m1", to={"bob": b"x"}))  # the send's id is checked; the sender still is
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


@given(sizes=st.lists(st.sampled_from([1, 2, 255, 256, 300, 65535, 65536]), min_size=1, max_size=12))
def test_deliver_encoder_frames_each_copy_by_its_own_size_in_any_order(sizes: list[int]) -> None:
    # The last size's prefix is kept: a copy of another size between two of one size
    # must still get its own length and bin header, and the next one theirs.
    encoder = DeliverEncoder("alice", "m1", max_frame=ABSOLUTE_MAX_FRAME)
    for n, size in enumerate(sizes):
        ct = bytes([n % 256]) * size
        assert encoder.frame(ct) == encode(Deliver(sender="alice", id="m1", ct=ct), max_frame=ABSOLUTE_MAX_FRAME)


def test_deliver_encoder_refuses_an_empty_or_oversized_copy_after_a_cached_one() -> None:
    encoder = DeliverEncoder("alice", "m1", max_frame=4096)
    encoder.frame(b"x" * 300)
    for ct in (b"", b"", b"x" * 5000, b"x" * 5000):  # twice in a row: a refused size is never the kept one
        with pytest.raises(LocalProtocolError):
            encoder.frame(ct)
    assert encoder.frame(b"z" * 300) == encode(Deliver(sender="alice", id="m1", ct=b"z" * 300), max_frame=4096)


NAMES = st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=128), max_size=40)


@given(msg_id=TOKEN, delivered=NAMES, missing=NAMES)
def test_encode_ack_is_byte_identical_to_encode(msg_id: str, delivered: list[str], missing: list[str]) -> None:
    expected = encode(Ack(id=msg_id, delivered=tuple(delivered), missing=tuple(missing)), max_frame=ABSOLUTE_MAX_FRAME)
    assert encode_ack(msg_id, delivered, missing, max_frame=ABSOLUTE_MAX_FRAME) == expected
    packed = packed_names(delivered)  # the relay's run packs a list once for several acks
    assert encode_ack_packed(msg_id, packed, missing, max_frame=ABSOLUTE_MAX_FRAME) == expected


def test_encode_ack_after_a_refused_name_packs_the_next_ack_whole() -> None:
    # The name lists go through a Packer each thread keeps (not one packb per list): a list
    # it refused half-way must leave nothing behind in it for the next ack.
    with pytest.raises(LocalProtocolError, match="lone surrogate"):
        encode_ack("a1", ["alice", "bob\udc80"], [], max_frame=ABSOLUTE_MAX_FRAME)
    with pytest.raises(LocalProtocolError, match="lone surrogate"):
        encode_ack("a2", ["alice"], ["carol\ud800"], max_frame=ABSOLUTE_MAX_FRAME)
    expected = encode(Ack(id="a3", delivered=("dave",), missing=("erin",)), max_frame=ABSOLUTE_MAX_FRAME)
    assert encode_ack("a3", ["dave"], ["erin"], max_frame=ABSOLUTE_MAX_FRAME) == expected
    # A tuple, as a caller other than the core may hand it, packs as the list does.
    assert encode_ack("a3", ("dave",), ("erin",), max_frame=ABSOLUTE_MAX_FRAME) == expected


def test_encode_ack_from_several_threads_at_once_is_byte_identical() -> None:
    # The relay's I/O threads all ack: each packs with its own Packer.
    cases = [(f"t{i}", [f"m{j}" for j in range(i % 12)], [f"x{i}"] * (i % 3)) for i in range(64)]
    expected = [
        encode(Ack(id=i, delivered=tuple(d), missing=tuple(m)), max_frame=ABSOLUTE_MAX_FRAME) for i, d, m in cases
    ]
    wrong: list[int] = []

    def ack_all() -> None:
        for _ in range(200):
            for k, (i, d, m) in enumerate(cases):
                if encode_ack(i, d, m, max_frame=ABSOLUTE_MAX_FRAME) != expected[k]:
                    wrong.append(k)

    threads = [threading.Thread(target=ack_all) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    assert wrong == []


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


def _checked_one_by_one(msg_id: object, to: object) -> bool:
    """Send's rules spelled out entry by entry, as the slow path applies them."""
    try:
        _check_msg_id(msg_id)
    except LocalProtocolError:
        return False
    if not isinstance(to, dict) or not 0 < len(to) <= MAX_MAP_LEN:
        return False
    return all(
        type(name) is str and 0 < len(name) <= MAX_RAW_NAME_CHARS and type(ct) is bytes and ct
        for name, ct in to.items()
    )


# Mostly valid entries, so that one bad entry among good ones is common.
GOOD_NAME = st.text(min_size=1, max_size=3)
WIRE_NAME = st.one_of(
    GOOD_NAME, GOOD_NAME, GOOD_NAME, st.just(""), st.just("a" * (MAX_RAW_NAME_CHARS + 1)), st.binary(max_size=2)
)
GOOD_VALUE = st.binary(min_size=1, max_size=3)
WIRE_VALUE = st.one_of(GOOD_VALUE, GOOD_VALUE, GOOD_VALUE, st.just(b""), st.text(max_size=2), st.integers(), st.none())


@given(
    msg_id=st.one_of(TOKEN, TOKEN, st.text(max_size=70), st.integers(), st.just("x" * 65)),
    to=st.one_of(st.dictionaries(WIRE_NAME, WIRE_VALUE, max_size=5), st.lists(st.binary(), max_size=2)),
)
@example(msg_id="m1", to={"bob": b"x", "a" * (MAX_RAW_NAME_CHARS + 1): b"x"})
@example(msg_id="m1", to={"bob": b"x", "": b"x"})
@example(msg_id="m1", to={"bob": b"x", "carol": b""})
@example(msg_id="m1", to={"bob": b"x", "carol": "text"})
@example(msg_id="m1", to={"bob": b"x", b"carol": b"x"})
@example(msg_id="m 1", to={"bob": b"x"})
@example(msg_id="x" * 65, to={"bob": b"x"})
@example(msg_id="m1", to={})
@example(msg_id="m1", to={f"u{i}": b"x" for i in range(MAX_MAP_LEN + 1)})
@settings(max_examples=400)
def test_send_from_wire_accepts_exactly_what_the_checks_accept(msg_id: object, to: object) -> None:
    try:
        frame = Send.from_wire({"v": 1, "t": "send", "id": msg_id, "to": to})
    except LocalProtocolError:
        assert not _checked_one_by_one(msg_id, to)
        return
    except TypeError:  # a non-string key where a name belongs: decode_frame's bad_field
        assert not _checked_one_by_one(msg_id, to)
        return
    assert _checked_one_by_one(msg_id, to)
    assert isinstance(frame, Send) and frame == Send(id=msg_id, to=to)  # type: ignore[arg-type]


@pytest.mark.parametrize("names", [("",), ("a" * (MAX_RAW_NAME_CHARS + 1),), ("bob", 7)])
def test_ack_bulk_check_still_refuses_each_bad_name(names: tuple[object, ...]) -> None:
    with pytest.raises(LocalProtocolError):
        Ack(id="m1", delivered=names, missing=())  # type: ignore[arg-type]


MEMBERS = st.lists(
    st.builds(
        Member,
        name=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=32),
        ik=st.binary(min_size=32, max_size=32),
        sk=st.binary(min_size=32, max_size=32),
        cert=st.binary(min_size=64, max_size=64),
        issued_at=st.integers(0, 253_402_300_799),
    ),
    max_size=20,
)


@given(name=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=32), roster=MEMBERS)
@example(
    name="bob",
    roster=[Member(name=f"m{i}", ik=b"\x01" * 32, sk=b"\x02" * 32, cert=b"\x03" * 64, issued_at=1) for i in range(16)],
)  # past fixarray: array 16
def test_encode_welcome_is_byte_identical_to_encode(name: str, roster: list[Member]) -> None:
    expected = encode(Welcome(name=name, roster=tuple(roster)), max_frame=ABSOLUTE_MAX_FRAME)
    packed = [packed_member(member) for member in roster]
    assert encode_welcome(name, packed, max_frame=ABSOLUTE_MAX_FRAME) == expected


def test_encode_welcome_refuses_what_welcome_refuses() -> None:
    one = packed_member(Member(name="m", ik=b"\x01" * 32, sk=b"\x02" * 32, cert=b"\x03" * 64, issued_at=1))
    with pytest.raises(LocalProtocolError):
        encode_welcome("bob", [one] * (MAX_ROSTER + 1), max_frame=ABSOLUTE_MAX_FRAME)
    with pytest.raises(LocalProtocolError):
        encode_welcome("", [one], max_frame=ABSOLUTE_MAX_FRAME)
    with pytest.raises(LocalProtocolError):
        encode_welcome("bob", [one] * 100, max_frame=1000)  # over the frame limit, like encode()


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


def test_a_sends_names_decode_to_the_rosters_own_name_objects() -> None:
    # msgpack interns a map's str keys: with the member's name interned in the roster, the
    # decoder hands over that one object, rather than adding each copy's name to the
    # interpreter's table of interned strings and taking it out again when the frame is freed.
    # This pins msgpack's behaviour too: should a release stop interning keys, this fails
    # while the relay stays correct (only the saving is gone).

    name = "".join(["m", "ember-", "q7"])  # made at run time: nothing has interned it yet
    roster: Roster[str] = Roster()
    roster.join(_member(name), "conn-m", lambda others: None)
    rekeyed = "".join(["r", "ekeyed-", "q7"])
    roster.join(
        Member(name=rekeyed, ik=b"\x05" * 32, sk=b"\x06" * 32, cert=b"\x03" * 64, issued_at=1),
        "conn-r",
        lambda others: None,
    )
    replacement = Member(
        name="".join(["r", "ekeyed-", "q7"]), ik=b"\x05" * 32, sk=b"\x07" * 32, cert=b"\x03" * 64, issued_at=2
    )
    assert roster.replace(rekeyed, "conn-r", replacement, lambda others: None) is not None
    payload = msgpack.packb({"v": PROTOCOL_VERSION, "t": "send", "id": "m1", "to": {name: b"c1", rekeyed: b"c2"}})
    send = decode_frame(payload, CLIENT_FRAMES)
    assert isinstance(send, Send)
    entries, asked, _copies, missing, folded = roster.split(send.to)
    assert not missing and not folded
    assert [entry.peer for entry in entries] == ["conn-m", "conn-r"]
    for entry, as_sent in zip(entries, asked, strict=True):
        assert as_sent is entry.name
    # Nothing of the roster keeps a name once its member left: the interned table lets it go.
    del send, entries, asked, _copies, entry, as_sent
    held = sys.getrefcount(name)
    assert roster.leave(name, "conn-m", lambda others: None)
    assert sys.getrefcount(name) < held


def test_a_members_name_of_a_str_subclass_joins_and_is_found_as_it_was() -> None:
    # Only an embedding caller could pass one (msgpack makes exact str); sys.intern refuses it,
    # so the roster keeps it uninterned rather than failing the join or a rekey.
    class Name(str):
        pass

    roster: Roster[str] = Roster()
    roster.join(_member(Name("carol")), "conn-c", lambda others: None)
    replacement = Member(name=Name("carol"), ik=b"\x01" * 32, sk=b"\x08" * 32, cert=b"\x03" * 64, issued_at=2)
    assert roster.replace("carol", "conn-c", replacement, lambda others: None) is not None
    assert roster.lookup(["carol", "CAROL"])[0] == [("carol", "carol", "conn-c"), ("CAROL", "carol", "conn-c")]


_SPELLINGS = st.sampled_from(["alice", "Alice", "ALICE", "bob", "BOB", "b0b", "carol", "\u0430lice", "dave"])


@given(
    joined=st.lists(st.sampled_from(["alice", "Alice", "bob", "carol", "\u0430lice"]), max_size=4),
    asked=st.lists(_SPELLINGS, max_size=8, unique=True),
)
def test_split_is_lookup_as_parallel_lists_and_says_when_a_name_was_folded(joined: list[str], asked: list[str]) -> None:
    roster: Roster[str] = Roster()
    for n, name in enumerate(joined):
        keys = Member(name=name, ik=bytes([n]) * 32, sk=bytes([100 + n]) * 32, cert=b"\x03" * 64, issued_at=1)
        try:
            roster.join(keys, f"conn-{name}", lambda others: None)
        except NameTaken:
            pass  # a lookalike of one already in: the roster refuses it, as for a real join
    to = {name: name.encode() for name in asked}
    entries, names, copies, missing, folded = roster.split(to)
    found, lookup_missing = roster.lookup(to)
    assert [(n, e.name, e.peer) for n, e in zip(names, entries, strict=True)] == found
    assert copies == [to[n] for n in names] and missing == lookup_missing
    assert folded == any(n != e.name for n, e in zip(names, entries, strict=True))
    if not folded:  # what the core relies on to skip its check for a member named twice
        assert len({e.name for e in entries}) == len(entries)


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


# Lengths in UTF-8 bytes around msgpack's fixstr/str 8/str 16/str 32 boundaries.
STR_SIZES = st.sampled_from([0, 1, 31, 32, 255, 256, 65535, 65536]) | st.integers(0, 300)


@given(size=STR_SIZES, char=st.sampled_from(["a", "é", "€", "😀"]), text=st.text(max_size=40))
def test_the_fast_paths_strings_are_packed_as_msgpack_packs_them(size: int, char: str, text: str) -> None:
    long = char * (size // len(char.encode("utf-8")))
    for value in (long, text, long + text):
        assert packed_str(value) == msgpack.packb(value)


@given(text=st.text(alphabet=st.characters(min_codepoint=0xD7F0, max_codepoint=0xE010), max_size=4))
def test_the_fast_path_refuses_a_lone_surrogate_as_pack_payload_does(text: str) -> None:
    try:
        expected = pack_payload({"s": text})
    except LocalProtocolError as exc:
        with pytest.raises(LocalProtocolError) as raised:
            packed_str(text)
        assert (raised.value.code, raised.value.detail) == (exc.code, exc.detail)
        return
    assert expected.endswith(packed_str(text))


@pytest.mark.parametrize("count", [0, 1, 15, 16, 65535, 65536])
def test_the_fast_paths_headers_are_msgpacks(count: int) -> None:
    packed_array: bytes = msgpack.packb([None] * count)
    assert packed_array == array_header(count) + b"\xc0" * count
    packed_bin: bytes = msgpack.packb(b"\x00" * count)
    assert packed_bin == bin_header(count) + b"\x00" * count


def _send_fields_ok_before(msg_id: object, to: object) -> bool:
    """Session 7's bulk check (frames.py before the loop in fastpath.py), kept as the reference."""
    return (
        type(msg_id) is str
        and 0 < len(msg_id) <= 64
        and _MSG_ID_CHARS.issuperset(msg_id)
        and (type(to) is dict or isinstance(to, Mapping))
        and 0 < len(to) <= MAX_MAP_LEN
        and set(map(type, to)) == {str}
        and "" not in to
        and max(map(len, to)) <= MAX_RAW_NAME_CHARS
        and set(map(type, to.values())) == {bytes}
        and all(to.values())
    )


@given(
    msg_id=st.one_of(TOKEN, TOKEN, st.text(max_size=70), st.integers(), st.just("x" * 65)),
    to=st.one_of(
        st.dictionaries(WIRE_NAME, WIRE_VALUE, max_size=5),
        st.dictionaries(WIRE_NAME, WIRE_VALUE, max_size=5).map(MappingProxyType),
        st.lists(st.binary(), max_size=2),
    ),
)
@example(msg_id="m1", to={f"u{i}": b"x" for i in range(MAX_MAP_LEN + 1)})
@example(msg_id="m1", to={f"u{i}": b"x" for i in range(MAX_MAP_LEN)})
@settings(max_examples=400)
def test_the_loop_accepts_exactly_what_the_bulk_check_before_it_accepted(msg_id: object, to: object) -> None:
    assert send_fields_ok(msg_id, to) == _send_fields_ok_before(msg_id, to)
