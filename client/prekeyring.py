"""Our own prekeys: the private halves, what to publish, and what to delete (pure).

``PrekeyRing`` decides, from the clock it is given and the relay's count of
one-time prekeys left, when to publish a new signed prekey (every 7 days) and
more one-time prekeys (back to 100 when fewer than 10 remain); it opens
envelopes sealed to them, deletes a one-time prekey's private half the moment
it has opened a message under it, and remembers which envelope used it, so
the same envelope again is a duplicate (the relay resent an unconfirmed item)
and any other envelope under that key is refused as ``prekey_reused``. A
replaced signed prekey's private half is kept 30 days, then deleted; a
one-time prekey's is deleted 15 days after its signed expiry even if no
message ever came under it (the relay may be holding one back: no waiting
message that old is accepted anyway).

The ring is saved by its owner (``export``/``load``, sealed with SecretBox
under a key derived from the identity key) before any mailbox item it opened
is confirmed to the relay, so a crash cannot leave a used key behind.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import msgpack
import nacl.exceptions
import nacl.secret

from susurro.crypto import IdentityKey
from susurro.crypto.errors import DecryptFailed, MalformedMessage, PrekeyReused, UnknownPrekey
from susurro.crypto.history import derive_local_key
from susurro.crypto.prekeys import (
    MAX_KEY_ID,
    ONE_TIME_PREKEY_BATCH,
    ONE_TIME_PREKEY_KEPT,
    ONE_TIME_PREKEY_LIFETIME,
    ONE_TIME_PREKEY_LOW_WATER,
    SIGNED_PREKEY_GRACE,
    SIGNED_PREKEY_ROTATION,
    EnvelopeKind,
    OneTimePrekey,
    PrekeyPrivate,
    SignedPrekey,
    envelope_digest,
    open_from_prekey,
    read_envelope,
    sign_one_time_prekey,
    sign_signed_prekey,
)
from susurro.crypto.seal import OpenedMessage, open_block

RING_PERSON = b"susurro/ring/v1"
#: Used one-time keys remembered (with the envelope that used them). A mailbox
#: holds at most 1,000 items, so older records could only match items long gone.
MAX_USED_RECORDS = 2_000
#: One-time private halves kept: ten batches that the relay handed out and nobody used.
MAX_HELD_ONE_TIME = 10 * ONE_TIME_PREKEY_BATCH
#: Replaced signed prekeys whose private halves are still kept (30 days at one a week, and then some).
MAX_OLD_SIGNED = 8
#: Format 2 keeps each one-time prekey's expiry; a format 1 file's keys get a full lifetime from loading.
_FORMAT = 2
_FORMATS = (1, 2)
T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class Publication:
    """What to send the relay: a new signed prekey and/or more one-time prekeys."""

    signed: SignedPrekey | None
    one_time: tuple[OneTimePrekey, ...]


class Duplicate(Exception):
    """The same envelope was opened before: confirm it again, show nothing."""


@dataclass(slots=True)
class _Signed:
    private: PrekeyPrivate
    created_at: int
    replaced_at: float | None


@dataclass(slots=True)
class _OneTime:
    private: PrekeyPrivate
    #: As signed (seconds); None for a key from a format 1 file until ``expire`` first sees the clock.
    expires_at: int | None


class PrekeyRing:
    def __init__(self, identity: IdentityKey) -> None:
        self._identity = identity
        self._signed: list[_Signed] = []  # newest last
        self._one_time: dict[int, _OneTime] = {}
        self._used: OrderedDict[int, bytes] = OrderedDict()
        self._next_signed = 1
        self._next_one_time = 1

    # --- what to publish -------------------------------------------------------------

    @property
    def current_signed(self) -> SignedPrekey | None:
        if not self._signed:
            return None
        current = self._signed[-1]
        return sign_signed_prekey(self._identity, current.private, current.created_at)

    def on_join(self, now: float) -> Publication:
        """What to publish right after joining: the signed prekey (rotated if due), no one-time keys yet.

        The relay may have lost the signed prekey, or be a new relay, so it is
        always sent; its answer (``prekeys_held``) says how many one-time keys
        it holds, and ``due`` then tops them up.
        """
        signed = self._rotate_signed(now) if self._signed_due(now) else self.current_signed
        assert signed is not None
        self.expire(now)
        return Publication(signed=signed, one_time=())

    def due(self, now: float, relay_one_time_count: int) -> Publication | None:
        """What to publish now, given how many one-time prekeys the relay says it holds for us."""
        signed = self._rotate_signed(now) if self._signed_due(now) else None
        one_time: tuple[OneTimePrekey, ...] = ()
        if relay_one_time_count < ONE_TIME_PREKEY_LOW_WATER:
            one_time = self._new_one_time(ONE_TIME_PREKEY_BATCH - max(0, relay_one_time_count), now)
        self.expire(now)
        if signed is None and not one_time:
            return None
        return Publication(signed=signed, one_time=one_time)

    def _signed_due(self, now: float) -> bool:
        return not self._signed or now - self._signed[-1].created_at >= SIGNED_PREKEY_ROTATION

    def _rotate_signed(self, now: float) -> SignedPrekey:
        if self._signed:
            self._signed[-1].replaced_at = now
        private = PrekeyPrivate.generate(self._next_signed)
        self._next_signed = self._next_signed % MAX_KEY_ID + 1
        self._signed.append(_Signed(private=private, created_at=int(now), replaced_at=None))
        return sign_signed_prekey(self._identity, private, int(now))

    def _new_one_time(self, count: int, now: float) -> tuple[OneTimePrekey, ...]:
        out = []
        expires_at = int(now) + ONE_TIME_PREKEY_LIFETIME
        for _ in range(max(0, count)):
            key_id = self._next_one_time
            self._next_one_time = self._next_one_time % MAX_KEY_ID + 1
            private = PrekeyPrivate.generate(key_id)
            self._one_time[key_id] = _OneTime(private=private, expires_at=expires_at)
            out.append(sign_one_time_prekey(self._identity, private, expires_at))
        # Keys the relay handed out that were never used stay here; past the
        # bound the oldest go (a message under one is then unknown_prekey).
        while len(self._one_time) > MAX_HELD_ONE_TIME:
            del self._one_time[next(iter(self._one_time))]
        return tuple(out)

    def expire(self, now: float) -> None:
        """Delete the private halves of signed prekeys replaced more than 30 days ago, and of one-time
        prekeys expired more than ``ONE_TIME_PREKEY_KEPT`` ago, used or not."""
        self._signed = [s for s in self._signed if s.replaced_at is None or now - s.replaced_at < SIGNED_PREKEY_GRACE][
            -MAX_OLD_SIGNED:
        ]
        for key_id, held in list(self._one_time.items()):
            if held.expires_at is None:
                held.expires_at = int(now) + ONE_TIME_PREKEY_LIFETIME
            elif now >= held.expires_at + ONE_TIME_PREKEY_KEPT:
                del self._one_time[key_id]

    @property
    def one_time_held(self) -> int:
        return len(self._one_time)

    # --- opening ---------------------------------------------------------------------

    def open(self, envelope: bytes, *, relay_sender: str, sender_identity_key: bytes, own_name: str) -> OpenedMessage:
        """Open a mailbox envelope; raises ``Duplicate``, ``PrekeyReused``, ``UnknownPrekey`` or a ``CryptoError``.

        On success under a one-time prekey, its private half is gone from the
        ring (save the ring before confirming the item).
        """

        def check(kind: EnvelopeKind, block: bytes) -> OpenedMessage:
            if kind is not EnvelopeKind.MESSAGE:
                raise MalformedMessage(f"a {kind.name.lower()} where a message was expected")
            return open_block(
                block,
                relay_sender=relay_sender,
                sender_identity_key=sender_identity_key,
                own_name=own_name,
                own_identity_key=self._identity.public,
            )

        return self.open_with(envelope, sender_identity_key, check)

    def open_with(self, envelope: bytes, sender_identity_key: bytes, check: Callable[[EnvelopeKind, bytes], T]) -> T:
        """Open an envelope and ``check`` its block by its kind (a message, a receipt: authenticated with
        the box); only a block that passes uses a key up."""
        header = read_envelope(envelope)
        digest = envelope_digest(envelope)
        opk_id = header.one_time_key_id
        if opk_id and opk_id in self._used:
            if self._used[opk_id] == digest:
                raise Duplicate(f"envelope under one-time prekey {opk_id} was already opened")
            raise PrekeyReused(f"a second message under one-time prekey {opk_id}: the relay handed it out twice")
        signed = next((s.private for s in self._signed if s.private.key_id == header.signed_key_id), None)
        if signed is None:
            raise UnknownPrekey(f"sealed to signed prekey {header.signed_key_id}, which this client does not hold")
        one_time = None
        if opk_id:
            held = self._one_time.get(opk_id)
            one_time = None if held is None else held.private
            if one_time is None:
                raise UnknownPrekey(f"sealed to one-time prekey {opk_id}, which this client does not hold")
        block = open_from_prekey(self._identity, header, sender_identity_key, signed, one_time)
        opened = check(header.kind, block)
        if opk_id:
            # Only a genuine message uses the key up: a forgery under its id
            # (which does not open) must not burn it for the real sender.
            del self._one_time[opk_id]
            self._used[opk_id] = digest
            while len(self._used) > MAX_USED_RECORDS:
                self._used.popitem(last=False)
        return opened

    # --- saving ----------------------------------------------------------------------

    def _box(self) -> nacl.secret.SecretBox:
        return nacl.secret.SecretBox(derive_local_key(self._identity, RING_PERSON))

    def export(self) -> bytes:
        """The ring's state, sealed under a key derived from the identity key."""
        state = [
            _FORMAT,
            self._next_signed,
            self._next_one_time,
            [[s.private.key_id, s.private.private_bytes(), s.created_at, s.replaced_at] for s in self._signed],
            [[k, h.private.private_bytes(), h.expires_at] for k, h in self._one_time.items()],
            [[k, d] for k, d in self._used.items()],
        ]
        return bytes(self._box().encrypt(msgpack.packb(state, use_bin_type=True)))

    @classmethod
    def load(cls, identity: IdentityKey, data: bytes) -> PrekeyRing:
        ring = cls(identity)
        try:
            plain = ring._box().decrypt(data)
        except (nacl.exceptions.CryptoError, ValueError, TypeError):
            raise DecryptFailed("the prekey file does not open under this identity") from None
        try:
            state: Any = msgpack.unpackb(plain, raw=False)
            fmt, next_signed, next_one_time, signed, one_time, used = state
            if fmt not in _FORMATS:
                raise MalformedMessage(f"prekey file format {fmt!r}")
            ring._next_signed, ring._next_one_time = int(next_signed), int(next_one_time)
            ring._signed = [
                _Signed(private=PrekeyPrivate.from_bytes(k, raw), created_at=int(c), replaced_at=r)
                for k, raw, c, r in signed
            ]
            ring._one_time = {
                int(k): _OneTime(
                    private=PrekeyPrivate.from_bytes(int(k), raw), expires_at=None if fmt == 1 else _expiry(rest[0])
                )
                for k, raw, *rest in one_time
            }
            ring._used = OrderedDict((int(k), bytes(d)) for k, d in used)
        except (ValueError, TypeError, KeyError) as exc:
            raise MalformedMessage(f"the prekey file is damaged: {exc}") from None
        return ring


def _expiry(raw: Any) -> int | None:
    return None if raw is None else int(raw)
