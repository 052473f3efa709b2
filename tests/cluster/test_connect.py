"""Opening the cluster's Redis: URLs, passwords kept off command lines, bounded failures."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from susurro.relay.cluster.connect import (
    PASSWORD_ENV,
    ClusterConfigError,
    check_url,
    open_redis,
    read_password,
)
from tests.helpers.redis_server import RedisServer
from tests.helpers.system import WAIT


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0", "rediss://redis.example.org:6380/3", "redis://h:1"])
def test_redis_urls_without_credentials_are_taken(url: str) -> None:
    assert check_url(url) == url


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis://:hunter2@127.0.0.1:6379/0", "not in the URL"),
        ("redis://relay:hunter2@127.0.0.1:6379/0", "not in the URL"),
        ("http://127.0.0.1:6379/0", "redis://HOST:PORT/DB"),
        ("127.0.0.1:6379", "redis://HOST:PORT/DB"),
        ("redis:///0", "redis://HOST:PORT/DB"),
        ("redis://127.0.0.1:6379/rooms", "a number"),
        ("redis://127.0.0.1:6379/0?password=hunter2", "flags"),
    ],
)
def test_a_password_in_the_url_and_other_mistakes_are_refused_with_the_fix(url: str, says: str) -> None:
    with pytest.raises(ClusterConfigError, match=says) as refused:
        check_url(url)
    assert "hunter2" not in str(refused.value)


def test_the_password_comes_from_a_private_file_else_the_environment(tmp_path: Path) -> None:
    secret = tmp_path / "redis-password"
    secret.write_text("s3cret line\nignored\n")
    secret.chmod(0o600)
    assert read_password(str(secret), {PASSWORD_ENV: "from-env"}) == "s3cret line"
    assert read_password(None, {PASSWORD_ENV: "from-env"}) == "from-env"
    assert read_password(None, {}) is None and read_password(None, {PASSWORD_ENV: ""}) is None
    secret.chmod(0o640)
    with pytest.raises(ClusterConfigError, match="chmod 600"):
        read_password(str(secret), {})
    empty = tmp_path / "empty"
    empty.write_text("")
    empty.chmod(0o600)
    with pytest.raises(ClusterConfigError, match="empty"):
        read_password(str(empty), {})
    with pytest.raises(ClusterConfigError, match="cannot read"):
        read_password(str(tmp_path / "missing"), {})
    link = tmp_path / "link"
    link.symlink_to(secret)
    secret.chmod(0o600)
    with pytest.raises(ClusterConfigError, match=r"cannot (open|read)"):  # O_NOFOLLOW: a planted link is refused
        read_password(str(link), {})


def test_the_password_file_opens_a_password_protected_redis(
    redis_factory: Callable[..., RedisServer], tmp_path: Path
) -> None:
    server = redis_factory(password="correct horse battery")
    secret = tmp_path / "pw"
    fd = os.open(secret, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"correct horse battery\n")
    os.close(fd)
    with open_redis(server.url, read_password(str(secret), {})) as client:
        assert client.ping()
    with open_redis(server.url, "wrong") as client, pytest.raises(redis.AuthenticationError):
        client.ping()


def test_a_failing_redis_is_tried_twice_then_reported_not_retried_forever() -> None:
    """A server that hangs up on every connection: one attempt and one retry (for a stale pooled
    connection after a Redis restart), then the error reaches the relay, which reports it.
    (redis-py's default is three retries with backoff: seconds per request while Redis is down.)"""
    accepted = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        listener.settimeout(WAIT)
        port = listener.getsockname()[1]

        def hang_up() -> None:
            try:
                while True:
                    conn, _ = listener.accept()
                    accepted.append(conn)
                    conn.close()
            except OSError:
                return  # the listener closed, or nobody came within WAIT

        thread = threading.Thread(target=hang_up, daemon=True)
        thread.start()
        client = open_redis(f"redis://127.0.0.1:{port}/0")
        with pytest.raises(redis.ConnectionError):
            client.ping()
        client.close()
        listener.shutdown(socket.SHUT_RDWR)
    thread.join(WAIT)
    # redis-py applies the one retry to the connect and to the command: at most 2 x 2 connections.
    assert 2 <= len(accepted) <= 4


def test_a_password_file_that_is_not_text_is_refused_with_the_reason(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_bytes(b"\xff\xfe\x00binary")
    secret.chmod(0o600)
    with pytest.raises(ClusterConfigError, match="not UTF-8"):
        read_password(str(secret), {})


def test_every_cluster_error_is_one_of_two_kinds() -> None:
    from susurro.relay.cluster import ClusterError, RedisUnavailable
    from susurro.relay.cluster.names import ClaimError
    from susurro.relay.cluster.presence import PresenceError
    from susurro.relay.cluster.streams import StreamError

    assert issubclass(ClusterConfigError, ClusterError) and issubclass(ClusterConfigError, ValueError)
    for error in (ClaimError, PresenceError, StreamError):
        assert issubclass(error, RedisUnavailable) and issubclass(error, ClusterError)
