"""The two kinds of public key as distinct types, so one is never passed for the other.

Both are 32 bytes on the wire (``ik`` and ``sk``), and a mix-up type-checks
as bytes: an identity key fingerprinted as a session key, a session key
pinned as an identity. As ``NewType``s they cost nothing at run time, and
mypy refuses one where the other is expected. Bytes from the network
become one of them where they are checked: a certificate (``SessionCertificate.of``)
or an admitted member.
"""

from __future__ import annotations

from typing import NewType

#: A long-term Ed25519 verify key: what fingerprints, safety numbers and pins are made of.
IdentityPublicKey = NewType("IdentityPublicKey", bytes)
#: A per-connection X25519 public key (PyNaCl calls the *secret* one ``sk``; we never do).
SessionPublicKey = NewType("SessionPublicKey", bytes)
