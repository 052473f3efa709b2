"""Sealing a message for a set of recipients, and opening one.

Sender, for recipients R::

    inner  = msgpack{room, from, sent_at, msg_id, direct, to: [[name, fp(IK)] ...], body}
    sig    = IK.sign("susurro/msg/v1" || inner)
    sealed = msgpack[inner, sig]
    ct_r   = Box(SK_self, SK_r).encrypt(pad(msgpack[sealed, n_r]))   for each r in R

One signed ``inner`` for everyone: all recipients see the same text and the
same recipient list. ``n_r`` counts messages from this sender session to r;
it sits inside the pairwise Box so only sender and recipient can set it.

Recipient: open the Box, unpad, check that ``from`` is the sender the relay
named, verify the signature over the *received* inner bytes (never
re-serialized), and check that we are in ``to`` under our own identity key.
Counter and id checks are stateful and live in ``replay.ReplayGuard``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import msgpack
import nacl.bindings
import nacl.exceptions
import nacl.public
import nacl.utils

from .encoding import MESSAGE_PURPOSE, signing_payload
from .errors import (
    BadSignature,
    DecryptFailed,
    MalformedMessage,
    MessageTooLarge,
    NotAddressedToMe,
    SenderMismatch,
)
from .fingerprint import FINGERPRINT_SIZE, fingerprint_bytes
from .identity import IdentityKey
from .keytypes import IdentityPublicKey, SessionPublicKey
from .limits import (
    IDENTITY_KEY_SIZE,
    MAX_MSG_ID_CHARS,
    MAX_NAME_CHARS,
    MAX_RECIPIENTS,
    MSG_ID_ALPHABET,
    SIGNATURE_SIZE,
)
from .padding import DATA_AT, pad, unpadded_end
from .session import SessionKey, make_box

#: Largest message text, in UTF-8 bytes. A room message is one ciphertext per
#: recipient, so the relay's frame limit also bounds body size x recipients.
MAX_BODY_BYTES = 16 * 1024
MAX_ROOM_CHARS = 64
#: The ``room`` of every message in the ``to`` form (direct, or to the relay-wide room): any other
#: would let a receiver that files by ``room`` show an outsider's message in a room of signed
#: membership, past its checks.
MAIN_ROOM = "main"
#: An opened plaintext can never be larger than this; bounds msgpack parsing.
MAX_PLAINTEXT = MAX_BODY_BYTES + MAX_RECIPIENTS * (MAX_NAME_CHARS * 4 + FINGERPRINT_SIZE + 16) + 4096
MAX_COUNTER = 2**63 - 1
#: ``sent_at`` is milliseconds since the epoch, no later than the year 9999, so
#: every view can turn it into a date without overflowing.
MAX_SENT_AT = 253_402_300_799_999


#: A recipient's fingerprint is hashed from its identity key for every message
#: sealed to it and every message opened; keys repeat, so hash each once.
_fingerprint = functools.lru_cache(maxsize=4096)(fingerprint_bytes)

#: Containers in one opened plaintext: the ``to`` list's pairs and a few more.
_MAX_CONTAINERS = MAX_RECIPIENTS + 16


_STR_ONLY = {str}


def _refuse_ext(code: int, data: bytes) -> Any:
    raise ValueError("msgpack extension types are not allowed")


def _str_keyed_map(pairs: list[tuple[Any, Any]]) -> dict[str, Any]:
    """A map's pairs as a dict, refusing duplicate and non-string keys (a reader taking the last
    of two ``body`` keys would show another text than one taking the first)."""
    result = dict(pairs)
    if len(result) != len(pairs) or (result and set(map(type, result)) != _STR_ONLY):
        raise ValueError("map keys must be unique strings")
    return result


class _ContainerBudget:
    """Bounds the number of containers parsed (amplification) and refuses
    non-string or duplicate map keys; ``protocol.framing`` does the same for
    frames (``crypto`` imports nothing of ours, hence this small twin)."""

    __slots__ = ("remaining",)

    def __init__(self) -> None:
        self.remaining = _MAX_CONTAINERS

    def map(self, pairs: list[tuple[Any, Any]]) -> dict[str, Any]:
        self.array(pairs)
        return _str_keyed_map(pairs)

    def array(self, items: list[Any]) -> list[Any]:
        self.remaining -= 1
        if self.remaining < 0:
            raise ValueError("too many containers")
        return items


_UNPACK_LIMITS: dict[str, Any] = {
    "ext_hook": _refuse_ext,
    "raw": False,
    "strict_map_key": True,
    "max_str_len": MAX_PLAINTEXT,
    "max_bin_len": MAX_PLAINTEXT,
    "max_array_len": MAX_RECIPIENTS,
    "max_map_len": 16,
    "max_ext_len": 0,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Recipient:
    """Who a message is sealed for: name, identity key, session key, and our counter to them."""

    name: str
    identity_key: IdentityPublicKey
    session_key: SessionPublicKey
    counter: int


#: Size of a room id and of a membership-log entry hash (crypto/membership.py).
_HASH_SIZE = 32
_MAX_SEQ = 2**63 - 1


@dataclass(frozen=True, slots=True)
class SignedHead:
    """The sender's view of a room's membership log, signed inside a room message.

    Recipients derive whom the message was for from the log at this head (its
    members, minus the ``skipped`` list), instead of a signed list of every
    recipient: one message then costs O(N) bytes, not O(N²).
    """

    room_id: bytes
    seq: int
    hash: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class InnerMessage:
    """The signed content every recipient of one message sees identically.

    A direct message (and a message of the single-room protocol) names every
    recipient in ``to``. A room message carries ``head`` instead, and ``to``
    is empty: its recipients are the members of the room's log at ``head``
    except those in ``skipped`` (members the sender did not encrypt to).
    """

    room: str
    sender: str
    sent_at: int
    msg_id: str
    direct: bool
    to: tuple[tuple[str, bytes], ...]
    body: str
    head: SignedHead | None = None
    skipped: tuple[tuple[str, bytes], ...] = ()

    @property
    def recipient_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.to)

    def to_wire(self) -> dict[str, Any]:
        if self.head is not None:
            return {
                "room": self.room,
                "room_id": self.head.room_id,
                "from": self.sender,
                "sent_at": self.sent_at,
                "msg_id": self.msg_id,
                "direct": self.direct,
                "head": [self.head.seq, self.head.hash],
                "skipped": [[name, fp] for name, fp in self.skipped],
                "body": self.body,
            }
        return {
            "room": self.room,
            "from": self.sender,
            "sent_at": self.sent_at,
            "msg_id": self.msg_id,
            "direct": self.direct,
            "to": [[name, fp] for name, fp in self.to],
            "body": self.body,
        }

    @classmethod
    def from_wire(cls, raw: object) -> InnerMessage:
        """Validate every field's type and size; any deviation is ``MalformedMessage``."""
        if not isinstance(raw, dict):
            raise MalformedMessage("inner message is not a map")
        # Exactly one form's keys: a map with both ``to`` and ``room_id``/``head``/``skipped`` would be
        # filed by one receiver as a direct message and by another as a room's (spec review S4, finding 17).
        if raw.keys() != _ROOM_INNER_KEYS and raw.keys() != _DIRECT_INNER_KEYS:
            raise MalformedMessage("inner message has the keys of neither a room message nor a direct one")
        head: SignedHead | None = None
        try:
            room, sender, sent_at = raw["room"], raw["from"], raw["sent_at"]
            msg_id, direct, body = raw["msg_id"], raw["direct"], raw["body"]
            if "room_id" in raw:  # a room message: a signed head instead of a list of everyone
                head = _head(raw["room_id"], raw["head"])
                to: object = raw["skipped"]
                _expect(direct is False and "to" not in raw, "direct")
            else:
                to = raw["to"]
        except KeyError as exc:
            raise MalformedMessage(f"inner message lacks field {exc.args[0]!r}") from None
        # Each field's test, in the order the error names the first that fails (one test each,
        # not one call each: this runs for every copy opened).
        fields_ok = (
            isinstance(room, str) and len(room) <= MAX_ROOM_CHARS,
            isinstance(sender, str) and 0 < len(sender) <= MAX_NAME_CHARS,
            type(sent_at) is int and 0 <= sent_at <= MAX_SENT_AT,  # msgpack gives a bool as bool, not int
            isinstance(msg_id, str) and 0 < len(msg_id) <= MAX_MSG_ID_CHARS and MSG_ID_ALPHABET.issuperset(msg_id),
            isinstance(direct, bool),
            # No character takes more than four bytes: only a longer text is encoded to count them.
            isinstance(body, str)
            and (len(body) <= MAX_BODY_BYTES // 4 or len(body.encode("utf-8", "surrogatepass")) <= MAX_BODY_BYTES),
            isinstance(to, (list, tuple)) and (head is not None or 0 < len(to)) and len(to) <= MAX_RECIPIENTS,
            # The ``to`` form is to the relay-wide room, or (direct) to one person.
            head is not None or room == MAIN_ROOM,
            head is not None or not direct or (isinstance(to, (list, tuple)) and len(to) == 1),
        )
        if not all(fields_ok):
            _expect(False, _INNER_FIELDS[fields_ok.index(False)])
        assert isinstance(to, (list, tuple))
        # One test per entry (this loop runs for every recipient of every message opened). msgpack
        # gives every array as a list, or as a tuple with ``use_list=False`` (``_read_inner``): then
        # ``to`` is the pairs already, checked here and kept as they are.
        array = tuple if type(to) is tuple else list
        try:
            for entry in to:
                if type(entry) is not array:  # before unpacking it: only a list or tuple is iterated
                    raise ValueError
                name, fp = entry  # anything but two items raises
                if not (type(name) is str and type(fp) is bytes and 0 < len(name) <= MAX_NAME_CHARS and len(fp) == _FP):
                    raise ValueError
        except (ValueError, TypeError):
            raise MalformedMessage("inner message field 'to entry' has the wrong shape, type or size") from None
        pairs = cast("tuple[tuple[str, bytes], ...]", to if array is tuple else tuple(map(tuple, to)))
        if head is not None:
            return _checked_inner(room, sender, sent_at, msg_id, False, (), body, head, pairs)
        return _checked_inner(room, sender, sent_at, msg_id, direct, pairs, body, None, ())


_FP = FINGERPRINT_SIZE
#: What ``from_wire``'s field tests are of, in their order.
_INNER_FIELDS = ("room", "from", "sent_at", "msg_id", "direct", "body", "to", "room", "to")
_new_object = object.__new__


def _slot_setters(cls: type, *names: str) -> tuple[Callable[[object, object], None], ...]:
    """The slots' own setters of ``cls``, by name. Import fails unless ``names`` are exactly its
    fields: a field added and not set by ``_checked_inner`` must not go unnoticed."""
    fields = {f.name for f in dataclasses.fields(cls)}
    if set(names) != fields or len(names) != len(fields):
        raise TypeError(f"{cls.__name__}'s fields are {sorted(fields)}, the setters are for {sorted(names)}")
    return tuple(cls.__dict__[name].__set__ for name in names)


(_set_room, _set_sender, _set_sent_at, _set_msg_id, _set_direct, _set_to, _set_body, _set_head, _set_skipped) = (
    _slot_setters(InnerMessage, "room", "sender", "sent_at", "msg_id", "direct", "to", "body", "head", "skipped")
)


def _checked_inner(
    room: str,
    sender: str,
    sent_at: int,
    msg_id: str,
    direct: bool,
    to: tuple[tuple[str, bytes], ...],
    body: str,
    head: SignedHead | None,
    skipped: tuple[tuple[str, bytes], ...],
) -> InnerMessage:
    """``InnerMessage(...)`` of fields ``from_wire`` has checked, at half the cost (a tenth of what
    opening adds to the primitives): the frozen dataclass's ``__init__`` sets each field through
    ``object.__setattr__``, the slots' setters do the same directly. The object is the same
    (equal, hashable, still frozen: tests/unit/test_seal.py)."""
    inner = _new_object(InnerMessage)
    _set_room(inner, room)
    _set_sender(inner, sender)
    _set_sent_at(inner, sent_at)
    _set_msg_id(inner, msg_id)
    _set_direct(inner, direct)
    _set_to(inner, to)
    _set_body(inner, body)
    _set_head(inner, head)
    _set_skipped(inner, skipped)
    return inner


_DIRECT_INNER_KEYS = frozenset({"room", "from", "sent_at", "msg_id", "direct", "to", "body"})
_ROOM_INNER_KEYS = frozenset({"room", "room_id", "from", "sent_at", "msg_id", "direct", "head", "skipped", "body"})


def _head(room_id: object, head: object) -> SignedHead:
    _expect(type(room_id) is bytes and len(room_id) == _HASH_SIZE, "room_id")
    _expect((type(head) is list or type(head) is tuple) and len(head) == 2, "head")
    assert isinstance(head, (list, tuple)) and isinstance(room_id, bytes)
    seq, digest = head
    _expect(type(seq) is int and 0 <= seq <= _MAX_SEQ, "head")
    _expect(type(digest) is bytes and len(digest) == _HASH_SIZE, "head")
    return SignedHead(room_id, seq, digest)


def _expect(ok: bool, what: str) -> None:
    if not ok:
        raise MalformedMessage(f"inner message field {what!r} is missing, of the wrong type or too large")


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenedMessage:
    """A message that decrypted, verified and is addressed to us. Not yet replay-checked."""

    inner: InnerMessage
    counter: int
    #: ``content_digest`` of the signed inner bytes: equal for every copy of one signed message.
    digest: bytes = b""


(_set_opened_inner, _set_opened_counter, _set_opened_digest) = _slot_setters(
    OpenedMessage, "inner", "counter", "digest"
)

#: Bytes of ``content_digest``: collisions need 2^64 work, and only the sender could use one.
CONTENT_DIGEST_SIZE = 16


def content_digest(inner_bytes: bytes) -> bytes:
    """Names one signed content, so a copy of a message already shown can be told from a new one."""
    hasher = _CONTENT_HASHER.copy()  # the parameters set once, not parsed again for every copy opened
    hasher.update(inner_bytes)
    return hasher.digest()


_CONTENT_HASHER = hashlib.blake2b(digest_size=CONTENT_DIGEST_SIZE, person=b"susurro/content")


class BoxCache:
    """One ``Box`` per peer session key for our session key.

    Building a Box costs an X25519 scalar multiplication, about 12 times an
    encryption, so it is done once per peer session, not once per message.
    """

    def __init__(self, own: SessionKey, max_entries: int = 16_384) -> None:
        self.own = own
        self._boxes: dict[bytes, nacl.public.Box] = {}
        self._max_entries = max_entries

    def box_for(self, peer_session_public: SessionPublicKey) -> nacl.public.Box:
        box = self._boxes.get(peer_session_public)
        if box is None:
            box = make_box(self.own, peer_session_public)  # raises BadPublicKey
            if len(self._boxes) >= self._max_entries:
                # The oldest one goes, not all: a relay announcing made-up members past the bound
                # costs one X25519 per new key, not a rebuild of every Box of the room after it.
                del self._boxes[next(iter(self._boxes))]
            self._boxes[peer_session_public] = box
        return box

    def forget(self, peer_session_public: SessionPublicKey) -> None:
        self._boxes.pop(peer_session_public, None)


def _encrypt(box: nacl.public.Box, block: bytes) -> bytes:
    """``bytes(box.encrypt(block))`` without PyNaCl's wrapper object.

    The same construction and layout: a fresh random 24-byte nonce, then
    ``nonce || crypto_box_easy_afternm(block)`` under the Box's precomputed
    key. Skipping the ``EncryptedMessage`` and the copy out of it saves about
    a seventh of each recipient's cost when sealing for a room.
    """
    nonce = nacl.utils.random(nacl.public.Box.NONCE_SIZE)
    ciphertext: bytes = nacl.bindings.crypto_box_easy_afternm(block, nonce, box.shared_key())
    return nonce + ciphertext


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedMessage:
    """A signed inner message, before it is sealed to anyone.

    ``head`` is ``msgpack[sealed, n]`` without ``n``: the same for every
    recipient, online (a Box) or waiting (a prekey envelope).
    """

    inner: InnerMessage
    head: bytes


def sign_message(
    *,
    identity: IdentityKey,
    sender: str,
    recipients: Sequence[tuple[str, bytes]],
    body: str,
    msg_id: str,
    sent_at: int,
    room: str = MAIN_ROOM,
    direct: bool = False,
    head: SignedHead | None = None,
    skipped: Sequence[tuple[str, bytes]] = (),
) -> SignedMessage:
    """Sign ``body`` for ``recipients`` (name, identity key) once, for every copy.

    With ``head`` it is a room message: the signed content names the log head
    and the ``skipped`` members (name, identity key) instead of every
    recipient, so each copy's size does not grow with the room.
    """
    try:
        encoded_body = body.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedMessage("message text is not valid Unicode (lone surrogate)") from None
    if len(encoded_body) > MAX_BODY_BYTES:
        raise MessageTooLarge(f"message is {len(encoded_body)} bytes; the limit is {MAX_BODY_BYTES}")
    if not recipients:
        raise ValueError("a message needs at least one recipient")
    if len(recipients) > MAX_RECIPIENTS:
        raise MessageTooLarge(f"{len(recipients)} recipients; the limit is {MAX_RECIPIENTS}")
    if len(skipped) > MAX_RECIPIENTS:
        raise MessageTooLarge(f"{len(skipped)} skipped members; the limit is {MAX_RECIPIENTS}")
    if head is not None and direct:
        raise ValueError("a direct message has no room head")
    if head is None and (room != MAIN_ROOM or (direct and len(recipients) != 1)):
        raise ValueError(f"a message in the to form is to room {MAIN_ROOM!r}, and a direct one to one person")
    inner = InnerMessage(
        room=room,
        sender=sender,
        sent_at=sent_at,
        msg_id=msg_id,
        direct=direct,
        to=() if head is not None else tuple((name, _fingerprint(identity_key)) for name, identity_key in recipients),
        body=body,
        head=head,
        skipped=tuple((name, _fingerprint(ik)) for name, ik in skipped),
    )
    inner_bytes = msgpack.packb(inner.to_wire(), use_bin_type=True)
    signature = identity.sign(MESSAGE_PURPOSE, inner_bytes)
    sealed = msgpack.packb([inner_bytes, signature], use_bin_type=True)
    # msgpack[sealed, n] is a 2-array header, the packed ``sealed`` (the same
    # for everyone: packed once) and the packed counter (per recipient).
    return SignedMessage(inner=inner, head=b"\x92" + msgpack.packb(sealed, use_bin_type=True))


def signed_from_head(head: bytes) -> SignedMessage:
    """A ``SignedMessage`` again from its ``head`` (kept sealed in our state file to resend after a
    restart); raises ``MalformedMessage`` if it is not one. Its signature is ours and is not checked."""
    if not isinstance(head, bytes) or head[:1] != b"\x92":
        raise MalformedMessage("not a kept message")
    sealed = unpack_strict(head[1:], "kept message")
    if not isinstance(sealed, bytes):
        raise MalformedMessage("kept message fields have the wrong types")
    inner_bytes, _ = _unpack_pair(sealed, "sealed message")
    if not isinstance(inner_bytes, bytes):
        raise MalformedMessage("sealed message fields have the wrong types")
    return SignedMessage(inner=InnerMessage.from_wire(unpack_strict(inner_bytes, "inner message")), head=head)


def message_block(signed: SignedMessage, counter: int) -> bytes:
    """The padded plaintext of one recipient's copy: ``pad(msgpack[sealed, counter])``."""
    if not 0 < counter <= MAX_COUNTER:
        raise ValueError("recipient counters start at 1")
    return pad(signed.head, msgpack.packb(counter))


def seal_message(
    *,
    identity: IdentityKey,
    boxes: BoxCache,
    sender: str,
    recipients: Sequence[Recipient],
    body: str,
    msg_id: str,
    sent_at: int,
    room: str = MAIN_ROOM,
    direct: bool = False,
    head: SignedHead | None = None,
    skipped: Sequence[tuple[str, bytes]] = (),
) -> dict[str, bytes]:
    """Seal ``body`` for every recipient; returns ``{recipient name: ciphertext}`` (``head``: a room message)."""
    signed = sign_message(
        identity=identity,
        sender=sender,
        recipients=[(r.name, r.identity_key) for r in recipients],
        body=body,
        msg_id=msg_id,
        sent_at=sent_at,
        room=room,
        direct=direct,
        head=head,
        skipped=skipped,
    )
    return seal_online(signed, boxes, recipients)


def seal_online(signed: SignedMessage, boxes: BoxCache, recipients: Sequence[Recipient]) -> dict[str, bytes]:
    """One Box per online recipient, each with its own counter."""
    out: dict[str, bytes] = {}
    for recipient in recipients:
        out[recipient.name] = _encrypt(boxes.box_for(recipient.session_key), message_block(signed, recipient.counter))
    return out


def open_message(
    *,
    boxes: BoxCache,
    ciphertext: bytes,
    relay_sender: str,
    sender_identity_key: IdentityPublicKey,
    sender_session_key: SessionPublicKey,
    own_name: str,
    own_identity_key: IdentityPublicKey,
) -> OpenedMessage:
    """Decrypt and check one message; raises the ``CryptoError`` for the first failed check.

    ``relay_sender`` is the name the relay put in ``deliver.from``; the sender's
    keys are the ones from that member's verified certificate (and the pinned
    identity key). Checks, in order: Box opens (``DecryptFailed``), format
    (``MalformedMessage``), signed sender equals relay sender
    (``SenderMismatch``: also catches our own ciphertext reflected back to
    us), signature (``BadSignature``), we are a signed recipient
    (``NotAddressedToMe``).
    """
    # ``Box.decrypt`` without its wrapper: the binding it calls, on the nonce and the rest as it
    # splits them (the binding checks both sizes).
    try:
        # In the try, as before: a session key of the wrong type is DecryptFailed, not TypeError.
        shared_key = boxes.box_for(sender_session_key).shared_key()
        block: bytes = _box_open(ciphertext[_NONCE_SIZE:], ciphertext[:_NONCE_SIZE], shared_key)
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        raise DecryptFailed(f"message claimed to be from {relay_sender!r} does not decrypt") from None
    return _open_block(block, relay_sender, sender_identity_key, own_name, own_identity_key)


_box_open = nacl.bindings.crypto_box_open_easy_afternm
_sign_open = nacl.bindings.crypto_sign_open
_NONCE_SIZE = nacl.public.Box.NONCE_SIZE


def open_block(
    block: bytes,
    *,
    relay_sender: str,
    sender_identity_key: bytes,
    own_name: str,
    own_identity_key: bytes,
) -> OpenedMessage:
    """Check a decrypted copy (from a Box or a prekey envelope): the checks after decryption."""
    return _open_block(block, relay_sender, sender_identity_key, own_name, own_identity_key)


def _open_block(
    block: bytes, relay_sender: str, sender_identity_key: bytes, own_name: str, own_identity_key: bytes
) -> OpenedMessage:
    # The padded block is read in place: the plaintext is copied out only for the general parser.
    end = unpadded_end(block)
    if end - DATA_AT > MAX_PLAINTEXT:
        raise MalformedMessage("plaintext larger than any valid message")
    layers = _sealer_layout(block, end)
    inner_bytes, signed, counter = layers or _split_copy(block[DATA_AT:end])
    # The Box already authenticated these bytes as coming from the holder of
    # the sender's (or our own) session key, so reading ``from`` before the
    # signature is safe, and it names a reflected message for what it is.
    # A sender's earlier copies in the sealer's layout say where this one's fields are (below).
    layouts = _LAYOUTS.get(sender_identity_key) if type(sender_identity_key) is bytes else None
    inner = _read_in_layout(inner_bytes, layouts) if layouts is not None else None
    in_layout = inner is not None
    if inner is None:
        inner = _read_inner(inner_bytes)
    if inner.sender != relay_sender:
        raise SenderMismatch(
            f"relay says the message is from {relay_sender!r} but it is signed as from {inner.sender!r}"
        )
    # libsodium's own check, as ``VerifyKey.verify`` makes it, without its wrapper (the key's type
    # and size are checked here, as the wrapper does: the binding reads 32 bytes of it).
    if (
        signed is None
        or not isinstance(sender_identity_key, bytes)
        or len(sender_identity_key) != IDENTITY_KEY_SIZE
        or not signed.startswith(_MESSAGE_PAYLOAD_PREFIX, SIGNATURE_SIZE)  # the domain, as verify_payload
    ):
        raise BadSignature(f"signature on a message from {relay_sender!r} does not verify")
    try:
        _sign_open(signed, sender_identity_key)
    except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
        raise BadSignature(f"signature on a message from {relay_sender!r} does not verify") from None
    own_fp = _fingerprint(own_identity_key)
    if inner.head is not None:
        # A room message is for the members at its head but the skipped ones;
        # whether we were a member there is for the caller, who holds the log.
        if (own_name, own_fp) in inner.skipped:
            raise NotAddressedToMe(f"room message from {relay_sender!r} says it skipped {own_name!r}")
    elif (own_name, own_fp) not in inner.to:
        raise NotAddressedToMe(f"message from {relay_sender!r} is not addressed to {own_name!r} under this identity")
    if not in_layout:
        _remember_layout(sender_identity_key, inner, inner_bytes, layouts or ())
    opened = _new_object(OpenedMessage)  # as _checked_inner, for the three fields checked here
    _set_opened_inner(opened, inner)
    _set_opened_counter(opened, counter)
    _set_opened_digest(opened, content_digest(inner_bytes))
    return opened


# Every copy opened is read twice over: ``msgpack[sealed, n]`` holding ``msgpack[inner, sig]`` as bin.
# The sealer writes both in one layout (a two-array, a bin with the shortest header for its length,
# then the counter or the 64-byte signature), which ``_sealer_layout`` reads directly in the padded
# block, without a parse or a copy of its own for each layer (a third of the cost Susurro added to
# the primitives); anything else, valid or not, goes to the general parser, which decides as it always
# did. That layout also puts ``bin(inner)`` in ``sealed`` exactly as the signed bytes hold it.
_PAIR = 0x92  # msgpack: an array of two
_BIN8, _BIN16, _BIN32 = 0xC4, 0xC5, 0xC6
_SIGNATURE_BIN = bytes((_BIN8, SIGNATURE_SIZE))
#: The longest msgpack integer: a tag and eight bytes.
_MAX_INT_BYTES = 9
#: The shortest plaintext in the sealer's layout: two pairs' tags, two bin8 headers, an empty inner,
#: the signature's bin and a one-byte counter. Every header ``_sealer_layout`` reads lies within it.
_SHORTEST_LAYOUT = 1 + 2 + 1 + 2 + 2 + SIGNATURE_SIZE + 1
#: ``signing_payload(MESSAGE_PURPOSE, inner)`` up to ``bin(inner)``: the purpose, its NUL and an array of one.
_MESSAGE_PAYLOAD_PREFIX = MESSAGE_PURPOSE + b"\x00\x91"


def _read_inner(inner_bytes: bytes) -> InnerMessage:
    """``InnerMessage.from_wire(unpack_strict(inner_bytes))``, without the map hook where it cannot matter.

    The hook refuses a map with a key twice (or a key not a string). A valid inner is one map
    of at most 15 keys, a fixmap, holding no other map: ``from_wire`` refuses any map within,
    and any key not one of its form's. So a fixmap read into a dict of as many keys as it
    declares, that ``from_wire`` accepts, is what the general reading gives; anything else,
    valid or not, goes to the general reading, which decides, in its own words.
    """
    if 0 < len(inner_bytes) <= _MAX_CONTAINERS and _FIXMAP <= inner_bytes[0] <= _FIXMAP_15:
        try:
            raw = msgpack.unpackb(inner_bytes, **_INNER_UNPACK)
            if len(raw) == inner_bytes[0] - _FIXMAP:
                return InnerMessage.from_wire(raw)
        except (ValueError, TypeError, RecursionError, MalformedMessage):
            pass
    return InnerMessage.from_wire(unpack_strict(inner_bytes, "inner message"))


#: msgpack's fixmap tags, for maps of 0 to 15 entries.
_FIXMAP, _FIXMAP_15 = 0x80, 0x8F
_INNER_UNPACK: dict[str, Any] = {**_UNPACK_LIMITS, "use_list": False}


# A sender's copies differ in a few fields: ``sent_at``, ``msg_id`` and ``body``. The rest of the
# inner map (its room, its sender, ``direct``, the signed ``to`` list or head and ``skipped``) is
# the same from one message to the next, and reading and checking it is most of what opening adds
# to the primitives (the ``to`` list's pairs are 31 objects and 10 tests for a 10-member copy).
# So after a copy opened, the bytes of those fields, as the sealer writes them, are kept with the
# values they were read as: a layout. An inner map that holds exactly those bytes around new
# ``sent_at``, ``msg_id`` and ``body`` items is read by slicing, and only the three new fields are
# checked. Byte-equal items at the same item boundaries parse to equal values, so the result is
# the general reading's; anything else goes to the general reading, which decides (the layout
# reader never refuses: tests/property/test_open_layouts.py). The signature, the sender and the
# recipient checks run on every copy as before: a layout only says how bytes read, and is made
# only from a copy that passed open's checks (sender, signature, recipient; the caller's replay
# and room checks come later and do not matter to it).

#: Senders whose layouts are kept (by the identity key given to open), the first learned let go
#: first (a hit does not reorder: it would cost every copy a dict update). Anyone who can open a
#: copy to us (a relay inventing members, a stranger's mail) can push the others out: that costs
#: them their next copy's general reading, never a wrong one; the bound is what protects memory.
MAX_LAYOUT_SENDERS = 256
#: Layouts kept for one sender: the relay-wide room, direct messages and two rooms, say (with two,
#: a sender alternating between three conversations never hit one: review-s8-opener finding 2).
LAYOUTS_PER_SENDER = 4
#: The largest kept layout's bytes (a ``to`` list of about 40 recipients): the bound on this memo
#: is MAX_LAYOUT_SENDERS x LAYOUTS_PER_SENDER x this, with the values read from them, about 10 MB.
MAX_LAYOUT_BYTES = 2048

#: ``(prefix, middle, room, sender, direct, to, head, skipped)``: ``prefix`` is the inner map's
#: bytes up to and including the tag of ``sent_at`` (a uint64), ``middle`` those from after
#: ``msg_id``'s value up to and including the key ``body``.
_Pairs = tuple[tuple[str, bytes], ...]
_Layout = tuple[bytes, bytes, str, str, bool, _Pairs, SignedHead | None, _Pairs]
_LAYOUTS: dict[bytes, tuple[_Layout, ...]] = {}

_UINT64 = 0xCF
#: ``sent_at``'s eight bytes, the key ``msg_id`` and the tag of its value.
_SENT_AT_AND_ID = struct.Struct(">Q7sB")
_MSG_ID_KEY = b"\xa6msg_id"
_BODY_KEY = b"\xa4body"
_FIXSTR, _FIXSTR_31, _STR8, _STR16 = 0xA0, 0xBF, 0xD9, 0xDA
#: Every byte a message id may hold, for ``bytes.translate``'s delete argument (in C: what is left
#: is what the alphabet does not allow).
_MSG_ID_BYTES = "".join(sorted(MSG_ID_ALPHABET)).encode("ascii")


def _read_in_layout(data: bytes, layouts: tuple[_Layout, ...]) -> InnerMessage | None:
    """The inner message ``data`` holds if it is in one of ``layouts``, with its new fields passing
    ``from_wire``'s tests; else ``None`` (never an error: the general reading decides)."""
    size = len(data)
    for prefix, middle, room, sender, direct, to, head, skipped in layouts:
        at = len(prefix)
        # ``sent_at``, the key ``msg_id``, a tag, a byte of the id and ``middle`` are still to come.
        if size < at + 17 + len(middle) or not data.startswith(prefix):
            continue
        sent_at, key, tag = _SENT_AT_AND_ID.unpack_from(data, at)
        at += 16
        if key != _MSG_ID_KEY or sent_at > MAX_SENT_AT:
            continue
        if _FIXSTR <= tag <= _FIXSTR_31:
            end = at + tag - _FIXSTR
        elif tag == _STR8:
            end = at + 1 + data[at]
            at += 1
        else:
            continue
        msg_id = data[at:end]
        # The id's length in characters is its length in bytes: the alphabet is ASCII.
        if not 0 < end - at <= MAX_MSG_ID_CHARS or msg_id.translate(None, _MSG_ID_BYTES):
            continue
        if not data.startswith(middle, end):
            continue
        at = end + len(middle)
        if at >= size:
            continue
        tag = data[at]
        if _FIXSTR <= tag <= _FIXSTR_31:
            at += 1
            length = tag - _FIXSTR
        elif tag == _STR8 and at + 1 < size:
            length = data[at + 1]
            at += 2
        elif tag == _STR16 and at + 2 < size:
            length = data[at + 1] << 8 | data[at + 2]
            at += 3
        else:
            continue
        if at + length != size or length > MAX_BODY_BYTES:
            continue
        try:
            body = data[at:].decode("utf-8")  # strict, as msgpack reads a str
        except UnicodeDecodeError:
            continue
        return _checked_inner(room, sender, sent_at, msg_id.decode("ascii"), direct, to, body, head, skipped)
    return None


def _layout_of(inner: InnerMessage, data: bytes) -> _Layout | None:
    """The layout of ``data``, the bytes ``inner`` was read from, if they are what the sealer writes
    for it (checked by writing them again); else ``None``."""
    msg_id_size, body_size = _item_size(inner.msg_id), _item_size(inner.body)
    fixed = len(data) - 8 - len(_MSG_ID_KEY) - msg_id_size - body_size
    # Sized before anything is written: a copy too large for a layout costs no more than this.
    if fixed > MAX_LAYOUT_BYTES or not 1 << 32 <= inner.sent_at < 1 << 64:  # packb's uint64
        return None
    wire = inner.to_wire()
    if _pack(wire) != data:
        return None
    # ``data`` is msgpack's own writing of ``wire``: each item is where the sizes of those before
    # it put it. The items before ``sent_at`` are strings and bins (room, room_id, from).
    keys = list(wire)
    at = keys.index("sent_at")
    if keys[at + 1] != "msg_id" or keys[-1] != "body":
        return None
    sent_at_at = 1  # the fixmap's tag
    for key in keys[:at]:
        value = wire[key]
        if not isinstance(value, (str, bytes)):
            return None
        sent_at_at += _item_size(key) + _item_size(value)
    prefix_end = sent_at_at + len(_SENT_AT_KEY) + 1
    middle_at = prefix_end + 8 + len(_MSG_ID_KEY) + msg_id_size
    prefix, middle = data[:prefix_end], data[middle_at : len(data) - body_size]
    if not prefix.endswith(_SENT_AT_KEY + bytes((_UINT64,))) or not middle.endswith(_BODY_KEY):
        return None  # not where the sizes say (cannot happen: msgpack writes each item's shortest form)
    if not data.startswith(_MSG_ID_KEY, prefix_end + 8):
        return None
    return (prefix, middle, inner.room, inner.sender, inner.direct, inner.to, inner.head, inner.skipped)


_SENT_AT_KEY = b"\xa7sent_at"


def _item_size(value: str | bytes) -> int:
    """Bytes of ``value`` as msgpack writes it (``use_bin_type``): its shortest header, then it."""
    if isinstance(value, str):
        size = len(value.encode("utf-8", "surrogatepass"))
        return size + (1 if size < 32 else 2 if size < 1 << 8 else 3 if size < 1 << 16 else 5)
    size = len(value)
    return size + (2 if size < 1 << 8 else 3 if size < 1 << 16 else 5)


def _pack(value: object) -> bytes:
    return cast(bytes, msgpack.packb(value, use_bin_type=True))


def _remember_layout(key: bytes, inner: InnerMessage, data: bytes, held: tuple[_Layout, ...]) -> None:
    """Keep the layout of a copy that opened, first among its sender's."""
    layout = _layout_of(inner, data)
    if layout is None:
        return
    if key not in _LAYOUTS and len(_LAYOUTS) >= MAX_LAYOUT_SENDERS:
        try:
            del _LAYOUTS[next(iter(_LAYOUTS))]
        except (KeyError, RuntimeError, StopIteration):  # another thread's open changed it meanwhile
            pass
    _LAYOUTS[key] = (layout, *held[: LAYOUTS_PER_SENDER - 1])


def _split_copy(plaintext: bytes) -> tuple[bytes, bytes | None, int]:
    """``inner``, what ``crypto_sign_open`` reads (the signature, then the signed bytes; ``None``
    for a signature not of its size) and the counter of a copy's plaintext
    ``msgpack[msgpack[inner, sig], n]``, by the general parser; else ``MalformedMessage``."""
    sealed, counter = _unpack_pair(plaintext, "envelope")
    if not isinstance(sealed, bytes) or not isinstance(counter, int) or isinstance(counter, bool):
        raise MalformedMessage("envelope fields have the wrong types")
    if not 0 < counter <= MAX_COUNTER:
        raise MalformedMessage("counter out of range")
    inner_bytes, signature = _unpack_pair(sealed, "sealed message")
    if not isinstance(inner_bytes, bytes) or not isinstance(signature, bytes):
        raise MalformedMessage("sealed message fields have the wrong types")
    if len(signature) != SIGNATURE_SIZE:  # refused as a signature that does not verify, in its turn
        return inner_bytes, None, counter
    return inner_bytes, signature + signing_payload(MESSAGE_PURPOSE, inner_bytes), counter


def _sealer_layout(block: bytes, end: int) -> tuple[bytes, bytes | None, int] | None:
    """What ``_split_copy`` returns for the plaintext ``block[DATA_AT:end]``, if it is in the
    sealer's layout; else ``None``.

    ``0x92 bin(sealed) n`` with ``sealed`` = ``0x92 bin(inner) 0xc4 0x40 sig``: both bins with
    the shortest header, ``n`` one msgpack integer in 1..2^63-1 of at most nine bytes (so its
    parse can ask for no memory), the signature's bin ending where ``sealed`` ends.
    """
    if end - DATA_AT < _SHORTEST_LAYOUT or block[DATA_AT] != _PAIR:
        return None
    # Both headers end by the 17th byte of the data (a bin32 header is five bytes), within the
    # shortest layout: no read below passes ``end`` before it is checked against it. Each header
    # is read here by index, not by a call of its own (a third of this reading's cost).
    at = DATA_AT + 1
    for layer in (0, 1):
        tag = block[at]
        if tag == _BIN8:
            start, length = at + 2, block[at + 1]
        elif tag == _BIN16:
            start, length = at + 3, block[at + 1] << 8 | block[at + 2]
            if length <= 0xFF:
                return None
        elif tag == _BIN32:
            start, length = at + 5, int.from_bytes(block[at + 1 : at + 5], "big")
            if length <= 0xFFFF:
                return None
        else:
            return None
        if layer == 0:
            sealed_at, sealed_end = start, start + length
            if not 0 < end - sealed_end <= _MAX_INT_BYTES or block[sealed_at] != _PAIR:
                return None
            at = sealed_at + 1
    inner_at, inner_end = start, start + length
    if inner_end + 2 + SIGNATURE_SIZE != sealed_end or not block.startswith(_SIGNATURE_BIN, inner_end):
        return None
    # The counter: a positive fixint or a uint of one to four bytes, read by index when it is
    # exactly that many bytes; any other integer by msgpack.
    tag, width = block[sealed_end], end - sealed_end
    if tag < 0x80 and width == 1:
        counter = tag
    elif _UINT8 <= tag <= _UINT32 and width == _UINT_WIDTH[tag - _UINT8]:
        counter = int.from_bytes(block[sealed_end + 1 : end], "big")
    else:
        try:
            counter = msgpack.unpackb(block[sealed_end:end])
        except (ValueError, TypeError):
            return None
        if type(counter) is not int:
            return None
    if not 0 < counter <= MAX_COUNTER:
        return None
    # What ``crypto_sign_open`` reads: the signature, then the signed bytes (the purpose, its NUL,
    # and the array of one holding ``bin(inner)`` exactly as ``sealed`` holds it).
    signed = b"".join((block[inner_end + 2 : sealed_end], _MESSAGE_PAYLOAD_PREFIX, block[at:inner_end]))
    return block[inner_at:inner_end], signed, counter


_UINT8, _UINT32 = 0xCC, 0xCE
#: A uint8, uint16 or uint32 with its tag: 2, 3 or 5 bytes.
_UINT_WIDTH = (2, 3, 5)


def unpack_strict(data: bytes, what: str) -> Any:
    """msgpack as every signed or sealed structure is read: no extension types,
    unique string map keys, bounded sizes and containers; else ``MalformedMessage``."""
    # Every container takes at least one byte, so data no longer than the
    # budget cannot exceed it: the count (a Python call for each list, such as
    # each of the ``to`` list's pairs, and each map) is only needed for longer
    # data. Maps are always checked for duplicate and non-string keys.
    if len(data) > _MAX_CONTAINERS:
        budget = _ContainerBudget()
        options = {**_UNPACK_LIMITS, "object_pairs_hook": budget.map, "list_hook": budget.array}
    else:
        options = _SHORT_UNPACK
    try:
        return msgpack.unpackb(data, **options)
    except (ValueError, TypeError, RecursionError):
        raise MalformedMessage(f"{what} is not valid msgpack") from None


_SHORT_UNPACK: dict[str, Any] = {**_UNPACK_LIMITS, "object_pairs_hook": _str_keyed_map}


def _unpack_pair(data: bytes, what: str) -> tuple[Any, Any]:
    value = unpack_strict(data, what)
    if not isinstance(value, list) or len(value) != 2:
        raise MalformedMessage(f"{what} is not a pair")
    return value[0], value[1]
