"""Reconnect policy and delivery bookkeeping for the connection layer, with no I/O.

``RelayConnection`` (``connection.py``) owns the socket and the threads; the
decisions it makes about time live here, as small objects that take ``now``
and a random source as arguments, so tests drive them without sleeping:

- ``Backoff``: how long to wait before the next attempt (1 s doubling to
  30 s, with jitter so a room that lost its relay does not come back in one
  synchronized wave);
- ``retry_after_refusal``: which refusals are worth another attempt;
- ``AckWatch``: which sent messages have waited too long for their ``ack``;
- ``HeldMessages``: what the user typed while no connection was up (bounded).
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

BACKOFF_INITIAL = 1.0
BACKOFF_CAP = 30.0
#: A message whose ``ack`` has not come after this long is reported as of unknown delivery.
ACK_TIMEOUT = 30.0
#: Messages typed while disconnected, kept to send after the reconnect.
MAX_HELD = 100
#: Refusals that another attempt cannot fix: our name or our software is the problem.
PERMANENT_CODES = frozenset({"bad_name", "bad_version", "bad_proof", "bad_cert"})
#: ``name_taken`` right after a reconnect is usually our own old connection,
#: which the relay drops within its idle timeout (120 s): retry this often
#: (1+2+4+8+16+30+30+30 s ≈ 2 min) before believing someone else has the name.
NAME_TAKEN_RETRIES = 8


class Backoff:
    """Exponential backoff with "equal jitter": attempt n waits between d/2 and d, d = min(cap, initial·2ⁿ⁻¹)."""

    def __init__(
        self,
        initial: float = BACKOFF_INITIAL,
        cap: float = BACKOFF_CAP,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if not 0 < initial <= cap:
            raise ValueError("need 0 < initial <= cap")
        self.initial = initial
        self.cap = cap
        self._rng = rng
        self.attempt = 0

    def next_delay(self) -> float:
        self.attempt += 1
        ceiling = min(self.cap, self.initial * 2 ** min(self.attempt - 1, 62))
        return ceiling / 2 + self._rng() * ceiling / 2

    def reset(self) -> None:
        """After a successful join: the next outage starts from the shortest wait again."""
        self.attempt = 0


def retry_after_refusal(code: str | None, *, ever_joined: bool, name_taken_seen: int) -> bool:
    """Is a connection that ended with ``code`` worth another attempt?

    ``None`` (the connection was lost), ``full``, ``too_many_connections``,
    timeouts, ``rate_limited`` and protocol errors from a misbehaving relay
    are; an announced ``shutdown`` is not (the operator stopped the relay);
    nor is a refusal of our name or keys, except ``name_taken`` after we
    were already in the room, for a while (see ``NAME_TAKEN_RETRIES``).
    """
    if code == "shutdown" or code in PERMANENT_CODES:
        return False
    if code == "name_taken":
        return ever_joined and name_taken_seen <= NAME_TAKEN_RETRIES
    return True


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
