"""Fixtures of the integration tests: a real relay process with a data directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.processes import RelayProcess


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[RelayProcess]:
    """A real relay with ``--data-dir`` (rooms and mailboxes in SQLite), stopped at teardown."""
    process = RelayProcess(tmp_path, "--data-dir", str(tmp_path / "data"))
    try:
        yield process
    finally:
        process.stop()
