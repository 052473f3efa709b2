"""Fingerprints: what people read aloud to compare identity keys.

A fingerprint is a BLAKE2b-256 of the identity public key, personalised for
this purpose, shown as eight groups of four decimal digits (about 106 bits).
Digits, not hex, because they are easier to read over the phone.
"""

from __future__ import annotations

import nacl.encoding
import nacl.hash

from .keytypes import IdentityPublicKey

_PERSON = b"susurro/fp/v1"  # BLAKE2b personalisation: at most 16 bytes
FINGERPRINT_SIZE = 32
_GROUPS = 8
_GROUP_DIGITS = 4


def fingerprint_bytes(identity_public: IdentityPublicKey) -> bytes:
    """The 32-byte fingerprint digest of an identity public key."""
    return nacl.hash.blake2b(
        identity_public, digest_size=FINGERPRINT_SIZE, person=_PERSON, encoder=nacl.encoding.RawEncoder
    )


def fingerprint(identity_public: IdentityPublicKey) -> str:
    """Full fingerprint for display: ``'1234 5678 ...'`` (8 groups of 4 digits)."""
    digest = fingerprint_bytes(identity_public)
    groups = []
    for i in range(_GROUPS):
        chunk = int.from_bytes(digest[4 * i : 4 * i + 4], "big")
        groups.append(f"{chunk % 10**_GROUP_DIGITS:0{_GROUP_DIGITS}d}")
    return " ".join(groups)


def short_fingerprint(identity_public: IdentityPublicKey) -> str:
    """The first two groups, for rosters and join notices: ``'1234 5678'``."""
    return " ".join(fingerprint(identity_public).split(" ")[:2])
