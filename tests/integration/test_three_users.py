"""The scripted three-user session, as a new user would run it: real relay and
client processes talking over loopback, then an audit of the relay's output."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.processes import CliProcess, RelayProcess
from tests.helpers.scenarios import three_user_session


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[RelayProcess]:
    process = RelayProcess(tmp_path)
    try:
        yield process
    finally:
        process.stop()


def test_three_users_chat_and_relay_sees_only_ciphertext(
    relay: RelayProcess, cli_clients: list[CliProcess], tmp_path: Path
) -> None:
    three_user_session(relay, cli_clients, tmp_path)
