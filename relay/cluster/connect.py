"""Opening the cluster's Redis: the URL an operator gives, a password that never sits on a command line.

``--cluster redis://HOST:PORT/DB`` (``rediss://`` for TLS to Redis) names the
server; the password comes from a file (first line, like ``--passphrase-file``)
or the ``SUSURRO_REDIS_PASSWORD`` environment variable. A password inside the
URL is refused: command lines are visible to every user through ``ps`` and
``/proc``. Every command is bounded in time and retried at most once (a
pooled connection that went stale when Redis restarted), so a Redis that is
down costs a relay request a few seconds at most, never a hang.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from susurro.crypto.files import UnsafeFile, read_checked

from .errors import ClusterConfigError

PASSWORD_ENV = "SUSURRO_REDIS_PASSWORD"  # noqa: S105  (the variable's name, not a password)
#: Seconds to connect to Redis, and to wait for one reply.
REDIS_TIMEOUT = 2.0
#: A password file is one line; anything longer is not a password file.
MAX_PASSWORD_FILE_BYTES = 4096
SCHEMES = ("redis", "rediss")


def check_url(url: str) -> str:
    """``url`` if it names a Redis without credentials in it; ``ClusterConfigError`` otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise ClusterConfigError(f"--cluster takes redis://HOST:PORT/DB or rediss://HOST:PORT/DB, not {url!r}")
    if parts.password is not None or parts.username is not None:
        raise ClusterConfigError(
            "--cluster: put the Redis password in a file (--cluster-password-file) or in "
            f"{PASSWORD_ENV}, not in the URL: command lines are visible to every user"
        )
    if parts.path not in ("", "/") and not parts.path.lstrip("/").isdigit():
        raise ClusterConfigError(f"--cluster: the database is a number (redis://HOST:PORT/0), not {parts.path!r}")
    if parts.query or parts.fragment:
        raise ClusterConfigError("--cluster: options go in flags, not in the URL")
    return url


def read_password(path: str | None, environ: Mapping[str, str] = os.environ) -> str | None:
    """The first line of ``path`` (a regular file of ours that others cannot use), else
    ``$SUSURRO_REDIS_PASSWORD``, else None. The file is read by ``crypto.files`` like every
    other secret of ours: no symbolic link, no other owner, no group or other bits."""
    if path is None:
        return environ.get(PASSWORD_ENV) or None
    try:
        data = read_checked(
            Path(path), forbidden_mode=0o077, max_bytes=MAX_PASSWORD_FILE_BYTES, fix=f"run: chmod 600 {path}"
        )
    except UnsafeFile as exc:
        raise ClusterConfigError(f"Redis password file: {exc}") from None
    except OSError as exc:
        raise ClusterConfigError(f"cannot read the Redis password file {path}: {exc.strerror or exc}") from None
    if data is None:
        raise ClusterConfigError(f"cannot read the Redis password file {path}: no such file")
    if len(data) > MAX_PASSWORD_FILE_BYTES:
        raise ClusterConfigError(f"{path} is not a password file (over {MAX_PASSWORD_FILE_BYTES} bytes)")
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise ClusterConfigError(f"{path} is not UTF-8 text; its first line is the Redis password") from None
    if not lines or not lines[0]:
        raise ClusterConfigError(f"{path} is empty; its first line is the Redis password")
    return lines[0]


def open_redis(url: str, password: str | None = None, *, timeout: float = REDIS_TIMEOUT) -> redis.Redis:
    """A client (bytes in, bytes out, thread-safe pool) for ``url``; connects lazily, on the first command."""
    return redis.Redis.from_url(
        check_url(url),
        password=password,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 1),
        health_check_interval=30,
    )
