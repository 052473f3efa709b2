"""Shared fixtures: a real relay on an ephemeral loopback port, in this process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from susurro.relay import RelayConfig, RelayServer


def start_relay(**overrides: object) -> RelayServer:
    """Start a relay on 127.0.0.1 with a free port; settings may be overridden."""
    settings: dict[str, object] = {"host": "127.0.0.1", "port": 0, "handshake_timeout": 5.0}
    settings.update(overrides)
    server = RelayServer(RelayConfig(**settings))  # type: ignore[arg-type]
    server.start()
    return server


@pytest.fixture
def relay_server() -> Iterator[RelayServer]:
    server = start_relay()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def relay_factory() -> Iterator[object]:
    """Call with RelayConfig overrides to start a relay; all are stopped at teardown."""
    started: list[RelayServer] = []

    def factory(**overrides: object) -> RelayServer:
        server = start_relay(**overrides)
        started.append(server)
        return server

    try:
        yield factory
    finally:
        for server in started:
            server.stop()
