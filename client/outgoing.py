"""Our messages after they are sealed: acks awaited, late acks, messages held for a reconnect.

Everything here is sans-I/O and takes ``now`` (monotonic seconds for the
timers), so tests drive it without sockets or sleeping:

- ``PendingAcks``: one session's messages awaiting the relay's ``ack``, and
  the ``Delivery`` each ack becomes (the relay is believed only about names
  we addressed); what is still pending when the session ends is reported;
- ``AckWatch``: which of them have waited longer than ``ACK_TIMEOUT``;
- ``HeldMessages``: what the user typed while no connection was up (bounded);
- ``Outgoing``: the three across reconnects, as ``RelayConnection`` uses them.

Who a message is sealed to and the ``send`` frame itself are ``sending``.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections import Counter, OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass

from susurro.protocol import Ack

from . import events as ev
from .errors import SendError
from .events import WarningKind

#: Acks we wait for at once; older entries are forgotten (reported as unknown).
MAX_PENDING_ACKS = 10_000
#: A message whose ``ack`` has not come after this long is reported as of unknown delivery.
ACK_TIMEOUT = 30.0
#: Messages typed while disconnected, kept to send after the reconnect.
MAX_HELD = 100
#: After a rejoin, held lines wait this long for the members they were typed for to be back.
#: Members come back on their own backoff (at most ``reconnect.BACKOFF_CAP``, 30 s, apart),
#: so this covers one full backoff step and the join itself.
PRESENCE_WAIT = 45.0


#: Characters of a message's text quoted when it is reported (so the sender knows which one).
EXCERPT_CHARS = 24


def excerpt(text: str) -> str:
    """The start of a message's text, quoted, for a report about it in the sender's words."""
    words = " ".join(text.split())
    return f'"{words[:EXCERPT_CHARS]}…"' if len(words) > EXCERPT_CHARS else f'"{words}"'


def about(msg_id: str, text: str, names: Collection[str]) -> str:
    """How a report names one of our messages: its id (for scripts; the terminal drops it), words, recipients."""
    quoted = f" {excerpt(text)}" if text else ""
    return f"message {msg_id}{quoted} to {', '.join(names) or 'nobody'}"


class PendingAcks:
    """msg id -> (members addressed, members skipped, text), until the relay's ack."""

    def __init__(self, limit: int = MAX_PENDING_ACKS) -> None:
        self._limit = limit
        self._pending: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {}
        #: Ids of resent copies awaiting their ack (the message itself was reported already).
        self._resent: Counter[str] = Counter()
        #: Per message awaiting its ack: (name, why) of those whose copy never left our send queue.
        self._unsent: dict[str, list[tuple[str, str]]] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, msg_id: str, addressed: tuple[str, ...], skipped: tuple[str, ...], text: str = "") -> None:
        if len(self._pending) >= self._limit:
            self._pending.pop(next(iter(self._pending)))
        self._pending[msg_id] = (addressed, skipped, text)

    def resent(self, msg_id: str) -> None:
        """A copy sent again under ``msg_id``: its ack is expected, and says nothing new to the user."""
        if sum(self._resent.values()) < self._limit:
            self._resent[msg_id] += 1

    def unsent(self, msg_id: str, gone: Collection[tuple[str, str]], *, frame_went: bool) -> list[ev.Event]:
        """Copies of ``msg_id`` that never left our send queue: (name, why) each (their recipient left first).

        The relay's ack will not mention them, so they are reported here, as
        not delivered with the reason; ``frame_went`` False: nothing of the
        message went out, so no ack comes at all and its ``Delivery`` is now.
        """
        pending = self._pending.get(msg_id)
        if pending is None:  # a resend: the message was reported already
            if not frame_went and self._resent[msg_id] > 0:
                self._resent[msg_id] -= 1  # its ack will not come
                if not self._resent[msg_id]:
                    del self._resent[msg_id]
            return []
        addressed, skipped, text = pending
        names = {name for name, _ in gone}
        unsent = self._unsent.setdefault(msg_id, [])
        unsent.extend((name, why) for name, why in gone if name in addressed)
        if frame_went:
            self._pending[msg_id] = (tuple(n for n in addressed if n not in names), skipped, text)
            return []
        del self._pending[msg_id]
        not_delivered = tuple(self._unsent.pop(msg_id))
        return [ev.Delivery(msg_id=msg_id, delivered=(), missing=(), skipped=skipped, not_delivered=not_delivered)]

    def recipients_of(self, msg_id: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(encrypted to, skipped) for a message still awaiting its ack; empty once acked."""
        addressed, skipped, _ = self._pending.get(msg_id, ((), (), ""))
        return addressed, skipped

    def describe(self, msg_id: str) -> str:
        """A message awaiting its ack in the sender's words (``about``); only its id once acked."""
        if msg_id not in self._pending:
            return f"message {msg_id}"
        addressed, _, text = self._pending[msg_id]
        return about(msg_id, text, addressed)

    def settle(self, ack: Ack) -> list[ev.Event]:
        """The ``Delivery`` an ack becomes, and a warning if the ack contradicts itself or what we sent."""
        pending = self._pending.pop(ack.id, None)
        if pending is None and self._resent[ack.id] > 0:
            # A resend's ack (acks come in the order of the sends, so the first went to the
            # message): "queued" again, which changes nothing until the receipt comes.
            self._resent[ack.id] -= 1
            if not self._resent[ack.id]:
                del self._resent[ack.id]
            return []
        if pending is None:
            return [
                ev.Warning(
                    kind=WarningKind.PROTOCOL_ERROR,
                    detail=f"the relay acknowledged a message we did not send ({ack.id!r})",
                )
            ]
        addressed, skipped, _ = pending
        said_delivered, said_missing = set(ack.delivered), set(ack.missing)
        # An ack is the relay's word; one that contradicts itself is a lie about
        # someone, so every name it is inconsistent about counts as not delivered.
        both = said_delivered & said_missing
        repeated = {n for n in said_delivered if ack.delivered.count(n) > 1} | {
            n for n in said_missing if ack.missing.count(n) > 1
        }
        unasked = (said_delivered | said_missing) - set(addressed)
        doubtful = both | repeated
        delivered = tuple(n for n in addressed if n in said_delivered and n not in doubtful)
        missing = tuple(n for n in addressed if n not in delivered)
        unsent = tuple(self._unsent.pop(ack.id, ()))
        # The relay's reason for a name it lists as missing (another node of its cluster could not be
        # reached, say); a reason for anyone else is not the relay's to give, and is ignored.
        given = said_missing.intersection(ack.reasons) - doubtful
        why = tuple((n, ack.reasons[n]) for n in missing if n in given)
        out: list[ev.Event] = [
            ev.Delivery(
                msg_id=ack.id, delivered=delivered, missing=missing, skipped=skipped, not_delivered=unsent + why
            )
        ]
        problems = [
            *(f"listed {n} as both delivered and not delivered" for n in sorted(both)),
            *(f"listed {n} more than once" for n in sorted(repeated - both)),
            *(f"listed {n}, to whom we did not send it" for n in sorted(unasked)),
        ]
        if problems:
            out.insert(
                0,
                ev.Warning(
                    kind=WarningKind.PROTOCOL_ERROR,
                    detail="the relay's delivery report contradicts itself or what we sent ("
                    + "; ".join(problems[:5])
                    + ("; …" if len(problems) > 5 else "")
                    + "); those people are counted as not delivered",
                ),
            )
        return out

    def abandon(self, never_left: Collection[str] = ()) -> list[ev.Event]:
        """The session ended: each message still awaiting an ack is reported, in the sender's words.

        ``never_left``: those that were still waiting their turn to go out (paced).
        """
        out: list[ev.Event] = []
        for msg_id, (addressed, _, text) in self._pending.items():
            if msg_id in never_left:
                what = "was not sent before the connection to the relay ended; it is sent when they are back"
            else:
                what = "the connection to the relay ended before it said it had queued it"
            detail = f"{about(msg_id, text, addressed)}: {what}"
            out.append(ev.Warning(kind=WarningKind.DELIVERY_UNKNOWN, detail=detail))
        self._pending.clear()
        self._resent.clear()
        self._unsent.clear()
        return out


class AckWatch:
    """Message ids awaiting the relay's ``ack``; each late one is reported once."""

    def __init__(self, timeout: float = ACK_TIMEOUT) -> None:
        self.timeout = timeout
        self._sent: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sent)

    def sent(self, msg_id: str, now: float) -> None:
        self._sent[msg_id] = now

    def settled(self, msg_id: str) -> None:
        self._sent.pop(msg_id, None)

    def overdue(self, now: float) -> list[str]:
        """Ids sent more than ``timeout`` ago and still unacknowledged (then forgotten here)."""
        late: list[str] = []
        while self._sent:
            msg_id, at = next(iter(self._sent.items()))
            if now - at < self.timeout:
                break
            self._sent.popitem(last=False)
            late.append(msg_id)
        return late

    def clear(self) -> list[str]:
        """Forget everything (the session ended, which reports them itself)."""
        ids = list(self._sent)
        self._sent.clear()
        return ids


@dataclass(frozen=True, slots=True)
class HeldMessage:
    msg_id: str
    text: str
    to: tuple[str, ...] | None
    #: Who it was meant for when typed (the room as it was, or ``to``): the
    #: names reported missing if it can never be sent.
    intended: tuple[str, ...]


class HeldMessages:
    """A bounded FIFO of messages typed while disconnected."""

    def __init__(self, limit: int = MAX_HELD) -> None:
        self.limit = limit
        self._items: list[HeldMessage] = []

    def __len__(self) -> int:
        return len(self._items)

    def add(self, message: HeldMessage) -> bool:
        """False when full: the caller refuses the message, it is never dropped silently."""
        if len(self._items) >= self.limit:
            return False
        self._items.append(message)
        return True

    def take_all(self) -> list[HeldMessage]:
        items, self._items = self._items, []
        return items


#: Seals and queues one message on the live session: (text, to, msg_id) -> msg_id; raises ``SendError``.
SendFunction = Callable[[str, "list[str] | None", str], str]


class Outgoing:
    """Our messages across reconnects: held while the link is down, watched until acked."""

    def __init__(self, *, ack_timeout: float = ACK_TIMEOUT, max_held: int = MAX_HELD) -> None:
        self.acks = AckWatch(ack_timeout)
        self.held = HeldMessages(max_held)
        #: Who was in the room when the last session ended (see ``session_ended``).
        self.last_present: tuple[str, ...] = ()
        #: When the room was joined again while messages were held (``resend``'s clock).
        self._back_at: float | None = None
        #: Held messages sent after a reconnect -> who they were meant for when typed.
        self._resent: dict[str, tuple[str, ...]] = {}

    def hold(self, text: str, to: list[str] | None, present: list[str]) -> tuple[str, ev.Warning]:
        """Keep a message typed while reconnecting; its id and the notice for the user.

        ``present``: who is in the room as far as we last knew (a room message
        was meant for them). Raises ``SendError`` when it cannot be held.
        """
        if not text.strip():
            raise SendError("empty message")
        intended = tuple(dict.fromkeys(to)) if to is not None else tuple(present)
        msg_id = secrets.token_hex(8)
        if not self.held.add(HeldMessage(msg_id, text, tuple(to) if to is not None else None, intended)):
            raise SendError(
                f"not connected to the relay, and {self.held.limit} messages are already waiting to be sent"
            )
        notice = ev.Warning(
            kind=WarningKind.MESSAGE_HELD, detail=f"not connected: message {msg_id} will be sent after reconnecting"
        )
        return msg_id, notice

    def sent(self, msg_id: str, now: float) -> None:
        self.acks.sent(msg_id, now)

    def delivered(self, delivery: ev.Delivery) -> ev.Delivery:
        """The session's report for one message, completed with who a held message was typed for."""
        self.acks.settled(delivery.msg_id)
        intended = self._resent.pop(delivery.msg_id, ())
        # A held room message goes to whoever is back when it is sent;
        # anyone it was typed for who is not is reported missing too.
        absent = tuple(n for n in intended if n not in delivery.delivered and n not in delivery.missing)
        if absent:
            return dataclasses.replace(delivery, missing=(*delivery.missing, *absent))
        return delivery

    def overdue(
        self, now: float, describe: Callable[[str], str] = lambda msg_id: f"message {msg_id}"
    ) -> list[ev.Event]:
        """A warning for each message whose ack is later than the timeout (each said once).

        ``describe`` names a message in the sender's words (``ClientSession.describe``).
        """
        name = describe if describe is not None else (lambda msg_id: f"message {msg_id}")
        return [
            ev.Warning(
                kind=WarningKind.DELIVERY_UNKNOWN,
                detail=f"{name(msg_id)}: no delivery report from the relay after {self.acks.timeout:g} s",
            )
            for msg_id in self.acks.overdue(now)
        ]

    def session_ended(self, present: list[str]) -> None:
        """The session reports what was unacknowledged itself; stop watching it.

        ``present``: who was in the room when it ended, whom a line typed
        before the next join is meant for (the new session knows nobody yet).
        """
        self.acks.clear()
        self.last_present = tuple(present) or self.last_present
        self._back_at = None

    @property
    def waiting(self) -> bool:
        """Messages are held: a new one queues behind them, so the conversation keeps its order."""
        return bool(self.held)

    def resend(self, send: SendFunction, now: float, present: Collection[str]) -> list[ev.Event]:
        """After a (re)join, and at each join and tick after it: send what was typed meanwhile, in order.

        A held message waits until everyone it was typed for is back
        (``present``), for at most ``PRESENCE_WAIT`` after the rejoin: after a
        relay restart every member reconnects on its own backoff, and a line
        sent to whoever happened to be back first would miss the others. After
        that it goes to whoever is there, and the others are reported as not
        delivered. What cannot be sealed at all is reported as not delivered.
        """
        if self._back_at is None:
            self._back_at = now
        patient = now - self._back_at < PRESENCE_WAIT
        out: list[ev.Event] = []
        held = self.held.take_all()
        for index, message in enumerate(held):
            if patient and not set(message.intended) <= set(present):
                for later in held[index:]:  # this one and all after it wait, in order
                    self.held.add(later)
                break
            to = list(message.to) if message.to is not None else None
            try:
                msg_id = send(message.text, to, message.msg_id)
            except SendError as exc:
                detail = f"message {message.msg_id} could not be sent after reconnecting: {exc}"
                out += _not_delivered(message, detail)
                continue
            self.acks.sent(msg_id, now)
            self._resent[msg_id] = message.intended
        return out

    def give_up(self, reason: str) -> list[ev.Event]:
        """No more connections: every held message is reported as never sent."""
        out: list[ev.Event] = []
        for message in self.held.take_all():
            out += _not_delivered(message, f"message {message.msg_id} was never sent: {reason}")
        return out


def _not_delivered(message: HeldMessage, detail: str) -> list[ev.Event]:
    return [
        ev.Warning(kind=WarningKind.NOT_SENT, detail=detail),
        ev.Delivery(msg_id=message.msg_id, delivered=(), missing=message.intended),
    ]
