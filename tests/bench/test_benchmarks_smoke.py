"""Smoke test: the relay and crypto benchmarks run from a checkout and print their tables.

Never a timed assertion: absolute speed depends on the machine and its load.
It only checks that the harness works end to end (servers start, clients
join, Susurro delivers something, the tables and ratio lines appear).
Deselect with ``-m 'not bench'``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, timeout: float) -> str:
    result = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"{args[0]} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.mark.bench
@pytest.mark.timeout(400)
def test_relay_load_and_crypto_cost_print_tables() -> None:
    # A port range of its own, so a benchmark run by hand on 21100+ does not collide.
    out = run("benchmarks.relay_load", "--quick", "--base-port", "21600", timeout=380)
    assert "offered msg/s" in out and "deliveries/s" in out and "relay RSS" in out
    susurro_rows = [line.split() for line in out.splitlines() if line.startswith("susurro ")]
    assert susurro_rows, out
    assert susurro_rows[0][1] == "10"
    delivered_pct = float(susurro_rows[0][4].rstrip("%"))
    assert delivered_pct > 0, out  # the relay delivered through the real join and send path
    assert "N=10: susurro/threaded-baseline max deliveries/s ratio = " in out
    assert "N=10: susurro/asyncio-baseline max deliveries/s ratio = " in out
    assert "idle connections" in out

    out = run("benchmarks.crypto_cost", "--quick", timeout=300)
    seal_rows = [line.split() for line in out.splitlines() if line.startswith("seal ") and " / " not in line]
    assert [row[1] for row in seal_rows] == ["1", "10", "100", "1000"], out
    assert "seal 100 recipients / bare primitives = " in out

    out = run("benchmarks.relay_core_cost", "--quick", timeout=120)
    rows = [line.split() for line in out.splitlines() if line and line.split()[0].isdigit()]
    assert [row[0] for row in rows] == ["10", "100"], out
    assert all(float(row[1]) > 0 for row in rows), out
