"""A connection's bounded outgoing queue, drained by its writer thread.

Producers (any reader thread routing a message) call ``offer``, which never
blocks: when the queued bytes would pass the budget, the offer fails and the
connection is marked as a slow consumer, to be evicted. One slow reader can
therefore never stall the sender or the rest of the room.

The writer takes everything queued at once (``take_all``) and hands it to one
``sendall``: under load a system call and a thread wake-up then carry many
frames instead of one each, which is most of what a relay's CPU goes to.
The byte budget is the same either way.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

DEFAULT_OUTBOX_BYTES = 1024 * 1024
#: Most bytes one ``take_all`` hands out: what is in flight in the writer's
#: ``sendall`` is no longer counted against the budget, so this bounds how far
#: past ``max_bytes`` one connection's memory can go.
MAX_BATCH_BYTES = 256 * 1024


class Outbox:
    def __init__(self, max_bytes: int = DEFAULT_OUTBOX_BYTES, on_overflow: Callable[[], None] | None = None) -> None:
        self.max_bytes = max_bytes
        self._queue: deque[bytes] = deque()
        self._queued_bytes = 0
        self._cond = threading.Condition(threading.Lock())
        self._closed = False
        self._on_overflow = on_overflow
        self._writer_waiting = False
        self.close_reason: str | None = None

    @property
    def queued_bytes(self) -> int:
        return self._queued_bytes

    def offer(self, data: bytes) -> bool:
        """Queue ``data`` unless closed or over budget. Never blocks on the network.

        A frame is always accepted into an empty outbox, so one frame larger
        than the budget (up to the frame limit) cannot by itself evict anyone.
        """
        overflowed = False
        with self._cond:
            if self._closed:
                return False
            if self._queue and self._queued_bytes + len(data) > self.max_bytes:
                self._closed = True
                self.close_reason = "slow_consumer"
                self._queue.clear()
                self._queued_bytes = 0
                overflowed = True
            else:
                self._queue.append(data)
                self._queued_bytes += len(data)
            if self._writer_waiting:
                self._cond.notify()
        if overflowed and self._on_overflow is not None:
            self._on_overflow()
        return not overflowed

    def close(self, reason: str | None = None) -> None:
        """Stop accepting; the writer still drains what is queued, then sees ``None``."""
        with self._cond:
            if not self._closed:
                self._closed = True
                self.close_reason = reason
            self._cond.notify_all()

    def abort(self, reason: str) -> None:
        """Stop at once and drop whatever is queued."""
        with self._cond:
            self._closed = True
            self.close_reason = self.close_reason or reason
            self._queue.clear()
            self._queued_bytes = 0
            self._cond.notify_all()

    def take(self) -> bytes | None:
        """Block until there is data; the oldest frame, or ``None`` once closed and drained."""
        with self._cond:
            self._wait_for_data()
            if not self._queue:
                return None
            data = self._queue.popleft()
            self._queued_bytes -= len(data)
            return data

    def take_all(self) -> bytes | None:
        """Block until there is data; what is queued, in order, as one block.

        At least one frame and at most about ``MAX_BATCH_BYTES`` (whole frames).
        ``None`` once closed and drained. The join happens outside the lock.
        """
        with self._cond:
            self._wait_for_data()
            if not self._queue:
                return None
            if self._queued_bytes <= MAX_BATCH_BYTES:
                frames, self._queue = self._queue, deque()
                self._queued_bytes = 0
            else:
                frames = deque()
                taken = 0
                while self._queue and taken < MAX_BATCH_BYTES:
                    frame = self._queue.popleft()
                    frames.append(frame)
                    taken += len(frame)
                self._queued_bytes -= taken
        return frames[0] if len(frames) == 1 else b"".join(frames)

    def _wait_for_data(self) -> None:
        # Producers notify only while a writer waits: a busy writer costs them nothing.
        while not self._queue and not self._closed:
            self._writer_waiting = True
            try:
                self._cond.wait()
            finally:
                self._writer_waiting = False
