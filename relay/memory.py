"""Giving the C allocator's free memory back to the system after a burst.

Why this exists (measured in session 8, docs/performance.md "Session 8: idle
members"): during 10,000 joins the I/O thread's glibc arena grows to about
267 MB (welcomes of up to 1.7 MB in flight for each join in progress, and the
unsent tails of them). Once they are sent that memory is free, but glibc gives
a thread arena back only from the top of its newest 64 MiB heap: one live
allocation made late in the burst (a dict or list that grew, a read buffer)
above the freed space strands everything below it. So the relay kept 0, 63,
131 or 197 MB of free memory resident depending on where such an allocation
happened to land: the bimodal 6.2 / 11.2 / 17.9 / 24.2 KiB per idle member.

``malloc_trim(0)`` releases the free pages inside every arena (glibc 2.8 and
later), wherever they are. It costs one walk of the free chunks under each
arena's lock (11 ms of CPU for 197 MB free after 10,000 joins), so the relay
does not call it on a timer regardless: a watcher thread reads the process's
resident size twice a second and trims only when the part of it that the
bytes the relay is buffering (``MemoryBudget.used``) do not explain has grown
by ``TRIM_GROWTH`` since the last trim: memory the allocator holds but nobody
uses. Under a steady load RSS is flat and it never fires. (It first compared
the whole backlog with the growth, and a client that kept 50 MiB buffered on
purpose stopped every trim: review-s8-idle finding 2.) A trim holds each
arena's lock while it walks it, so a thread that allocates meanwhile waits:
4.5-25 ms in the review's probe on a fragmented 300 MB heap, at most twice a
second. ``--no-memory-trim`` turns it off.

Where there is no ``malloc_trim`` (musl, macOS) or no ``/proc/self/statm``,
the watcher does not start: memory then behaves as before.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from collections.abc import Callable

log = logging.getLogger("susurro.relay")

#: Growth of the resident size since the last trim (or start) before the watcher looks closer.
#: Less would trim after ordinary growth of live objects (4-5 KiB per member); this leaves at
#: most 0.8 KiB per member untrimmed at 10,000 members.
TRIM_GROWTH = 8 * 1024 * 1024
#: How often the watcher reads the resident size (one read of /proc/self/statm).
TRIM_INTERVAL = 0.5

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim`` from the process's own C library, or None where there is none."""
    try:
        libc = ctypes.CDLL(None)  # the symbols already loaded: the C library Python runs on
    except OSError:
        return None
    trim = getattr(libc, "malloc_trim", None)
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


_TRIM = _malloc_trim()


def resident_bytes() -> int | None:
    """This process's resident set size, or None where ``/proc`` is not there."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


def release_free_memory() -> bool:
    """Ask the C allocator to give its free pages back; False where it cannot."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True


class TrimRule:
    """When to trim, from the resident size and the bytes the relay is buffering (pure)."""

    __slots__ = ("baseline", "growth")

    def __init__(self, growth: int = TRIM_GROWTH) -> None:
        self.growth = growth
        #: The resident size less the buffered bytes after the last trim, or the lowest seen since.
        self.baseline: int | None = None

    def due(self, resident: int, buffered: int) -> bool:
        # What the buffers do not explain: a trim cannot give back bytes still queued, and
        # bytes queued (however many) must not stop it giving back the rest.
        unexplained = resident - buffered
        if self.baseline is None or unexplained < self.baseline:
            self.baseline = unexplained
            return False
        return unexplained - self.baseline >= self.growth

    def trimmed(self, resident: int, buffered: int = 0) -> None:
        self.baseline = resident - buffered


class MemoryWatcher:
    """A thread that applies ``TrimRule`` every ``TRIM_INTERVAL`` until stopped."""

    def __init__(self, buffered: Callable[[], int], rule: TrimRule | None = None) -> None:
        self.rule = rule or TrimRule()
        self._buffered = buffered
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Trims done, and the resident bytes they gave back (for tests and the log).
        self.trims = 0
        self.released = 0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def available(self) -> bool:
        return _TRIM is not None and resident_bytes() is not None

    def start(self) -> None:
        if not self.available:
            log.info("memory trim unavailable here (no malloc_trim or /proc): free memory stays with the allocator")
            return
        self._thread = threading.Thread(target=self._run, name="relay-memory", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)

    def check(self) -> bool:
        """One look: trim if the rule says so; whether it trimmed."""
        resident = resident_bytes()
        if resident is None or not self.rule.due(resident, self._buffered()):
            return False
        release_free_memory()
        after = resident_bytes() or resident
        self.rule.trimmed(after, self._buffered())
        self.trims += 1
        self.released += max(0, resident - after)
        log.info("memory trim resident_kib=%d->%d", resident // 1024, after // 1024)
        return True

    def _run(self) -> None:
        while not self._stop.wait(TRIM_INTERVAL):
            try:
                self.check()
            except Exception:  # a bug here must not take the relay down: memory just stays
                log.exception("memory trim failed; no more trims")
                return
