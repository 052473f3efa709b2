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

#: Sends that go at once after a quiet spell (the relay's burst is 20).
PACE_BURST = 10
#: Sends per second after that (the relay refills 10 a second).
PACE_PER_SECOND = 8.0


class SendPacer:
    def __init__(self, burst: int = PACE_BURST, per_second: float = PACE_PER_SECOND) -> None:
        self.burst = burst
        self.per_second = per_second
        self._tokens = float(burst)
        self._at: float | None = None
        self._queue: deque[tuple[str, bytes]] = deque()

    def __len__(self) -> int:
        return len(self._queue)

    def queue(self, msg_id: str, frame: bytes) -> None:
        self._queue.append((msg_id, frame))

    def take(self, now: float) -> bytes:
        """The frames allowed out at ``now``, in order; the rest wait for a later call."""
        if self._at is not None and now > self._at:  # a clock that went back refills nothing
            self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.per_second)
        self._at = now if self._at is None else max(self._at, now)
        out: list[bytes] = []
        while self._queue and self._tokens >= 1:
            out.append(self._queue.popleft()[1])
            self._tokens -= 1
        return b"".join(out)

    def take_unsent(self) -> list[str]:
        """The session ended: the ids of what never went out (their frames are dropped)."""
        ids = [msg_id for msg_id, _ in self._queue]
        self._queue.clear()
        return ids
