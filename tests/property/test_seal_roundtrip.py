"""open(seal(m)) round-trips for any body and any set of recipients, and only for them.

tests/unit/test_seal.py checks the round trip for rooms of ``user0..userN``.
Here Hypothesis chooses the recipient *set* out of a pool (any names within
the wire limits, any order, each with its own counter), the body (any
Unicode text up to the limit in UTF-8 bytes), id, time and the direct
flag (direct with one recipient; the room of that form is always "main");
every recipient must open exactly what was sealed, with its own
counter, and every member of the pool who was not chosen must fail to open
any of the ciphertexts.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from susurro.crypto import (
    MAX_BODY_BYTES,
    BoxCache,
    DecryptFailed,
    IdentityKey,
    Recipient,
    SessionKey,
    fingerprint_bytes,
    open_message,
    seal_message,
)
from susurro.crypto.limits import MSG_ID_ALPHABET
from susurro.crypto.seal import MAX_COUNTER, MAX_MSG_ID_CHARS, MAX_NAME_CHARS, MAX_SENT_AT


@dataclass(frozen=True)
class Member:
    identity: IdentityKey
    session: SessionKey

    def boxes(self) -> BoxCache:
        return BoxCache(self.session)


POOL = [Member(IdentityKey.generate(), SessionKey.generate()) for _ in range(8)]
SENDER = Member(IdentityKey.generate(), SessionKey.generate())

NAMES = st.text(min_size=1, max_size=MAX_NAME_CHARS)
BODIES = st.text(max_size=600) | st.text(min_size=1, max_size=4).map(
    lambda chunk: (chunk * (MAX_BODY_BYTES // max(1, len(chunk.encode()))))[: MAX_BODY_BYTES // 4]
)


@st.composite
def addressed(draw: st.DrawFn) -> list[tuple[str, int, int]]:
    """(name, index into POOL, counter) for a non-empty set of distinct recipients."""
    indices = draw(st.lists(st.integers(0, len(POOL) - 1), min_size=1, max_size=len(POOL), unique=True))
    names = draw(st.lists(NAMES, min_size=len(indices), max_size=len(indices), unique=True))
    counters = draw(st.lists(st.integers(1, MAX_COUNTER), min_size=len(indices), max_size=len(indices)))
    return list(zip(names, indices, counters, strict=True))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    recipients=addressed(),
    body=BODIES,
    msg_id=st.text(alphabet=sorted(MSG_ID_ALPHABET), min_size=1, max_size=MAX_MSG_ID_CHARS),
    sent_at=st.integers(0, MAX_SENT_AT),
    direct=st.booleans(),
    sender_name=NAMES,
)
def test_every_chosen_recipient_opens_exactly_what_was_sealed(
    recipients: list[tuple[str, int, int]],
    body: str,
    msg_id: str,
    sent_at: int,
    direct: bool,
    sender_name: str,
) -> None:
    direct = direct and len(recipients) == 1  # a direct message has one recipient
    cts = seal_message(
        identity=SENDER.identity,
        boxes=SENDER.boxes(),
        sender=sender_name,
        recipients=[
            Recipient(
                name=name, identity_key=POOL[i].identity.public, session_key=POOL[i].session.public, counter=counter
            )
            for name, i, counter in recipients
        ],
        body=body,
        msg_id=msg_id,
        sent_at=sent_at,
        direct=direct,
    )
    assert list(cts) == [name for name, _, _ in recipients]
    signed_to = tuple((name, fingerprint_bytes(POOL[i].identity.public)) for name, i, _ in recipients)
    for name, i, counter in recipients:
        opened = open_message(
            boxes=POOL[i].boxes(),
            ciphertext=cts[name],
            relay_sender=sender_name,
            sender_identity_key=SENDER.identity.public,
            sender_session_key=SENDER.session.public,
            own_name=name,
            own_identity_key=POOL[i].identity.public,
        )
        assert opened.counter == counter
        inner = opened.inner
        assert (inner.body, inner.msg_id, inner.room) == (body, msg_id, "main")
        assert (inner.sent_at, inner.direct) == (sent_at, direct)
        assert inner.sender == sender_name
        assert inner.to == signed_to  # the same list, in the sender's order, for everyone
    chosen = {i for _, i, _ in recipients}
    for i, outsider in enumerate(POOL):
        if i in chosen:
            continue
        for ct in cts.values():
            with pytest.raises(DecryptFailed):
                open_message(
                    boxes=outsider.boxes(),
                    ciphertext=ct,
                    relay_sender=sender_name,
                    sender_identity_key=SENDER.identity.public,
                    sender_session_key=SENDER.session.public,
                    own_name="outsider",
                    own_identity_key=outsider.identity.public,
                )
