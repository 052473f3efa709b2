"""When a quiet connection is probed, and when it is given up: no clock of its own.

After ``ping_after`` seconds without a byte from a member the relay sends a
``keepalive``; after ``drop_after`` seconds without one it closes the
connection (a peer that vanished without a FIN, or a client that never
answers, must not hold a slot and a name forever). Any bytes heard reset both.
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
    __slots__ = ("_heard", "_pinged", "drop_after", "ping_after")

    def __init__(self, ping_after: float, drop_after: float, now: float) -> None:
        if not 0 < ping_after < drop_after:
            raise ValueError("need 0 < ping_after < drop_after")
        self.ping_after = ping_after
        self.drop_after = drop_after
        self._heard = now
        self._pinged = False

    def heard(self, now: float) -> None:
        self._heard = now
        self._pinged = False

    def due(self, now: float) -> tuple[IdleAction, float]:
        """What to do at ``now``, and how long to wait before asking again."""
        silent = now - self._heard
        if silent >= self.drop_after:
            return IdleAction.DROP, 0.0
        if not self._pinged and silent >= self.ping_after:
            self._pinged = True
            return IdleAction.PING, self.drop_after - silent
        if self._pinged:
            return IdleAction.WAIT, self.drop_after - silent
        return IdleAction.WAIT, self.ping_after - silent
