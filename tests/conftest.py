"""Fixtures every kind of test shares: a real relay on an ephemeral loopback port (in this
process), lists of clients that are closed at teardown, and a real ``redis-server``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from susurro.relay import RelayConfig, RelayServer
from tests.helpers import cli_json, processes
from tests.helpers.hostile_client import HostileClient, joined_client
from tests.helpers.processes import CliProcess
from tests.helpers.redis_server import RedisServer, redis_server_binary
from tests.helpers.stores import BACKENDS, RedisBackend, SQLiteBackend, StoreBackend


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


@pytest.fixture
def cli_clients() -> Iterator[list[CliProcess]]:
    """Terminal clients a test starts (append them); each is stopped at teardown, even when the test fails."""
    started: list[CliProcess] = []
    try:
        yield started
    finally:
        for client in started:
            client.stop()


@pytest.fixture
def hostile_clients() -> Iterator[list[HostileClient]]:
    """Raw-socket clients a test opens (append them); each is closed at teardown, even when the test fails."""
    opened: list[HostileClient] = []
    try:
        yield opened
    finally:
        for client in opened:
            client.close()


@pytest.fixture
def member(hostile_clients: list[HostileClient]) -> Callable[[RelayServer, str], HostileClient]:
    """``member(server, name)``: a raw-socket client that has joined ``server`` as ``name``."""

    def make(server: RelayServer, name: str) -> HostileClient:
        client = joined_client(server, name)
        hostile_clients.append(client)
        return client

    return make


def _need_redis() -> None:
    # CI installs redis-server (.ci/run), so this skip only happens on a developer's machine without it.
    if redis_server_binary() is None:
        pytest.skip("redis-server is not installed (Debian/Ubuntu: apt install redis-server)")


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh, empty ``redis-server`` on a free loopback port in this test's directory; nothing is saved."""
    _need_redis()
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_factory(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """``redis_factory(password=..., persist=..., config=...)`` starts another server; all are stopped at teardown."""
    _need_redis()
    started: list[RedisServer] = []

    def factory(*, password: str | None = None, persist: bool = False, config: Path | None = None) -> RedisServer:
        server = RedisServer(tmp_path / f"redis{len(started)}", password=password, persist=persist, config=config)
        started.append(server)
        return server.start()

    try:
        yield factory
    finally:
        for server in started:
            server.stop()


@pytest.fixture(params=BACKENDS)
def store_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreBackend]:
    """Each of the relay's storage backends in turn (a real SQLite file; a real, persistent Redis)."""
    backend: StoreBackend
    if request.param == "sqlite":
        backend = SQLiteBackend(tmp_path / "data" / "relay.sqlite3")
    else:
        factory = request.getfixturevalue("redis_factory")
        backend = RedisBackend(factory(persist=True))
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture(autouse=True)
def printed_json_is_documented() -> Iterator[None]:
    """Every line a ``susurro-cli --json`` printed during the test is what docs/cli-json.md says."""
    start = len(processes.PRINTED)
    yield
    found = [f"{problem} (in {obj})" for obj in processes.PRINTED[start:] for problem in cli_json.problems(obj)]
    assert not found, "susurro-cli --json printed what docs/cli-json.md does not say:\n" + "\n".join(found)
