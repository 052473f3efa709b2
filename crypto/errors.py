"""Typed crypto errors. Every failure to trust a key or a message has its own
class, so the client can show the user *which* check failed; all derive from
``CryptoError`` so one ``except`` at the boundary catches them.
"""

from __future__ import annotations


class CryptoError(Exception):
    """Base of every error raised by ``crypto``. ``kind`` is a stable short name."""

    kind = "crypto_error"


class BadSignature(CryptoError):
    """An Ed25519 signature did not verify under the expected identity key."""

    kind = "bad_signature"


class BadCertificate(CryptoError):
    """A session-key certificate is not signed by the identity key it names."""

    kind = "bad_certificate"


class BadPublicKey(CryptoError):
    """A public key is malformed, all-zero or of low order: no Box can use it."""

    kind = "bad_public_key"


class DecryptFailed(CryptoError):
    """The Box did not open: forged, altered, or encrypted to another key."""

    kind = "decrypt_failed"


class MalformedMessage(CryptoError):
    """The ciphertext opened but what is inside breaks the message format."""

    kind = "malformed_message"


class SenderMismatch(CryptoError):
    """The signed ``from`` is not who the relay says sent it (or a reflected message)."""

    kind = "sender_mismatch"


class NotAddressedToMe(CryptoError):
    """The signed recipient list does not name us with our identity key."""

    kind = "not_addressed_to_me"


class Replay(CryptoError):
    """A message id or per-recipient counter we have already seen."""

    kind = "replay"


class MessageTooLarge(CryptoError):
    """The message body exceeds what a sealed message may carry."""

    kind = "message_too_large"


class KeyFileError(CryptoError):
    """A key file is missing, unreadable, of an unknown format, or too widely readable."""

    kind = "key_file"


class PassphraseRequired(KeyFileError):
    """The key file is protected by a passphrase and none was given."""

    kind = "passphrase_required"


class WrongPassphrase(KeyFileError):
    """The passphrase does not open the key file (or the file was altered: the two look the same)."""

    kind = "wrong_passphrase"


class BadPrekey(CryptoError):
    """A prekey from the relay is malformed or not signed by the identity key it is for."""

    kind = "bad_prekey"


class PrekeyKeyChanged(BadPrekey):
    """The relay's prekey bundle is for another identity key than the one pinned for that name."""

    kind = "key_changed"


class UnknownPrekey(CryptoError):
    """A message is sealed to a prekey this client does not hold (never had, or deleted)."""

    kind = "unknown_prekey"


class PrekeyReused(CryptoError):
    """A second message under a one-time prekey that was already used: the relay handed it out twice."""

    kind = "prekey_reused"


class StaleMail(CryptoError):
    """A waiting message signed longer ago than any mailbox keeps mail: the relay held it back."""

    kind = "stale_mail"
