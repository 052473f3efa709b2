"""Identity keys and their file, signatures, session certificates, join proofs, Box, fingerprints."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import nacl.public
import nacl.signing
import pytest

from susurro.crypto import (
    CERT_PURPOSE,
    JOIN_PURPOSE,
    MESSAGE_PURPOSE,
    BadCertificate,
    BadPublicKey,
    BadSignature,
    CryptoError,
    IdentityKey,
    KeyFileError,
    SessionCertificate,
    SessionKey,
    fingerprint,
    fingerprint_bytes,
    join_proof,
    load_identity,
    load_or_create_identity,
    make_box,
    save_identity,
    short_fingerprint,
    signing_payload,
    verify_join_proof,
    verify_signature,
)
from susurro.protocol import Hello, Member

SEED = bytes(range(32))
T0 = 1_700_000_000


def flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


# --- key file ----------------------------------------------------------------


def write_key_file(path: Path, document: Any, mode: int = 0o600) -> Path:
    path.write_text(document if isinstance(document, str) else json.dumps(document), encoding="utf-8")
    os.chmod(path, mode)
    return path


def good_document(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "format": "susurro-identity",
        "version": 1,
        "protection": "none",
        "seed": base64.b64encode(SEED).decode("ascii"),
    }
    document.update(changes)
    return document


def test_save_and_load_round_trip_preserves_the_key(tmp_path: Path) -> None:
    key = IdentityKey.generate()
    path = tmp_path / "identity.key"
    save_identity(key, path)
    loaded = load_identity(path)
    assert loaded.public == key.public
    assert loaded.seed() == key.seed()
    # The loaded key signs like the original.
    verify_signature(key.public, loaded.sign(MESSAGE_PURPOSE, b"x"), MESSAGE_PURPOSE, b"x")


def test_saved_file_has_mode_0600_and_no_temp_file_left(tmp_path: Path) -> None:
    path = tmp_path / "identity.key"
    save_identity(IdentityKey.generate(), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["identity.key"]


def test_saved_file_is_the_documented_json(tmp_path: Path) -> None:
    key = IdentityKey.from_seed(SEED)
    path = tmp_path / "identity.key"
    save_identity(key, path)
    assert json.loads(path.read_text(encoding="utf-8")) == good_document()


def test_save_creates_missing_parent_directories_private(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "identity.key"
    save_identity(IdentityKey.generate(), path)
    assert path.exists()
    assert stat.S_IMODE(path.parent.stat().st_mode) & 0o077 == 0


def test_save_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "identity.key"
    first = IdentityKey.generate()
    save_identity(first, path)
    before = path.read_bytes()
    with pytest.raises(KeyFileError, match="already exists"):
        save_identity(IdentityKey.generate(), path)
    assert path.read_bytes() == before
    assert load_identity(path).public == first.public


def test_load_hand_written_file_gives_the_seed_key(tmp_path: Path) -> None:
    path = write_key_file(tmp_path / "k", good_document())
    loaded = load_identity(path)
    assert loaded.seed() == SEED
    assert loaded.public == bytes(nacl.signing.SigningKey(SEED).verify_key)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o700 | 0o001, 0o620])
def test_load_refuses_a_file_readable_by_others(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "identity.key"
    save_identity(IdentityKey.generate(), path)
    os.chmod(path, mode)
    with pytest.raises(KeyFileError) as info:
        load_identity(path)
    assert "chmod 600" in str(info.value)
    assert f"{mode:o}" in str(info.value)


def test_load_accepts_0400(tmp_path: Path) -> None:
    path = write_key_file(tmp_path / "k", good_document(), mode=0o400)
    assert load_identity(path).seed() == SEED


BAD_FILES: dict[str, Any] = {
    "unknown format": good_document(format="ssh-ed25519"),
    "missing format": {k: v for k, v in good_document().items() if k != "format"},
    "unknown version": good_document(version=2),
    "missing version": {k: v for k, v in good_document().items() if k != "version"},
    "string version": good_document(version="1"),
    "unknown protection": good_document(protection="argon2id"),
    "missing protection": {k: v for k, v in good_document().items() if k != "protection"},
    "damaged base64": good_document(seed="AAEC!!!" + base64.b64encode(SEED).decode()[7:]),
    "base64 with whitespace": good_document(seed=" " + base64.b64encode(SEED).decode()),
    "seed 31 bytes": good_document(seed=base64.b64encode(SEED[:31]).decode()),
    "seed 33 bytes": good_document(seed=base64.b64encode(SEED + b"\x00").decode()),
    "seed 64 bytes": good_document(seed=base64.b64encode(SEED * 2).decode()),
    "missing seed": {k: v for k, v in good_document().items() if k != "seed"},
    "seed not a string": good_document(seed=12345),
    "not json": "this is not json {",
    "empty file": "",
    "json list": [good_document()],
    "json string": '"susurro-identity"',
    "not utf-8": None,
}


@pytest.mark.parametrize("document", list(BAD_FILES.values()), ids=list(BAD_FILES))
def test_load_refuses_bad_files(tmp_path: Path, document: Any) -> None:
    path = tmp_path / "identity.key"
    if document is None:
        path.write_bytes(b'{"format": "\xff\xfe"}')
        os.chmod(path, 0o600)
    else:
        write_key_file(path, document)
    with pytest.raises(KeyFileError):
        load_identity(path)


def test_load_refuses_missing_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="no identity key file"):
        load_identity(tmp_path / "absent.key")


def test_load_refuses_an_oversized_file(tmp_path: Path) -> None:
    path = write_key_file(tmp_path / "k", json.dumps(good_document()) + " " * 70_000)
    with pytest.raises(KeyFileError, match="too large"):
        load_identity(path)


def test_load_refuses_deeply_nested_json(tmp_path: Path) -> None:
    path = write_key_file(tmp_path / "k", "[" * 60_000)
    with pytest.raises(KeyFileError):
        load_identity(path)


@pytest.mark.parametrize("version", [True, 1.0])
def test_load_refuses_non_integer_version(tmp_path: Path, version: Any) -> None:
    # JSON true and 1.0 compare equal to 1 in Python; they are still not version 1.
    path = write_key_file(tmp_path / "k", good_document(version=version))
    with pytest.raises(KeyFileError, match="version"):
        load_identity(path)


def test_load_or_create_creates_then_loads(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "identity.key"
    key, created = load_or_create_identity(path)
    assert created is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again, created_again = load_or_create_identity(path)
    assert created_again is False
    assert again.public == key.public


def test_load_or_create_does_not_replace_a_bad_file(tmp_path: Path) -> None:
    path = write_key_file(tmp_path / "k", "garbage")
    with pytest.raises(KeyFileError):
        load_or_create_identity(path)
    assert path.read_text(encoding="utf-8") == "garbage"


@pytest.mark.parametrize("size", [0, 31, 33, 64])
def test_from_seed_refuses_wrong_size(size: int) -> None:
    with pytest.raises(KeyFileError):
        IdentityKey.from_seed(bytes(size))


def test_identity_repr_does_not_show_the_seed() -> None:
    key = IdentityKey.from_seed(SEED)
    text = repr(key)
    assert key.fingerprint in text
    assert SEED.hex() not in text
    assert base64.b64encode(SEED).decode() not in text
    assert repr(SessionKey.generate()) == "SessionKey(<secret>)"


# --- signatures --------------------------------------------------------------

IK = IdentityKey.from_seed(SEED)
OTHER = IdentityKey.from_seed(bytes(range(1, 33)))
FIELDS: tuple[bytes | str | int, ...] = (b"\x00\x01", "alice", 42)
SIG = IK.sign(MESSAGE_PURPOSE, *FIELDS)


def test_good_signature_verifies() -> None:
    assert len(SIG) == 64
    assert verify_signature(IK.public, SIG, MESSAGE_PURPOSE, *FIELDS) is None


def test_signature_is_over_the_documented_payload() -> None:
    payload = MESSAGE_PURPOSE + b"\x00" + b"\x93\xc4\x02\x00\x01\xa5alice\x2a"
    assert signing_payload(MESSAGE_PURPOSE, *FIELDS) == payload
    # Plain PyNaCl, from the same seed, over those exact bytes gives the same signature.
    assert nacl.signing.SigningKey(SEED).sign(payload).signature == SIG


BAD_VERIFICATIONS: dict[str, tuple[bytes, bytes, bytes, tuple[bytes | str | int, ...]]] = {
    "wrong purpose": (IK.public, SIG, CERT_PURPOSE, FIELDS),
    "wrong field value": (IK.public, SIG, MESSAGE_PURPOSE, (b"\x00\x01", "alicf", 42)),
    "wrong int": (IK.public, SIG, MESSAGE_PURPOSE, (b"\x00\x01", "alice", 43)),
    "str instead of bytes": (IK.public, SIG, MESSAGE_PURPOSE, ("\x00\x01", "alice", 42)),
    "str instead of int": (IK.public, SIG, MESSAGE_PURPOSE, (b"\x00\x01", "alice", "42")),
    "field moved across boundary": (IK.public, SIG, MESSAGE_PURPOSE, (b"\x00", "\x01alice", 42)),
    "extra field": (IK.public, SIG, MESSAGE_PURPOSE, (*FIELDS, b"")),
    "missing field": (IK.public, SIG, MESSAGE_PURPOSE, FIELDS[:2]),
    "wrong key": (OTHER.public, SIG, MESSAGE_PURPOSE, FIELDS),
    "63-byte signature": (IK.public, SIG[:63], MESSAGE_PURPOSE, FIELDS),
    "65-byte signature": (IK.public, SIG + b"\x00", MESSAGE_PURPOSE, FIELDS),
    "empty signature": (IK.public, b"", MESSAGE_PURPOSE, FIELDS),
    "signature with the payload appended": (
        IK.public,
        SIG + signing_payload(MESSAGE_PURPOSE, *FIELDS),
        MESSAGE_PURPOSE,
        FIELDS,
    ),
    "31-byte key": (IK.public[:31], SIG, MESSAGE_PURPOSE, FIELDS),
    "33-byte key": (IK.public + b"\x00", SIG, MESSAGE_PURPOSE, FIELDS),
    "all-zero key": (bytes(32), SIG, MESSAGE_PURPOSE, FIELDS),
    "all-zero signature": (IK.public, bytes(64), MESSAGE_PURPOSE, FIELDS),
    "key is a str": ("k" * 32, SIG, MESSAGE_PURPOSE, FIELDS),  # type: ignore[dict-item]
}


@pytest.mark.parametrize(
    ("key", "signature", "purpose", "fields"), list(BAD_VERIFICATIONS.values()), ids=list(BAD_VERIFICATIONS)
)
def test_bad_signature_raises_bad_signature(
    key: bytes, signature: bytes, purpose: bytes, fields: tuple[bytes | str | int, ...]
) -> None:
    with pytest.raises(BadSignature) as info:
        verify_signature(key, signature, purpose, *fields)
    assert not isinstance(info.value, ValueError)
    assert isinstance(info.value, CryptoError)


def test_every_flipped_signature_bit_is_refused() -> None:
    for bit in range(len(SIG) * 8):
        with pytest.raises(BadSignature):
            verify_signature(IK.public, flip(SIG, bit), MESSAGE_PURPOSE, *FIELDS)


def test_every_flipped_key_bit_is_refused() -> None:
    for bit in range(len(IK.public) * 8):
        with pytest.raises(BadSignature):
            verify_signature(flip(IK.public, bit), SIG, MESSAGE_PURPOSE, *FIELDS)


def test_purpose_with_nul_is_refused() -> None:
    with pytest.raises(ValueError, match="NUL"):
        signing_payload(b"a\x00b", b"x")


def test_purposes_are_distinct() -> None:
    assert len({CERT_PURPOSE, JOIN_PURPOSE, MESSAGE_PURPOSE}) == 3
    assert CERT_PURPOSE == b"susurro/session-key/v1"
    assert JOIN_PURPOSE == b"susurro/join/v1"
    assert MESSAGE_PURPOSE == b"susurro/msg/v1"


# --- session certificates --------------------------------------------------------

SK = SessionKey.generate()
CERT = SessionCertificate.issue(IK, "alice", SK.public, T0)


def test_certificate_round_trip() -> None:
    assert CERT.name == "alice"
    assert CERT.identity_key == IK.public
    assert CERT.session_key == SK.public
    assert CERT.issued_at == T0
    assert CERT.verify() is None
    verify_signature(IK.public, CERT.signature, CERT_PURPOSE, "alice", SK.public, T0)


CERT_ALTERATIONS: dict[str, dict[str, Any]] = {
    "name": {"name": "alicf"},
    "name case": {"name": "Alice"},
    "empty name": {"name": ""},
    "session_key": {"session_key": SessionKey.generate().public},
    "session_key 31 bytes": {"session_key": SK.public[:31]},
    "session_key 33 bytes": {"session_key": SK.public + b"\x00"},
    "issued_at": {"issued_at": T0 + 1},
    "issued_at zero": {"issued_at": 0},
    "identity_key": {"identity_key": OTHER.public},
    "identity_key 31 bytes": {"identity_key": IK.public[:31]},
    "signature bit": {"signature": flip(CERT.signature, 100)},
    "signature 63 bytes": {"signature": CERT.signature[:63]},
    "signature by other key": {"signature": OTHER.sign(CERT_PURPOSE, "alice", SK.public, T0)},
}


@pytest.mark.parametrize("changes", list(CERT_ALTERATIONS.values()), ids=list(CERT_ALTERATIONS))
def test_altered_certificate_is_refused(changes: dict[str, Any]) -> None:
    altered = dataclasses.replace(CERT, **changes)
    with pytest.raises(BadCertificate):
        altered.verify()


MEMBER = Member(name="alice", ik=IK.public, sk=SK.public, cert=CERT.signature, issued_at=T0)
WIRE_ALTERATIONS: dict[str, dict[str, Any]] = {
    "name": {"name": "alicf"},
    "ik": {"ik": OTHER.public},
    "sk": {"sk": SessionKey.generate().public},
    "issued_at": {"issued_at": T0 + 1},
    "cert": {"cert": flip(CERT.signature, 100)},
}


def test_a_hello_and_a_member_carry_their_certificate_field_for_field() -> None:
    hello = Hello(name="alice", ik=IK.public, sk=SK.public, cert=CERT.signature, issued_at=T0, proof=bytes(64))
    assert SessionCertificate.of(MEMBER) == CERT
    assert SessionCertificate.of(hello) == CERT
    SessionCertificate.of(MEMBER).verify()


@pytest.mark.parametrize("changes", list(WIRE_ALTERATIONS.values()), ids=list(WIRE_ALTERATIONS))
def test_every_announced_field_is_bound_by_the_certificate(changes: dict[str, Any]) -> None:
    with pytest.raises(BadCertificate):
        SessionCertificate.of(dataclasses.replace(MEMBER, **changes)).verify()


def test_certificate_reissued_by_other_identity_verifies_under_that_identity_only() -> None:
    other = SessionCertificate.issue(OTHER, "alice", SK.public, T0)
    other.verify()
    with pytest.raises(BadCertificate):
        dataclasses.replace(other, identity_key=IK.public).verify()


# --- join proofs -------------------------------------------------------------

NONCE = bytes(range(200, 232))
PROOF = join_proof(IK, NONCE, "alice", SK.public)


def test_join_proof_verifies() -> None:
    assert verify_join_proof(IK.public, PROOF, NONCE, "alice", SK.public) is None


@pytest.mark.parametrize(
    ("key", "nonce", "name", "sk"),
    [
        (IK.public, flip(NONCE, 0), "alice", SK.public),
        (IK.public, bytes(32), "alice", SK.public),
        (IK.public, NONCE, "bob", SK.public),
        (IK.public, NONCE, "Alice", SK.public),
        (IK.public, NONCE, "alice", SessionKey.generate().public),
        (OTHER.public, NONCE, "alice", SK.public),
    ],
    ids=["nonce bit", "other nonce", "other name", "name case", "other session key", "other identity"],
)
def test_join_proof_refuses_any_change(key: bytes, nonce: bytes, name: str, sk: bytes) -> None:
    with pytest.raises(BadSignature):
        verify_join_proof(key, PROOF, nonce, name, sk)


def test_certificate_signature_is_not_a_join_proof() -> None:
    with pytest.raises(BadSignature):
        verify_join_proof(IK.public, CERT.signature, NONCE, "alice", SK.public)
    # Even over exactly the same fields, the purpose keeps them apart.
    same_fields = IK.sign(CERT_PURPOSE, NONCE, "alice", SK.public)
    with pytest.raises(BadSignature):
        verify_join_proof(IK.public, same_fields, NONCE, "alice", SK.public)


def test_join_proof_is_not_a_certificate_signature() -> None:
    with pytest.raises(BadCertificate):
        dataclasses.replace(CERT, signature=PROOF).verify()
    same_fields = IK.sign(JOIN_PURPOSE, "alice", SK.public, T0)
    with pytest.raises(BadCertificate):
        dataclasses.replace(CERT, signature=same_fields).verify()


def test_message_signature_is_neither_proof_nor_certificate() -> None:
    message_sig = IK.sign(MESSAGE_PURPOSE, "alice", SK.public, T0)
    with pytest.raises(BadCertificate):
        dataclasses.replace(CERT, signature=message_sig).verify()


# --- Box ---------------------------------------------------------------------

#: X25519 points whose shared secret with any clamped scalar is all zeros (libsodium's list).
LOW_ORDER_POINTS = {
    "all zero": bytes(32),
    "u=1": b"\x01" + bytes(31),
    "order 8 (a)": bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    "order 8 (b)": bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    "p-1": bytes.fromhex("ec" + "ff" * 30 + "7f"),
    "p (non-canonical 0)": bytes.fromhex("ed" + "ff" * 30 + "7f"),
    "p+1 (non-canonical 1)": bytes.fromhex("ee" + "ff" * 30 + "7f"),
}


@pytest.mark.parametrize("peer", list(LOW_ORDER_POINTS.values()), ids=list(LOW_ORDER_POINTS))
def test_make_box_refuses_low_order_keys(peer: bytes) -> None:
    with pytest.raises(BadPublicKey):
        make_box(SK, peer)


@pytest.mark.parametrize("peer", [b"", bytes(31), bytes(33)], ids=["empty", "31 bytes", "33 bytes"])
def test_make_box_refuses_malformed_keys(peer: bytes) -> None:
    with pytest.raises(BadPublicKey):
        make_box(SK, peer)


def test_make_box_pairs_open_each_other() -> None:
    peer = SessionKey.generate()
    mine = make_box(SK, peer.public)
    theirs = make_box(peer, SK.public)
    assert isinstance(mine, nacl.public.Box)
    assert theirs.decrypt(mine.encrypt(b"hello")) == b"hello"
    assert mine.decrypt(theirs.encrypt(b"back")) == b"back"


# --- fingerprints ------------------------------------------------------------

FINGERPRINT_RE = re.compile(r"^\d{4}( \d{4}){7}$")


def test_fingerprint_format_and_determinism() -> None:
    fp = fingerprint(IK.public)
    assert FINGERPRINT_RE.match(fp), fp
    assert fingerprint(IK.public) == fp
    assert IK.fingerprint == fp
    assert IdentityKey.from_seed(SEED).fingerprint == fp


def test_fingerprint_is_the_personalised_blake2b_digits() -> None:
    digest = hashlib.blake2b(IK.public, digest_size=32, person=b"susurro/fp/v1").digest()
    assert fingerprint_bytes(IK.public) == digest
    assert IK.fingerprint_bytes == digest
    expected = " ".join(f"{int.from_bytes(digest[i : i + 4], 'big') % 10_000:04d}" for i in range(0, 32, 4))
    assert fingerprint(IK.public) == expected


def test_fingerprint_differs_for_different_keys() -> None:
    keys = [IdentityKey.generate().public for _ in range(50)] + [IK.public, OTHER.public]
    assert len({fingerprint(k) for k in keys}) == len(keys)
    assert len({fingerprint_bytes(k) for k in keys}) == len(keys)
    assert fingerprint(IK.public) != fingerprint(flip(IK.public, 0))


def test_short_fingerprint_is_the_first_two_groups() -> None:
    for key in (IK.public, OTHER.public):
        groups = fingerprint(key).split(" ")
        assert short_fingerprint(key) == f"{groups[0]} {groups[1]}"
        assert re.fullmatch(r"\d{4} \d{4}", short_fingerprint(key))


# Regressions from the adversarial review: the key file could be swapped
# between the permission check and the read, followed through a symlink, or
# live in a directory anyone could write to.


def test_load_refuses_a_symlinked_key_file(tmp_path: Path) -> None:
    real = tmp_path / "real.key"
    save_identity(IdentityKey.generate(), real)
    link = tmp_path / "link.key"
    link.symlink_to(real)
    with pytest.raises(KeyFileError, match="cannot open"):
        load_identity(link)


def test_load_refuses_a_key_in_a_directory_others_can_write(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    key_file = shared / "me.key"
    save_identity(IdentityKey.generate(), key_file)
    shared.chmod(0o777)
    with pytest.raises(KeyFileError, match="writable by other users"):
        load_identity(key_file)


def test_create_refuses_a_dangling_symlink_in_place_of_the_key(tmp_path: Path) -> None:
    trap = tmp_path / "me.key"
    trap.symlink_to(tmp_path / "somewhere-else.key")
    with pytest.raises(KeyFileError):
        load_or_create_identity(trap)
    assert not (tmp_path / "somewhere-else.key").exists()


def test_two_creators_cannot_both_own_the_file(tmp_path: Path) -> None:
    key_file = tmp_path / "me.key"
    first = IdentityKey.generate()
    save_identity(first, key_file)
    with pytest.raises(KeyFileError, match="already exists"):
        save_identity(IdentityKey.generate(), key_file)
    assert load_identity(key_file).public == first.public
    assert [p.name for p in tmp_path.iterdir()] == ["me.key"]  # no temp file left behind
