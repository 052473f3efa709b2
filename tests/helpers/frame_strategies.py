"""Hypothesis strategies for what a hostile relay can put in front of a client.

Unlike random maps (tests/unit/test_client_session.py fuzzes those), these
frames are *valid-shaped*: they pass the wire validation and reach the
client's handlers, carrying genuine ciphertexts from real members, ones the
attacker sealed with its own keys, certificates that verify or do not,
announcements of real and invented members, acks for ids never sent. Each
item is a piece of the byte stream; ``pieces`` splits a stream the way a
network might.

The oracle is in the text: genuine bodies start with ``GENUINE`` and name
their sender, forged ones start with ``FORGED``. A client may show a genuine
text (once), and may show a forged one only from a member whose key it
flags as ``changed`` (the relay substituted it, and the client says so).

This is a helper module, not a test module.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from hypothesis import strategies as st

from susurro.client import events as ev
from susurro.client.session import ClientSession
from susurro.crypto import BoxCache, IdentityKey, Recipient, SessionCertificate, SessionKey, seal_message
from susurro.protocol import (
    Ack,
    Challenge,
    Deliver,
    Error,
    Frame,
    Joined,
    Left,
    Member,
    Pong,
    Rekeyed,
    Shutdown,
    Welcome,
    encode,
)
from susurro.protocol.framing import encode_frame, pack_payload
from susurro.protocol.limits import ABSOLUTE_MAX_FRAME

GENUINE = "GENUINE"
FORGED = "FORGED"
#: A clock for session-level tests (seconds); certificates are issued at it.
NOW = 1_700_000_000.0


@dataclass(frozen=True)
class Party:
    """A member the fuzzer can speak for: its keys and its roster record."""

    name: str
    identity: IdentityKey
    session: SessionKey
    issued_at: int = int(NOW)

    @property
    def member(self) -> Member:
        cert = SessionCertificate.issue(self.identity, self.name, self.session.public, self.issued_at)
        return Member(
            name=self.name,
            ik=self.identity.public,
            sk=self.session.public,
            cert=cert.signature,
            issued_at=self.issued_at,
        )

    @classmethod
    def new(cls, name: str) -> Party:
        return cls(name, IdentityKey.generate(), SessionKey.generate())


@dataclass(frozen=True)
class Target:
    """The client under attack, as the attacker knows it (public keys only)."""

    name: str
    identity_public: bytes
    session_public: bytes

    @classmethod
    def of(cls, session: ClientSession) -> Target:
        return cls(session.name, session.identity.public, session.session_key.public)


ATTACKER = IdentityKey.generate()
ATTACKER_SESSION = SessionKey.generate()
TOKENS = st.text("abcdefABCDEF0123456789_-", min_size=1, max_size=16)
NAMES = st.sampled_from(["bob", "carol", "zed", "alice", "Bob", "b0b", "ghost", ""]) | st.text(max_size=8)


def _sealed(
    *,
    sender_name: str,
    identity: IdentityKey,
    session: SessionKey,
    target: Target,
    body: str,
    counter: int,
    msg_id: str,
) -> bytes:
    recipient = Recipient(
        name=target.name, identity_key=target.identity_public, session_key=target.session_public, counter=counter
    )
    cts = seal_message(
        identity=identity,
        boxes=BoxCache(session),
        sender=sender_name,
        recipients=[recipient],
        body=body,
        msg_id=msg_id,
        sent_at=int(NOW * 1000),
    )
    return cts[target.name]


def delivers(target: Target, peers: Sequence[Party]) -> st.SearchStrategy[Frame]:
    """``deliver`` frames: genuine, forged in every way the attacker can, or garbage."""
    peer = st.sampled_from(list(peers))
    counters = st.integers(1, 3) | st.integers(1, 2**32) | st.sampled_from([2**63 - 1])
    bodies = st.text(max_size=40)

    @st.composite
    def genuine(draw: st.DrawFn) -> Frame:
        p, msg_id = draw(peer), draw(TOKENS)
        body = f"{GENUINE}:{p.name}:{draw(bodies)}"
        ct = _sealed(
            sender_name=p.name,
            identity=p.identity,
            session=p.session,
            target=target,
            body=body,
            counter=draw(counters),
            msg_id=msg_id,
        )
        relabel = draw(st.sampled_from([p.name, p.name, *(q.name for q in peers), "zed"]))
        return Deliver(sender=relabel, id=draw(TOKENS), ct=ct)

    @st.composite
    def forged(draw: st.DrawFn) -> Frame:
        p = draw(peer)
        how = draw(st.sampled_from(["attacker_keys", "peer_session_attacker_signature", "signed_as_other"]))
        body = f"{FORGED}:{p.name}:{draw(bodies)}"
        identity, session, sender = ATTACKER, ATTACKER_SESSION, p.name
        if how == "peer_session_attacker_signature":  # as if the attacker stole only a session key
            session = p.session
        elif how == "signed_as_other":  # an insider signs as someone else
            identity, session, sender = p.identity, p.session, draw(NAMES.filter(lambda n: n and n != p.name))
        ct = _sealed(
            sender_name=sender,
            identity=identity,
            session=session,
            target=target,
            body=body,
            counter=draw(counters),
            msg_id=draw(TOKENS),
        )
        return Deliver(sender=p.name, id=draw(TOKENS), ct=ct)

    garbage = st.builds(
        lambda name, msg_id, ct: Deliver(sender=name or "x", id=msg_id, ct=ct or b"\x00"),
        NAMES,
        TOKENS,
        st.binary(min_size=1, max_size=400),
    )
    return st.one_of(genuine(), forged(), forged(), garbage)


def members(peers: Sequence[Party]) -> st.SearchStrategy[Member]:
    """Roster records: real ones, invented members, substituted keys, broken certificates."""
    peer = st.sampled_from(list(peers))

    def certified(identity: IdentityKey, name: str, session: bytes, issued_at: int) -> Member:
        cert = SessionCertificate.issue(identity, name, session, issued_at)
        return Member(name=name, ik=identity.public, sk=session, cert=cert.signature, issued_at=issued_at)

    issued = st.integers(0, 2 * int(NOW))
    return st.one_of(
        peer.map(lambda p: p.member),
        st.builds(lambda p, t: certified(p.identity, p.name, SessionKey.generate().public, t), peer, issued),
        st.builds(lambda p, t: certified(ATTACKER, p.name, ATTACKER_SESSION.public, t), peer, issued),
        st.builds(
            lambda n, t: certified(IdentityKey.generate(), n or "x", SessionKey.generate().public, t), NAMES, issued
        ),
        st.builds(
            lambda n, ik, sk, cert, t: Member(name=n or "x", ik=ik, sk=sk, cert=cert, issued_at=t),
            NAMES,
            st.binary(min_size=32, max_size=32) | st.just(bytes(32)),
            st.binary(min_size=32, max_size=32) | st.just(bytes(32)),
            st.binary(min_size=64, max_size=64),
            issued,
        ),
    )


def frames(target: Target, peers: Sequence[Party]) -> st.SearchStrategy[Frame]:
    """Any relay frame, valid-shaped, weighted towards the ones that carry trust decisions."""
    member = members(peers)
    ids = TOKENS | st.sampled_from(["0123456789abcdef"])
    names = st.lists(NAMES.filter(bool), max_size=3).map(tuple)
    deliver = delivers(target, peers)
    return st.one_of(
        deliver,
        deliver,
        deliver,
        deliver,
        member.map(lambda m: Joined(member=m)),
        member.map(lambda m: Rekeyed(member=m)),
        NAMES.filter(bool).map(lambda n: Left(name=n)),
        st.builds(lambda i, d, m: Ack(id=i, delivered=d, missing=m), ids, names, names),
        st.builds(lambda c, d: Error(code=c, detail=d), st.text(min_size=1, max_size=8), st.text(max_size=20)),
        st.just(Pong()),
        st.builds(lambda r: Shutdown(reason=r), st.text(max_size=10)),
        st.builds(lambda n: Challenge(nonce=n, max_frame=4096, max_recipients=4), st.binary(min_size=32, max_size=32)),
        st.builds(lambda n, r: Welcome(name=n or "x", roster=tuple(r)), NAMES, st.lists(member, max_size=3)),
    )


def stream_items(target: Target, peers: Sequence[Party]) -> st.SearchStrategy[bytes]:
    """Pieces of a byte stream: encoded frames, payloads with one byte changed, or raw bytes."""
    encoded = frames(target, peers).map(lambda f: encode(f, max_frame=ABSOLUTE_MAX_FRAME))

    @st.composite
    def corrupted(draw: st.DrawFn) -> bytes:
        payload = pack_payload(draw(frames(target, peers)).to_wire())
        index = draw(st.integers(0, len(payload) - 1))
        changed = bytearray(payload)
        changed[index] ^= draw(st.integers(1, 255))
        return encode_frame(bytes(changed), max_frame=ABSOLUTE_MAX_FRAME)

    return st.one_of(encoded, encoded, encoded, corrupted(), st.binary(max_size=32))


def pieces(stream: bytes, cuts: Sequence[int]) -> list[bytes]:
    """``stream`` split at the given offsets (taken modulo its length)."""
    if not stream:
        return []
    points = sorted({0, len(stream), *(c % len(stream) for c in cuts)})
    return [stream[a:b] for a, b in itertools.pairwise(points) if b > a]


def splitting(stream_len_hint: int = 4096) -> st.SearchStrategy[list[int] | None]:
    """How to cut the stream: ``None`` whole, ``[]``… as offsets, or every byte (``[-1]``)."""
    return st.one_of(st.none(), st.just([-1]), st.lists(st.integers(0, stream_len_hint), max_size=12))


def cut(stream: bytes, how: list[int] | None) -> list[bytes]:
    if how is None:
        return [stream] if stream else []
    if how == [-1]:
        return [stream[i : i + 1] for i in range(len(stream))]
    return pieces(stream, how)


def check_invariants(events: Sequence[object]) -> None:
    """What no relay input may ever produce, whatever else it does."""
    disconnected = 0
    shown: set[tuple[str, str]] = set()
    for event in events:
        assert isinstance(event, ev.Event), f"not an event: {event!r}"
        assert disconnected == 0, f"an event after Disconnected: {event!r}"
        if isinstance(event, ev.Disconnected):
            disconnected += 1
        if isinstance(event, ev.Message):
            key = (event.sender, event.msg_id)
            assert key not in shown, f"shown twice: {key}"
            shown.add(key)
            if event.text.startswith(GENUINE):
                assert event.text.startswith(f"{GENUINE}:{event.sender}:"), f"misattributed: {event!r}"
            else:
                assert event.text.startswith(FORGED), f"a text nobody sealed: {event!r}"
                assert event.trust == "changed", f"forged text shown from a trusted key: {event!r}"
