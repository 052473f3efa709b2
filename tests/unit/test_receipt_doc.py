"""docs/protocol.md, *Receipt test vector*: a receipt composed from the PyNaCl
primitives exactly as the text describes, then the same through
``crypto/prekeys.py``; both must equal the document byte for byte, and the
code must open the documented envelope back into the documented receipt."""

from __future__ import annotations

import msgpack
import nacl.bindings
import nacl.encoding
import nacl.hash
import nacl.public
import nacl.secret
import nacl.signing

from susurro.crypto import IdentityKey
from susurro.crypto.encoding import signing_payload
from susurro.crypto.fingerprint import fingerprint_bytes
from susurro.crypto.padding import pad
from susurro.crypto.prekeys import (
    RECEIPT_PURPOSE,
    EnvelopeKind,
    PrekeyBundle,
    PrekeyPrivate,
    Receipt,
    check_bundle,
    open_from_prekey,
    open_receipt,
    read_envelope,
    receipt_block,
    seal_to_prekey,
    sign_signed_prekey,
)
from tests.helpers.docs import doc_vectors

CREATED_AT = 1764000000
RECEIPT = Receipt(
    sender="alice",
    recipient="bob",
    recipient_fingerprint=fingerprint_bytes(bytes(nacl.signing.SigningKey(bytes(range(32, 64))).verify_key)),
    msg_ids=("fedcba9876543210",),
    at=1764000001000,
)


def vectors() -> dict[str, str]:
    """From the primitives, as docs/protocol.md describes them (not through crypto/prekeys.py)."""
    alice = nacl.signing.SigningKey(bytes(range(32)))
    bob = nacl.signing.SigningKey(bytes(range(32, 64)))
    spk = nacl.public.PrivateKey(bytes([0x51]) * 32)
    ek = nacl.public.PrivateKey(bytes([0x46]) * 32)
    nonce = bytes([0x27]) * 24
    ik_a, ik_b = bytes(alice.verify_key), bytes(bob.verify_key)
    # The map's keys in this order: msgpack keeps insertion order, and the
    # signature covers these exact bytes.
    inner = msgpack.packb(
        {"from": "alice", "to": ["bob", fingerprint_bytes(ik_b)], "ids": ["fedcba9876543210"], "at": 1764000001000},
        use_bin_type=True,
    )
    sig = alice.sign(signing_payload(RECEIPT_PURPOSE, inner)).signature
    block = pad(msgpack.packb([inner, sig], use_bin_type=True))
    spk_pub, ek_pub = bytes(spk.public_key), bytes(ek.public_key)
    alice_x = nacl.bindings.crypto_sign_ed25519_sk_to_curve25519(bytes(alice) + ik_a)
    bob_x_pub = nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(ik_b)
    dh1 = nacl.bindings.crypto_scalarmult(alice_x, spk_pub)
    dh2 = nacl.bindings.crypto_scalarmult(bytes(ek), bob_x_pub)
    dh3 = nacl.bindings.crypto_scalarmult(bytes(ek), spk_pub)
    # Kind 2 (a receipt), signed prekey 7, no one-time prekey: opk_id 0, DH4 and OPK_pub empty.
    transcript = msgpack.packb([2, 2, 7, 0, dh1, dh2, dh3, b"", ik_a, ik_b, ek_pub, spk_pub, b""], use_bin_type=True)
    key = nacl.hash.blake2b(transcript, digest_size=32, person=b"susurro/x3dh/v2", encoder=nacl.encoding.RawEncoder)
    box = bytes(nacl.secret.SecretBox(key).encrypt(block, nonce))
    envelope = msgpack.packb([2, 2, ik_a, ek_pub, 7, 0, box], use_bin_type=True)
    return {
        "receipt_inner": inner.hex(),
        "receipt_sig": sig.hex(),
        "receipt_block": block.hex(),
        "receipt_ephemeral_private": bytes(ek).hex(),
        "receipt_key": key.hex(),
        "receipt_box_nonce": nonce.hex(),
        "receipt_envelope": envelope.hex(),
    }


def test_receipt_vector_in_the_doc_matches_the_primitives() -> None:
    assert doc_vectors("### Receipt test vector") == vectors()


def test_the_code_seals_and_opens_the_documented_receipt() -> None:
    v = {k: bytes.fromhex(x) for k, x in vectors().items()}
    alice, bob = IdentityKey.from_seed(bytes(range(32))), IdentityKey.from_seed(bytes(range(32, 64)))
    assert receipt_block(alice, RECEIPT) == v["receipt_block"]
    spk = PrekeyPrivate.from_bytes(7, bytes([0x51]) * 32)
    signed = sign_signed_prekey(bob, spk, CREATED_AT)
    checked = check_bundle(PrekeyBundle(name="bob", identity_key=bob.public, signed=signed, one_time=None), bob.public)
    envelope = seal_to_prekey(
        alice,
        checked,
        v["receipt_block"],
        kind=EnvelopeKind.RECEIPT,
        ephemeral=nacl.public.PrivateKey(v["receipt_ephemeral_private"]),
        nonce=v["receipt_box_nonce"],
    )
    assert envelope == v["receipt_envelope"]
    block = open_from_prekey(bob, read_envelope(envelope), alice.public, spk, None)
    opened = open_receipt(
        block,
        relay_sender="alice",
        sender_identity_key=alice.public,
        own_name="bob",
        own_fingerprint=fingerprint_bytes(bob.public),
    )
    assert opened == RECEIPT
