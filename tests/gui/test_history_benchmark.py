"""Smoke test: ``benchmarks.history_window --quick`` runs a real window on this display and prints its table.

Never a timed assertion (the figures depend on the machine and its load):
only that the window opened, the pages came and the table was printed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.bench
@pytest.mark.timeout(300)
def test_history_window_prints_its_table(display: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.history_window", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    out = result.stdout
    assert "baseline: read and drawn at once on the Tk thread" in out
    assert "window: open, newest page (read on the worker)" in out
    assert "window: scroll up 5 pages (each read on the worker)" in out, out
