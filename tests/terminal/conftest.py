"""Fixtures of the terminal tests: tmux terminals closed at teardown, and ana at her prompt beside beto."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from susurro.relay import RelayServer
from tests.helpers.processes import CliProcess
from tests.helpers.tty import Chat, Terminal, at_prompt, open_terminal, watcher


@pytest.fixture
def terminals() -> Iterator[list[Terminal]]:
    """Terminals a test opens (``open_terminal``); each is closed at teardown, even when the test fails."""
    opened: list[Terminal] = []
    try:
        yield opened
    finally:
        for term in opened:
            term.close()


@pytest.fixture
def chat(relay_server: RelayServer, cli_clients: list[CliProcess], terminals: list[Terminal], tmp_path: Path) -> Chat:
    """ana on a real terminal at her prompt, and beto on the same relay having seen her join."""
    server = "{}:{}".format(*relay_server.address)
    beto = watcher(tmp_path, server, cli_clients)
    term = open_terminal(terminals, tmp_path, "--server", server, "--name", "ana")
    at_prompt(term)
    beto.expect_event("joined", name="ana")
    return Chat(server, term, beto)
