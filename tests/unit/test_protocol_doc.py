"""docs/protocol.md stays true: its byte examples and test vectors are
recomputed here from the code, and every frame type and error code the code
knows must appear in its tables."""

from __future__ import annotations

import re

import msgpack
import nacl.public
import nacl.signing

from susurro.crypto import BoxCache, IdentityKey, SessionCertificate, SessionKey, open_message, verify_join_proof
from susurro.crypto.encoding import CERT_PURPOSE, JOIN_PURPOSE, MESSAGE_PURPOSE, signing_payload
from susurro.crypto.fingerprint import fingerprint, fingerprint_bytes
from susurro.crypto.padding import pad
from susurro.crypto.safety import _half as safety_half
from susurro.crypto.safety import safety_number
from susurro.crypto.seal import InnerMessage
from susurro.protocol import CLIENT_FRAMES, RELAY_FRAMES, Deliver, Dropped, DropReason, Ping, encode
from susurro.protocol.errors import ErrorCode
from tests.helpers.docs import PROTOCOL_DOC, doc_vectors


def vectors() -> dict[str, str]:
    """The worked example of docs/protocol.md, *Test vectors*, from fixed keys and nonces."""
    alice = nacl.signing.SigningKey(bytes(range(32)))
    bob = nacl.signing.SigningKey(bytes(range(32, 64)))
    alice_sk = nacl.public.PrivateKey(bytes([0x41]) * 32)
    bob_sk = nacl.public.PrivateKey(bytes([0x42]) * 32)
    ik, sk = bytes(alice.verify_key), bytes(alice_sk.public_key)
    issued_at, challenge = 1764000000, bytes([0xC0]) * 32
    cert_payload = signing_payload(CERT_PURPOSE, "alice", sk, issued_at)
    proof_payload = signing_payload(JOIN_PURPOSE, challenge, "alice", sk)
    inner = msgpack.packb(
        {
            "room": "main",
            "from": "alice",
            "sent_at": issued_at * 1000,
            "msg_id": "0123456789abcdef",
            "direct": True,
            "to": [["bob", fingerprint_bytes(bytes(bob.verify_key))]],
            "body": "hola",
        },
        use_bin_type=True,
    )
    signature = alice.sign(signing_payload(MESSAGE_PURPOSE, inner)).signature
    sealed = msgpack.packb([inner, signature], use_bin_type=True)
    block = pad(msgpack.packb([sealed, 1], use_bin_type=True))
    nonce = bytes([0x24]) * 24
    ct = bytes(nacl.public.Box(alice_sk, bob_sk.public_key).encrypt(block, nonce))
    return {
        "alice_ik_seed": bytes(range(32)).hex(),
        "alice_ik": ik.hex(),
        "alice_fingerprint": fingerprint(ik),
        "alice_fingerprint_bytes": fingerprint_bytes(ik).hex(),
        "alice_sk_private": (bytes([0x41]) * 32).hex(),
        "alice_sk": sk.hex(),
        "cert_payload": cert_payload.hex(),
        "cert": alice.sign(cert_payload).signature.hex(),
        "challenge_nonce": challenge.hex(),
        "proof_payload": proof_payload.hex(),
        "proof": alice.sign(proof_payload).signature.hex(),
        "bob_ik_seed": bytes(range(32, 64)).hex(),
        "bob_sk_private": (bytes([0x42]) * 32).hex(),
        "inner": inner.hex(),
        "sig": signature.hex(),
        "padded_length": str(len(block)),
        "box_nonce": nonce.hex(),
        "ct": ct.hex(),
        "alice_safety_half": " ".join(safety_half(ik)),
        "bob_safety_half": " ".join(safety_half(bytes(bob.verify_key))),
        "safety_number": safety_number(ik, bytes(bob.verify_key)),
    }


def test_test_vectors_in_the_doc_match_the_code() -> None:
    assert doc_vectors("## Test vectors") == vectors()


def test_test_vectors_are_accepted_by_the_real_client_and_relay_checks() -> None:
    v = {k: bytes.fromhex(x) for k, x in vectors().items() if re.fullmatch(r"(?:[0-9a-f]{2})+", x)}
    alice, bob = IdentityKey.from_seed(v["alice_ik_seed"]), IdentityKey.from_seed(v["bob_ik_seed"])
    assert alice.public == v["alice_ik"]
    # What the relay checks on hello, and every client on a roster entry.
    verify_join_proof(v["alice_ik"], v["proof"], v["challenge_nonce"], "alice", v["alice_sk"])
    SessionCertificate(
        name="alice", identity_key=v["alice_ik"], session_key=v["alice_sk"], issued_at=1764000000, signature=v["cert"]
    ).verify()
    # The client's own encoding of the inner message is byte for byte the vector's.
    inner = InnerMessage(
        room="main", sender="alice", sent_at=1764000000000, msg_id="0123456789abcdef", direct=True,
        to=(("bob", fingerprint_bytes(bob.public)),), body="hola",
    )  # fmt: skip
    assert msgpack.packb(inner.to_wire(), use_bin_type=True) == v["inner"]
    # Bob's client opens the vector's ciphertext.
    opened = open_message(
        boxes=BoxCache(SessionKey(nacl.public.PrivateKey(v["bob_sk_private"]))),
        ciphertext=v["ct"],
        relay_sender="alice",
        sender_identity_key=v["alice_ik"],
        sender_session_key=v["alice_sk"],
        own_name="bob",
        own_identity_key=bob.public,
    )
    assert opened.inner.body == "hola" and opened.counter == 1


def test_byte_level_examples_in_the_doc_match_the_encoder() -> None:
    text = PROTOCOL_DOC.read_text()
    deliver = encode(Deliver(sender="alice", id="e657d728349c616a", ct=bytes.fromhex("0aa08dbcd9ae46c7")))
    example = text.split("### Byte-level example", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    # Each line: hex bytes, then (after three or more spaces) a comment.
    shown = bytes.fromhex(" ".join(re.split(r"\s{3,}", line)[0] for line in example.splitlines()))
    assert shown == deliver
    assert encode(Ping()).hex(" ") in text
    dropped = Dropped(name="bob", ids=("e657d728349c616a",), reason=DropReason.SLOW_READER.value)
    assert encode(dropped).hex(" ") in text


def test_every_frame_type_and_error_code_is_documented() -> None:
    text = PROTOCOL_DOC.read_text()
    tables = {m.group(1) for m in re.finditer(r"^\| `([a-z_]+)` \|", text, re.M)}
    missing_frames = sorted((set(CLIENT_FRAMES) | set(RELAY_FRAMES)) - tables)
    assert not missing_frames, f"frame types missing from docs/protocol.md tables: {missing_frames}"
    missing_codes = sorted(code.value for code in ErrorCode if code.value not in tables)
    assert not missing_codes, f"error codes missing from docs/protocol.md: {missing_codes}"


def test_the_safety_number_puts_the_smaller_half_first_whoever_asks() -> None:
    v = vectors()
    halves = sorted([v["alice_safety_half"], v["bob_safety_half"]])
    assert v["safety_number"] == " ".join(halves)
    alice = bytes(nacl.signing.SigningKey(bytes(range(32))).verify_key)
    bob = bytes(nacl.signing.SigningKey(bytes(range(32, 64))).verify_key)
    assert safety_number(bob, alice) == safety_number(alice, bob)
