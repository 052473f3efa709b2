"""The client's wall clock: seconds since the epoch, for everything that outlives a process.

Messages carry it signed (``sent_at``), prekeys rotate by it, and waiting
mail is refused by its age. ``SUSURRO_CLOCK_OFFSET`` (seconds, may be
negative) moves it, so that tests of real processes can start a client
hours or days later without sleeping; it changes nothing but what this
client believes the time is (a client set wrong only misleads itself and
dates its own messages wrong).
"""

from __future__ import annotations

import os
import time

CLOCK_OFFSET_ENV = "SUSURRO_CLOCK_OFFSET"


def _offset() -> float:
    raw = os.environ.get(CLOCK_OFFSET_ENV, "").strip()
    if not raw:
        return 0.0
    try:
        return float(raw)
    except ValueError:
        raise SystemExit(f"{CLOCK_OFFSET_ENV} must be a number of seconds, not {raw!r}") from None


_OFFSET = _offset()


def wall_clock() -> float:
    """``time.time()``, moved by ``SUSURRO_CLOCK_OFFSET``."""
    return time.time() + _OFFSET
