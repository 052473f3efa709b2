"""The compiled hot path answers hostile bytes exactly as its Python source does.

mypyc compiles the same typed Python, but not with the same semantics
everywhere: an annotated argument or attribute is checked at run time (a
wrong type raises ``TypeError``, where Python would have gone on), a class
cannot be patched, ``Final`` values are inlined. On a path fed by a hostile
client, an error pure Python would not raise is an untyped error where the
relay promises a typed one. So the same inputs (random bytes, random msgpack
shapes, valid sends mutated) go to the module as imported (compiled, when
this checkout is built) and to the same source loaded as plain Python, and
the results must be identical: the same value, or the same exception with
the same code and text; for the relay core, the same bytes offered to every
connection and the same answers.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from dataclasses import fields as dataclass_fields
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import susurro
from susurro import compiled
from susurro.protocol import CLIENT_FRAMES, RELAY_FRAMES, Member, ProtocolError, Send, encode
from susurro.protocol import fastpath as imported_fastpath
from susurro.protocol import framing as imported_framing
from susurro.protocol.limits import CHALLENGE_SIZE, LENGTH_PREFIX_SIZE, MAX_MSG_ID_CHARS
from susurro.relay import RelayConfig
from susurro.relay import core as imported_core
from susurro.relay import roster as imported_roster
from tests.helpers.memory import MemoryOutbox
from tests.unit.test_relay_core import hello_for

pytestmark = pytest.mark.skipif(
    not compiled.state().compiled, reason=f"the hot path is not compiled here ({compiled.state().describe()})"
)
NONCE = bytes(range(CHALLENGE_SIZE))
MEMBERS = ("alice", "bob", "carol")
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def load_source(module: str) -> ModuleType:
    """``module``'s ``.py`` as plain Python, beside the imported one (same package, another name)."""
    package, _, leaf = module.rpartition(".")
    alias = f"{package}._pure_{leaf}"
    if alias in sys.modules:
        return sys.modules[alias]
    path = Path(susurro.__file__).parent / compiled.COMPILED_SOURCES[module]
    spec = importlib.util.spec_from_file_location(alias, path)
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[alias] = loaded  # its dataclasses look the module up there
    spec.loader.exec_module(loaded)
    return loaded


pure_framing = load_source("susurro.protocol.framing")
pure_fastpath = load_source("susurro.protocol.fastpath")
pure_core = load_source("susurro.relay.core")
pure_roster = load_source("susurro.relay.roster")


def test_the_two_sides_differ_in_build_only() -> None:
    assert compiled.loaded_compiled()["susurro.protocol.framing"]
    assert compiled.loaded_compiled()["susurro.protocol.fastpath"]
    assert compiled.loaded_compiled()["susurro.relay.roster"]
    for pure in (pure_framing, pure_fastpath, pure_core, pure_roster):
        assert str(pure.__file__).endswith(".py")


def outcome(call: Callable[[], Any]) -> tuple[Any, ...]:
    """What a call did, comparably: its value, or its exception's type, code and text."""
    try:
        return ("value", call())
    except ProtocolError as exc:
        return ("raised", type(exc), exc.code, exc.detail)
    except Exception as exc:  # any other exception must match too (and is a finding)
        return ("raised", type(exc), str(exc))


# --- inputs ------------------------------------------------------------------

#: What msgpack can carry: 64-bit integers, signed or not.
wire_ints = st.integers(min_value=-(2**63), max_value=2**64 - 1)
scalars = (
    st.none() | st.booleans() | wire_ints | st.floats(allow_nan=False) | st.text(max_size=20) | st.binary(max_size=40)
)
shapes = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8) | wire_ints, inner, max_size=5),
    max_leaves=25,
)
names = st.sampled_from([*MEMBERS, "BOB", "dave", ""]) | st.text(max_size=12)
send_like = st.fixed_dictionaries(
    {"v": st.just(1) | st.integers(-2, 3), "t": st.just("send") | st.text(max_size=6)},
    optional={
        "id": st.text(alphabet="abc-_!é1", min_size=0, max_size=MAX_MSG_ID_CHARS + 2) | shapes,
        "to": st.dictionaries(names, st.binary(max_size=20) | shapes, max_size=4) | shapes,
    },
)


def framed(payload: bytes) -> bytes:
    return len(payload).to_bytes(LENGTH_PREFIX_SIZE, "big") + payload


def valid_send(msg_id: str, to: dict[str, bytes]) -> bytes:
    return encode(Send(id=msg_id, to=to))


@st.composite
def mutated_sends(draw: st.DrawFn) -> bytes:
    data = bytearray(valid_send("m1", {"bob": b"\x01" * 24, "carol": b"\x02" * 24}))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["flip", "insert", "delete", "cut"]))
        if action == "flip" and at < len(data):
            data[at] ^= draw(st.integers(1, 255))
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=3))
        elif action == "delete" and at < len(data):
            del data[at]
        elif action == "cut":
            del data[at:]
    return bytes(data)


payloads = st.binary(max_size=80) | shapes.map(lambda obj: msgpack.packb(obj, use_bin_type=True))
frames = (
    payloads.map(framed)
    | send_like.map(lambda obj: framed(msgpack.packb(obj, use_bin_type=True)))
    | mutated_sends()
    | st.binary(max_size=40)
    | st.just(valid_send("ok1", {"bob": b"\x05" * 8}))
)


# --- framing -----------------------------------------------------------------


@SETTINGS
@given(payload=payloads | mutated_sends(), max_bin_len=st.sampled_from([1, 16, 65536]), view=st.booleans())
def test_unpack_payload(payload: bytes, max_bin_len: int, view: bool) -> None:
    data = memoryview(payload) if view else payload
    assert outcome(lambda: imported_framing.unpack_payload(data, max_bin_len=max_bin_len)) == outcome(
        lambda: pure_framing.unpack_payload(data, max_bin_len=max_bin_len)
    )


@SETTINGS
@given(obj=shapes | st.text(alphabet=st.characters(min_codepoint=0xD7F0, max_codepoint=0xE010), max_size=4))
def test_pack_payload(obj: Any) -> None:
    wire = {"v": 1, "t": "x", "body": obj}
    assert outcome(lambda: imported_framing.pack_payload(wire)) == outcome(lambda: pure_framing.pack_payload(wire))


@SETTINGS
@given(payload=st.binary(max_size=40), max_frame=st.integers(0, 50))
def test_encode_frame(payload: bytes, max_frame: int) -> None:
    assert outcome(lambda: imported_framing.encode_frame(payload, max_frame=max_frame)) == outcome(
        lambda: pure_framing.encode_frame(payload, max_frame=max_frame)
    )


def decode_stream(module: ModuleType, max_frame: int, chunks: list[bytes]) -> list[tuple[Any, ...]]:
    made = outcome(lambda: module.FrameDecoder(max_frame))
    if made[0] != "value":
        return [made]
    decoder = made[1]
    steps: list[tuple[Any, ...]] = []
    for chunk in chunks:
        steps.append(outcome(lambda chunk=chunk: decoder.feed(chunk)))
        for _ in range(len(chunk) + 1):
            step = outcome(decoder.next_payload)
            steps.append(step)
            if step != ("value", None) and step[0] == "value":
                continue
            break
        steps.append(("buffered", decoder.buffered))
    return steps


@SETTINGS
@given(
    chunks=st.lists(frames | st.binary(max_size=10), max_size=6),
    max_frame=st.sampled_from([0, 8, 64, 4096, 2**32]),
)
def test_frame_decoder(chunks: list[bytes], max_frame: int) -> None:
    assert decode_stream(imported_framing, max_frame, chunks) == decode_stream(pure_framing, max_frame, chunks)


# --- the frames' fast path (protocol/fastpath.py) -----------------------------

#: Every table of frame types a side decodes with (the room and mailbox frames are registered in them).
TABLES = st.sampled_from([CLIENT_FRAMES, RELAY_FRAMES])
#: Every frame type either side knows, and every field name any of them has: random
#: values under real field names reach each type's own checks.
KINDS = sorted(CLIENT_FRAMES.keys() | RELAY_FRAMES.keys())
FIELDS = sorted(
    {"v", "t", "from", "reasons"}
    | {f.name for table in (CLIENT_FRAMES, RELAY_FRAMES) for cls in table.values() for f in dataclass_fields(cls)}
)
frame_like = st.builds(
    lambda head, body: {**body, **head},
    st.fixed_dictionaries({"v": st.just(1), "t": st.sampled_from(KINDS)}),
    st.dictionaries(st.sampled_from(FIELDS), shapes | st.binary(min_size=24, max_size=72) | st.integers(0, 2**40)),
)


@SETTINGS
@given(
    payload=payloads | mutated_sends() | send_like.map(msgpack.packb) | frame_like.map(msgpack.packb),
    allowed=TABLES,
    max_bin_len=st.sampled_from([1, 16, 65536]),
    view=st.booleans(),
)
def test_decode_frame(payload: bytes, allowed: Any, max_bin_len: int, view: bool) -> None:
    """Any bytes: the same frame, or the same typed error (code and text), compiled and pure."""
    data = memoryview(payload) if view else payload
    assert outcome(lambda: imported_fastpath.decode_frame(data, allowed, max_bin_len=max_bin_len)) == outcome(
        lambda: pure_fastpath.decode_frame(data, allowed, max_bin_len=max_bin_len)
    )


recipients = st.dictionaries(
    names | st.binary(max_size=3) | wire_ints,
    st.binary(min_size=1, max_size=8) | st.just(b"") | shapes,
    max_size=5,
)


@SETTINGS
@given(
    msg_id=st.text(alphabet="abc-_!é1", max_size=MAX_MSG_ID_CHARS + 2) | shapes,
    to=recipients | shapes | recipients.map(lambda to: MappingProxyType(dict(to))),
)
def test_send_fields_ok(msg_id: Any, to: Any) -> None:
    assert outcome(lambda: imported_fastpath.send_fields_ok(msg_id, to)) == outcome(
        lambda: pure_fastpath.send_fields_ok(msg_id, to)
    )


@SETTINGS
@given(raw=send_like | st.dictionaries(st.sampled_from(["id", "to", "v", "t"]), shapes | recipients))
def test_send_from_wire(raw: dict[str, Any]) -> None:
    """Send's constructor from the wire is the compiled function itself: the same send or error either way."""
    assert outcome(lambda: imported_fastpath.send_from_wire(Send, raw)) == outcome(
        lambda: pure_fastpath.send_from_wire(Send, raw)
    )
    assert outcome(lambda: Send.from_wire(raw)) == outcome(lambda: pure_fastpath.send_from_wire(Send, raw))


texts = st.text(max_size=40) | st.text(alphabet=st.characters(min_codepoint=0xD7F0, max_codepoint=0xE010), max_size=4)
#: Not text where text belongs: the encoders refuse it typed, compiled or not (review-s8-frames finding 1).
not_texts = st.integers() | st.none() | st.binary(max_size=4) | st.lists(st.text(max_size=2), max_size=2)


def deliver_copies(
    module: ModuleType, sender: str, msg_id: str, checked: bool, limit: int, cts: list[Any]
) -> list[Any]:
    made = outcome(lambda: module.DeliverEncoder(sender, msg_id, max_frame=limit, id_checked=checked))
    if made[0] != "value":
        return [made]
    return [outcome(lambda ct=ct: made[1].frame(ct)) for ct in cts]


@SETTINGS
@given(
    # Mostly an encoder that builds, so that its copies are what varies.
    sender=st.sampled_from(["alice", "bob"]) | texts | st.just("a" * 129) | not_texts,
    msg_id=st.sampled_from(["m1", "b-2_"])
    | st.text(alphabet="abc-_!é1", max_size=MAX_MSG_ID_CHARS + 2)
    | texts
    | not_texts,
    checked=st.booleans(),
    limit=st.sampled_from([1, 40, 300, 4096, 2**32]),
    cts=st.lists(
        # Two copies of one size often, so that the kept last prefix is used (and a bytearray
        # or an empty copy after it is refused the same way by both builds).
        st.sampled_from([b"a" * 296, b"b" * 296, b""])
        | st.binary(max_size=300)
        | st.binary().map(bytearray)
        | st.just(b"x" * 70_000)
        | shapes,
        min_size=1,
        max_size=4,
    ),
)
def test_deliver_encoder(sender: str, msg_id: str, checked: bool, limit: int, cts: list[Any]) -> None:
    assert deliver_copies(imported_fastpath, sender, msg_id, checked, limit, cts) == deliver_copies(
        pure_fastpath, sender, msg_id, checked, limit, cts
    )


@SETTINGS
@given(
    msg_id=texts | not_texts,
    delivered=st.lists(texts | st.just("é" * 200) | not_texts, max_size=20),
    missing=st.lists(texts, max_size=20),
    limit=st.sampled_from([1, 30, 4096]),
)
def test_encode_ack(msg_id: str, delivered: list[str], missing: list[str], limit: int) -> None:
    assert outcome(lambda: imported_fastpath.encode_ack(msg_id, delivered, missing, max_frame=limit)) == outcome(
        lambda: pure_fastpath.encode_ack(msg_id, delivered, missing, max_frame=limit)
    )


# --- the roster (relay/roster.py): who a send's names reach --------------------

#: Names and what a hostile sender makes of them: case, lookalikes, the empty name, long ones.
ROSTER_NAMES = ["alice", "ALICE", "al\u0131ce", "\u0430\u04cf\u0456\u0441\u0435", "bob", "Bob", "carol", "", "x" * 200]
#: Joins weighted up: a callback's list is only worth comparing with several members in the room
#: (with one action in five a join, hypothesis seldom had three in: a list cut to one entry passed).
ROSTER_ACTIONS = ["join"] * 4 + ["leave", "replace", "member", "lookup"]
roster_steps = st.lists(
    st.tuples(st.sampled_from(ROSTER_ACTIONS), st.sampled_from(ROSTER_NAMES), st.integers(0, 3)),
    max_size=16,
)
#: Three in and a rekey: the third join's and the rekey's callbacks are each handed two others.
ROSTER_CROWD = [("join", "alice", 0), ("join", "bob", 1), ("join", "carol", 2), ("replace", "bob", 1)]
KEYS = [bytes([k]) * 32 for k in range(4)]


def roster_member(name: str, key: int) -> Member:
    return Member(name=name, ik=KEYS[key], sk=KEYS[(key + 1) % 4], cert=bytes(64), issued_at=key)


def roster_step(
    roster: Any, peers: list[object], action: str, name: str, key: int, asked: list[str], heard: list[Any]
) -> Any:
    """One step's result, peers by their index (each side has its own); what each callback was
    handed (the members it would announce to, in order, and their packed records) goes to ``heard``."""

    def announce(others: list[Any]) -> None:
        heard.append([(entry.member, entry.name, entry.packed, peers.index(entry.peer)) for entry in others])

    if action == "join":
        return roster.join(roster_member(name, key), peers[key], announce)
    if action == "leave":
        return roster.leave(name, peers[key], announce)
    if action == "replace":
        return roster.replace(name, peers[key], roster_member(name, (key + 2) % 4), announce)
    if action == "member":
        return roster.member(name, peers[key])
    found, missing = roster.lookup([name, *asked])
    return [(asked_name, held, peers.index(peer)) for asked_name, held, peer in found], missing


def roster_story(module: ModuleType, steps: list[tuple[str, str, int]], asked: list[str]) -> list[Any]:
    """Each step's outcome (an exception by its class name and args: each module has its own
    classes) and the member list each of its callbacks was handed."""
    roster = module.Roster()
    peers = [object() for _ in KEYS]
    seen: list[Any] = []
    for action, name, key in steps:
        heard: list[Any] = []
        try:
            seen.append(("value", roster_step(roster, peers, action, name, key, asked, heard)))
        except Exception as exc:
            seen.append(("raised", type(exc).__name__, exc.args))
        seen.append(("heard", heard))
    seen.append(roster_step(roster, peers, "lookup", "alice", 0, asked, []))
    seen.append((len(roster), sorted(peers.index(peer) for peer in roster.peers())))
    return seen


@SETTINGS
@given(steps=roster_steps, asked=st.lists(st.sampled_from(ROSTER_NAMES) | st.text(max_size=6), max_size=6))
@example(steps=[*ROSTER_CROWD, ("leave", "alice", 0)], asked=["bob", "ALICE"])
def test_roster(steps: list[tuple[str, str, int]], asked: list[str]) -> None:
    assert roster_story(imported_roster, steps, asked) == roster_story(pure_roster, steps, asked)


# --- the relay core ------------------------------------------------------------

HELLOS = {name: encode(hello_for(name, NONCE)) for name in MEMBERS}


def room(module: ModuleType, join: tuple[str, ...]) -> tuple[Any, dict[str, Any], dict[str, MemoryOutbox]]:
    """A core of ``module`` with ``join`` joined and one more connection (``new``) that has not."""
    core = module.RelayCore(RelayConfig(max_frame=4096), random_bytes=lambda n: NONCE[:n])
    conns: dict[str, Any] = {}
    outboxes: dict[str, MemoryOutbox] = {}
    for name in (*join, "new"):
        outboxes[name] = MemoryOutbox()
        conns[name] = core.connect(outboxes[name], f"test:{name}")
        if name != "new":
            assert core.receive(conns[name], HELLOS[name]) is True
    return core, conns, outboxes


def replay(module: ModuleType, sender: str, whole: bool, chunks: list[bytes]) -> list[Any]:
    core, conns, outboxes = room(module, MEMBERS)
    receive = core.receive_frames if whole else core.receive
    answers = [outcome(lambda chunk=chunk: receive(conns[sender], chunk)) for chunk in chunks]
    conn = conns[sender]
    return [answers, conn.closing, conn.joined, conn.close_reason, {n: o.offered for n, o in outboxes.items()}]


@SETTINGS
@given(
    sender=st.sampled_from(["alice", "new"]),
    whole=st.booleans(),
    chunks=st.lists(st.lists(frames, min_size=1, max_size=4).map(b"".join), min_size=1, max_size=4),
)
def test_relay_core_receive(sender: str, whole: bool, chunks: list[bytes]) -> None:
    assert replay(imported_core, sender, whole, chunks) == replay(pure_core, sender, whole, chunks)
