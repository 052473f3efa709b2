"""The relay's routing logic without sockets: ``RelayCore``, ``Outbox``, ``Roster``.

``RelayCore`` talks to connections only through their outbox's ``offer``, so an
in-memory outbox (a list of the bytes offered) is the whole I/O surface here.
Every frame a test reads back is decoded with the client's own validation.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from susurro.crypto import IdentityKey, SessionCertificate, SessionKey, join_proof
from susurro.protocol import (
    CLIENT_FRAMES,
    Ack,
    Bye,
    Challenge,
    Deliver,
    Dropped,
    Error,
    Frame,
    Hello,
    Joined,
    Left,
    Member,
    Ping,
    Pong,
    Send,
    Welcome,
    encode,
)
from susurro.protocol.framing import pack_payload
from susurro.protocol.limits import CHALLENGE_SIZE
from susurro.relay import Connection, RelayConfig, RelayCore, Roster
from susurro.relay.roster import NameTaken
from tests.helpers.memory import MemoryOutbox

NONCE = bytes(range(CHALLENGE_SIZE))


def make_core(**overrides: Any) -> RelayCore:
    return RelayCore(RelayConfig(**overrides), random_bytes=lambda n: NONCE[:n])


def hello_for(name: str, nonce: bytes = NONCE, identity: IdentityKey | None = None) -> Hello:
    identity = identity or IdentityKey.generate()
    session = SessionKey.generate()
    cert = SessionCertificate.issue(identity, name, session.public, 1_700_000_000)
    return Hello(
        name=name,
        ik=identity.public,
        sk=session.public,
        cert=cert.signature,
        issued_at=1_700_000_000,
        proof=join_proof(identity, nonce, name, session.public),
    )


def connect(core: RelayCore, accept: bool = True) -> tuple[Connection, MemoryOutbox]:
    outbox = MemoryOutbox(accept)
    conn = core.connect(outbox, "test:1")
    assert conn is not None
    return conn, outbox


def join(core: RelayCore, name: str) -> tuple[Connection, MemoryOutbox, Hello]:
    conn, outbox = connect(core)
    hello = hello_for(name, conn.nonce)
    assert core.receive(conn, encode(hello)) is True
    assert conn.joined and conn.name == name
    frames = outbox.new_frames()
    assert [f.TYPE for f in frames] == ["challenge", "welcome"]
    return conn, outbox, hello


def send(core: RelayCore, conn: Connection, msg_id: str, to: dict[str, bytes]) -> bool:
    return core.receive(conn, encode(Send(id=msg_id, to=to)))


# --- connect and join ---------------------------------------------------------


def test_connect_sends_a_challenge_with_the_limits() -> None:
    core = make_core(max_frame=8192, max_recipients=7)
    conn, outbox = connect(core)
    assert outbox.frames() == [Challenge(nonce=NONCE, max_frame=8192, max_recipients=7)]
    assert conn.nonce == NONCE and not conn.joined
    assert core.connection_count == 1


def test_each_connection_gets_a_fresh_nonce() -> None:
    core = RelayCore(RelayConfig())  # the real os.urandom
    nonces = {connect(core)[0].nonce for _ in range(20)}
    assert len(nonces) == 20 and all(len(n) == CHALLENGE_SIZE for n in nonces)


def test_join_sends_welcome_then_joined_to_others_in_order() -> None:
    core = make_core()
    alice, alice_out, alice_hello = join(core, "alice")
    bob_conn, bob_out = connect(core)
    bob_hello = hello_for("bob", bob_conn.nonce)
    assert core.receive(bob_conn, encode(bob_hello))
    assert bob_out.new_frames() == [
        Challenge(nonce=NONCE, max_frame=core.config.max_frame, max_recipients=core.config.max_recipients),
        Welcome(name="bob", roster=(alice_hello.member(),)),
    ]
    assert alice_out.new_frames() == [Joined(member=bob_hello.member())]
    # bob can send at once, and alice sees his joined before his message.
    assert send(core, bob_conn, "m1", {"alice": b"\x01" * 32})
    assert [f.TYPE for f in alice_out.frames()] == ["challenge", "welcome", "joined", "deliver"]
    carol, carol_out, carol_hello = join(core, "carol")
    assert alice_out.new_frames()[-1] == Joined(member=carol_hello.member())
    assert bob_out.new_frames() == [Ack(id="m1", delivered=("alice",), missing=()), Joined(member=carol_hello.member())]
    welcome = carol_out.frames()[1]
    assert isinstance(welcome, Welcome)
    assert sorted(m.name for m in welcome.roster) == ["alice", "bob"]
    assert alice.joined and carol.joined


@pytest.mark.parametrize(
    ("hello_name", "code"),
    [("a b", "bad_name"), ("\u0430lice", "bad_name"), ("ａｌｉｃｅ", "bad_name"), ("ALICE", "name_taken")],
    ids=ascii,
)
def test_refused_hello_closes_before_join(hello_name: str, code: str) -> None:
    core = make_core()
    _, alice_out, _ = join(core, "alice")
    conn, outbox = connect(core)
    assert core.receive(conn, encode(hello_for(hello_name, conn.nonce))) is False
    frames = outbox.frames()
    assert len(frames) == 2 and isinstance(frames[1], Error) and frames[1].code == code
    assert not conn.joined and conn.closing
    assert alice_out.new_frames() == []  # nobody hears of a refused joiner
    core.disconnect(conn, "refused")
    assert alice_out.new_frames() == []


def test_a_second_session_of_one_identity_key_is_refused_until_the_first_ends() -> None:
    # One session per identity key (decision 53): under another name it would be a second member
    # with one key, and rooms, mailboxes and receipts go by key.
    core = make_core()
    identity = IdentityKey.generate()
    first, first_out = connect(core)
    assert core.receive(first, encode(hello_for("alice", first.nonce, identity)))
    second, second_out = connect(core)
    assert core.receive(second, encode(hello_for("alice2", second.nonce, identity))) is False
    refusal = second_out.frames()[-1]
    assert isinstance(refusal, Error) and refusal.code == "identity_in_use" and "'alice'" in refusal.detail
    assert not second.joined and [f.TYPE for f in first_out.new_frames()] == ["challenge", "welcome"]
    core.disconnect(second, "refused")
    core.disconnect(first, "gone")
    again, _ = connect(core)
    assert core.receive(again, encode(hello_for("alice2", again.nonce, identity)))  # the key is free again
    assert again.joined


def test_proof_for_another_nonce_is_refused() -> None:
    core = RelayCore(RelayConfig())
    conn, outbox = connect(core)
    assert core.receive(conn, encode(hello_for("alice", b"\x00" * CHALLENGE_SIZE))) is False
    assert outbox.frames()[-1] == Error(code="bad_proof", detail="the join proof does not verify for this challenge")


def test_frame_before_hello_is_not_joined() -> None:
    core = make_core()
    conn, outbox = connect(core)
    assert core.receive(conn, encode(Ping())) is False
    error = outbox.frames()[-1]
    assert isinstance(error, Error) and error.code == "not_joined"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Wave(Frame):
    """A client frame type the protocol decodes but the relay has no handler for."""

    TYPE: ClassVar[str] = "wave"


def test_a_client_frame_without_a_handler_is_refused_not_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(CLIENT_FRAMES, Wave.TYPE, Wave)
    core = make_core()
    alice, alice_out, _ = join(core, "alice")
    alice_out.new_frames()
    assert core.receive(alice, encode(Wave())) is True  # one unhandled frame does not cost a member the room
    assert alice_out.new_frames() == [Error(code="bad_type", detail="this relay does not handle 'wave' frames")]
    assert alice.joined and not alice.closing
    assert core.receive(alice, encode(Ping())) is True
    assert alice_out.new_frames() == [Pong()]


def test_every_client_frame_type_has_a_handler() -> None:
    assert make_core().handled_types == frozenset(CLIENT_FRAMES.values())


# --- routing --------------------------------------------------------------------


def test_send_routes_each_recipient_only_its_own_ciphertext() -> None:
    core = make_core()
    alice, alice_out, _ = join(core, "alice")
    members = {name: join(core, name) for name in ("bob", "carol", "dave")}
    alice_out.new_frames()
    cts = {name: bytes([i + 1]) * 40 + name.encode() for i, name in enumerate(members)}
    del cts["dave"]  # dave is present but not addressed
    assert send(core, alice, "m1", cts) is True
    for name, (_, outbox, _) in members.items():
        delivers = [f for f in outbox.new_frames() if isinstance(f, Deliver)]
        if name == "dave":
            assert delivers == []
        else:
            assert delivers == [Deliver(sender="alice", id="m1", ct=cts[name])]
        for other, ct in cts.items():
            if other != name:
                assert ct not in outbox.raw(), f"{name} received {other}'s ciphertext"
    ack = alice_out.new_frames()
    assert len(ack) == 1 and isinstance(ack[0], Ack)
    assert sorted(ack[0].delivered) == ["bob", "carol"] and ack[0].missing == ()


def test_ack_reports_absent_names_as_missing() -> None:
    core = make_core()
    alice, alice_out, _ = join(core, "alice")
    _, bob_out, _ = join(core, "bob")
    alice_out.new_frames()
    assert send(core, alice, "m1", {"bob": b"\x01" * 32, "ghost": b"\x02" * 32})
    assert alice_out.new_frames() == [Ack(id="m1", delivered=("bob",), missing=("ghost",))]
    assert bob_out.new_frames() == [Deliver(sender="alice", id="m1", ct=b"\x01" * 32)]


def test_case_variant_duplicate_recipient_gets_one_copy() -> None:
    core = make_core()
    alice, alice_out, _ = join(core, "alice")
    _, bob_out, _ = join(core, "bob")
    alice_out.new_frames()
    assert send(core, alice, "m1", {"bob": b"\x01" * 32, "BOB": b"\x02" * 32})
    assert bob_out.new_frames() == [Deliver(sender="alice", id="m1", ct=b"\x01" * 32)]
    assert alice_out.new_frames() == [Ack(id="m1", delivered=("bob",), missing=("BOB",))]


def test_ack_names_the_member_as_the_roster_has_it() -> None:
    core = make_core()
    alice, alice_out, _ = join(core, "alice")
    _, bob_out, _ = join(core, "Bob")
    alice_out.new_frames()
    assert send(core, alice, "m1", {"BOB": b"\x01" * 32})
    assert alice_out.new_frames() == [Ack(id="m1", delivered=("Bob",), missing=())]
    assert bob_out.new_frames() == [Deliver(sender="alice", id="m1", ct=b"\x01" * 32)]


def test_full_outbox_counts_as_missing() -> None:
    core = make_core()
    alice, alice_out, _ = join(core, "alice")
    _, bob_out, _ = join(core, "bob")
    _, carol_out, _ = join(core, "carol")
    for outbox in (alice_out, bob_out):
        outbox.new_frames()
    bob_out.accept = False
    assert send(core, alice, "m1", {"bob": b"\x01" * 32, "carol": b"\x02" * 32})
    assert alice_out.new_frames() == [Ack(id="m1", delivered=("carol",), missing=("bob",))]
    assert carol_out.new_frames() == [Deliver(sender="alice", id="m1", ct=b"\x02" * 32)]
    assert bob_out.new_frames() == []


def test_too_many_recipients_delivers_nothing_and_keeps_the_member() -> None:
    core = make_core(max_recipients=2)
    alice, alice_out, _ = join(core, "alice")
    _, bob_out, _ = join(core, "bob")
    alice_out.new_frames()
    assert send(core, alice, "m1", {"bob": b"\x01", "x": b"\x02", "y": b"\x03"}) is True
    error = alice_out.new_frames()
    assert len(error) == 1 and isinstance(error[0], Error) and error[0].code == "too_many_recipients"
    assert bob_out.new_frames() == []
    assert core.receive(alice, encode(Ping())) is True
    assert alice_out.new_frames() == [Pong()]


def test_bad_field_after_join_keeps_the_connection() -> None:
    core = make_core()
    alice, alice_out, _ = join(core, "alice")
    bad = pack_payload({"v": 1, "t": "send", "id": "m1", "to": {}})
    assert core.receive(alice, len(bad).to_bytes(4, "big") + bad) is True
    error = alice_out.new_frames()
    assert len(error) == 1 and isinstance(error[0], Error) and error[0].code == "bad_field"
    assert core.receive(alice, encode(Ping())) is True
    assert alice_out.new_frames() == [Pong()]


def test_bye_closes() -> None:
    core = make_core()
    alice, _, _ = join(core, "alice")
    assert core.receive(alice, encode(Bye())) is False
    assert core.receive(alice, encode(Ping())) is False  # nothing is read after bye


# --- disconnect -----------------------------------------------------------------


def alice_bob_carol(core: RelayCore) -> list[tuple[Connection, MemoryOutbox]]:
    """Three members joined, what they were told of the joins already read."""
    members = []
    for name in ("alice", "bob", "carol"):
        conn, outbox, _ = join(core, name)
        members.append((conn, outbox))
    for _, outbox in members:
        outbox.new_frames()
    return members


def test_disconnect_announces_left_exactly_once() -> None:
    core = make_core()
    (alice, alice_out), (bob, bob_out), (_, carol_out) = alice_bob_carol(core)
    core.disconnect(bob, "closed by client")
    core.disconnect(bob, "closed by client")
    core.disconnect(bob, "again")
    assert alice_out.new_frames() == [Left(name="bob")]
    assert carol_out.new_frames() == [Left(name="bob")]
    assert bob_out.new_frames() == []
    assert core.connection_count == 2
    assert send(core, alice, "m1", {"bob": b"\x01"})
    assert alice_out.new_frames() == [Ack(id="m1", delivered=(), missing=("bob",))]
    # The name is free again.
    join(core, "BOB")
    assert alice_out.new_frames()[0].TYPE == "joined"


def test_disconnect_before_join_announces_nothing() -> None:
    core = make_core()
    _, alice_out, _ = join(core, "alice")
    conn, _ = connect(core)
    core.disconnect(conn, "closed by client")
    assert alice_out.new_frames() == []
    assert core.connection_count == 1


def test_concurrent_disconnects_announce_left_once() -> None:
    core = make_core()
    _, alice_out, _ = join(core, "alice")
    bob, _, _ = join(core, "bob")
    alice_out.new_frames()
    barrier = threading.Barrier(8)

    def leave() -> None:
        barrier.wait(timeout=5)
        core.disconnect(bob, "race")

    threads = [threading.Thread(target=leave) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5)
    assert alice_out.new_frames() == [Left(name="bob")]


def test_max_clients_refuses_with_full_and_frees_slots() -> None:
    core = make_core(max_clients=2)
    first, _ = connect(core)
    connect(core)
    refused = MemoryOutbox()
    assert core.connect(refused, "test:3") is None
    frames = refused.frames()
    assert len(frames) == 1 and isinstance(frames[0], Error) and frames[0].code == "full"  # no challenge
    assert core.connection_count == 2
    core.disconnect(first, "closed by client")
    again = MemoryOutbox()
    assert core.connect(again, "test:4") is not None
    assert isinstance(again.frames()[0], Challenge)


def test_handshake_timeout_sends_error_and_closes() -> None:
    core = make_core()
    conn, outbox = connect(core)
    core.handshake_timed_out(conn)
    error = outbox.frames()[-1]
    assert isinstance(error, Error) and error.code == "handshake_timeout"
    assert core.receive(conn, encode(hello_for("alice", conn.nonce))) is False
    assert not conn.joined


def test_shutdown_reaches_every_connection() -> None:
    core = make_core()
    _, alice_out, _ = join(core, "alice")
    conn, outbox = connect(core)
    core.shutdown("maintenance")
    for out in (alice_out, outbox):
        last = out.frames()[-1]
        assert last.TYPE == "shutdown" and last.reason == "maintenance"  # type: ignore[attr-defined]
    assert conn.closing


# --- the fuzz invariant -----------------------------------------------------------
#
# Whatever a client sends, ``receive`` returns a bool and every byte the core
# offers is a whole, valid relay frame. Three kinds of input: raw bytes (mostly
# refused at the length prefix), random bodies behind a correct prefix (refused
# by msgpack or the schema), and msgpack maps shaped like client frames with
# random fields (refused field by field, or routed).

FUZZ_IDENTITY = IdentityKey.generate()
FUZZ_HELLO = encode(hello_for("fuzzer", NONCE, FUZZ_IDENTITY))
fuzz_settings = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.binary(max_size=40)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)
recipients = st.sampled_from(["watcher", "WATCHER", "fuzzer", "ghost", ""]) | st.text(max_size=8)
frame_maps = st.fixed_dictionaries(
    {
        "v": st.just(1) | values,
        "t": st.sampled_from(["hello", "send", "ping", "bye", "deliver", "ack", "nope"]) | values,
    },
    optional={
        "id": st.text(max_size=70) | values,
        "to": st.dictionaries(recipients, st.binary(max_size=40) | values, max_size=4) | values,
        "name": st.sampled_from(["watcher", "fuzzer", "alice"]) | values,
        "ik": st.binary(min_size=32, max_size=32) | values,
        "sk": st.binary(min_size=32, max_size=32) | values,
        "cert": st.binary(min_size=64, max_size=64) | values,
        "proof": st.binary(min_size=64, max_size=64) | values,
        "issued_at": st.integers(min_value=-1, max_value=2**40) | values,
    },
)


def _framed(body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + body


plausible_sends = st.fixed_dictionaries(
    {
        "v": st.just(1),
        "t": st.just("send"),
        "id": st.text(min_size=1, max_size=64),
        "to": st.dictionaries(recipients, st.binary(min_size=1, max_size=40), min_size=1, max_size=4),
    }
)
plausible_frames = plausible_sends | st.just({"v": 1, "t": "ping"}) | frame_maps
structured = st.lists(plausible_frames.map(lambda m: _framed(pack_payload(m))), min_size=1, max_size=4).map(b"".join)
client_bytes = st.binary(max_size=512) | st.binary(min_size=1, max_size=200).map(_framed) | structured


@st.composite
def chunked(draw: st.DrawFn, stream: st.SearchStrategy[bytes]) -> list[bytes]:
    """One byte stream split at random points, as a socket might deliver it."""
    data = draw(stream)
    cuts = sorted(draw(st.lists(st.integers(min_value=0, max_value=len(data)), max_size=4)))
    edges = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def feed(core: RelayCore, conn: Connection, pieces: list[bytes]) -> None:
    for piece in pieces:
        result = core.receive(conn, piece)
        assert isinstance(result, bool)
        assert result is not conn.closing
        if not result:
            assert core.receive(conn, b"\x00\x00\x00\x01\x80") is False  # nothing is read once closing
            break


@fuzz_settings
@given(pieces=chunked(client_bytes))
def test_any_bytes_before_join_never_raise(pieces: list[bytes]) -> None:
    core = make_core()
    _, watcher_out, _ = join(core, "watcher")
    conn, outbox = connect(core)
    feed(core, conn, pieces)
    frames = outbox.frames()  # every byte offered is a whole, valid relay frame
    assert isinstance(frames[0], Challenge)
    assert all(isinstance(f, Error) for f in frames[1:])
    assert len(frames) <= 2  # before a join the first refusal ends the connection
    assert not conn.joined
    core.disconnect(conn, "fuzz")
    assert watcher_out.new_frames() == []  # a stranger who never joined reaches no one
    assert core.connection_count == 1


@fuzz_settings
@given(pieces=chunked(client_bytes))
def test_any_bytes_after_join_never_raise(pieces: list[bytes]) -> None:
    core = make_core()
    _, watcher_out, _ = join(core, "watcher")
    conn, outbox = connect(core)
    assert core.receive(conn, FUZZ_HELLO) is True
    assert conn.joined
    watcher_out.new_frames()
    feed(core, conn, pieces)
    frames = outbox.frames()
    assert [f.TYPE for f in frames[:2]] == ["challenge", "welcome"]
    assert {f.TYPE for f in frames[2:]} <= {"error", "ack", "pong", "deliver"}
    assert conn.decoder.buffered <= core.config.max_frame + 4 + 512
    core.disconnect(conn, "fuzz")
    core.disconnect(conn, "fuzz")
    seen = watcher_out.new_frames()
    assert seen[-1] == Left(name="fuzzer")
    # The watcher only ever hears, from the fuzzer, delivers the relay vouches for.
    assert all(isinstance(f, Deliver) and f.sender == "fuzzer" for f in seen[:-1])
    assert core.connection_count == 1


@fuzz_settings
@given(
    noise=st.binary(max_size=256),
    msg_id=st.text(alphabet="0123456789abcdefABCDEF_-", min_size=1, max_size=64),
)
def test_valid_frame_then_noise_never_raises(noise: bytes, msg_id: str) -> None:
    core = make_core()
    _, bob_out, _ = join(core, "bob")
    conn, outbox = connect(core)
    assert core.receive(conn, FUZZ_HELLO)
    bob_out.new_frames()
    frame = encode(Send(id=msg_id, to={"bob": b"\x01" * 8}))
    assert isinstance(core.receive(conn, frame + noise), bool)
    outbox.frames()
    delivered = [f for f in bob_out.new_frames() if isinstance(f, Deliver)]
    # The whole frame before the noise is routed, whatever follows it.
    assert delivered[:1] == [Deliver(sender="fuzzer", id=msg_id, ct=b"\x01" * 8)]


def whole_frames(pieces: list[bytes]) -> list[bytes]:
    """The stream of ``pieces`` cut where an I/O loop hands frames over: after whole frames, the rest as it is."""
    data, out, start = b"".join(pieces), [], 0
    while len(data) - start >= 4:
        end = start + 4 + int.from_bytes(data[start : start + 4], "big")
        if end > len(data) or end == start + 4:
            break
        out.append(data[start:end])
        start = end
    return [*out, data[start:]] if start < len(data) else out


@fuzz_settings
@given(pieces=chunked(client_bytes), group=st.integers(min_value=1, max_value=3))
def test_frames_split_by_the_loop_are_handled_as_the_decoder_handles_them(pieces: list[bytes], group: int) -> None:
    results = []
    for whole in (False, True):
        core = make_core()
        _, watcher_out, _ = join(core, "watcher")
        conn, outbox = connect(core)
        assert core.receive(conn, FUZZ_HELLO) is True
        outbox.take_all(), watcher_out.take_all()  # the welcome lists the watcher's keys, new per core
        frames = whole_frames(pieces)
        # As Link.process hands them over: a few whole frames per call (the tail may be partial).
        chunks = [b"".join(frames[i : i + group]) for i in range(0, len(frames), group)]
        answers = [(core.receive_frames if whole else core.receive)(conn, chunk) for chunk in chunks]
        if False in answers:
            answers = answers[: answers.index(False) + 1]  # nothing is read once it said close
        results.append((outbox.raw(), watcher_out.raw(), answers))
    assert results[0] == results[1]


def test_a_frame_over_the_limit_is_refused_even_when_whole() -> None:
    core = make_core(max_frame=4096)
    _, bob_out, _ = join(core, "bob")
    conn, outbox, _ = join(core, "alice")
    bob_out.new_frames()
    big = encode(Send(id="big", to={"bob": b"\x01" * 5000}), max_frame=8192)
    assert core.receive_frames(conn, big) is False
    detail = f"frame length {len(big) - 4} exceeds the limit of 4096 bytes"
    assert outbox.new_frames() == [Error(code="frame_too_large", detail=detail)]
    assert bob_out.new_frames() == []


def test_a_run_of_sends_read_at_once_reaches_each_member_in_one_offer() -> None:
    core = make_core()
    (alice, alice_out), (_, bob_out), (_, carol_out) = alice_bob_carol(core)
    for outbox in (alice_out, bob_out, carol_out):
        outbox.offered.clear()
    carol_out.accept = False  # a full outbox: every copy of the run to her is missing
    run = b"".join(encode(Send(id=f"m{n}", to={"bob": bytes([n]) * 8, "carol": b"c"})) for n in range(3))
    assert core.receive_frames(alice, run) is True
    assert len(bob_out.offered) == 1 and len(alice_out.offered) == 1  # one lock, one meter update each
    assert bob_out.new_frames() == [Deliver(sender="alice", id=f"m{n}", ct=bytes([n]) * 8) for n in range(3)]
    assert bob_out.tags == [(alice, ("m0", "m1", "m2"))]  # what a dropped report needs, for every copy
    assert alice_out.new_frames() == [Ack(id=f"m{n}", delivered=("bob",), missing=("carol",)) for n in range(3)]
    core.report_dropped(bob_conn(core), bob_out.tags, "slow_consumer")
    assert alice_out.new_frames() == [Dropped(name="bob", ids=("m0", "m1", "m2"), reason="slow_reader")]


def test_a_run_of_sends_that_names_a_member_twice_gives_each_one_copy() -> None:
    # The held path's own dedupe (the roster reports a folded name; only one can repeat a member).
    core = make_core()
    (alice, alice_out), (_, bob_out), (_, carol_out) = alice_bob_carol(core)
    alice_out.new_frames(), bob_out.new_frames(), carol_out.new_frames()
    run = b"".join(
        [
            encode(Send(id="m1", to={"BOB": b"1", "carol": b"c1", "bob": b"2"})),
            encode(Send(id="m2", to={"carol": b"c2", "Carol": b"c3"})),
        ]
    )
    assert core.receive_frames(alice, run) is True
    assert bob_out.new_frames() == [Deliver(sender="alice", id="m1", ct=b"1")]
    assert carol_out.new_frames() == [
        Deliver(sender="alice", id="m1", ct=b"c1"),
        Deliver(sender="alice", id="m2", ct=b"c2"),
    ]
    assert alice_out.new_frames() == [
        Ack(id="m1", delivered=("bob", "carol"), missing=("bob",)),
        Ack(id="m2", delivered=("carol",), missing=("Carol",)),
    ]


def test_each_ack_of_a_run_names_the_members_its_own_send_reached() -> None:
    # A run keeps the last send's packed names for the next send that reached the same members:
    # never for one that reached others, fewer, or the same in another order.
    core = make_core()
    (alice, alice_out), (_, bob_out), (_, carol_out) = alice_bob_carol(core)
    alice_out.new_frames(), bob_out.new_frames(), carol_out.new_frames()
    # Each neighbour differs from the one before in one way only: order, then count, then member.
    tos = [{"bob": b"1", "carol": b"1"}, {"carol": b"2", "bob": b"2"}, {"bob": b"3"}, {"carol": b"4"}, {"carol": b"5"}]
    run = b"".join(encode(Send(id=f"m{n}", to=to)) for n, to in enumerate(tos))
    assert core.receive_frames(alice, run) is True
    assert alice_out.new_frames() == [
        Ack(id="m0", delivered=("bob", "carol"), missing=()),
        Ack(id="m1", delivered=("carol", "bob"), missing=()),
        Ack(id="m2", delivered=("bob",), missing=()),
        Ack(id="m3", delivered=("carol",), missing=()),
        Ack(id="m4", delivered=("carol",), missing=()),
    ]
    carol_out.accept = False  # now every copy to her is refused: the acks of the next run say so
    run = b"".join(encode(Send(id=f"n{n}", to={"bob": b"5", "carol": b"5"})) for n in range(2))
    assert core.receive_frames(alice, run) is True
    assert alice_out.new_frames() == [Ack(id=f"n{n}", delivered=("bob",), missing=("carol",)) for n in range(2)]


def bob_conn(core: RelayCore) -> Connection:
    found, _ = core.roster.lookup(["bob"])
    return found[0][2]


def test_what_a_run_holds_goes_out_before_the_frame_that_is_not_a_send() -> None:
    core = make_core()
    alice, alice_out, _ = join(core, "alice")
    _, bob_out, _ = join(core, "bob")
    alice_out.new_frames(), bob_out.new_frames()
    bad = _framed(pack_payload({"v": 1, "t": "send", "id": "bad id", "to": {"bob": b"x"}}))
    run = b"".join(
        [encode(Send(id="m1", to={"bob": b"1"})), encode(Ping()), encode(Send(id="m2", to={"bob": b"2"})), bad]
    )
    assert core.receive_frames(alice, run) is True
    got = alice_out.new_frames()
    assert [type(f) for f in got] == [Ack, Pong, Ack, Error]
    assert [f.id for f in got if isinstance(f, Ack)] == ["m1", "m2"]
    assert [f.id for f in bob_out.new_frames() if isinstance(f, Deliver)] == ["m1", "m2"]


# --- Roster -----------------------------------------------------------------------


def member(name: str) -> Member:
    return hello_for(name).member()


def test_roster_join_lookup_leave() -> None:
    roster: Roster[str] = Roster()
    seen: list[list[str]] = []
    roster.join(member("alice"), "conn-a", lambda others: seen.append([e.member.name for e in others]))
    roster.join(member("Bob"), "conn-b", lambda others: seen.append([e.member.name for e in others]))
    assert seen == [[], ["alice"]]
    assert len(roster) == 2
    found, missing = roster.lookup(["ALICE", "bob", "carol"])
    assert found == [("ALICE", "alice", "conn-a"), ("bob", "Bob", "conn-b")]
    assert missing == ["carol"]
    left: list[list[str]] = []
    assert roster.leave("alice", "conn-a", lambda others: left.append([e.member.name for e in others]))
    assert left == [["Bob"]]
    assert roster.lookup(["alice"]) == ([], ["alice"])
    assert sorted(roster.peers()) == ["conn-b"]


@pytest.mark.parametrize("variant", ["ALICE", "Alice", "aLiCe"])
def test_roster_refuses_casefold_collisions(variant: str) -> None:
    roster: Roster[str] = Roster()
    roster.join(member("alice"), "first", lambda others: None)
    called: list[object] = []
    with pytest.raises(NameTaken):
        roster.join(member(variant), "second", called.append)
    assert called == []  # announce never runs for a refused join
    assert roster.lookup([variant])[0] == [(variant, "alice", "first")]


def test_roster_casefold_beyond_ascii() -> None:
    roster: Roster[str] = Roster()
    roster.join(member("straße"), "first", lambda others: None)
    with pytest.raises(NameTaken):
        roster.join(member("STRASSE"), "second", lambda others: None)
    assert roster.lookup(["Strasse"])[0] == [("Strasse", "straße", "first")]


def test_roster_leave_by_another_peer_is_ignored() -> None:
    roster: Roster[str] = Roster()
    roster.join(member("alice"), "first", lambda others: None)
    called: list[object] = []
    assert roster.leave("alice", "impostor", called.append) is False
    assert roster.leave("nobody", "first", called.append) is False
    assert called == []
    assert len(roster) == 1
    assert roster.leave("ALICE", "first", lambda others: None) is True
    assert roster.leave("alice", "first", called.append) is False
    assert len(roster) == 0


# --- the names an ack reports, kept between sends ----------------------------------------


def test_each_ack_across_sends_names_the_members_that_send_reached() -> None:
    # The core keeps each sender's last reached members between sends: never for a send that
    # reached others, fewer, or a member who left and came back (a new roster entry).
    core = make_core()
    (alice, alice_out), (bob, _), (_, _) = alice_bob_carol(core)
    for msg_id, to in [("m1", {"bob": b"1", "carol": b"1"}), ("m2", {"bob": b"2", "carol": b"2"})]:
        assert send(core, alice, msg_id, to)
    assert send(core, alice, "m3", {"carol": b"3", "bob": b"3"})
    assert send(core, alice, "m4", {"bob": b"4"})
    assert [f for f in alice_out.new_frames() if isinstance(f, Ack)] == [
        Ack(id="m1", delivered=("bob", "carol"), missing=()),
        Ack(id="m2", delivered=("bob", "carol"), missing=()),
        Ack(id="m3", delivered=("carol", "bob"), missing=()),
        Ack(id="m4", delivered=("bob",), missing=()),
    ]
    core.disconnect(bob, "closed by client")
    assert send(core, alice, "m5", {"bob": b"5", "carol": b"5"})
    join(core, "bob")
    assert send(core, alice, "m6", {"bob": b"6", "carol": b"6"})
    assert [f for f in alice_out.new_frames() if isinstance(f, Ack)] == [
        Ack(id="m5", delivered=("carol",), missing=("bob",)),
        Ack(id="m6", delivered=("bob", "carol"), missing=()),
    ]


def test_a_sender_s_second_send_to_the_same_members_reuses_what_the_first_packed() -> None:
    core = make_core()
    (alice, _), _, _ = alice_bob_carol(core)
    assert send(core, alice, "m1", {"bob": b"1", "carol": b"1"})
    kept = core.roster.kept[alice]
    assert send(core, alice, "m2", {"bob": b"2", "carol": b"2"})
    assert core.roster.kept[alice] is kept


def kept_peers(core: RelayCore) -> list[Connection]:
    return [entry.peer for memo in core.roster.kept.values() for entry in memo.entries]  # type: ignore[attr-defined]


def test_the_core_keeps_no_member_who_left_in_what_it_kept_of_acks() -> None:
    # What is kept is let go at the roster's change itself: a member who left (their
    # connection, its outbox) is not held by other senders' memos, even if no one sends again.
    core = make_core()
    (alice, _), (bob, _), (carol, _) = alice_bob_carol(core)
    assert send(core, alice, "m1", {"bob": b"1", "carol": b"1"})
    assert bob in kept_peers(core)
    core.disconnect(bob, "closed by client")
    assert core.roster.kept == {}
    assert send(core, carol, "c1", {"alice": b"1"})
    assert bob not in kept_peers(core) and alice not in core.roster.kept


class LeavingOutbox(MemoryOutbox):
    """An outbox whose member leaves while a copy is offered to it: between the lookup and the ack."""

    def __init__(self, leave: Any) -> None:
        super().__init__()
        self.leave = leave

    def offer(self, data: bytes, tag: Any = None) -> bool:
        taken = super().offer(data, tag)
        if tag is not None and self.leave is not None:
            leave, self.leave = self.leave, None
            leave()
        return taken


def test_a_member_who_leaves_during_a_send_is_not_kept_by_its_ack() -> None:
    # The send looked the member up before they left: what it reached must not be kept
    # under the roster's new generation (another I/O thread's leave does this at any time).
    core = make_core()
    alice, alice_out, _ = join(core, "alice")
    outbox = LeavingOutbox(None)
    bob = core.connect(outbox, "test:1")
    assert bob is not None and core.receive(bob, encode(hello_for("bob", bob.nonce)))
    join(core, "carol")
    outbox.leave = lambda: core.disconnect(bob, "closed by client")
    assert send(core, alice, "m1", {"bob": b"1", "carol": b"1"})
    assert Ack(id="m1", delivered=("bob", "carol"), missing=()) in alice_out.new_frames()
    assert bob not in kept_peers(core) and alice not in core.roster.kept


def test_the_core_keeps_at_most_memo_senders_memos_of_at_most_memo_names_names() -> None:
    from susurro.relay.core import MEMO_NAMES, MEMO_SENDERS

    core = make_core(max_recipients=1024)
    members = [join(core, f"m{i:03d}")[0] for i in range(max(MEMO_SENDERS, MEMO_NAMES) + 2)]
    first = members[0]
    assert send(core, first, "all", {f"m{i:03d}": b"x" for i in range(1, len(members))})
    assert first not in core.roster.kept  # a send to more than MEMO_NAMES members is not kept
    for i, sender in enumerate(members):
        assert send(core, sender, f"s{i}", {f"m{(i + 1) % len(members):03d}": b"x"})
        assert len(core.roster.kept) <= MEMO_SENDERS
    assert core.roster.kept  # and it did keep some
