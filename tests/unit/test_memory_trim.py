"""The relay gives the C allocator's stranded free memory back after a burst (relay/memory.py).

After 10,000 joins the I/O thread's glibc arena held 63-195 MB of free memory
the relay no longer used, stranded below a live allocation, which glibc does
not return by itself (docs/performance.md, "Session 8: idle members"). These
tests build that situation on purpose, in a child process so nothing else
allocates meanwhile: a thread frees 48 MiB below a small block it keeps; the
child's resident size stays up until the watcher's check trims it. The amounts
are tens of megabytes against a few pages of noise, and nothing here depends
on time. The rule deciding when to trim is pure and tested on its own.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from susurro.relay.memory import TRIM_GROWTH, TrimRule
from tests.helpers.system import WAIT

MIB = 1024 * 1024

STRAND = r"""
import json, sys, threading
from susurro.relay.memory import MemoryWatcher, resident_bytes

trim = sys.argv[1] == "trim"
kept = []

def strand():
    kept.append(b"w" * 1024)  # this thread's arena exists before the blocks below
    # Freeing a 16 MiB block (mmapped) raises glibc's mmap threshold to 16 MiB, so the
    # 1 MiB blocks after it come from this thread's arena, as a relay's welcomes do.
    big = b"x" * (16 << 20)
    del big
    blocks = [b"y" * (1 << 20) for _ in range(48)]
    kept.append(b"z" * (256 << 10))  # after the blocks and bigger than any earlier free chunk: above them
    blocks.clear()

watcher = MemoryWatcher(lambda: 0)
before = resident_bytes()
watcher.rule.baseline = before
thread = threading.Thread(target=strand)
thread.start()
thread.join()
stranded = resident_bytes()
trimmed = watcher.check() if trim else False
print(json.dumps({"before": before, "stranded": stranded, "after": resident_bytes(),
                  "trimmed": trimmed, "released": watcher.released, "available": watcher.available}))
"""


def strand(mode: str) -> dict[str, int]:
    done = subprocess.run([sys.executable, "-c", STRAND, mode], capture_output=True, text=True, timeout=WAIT * 4)
    assert done.returncode == 0, done.stderr
    result: dict[str, int] = json.loads(done.stdout)
    if not result["available"]:
        pytest.skip("no malloc_trim or /proc here: the watcher does not run")
    return result


def test_freed_memory_stranded_in_a_thread_arena_stays_resident_without_a_trim() -> None:
    # The situation the watcher exists for: glibc keeps the 48 MiB, the relay would too.
    result = strand("keep")
    assert result["stranded"] - result["before"] >= 40 * MIB
    assert result["after"] - result["before"] >= 40 * MIB


def test_the_watcher_gives_stranded_memory_back() -> None:
    result = strand("trim")
    assert result["stranded"] - result["before"] >= 40 * MIB
    assert result["trimmed"]
    assert result["released"] >= 40 * MIB
    assert result["after"] - result["before"] < 8 * MIB


def test_the_first_look_only_sets_the_baseline() -> None:
    rule = TrimRule()
    assert not rule.due(500 * MIB, 0)
    assert rule.baseline == 500 * MIB


@given(
    baseline=st.integers(0, 1 << 34),
    grown=st.integers(0, 1 << 32),
    buffered_before=st.integers(0, 1 << 32),
    buffered=st.integers(0, 1 << 32),
    growth=st.integers(1, 1 << 28),
)
def test_a_trim_is_due_once_what_the_buffers_do_not_explain_has_grown(
    baseline: int, grown: int, buffered_before: int, buffered: int, growth: int
) -> None:
    rule = TrimRule(growth)
    rule.trimmed(baseline, buffered_before)
    resident = baseline + grown
    due = rule.due(resident, buffered)
    unexplained_growth = (resident - buffered) - (baseline - buffered_before)
    assert due == (unexplained_growth >= growth)
    if unexplained_growth < 0:
        assert rule.baseline == resident - buffered  # the low point
    if due:
        rule.trimmed(resident - grown // 2, buffered)
        assert not rule.due(resident - grown // 2, buffered), "the next trim waits for new growth"


def test_a_backlog_held_on_purpose_does_not_stop_a_trim_of_the_rest() -> None:
    """A client can keep bytes buffered in the relay (unfinished frames, slow reads). The first
    rule asked the whole backlog to explain at most a quarter of the growth: 50 MiB held stopped
    the trim of 100 MiB stranded (review-s8-idle finding 2; this test fails with that rule)."""
    rule = TrimRule()
    rule.trimmed(80 * MIB, 0)
    assert rule.due(80 * MIB + 50 * MIB + 100 * MIB, 50 * MIB), "100 MiB stranded beside a 50 MiB backlog"
    rule.trimmed(80 * MIB + 50 * MIB, 50 * MIB)
    assert not rule.due(80 * MIB + 50 * MIB + 1 * MIB, 50 * MIB), "what is left is the backlog itself"
    assert not rule.due(80 * MIB + 90 * MIB, 90 * MIB), "growth the buffers explain is not trimmed"


def test_shrinking_lowers_the_baseline_so_regrowth_counts_from_the_low_point() -> None:
    rule = TrimRule()
    rule.trimmed(200 * MIB, 0)
    assert not rule.due(120 * MIB, 0)  # members left
    assert rule.baseline == 120 * MIB
    assert rule.due(120 * MIB + TRIM_GROWTH, 0)


def test_the_relay_runs_its_watcher_and_stops_it(relay_factory) -> None:  # type: ignore[no-untyped-def]
    server = relay_factory()
    if not server.memory.available:
        pytest.skip("no malloc_trim or /proc here: the watcher does not run")
    # This relay's own watcher: another relay of this test process may run one meanwhile, so a
    # thread of that name anywhere would pass even if this relay never started its own.
    assert server.memory.running, "the relay started its memory watcher"
    server.stop()
    assert not server.memory.running, "stopping the relay ended its watcher"


def test_no_memory_trim_runs_no_watcher(relay_factory) -> None:  # type: ignore[no-untyped-def]
    # This relay's own watcher (other relays of this process may run theirs meanwhile).
    assert relay_factory(memory_trim=False).memory.running is False
    trimming = relay_factory()
    if trimming.memory.available:
        assert trimming.memory.running is True
