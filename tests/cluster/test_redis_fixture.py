"""The test Redis itself: a real ``redis-server``, on loopback, private to the test, always stopped."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from susurro.relay.cluster.connect import open_redis
from tests.helpers import redis_server as redis_helper
from tests.helpers.redis_server import RedisServer
from tests.helpers.system import free_port


def test_a_fresh_empty_server_on_loopback_in_the_test_directory(redis_server: RedisServer, tmp_path: Path) -> None:
    with redis_server.client() as client:
        assert client.ping() and client.dbsize() == 0
        config = client.config_get("*")
    assert config["bind"] == "127.0.0.1"
    assert Path(config["dir"]) == tmp_path / "redis"
    assert config["save"] == ""  # nothing written to disk unless a test asks for it
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"


def test_stop_ends_the_process_and_frees_the_port(redis_factory: Callable[..., RedisServer]) -> None:
    server = redis_factory()
    proc = server.proc
    assert proc is not None
    server.stop()
    assert proc.returncode is not None
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", server.port), timeout=5):
        pass
    server.stop()  # twice is fine


def test_a_taken_port_is_retried_on_another(
    redis_factory: Callable[..., RedisServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        ports = iter([taken, free_port()])
        monkeypatch.setattr(redis_helper, "free_port", lambda: next(ports))
        server = redis_factory()
        assert server.port != taken
        with server.client() as client:
            assert client.ping()


def test_a_password_is_required_when_set(redis_factory: Callable[..., RedisServer]) -> None:
    server = redis_factory(password="correct horse")
    with server.client() as client:
        assert client.ping()
    with open_redis(server.url) as anonymous, pytest.raises(redis.AuthenticationError):
        anonymous.ping()


def test_a_persistent_server_keeps_its_data_across_a_restart(redis_factory: Callable[..., RedisServer]) -> None:
    server = redis_factory(persist=True)
    with server.client() as client:
        client.set(b"k", b"v")
    server.restart()
    with server.client() as client:
        assert client.get(b"k") == b"v"


def test_ci_installs_redis_server_so_these_tests_never_skip_there() -> None:
    ci = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text()
    assert "command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)" in ci


def test_a_relay_without_cluster_never_imports_redis() -> None:
    """``redis`` is the ``cluster`` extra: the relay, its store and its command line must work without it."""
    probe = (
        "import sys; import susurro.relay, susurro.relay.cli, susurro.relay.store, susurro.relay.cluster; "
        "sys.exit('redis' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", probe], timeout=60).returncode == 0


def test_the_deployed_redis_conf_loads_and_holds_what_docs_promise(redis_factory: Callable[..., RedisServer]) -> None:
    """deploy/redis.conf in a real redis-server: loopback, a password, no eviction, synced append-only file."""
    conf = Path(__file__).resolve().parents[2] / "deploy" / "redis.conf"
    server = redis_factory(password="from-the-test", config=conf)
    with server.client() as client:
        settings = client.config_get("*")
        assert settings["bind"].split() == ["127.0.0.1", "-::1"] and settings["protected-mode"] == "yes"
        assert settings["maxmemory-policy"] == "noeviction"
        assert (settings["appendonly"], settings["appendfsync"]) == ("yes", "always")
        with pytest.raises(redis.ResponseError, match="unknown command"):
            client.execute_command("FLUSHALL")
    with open_redis(server.url) as anonymous, pytest.raises(redis.AuthenticationError):
        anonymous.ping()
    assert "requirepass CHANGE-ME" in conf.read_text()  # a placeholder nobody can mistake for a password
