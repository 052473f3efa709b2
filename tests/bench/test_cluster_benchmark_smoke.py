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
