"""Session keys (X25519, one per connection) and their certificates.

A session key is generated for each connection and never written to disk, so
stealing an identity key later does not open past sessions. The identity key
certifies it::

    cert  = IK.sign("susurro/session-key/v1" || name || SK_pub || issued_at)

and proves possession to the relay when joining::

    proof = IK.sign("susurro/join/v1" || nonce || name || SK_pub)

Clients verify every certificate themselves and never take the relay's word
that a session key belongs to a name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import nacl.exceptions
import nacl.public

from .encoding import CERT_PURPOSE, JOIN_PURPOSE
from .errors import BadCertificate, BadPublicKey, BadSignature
from .identity import IdentityKey, verify_signature
from .keytypes import SessionPublicKey
from .limits import SESSION_KEY_SIZE


class SessionKey:
    """An ephemeral X25519 key pair for one connection."""

    __slots__ = ("_private",)

    def __init__(self, private: nacl.public.PrivateKey) -> None:
        self._private = private

    @classmethod
    def generate(cls) -> SessionKey:
        return cls(nacl.public.PrivateKey.generate())

    @property
    def public(self) -> SessionPublicKey:
        return SessionPublicKey(bytes(self._private.public_key))

    @property
    def private_key(self) -> nacl.public.PrivateKey:
        return self._private

    def __repr__(self) -> str:
        return "SessionKey(<secret>)"


class AnnouncedSessionKey(Protocol):
    """A session key as the wire announces it (a ``hello``, a roster ``member``).

    The certificate's fields under their wire names (``ik``, ``sk``, ``cert``).
    Structural, so ``crypto`` reads protocol frames without importing
    ``protocol`` (decision 29); read-only, so a frozen frame matches.
    """

    @property
    def name(self) -> str: ...
    @property
    def ik(self) -> bytes: ...
    @property
    def sk(self) -> bytes: ...
    @property
    def issued_at(self) -> int: ...
    @property
    def cert(self) -> bytes: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionCertificate:
    """``identity_key`` vouches that ``session_key`` speaks for ``name`` since ``issued_at``."""

    name: str
    identity_key: bytes
    session_key: bytes
    issued_at: int
    signature: bytes

    @classmethod
    def issue(cls, identity: IdentityKey, name: str, session_public: bytes, issued_at: int) -> SessionCertificate:
        signature = identity.sign(CERT_PURPOSE, name, session_public, issued_at)
        return cls(
            name=name,
            identity_key=identity.public,
            session_key=session_public,
            issued_at=issued_at,
            signature=signature,
        )

    @classmethod
    def of(cls, announced: AnnouncedSessionKey) -> SessionCertificate:
        """The certificate a ``hello`` or ``member`` carries (the one place wire names map to fields)."""
        return cls(
            name=announced.name,
            identity_key=announced.ik,
            session_key=announced.sk,
            issued_at=announced.issued_at,
            signature=announced.cert,
        )

    def verify(self) -> None:
        """Raise ``BadCertificate`` unless the identity key signed exactly these fields."""
        if len(self.session_key) != SESSION_KEY_SIZE:
            raise BadCertificate(f"session key is {len(self.session_key)} bytes, not {SESSION_KEY_SIZE}")
        try:
            verify_signature(
                self.identity_key, self.signature, CERT_PURPOSE, self.name, self.session_key, self.issued_at
            )
        except BadSignature as exc:
            raise BadCertificate(f"session certificate for {self.name!r} is not signed by its identity key") from exc


def join_proof(identity: IdentityKey, nonce: bytes, name: str, session_public: SessionPublicKey) -> bytes:
    """Signature over the relay's challenge: proves the joiner holds ``identity``."""
    return identity.sign(JOIN_PURPOSE, nonce, name, session_public)


def verify_join_proof(identity_public: bytes, proof: bytes, nonce: bytes, name: str, session_public: bytes) -> None:
    """Raise ``BadSignature`` unless ``proof`` answers ``nonce`` for this name and session key."""
    verify_signature(identity_public, proof, JOIN_PURPOSE, nonce, name, session_public)


def make_box(own: SessionKey, peer_public: SessionPublicKey) -> nacl.public.Box:
    """The pairwise Box between our session key and a peer's.

    PyNaCl raises its own ``RuntimeError`` for an all-zero or low-order peer key
    (the shared secret would be predictable): that peer is refused.
    """
    try:
        return nacl.public.Box(own.private_key, nacl.public.PublicKey(peer_public))
    except (nacl.exceptions.CryptoError, ValueError, TypeError) as exc:
        raise BadPublicKey("peer session key is malformed or of low order") from exc
