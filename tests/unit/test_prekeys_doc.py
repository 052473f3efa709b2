"""docs/protocol.md, *Prekey test vectors*: recomputed here twice, once by
composing the PyNaCl primitives exactly as the text describes, once through
``crypto/prekeys.py``, and both must equal the document byte for byte."""

from __future__ import annotations

import msgpack
import nacl.bindings
import nacl.encoding
import nacl.hash
import nacl.public
import nacl.secret
import nacl.signing

from susurro.crypto import IdentityKey
from susurro.crypto.encoding import MESSAGE_PURPOSE, signing_payload
from susurro.crypto.fingerprint import fingerprint_bytes
from susurro.crypto.padding import pad
from susurro.crypto.prekeys import (
    ONE_TIME_PREKEY_PURPOSE,
    SIGNED_PREKEY_PURPOSE,
    PrekeyBundle,
    PrekeyPrivate,
    check_bundle,
    open_from_prekey,
    read_envelope,
    seal_to_prekey,
    sign_one_time_prekey,
    sign_signed_prekey,
)
from susurro.crypto.seal import open_block
from tests.helpers.docs import doc_vectors

CREATED_AT = 1764000000
#: The one-time prekey's signed expiry: 30 days after the signed prekey's creation.
EXPIRES_AT = CREATED_AT + 30 * 86_400


def _block() -> bytes:
    """The block of the main *Test vectors*: alice's direct message "hola" to bob, counter 1."""
    alice = nacl.signing.SigningKey(bytes(range(32)))
    bob = nacl.signing.SigningKey(bytes(range(32, 64)))
    inner = msgpack.packb(
        {
            "room": "main",
            "from": "alice",
            "sent_at": CREATED_AT * 1000,
            "msg_id": "0123456789abcdef",
            "direct": True,
            "to": [["bob", fingerprint_bytes(bytes(bob.verify_key))]],
            "body": "hola",
        },
        use_bin_type=True,
    )
    signature = alice.sign(signing_payload(MESSAGE_PURPOSE, inner)).signature
    return pad(msgpack.packb([msgpack.packb([inner, signature], use_bin_type=True), 1], use_bin_type=True))


def vectors() -> dict[str, str]:
    """From the primitives, as docs/protocol.md describes them (not through crypto/prekeys.py)."""
    alice = nacl.signing.SigningKey(bytes(range(32)))
    bob = nacl.signing.SigningKey(bytes(range(32, 64)))
    spk = nacl.public.PrivateKey(bytes([0x51]) * 32)
    opk = nacl.public.PrivateKey(bytes([0x52]) * 32)
    ek = nacl.public.PrivateKey(bytes([0x45]) * 32)
    nonce = bytes([0x26]) * 24
    ik_a, ik_b = bytes(alice.verify_key), bytes(bob.verify_key)
    spk_pub, opk_pub, ek_pub = bytes(spk.public_key), bytes(opk.public_key), bytes(ek.public_key)
    spk_sig = bob.sign(signing_payload(SIGNED_PREKEY_PURPOSE, 7, spk_pub, CREATED_AT)).signature
    opk_sig = bob.sign(signing_payload(ONE_TIME_PREKEY_PURPOSE, 8, opk_pub, EXPIRES_AT)).signature
    alice_x = nacl.bindings.crypto_sign_ed25519_sk_to_curve25519(bytes(alice) + ik_a)
    bob_x_pub = nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(ik_b)
    dh1 = nacl.bindings.crypto_scalarmult(alice_x, spk_pub)
    dh2 = nacl.bindings.crypto_scalarmult(bytes(ek), bob_x_pub)
    dh3 = nacl.bindings.crypto_scalarmult(bytes(ek), spk_pub)
    dh4 = nacl.bindings.crypto_scalarmult(bytes(ek), opk_pub)
    # Version 2, kind 1 (a message), signed prekey 7, one-time prekey 8: all hashed into the key.
    transcript = msgpack.packb(
        [2, 1, 7, 8, dh1, dh2, dh3, dh4, ik_a, ik_b, ek_pub, spk_pub, opk_pub], use_bin_type=True
    )
    key = nacl.hash.blake2b(transcript, digest_size=32, person=b"susurro/x3dh/v2", encoder=nacl.encoding.RawEncoder)
    box = bytes(nacl.secret.SecretBox(key).encrypt(_block(), nonce))
    envelope = msgpack.packb([2, 1, ik_a, ek_pub, 7, 8, box], use_bin_type=True)
    return {
        "bob_spk_private": bytes(spk).hex(),
        "bob_spk": spk_pub.hex(),
        "bob_spk_sig": spk_sig.hex(),
        "bob_opk_private": bytes(opk).hex(),
        "bob_opk": opk_pub.hex(),
        "bob_opk_sig": opk_sig.hex(),
        "ephemeral_private": bytes(ek).hex(),
        "ephemeral": ek_pub.hex(),
        "dh1": dh1.hex(),
        "dh2": dh2.hex(),
        "dh3": dh3.hex(),
        "dh4": dh4.hex(),
        "key": key.hex(),
        "box_nonce": nonce.hex(),
        "envelope": envelope.hex(),
    }


def test_prekey_vectors_in_the_doc_match_the_primitives() -> None:
    assert doc_vectors("### Prekey test vectors") == vectors()


def test_the_code_produces_and_opens_the_documented_envelope() -> None:
    v = {k: bytes.fromhex(x) for k, x in vectors().items()}
    alice, bob = IdentityKey.from_seed(bytes(range(32))), IdentityKey.from_seed(bytes(range(32, 64)))
    spk = PrekeyPrivate.from_bytes(7, v["bob_spk_private"])
    opk = PrekeyPrivate.from_bytes(8, v["bob_opk_private"])
    signed, one_time = sign_signed_prekey(bob, spk, CREATED_AT), sign_one_time_prekey(bob, opk, EXPIRES_AT)
    assert (signed.signature, one_time.signature) == (v["bob_spk_sig"], v["bob_opk_sig"])
    checked = check_bundle(
        PrekeyBundle(name="bob", identity_key=bob.public, signed=signed, one_time=one_time), bob.public
    )
    envelope = seal_to_prekey(
        alice, checked, _block(), ephemeral=nacl.public.PrivateKey(v["ephemeral_private"]), nonce=v["box_nonce"]
    )
    assert envelope == v["envelope"]
    block = open_from_prekey(bob, read_envelope(envelope), alice.public, spk, opk)
    opened = open_block(
        block, relay_sender="alice", sender_identity_key=alice.public, own_name="bob", own_identity_key=bob.public
    )
    assert opened.inner.body == "hola" and opened.counter == 1
