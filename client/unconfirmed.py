"""Our messages until each recipient says it has them: the outstanding set, and what to send again.

The relay's ``ack`` means only "queued": a copy queued for a recipient the
relay then evicts (a slow reader, a failed write) or loses (the relay is
killed) never arrives, and the recipient comes back with a new session key,
so its counters show no gap either. *Delivered* is the recipient's signed
receipt. So every online copy stays here, sealed content and counter, until

- the recipient's receipt names it (``confirmed``),
- the relay said it could not queue it (``ack.missing``: the user was told
  "not delivered"), or
- the set is full and the oldest message goes (the user is told, if anyone
  it was for had been confirming).

When a recipient comes back in a new session (``joined``, or in a
``welcome``, with a session key other than the one its copy was sealed to),
``due`` hands out its copies, oldest first, to be sealed again to the new key
with the counters they had and sent under the same ``msg_id`` before
anything new: the recipient drops what it had shown already (the same signed
content by another key is a duplicate, not a replay) and confirms it again.
Only two kinds of copy are resent: those the relay said it threw away
(``dropped``), which cannot have been shown, and those for a recipient who
has confirmed something before; a recipient that never sends receipts (an
older client) would otherwise be sent everything again at every reconnect.
A ``dropped`` for a recipient who is back already, or who is still
connected in the session the copy was sealed to, makes its copies due at
once. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from susurro.crypto import IdentityPublicKey, Recipient, SessionPublicKey
from susurro.crypto.seal import SignedMessage, signed_from_head

from . import events as ev
from .events import WarningKind

#: Messages kept until confirmed; past it the oldest is let go (and reported if it mattered).
MAX_UNCONFIRMED = 1_000
#: Recipients remembered as sending receipts (the least recently heard go first).
MAX_CONFIRMING = 10_000


@dataclass(slots=True)
class _Copy:
    name: str
    counter: int
    #: The recipient session key it was last sealed to; None: it never left this client (resend to any session).
    sealed_to: SessionPublicKey | None
    #: The relay said it threw this copy away (its reason), so it cannot have been shown.
    dropped: str | None = None
    #: Waiting in our own send queue (paced): it goes out sealed to whatever session is present then.
    queued: bool = False
    #: Sealed again to ``sealed_to`` when that session arrived (``due``): a ``dropped`` naming it after
    #: that is about an earlier session's copy, which this one replaced already.
    on_arrival: bool = False


@dataclass(slots=True)
class _Message:
    signed: SignedMessage
    copies: dict[IdentityPublicKey, _Copy]


@dataclass(frozen=True, slots=True)
class Resend:
    """One copy to seal again: the message as signed, and the recipient's new session with the old counter."""

    msg_id: str
    signed: SignedMessage
    recipient: Recipient


def _copies(message: _Message) -> list[list[Any]]:
    return [[bytes(k), c.name, c.counter, c.sealed_to, c.dropped] for k, c in message.copies.items()]


class Unconfirmed:
    def __init__(self, limit: int = MAX_UNCONFIRMED) -> None:
        self.limit = limit
        self._messages: OrderedDict[str, _Message] = OrderedDict()
        #: Recipients that have sent us a receipt: their unconfirmed copies are worth resending.
        self._confirming: OrderedDict[IdentityPublicKey, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._messages)

    def sent(
        self, msg_id: str, signed: SignedMessage, recipients: Sequence[Recipient], *, queued: bool = False
    ) -> list[ev.Event]:
        """Copies just sealed to ``recipients`` (``queued``: waiting in our send queue); a warning if the set
        was full and let go of one that mattered."""
        if not recipients:
            return []
        message = self._messages.pop(msg_id, None) or _Message(signed, {})
        for r in recipients:
            message.copies[r.identity_key] = _Copy(r.name, r.counter, r.session_key, queued=queued)
        self._messages[msg_id] = message
        out: list[ev.Event] = []
        while len(self._messages) > self.limit:
            old_id, old = self._messages.popitem(last=False)
            names = [c.name for k, c in old.copies.items() if k in self._confirming or c.dropped]
            if names:
                out.append(
                    ev.Warning(
                        kind=WarningKind.DELIVERY_UNKNOWN,
                        detail=f"message {old_id} was never confirmed by {', '.join(sorted(names))}, and "
                        f"{self.limit} newer messages wait for confirmation: it is no longer resent",
                    )
                )
        return out

    def confirmed(self, identity_key: IdentityPublicKey, msg_ids: Iterable[str]) -> list[str]:
        """A receipt from ``identity_key`` (verified under its pin) names these messages: those of them
        that had a copy here for it (ours, sent to it online), now delivered."""
        self._confirming.pop(identity_key, None)
        self._confirming[identity_key] = None
        while len(self._confirming) > MAX_CONFIRMING:
            self._confirming.popitem(last=False)
        ours: list[str] = []
        for msg_id in msg_ids:
            message = self._messages.get(msg_id)
            if message is None or message.copies.pop(identity_key, None) is None:
                continue
            ours.append(msg_id)
            if not message.copies:
                del self._messages[msg_id]
        return ours

    def not_queued(self, msg_id: str, names: Iterable[str]) -> None:
        """The relay could not queue these copies (``ack.missing``): reported as not delivered, not resent."""
        message = self._messages.get(msg_id)
        if message is None:
            return
        gone = {name.casefold() for name in names}
        for key in [k for k, c in message.copies.items() if c.name.casefold() in gone]:
            del message.copies[key]
        if not message.copies:
            del self._messages[msg_id]

    def dropped(self, name: str, msg_ids: Iterable[str], reason: str, present: SessionPublicKey | None = None) -> None:
        """The relay threw away copies it had queued for ``name`` (its word: at worst a needless resend).

        ``present``: the session ``name`` has now. A copy sealed to that very
        session, and not sealed again when it arrived, was lost although its
        recipient is still connected (a node that lost it, or a relay that
        says so): it becomes due to that session too, at once.
        """
        wanted = name.casefold()
        for msg_id in msg_ids:
            message = self._messages.get(msg_id)
            if message is None:
                continue
            for copy in message.copies.values():
                if copy.name.casefold() == wanted:
                    copy.dropped = reason
                    if present is not None and copy.sealed_to == present and not (copy.on_arrival or copy.queued):
                        copy.sealed_to = None

    def due(
        self, name: str, identity_key: IdentityPublicKey, session_key: SessionPublicKey, *, queued: bool = False
    ) -> list[Resend]:
        """``name`` is present under ``session_key``: its copies sealed to another session, to resend, oldest first.

        Each is counted as sealed to ``session_key`` from now on (or, with
        ``queued``, as waiting in our send queue), so it is handed out once
        per recipient session.
        """
        confirming = identity_key in self._confirming
        out: list[Resend] = []
        for msg_id, message in self._messages.items():
            copy = message.copies.get(identity_key)
            if copy is None or copy.queued or copy.sealed_to == session_key or not (confirming or copy.dropped):
                continue
            copy.sealed_to, copy.dropped, copy.name, copy.queued = session_key, None, name, queued
            copy.on_arrival = True
            recipient = Recipient(name=name, identity_key=identity_key, session_key=session_key, counter=copy.counter)
            out.append(Resend(msg_id, message.signed, recipient))
        return out

    def went(self, msg_id: str, identity_key: IdentityPublicKey, session_key: SessionPublicKey | None) -> None:
        """A copy left our send queue sealed to ``session_key`` (None: its recipient had gone, so it did not go
        and is due to their next session, whatever its key and whether or not they ever confirmed anything)."""
        message = self._messages.get(msg_id)
        copy = message.copies.get(identity_key) if message is not None else None
        if copy is None:
            return
        copy.queued, copy.sealed_to = False, session_key
        if session_key is None:
            copy.dropped = "not_sent"

    def export(self) -> list[Any]:
        """Everything, as plain values for the sealed state file (``load`` reads it back)."""
        messages = [[msg_id, m.signed.head, _copies(m)] for msg_id, m in self._messages.items()]
        return [messages, [bytes(k) for k in self._confirming]]

    @classmethod
    def load(cls, value: Any, limit: int = MAX_UNCONFIRMED) -> Unconfirmed:
        """Read back ``export``; raises ``ValueError``, ``TypeError``, ``KeyError`` or ``CryptoError`` if damaged."""
        book = cls(limit)
        messages, confirming = value
        for msg_id, head, copies in messages[-limit:]:
            book._messages[str(msg_id)] = _Message(
                signed_from_head(bytes(head)),
                {
                    IdentityPublicKey(bytes(key)): _Copy(
                        str(name),
                        int(counter),
                        None if sealed_to is None else SessionPublicKey(bytes(sealed_to)),
                        None if dropped is None else str(dropped),
                    )
                    for key, name, counter, sealed_to, dropped in copies
                },
            )
        for key in confirming[-MAX_CONFIRMING:]:
            book._confirming[IdentityPublicKey(bytes(key))] = None
        return book

    def outstanding(self) -> list[tuple[str, str, tuple[str, ...]]]:
        """(msg_id, text, names whose receipt has not come), oldest first: what quitting now leaves unconfirmed."""
        return [
            (msg_id, m.signed.inner.body, tuple(c.name for c in m.copies.values()))
            for msg_id, m in self._messages.items()
        ]
