"""When a quiet connection is probed, and when it is given up: no clock of its own.

After ``ping_after`` seconds without a complete frame from a member the relay
sends a ``keepalive``; after ``drop_after`` seconds with no sign of life it
closes the connection (a peer that vanished without a FIN, or a client that
never answers, must not hold a slot and a name forever).

Two things are signs of life:

- a complete frame (``heard``). Single bytes of an unfinished frame are not:
  a client dribbling a byte a second must not keep a 1 MiB buffer pinned
  past the idle timeout;
- the member's socket taking bytes the relay sends it (``draining``). A
  member that is behind on a long backlog has its keepalive queued behind
  deliveries, and cannot answer what it has not read yet; while its socket
  drains it is alive. One whose socket stops taking bytes is cut
  by the send timeout or the outbox budget instead.
"""

from __future__ import annotations

import enum

DEFAULT_IDLE_PING = 60.0
DEFAULT_IDLE_TIMEOUT = 120.0


class IdleAction(enum.Enum):
    WAIT = "wait"
    PING = "ping"
    DROP = "drop"


class IdleWatch:
    __slots__ = ("_alive", "_heard", "_pinged", "drop_after", "ping_after")

    def __init__(self, ping_after: float, drop_after: float, now: float) -> None:
        if not 0 < ping_after < drop_after:
            raise ValueError("need 0 < ping_after < drop_after")
        self.ping_after = ping_after
        self.drop_after = drop_after
        self._heard = now
        self._alive = now
        self._pinged = False

    def heard(self, now: float) -> None:
        """A complete frame arrived."""
        self._heard = now
        self._alive = max(self._alive, now)
        self._pinged = False

    def draining(self, when: float) -> None:
        """The member's socket took bytes at ``when``: alive, though maybe not answering yet."""
        self._alive = max(self._alive, when)

    def due(self, now: float) -> tuple[IdleAction, float]:
        """What to do at ``now``, and how long to wait before asking again."""
        if now - self._alive >= self.drop_after:
            return IdleAction.DROP, 0.0
        until_drop = self.drop_after - (now - self._alive)
        if not self._pinged and now - self._heard >= self.ping_after:
            self._pinged = True
            return IdleAction.PING, until_drop
        if self._pinged:
            return IdleAction.WAIT, until_drop
        return IdleAction.WAIT, min(until_drop, self.ping_after - (now - self._heard))
