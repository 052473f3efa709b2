"""Sealing the local message history at rest.

The history key is derived from the identity key's seed::

    master  = BLAKE2b-256(b"", key=seed,   person="susurro/hist/v1")
    labels  = BLAKE2b-256(b"", key=master, person="susurro/hid/v1" )
    rows    = BLAKE2b-256(b"", key=master, person="susurro/hbox/v1")

so it is protected exactly as the identity key is: by its passphrase when the
key file has one (the seed exists only after unlocking it), by the key file's
mode otherwise, and a passphrase change re-protects both at once (docs/decisions.md,
"The history key is derived from the identity key"). Rows are ``SecretBox(rows).encrypt(pad(msgpack(
[conversation, msg_id, sender, sent_at, outgoing, body, sender_key, trust, warnings])))``
(the sender's identity key, its trust state and the warnings that came with the message when it
was shown, so a flagged message never comes back from the history looking clean; rows written
before these three fields existed open with ``trust`` None, "not recorded"); conversations
and message ids are stored only as 16-byte keyed hashes (``label``). Opening
a row checks that the conversation and id inside are the row's, so rows moved
between conversations are refused.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import msgpack
import nacl.encoding
import nacl.exceptions
import nacl.hash
import nacl.secret

from .errors import DecryptFailed, MalformedMessage
from .identity import IdentityKey
from .limits import IDENTITY_KEY_SIZE
from .padding import pad, unpad
from .trust import TrustState

HISTORY_PERSON = b"susurro/hist/v1"
_LABEL_PERSON = b"susurro/hid/v1"
_BOX_PERSON = b"susurro/hbox/v1"
LABEL_SIZE = 16
#: A row never holds more than one message body plus its few fields.
MAX_ROW_PLAINTEXT = 64 * 1024
#: Warning kinds kept with one row, and the length of one kind's name: far above what one message gets.
MAX_ROW_WARNINGS = 16
MAX_WARNING_NAME = 64
#: A row's fields before the sender's key, trust and warnings were kept (still opened, trust not recorded).
_LEGACY_FIELDS = 6
_FIELDS = 9


def _keyed(key: bytes, person: bytes, data: bytes = b"", size: int = 32) -> bytes:
    digest: bytes = nacl.hash.blake2b(data, digest_size=size, key=key, person=person, encoder=nacl.encoding.RawEncoder)
    return digest


def derive_local_key(identity: IdentityKey, person: bytes) -> bytes:
    """A 32-byte key for the client's own files, bound to ``identity`` and ``person``."""
    return _keyed(identity.seed(), person)


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryRecord:
    """One message as the history keeps it."""

    conversation: str
    msg_id: str
    sender: str
    sent_at: int
    outgoing: bool
    body: str
    #: The sender's identity key when it was shown (``b""`` for our own messages).
    sender_key: bytes = b""
    #: The sender's trust state when it was shown; None for a row stored before it was kept.
    trust: TrustState | None = None
    #: The kinds of the warnings shown with the message (``gap``, ``late``, ...), stable names.
    warnings: tuple[str, ...] = ()


class HistoryKey:
    """Seals and opens history rows, and names conversations and ids without revealing them."""

    __slots__ = ("_box", "_label_key")

    def __init__(self, master: bytes) -> None:
        if len(master) != 32:
            raise ValueError("a history key is 32 bytes")
        self._label_key = _keyed(master, _LABEL_PERSON)
        self._box = nacl.secret.SecretBox(_keyed(master, _BOX_PERSON))

    @classmethod
    def derive(cls, identity: IdentityKey) -> HistoryKey:
        return cls(derive_local_key(identity, HISTORY_PERSON))

    def label(self, kind: str, value: str) -> bytes:
        """A 16-byte keyed hash of ``value`` (a conversation or a message id)."""
        return _keyed(self._label_key, b"susurro/label/v1", msgpack.packb([kind, value]), LABEL_SIZE)

    def seal(self, record: HistoryRecord) -> bytes:
        packed = msgpack.packb(
            [
                record.conversation, record.msg_id, record.sender, record.sent_at, record.outgoing, record.body,
                record.sender_key, "" if record.trust is None else record.trust.value, list(record.warnings),
            ],
            use_bin_type=True,
        )  # fmt: skip
        return self.seal_bytes(packed)

    def seal_bytes(self, plaintext: bytes) -> bytes:
        """Seal another kind of row kept in the history file (the ids already seen), padded like a message's."""
        return bytes(self._box.encrypt(pad(plaintext)))

    def open_bytes(self, data: bytes) -> bytes:
        """Open what ``seal_bytes`` sealed; raises ``DecryptFailed`` or ``MalformedMessage``."""
        try:
            block = self._box.decrypt(data)
        except (nacl.exceptions.CryptoError, ValueError, TypeError):
            raise DecryptFailed("a history row does not open under this identity's history key") from None
        plaintext = unpad(block)
        if len(plaintext) > MAX_ROW_PLAINTEXT:
            raise MalformedMessage("a history row is larger than any message")
        return plaintext

    def open(self, data: bytes, conversation: str | None) -> HistoryRecord:
        """Open a row read under ``conversation``; raises ``DecryptFailed`` or ``MalformedMessage``.

        ``None`` is only for the index of conversations, whose rows name the
        conversation they stand for.
        """
        plaintext = self.open_bytes(data)
        try:
            value: Any = msgpack.unpackb(plaintext, raw=False, max_map_len=0, max_ext_len=0)
        except (ValueError, TypeError):
            raise MalformedMessage("a history row is not valid msgpack") from None
        if type(value) is not list or len(value) not in (_LEGACY_FIELDS, _FIELDS):
            raise MalformedMessage("a history row has the wrong shape")
        conv, msg_id, sender, sent_at, outgoing, body = value[:_LEGACY_FIELDS]
        if not (
            type(conv) is str
            and type(msg_id) is str
            and type(sender) is str
            and type(sent_at) is int
            and type(outgoing) is bool
            and type(body) is str
        ):
            raise MalformedMessage("a history row has fields of the wrong types")
        if conversation is not None and conv != conversation:
            raise MalformedMessage("a history row was moved from another conversation")
        record = HistoryRecord(
            conversation=conv, msg_id=msg_id, sender=sender, sent_at=sent_at, outgoing=outgoing, body=body
        )
        if len(value) == _LEGACY_FIELDS:
            return record
        return _with_flags(record, value[_LEGACY_FIELDS:])


def _with_flags(record: HistoryRecord, fields: list[Any]) -> HistoryRecord:
    """``record`` with the sender's key, trust and warnings read from a row, each checked."""
    sender_key, trust, warnings = fields
    if type(sender_key) is not bytes or len(sender_key) not in (0, IDENTITY_KEY_SIZE):
        raise MalformedMessage("a history row's sender key is not an identity key")
    if type(trust) is not str or type(warnings) is not list or len(warnings) > MAX_ROW_WARNINGS:
        raise MalformedMessage("a history row's trust or warnings have the wrong shape")
    if not all(type(kind) is str and 0 < len(kind) <= MAX_WARNING_NAME for kind in warnings):
        raise MalformedMessage("a history row's warnings are not short names")
    try:
        state = None if trust == "" else TrustState(trust)
    except ValueError:
        raise MalformedMessage("a history row's trust state is unknown") from None
    return dataclasses.replace(record, sender_key=sender_key, trust=state, warnings=tuple(warnings))
