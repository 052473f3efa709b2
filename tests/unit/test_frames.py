"""Frame types on the wire: round trips, typed refusals, and the decode fuzz invariant."""

from __future__ import annotations

import dataclasses
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from susurro.protocol import (
    CLIENT_FRAMES,
    RELAY_FRAMES,
    Ack,
    Bye,
    Challenge,
    Deliver,
    Dropped,
    DropReason,
    Error,
    ErrorCode,
    Frame,
    FrameDecoder,
    Hello,
    Joined,
    Keepalive,
    KeepaliveAck,
    Left,
    LocalProtocolError,
    Member,
    Ping,
    Pong,
    ProtocolError,
    Rekey,
    Rekeyed,
    RemoteProtocolError,
    RoomAppend,
    RoomCreate,
    RoomError,
    RoomFetch,
    RoomFind,
    RoomIndex,
    RoomInfo,
    RoomList,
    RoomLog,
    RoomUpdate,
    Send,
    Shutdown,
    Welcome,
    decode_frame,
    encode,
)
from susurro.protocol.frames import MAX_DROPPED_IDS, MAX_RAW_NAME_CHARS, MAX_TIMESTAMP, encode_ack
from susurro.protocol.limits import (
    CHALLENGE_SIZE,
    DEFAULT_MAX_FRAME,
    LENGTH_PREFIX_SIZE,
    MAX_CODE_CHARS,
    MAX_DETAIL_CHARS,
    MAX_MAP_LEN,
    MAX_MSG_ID_CHARS,
    PROTOCOL_VERSION,
    PUBLIC_KEY_SIZE,
    SIGNATURE_SIZE,
)
from susurro.protocol.mailbox import (
    BundleFetch,
    Bundles,
    Mail,
    MailAck,
    MailEnd,
    Post,
    Posted,
    Prekeys,
    PrekeysHeld,
    WireBundle,
    WireOneTimePrekey,
    WireSignedPrekey,
)

IK = bytes(range(32))
SK = bytes(range(32, 64))
SIG = bytes(range(64))
PROOF = bytes(range(64, 128))
NONCE = bytes(range(100, 132))
T0 = 1_700_000_000

ROOM = bytes(range(200, 232))
ROOM_SAMPLES: list[Frame] = [
    RoomCreate(id="r-1", entry=b"\x9c" + b"e" * 200),
    RoomAppend(id="r-2", room=ROOM, entries=(b"\x01", b"\x02" * 2048)),
    RoomFetch(id="r-3", room=ROOM, from_seq=7),
    RoomFind(id="r-4", label="ops"),
    RoomList(id="r-5"),
    RoomLog(
        id="r-3", room=ROOM, label="ops", from_seq=7, entries=(b"\x01",), head_seq=9, head_hash=IK, online=("bob",)
    ),
    RoomUpdate(room=ROOM, label="ops", from_seq=0, entries=(), head_seq=0, head_hash=ROOM, online=()),
    RoomIndex(id="r-5", rooms=(RoomInfo(room=ROOM, label="ops", open=False, members=3, online=1, head_seq=4),)),
    RoomError(id="r-1", code=ErrorCode.LABEL_TAKEN.value, detail="the label 'ops' is taken"),
]
MEMBER = Member(name="bob", ik=IK, sk=SK, cert=SIG, issued_at=T0)
MEMBER2 = Member(name="Ünïcödé_名前", ik=SK, sk=IK, cert=PROOF, issued_at=0)

SPK = WireSignedPrekey(id=7, pk=b"s" * 32, at=T0, sig=b"g" * 64)
OPK = WireOneTimePrekey(id=2**32 - 1, pk=b"o" * 32, exp=1_800_000_000, sig=b"h" * 64)
MAILBOX_SAMPLES: list[Frame] = [
    Prekeys(spk=SPK, opks=(OPK,) * 100),
    BundleFetch(id="f-1", keys=(b"b" * 32, b"c" * 32), one_time=True),
    Post(id="m-1", kind="message", to={b"b" * 32: b"\x91" * 371, b"c" * 32: b"\x92" * 300}),
    MailAck(items=(1, 2**63 - 1)),
    PrekeysHeld(one_time=0),
    Bundles(
        id="f-1",
        bundles=(
            WireBundle(name="bob", ik=b"i" * 32, spk=SPK, opk=OPK),
            WireBundle(name="c", ik=b"j" * 32, spk=SPK, opk=None),
        ),
        unknown=(b"d" * 32,),
    ),
    Posted(id="m-1", waiting=(b"b" * 32,), refused={b"c" * 32: "mailbox_full"}),
    Mail(item=3, sender="alice", ik=b"a" * 32, id="m-1", kind="receipt", ct=b"\x01" * 300, at=T0),
    MailEnd(),
]

SAMPLES: list[Frame] = [
    Hello(name="alice", ik=IK, sk=SK, cert=SIG, issued_at=T0, proof=PROOF),
    Send(id="m-1", to={"bob": b"\x01ct", "carol": b"\x00" * 100}),
    Ping(),
    Bye(),
    Challenge(nonce=NONCE, max_frame=1024 * 1024, max_recipients=256),
    Welcome(name="alice", roster=(MEMBER, MEMBER2)),
    Joined(member=MEMBER),
    Rekey(sk=SK, cert=SIG, issued_at=T0 + 1),
    Rekeyed(member=MEMBER2),
    Left(name="bob"),
    Deliver(sender="bob", id="m-1", ct=b"\xff" * 48),
    Ack(id="m-1", delivered=("bob",), missing=("carol", "dave")),
    Error(code=ErrorCode.BAD_FIELD.value, detail="send: to must name at least one recipient"),
    Pong(),
    Shutdown(reason="relay is restarting"),
    Keepalive(),
    KeepaliveAck(),
    Dropped(name="bob", ids=("m-1", "m-2"), reason=DropReason.SLOW_READER.value),
    *ROOM_SAMPLES,
    *MAILBOX_SAMPLES,
]
EDGE_SAMPLES: list[Frame] = [
    Welcome(name="alice"),
    Ack(id="x", delivered=(), missing=()),
    Ack(id="m-2", delivered=(), missing=("bob",), reasons={"bob": "some_future_reason"}),
    Error(code="some_future_code", detail=""),
    Shutdown(reason=""),
    Dropped(name="bob", ids=("x",) * MAX_DROPPED_IDS, reason="some_future_reason"),
    Challenge(nonce=NONCE, max_frame=2**32 - 1, max_recipients=MAX_MAP_LEN),
    Hello(name="n" * MAX_RAW_NAME_CHARS, ik=IK, sk=SK, cert=SIG, issued_at=MAX_TIMESTAMP, proof=PROOF),
    Deliver(sender="b", id="i" * MAX_MSG_ID_CHARS, ct=b"\x00"),
    Prekeys(spk=None, opks=()),
]


def direction(frame: Frame) -> dict[str, type[Frame]]:
    return CLIENT_FRAMES if frame.TYPE in CLIENT_FRAMES else RELAY_FRAMES


def other_direction(frame: Frame) -> dict[str, type[Frame]]:
    return RELAY_FRAMES if frame.TYPE in CLIENT_FRAMES else CLIENT_FRAMES


def payload_of(frame: Frame) -> bytes:
    wire = encode(frame)
    assert int.from_bytes(wire[:LENGTH_PREFIX_SIZE], "big") == len(wire) - LENGTH_PREFIX_SIZE
    return wire[LENGTH_PREFIX_SIZE:]


def round_trip(frame: Frame) -> Frame:
    decoder = FrameDecoder()
    decoder.feed(encode(frame))
    payload = decoder.next_payload()
    assert payload is not None
    assert decoder.next_payload() is None
    return decode_frame(payload, direction(frame))


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def remote_error(payload: bytes, allowed: dict[str, type[Frame]]) -> RemoteProtocolError:
    with pytest.raises(RemoteProtocolError) as info:
        decode_frame(payload, allowed)
    assert not isinstance(info.value, LocalProtocolError)
    return info.value


# --- round trips -------------------------------------------------------------


def test_samples_cover_every_frame_type_exactly_once() -> None:
    types = [f.TYPE for f in SAMPLES]
    assert sorted(types) == sorted([*CLIENT_FRAMES, *RELAY_FRAMES])
    assert not set(CLIENT_FRAMES) & set(RELAY_FRAMES)


@pytest.mark.parametrize("frame", SAMPLES + EDGE_SAMPLES, ids=lambda f: type(f).__name__)
def test_every_frame_round_trips(frame: Frame) -> None:
    decoded = round_trip(frame)
    assert type(decoded) is type(frame)
    assert decoded == frame


@pytest.mark.parametrize("frame", SAMPLES, ids=lambda f: type(f).__name__)
def test_wire_map_has_version_and_type(frame: Frame) -> None:
    raw = msgpack.unpackb(payload_of(frame), raw=False)
    assert raw["v"] == PROTOCOL_VERSION
    assert raw["t"] == frame.TYPE


@pytest.mark.parametrize("frame", SAMPLES, ids=lambda f: type(f).__name__)
def test_frame_from_the_other_direction_is_bad_type(frame: Frame) -> None:
    assert remote_error(payload_of(frame), other_direction(frame)).code is ErrorCode.BAD_TYPE


def test_deliver_sender_is_from_on_the_wire() -> None:
    raw = msgpack.unpackb(payload_of(Deliver(sender="bob", id="1", ct=b"c")), raw=False)
    assert raw == {"v": 1, "t": "deliver", "from": "bob", "id": "1", "ct": b"c"}


def test_keys_stay_binary_and_names_stay_text_on_the_wire() -> None:
    raw = msgpack.unpackb(payload_of(SAMPLES[0]), raw=False)
    assert raw == {
        "v": 1,
        "t": "hello",
        "name": "alice",
        "ik": IK,
        "sk": SK,
        "cert": SIG,
        "issued_at": T0,
        "proof": PROOF,
    }


def test_welcome_roster_is_a_list_of_member_maps_on_the_wire() -> None:
    raw = msgpack.unpackb(payload_of(Welcome(name="a", roster=(MEMBER,))), raw=False)
    assert raw["roster"] == [{"name": "bob", "ik": IK, "sk": SK, "cert": SIG, "issued_at": T0}]


def test_hello_member_matches_its_fields() -> None:
    hello = SAMPLES[0]
    assert isinstance(hello, Hello)
    assert hello.member() == Member(name="alice", ik=IK, sk=SK, cert=SIG, issued_at=T0)


def test_decode_ignores_unknown_extra_fields() -> None:
    frame = decode_frame(pack({"v": 1, "t": "left", "name": "bob", "future": [1, 2]}), RELAY_FRAMES)
    assert frame == Left(name="bob")


# --- hypothesis round trips --------------------------------------------------

names = st.text(min_size=1, max_size=MAX_RAW_NAME_CHARS)
msg_ids = st.text(
    alphabet="0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-", min_size=1, max_size=MAX_MSG_ID_CHARS
)
key32 = st.binary(min_size=PUBLIC_KEY_SIZE, max_size=PUBLIC_KEY_SIZE)
sig64 = st.binary(min_size=SIGNATURE_SIZE, max_size=SIGNATURE_SIZE)
members = st.builds(Member, name=names, ik=key32, sk=key32, cert=sig64, issued_at=st.integers(0, MAX_TIMESTAMP))


@given(
    id=msg_ids,
    to=st.dictionaries(names, st.binary(min_size=1, max_size=200), min_size=1, max_size=20),
)
def test_send_round_trips(id: str, to: dict[str, bytes]) -> None:
    frame = Send(id=id, to=to)
    decoded = round_trip(frame)
    assert isinstance(decoded, Send)
    assert decoded.id == id
    assert dict(decoded.to) == to


@given(sender=names, id=msg_ids, ct=st.binary(min_size=1, max_size=500))
def test_deliver_round_trips(sender: str, id: str, ct: bytes) -> None:
    assert round_trip(Deliver(sender=sender, id=id, ct=ct)) == Deliver(sender=sender, id=id, ct=ct)


@given(
    id=msg_ids,
    delivered=st.lists(names, max_size=10),
    missing=st.lists(names, max_size=10),
    reasons=st.dictionaries(names, st.text(min_size=1, max_size=MAX_CODE_CHARS), max_size=5),
)
def test_ack_round_trips(id: str, delivered: list[str], missing: list[str], reasons: dict[str, str]) -> None:
    frame = Ack(id=id, delivered=tuple(delivered), missing=tuple(missing), reasons=reasons)
    assert round_trip(frame) == frame


def test_an_ack_with_reasons_is_the_documented_bytes_and_one_without_is_unchanged() -> None:
    """docs/protocol.md, *Acks*: the byte-level example of ``reasons``; an ack with none has no key."""
    with_reasons = Ack(id="m1", delivered=("alice",), missing=("bob",), reasons={"bob": "no_report"})
    assert encode(with_reasons).hex() == (
        "00000045"
        "86"
        "a176"
        "01"
        "a174"
        "a361636b"
        "a26964"
        "a26d31"
        "a964656c697665726564"
        "91"
        "a5616c696365"
        "a76d697373696e67"
        "91"
        "a3626f62"
        "a7726561736f6e73"
        "81"
        "a3626f62"
        "a96e6f5f7265706f7274"
    )
    plain = Ack(id="m1", delivered=("alice",), missing=("bob",))
    assert encode(plain) == encode_ack("m1", ["alice"], ["bob"], max_frame=DEFAULT_MAX_FRAME)
    assert b"reasons" not in encode(plain)


@settings(max_examples=50)
@given(name=names, roster=st.lists(members, max_size=8))
def test_welcome_round_trips(name: str, roster: list[Member]) -> None:
    frame = Welcome(name=name, roster=tuple(roster))
    assert round_trip(frame) == frame


# --- malformed frames: each class has its code ---------------------------------


def hello_map(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "v": 1,
        "t": "hello",
        "name": "alice",
        "ik": IK,
        "sk": SK,
        "cert": SIG,
        "issued_at": T0,
        "proof": PROOF,
    }
    raw.update(changes)
    return raw


def without(raw: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in raw.items() if k != key}


MEMBER_MAP = {"name": "bob", "ik": IK, "sk": SK, "cert": SIG, "issued_at": T0}

C, R = CLIENT_FRAMES, RELAY_FRAMES
MALFORMED: list[tuple[str, bytes, dict[str, type[Frame]], ErrorCode]] = [
    # not a map
    ("array", pack([1, "hello"]), C, ErrorCode.BAD_FRAME),
    ("string", pack("hello"), C, ErrorCode.BAD_FRAME),
    ("int", pack(1), R, ErrorCode.BAD_FRAME),
    ("nil", pack(None), R, ErrorCode.BAD_FRAME),
    ("not msgpack", b"\xc1", C, ErrorCode.BAD_FRAME),
    ("trailing data", pack({"v": 1, "t": "ping"}) + b"\x00", C, ErrorCode.BAD_FRAME),
    # version
    ("missing v", pack({"t": "ping"}), C, ErrorCode.BAD_VERSION),
    ("v 2", pack({"v": 2, "t": "ping"}), C, ErrorCode.BAD_VERSION),
    ("v 0", pack({"v": 0, "t": "ping"}), C, ErrorCode.BAD_VERSION),
    ("v True", pack({"v": True, "t": "ping"}), C, ErrorCode.BAD_VERSION),
    ("v str", pack({"v": "1", "t": "ping"}), C, ErrorCode.BAD_VERSION),
    ("v float", pack({"v": 1.0, "t": "ping"}), C, ErrorCode.BAD_VERSION),
    ("v nil", pack({"v": None, "t": "ping"}), R, ErrorCode.BAD_VERSION),
    ("v list", pack({"v": [1], "t": "pong"}), R, ErrorCode.BAD_VERSION),
    # type
    ("missing t", pack({"v": 1}), C, ErrorCode.BAD_TYPE),
    ("unknown t", pack({"v": 1, "t": "launch"}), C, ErrorCode.BAD_TYPE),
    ("t wrong case", pack({"v": 1, "t": "PING"}), C, ErrorCode.BAD_TYPE),
    ("t int", pack({"v": 1, "t": 1}), C, ErrorCode.BAD_TYPE),
    ("t bin", pack({"v": 1, "t": b"ping"}), C, ErrorCode.BAD_TYPE),
    ("t nil", pack({"v": 1, "t": None}), R, ErrorCode.BAD_TYPE),
    ("relay frame to relay", pack({"v": 1, "t": "deliver", "from": "a", "id": "1", "ct": b"x"}), C, ErrorCode.BAD_TYPE),
    ("relay pong to relay", pack({"v": 1, "t": "pong"}), C, ErrorCode.BAD_TYPE),
    ("client send to client", pack({"v": 1, "t": "send", "id": "1", "to": {"b": b"x"}}), R, ErrorCode.BAD_TYPE),
    # the order of checks (docs/protocol.md, *Error codes*): v before t before fields
    ("v 2 and unknown t", pack({"v": 2, "t": "launch"}), C, ErrorCode.BAD_VERSION),
    ("v 2 and bad fields", pack({**hello_map(name=5), "v": 2}), C, ErrorCode.BAD_VERSION),
    ("unknown t and bad fields", pack({"v": 1, "t": "launch", "name": 5}), C, ErrorCode.BAD_TYPE),
    # fields
    ("hello missing proof", pack(without(hello_map(), "proof")), C, ErrorCode.BAD_FIELD),
    ("hello missing name", pack(without(hello_map(), "name")), C, ErrorCode.BAD_FIELD),
    ("hello name int", pack(hello_map(name=5)), C, ErrorCode.BAD_FIELD),
    ("hello name bin", pack(hello_map(name=b"alice")), C, ErrorCode.BAD_FIELD),
    ("hello name empty", pack(hello_map(name="")), C, ErrorCode.BAD_FIELD),
    ("hello name oversize", pack(hello_map(name="a" * (MAX_RAW_NAME_CHARS + 1))), C, ErrorCode.BAD_FIELD),
    ("hello ik str", pack(hello_map(ik="k" * 32)), C, ErrorCode.BAD_FIELD),
    ("hello ik 31 bytes", pack(hello_map(ik=IK[:31])), C, ErrorCode.BAD_FIELD),
    ("hello ik 33 bytes", pack(hello_map(ik=IK + b"\x00")), C, ErrorCode.BAD_FIELD),
    ("hello sk 31 bytes", pack(hello_map(sk=SK[:31])), C, ErrorCode.BAD_FIELD),
    ("hello cert 63 bytes", pack(hello_map(cert=SIG[:63])), C, ErrorCode.BAD_FIELD),
    ("hello proof 65 bytes", pack(hello_map(proof=PROOF + b"\x00")), C, ErrorCode.BAD_FIELD),
    ("hello issued_at str", pack(hello_map(issued_at=str(T0))), C, ErrorCode.BAD_FIELD),
    ("hello issued_at float", pack(hello_map(issued_at=float(T0))), C, ErrorCode.BAD_FIELD),
    ("hello issued_at bool", pack(hello_map(issued_at=True)), C, ErrorCode.BAD_FIELD),
    ("hello issued_at negative", pack(hello_map(issued_at=-1)), C, ErrorCode.BAD_FIELD),
    ("hello issued_at past 9999", pack(hello_map(issued_at=MAX_TIMESTAMP + 1)), C, ErrorCode.BAD_FIELD),
    ("send empty to", pack({"v": 1, "t": "send", "id": "1", "to": {}}), C, ErrorCode.BAD_FIELD),
    ("send to list", pack({"v": 1, "t": "send", "id": "1", "to": [["b", b"x"]]}), C, ErrorCode.BAD_FIELD),
    ("send to str", pack({"v": 1, "t": "send", "id": "1", "to": "bob"}), C, ErrorCode.BAD_FIELD),
    ("send empty ct", pack({"v": 1, "t": "send", "id": "1", "to": {"bob": b""}}), C, ErrorCode.BAD_FIELD),
    ("send ct str", pack({"v": 1, "t": "send", "id": "1", "to": {"bob": "ct"}}), C, ErrorCode.BAD_FIELD),
    ("send empty name", pack({"v": 1, "t": "send", "id": "1", "to": {"": b"x"}}), C, ErrorCode.BAD_FIELD),
    ("send bin name", pack({"v": 1, "t": "send", "id": "1", "to": {b"bob": b"x"}}), C, ErrorCode.BAD_FRAME),
    ("duplicate t", b"\x83\xa1v\x01\xa1t\xa4ping\xa1t\xa4send", C, ErrorCode.BAD_FRAME),
    ("send id oversize", pack({"v": 1, "t": "send", "id": "i" * 65, "to": {"b": b"x"}}), C, ErrorCode.BAD_FIELD),
    ("send id empty", pack({"v": 1, "t": "send", "id": "", "to": {"b": b"x"}}), C, ErrorCode.BAD_FIELD),
    ("send id int", pack({"v": 1, "t": "send", "id": 7, "to": {"b": b"x"}}), C, ErrorCode.BAD_FIELD),
    ("send missing to", pack({"v": 1, "t": "send", "id": "1"}), C, ErrorCode.BAD_FIELD),
    (
        "challenge nonce 31",
        pack({"v": 1, "t": "challenge", "nonce": NONCE[:31], "max_frame": 9, "max_recipients": 1}),
        R,
        ErrorCode.BAD_FIELD,
    ),
    (
        "challenge max_frame bool",
        pack({"v": 1, "t": "challenge", "nonce": NONCE, "max_frame": True, "max_recipients": 1}),
        R,
        ErrorCode.BAD_FIELD,
    ),
    (
        "challenge max_frame 0",
        pack({"v": 1, "t": "challenge", "nonce": NONCE, "max_frame": 0, "max_recipients": 1}),
        R,
        ErrorCode.BAD_FIELD,
    ),
    (
        "challenge max_frame 2**32",
        pack({"v": 1, "t": "challenge", "nonce": NONCE, "max_frame": 2**32, "max_recipients": 1}),
        R,
        ErrorCode.BAD_FIELD,
    ),
    (
        "challenge max_recipients over map limit",
        pack({"v": 1, "t": "challenge", "nonce": NONCE, "max_frame": 9, "max_recipients": MAX_MAP_LEN + 1}),
        R,
        ErrorCode.BAD_FIELD,
    ),
    (
        "welcome roster map",
        pack({"v": 1, "t": "welcome", "name": "a", "roster": {"bob": MEMBER_MAP}}),
        R,
        ErrorCode.BAD_FIELD,
    ),
    ("welcome missing roster", pack({"v": 1, "t": "welcome", "name": "a"}), R, ErrorCode.BAD_FIELD),
    (
        "welcome roster entry str",
        pack({"v": 1, "t": "welcome", "name": "a", "roster": ["bob"]}),
        R,
        ErrorCode.BAD_FIELD,
    ),
    (
        "welcome roster entry list",
        pack({"v": 1, "t": "welcome", "name": "a", "roster": [[1, 2]]}),
        R,
        ErrorCode.BAD_FIELD,
    ),
    (
        "welcome member missing cert",
        pack({"v": 1, "t": "welcome", "name": "a", "roster": [without(MEMBER_MAP, "cert")]}),
        R,
        ErrorCode.BAD_FIELD,
    ),
    (
        "welcome member sk 31",
        pack({"v": 1, "t": "welcome", "name": "a", "roster": [{**MEMBER_MAP, "sk": SK[:31]}]}),
        R,
        ErrorCode.BAD_FIELD,
    ),
    ("joined member list", pack({"v": 1, "t": "joined", "member": list(MEMBER_MAP.values())}), R, ErrorCode.BAD_FIELD),
    ("joined missing member", pack({"v": 1, "t": "joined"}), R, ErrorCode.BAD_FIELD),
    (
        "joined member issued_at bool",
        pack({"v": 1, "t": "joined", "member": {**MEMBER_MAP, "issued_at": False}}),
        R,
        ErrorCode.BAD_FIELD,
    ),
    ("left name nil", pack({"v": 1, "t": "left", "name": None}), R, ErrorCode.BAD_FIELD),
    ("deliver empty ct", pack({"v": 1, "t": "deliver", "from": "a", "id": "1", "ct": b""}), R, ErrorCode.BAD_FIELD),
    (
        "deliver sender key instead of from",
        pack({"v": 1, "t": "deliver", "sender": "a", "id": "1", "ct": b"x"}),
        R,
        ErrorCode.BAD_FIELD,
    ),
    (
        "ack delivered str",
        pack({"v": 1, "t": "ack", "id": "1", "delivered": "bob", "missing": []}),
        R,
        ErrorCode.BAD_FIELD,
    ),
    (
        "ack missing ints",
        pack({"v": 1, "t": "ack", "id": "1", "delivered": [], "missing": [1]}),
        R,
        ErrorCode.BAD_FIELD,
    ),
    (
        "ack too many names",
        pack({"v": 1, "t": "ack", "id": "1", "delivered": ["b"] * (MAX_MAP_LEN + 1), "missing": []}),
        R,
        ErrorCode.BAD_FIELD,
    ),
    (
        "error code oversize",
        pack({"v": 1, "t": "error", "code": "c" * (MAX_CODE_CHARS + 1), "detail": ""}),
        R,
        ErrorCode.BAD_FIELD,
    ),
    ("error code empty", pack({"v": 1, "t": "error", "code": "", "detail": "d"}), R, ErrorCode.BAD_FIELD),
    (
        "error detail oversize",
        pack({"v": 1, "t": "error", "code": "x", "detail": "d" * (MAX_DETAIL_CHARS + 1)}),
        R,
        ErrorCode.BAD_FIELD,
    ),
    ("shutdown reason bin", pack({"v": 1, "t": "shutdown", "reason": b"bye"}), R, ErrorCode.BAD_FIELD),
]


@pytest.mark.parametrize(("payload", "allowed", "code"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_frame_has_typed_code(payload: bytes, allowed: dict[str, type[Frame]], code: ErrorCode) -> None:
    assert remote_error(payload, allowed).code is code


def test_field_error_detail_names_the_frame_type() -> None:
    error = remote_error(pack(hello_map(ik=IK[:31])), CLIENT_FRAMES)
    assert error.detail.startswith("hello: ")
    assert "ik" in error.detail


def test_hostile_version_is_not_echoed_in_full() -> None:
    error = remote_error(pack({"v": "x" * 10_000, "t": "ping"}), CLIENT_FRAMES)
    assert error.code is ErrorCode.BAD_VERSION
    assert len(error.detail) < 200


# --- building invalid frames locally -------------------------------------------

LOCAL_INVALID: list[tuple[str, Any]] = [
    ("hello empty name", lambda: Hello(name="", ik=IK, sk=SK, cert=SIG, issued_at=T0, proof=PROOF)),
    ("hello short ik", lambda: Hello(name="a", ik=IK[:31], sk=SK, cert=SIG, issued_at=T0, proof=PROOF)),
    ("hello short proof", lambda: Hello(name="a", ik=IK, sk=SK, cert=SIG, issued_at=T0, proof=PROOF[:63])),
    ("hello bool issued_at", lambda: Hello(name="a", ik=IK, sk=SK, cert=SIG, issued_at=True, proof=PROOF)),
    ("member bytearray ik", lambda: Member(name="a", ik=bytearray(IK), sk=SK, cert=SIG, issued_at=T0)),
    ("send empty to", lambda: Send(id="1", to={})),
    ("send id with newline", lambda: Send(id="m1\n2026-01-01 INFO join name=admin", to={"bob": b"x"})),
    ("send id with space", lambda: Send(id="m 1", to={"bob": b"x"})),
    ("deliver id non-ascii", lambda: Deliver(sender="a", id="mé", ct=b"x")),
    ("send empty ct", lambda: Send(id="1", to={"bob": b""})),
    ("send to list", lambda: Send(id="1", to=[("bob", b"x")])),
    ("send too many", lambda: Send(id="1", to={f"u{i}": b"x" for i in range(MAX_MAP_LEN + 1)})),
    ("challenge short nonce", lambda: Challenge(nonce=b"n" * (CHALLENGE_SIZE - 1), max_frame=1, max_recipients=1)),
    ("challenge zero recipients", lambda: Challenge(nonce=NONCE, max_frame=1, max_recipients=0)),
    ("welcome roster list", lambda: Welcome(name="a", roster=[MEMBER])),
    ("welcome roster of dicts", lambda: Welcome(name="a", roster=(MEMBER_MAP,))),
    ("joined dict member", lambda: Joined(member=MEMBER_MAP)),
    ("left oversize name", lambda: Left(name="x" * (MAX_RAW_NAME_CHARS + 1))),
    ("deliver empty ct", lambda: Deliver(sender="a", id="1", ct=b"")),
    ("deliver str ct", lambda: Deliver(sender="a", id="1", ct="ct")),
    ("ack list delivered", lambda: Ack(id="1", delivered=["bob"], missing=())),
    ("ack empty name", lambda: Ack(id="1", delivered=("",), missing=())),
    ("ack empty reason", lambda: Ack(id="1", delivered=(), missing=("bob",), reasons={"bob": ""})),
    ("ack long reason", lambda: Ack(id="1", delivered=(), missing=("bob",), reasons={"bob": "r" * 33})),
    ("ack reasons list", lambda: Ack(id="1", delivered=(), missing=("bob",), reasons=[("bob", "x")])),
    ("dropped no ids", lambda: Dropped(name="bob", ids=(), reason="closed")),
    ("dropped too many ids", lambda: Dropped(name="bob", ids=("x",) * (MAX_DROPPED_IDS + 1), reason="closed")),
    ("dropped free-text id", lambda: Dropped(name="bob", ids=("a b",), reason="closed")),
    ("dropped ids list", lambda: Dropped(name="bob", ids=["x"], reason="closed")),
    ("dropped empty reason", lambda: Dropped(name="bob", ids=("x",), reason="")),
    ("error long code", lambda: Error(code="c" * (MAX_CODE_CHARS + 1), detail="")),
    ("shutdown long reason", lambda: Shutdown(reason="r" * (MAX_DETAIL_CHARS + 1))),
]


@pytest.mark.parametrize("build", [c[1] for c in LOCAL_INVALID], ids=[c[0] for c in LOCAL_INVALID])
def test_building_an_invalid_frame_raises_local_protocol_error(build: Any) -> None:
    with pytest.raises(LocalProtocolError) as info:
        build()
    assert not isinstance(info.value, RemoteProtocolError)
    assert info.value.code is ErrorCode.BAD_FIELD


def test_encode_refuses_a_frame_over_max_frame() -> None:
    frame = Deliver(sender="a", id="1", ct=b"x" * 1000)
    assert len(encode(frame, max_frame=2000)) > 1000
    with pytest.raises(LocalProtocolError) as info:
        encode(frame, max_frame=1000)
    assert info.value.code is ErrorCode.FRAME_TOO_LARGE


def test_frames_are_frozen() -> None:
    frame = Left(name="bob")
    with pytest.raises(AttributeError):
        frame.name = "eve"  # type: ignore[misc]
    assert frame.name == "bob"


def test_error_from_protocol_error_truncates_detail() -> None:
    exc = RemoteProtocolError(ErrorCode.BAD_FIELD, "d" * 5000)
    frame = Error.from_protocol_error(exc)
    assert frame.code == "bad_field"
    assert frame.detail == "d" * MAX_DETAIL_CHARS
    assert round_trip(frame) == frame


def test_remote_and_local_errors_share_the_base() -> None:
    assert issubclass(RemoteProtocolError, ProtocolError)
    assert issubclass(LocalProtocolError, ProtocolError)
    assert not issubclass(RemoteProtocolError, LocalProtocolError)
    error = RemoteProtocolError(ErrorCode.BAD_TYPE, "nope")
    assert str(error) == "bad_type: nope"


@pytest.mark.parametrize(
    "frame",
    [Left(name="bob\ud800"), Send(id="1", to={"b\ud800": b"x"})],
    ids=["left name", "send recipient"],
)
def test_unencodable_text_is_refused_locally(frame: Frame) -> None:
    # A lone surrogate passes the str checks but is not UTF-8: the frame cannot be carried.
    with pytest.raises(LocalProtocolError) as info:
        encode(frame)
    assert info.value.code is ErrorCode.BAD_FIELD


# --- fuzz invariant ------------------------------------------------------------

FIELD_NAMES = sorted(
    {
        "name",
        "ik",
        "sk",
        "cert",
        "issued_at",
        "proof",
        "id",
        "to",
        "nonce",
        "max_frame",
        "max_recipients",
        "roster",
        "member",
        "from",
        "ct",
        "delivered",
        "missing",
        "code",
        "detail",
        "reason",
        "entry",
        "entries",
        "room",
        "from_seq",
        "label",
        "head_seq",
        "head_hash",
        "online",
        "rooms",
    }
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.integers(-2, 2000),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.binary(max_size=80),
    st.binary(min_size=32, max_size=32),
    st.binary(min_size=64, max_size=64),
)
keys = st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=8))
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(keys, children, max_size=6),
        st.just(MEMBER_MAP),
        st.lists(children, max_size=5),
        st.dictionaries(keys, children, max_size=6),
        st.dictionaries(st.binary(max_size=4), children, max_size=2),  # bin keys: refused as BAD_FRAME
    ),
    max_leaves=20,
)
member_maps = st.fixed_dictionaries(
    {"name": st.text(min_size=1, max_size=8), "ik": key32, "sk": key32, "cert": sig64, "issued_at": st.integers(0, 9)}
)
#: Plausible values per wire field, so the fuzz also reaches the per-field checks and successful decodes.
GOOD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "name": st.text(min_size=1, max_size=8),
    "ik": key32,
    "sk": key32,
    "cert": sig64,
    "proof": sig64,
    "issued_at": st.integers(-1, 2**40),
    "id": st.text(min_size=1, max_size=8),
    "to": st.dictionaries(st.text(max_size=4), st.binary(max_size=4), max_size=3),
    "nonce": key32,
    "max_frame": st.integers(-1, 2**33),
    "max_recipients": st.integers(-1, 2000),
    "roster": st.lists(member_maps, max_size=3),
    "member": member_maps,
    "from": st.text(min_size=1, max_size=8),
    "ct": st.binary(max_size=8),
    "delivered": st.lists(st.text(max_size=4), max_size=3),
    "missing": st.lists(st.text(max_size=4), max_size=3),
    "reasons": st.dictionaries(st.text(max_size=4), st.text(max_size=40), max_size=3),
    "code": st.text(max_size=40),
    "detail": st.text(max_size=40),
    "reason": st.text(max_size=40),
    # rooms
    "entry": st.binary(max_size=40),
    "entries": st.lists(st.binary(max_size=8), max_size=3),
    "room": key32,
    "from_seq": st.integers(-1, 2**64 - 1),
    "label": st.text(max_size=8),
    "head_seq": st.integers(-1, 9),
    "head_hash": key32,
    "online": st.lists(st.text(max_size=4), max_size=3),
    "rooms": st.lists(
        st.fixed_dictionaries(
            {
                "room": key32,
                "label": st.text(max_size=4),
                "open": st.booleans(),
                "members": st.integers(-1, 3),
                "online": st.integers(0, 3),
                "head_seq": st.integers(0, 3),
            }
        ),
        max_size=2,
    ),
    # mailboxes
    "spk": st.one_of(
        st.none(),
        st.fixed_dictionaries({"id": st.integers(-1, 9), "pk": key32, "at": st.integers(-1, 9), "sig": sig64}),
    ),
    "opks": st.lists(st.fixed_dictionaries({"id": st.integers(-1, 9), "pk": key32, "sig": sig64}), max_size=3),
    "names": st.lists(st.text(max_size=4), max_size=3),
    "one_time": st.one_of(st.booleans(), st.integers(0, 1)),
    "kind": st.sampled_from(["message", "receipt", "other"]),
    "items": st.lists(st.integers(-1, 9), max_size=3),
    "bundles": st.lists(
        st.fixed_dictionaries(
            {
                "name": st.text(max_size=4),
                "ik": key32,
                "spk": st.fixed_dictionaries(
                    {"id": st.integers(0, 9), "pk": key32, "at": st.integers(0, 9), "sig": sig64}
                ),
                "opk": st.one_of(
                    st.none(), st.fixed_dictionaries({"id": st.integers(0, 9), "pk": key32, "sig": sig64})
                ),
            }
        ),
        max_size=2,
    ),
    "keys": st.lists(st.one_of(key32, st.binary(max_size=3)), max_size=3),
    "unknown": st.lists(key32, max_size=3),
    "waiting": st.lists(key32, max_size=3),
    "refused": st.lists(st.tuples(key32, st.text(max_size=8)).map(list), max_size=2),
    "item": st.integers(-1, 9),
    "at": st.integers(-1, 9),
    # dropped copies
    "ids": st.lists(st.text(alphabet="0123456789abcdef- ", max_size=6), max_size=3),
}
WIRE_FIELDS = {
    t: [cls.WIRE_NAMES.get(f.name, f.name) for f in dataclasses.fields(cls)]
    for t, cls in {**CLIENT_FRAMES, **RELAY_FRAMES}.items()
}


@st.composite
def frame_maps(draw: st.DrawFn) -> dict[Any, Any]:
    kind = draw(st.sampled_from(sorted(WIRE_FIELDS))) if draw(st.integers(0, 9)) else draw(values)
    raw: dict[Any, Any] = draw(st.dictionaries(keys, values, max_size=3))
    for name in WIRE_FIELDS.get(kind, []) if isinstance(kind, str) else []:
        raw[name] = draw(GOOD_VALUES[name]) if draw(st.integers(0, 9)) else draw(values)
    raw["v"] = 1 if draw(st.integers(0, 9)) else draw(values)
    raw["t"] = kind
    for name in draw(st.sets(st.sampled_from(sorted(raw, key=repr)), max_size=1)):
        if draw(st.integers(0, 9)) == 0:
            del raw[name]
    return raw


@settings(max_examples=400, deadline=None)
@given(raw=st.one_of(frame_maps(), frame_maps(), values))
def test_fuzz_decode_frame_returns_a_frame_or_raises_remote_protocol_error(raw: Any) -> None:
    payload = pack(raw)
    for allowed in (CLIENT_FRAMES, RELAY_FRAMES):
        try:
            frame = decode_frame(payload, allowed)
        except RemoteProtocolError as exc:
            assert isinstance(exc.code, ErrorCode)
        else:
            assert isinstance(frame, Frame)
            assert isinstance(raw, dict)
            assert type(frame) is allowed[raw["t"]]
            # A frame that decoded re-encodes and decodes to itself.
            assert decode_frame(payload_of(frame), allowed) == frame
