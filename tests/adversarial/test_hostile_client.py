"""A hostile client against a real relay on a loopback port.

Each case sends something a well-behaved client never would and checks the
exact ``error`` code, whether the connection is then closed or kept (as the
table in docs/protocol.md says), and that the relay keeps serving everyone
else: every test ends with two fresh members chatting through the same relay.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Callable
from typing import Any

import pytest

from susurro.crypto import IdentityKey, SessionKey
from susurro.protocol import (
    CLIENT_FRAMES,
    Ack,
    Deliver,
    Dropped,
    Error,
    Joined,
    Left,
    Member,
    Ping,
    RemoteProtocolError,
    Welcome,
    decode_frame,
)
from susurro.protocol.framing import pack_payload
from susurro.protocol.limits import PROTOCOL_VERSION
from susurro.relay import RelayServer
from tests.helpers.hostile_client import (
    ROSTER_NOISE,
    Closed,
    HostileClient,
    NoFrame,
    assert_pair_can_chat,
    connect,
    length_prefix,
    raw_frame,
    raw_payload_frame,
)

Factory = Callable[..., RelayServer]
V = PROTOCOL_VERSION


@pytest.fixture
def open_client(hostile_clients: list[HostileClient]) -> Callable[[RelayServer], HostileClient]:
    def make(server: RelayServer) -> HostileClient:
        client = connect(server)
        hostile_clients.append(client)
        return client

    return make


def assert_refused_and_closed(client: HostileClient, code: str) -> None:
    client.expect_error(code)
    client.expect_closed()


def valid_ping_map(**overrides: Any) -> dict[str, Any]:
    frame: dict[str, Any] = {"v": V, "t": "ping"}
    frame.update(overrides)
    return frame


# --- bytes that are not frames -------------------------------------------------


def test_random_bytes_get_an_error_and_a_close(relay_server: RelayServer, open_client: Any) -> None:
    blob = bytearray(os.urandom(64))
    blob[0] |= 0x80  # a length of at least 2 GiB, whatever the rest is
    client = open_client(relay_server)
    client.challenge()
    client.send_raw(bytes(blob))
    assert_refused_and_closed(client, "frame_too_large")

    # Random payloads behind a correct length prefix: the relay must answer what
    # the protocol's own decoder says about them, and close (nobody has joined).
    for size in (1, 7, 48, 300):
        body = os.urandom(size)
        try:
            decode_frame(body, CLIENT_FRAMES)
        except RemoteProtocolError as exc:
            expected = exc.code.value
        else:  # pragma: no cover - random bytes forming a valid frame
            pytest.skip("os.urandom produced a valid frame")
        assert expected in {"bad_frame", "bad_version", "bad_type", "bad_field"}
        client = open_client(relay_server)
        client.challenge()
        client.send_raw(raw_payload_frame(body))
        assert_refused_and_closed(client, expected)
    assert_pair_can_chat(relay_server)


def test_4_gib_length_prefix_is_refused_at_once(relay_server: RelayServer, open_client: Any) -> None:
    client = open_client(relay_server)
    client.challenge()
    client.send_raw(b"\xff\xff\xff\xff")  # no body follows: the prefix alone must be refused
    assert_refused_and_closed(client, "frame_too_large")
    assert_pair_can_chat(relay_server)


def padded_ping(payload_size: int) -> bytes:
    """A valid ping whose payload is exactly ``payload_size`` bytes (an ignored extra field pads it)."""
    for pad in range(payload_size, 0, -1):
        payload = pack_payload(valid_ping_map(pad=b"x" * pad))
        if len(payload) == payload_size:
            return raw_payload_frame(payload)
    raise AssertionError(f"cannot pad a ping to {payload_size} bytes")


def test_frame_limit_is_exact(relay_factory: Factory, open_client: Any, member: Any) -> None:
    server = relay_factory(max_frame=4096)
    alice = member(server, "alice")
    assert alice.challenge().max_frame == 4096
    alice.send_raw(padded_ping(4096))  # exactly at the limit: accepted
    alice.expect_frame("pong")

    over = open_client(server)
    over.challenge()
    over.send_raw(length_prefix(4097) + b"\x82")
    assert_refused_and_closed(over, "frame_too_large")

    # Even a member is cut: the byte stream is out of sync after a bad length.
    alice.send_raw(length_prefix(4097))
    assert_refused_and_closed(alice, "frame_too_large")
    assert_pair_can_chat(server)


def test_zero_length_frame(relay_server: RelayServer, open_client: Any) -> None:
    client = open_client(relay_server)
    client.challenge()
    client.send_raw(length_prefix(0))
    assert_refused_and_closed(client, "bad_frame")
    assert_pair_can_chat(relay_server)


@pytest.mark.parametrize("obj", [[V, "ping"], 7, "ping", b"\x81\xa1v\x01", None, 1.5], ids=repr)
def test_msgpack_that_is_not_a_map(relay_server: RelayServer, open_client: Any, obj: object) -> None:
    client = open_client(relay_server)
    client.challenge()
    client.send_map(obj)
    assert_refused_and_closed(client, "bad_frame")
    assert_pair_can_chat(relay_server)


def test_msgpack_the_relay_must_refuse(relay_server: RelayServer, open_client: Any) -> None:
    good = pack_payload(valid_ping_map())
    duplicate_key = b"\x83\xa1v\x01\xa1v\x01\xa1t\xa4ping"
    bin_key = b"\x82\xa1v\x01\xc4\x01t\xa4ping"
    timestamp_ext = b"\x83\xa1v\x01\xa1t\xa4ping\xa1x\xd6\xff\x00\x00\x00\x00"
    empty_ext = b"\x83\xa1v\x01\xa1t\xa4ping\xa1x\xc7\x00\x05"
    for payload in (good[:-1], good + b"\x00", duplicate_key, bin_key, timestamp_ext, empty_ext):
        client = open_client(relay_server)
        client.challenge()
        client.send_raw(raw_payload_frame(payload))
        assert_refused_and_closed(client, "bad_frame")
    assert_pair_can_chat(relay_server)


# --- frames of the wrong version or type ----------------------------------------


@pytest.mark.parametrize(
    "version",
    [
        2,
        0,
        -1,
        "1",
        True,
        None,
        1.0,
    ],
    ids=repr,
)
def test_wrong_version(relay_server: RelayServer, open_client: Any, version: object) -> None:
    client = open_client(relay_server)
    client.challenge()
    client.send_map(valid_ping_map(v=version))
    assert_refused_and_closed(client, "bad_version")
    assert_pair_can_chat(relay_server)


def test_missing_version(relay_server: RelayServer, open_client: Any) -> None:
    client = open_client(relay_server)
    client.challenge()
    client.send_map({"t": "ping"})
    assert_refused_and_closed(client, "bad_version")
    assert_pair_can_chat(relay_server)


@pytest.mark.parametrize("kind", ["nope", "", "PING", 5, None, b"ping"], ids=repr)
def test_unknown_type(relay_server: RelayServer, open_client: Any, kind: object) -> None:
    client = open_client(relay_server)
    client.challenge()
    client.send_map({"v": V, "t": kind})
    assert_refused_and_closed(client, "bad_type")
    assert_pair_can_chat(relay_server)


def forged_deliver() -> dict[str, Any]:
    return {"v": V, "t": "deliver", "from": "alice", "id": "x1", "ct": b"\x01" * 40}


@pytest.mark.parametrize(
    "frame",
    [
        forged_deliver(),
        {"v": V, "t": "challenge", "nonce": b"\x00" * 32, "max_frame": 4096, "max_recipients": 8},
        {"v": V, "t": "welcome", "name": "alice", "roster": []},
        {"v": V, "t": "pong"},
        {"v": V, "t": "error", "code": "full", "detail": ""},
        {"v": V, "t": "shutdown", "reason": "bye"},
    ],
    ids=lambda f: f["t"],
)
def test_relay_only_type_from_a_client(relay_server: RelayServer, open_client: Any, frame: dict[str, Any]) -> None:
    client = open_client(relay_server)
    client.challenge()
    client.send_map(frame)
    assert_refused_and_closed(client, "bad_type")
    assert_pair_can_chat(relay_server)


def test_relay_only_type_from_a_member_is_refused_but_kept(relay_server: RelayServer, member: Any) -> None:
    alice = member(relay_server, "alice")
    bob = member(relay_server, "bob")
    alice.expect_frame(Joined)
    # A member trying to inject a deliver "from alice" into bob's stream.
    mallory = member(relay_server, "mallory")
    mallory.send_map({**forged_deliver(), "to": "bob"})
    mallory.expect_error("bad_type")
    mallory.ping()
    bob.expect_frame(Joined)  # mallory; nothing forwarded in between
    bob.ping()
    assert_pair_can_chat(relay_server)


# --- the join -------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        {"v": V, "t": "send", "id": "m1", "to": {"alice": b"\x01" * 32}},
        {"v": V, "t": "ping"},
        {"v": V, "t": "bye"},
    ],
    ids=lambda f: f["t"],
)
def test_frames_before_hello(relay_server: RelayServer, open_client: Any, member: Any, frame: dict[str, Any]) -> None:
    alice = member(relay_server, "alice")
    client = open_client(relay_server)
    client.challenge()
    client.send_map(frame)
    assert_refused_and_closed(client, "not_joined")
    alice.ping()  # nothing reached alice: her next frame is her pong
    assert_pair_can_chat(relay_server)


def test_hello_with_a_proof_over_the_wrong_nonce(relay_server: RelayServer, open_client: Any) -> None:
    client = open_client(relay_server)
    client.send_frame(client.make_hello("alice", nonce=secrets.token_bytes(32)))
    assert_refused_and_closed(client, "bad_proof")
    assert_pair_can_chat(relay_server)


def test_hello_with_a_proof_by_another_key(relay_server: RelayServer, open_client: Any) -> None:
    client = open_client(relay_server)
    client.send_frame(client.make_hello("alice", proof_identity=IdentityKey.generate()))
    assert_refused_and_closed(client, "bad_proof")
    assert_pair_can_chat(relay_server)


def test_replayed_hello_from_another_connection(relay_server: RelayServer, open_client: Any, member: Any) -> None:
    # An eavesdropper records alice's hello and replays it on its own connection
    # after she left: the proof is bound to her connection's nonce.
    alice = open_client(relay_server)
    hello = alice.make_hello("alice")
    alice.send_frame(hello)
    alice.expect_frame(Welcome)
    alice.send_frame(Ping())
    alice.expect_frame("pong")
    watcher = member(relay_server, "watcher")
    alice.close()
    watcher.expect_frame(Left)
    replayer = open_client(relay_server)
    assert replayer.challenge().nonce != alice.challenge().nonce
    replayer.send_frame(hello)
    assert_refused_and_closed(replayer, "bad_proof")
    assert_pair_can_chat(relay_server)


@pytest.mark.parametrize(
    "forgery",
    [
        {"cert_identity": "other"},
        {"cert_name": "mallory"},
        {"cert_session": "other"},
        {"cert_issued_at": 12345},
    ],
    ids=lambda f: next(iter(f)),
)
def test_hello_with_a_bad_certificate(relay_server: RelayServer, open_client: Any, forgery: dict[str, Any]) -> None:
    if forgery.get("cert_identity") == "other":
        forgery = {"cert_identity": IdentityKey.generate()}
    if forgery.get("cert_session") == "other":
        forgery = {"cert_session": SessionKey.generate().public}
    client = open_client(relay_server)
    client.send_frame(client.make_hello("alice", **forgery))  # the proof itself is valid
    assert_refused_and_closed(client, "bad_cert")
    assert_pair_can_chat(relay_server)


@pytest.mark.parametrize(
    "name",
    [
        "a b",
        "\u0430lice",  # Cyrillic а, then Latin
        "paypa\u04cf",  # Latin, then Cyrillic palochka
        "alice\u200b",  # zero-width space
        "bob\u202e",  # right-to-left override
        "al\x00ice",
        "x" * 33,
        "...",
        "\u0301a",  # combining mark with no letter before it
    ],
    ids=ascii,
)
def test_hello_with_a_bad_name(relay_server: RelayServer, open_client: Any, name: str) -> None:
    client = open_client(relay_server)
    client.send_frame(client.make_hello(name))  # certificate and proof are honest
    assert_refused_and_closed(client, "bad_name")
    assert_pair_can_chat(relay_server)


@pytest.mark.parametrize("name", ["ａｌｉｃｅ", "e\u0301ric", "ﬁona", "bob\u2460"], ids=ascii)
def test_hello_with_a_name_not_in_nfkc(relay_server: RelayServer, open_client: Any, name: str) -> None:
    client = open_client(relay_server)
    client.send_frame(client.make_hello(name))
    error = client.expect_error("bad_name")
    assert "normalized" in error.detail
    client.expect_closed()
    assert_pair_can_chat(relay_server)


@pytest.mark.parametrize(
    "taken", ["alice", "ALICE", "Alice", "aLiCe", "al\u0131ce", "\u0430\u04cf\u0456\u0441\u0435"], ids=ascii
)  # the last two: dotless i, all-Cyrillic
def test_duplicate_name(relay_server: RelayServer, open_client: Any, member: Any, taken: str) -> None:
    alice = member(relay_server, "alice")
    impostor = open_client(relay_server)
    impostor.send_frame(impostor.make_hello(taken))
    assert_refused_and_closed(impostor, "name_taken")
    alice.ping()  # she saw no joined and no left, and is still connected
    checker = connect(relay_server)
    try:
        welcome = checker.join("checker")
        assert [m.name for m in welcome.roster] == ["alice"]
        assert welcome.roster[0].ik == alice.identity.public  # the original, not the impostor
    finally:
        checker.close()
    assert_pair_can_chat(relay_server)


def test_second_hello_is_refused_and_the_member_stays(relay_server: RelayServer, member: Any) -> None:
    alice = member(relay_server, "alice")
    alice.send_frame(alice.make_hello("mallory"))
    alice.expect_error("already_joined")
    alice.ping()
    bob = connect(relay_server)
    try:
        welcome = bob.join("bob")
        assert [m.name for m in welcome.roster] == ["alice"]  # no "mallory"
        bob.send_message("m1", {"alice": b"\x07" * 64})
        deliver = alice.expect_frame(Deliver, skip=("joined",))
        assert isinstance(deliver, Deliver) and deliver.ct == b"\x07" * 64
        assert bob.expect_frame(Ack) == Ack(id="m1", delivered=("alice",), missing=())
    finally:
        bob.close()
    assert_pair_can_chat(relay_server)


# --- after the join ---------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        {"v": V, "t": "send", "id": "m1", "to": {}},
        {"v": V, "t": "send", "id": "m1", "to": {"bob": "not bytes"}},
        {"v": V, "t": "send", "id": "m1", "to": {"bob": 5}},
        {"v": V, "t": "send", "id": "m1", "to": {"bob": b""}},
        {"v": V, "t": "send", "id": "m1", "to": ["bob"]},
        {"v": V, "t": "send", "id": "m1", "to": {"bob": [b"\x01"]}},
        {"v": V, "t": "send", "id": "m1"},
        {"v": V, "t": "send", "to": {"bob": b"\x01"}},
        {"v": V, "t": "send", "id": 5, "to": {"bob": b"\x01"}},
        {"v": V, "t": "send", "id": "", "to": {"bob": b"\x01"}},
        {"v": V, "t": "send", "id": "x" * 65, "to": {"bob": b"\x01"}},
        {"v": V, "t": "send", "id": "m1", "to": {"x" * 129: b"\x01"}},
        {"v": V, "t": "hello", "name": "alice"},
    ],
    ids=lambda f: repr({k: v for k, v in f.items() if k not in ("v",)})[:60],
)
def test_malformed_frame_from_a_member_is_refused_but_kept(
    relay_server: RelayServer, member: Any, frame: dict[str, Any]
) -> None:
    alice = member(relay_server, "alice")
    bob = member(relay_server, "bob")
    alice.expect_frame(Joined)
    alice.send_map(frame)
    alice.expect_error("bad_field")
    alice.ping()
    # Nothing of the refused frame reached bob: his next frame is this deliver.
    alice.send_message("m2", {"bob": b"\x02" * 48})
    deliver = bob.expect_frame(Deliver)
    assert isinstance(deliver, Deliver) and (deliver.id, deliver.ct) == ("m2", b"\x02" * 48)
    assert alice.expect_frame(Ack) == Ack(id="m2", delivered=("bob",), missing=())
    assert_pair_can_chat(relay_server)


def test_too_many_recipients(relay_factory: Factory, member: Any) -> None:
    server = relay_factory(max_recipients=2)
    alice = member(server, "alice")
    assert alice.challenge().max_recipients == 2
    bob = member(server, "bob")
    carol = member(server, "carol")
    alice.expect_frame(Joined)
    alice.expect_frame(Joined)
    bob.expect_frame(Joined)
    alice.send_message("m1", {"bob": b"\x01" * 40, "carol": b"\x02" * 40, "dave": b"\x03" * 40})
    alice.expect_error("too_many_recipients")
    alice.ping()
    # Exactly the limit is fine, and the refused send delivered nothing.
    alice.send_message("m2", {"bob": b"\x04" * 40, "carol": b"\x05" * 40})
    for recipient, ct in ((bob, b"\x04" * 40), (carol, b"\x05" * 40)):
        deliver = recipient.expect_frame(Deliver)
        assert isinstance(deliver, Deliver) and (deliver.id, deliver.ct) == ("m2", ct)
    ack = alice.expect_frame(Ack)
    assert isinstance(ack, Ack)
    assert sorted(ack.delivered) == ["bob", "carol"] and ack.missing == ()
    bob.close()
    carol.close()
    assert_pair_can_chat(server)


def test_ack_lists_absent_names_as_missing(relay_server: RelayServer, member: Any) -> None:
    alice = member(relay_server, "alice")
    bob = member(relay_server, "bob")
    alice.expect_frame(Joined)
    alice.send_message("m1", {"bob": b"\x01" * 40, "ghost": b"\x02" * 40})
    deliver = bob.expect_frame(Deliver)
    assert isinstance(deliver, Deliver) and (deliver.sender, deliver.ct) == ("alice", b"\x01" * 40)
    assert alice.expect_frame(Ack) == Ack(id="m1", delivered=("bob",), missing=("ghost",))
    alice.send_message("m2", {"ghost": b"\x03" * 40})
    assert alice.expect_frame(Ack) == Ack(id="m2", delivered=(), missing=("ghost",))
    bob.ping()  # bob got nothing for m2
    assert_pair_can_chat(relay_server)


def test_recipients_get_only_their_own_ciphertext(relay_server: RelayServer, member: Any) -> None:
    alice = member(relay_server, "alice")
    bob = member(relay_server, "bob")
    carol = member(relay_server, "carol")
    cts = {"bob": secrets.token_bytes(64), "carol": secrets.token_bytes(64)}
    alice.send_message("m1", cts)
    for name, client in (("bob", bob), ("carol", carol)):
        deliver = client.expect_frame(Deliver, skip=ROSTER_NOISE)
        assert deliver == Deliver(sender="alice", id="m1", ct=cts[name])
    ack = alice.expect_frame(Ack, skip=ROSTER_NOISE)
    assert isinstance(ack, Ack) and sorted(ack.delivered) == ["bob", "carol"]
    bob.ping()
    carol.ping()


# --- connections that misbehave at the TCP level ------------------------------------


def test_half_a_frame_then_reset(relay_server: RelayServer, member: Any, open_client: Any) -> None:
    alice = member(relay_server, "alice")
    bob = member(relay_server, "bob")
    alice.expect_frame(Joined)
    mallory = open_client(relay_server)
    welcome = mallory.join("mallory")
    assert sorted(m.name for m in welcome.roster) == ["alice", "bob"]
    for watcher in (alice, bob):
        joined = watcher.expect_frame(Joined)
        assert isinstance(joined, Joined) and joined.member.name == "mallory"
    frame = raw_frame({"v": V, "t": "send", "id": "m1", "to": {"alice": b"\x09" * 200, "bob": b"\x09" * 200}})
    mallory.send_raw(frame[: len(frame) // 2])
    mallory.abort()
    # The next thing each member sees is mallory leaving: no partial deliver.
    for watcher in (alice, bob):
        assert watcher.expect_frame(Left) == Left(name="mallory")
    alice.send_message("m2", {"bob": b"\x0a" * 40})
    deliver = bob.expect_frame(Deliver)
    assert isinstance(deliver, Deliver) and deliver.id == "m2"
    assert alice.expect_frame(Ack) == Ack(id="m2", delivered=("bob",), missing=())
    assert_pair_can_chat(relay_server)


def test_hello_dribbled_byte_by_byte_and_frames_pipelined(relay_server: RelayServer, open_client: Any) -> None:
    client = open_client(relay_server)
    data = raw_frame(client.make_hello("alice").to_wire())
    for i in range(len(data)):
        client.send_raw(data[i : i + 1])
    assert client.expect_frame(Welcome) == Welcome(name="alice", roster=())
    client.send_raw(raw_frame(valid_ping_map()) * 3)
    for _ in range(3):
        client.expect_frame("pong")
    assert_pair_can_chat(relay_server)


def test_handshake_timeout(relay_factory: Factory, open_client: Any) -> None:
    server = relay_factory(handshake_timeout=0.5)
    started = time.monotonic()
    silent = open_client(server)
    silent.challenge()
    assert_refused_and_closed(silent, "handshake_timeout")
    assert time.monotonic() - started >= 0.4
    assert_pair_can_chat(server)


def test_handshake_timeout_counts_from_connect(relay_factory: Factory, open_client: Any) -> None:
    server = relay_factory(handshake_timeout=0.5)
    slow = open_client(server)
    started = time.monotonic()
    slow.challenge()
    slow.send_raw(length_prefix(200))  # a hello that never completes
    error = None
    while error is None and time.monotonic() - started < 2.5:  # five times the timeout
        try:
            slow.send_raw(b"\x00")  # one byte every 0.2 s keeps each recv() busy
        except OSError:
            pass  # already closed by the relay: its error frame is still readable
        try:
            error = slow.recv_frame(timeout=0.2)
        except Closed:
            break
        except NoFrame:
            continue
    assert error is not None, "a client trickling a partial hello was never timed out"
    assert isinstance(error, Error) and error.code == "handshake_timeout"
    assert time.monotonic() - started < 1.5
    slow.expect_closed()
    assert_pair_can_chat(server)


def test_a_member_who_never_reads_is_evicted_not_waited_for(
    relay_factory: Factory, member: Any, hostile_clients: list[HostileClient], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="susurro.relay")
    # Flood control off: this sender floods on purpose, to fill kernel buffers.
    server = relay_factory(outbox_bytes=4096, rate_per_second=0)
    watcher = member(server, "watcher")
    sloth = connect(server, rcvbuf=4096)
    hostile_clients.append(sloth)
    sloth.join("sloth")
    sender = member(server, "sender")
    watcher.expect_frame(Joined)
    watcher.expect_frame(Joined)
    ct = secrets.token_bytes(64 * 1024)
    started = time.monotonic()
    for i in range(1000):  # at most 64 MiB: far more than any loopback socket buffers
        sender.send_message(f"m{i}", {"sloth": ct})
        ack = sender.expect_frame(Ack, skip=ROSTER_NOISE)
        assert isinstance(ack, Ack) and ack.id == f"m{i}"
        if ack.missing:
            assert ack == Ack(id=f"m{i}", delivered=(), missing=("sloth",))
            break
        assert ack.delivered == ("sloth",)
        assert time.monotonic() - started < 15, "the relay never gave up on a reader that does not read"
    else:
        pytest.fail("a member who never reads was never reported missing")
    assert watcher.expect_frame(Left) == Left(name="sloth")
    # The leave line is logged just after the left frames are queued: wait for it, bounded.
    deadline = time.monotonic() + 5
    while not any(r.getMessage().startswith("leave name=sloth ") for r in caplog.records):
        assert time.monotonic() < deadline, "no leave line was logged for sloth"
        time.sleep(0.01)
    leave = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("leave name=sloth "))
    assert leave.endswith("reason=slow_consumer members=2"), leave
    # What was acked as queued and never left is named to the sender (at least the last copy).
    dropped = sender.expect_frame(Dropped, skip=ROSTER_NOISE)
    assert isinstance(dropped, Dropped) and dropped.name == "sloth" and dropped.reason == "slow_reader"
    sender.ping()  # the sender was never blocked
    assert_pair_can_chat(server)


def test_max_clients(relay_factory: Factory, open_client: Any, member: Any) -> None:
    server = relay_factory(max_clients=2)
    alice = member(server, "alice")
    bob = member(server, "bob")
    alice.expect_frame(Joined)
    third = open_client(server)
    assert_refused_and_closed(third, "full")  # no challenge first: refused at once
    # The two admitted members still chat.
    bob.send_message("m1", {"alice": b"\x01" * 40})
    assert alice.expect_frame(Deliver) == Deliver(sender="bob", id="m1", ct=b"\x01" * 40)
    assert bob.expect_frame(Ack) == Ack(id="m1", delivered=("alice",), missing=())
    # A freed slot is reused once the relay has noticed the close.
    bob.close()
    assert alice.expect_frame(Left) == Left(name="bob")
    carol = member(server, "carol")
    carol.send_message("m2", {"alice": b"\x02" * 40})
    assert alice.expect_frame(Deliver, skip=("joined",)) == Deliver(sender="carol", id="m2", ct=b"\x02" * 40)
    assert carol.expect_frame(Ack) == Ack(id="m2", delivered=("alice",), missing=())


def test_welcome_roster_carries_members_as_they_joined(relay_server: RelayServer, open_client: Any) -> None:
    alice = open_client(relay_server)
    hello = alice.make_hello("alice")
    alice.send_frame(hello)
    alice.expect_frame(Welcome)
    bob = open_client(relay_server)
    welcome = bob.join("bob")
    assert welcome.roster == (hello.member(),)
    joined = alice.expect_frame(Joined)
    assert isinstance(joined, Joined) and joined.member.name == "bob"
    assert isinstance(joined.member, Member) and joined.member.sk == bob.session.public
