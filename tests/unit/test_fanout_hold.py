"""The I/O loop's decision to flush a pass's corked writes, and the hold of a large fan-out.

``flush_due`` is the whole rule: the loop calls it after every pass with a
dirty batch, and flushes when it says so (or when stopping).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from susurro.relay.cli import build_parser
from susurro.relay.config import DEFAULT_FANOUT_HOLD_MS, MAX_FANOUT_HOLD_MS
from susurro.relay.loop import FANOUT_HOLD_OUTBOXES, flush_due

CORK_END = 10.0
HOLD_END = 10.009

times = st.floats(min_value=0.0, max_value=20.0, allow_nan=False)
counts = st.integers(min_value=0, max_value=100_000)


def test_nothing_leaves_before_the_cork_is_over() -> None:
    assert not flush_due(CORK_END - 0.0005, CORK_END, HOLD_END, 0, 1)
    assert not flush_due(CORK_END - 0.0005, CORK_END, HOLD_END, 5, FANOUT_HOLD_OUTBOXES)


def test_a_small_pass_leaves_when_the_cork_is_over_even_while_input_arrives() -> None:
    assert flush_due(CORK_END, CORK_END, HOLD_END, 3, FANOUT_HOLD_OUTBOXES - 1)


def test_a_large_pass_that_read_more_input_is_held_and_one_that_read_none_leaves() -> None:
    assert not flush_due(CORK_END + 0.002, CORK_END, HOLD_END, 1, FANOUT_HOLD_OUTBOXES)
    assert flush_due(CORK_END + 0.002, CORK_END, HOLD_END, 0, FANOUT_HOLD_OUTBOXES)


@given(now=times, reads=counts, outboxes=counts)
def test_past_the_cork_and_the_hold_a_pass_always_leaves(now: float, reads: int, outboxes: int) -> None:
    # The bound: however much keeps arriving, a copy waits no longer than the hold.
    if now >= HOLD_END:
        assert flush_due(now, CORK_END, HOLD_END, reads, outboxes)


@given(now=times, reads=counts, outboxes=counts)
def test_without_a_hold_the_rule_is_the_plain_cork(now: float, reads: int, outboxes: int) -> None:
    # --fanout-hold-ms 0: the hold ends where the cork began.
    assert flush_due(now, CORK_END, CORK_END - 0.001, reads, outboxes) == (now >= CORK_END)


def test_the_hold_is_a_bounded_relay_flag() -> None:
    parser = build_parser()
    assert parser.parse_args([]).fanout_hold_ms == DEFAULT_FANOUT_HOLD_MS
    assert parser.parse_args(["--fanout-hold-ms", "0"]).fanout_hold_ms == 0
    with pytest.raises(SystemExit):
        parser.parse_args(["--fanout-hold-ms", str(MAX_FANOUT_HOLD_MS + 1)])
