"""Our ``send`` frames, paced under the relay's flood allowance (pure; time is passed in).

The relay lets a member send a burst of 20 frames, then 10 a second; past
that it stops reading the member (fake lag), and a member kept throttled for
24 s is cut. Typing never comes near that, but three things send many frames
at once: the lines held through a reconnect (up to 100), the copies a
recipient never confirmed, resent when it comes back, and a pasted block. So
every ``send`` goes through one FIFO that lets ``PACE_BURST`` out at once and
then ``PACE_PER_SECOND``, below the relay's numbers because receipts, mail
acks and prekey frames share the allowance. One queue for all sends keeps
their order: a recipient sees resent copies before anything newer from us,
so its counters never run backwards.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")

#: Sends that go at once after a quiet spell (the relay's burst is 20).
PACE_BURST = 10
#: Sends per second after that (the relay refills 10 a second).
PACE_PER_SECOND = 8.0


class SendPacer(Generic[T]):
    """A FIFO of what is to be sent (the caller's items) and the token bucket that lets them out."""

    def __init__(self, burst: int = PACE_BURST, per_second: float = PACE_PER_SECOND) -> None:
        self.burst = burst
        self.per_second = per_second
        self._tokens = float(burst)
        self._at: float | None = None
        self._queue: deque[T] = deque()

    def __len__(self) -> int:
        return len(self._queue)

    def queue(self, item: T) -> None:
        self._queue.append(item)

    def take(self, now: float) -> list[T]:
        """The items allowed out at ``now``, in order; the rest wait for a later call."""
        if self._at is not None and now > self._at:  # a clock that went back refills nothing
            self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.per_second)
        self._at = now if self._at is None else max(self._at, now)
        out: list[T] = []
        while self._queue and self._tokens >= 1:
            out.append(self._queue.popleft())
            self._tokens -= 1
        return out

    def take_unsent(self) -> list[T]:
        """The session ended: what never went out."""
        items = list(self._queue)
        self._queue.clear()
        return items
