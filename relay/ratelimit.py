"""Per-connection flood control: a token bucket over frames, with no clock of its own.

Each frame a member sends costs one token; the bucket holds ``burst`` tokens
and refills at ``rate`` per second. A frame with no token is refused (the
relay answers ``error{code: "rate_limited"}`` and drops it). Refusals are
counted in a second bucket that drains at the same rate: a client that keeps
sending after being refused, more than ``burst`` frames beyond what it was
allowed, is disconnected. A brief burst over the limit costs a few frames;
only a sustained flood costs the connection.

Time is passed in (``now``, monotonic seconds), so tests drive it.
"""

from __future__ import annotations

import enum

DEFAULT_RATE_BURST = 20
DEFAULT_RATE_PER_SECOND = 10.0


class Verdict(enum.Enum):
    ALLOW = "allow"
    REFUSE = "refuse"
    DISCONNECT = "disconnect"


class RateLimiter:
    """Token bucket for one connection. ``rate <= 0`` turns limiting off."""

    __slots__ = ("_excess", "_last", "_tokens", "burst", "rate")

    def __init__(self, burst: int, rate: float, now: float) -> None:
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.burst = burst
        self.rate = rate
        self._tokens = float(burst)
        self._excess = 0.0
        self._last = now

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, now: float) -> Verdict:
        """Spend a token for one frame arriving at ``now``."""
        if not self.enabled:
            return Verdict.ALLOW
        elapsed = max(0.0, now - self._last)  # a clock step backwards refills nothing
        self._last = now
        refill = elapsed * self.rate
        self._tokens = min(float(self.burst), self._tokens + refill)
        self._excess = max(0.0, self._excess - refill)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return Verdict.ALLOW
        self._excess += 1.0
        if self._excess > self.burst:
            return Verdict.DISCONNECT
        return Verdict.REFUSE
