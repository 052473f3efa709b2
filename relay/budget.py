"""One memory budget for everything the relay buffers: input not yet routed, output not yet sent.

Per connection the relay already bounds what it holds (one frame being
read, ``--outbox-bytes`` queued), but clients x max frame is gigabytes; a
burst of senders once held 3.7-5.4 GB in a load test. So the bytes in every
connection's read buffer and outbox are also counted against one total,
``--memory-budget``:

- at or past the total, the relay stops reading new input (from everyone)
  until outboxes drain; nothing is dropped, senders are slowed by TCP;
- bytes of unfinished frames have their own share, ``--max-partial-bytes``:
  past it the connections holding the largest unfinished frames are cut
  (a frame that never completes would otherwise pin memory, and stopping
  reads could not free it).

Counting must cost the hot path next to nothing, so each I/O thread keeps
its own ``Meter`` (only that thread writes it) and the total is the sum,
read when a connection becomes readable. Threads that are not I/O threads
(the acceptor, ``stop``) share one meter under a lock.
"""

from __future__ import annotations

import threading

DEFAULT_MEMORY_BUDGET = 512 * 1024 * 1024
DEFAULT_MAX_PARTIAL_BYTES = 128 * 1024 * 1024


class Meter:
    """Bytes one thread has added to (or taken from) read buffers and outboxes."""

    __slots__ = ("inbound", "outbound")

    def __init__(self) -> None:
        self.inbound = 0
        self.outbound = 0


class LockedMeter(Meter):
    """The meter of threads that are not I/O threads: several may write it."""

    __slots__ = ("lock",)

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()


class MemoryBudget:
    def __init__(self, total: int = DEFAULT_MEMORY_BUDGET, partial: int = DEFAULT_MAX_PARTIAL_BYTES) -> None:
        if total <= 0 or partial <= 0:
            raise ValueError("memory budgets must be positive")
        self.total = total
        self.partial = min(partial, total)
        self.shared = LockedMeter()
        self._meters: list[Meter] = [self.shared]
        self._lock = threading.Lock()

    def meter(self) -> Meter:
        """A new meter for one I/O thread."""
        meter = Meter()
        with self._lock:
            self._meters = [*self._meters, meter]
        return meter

    @property
    def inbound(self) -> int:
        return sum(m.inbound for m in self._meters)

    @property
    def outbound(self) -> int:
        return sum(m.outbound for m in self._meters)

    @property
    def used(self) -> int:
        return sum(m.inbound + m.outbound for m in self._meters)

    def full(self) -> bool:
        """True when no new input should be read."""
        # Asked before every read: a plain loop, not ``used``'s generator (a third of the cost).
        used = 0
        for meter in self._meters:
            used += meter.inbound + meter.outbound
        return used >= self.total

    def partial_over(self, partial_bytes: int) -> int:
        """Bytes of unfinished frames past their share (0 when within it)."""
        return max(0, partial_bytes - self.partial)
