"""Smoke test: ``benchmarks.delivery_faults`` runs its relay-killed run end to end, small.

Real programs: a relay process killed with SIGKILL and started again on its
port and data dir while bob's process is stopped, then both clients
reconnecting by themselves. With a short backlog little or nothing is lost on
the relay, so this does not measure the fix (the full run does, see
docs/performance.md); it checks that the harness works and that, whatever
happened, every message alice sent was shown by bob or reported to her, and
no receipt came for one bob did not show. Counts, not times.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.delivery_faults import Fault, run

pytestmark = pytest.mark.bench


def test_a_relay_killed_under_a_backlog_loses_nothing_unsaid(tmp_path: Path) -> None:
    outcome = run(Fault.KILL, 20, tmp_path)
    assert outcome.sent == 20
    assert outcome.receipted_not_shown == 0, outcome
    assert outcome.lost_unsaid == 0 and outcome.lost_after_queued == 0, outcome
    assert outcome.shown_twice == 0, outcome
