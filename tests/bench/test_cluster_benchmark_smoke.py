"""Smoke test: the cross-node cost benchmark runs against a real Redis and prints its table.
Never a timed assertion. Deselect with ``-m 'not bench'``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.bench
def test_cluster_cost_prints_its_table(redis_server: RedisServer) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.cluster_cost",
            "--sends",
            "50",
            "--recipients",
            "1,5",
            "--joins",
            "50",
            "--redis",
            redis_server.url,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split() for line in result.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert [row[0] for row in rows] == ["1", "5"], result.stdout
    assert "joins then leaves on one node, 50 one after another: join" in result.stdout


@pytest.mark.bench
@pytest.mark.timeout(400)
def test_relay_load_with_two_nodes_runs_each_layout(redis_server: RedisServer) -> None:
    """``relay_load --nodes 2`` (it starts its own private Redis; the fixture only says one can run)."""
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.relay_load", "--nodes", "2", "--quick", "--base-port", "21650"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=380,
        check=False,
    )
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith(("1node ", "2n-"))]
    for layout in ("1node", "2n-one", "2n-split"):
        mine = [row for row in rows if row[0] == layout]
        assert mine and float(mine[0][4].rstrip("%")) > 0, result.stdout  # delivered through real relays
    assert "max deliveries/s with 100 % delivered" in result.stdout
    assert any("Redis CPU" in " ".join(row) for row in rows if row[0] == "2n-split"), result.stdout
