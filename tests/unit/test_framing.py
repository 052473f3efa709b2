"""Length-prefixed framing: FrameDecoder, encode_frame and unpack_payload.

The decoder is sans-I/O, so the socket's arbitrary chunking is simulated by
feeding the same byte stream split at every boundary and in random pieces; the
payloads that come out must not depend on how the bytes arrived.
"""

from __future__ import annotations

import itertools
import struct

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from susurro.protocol import (
    CLIENT_FRAMES,
    RELAY_FRAMES,
    ErrorCode,
    Frame,
    FrameDecoder,
    LocalProtocolError,
    RemoteProtocolError,
    decode_frame,
    encode_frame,
)
from susurro.protocol.framing import unpack_payload
from susurro.protocol.limits import (
    ABSOLUTE_MAX_FRAME,
    DEFAULT_MAX_FRAME,
    LENGTH_PREFIX_SIZE,
    MAX_ARRAY_LEN,
    MAX_MAP_LEN,
    MAX_STR_LEN,
)

payloads = st.binary(min_size=1, max_size=300)
payload_lists = st.lists(payloads, max_size=8)


def prefix(length: int) -> bytes:
    return struct.pack(">I", length)


def drain(decoder: FrameDecoder) -> list[bytes]:
    out = []
    while (payload := decoder.next_payload()) is not None:
        out.append(payload)
    return out


def feed_in_chunks(chunks: list[bytes], max_frame: int = DEFAULT_MAX_FRAME) -> list[bytes]:
    decoder = FrameDecoder(max_frame=max_frame)
    out: list[bytes] = []
    for chunk in chunks:
        decoder.feed(chunk)
        out.extend(drain(decoder))
    assert decoder.buffered == 0, "a complete stream must leave nothing buffered"
    return out


def stream_of(items: list[bytes]) -> bytes:
    return b"".join(encode_frame(p) for p in items)


# --- encode_frame ------------------------------------------------------------


def test_encode_frame_is_big_endian_length_then_payload() -> None:
    assert encode_frame(b"abc") == b"\x00\x00\x00\x03abc"
    big = bytes(range(256)) * 2
    assert encode_frame(big) == b"\x00\x00\x02\x00" + big


def test_encode_frame_accepts_exactly_max_frame() -> None:
    assert encode_frame(b"x" * 10, max_frame=10) == prefix(10) + b"x" * 10


def test_encode_frame_refuses_oversize_payload() -> None:
    with pytest.raises(LocalProtocolError) as info:
        encode_frame(b"x" * 11, max_frame=10)
    assert info.value.code is ErrorCode.FRAME_TOO_LARGE
    assert "11" in info.value.detail


def test_encode_frame_refuses_oversize_payload_at_default_limit() -> None:
    with pytest.raises(LocalProtocolError) as info:
        encode_frame(b"x" * (DEFAULT_MAX_FRAME + 1))
    assert info.value.code is ErrorCode.FRAME_TOO_LARGE


def test_encode_frame_refuses_empty_payload() -> None:
    with pytest.raises(LocalProtocolError) as info:
        encode_frame(b"")
    assert info.value.code is ErrorCode.BAD_FRAME


# --- FrameDecoder: round trips -------------------------------------------------


def test_decoder_needs_the_whole_prefix_and_body() -> None:
    decoder = FrameDecoder()
    frame = encode_frame(b"hello")
    for i, byte in enumerate(frame[:-1]):
        decoder.feed(bytes([byte]))
        assert decoder.next_payload() is None
        assert decoder.buffered == i + 1
    decoder.feed(frame[-1:])
    assert decoder.next_payload() == b"hello"
    assert decoder.next_payload() is None
    assert decoder.buffered == 0


def test_decoder_yields_several_frames_from_one_feed() -> None:
    decoder = FrameDecoder()
    decoder.feed(stream_of([b"a", b"bb", b"ccc"]) + prefix(2) + b"d")
    assert drain(decoder) == [b"a", b"bb", b"ccc"]
    assert decoder.buffered == LENGTH_PREFIX_SIZE + 1
    decoder.feed(b"e")
    assert drain(decoder) == [b"de"]


def test_decoder_feeding_empty_bytes_changes_nothing() -> None:
    decoder = FrameDecoder()
    decoder.feed(b"")
    assert decoder.next_payload() is None
    decoder.feed(encode_frame(b"x"))
    decoder.feed(b"")
    assert drain(decoder) == [b"x"]


def test_decoder_split_at_every_byte_boundary_fixed_stream() -> None:
    items = [b"\x81\xa1v\x01", b"z" * 300, b"\x00", bytes(range(256))]
    stream = stream_of(items)
    for cut in range(len(stream) + 1):
        assert feed_in_chunks([stream[:cut], stream[cut:]]) == items, f"cut at {cut}"


def test_decoder_byte_by_byte() -> None:
    items = [b"one", b"two" * 50, b"3"]
    stream = stream_of(items)
    assert feed_in_chunks([stream[i : i + 1] for i in range(len(stream))]) == items


@settings(max_examples=40, deadline=None)
@given(items=st.lists(st.binary(min_size=1, max_size=40), max_size=5))
def test_decoder_round_trip_split_at_every_byte_boundary(items: list[bytes]) -> None:
    stream = stream_of(items)
    for cut in range(len(stream) + 1):
        assert feed_in_chunks([stream[:cut], stream[cut:]]) == items


@given(items=payload_lists, data=st.data())
def test_decoder_round_trip_random_chunking(items: list[bytes], data: st.DataObject) -> None:
    stream = stream_of(items)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=20)))
    bounds = [0, *cuts, len(stream)]
    chunks = [stream[a:b] for a, b in itertools.pairwise(bounds)]
    assert b"".join(chunks) == stream
    assert feed_in_chunks(chunks) == items


@given(items=payload_lists)
def test_decoder_round_trip_whole_stream(items: list[bytes]) -> None:
    assert feed_in_chunks([stream_of(items)]) == items


def test_decoder_accepts_a_frame_of_exactly_max_frame() -> None:
    decoder = FrameDecoder(max_frame=16)
    decoder.feed(prefix(16) + b"y" * 16)
    assert decoder.next_payload() == b"y" * 16


@pytest.mark.parametrize("max_frame", [0, -1, ABSOLUTE_MAX_FRAME + 1])
def test_decoder_refuses_a_nonsensical_limit(max_frame: int) -> None:
    with pytest.raises(ValueError, match="max_frame"):
        FrameDecoder(max_frame=max_frame)


def test_decoder_accepts_the_absolute_limit() -> None:
    assert FrameDecoder(max_frame=ABSOLUTE_MAX_FRAME).max_frame == ABSOLUTE_MAX_FRAME


# --- FrameDecoder: hostile lengths -------------------------------------------


def test_zero_length_prefix_is_bad_frame_and_breaks_the_decoder() -> None:
    decoder = FrameDecoder()
    decoder.feed(encode_frame(b"ok") + prefix(0) + encode_frame(b"after"))
    assert decoder.next_payload() == b"ok"
    with pytest.raises(RemoteProtocolError) as info:
        decoder.next_payload()
    assert info.value.code is ErrorCode.BAD_FRAME
    with pytest.raises(RemoteProtocolError) as again:
        decoder.next_payload()
    assert again.value.code is ErrorCode.BAD_FRAME


@pytest.mark.parametrize(
    ("max_frame", "length"),
    [
        (16, 17),
        (DEFAULT_MAX_FRAME, DEFAULT_MAX_FRAME + 1),
        (DEFAULT_MAX_FRAME, 0xFFFFFFFF),
        (ABSOLUTE_MAX_FRAME, ABSOLUTE_MAX_FRAME + 1),
        (ABSOLUTE_MAX_FRAME, 0xFFFFFFFF),
    ],
)
def test_oversize_length_is_refused_from_the_prefix_alone(max_frame: int, length: int) -> None:
    decoder = FrameDecoder(max_frame=max_frame)
    decoder.feed(prefix(length)[:3])
    assert decoder.next_payload() is None  # three bytes are not a prefix yet
    decoder.feed(prefix(length)[3:])
    with pytest.raises(RemoteProtocolError) as info:
        decoder.next_payload()  # no body was fed: the prefix alone decides
    assert info.value.code is ErrorCode.FRAME_TOO_LARGE
    assert str(length) in info.value.detail
    assert decoder.buffered == LENGTH_PREFIX_SIZE


def test_decoder_stays_broken_after_frame_too_large() -> None:
    decoder = FrameDecoder()
    decoder.feed(prefix(0xFFFFFFFF))
    with pytest.raises(RemoteProtocolError) as first:
        decoder.next_payload()
    assert first.value.code is ErrorCode.FRAME_TOO_LARGE
    # Neither a valid frame nor more bytes can resynchronise the stream.
    with pytest.raises(RemoteProtocolError) as on_feed:
        decoder.feed(encode_frame(b"valid"))
    assert on_feed.value.code is ErrorCode.FRAME_TOO_LARGE
    with pytest.raises(RemoteProtocolError) as on_next:
        decoder.next_payload()
    assert on_next.value.code is ErrorCode.FRAME_TOO_LARGE
    assert decoder.buffered == LENGTH_PREFIX_SIZE  # the refused feed was not buffered


def test_frames_before_an_oversize_prefix_are_still_delivered() -> None:
    decoder = FrameDecoder(max_frame=8)
    decoder.feed(encode_frame(b"12345678") + prefix(9) + b"123456789")
    assert decoder.next_payload() == b"12345678"
    with pytest.raises(RemoteProtocolError) as info:
        decoder.next_payload()
    assert info.value.code is ErrorCode.FRAME_TOO_LARGE


# --- unpack_payload ----------------------------------------------------------


def test_unpack_payload_round_trips_a_map() -> None:
    value = {"v": 1, "t": "x", "b": b"\x00\xff", "l": [1, "two", None, True, 1.5], "m": {"k": -3}}
    assert unpack_payload(msgpack.packb(value, use_bin_type=True)) == value


def test_unpack_payload_keeps_bin_and_str_apart() -> None:
    out = unpack_payload(msgpack.packb({"s": "abc", "b": b"abc"}, use_bin_type=True))
    assert type(out["s"]) is str
    assert type(out["b"]) is bytes


GOOD = msgpack.packb({"v": 1, "t": "ping", "pad": "x" * 40}, use_bin_type=True)


def _ext(code: int, data: bytes) -> bytes:
    return msgpack.packb(msgpack.ExtType(code, data))


BAD_PAYLOADS = {
    "empty": b"",
    "truncated map": GOOD[:-1],
    "truncated header": GOOD[:1],
    "truncated str32 header": b"\xdb\x00\x00",
    "trailing byte": GOOD + b"\x00",
    "two objects": GOOD + GOOD,
    "reserved byte 0xc1": b"\xc1",
    "ext fixext1": _ext(5, b"a"),
    "fixext8 in map": msgpack.packb({"v": msgpack.ExtType(1, b"abcdefgh")}),
    "timestamp32": msgpack.packb(msgpack.Timestamp(1, 0)),
    "timestamp64": msgpack.packb(msgpack.Timestamp(1, 5)),
    "timestamp96": msgpack.packb(msgpack.Timestamp(2**40, 5)),
    "timestamp in map": msgpack.packb({"v": 1, "t": msgpack.Timestamp(1, 0)}),
    "int map key": msgpack.packb({1: 1}),
    "nil map key": b"\x81\xc0\x01",
    "array map key": b"\x81\x91\x01\x01",
    "nested int map key": msgpack.packb({"v": {1: 2}}),
    "str too long": msgpack.packb("x" * (MAX_STR_LEN + 1)),
    "array too long": msgpack.packb([0] * (MAX_ARRAY_LEN + 1)),
    "map too long": msgpack.packb({str(i): 0 for i in range(MAX_MAP_LEN + 1)}),
    "array32 header claiming 2**32-1 items": b"\xdd\xff\xff\xff\xff",
    "map32 header claiming 2**32-1 items": b"\xdf\xff\xff\xff\xff",
    "bin32 header claiming 4 GiB": b"\xc6\xff\xff\xff\xff",
    "deep nesting": b"\x91" * 100_000 + b"\xc0",
}


@pytest.mark.parametrize("payload", list(BAD_PAYLOADS.values()), ids=list(BAD_PAYLOADS))
def test_unpack_payload_rejects(payload: bytes) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        unpack_payload(payload)
    assert info.value.code is ErrorCode.BAD_FRAME


def test_unpack_payload_limits_at_the_boundary_are_accepted() -> None:
    assert unpack_payload(msgpack.packb("x" * MAX_STR_LEN)) == "x" * MAX_STR_LEN
    assert len(unpack_payload(msgpack.packb([0] * MAX_ARRAY_LEN))) == MAX_ARRAY_LEN
    assert len(unpack_payload(msgpack.packb({str(i): 0 for i in range(MAX_MAP_LEN)}))) == MAX_MAP_LEN


def test_unpack_payload_bin_limit_follows_max_bin_len() -> None:
    payload = msgpack.packb(b"x" * 101, use_bin_type=True)
    assert unpack_payload(payload, max_bin_len=101) == b"x" * 101
    with pytest.raises(RemoteProtocolError) as info:
        unpack_payload(payload, max_bin_len=100)
    assert info.value.code is ErrorCode.BAD_FRAME


def test_unpack_payload_rejects_zero_length_ext() -> None:
    # max_ext_len=0 alone lets ext8 with length 0 through; it must still be refused.
    with pytest.raises(RemoteProtocolError) as info:
        unpack_payload(b"\x81\xa1v\xc7\x00\x05")  # {"v": ExtType(5, b"")}
    assert info.value.code is ErrorCode.BAD_FRAME
    with pytest.raises(RemoteProtocolError) as top_level:
        unpack_payload(b"\xc7\x00\x05")
    assert top_level.value.code is ErrorCode.BAD_FRAME


@pytest.mark.parametrize(
    "payload",
    [
        msgpack.packb({b"v": 1}, use_bin_type=True),
        msgpack.packb({"v": 1, "t": "send", "to": {b"bob": b"x"}}, use_bin_type=True),
        msgpack.packb({"v": 1, "l": [{"ok": 1}, {b"k": 2}]}, use_bin_type=True),
    ],
    ids=["top level", "nested map", "map in a list"],
)
def test_unpack_payload_rejects_bin_map_keys(payload: bytes) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        unpack_payload(payload)
    assert info.value.code is ErrorCode.BAD_FRAME


@pytest.mark.parametrize(
    "payload",
    [
        b"\x82\xa1v\x01\xa1v\x01",  # {"v": 1, "v": 1}
        b"\x83\xa1v\x01\xa1t\xa4ping\xa1t\xa4send",  # two different "t"
        b"\x81\xa1m\x82\xa1k\x01\xa1k\x02",  # duplicate key in a nested map
    ],
    ids=["same value", "conflicting type", "nested"],
)
def test_unpack_payload_rejects_duplicate_map_keys(payload: bytes) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        unpack_payload(payload)
    assert info.value.code is ErrorCode.BAD_FRAME


# --- fuzz invariant ------------------------------------------------------------


def _check_payload(payload: bytes) -> None:
    for allowed in (CLIENT_FRAMES, RELAY_FRAMES):
        try:
            frame = decode_frame(payload, allowed)
        except RemoteProtocolError as exc:
            assert isinstance(exc.code, ErrorCode)
        else:
            assert isinstance(frame, Frame)
            assert frame.TYPE in allowed


def _frames(items: list[bytes]) -> bytes:
    return b"".join(prefix(len(p)) + p for p in items)


hostile_streams = st.one_of(
    st.binary(max_size=400),
    st.lists(st.binary(max_size=60), max_size=6).map(_frames),
    # Plausible frames (msgpack maps with v and t), so decode_frame gets past the first checks.
    st.lists(
        st.fixed_dictionaries(
            {"v": st.sampled_from([1, 1, 2, True]), "t": st.sampled_from([*CLIENT_FRAMES, *RELAY_FRAMES, "x"])},
            optional={
                "name": st.text(max_size=5),
                "id": st.text(max_size=5),
                "ct": st.binary(max_size=5),
                "to": st.dictionaries(st.text(max_size=3), st.binary(max_size=3), max_size=2),
                "nonce": st.binary(min_size=32, max_size=32),
                "reason": st.text(max_size=5),
            },
        ).map(lambda d: msgpack.packb(d, use_bin_type=True)),
        max_size=4,
    ).map(_frames),
)


@settings(max_examples=300, deadline=None)
@given(stream=hostile_streams, max_frame=st.sampled_from([1, 8, 64, DEFAULT_MAX_FRAME]), data=st.data())
def test_fuzz_any_bytes_decode_or_raise_remote_protocol_error(
    stream: bytes, max_frame: int, data: st.DataObject
) -> None:
    # Flip some bytes so well-formed streams become almost-well-formed ones.
    mutable = bytearray(stream)
    for _ in range(data.draw(st.integers(0, 3)) if stream else 0):
        mutable[data.draw(st.integers(0, len(stream) - 1))] ^= data.draw(st.integers(1, 255))
    stream = bytes(mutable)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    bounds = [0, *cuts, len(stream)]
    decoder = FrameDecoder(max_frame=max_frame)
    try:
        for a, b in itertools.pairwise(bounds):
            decoder.feed(stream[a:b])
            for payload in drain(decoder):
                assert 0 < len(payload) <= max_frame
                _check_payload(payload)
    except RemoteProtocolError as exc:
        assert exc.code in (ErrorCode.BAD_FRAME, ErrorCode.FRAME_TOO_LARGE)
        with pytest.raises(RemoteProtocolError):
            decoder.next_payload()
    else:
        assert decoder.buffered <= len(stream)


@given(payload=st.binary(max_size=200))
def test_fuzz_unpack_payload_parses_or_raises_bad_frame(payload: bytes) -> None:
    try:
        unpack_payload(payload)
    except RemoteProtocolError as exc:
        assert exc.code is ErrorCode.BAD_FRAME
    _check_payload(payload)
