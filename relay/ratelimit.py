"""Per-connection flood control: a token bucket that paces a sender, with no clock of its own.

Each frame a member sends costs one token; the bucket holds ``burst`` tokens
and refills at ``rate`` per second. A frame that finds no token is not
dropped: the relay stops reading that member's socket until a token is back
(the "fake lag" of ircd and ergo), so the sender's own TCP buffers fill and
its writes slow down. An honest client that typed through an outage, or a
reconnect that flushes a hundred held messages, is delayed by a few seconds
and loses nothing.

Only sustained abuse costs the connection: a member that stays throttled
for ``grace`` seconds without a break is disconnected. A break is the relay
catching up with it (``caught_up``: every frame it sent handled, nothing
more waiting on its socket) or a full bucket. A full bucket alone is not
enough: a client that sends at the rate, or sends a step and waits for the
answers before the next, spends each token as it comes, so its bucket never
fills again once it was delayed, yet it is never further behind than one
step. An honest backlog is through in a few seconds; a flood never lets the
relay catch up.

Time is passed in (``now``, monotonic seconds), so tests drive it.
"""

from __future__ import annotations

import enum

DEFAULT_RATE_BURST = 20
DEFAULT_RATE_PER_SECOND = 10.0
#: Seconds a member may stay throttled without a break before it is cut.
#: Twelve times the burst at the default rate: a reconnect flushing 100
#: held messages is throttled for 8 s, a relay resumed after a pause of a
#: minute for less than that.
DEFAULT_RATE_GRACE = 24.0


#: Refill arithmetic in floats: a token 1e-12 short of whole still counts.
_EPSILON = 1e-9


class Verdict(enum.Enum):
    ALLOW = "allow"
    DELAY = "delay"
    DISCONNECT = "disconnect"


class RateLimiter:
    """Token bucket for one connection. ``rate <= 0`` turns limiting off."""

    __slots__ = ("_last", "_throttled_since", "_tokens", "burst", "grace", "rate")

    def __init__(self, burst: int, rate: float, now: float, grace: float = DEFAULT_RATE_GRACE) -> None:
        if burst < 1:
            raise ValueError("burst must be at least 1")
        if grace <= 0:
            raise ValueError("grace must be positive")
        self.burst = burst
        self.rate = rate
        self.grace = grace
        self._tokens = float(burst)
        self._last = now
        self._throttled_since: float | None = None

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    @property
    def throttled(self) -> bool:
        return self._throttled_since is not None

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._last)  # a clock step backwards refills nothing
        self._last = max(self._last, now)
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
        if self._tokens >= self.burst:
            self._throttled_since = None  # a full bucket: whatever was held is through

    def allowance(self, now: float) -> int:
        """How many frames may be handled at ``now`` (0: the next one must wait)."""
        if not self.enabled:
            return 1 << 30
        self._refill(now)
        return int(self._tokens + _EPSILON)

    def spend(self, frames: int) -> None:
        """``frames`` (at most the allowance just asked for) were handled."""
        if self.enabled:
            self._tokens -= frames

    def delay(self, now: float) -> float:
        """Seconds from ``now`` until the next token."""
        if not self.enabled:
            return 0.0
        self._refill(now)
        return max(0.0, (1.0 - self._tokens) / self.rate)

    def caught_up(self) -> None:
        """Every frame the member sent has been handled and none waits: a throttled spell is over."""
        self._throttled_since = None

    def hold(self, now: float) -> Verdict:
        """A frame is waiting with no token: ``DELAY`` it, or ``DISCONNECT`` after ``grace`` of this."""
        if not self.enabled:
            return Verdict.ALLOW
        if self._throttled_since is None:
            self._throttled_since = now
        elif now - self._throttled_since >= self.grace:
            return Verdict.DISCONNECT
        return Verdict.DELAY

    def take(self, now: float) -> Verdict:
        """Spend one token for one frame arriving at ``now``, or say it must wait."""
        if self.allowance(now) >= 1:
            self.spend(1)
            return Verdict.ALLOW
        return self.hold(now)
