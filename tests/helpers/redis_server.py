"""A real ``redis-server`` for the tests, on a free loopback port in a temporary directory.

Redis has no ``--port 0``: we pick a port the kernel says is free and, since
another process may take it before Redis binds it, start again on a new one
when Redis reports the address in use. Every wait is bounded; ``stop`` (also
on a failed start) always ends the process. No fake Redis stands in for this
one anywhere in the tests.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import redis

from tests.helpers.system import free_port

#: Seconds for ``redis-server`` to accept connections, or to exit once told to.
REDIS_START_TIMEOUT = 15.0
REDIS_STOP_TIMEOUT = 10.0
#: Ports tried before giving up when another process keeps taking the one we picked.
PORT_ATTEMPTS = 5
#: What every test client waits at most for one command (a stopped server must fail fast, not hang).
CLIENT_TIMEOUT = 5.0
#: What redis-server logs once it listens.
READY = "Ready to accept connections"


def redis_server_binary() -> str | None:
    return shutil.which("redis-server")


class RedisServer:
    """One ``redis-server`` process. ``persist=True`` keeps an append-only file in ``directory``
    so ``restart`` (same port, same directory) brings the data back; otherwise nothing is saved.
    ``config`` starts it from that file instead (only port, directory, log and password overridden)."""

    def __init__(
        self, directory: Path, *, password: str | None = None, persist: bool = False, config: Path | None = None
    ) -> None:
        binary = redis_server_binary()
        if binary is None:
            raise FileNotFoundError("redis-server not installed")
        self.binary = binary
        self.directory = directory
        self.password = password
        self.persist = persist
        self.config = config
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_file = directory / "redis.log"
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start on a fresh free port (retrying on a collision); keeps the port on ``restart``."""
        last = ""
        for _ in range(PORT_ATTEMPTS):
            self.port = free_port()
            started, last = self._launch()
            if started:
                return self
            if "already in use" not in last:
                break
        raise AssertionError(f"redis-server did not start: {last}")

    def restart(self) -> None:
        """Stop and start again on the same port and directory (a Redis restart as operators see it)."""
        self.stop()
        started, last = self._launch()
        if not started:
            raise AssertionError(f"redis-server did not come back on port {self.port}: {last}")

    def _launch(self) -> tuple[bool, str]:
        args = [self.binary] if self.config is None else [self.binary, str(self.config)]
        args += [
            "--port", str(self.port),
            "--dir", str(self.directory),
            "--logfile", str(self.log_file),
            "--daemonize", "no",
        ]  # fmt: skip
        if self.config is None:
            args += ["--bind", "127.0.0.1", "--save", "", "--appendonly", "yes" if self.persist else "no"]
            args += ["--appendfsync", "always"]
        if self.password is not None:
            args += ["--requirepass", self.password]
        # The log file is appended to across restarts; read only what this launch wrote.
        offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # Wait for Redis to say it listens (or to exit) before connecting: a probe sent
        # earlier could reach whoever else holds the port and hang on them.
        deadline = time.monotonic() + REDIS_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                stderr = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                self.proc = None
                return False, stderr + self._log_since(offset)
            if READY in self._log_since(offset):
                with self.client() as probe:
                    probe.ping()
                return True, ""
            time.sleep(0.02)
        self.stop()
        return False, f"not ready within {REDIS_START_TIMEOUT:g} s; log: {self._log_since(offset)}"

    def _log_since(self, offset: int) -> str:
        if not self.log_file.exists():
            return ""
        with self.log_file.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def client(self, db: int = 0) -> redis.Redis:
        """A new client with bounded timeouts (bytes in, bytes out)."""
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            db=db,
            password=self.password,
            socket_timeout=CLIENT_TIMEOUT,
            socket_connect_timeout=CLIENT_TIMEOUT,
        )

    def kill(self) -> None:
        """SIGKILL: Redis dies without saving (what a crash looks like)."""
        self._end(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM and wait; SIGKILL if it does not exit in time. Safe to call twice."""
        self._end(signal.SIGTERM)

    def _end(self, sig: signal.Signals) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(sig)
        try:
            proc.wait(REDIS_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(REDIS_STOP_TIMEOUT)
        if proc.stderr is not None:
            proc.stderr.close()


def redis_dump(server: RedisServer) -> bytes:
    """Every key (``redis-cli --scan``, as an operator would list them), every value under it and every
    file Redis wrote: what to search for a plaintext that must not be there."""
    # REDISCLI_AUTH carries a password, so it is not on the command line (as docs/deploy.md shows operators).
    auth = {"REDISCLI_AUTH": server.password} if server.password is not None else {}
    listed = subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", str(server.port), "--scan"],
        capture_output=True,
        timeout=REDIS_STOP_TIMEOUT,
        check=True,
        env={**os.environ, **auth},
    ).stdout.splitlines()
    out = bytearray()
    with server.client() as raw:
        assert sorted(listed) == sorted(raw.scan_iter())
        for key in listed:
            out += key + b"\n"
            kind = raw.type(key)
            if kind == b"string":
                out += raw.get(key) or b""
            elif kind == b"hash":
                for field, value in raw.hgetall(key).items():
                    out += field + b"=" + value + b"\n"
            elif kind == b"zset":
                out += b"\n".join(raw.zrange(key, 0, -1))
            elif kind == b"set":
                out += b"\n".join(raw.smembers(key))
            elif kind == b"list":
                out += b"\n".join(raw.lrange(key, 0, -1))
            elif kind == b"stream":
                for _, fields in raw.xrange(key):
                    out += b"\n".join(k + b"=" + v for k, v in fields.items())
            out += b"\n" + (raw.dump(key) or b"") + b"\n"  # the serialized form Redis persists
    # And what it persisted: the append-only file and any snapshot, as they are on disk.
    for path in sorted(server.directory.rglob("*")):
        if path.is_file() and path != server.log_file:
            out += path.read_bytes()
    return bytes(out)
