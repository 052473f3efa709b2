"""relay_load's schedules: by default every generator starts at once (a burst of one message
each); with ``--stagger`` the step's messages, all generators together, are evenly spaced."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from benchmarks.relay_load import step_starts

T0 = 1_000_000_000


def _sends(starts: list[int], rate_msgs: float, seconds: float) -> list[int]:
    """Every message's due time, as each generator's loop schedules it (its share of the rate)."""
    workers = len(starts)
    interval = 1e9 * workers / rate_msgs
    total = int(seconds * 1e9 / interval)
    return sorted(start + int(k * interval) for start in starts for k in range(total))


@given(workers=st.integers(2, 4), rate=st.floats(1.0, 400.0))
def test_staggered_schedules_are_evenly_spaced(workers: int, rate: float) -> None:
    seconds = 2.0
    starts = step_starts(T0, workers, rate, seconds, stagger=True)
    assert starts[0] == T0 and all(start - T0 <= seconds * 1e9 / 2 for start in starts)
    sends = _sends(starts, rate, seconds)
    if 1e9 / rate <= seconds * 1e9 / (2 * (workers - 1)):
        gaps = {b - a for a, b in itertools.pairwise(sends)}
        assert max(gaps) - min(gaps) <= workers, "one message every 1 / rate (to the nanosecond's rounding)"


@given(workers=st.integers(1, 4), rate=st.floats(1.0, 400.0))
def test_by_default_every_generator_starts_at_once(workers: int, rate: float) -> None:
    assert step_starts(T0, workers, rate, 2.0, stagger=False) == [T0] * workers
