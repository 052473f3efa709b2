"""crypto/prekeys.py: signed and one-time prekeys, sealing to them and opening.

Round-trips for any body (Hypothesis), every single-byte flip of an envelope,
and each check a sender or recipient makes, with the typed error it raises.
"""

from __future__ import annotations

import dataclasses

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from susurro.crypto import IdentityKey
from susurro.crypto.errors import (
    BadPrekey,
    BadPublicKey,
    CryptoError,
    DecryptFailed,
    MalformedMessage,
    NotAddressedToMe,
    PrekeyKeyChanged,
    SenderMismatch,
)
from susurro.crypto.prekeys import (
    CheckedBundle,
    EnvelopeKind,
    OneTimePrekey,
    PrekeyBundle,
    PrekeyFallback,
    PrekeyPrivate,
    check_bundle,
    new_one_time_prekeys,
    new_signed_prekey,
    open_from_prekey,
    read_envelope,
    seal_to_prekey,
)
from susurro.crypto.seal import message_block, open_block, sign_message

ALICE = IdentityKey.from_seed(bytes(range(32)))
BOB = IdentityKey.from_seed(bytes(range(32, 64)))
MALLORY = IdentityKey.generate()
OPK_EXPIRES = 1_764_000_000 + 30 * 86_400


def bob_keys(with_one_time: bool = True) -> tuple[PrekeyBundle, PrekeyPrivate, PrekeyPrivate | None]:
    spk_private, spk = new_signed_prekey(BOB, 7, 1_764_000_000)
    opk_private: PrekeyPrivate | None = None
    opk: OneTimePrekey | None = None
    if with_one_time:
        ((opk_private, opk),) = new_one_time_prekeys(BOB, 8, 1, OPK_EXPIRES)
    return PrekeyBundle(name="bob", identity_key=BOB.public, signed=spk, one_time=opk), spk_private, opk_private


def block_for_bob(body: str = "hola", counter: int = 1) -> bytes:
    signed = sign_message(
        identity=ALICE, sender="alice", recipients=[("bob", BOB.public)], body=body, msg_id="m1", sent_at=1
    )
    return message_block(signed, counter)


def open_as_bob(envelope: bytes, spk: PrekeyPrivate, opk: PrekeyPrivate | None, sender_ik: bytes = ALICE.public):
    header = read_envelope(envelope)
    block = open_from_prekey(BOB, header, sender_ik, spk, opk)
    return open_block(
        block, relay_sender="alice", sender_identity_key=sender_ik, own_name="bob", own_identity_key=BOB.public
    )


@pytest.mark.parametrize("with_one_time", [True, False])
def test_sealed_to_a_prekey_bob_opens_the_same_signed_message(with_one_time: bool) -> None:
    bundle, spk, opk = bob_keys(with_one_time)
    checked = check_bundle(bundle, BOB.public)
    assert checked.fallback is (PrekeyFallback.NONE if with_one_time else PrekeyFallback.EXHAUSTED)
    envelope = seal_to_prekey(ALICE, checked, block_for_bob("hola", 3))
    opened = open_as_bob(envelope, spk, opk)
    assert opened.inner.body == "hola" and opened.inner.sender == "alice" and opened.counter == 3
    header = read_envelope(envelope)
    assert header.sender_identity_key == ALICE.public
    assert header.signed_key_id == 7 and header.one_time_key_id == (8 if with_one_time else 0)


def test_every_copy_has_a_fresh_ephemeral_key_and_nonce() -> None:
    bundle, _, _ = bob_keys()
    checked = check_bundle(bundle, BOB.public)
    first, second = (seal_to_prekey(ALICE, checked, block_for_bob()) for _ in range(2))
    assert read_envelope(first).ephemeral != read_envelope(second).ephemeral
    assert first[-100:] != second[-100:]


@settings(max_examples=40, deadline=None)
@given(body=st.text(max_size=600), counter=st.integers(1, 2**63 - 1), with_one_time=st.booleans())
def test_round_trip_for_any_body_and_counter(body: str, counter: int, with_one_time: bool) -> None:
    body = body.encode("utf-8", "replace").decode("utf-8", "replace")
    bundle, spk, opk = bob_keys(with_one_time)
    envelope = seal_to_prekey(ALICE, check_bundle(bundle, BOB.public), block_for_bob(body, counter))
    opened = open_as_bob(envelope, spk, opk)
    assert (opened.inner.body, opened.counter) == (body, counter)


def test_every_single_byte_flip_of_an_envelope_is_refused() -> None:
    bundle, spk, opk = bob_keys()
    envelope = seal_to_prekey(ALICE, check_bundle(bundle, BOB.public), block_for_bob())
    for index in range(len(envelope)):
        flipped = bytearray(envelope)
        flipped[index] ^= 0x01
        with pytest.raises((CryptoError, ValueError)):
            open_as_bob(bytes(flipped), spk, opk)


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=400))
def test_any_bytes_as_an_envelope_raise_only_the_typed_error(data: bytes) -> None:
    with pytest.raises(MalformedMessage):
        read_envelope(data)


def test_a_bundle_for_another_identity_key_is_refused_before_sealing() -> None:
    bundle, _, _ = bob_keys()
    swapped = PrekeyBundle(name="bob", identity_key=MALLORY.public, signed=bundle.signed, one_time=bundle.one_time)
    with pytest.raises(PrekeyKeyChanged):
        check_bundle(swapped, BOB.public)


def test_a_signed_prekey_signed_by_another_key_is_refused() -> None:
    _bundle, _, _ = bob_keys()
    _, forged = new_signed_prekey(MALLORY, 7, 1_764_000_000)
    with pytest.raises(BadPrekey) as caught:
        check_bundle(PrekeyBundle(name="bob", identity_key=BOB.public, signed=forged, one_time=None), BOB.public)
    assert caught.value.kind == "bad_prekey"


def test_a_one_time_prekey_signed_by_another_key_falls_back_to_the_signed_prekey() -> None:
    bundle, spk, _ = bob_keys()
    ((_, forged),) = new_one_time_prekeys(MALLORY, 8, 1, OPK_EXPIRES)
    checked = check_bundle(
        PrekeyBundle(name="bob", identity_key=BOB.public, signed=bundle.signed, one_time=forged), BOB.public
    )
    assert checked.fallback is PrekeyFallback.BAD_SIGNATURE and checked.one_time is None
    assert open_as_bob(seal_to_prekey(ALICE, checked, block_for_bob()), spk, None).inner.body == "hola"


def test_a_one_time_prekey_this_sender_already_used_is_not_used_again() -> None:
    bundle, _, _ = bob_keys()
    checked = check_bundle(bundle, BOB.public, used_one_time={8})
    assert checked.fallback is PrekeyFallback.REUSED and checked.one_time is None


def test_an_expired_one_time_prekey_is_not_sealed_to() -> None:
    bundle, _, _ = bob_keys()
    assert check_bundle(bundle, BOB.public, now=OPK_EXPIRES - 1).one_time == bundle.one_time
    checked = check_bundle(bundle, BOB.public, now=OPK_EXPIRES)  # a relay that kept it past its expiry
    assert checked.fallback is PrekeyFallback.EXPIRED and checked.one_time is None


def test_a_one_time_prekeys_expiry_is_signed() -> None:
    bundle, _, _ = bob_keys()
    assert bundle.one_time is not None
    stretched = dataclasses.replace(bundle.one_time, expires_at=bundle.one_time.expires_at + 86_400)
    checked = check_bundle(dataclasses.replace(bundle, one_time=stretched), BOB.public, now=OPK_EXPIRES)
    assert checked.fallback is PrekeyFallback.BAD_SIGNATURE and checked.one_time is None


def test_an_envelope_naming_another_sender_key_is_a_sender_mismatch() -> None:
    bundle, spk, opk = bob_keys()
    envelope = seal_to_prekey(MALLORY, check_bundle(bundle, BOB.public), block_for_bob())
    with pytest.raises(SenderMismatch):
        open_as_bob(envelope, spk, opk)  # bob pinned alice for "alice"


def test_an_envelope_with_its_header_key_rewritten_does_not_open() -> None:
    """The relay rewrites IK_A to mallory's: the key derivation binds it, so the box fails."""
    bundle, spk, opk = bob_keys()
    envelope = seal_to_prekey(ALICE, check_bundle(bundle, BOB.public), block_for_bob())
    fields = msgpack.unpackb(envelope)
    fields[2] = MALLORY.public
    with pytest.raises(DecryptFailed):
        open_as_bob(msgpack.packb(fields, use_bin_type=True), spk, opk, sender_ik=MALLORY.public)


def test_an_envelope_relabelled_from_message_to_receipt_does_not_open() -> None:
    """The kind is hashed into the key (envelope v2): a relay cannot pass a message off as a receipt."""
    bundle, spk, opk = bob_keys()
    envelope = seal_to_prekey(ALICE, check_bundle(bundle, BOB.public), block_for_bob())
    assert read_envelope(envelope).kind is EnvelopeKind.MESSAGE
    fields = msgpack.unpackb(envelope)
    fields[1] = int(EnvelopeKind.RECEIPT)
    relabelled = msgpack.packb(fields, use_bin_type=True)
    assert read_envelope(relabelled).kind is EnvelopeKind.RECEIPT
    with pytest.raises(DecryptFailed):
        open_as_bob(relabelled, spk, opk)


def test_sealed_without_the_one_time_key_bob_cannot_open_with_it_and_vice_versa() -> None:
    bundle, spk, _opk = bob_keys()
    full = check_bundle(bundle, BOB.public)
    envelope = seal_to_prekey(ALICE, full, block_for_bob())
    header = read_envelope(envelope)
    other_opk = PrekeyPrivate.generate(8)
    with pytest.raises(DecryptFailed):
        open_from_prekey(BOB, header, ALICE.public, spk, other_opk)


def test_only_the_addressee_opens_it() -> None:
    """A prekey envelope for carol carrying a message addressed to bob is not_addressed_to_me for carol."""
    carol = IdentityKey.generate()
    spk_private, spk = new_signed_prekey(carol, 1, 5)
    checked = check_bundle(
        PrekeyBundle(name="carol", identity_key=carol.public, signed=spk, one_time=None), carol.public
    )
    block = open_from_prekey(
        carol, read_envelope(seal_to_prekey(ALICE, checked, block_for_bob())), ALICE.public, spk_private, None
    )
    with pytest.raises(NotAddressedToMe):
        open_block(
            block,
            relay_sender="alice",
            sender_identity_key=ALICE.public,
            own_name="carol",
            own_identity_key=carol.public,
        )


def test_a_low_order_prekey_is_refused() -> None:
    bundle, _, _ = bob_keys(with_one_time=False)
    zero = CheckedBundle(
        name="bob",
        identity_key=BOB.public,
        signed=bundle.signed.__class__(key_id=7, public=bytes(32), created_at=1, signature=bytes(64)),
        one_time=None,
        fallback=PrekeyFallback.EXHAUSTED,
    )
    with pytest.raises(BadPublicKey):
        seal_to_prekey(ALICE, zero, block_for_bob())


def test_private_halves_do_not_print() -> None:
    private = PrekeyPrivate.generate(5)
    assert private.private_bytes().hex() not in repr(private)
    assert PrekeyPrivate.from_bytes(5, private.private_bytes()).public == private.public
