"""Smoke test: the offline-delivery and history benchmarks run and print their tables (never timed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=100, check=False
    )
    assert result.returncode == 0, f"{args[0]} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.mark.bench
def test_offline_cost_and_history_open_print_their_tables() -> None:
    out = run("benchmarks.offline_cost", "--quick")
    assert "client CPU, sign + seal a direct message" in out and "ciphertext bytes per copy" in out
    assert "drain 100 waiting items" in out
    out = run("benchmarks.history_open", "--quick")
    assert "open + newest page of 50" in out and "read and open all 2,000" in out
