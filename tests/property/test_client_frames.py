"""Fuzzing the client's frame handling with valid-shaped hostile frames (no sockets).

tests/unit/test_client_session.py feeds random bytes and random maps, which
mostly stop at validation. Here every frame is well formed and carries real
keys, so it reaches the handlers: genuine and forged ciphertexts, verified
and broken certificates, members invented or substituted, rotations, acks
for nothing, a second challenge or welcome. Whole, cut anywhere, or byte by
byte, the session must only ever produce events (never raise), show no
forged text as trusted, show nothing twice, and say nothing after
``Disconnected``.
"""

from __future__ import annotations

import secrets

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from susurro.client import events as ev
from susurro.client.link import LinkState
from susurro.client.session import ClientSession
from susurro.crypto import IdentityKey
from susurro.protocol import Challenge, Welcome, encode
from tests.helpers.frame_strategies import NOW, Party, Target, check_invariants, cut, splitting, stream_items

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def fresh_client(*, joined: bool, strict: bool = False) -> tuple[ClientSession, list[Party]]:
    """alice, joined (or not yet) to a room with bob and carol, whose keys the fuzzer holds."""
    alice = ClientSession(IdentityKey.generate(), "alice", strict=strict)
    peers = [Party.new("bob"), Party.new("carol")]
    if joined:
        challenge = Challenge(nonce=secrets.token_bytes(32), max_frame=1 << 20, max_recipients=16)
        produced = alice.receive_data(encode(challenge), NOW)
        assert produced == []
        assert alice.data_to_send()  # the hello
        produced = alice.receive_data(encode(Welcome(name="alice", roster=tuple(p.member for p in peers))), NOW)
        assert [type(e) for e in produced] == [ev.Connected, ev.Roster]
    return alice, peers


def feed(alice: ClientSession, chunks: list[bytes]) -> list[ev.Event]:
    produced: list[ev.Event] = []
    for chunk in chunks:
        produced.extend(alice.receive_data(chunk, NOW))
        alice.data_to_send()  # whatever it answers (a hello, a rekey) goes nowhere
    return produced


@FUZZ
@given(data=st.data(), joined=st.sampled_from([True, True, True, False]), strict=st.booleans())
def test_valid_shaped_hostile_frames_only_ever_yield_events(data: st.DataObject, joined: bool, strict: bool) -> None:
    alice, peers = fresh_client(joined=joined, strict=strict)
    items = data.draw(st.lists(stream_items(Target.of(alice), peers), min_size=1, max_size=8), label="items")
    how = data.draw(splitting(), label="cuts")
    produced = feed(alice, cut(b"".join(items), how))
    check_invariants(produced)
    for kind in sorted({f"{type(e).__name__}:{getattr(e, 'kind', '')}" for e in produced}):
        event(kind)  # --hypothesis-show-statistics shows which handlers the fuzzer reached
    if alice.state is LinkState.CLOSED:
        assert alice.receive_data(b"\x00\x00\x00\x01\x80", NOW) == []
