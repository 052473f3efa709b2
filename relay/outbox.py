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
    """Bounded queue of frames for one connection, with an optional direct path.

    ``send_now``, when given, is a non-blocking send on the connection's
    socket (returns the bytes taken, raises ``BlockingIOError`` when the
    kernel buffer is full). A producer that finds the outbox idle (nothing
    queued, nobody writing) hands its frame to the kernel itself, so the
    common case costs no thread wake-up at all; whatever the kernel does not
    take is queued for the writer thread, in order. The writer and a direct
    sender never write at the same time, so frames never interleave.
    """

    def __init__(
        self,
        max_bytes: int = DEFAULT_OUTBOX_BYTES,
        on_overflow: Callable[[], None] | None = None,
        send_now: Callable[[bytes], int] | None = None,
    ) -> None:
        self.max_bytes = max_bytes
        self._queue: deque[bytes] = deque()
        self._queued_bytes = 0
        self._cond = threading.Condition(threading.Lock())
        self._closed = False
        self._aborted = False
        self._on_overflow = on_overflow
        self._send_now = send_now
        self._writer_waiting = False
        self._writer_busy = False  # between handing out a batch and the next take
        self._direct_busy = False  # a producer is in send_now
        self.close_reason: str | None = None

    @property
    def queued_bytes(self) -> int:
        return self._queued_bytes

    def offer(self, data: bytes) -> bool:
        """Queue (or send) ``data`` unless closed or over budget. Never blocks on the network.

        A frame is always accepted into an empty outbox, so one frame larger
        than the budget (up to the frame limit) cannot by itself evict anyone.
        """
        overflowed = direct = False
        with self._cond:
            if self._closed:
                return False
            if self._queue and self._queued_bytes + len(data) > self.max_bytes:
                self._give_up("slow_consumer")
                overflowed = True
            elif self._send_now is not None and not self._queue and not self._writer_busy and not self._direct_busy:
                self._direct_busy = direct = True
            else:
                self._queue.append(data)
                self._queued_bytes += len(data)
                if self._writer_waiting and not self._direct_busy:
                    self._cond.notify()
        if overflowed:
            if self._on_overflow is not None:
                self._on_overflow()
            return False
        if direct:
            self._send_direct(data)
        return True

    def _send_direct(self, data: bytes) -> None:
        assert self._send_now is not None
        failed = False
        try:
            sent = self._send_now(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            sent, failed = 0, True
        with self._cond:
            self._direct_busy = False
            if failed:
                self._give_up("write failed")
            elif sent < len(data) and not self._aborted:
                rest = data[sent:]
                self._queue.appendleft(rest)
                self._queued_bytes += len(rest)
            if self._writer_waiting and (self._queue or self._closed):
                self._cond.notify()
        if failed and self._on_overflow is not None:
            self._on_overflow()  # cut the connection: its reader learns at once

    def _give_up(self, reason: str) -> None:
        """Close and drop everything (caller holds the lock)."""
        self._closed = self._aborted = True
        self.close_reason = self.close_reason or reason
        self._queue.clear()
        self._queued_bytes = 0
        self._cond.notify_all()

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
            self._give_up(reason)

    def take_all(self) -> bytes | None:
        """Block until there is data; what is queued, in order, as one block.

        At least one frame and at most about ``MAX_BATCH_BYTES`` (whole frames).
        ``None`` once closed and drained. The join happens outside the lock.
        Until the next call the caller counts as writing: nobody sends directly.
        """
        with self._cond:
            if not self._wait_for_data():
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
            self._writer_busy = True
        return frames[0] if len(frames) == 1 else b"".join(frames)

    def _wait_for_data(self) -> bool:
        """Wait until the writer may take a frame (True) or everything is done (False)."""
        # The previous batch is written: producers may send directly again.
        self._writer_busy = False
        # A direct send in flight goes first (its remainder is queued at the front).
        while self._direct_busy or (not self._queue and not self._closed):
            # Producers notify only while the writer waits: a busy writer costs them nothing.
            self._writer_waiting = True
            try:
                self._cond.wait()
            finally:
                self._writer_waiting = False
        return bool(self._queue)
