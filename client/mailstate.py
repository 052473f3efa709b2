"""What the mailbox part remembers across restarts, besides the prekeys (pure).

Three records, saved sealed with the prekey ring before any mailbox item is
confirmed to the relay (``Mailbox``'s ``save``), so a crash or a restart
cannot make the client forget what it must refuse:

- ``SeenMail``: the waiting messages already opened, by (sender identity key,
  message id), for ``MAX_MAIL_AGE``. The relay keeps an item until it is
  confirmed; one confirmed and then served again (after the recipient
  restarted, or with ``--no-history``) is a duplicate, not a new message.
  A message signed longer ago than ``STALE_MAIL_AGE`` (15 days) is older than
  any mailbox keeps mail: the relay held it back, and it is refused as
  ``stale_mail``. One signed before the oldest record of its sender this
  bounded list had to let go cannot be told from such a replay and is
  refused; one signed in the future is refused too.
- ``NewestPrekeys``: per identity, the newest signed prekey this client has
  verified, so a relay cannot roll a sender back to an older one (whose
  private half may have leaked since it was replaced).
- ``Deliveries``: per message we sent, who it waits for and who confirmed it
  with a signed receipt, so "waiting for bob" still turns into "delivered to
  bob" when bob's receipt arrives after our own restart, and a message bob
  confirmed (online or after waiting) is still shown delivered to him after
  it.
"""

from __future__ import annotations

import enum
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import msgpack
import nacl.exceptions
import nacl.secret

from susurro.crypto import IdentityKey
from susurro.crypto.errors import DecryptFailed, MalformedMessage, Replay, StaleMail
from susurro.crypto.history import derive_local_key
from susurro.crypto.prekeys import SIGNED_PREKEY_GRACE, SIGNED_PREKEY_ROTATION, STALE_MAIL_AGE, SignedPrekey

from .prekeyring import Duplicate

#: A waiting message signed longer ago than this is refused (ms): the signed prekey it was
#: sealed to is gone by then (replaced after at most 7 days, deleted 30 days later), and the
#: relay keeps mail at most 30 days (``--mailbox-days``).
MAX_MAIL_AGE_MS = (SIGNED_PREKEY_ROTATION + SIGNED_PREKEY_GRACE) * 1000
#: A waiting message signed longer ago than this (ms) is ``stale_mail``: the relay keeps mail at most
#: 14 days (``--mailbox-days``), and a day more allows for clocks that disagree. It also bounds how
#: late a relay can deliver one it held back, and so how long its one-time prekey must be kept.
STALE_MAIL_AGE_MS = STALE_MAIL_AGE * 1000
#: Opened waiting messages remembered in all; past this the sender with the most lets its oldest go.
MAX_SEEN_MAIL = 20_000
#: Of those, from one sender: past this its own oldest go, and only its own refusal floor rises.
MAX_SEEN_MAIL_PER_SENDER = 2_000
#: A waiting message signed further ahead of our clock than this (ms) is refused: a date in the
#: future would otherwise stand as a record, and raise its sender's floor, for ever.
MAX_MAIL_SKEW_MS = 10 * 60 * 1000
#: Identities whose newest signed prekey is remembered.
MAX_NEWEST_PREKEYS = 10_000
#: Sent messages whose per-recipient delivery is remembered.
MAX_DELIVERIES = 10_000
_FORMAT = 1
MAIL_STATE_PERSON = b"susurro/mail/v1"


class SeenMail:
    """Waiting messages opened, per sender: a record each, and each sender's own refusal floor.

    Senders choose ``sent_at``, so what one sender does must not touch what is
    kept for another: a record is ``min(sent_at, now)`` of a message signed at
    most ``MAX_MAIL_SKEW_MS`` ahead, a sender keeps at most
    ``MAX_SEEN_MAIL_PER_SENDER`` records, and when all of them together reach
    ``MAX_SEEN_MAIL`` the sender with the most gives one up. Letting a record
    go raises only its sender's floor.
    """

    def __init__(self) -> None:
        #: (sender identity key, message id) -> the message's signed ``sent_at`` (ms), oldest kept first.
        self._seen: OrderedDict[tuple[bytes, str], int] = OrderedDict()
        #: sender -> its message ids in ``_seen``, oldest first.
        self._by_sender: dict[bytes, deque[str]] = {}
        #: sender -> nothing of theirs signed at or before this (ms) is accepted: a record was let go.
        self.floors: dict[bytes, int] = {}
        #: The same for every sender: floors folded together when too many senders had one.
        self.floor = 0

    def check(self, sender_key: bytes, msg_id: str, sent_at: int, now_ms: int) -> None:
        """Raise ``Duplicate`` for a message opened before, ``Replay`` for one too old to tell,
        ``MalformedMessage`` for one signed too far ahead of our clock."""
        if (sender_key, msg_id) in self._seen:
            raise Duplicate(f"waiting message {msg_id!r} was opened before")
        if sent_at > now_ms + MAX_MAIL_SKEW_MS:
            raise MalformedMessage(
                f"a waiting message {msg_id!r} is signed {(sent_at - now_ms) // 60_000} minute(s) ahead of this "
                f"client's clock (at most {MAX_MAIL_SKEW_MS // 60_000} are taken)"
            )
        if sent_at < now_ms - STALE_MAIL_AGE_MS:
            raise StaleMail(
                f"a waiting message {msg_id!r} signed {(now_ms - sent_at) // 86_400_000} day(s) ago is older than "
                "any mailbox keeps mail: the relay held it back"
            )
        oldest = max(self.floor + 1, self.floors.get(sender_key, 0) + 1, now_ms - MAX_MAIL_AGE_MS)
        if sent_at < oldest:
            raise Replay(
                f"a waiting message {msg_id!r} signed {(now_ms - sent_at) // 86_400_000} day(s) ago is older "
                "than this client can tell from a replay"
            )

    def add(self, sender_key: bytes, msg_id: str, sent_at: int, now_ms: int) -> None:
        if (sender_key, msg_id) in self._seen:
            return
        self._seen[(sender_key, msg_id)] = min(sent_at, now_ms)
        self._by_sender.setdefault(sender_key, deque()).append(msg_id)
        # Records past the age limit are not needed: check refuses those messages by age.
        while self._seen and next(iter(self._seen.values())) < now_ms - MAX_MAIL_AGE_MS:
            (key, _), _ = self._seen.popitem(last=False)
            self._drop_oldest_id(key)
        held = len(self._by_sender.get(sender_key, ()))  # none: its record was already past the age limit
        if held > MAX_SEEN_MAIL_PER_SENDER:
            self._let_go(sender_key)
        if len(self._seen) > MAX_SEEN_MAIL:  # this sender if it holds its share or more (no scan), else the most
            fair = MAX_SEEN_MAIL // len(self._by_sender)
            mine = 0 < held >= fair
            self._let_go(sender_key if mine else max(self._by_sender, key=lambda key: len(self._by_sender[key])))
        if len(self.floors) > MAX_SEEN_MAIL:
            for key in [key for key, floor in self.floors.items() if floor < now_ms - MAX_MAIL_AGE_MS]:
                del self.floors[key]  # older than anything check still takes
        while len(self.floors) > MAX_SEEN_MAIL:  # folded: the lowest floor becomes everyone's
            key = min(self.floors, key=self.floors.__getitem__)
            self.floor = max(self.floor, self.floors.pop(key))

    def _drop_oldest_id(self, key: bytes) -> None:
        ids = self._by_sender[key]
        ids.popleft()
        if not ids:
            del self._by_sender[key]

    def _let_go(self, key: bytes) -> None:
        """Let ``key``'s oldest record go: nothing of theirs signed at or before it is taken any more."""
        sent_at = self._seen.pop((key, self._by_sender[key][0]))
        self._drop_oldest_id(key)
        self.floors[key] = max(self.floors.get(key, 0), sent_at)

    def records(self, sender_key: bytes) -> int:
        return len(self._by_sender.get(sender_key, ()))

    def export(self) -> list[Any]:
        return [self.floor, [[k, m, t] for (k, m), t in self._seen.items()], [[k, f] for k, f in self.floors.items()]]

    @classmethod
    def load(cls, raw: Any) -> SeenMail:
        """From ``export``'s value, or an older one without per-sender floors (its floor is everyone's)."""
        seen = cls()
        floor, entries, *rest = raw
        seen.floor = int(floor)
        for k, m, t in entries:
            seen._seen[(bytes(k), str(m))] = int(t)
            seen._by_sender.setdefault(bytes(k), deque()).append(str(m))
        for k, f in rest[0] if rest else ():
            seen.floors[bytes(k)] = int(f)
        return seen


class NewestPrekeys:
    def __init__(self) -> None:
        self._newest: OrderedDict[bytes, SignedPrekey] = OrderedDict()

    def get(self, identity_key: bytes) -> SignedPrekey | None:
        return self._newest.get(identity_key)

    def saw(self, identity_key: bytes, signed: SignedPrekey) -> None:
        """``signed`` verified for ``identity_key`` and is not older than what was seen (``check_bundle``)."""
        self._newest[identity_key] = signed
        self._newest.move_to_end(identity_key)
        while len(self._newest) > MAX_NEWEST_PREKEYS:
            self._newest.popitem(last=False)

    def export(self) -> list[Any]:
        return [[k, s.key_id, s.public, s.created_at, s.signature] for k, s in self._newest.items()]

    @classmethod
    def load(cls, raw: Any) -> NewestPrekeys:
        newest = cls()
        for key, key_id, public, created_at, signature in raw:
            newest._newest[bytes(key)] = SignedPrekey(
                key_id=int(key_id), public=bytes(public), created_at=int(created_at), signature=bytes(signature)
            )
        return newest


class DeliveryState(str, enum.Enum):
    """Where one copy of a message we sent is, for one recipient."""

    #: In their mailbox on the relay (the relay's word).
    WAITING = "waiting"
    #: Their client signed a receipt for it (their word).
    DELIVERED = "delivered"


@dataclass(frozen=True, slots=True)
class Confirmed:
    """A receipt moved these messages of ours from waiting to delivered, for ``name``."""

    name: str
    msg_ids: tuple[str, ...]


class Deliveries:
    """Per message we sent: (recipient identity key) -> (name, state). Bounded, oldest messages first out."""

    def __init__(self) -> None:
        self._by_message: OrderedDict[str, dict[bytes, tuple[str, DeliveryState]]] = OrderedDict()

    def waiting(self, msg_id: str, recipients: Iterable[tuple[str, bytes]]) -> None:
        """The relay stored copies of ``msg_id`` for ``recipients`` (name, identity key)."""
        entry = self._by_message.setdefault(msg_id, {})
        for name, key in recipients:
            if entry.get(key, (name, DeliveryState.WAITING))[1] is DeliveryState.WAITING:
                entry[key] = (name, DeliveryState.WAITING)
        self._by_message.move_to_end(msg_id)
        while len(self._by_message) > MAX_DELIVERIES:
            self._by_message.popitem(last=False)

    def receipt(self, identity_key: bytes, msg_ids: Iterable[str]) -> tuple[str, ...]:
        """A signed receipt from ``identity_key``: the ids that were waiting for it (now delivered)."""
        moved = []
        for msg_id in msg_ids:
            entry = self._by_message.get(msg_id)
            if entry is None or identity_key not in entry:
                continue
            name, state = entry[identity_key]
            if state is DeliveryState.WAITING:
                entry[identity_key] = (name, DeliveryState.DELIVERED)
                moved.append(msg_id)
        return tuple(moved)

    def delivered(self, msg_id: str, name: str, identity_key: bytes) -> bool:
        """A copy sent online (not waiting) was confirmed by ``identity_key``'s receipt; False if known."""
        entry = self._by_message.setdefault(msg_id, {})
        if entry.get(identity_key, ("", None))[1] is DeliveryState.DELIVERED:
            return False
        entry[identity_key] = (name, DeliveryState.DELIVERED)
        self._by_message.move_to_end(msg_id)
        while len(self._by_message) > MAX_DELIVERIES:
            self._by_message.popitem(last=False)
        return True

    def report(self, msg_id: str) -> dict[str, DeliveryState]:
        """Who ``msg_id`` waits for and who confirmed it, by name (empty: nothing waited)."""
        return {name: state for name, state in self._by_message.get(msg_id, {}).values()}

    def export(self) -> list[Any]:
        return [[m, [[k, n, s.value] for k, (n, s) in e.items()]] for m, e in self._by_message.items()]

    @classmethod
    def load(cls, raw: Any) -> Deliveries:
        deliveries = cls()
        for msg_id, entries in raw:
            deliveries._by_message[str(msg_id)] = {bytes(k): (str(n), DeliveryState(s)) for k, n, s in entries}
        return deliveries


@dataclass(slots=True)
class MailState:
    seen: SeenMail
    newest: NewestPrekeys
    deliveries: Deliveries

    @classmethod
    def empty(cls) -> MailState:
        return cls(SeenMail(), NewestPrekeys(), Deliveries())

    def export(self) -> list[Any]:
        return [_FORMAT, self.seen.export(), self.newest.export(), self.deliveries.export()]

    @classmethod
    def load(cls, raw: Any) -> MailState:
        """From ``export``'s value; ``ValueError`` (or ``TypeError``) if it is not one."""
        if type(raw) is not list or len(raw) != 4 or raw[0] != _FORMAT:
            raise ValueError("not a mailbox state of a known format")
        return cls(SeenMail.load(raw[1]), NewestPrekeys.load(raw[2]), Deliveries.load(raw[3]))

    def seal(self, identity: IdentityKey) -> bytes:
        """The state sealed with SecretBox under a key derived from the identity key (as the ring is)."""
        box = nacl.secret.SecretBox(derive_local_key(identity, MAIL_STATE_PERSON))
        return bytes(box.encrypt(msgpack.packb(self.export(), use_bin_type=True)))

    @classmethod
    def unseal(cls, identity: IdentityKey, data: bytes) -> MailState:
        box = nacl.secret.SecretBox(derive_local_key(identity, MAIL_STATE_PERSON))
        try:
            plain = box.decrypt(data)
        except (nacl.exceptions.CryptoError, ValueError, TypeError):
            raise DecryptFailed("the mailbox state does not open under this identity") from None
        try:
            return cls.load(msgpack.unpackb(plain, raw=False))
        except (ValueError, TypeError, KeyError) as exc:
            raise MalformedMessage(f"the mailbox state is damaged: {exc}") from None
