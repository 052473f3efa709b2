"""Susurro's cryptography: identity and session keys, certificates, sealing
and opening messages, fingerprints. PyNaCl only; imports nothing of ours.
"""

from .encoding import CERT_PURPOSE, JOIN_PURPOSE, MESSAGE_PURPOSE, signing_payload
from .errors import (
    BadCertificate,
    BadPublicKey,
    BadSignature,
    CryptoError,
    DecryptFailed,
    KeyFileError,
    MalformedMessage,
    MessageTooLarge,
    NotAddressedToMe,
    PassphraseRequired,
    Replay,
    SenderMismatch,
    WrongPassphrase,
)
from .fingerprint import fingerprint, fingerprint_bytes, short_fingerprint
from .identity import (
    IdentityKey,
    change_passphrase,
    decode_key_file,
    encode_key_file,
    is_protected,
    load_identity,
    load_or_create_identity,
    save_identity,
    verify_signature,
)
from .padding import pad, padded_length, unpad
from .replay import CounterCheck, ReplayGuard
from .seal import MAX_BODY_BYTES, BoxCache, InnerMessage, OpenedMessage, Recipient, open_message, seal_message
from .session import AnnouncedSessionKey, SessionCertificate, SessionKey, join_proof, make_box, verify_join_proof

__all__ = [
    "CERT_PURPOSE",
    "JOIN_PURPOSE",
    "MAX_BODY_BYTES",
    "MESSAGE_PURPOSE",
    "AnnouncedSessionKey",
    "BadCertificate",
    "BadPublicKey",
    "BadSignature",
    "BoxCache",
    "CounterCheck",
    "CryptoError",
    "DecryptFailed",
    "IdentityKey",
    "InnerMessage",
    "KeyFileError",
    "MalformedMessage",
    "MessageTooLarge",
    "NotAddressedToMe",
    "OpenedMessage",
    "PassphraseRequired",
    "Recipient",
    "Replay",
    "ReplayGuard",
    "SenderMismatch",
    "SessionCertificate",
    "SessionKey",
    "WrongPassphrase",
    "change_passphrase",
    "decode_key_file",
    "encode_key_file",
    "fingerprint",
    "fingerprint_bytes",
    "is_protected",
    "join_proof",
    "load_identity",
    "load_or_create_identity",
    "make_box",
    "open_message",
    "pad",
    "padded_length",
    "save_identity",
    "seal_message",
    "short_fingerprint",
    "signing_payload",
    "unpad",
    "verify_join_proof",
    "verify_signature",
]
