"""Prekeys, so that anyone can seal a message to a member who is offline.

Modelled on Signal's X3DH, with Signal Desktop's figures. Each identity
publishes a signed prekey (X25519, rotated about weekly) and a batch of
one-time prekeys, each signed by the identity key under its own purpose::

    spk_sig = IK.sign("susurro/signed-prekey/v1" || key_id || SPK_pub || created_at)
    opk_sig = IK.sign("susurro/one-time-prekey/v2" || key_id || OPK_pub || expires_at)

A sender seals to a bundle it fetched and checked against the identity key it
has *pinned*, with a fresh ephemeral key EK::

    DH1 = X(ik_A, SPK_B)   DH2 = X(ek, IK_B)   DH3 = X(ek, SPK_B)   DH4 = X(ek, OPK_B) or b""
    key = BLAKE2b-256(msgpack([2, kind, spk_id, opk_id, DH1, DH2, DH3, DH4, IK_A, IK_B, EK, SPK, OPK or b""]),
                      person="susurro/x3dh/v2")
    envelope = msgpack([2, kind, IK_A, EK, spk_id, opk_id or 0, SecretBox(key).encrypt(block)])

``block`` is exactly what an online copy carries (``seal.message_block``), or
a signed receipt (``receipt_block``); ``kind`` says which, and because it is
hashed into the key (with the version and both key ids) a relay that
relabels an item, or rewrites any header field, makes the box fail to open.
Identity keys are Ed25519; their X25519 forms come from libsodium's
``crypto_sign_ed25519_*_to_curve25519``. Everything here is pure: the caller
keeps the private halves and the record of used one-time keys
(``docs/protocol.md``, *Prekeys and mailboxes*).
"""

from __future__ import annotations

import enum
import hmac
from collections.abc import Container
from dataclasses import dataclass
from typing import Any

import msgpack
import nacl.bindings
import nacl.encoding
import nacl.exceptions
import nacl.hash
import nacl.public
import nacl.secret
import nacl.utils

from .errors import (
    BadPrekey,
    BadPublicKey,
    BadSignature,
    DecryptFailed,
    MalformedMessage,
    NotAddressedToMe,
    PrekeyKeyChanged,
    SenderMismatch,
)
from .identity import IdentityKey, verify_signature
from .limits import IDENTITY_KEY_SIZE, SESSION_KEY_SIZE, SIGNATURE_SIZE
from .padding import pad, unpad
from .seal import unpack_strict

SIGNED_PREKEY_PURPOSE = b"susurro/signed-prekey/v1"
#: Version 2 signs the key's expiry too (version 1 keys, without one, are no longer accepted).
ONE_TIME_PREKEY_PURPOSE = b"susurro/one-time-prekey/v2"
#: BLAKE2b personalisation of the key derivation (at most 16 bytes).
X3DH_PERSON = b"susurro/x3dh/v2"
#: Version 2 binds the kind, the version and the key ids into the key (version 1 did not).
ENVELOPE_VERSION = 2
#: Key ids are 1..2^32-1; 0 in an envelope means "no one-time prekey".
MAX_KEY_ID = 2**32 - 1
#: Signal Desktop's figures: a new signed prekey about every 7 days, and the
#: private half of a replaced one kept 30 days for mail sealed just before.
SIGNED_PREKEY_ROTATION = 7 * 24 * 3600
SIGNED_PREKEY_GRACE = 30 * 24 * 3600
#: One-time prekeys kept on the relay, and when to publish more.
ONE_TIME_PREKEY_BATCH = 100
ONE_TIME_PREKEY_LOW_WATER = 10
#: A one-time prekey is handed out until it expires, ``expires_at`` (signed), this long after it was
#: made: a relay that holds back mail sealed to one cannot make its private half live for ever, since
#: the owner deletes it ``ONE_TIME_PREKEY_KEPT`` after that (no mail sealed to it is accepted then).
ONE_TIME_PREKEY_LIFETIME = 30 * 24 * 3600
#: How long after a waiting message's signed ``sent_at`` it may still be opened (seconds): the
#: relay's longest mailbox lifetime (14 days) and a day for clocks that disagree; older is
#: ``stale_mail``.
STALE_MAIL_AGE = 15 * 24 * 3600
#: How long an owner keeps a one-time prekey's private half past its expiry: a sender may fetch it
#: the moment before, and the message may then wait for as long as mail may.
ONE_TIME_PREKEY_KEPT = STALE_MAIL_AGE
#: What a relay stores per identity; a publish past it is refused whole.
MAX_STORED_ONE_TIME_PREKEYS = 100
#: An envelope's fixed part: msgpack array header, version, kind, two bin(32)
#: keys, two uint32 ids and the bin header of the box (at most).
ENVELOPE_OVERHEAD = 1 + 1 + 1 + (2 + IDENTITY_KEY_SIZE) + (2 + SESSION_KEY_SIZE) + 2 * 5 + 5
#: Largest box an envelope may carry (a frame can never hold more).
MAX_BOX_BYTES = 16 * 1024 * 1024

_NONCE_SIZE = nacl.secret.SecretBox.NONCE_SIZE


class EnvelopeKind(enum.IntEnum):
    """What an envelope's block is; authenticated with the box (it is hashed into the key)."""

    MESSAGE = 1
    RECEIPT = 2


class PrekeyFallback(enum.Enum):
    """Why a message is sealed to the signed prekey alone (the sender is told), or ``NONE``."""

    NONE = "none"
    #: The relay had no one-time prekey left (or withheld it).
    EXHAUSTED = "prekey_exhausted"
    #: The one-time prekey's signature did not verify under the pinned key.
    BAD_SIGNATURE = "bad_prekey"
    #: This sender already used that one-time prekey: the relay handed it out twice.
    REUSED = "prekey_reused"
    #: The one-time prekey's signed expiry has passed: an honest relay would have dropped it.
    EXPIRED = "prekey_expired"


def _check_key_id(key_id: int) -> None:
    if type(key_id) is not int or not 0 < key_id <= MAX_KEY_ID:
        raise ValueError(f"a prekey id is 1..{MAX_KEY_ID}")


class PrekeyPrivate:
    """The private half of a prekey, with its id. Never leaves the client."""

    __slots__ = ("_private", "key_id")

    def __init__(self, key_id: int, private: nacl.public.PrivateKey) -> None:
        _check_key_id(key_id)
        self.key_id = key_id
        self._private = private

    @classmethod
    def generate(cls, key_id: int) -> PrekeyPrivate:
        return cls(key_id, nacl.public.PrivateKey.generate())

    @classmethod
    def from_bytes(cls, key_id: int, raw: bytes) -> PrekeyPrivate:
        """From ``private_bytes()``, as the client's own store keeps it."""
        if len(raw) != nacl.public.PrivateKey.SIZE:
            raise ValueError(f"a prekey's private half is {nacl.public.PrivateKey.SIZE} bytes")
        return cls(key_id, nacl.public.PrivateKey(raw))

    @property
    def public(self) -> bytes:
        return bytes(self._private.public_key)

    def private_bytes(self) -> bytes:
        """The secret, for the client's sealed prekey store only."""
        return bytes(self._private)

    def __repr__(self) -> str:  # never print the secret
        return f"PrekeyPrivate(key_id={self.key_id})"


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedPrekey:
    """The public half of a signed prekey, as published and as fetched."""

    key_id: int
    public: bytes
    created_at: int
    signature: bytes

    def verify(self, identity_public: bytes) -> None:
        """Raise ``BadPrekey`` unless ``identity_public`` signed exactly these fields."""
        _check_shape(self.key_id, self.public, self.signature)
        if type(self.created_at) is not int or self.created_at < 0:
            raise BadPrekey("a signed prekey's created_at is a non-negative integer")
        try:
            verify_signature(
                identity_public, self.signature, SIGNED_PREKEY_PURPOSE, self.key_id, self.public, self.created_at
            )
        except BadSignature:
            raise BadPrekey(f"signed prekey {self.key_id} is not signed by the identity key") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class OneTimePrekey:
    """The public half of a one-time prekey; not to be sealed to from ``expires_at`` (seconds) on."""

    key_id: int
    public: bytes
    expires_at: int
    signature: bytes

    def verify(self, identity_public: bytes) -> None:
        _check_shape(self.key_id, self.public, self.signature)
        if type(self.expires_at) is not int or self.expires_at < 0:
            raise BadPrekey("a one-time prekey's expires_at is a non-negative integer")
        try:
            verify_signature(
                identity_public, self.signature, ONE_TIME_PREKEY_PURPOSE, self.key_id, self.public, self.expires_at
            )
        except BadSignature:
            raise BadPrekey(f"one-time prekey {self.key_id} is not signed by the identity key") from None


def _check_shape(key_id: int, public: bytes, signature: bytes) -> None:
    if type(key_id) is not int or not 0 < key_id <= MAX_KEY_ID:
        raise BadPrekey(f"a prekey id is 1..{MAX_KEY_ID}")
    if len(public) != SESSION_KEY_SIZE or len(signature) != SIGNATURE_SIZE:
        raise BadPrekey("a prekey is 32 bytes and its signature 64")


def new_signed_prekey(identity: IdentityKey, key_id: int, created_at: int) -> tuple[PrekeyPrivate, SignedPrekey]:
    """A fresh signed prekey: keep the first, publish the second."""
    private = PrekeyPrivate.generate(key_id)
    return private, sign_signed_prekey(identity, private, created_at)


def sign_signed_prekey(identity: IdentityKey, private: PrekeyPrivate, created_at: int) -> SignedPrekey:
    signature = identity.sign(SIGNED_PREKEY_PURPOSE, private.key_id, private.public, created_at)
    return SignedPrekey(key_id=private.key_id, public=private.public, created_at=created_at, signature=signature)


def sign_one_time_prekey(identity: IdentityKey, private: PrekeyPrivate, expires_at: int) -> OneTimePrekey:
    signature = identity.sign(ONE_TIME_PREKEY_PURPOSE, private.key_id, private.public, expires_at)
    return OneTimePrekey(key_id=private.key_id, public=private.public, expires_at=expires_at, signature=signature)


def new_one_time_prekeys(
    identity: IdentityKey, first_id: int, count: int, expires_at: int
) -> list[tuple[PrekeyPrivate, OneTimePrekey]]:
    """``count`` one-time prekeys numbered from ``first_id``, each valid until ``expires_at``."""
    _check_key_id(first_id)
    if count < 0 or first_id + count - 1 > MAX_KEY_ID:
        raise ValueError("prekey ids would run past the largest id")
    out = []
    for key_id in range(first_id, first_id + count):
        private = PrekeyPrivate.generate(key_id)
        out.append((private, sign_one_time_prekey(identity, private, expires_at)))
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class PrekeyBundle:
    """What the relay hands a sender for one member: possibly lies, until checked."""

    name: str
    identity_key: bytes
    signed: SignedPrekey
    one_time: OneTimePrekey | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckedBundle:
    """A bundle whose keys verified under the pinned identity key: safe to seal to."""

    name: str
    identity_key: bytes
    signed: SignedPrekey
    one_time: OneTimePrekey | None
    fallback: PrekeyFallback


def same_key(a: bytes, b: bytes) -> bool:
    """Constant-time equality of two public keys (the library's compare)."""
    return len(a) == len(b) and hmac.compare_digest(a, b)


def check_bundle(
    bundle: PrekeyBundle,
    pinned_identity_key: bytes,
    used_one_time: Container[int] = (),
    newest_signed: SignedPrekey | None = None,
    now: float | None = None,
) -> CheckedBundle:
    """Check a fetched bundle against the identity key the sender pinned.

    Raises ``PrekeyKeyChanged`` if the bundle is for another identity key and
    ``BadPrekey`` if the signed prekey is not signed by the pinned key, or is
    older than ``newest_signed`` (the newest this sender has verified for that
    identity: a relay rolling back to a replaced prekey, whose private half
    may since have leaked): nothing may be sealed then. A bad, missing,
    already used or (given ``now``, seconds) expired one-time prekey only
    costs that key: the result says which ``fallback`` applies.
    """
    if not same_key(bundle.identity_key, pinned_identity_key):
        raise PrekeyKeyChanged(f"the relay's prekeys for {bundle.name!r} are for another identity key")
    bundle.signed.verify(pinned_identity_key)
    if newest_signed is not None and not _not_older(bundle.signed, newest_signed):
        raise BadPrekey(
            f"the relay served {bundle.name!r}'s signed prekey {bundle.signed.key_id} of {bundle.signed.created_at}, "
            f"older than prekey {newest_signed.key_id} of {newest_signed.created_at} seen before (a rollback)"
        )
    one_time = bundle.one_time
    fallback = PrekeyFallback.NONE
    if one_time is None:
        fallback = PrekeyFallback.EXHAUSTED
    else:
        try:
            one_time.verify(pinned_identity_key)
        except BadPrekey:
            one_time, fallback = None, PrekeyFallback.BAD_SIGNATURE
        else:
            if one_time.key_id in used_one_time:
                one_time, fallback = None, PrekeyFallback.REUSED
            elif now is not None and now >= one_time.expires_at:
                one_time, fallback = None, PrekeyFallback.EXPIRED
    return CheckedBundle(
        name=bundle.name,
        identity_key=pinned_identity_key,
        signed=bundle.signed,
        one_time=one_time,
        fallback=fallback,
    )


def _not_older(signed: SignedPrekey, newest: SignedPrekey) -> bool:
    """``signed`` is ``newest`` itself or created after it (two different keys of one second: refused)."""
    if signed.created_at != newest.created_at:
        return signed.created_at > newest.created_at
    return signed.key_id == newest.key_id and same_key(signed.public, newest.public)


# --- key agreement ----------------------------------------------------------------


def _x25519(private: bytes, public: bytes) -> bytes:
    """X25519; libsodium refuses an all-zero result (a low-order public key)."""
    try:
        result: bytes = nacl.bindings.crypto_scalarmult(private, public)
    except (nacl.exceptions.CryptoError, ValueError, TypeError) as exc:
        raise BadPublicKey("a prekey or identity key is malformed or of low order") from exc
    return result


def _identity_x25519_public(identity_public: bytes) -> bytes:
    try:
        result: bytes = nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(identity_public)
    except (nacl.exceptions.CryptoError, ValueError, TypeError) as exc:
        raise BadPublicKey("an identity key is not a valid Ed25519 key") from exc
    return result


def _identity_x25519_private(identity: IdentityKey) -> bytes:
    _, secret = nacl.bindings.crypto_sign_seed_keypair(identity.seed())
    result: bytes = nacl.bindings.crypto_sign_ed25519_sk_to_curve25519(secret)
    return result


def _derive(
    header: tuple[EnvelopeKind, int, int],
    dh: tuple[bytes, bytes, bytes, bytes],
    sender_ik: bytes,
    recipient_ik: bytes,
    ephemeral: bytes,
    signed: bytes,
    one_time: bytes,
) -> bytes:
    kind, spk_id, opk_id = header
    transcript = msgpack.packb(
        [ENVELOPE_VERSION, int(kind), spk_id, opk_id, *dh, sender_ik, recipient_ik, ephemeral, signed, one_time],
        use_bin_type=True,
    )
    key: bytes = nacl.hash.blake2b(
        transcript, digest_size=nacl.secret.SecretBox.KEY_SIZE, person=X3DH_PERSON, encoder=nacl.encoding.RawEncoder
    )
    return key


def seal_to_prekey(
    identity: IdentityKey,
    bundle: CheckedBundle,
    block: bytes,
    kind: EnvelopeKind = EnvelopeKind.MESSAGE,
    *,
    ephemeral: nacl.public.PrivateKey | None = None,
    nonce: bytes | None = None,
) -> bytes:
    """The envelope that carries ``block`` (a message, or a receipt: ``kind``) to ``bundle``'s owner.

    ``ephemeral`` and ``nonce`` are for test vectors only; real callers leave
    them out and get fresh random ones.
    """
    ek = ephemeral if ephemeral is not None else nacl.public.PrivateKey.generate()
    ek_private, ek_public = bytes(ek), bytes(ek.public_key)
    recipient_x = _identity_x25519_public(bundle.identity_key)
    spk = bundle.signed.public
    opk = bundle.one_time.public if bundle.one_time is not None else b""
    dh = (
        _x25519(_identity_x25519_private(identity), spk),
        _x25519(ek_private, recipient_x),
        _x25519(ek_private, spk),
        _x25519(ek_private, opk) if opk else b"",
    )
    opk_id = bundle.one_time.key_id if bundle.one_time is not None else 0
    key = _derive((kind, bundle.signed.key_id, opk_id), dh, identity.public, bundle.identity_key, ek_public, spk, opk)
    box = nacl.secret.SecretBox(key)
    sealed = bytes(box.encrypt(block, nonce if nonce is not None else nacl.utils.random(_NONCE_SIZE)))
    packed: bytes = msgpack.packb(
        [ENVELOPE_VERSION, int(kind), identity.public, ek_public, bundle.signed.key_id, opk_id, sealed],
        use_bin_type=True,
    )
    return packed


@dataclass(frozen=True, slots=True, kw_only=True)
class EnvelopeHeader:
    """The clear part of an envelope: what it holds, who claims to have sealed it, and to which prekeys.

    Nothing here is to be believed until the box opens (every field is hashed into its key).
    """

    kind: EnvelopeKind
    sender_identity_key: bytes
    ephemeral: bytes
    signed_key_id: int
    #: 0 when sealed to the signed prekey alone.
    one_time_key_id: int
    box: bytes


_ENVELOPE_FIELDS = 7


def _refuse_ext(code: int, data: bytes) -> Any:
    raise ValueError("msgpack extension types are not allowed")


def read_envelope(envelope: bytes) -> EnvelopeHeader:
    """Parse an envelope's header; any deviation is ``MalformedMessage``."""
    try:
        value = msgpack.unpackb(
            envelope,
            raw=False,
            strict_map_key=True,
            ext_hook=_refuse_ext,
            max_array_len=_ENVELOPE_FIELDS,
            max_map_len=0,
            max_str_len=0,
            max_bin_len=MAX_BOX_BYTES,
            max_ext_len=0,
        )
    except (ValueError, TypeError, RecursionError):
        raise MalformedMessage("prekey envelope is not valid msgpack") from None
    if type(value) is not list or len(value) != _ENVELOPE_FIELDS:
        raise MalformedMessage(f"prekey envelope is not a {_ENVELOPE_FIELDS}-item array")
    version, kind, sender, ephemeral, spk_id, opk_id, box = value
    if type(version) is not int or version != ENVELOPE_VERSION:
        raise MalformedMessage(f"prekey envelope version {version!r} is not {ENVELOPE_VERSION}")
    if type(kind) is not int or kind not in {k.value for k in EnvelopeKind}:
        raise MalformedMessage(f"prekey envelope kind {kind!r} is unknown")
    if type(sender) is not bytes or len(sender) != IDENTITY_KEY_SIZE:
        raise MalformedMessage("prekey envelope's identity key is not 32 bytes")
    if type(ephemeral) is not bytes or len(ephemeral) != SESSION_KEY_SIZE:
        raise MalformedMessage("prekey envelope's ephemeral key is not 32 bytes")
    if type(spk_id) is not int or not 0 < spk_id <= MAX_KEY_ID:
        raise MalformedMessage("prekey envelope's signed prekey id is out of range")
    if type(opk_id) is not int or not 0 <= opk_id <= MAX_KEY_ID:
        raise MalformedMessage("prekey envelope's one-time prekey id is out of range")
    if type(box) is not bytes or len(box) < _NONCE_SIZE + nacl.secret.SecretBox.MACBYTES:
        raise MalformedMessage("prekey envelope's box is too short")
    return EnvelopeHeader(
        kind=EnvelopeKind(kind),
        sender_identity_key=sender,
        ephemeral=ephemeral,
        signed_key_id=spk_id,
        one_time_key_id=opk_id,
        box=box,
    )


def open_from_prekey(
    identity: IdentityKey,
    header: EnvelopeHeader,
    expected_sender_identity_key: bytes,
    signed: PrekeyPrivate,
    one_time: PrekeyPrivate | None,
) -> bytes:
    """The block inside an envelope sealed to our prekeys.

    The caller looked up the private halves by the header's ids (refusing
    unknown and used ones, ``UnknownPrekey`` and ``PrekeyReused``) and passes
    the identity key it pinned for the name the relay says sent it. Raises
    ``SenderMismatch`` if the envelope names another key, ``DecryptFailed`` if
    the box does not open. The block is then checked like an online one.
    """
    if not same_key(header.sender_identity_key, expected_sender_identity_key):
        raise SenderMismatch("the prekey envelope is sealed by another identity key than the sender's")
    if signed.key_id != header.signed_key_id:
        raise ValueError("wrong signed prekey passed for this envelope")
    if (one_time.key_id if one_time is not None else 0) != header.one_time_key_id:
        raise ValueError("wrong one-time prekey passed for this envelope")
    own_private = _identity_x25519_private(identity)
    sender_x = _identity_x25519_public(header.sender_identity_key)
    spk_private = signed.private_bytes()
    opk_public = one_time.public if one_time is not None else b""
    dh = (
        _x25519(spk_private, sender_x),
        _x25519(own_private, header.ephemeral),
        _x25519(spk_private, header.ephemeral),
        _x25519(one_time.private_bytes(), header.ephemeral) if one_time is not None else b"",
    )
    key = _derive(
        (header.kind, header.signed_key_id, header.one_time_key_id),
        dh,
        header.sender_identity_key,
        identity.public,
        header.ephemeral,
        signed.public,
        opk_public,
    )
    try:
        block: bytes = nacl.secret.SecretBox(key).decrypt(header.box)
    except nacl.exceptions.CryptoError:
        raise DecryptFailed("the prekey envelope does not open") from None
    return block


def envelope_digest(envelope: bytes) -> bytes:
    """What the recipient remembers of the envelope that used a one-time prekey.

    The same envelope again is a resent mailbox item (a duplicate); another
    envelope under the same key id is a second message under it (refused).
    """
    digest: bytes = nacl.hash.blake2b(
        envelope, digest_size=16, person=b"susurro/env/v1", encoder=nacl.encoding.RawEncoder
    )
    return digest


# --- receipts ----------------------------------------------------------------------

RECEIPT_PURPOSE = b"susurro/receipt/v1"
#: Message ids one receipt confirms at most.
MAX_RECEIPT_IDS = 256
_MAX_RECEIPT_BYTES = 64 * 1024
_RECEIPT_FIELDS = frozenset({"from", "to", "ids", "at"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Receipt:
    """``sender`` (who opened the messages) confirms ``msg_ids`` to ``recipient``, at ``at`` (ms)."""

    sender: str
    recipient: str
    recipient_fingerprint: bytes
    msg_ids: tuple[str, ...]
    at: int


def receipt_block(identity: IdentityKey, receipt: Receipt) -> bytes:
    """``pad(msgpack([inner, sign_IK("susurro/receipt/v1", inner)]))``: what a receipt envelope carries."""
    if not 0 < len(receipt.msg_ids) <= MAX_RECEIPT_IDS:
        raise ValueError(f"a receipt confirms 1..{MAX_RECEIPT_IDS} messages")
    inner = msgpack.packb(
        {
            "from": receipt.sender,
            "to": [receipt.recipient, receipt.recipient_fingerprint],
            "ids": list(receipt.msg_ids),
            "at": receipt.at,
        },
        use_bin_type=True,
    )
    signature = identity.sign(RECEIPT_PURPOSE, inner)
    return pad(msgpack.packb([inner, signature], use_bin_type=True))


def open_receipt(
    block: bytes, *, relay_sender: str, sender_identity_key: bytes, own_name: str, own_fingerprint: bytes
) -> Receipt:
    """Check a receipt's block: well formed, signed by the sender's pinned key, from the relay's ``from``, to us."""
    plaintext = unpad(block)
    if len(plaintext) > _MAX_RECEIPT_BYTES:
        raise MalformedMessage("a receipt is larger than any receipt")
    # The strict reader of every signed structure: a map with a key twice
    # (two ``ids`` lists, one shown and one verified) is refused, not merged.
    pair = unpack_strict(plaintext, "receipt")
    if type(pair) is not list or len(pair) != 2 or type(pair[0]) is not bytes or type(pair[1]) is not bytes:
        raise MalformedMessage("a receipt is not a pair of inner bytes and a signature")
    inner_bytes, signature = pair
    inner = unpack_strict(inner_bytes, "receipt inner")
    try:
        if type(inner) is not dict or set(inner) != _RECEIPT_FIELDS:
            raise TypeError
        sender, to, ids, at = inner["from"], inner["to"], inner["ids"], inner["at"]
        name, fingerprint = to
    except (ValueError, TypeError, KeyError):
        raise MalformedMessage("a receipt is not well formed") from None
    if not (
        type(sender) is str
        and type(name) is str
        and type(fingerprint) is bytes
        and type(ids) is list
        and 0 < len(ids) <= MAX_RECEIPT_IDS
        and all(type(i) is str and 0 < len(i) <= 64 for i in ids)
        and type(at) is int
    ):
        raise MalformedMessage("a receipt's fields have the wrong types")
    if sender != relay_sender:
        raise SenderMismatch(f"the relay says a receipt is from {relay_sender!r}, but it is signed as from {sender!r}")
    try:
        verify_signature(sender_identity_key, signature, RECEIPT_PURPOSE, inner_bytes)
    except BadSignature:
        raise BadSignature(f"a receipt from {relay_sender!r} is not signed by their identity key") from None
    if name != own_name or not same_key(fingerprint, own_fingerprint):
        raise NotAddressedToMe(f"a receipt from {relay_sender!r} is for someone else")
    return Receipt(sender=sender, recipient=name, recipient_fingerprint=fingerprint, msg_ids=tuple(ids), at=at)
