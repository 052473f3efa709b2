"""The client's wall clock: seconds since the epoch, for everything that outlives a process.

Messages carry it signed (``sent_at``), prekeys rotate by it, and waiting
mail is refused by its age. The core takes ``now`` as an argument; this is
where the edges (the connection, the terminal's and window's sessions) read
it, so it is read in one place. Tests that start real programs days later
run them with the process's clock shifted (``tests/helpers/later_clock.py``),
so nothing in the shipped client moves the time.
"""

from __future__ import annotations

import time


def wall_clock() -> float:
    """``time.time()``: what this machine says the time is."""
    return time.time()
