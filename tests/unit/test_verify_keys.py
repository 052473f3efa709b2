"""The verify keys kept between signatures: bounded, by the exact key bytes, never one key for another.

``crypto.identity`` keeps a ``VerifyKey`` per identity key it has checked a signature under, so
the next message of the same sender does not build one again. A hostile relay can announce any
number of made-up senders, so the number kept is bounded (the least recently used let go), and
a key let go is built again when it comes back.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from susurro.crypto import (
    MESSAGE_PURPOSE,
    BadSignature,
    BoxCache,
    IdentityKey,
    Recipient,
    SessionKey,
    open_message,
    seal_message,
    verify_signature,
)
from susurro.crypto.encoding import signing_payload
from susurro.crypto.identity import MAX_CACHED_VERIFY_KEYS, _verify_key, verify_payload


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    _verify_key.cache_clear()
    yield
    _verify_key.cache_clear()


def test_past_the_bound_the_least_recently_used_key_goes_and_still_verifies_when_it_comes_back() -> None:
    first, second = IdentityKey.generate(), IdentityKey.generate()
    verify_signature(first.public, first.sign(MESSAGE_PURPOSE, b"one"), MESSAGE_PURPOSE, b"one")
    verify_signature(second.public, second.sign(MESSAGE_PURPOSE, b"two"), MESSAGE_PURPOSE, b"two")
    # Made-up senders, as a relay could announce them: each a valid key under which nothing verifies.
    for i in range(MAX_CACHED_VERIFY_KEYS):
        verify_signature(second.public, second.sign(MESSAGE_PURPOSE, b"two"), MESSAGE_PURPOSE, b"two")  # kept in use
        invented = IdentityKey.from_seed(i.to_bytes(32, "big")).public
        with pytest.raises(BadSignature):
            verify_signature(invented, first.sign(MESSAGE_PURPOSE, b"one"), MESSAGE_PURPOSE, b"one")
    assert _verify_key.cache_info().currsize == MAX_CACHED_VERIFY_KEYS
    misses = _verify_key.cache_info().misses
    verify_signature(second.public, second.sign(MESSAGE_PURPOSE, b"two"), MESSAGE_PURPOSE, b"two")
    assert _verify_key.cache_info().misses == misses  # used all along: still there
    verify_signature(first.public, first.sign(MESSAGE_PURPOSE, b"one"), MESSAGE_PURPOSE, b"one")
    assert _verify_key.cache_info().misses == misses + 1  # let go, built again, and it verifies
    with pytest.raises(BadSignature):
        verify_signature(first.public, second.sign(MESSAGE_PURPOSE, b"one"), MESSAGE_PURPOSE, b"one")
    assert _verify_key.cache_info().currsize == MAX_CACHED_VERIFY_KEYS


def test_a_kept_key_never_verifies_another_key_s_signature() -> None:
    alice, carol = IdentityKey.generate(), IdentityKey.generate()
    by_alice, by_carol = alice.sign(MESSAGE_PURPOSE, b"m"), carol.sign(MESSAGE_PURPOSE, b"m")
    for _ in range(3):  # both kept, in either order
        verify_signature(alice.public, by_alice, MESSAGE_PURPOSE, b"m")
        verify_signature(carol.public, by_carol, MESSAGE_PURPOSE, b"m")
        with pytest.raises(BadSignature):
            verify_signature(alice.public, by_carol, MESSAGE_PURPOSE, b"m")
        with pytest.raises(BadSignature):
            verify_signature(carol.public, by_alice, MESSAGE_PURPOSE, b"m")
    # A key one bit away from a kept one is its own entry, and a key that is no key is refused, not kept.
    near = bytes([alice.public[0] ^ 1]) + alice.public[1:]
    with pytest.raises(BadSignature):
        verify_signature(near, by_alice, MESSAGE_PURPOSE, b"m")
    with pytest.raises(BadSignature):
        verify_signature(alice.public[:31], by_alice, MESSAGE_PURPOSE, b"m")
    assert _verify_key.cache_info().currsize == 3


def test_a_message_signed_by_one_member_is_refused_under_another_s_kept_key() -> None:
    alice, carol, bob = (
        (IdentityKey.generate(), SessionKey.generate()),
        (IdentityKey.generate(), SessionKey.generate()),
        (IdentityKey.generate(), SessionKey.generate()),
    )
    to_bob = [Recipient(name="bob", identity_key=bob[0].public, session_key=bob[1].public, counter=1)]
    bob_boxes = BoxCache(bob[1])

    def sealed_by(signer: tuple[IdentityKey, SessionKey], name: str) -> bytes:
        return seal_message(
            identity=signer[0],
            boxes=BoxCache(signer[1]),
            sender=name,
            recipients=to_bob,
            body="hi",
            msg_id="m1",
            sent_at=1,
        )["bob"]

    def open_from(ct: bytes, name: str, claimed: tuple[IdentityKey, SessionKey], session: SessionKey) -> str:
        return open_message(
            boxes=bob_boxes,
            ciphertext=ct,
            relay_sender=name,
            sender_identity_key=claimed[0].public,
            sender_session_key=session.public,
            own_name="bob",
            own_identity_key=bob[0].public,
        ).inner.body

    assert open_from(sealed_by(alice, "alice"), "alice", alice, alice[1]) == "hi"
    assert open_from(sealed_by(carol, "carol"), "carol", carol, carol[1]) == "hi"
    # Carol signs as "alice" with her own identity key, over alice's session: alice's kept key refuses it.
    forged = seal_message(
        identity=carol[0],
        boxes=BoxCache(alice[1]),
        sender="alice",
        recipients=to_bob,
        body="hi",
        msg_id="m2",
        sent_at=1,
    )["bob"]
    with pytest.raises(BadSignature):
        open_from(forged, "alice", alice, alice[1])


def test_bytes_framed_for_another_purpose_do_not_verify_under_this_one() -> None:
    key = IdentityKey.generate()
    other = b"susurro/other/v1"
    payload = signing_payload(other, b"one")
    signature = key.sign(other, b"one")  # a valid signature, of another kind of signed bytes
    verify_payload(key.public, signature, other, payload)
    with pytest.raises(BadSignature, match="not framed"):
        verify_payload(key.public, signature, MESSAGE_PURPOSE, payload)
