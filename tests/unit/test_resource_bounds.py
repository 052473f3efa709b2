"""Bounds on what one frame can cost: container budget, handshake frame size, nesting.

Regression tests for findings of the first adversarial review: a 1 MiB frame of
empty containers cost the relay ~70 MiB of heap, an unauthenticated peer could
send full-size frames, and deep nesting made ``repr`` raise out of both parsers.
"""

from __future__ import annotations

import msgpack
import pytest

from susurro.client.session import ClientSession
from susurro.crypto import BoxCache, IdentityKey, MalformedMessage, SessionKey, open_message, pad
from susurro.protocol import (
    CLIENT_FRAMES,
    RELAY_FRAMES,
    ErrorCode,
    Member,
    RemoteProtocolError,
    Welcome,
    decode_frame,
    encode,
)
from susurro.protocol.framing import unpack_payload
from susurro.protocol.limits import MAX_CONTAINERS, MAX_HANDSHAKE_FRAME, MAX_ROSTER
from susurro.relay import RelayConfig, RelayCore
from tests.helpers.memory import MemoryOutbox


def empty_arrays(groups: int, per_group: int) -> bytes:
    """A ping map whose extra field holds ``groups`` arrays of ``per_group`` empty
    arrays (1 byte each): every container is within the per-container limits."""
    head = msgpack.packb({"v": 1, "t": "ping"})[1:]
    group = b"\xdc" + per_group.to_bytes(2, "big") + b"\x90" * per_group
    return b"\x83" + head + msgpack.packb("x") + b"\xdc" + groups.to_bytes(2, "big") + group * groups


def test_container_budget_refuses_amplification() -> None:
    payload = empty_arrays(3, 5000)  # 15,004 containers in 15 KB
    assert 3 * 5000 > MAX_CONTAINERS
    with pytest.raises(RemoteProtocolError) as caught:
        unpack_payload(payload)
    assert caught.value.code is ErrorCode.BAD_FRAME


def test_container_budget_admits_what_fits() -> None:
    assert isinstance(unpack_payload(empty_arrays(2, 5000)), dict)


def test_container_budget_admits_a_full_roster() -> None:
    member = Member(name="m", ik=b"\x01" * 32, sk=b"\x02" * 32, cert=b"\x03" * 64, issued_at=1)
    roster = tuple(
        Member(name=f"m{i}", ik=member.ik, sk=member.sk, cert=member.cert, issued_at=1) for i in range(MAX_ROSTER)
    )
    frame = encode(Welcome(name="me", roster=roster), max_frame=16 * 1024 * 1024)
    decoded = decode_frame(frame[4:], RELAY_FRAMES, max_bin_len=16 * 1024 * 1024)
    assert isinstance(decoded, Welcome) and len(decoded.roster) == MAX_ROSTER


@pytest.mark.parametrize("field", ["v", "t"])
def test_deeply_nested_version_or_type_is_a_typed_error(field: str) -> None:
    depth = 1020  # below msgpack's nesting limit, above repr's recursion limit
    nested = b"\x91" * depth + b"\x01"
    other = msgpack.packb({"t": "ping"} if field == "v" else {"v": 1})[1:]
    payload = b"\x82" + msgpack.packb(field) + nested + other
    with pytest.raises(RemoteProtocolError) as caught:
        decode_frame(payload, CLIENT_FRAMES)
    assert caught.value.code in (ErrorCode.BAD_VERSION, ErrorCode.BAD_TYPE, ErrorCode.BAD_FRAME)


def test_relay_refuses_a_large_frame_before_join() -> None:
    core = RelayCore(RelayConfig())
    outbox = MemoryOutbox()
    conn = core.connect(outbox, "test")
    assert conn is not None
    keep_open = core.receive(conn, (MAX_HANDSHAKE_FRAME + 1).to_bytes(4, "big"))
    assert keep_open is False
    error = decode_frame(outbox.data[-1][4:], RELAY_FRAMES)
    assert getattr(error, "code", None) == ErrorCode.FRAME_TOO_LARGE.value


def test_sealed_plaintext_with_too_many_containers_is_malformed() -> None:
    alice, bob = IdentityKey.generate(), IdentityKey.generate()
    alice_session, bob_session = SessionKey.generate(), SessionKey.generate()
    # An envelope [x, 1] where x holds two arrays of 1,000 empty arrays each:
    # every container is within msgpack's per-container limit, the total is not.
    thousand = b"\xdc" + (1000).to_bytes(2, "big") + b"\x90" * 1000
    bomb = b"\x92" + b"\x92" + thousand + thousand + b"\x01"
    ct = BoxCache(alice_session).box_for(bob_session.public).encrypt(pad(bomb))
    with pytest.raises(MalformedMessage, match="not valid msgpack"):
        open_message(
            boxes=BoxCache(bob_session),
            ciphertext=bytes(ct),
            relay_sender="alice",
            sender_identity_key=alice.public,
            sender_session_key=alice_session.public,
            own_name="bob",
            own_identity_key=bob.public,
        )


def test_client_frame_limit_follows_the_relay_but_stays_bounded() -> None:
    from susurro.client.handshake import relay_frame_limit

    assert relay_frame_limit(4096) == 4 * 1024 * 1024
    assert relay_frame_limit(8 * 1024 * 1024) == 16 * 1024 * 1024
    assert relay_frame_limit(16 * 1024 * 1024) == 16 * 1024 * 1024
    session = ClientSession(IdentityKey.generate(), "zoe")
    events = session.receive_data(b"\x01\x00\x00\x01", now=0.0)  # a 16 MiB + 1 length prefix
    assert [type(e).__name__ for e in events] == ["Disconnected"]
